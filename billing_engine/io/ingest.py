"""Read an interchange bundle (CSV folder, Parquet folder or .xlsx workbook) and validate it.

Every file is read as text first, so that a value of the wrong type can be reported with
its file, row and column. Validation runs as polars expressions over whole columns (never
a Python loop over rows), then each spec column is cast to the type ``billing_engine.io.schema``
declares. Any problem refuses the whole bundle: ``read_bundle`` raises ``BundleInvalid``
listing every issue found, sorted by file, row and column.

Row numbers are the ones a spreadsheet shows: the header is row 1, the first data row 2.

Input limits (``billing_engine.io.ingest_limits``: earliest and latest date, minutes per
encounter, cell and id length) and NUL characters are checked the same way. A message
never shows the value of a PHI column (``Column.phi``), nor a CSV file's raw content.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import polars as pl

from billing_engine.errors import BundleInvalid, InputIssue
from billing_engine.io.bundle import Bundle
from billing_engine.io.ingest_limits import (
    ID_SUFFIX,
    MAX_VALUE_LIMITS,
    OPEN_ENDED_DATES,
    PREFIX,
    InputLimits,
)
from billing_engine.io.ingest_limits import default_limits as default_input_limits
from billing_engine.io.overlap import OTHER, overlapping_coverages
from billing_engine.io.schema import DECIMAL_DTYPE, TABLES, ColType, Column, Table

ROW = "__row__"
"""Column of a raw frame holding each row's spreadsheet row number (optional)."""

_TYPED = "__typed__"  # suffix of the parsed copy of a column during validation
_HELD = "__held__"  # suffix of a column's flag: the cell is unsafe or beyond a limit
_FIRST_DATA_ROW = 2

_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIME_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_INT_RE = r"^-?[0-9]+$"
_DECIMAL_RE = r"^-?([0-9]{1,14}(\.[0-9]{0,4})?|\.[0-9]{1,4})$"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NPI_RE = r"^[0-9]{10}$"
# letter, digit, alphanumeric, then an optional dot and up to 4 alphanumerics
_ICD10_RE = r"^[A-Z][0-9][A-Z0-9](\.[A-Z0-9]{1,4}|[A-Z0-9]{0,4})$"

_TYPE_PROBLEMS: dict[ColType, str] = {
    ColType.DATE: "not a date (expected YYYY-MM-DD)",
    ColType.TIME: "not a time (expected HH:MM, 24-hour)",
    ColType.INT: "not a whole number",
    ColType.BOOL: "not true/false",
    ColType.DECIMAL: "not a decimal number (at most 4 decimal places)",
    ColType.FLOAT: "not a number",
    ColType.ICD10: "not an ICD-10-CM code (e.g. E11.9 or E119)",
}

# (table, earlier date column, later date column): the later one may not precede the earlier.
DATE_ORDER: tuple[tuple[str, str, str], ...] = (
    ("coverages", "start_date", "end_date"),
    ("discharges", "admit_date", "discharge_date"),
    ("conditions", "onset_date", "resolved_date"),
    ("fee_schedule", "effective_from", "effective_to"),
    ("payer_codes", "effective_from", "effective_to"),
    ("capitation", "effective_from", "effective_to"),
    ("attributions", "start_date", "end_date"),
    ("patients", "birth_date", "death_date"),
)

# (table, date column) of what happens to a patient: never before birth nor after death.
PATIENT_EVENT_DATES: tuple[tuple[str, str], ...] = (
    ("encounters", "date"),
    ("consents", "obtained_date"),
    ("care_plans", "date"),
    ("discharges", "admit_date"),
    ("discharges", "discharge_date"),
    ("measurements", "date"),
    ("referrals", "date"),
)

# (table, column) whose practitioner must have an NPI because it bills under it.
BILLING_PRACTITIONER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("encounters", "billing_practitioner_id"),
    ("consents", "billing_practitioner_id"),
)

# Tables where two rows of the same identity (natural key, plus the optional key columns
# where given) must agree: rows that differ are refused, naming both (a denied claim and
# its paid resubmission are two claims: they need their claim_ids). Exact repeats collapse.
CONFLICTING_DUPLICATES: tuple[str, ...] = ("claims_history",)

_READ_ERRORS = (OSError, ValueError, KeyError, zipfile.BadZipFile, pl.exceptions.PolarsError)

StoredRows = Callable[[str, Sequence[str]], pl.DataFrame]
"""The current stored rows of a table, ``columns`` only, typed per the schema (list
columns excepted): what an incremental bundle is checked against besides itself. Given
by the caller (``billing import`` reads the store), so ingest never imports the store."""


class RawTable(NamedTuple):
    """One table as read: its file label and a frame of text cells (plus optional ROW)."""

    file: str
    frame: pl.DataFrame


class RawBundle(NamedTuple):
    """Everything read from a bundle's files, before validation."""

    tables: dict[str, RawTable]
    issues: list[InputIssue]  # files or headers that could not be read
    file_for: Callable[[str], str]  # the file (or sheet) a table would come from
    unreadable: frozenset[str]  # tables whose file exists but could not be read
    # (file, row, column) of cells whose problem is reported already (a workbook formula
    # without a cached value): validation's issues about them are left out
    explained: frozenset[tuple[str, int | None, str | None]] = frozenset()
    # tables whose file was scanned whole and holds no NUL byte (their cells need no check)
    nul_free: frozenset[str] = frozenset()


def _csv_file(table: str) -> str:
    return f"{table}.csv"


# --------------------------------------------------------------------------- public API


