"""IBT facts, part 1: every IBT encounter up to the month's end with who furnished and
billed it, where, its BMI, diagnoses and payer; the IBT claims history; the benefit
periods' anchors."""

from __future__ import annotations

from typing import Any

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.obesity.codes import (
    BMI_KIND,
    EMPTY_IDS,
    FAILED_ATTEMPT,
    GROUP_MODE,
    KIND,
    claim_ref,
    family_codes,
    measurement_ref,
    months,
)
from code_rules.obesity.criteria import eligibility
from code_rules.obesity.facts_schedule import benefit_anchors
from code_rules.parameters_typed import typed


def visits_known(ctx: EvalContext) -> pl.DataFrame:
    """Every IBT encounter on or before the month's end, with who furnished it and where."""
    rp = typed(ctx.params)
    individual, group = family_codes(ctx)
    billers = rp.common.billing_credentials
    encounters = ctx.bundle["encounters"].filter(
        (pl.col("kind") == KIND)
        & (pl.col("date") <= ctx.end)
        & (pl.col("outcome").is_null() | (pl.col("outcome") != FAILED_ATTEMPT))
    )
    visits = nz.with_practitioner(ctx, encounters, "performer_id", "performer").with_columns(
        billing_practitioner_id=pl.coalesce(
            "billing_practitioner_id",
            pl.when(pl.col("performer_credential").is_in(billers)).then(pl.col("performer_id")),
        )
    )
    visits = nz.with_practitioner(ctx, visits, "billing_practitioner_id", "bp")
    primary_care = ctx.bundle["practitioners"].select(
        pl.col("practitioner_id").alias("billing_practitioner_id"),
        pl.col("primary_care").fill_null(False).alias("bp_primary_care"),
    )
    group_visit = pl.col("contact_mode").fill_null("") == GROUP_MODE
    return (
        visits.join(primary_care, on="billing_practitioner_id", how="left")
        .with_columns(
            code=pl.when(group_visit).then(pl.lit(group)).otherwise(pl.lit(individual)),
            min_minutes=pl.when(group_visit)
            .then(pl.lit(rp.obesity.group_min_minutes))
            .otherwise(pl.lit(rp.obesity.individual_min_minutes)),
            place_of_service=pl.col("place_of_service").fill_null(
                rp.obesity.default_place_of_service
            ),
        )
        .select(
            "encounter_id",
            "patient_id",
            "date",
            "code",
            "contact_mode",
            "minutes",
            "min_minutes",
            "place_of_service",
            "performer_id",
            "performer_credential",
            "billing_practitioner_id",
            "bp_credential",
            "bp_npi",
            "bp_primary_care",
        )
    )


def bmi_code(ctx: EvalContext) -> pl.Expr:
    """The Z68 code of the band the measured BMI falls in (highest band reached)."""
    bands = typed(ctx.params).obesity.bmi_diagnosis_codes
    chain: Any = None  # polars' When/Then builder types are not public
    for low, code in sorted(bands, key=lambda band: band[0], reverse=True):
        reached = pl.col("bmi") >= low
        chain = (pl if chain is None else chain).when(reached).then(pl.lit(code))
    if chain is None:
        return pl.lit(None, dtype=pl.String)
    result: pl.Expr = chain.otherwise(None)
    return result


def with_bmi(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """The latest BMI measured on or before the visit, within the look-back."""
    lookback = typed(ctx.params).obesity.measurement_lookback_months
    bmi = (
        ctx.bundle["measurements"]
        .filter(pl.col("kind") == BMI_KIND)
        .select("patient_id", pl.col("date").alias("bmi_date"), pl.col("value").alias("bmi"))
    )
    found = (
        visits.select("encounter_id", "patient_id", "date")
        .join(bmi, on="patient_id", how="inner")
        .filter(pr.active_on("bmi_date", months(pl.col("date"), -lookback), "date", open_end=False))
        .sort("encounter_id", "bmi_date")
        .group_by("encounter_id")
        .agg(pl.col("bmi").last(), pl.col("bmi_date").last())
    )
    return visits.join(found, on="encounter_id", how="left").with_columns(
        bmi_code=bmi_code(ctx),
        bmi_ref=pl.when(pl.col("bmi_date").is_not_null()).then(
            measurement_ref(BMI_KIND, "bmi_date")
        ),
    )


def with_diagnoses(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Claim diagnoses: active obesity conditions first, then the BMI code (secondary)."""
    prefixes = typed(ctx.params).obesity.obesity_condition_prefixes
    code = nz.normalized_icd10(pl.col("icd10"))
    obesity = ctx.bundle["conditions"].filter(
        pl.any_horizontal([code.str.starts_with(prefix) for prefix in prefixes])
        if prefixes
        else pl.lit(False)
    )
    active = (
        visits.select("encounter_id", "patient_id", "date")
        .join(obesity, on="patient_id", how="inner")
        .filter(pr.active_on("date", "onset_date", "resolved_date", open_start=True))
        .group_by("encounter_id")
        .agg(obesity_icd10=pl.col("icd10").unique().sort())
    )
    return (
        visits.join(active, on="encounter_id", how="left")
        .with_columns(pl.col("obesity_icd10").fill_null(EMPTY_IDS))
        .with_columns(
            icd10_codes=pl.concat_list(
                pl.col("obesity_icd10").list.head(3), pl.concat_list(pl.col("bmi_code"))
            ).list.drop_nulls()
        )
    )


def with_payer(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Primary coverage on the visit date and whether that payer pays each code."""
    visits = pr.coverage_on(ctx, visits, "date")
    return pr.with_payer_pays(ctx, visits, family_codes(ctx), "date")


def ibt_claims(ctx: EvalContext) -> pl.DataFrame:
    """IBT claims history (either code, not denied, on or before the month's end)."""
    return nz.billed_claims(ctx, list(family_codes(ctx))).select(
        "patient_id",
        "code",
        "billing_npi",
        claim_date=pl.col("date_of_service"),
        claim_id=claim_ref(),
    )


def visit_facts(ctx: EvalContext) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(every IBT visit up to the month's end with its own facts, claims, anchors)."""
    visits = visits_known(ctx)
    visits = with_bmi(ctx, visits)
    visits = with_diagnoses(ctx, visits)
    visits = with_payer(ctx, visits)
    claims = ibt_claims(ctx)
    own_met = pl.lit(False)
    for code in family_codes(ctx):
        met = pl.all_horizontal([c.met.fill_null(False) for c in eligibility(ctx, code)])
        own_met = pl.when(pl.col("code") == code).then(met).otherwise(own_met)
    points = pl.concat(
        [
            claims.select("patient_id", pl.col("claim_date").alias("date")),
            visits.filter(own_met).select("patient_id", "date"),
        ]
    ).unique()
    return visits, claims, benefit_anchors(ctx, points)
