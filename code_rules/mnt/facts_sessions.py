"""Facts of ``mnt.sessions``: one row per patient, date of service, billing practitioner
and mode of the month's MNT, with the yearly allowance settled over the sessions.

Which sessions bill is decided by whole-frame expressions: the eligibility that does not
depend on the allowance (practitioner, coverage, payer, diagnosis, referral, same-day
DSMT, claims already on the date, at least one unit) is computed first, then the
allowance is a clamped running sum over the eligible sessions.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.primitives import Cap, Window
from code_rules.mnt.criteria import eligibility_criteria
from code_rules.mnt.facts_history import (
    mnt_claims,
    with_allowance_size,
    with_diagnoses,
    with_referrals,
)
from code_rules.mnt.shared import (
    DSMT_KIND,
    EMPTY_IDS,
    EVER,
    GROUP,
    GROUP_CONTACT,
    INDIVIDUAL,
    MNT_KIND,
    SESSION_KEYS,
    claim_id,
    family_codes,
    first_unit_minutes,
    mnt,
    not_failed,
    unit_minutes,
    units,
    year,
)


def _sessions(ctx: EvalContext) -> pl.DataFrame:
    """One row per patient, date, billing practitioner and mode of the month's MNT."""
    p = mnt(ctx)
    furnishers = p.furnisher_credentials
    encounters = (
        ctx.bundle["encounters"]
        .filter((pl.col("kind") == MNT_KIND) & ctx.in_month("date") & not_failed())
        .with_columns(
            billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id"),
            mode=pl.when(pl.col("contact_mode") == GROUP_CONTACT)
            .then(pl.lit(GROUP))
            .otherwise(pl.lit(INDIVIDUAL)),
        )
    )
    encounters = nz.with_practitioner(ctx, encounters, "performer_id", "performer")
    unqualified = ~pl.col("performer_credential").is_in(furnishers).fill_null(False)
    sessions = (
        encounters.sort("date", "encounter_id")
        .group_by(SESSION_KEYS, maintain_order=True)
        .agg(
            minutes=pl.col("minutes").sum().cast(pl.Int64),
            encounter_ids=pl.col("encounter_id"),
            unqualified_performers=pl.col("performer_id")
            .filter(unqualified)
            .unique(maintain_order=True),
            place_of_service=pl.col("place_of_service").drop_nulls().first(),
        )
        .sort("patient_id", "date", "mode", "billing_practitioner_id")
        .with_columns(seq=pl.int_range(pl.len()).over("patient_id"))
    )
    unit = unit_minutes(ctx, pl.col("mode"))
    return sessions.with_columns(
        unit_minutes=unit,
        first_unit_minutes=first_unit_minutes(ctx, unit),
        session_units=units(ctx, pl.col("minutes"), unit).cast(pl.Int64),
        place_of_service=pl.col("place_of_service").fill_null(p.place_of_service),
    )


def _with_same_day_dsmt(ctx: EvalContext, sessions: pl.DataFrame) -> pl.DataFrame:
    """``dsmt_ids``: DSMT encounters and claims (not denied) on the session's date."""
    encounters = ctx.bundle["encounters"].filter(
        (pl.col("kind") == DSMT_KIND) & ctx.in_month("date") & not_failed()
    )
    claims = nz.billed_claims(ctx, mnt(ctx).dsmt_codes).filter(ctx.in_month("date_of_service"))
    dsmt = (
        pl.concat(
            [
                encounters.select("patient_id", "date", dsmt_id=pl.col("encounter_id")),
                claims.select(
                    "patient_id",
                    date=pl.col("date_of_service"),
                    dsmt_id=claim_id(pl.col("code"), pl.col("date_of_service")),
                ),
            ]
        )
        .group_by("patient_id", "date")
        .agg(dsmt_ids=pl.col("dsmt_id").unique().sort())
    )
    return sessions.join(dsmt, on=["patient_id", "date"], how="left").with_columns(
        pl.col("dsmt_ids").fill_null(EMPTY_IDS)
    )


def _with_session_claims(
    ctx: EvalContext, sessions: pl.DataFrame, claims: pl.DataFrame
) -> pl.DataFrame:
    """Per session: the year's claim minutes through its date, the claim ids, the claims
    of its mode on its own date, and whether the initial assessment was billed before."""
    year_start, _ = year(ctx)
    p = mnt(ctx)
    in_year = pr.active_on("claim_date", pl.lit(year_start), "date", open_end=False)
    initial_before = (pl.col("code") == p.individual.initial_code) & (
        pl.col("claim_date") < pl.col("date")
    )
    if p.initial_assessment_scope != EVER:
        initial_before = initial_before & (pl.col("claim_date") >= year_start)
    found = (
        sessions.select(*SESSION_KEYS)
        .join(claims, on="patient_id", how="inner")
        .sort("claim_date", "code")
        .group_by(SESSION_KEYS)
        .agg(
            claim_ids=pl.col("claim_id").filter(in_year).unique(maintain_order=True),
            same_day_claims=pl.col("claim_id")
            .filter(
                (pl.col("claim_date") == pl.col("date")) & (pl.col("claim_mode") == pl.col("mode"))
            )
            .unique(maintain_order=True),
            initial_claimed=initial_before.any(),
        )
    )
    claims_minutes = pr.prior_usage(
        sessions,
        claims,
        on=("patient_id",),
        window=Window.calendar_year_through("date"),
        service_date="claim_date",
        units="claim_minutes",
    )
    return (
        sessions.with_columns(claims_minutes=claims_minutes)
        .join(found, on=SESSION_KEYS, how="left", nulls_equal=True)
        .with_columns(
            pl.col("claim_ids", "same_day_claims").fill_null(EMPTY_IDS),
            pl.col("initial_claimed").fill_null(False),
        )
    )


