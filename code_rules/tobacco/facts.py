"""Tobacco cessation counseling: the facts of each session (the joins an auditor skips).

One row per ``tobacco_counseling`` encounter dated in the month (documented failed
attempts are not sessions), billed under the encounter's billing practitioner, else its
performer; with the session's claims history in its frequency window, its tobacco-use
diagnoses, its coverage and whether the payer pays each code. The criteria that read
these columns are in ``rule.py``.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.primitives import Window
from code_rules.parameters_typed import typed

KIND = "tobacco_counseling"
CALENDAR_YEAR = "calendar_year"
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


def family_codes(ctx: EvalContext) -> list[str]:
    tobacco = typed(ctx.params).tobacco
    return [tobacco.intermediate.code, tobacco.intensive.code]


def _sessions(ctx: EvalContext) -> pl.DataFrame:
    """The month's counseling sessions with performer, billing practitioner and POS."""
    tobacco = typed(ctx.params).tobacco
    sessions = ctx.bundle["encounters"].filter(
        (pl.col("kind") == KIND)
        & ctx.in_month("date")
        & (pl.col("outcome").is_null() | (pl.col("outcome") != "attempt_failed"))
    )
    sessions = sessions.with_columns(
        billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id"),
        place_of_service=pl.col("place_of_service").fill_null(tobacco.default_place_of_service),
        minutes=pl.col("minutes").cast(pl.Int64),
    )
    sessions = nz.with_practitioner(ctx, sessions, "performer_id", "performer")
    sessions = nz.with_practitioner(ctx, sessions, "billing_practitioner_id", "bp")
    return sessions.select(
        "encounter_id",
        "patient_id",
        "date",
        "minutes",
        "performer_id",
        "performer_credential",
        "billing_practitioner_id",
        "bp_credential",
        "place_of_service",
    )


def _window_start(ctx: EvalContext) -> pl.Expr:
    """First day of the frequency window that ends on the session's date."""
    tobacco = typed(ctx.params).tobacco
    if tobacco.window == CALENDAR_YEAR:
        return pl.date(pl.col("date").dt.year(), 1, 1)
    months = tobacco.window_months
    return pl.col("date").dt.offset_by(f"-{months}mo").dt.offset_by("1d")


def _with_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Sessions already in claims history (not denied, any NPI): units in the window
    before the session's date (``prior_sessions``, ids ``prior_session_ids``) and on its
    date (``same_day_claims``, NPIs ``same_day_claim_npis``)."""
    claims = nz.billed_claims(ctx, family_codes(ctx)).select(
        "patient_id",
        "units",
        "billing_npi",
        claim_date=pl.col("date_of_service"),
        claim_id=pl.concat_str(
            pl.lit("claim:"), pl.col("code"), pl.lit("@"), pl.col("date_of_service").cast(pl.String)
        ),
    )
    window = Window(pl.col("window_start"), pl.col("date"), closed="left")
    facts = facts.with_columns(
        prior_sessions=pr.prior_usage(
            facts,
            claims,
            on=("patient_id",),
            window=window,
            service_date="claim_date",
            units="units",
        ),
        same_day_claims=pr.prior_usage(
            facts,
            claims,
            on=("patient_id",),
            window=Window.same_day("date"),
            service_date="claim_date",
            units="units",
        ),
    )
    joined = (
        facts.select("encounter_id", "patient_id", "date", "window_start")
        .join(claims, on="patient_id", how="inner")
        .filter(pr.active_on("claim_date", "window_start", "date", open_end=False))
    )
    before = pl.col("claim_date") < pl.col("date")
    summary = joined.group_by("encounter_id").agg(
        prior_session_ids=pl.col("claim_id").filter(before).unique().sort(),
        same_day_claim_npis=pl.col("billing_npi").filter(~before).unique().sort(),
    )
    return facts.join(summary, on="encounter_id", how="left").with_columns(
        pl.col("prior_session_ids", "same_day_claim_npis").fill_null(EMPTY_IDS),
    )


def _with_tobacco_use(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``tobacco_icd10``: tobacco-use conditions active on the session date."""
    prefixes = typed(ctx.params).tobacco.diagnosis_prefixes
    return facts.with_columns(
        tobacco_icd10=nz.conditions_on_date(ctx, facts, "date", prefixes=prefixes)
    )


def session_facts(ctx: EvalContext) -> pl.DataFrame:
    facts = _sessions(ctx).with_columns(window_start=_window_start(ctx))
    facts = _with_claims(ctx, facts)
    facts = _with_tobacco_use(ctx, facts)
    facts = pr.coverage_on(ctx, facts, "date")
    return pr.with_payer_pays(ctx, facts, family_codes(ctx), "date")
