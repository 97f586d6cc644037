"""Read the CMS physician fee schedule files into normalized, typed frames.

Two CMS files feed pricing (issue 4):

- the National Physician Fee Schedule Relative Value File (``PPRRVUyy``): a few title
  lines, a header whose column names are spread over several rows (``WORK`` above
  ``RVU``, ``NON-FAC`` / ``NA`` / ``INDICATOR`` ...) ending with the row that starts
  ``HCPCS,MOD,DESCRIPTION,...``, then one row per HCPCS code and modifier;
- Addendum E, the GPCIs by Medicare locality: a title line, a one-row header
  (``Medicare Administrative Contractor (MAC),State,Locality Number,Locality Name,
  2025 PW GPCI (with 1.0 Floor),2025 PE GPCI,2025 MP GPCI``), the localities, then
  footnote lines (``*Work GPCI reflects a 1.5 floor in Alaska ...``) that the locality
  names point to with ``*`` / ``**`` markers.

``read_pfs`` and ``read_gpci`` turn them into frames with exactly ``PFS_COLUMNS`` /
``GPCI_COLUMNS`` (types in ``PFS_SCHEMA`` / ``GPCI_SCHEMA``; RVUs, GPCIs and the
conversion factor are ``Decimal(12, 4)``, never float). Every cell is read as text and
converted for the whole frame at once. A file that cannot be used raises
``FeeFileError`` naming the file, the line (1-based, as a spreadsheet shows it) and the
column. CSV is the format CMS publishes; an ``.xlsx`` copy with the same layout (first
sheet) is read the same way.

``read_pfs_table`` / ``read_gpci_table`` read back the normalized CSV files this module's
frames are written to (the project's shipped defaults under ``code_rules/pricing/data``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from billing_engine.errors import ConfigError, FeeFileError

DECIMAL = pl.Decimal(12, 4)

PFS_COLUMNS = (
    "year",
    "effective_from",
    "qp",
    "hcpcs",
    "modifier",
    "status",
    "work_rvu",
    "nf_pe_rvu",
    "nf_na",
    "f_pe_rvu",
    "f_na",
    "mp_rvu",
    "conv_factor",
    "release",
    "source_file",
)
GPCI_COLUMNS = (
    "year",
    "locality",
    "mac",
    "state",
    "locality_number",
    "locality_name",
    "pw_gpci",
    "pe_gpci",
    "mp_gpci",
    "footnote",
    "release",
    "source_file",
)

PFS_SCHEMA: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "effective_from": pl.Date(),
    "qp": pl.Boolean(),
    "hcpcs": pl.String(),
    "modifier": pl.String(),
    "status": pl.String(),
    "work_rvu": DECIMAL,
    "nf_pe_rvu": DECIMAL,
    "nf_na": pl.String(),
    "f_pe_rvu": DECIMAL,
    "f_na": pl.String(),
    "mp_rvu": DECIMAL,
    "conv_factor": DECIMAL,
    "release": pl.String(),
    "source_file": pl.String(),
}
GPCI_SCHEMA: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "locality": pl.String(),
    "mac": pl.String(),
    "state": pl.String(),
    "locality_number": pl.Int32(),
    "locality_name": pl.String(),
    "pw_gpci": DECIMAL,
    "pe_gpci": DECIMAL,
    "mp_gpci": DECIMAL,
    "footnote": pl.String(),
    "release": pl.String(),
    "source_file": pl.String(),
}
assert tuple(PFS_SCHEMA) == PFS_COLUMNS
assert tuple(GPCI_SCHEMA) == GPCI_COLUMNS

# normalized column -> the (joined, upper-case) header name in the CMS RVU file
PFS_SOURCE_COLUMNS: dict[str, str] = {
    "hcpcs": "HCPCS",
    "modifier": "MOD",
    "status": "STATUS CODE",
    "work_rvu": "WORK RVU",
    "nf_pe_rvu": "NON-FAC PE RVU",
    "nf_na": "NON-FAC NA INDICATOR",
    "f_pe_rvu": "FACILITY PE RVU",
    "f_na": "FACILITY NA INDICATOR",
    "mp_rvu": "MP RVU",
    "conv_factor": "CONV FACTOR",
}
PFS_DECIMALS = ("work_rvu", "nf_pe_rvu", "f_pe_rvu", "mp_rvu", "conv_factor")
NA_VALUES = ("", "NA")

# normalized column -> (name shown in messages, test on the upper-case header cell)
GPCI_SOURCE_COLUMNS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "mac": (
        "Medicare Administrative Contractor (MAC)",
        lambda h: h == "MAC" or h.startswith("MEDICARE ADMINISTRATIVE CONTRACTOR"),
    ),
    "state": ("State", lambda h: h == "STATE"),
    "locality_number": ("Locality Number", lambda h: h == "LOCALITY NUMBER"),
    "locality_name": ("Locality Name", lambda h: h == "LOCALITY NAME"),
    # the unfloored work GPCI when the file has both (2026: "... (without 1.0 Floor)" and
    # "... (with 1.0 Floor)"); pricing applies pricing.work_gpci_floor by date of service
    "pw_gpci": ("PW GPCI", lambda h: "PW GPCI" in h and "WITH 1.0 FLOOR" not in h),
    "pe_gpci": ("PE GPCI", lambda h: "PE GPCI" in h),
    "mp_gpci": ("MP GPCI", lambda h: "MP GPCI" in h),
}
GPCI_DECIMALS = ("pw_gpci", "pe_gpci", "mp_gpci")

_LINE = "__line"
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_NUMBER = r"^-?(\d+(\.\d*)?|\.\d+)$"
_FITS = r"^-?\d{0,8}(\.\d{0,4}0*)?$"  # Decimal(12, 4) holds it without rounding
_MARKED_NAME = r"^(.*?)\s*(\*+)$"


@dataclass(frozen=True)
class _Cells:
    """A file's cells as text, with the 1-based line each row starts on."""

    name: str
    rows: list[list[str]]
    lines: list[int]