def read_bundle(
    path: Path,
    limits: InputLimits | None = None,
    *,
    stored: StoredRows | None = None,
    snapshot: bool = False,
) -> Bundle:
    """Read and validate the bundle at ``path``; raise ``BundleInvalid`` on any problem.

    ``limits`` are the input limits to check (default: ``ingest_limits.yaml``'s).
    ``stored`` makes it an incremental bundle for a store (see ``validate_frames``);
    ``snapshot``: the tables the bundle holds replace the stored ones, so their stored
    rows satisfy nothing.
    """
    path = Path(path)
    raw = read_raw(path)
    frames, problems = validate_frames(
        raw.tables,
        missing_file=raw.file_for,
        unreadable=raw.unreadable,
        stored=stored,
        replaced=frozenset(raw.tables) | raw.unreadable if snapshot else frozenset(),
        limits=limits,
        nul_free=raw.nul_free,
    )
    problems = [i for i in problems if (i.file, i.row, i.column) not in raw.explained]
    issues = sort_issues([*raw.issues, *problems])
    if issues:
        raise BundleInvalid(str(path), issues)
    return Bundle.from_frames(frames, source=str(path))


def read_raw(path: Path) -> RawBundle:
    """Read every table at ``path`` as text, with the problems met while reading.

    Raises ``BundleInvalid`` at once when ``path`` itself cannot be opened as a bundle.
    """
    if path.is_dir():
        return _read_folder(path)
    if path.is_file() and path.suffix.lower() == ".xlsx":
        return _read_workbook(path)
    problem = (
        "no such file or folder"
        if not path.exists()
        else "not a bundle: expected a folder of CSV or Parquet files, or an .xlsx workbook"
    )
    raise BundleInvalid(str(path), [InputIssue(path.name, None, None, problem)])


def validate_frames(
    raw: Mapping[str, tuple[str, pl.DataFrame]],
    missing_file: Callable[[str], str] = _csv_file,
    unreadable: Collection[str] = (),
    stored: StoredRows | None = None,
    replaced: Collection[str] = (),
    limits: InputLimits | None = None,
    nul_free: Collection[str] = (),
) -> tuple[dict[str, pl.DataFrame], list[InputIssue]]:
    """Validate text frames and return them typed per the schema, with every issue found.

    ``raw`` maps table name to (file label, frame). Frame cells are text (other column
    types are turned into text first, as for Parquet); an optional ``ROW`` column gives
    each row's spreadsheet row number, else data row i (0-based) is row i + 2. Tables
    whose name is not an interchange table are ignored. The typed frames hold every spec
    column (cast to ``Column.dtype``) followed by the extra columns as text.

    A required table absent from ``raw`` is reported under ``missing_file(name)`` unless
    it is in ``unreadable`` (its file exists and its problem is reported already); no
    reference into an unreadable table is checked. ``limits`` are the input limits
    (default: ``ingest_limits.yaml``'s). Tables in ``nul_free`` are known to hold no NUL
    character (their source file was scanned), so their cells are not searched for one.

    With ``stored`` (an incremental bundle for a store) the store's current rows count
    too, except those of the ``replaced`` tables (a snapshot replaces them): a reference
    the bundle does not satisfy may name a stored row, a required table may be absent
    when the store holds rows of it, and a coverage may not overlap a stored coverage of
    the same patient and payer that the bundle leaves in place. ``stored`` is asked only
    for what the bundle itself cannot answer, and never when ``raw`` holds no table.
    """
    limits = limits or default_input_limits()
    known = _Stored(stored, replaced) if stored is not None and raw else None
    missing = [
        missing_file(name)
        for name, table in TABLES.items()
        if table.required_table
        and name not in raw
        and name not in unreadable
        and (known is None or not known.holds(name))
    ]
    issues = [InputIssue(file, None, None, "required table is missing") for file in missing]
    work: dict[str, pl.DataFrame] = {}
    present: dict[str, set[str]] = {}
    labels: dict[str, str] = {}
    for name, (label, frame) in raw.items():
        if name not in TABLES:
            continue
        table = TABLES[name]
        text, text_issues = stringify(label, _with_row_numbers(frame))
        issues.extend(text_issues)
        present[name] = set(text.columns)
        issues.extend(_missing_column_issues(label, table, present[name]))
        work[name] = _parse_table(table, text, limits, nul_check=name not in nul_free)
        labels[name] = label
    checks = [
        check
        for name, frame in work.items()
        for check in _table_checks(TABLES[name], labels[name], frame.lazy(), present[name], limits)
    ]
    skip = {name for name in TABLES if missing_file(name) in missing} | set(unreadable)
    checks.extend(_cross_table_checks(work, labels, skip, known))
    checks.extend(_patient_life_checks(work, labels))
    issues.extend(_collect_issues(checks))
    typed = {name: _typed_output(TABLES[name], frame) for name, frame in work.items()}
    return typed, sort_issues(issues)


def sort_issues(issues: Iterable[InputIssue]) -> list[InputIssue]:
    """Issues in report order: file, row (whole-file problems first), column, problem."""
    return sorted(
        issues, key=lambda i: (i.file, -1 if i.row is None else i.row, i.column or "", i.problem)
    )


def valid_npi(npi: pl.Expr) -> pl.Expr:
    """True where the text is 10 digits whose last is the Luhn check digit over 80840 + 9 digits.

    CMS: double every other digit of the 9-digit base starting with the first, sum the
    digits of the results and of the other digits, add 24 (the 80840 prefix's share); the
    check digit brings the total to a multiple of 10. Null in, null out.
    """
    number = pl.when(npi.str.contains(_NPI_RE)).then(npi).cast(pl.Int64, strict=False)
    total: pl.Expr = pl.lit(24, dtype=pl.Int64)
    for position in range(10):
        digit = (number // 10 ** (9 - position)) % 10
        if position < 9 and position % 2 == 0:
            digit = pl.when(digit * 2 > 9).then(digit * 2 - 9).otherwise(digit * 2)
        total = total + digit
    return npi.str.contains(_NPI_RE) & (total % 10 == 0)


# --------------------------------------------------------------------------- reading


def _read_folder(folder: Path) -> RawBundle:
    tables: dict[str, RawTable] = {}
    issues: list[InputIssue] = []
    seen: dict[str, str] = {}
    readers = {".csv": _read_csv, ".parquet": _read_parquet}
    inside = folder.resolve()
    for file in sorted(folder.iterdir()):
        reader = readers.get(file.suffix.lower())
        if reader is None or file.stem not in TABLES:
            continue
        if file.is_symlink() and not file.resolve().is_relative_to(inside):
            problem = "a symbolic link to a file outside the bundle folder (copy the file in)"
            issues.append(InputIssue(file.name, None, None, problem))
            seen.setdefault(file.stem, file.name)
            continue
        if not file.is_file():
            continue
        if file.stem in seen:
            problem = f"table given twice (also {seen[file.stem]})"
            issues.append(InputIssue(file.name, None, None, problem))
            continue
        seen[file.stem] = file.name
        frame, file_issues = reader(file)
        issues.extend(file_issues)
        if frame is not None:
            tables[file.stem] = RawTable(file.name, frame)
    parquet_only = bool(seen) and all(name.endswith(".parquet") for name in seen.values())
    suffix = ".parquet" if parquet_only else ".csv"
    unreadable = frozenset(seen) - set(tables)
    nul_free = frozenset(
        name
        for name, raw in tables.items()
        if raw.file.endswith(".csv") and _holds_no_nul(folder / raw.file)
    )
    file_for = lambda table: f"{table}{suffix}"  # noqa: E731
    return RawBundle(tables, issues, file_for, unreadable, nul_free=nul_free)


def _holds_no_nul(file: Path) -> bool:
    """Whether a file holds no NUL byte (one memchr over a memory map: no per-cell search)."""
    import mmap

    with file.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return True
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"\x00") == -1


