"""Facts of the Medicaid nursing codes: one row per nurse visit of the month, with the
primary payer, its state's rules (whether the state enables the nursing codes, the unit
rule) and the visit's credential class (RN / LPN) and assessment flag.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.medicaid.facts_common import EMPTY_IDS, with_diagnoses, with_t_code_pays
from code_rules.medicaid.facts_minutes import units_expr
from code_rules.medicaid.state_table import nursing_codes, with_state_rules
from code_rules.parameters_typed import typed

NURSE_VISIT = "nurse_visit"  # encounters.kind (interchange.md)


def _visits(ctx: EvalContext) -> pl.DataFrame:
    """Nurse visits of the month (a failed attempt is no visit), with the performer's
    and the billing practitioner's records."""
    visits = ctx.bundle["encounters"].filter(
        (pl.col("kind") == NURSE_VISIT)
        & ctx.in_month("date")
        & (pl.col("outcome").is_null() | (pl.col("outcome") != nz.EXCLUDED_FAILED_ATTEMPT))
    )
    visits = nz.with_practitioner(ctx, visits, "performer_id", "performer")
    return nz.with_practitioner(ctx, visits, "billing_practitioner_id", "bp")


def _with_billed_codes(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``billed_codes``: codes in claims history on the visit's date under its billing NPI."""
    ignored = typed(ctx.params).common.ignored_claim_statuses
    history = (
        ctx.bundle["claims_history"]
        .filter(pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        .select("patient_id", "code", pl.col("date_of_service").alias("date"), "billing_npi")
    )
    billed = (
        facts.select("encounter_id", "patient_id", "date", "bp_npi")
        .join(history, on=["patient_id", "date"], how="inner")
        .filter(pl.col("billing_npi") == pl.col("bp_npi"))
        .group_by("encounter_id")
        .agg(billed_codes=pl.col("code").unique().sort())
    )
    return facts.join(billed, on="encounter_id", how="left")


def nursing_facts(ctx: EvalContext) -> pl.DataFrame:
    """Nurse visits of the month with the primary payer, its state's rules and the visit's
    credential class (RN / LPN) and assessment flag."""
    medicaid = typed(ctx.params).medicaid
    nursing = medicaid.nursing
    unit = medicaid.unit_minutes
    assessment = nursing.assessment_activities
    facts = pr.coverage_on(ctx, _visits(ctx), "date", with_state=True)  # the primary one
    facts = with_state_rules(
        ctx, facts.with_columns(program=pl.lit(medicaid.case_management.program))
    )
    facts = _with_billed_codes(ctx, facts).with_columns(
        pl.col("billed_codes").fill_null(EMPTY_IDS),
        visit_minutes=pl.col("minutes").cast(pl.Int64),
        is_assessment=pl.col("activities")
        .list.eval(pl.element().is_in(assessment))
        .list.any()
        .fill_null(False),
        is_rn=pl.col("performer_credential").is_in(nursing.rn_credentials),
        is_lpn=pl.col("performer_credential").is_in(nursing.lpn_credentials),
        medicaid_primary=pl.col("payer_kind").is_in(medicaid.paying_payer_kinds).fill_null(False),
    )
    facts = nz.with_visit_place_of_service(ctx, facts)
    facts = facts.with_columns(units=units_expr("visit_minutes", unit))
    facts = with_t_code_pays(ctx, facts, nursing_codes(ctx), "date")
    return with_diagnoses(ctx, facts)