@dataclass(frozen=True)
class _Problem:
    line: int
    column: str
    problem: str
    value: str | None


# -- reading cells -------------------------------------------------------------------


def _excel_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _read_xlsx(path: Path) -> _Cells:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise FeeFileError(path.name, None, None, f"not a readable .xlsx workbook: {exc}") from exc
    try:
        sheet = workbook.worksheets[0]
        rows = [[_excel_text(v) for v in row] for row in sheet.values]
    finally:
        workbook.close()
    return _Cells(path.name, rows, list(range(1, len(rows) + 1)))


def _read_csv(path: Path) -> _Cells:
    last_error: UnicodeDecodeError | None = None
    for encoding in ("utf-8-sig", "cp1252"):
        rows: list[list[str]] = []
        lines: list[int] = []
        try:
            with path.open(newline="", encoding=encoding) as handle:
                reader = csv.reader(handle)
                previous = 0
                for record in reader:
                    rows.append(record)
                    lines.append(previous + 1)
                    previous = reader.line_num
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except csv.Error as exc:
            raise FeeFileError(path.name, None, None, f"not a readable CSV file: {exc}") from exc
        return _Cells(path.name, rows, lines)
    raise FeeFileError(path.name, None, None, f"not UTF-8 or Windows-1252 text: {last_error}")


def _read_cells(path: Path) -> _Cells:
    if not path.is_file():
        raise FeeFileError(path.name, None, None, f"no such file: {path}")
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx(path)
    return _read_csv(path)


_EOF = "\x1a"  # DOS end-of-file mark; CMS files end with a line holding it


def _is_blank(row: list[str]) -> bool:
    return not any(cell.replace(_EOF, "").strip() for cell in row)


def _normal(text: str) -> str:
    return " ".join(text.replace(_EOF, "").split()).upper()


def _title(cells: _Cells, before: int) -> tuple[str, int, int]:
    """The first non-blank cell above row ``before``: (text, row index, line)."""
    for index in range(before):
        for cell in cells.rows[index]:
            if cell.strip():
                return " ".join(cell.split()), index, cells.lines[index]
    raise FeeFileError(
        cells.name,
        cells.lines[before],
        None,
        "no title line above the header (the release name, with its year)",
    )


def _check_year(cells: _Cells, title: str, line: int, year: int, column: str = "title") -> None:
    found = _YEAR.search(title)
    if found is None:
        raise FeeFileError(cells.name, line, column, f"the {column} names no year", title)
    if int(found.group(1)) != year:
        raise FeeFileError(
            cells.name,
            line,
            column,
            f"the file is for {found.group(1)}, not {year} (--year)",
            title,
        )


def _data_frame(cells: _Cells, start: int, columns: dict[str, int]) -> pl.DataFrame:
    """Rows from ``start`` on, the named cells (text, stripped) plus their line."""
    rows = cells.rows[start:]
    data: dict[str, list[str]] = {
        name: [row[index] if index < len(row) else "" for row in rows]
        for name, index in columns.items()
    }
    frame = pl.DataFrame(
        {_LINE: cells.lines[start:], **data},
        schema={_LINE: pl.Int64(), **dict.fromkeys(columns, pl.String())},
    )
    return frame.with_columns(
        pl.col(name).str.replace_all(_EOF, "", literal=True).str.strip_chars() for name in columns
    )


