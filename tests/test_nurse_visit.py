"""What the 99211 YAML cases cannot say: the first verified month of the nurse-visit
parameters (the whole pipeline stops earlier, at the CCM parameters), and that
``billing explain`` shows every criterion of a nurse visit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.errors import ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import evaluate
from cli.main import billing
from code_rules.nurse_visit import rule as nurse_visit
from tests.scenario_io import write_scenario_bundle

ONLY_NURSE_VISIT = {"nurse_visit": nurse_visit.evaluate}


def tables(prior_date: str, visit_date: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "practitioners": [
            {"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD"},
            {"practitioner_id": "RN1", "credential": "RN"},
        ],
        "payers": [{"payer_id": "MCR", "name": "Medicare", "kind": "medicare"}],
        "patients": [{"patient_id": "P1", "birth_date": "1950-04-02"}],
        "coverages": [{"patient_id": "P1", "payer_id": "MCR", "start_date": "2015-04-01"}],
        "encounters": [
            {
                "encounter_id": "V0",
                "patient_id": "P1",
                "date": prior_date,
                "minutes": 25,
                "performer_id": "DR_A",
                "kind": "office_visit",
                "cpt": "99213",
            },
            {
                "encounter_id": "N1",
                "patient_id": "P1",
                "date": visit_date,
                "minutes": 10,
                "performer_id": "RN1",
                "billing_practitioner_id": "DR_A",
                "kind": "nurse_visit",
            },
        ],
    }


def test_the_first_verified_month_of_the_nurse_visit_parameters_evaluates(
    tmp_path: Path,
) -> None:
    write_scenario_bundle(tables("2020-11-05", "2021-01-04"), tmp_path)
    result = evaluate(read_bundle(tmp_path), Month.parse("2021-01"), families=ONLY_NURSE_VISIT)
    assert result.claim_lines.get_column("code").to_list() == ["99211"]


def test_a_month_before_the_nurse_visit_parameters_is_refused_naming_one(
    tmp_path: Path,
) -> None:
    write_scenario_bundle(tables("2020-11-05", "2020-12-14"), tmp_path)
    with pytest.raises(ParameterNotVerified, match=r"'nurse_visit\..*not verified for 2020-12-01"):
        evaluate(read_bundle(tmp_path), Month.parse("2020-12"), families=ONLY_NURSE_VISIT)


def test_explain_shows_every_nurse_visit_criterion(tmp_path: Path) -> None:
    write_scenario_bundle(tables("2024-11-05", "2025-04-14"), tmp_path)
    result = CliRunner().invoke(
        billing, ["explain", str(tmp_path), "--month", "2025-04", "--patient", "P1"]
    )
    assert result.exit_code == 0, result.output
    for name in (
        "billing_practitioner_known",
        "billing_practitioner_qualified",
        "performer_qualified",
        "coverage",
        "payer_pays",
        "established_patient",
        "no_same_day_em",
        "no_same_day_drug_administration",
        "not_already_billed",
        "once_per_day",
    ):
        assert f"[pass] {name}:" in result.output, name
