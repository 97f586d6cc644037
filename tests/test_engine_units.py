"""Unit tests of the machinery: parameters, calendar, conflict resolution, time counting.

Parameters and conflicts are exercised on tiny synthetic inputs (a parameters.yaml
written to tmp_path, a hand-built outcomes frame and precedence table), so these tests
say what the machinery does independently of the CCM rules. Time counting (interval
union, TIME-5) is checked through the public pipeline, ``evaluate``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_engine.calendar import (
    Month,
    add_business_days,
    add_business_days_expr,
    federal_holidays,
)
from billing_engine.engine.conflicts import (
    AddOn,
    ConflictTable,
    HistoryConflict,
    PrecedenceGroup,
    UnitCap,
    resolve,
)
from billing_engine.engine.kernel import OUTCOME_SCHEMA, STATUS_BLOCKED, STATUS_SUPPRESSED
from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.io.bundle import Bundle
from billing_engine.params.parameters import ParameterSet
from billing_engine.services.evaluation import EvaluationResult, evaluate

# --------------------------------------------------------------------------- parameters

PARAMETERS_YAML = """\
namespace: demo
description: A tiny parameter file for the loader's tests
verified_through: 2025-12-31
parameters:
  threshold_minutes:
    description: Minutes needed; the value changes on 2025-03-09.
    unit: minute
    rules: [CCM-T1]
    values:
      - {from: 2024-01-01, value: 20, source: [SRC-OLD]}
      - {from: 2025-03-09, value: 25, source: [SRC-NEW, SRC-OTHER]}
  short_lived:
    description: Verified only through the end of 2024.
    unit: minute
    verified_through: 2024-12-31
    values:
      - {from: 2024-01-01, value: 7, source: [SRC-OLD]}
  date_rule:
    description: A documented choice.
    unit: choice
    setting: true
    choices: [threshold_met, month_end]
    values:
      - {from: 2024-01-01, value: threshold_met, source: [SRC-OLD]}
  free_setting:
    description: A setting without a list of choices.
    unit: CMS POS code
    setting: true
    values:
      - {from: 2024-01-01, value: "11", source: [SRC-OLD]}