# -- checks --------------------------------------------------------------------------


def _first(
    frame: pl.DataFrame, condition: pl.Expr, column: str, shown: str, problem: str
) -> _Problem | None:
    hit = frame.filter(condition).select(_LINE, column).head(1)
    if hit.height == 0:
        return None
    line, value = hit.row(0)
    return _Problem(int(line), shown, problem, value)


def _decimal_problems(frame: pl.DataFrame, names: dict[str, str]) -> list[_Problem | None]:
    found: list[_Problem | None] = []
    for column, shown in names.items():
        value = pl.col(column)
        numeric = value.str.contains(_NUMBER)
        found.append(_first(frame, ~numeric, column, shown, "is not a number"))
        found.append(
            _first(frame, numeric & value.str.starts_with("-"), column, shown, "is negative")
        )
        found.append(
            _first(
                frame,
                numeric & ~value.str.starts_with("-") & ~value.str.contains(_FITS),
                column,
                shown,
                "has more than 8 digits before or 4 after the decimal point",
            )
        )
    return found


def _duplicate_problem(
    frame: pl.DataFrame, keys: list[str], column: str, shown: str, what: str
) -> _Problem | None:
    marked = frame.with_columns(
        pl.int_range(pl.len()).over(keys).alias("__nth"),
        pl.col(_LINE).first().over(keys).alias("__first_line"),
    )
    hit = marked.filter(pl.col("__nth") > 0).head(1)
    if hit.height == 0:
        return None
    row = hit.row(0, named=True)
    key = "/".join(str(row[k]) for k in keys)
    return _Problem(
        int(row[_LINE]),
        shown,
        f"duplicate {what} {key} (first on line {row['__first_line']})",
        None,
    )


def _raise_first(name: str, problems: Iterable[_Problem | None]) -> None:
    real = [p for p in problems if p is not None]
    if real:
        worst = min(real, key=lambda p: p.line)  # the first one a reader meets
        raise FeeFileError(name, worst.line, worst.column, worst.problem, worst.value)


def _non_negative_numbers(frame: pl.DataFrame, names: Iterable[str]) -> pl.DataFrame:
    """Cast checked decimal text to Decimal(12, 4) ("-0" becomes 0)."""
    return frame.with_columns(
        pl.col(n).str.strip_prefix("-").cast(DECIMAL, strict=True) for n in names
    )


# -- the RVU file --------------------------------------------------------------------


