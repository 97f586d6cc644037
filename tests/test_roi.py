"""Care-manager ROI (``billing roi``, ``billing roi model``), checked against hand-computed
months and as a practice manager runs it: the CSV/JSON rows, the workbook opened with
openpyxl, the page opened in headless Chromium.

The hand-computed practice is the CCM rule cases' (Medicare patient P1 of DR_A, CCM
consent and care plan from January 2025) with RN1's care-management minutes; 99490 is
allowed $60.49 (payer $47.42, patient $12.10) and 99439 $45.93 (payer $36.01, patient
$9.19) in 2025 (the CMS 2025 PFS, national; rule CCM-T1, FEE-1).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from billing_engine.calendar import Month
from billing_engine.io.ingest import read_bundle
from billing_engine.services.revenue import months_between, revenue
from billing_engine.services.roi.build import roi_report, split_cents
from billing_engine.services.roi.measure import CENTS, LINE_KEY, line_shares, measure_months
from billing_engine.services.roi.report import MEASURED_COLUMNS, SCENARIO_COLUMNS, TEAM
from billing_engine.services.roi.staffing import StaffingInvalid, read_staffing
from billing_engine.store import Store
from billing_engine.synth.practice import generate_practice
from cli.main import billing
from tests.browser import ARTIFACTS, open_page
from tests.scenario_io import write_ccm_case_bundle

D = Decimal
FEB, MAR = Month.parse("2025-02"), Month.parse("2025-03")
ROLES = ["dietitian", "health_coach", "high_risk_care_manager", "social_worker"]
STAFFING_HEADER = "care_manager_id,role,annual_salary,benefits_rate,fte,start_date,end_date\n"
SCREENSHOT = ARTIFACTS / "roi.png"
ISSUE_COLUMNS = ["care_manager_id", "months", "caseload", "billable_patient_months",
                 "conversion", "minutes_logged", "minutes_counted", "minutes_stranded", "lines",
                 "allowed_amount", "expected_collections", "pmpm_amount", "cost", "net",
                 "roi_pct", "break_even_caseload"]  # fmt: skip
MODEL_COLUMNS = ["caseload", "revenue", "cost", "net", "minutes_needed", "capacity_minutes",
                 "within_capacity"]  # fmt: skip


def _staffing(tmp_path: Path, rows: str) -> pl.DataFrame:
    path = tmp_path / "staffing.csv"
    path.write_text(STAFFING_HEADER + rows, encoding="utf-8")
    return read_staffing(path, ROLES)


def _entries(*minutes_by_date: tuple[str, int, str]) -> list[dict[str, Any]]:
    return [
        {"encounter_id": f"E{i}", "date": date, "minutes": minutes, "performer_id": who}
        for i, (date, minutes, who) in enumerate(minutes_by_date, start=1)
    ]


def _row(frame: pl.DataFrame, who: str) -> dict[str, Any]:
    return frame.filter(pl.col("care_manager_id") == who).row(0, named=True)


# --------------------------------------------------------------------------- hand-computed


def test_one_care_manager_over_two_months_gives_the_hand_computed_revenue_cost_and_break_even(
    tmp_path: Path,
) -> None:
    # February: 25 minutes -> 99490; March: 45 minutes -> 99490 + 99439
    folder = write_ccm_case_bundle(
        tmp_path / "b", _entries(("2025-02-04", 25, "RN1"), ("2025-03-04", 45, "RN1"))
    )
    staff = _staffing(tmp_path, "RN1,high_risk_care_manager,60000,0.25,1,2025-02-01,\n")
    report = roi_report(read_bundle(folder), [FEB, MAR], staffing=staff)
    rn1, team = _row(report.measured, "RN1"), _row(report.measured, TEAM)
    assert rn1["months"] == 2 and rn1["caseload"] == 1.0
    assert rn1["billable_patient_months"] == 2 and rn1["conversion"] == 1.0
    assert (rn1["minutes_logged"], rn1["minutes_counted"], rn1["minutes_stranded"]) == (70, 70, 0)
    assert rn1["lines"] == 3
    assert rn1["allowed_amount"] == D("166.91")  # 60.49 + 60.49 + 45.93
    # (130.85 payer + 33.39 patient) x 0.95 collection rate = 156.028
    assert rn1["expected_collections"] == D("156.03")
    # 60,000 x (1 + 0.25) / 12 = 6,250.00 a month, two months
    assert rn1["monthly_cost"] == D("6250.00") and rn1["cost"] == D("12500.00")
    assert rn1["net"] == D("-12343.97")
    assert rn1["roi_pct"] == -98.8
    # a patient-month brings 164.24 / 2 x 0.95 = 78.014; 6,250 / 78.014 = 80.1 -> 81
    assert rn1["break_even_caseload"] == 81
    assert report.break_even_caseload == 81
    # 35 minutes a patient-month x (1 + 2 documentation) = 105; 9,360 / 105 = 89.1 -> 89
    assert report.capacity_caseload == 89
    assert rn1["revenue_per_billable_patient_month"] == D("78.02")  # 156.03 / 2
    assert rn1["cost_source"] == "staffing file"
    assert team["allowed_amount"] == rn1["allowed_amount"] and team["cost"] == rn1["cost"]
    assert report.not_attributed_allowed == D("0.00")


def test_minutes_below_the_threshold_are_stranded_and_lower_the_conversion(
    tmp_path: Path,
) -> None:
    # April: 12 minutes, short of 99490's 20
    folder = write_ccm_case_bundle(
        tmp_path / "b",
        _entries(("2025-02-04", 25, "RN1"), ("2025-03-04", 45, "RN1"), ("2025-04-08", 12, "RN1")),
    )
    report = roi_report(read_bundle(folder), months_between(FEB, Month.parse("2025-04")))
    rn1 = _row(report.measured, "RN1")
    assert rn1["minutes_logged"] == 82 and rn1["minutes_counted"] == 70
    assert rn1["minutes_stranded"] == 12
    assert rn1["billable_patient_months"] == 2 and rn1["conversion"] == pytest.approx(0.667)
    # no staffing file: the RN's default salary, benefits and FTE 1 for her 3 months
    assert rn1["cost_source"].startswith("assumed")
    assert rn1["cost"] == D("29645.30")  # 81,220 x 1.46 / 12 = 9,881.7667 a month, x 3
    assert any("cost is assumed" in note for note in report.notes)


def test_a_line_two_care_managers_worked_is_shared_by_minutes_to_the_cent(tmp_path: Path) -> None:
    # 15 + 10 minutes of February's 99490 ($60.49): 36.294 and 24.196 -> 36.29 and 24.20
    folder = write_ccm_case_bundle(
        tmp_path / "b", _entries(("2025-02-04", 15, "RN1"), ("2025-02-11", 10, "MA1"))
    )
    report = roi_report(read_bundle(folder), [FEB])
    assert _row(report.measured, "RN1")["allowed_amount"] == D("36.29")
    assert _row(report.measured, "MA1")["allowed_amount"] == D("24.20")
    team = _row(report.measured, TEAM)
    assert team["allowed_amount"] == D("60.49") and team["lines"] == 1
    assert team["caseload"] == 1.0  # one patient, though both worked her
    assert _row(report.measured, "MA1")["role"] == "health_coach"


def test_the_team_and_the_amount_not_attributed_add_up_to_billing_revenue() -> None:
    bundle = generate_practice(150, seed=5, end_month="2025-12", months=3)
    months = months_between(Month.parse("2025-10"), Month.parse("2025-12"))
    report = roi_report(bundle, months)
    expected = revenue(bundle, months).by_payer["allowed_amount"].sum()
    assert report.practice_allowed == expected
    team = _row(report.measured, TEAM)["allowed_amount"]
    assert team + report.not_attributed_allowed == expected
    staff = report.measured.filter(pl.col("care_manager_id") != TEAM)
    assert staff["allowed_amount"].sum() == team
    assert staff["cost"].sum() == _row(report.measured, TEAM)["cost"]
    logged = report.measured["minutes_logged"] - report.measured["minutes_counted"]
    assert (logged - report.measured["minutes_stranded"]).to_list() == (
        report.measured["minutes_excluded"].to_list()
    )


def test_every_lines_shares_add_up_to_the_line_exactly() -> None:
    bundle = generate_practice(120, seed=3, end_month="2025-12", months=2)
    measured = measure_months(bundle, [Month.parse("2025-11"), Month.parse("2025-12")])
    shares = line_shares(measured.lines, measured.encounters)
    summed = shares.group_by(LINE_KEY).agg(pl.col(c).sum() for c in CENTS)
    joined = summed.join(measured.lines, on=list(LINE_KEY), suffix="_line")
    assert joined.height == shares.select(LINE_KEY).unique().height > 0
    for c in CENTS:
        assert (joined[c] == joined[f"{c}_line"]).all()


@given(
    st.integers(min_value=0, max_value=10_000_000),
    st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=8),
)
def test_an_amount_split_by_weights_adds_up_to_the_amount(total: int, weights: list[int]) -> None:
    amount = D(total) / 100
    shares = split_cents(amount, weights)
    assert sum(s for s in shares if s is not None) == amount


def test_the_quality_incentive_is_shared_by_caseload_and_never_enters_net(tmp_path: Path) -> None:
    folder = write_ccm_case_bundle(
        tmp_path / "b", _entries(("2025-02-04", 15, "RN1"), ("2025-02-11", 10, "MA1"))
    )
    from billing_engine.services.roi.build import OtherValue

    other = OtherValue(quality_incentive=D("100.01"), visits_freed=D("2"), visit_rate=D("90"))
    report = roi_report(read_bundle(folder), [FEB], other=other)
    team = _row(report.measured, TEAM)
    assert team["quality_incentives"] == D("100.01")
    assert team["shifted_work_value"] == D("360.00")  # 2 visits x $90 x 2 FTE x 1 month
    assert team["net_with_other_value"] == team["net"] + D("460.01")
    plain = _row(roi_report(read_bundle(folder), [FEB]).measured, TEAM)
    assert plain["net"] == team["net"]


def test_a_members_pmpm_goes_to_the_care_manager_with_the_most_minutes_with_her(
    tmp_path: Path,
) -> None:
    # P1 (enrolled) and P2 (never worked) are attributed to a $12.50 PMPM contract
    folder = write_ccm_case_bundle(
        tmp_path / "b",
        _entries(("2025-02-04", 15, "RN1"), ("2025-02-11", 10, "MA1"),
                 ("2025-03-04", 15, "RN1"), ("2025-03-11", 10, "MA1")),
        patients=[{"patient_id": "P2", "birth_date": "1948-01-01"}],
        capitation=[{"payer_id": "MCR", "name": "ACO care management", "amount": "12.50",
                     "effective_from": "2025-01-01"}],
        attributions=[{"patient_id": "P1", "payer_id": "MCR", "start_date": "2025-01-01"},
                      {"patient_id": "P2", "payer_id": "MCR", "start_date": "2025-01-01"}],
    )  # fmt: skip
    report = roi_report(read_bundle(folder), [FEB, MAR])
    assert _row(report.measured, "RN1")["pmpm_amount"] == D("25.00")  # two months
    assert _row(report.measured, "MA1")["pmpm_amount"] == D("0.00")
    assert _row(report.measured, TEAM)["pmpm_amount"] == D("25.00")
    assert report.practice_pmpm == D("50.00")  # P2's PMPM stands on nobody's work
    rn1 = _row(report.measured, "RN1")
    assert rn1["net"] == rn1["expected_collections"] + D("25.00") - rn1["cost"]


# --------------------------------------------------------------------------- the model


def test_the_model_breaks_even_where_net_turns_and_runs_out_of_time_at_capacity(
    tmp_path: Path,
) -> None:
    folder = write_ccm_case_bundle(
        tmp_path / "b", _entries(("2025-02-04", 25, "RN1"), ("2025-03-04", 45, "RN1"))
    )
    staff = _staffing(tmp_path, "RN1,high_risk_care_manager,60000,0.25,1,,\n")
    from billing_engine.services.roi.build import ModelRange

    report = roi_report(read_bundle(folder), [FEB, MAR], staffing=staff,
                        caseloads=ModelRange(1, 120, 1))  # fmt: skip
    rows = {r["caseload"]: r for r in report.scenarios.iter_rows(named=True)}
    assert rows[81]["net"] >= 0 > rows[80]["net"]
    assert rows[89]["within_capacity"] and not rows[90]["within_capacity"]
    assert rows[1]["cost"] == D("6250.00") and rows[1]["capacity_minutes"] == 9360
    assert report.scenarios.columns == list(SCENARIO_COLUMNS)


def test_the_sensitivity_table_lists_every_factor_largest_swing_first(tmp_path: Path) -> None:
    folder = write_ccm_case_bundle(
        tmp_path / "b", _entries(("2025-02-04", 25, "RN1"), ("2025-03-04", 45, "RN1"))
    )
    report = roi_report(read_bundle(folder), [FEB, MAR])
    table = report.sensitivity
    assert set(table["factor"]) == {
        "conversion", "documentation overhead (minutes per counted minute)",
        "Medicare share of billable patient-months", "fee level", "salary", "collection rate",
    }  # fmt: skip
    assert table["swing"].to_list() == sorted(table["swing"].to_list(), reverse=True)
    salary = table.filter(pl.col("factor") == "salary").row(0, named=True)
    assert salary["net_low"] > salary["net_high"]  # a lower salary nets more
    fee = table.filter(pl.col("factor") == "fee level").row(0, named=True)
    assert fee["net_high"] > fee["net_low"] and fee["break_even_high"] < fee["break_even_low"]


# --------------------------------------------------------------------------- staffing file


def test_a_staffing_file_with_bad_cells_is_refused_naming_each_row_and_column(
    tmp_path: Path,
) -> None:
    rows = (
        "RN1,high_risk_care_manager,70000,0.3,1,2025-01-01,\n"
        "RN2,nurse,$70000,2,0,2025-13-01,2024-01-01\n"
        "RN1,social_worker,,,,,\n"
    )
    with pytest.raises(StaffingInvalid) as caught:
        _staffing(tmp_path, rows)
    found = {(i.row, i.column) for i in caught.value.issues}
    assert found == {
        (3, "role"), (3, "annual_salary"), (3, "benefits_rate"), (3, "fte"),
        (3, "start_date"), (2, "care_manager_id"), (4, "care_manager_id"),
        (4, "annual_salary"),
    }  # fmt: skip
    text = caught.value.report()
    assert "staffing.csv, row 3, column role: is not a known role" in text
    assert "the staffing file was not used" in text


def test_a_staffing_file_without_a_column_names_the_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("care_manager_id,role,annual_salary\nRN1,dietitian,50000\n", encoding="utf-8")
    with pytest.raises(StaffingInvalid) as caught:
        read_staffing(path, ROLES)
    assert {i.column for i in caught.value.issues} == {
        "benefits_rate", "fte", "start_date", "end_date"
    }  # fmt: skip


def test_a_staffed_care_manager_counts_only_the_months_she_was_employed(tmp_path: Path) -> None:
    folder = write_ccm_case_bundle(
        tmp_path / "b", _entries(("2025-02-04", 25, "RN1"), ("2025-03-04", 45, "RN1"))
    )
    staff = _staffing(tmp_path, "RN1,high_risk_care_manager,60000,0.25,0.5,2025-03-15,\n")
    report = roi_report(read_bundle(folder), [FEB, MAR], staffing=staff)
    rn1 = _row(report.measured, "RN1")
    assert rn1["months"] == 1
    assert rn1["monthly_cost"] == D("3125.00") and rn1["cost"] == D("3125.00")
    # February's 25 minutes were logged before she was staffed: not hers
    assert rn1["minutes_logged"] == 45 and rn1["allowed_amount"] == D("106.42")
    assert report.not_attributed_allowed == D("60.49")
    assert any("outside the staffed months" in n and "RN1 (25 min)" in n for n in report.notes)


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 200-patient demo store over the last quarter of 2025."""
    root = tmp_path_factory.mktemp("roi")
    url = f"sqlite:///{root / 'roi.db'}"
    with Store.open(url) as store:
        store.import_bundle(generate_practice(200, seed=9, end_month="2025-12", months=3))
    return url


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


