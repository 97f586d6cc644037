"""What the CMS fee file readers (``cms_pfs``, ``cms_gpci``) share: cells and checks.

A CMS file is read as rows of text cells, each with the 1-based line it starts on (as a
spreadsheet shows it). CSV is the format CMS publishes (UTF-8 or Windows-1252); an
``.xlsx`` copy with the same layout (first sheet) is read the same way. The checks run
over whole columns and ``raise_first`` raises ``FeeFileError`` for the first problem a
reader meets, naming the file, the line and the column. RVUs, GPCIs and the conversion
factor are ``DECIMAL`` (``Decimal(12, 4)``), never float.

``read_fee_table`` reads back a normalized table (the CSV files the readers' frames are
written to, the project's shipped defaults under ``code_rules/pricing/data``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from billing_engine.errors import ConfigError, FeeFileError

DECIMAL = pl.Decimal(12, 4)

LINE = "__line"
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_NUMBER = r"^-?(\d+(\.\d*)?|\.\d+)$"
_FITS = r"^-?\d{0,8}(\.\d{0,4}0*)?$"  # Decimal(12, 4) holds it without rounding


@dataclass(frozen=True)
class Cells:
    """A file's cells as text, with the 1-based line each row starts on."""

    name: str
    rows: list[list[str]]
    lines: list[int]


@dataclass(frozen=True)
class Problem:
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


def _read_xlsx(path: Path) -> Cells:
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
    return Cells(path.name, rows, list(range(1, len(rows) + 1)))


def _read_csv(path: Path) -> Cells:
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
        return Cells(path.name, rows, lines)
    raise FeeFileError(path.name, None, None, f"not UTF-8 or Windows-1252 text: {last_error}")


def read_cells(path: Path) -> Cells:
    if not path.is_file():
        raise FeeFileError(path.name, None, None, f"no such file: {path}")
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx(path)
    return _read_csv(path)


_EOF = "\x1a"  # DOS end-of-file mark; CMS files end with a line holding it


def is_blank(row: list[str]) -> bool:
    return not any(cell.replace(_EOF, "").strip() for cell in row)


def normal(text: str) -> str:
    return " ".join(text.replace(_EOF, "").split()).upper()


def find_title(cells: Cells, before: int) -> tuple[str, int, int]:
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


def check_year(cells: Cells, title: str, line: int, year: int, column: str = "title") -> None:
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


def data_frame(cells: Cells, start: int, columns: dict[str, int]) -> pl.DataFrame:
    """Rows from ``start`` on, the named cells (text, stripped) plus their line."""
    rows = cells.rows[start:]
    data: dict[str, list[str]] = {
        name: [row[index] if index < len(row) else "" for row in rows]
        for name, index in columns.items()
    }
    frame = pl.DataFrame(
        {LINE: cells.lines[start:], **data},
        schema={LINE: pl.Int64(), **dict.fromkeys(columns, pl.String())},
    )
    return frame.with_columns(
        pl.col(name).str.replace_all(_EOF, "", literal=True).str.strip_chars() for name in columns
    )


# -- checks --------------------------------------------------------------------------


def first_problem(
    frame: pl.DataFrame, condition: pl.Expr, column: str, shown: str, problem: str
) -> Problem | None:
    hit = frame.filter(condition).select(LINE, column).head(1)
    if hit.height == 0:
        return None
    line, value = hit.row(0)
    return Problem(int(line), shown, problem, value)


def decimal_problems(frame: pl.DataFrame, names: dict[str, str]) -> list[Problem | None]:
    found: list[Problem | None] = []
    for column, shown in names.items():
        value = pl.col(column)
        numeric = value.str.contains(_NUMBER)
        found.append(first_problem(frame, ~numeric, column, shown, "is not a number"))
        found.append(
            first_problem(frame, numeric & value.str.starts_with("-"), column, shown, "is negative")
        )
        found.append(
            first_problem(
                frame,
                numeric & ~value.str.starts_with("-") & ~value.str.contains(_FITS),
                column,
                shown,
                "has more than 8 digits before or 4 after the decimal point",
            )
        )
    return found


def duplicate_problem(
    frame: pl.DataFrame, keys: list[str], column: str, shown: str, what: str
) -> Problem | None:
    marked = frame.with_columns(
        pl.int_range(pl.len()).over(keys).alias("__nth"),
        pl.col(LINE).first().over(keys).alias("__first_line"),
    )
    hit = marked.filter(pl.col("__nth") > 0).head(1)
    if hit.height == 0:
        return None
    row = hit.row(0, named=True)
    key = "/".join(str(row[k]) for k in keys)
    return Problem(
        int(row[LINE]),
        shown,
        f"duplicate {what} {key} (first on line {row['__first_line']})",
        None,
    )


def raise_first(name: str, problems: Iterable[Problem | None]) -> None:
    real = [p for p in problems if p is not None]
    if real:
        worst = min(real, key=lambda p: p.line)  # the first one a reader meets
        raise FeeFileError(name, worst.line, worst.column, worst.problem, worst.value)


def non_negative_numbers(frame: pl.DataFrame, names: Iterable[str]) -> pl.DataFrame:
    """Cast checked decimal text to Decimal(12, 4) ("-0" becomes 0)."""
    return frame.with_columns(
        pl.col(n).str.strip_prefix("-").cast(DECIMAL, strict=True) for n in names
    )


# -- normalized tables ---------------------------------------------------------------


def read_fee_table(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
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
