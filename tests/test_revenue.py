"""Revenue over months (``billing revenue``), money left on the table, and capitation."""

from __future__ import annotations

import copy
import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.evaluate import evaluate
from billing_engine.ingest import read_bundle
from billing_engine.revenue import months_between, revenue
from cli.main import billing
from tests.scenario_io import write_scenario_bundle

ROOT = Path(__file__).resolve().parents[1]
RULE_CASES = ROOT / "tests" / "rule_cases" / "ccm.yaml"
D = Decimal


def write_bundle(folder: Path, entries: list[dict[str, Any]], **extra: Any) -> Path:
    """The CCM rule cases' base practice (P1, Medicare, DR_A) plus `entries`."""
    doc = yaml.safe_load(RULE_CASES.read_text(encoding="utf-8"))
    tables: dict[str, list[dict[str, Any]]] = copy.deepcopy(doc["base"])
    defaults = doc["defaults"]["encounters"]
    tables["encounters"] += [{**defaults, **entry} for entry in entries]
    for name, rows in extra.items():
        tables[name] = tables.get(name, []) + rows
    write_scenario_bundle(tables, folder)
    return folder


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
