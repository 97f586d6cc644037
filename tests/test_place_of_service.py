"""The place of service of monthly lines (CCM-POS; pricing FEE-1).

``facts.monthly_place_of_service`` takes it from the billing practitioner's
``place_of_service``, else from the counted encounters when they all name the same one,
else from ``common.monthly_place_of_service``. At POS 22 (hospital outpatient department)
99490 in 2025 at national rates is paid 47.87 (facility PE RVU), at POS 11 60.49.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import OUTCOME_SCHEMA
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.potential import potential_amounts
from billing_engine.services.evaluation import default_parameters, evaluate
from code_rules.rulebook import shipped_conflicts
from code_rules.rulebook import shipped_fees as shipped

MARCH = Month.parse("2025-03")


def practitioners(dr_a_pos: str | None = None) -> list[dict[str, Any]]:
    return [
        {"practitioner_id": "DR_A", "npi": "1234567893", "credential": "MD",
         "place_of_service": dr_a_pos},
        {"practitioner_id": "DR_B", "npi": "9876543213", "credential": "NP"},
        {"practitioner_id": "RN1", "credential": "RN"},
    ]  # fmt: skip


def entry(encounter_id: str, day: int, minutes: int, pos: str | None) -> dict[str, Any]:
    return {
        "encounter_id": encounter_id,
        "patient_id": "P1",
        "date": dt.date(2025, 3, day),
        "minutes": minutes,
        "performer_id": "RN1",
        "billing_practitioner_id": "DR_A",
        "kind": "care_management",
        "program": "ccm",
        "place_of_service": pos,
    }


def ccm_bundle(dr_a_pos: str | None, entries: list[dict[str, Any]]) -> Bundle:
    frames = {
        "practitioners": pl.DataFrame(practitioners(dr_a_pos), schema_overrides={
            "place_of_service": pl.String}),
        "payers": pl.DataFrame([{"payer_id": "MCR", "name": "Medicare", "kind": "medicare"}]),
        "patients": pl.DataFrame([{"patient_id": "P1", "birth_date": dt.date(1950, 4, 2)}]),
        "coverages": pl.DataFrame(
            [{"patient_id": "P1", "payer_id": "MCR", "start_date": dt.date(2015, 4, 1)}]
        ),
        "conditions": pl.DataFrame({"patient_id": ["P1", "P1"], "icd10": ["I5022", "E119"]}),
        "consents": pl.DataFrame([{
            "consent_id": "C1", "patient_id": "P1", "program": "ccm",
            "obtained_date": dt.date(2025, 1, 10), "method": "verbal",
            "billing_practitioner_id": "DR_A",
        }]),
        "care_plans": pl.DataFrame([{
            "care_plan_id": "CP1", "patient_id": "P1", "program": "ccm",
            "date": dt.date(2025, 1, 10), "action": "established",
        }]),
        "encounters": pl.DataFrame([
            {"encounter_id": "V0", "patient_id": "P1", "date": dt.date(2024, 11, 5),
             "minutes": 25, "performer_id": "DR_A", "billing_practitioner_id": "DR_A",
             "kind": "office_visit", "cpt": ["99214"], "place_of_service": "11"},
            *[{**e, "cpt": None} for e in entries],
        ], schema_overrides={"place_of_service": pl.String, "cpt": pl.List(pl.String)}),
    }  # fmt: skip
    return Bundle.from_frames(frames)


def context(bundle: Bundle, settings: dict[str, Any] | None = None) -> EvalContext:
    period = default_parameters().for_period(MARCH.start, MARCH.end, settings)
    return EvalContext(bundle=bundle, month=MARCH, as_of=MARCH.end, params=period)


def place(
    dr_a_pos: str | None, entries: list[dict[str, Any]], settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The helper's columns for one DR_A candidate counting every entry given."""
    ctx = context(ccm_bundle(dr_a_pos, entries), settings)
    facts = pl.DataFrame(
        {
            "patient_id": ["P1"],
            "billing_practitioner_id": ["DR_A"],
            "counted": [[e["encounter_id"] for e in entries]],
        }
    )
    row = nz.monthly_place_of_service(ctx, facts, "counted").row(0, named=True)
    return {k: row[k] for k in ("place_of_service", "place_of_service_source",
                                "place_of_service_evidence")}  # fmt: skip


