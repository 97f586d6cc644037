"""Medicaid T-codes: what the YAML rule cases cannot express.

- the nurse-visit codes (T1001/T1002/T1003), evaluated with this family alone because a
  nurse visit is also considered by the 99211 family;
- the first verified month of the family's own parameters;
- the state table's validation (a malformed table is a ConfigError naming the field);
- that the family's own minute counting agrees with the shared ``daily_minutes`` when the
  state accepts every credential the shared rules count;
- that ``billing explain`` shows the criteria.

Bundles start from the ``base`` of tests/rule_cases/medicaid.yaml.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.io.ingest import read_bundle
from billing_engine.params.parameters import ParameterSet
from billing_engine.services.evaluation import EvaluationResult, default_parameters, evaluate
from cli.main import billing
from code_rules.medicaid import rule as medicaid
from code_rules.medicaid.facts_days import day_facts
from code_rules.medicaid.state_table import programs, state_table
from tests.scenario_io import write_scenario_bundle

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "rule_cases" / "medicaid.yaml"
MONTH = "2025-05"
ONLY_MEDICAID = {"medicaid": medicaid.evaluate}
NURSING_ON = {"medicaid.state_overrides": {"MI": {"nurse_visit_codes": True}}}


def tables(extra: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    doc = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    out: dict[str, Any] = copy.deepcopy(doc["base"])
    defaults = doc["defaults"]["encounters"]
    for name, rows in (extra or {}).items():
        if name == "coverages":
            out[name] = rows
            continue
        if name == "encounters":
            out[name] += [{"encounter_id": f"E{i}", **defaults, **r} for i, r in enumerate(rows, 1)]
        else:
            out.setdefault(name, []).extend(rows)
    return out


def run(
    folder: Path,
    extra: dict[str, list[dict[str, Any]]] | None = None,
    settings: dict[str, Any] | None = None,
    month: str = MONTH,
    params: ParameterSet | None = None,
) -> EvaluationResult:
    write_scenario_bundle(tables(extra), folder)
    return evaluate(
        read_bundle(folder),
        Month.parse(month),
        settings=settings,
        params=params,
        families=ONLY_MEDICAID,
    )


def lines_of(result: EvaluationResult) -> list[tuple[str, int]]:
    return sorted((r["code"], r["units"]) for r in result.claim_lines.to_dicts())


def gaps_of(result: EvaluationResult) -> list[tuple[str, str]]:
    return sorted((r["code"], r["reason"]) for r in result.gaps.to_dicts())


def visit(minutes: int, performer: str = "RN1", **extra: Any) -> dict[str, Any]:
    return {
        "encounter_id": f"NV{minutes}{performer}",
        "date": "2025-05-06",
        "minutes": minutes,
        "performer_id": performer,
        "kind": "nurse_visit",
        "program": None,
        "contact_mode": "in_person",
        **extra,
    }


LPN = {"practitioner_id": "LPN1", "credential": "LPN"}


# --------------------------------------------------------------------------- nursing codes


def test_nurse_visits_bill_no_t_code_by_default(tmp_path: Path) -> None:
    result = run(tmp_path, {"encounters": [visit(20)]})
    assert lines_of(result) == []
    assert gaps_of(result) == []


def test_an_enabled_state_bills_an_rn_visit_per_fifteen_minutes(tmp_path: Path) -> None:
    # 23 minutes under the 8-minute rule: 15 + 8 = 2 units
    result = run(tmp_path, {"encounters": [visit(23)]}, NURSING_ON)
    assert lines_of(result) == [("T1002", 2)]
    line = result.claim_lines.to_dicts()[0]
    assert line["date_of_service"] == dt.date(2025, 5, 6)
    assert line["payer_id"] == "MCD_MI"


def test_an_enabled_state_bills_an_lpn_visit_with_the_lpn_code(tmp_path: Path) -> None:
    extra = {"practitioners": [LPN], "encounters": [visit(20, "LPN1")]}  # 20 -> 1 unit
    assert lines_of(run(tmp_path, extra, NURSING_ON)) == [("T1003", 1)]


def test_with_every_family_on_an_enabled_state_bills_the_t_code_and_suppresses_99211(
    tmp_path: Path,
) -> None:
    extra = {
        "encounters": [
            {**visit(23), "encounter_id": "NV0", "date": "2025-03-03"},  # established patient
            visit(23),
        ]
    }
    write_scenario_bundle(tables(extra), tmp_path)
    result = evaluate(read_bundle(tmp_path), Month.parse(MONTH), settings=NURSING_ON)
    assert lines_of(result) == [("T1002", 2)]
    kept = result.gaps.filter(pl.col("code") == "99211").to_dicts()
    assert [(g["status"], g["reason"]) for g in kept] == [("suppressed", "conflict")]
    assert "T1002" in kept[0]["detail"]


def test_a_nursing_assessment_bills_one_assessment_unit_instead(tmp_path: Path) -> None:
    extra = {"encounters": [visit(40, activities="nursing_assessment;education")]}
    assert lines_of(run(tmp_path, extra, NURSING_ON)) == [("T1001", 1)]


def test_a_nurse_visit_below_the_first_unit_is_a_time_gap(tmp_path: Path) -> None:
    result = run(tmp_path, {"encounters": [visit(7)]}, NURSING_ON)  # 7 < 8
    assert lines_of(result) == []
    gap = result.gaps.to_dicts()[0]
    assert (gap["code"], gap["reason"], gap["minutes_needed"]) == (
        "T1002",
        "time_below_threshold",
        1,
    )


def test_a_medical_assistant_visit_is_left_to_the_other_families(tmp_path: Path) -> None:
    result = run(tmp_path, {"encounters": [visit(20, "MA1")]}, NURSING_ON)
    assert lines_of(result) == []
    assert gaps_of(result) == []


def test_nursing_codes_need_medicaid_as_the_primary_coverage(tmp_path: Path) -> None:
    coverages = [
        {"patient_id": "P1", "payer_id": "MCR", "start_date": "2015-01-01", "rank": 1},
        {"patient_id": "P1", "payer_id": "MCD_MI", "start_date": "2015-01-01", "rank": 2},
    ]
    result = run(tmp_path, {"coverages": coverages, "encounters": [visit(20)]}, NURSING_ON)
    assert lines_of(result) == []
    assert gaps_of(result) == []


def test_a_payer_listing_the_nursing_code_as_not_covered_gets_a_gap(tmp_path: Path) -> None:
    extra = {
        "payer_codes": [{"payer_id": "MCD_MI", "code": "T1002", "covered": False}],
        "encounters": [visit(20)],
    }
    assert gaps_of(run(tmp_path, extra, NURSING_ON)) == [("T1002", "payer_not_covered")]


def test_nursing_codes_follow_only_the_states_that_enable_them(tmp_path: Path) -> None:
    settings = {"medicaid.state_overrides": {"AZ": {"nurse_visit_codes": True}}}
    assert lines_of(run(tmp_path, {"encounters": [visit(20)]}, settings)) == []  # P1 is MI


# --------------------------------------------------------------------------- verified dates


def test_the_family_is_refused_before_its_first_verified_month(tmp_path: Path) -> None:
    entry = {"encounters": [{"date": "2015-12-07", "minutes": 30}]}
    with pytest.raises(ParameterNotVerified, match=r"'medicaid\..*not verified for 2015-12-01"):
        run(tmp_path, entry, month="2015-12")


def test_the_first_verified_month_evaluates(tmp_path: Path) -> None:
    extra = {
        "coverages": [{"patient_id": "P1", "payer_id": "MCD_MI", "start_date": "2010-01-01"}],
        "encounters": [{"date": "2016-01-07", "minutes": 30}],
    }
    assert lines_of(run(tmp_path, extra, month="2016-01")) == [("T1016", 2)]


# --------------------------------------------------------------------------- the state table


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MI": {"case_management": {"unit": "weekly"}}}, "MI case_management: unit must be"),
        ({"MI": {"case_management": {"unit_rule": "nope"}}}, "unit_rule must be one of"),
        ({"MI": {"case_management": {"max_units_per_day": 0}}}, "max_units_per_day must be null"),
        ({"MI": {"case_management": {"monthly_min_contacts": -1}}}, "must be a whole number >= 0"),
        ({"MI": {"case_management": {"staff_credentials": "RN"}}}, "must be a list of strings"),
        ({"MI": {"case_management": {"max_units": 3}}}, r"unknown fields \['max_units'\]"),
        ({"MI": {"case_mgmt": {}}}, r"unknown keys \['case_mgmt'\]"),
        ({"MI": {"case_management": "monthly"}}, "must be a mapping of field -> value"),
        ({"MI": {"nurse_visit_codes": "yes"}}, "nurse_visit_codes must be true or false"),
        ({"Michigan": {}}, "two capital letters"),
        ({"MI": 5}, "must be a mapping"),
        ([1], "must be a mapping of state -> rules"),
    ],
)
def test_a_malformed_state_table_is_a_configuration_error(
    tmp_path: Path, overrides: Any, message: str
) -> None:
    entry = {"encounters": [{"date": "2025-05-06", "minutes": 30}]}
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, entry, {"medicaid.state_overrides": overrides})


def test_a_state_table_without_a_default_is_a_configuration_error(tmp_path: Path) -> None:
    params_root = tmp_path / "params"
    for family in ("common", "ccm", "medicaid"):
        shutil.copytree(ROOT / "code_rules" / family, params_root / family)
    path = params_root / "medicaid" / "parameters.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    table = doc["parameters"]["state_rules"]["values"][0]["value"]
    table["MI"] = table.pop("default")
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    entry = {"encounters": [{"date": "2025-05-06", "minutes": 30}]}
    with pytest.raises(ConfigError, match="needs a 'default' entry"):
        run(tmp_path / "bundle", entry, params=ParameterSet.load([params_root]))


def context(folder: Path, extra: dict[str, Any], settings: dict[str, Any] | None = None) -> Any:
    write_scenario_bundle(tables(extra), folder)
    month = Month.parse(MONTH)
    period = default_parameters().for_period(month.start, month.end, settings)
    return EvalContext(read_bundle(folder), month, month.end, period)


def test_the_state_table_completes_a_state_from_default(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"encounters": [entry("E1", DAY, None, 30)]})
    table = state_table(ctx)
    rule = dict(zip(table["state_key"] + "/" + table["program"], table["unit_rule"], strict=True))
    assert rule["AZ/case_management"] == "first_unit_1_minute"
    assert rule["AZ/targeted_case_management"] == "midpoint_8"
    assert rule["default/case_management"] == "midpoint_8"


# --------------------------------------------------------------------------- minutes


def entry(eid: str, date: str, start: str | None, minutes: int, **extra: Any) -> dict[str, Any]:
    return {"encounter_id": eid, "date": date, "start_time": start, "minutes": minutes, **extra}


DAY = "2025-05-06"
TARGETED = "targeted_case_management"
BUSY_DAY = [
    entry("A1", DAY, "09:00", 20),
    entry("A2", DAY, "09:10", 25, performer_id="MA1"),  # A1/A2 union 09:00-09:35
    entry("A3", DAY, None, 6),  # untimed: counts in full
    entry("A4", DAY, "09:30", 30, program="ccm"),  # CCM keeps 09:30-09:35
    entry(
        "A5", DAY, "11:00", 30, kind="office_visit", program=None, performer_id="DR_A", cpt="99213"
    ),
    entry("A6", DAY, "10:50", 25, program=TARGETED, performer_id="LCSW1"),
    entry("A7", DAY, "10:55", 10),  # 10:55-11:05, the visit takes 11:00-11:05
    entry("A8", "2025-05-07", "08:00", 15, billing_practitioner_id="DR_B"),
    entry("A9", "2025-05-09", None, 40, performer_id="CLERK"),  # never counts
]
CCM_CONSENT = {
    "consent_id": "C1",
    "patient_id": "P1",
    "program": "ccm",
    "obtained_date": "2025-01-10",
    "method": "verbal",
    "billing_practitioner_id": "DR_A",
}


def test_the_familys_minutes_agree_with_the_shared_daily_minutes(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"encounters": BUSY_DAY, "consents": [CCM_CONSENT]})
    ours = day_facts(ctx).select(
        "patient_id", "program", "billing_practitioner_id", "date", "counted_minutes"
    )
    shared = (
        nz.daily_minutes(ctx)
        .filter(pl.col("program").is_in(programs(ctx)) & (pl.col("pool") == "all"))
        .select("patient_id", "program", "billing_practitioner_id", "date", "minutes")
    )
    keys = ["patient_id", "program", "billing_practitioner_id", "date"]
    joined = ours.join(shared, on=keys, how="full", coalesce=True, nulls_equal=True).sort(keys)
    mismatched = joined.filter(
        pl.col("counted_minutes").fill_null(0) != pl.col("minutes").fill_null(0)
    )
    assert mismatched.is_empty(), joined
    # and the day is what the comments say: A1/A2 union 09:00-09:35 less CCM 09:30-09:35 = 30,
    # plus untimed 6; A7 10:55-11:05 less the visit from 11:00 = 5 -> 41 minutes, 3 units
    row = joined.filter(
        (pl.col("program") == "case_management") & (pl.col("date") == dt.date(2025, 5, 6))
    )
    assert row["counted_minutes"].to_list() == [41]


# --------------------------------------------------------------------------- explain


def test_explain_shows_the_t_code_criteria_and_the_time_entries(tmp_path: Path) -> None:
    write_scenario_bundle(
        tables({"encounters": [{"date": "2025-05-06", "minutes": 5}]}), tmp_path / "b"
    )
    result = CliRunner().invoke(
        billing, ["explain", str(tmp_path / "b"), "--month", MONTH, "--patient", "P1"]
    )
    assert result.exit_code == 0, result.output
    for text in ("T1016", "time_threshold", "counted_minutes = 5", "time_below_threshold"):
        assert text in result.output