def read_pfs(
    path: Path, year: int, effective_from: dt.date | None = None, qp: bool = False
) -> pl.DataFrame:
    """The CMS RVU file as a frame with ``PFS_COLUMNS``.

    ``effective_from`` (default January 1 of ``year``) must lie inside ``year``; the
    first 4-digit year of the file's title line must be ``year``. ``qp`` marks the
    conversion factor as the one for qualifying APM participants.
    """
    path = Path(path)
    effective = effective_from or dt.date(year, 1, 1)
    if effective.year != year:
        raise FeeFileError(
            path.name,
            None,
            "effective_from",
            f"effective date {effective.isoformat()} is outside {year}",
        )
    cells = _read_cells(path)
    header = next(
        (i for i, row in enumerate(cells.rows) if row and _normal(row[0]) == "HCPCS"), None
    )
    if header is None:
        raise FeeFileError(
            cells.name, None, "HCPCS", "no header row starting with HCPCS (not a CMS RVU file?)"
        )
    # the "RELEASED mm/dd/yyyy" line belongs to the title, not to the column names
    released_at = next(
        (
            (i, " ".join(cell.split()))
            for i in range(header)
            for cell in cells.rows[i]
            if _normal(cell).startswith("RELEASED")
        ),
        None,
    )
    top = header
    while top > 0 and not _is_blank(cells.rows[top - 1]):
        top -= 1
    if released_at is not None:
        top = max(top, released_at[0] + 1)
    width = max(len(cells.rows[i]) for i in range(top, header + 1))
    names = [
        _normal(" ".join(row[j] for row in cells.rows[top : header + 1] if j < len(row)))
        for j in range(width)
    ]
    positions: dict[str, int] = {}
    for column, source in PFS_SOURCE_COLUMNS.items():
        if source not in names:
            raise FeeFileError(
                cells.name, cells.lines[header], source, "required column is missing"
            )
        positions[column] = names.index(source)

    title, _, title_line = _title(cells, top)
    _check_year(cells, title, title_line, year)
    released = released_at[1] if released_at is not None else None
    release = f"{title}; {released}" if released else title

    frame = _data_frame(cells, header + 1, positions)
    frame = frame.filter(~pl.all_horizontal(pl.col(c) == "" for c in positions))
    if frame.height == 0:
        raise FeeFileError(cells.name, cells.lines[header], None, "no data rows below the header")

    hcpcs = PFS_SOURCE_COLUMNS["hcpcs"]
    problems: list[_Problem | None] = [
        _first(frame, pl.col("hcpcs") == "", "hcpcs", hcpcs, "HCPCS code is empty"),
        *_decimal_problems(frame, {c: PFS_SOURCE_COLUMNS[c] for c in PFS_DECIMALS}),
        *(
            _first(
                frame,
                ~pl.col(c).is_in(NA_VALUES),
                c,
                PFS_SOURCE_COLUMNS[c],
                "must be blank or NA",
            )
            for c in ("nf_na", "f_na")
        ),
        _duplicate_problem(
            frame.with_columns(pl.col("hcpcs").str.to_uppercase(), pl.col("modifier")),
            ["hcpcs", "modifier"],
            "hcpcs",
            hcpcs,
            "HCPCS+MOD",
        ),
    ]
    _raise_first(cells.name, problems)

    frame = _non_negative_numbers(frame, PFS_DECIMALS)
    return frame.select(
        pl.lit(year, dtype=pl.Int32()).alias("year"),
        pl.lit(effective, dtype=pl.Date()).alias("effective_from"),
        pl.lit(qp, dtype=pl.Boolean()).alias("qp"),
        pl.col("hcpcs").str.to_uppercase(),
        pl.col("modifier").str.to_uppercase(),
        pl.col("status").str.to_uppercase(),
        "work_rvu",
        "nf_pe_rvu",
        pl.col("nf_na"),
        "f_pe_rvu",
        pl.col("f_na"),
        "mp_rvu",
        "conv_factor",
        pl.lit(release, dtype=pl.String()).alias("release"),
        pl.lit(cells.name, dtype=pl.String()).alias("source_file"),
    )


# -- the GPCI file -------------------------------------------------------------------