def _read_csv(file: Path) -> tuple[pl.DataFrame | None, list[InputIssue]]:
    """A UTF-8 CSV file with a header row, every cell as text."""
    try:
        header = _csv_header(file)
    except UnicodeDecodeError as error:
        return None, _csv_failure(file, 0, error)
    except (OSError, csv.Error) as error:
        return None, [InputIssue(file.name, None, None, f"cannot read the file ({error})")]
    if not header:
        return None, [InputIssue(file.name, None, None, "file is empty (no header row)")]
    try:
        frame = pl.read_csv(
            file,
            has_header=True,
            infer_schema=False,
            new_columns=_positions(len(header)),
            encoding="utf8",
        )
    except pl.exceptions.PolarsError as error:
        return None, _csv_failure(file, len(header), error)
    return _apply_header(file.name, header, frame.with_row_index(ROW, offset=_FIRST_DATA_ROW))


def _csv_header(file: Path) -> list[str]:
    with file.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def _csv_failure(file: Path, width: int, error: Exception) -> list[InputIssue]:
    """Explain why polars could not read a CSV file (only runs when reading failed).

    The explanation names the row (and line) but never repeats the file's content: a
    reader's own message quotes the raw row, names and birth dates included.
    """
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return [_not_utf8(file, data.count(b"\n", 0, bad.start) + 1)]
    quoting = _quoting_problem(file.name, text)
    if quoting is not None:
        return [quoting]
    ragged = list(_ragged_rows(file, width))
    if ragged:
        return ragged
    message = (str(error).strip().splitlines() or [""])[0].split("`")[0].strip(" :")
    shown = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return [InputIssue(file.name, None, None, f"cannot read the file as CSV ({shown})")]


# The cells of one CSV record (RFC 4180): each quoted (a quote inside doubled) or quote-free.
_CSV_CELL = r'(?:"(?:[^"]|"")*"|[^",\r\n]*)'
_CSV_CELLS = re.compile(_CSV_CELL + r"(?:," + _CSV_CELL + r")*")


def _quoting_problem(name: str, text: str) -> InputIssue | None:
    """The first record whose quotes are broken: a quoted cell never closed, or a stray quote.

    Scans record by record with one regular expression (only when reading failed).
    """
    position, row = (1 if text.startswith("\ufeff") else 0), 1
    while position < len(text):
        stop = _CSV_CELLS.match(text, position).end()  # type: ignore[union-attr]
        if stop < len(text) and text[stop] not in "\r\n":
            line = text.count("\n", 0, stop) + 1
            opens_a_cell = text[stop] == '"' and (stop == position or text[stop - 1] == ",")
            problem = (
                f"a quoted cell opened on line {line} is never closed (unbalanced quote)"
                if opens_a_cell
                else f"a stray quote on line {line}: quote the whole cell and double each"
                " quote inside it"
            )
            return InputIssue(name, row, None, problem)
        newline = 2 if text.startswith("\r\n", stop) else 1
        position, row = stop + newline, row + 1
    return None


def _ragged_rows(file: Path, width: int) -> Iterator[InputIssue]:
    with file.open(encoding="utf-8-sig", newline="") as handle:
        try:
            for row, cells in enumerate(csv.reader(handle), start=1):
                if len(cells) > width:
                    problem = f"row has {len(cells)} cells but the header {width}"
                    yield InputIssue(file.name, row, None, problem)
        except csv.Error:
            return  # a cell too large for the csv module: the generic message follows


def _not_utf8(file: Path, row: int | None = None) -> InputIssue:
    return InputIssue(file.name, row, None, "not UTF-8 text (save the file as CSV UTF-8)")


def _read_parquet(file: Path) -> tuple[pl.DataFrame | None, list[InputIssue]]:
    try:
        frame = pl.read_parquet(file)
    except _READ_ERRORS as error:
        return None, [InputIssue(file.name, None, None, f"cannot read the file ({error})")]
    header: list[str | None] = list(frame.columns)
    frame = frame.rename(dict(zip(frame.columns, _positions(frame.width), strict=True)))
    return _apply_header(file.name, header, frame.with_row_index(ROW, offset=_FIRST_DATA_ROW))


