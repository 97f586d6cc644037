"""TCM checks the YAML rule cases cannot express: the first verified month of the TCM
parameters (other families' parameters start later, so only the TCM family is run
here), and a bundle without any discharge."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from billing_engine.calendar import Month
from billing_engine.errors import ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.services.evaluation import EvaluationResult, evaluate
from code_rules.tcm import rule as tcm
from tests.scenario_io import write_scenario_bundle


def tables(discharge: str, contact: str, visit: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "practitioners": [
            {"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD"},
            {"practitioner_id": "RN1", "credential": "RN"},
        ],
        "payers": [{"payer_id": "MCR", "kind": "medicare"}],
        "patients": [{"patient_id": "P1", "birth_date": "1946-06-12"}],
        "coverages": [{"patient_id": "P1", "payer_id": "MCR", "start_date": "2011-07-01"}],
        "discharges": [
            {
                "discharge_id": "D1",
                "patient_id": "P1",
                "admit_date": discharge,
                "discharge_date": discharge,
                "setting": "observation",
                "disposition": "home",
            }
        ],
        "encounters": [
            {
                "encounter_id": "C1",
                "patient_id": "P1",
                "date": contact,
                "minutes": 10,
                "performer_id": "RN1",
                "billing_practitioner_id": "DR_A",
                "kind": "tcm_contact",
            },
            {
                "encounter_id": "V1",
                "patient_id": "P1",
                "date": visit,
                "minutes": 30,
                "performer_id": "DR_A",
                "kind": "office_visit",
                "cpt": "99215",
                "mdm": "high",
                "activities": "medication_reconciliation",
            },
        ],
    }


def run_tcm(rows: dict[str, list[dict[str, Any]]], month: str, folder: Path) -> EvaluationResult:
    write_scenario_bundle(rows, folder)
    return evaluate(read_bundle(folder), Month.parse(month), families={"tcm": tcm.evaluate})


def test_the_first_verified_month_bills_tcm(tmp_path: Path) -> None:
    # Thu 2020-01-02 discharge; Fri 01-03 = business day 1; visit Tue 01-07 = day 5
    result = run_tcm(tables("2020-01-02", "2020-01-03", "2020-01-07"), "2020-01", tmp_path)
    lines = result.claim_lines.to_dicts()
    assert [(r["code"], r["date_of_service"]) for r in lines] == [("99496", dt.date(2020, 1, 7))]


def test_the_month_before_the_first_verified_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterNotVerified, match=r"'tcm\..*' is not verified for 2019-12-01"):
        run_tcm(tables("2019-12-02", "2019-12-03", "2019-12-05"), "2019-12", tmp_path)


def test_a_bundle_without_discharges_has_no_tcm_outcome(tmp_path: Path) -> None:
    rows = tables("2025-06-04", "2025-06-05", "2025-06-09")
    rows.pop("discharges")
    result = run_tcm(rows, "2025-06", tmp_path)
    assert result.outcomes.is_empty()