def test_roi_reads_the_store_on_sqlite_and_postgresql_as_it_reads_the_bundle(
    store_url: str,
) -> None:
    bundle = generate_practice(60, seed=4, end_month="2025-12", months=1)
    with Store.open(store_url) as store:
        store.import_bundle(bundle)
    result = invoke("roi", "--from", "2025-12", "--to", "2025-12", "--format", "json",
                    "--db", store_url)  # fmt: skip
    assert result.exit_code == 0, result.output
    from_store = {r["care_manager_id"]: r["allowed_amount"] for r in json.loads(result.stdout)}
    direct = roi_report(bundle, [Month.parse("2025-12")]).measured
    assert from_store == {
        r["care_manager_id"]: f"{r['allowed_amount']}" for r in direct.iter_rows(named=True)
    }


def test_roi_as_csv_has_one_row_per_care_manager_and_a_team_row_with_money_as_text(
    demo_store: str,
) -> None:
    result = invoke("roi", "--from", "2025-10", "--to", "2025-12", "--format", "csv",
                    "--db", demo_store)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[: len(ISSUE_COLUMNS)] == ISSUE_COLUMNS
    assert list(rows[0]) == list(MEASURED_COLUMNS)
    assert rows[-1]["care_manager_id"] == TEAM
    for row in rows:
        for column in ("allowed_amount", "expected_collections", "cost", "net"):
            whole, _, cents = row[column].lstrip("-").partition(".")
            assert whole.isdigit() and len(cents) == 2, (column, row[column])
    bundle_total = invoke("revenue", "--from", "2025-10", "--to", "2025-12", "--db", demo_store)
    team = D(rows[-1]["allowed_amount"])
    assert team > 0 and f"{team}" not in ("", "0.00")
    assert bundle_total.exit_code == 0


