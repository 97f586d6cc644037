"""IBT for obesity: what the YAML rule cases cannot express.

The YAML cases (tests/rule_cases/obesity.yaml) run every family; these run the obesity
family alone where other families' parameters would decide first (the start of the
verified range), and check properties over reordered and repeated inputs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from billing_engine.calendar import Month
from billing_engine.errors import ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import EvaluationResult, evaluate
from code_rules.obesity import rule as obesity
from tests.scenario_io import write_scenario_bundle

NPI = "1765432103"


def tables(visits: list[str], claims: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """One Medicare patient with BMI 32.1 and 100 kg on the first visit date."""
    first = min([*visits, *claims])
    return {
        "practitioners": [
            {"practitioner_id": "NP1", "npi": NPI, "credential": "NP", "primary_care": True}
        ],
        "payers": [{"payer_id": "MCR", "name": "Medicare", "kind": "medicare"}],
        "patients": [{"patient_id": "P1", "birth_date": "1955-03-02"}],
        "coverages": [{"patient_id": "P1", "payer_id": "MCR", "start_date": "2010-01-01"}],
        "measurements": [
            {"patient_id": "P1", "date": first, "kind": "bmi", "value": 32.1},
            {"patient_id": "P1", "date": first, "kind": "weight_kg", "value": 100.0},
            *extra.get("measurements", []),
        ],
        "encounters": [
            {
                "encounter_id": f"V{i:02d}",
                "patient_id": "P1",
                "date": day,
                "minutes": 15,
                "performer_id": "NP1",
                "billing_practitioner_id": "NP1",
                "kind": "obesity_counseling",
            }
            for i, day in enumerate(visits)
        ],
        "claims_history": [
            {
                "patient_id": "P1",
                "code": "G0447",
                "units": 1,
                "date_of_service": day,
                "billing_npi": NPI,
                "status": "paid",
            }
            for day in claims
        ],
    }


def run(
    tmp_path: Path, data: dict[str, Any], month: str, settings: dict[str, Any] | None = None
) -> EvaluationResult:
    write_scenario_bundle({name: rows for name, rows in data.items() if rows}, tmp_path)
    return evaluate(
        read_bundle(tmp_path),
        Month.parse(month),
        settings=settings,
        families={"obesity": obesity.evaluate},
    )


def billed_dates(result: EvaluationResult) -> list[dt.date]:
    return sorted(result.claim_lines.get_column("date_of_service").to_list())


def test_the_first_verified_month_of_the_obesity_parameters_evaluates(tmp_path: Path) -> None:
    result = run(tmp_path, tables(["2015-01-05"]), "2015-01")
    assert billed_dates(result) == [dt.date(2015, 1, 5)]


def test_a_month_before_the_obesity_parameters_are_verified_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterNotVerified, match=r"not verified for 2014-12-01"):
        run(tmp_path, tables(["2014-12-01"]), "2014-12")


def test_the_decision_does_not_depend_on_the_order_of_the_encounter_rows(tmp_path: Path) -> None:
    days = ["2025-01-06", "2025-01-09", "2025-01-13", "2025-01-16", "2025-01-20", "2025-01-27"]
    forward = run(tmp_path / "a", tables(days), "2025-01")
    backward = run(tmp_path / "b", tables(list(reversed(days))), "2025-01")
    # 01-06 bills, 01-09 too soon, 01-13 (7 after 01-06) bills, 01-16 too soon, 01-20, 01-27
    expected = [dt.date(2025, 1, d) for d in (6, 13, 20, 27)]
    assert billed_dates(forward) == expected
    assert billed_dates(backward) == expected
    assert sorted(forward.gaps.get_column("reason").to_list()) == ["too_soon", "too_soon"]


def test_every_twelve_months_a_new_benefit_period_starts_at_its_first_visit(
    tmp_path: Path,
) -> None:
    # periods: 2023-03-06 -> 2024-03-06; the first visit on or after that, 2024-05-13, starts
    # the second (-> 2025-05-13); 2025-05-20 opens the third, so 2025-05-26 is 6 days later
    # in its month 1 and too soon, while 2025-05-27 would be a week later.
    claims = ("2023-03-06", "2024-05-13", "2024-12-02", "2025-05-20")
    data = tables(
        ["2025-05-26"],
        claims,
        measurements=[{"patient_id": "P1", "date": "2025-05-20", "kind": "bmi", "value": 31.0}],
    )
    result = run(tmp_path, data, "2025-05")
    assert result.claim_lines.height == 0
    gap = result.gaps.row(0, named=True)
    assert gap["reason"] == "too_soon"
    facts = result.rule_sets[0].facts.row(0, named=True)
    assert facts["anchor"] == dt.date(2025, 5, 20)
    assert facts["schedule_month"] == 1


def test_the_cost_sharing_waiver_is_a_parameter_pricing_can_read(tmp_path: Path) -> None:
    result = run(tmp_path, tables(["2025-01-06"]), "2025-01")
    assert result.parameters_used["obesity.cost_sharing_waived"].value is True
