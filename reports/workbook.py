"""Finance's Excel workbook (``billing report excel``): the frames of
``services.finance`` as sheets, streamed with XlsxWriter's ``constant_memory`` mode.

Every sheet is one table: a bold header row, frozen, with an autofilter over the header
and the data rows; then one ``Total`` row (the sums of its numeric columns, written as
values so that they read back as numbers, not formulas that only Excel computes).
Money is a number with a currency format, dates are dates (a ``month`` is the first day
of the month shown ``yyyy-mm``), times are UTC without a zone (Excel has none); every
text cell goes through ``safe_files.safe_cell_value`` and is written as a string
(``write_string``, never ``write``, which would take ``=...`` for a formula), so text
that begins like a formula stays text. A table longer than a sheet holds goes on in
``<title> 2``, ... . The Summary sheet also holds, below its table, allowed amount by
month and payer and a native column chart of it.

``constant_memory`` writes each row to the sheet's temporary file once the next row is
begun, so only one row is held. XlsxWriter was measured against openpyxl's write-only
mode on the 10,000-patient year (claim lines and gaps, 0.95 M cells): 6.0 s against
9.4 s with lxml installed and 12.5 s without (bench/README.md).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.io.safe_files import safe_cell_value
from billing_engine.services.finance import FinanceBook

EXCEL_MAX_ROWS = 1_048_576  # rows of a worksheet (Excel specifications and limits)
ROWS_PER_SHEET = EXCEL_MAX_ROWS - 2  # the header and the totals row take two
MONEY_FORMAT = '"$"#,##0.00;-"$"#,##0.00'
DATE_FORMAT = "yyyy-mm-dd"
MONTH_FORMAT = "yyyy-mm"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
INTEGER_FORMAT = "#,##0"
WIDTH_SAMPLE = 200  # rows looked at to size a column
MIN_WIDTH, MAX_WIDTH, WIDTH_PADDING = 8, 50, 2
TOTAL_LABEL = "Total"
NOT_SUMMED = frozenset({"cycle", "line_number", "year", "first_month", "last_month"})
CHART_TITLE = "Allowed amount by month and payer"
CHART_WIDTH_PX, CHART_HEIGHT_PX = 900, 450
# no string is taken for a formula, a link or a number: text is text
WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}

SHEET_SUMMARY = "Summary"
SHEET_BY_CODE = "By code"
SHEET_BY_CARE_MANAGER = "By care manager"
SHEET_CLAIM_LINES = "Claim lines"
SHEET_GAPS = "Gaps"
SHEET_CLAIMS = "Claims and adjustments"
SHEET_SOURCES = "Sources"

HEADERS = {
    "month": "Month", "payer_id": "Payer", "payer_name": "Payer name", "lines": "Lines",
    "units": "Units", "allowed_amount": "Allowed", "payer_amount": "Payer share",
    "patient_amount": "Patient share", "pmpm": "PMPM capitation",
    "left_on_table": "Money left on the table", "unpriced_lines": "Unpriced lines",
    "code": "Code", "care_manager_id": "Care manager", "care_manager_name": "Name",
    "credential": "Credential", "patients": "Patients", "minutes_logged": "Minutes logged",
    "minutes_counted": "Minutes that counted", "patient_id": "Patient",
    "billing_practitioner_id": "Billing practitioner", "billing_npi": "Billing NPI",
    "date_of_service": "Date of service", "potential_amount": "Allowed if closed",
    "secondary_amount": "Secondary share", "sequestration_amount": "Sequestration",
    "original_claim_id": "Original claim", "claim_id": "Claim", "created_at": "Created (UTC)",
    "imported_at": "Imported (UTC)", "when": "When (UTC)",
}  # fmt: skip

CLAIM_LINE_SHEET_COLUMNS = (
    "month", "patient_id", "payer_id", "billing_practitioner_id", "billing_npi", "code",
    "modifiers", "units", "date_of_service", "place_of_service", "icd10_codes",
    "period_start", "period_end", "allowed_amount", "payer_amount", "patient_amount",
    "secondary_payer_id", "secondary_amount", "sequestration_amount", "fee_source", "rule",
)  # fmt: skip
GAP_SHEET_COLUMNS = (
    "month", "patient_id", "payer_id", "billing_practitioner_id", "code", "status", "reason",
    "detail", "minutes_logged", "minutes_needed", "deadline", "period_start", "period_end",
    "potential_amount", "rule",
)  # fmt: skip


@dataclass(frozen=True)
class WorkbookSources:
    """What the workbook's numbers rest on, and who made it when (the Sources sheet)."""

    run_id: str
    made_at: dt.datetime  # UTC
    made_by: str
    software_version: str
    first: Month
    last: Month
    as_of: dt.date | None
    data_source: str
    store: str | None
    rule_set_version: str
    # origin (shipped / store), kind, year, effective_from, qp, release, source_file, rows,
    # imported_at
    fee_releases: Sequence[Mapping[str, Any]] = ()
    runs: Sequence[Mapping[str, Any]] = ()  # the store's recorded runs of the months
    notes: Mapping[str, str] = field(default_factory=dict)  # e.g. --apply-deductible