def test_roi_as_json_is_a_list_of_rows_equal_to_the_csv(demo_store: str) -> None:
    args = ("roi", "--from", "2025-11", "--to", "2025-12", "--db", demo_store, "--format")
    as_json = json.loads(invoke(*args, "json").stdout)
    as_csv = list(csv.DictReader(io.StringIO(invoke(*args, "csv").stdout)))
    assert [r["care_manager_id"] for r in as_json] == [r["care_manager_id"] for r in as_csv]
    assert [r["net"] for r in as_json] == [r["net"] for r in as_csv]
    assert isinstance(as_json[0]["net"], str) and isinstance(as_json[0]["lines"], int)


def test_the_terminal_summary_shows_the_totals_of_billing_revenue(demo_store: str) -> None:
    result = invoke("roi", "--from", "2025-10", "--to", "2025-12", "--db", demo_store)
    assert result.exit_code == 0, result.output
    rev = invoke("revenue", "--from", "2025-10", "--to", "2025-12", "--db", demo_store)
    grand = next(line for line in rev.output.splitlines() if "GRAND TOTAL  all payers" in line)
    allowed = grand.split()[6]
    assert f"Allowed over the months: {D(allowed):,.2f} (as billing revenue)" in result.output
    assert "break-even caseload" in result.output
    assert "cost is assumed" in result.output


