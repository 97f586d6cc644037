"""Facts of ``mnt.allowance``, the dietitian's work list: one row per patient with a
physician's MNT referral this calendar year (on or before the month's end), with what
is left of the yearly allowance after the year's claims and this month's sessions."""

from __future__ import annotations

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.mnt.facts_history import (
    mnt_claims,
    with_allowance_size,
    with_diagnoses,
    with_referrals,
)
from code_rules.mnt.shared import EMPTY_IDS, EVER, INDIVIDUAL, mnt, year


def _referred_patients(ctx: EvalContext) -> pl.DataFrame:
    """Living patients with a physician's MNT referral of the year by the month's end."""
    alive = pl.col("death_date").is_null() | (pl.col("death_date") >= ctx.start)
    patients = (
        ctx.bundle["patients"]
        .filter(alive)
        .select("patient_id")
        .with_columns(reference_date=pl.lit(ctx.end, dtype=pl.Date))
    )
    return with_referrals(ctx, patients, "reference_date").filter(
        pl.col("referral_id").is_not_null()
    )


def _year_claims(ctx: EvalContext, claims: pl.DataFrame) -> pl.DataFrame:
    """Per patient: the minutes and ids of the year's claims, whether the initial
    assessment was claimed (this year, or ever), and the last claim's practitioner."""
    p = mnt(ctx)
    year_start, _ = year(ctx)
    in_year = pl.col("claim_date") >= year_start
    initial_claimed = pl.col("code") == p.individual.initial_code
    if p.initial_assessment_scope != EVER:
        initial_claimed = initial_claimed & in_year
    return (
        claims.sort("claim_date", "code")
        .group_by("patient_id")
        .agg(
            year_claims_minutes=pl.col("claim_minutes").filter(in_year).sum().cast(pl.Int64),
            claim_ids=pl.col("claim_id").filter(in_year).unique(maintain_order=True),
            initial_claimed=initial_claimed.any(),
            claim_practitioner_id=pl.col("claim_practitioner_id").drop_nulls().last(),
        )
    )


def _month_sessions(sessions: pl.DataFrame) -> pl.DataFrame:
    """Per patient: what this month's sessions (``mnt.sessions`` facts) used and logged."""
    individual = pl.col("mode") == INDIVIDUAL
    return (
        sessions.sort("patient_id", "seq")
        .group_by("patient_id")
        .agg(
            month_minutes_used=pl.col("demand_minutes").sum().cast(pl.Int64),
            minutes_logged=pl.col("minutes").sum().cast(pl.Int64),
            initial_this_month=(pl.col("eligible") & individual).any(),
            session_practitioner_id=pl.col("billing_practitioner_id").last(),
            encounter_ids=pl.col("encounter_ids").list.explode(
                keep_nulls=False, empty_as_null=False
            ),
        )
    )


def allowance_facts(ctx: EvalContext, sessions: pl.DataFrame) -> pl.DataFrame:
    """Patients with a physician's MNT referral this year: what is left of the allowance
    after the year's claims and this month's billed sessions."""
    p = mnt(ctx)
    claims = mnt_claims(ctx)
    facts = (
        _referred_patients(ctx)
        .join(_year_claims(ctx, claims), on="patient_id", how="left")
        .join(_month_sessions(sessions), on="patient_id", how="left")
        .with_columns(
            pl.col("year_claims_minutes", "month_minutes_used", "minutes_logged").fill_null(0),
            pl.col("claim_ids", "encounter_ids").fill_null(EMPTY_IDS),
            pl.col("initial_claimed", "initial_this_month").fill_null(False),
            billing_practitioner_id=pl.coalesce("session_practitioner_id", "claim_practitioner_id"),
        )
    )
    facts = with_allowance_size(ctx, facts, claims)
    used = pl.col("year_claims_minutes") + pl.col("month_minutes_used")
    facts = facts.with_columns(
        minutes_used=used,
        remaining_minutes=(pl.col("allowance_minutes") - used).clip(lower_bound=0),
        next_initial=~pl.col("initial_claimed") & ~pl.col("initial_this_month"),
    )
    facts = pr.coverage_on(ctx, facts, "reference_date")
    facts = with_diagnoses(ctx, facts, "reference_date")
    codes = [p.individual.initial_code, p.individual.followup_code]
    return pr.with_payer_pays(ctx, facts, codes, "reference_date")