def _eligible(ctx: EvalContext) -> pl.Expr:
    """Everything a session needs except payment and the allowance (the criteria)."""
    return pl.all_horizontal([c.met.fill_null(False) for c in eligibility_criteria(ctx)])


def _with_codes(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``initial``, ``base_code`` and ``additional_code`` of each session: the first
    eligible individual session is the initial assessment (unless already claimed)."""
    p = mnt(ctx)
    individual = pl.col("mode") == INDIVIDUAL
    facts = facts.sort("patient_id", "seq").with_columns(
        eligible=_eligible(ctx), _ok_individual=(_eligible(ctx) & individual).cast(pl.Int64)
    )
    earlier_ok = pl.col("_ok_individual").cum_sum().over("patient_id") - pl.col("_ok_individual")
    return facts.with_columns(
        initial=individual & ~pl.col("initial_claimed") & (earlier_ok == 0)
    ).with_columns(
        base_code=pl.when(~individual)
        .then(pl.lit(p.group.code))
        .when(pl.col("initial"))
        .then(pl.lit(p.individual.initial_code))
        .otherwise(pl.lit(p.individual.followup_code)),
        additional_code=pl.when(individual)
        .then(pl.lit(p.individual.additional_code))
        .otherwise(pl.lit(p.group.additional_code)),
    )


def _pays_base_code(ctx: EvalContext) -> pl.Expr:
    """Whether the payer pays the session's base code (its ``pays:<code>`` column)."""
    p = mnt(ctx)
    group, initial, followup = p.group.code, p.individual.initial_code, p.individual.followup_code
    return (
        pl.when(pl.col("base_code") == group)
        .then(pl.col(f"pays:{group}"))
        .when(pl.col("base_code") == initial)
        .then(pl.col(f"pays:{initial}"))
        .otherwise(pl.col(f"pays:{followup}"))
        .fill_null(False)
    )


def _with_allowance(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """The allowance: a running sum of what the year's claims and the billed sessions
    used; the units within it bill the base code, the rest the additional-hours code."""
    demand = (
        pl.when(pl.col("eligible") & _pays_base_code(ctx))
        .then(pl.col("session_units") * pl.col("unit_minutes"))
        .otherwise(0)
        .cast(pl.Int64)
    )
    allowance = Cap("allowance", pl.col("allowance_minutes"), prior="claims_minutes")
    facts = pr.frequency_cap(
        facts.with_columns(demand_minutes=demand),
        [allowance],
        group=("patient_id",),
        order=("seq",),
        units="demand_minutes",
        rank="_allowance_rank",
        keep_order="sorted",
    )
    cap_columns = [f"allowance_{c}" for c in ("prior", "earlier", "room", "within", "granted")]
    facts = facts.rename({"allowance_used": "minutes_used_before"}).drop(
        "_allowance_rank", *cap_columns
    )
    remaining = (pl.col("allowance_minutes") - pl.col("minutes_used_before")).clip(lower_bound=0)
    return (
        facts.with_columns(remaining_minutes=remaining)
        .with_columns(remaining_units=pl.col("remaining_minutes") // pl.col("unit_minutes"))
        .with_columns(
            allowance_units=pl.min_horizontal("session_units", "remaining_units"),
        )
        .with_columns(
            overflow_units=pl.col("session_units") - pl.col("allowance_units"),
            additional_route=(pl.col("remaining_units") == 0) & pl.col("change_referral_in_year"),
        )
    )


def session_facts(ctx: EvalContext) -> pl.DataFrame:
    claims = mnt_claims(ctx)
    facts = _sessions(ctx)
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
    facts = pr.coverage_on(ctx, facts, "date")
    facts = with_referrals(ctx, facts, "date")
    facts = with_diagnoses(ctx, facts, "date")
    facts = _with_same_day_dsmt(ctx, facts)
    facts = _with_session_claims(ctx, facts, claims)
    facts = with_allowance_size(ctx, facts, claims)
    facts = pr.with_payer_pays(ctx, facts, family_codes(ctx), "date")
    facts = _with_codes(ctx, facts)
    return _with_allowance(ctx, facts).drop("_ok_individual")
