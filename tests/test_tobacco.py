"""What the tobacco YAML cases cannot say: the first verified month of the tobacco
parameters (the whole pipeline stops earlier, at other families' parameters), and that
``billing explain`` shows every criterion of a counseling session."""

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
from code_rules.tobacco import rule as tobacco
from tests.scenario_io import write_scenario_bundle

ONLY_TOBACCO = {"tobacco": tobacco.evaluate}


def tables(session_date: str, minutes: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "practitioners": [{"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD"}],
        "payers": [{"payer_id": "MCR", "name": "Medicare", "kind": "medicare"}],
        "patients": [{"patient_id": "P1", "birth_date": "1950-04-02"}],
        "coverages": [{"patient_id": "P1", "payer_id": "MCR", "start_date": "2015-04-01"}],
        "conditions": [{"patient_id": "P1", "icd10": "F17.210"}],
        "encounters": [
            {
                "encounter_id": "T1",
                "patient_id": "P1",
                "date": session_date,
                "minutes": minutes,
                "performer_id": "DR_A",
                "kind": "tobacco_counseling",
            }
        ],
    }


def test_the_first_verified_month_of_the_tobacco_parameters_evaluates(tmp_path: Path) -> None:
    write_scenario_bundle(tables("2016-10-03", 12), tmp_path)
    result = evaluate(read_bundle(tmp_path), Month.parse("2016-10"), families=ONLY_TOBACCO)
    assert result.claim_lines.get_column("code").to_list() == ["99407"]


def test_a_month_before_the_tobacco_parameters_is_refused_naming_one(tmp_path: Path) -> None:
    write_scenario_bundle(tables("2016-09-12", 12), tmp_path)
    with pytest.raises(ParameterNotVerified, match=r"'tobacco\..*not verified for 2016-09-01"):
        evaluate(read_bundle(tmp_path), Month.parse("2016-09"), families=ONLY_TOBACCO)


@pytest.mark.parametrize(("minutes", "code"), [(8, "99406"), (12, "99407")])
def test_explain_shows_every_tobacco_criterion(tmp_path: Path, minutes: int, code: str) -> None:
    write_scenario_bundle(tables("2025-03-03", minutes), tmp_path)
    result = CliRunner().invoke(
        billing, ["explain", str(tmp_path), "--month", "2025-03", "--patient", "P1"]
    )
    assert result.exit_code == 0, result.output
    assert f"== {code} " in result.output
    names = ["performer_qualified", "billing_practitioner_qualified", "coverage", "payer_pays"]
    names += ["tobacco_use", "not_already_billed", "session_limit"]
    if code == "99406":
        names.append("time_threshold")
    for name in names:
        assert f"[pass] {name}:" in result.output, name
