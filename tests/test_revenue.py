"""Revenue over months (``billing revenue``), money left on the table, and capitation."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.services.revenue import months_between, revenue
from cli.main import billing
from tests.scenario_io import write_ccm_case_bundle as write_bundle
from tests.scenario_io import write_scenario_bundle

ROOT = Path(__file__).resolve().parents[1]
D = Decimal


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(billing, [str(a) for a in args])


def test_a_short_gap_is_valued_at_the_allowed_amount_it_would_bill(tmp_path: Path) -> None:
    # 15 of the 20 minutes in March 2025: 99490 is short; closed it would allow $60.49.
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 15}])  # fmt: skip
    result = evaluate(read_bundle(folder), Month.parse("2025-03"))
    gap = result.gaps.filter(result.gaps["code"] == "99490")
    assert gap["status"].to_list() == ["short"]
    assert gap["potential_amount"].to_list() == [D("60.49")]
    report = revenue(read_bundle(folder), [Month.parse("2025-03")])
    assert report.by_month["left_on_table"].to_list()[0] >= D("60.49")


def test_a_blocked_gap_has_no_potential_amount(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 15}])  # fmt: skip
    data = read_bundle(folder)
    month = Month.parse("2025-03")
    result = evaluate(data, month, as_of=month.shift(1).end)  # too late: every gap blocked
    assert set(result.gaps["status"]) == {"blocked"}
    assert result.gaps["potential_amount"].null_count() == result.gaps.height


def test_revenue_over_months_adds_up_to_each_months_evaluation(tmp_path: Path) -> None:
    folder = write_bundle(
        tmp_path / "b",
        [
            {"encounter_id": "E1", "date": "2025-02-04", "minutes": 25},
            {"encounter_id": "E2", "date": "2025-03-04", "minutes": 45},
        ],
    )
    data = read_bundle(folder)
    months = months_between(Month.parse("2025-02"), Month.parse("2025-03"))
    report = revenue(data, months)
    assert report.by_month["allowed_amount"].to_list() == [D("60.49"), D("106.42")]
    assert report.by_code.select("code", "lines", "units").rows() == [
        ("99439", 1, 1), ("99490", 2, 2),
    ]  # fmt: skip
    for month, allowed in zip(months, report.by_month["allowed_amount"], strict=True):
        by_payer = evaluate(data, month).revenue_by_payer
        assert by_payer.filter(by_payer["code"] == "TOTAL")["allowed_amount"].sum() == allowed
    assert report.by_payer["allowed_amount"].to_list() == [D("166.91")]


def test_the_deductible_over_a_range_is_used_up_in_date_order(tmp_path: Path) -> None:
    entries = [
        {"encounter_id": f"E{m}", "date": f"2025-{m:02d}-14", "minutes": 25} for m in range(1, 6)
    ]
    folder = write_bundle(tmp_path / "b", entries)
    data = read_bundle(folder)
    months = months_between(Month.parse("2025-01"), Month.parse("2025-05"))
    report = revenue(data, months, apply_deductible=True)
    # 257 of deductible: Jan-Apr 60.49 each (241.96), May 15.04 of it and 20 % of the rest
    patient = report.lines.sort("date_of_service")["patient_amount"].to_list()
    assert patient == [D("60.49")] * 4 + [D("24.13")]
    assert report.by_payer["patient_amount"].to_list() == [D("266.09")]


def test_capitation_is_reported_beside_fee_for_service_for_attributed_members(
    tmp_path: Path,
) -> None:
    folder = write_bundle(
        tmp_path / "b",
        [{"encounter_id": "E1", "date": "2025-03-04", "minutes": 25}],
        patients=[{"patient_id": "P2", "birth_date": "1948-01-01"}],
        payers=[{"payer_id": "MA1", "name": "MA plan", "kind": "medicare_advantage"}],
        coverages=[{"patient_id": "P2", "payer_id": "MA1", "start_date": "2020-01-01"}],
        capitation=[
            {"payer_id": "MCR", "name": "ACO care management", "amount": "12.50",
             "effective_from": "2025-01-01"},
            {"payer_id": "MA1", "name": "MA care management", "amount": "20.00",
             "effective_from": "2025-01-01", "effective_to": "2025-02-28"},
        ],
        attributions=[{"patient_id": "P1", "payer_id": "MCR", "start_date": "2025-01-01"}],
    )  # fmt: skip
    result = evaluate(read_bundle(folder), Month.parse("2025-03"))
    assert result.capitation.select("payer_id", "members", "pmpm", "amount").rows() == [
        ("MCR", 1, D("12.50"), D("12.50"))
    ]
    totals = result.revenue_by_payer.filter(result.revenue_by_payer["code"] == "TOTAL")
    assert totals["allowed_amount"].to_list() == [D("60.49")]  # not 72.99


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ConfigError, match="ends"):
        months_between(Month.parse("2025-05"), Month.parse("2025-03"))


def test_the_revenue_command_prints_payer_code_and_month_totals_and_writes_csv(
    tmp_path: Path,
) -> None:
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 25}])  # fmt: skip
    out = tmp_path / "rev"
    result = invoke("revenue", folder, "--from", "2025-02", "--to", "2025-03", "--out", out)
    assert result.exit_code == 0, result.output
    for heading in ("By payer:", "By code:", "By month:"):
        assert heading in result.output
    assert "60.49" in result.output
    with (out / "revenue_by_month.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["month"], r["allowed_amount"]) for r in rows] == [
        ("2025-02", ""),
        ("2025-03", "60.49"),
        ("GRAND TOTAL", "60.49"),
    ]


def test_evaluate_with_apply_deductible_moves_the_first_dollars_to_the_patient(
    tmp_path: Path,
) -> None:
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 25}])  # fmt: skip
    plain, charged = tmp_path / "plain", tmp_path / "charged"
    assert invoke("evaluate", folder, "--month", "2025-03", "--out", plain).exit_code == 0
    result = invoke(
        "evaluate", folder, "--month", "2025-03", "--out", charged, "--apply-deductible"
    )
    assert result.exit_code == 0, result.output

    def line(folder: Path) -> dict[str, str]:
        with (folder / "claim_lines.csv").open(encoding="utf-8", newline="") as handle:
            return next(csv.DictReader(handle))

    assert (line(plain)["payer_amount"], line(plain)["patient_amount"]) == ("47.42", "12.10")
    assert (line(charged)["payer_amount"], line(charged)["patient_amount"]) == ("0.00", "60.49")


def test_an_imported_cms_release_replaces_the_shipped_one_in_evaluate(tmp_path: Path) -> None:
    # The excerpt of the 2025 file with 99490's work RVU raised from 1.00 to 2.00:
    # (2.00 + 0.81 + 0.06) x 32.3465 = 92.83 once imported; 60.49 from the shipped data.
    excerpt = ROOT / "tests" / "data" / "cms" / "pprrvu_2025_excerpt.csv"
    changed = tmp_path / "PPRRVU25_changed.csv"
    changed.write_text(
        excerpt.read_text(encoding="utf-8").replace("\n99490,,,A,,1,", "\n99490,,,A,,2,"),
        encoding="utf-8",
    )
    assert changed.read_text(encoding="utf-8") != excerpt.read_text(encoding="utf-8")
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 25}])  # fmt: skip
    db = f"sqlite:///{tmp_path / 'store.db'}"

    def allowed(out: Path) -> str:
        with (out / "claim_lines.csv").open(encoding="utf-8", newline="") as handle:
            return next(csv.DictReader(handle))["allowed_amount"]

    shipped_out, imported_out = tmp_path / "shipped", tmp_path / "imported"
    result = invoke("evaluate", folder, "--month", "2025-03", "--out", shipped_out, "--db", db)
    assert result.exit_code == 0, result.output
    result = invoke("fees", "import-pfs", changed, "--year", "2025", "--db", db)
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", folder, "--month", "2025-03", "--out", imported_out, "--db", db)
    assert result.exit_code == 0, result.output
    assert (allowed(shipped_out), allowed(imported_out)) == ("60.49", "92.83")


def test_a_short_gap_with_nothing_logged_is_not_money_left_on_the_table(
    tmp_path: Path,
) -> None:
    # P1 logged 15 minutes (started, 5 short); P2 has consent and conditions but nothing
    # logged: its 99490 gap is short, not started, and carries no potential amount.
    folder = write_bundle(
        tmp_path / "b",
        [{"encounter_id": "E1", "date": "2025-03-04", "minutes": 15}],
        patients=[{"patient_id": "P2", "birth_date": "1950-04-02", "part_b_start": "2015-04-01"}],
        coverages=[{"patient_id": "P2", "payer_id": "MCR", "start_date": "2015-04-01"}],
        conditions=[{"patient_id": "P2", "icd10": "I50.22"},
                    {"patient_id": "P2", "icd10": "E11.9"}],
        consents=[{"consent_id": "C2", "patient_id": "P2", "program": "ccm",
                   "obtained_date": "2025-01-10", "method": "verbal",
                   "billing_practitioner_id": "DR_A"}],
        care_plans=[{"care_plan_id": "CP2", "patient_id": "P2", "program": "ccm",
                     "date": "2025-01-10", "action": "established"}],
        encounters=[{"encounter_id": "V2", "patient_id": "P2", "date": "2024-11-05",
                     "minutes": 25, "performer_id": "DR_A", "billing_practitioner_id": "DR_A",
                     "kind": "office_visit", "cpt": "99214"}],
    )  # fmt: skip
    data = read_bundle(folder)
    result = evaluate(data, Month.parse("2025-03"))
    gaps = result.gaps.filter(result.gaps["code"] == "99490").sort("patient_id")
    assert gaps.select("patient_id", "status", "minutes_logged").rows() == [
        ("P1", "short", 15), ("P2", "short", 0),
    ]  # fmt: skip
    assert gaps["potential_amount"].to_list() == [D("60.49"), None]
    month = revenue(data, [Month.parse("2025-03")]).by_month.row(0, named=True)
    assert (month["left_on_table"], month["within_reach_gaps"], month["not_started_gaps"]) == (
        D("60.49"), 1, 1,
    )  # fmt: skip


def test_a_pending_tcm_visit_is_valued_at_the_tcm_amount_on_its_deadline(tmp_path: Path) -> None:
    # Discharged Tue 2025-03-25, contacted 03-26; no visit yet on 03-31: 99495 is short
    # (visit_pending, due 2025-04-08) and worth 99495's 2025 national amount, 201.20.
    tables: dict[str, Any] = {
        "practitioners": [
            {"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD"},
            {"practitioner_id": "RN1", "credential": "RN"},
        ],
        "payers": [{"payer_id": "MCR", "kind": "medicare"}],
        "patients": [{"patient_id": "P1", "birth_date": "1946-06-12"}],
        "coverages": [{"patient_id": "P1", "payer_id": "MCR", "start_date": "2011-07-01"}],
        "discharges": [{"discharge_id": "D1", "patient_id": "P1", "admit_date": "2025-03-20",
                        "discharge_date": "2025-03-25", "setting": "inpatient_acute",
                        "disposition": "home"}],
        "encounters": [{"encounter_id": "C1", "patient_id": "P1", "date": "2025-03-26",
                        "minutes": 10, "performer_id": "RN1", "billing_practitioner_id": "DR_A",
                        "kind": "tcm_contact"}],
    }  # fmt: skip
    write_scenario_bundle(tables, tmp_path / "b")
    result = evaluate(read_bundle(tmp_path / "b"), Month.parse("2025-03"))
    pending = result.gaps.filter(result.gaps["reason"] == "visit_pending")
    assert pending.select("code", "status", "deadline").rows()[0][:2] == ("99495", "short")
    assert pending.filter(pending["code"] == "99495")["potential_amount"].to_list() == [D("201.20")]


def test_every_revenue_table_ends_with_a_grand_total_row(tmp_path: Path) -> None:
    folder = write_bundle(
        tmp_path / "b",
        [
            {"encounter_id": "E1", "date": "2025-02-04", "minutes": 25},
            {"encounter_id": "E2", "date": "2025-03-04", "minutes": 45},
        ],
    )
    out = tmp_path / "rev"
    result = invoke("revenue", folder, "--from", "2025-02", "--to", "2025-03", "--out", out)
    assert result.exit_code == 0, result.output
    for filename, label in (
        ("revenue_by_payer_range.csv", "payer_id"),
        ("revenue_by_code.csv", "code"),
        ("revenue_by_month.csv", "month"),
    ):
        with (out / filename).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r[label] for r in rows].count("GRAND TOTAL") == 1, filename
        assert rows[-1][label] == "GRAND TOTAL", filename
        assert rows[-1]["allowed_amount"] == "166.91", filename  # 60.49 + 106.42
        assert rows[-1]["lines"] == str(sum(int(r["lines"]) for r in rows[:-1])), filename
    printed = [line.split() for line in result.output.splitlines()]
    assert sum(1 for words in printed if words[:2] == ["GRAND", "TOTAL"]) == 3
    by_payer = evaluate(read_bundle(folder), Month.parse("2025-03")).revenue_by_payer
    assert by_payer.select("payer_id", "code").rows()[-2:] == [
        ("MCR", "TOTAL"), ("GRAND TOTAL", "GRAND TOTAL"),
    ]  # fmt: skip


def test_only_the_closest_of_two_alternative_codes_is_money_left_on_the_table(
    tmp_path: Path,
) -> None:
    # DR_A personally logs 18 minutes: staff CCM is 2 short, the practitioner's CCM 12
    # short. Only one of them can bill: the closer one (60.49) is counted, not both.
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 18, "performer_id": "DR_A"}])  # fmt: skip
    result = evaluate(read_bundle(folder), Month.parse("2025-03"))
    short = result.gaps.filter(result.gaps["status"] == "short").sort("code")
    assert short.select("code", "minutes_needed", "potential_amount").rows() == [
        ("99490", 2, D("60.49")), ("99491", 12, None),
    ]  # fmt: skip


def test_a_gap_that_would_only_replace_a_billed_alternative_is_not_left_on_the_table(
    tmp_path: Path,
) -> None:
    # 25 minutes by DR_A personally: staff CCM bills; the practitioner's CCM is 5 short,
    # but closing it would replace the staff line, not add a second one.
    folder = write_bundle(tmp_path / "b", [{"encounter_id": "E1", "date": "2025-03-04",
                                            "minutes": 25, "performer_id": "DR_A"}])  # fmt: skip
    result = evaluate(read_bundle(folder), Month.parse("2025-03"))
    assert result.claim_lines["code"].to_list() == ["99490"]
    gap = result.gaps.filter(result.gaps["code"] == "99491")
    assert gap.select("status", "minutes_needed", "potential_amount").rows() == [("short", 5, None)]