def test_the_workbook_has_the_four_sheets_and_the_numbers_of_the_csv(
    demo_store: str, tmp_path: Path
) -> None:
    out = tmp_path / "roi.xlsx"
    result = invoke("roi", "--from", "2025-10", "--to", "2025-12", "--db", demo_store,
                    "--format", "csv", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames[:4] == ["measured", "scenarios", "sensitivity", "assumptions"]
    measured = list(book["measured"].iter_rows(values_only=True))
    assert len(measured) == len(rows) + 1  # header, no totals row (TEAM is the total)
    assert measured[-1][0] == TEAM
    net_column = list(MEASURED_COLUMNS).index("net")
    assert D(str(measured[-1][net_column])).quantize(D("0.01")) == D(rows[-1]["net"])
    assumptions = list(book["assumptions"].iter_rows(values_only=True))
    names = {r[0]: r for r in assumptions[1:]}
    assert names["roi.collection_rate"][1] == "0.95" and "MGMA" in names["roi.collection_rate"][4]
    assert {r[3] for r in assumptions[1:]} == {"assumed", "measured"}
    assert all(r[4] for r in assumptions[1:])  # every assumption has a source


def test_roi_model_prints_and_writes_one_row_per_caseload(demo_store: str) -> None:
    result = invoke("roi", "model", "--caseload", "40..250", "--step", "30", "--db", demo_store,
                    "--format", "csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[: len(MODEL_COLUMNS)] == MODEL_COLUMNS
    assert [int(r["caseload"]) for r in rows] == [40, 70, 100, 130, 160, 190, 220, 250]
    table = invoke("roi", "model", "--db", demo_store, "--role", "high_risk_care_manager")
    assert table.exit_code == 0, table.output
    assert "Sensitivity" in table.output and "break-even caseload" in table.output


def test_roi_refuses_unclear_input_with_a_clear_message(demo_store: str, tmp_path: Path) -> None:
    no_range = invoke("roi", "--db", demo_store)
    assert no_range.exit_code == 2 and "--from" in no_range.output
    half = invoke("roi", "--from", "2025-10", "--to", "2025-12", "--visits-freed", "3",
                  "--db", demo_store)  # fmt: skip
    assert half.exit_code == 2 and "--visit-rate" in half.output
    bad_range = invoke("roi", "model", "--caseload", "250..40", "--db", demo_store)
    assert bad_range.exit_code == 2 and "before it starts" in bad_range.output
    role = invoke("roi", "model", "--role", "astronaut", "--db", demo_store)
    assert role.exit_code != 0 and "no care manager has that role" in role.output
    staffing = tmp_path / "s.csv"
    staffing.write_text(STAFFING_HEADER + "CM01,nurse,1,,,,\n", encoding="utf-8")
    out = tmp_path / "roi.xlsx"
    refused = invoke("roi", "--from", "2025-12", "--to", "2025-12", "--staffing", staffing,
                     "--out", out, "--db", demo_store)  # fmt: skip
    assert refused.exit_code == 2
    assert "s.csv, row 2, column role" in refused.output
    assert not out.exists()


def test_the_page_renders_in_chromium_offline_with_every_chart_drawn(
    demo_store: str, tmp_path: Path
) -> None:
    page = tmp_path / "roi.html"
    result = invoke("roi", "--from", "2025-10", "--to", "2025-12", "--db", demo_store,
                    "--html", page)  # fmt: skip
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text
    assert text.count('class="kind measured"') > 5 and 'class="kind assumed"' in text
    opened = open_page(page, SCREENSHOT)
    assert opened.errors == [] and opened.requests == []
    assert len(opened.charts) == 3
    for chart in opened.charts:
        assert chart["width"] > 0 and chart["height"] > 0 and chart["children"] > 0, chart
    assert SCREENSHOT.stat().st_size > 0


def test_the_page_shows_the_other_value_only_when_it_was_given(tmp_path: Path) -> None:
    import datetime as dt

    from billing_engine.services.roi.build import OtherValue
    from reports.roi import render_roi_html

    folder = write_ccm_case_bundle(tmp_path / "b", _entries(("2025-02-04", 25, "RN1")))
    made = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    plain = roi_report(read_bundle(folder), [FEB])
    given = roi_report(read_bundle(folder), [FEB], other=OtherValue(quality_incentive=D("50")))
    assert "Other value" not in render_roi_html(plain, created_at=made, source="b")
    page = render_roi_html(given, created_at=made, source="b")
    assert "Other value" in page and "$50.00" in page