def _read_workbook(book: Path) -> RawBundle:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(book, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        issue = InputIssue(book.name, None, None, f"cannot read the workbook ({error})")
        raise BundleInvalid(str(book), [issue]) from error
    tables: dict[str, RawTable] = {}
    issues: list[InputIssue] = []
    seen: set[str] = set()
    formulas = _formula_cells(book) if _has_formulas(book) else {}
    try:
        for sheet in workbook.worksheets:
            name = str(sheet.title).strip()
            if name not in TABLES or name in seen:
                continue
            seen.add(name)
            label = _sheet_label(book, name)
            sheet.reset_dimensions()
            frame, sheet_issues = _sheet_frame(
                label, sheet.iter_rows(values_only=True), formulas.get(str(sheet.title), ())
            )
            issues.extend(sheet_issues)
            if frame is not None:
                tables[name] = RawTable(label, frame)
    finally:
        workbook.close()
    unreadable = frozenset(seen - set(tables))
    explained = frozenset(
        (i.file, i.row, i.column) for i in issues if i.problem == _NO_CACHED_VALUE if i.row
    )
    return RawBundle(tables, issues, lambda table: _sheet_label(book, table), unreadable, explained)


_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")


def _has_formulas(book: Path) -> bool:
    """Whether any worksheet of the workbook holds a formula (a scan of its XML parts)."""
    with zipfile.ZipFile(book) as archive:
        return any(
            _FORMULA_TAG.search(archive.read(part))
            for part in archive.namelist()
            if part.startswith("xl/worksheets/") and part.endswith(".xml")
        )


def _formula_cells(book: Path) -> dict[str, frozenset[tuple[int, int]]]:
    """(row, column) of every formula cell, 1-based, by sheet title."""
    import openpyxl

    workbook = openpyxl.load_workbook(book, read_only=True, data_only=False)
    found: dict[str, frozenset[tuple[int, int]]] = {}
    try:
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()
            found[str(sheet.title)] = frozenset(
                (cell.row, cell.column)
                for row in sheet.iter_rows()
                for cell in row
                if getattr(cell, "data_type", None) == "f"
            )
    finally:
        workbook.close()
    return found


def _sheet_label(book: Path, table: str) -> str:
    return f"{book.name}[{table}]"


def _sheet_frame(
    label: str, rows: Iterator[Sequence[object]], formulas: Collection[tuple[int, int]] = ()
) -> tuple[pl.DataFrame | None, list[InputIssue]]:
    """Turn a sheet's rows of cell values into a frame of text cells.

    ``formulas`` are the (row, column) of the sheet's formula cells: one read as empty
    has no cached value and is reported (it is not silently an empty cell).
    """
    first = next(rows, None)
    if first is None or all(_cell_text(v) is None for v in first):
        return None, [InputIssue(label, None, None, "sheet is empty (no header row)")]
    data = [[_cell_text(v) for v in row] for row in rows]
    width = max([len(first), *(len(row) for row in data)])
    header = [_cell_text(v) for v in first] + [None] * (width - len(first))
    columns = {
        position: [row[i] if i < len(row) else None for row in data]
        for i, position in enumerate(_positions(width))
    }
    frame = pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))
    frame, issues = _apply_header(label, header, frame.with_row_index(ROW, offset=_FIRST_DATA_ROW))
    for row, column in sorted(formulas):
        if row - _FIRST_DATA_ROW >= len(data):
            continue
        cells = first if row == 1 else data[row - _FIRST_DATA_ROW]
        if column <= len(cells) and cells[column - 1] is None:
            name = (header[column - 1] or "").strip() if row > 1 else ""
            issues.append(InputIssue(label, row, name or None, _NO_CACHED_VALUE))
    return frame, issues


_NO_CACHED_VALUE = (
    "formula without a cached value; open and save the workbook in Excel or export values"
)


