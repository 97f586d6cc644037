"""Read an interchange bundle (CSV folder, Parquet folder or .xlsx workbook) and validate it.

This module runs the three stages in order: ``billing_engine.io.readers`` reads the files
as text, ``billing_engine.io.cells`` parses the cells, ``billing_engine.io.checks`` finds
the issues.

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

from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

import polars as pl

from billing_engine.errors import BundleInvalid, InputIssue
from billing_engine.io.bundle import Bundle
from billing_engine.io.cells import parse_table, stringify, typed_output, with_row_numbers
from billing_engine.io.checks import (
    Stored,
    StoredRows,
    collect_issues,
    cross_table_checks,
    missing_column_issues,
    patient_life_checks,
    table_checks,
)
from billing_engine.io.ingest_limits import InputLimits
from billing_engine.io.ingest_limits import default_limits as default_input_limits
from billing_engine.io.readers import csv_file, read_raw
from billing_engine.io.schema import TABLES

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
        tidy=raw.tidy,
        release=True,  # raw.tables is ours: each text frame is freed once parsed
    )
    problems = [i for i in problems if (i.file, i.row, i.column) not in raw.explained]
    issues = sort_issues([*raw.issues, *problems])
    if issues:
        raise BundleInvalid(str(path), issues)
    return Bundle.from_frames(frames, source=str(path))


def validate_frames(
    raw: Mapping[str, tuple[str, pl.DataFrame]],
    missing_file: Callable[[str], str] = csv_file,
    unreadable: Collection[str] = (),
    stored: StoredRows | None = None,
    replaced: Collection[str] = (),
    limits: InputLimits | None = None,
    nul_free: Collection[str] = (),
    release: bool = False,
    tidy: Collection[str] = (),
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
    character (their source file was scanned), so their cells are not searched for one;
    tables in ``tidy`` hold no cell with white space to strip (their file was scanned:
    ``readers.RawBundle.tidy``), so their cells are not searched for it.

    With ``stored`` (an incremental bundle for a store) the store's current rows count
    too, except those of the ``replaced`` tables (a snapshot replaces them): a reference
    the bundle does not satisfy may name a stored row, a required table may be absent
    when the store holds rows of it, and a coverage may not overlap a stored coverage of
    the same patient and payer that the bundle leaves in place. ``stored`` is asked only
    for what the bundle itself cannot answer, and never when ``raw`` holds no table.

    ``release`` (with a dict ``raw`` the caller no longer needs): each table is removed
    from ``raw`` once parsed, so its text frame is freed while the others are checked.
    """
    limits = limits or default_input_limits()
    known = Stored(stored, replaced) if stored is not None and raw else None
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
    for name in list(raw):
        if name not in TABLES:
            continue
        label, frame = raw[name]
        if release and isinstance(raw, dict):
            del raw[name]
        table = TABLES[name]
        text, text_issues = stringify(label, with_row_numbers(frame))
        issues.extend(text_issues)
        present[name] = set(text.columns)
        issues.extend(missing_column_issues(label, table, present[name]))
        work[name] = parse_table(
            table, text, limits, nul_check=name not in nul_free, tidy=name in tidy
        )
        labels[name] = label
    checks = [
        check
        for name, frame in work.items()
        for check in table_checks(TABLES[name], labels[name], frame.lazy(), present[name], limits)
    ]
    skip = {name for name in TABLES if missing_file(name) in missing} | set(unreadable)
    checks.extend(cross_table_checks(work, labels, skip, known))
    checks.extend(patient_life_checks(work, labels))
    issues.extend(collect_issues(checks))
    typed = {}
    for name in list(work):  # each table's text and flags freed as soon as it is typed
        typed[name] = typed_output(TABLES[name], work.pop(name))
    return typed, sort_issues(issues)


def sort_issues(issues: Iterable[InputIssue]) -> list[InputIssue]:
    """Issues in report order: file, row (whole-file problems first), column, problem."""
    return sorted(
        issues, key=lambda i: (i.file, -1 if i.row is None else i.row, i.column or "", i.problem)
    )