@dataclass(frozen=True)
class _Column:
    name: str
    header: str
    number_format: str | None  # None: text, or a number shown as is


def write_finance_workbook(
    path: Path,
    book: FinanceBook,
    sources: WorkbookSources,
    claims: pl.DataFrame | None = None,
) -> list[str]:
    """Write the workbook to `path` (replaced only once complete); returns sheet titles.

    `claims` is the close's claim lines of the months (``Claims and adjustments``),
    left out when None or empty.
    """

    def write(workbook: Any, formats: _Formats) -> list[str]:
        titles: list[str] = []
        titles += _write_summary(workbook, formats, book)
        titles += _write_table(workbook, formats, SHEET_BY_CODE, book.by_code)
        titles += _write_table(workbook, formats, SHEET_BY_CARE_MANAGER, book.by_care_manager)
        lines = book.claim_lines.select(CLAIM_LINE_SHEET_COLUMNS)
        titles += _write_table(workbook, formats, SHEET_CLAIM_LINES, lines)
        titles += _write_table(workbook, formats, SHEET_GAPS, book.gaps.select(GAP_SHEET_COLUMNS))
        if claims is not None and claims.height:
            titles += _write_table(workbook, formats, SHEET_CLAIMS, claims)
        sources_table = sources_frame(book, sources)
        titles += _write_table(workbook, formats, SHEET_SOURCES, sources_table, totals=False)
        return titles

    return _publish_workbook(path, write)


def write_tables_workbook(
    path: Path, tables: Sequence[tuple[str, pl.DataFrame]], *, totals: bool = False
) -> list[str]:
    """Each (title, frame) of `tables` as one sheet, as the finance workbook writes its
    tables (with a totals row when `totals`); `path` is replaced only once complete."""

    def write(workbook: Any, formats: _Formats) -> list[str]:
        titles: list[str] = []
        for title, frame in tables:
            titles += _write_table(workbook, formats, title, frame, totals=totals)
        return titles

    return _publish_workbook(path, write)


def _publish_workbook(path: Path, write: Callable[[Any, _Formats], list[str]]) -> list[str]:
    """Run `write` on a new workbook beside `path` and put it in place once closed."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; the workbook needs a file name")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    workbook = xlsxwriter.Workbook(str(partial), WORKBOOK_OPTIONS)
    try:
        titles = write(workbook, _Formats(workbook))
        workbook.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return titles


class _Formats:
    """The workbook's cell formats, made once (XlsxWriter keeps one record per format)."""

    def __init__(self, workbook: Any) -> None:
        self._workbook = workbook
        self._made: dict[tuple[str | None, bool], Any] = {}

    def get(self, number_format: str | None, *, bold: bool = False) -> Any:
        key = (number_format, bold)
        if key not in self._made:
            spec: dict[str, Any] = {"bold": True} if bold else {}
            if number_format is not None:
                spec["num_format"] = number_format
            self._made[key] = self._workbook.add_format(spec) if spec else None
        return self._made[key]


# --------------------------------------------------------------------------- tables


def _prepared(frame: pl.DataFrame) -> pl.DataFrame:
    """Months (``YYYY-MM`` text) as their first day; times as naive UTC; lists as text."""
    changes: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if name in {"month", "first_month", "last_month"} and dtype == pl.String():
            changes.append(pl.col(name).str.to_date("%Y-%m"))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            changes.append(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
        elif isinstance(dtype, pl.List):
            changes.append(pl.col(name).list.join(";"))
    return frame.with_columns(changes) if changes else frame


def _columns(frame: pl.DataFrame) -> list[_Column]:
    out = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Decimal):
            number_format: str | None = MONEY_FORMAT
        elif dtype == pl.Date():
            month_like = name in {"month", "first_month", "last_month"}
            number_format = MONTH_FORMAT if month_like else DATE_FORMAT
        elif isinstance(dtype, pl.Datetime):
            number_format = TIME_FORMAT
        elif dtype.is_integer() and name not in NOT_SUMMED:
            number_format = INTEGER_FORMAT
        else:
            number_format = None
        header = HEADERS.get(name, name.replace("_", " ").capitalize())
        out.append(_Column(name, header, number_format))
    return out