def _cell_text(value: object) -> str | None:
    """A workbook cell as the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _positions(width: int) -> list[str]:
    return [f"__col{i}__" for i in range(width)]


def _apply_header(
    label: str, header: Sequence[str | None], frame: pl.DataFrame
) -> tuple[pl.DataFrame, list[InputIssue]]:
    """Name a frame's positional columns after the header, reporting unusable headers.

    A repeated name is an error (the first column keeps it); a column without a name is
    dropped when it is empty and an error when it holds values.
    """
    issues: list[InputIssue] = []
    names: dict[str, str] = {}
    for position, raw_name in zip(_positions(len(header)), header, strict=True):
        name = (raw_name or "").strip()
        if not name:
            if _has_values(frame, position):
                issues.append(InputIssue(label, 1, None, "a column with values has no header"))
        elif name in names.values():
            issues.append(InputIssue(label, 1, name, "column appears more than once in the header"))
        else:
            names[position] = name
    return frame.select(ROW, *(pl.col(p).alias(n) for p, n in names.items())), issues


def _has_values(frame: pl.DataFrame, column: str) -> bool:
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return bool(frame.select((text.str.len_bytes() > 0).any()).item())


# --------------------------------------------------------------------------- text and types


def _with_row_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    if ROW in frame.columns:
        return frame.with_columns(pl.col(ROW).cast(pl.Int64))
    return frame.with_row_index(ROW, offset=_FIRST_DATA_ROW).with_columns(
        pl.col(ROW).cast(pl.Int64)
    )


def stringify(label: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[InputIssue]]:
    """Turn every (non-ROW) column into text the way a CSV export would write it.

    Dates become ISO dates (datetimes keep their date), times HH:MM, booleans true/false,
    whole floats whole numbers, lists ';'-joined. Columns of other kinds are reported.
    """
    issues: list[InputIssue] = []
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if name == ROW:
            exprs.append(pl.col(ROW))
            continue
        expr = _as_text(pl.col(name), dtype)
        if expr is None:
            problem = (
                f"unsupported column type {dtype.base_type()!s}"
                " (use text, numbers, dates, times or booleans)"
            )
            issues.append(InputIssue(label, None, name, problem))
        else:
            exprs.append(expr.alias(name))
    return frame.select(exprs), issues


def _as_text(col: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if dtype == pl.String:
        return col
    if dtype == pl.Datetime:
        return col.dt.date().cast(pl.String)
    if dtype == pl.Time:
        return col.dt.to_string("%H:%M")
    if dtype == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    if dtype.is_float():
        whole = col.is_finite() & (col == col.round(0)) & (col.abs() < 1e15)
        return (
            pl.when(whole)
            .then(col.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(col.cast(pl.String))
        )
    if isinstance(dtype, pl.List) and (dtype.inner == pl.String or dtype.inner.is_numeric()):
        return col.list.eval(pl.element().cast(pl.String)).list.join(";")
    if dtype.is_numeric() or dtype in (pl.Date, pl.Null, pl.Categorical) or dtype == pl.Enum:
        return col.cast(pl.String)
    return None


def _normalize(frame: pl.LazyFrame, cells: Sequence[str]) -> pl.LazyFrame:
    """Strip every cell, make empty cells null and drop rows that are entirely empty."""
    if not cells:
        return frame.clear()
    return (
        frame.with_columns(pl.col(cells).str.strip_chars())
        .with_columns(
            pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in cells
        )
        .filter(pl.any_horizontal(pl.col(c).is_not_null() for c in cells))
    )


def _parse_table(
    table: Table, text: pl.DataFrame, limits: InputLimits, nul_check: bool = True
) -> pl.DataFrame:
    """Normalized text cells plus each spec column parsed as ``<name>__typed__``.

    Spec columns absent from the source are added as empty text first; a parsed value
    is null where the text is empty or invalid. Every cell also gets ``<name>__held__``:
    true where it is unsafe or beyond an input limit (``_held``). Such a cell has no
    parsed value either, so its only issue is its own, never a broken reference, a
    duplicate or a date order echoing it. ``nul_check=False``: the source is known to
    hold no NUL character.
    """
    cells = [c for c in text.columns if c != ROW]
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in table.column_names if c not in cells]
    names = [*cells, *(c for c in table.column_names if c not in cells)]
    return (
        _normalize(text.lazy(), cells)
        .with_columns(missing)
        .with_columns(_parse(c).alias(c.name + _TYPED) for c in table.columns)
        .with_columns(_held(table, name, limits, nul_check).alias(name + _HELD) for name in names)
        .with_columns(
            pl.when(~pl.col(c.name + _HELD)).then(_typed(c.name)).alias(c.name + _TYPED)
            for c in table.columns
        )
        .collect()
    )


def _held(table: Table, name: str, limits: InputLimits, nul_check: bool = True) -> pl.Expr:
    """True where a cell is unsafe or beyond a limit (``_held_problem`` says which).

    Evaluated on every cell: two string kernels per column, and two date comparisons
    on the parsed value of a date column.
    """
    rules = _held_rules(table, name, limits, nul_check=nul_check)
    return pl.any_horizontal(c for c, _ in rules).fill_null(False)


def _held_problem(table: Table, name: str, limits: InputLimits) -> pl.Expr:
    """The problem of a held cell (only evaluated on the rows found held)."""
    found: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, problem in reversed(_held_rules(table, name, limits, parsed=True)):
        found = pl.when(condition).then(pl.lit(problem)).otherwise(found)  # first rule wins
    return found


def _echoable(name: str, limits: InputLimits) -> pl.Expr:
    """Whether a cell may be shown in a message: never a NUL character, a huge cell or id."""
    text = pl.col(name)
    longest = limits.max_cell_chars
    if _is_id(name):
        longest = min(longest, limits.max_id_chars)
    return ~text.str.contains("\x00", literal=True) & (text.str.len_chars() <= longest)


def _held_rules(
    table: Table, name: str, limits: InputLimits, parsed: bool = False, nul_check: bool = True
) -> list[tuple[pl.Expr, str]]:
    """(condition, problem): a NUL character, a cell or id too long, a date beyond the limits.

    Date conditions use the parsed date (``parsed``: parse the text again, for rows whose
    parsed value has been nulled). ``nul_check=False`` leaves the NUL search out.
    """
    text = pl.col(name)
    length = text.str.len_chars()
    nul = "contains a NUL character (byte 0), which cannot be stored; remove it"
    rules = [(text.str.contains("\x00", literal=True), nul)] if nul_check else []
    if _is_id(name):
        limit = limits.max_id_chars
        rules.append(
            (length > limit, f"id is longer than {limit} characters ({PREFIX}max_id_chars)")
        )
    limit = limits.max_cell_chars
    rules.append(
        (length > limit, f"cell is longer than {limit} characters ({PREFIX}max_cell_chars)")
    )
    if name in table.column_names and table.column(name).type == ColType.DATE:
        date = _parse(table.column(name)) if parsed else _typed(name)
        first, last = limits.earliest_date, limits.latest_date
        earliest = f"date before {first}, the earliest accepted ({PREFIX}earliest_date)"
        rules.append((date < first, earliest))
        if (table.name, name) not in OPEN_ENDED_DATES:
            latest = f"date after {last}, the latest accepted ({PREFIX}latest_date)"
            rules.append((date > last, latest))
    return rules


def _is_id(name: str) -> bool:
    return name.endswith(ID_SUFFIX)


def _parse(column: Column) -> pl.Expr:
    """The typed value of a text column: null where the text is empty or invalid."""
    text = pl.col(column.name)
    parsed: pl.Expr
    match column.type:
        case ColType.DATE:
            parsed = pl.when(text.str.contains(_DATE_RE)).then(
                text.str.to_date("%Y-%m-%d", strict=False)
            )
        case ColType.TIME:
            parsed = pl.when(text.str.contains(_TIME_RE)).then(
                text.str.to_time("%H:%M", strict=False)
            )
        case ColType.INT:
            parsed = pl.when(text.str.contains(_INT_RE)).then(text.cast(pl.Int64, strict=False))
        case ColType.BOOL:
            lower = text.str.to_lowercase()
            parsed = (
                pl.when(lower == "true")
                .then(pl.lit(True))
                .when(lower == "false")
                .then(pl.lit(False))
            )
        case ColType.DECIMAL:
            parsed = pl.when(text.str.contains(_DECIMAL_RE)).then(
                text.cast(DECIMAL_DTYPE, strict=False)
            )
        case ColType.FLOAT:
            number = text.cast(pl.Float64, strict=False)
            parsed = pl.when(text.str.contains(_FLOAT_RE) & number.is_finite()).then(number)
        case ColType.LIST:
            items = text.str.split(";").list.eval(pl.element().str.strip_chars())
            items = items.list.eval(pl.element().filter(pl.element().str.len_bytes() > 0))
            parsed = pl.when(items.list.len() > 0).then(items)
        case ColType.ENUM if column.enum:
            parsed = pl.when(text.is_in(column.enum)).then(text)
        case ColType.NPI:
            parsed = pl.when(valid_npi(text)).then(text)
        case ColType.ICD10:
            upper = text.str.to_uppercase()
            parsed = pl.when(upper.str.contains(_ICD10_RE)).then(upper)
        case ColType.STR if column.pattern:
            parsed = pl.when(text.str.contains(column.pattern)).then(text)
        case _:
            parsed = text
    return parsed.cast(column.dtype)


def _typed_output(table: Table, work: pl.DataFrame) -> pl.DataFrame:
    spec = set(table.column_names)
    extras = [
        c
        for c in work.columns
        if c != ROW and c not in spec and not c.endswith(_TYPED) and not c.endswith(_HELD)
    ]
    return work.select(
        *(pl.col(c + _TYPED).alias(c) for c in table.column_names), *(pl.col(c) for c in extras)
    )


# --------------------------------------------------------------------------- checks


class _Check(NamedTuple):
    """Rows of ``frame`` where ``bad`` holds are issues with ``problem`` and ``value``.

    ``phi``: the column is protected health information; the value is never printed and
    ``problem`` must not contain it.
    """

    frame: pl.LazyFrame
    file: str
    column: str
    bad: pl.Expr
    problem: pl.Expr
    value: pl.Expr
    phi: bool = False


def _missing_column_issues(label: str, table: Table, present: set[str]) -> list[InputIssue]:
    return [
        InputIssue(label, None, c.name, "required column is missing")
        for c in table.columns
        if c.required and c.name not in present
    ]


def _typed(name: str) -> pl.Expr:
    return pl.col(name + _TYPED)


def _table_checks(
    table: Table, label: str, frame: pl.LazyFrame, present: set[str], limits: InputLimits
) -> list[_Check]:
    checks = []
    for column in table.columns:
        held = pl.col(column.name + _HELD)
        found = _cell_problem(table, column, present, limits)
        problem = pl.when(held).then(_held_problem(table, column.name, limits)).otherwise(found)
        value = pl.when(_echoable(column.name, limits)).then(pl.col(column.name))
        bad = held | found.is_not_null()
        checks.append(_Check(frame, label, column.name, bad, problem, value, column.phi))
    for name in sorted(present - {ROW, *table.column_names}):  # extra columns are kept too
        problem = _held_problem(table, name, limits)
        no_value = pl.lit(None, pl.String)
        checks.append(_Check(frame, label, name, pl.col(name + _HELD), problem, no_value))
    checks.extend(_duplicate_key_checks(table, label, frame))
    checks.extend(_conflicting_duplicate_checks(table, label, frame))
    checks.extend(_date_order_checks(table, label, frame))
    return checks


def _cell_problem(table: Table, column: Column, present: set[str], limits: InputLimits) -> pl.Expr:
    """One expression giving each cell's problem (null when the cell is fine).

    A held cell (``_held``) is not this expression's: its problem is ``_held_problem``'s.
    """
    text, typed = pl.col(column.name), _typed(column.name)
    empty = typed.is_null() if column.type == ColType.LIST else text.is_null()
    rules: list[tuple[pl.Expr, pl.Expr]] = []
    if column.required and column.name in present:
        rules.append((empty, pl.lit("required value is empty")))
    elif column.required_when is not None and column.required_when[0] in table.column_names:
        other, values = column.required_when
        rules.append(
            (
                empty & _typed(other).is_in(values),
                pl.concat_str(pl.lit(f"required when {other} is "), _typed(other)),
            )
        )
    rules.append((text.is_not_null() & typed.is_null() & ~empty, _type_problem(column)))
    if column.min_value is not None:
        rules.append(
            (typed < column.min_value, pl.lit(f"{column.name} must be {column.min_value} or more"))
        )
    most = limits.max_value(table.name, column.name)
    if most is not None:
        setting = PREFIX + MAX_VALUE_LIMITS[(table.name, column.name)]
        rules.append((typed > most, pl.lit(f"{column.name} must be {most} or less ({setting})")))
    if column.type == ColType.LIST and column.item_enum:
        unknown = typed.list.eval(pl.element().filter(~pl.element().is_in(column.item_enum)))
        rules.append(
            (
                unknown.list.len() > 0,
                pl.concat_str(
                    pl.lit("unknown item(s) "),
                    unknown.list.join(", "),
                    pl.lit("; expected: " + ", ".join(column.item_enum)),
                ),
            )
        )
    found: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, problem in reversed(rules):  # the first rule that applies wins
        found = pl.when(condition).then(problem).otherwise(found)
    return found


def _type_problem(column: Column) -> pl.Expr:
    if column.type == ColType.NPI:
        digits = pl.col(column.name).str.contains(_NPI_RE)
        return (
            pl.when(digits)
            .then(pl.lit("NPI check digit is wrong"))
            .otherwise(pl.lit("NPI must be exactly 10 digits"))
        )
    if column.type == ColType.ENUM:
        return pl.lit("unknown value; expected one of: " + ", ".join(column.enum))
    if column.pattern:
        return pl.lit("unknown value; expected " + column.pattern_hint)
    return pl.lit(_TYPE_PROBLEMS.get(column.type, "invalid value"))


def _duplicate_key_checks(table: Table, label: str, frame: pl.LazyFrame) -> list[_Check]:
    if not table.key:
        return []
    keys = [_typed(k) for k in table.key]
    key_text = pl.concat_str(keys, separator="/")
    repeated = (
        frame.filter(pl.all_horizontal(k.is_not_null() for k in keys))
        .filter(pl.struct(keys).is_duplicated())
        .with_columns(pl.col(ROW).min().over(keys).alias("__first__"))
    )
    problem = pl.concat_str(
        pl.lit(f"duplicate {'/'.join(table.key)} '"),
        key_text,
        pl.lit("' (first at row "),
        pl.col("__first__").cast(pl.String),
        pl.lit(")"),
    )
    bad = pl.col("__first__") != pl.col(ROW)
    return [_Check(repeated, label, table.key[0], bad, problem, key_text)]


def _date_order_checks(table: Table, label: str, frame: pl.LazyFrame) -> list[_Check]:
    """The later date may not precede the earlier; a PHI earlier date is not shown."""
    checks = []
    for name, earlier, later in DATE_ORDER:
        if name != table.name:
            continue
        problem = (
            pl.lit(f"{later} is before {earlier}")
            if table.column(earlier).phi
            else pl.concat_str(
                pl.lit(f"{later} is before {earlier} ("), pl.col(earlier), pl.lit(")")
            )
        )
        bad = _typed(later) < _typed(earlier)
        phi = table.column(later).phi
        checks.append(_Check(frame, label, later, bad, problem, pl.col(later), phi))
    return checks


def _conflicting_duplicate_checks(table: Table, label: str, frame: pl.LazyFrame) -> list[_Check]:
    """Rows of a ``CONFLICTING_DUPLICATES`` table whose identity repeats an earlier row's
    with other values, reported on the later row naming the first."""
    if table.name not in CONFLICTING_DUPLICATES:
        return []
    identity = [_typed(c).alias(c) for c in table.identity]
    content = pl.struct([_typed(c) for c in table.column_names]).hash()
    first = pl.col(ROW).sort_by(ROW).first().over(identity)
    first_content = content.sort_by(ROW).first().over(identity)
    repeated = frame.filter(pl.all_horizontal(_typed(k).is_not_null() for k in table.natural_key))
    repeated = repeated.with_columns(__first__=first, __differs__=content != first_content)
    named = "/".join(table.natural_key)
    optional = " or ".join(table.optional_key)
    problem = pl.concat_str(
        pl.lit(f"same {named} as row "),
        pl.col("__first__").cast(pl.String),
        pl.lit(f" but other values: two different records need their own {optional}"),
    )
    value = pl.concat_str([_typed(k).cast(pl.String) for k in table.natural_key], separator="/")
    return [_Check(repeated, label, table.natural_key[0], pl.col("__differs__"), problem, value)]


class _Stored:
    """The caller's stored rows, asked once per table and columns, minus replaced tables."""

    def __init__(self, source: StoredRows, replaced: Collection[str]) -> None:
        self._source = source
        self._replaced = frozenset(replaced)
        self._cache: dict[tuple[str, tuple[str, ...]], pl.DataFrame] = {}

    def rows(self, table: str, columns: Sequence[str]) -> pl.DataFrame:
        spec = TABLES[table]
        if table in self._replaced:
            return pl.DataFrame(schema={c: spec.column(c).dtype for c in columns})
        key = (table, tuple(columns))
        if key not in self._cache:
            self._cache[key] = self._source(table, list(columns))
        return self._cache[key]

    @property
    def replaced(self) -> frozenset[str]:
        return self._replaced

    def holds(self, table: str) -> bool:
        spec = TABLES[table]
        return self.rows(table, spec.identity[:1]).height > 0


