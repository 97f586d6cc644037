"""Finance's workbook (``billing report excel``), read back the way finance opens it.

The workbook is written with XlsxWriter and read back as finance's tools read it.
The demo practice (150 patients, its last month 2025-12 closed and exported) in a
SQLite store; the workbook of 2025-10 to 2025-12 is opened with openpyxl in read mode.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook
from openpyxl.chart import BarChart

import reports.workbook as workbook_module
from billing_engine.calendar import Month
from billing_engine.engine.frames import TOTAL
from billing_engine.services.finance import care_owners, finance_book
from billing_engine.services.revenue import months_between
from billing_engine.store import Store
from cli.main import billing
from reports.workbook import (
    MONEY_FORMAT,
    TOTAL_LABEL,
    WorkbookSources,
    write_finance_workbook,
)

FIRST, LAST = "2025-10", "2025-12"
SHEETS = [
    "Summary", "By code", "By care manager", "Claim lines", "Gaps",
    "Claims and adjustments", "Sources",
]  # fmt: skip
CENT = Decimal("0.01")


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("finance")
    url = f"sqlite:///{folder / 'demo.db'}"
    result = invoke("demo", "--db", url, "--patients", "150")
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture(scope="module")
def workbook_path(store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("book") / "finance.xlsx"
    result = invoke(
        "report", "excel", "--from", FIRST, "--to", LAST, "--out", out, "--db", store,
        "--user", "finance-office",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def book(workbook_path: Path) -> Any:
    return load_workbook(workbook_path)  # read mode: formulas, styles and charts as stored


def table(sheet: Any) -> tuple[list[str], list[tuple[Any, ...]], tuple[Any, ...]]:
    """Header, data rows and totals row of a sheet's table (the autofilter's range)."""
    last = int(sheet.auto_filter.ref.split(":")[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    rows = list(sheet.iter_rows(min_row=1, max_row=last + 1, values_only=True))
    return [str(h) for h in rows[0]], rows[1:-1], rows[-1]


def test_the_workbook_has_the_sheets_the_issue_lists_in_their_order(book: Any) -> None:
    assert book.sheetnames == SHEETS


def test_every_sheet_freezes_its_header_row_and_filters_its_table(book: Any) -> None:
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2", sheet.title
        assert sheet.auto_filter.ref.startswith("A1:"), sheet.title
        assert sheet["A1"].font.bold, sheet.title


def test_columns_are_wide_enough_to_read_their_header(book: Any) -> None:
    sheet = book["Summary"]
    header, _, _ = table(sheet)
    for index, name in enumerate(header, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        assert sheet.column_dimensions[letter].width >= len(name), name


def test_money_is_a_number_with_a_currency_format_and_dates_are_dates(book: Any) -> None:
    sheet = book["Claim lines"]
    header, rows, _ = table(sheet)
    assert rows, "the demo months have claim lines"
    allowed = header.index("Allowed")
    served = header.index("Date of service")
    month = header.index("Month")
    priced = [r for r in rows if r[allowed] is not None]
    assert all(isinstance(r[allowed], int | float) for r in priced)
    assert all(isinstance(r[served], dt.datetime) for r in rows)
    assert all(isinstance(r[month], dt.datetime) and r[month].day == 1 for r in rows)
    assert sheet.cell(row=2, column=allowed + 1).number_format == MONEY_FORMAT
    assert sheet.cell(row=2, column=served + 1).number_format == "yyyy-mm-dd"
    assert sheet.cell(row=2, column=month + 1).number_format == "yyyy-mm"


def test_the_summary_allowed_totals_equal_billing_evaluates_total_rows(
    book: Any, store: str, tmp_path: Path
) -> None:
    header, rows, _ = table(book["Summary"])
    month_at, payer_at, allowed_at = (header.index(h) for h in ("Month", "Payer", "Allowed"))
    in_workbook = {
        (r[month_at].strftime("%Y-%m"), r[payer_at]): Decimal(str(r[allowed_at] or 0)) for r in rows
    }
    evaluated: dict[tuple[str, str], Decimal] = {}
    for month in months_between(Month.parse(FIRST), Month.parse(LAST)):
        out = tmp_path / str(month)
        result = invoke("evaluate", "--month", month, "--out", out, "--db", store)
        assert result.exit_code == 0, result.output
        with (out / "revenue_by_payer.csv").open() as handle:
            for row in csv.DictReader(handle):
                if row["code"] == TOTAL:
                    evaluated[(str(month), row["payer_id"])] = Decimal(row["allowed_amount"])
    assert evaluated, "billing evaluate has TOTAL rows"
    priced = {key: value for key, value in in_workbook.items() if value}
    assert priced == {key: value for key, value in evaluated.items() if value}


def test_every_table_ends_with_a_totals_row_of_its_sums(book: Any) -> None:
    for title in ("Summary", "By code", "By care manager", "Claim lines", "Gaps"):
        header, rows, totals = table(book[title])
        assert totals[0] == TOTAL_LABEL, title
        for name in ("Allowed", "Lines", "Minutes logged"):
            if name not in header:
                continue
            at = header.index(name)
            expected = sum(Decimal(str(r[at])) for r in rows if r[at] is not None)
            assert Decimal(str(totals[at])).quantize(CENT) == expected.quantize(CENT), title


def test_the_summary_carries_a_native_bar_chart_of_allowed_by_payer_and_month(
    book: Any, workbook_path: Path
) -> None:
    charts = book["Summary"]._charts
    assert len(charts) == 1
    assert isinstance(charts[0], BarChart)
    header, rows, _ = table(book["Summary"])
    payers = {r[header.index("Payer")] for r in rows}
    assert len(charts[0].series) == len(payers)  # one series per payer, months as categories
    with zipfile.ZipFile(workbook_path) as archive:
        names = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        xml = archive.read(names[0]).decode()
    assert re.search(r"<(c:)?barChart>", xml)  # a native chart (column bars), not a picture
    assert "'Summary'!" in xml or "Summary!" in xml  # its series read the Summary's cells


def test_claims_and_adjustments_list_the_closed_months_claim_lines(book: Any) -> None:
    header, rows, _ = table(book["Claims and adjustments"])
    for name in ("Claim", "Cycle", "Frequency", "Kind", "Original claim", "Status"):
        assert name in header
    assert rows, "the demo exported 2025-12"
    frequency, kind = header.index("Frequency"), header.index("Kind")
    assert {(r[frequency], r[kind]) for r in rows} == {("1", "original")}


def test_the_sources_sheet_names_the_rules_fees_parameters_and_who_made_it(book: Any) -> None:
    _, rows, _ = table(book["Sources"])
    by_name = {(r[0], r[1]): r for r in rows}
    assert by_name[("workbook", "made_by")][2] == "finance-office"
    assert isinstance(by_name[("workbook", "made_by")][4], dt.datetime)
    assert len(by_name[("rule set", "rule_set_version")][2]) == 12
    fee_files = {r[3] for r in rows if str(r[0]).startswith("fee release")}
    assert "cms_gpci_2025.csv" in fee_files
    assert any(str(r[0]).startswith("parameter") for r in rows)
    assert any(r[0] == "evaluation run" for r in rows)  # the demo recorded its run


def test_text_that_begins_like_a_formula_stays_text(store: str, tmp_path: Path) -> None:
    with Store.open(store, create=False) as opened:
        data = opened.load_bundle()
    payers = data["payers"].with_columns(name=pl.lit('=HYPERLINK("http://x")'))
    data = replace(data, tables={**data.tables, "payers": payers})
    months = [Month.parse(LAST)]
    out = tmp_path / "book.xlsx"
    write_finance_workbook(out, finance_book(data, months), _sources())
    sheet = load_workbook(out)["Summary"]
    cell = sheet["C2"]
    assert cell.value == '\'=HYPERLINK("http://x")'
    assert cell.data_type == "s"


def test_a_table_longer_than_a_sheet_goes_on_in_a_second_sheet(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(store, create=False) as opened:
        data = opened.load_bundle()
    book = finance_book(data, [Month.parse(LAST)])
    monkeypatch.setattr(workbook_module, "ROWS_PER_SHEET", book.claim_lines.height - 1)
    out = tmp_path / "long.xlsx"
    titles = write_finance_workbook(out, book, _sources())
    assert "Claim lines 2" in titles
    read = load_workbook(out)
    data_rows = sum(read[t].max_row - 2 for t in ("Claim lines", "Claim lines 2"))
    assert data_rows == book.claim_lines.height


def test_a_patients_care_manager_is_the_named_one_else_who_logged_most(store: str) -> None:
    with Store.open(store, create=False) as opened:
        data = opened.load_bundle()
    first, second = data["patients"]["patient_id"].head(2).to_list()
    patients = data["patients"].with_columns(
        care_manager_id=pl.when(pl.col("patient_id") == first).then(pl.lit("CMX"))
    )
    data = replace(data, tables={**data.tables, "patients": patients})
    minutes = pl.DataFrame(
        {
            "patient_id": [first, second, second],
            "performer_id": ["A", "A", "B"],
            "minutes": [30, 10, 20],
        }
    )
    owners = dict(care_owners(data, minutes).iter_rows())
    assert owners[first] == "CMX"
    assert owners[second] == "B"


def test_the_workbook_needs_an_xlsx_name(store: str, tmp_path: Path) -> None:
    result = invoke(
        "report", "excel", "--from", LAST, "--to", LAST, "--out", tmp_path / "x.csv",
        "--db", store,
    )  # fmt: skip
    assert result.exit_code == 2
    assert ".xlsx" in result.output


def _sources() -> WorkbookSources:
    return WorkbookSources(
        run_id="00000000-0000-4000-8000-000000000000",
        made_at=dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC),
        made_by="test",
        software_version="test",
        first=Month.parse(LAST),
        last=Month.parse(LAST),
        as_of=None,
        data_source="test",
        store=None,
        rule_set_version="test",
    )
