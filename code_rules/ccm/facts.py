"""Chronic care management: the facts of each candidate (the joins an auditor skips).

- ``monthly_facts``: one row per patient x billing practitioner x month (anyone with
  CCM time logged that month or a valid CCM consent naming the practitioner), with the
  minutes each alternative counts, consent, chronic conditions, care plans, the
  initiating visit, claims already billed, MDM, the date each code's minutes were
  reached, place of service, coverage and whether the payer pays each code.
- ``g0506_facts``: one row per visit in the month whose cpt requests G0506.

The criteria that read these columns are in ``rule.py``.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.primitives import Cap, Window
from code_rules.ccm.alternatives import addon_units, alternatives, family_codes
from code_rules.parameters_typed import typed
from code_rules.valuesets import chronic_value_set


def _candidates(ctx: EvalContext, program: str) -> pl.DataFrame:
    logged = nz.time_entries(ctx).filter(pl.col("program") == program)
    consented = nz.valid_consents(ctx, program).filter(
        pl.col("billing_practitioner_id").is_not_null()
    )
    return pl.concat(
        [
            logged.select("patient_id", "billing_practitioner_id"),
            consented.select("patient_id", "billing_practitioner_id"),
        ]
    ).unique(maintain_order=True)


def _with_minutes(ctx: EvalContext, facts: pl.DataFrame, program: str) -> pl.DataFrame:
    keys = ["patient_id", "billing_practitioner_id"]
    for pool, column in (
        (nz.POOL_ALL, "staff_minutes"),
        (nz.POOL_PRACTITIONER, "practitioner_minutes"),
    ):
        minutes = nz.monthly_minutes(ctx, program, pool).rename({"minutes": column})
        ids = nz.counted_entry_ids(ctx, program, pool).rename({"entry_ids": f"{column}_ids"})
        facts = facts.join(minutes, on=keys, how="left", nulls_equal=True).join(
            ids, on=keys, how="left", nulls_equal=True
        )
    empty = pl.lit([], dtype=pl.List(pl.String))
    return facts.join(
        nz.logged_minutes(ctx, program), on=keys, how="left", nulls_equal=True
    ).with_columns(
        pl.col("staff_minutes", "practitioner_minutes", "minutes_logged").fill_null(0),
        pl.col("staff_minutes_ids", "practitioner_minutes_ids").fill_null(empty),
    )


def _with_initiating_visit(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    initiating = typed(ctx.params).ccm.initiating_visit
    codes = initiating.codes
    if initiating.accept_level1_visit:
        codes = [*codes, initiating.level1_code]
    consented = facts.select("patient_id", "billing_practitioner_id", "consent_date").filter(
        pl.col("consent_date").is_not_null()
    )
    # only the consented candidates' visits are looked at (the join below is inner)
    visits = nz.practitioner_visits(
        ctx, codes, initiating.kinds, consented.select("patient_id").unique()
    )
    lookback = initiating.lookback_months
    found = (
        consented.join(
            visits,
            left_on=["patient_id", "billing_practitioner_id"],
            right_on=["patient_id", "practitioner_id"],
            how="inner",
        )
        .filter(
            pr.active_on(
                "date",
                pl.col("consent_date").dt.offset_by(f"-{lookback}mo"),
                pl.lit(ctx.end),
                open_end=False,
            )
        )
        .sort("date")
        .group_by("patient_id", "billing_practitioner_id")
        .agg(
            initiating_visit_id=pl.col("source_id").first(),
            initiating_visit_date=pl.col("date").first(),
        )
    )
    return facts.join(
        found, on=["patient_id", "billing_practitioner_id"], how="left", nulls_equal=True
    )


def _with_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Claims already billed this month for any CCM code: by this practitioner or others."""
    claims = nz.claims_in_month(ctx, family_codes(ctx)).select("patient_id", "billing_npi", "code")
    joined = (
        facts.select("patient_id", "billing_practitioner_id", "bp_npi")
        .join(claims, on="patient_id", how="inner")
        .group_by("patient_id", "billing_practitioner_id")
        .agg(
            other_claims=pl.col("billing_npi")
            .filter(pl.col("billing_npi") != pl.col("bp_npi").fill_null(""))
            .unique()
            .sort(),
            own_claim_codes=pl.col("code")
            .filter(pl.col("billing_npi") == pl.col("bp_npi"))
            .unique()
            .sort(),
        )
    )
    return facts.join(
        joined, on=["patient_id", "billing_practitioner_id"], how="left", nulls_equal=True
    ).with_columns(
        pl.col("other_claims", "own_claim_codes").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def _with_dates(ctx: EvalContext, facts: pl.DataFrame, program: str) -> pl.DataFrame:
    """Date each code's minutes were reached (or the month's end, per the setting)."""
    month_end = typed(ctx.params).common.date_of_service_rule == "month_end"
    columns: dict[str, pl.Series | pl.Expr] = {}
    for alt in alternatives(ctx):
        threshold = alt.code.threshold_minutes
        step = alt.code.addon_step_minutes
        needed = facts.select(
            "patient_id",
            "billing_practitioner_id",
            base_needed=pl.lit(threshold),
            addon_needed=threshold + step * pl.max_horizontal(addon_units(alt), pl.lit(1)),
        )
        for part in ("base", "addon"):
            name = f"{alt.key}_{part}_date"
            if month_end:
                columns[name] = pl.lit(ctx.end, dtype=pl.Date)
            else:
                columns[name] = nz.date_reached(
                    ctx, needed, program, alt.pool, f"{part}_needed"
                ).alias(name)
    return facts.with_columns(**columns)


def monthly_facts(ctx: EvalContext) -> pl.DataFrame:
    rp = typed(ctx.params)
    program = rp.ccm.consent_program
    facts = _candidates(ctx, program)
    facts = _with_minutes(ctx, facts, program)
    facts = nz.consent_facts(ctx, facts, program)
    facts = facts.join(
        nz.chronic_conditions(ctx, chronic_value_set()), on="patient_id", how="left"
    ).with_columns(pl.col("n_chronic").fill_null(0))
    care_plans = nz.care_plan_facts(ctx, rp.ccm.care_plan_program, rp.ccm.complex.care_plan_actions)
    facts = facts.join(care_plans, on="patient_id", how="left")
    facts = _with_initiating_visit(ctx, facts)
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
    facts = _with_claims(ctx, facts)
    facts = facts.join(
        nz.max_mdm(ctx), on=["patient_id", "billing_practitioner_id"], how="left", nulls_equal=True
    ).with_columns(pl.col("mdm_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    facts = _with_dates(ctx, facts, program)
    for minutes in sorted({alt.minutes for alt in alternatives(ctx)}):
        facts = nz.monthly_place_of_service(ctx, facts, f"{minutes}_ids", f"{minutes}_pos")
    reference = pl.coalesce("staff_base_date", pl.lit(min(max(ctx.as_of, ctx.start), ctx.end)))
    facts = pr.coverage_on(ctx, facts.with_columns(reference_date=reference), "reference_date")
    return pr.with_payer_pays(ctx, facts, family_codes(ctx), "reference_date")


def g0506_facts(ctx: EvalContext) -> pl.DataFrame:
    """One row per visit in the month whose cpt requests G0506."""
    rp = typed(ctx.params)
    code = rp.ccm.g0506.code
    kinds = rp.ccm.initiating_visit.kinds
    visit_codes = rp.ccm.initiating_visit.codes
    ignored = rp.common.ignored_claim_statuses
    program = rp.ccm.consent_program
    requests = (
        ctx.bundle["encounters"]
        .filter(
            pl.col("kind").is_in(kinds) & ctx.in_month("date") & pl.col("cpt").list.contains(code)
        )
        .with_columns(
            billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id")
        )
    )
    requests = nz.with_practitioner(ctx, requests, "performer_id", "performer")
    requests = nz.with_practitioner(ctx, requests, "billing_practitioner_id", "bp")
    requests = nz.with_visit_place_of_service(ctx, requests)
    visits = requests.with_columns(
        base_visit=(pl.col("kind") != "office_visit")
        | pl.col("cpt").list.eval(pl.element().is_in(visit_codes)).list.any(),
    ).select(
        "patient_id",
        "billing_practitioner_id",
        "performer_id",
        "performer_credential",
        "bp_credential",
        "encounter_id",
        "date",
        "base_visit",
        "place_of_service",
    )
    billed = (
        ctx.bundle["claims_history"]
        .filter(
            (pl.col("code") == code)
            & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        )
        .select("patient_id", pl.col("date_of_service"), pl.col("units").fill_null(1))
    )
    visits = visits.with_columns(
        prior_units=pr.prior_usage(
            visits,
            billed,
            on=("patient_id",),
            window=Window.lifetime("date", other_days_only=True),
            units="units",
        )
    )
    same_day = (
        visits.select("encounter_id", "patient_id", "date")
        .join(billed, on="patient_id", how="inner")
        .group_by("encounter_id")
        .agg(same_day_claims=(pl.col("date_of_service") == pl.col("date")).sum())
    )
    visits = visits.join(same_day, on="encounter_id", how="left").with_columns(
        pl.col("same_day_claims").fill_null(0)
    )
    # every request of the month counts, billable or not; same-day ties in input order
    cap = Cap("lifetime", rp.ccm.g0506.lifetime_limit, prior="prior_units")
    visits = (
        pr.frequency_cap(visits, [cap], group=("patient_id",), order=("date",))
        .with_columns(
            earlier_requests=pl.col("lifetime_earlier").cast(pl.UInt32),
            used=pl.col("lifetime_used"),
        )
        .drop(
            "lifetime_prior",
            "lifetime_earlier",
            "lifetime_used",
            "lifetime_room",
            "lifetime_within",
            "lifetime_granted",
            "cap_rank",
        )
    )
    facts = nz.consent_facts(ctx, visits, program)
    facts = facts.join(
        nz.chronic_conditions(ctx, chronic_value_set()), on="patient_id", how="left"
    ).with_columns(pl.col("n_chronic").fill_null(0))
    facts = pr.coverage_on(ctx, facts, "date")
    return pr.with_payer_pays(ctx, facts, [code], "date")