def _cross_table_checks(
    work: Mapping[str, pl.DataFrame],
    labels: Mapping[str, str],
    skip: Collection[str],
    known: _Stored | None = None,
) -> list[_Check]:
    """References (against the bundle, then the store), billing NPIs, coverage overlaps.

    ``skip``: tables whose absence or unreadability is reported already (no reference
    into them is checked).
    """
    checks: list[_Check] = []
    for name, frame in work.items():
        for ref in TABLES[name].references:
            if ref.table in skip:
                continue
            targets = _target_values(work, ref.table, ref.target)
            referencing = frame.lazy().filter(_typed(ref.column).is_not_null())
            unknown = referencing.join(
                targets, left_on=ref.column + _TYPED, right_on="target", how="anti"
            )
            where = f"not in {ref.table}"
            if known is not None:
                unknown = _not_stored(unknown.collect(), known, ref.column, ref.table, ref.target)
                where += " nor in the store"
            problem = pl.concat_str(
                pl.lit(f"unknown {ref.column} '"),
                pl.col(ref.column),
                pl.lit(f"' ({where})"),
            )
            checks.append(
                _Check(unknown, labels[name], ref.column, pl.lit(True), problem, pl.col(ref.column))
            )
    checks.extend(_billing_npi_checks(work, labels))
    if known is not None:
        checks.extend(_snapshot_orphan_checks(work, labels, known))
    if "coverages" in work:
        checks.extend(_coverage_overlap_checks(work["coverages"], labels["coverages"], known))
    return checks