sources:
  SRC-OLD: {title: The old rule, address: https://example.org/old}
  SRC-NEW: {title: The new rule, address: https://example.org/new}
  SRC-OTHER: {title: Another page on the new rule, address: https://example.org/other}
"""


def _parameter_set(tmp_path: Path, text: str = PARAMETERS_YAML) -> ParameterSet:
    folder = tmp_path / "rules" / "demo"
    folder.mkdir(parents=True)
    (folder / "parameters.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return ParameterSet.load([tmp_path / "rules"])


def test_a_parameter_value_switches_on_its_effective_date(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    param = params.get("demo.threshold_minutes")
    assert param.at(dt.date(2025, 3, 8)).value == 20
    assert param.at(dt.date(2025, 3, 8)).sources == ("SRC-OLD",)
    assert param.at(dt.date(2025, 3, 9)).value == 25
    assert param.at(dt.date(2025, 3, 9)).sources == ("SRC-NEW", "SRC-OTHER")
    assert param.at(dt.date(2024, 1, 1)).value == 20


def test_a_period_takes_the_value_in_force_on_its_first_day(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    march = params.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    april = params.for_period(dt.date(2025, 4, 1), dt.date(2025, 4, 30))
    assert march.as_int("demo.threshold_minutes") == 20
    assert april.as_int("demo.threshold_minutes") == 25
    assert march.used["demo.threshold_minutes"].sources == ("SRC-OLD",)


def test_asking_before_the_first_value_raises_naming_the_parameter_and_date(
    tmp_path: Path,
) -> None:
    param = _parameter_set(tmp_path).get("demo.threshold_minutes")
    with pytest.raises(ParameterNotVerified, match=r"demo\.threshold_minutes.*2023-12-31") as err:
        param.at(dt.date(2023, 12, 31))
    assert err.value.parameter == "demo.threshold_minutes"
    assert err.value.on == dt.date(2023, 12, 31)


def test_asking_after_verified_through_raises_naming_the_parameter(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    with pytest.raises(ParameterNotVerified, match=r"demo\.threshold_minutes.*2026-01-01"):
        params.get("demo.threshold_minutes").at(dt.date(2026, 1, 1))
    # a parameter's own verified_through overrides the file's
    with pytest.raises(ParameterNotVerified, match=r"demo\.short_lived"):
        params.get("demo.short_lived").at(dt.date(2025, 1, 1))
    assert params.get("demo.threshold_minutes").at(dt.date(2025, 12, 31)).value == 25


def test_a_period_crossing_verified_through_is_refused(tmp_path: Path) -> None:
    period = _parameter_set(tmp_path).for_period(dt.date(2025, 12, 1), dt.date(2026, 1, 31))
    with pytest.raises(ParameterNotVerified, match=r"demo\.threshold_minutes.*2026-01-31"):
        period["demo.threshold_minutes"]


def test_a_value_without_a_source_is_a_config_error(tmp_path: Path) -> None:
    text = """\
    namespace: demo
    description: x
    verified_through: 2025-12-31
    parameters:
      unsourced:
        description: no source on its value
        values:
          - {from: 2024-01-01, value: 3}
    """
    with pytest.raises(ConfigError, match=r"demo\.unsourced.*no source"):
        _parameter_set(tmp_path, text)


def test_an_empty_source_list_is_a_config_error(tmp_path: Path) -> None:
    text = """\
    namespace: demo
    description: x
    verified_through: 2025-12-31
    parameters:
      unsourced:
        description: an empty source list
        values:
          - {from: 2024-01-01, value: 3, source: []}
    """
    with pytest.raises(ConfigError, match="no source"):
        _parameter_set(tmp_path, text)


def test_a_parameter_without_verified_through_is_a_config_error(tmp_path: Path) -> None:
    text = """\
    namespace: demo
    description: x
    parameters:
      unverified:
        description: neither the file nor the parameter says how far it was verified
        values:
          - {from: 2024-01-01, value: 3, source: [SRC-OLD]}
    """
    with pytest.raises(ConfigError, match="verified_through"):
        _parameter_set(tmp_path, text)


def test_overriding_a_rule_parameter_is_refused(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    with pytest.raises(ConfigError, match=r"demo\.threshold_minutes.*not a setting"):
        params.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31), {"demo.threshold_minutes": 10})


def test_overriding_an_unknown_name_is_refused(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    with pytest.raises(ConfigError, match="unknown parameter"):
        params.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31), {"demo.nope": 1})


def test_a_setting_with_choices_refuses_other_values(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    with pytest.raises(ConfigError, match=r"demo\.date_rule.*must be one of"):
        params.for_period(dt.date(2025, 3, 1), dt.date(2025, 3, 31), {"demo.date_rule": "weekly"})


def test_a_setting_override_is_used_and_marked_overridden(tmp_path: Path) -> None:
    params = _parameter_set(tmp_path)
    period = params.for_period(
        dt.date(2025, 3, 1),
        dt.date(2025, 3, 31),
        {"demo.date_rule": "month_end", "demo.free_setting": "22"},
    )
    assert period.as_str("demo.date_rule") == "month_end"
    assert period.as_str("demo.free_setting") == "22"
    assert period.used["demo.date_rule"].overridden
    assert period.used["demo.date_rule"].sources == ("SRC-OLD",)
    assert [p.name for p in params.settings()] == ["demo.date_rule", "demo.free_setting"]


def test_the_rule_set_version_changes_when_a_value_changes(tmp_path: Path) -> None:
    first = _parameter_set(tmp_path / "a").version()
    again = _parameter_set(tmp_path / "b").version()
    changed = _parameter_set(tmp_path / "c", PARAMETERS_YAML.replace("value: 25", "value: 26"))
    assert first == again
    assert changed.version() != first


# --------------------------------------------------------------------------- calendar


@pytest.mark.parametrize(
    "text", ["2025-13", "2025-00", "2025-3", "25-03", "2025/03", "March 2025", "", "2025-03-01"]
)
def test_a_malformed_month_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="YYYY-MM"):
        Month.parse(text)


def test_a_month_knows_its_first_and_last_day() -> None:
    assert Month.parse("2025-03").start == dt.date(2025, 3, 1)
    assert Month.parse("2025-03").end == dt.date(2025, 3, 31)
    assert Month.parse("2024-02").end == dt.date(2024, 2, 29)  # leap year
    assert Month.parse(" 2025-12 ").shift(1) == Month(2026, 1)
    assert str(Month.parse("2025-01").shift(-1)) == "2024-12"


HOLIDAYS = federal_holidays(2025, 2027)


def test_business_days_skip_the_weekend() -> None:
    friday = dt.date(2025, 3, 7)
    assert add_business_days(friday, 1, HOLIDAYS) == dt.date(2025, 3, 10)  # Monday
    assert add_business_days(dt.date(2025, 3, 6), 2, HOLIDAYS) == dt.date(2025, 3, 10)
    assert add_business_days(dt.date(2025, 3, 8), 1, HOLIDAYS) == dt.date(2025, 3, 10)  # Sat
    assert add_business_days(friday, 0, HOLIDAYS) == friday


def test_business_days_skip_the_observed_independence_day_2026() -> None:
    # 2026-07-04 is a Saturday; the federal holiday is observed on Friday 2026-07-03.
    assert dt.date(2026, 7, 3) in HOLIDAYS
    thursday = dt.date(2026, 7, 2)
    assert add_business_days(thursday, 1, HOLIDAYS) == dt.date(2026, 7, 6)  # Fri, Sat, Sun skipped
    assert add_business_days(dt.date(2026, 7, 1), 2, HOLIDAYS) == dt.date(2026, 7, 6)
    # without observed dates the Friday is an ordinary business day
    actual_only = federal_holidays(2026, 2026, observed=False)
    assert dt.date(2026, 7, 3) not in actual_only
    assert add_business_days(thursday, 1, actual_only) == dt.date(2026, 7, 3)


def _expr_result(days: list[dt.date], n: int) -> list[dt.date]:
    frame = pl.DataFrame({"day": days}, schema={"day": pl.Date})
    out: list[dt.date] = (
        frame.select(add_business_days_expr(pl.col("day"), n, HOLIDAYS)).to_series().to_list()
    )
    return out


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(
        st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2026, 12, 31)),
        min_size=1,
        max_size=30,
    ),
    n=st.integers(min_value=1, max_value=20),
)
def test_the_polars_business_day_expression_agrees_with_the_python_function(
    days: list[dt.date], n: int
) -> None:
    assert _expr_result(days, n) == [add_business_days(d, n, HOLIDAYS) for d in days]


@settings(max_examples=30, deadline=None)
@given(
    days=st.lists(
        st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2026, 12, 31)).filter(
            lambda d: d.weekday() < 5 and d not in HOLIDAYS
        ),
        min_size=1,
        max_size=10,
    )
)
def test_zero_business_days_after_a_business_day_is_that_day_in_both_forms(
    days: list[dt.date],
) -> None:
    assert _expr_result(days, 0) == days


def test_zero_business_days_after_a_weekend_day_is_that_day_in_both_forms() -> None:
    saturday, independence_observed = dt.date(2025, 3, 8), dt.date(2026, 7, 3)
    days = [saturday, independence_observed]
    assert [add_business_days(d, 0, HOLIDAYS) for d in days] == days
    assert _expr_result(days, 0) == days


# --------------------------------------------------------------------------- conflicts

MARCH = Month(2025, 3)
GROUP = PrecedenceGroup(
    id="demo-one-alternative",
    scope="practitioner",
    reason="conflict",
    order=("demo.high", "demo.low"),
    effective_from=dt.date(2022, 1, 1),
    effective_to=None,
    rules=("DEMO-X1",),
    sources=("SRC-DEMO",),
    description="high over low",
)
ONE_PRACTITIONER = PrecedenceGroup(
    id="demo-one-practitioner",
    scope="patient",
    reason="billed_by_other_practitioner",
    order=("demo.high", "demo.low"),
    effective_from=dt.date(2022, 1, 1),
    effective_to=None,
    rules=("DEMO-B1",),
    sources=("SRC-DEMO",),
    description="one practitioner per patient",
)
ADDONS = (AddOn("demo.low.addon", "demo.low.base", ("DEMO-U1",), ("SRC-DEMO",)),)
TABLE = ConflictTable((GROUP, ONE_PRACTITIONER), ADDONS, dt.date(2026, 12, 31))


def _outcome(rule_key: str, code: str, is_line: bool = True, **values: Any) -> dict[str, Any]:
    alternative, _, part = rule_key.rpartition(".")
    row: dict[str, Any] = dict.fromkeys(OUTCOME_SCHEMA)
    row.update(
        patient_id="P1",
        billing_practitioner_id="DR_A",
        payer_id="MCR",
        code=code,
        family="demo",
        rule_key=rule_key,
        alternative=alternative,
        base_key=f"{alternative}.base" if part == "addon" else None,
        is_line=is_line,
        units=1 if is_line else None,
        date_of_service=dt.date(2025, 3, 10) if is_line else None,
        period_start=MARCH.start,
        period_end=MARCH.end,
        status=None if is_line else "short",
        reason=None if is_line else "time_below_threshold",
        minutes_logged=70,
        minutes_needed=None if is_line else 5,
        evidence=["E1"],
    )
    row.update(values)
    return row


def _resolve(rows: list[dict[str, Any]], table: ConflictTable = TABLE) -> pl.DataFrame:
    outcomes = pl.DataFrame(rows, schema=OUTCOME_SCHEMA)
    return resolve(outcomes, MARCH.start, MARCH.end, table)


def _row(frame: pl.DataFrame, **keys: str) -> dict[str, Any]:
    match = frame.filter(*[pl.col(k) == v for k, v in keys.items()])
    assert match.height == 1, f"{keys}: {match.height} rows in {frame}"
    return match.row(0, named=True)


def test_the_lower_alternative_is_suppressed_naming_the_code_kept() -> None:
    result = _resolve(
        [
            _outcome("demo.low.base", "LOW-1"),
            _outcome("demo.low.addon", "LOW-2", units=2),
            _outcome("demo.high.base", "HIGH-1"),
        ]
    )
    high = _row(result, code="HIGH-1")
    assert high["is_line"] and high["status"] is None
    for code in ("LOW-1", "LOW-2"):
        low = _row(result, code=code)
        assert not low["is_line"]
        assert low["status"] == STATUS_SUPPRESSED
        assert low["reason"] == "conflict"
        assert "HIGH-1" in low["detail"]
        assert low["units"] is None and low["date_of_service"] is None
    assert result.height == 3  # nothing is dropped


def test_a_short_add_on_gap_of_the_losing_alternative_goes_with_it() -> None:
    result = _resolve(
        [
            _outcome("demo.low.base", "LOW-1"),
            _outcome("demo.low.addon", "LOW-2", is_line=False),
            _outcome("demo.high.base", "HIGH-1"),
        ]
    )
    addon = _row(result, code="LOW-2")
    assert (addon["status"], addon["reason"], addon["minutes_needed"]) == (
        STATUS_SUPPRESSED,
        "conflict",
        None,
    )


def test_alternatives_of_different_practitioners_are_not_compared_by_a_practitioner_group() -> None:
    table = ConflictTable((GROUP,), (), dt.date(2026, 12, 31))
    result = _resolve(
        [
            _outcome("demo.low.base", "LOW-1", billing_practitioner_id="DR_B"),
            _outcome("demo.high.base", "HIGH-1"),
        ],
        table,
    )
    assert result.filter(pl.col("is_line")).height == 2


def test_the_patient_group_keeps_the_practitioner_with_more_minutes() -> None:
    result = _resolve(
        [
            _outcome("demo.low.base", "LOW-1", minutes_logged=25),
            _outcome("demo.low.base", "LOW-1", billing_practitioner_id="DR_B", minutes_logged=30),
        ]
    )
    kept = _row(result, billing_practitioner_id="DR_B")
    lost = _row(result, billing_practitioner_id="DR_A")
    assert kept["is_line"]
    assert not lost["is_line"]
    assert (lost["status"], lost["reason"]) == (STATUS_SUPPRESSED, "billed_by_other_practitioner")
    assert "DR_B" in lost["detail"] and "LOW-1" in lost["detail"]


def test_an_add_on_line_without_its_base_line_becomes_add_on_without_base() -> None:
    result = _resolve(
        [
            _outcome("demo.low.base", "LOW-1", is_line=False),
            _outcome("demo.low.addon", "LOW-2", units=2),
        ]
    )
    addon = _row(result, code="LOW-2")
    assert not addon["is_line"]
    assert addon["reason"] == "add_on_without_base"
    assert addon["units"] is None and addon["date_of_service"] is None
    base = _row(result, code="LOW-1")
    assert (base["status"], base["reason"]) == ("short", "time_below_threshold")


def test_an_add_on_line_without_its_base_line_is_a_blocked_gap() -> None:
    result = _resolve(
        [
            _outcome("demo.low.base", "LOW-1", is_line=False),
            _outcome("demo.low.addon", "LOW-2", units=2),
        ]
    )
    addon = _row(result, code="LOW-2")
    assert (addon["status"], addon["reason"]) == (STATUS_BLOCKED, "add_on_without_base")


def test_an_add_on_line_with_its_base_line_stays() -> None:
    result = _resolve([_outcome("demo.low.base", "LOW-1"), _outcome("demo.low.addon", "LOW-2")])
    assert result.filter(pl.col("is_line")).height == 2


def test_a_group_not_in_force_for_the_period_is_not_applied() -> None:
    later = PrecedenceGroup(**{**GROUP.__dict__, "effective_from": dt.date(2025, 4, 1)})
    result = _resolve(
        [_outcome("demo.low.base", "LOW-1"), _outcome("demo.high.base", "HIGH-1")],
        ConflictTable((later,), (), dt.date(2026, 12, 31)),
    )
    assert result.filter(pl.col("is_line")).height == 2


def test_the_conflict_table_refuses_a_period_after_it_was_verified() -> None:
    with pytest.raises(ParameterNotVerified, match="conflicts"):
        TABLE.in_force(dt.date(2027, 1, 1), dt.date(2027, 1, 31))


HISTORY = HistoryConflict(
    id="demo-not-with-oversight",
    alternatives=("demo.low",),
    codes=("OVERSIGHT",),
    scope="practitioner",
    reason="conflict",
    effective_from=dt.date(2022, 1, 1),
    effective_to=None,
    rules=("DEMO-X2",),
    sources=("SRC-DEMO",),
    description="low not with oversight by the same practitioner",
)


def _claims(*rows: tuple[str | None, str, dt.date]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"patient_id": "P1", "claim_practitioner_id": bp, "code": code, "date_of_service": d}
            for bp, code, d in rows
        ],
        schema={
            "patient_id": pl.String,
            "claim_practitioner_id": pl.String,
            "code": pl.String,
            "date_of_service": pl.Date,
        },
    )


def _resolve_with_history(rows: list[dict[str, Any]], history: pl.DataFrame) -> pl.DataFrame:
    table = ConflictTable((), ADDONS, dt.date(2026, 12, 31), history=(HISTORY,))
    outcomes = pl.DataFrame(rows, schema=OUTCOME_SCHEMA)
    return resolve(outcomes, MARCH.start, MARCH.end, table, history)


def test_a_claim_of_an_excluding_code_in_the_period_suppresses_the_line_naming_the_claim() -> None:
    result = _resolve_with_history(
        [_outcome("demo.low.base", "LOW-1"), _outcome("demo.low.addon", "LOW-2")],
        _claims(("DR_A", "OVERSIGHT", dt.date(2025, 3, 20))),
    )
    for code in ("LOW-1", "LOW-2"):
        row = _row(result, code=code)
        assert (row["is_line"], row["status"], row["reason"]) == (False, "suppressed", "conflict")
        assert "OVERSIGHT" in row["detail"] and "2025-03-20" in row["detail"]


def test_an_excluding_claim_by_another_practitioner_or_outside_the_period_changes_nothing() -> None:
    result = _resolve_with_history(
        [_outcome("demo.low.base", "LOW-1"), _outcome("demo.high.base", "HIGH-1")],
        _claims(
            ("DR_B", "OVERSIGHT", dt.date(2025, 3, 20)),
            (None, "OVERSIGHT", dt.date(2025, 3, 21)),
            ("DR_A", "OVERSIGHT", dt.date(2025, 4, 1)),
            ("DR_A", "OTHER", dt.date(2025, 3, 5)),
        ),
    )
    assert result.filter(pl.col("is_line")).height == 2


def _capped(rows: list[dict[str, Any]], cap: int) -> pl.DataFrame:
    table = ConflictTable((), (), dt.date(2026, 12, 31), mue=(UnitCap("CAP-1", cap, (), ()),))
    return resolve(pl.DataFrame(rows, schema=OUTCOME_SCHEMA), MARCH.start, MARCH.end, table)


def test_units_above_the_unit_cap_are_cut_and_a_line_left_with_none_is_a_blocked_gap() -> None:
    result = _capped(
        [
            _outcome("demo.cap.base", "CAP-1", units=2, evidence=["E1"]),
            _outcome("demo.cap.base", "CAP-1", units=2, evidence=["E2"]),
            _outcome("demo.cap.base", "CAP-1", units=1, evidence=["E3"]),
        ],
        cap=3,
    )
    assert result.get_column("units").to_list() == [2, 1, None]
    last = result.row(2, named=True)
    assert (last["is_line"], last["status"], last["reason"]) == (
        False,
        STATUS_BLOCKED,
        "frequency_limit_reached",
    )


def test_the_unit_cap_counts_each_date_of_service_and_practitioner_apart() -> None:
    result = _capped(
        [
            _outcome("demo.cap.base", "CAP-1", units=1),
            _outcome("demo.cap.base", "CAP-1", units=1, date_of_service=dt.date(2025, 3, 11)),
            _outcome("demo.cap.base", "CAP-1", units=1, billing_practitioner_id="DR_B"),
            _outcome("demo.cap.base", "OTHER", units=5),
        ],
        cap=1,
    )
    assert result.filter(pl.col("is_line")).get_column("units").to_list() == [1, 1, 1, 5]


# --------------------------------------------------------------------------- time counting


def _time_bundle(entries: list[dict[str, Any]]) -> Bundle:
    """One consented Medicare patient with two chronic conditions, seen by DR_A in 2024."""
    rows = [
        {
            "encounter_id": "V0",
            "date": dt.date(2024, 11, 5),
            "minutes": 25,
            "performer_id": "DR_A",
            "billing_practitioner_id": "DR_A",
            "kind": "office_visit",
            "cpt": ["99214"],
        },
        *[
            {
                "encounter_id": f"E{i}",
                "performer_id": "RN1",
                "billing_practitioner_id": "DR_A",
                "kind": "care_management",
                "program": "ccm",
                "start_time": None,
                **entry,
            }
            for i, entry in enumerate(entries, start=1)
        ],
    ]
    encounters = pl.DataFrame(
        [{"patient_id": "P1", "cpt": None, **row} for row in rows],
        schema_overrides={"start_time": pl.Time, "cpt": pl.List(pl.String)},
    )
    return Bundle.from_frames(
        {
            "practitioners": pl.DataFrame(
                {
                    "practitioner_id": ["DR_A", "RN1", "MA1"],
                    "npi": ["1234567893", None, None],
                    "credential": ["MD", "RN", "MA"],
                }
            ),
            "payers": pl.DataFrame({"payer_id": ["MCR"], "kind": ["medicare"]}),
            "patients": pl.DataFrame({"patient_id": ["P1"], "birth_date": [dt.date(1950, 4, 2)]}),
            "coverages": pl.DataFrame(
                {"patient_id": ["P1"], "payer_id": ["MCR"], "start_date": [dt.date(2015, 4, 1)]}
            ),
            "conditions": pl.DataFrame({"patient_id": ["P1", "P1"], "icd10": ["I10", "E11.9"]}),
            "consents": pl.DataFrame(
                {
                    "consent_id": ["C1"],
                    "patient_id": ["P1"],
                    "program": ["ccm"],
                    "obtained_date": [dt.date(2025, 1, 10)],
                    "method": ["verbal"],
                    "billing_practitioner_id": ["DR_A"],
                }
            ),
            "care_plans": pl.DataFrame(
                {
                    "care_plan_id": ["CP1"],
                    "patient_id": ["P1"],
                    "program": ["ccm"],
                    "date": [dt.date(2025, 1, 10)],
                    "action": ["established"],
                }
            ),
            "encounters": encounters,
        }
    )


def _counted_minutes(result: EvaluationResult) -> int:
    monthly = next(r for r in result.rule_sets if r.name == "ccm.monthly")
    row = monthly.facts.filter(pl.col("patient_id") == "P1").row(0, named=True)
    minutes: int = row["staff_minutes"]
    return minutes


def _at(hour: int, minute: int) -> dt.time:
    return dt.time(hour, minute)


def test_three_overlapping_entries_are_counted_once() -> None:
    day = dt.date(2025, 3, 5)
    result = evaluate(
        _time_bundle(
            [
                {"date": day, "start_time": _at(9, 0), "minutes": 15},
                {"date": day, "start_time": _at(9, 5), "minutes": 15, "performer_id": "MA1"},
                {"date": day, "start_time": _at(9, 10), "minutes": 15},
            ]
        ),
        MARCH,
    )
    assert _counted_minutes(result) == 25  # union 09:00-09:25, not 15 + 15 + 15 = 45
    assert result.time_entries.filter(pl.col("excluded").is_not_null()).is_empty()


def test_an_entry_nested_inside_an_earlier_long_one_adds_nothing() -> None:
    day = dt.date(2025, 3, 5)
    result = evaluate(
        _time_bundle(
            [
                {"date": day, "start_time": _at(9, 0), "minutes": 60},  # 09:00-10:00
                {"date": day, "start_time": _at(9, 10), "minutes": 5},  # inside
                {"date": day, "start_time": _at(9, 30), "minutes": 10},  # inside, after a gap
            ]
        ),
        MARCH,
    )
    assert _counted_minutes(result) == 60


def test_timed_entries_on_different_days_are_not_merged() -> None:
    result = evaluate(
        _time_bundle(
            [
                {"date": dt.date(2025, 3, 5), "start_time": _at(9, 0), "minutes": 15},
                {"date": dt.date(2025, 3, 6), "start_time": _at(9, 0), "minutes": 15},
            ]
        ),
        MARCH,
    )
    assert _counted_minutes(result) == 30


def test_entries_without_start_time_just_add() -> None:
    day = dt.date(2025, 3, 5)
    result = evaluate(
        _time_bundle([{"date": day, "minutes": 15}, {"date": day, "minutes": 15}] * 2),
        MARCH,
    )
    assert _counted_minutes(result) == 60  # 4 x 15, nothing to overlap


def test_untimed_entries_add_to_the_union_of_timed_ones() -> None:
    day = dt.date(2025, 3, 5)
    result = evaluate(
        _time_bundle(
            [
                {"date": day, "start_time": _at(9, 0), "minutes": 20},
                {"date": day, "start_time": _at(9, 10), "minutes": 20},  # union 30
                {"date": day, "minutes": 7},  # + 7
            ]
        ),
        MARCH,
    )
    assert _counted_minutes(result) == 37
    shortfall = result.gaps.filter(pl.col("reason") == "time_below_threshold")
    # the add-on gap reports what is still missing from the counted 37, never the threshold
    assert shortfall["minutes_needed"].to_list() == [3]