def _width(column: _Column, frame: pl.DataFrame) -> float:
    """A readable width: the header's or the longest of the first rows' values."""
    sample = frame.get_column(column.name).head(WIDTH_SAMPLE)
    if column.number_format == MONEY_FORMAT:
        longest = max((len(f"${v:,.2f}") for v in sample.drop_nulls()), default=0)
    else:
        longest = max((len(str(v)) for v in sample.drop_nulls().to_list()), default=0)
    wanted = max(len(column.header), longest) + WIDTH_PADDING
    return float(min(max(wanted, MIN_WIDTH), MAX_WIDTH))


def _totals(frame: pl.DataFrame, columns: Sequence[_Column]) -> list[object]:
    """The totals row: ``Total`` first, then each numeric column's sum (empty when the
    column is all empty), text and dates empty."""
    row: list[object] = []
    for index, column in enumerate(columns):
        dtype = frame.schema[column.name]
        summed = column.name not in NOT_SUMMED and (
            isinstance(dtype, pl.Decimal) or dtype.is_integer()
        )
        if index == 0:
            row.append(TOTAL_LABEL)
        elif summed and frame.get_column(column.name).drop_nulls().len():
            total = frame.get_column(column.name).drop_nulls().sum()
            row.append(Decimal(total) if isinstance(dtype, pl.Decimal) else int(total))
        else:
            row.append(None)
    return row


def _chunks(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    if frame.height == 0:
        yield frame
        return
    for offset in range(0, frame.height, size):
        yield frame.slice(offset, size)


def _write_table(
    workbook: Any,
    formats: _Formats,
    title: str,
    frame: pl.DataFrame,
    *,
    totals: bool = True,
) -> list[str]:
    """`frame` as one sheet (``title 2``, ... past ``ROWS_PER_SHEET``); returns the titles."""
    frame = _prepared(frame)
    titles = []
    for number, chunk in enumerate(_chunks(frame, ROWS_PER_SHEET), start=1):
        name = title if number == 1 else f"{title} {number}"
        sheet = workbook.add_worksheet(name)
        _write_rows(sheet, formats, chunk, _columns(chunk), totals=totals)
        titles.append(name)
    return titles


def _write_rows(
    sheet: Any,
    formats: _Formats,
    frame: pl.DataFrame,
    columns: Sequence[_Column],
    *,
    totals: bool,
) -> int:
    """Header, data rows and totals row of one table from the sheet's first row; returns
    the number of rows written."""
    for index, column in enumerate(columns):
        sheet.set_column(index, index, _width(column, frame))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, frame.height, len(columns) - 1)
    bold = formats.get(None, bold=True)
    for index, column in enumerate(columns):
        sheet.write_string(0, index, str(safe_cell_value(column.header)), bold)
    writers = [_writer(sheet, formats.get(c.number_format)) for c in columns]
    for row_index, values in enumerate(frame.iter_rows(), start=1):
        _write_row(row_index, values, writers)
    written = frame.height + 1
    if totals:
        bold_writers = [_writer(sheet, formats.get(c.number_format, bold=True)) for c in columns]
        _write_row(written, _totals(frame, columns), bold_writers)
        written += 1
    return written


Writer = Callable[[int, int, object], None]


def _writer(sheet: Any, cell_format: Any) -> Writer:
    """Write one cell of a column: numbers as numbers, dates as dates, text as text
    (neutralized), each with the column's format."""

    def write(row: int, column: int, value: object) -> None:
        if isinstance(value, bool):
            sheet.write_boolean(row, column, value, cell_format)
        elif isinstance(value, Decimal | int | float):
            sheet.write_number(row, column, float(value), cell_format)
        elif isinstance(value, dt.date):
            sheet.write_datetime(row, column, value, cell_format)
        else:
            sheet.write_string(row, column, str(safe_cell_value(str(value))), cell_format)

    return write


def _write_row(row: int, values: Iterable[object], writers: Sequence[Writer]) -> None:
    for column, (value, write) in enumerate(zip(values, writers, strict=True)):
        if value is not None:
            write(row, column, value)


# --------------------------------------------------------------------------- summary


