"""Read a bundle's files as text: a folder of CSV or Parquet files, or an .xlsx workbook.

Every cell is read as text (``billing_engine.io.cells`` parses it later), each row keeps
the row number a spreadsheet shows (the header is row 1, the first data row 2) in the
``ROW`` column, and a file that cannot be read is reported, never its raw content.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import polars as pl

from billing_engine.errors import BundleInvalid, InputIssue
from billing_engine.io.schema import TABLES

ROW = "__row__"
"""Column of a raw frame holding each row's spreadsheet row number (optional)."""

FIRST_DATA_ROW = 2

_READ_ERRORS = (OSError, ValueError, KeyError, zipfile.BadZipFile, pl.exceptions.PolarsError)


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
    # tables whose file was scanned whole and holds no byte of a cell's leading or
    # trailing white space (``_tidy_bytes``): no cell of theirs needs stripping
    tidy: frozenset[str] = frozenset()


def csv_file(table: str) -> str:
    return f"{table}.csv"


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
    scanned = {
        name: _scan_bytes(folder / raw.file)
        for name, raw in tables.items()
        if raw.file.endswith(".csv")
    }
    nul_free = frozenset(name for name, (no_nul, _) in scanned.items() if no_nul)
    tidy = frozenset(name for name, (_, clean) in scanned.items() if clean)
    file_for = lambda table: f"{table}{suffix}"  # noqa: E731
    return RawBundle(tables, issues, file_for, unreadable, nul_free=nul_free, tidy=tidy)


# Bytes without which no CSV cell can begin or end with white space (what
# ``str.strip_chars`` removes): ASCII blanks, a carriage return, a quote (a quoted cell
# may begin with a line break) and every byte of a non-ASCII character (Unicode spaces).
_UNTIDY_BYTES = (b" ", b"\t", b"\x0b", b"\x0c", b"\r", b'"')


def _scan_bytes(file: Path) -> tuple[bool, bool]:
    """(no NUL byte, tidy: none of ``_UNTIDY_BYTES`` nor a non-ASCII byte) of a file.

    A memchr per byte and one maximum over a memory map of the file: no per-cell search.
    """
    import mmap

    import numpy as np

    with file.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return True, True
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            no_nul = data.find(b"\x00") == -1
            tidy = all(data.find(byte) == -1 for byte in _UNTIDY_BYTES)
            if tidy:
                view = np.frombuffer(data, dtype=np.uint8)
                tidy = int(view.max()) < 0x80
                del view  # the map closes only once no view of it is left
            return no_nul, tidy


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
    return _apply_header(file.name, header, frame.with_row_index(ROW, offset=FIRST_DATA_ROW))


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
    return _apply_header(file.name, header, frame.with_row_index(ROW, offset=FIRST_DATA_ROW))


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
    frame, issues = _apply_header(label, header, frame.with_row_index(ROW, offset=FIRST_DATA_ROW))
    for row, column in sorted(formulas):
        if row - FIRST_DATA_ROW >= len(data):
            continue
        cells = first if row == 1 else data[row - FIRST_DATA_ROW]
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
