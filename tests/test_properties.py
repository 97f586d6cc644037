"""Property tests (hypothesis) over small generated CCM bundles.

Each example is a practice with 1-3 patients evaluated for March 2025: 0-3 chronic
conditions, a CCM consent (valid, obtained mid-month, revoked before or during the
month, or absent), a care plan or none, maybe a revision this month, maybe an initiating
visit, maybe a visit this month (with MDM, maybe requesting G0506), and 0-8
care-management entries of 0-70 minutes by an RN, an MA, the practitioner (DR_A), a
second practitioner (DR_B) or a non-clinical clerk, billed to DR_A, DR_B or left to the
consent, some with a start time (so they overlap) and some with an MDM.
Bundles are built directly from polars frames (``Bundle.from_frames``) for speed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_engine.calendar import Month
from billing_engine.engine.kernel import (
    STATUS_BLOCKED,
    STATUS_INFO,
    STATUS_SHORT,
    STATUS_SUPPRESSED,
)
from billing_engine.io.bundle import Bundle
from billing_engine.services.evaluation import EvaluationResult, default_parameters, evaluate

MONTH = Month(2025, 3)
INTERCHANGE = Path(__file__).resolve().parents[1] / "docs" / "interchange.md"
# One evaluation takes about 0.1 s, so the defaults keep this file near 12 s; raise
# BILLING_PROPERTY_EXAMPLES (e.g. to 500) for a longer hunt.
EXAMPLES = int(os.environ.get("BILLING_PROPERTY_EXAMPLES", "20"))
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None)
PAIRED_SETTINGS = settings(max_examples=max(EXAMPLES * 4 // 5, 1), deadline=None)  # 2 runs each

CONDITIONS = ("I10", "E11.9", "I50.22", "J44.9")
PERFORMERS = ("RN1", "MA1", "DR_A", "DR_B", "CLERK")
BILLED_TO = (None, "DR_A", "DR_B")  # None: the consent's practitioner, else the performer
CONSENTS = ("valid", "mid_month", "revoked_before", "revoked_during", "absent")
MDM = ("straightforward", "low", "moderate", "high")


def documented_reasons() -> set[str]:
    """The reason codes of the table under '## Reason codes' in docs/interchange.md."""
    text = INTERCHANGE.read_text(encoding="utf-8")
    section = text.split("## Reason codes", 1)[1]
    return set(re.findall(r"^\|\s*`([a-z_]+)`\s*\|", section, flags=re.MULTILINE))


def _param_values(suffix: str) -> dict[str, Any]:
    """{parameter name: value for MONTH} of the CCM parameters whose name ends in `suffix`."""
    period = default_parameters().for_period(MONTH.start, MONTH.end)
    return {
        p.name: period[p.name]
        for p in default_parameters()
        if p.name.startswith("ccm.") and p.name.endswith(suffix)
    }


BASE_CODES = {str(v) for v in _param_values(".base_code").values()}
ADDON_CAPS = {
    str(code): int(_param_values(".addon_max_units")[name.replace("addon_code", "addon_max_units")])
    for name, code in _param_values(".addon_code").items()
}


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class Entry:
    day: int
    minutes: int
    performer: str
    start: dt.time | None
    mdm: str | None
    billed_to: str | None  # billing_practitioner_id of the entry (may be empty)


@dataclass(frozen=True)
class Patient:
    conditions: tuple[str, ...]
    consent: str
    consent_names_practitioner: bool  # the consent names DR_A, else nobody
    care_plan: bool
    revised_plan: bool
    seen_before: bool  # an office visit with DR_A in 2024 (the initiating visit)
    visit_this_month: bool
    visit_mdm: str | None
    visit_g0506: bool
    entries: tuple[Entry, ...]


entries_strategy = st.builds(
    Entry,
    day=st.integers(1, 31),
    minutes=st.integers(0, 70),
    performer=st.sampled_from(PERFORMERS),
    start=st.none()
    | st.builds(dt.time, st.integers(8, 9), st.sampled_from([0, 10, 20, 30, 40, 50])),
    mdm=st.none() | st.sampled_from(MDM),
    billed_to=st.sampled_from(BILLED_TO),
)

patient_strategy = st.builds(
    Patient,
    conditions=st.lists(st.sampled_from(CONDITIONS), max_size=3, unique=True).map(tuple),
    consent=st.sampled_from(CONSENTS),
    consent_names_practitioner=st.booleans(),
    care_plan=st.booleans(),
    revised_plan=st.booleans(),
    seen_before=st.booleans(),
    visit_this_month=st.booleans(),
    visit_mdm=st.none() | st.sampled_from(MDM),
    visit_g0506=st.booleans(),
    entries=st.lists(entries_strategy, max_size=8).map(tuple),
)

practices = st.lists(patient_strategy, min_size=1, max_size=3).map(tuple)


def _date(day: int) -> dt.date:
    return dt.date(MONTH.year, MONTH.month, day)


def build_bundle(patients: tuple[Patient, ...]) -> Bundle:
    ids = [f"P{i}" for i in range(1, len(patients) + 1)]
    conditions: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    encounters: list[dict[str, Any]] = []
    for pid, patient in zip(ids, patients, strict=True):
        conditions += [{"patient_id": pid, "icd10": code} for code in patient.conditions]
        if patient.consent != "absent":
            obtained = _date(15) if patient.consent == "mid_month" else dt.date(2025, 1, 10)
            revoked = {"revoked_before": dt.date(2025, 2, 14), "revoked_during": _date(20)}
            consents.append(
                {
                    "consent_id": f"C-{pid}",
                    "patient_id": pid,
                    "program": "ccm",
                    "obtained_date": obtained,
                    "method": "verbal",
                    "billing_practitioner_id": "DR_A"
                    if patient.consent_names_practitioner
                    else None,
                    "revoked_date": revoked.get(patient.consent),
                }
            )
        if patient.care_plan:
            plans.append(_plan(f"CP-{pid}", pid, dt.date(2025, 1, 10), "established"))
        if patient.revised_plan:
            plans.append(_plan(f"CR-{pid}", pid, _date(3), "revised"))
        if patient.seen_before:
            encounters.append(_visit(f"V0-{pid}", pid, dt.date(2024, 11, 5), ["99214"], None, None))
        if patient.visit_this_month:
            cpt = ["99214", "G0506"] if patient.visit_g0506 else ["99213"]
            encounters.append(
                _visit(f"V1-{pid}", pid, _date(10), cpt, dt.time(9, 30), patient.visit_mdm)
            )
        for n, entry in enumerate(patient.entries, start=1):
            encounters.append(
                {
                    "encounter_id": f"E{n}-{pid}",
                    "patient_id": pid,
                    "date": _date(entry.day),
                    "start_time": entry.start,
                    "minutes": entry.minutes,
                    "performer_id": entry.performer,
                    "billing_practitioner_id": entry.billed_to,
                    "kind": "care_management",
                    "program": "ccm",
                    "mdm": entry.mdm,
                    "cpt": None,
                }
            )
    return Bundle.from_frames(
        {
            "practitioners": pl.DataFrame(
                {
                    "practitioner_id": ["DR_A", "DR_B", "RN1", "MA1", "CLERK"],
                    "npi": ["1234567893", "9876543213", None, None, None],
                    "credential": ["MD", "NP", "RN", "MA", "NONCLINICAL"],
                }
            ),
            "payers": pl.DataFrame({"payer_id": ["MCR"], "kind": ["medicare"]}),
            "patients": pl.DataFrame(
                {"patient_id": ids, "birth_date": [dt.date(1950, 4, 2)] * len(ids)}
            ),
            "coverages": pl.DataFrame(
                {
                    "patient_id": ids,
                    "payer_id": ["MCR"] * len(ids),
                    "start_date": [dt.date(2015, 4, 1)] * len(ids),
                }
            ),
            "conditions": _frame(conditions, {"patient_id": pl.String, "icd10": pl.String}),
            "consents": _frame(
                consents,
                {
                    "consent_id": pl.String,
                    "patient_id": pl.String,
                    "program": pl.String,
                    "obtained_date": pl.Date,
                    "method": pl.String,
                    "billing_practitioner_id": pl.String,
                    "revoked_date": pl.Date,
                },
            ),
            "care_plans": _frame(
                plans,
                {
                    "care_plan_id": pl.String,
                    "patient_id": pl.String,
                    "program": pl.String,
                    "date": pl.Date,
                    "action": pl.String,
                },
            ),
            "encounters": _frame(
                encounters,
                {
                    "encounter_id": pl.String,
                    "patient_id": pl.String,
                    "date": pl.Date,
                    "start_time": pl.Time,
                    "minutes": pl.Int64,
                    "performer_id": pl.String,
                    "billing_practitioner_id": pl.String,
                    "kind": pl.String,
                    "program": pl.String,
                    "mdm": pl.String,
                    "cpt": pl.List(pl.String),
                },
            ),
        }
    )


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema)


def _plan(plan_id: str, pid: str, date: dt.date, action: str) -> dict[str, Any]:
    return {
        "care_plan_id": plan_id,
        "patient_id": pid,
        "program": "ccm",
        "date": date,
        "action": action,
    }


def _visit(
    eid: str, pid: str, date: dt.date, cpt: list[str], start: dt.time | None, mdm: str | None
) -> dict[str, Any]:
    return {
        "encounter_id": eid,
        "patient_id": pid,
        "date": date,
        "start_time": start,
        "minutes": 25,
        "performer_id": "DR_A",
        "billing_practitioner_id": "DR_A",
        "kind": "office_visit",
        "program": None,
        "mdm": mdm,
        "cpt": cpt,
    }


def run(patients: tuple[Patient, ...]) -> EvaluationResult:
    return evaluate(build_bundle(patients), MONTH)


def patients_with_a_base_line(result: EvaluationResult) -> set[str]:
    lines = result.claim_lines.filter(pl.col("code").is_in(sorted(BASE_CODES)))
    return set(lines.get_column("patient_id").to_list())


# --------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class MoreMinutes:
    """One way of adding minutes: a new counted RN entry, or more minutes on an entry."""

    patient: int
    new_entry_day: int
    added: int
    grow_entry: int | None  # index of the entry to lengthen, else append a new entry


more_minutes = st.builds(
    MoreMinutes,
    patient=st.integers(0, 2),
    new_entry_day=st.integers(1, 31),
    added=st.integers(1, 70),
    grow_entry=st.none() | st.integers(0, 7),
)


def add_minutes(patients: tuple[Patient, ...], change: MoreMinutes) -> tuple[Patient, ...]:
    index = change.patient % len(patients)
    patient = patients[index]
    entries = list(patient.entries)
    if change.grow_entry is not None and entries:
        i = change.grow_entry % len(entries)
        entries[i] = replace(entries[i], minutes=entries[i].minutes + change.added)
    else:
        entries.append(
            Entry(change.new_entry_day, change.added, "RN1", None, None, billed_to="DR_A")
        )
    changed = replace(patient, entries=tuple(entries))
    return (*patients[:index], changed, *patients[index + 1 :])


@PAIRED_SETTINGS
@given(patients=practices, change=more_minutes)
def test_adding_minutes_never_removes_a_ccm_base_line(
    patients: tuple[Patient, ...], change: MoreMinutes
) -> None:
    # Adding minutes may move a patient from 99490 to 99491 or 99487 (a more specific
    # alternative wins), but a patient billed a CCM base code keeps billing one.
    before = patients_with_a_base_line(run(patients))
    after = patients_with_a_base_line(run(add_minutes(patients, change)))
    assert before <= after, f"lost a CCM base line: {sorted(before - after)}"


@PAIRED_SETTINGS
@given(patients=practices)
def test_evaluating_twice_gives_identical_lines_and_gaps(patients: tuple[Patient, ...]) -> None:
    bundle = build_bundle(patients)
    first, second = evaluate(bundle, MONTH), evaluate(bundle, MONTH)
    assert first.claim_lines.equals(second.claim_lines)
    assert first.gaps.equals(second.gaps)
    assert first.revenue_by_payer.equals(second.revenue_by_payer)


OUTCOME_KEY = ["patient_id", "billing_practitioner_id", "code", "period_start"]


@PROPERTY_SETTINGS
@given(patients=practices)
def test_each_considered_code_ends_in_exactly_one_of_lines_or_gaps(
    patients: tuple[Patient, ...],
) -> None:
    result = run(patients)
    duplicated = result.outcomes.group_by(OUTCOME_KEY).len().filter(pl.col("len") > 1)
    assert duplicated.is_empty(), f"several outcomes for one code and period:\n{duplicated}"
    both = result.claim_lines.select(OUTCOME_KEY).join(
        result.gaps.select(OUTCOME_KEY), on=OUTCOME_KEY, how="inner", nulls_equal=True
    )
    assert both.is_empty(), f"both a line and a gap:\n{both}"
    assert result.claim_lines.height + result.gaps.height == result.outcomes.height


VALID_STATUSES = {STATUS_BLOCKED, STATUS_SHORT, STATUS_SUPPRESSED, STATUS_INFO}
REASONS = documented_reasons()


@PROPERTY_SETTINGS
@given(patients=practices)
def test_every_gap_has_a_documented_reason_status_and_a_sane_shortfall(
    patients: tuple[Patient, ...],
) -> None:
    gaps = run(patients).gaps
    assert set(gaps.get_column("status").to_list()) <= VALID_STATUSES
    undocumented = set(gaps.get_column("reason").to_list()) - REASONS
    assert not undocumented, f"reasons not in docs/interchange.md: {undocumented}"
    needed = gaps.filter(pl.col("minutes_needed").is_not_null())
    assert (needed.get_column("minutes_needed") >= 0).all(), needed
    assert set(needed.get_column("reason").to_list()) <= {"time_below_threshold"}, needed


@PROPERTY_SETTINGS
@given(patients=practices)
def test_every_line_has_a_unit_and_add_ons_stay_within_their_cap(
    patients: tuple[Patient, ...],
) -> None:
    lines = run(patients).claim_lines
    assert (lines.get_column("units") >= 1).all(), lines
    for code, cap in ADDON_CAPS.items():
        units = lines.filter(pl.col("code") == code).get_column("units")
        assert (units <= cap).all(), f"{code} over its cap {cap}: {units.to_list()}"


def test_the_generated_practices_reach_lines_gaps_and_conflicts() -> None:
    """A fixed example, so the strategy is known to reach the interesting outcomes."""
    entry = Entry(4, 35, "DR_A", dt.time(9, 0), "moderate", billed_to="DR_A")
    staff = Entry(12, 40, "RN1", None, None, billed_to=None)
    clerk = Entry(13, 20, "CLERK", dt.time(9, 0), None, billed_to="DR_A")
    rich = Patient(
        ("I10", "E11.9"), "valid", True, True, True, True, True, "high", True, (entry, staff, clerk)
    )
    billed = replace(staff, billed_to="DR_A")
    lonely = Patient(("I10",), "absent", True, False, False, False, False, None, False, (billed,))
    result = run((rich, lonely))
    assert patients_with_a_base_line(result) == {"P1"}
    reasons = set(result.gaps.get_column("reason").to_list())
    assert {"conflict", "consent_missing"} <= reasons
    assert result.time_entries.filter(pl.col("excluded").is_not_null()).height >= 1
    assert ADDON_CAPS and len(BASE_CODES) == 3
    assert {"time_below_threshold", "conflict", "add_on_without_base"} <= REASONS