def _write_summary(workbook: Any, formats: _Formats, book: FinanceBook) -> list[str]:
    """The Summary table, then allowed amount by month and payer, charted beside it."""
    sheet = workbook.add_worksheet(SHEET_SUMMARY)
    frame = _prepared(book.summary)
    columns = _columns(frame)
    used = _write_rows(sheet, formats, frame, columns, totals=True)
    title_row = used + 2  # two empty rows under the table (0-based: used is the next row)
    sheet.write_string(title_row, 0, CHART_TITLE, formats.get(None, bold=True))
    header_row = title_row + 1
    pivot = allowed_by_month_and_payer(book.summary)
    bold = formats.get(None, bold=True)
    for index, name in enumerate(pivot.columns):
        sheet.write_string(header_row, index, str(safe_cell_value(name)), bold)
    money = _writer(sheet, formats.get(MONEY_FORMAT))
    writers = [_writer(sheet, None), *([money] * (pivot.width - 1))]
    for offset, values in enumerate(pivot.iter_rows(), start=1):
        _write_row(header_row + offset, values, writers)
    if pivot.height and pivot.width > 1:
        chart = workbook.add_chart({"type": "column"})
        first, last = header_row + 1, header_row + pivot.height
        for index in range(1, pivot.width):
            chart.add_series(
                {
                    "name": [SHEET_SUMMARY, header_row, index],
                    "categories": [SHEET_SUMMARY, first, 0, last, 0],
                    "values": [SHEET_SUMMARY, first, index, last, index],
                }
            )
        chart.set_title({"name": CHART_TITLE})
        chart.set_x_axis({"name": "Month"})
        chart.set_y_axis({"name": "Allowed ($)", "num_format": MONEY_FORMAT})
        chart.set_size({"width": CHART_WIDTH_PX, "height": CHART_HEIGHT_PX})
        sheet.insert_chart(1, len(columns) + 1, chart)
    return [SHEET_SUMMARY]


def allowed_by_month_and_payer(summary: pl.DataFrame) -> pl.DataFrame:
    """Month (text) x payer id: the allowed amount (the chart's data)."""
    if summary.is_empty():
        return pl.DataFrame({"Month": []}, schema={"Month": pl.String})
    return (
        summary.select("month", "payer_id", "allowed_amount")
        .pivot(on="payer_id", index="month", values="allowed_amount", sort_columns=True)
        .sort("month")
        .rename({"month": "Month"})
    )


# --------------------------------------------------------------------------- sources


SOURCE_SCHEMA: dict[str, pl.DataType] = {
    "section": pl.String(), "name": pl.String(), "value": pl.String(), "source": pl.String(),
    "when": pl.Datetime("us"),
}  # fmt: skip


def _naive_utc(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def sources_frame(book: FinanceBook, sources: WorkbookSources) -> pl.DataFrame:
    """The Sources sheet: section, name, value, source, when (UTC)."""
    made = _naive_utc(sources.made_at)
    rows: list[dict[str, Any]] = [
        {"section": "workbook", "name": "run_id", "value": sources.run_id, "when": made},
        {"section": "workbook", "name": "made_by", "value": sources.made_by, "when": made},
        {"section": "workbook", "name": "software_version", "value": sources.software_version},
        {"section": "workbook", "name": "months",
         "value": f"{sources.first} to {sources.last}"},
        {"section": "workbook", "name": "as_of",
         "value": sources.as_of.isoformat() if sources.as_of else "each month's last day"},
        {"section": "workbook", "name": "data_source", "value": sources.data_source},
        {"section": "workbook", "name": "store", "value": sources.store or ""},
        {"section": "rule set", "name": "rule_set_version", "value": sources.rule_set_version},
    ]  # fmt: skip
    rows += [{"section": "setting", "name": k, "value": v} for k, v in sources.notes.items()]
    for r in sources.fee_releases:
        variant = "" if r.get("kind") == "gpci" else (
            f" effective {r.get('effective_from')}, {'QP' if r.get('qp') else 'non-QP'}"
        )  # fmt: skip
        rows.append(
            {
                "section": f"fee release ({r['origin']})",
                "name": f"{r['kind']} {r['year']}{variant}",
                "value": f"{r['release']}: {r['rows']} rows",
                "source": str(r["source_file"]),
                "when": _naive_utc(r.get("imported_at")),
            }
        )
    for p in book.parameters.iter_rows(named=True):
        months = p["first_month"] if p["first_month"] == p["last_month"] else (
            f"{p['first_month']} to {p['last_month']}"
        )  # fmt: skip
        rows.append(
            {
                "section": f"parameter ({months})",
                "name": p["name"],
                "value": p["value"],
                "source": p["sources"],
            }
        )
    for run in sources.runs:
        rows.append(
            {
                "section": "evaluation run",
                "name": str(run["run_id"]),
                "value": f"{run['month']} as of {run['as_of']}",
                "source": f"rule set {run['rule_set_version']}",
                "when": _naive_utc(run.get("created_at")),
            }
        )
    return pl.DataFrame(rows, schema=SOURCE_SCHEMA)