def read_gpci(path: Path, year: int) -> pl.DataFrame:
    """CMS Addendum E (GPCIs by locality) as a frame with ``GPCI_COLUMNS``.

    ``locality`` is ``MAC-locality number`` (``10112-0``), the interchange format of
    ``practitioners.medicare_locality``. ``locality_name`` loses its ``*`` markers and
    ``footnote`` holds the footnote text they point to ('' when none).
    """
    path = Path(path)
    cells = _read_cells(path)
    header = next(
        (
            i
            for i, row in enumerate(cells.rows)
            if any(_normal(cell) == "LOCALITY NUMBER" for cell in row)
        ),
        None,
    )
    if header is None:
        raise FeeFileError(
            cells.name,
            None,
            "Locality Number",
            "no header row with a 'Locality Number' column (not a CMS GPCI file?)",
        )
    header_cells = cells.rows[header]
    names = [_normal(cell) for cell in header_cells]
    positions: dict[str, int] = {}
    shown: dict[str, str] = {}
    for column, (label, matches) in GPCI_SOURCE_COLUMNS.items():
        index = next((j for j, name in enumerate(names) if matches(name)), None)
        if index is None and column == "pw_gpci":  # a file with the floored column only
            index = next((j for j, name in enumerate(names) if "PW GPCI" in name), None)
        if index is None:
            raise FeeFileError(cells.name, cells.lines[header], label, "required column is missing")
        positions[column] = index
        shown[column] = " ".join(header_cells[index].split())

    has_title = any(not _is_blank(row) for row in cells.rows[:header])
    if has_title:
        title, _, title_line = _title(cells, header)
        _check_year(cells, title, title_line, year)
    else:  # a re-export without the title line: the year is in the column names
        title = (
            f"CY {year} GPCIs by Medicare locality (no title line; work GPCI column: "
            f"{shown['pw_gpci']})"
        )
        _check_year(cells, shown["pw_gpci"], cells.lines[header], year, shown["pw_gpci"])

    frame = _data_frame(cells, header + 1, positions)
    frame = frame.filter(~pl.all_horizontal(pl.col(c) == "" for c in positions))
    # MAC numbers with or without leading zeros (01182 / 1182) key the same locality
    frame = frame.with_columns(pl.col("mac").str.replace(r"^0+(\d)", "$1"))
    # lines with text in the first column only are notes: "MAC Assignments as of ...",
    # "*Work GPCI reflects a 1.5 floor in Alaska ..."
    others = [c for c in positions if positions[c] != min(positions.values())]
    first = next(c for c in positions if c not in others)
    is_note = pl.all_horizontal(pl.col(c) == "" for c in others)
    notes = frame.filter(is_note)
    frame = frame.filter(~is_note)
    if frame.height == 0:
        raise FeeFileError(cells.name, cells.lines[header], None, "no data rows below the header")

    footnotes = (
        notes.select(pl.col(first).str.extract_groups(r"^(\*+)\s*(.*)$"))
        .unnest(first)
        .drop_nulls()
        .unique(subset="1", keep="first", maintain_order=True)
    )
    footnote_text: dict[str, str] = dict(
        zip(footnotes.get_column("1").to_list(), footnotes.get_column("2").to_list(), strict=True)
    )

    marked = pl.col("locality_name").str.extract_groups(_MARKED_NAME)
    frame = frame.with_columns(
        marked.struct.field("1").alias("__plain_name"),
        marked.struct.field("2").fill_null("").alias("__marker"),
    ).with_columns(
        pl.col("__marker")
        .replace_strict(footnote_text, default=None, return_dtype=pl.String())
        .alias("__footnote"),
        (pl.col("mac") + "-" + pl.col("locality_number").str.replace(r"^0+(\d)", "$1")).alias(
            "locality"
        ),
    )

    problems: list[_Problem | None] = [
        _first(frame, pl.col("mac") == "", "mac", shown["mac"], "MAC number is empty"),
        _first(
            frame,
            ~pl.col("locality_number").str.contains(r"^\d{1,9}$"),
            "locality_number",
            shown["locality_number"],
            "locality number is not a whole number",
        ),
        _first(
            frame,
            # a re-export without the title and footnote lines keeps bare markers
            pl.lit(has_title) & (pl.col("__marker") != "") & pl.col("__footnote").is_null(),
            "locality_name",
            shown["locality_name"],
            "footnote marker has no footnote below the table",
        ),
        *_decimal_problems(frame, {c: shown[c] for c in GPCI_DECIMALS}),
        _duplicate_problem(
            frame, ["locality"], "locality_number", shown["locality_number"], "locality"
        ),
    ]
    _raise_first(cells.name, problems)

    frame = _non_negative_numbers(frame, GPCI_DECIMALS)
    return frame.select(
        pl.lit(year, dtype=pl.Int32()).alias("year"),
        "locality",
        "mac",
        pl.col("state").str.to_uppercase(),
        pl.col("locality_number").cast(pl.Int32()),
        pl.coalesce("__plain_name", "locality_name").alias("locality_name"),
        "pw_gpci",
        "pe_gpci",
        "mp_gpci",
        pl.col("__footnote").fill_null("").alias("footnote"),
        pl.lit(title, dtype=pl.String()).alias("release"),
        pl.lit(cells.name, dtype=pl.String()).alias("source_file"),
    )


# -- normalized tables ---------------------------------------------------------------


def _read_table(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    path = Path(path)
    try:
        raw = pl.read_csv(path, infer_schema=False, empty_string_is_null=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"{path}: cannot read the fee table: {exc}") from exc
    missing = [c for c in schema if c not in raw.columns]
    if missing:
        raise ConfigError(f"{path}: fee table lacks column(s) {', '.join(missing)}")
    casts: list[pl.Expr] = []
    for name, dtype in schema.items():
        text = pl.col(name).fill_null("").str.strip_chars()
        if dtype == pl.String():
            casts.append(text)
        elif dtype == pl.Boolean():
            casts.append(text.str.to_lowercase().replace_strict({"true": True, "false": False}))
        elif dtype == pl.Date():
            casts.append(text.str.to_date("%Y-%m-%d"))
        else:
            casts.append(text.cast(dtype))
    try:
        return raw.select(casts)
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"{path}: fee table has a value of the wrong type: {exc}") from exc


def read_pfs_table(path: Path) -> pl.DataFrame:
    """A normalized RVU table written from ``read_pfs`` (CSV), typed as ``PFS_SCHEMA``."""
    return _read_table(path, PFS_SCHEMA)


def read_gpci_table(path: Path) -> pl.DataFrame:
    """A normalized GPCI table written from ``read_gpci`` (CSV), typed as ``GPCI_SCHEMA``."""
    return _read_table(path, GPCI_SCHEMA)


def empty_pfs_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=PFS_SCHEMA)


def empty_gpci_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=GPCI_SCHEMA)