def _not_stored(
    unknown: pl.DataFrame, known: _Stored, column: str, table: str, target: str
) -> pl.LazyFrame:
    """The rows of ``unknown`` whose reference no current stored row satisfies either."""
    if unknown.height == 0:
        return unknown.lazy()
    stored = known.rows(table, [target]).lazy().select(pl.col(target).alias("target"))
    return unknown.lazy().join(stored, left_on=column + _TYPED, right_on="target", how="anti")


def _snapshot_orphan_checks(
    work: Mapping[str, pl.DataFrame], labels: Mapping[str, str], known: _Stored
) -> list[_Check]:
    """A snapshot may not retire a row that stored rows of a table it leaves alone still
    name (a snapshot of patients alone would leave their stored encounters billing)."""
    checks: list[_Check] = []
    for name, spec in TABLES.items():
        if name in known.replaced:
            continue
        for ref in spec.references:
            if ref.table not in known.replaced or ref.table not in work:
                continue
            named = known.rows(name, [ref.column]).lazy().select(pl.col(ref.column)).drop_nulls()
            targets = _target_values(work, ref.table, ref.target)
            orphans = (
                named.join(targets, left_on=ref.column, right_on="target", how="anti")
                .unique()
                .sort(ref.column)
                .with_columns(pl.lit(None, dtype=pl.Int64).alias(ROW))
            )
            problem = pl.concat_str(
                pl.lit(f"this snapshot no longer holds {ref.target} '"),
                pl.col(ref.column),
                pl.lit(
                    f"' that stored {name} rows still name ({name} is not in the bundle):"
                    f" include {name} in the snapshot, or keep the row"
                ),
            )
            checks.append(
                _Check(orphans, labels[ref.table], ref.target, pl.lit(True), problem, pl.lit(None))
            )
    return checks