def test_the_billing_practitioners_place_of_service_comes_first() -> None:
    got = place("22", [entry("E1", 4, 25, "11")])
    assert got == {
        "place_of_service": "22",
        "place_of_service_source": nz.POS_FROM_PRACTITIONER,
        "place_of_service_evidence": "practitioner:DR_A",
    }


def test_without_a_practitioner_place_the_counted_encounters_agreeing_place_is_taken() -> None:
    got = place(
        None, [entry("E1", 4, 12, "22"), entry("E2", 11, 13, "22"), entry("E3", 12, 5, None)]
    )
    assert got == {
        "place_of_service": "22",
        "place_of_service_source": nz.POS_FROM_ENCOUNTERS,
        "place_of_service_evidence": None,
    }


def test_counted_encounters_that_disagree_leave_the_setting() -> None:
    got = place(None, [entry("E1", 4, 12, "22"), entry("E2", 11, 13, "11")])
    assert got["place_of_service"] == "11"
    assert got["place_of_service_source"] == nz.POS_FROM_SETTING


def test_with_no_place_anywhere_the_setting_gives_it() -> None:
    got = place(None, [entry("E1", 4, 25, None)], {"common.monthly_place_of_service": "22"})
    assert got["place_of_service"] == "22"
    assert got["place_of_service_source"] == nz.POS_FROM_SETTING


def test_a_blank_practitioner_place_of_service_counts_as_none() -> None:
    got = place(" ", [entry("E1", 4, 25, "22")])
    assert got["place_of_service"] == "22"
    assert got["place_of_service_source"] == nz.POS_FROM_ENCOUNTERS


def test_every_row_of_a_frame_gets_its_own_place_in_one_call() -> None:
    bundle = ccm_bundle(None, [entry("E1", 4, 25, "22"), entry("E2", 5, 25, "11")])
    facts = pl.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1"],
            "billing_practitioner_id": ["DR_A", "DR_B", None],
            "counted": [["E1"], ["E2"], []],
        }
    )
    out = nz.monthly_place_of_service(context(bundle), facts, "counted")
    assert out["place_of_service"].to_list() == ["22", "11", "11"]
    assert out["place_of_service_source"].to_list() == ["encounters", "encounters", "setting"]
    assert out["billing_practitioner_id"].to_list() == ["DR_A", "DR_B", None]


def test_a_hospital_outpatient_practitioners_99490_is_priced_at_the_facility_rate_47_87() -> None:
    result = evaluate(ccm_bundle("22", [entry("E1", 4, 25, None)]), MARCH)
    line = result.claim_lines.filter(pl.col("code") == "99490").row(0, named=True)
    assert (line["place_of_service"], line["allowed_amount"]) == ("22", Decimal("47.87"))
    assert line["evidence"] == "E1;C1;CP1;practitioner:DR_A"
    assert "common.monthly_place_of_service=11" in line["parameters"]


def test_an_office_practitioners_99490_is_priced_at_the_non_facility_rate_60_49() -> None:
    result = evaluate(ccm_bundle(None, [entry("E1", 4, 25, None)]), MARCH)
    line = result.claim_lines.filter(pl.col("code") == "99490").row(0, named=True)
    assert (line["place_of_service"], line["allowed_amount"]) == ("11", Decimal("60.49"))
    assert line["evidence"] == "E1;C1;CP1"


def test_a_short_gaps_potential_amount_uses_the_gaps_place_of_service() -> None:
    bundle = ccm_bundle(None, [])
    gap = {
        "patient_id": "P1", "billing_practitioner_id": "DR_A", "payer_id": "MCR",
        "code": "99490", "family": "ccm", "status": "short", "place_of_service": "22",
        "period_start": MARCH.start, "period_end": MARCH.end, "deadline": MARCH.end,
        "minutes_logged": 18, "minutes_needed": 2,  # started: within reach
    }  # fmt: skip
    gaps = pl.DataFrame([gap, {**gap, "place_of_service": None}]).with_columns(
        pl.col(c).cast(t) for c, t in OUTCOME_SCHEMA.items() if c in gap
    )
    params = default_parameters()
    period = params.for_period(MARCH.start, MARCH.end)
    table = shipped_conflicts()
    values = potential_amounts(gaps, bundle, params, period, shipped(), conflict_table=table)
    values = values.to_list()
    assert values == [Decimal("47.87"), Decimal("60.49")]