_COVERAGE = ("patient_id", "payer_id", "start_date", "end_date")


def _coverage_overlap_checks(
    frame: pl.DataFrame, label: str, known: _Stored | None
) -> list[_Check]:
    """Coverages of one patient and payer that overlap another row of the bundle (reported
    on the later row) or a stored coverage the bundle leaves in place."""
    typed = frame.select(pl.col(ROW), *(_typed(c).alias(c) for c in _COVERAGE))
    ends = pl.col(OTHER + "end_date").cast(pl.String).fill_null("open")
    period = pl.concat_str(pl.col(OTHER + "start_date").cast(pl.String), pl.lit(" to "), ends)
    within = overlapping_coverages(typed, typed).filter(pl.col(ROW) > pl.col(OTHER + ROW))
    problem = pl.concat_str(
        pl.lit("overlaps the coverage at row "),
        pl.col(OTHER + ROW).cast(pl.String),
        pl.lit(" ("),
        period,
        pl.lit(") of the same patient_id and payer_id"),
    )
    value = pl.col("start_date").cast(pl.String)
    checks = [_Check(within.lazy(), label, "start_date", pl.lit(True), problem, value)]
    if known is None or typed.height == 0:
        return checks
    stored = known.rows("coverages", _COVERAGE)
    # a stored coverage the bundle holds again (same key) is replaced by the bundle's row
    kept = stored.join(typed, on=["patient_id", "payer_id", "start_date"], how="anti")
    against = overlapping_coverages(typed, kept)
    problem = pl.concat_str(
        pl.lit("overlaps the stored coverage "),
        period,
        pl.lit(
            " of the same patient_id and payer_id: give that coverage its end_date in this"
            " bundle, or import the bundle as a snapshot (billing import --snapshot)"
        ),
    )
    checks.append(_Check(against.lazy(), label, "start_date", pl.lit(True), problem, value))
    return checks


def _patient_life_checks(
    work: Mapping[str, pl.DataFrame], labels: Mapping[str, str]
) -> list[_Check]:
    """A patient's events (``PATIENT_EVENT_DATES``) lie between birth and death, both included.

    Reported on the event's row; the messages never show the birth or death date (PHI).
    """
    if "patients" not in work:
        return []
    lives = (
        work["patients"]
        .lazy()
        .select(
            _typed("patient_id").alias("__patient__"),
            _typed("birth_date").alias("__birth__"),
            _typed("death_date").alias("__death__"),
        )
        .drop_nulls("__patient__")
        .unique("__patient__")  # a repeated patient_id is reported already
        .collect()
        .lazy()
    )
    checks: list[_Check] = []
    for table, column in PATIENT_EVENT_DATES:
        if table not in work:
            continue
        dated = (
            work[table]
            .lazy()
            .select(ROW, column, column + _TYPED, "patient_id" + _TYPED)
            .filter(_typed(column).is_not_null())
            .join(lives, left_on="patient_id" + _TYPED, right_on="__patient__")
        )
        before = _typed(column) < pl.col("__birth__")
        after = _typed(column) > pl.col("__death__")
        problem = (
            pl.when(before)
            .then(pl.lit(f"{column} is before the patient's birth_date"))
            .otherwise(pl.lit(f"{column} is after the patient's death_date"))
        )
        phi = TABLES[table].column(column).phi
        bad = (before | after).fill_null(False)
        checks.append(_Check(dated, labels[table], column, bad, problem, pl.col(column), phi))
    return checks


def _target_values(work: Mapping[str, pl.DataFrame], table: str, column: str) -> pl.LazyFrame:
    if table not in work:
        return pl.LazyFrame(schema={"target": pl.String})
    return work[table].lazy().select(_typed(column).alias("target")).drop_nulls().unique()


def _billing_npi_checks(
    work: Mapping[str, pl.DataFrame], labels: Mapping[str, str]
) -> list[_Check]:
    """A practitioner named as billing practitioner must have an NPI (reported on its row)."""
    if "practitioners" not in work:
        return []
    named = [
        work[table]
        .lazy()
        .group_by(_typed(column).alias("practitioner"))
        .agg(pl.col(ROW).min().alias("at"))
        .drop_nulls("practitioner")
        .with_columns(
            pl.lit(labels[table]).alias("file"),
            pl.concat_str(pl.lit(f"{labels[table]}, row "), pl.col("at").cast(pl.String)).alias(
                "where"
            ),
        )
        for table, column in BILLING_PRACTITIONER_COLUMNS
        if table in work
    ]
    if not named:
        return []
    first_use = (
        pl.concat(named).group_by("practitioner").agg(pl.col("where").sort_by("at", "file").first())
    )
    practitioners = work["practitioners"].lazy().filter(pl.col("npi").is_null())
    lacking = practitioners.join(
        first_use, left_on="practitioner_id" + _TYPED, right_on="practitioner"
    )
    problem = pl.concat_str(
        pl.lit("billing practitioner has no NPI (named in "), pl.col("where"), pl.lit(")")
    )
    return [_Check(lacking, labels["practitioners"], "npi", pl.lit(True), problem, pl.col("npi"))]


def _collect_issues(checks: Sequence[_Check]) -> list[InputIssue]:
    if not checks:
        return []
    found = pl.concat(
        [
            check.frame.filter(check.bad).select(
                pl.lit(check.file).alias("file"),
                pl.col(ROW).cast(pl.Int64).alias("row"),
                pl.lit(check.column).alias("column"),
                check.problem.cast(pl.String).alias("problem"),
                check.value.cast(pl.String).alias("value"),
                pl.lit(check.phi).alias("phi"),
            )
            for check in checks
        ]
    ).collect()
    return [InputIssue(*row) for row in found.iter_rows()]
