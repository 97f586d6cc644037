"""Wellness visits: the facts of each request (the joins an auditor skips).

One row per wellness request of the month (see ``rule.py`` for what a request is),
with its billing practitioner, coverage and whether the payer pays each code, its
diagnoses, what claims history says (same-day claims, lifetime counts, the latest AWV
and IPPE), the month's earlier qualifying requests (second pass) and the dates each
window opens and closes. The criteria that read these columns are in ``criteria.py``.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import typed

IPPE, AWV = "ippe", "awv"  # request groups (rules' alternatives are wellness.ippe / .awv)
MODE_CALENDAR_YEAR = "calendar_year"
MODE_ELEVEN_FULL_MONTHS = "eleven_full_months"
EMPTY = pl.lit([], dtype=pl.List(pl.String))


def codes(ctx: EvalContext) -> tuple[str, str, str]:
    """The IPPE, initial AWV and subsequent AWV codes."""
    wellness = typed(ctx.params).wellness
    return (wellness.ippe.code, wellness.awv.initial_code, wellness.awv.subsequent_code)


def _claim_id(code: pl.Expr, day: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("claim:"), code, pl.lit("@"), day.cast(pl.String))


# --------------------------------------------------------------------------- requests


def _requests(ctx: EvalContext) -> pl.DataFrame:
    """One row per wellness request of the month, with ``seq`` (its rank per patient)."""
    rp = typed(ctx.params)
    ippe_code, initial, subsequent = codes(ctx)
    wellness_codes = [ippe_code, initial, subsequent]
    visits = (
        ctx.bundle["encounters"]
        .filter(
            pl.col("kind").is_in(rp.wellness.request_kinds)
            & ctx.in_month("date")
            & (pl.col("outcome").is_null() | (pl.col("outcome") != "attempt_failed"))
        )
        .with_columns(
            coded=pl.col("cpt")
            .list.eval(pl.element().filter(pl.element().is_in(wellness_codes)))
            .fill_null(EMPTY)
        )
    )
    keep = [
        "patient_id",
        "encounter_id",
        "date",
        "kind",
        "performer_id",
        "billing_practitioner_id",
        "place_of_service",
    ]
    from_cpt = (
        visits.filter(pl.col("coded").list.len() > 0)
        .explode("coded")
        .select(*keep, requested=pl.col("coded"))
    )
    uncoded = visits.filter(pl.col("coded").list.len() == 0)
    from_kind = pl.concat(
        [
            uncoded.filter(pl.col("kind") == rp.wellness.ippe.kind).select(
                *keep, requested=pl.lit(ippe_code)
            ),
            uncoded.filter(pl.col("kind") == rp.wellness.awv.kind).select(
                *keep, requested=pl.lit(None, dtype=pl.String)
            ),
        ]
    )
    requests = pl.concat([from_cpt, from_kind]).with_columns(
        group=pl.when(pl.col("requested") == ippe_code).then(pl.lit(IPPE)).otherwise(pl.lit(AWV)),
        request_source=pl.when(pl.col("requested").is_null())
        .then(pl.lit("kind"))
        .otherwise(pl.lit("cpt")),
    )
    return (
        requests.with_columns(_group_order=(pl.col("group") == AWV).cast(pl.Int32))
        .sort("patient_id", "date", "encounter_id", "_group_order", "requested", nulls_last=True)
        .with_row_index("seq")
        .with_columns(pl.col("seq").cast(pl.Int64))
        .drop("_group_order")
    )


def _with_practitioner_and_payer(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    facts = nz.with_visit_place_of_service(
        ctx,
        facts.with_columns(
            billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id")
        ),
    )
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp").drop("bp_npi")
    facts = facts.join(
        ctx.bundle["patients"].select("patient_id", "part_b_start"), on="patient_id", how="left"
    )
    facts = pr.coverage_on(ctx, facts, "date")
    return pr.with_payer_pays(ctx, facts, codes(ctx), "date")


def _with_diagnoses(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``icd10``: up to four conditions active on the visit date (earliest onset first)."""
    return facts.with_columns(icd10=nz.conditions_on_date(ctx, facts, "date"))


def _with_history(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """What claims history (not denied, dated by the month's end) says about each request.

    - ``same_day_claims``: claims of the request's own group (IPPE, or either AWV code)
      on the visit date: the visit is already billed.
    - ``prior_claims``: claims of the group on any other date (lifetime limits).
    - ``awv_claim_before``: an AWV claim dated before the visit (picks G0439).
    - ``claim_awv_date`` / ``claim_awv_id``: the latest AWV claim on another date.
    - ``claim_ippe_date`` / ``claim_ippe_id``: the latest IPPE claim before the visit date.
    - ``same_day_ippe_claim``: an IPPE claim on the visit date (for AWV requests).
    """
    ippe_code, initial, subsequent = codes(ctx)
    claims = (
        nz.billed_claims(ctx, [ippe_code, initial, subsequent])
        .select(
            "patient_id",
            pl.col("code").alias("claim_code"),
            pl.col("date_of_service").alias("claim_date"),
        )
        .with_columns(
            claim_group=pl.when(pl.col("claim_code") == ippe_code)
            .then(pl.lit(IPPE))
            .otherwise(pl.lit(AWV)),
            claim_id=_claim_id(pl.col("claim_code"), pl.col("claim_date")),
        )
    )
    same_day = pl.col("claim_date") == pl.col("date")
    own = pl.col("claim_group") == pl.col("group")
    is_awv = pl.col("claim_group") == AWV
    is_ippe = pl.col("claim_group") == IPPE
    other_awv = is_awv & ~same_day
    prior_ippe = is_ippe & (pl.col("claim_date") < pl.col("date"))
    summary = (
        facts.select("seq", "patient_id", "date", "group")
        .join(claims, on="patient_id", how="inner")
        .sort("seq", "claim_date", "claim_code")
        .group_by("seq")
        .agg(
            same_day_claims=pl.col("claim_id").filter(own & same_day),
            prior_claims=pl.col("claim_id").filter(own & ~same_day),
            awv_claim_before=(is_awv & (pl.col("claim_date") < pl.col("date"))).any(),
            claim_awv_date=pl.col("claim_date").filter(other_awv).last(),
            claim_awv_id=pl.col("claim_id").filter(other_awv).last(),
            claim_ippe_date=pl.col("claim_date").filter(prior_ippe).last(),
            claim_ippe_id=pl.col("claim_id").filter(prior_ippe).last(),
            same_day_ippe_claim=pl.col("claim_id").filter(is_ippe & same_day).first(),
        )
    )
    return facts.join(summary, on="seq", how="left").with_columns(
        pl.col("same_day_claims", "prior_claims").fill_null(EMPTY),
        pl.col("awv_claim_before").fill_null(False),
    )


def _with_month(facts: pl.DataFrame, qualifying: pl.DataFrame | None) -> pl.DataFrame:
    """The month's earlier qualifying requests (and the same day's IPPE) for each request.

    `qualifying` holds (seq, patient_id, date, group, encounter_id) of the requests that
    qualify on claims history alone (first pass); None in the first pass itself.
    """
    if qualifying is None:
        qualifying = facts.select("seq", "patient_id", "date", "group", "encounter_id").clear()
    other = qualifying.select(
        "patient_id",
        pl.col("seq").alias("o_seq"),
        pl.col("date").alias("o_date"),
        pl.col("group").alias("o_group"),
        pl.col("encounter_id").alias("o_encounter_id"),
    )
    earlier = pl.col("o_seq") < pl.col("seq")
    awv_before = earlier & (pl.col("o_group") == AWV)
    ippe_before = earlier & (pl.col("o_group") == IPPE)
    ippe_earlier_day = (pl.col("o_group") == IPPE) & (pl.col("o_date") < pl.col("date"))
    ippe_same_day = (
        (pl.col("o_group") == IPPE)
        & (pl.col("o_date") == pl.col("date"))
        & (pl.col("o_seq") != pl.col("seq"))
    )
    summary = (
        facts.select("seq", "patient_id", "date")
        .join(other, on="patient_id", how="inner")
        .sort("seq", "o_seq")
        .group_by("seq")
        .agg(
            month_awv=pl.col("o_encounter_id").filter(awv_before),
            month_awv_date=pl.col("o_date").filter(awv_before).last(),
            month_ippe=pl.col("o_encounter_id").filter(ippe_before),
            month_ippe_date=pl.col("o_date").filter(ippe_earlier_day).last(),
            month_ippe_id=pl.col("o_encounter_id").filter(ippe_earlier_day).last(),
            same_day_ippe_visit=pl.col("o_encounter_id").filter(ippe_same_day).first(),
        )
    )
    return facts.join(summary, on="seq", how="left").with_columns(
        pl.col("month_awv", "month_ippe").fill_null(EMPTY)
    )


def _with_windows(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """The code of each request and the dates its windows open and close."""
    rp = typed(ctx.params)
    ippe_code, initial, subsequent = codes(ctx)
    ippe_months = rp.wellness.ippe.window_months
    wait_months = rp.wellness.awv.part_b_wait_months
    after_ippe = rp.wellness.awv.after_ippe_full_months + 1
    interval = rp.wellness.awv.interval_full_months + 1
    calendar_year = (pl.lit(rp.wellness.awv.ma_frequency == MODE_CALENDAR_YEAR)) & pl.col(
        "payer_kind"
    ).is_in(rp.wellness.awv.ma_payer_kinds).fill_null(False)
    had_awv = pl.col("awv_claim_before") | (pl.col("month_awv").list.len() > 0)
    # the latest earlier AWV / IPPE: claims history or this month's qualifying requests
    last_awv_date = pl.max_horizontal("claim_awv_date", "month_awv_date")
    month_is_last = pl.col("month_awv_date").is_not_null() & (
        pl.col("claim_awv_date").is_null() | (pl.col("month_awv_date") >= pl.col("claim_awv_date"))
    )
    ippe_month_is_last = pl.col("month_ippe_date").is_not_null() & (
        pl.col("claim_ippe_date").is_null()
        | (pl.col("month_ippe_date") >= pl.col("claim_ippe_date"))
    )
    return facts.with_columns(
        code=pl.when(pl.col("group") == IPPE)
        .then(pl.lit(ippe_code))
        .when(pl.col("requested").is_not_null())
        .then(pl.col("requested"))
        .when(had_awv)
        .then(pl.lit(subsequent))
        .otherwise(pl.lit(initial)),
        awv_frequency=pl.when(calendar_year)
        .then(pl.lit(MODE_CALENDAR_YEAR))
        .otherwise(pl.lit(MODE_ELEVEN_FULL_MONTHS)),
        prior_count=(
            pl.col("prior_claims").list.len()
            + pl.when(pl.col("group") == IPPE)
            .then(pl.col("month_ippe").list.len())
            .otherwise(pl.col("month_awv").list.len())
        ).cast(pl.Int64),
        prior_ids=pl.concat_list(
            "prior_claims",
            pl.when(pl.col("group") == IPPE)
            .then(pl.col("month_ippe"))
            .otherwise(pl.col("month_awv")),
        ),
        last_awv_date=last_awv_date,
        last_awv_id=pl.when(month_is_last)
        .then(pl.col("month_awv").list.last())
        .otherwise(pl.col("claim_awv_id")),
        last_ippe_date=pl.max_horizontal("claim_ippe_date", "month_ippe_date"),
        last_ippe_id=pl.when(ippe_month_is_last)
        .then(pl.col("month_ippe_id"))
        .otherwise(pl.col("claim_ippe_id")),
        same_day_ippe=pl.coalesce("same_day_ippe_visit", "same_day_ippe_claim"),
        ippe_window_end=pl.col("part_b_start").dt.offset_by(f"{ippe_months}mo").dt.offset_by("-1d"),
        awv_part_b_from=pl.col("part_b_start").dt.offset_by(f"{wait_months}mo"),
    ).with_columns(
        awv_after_ippe_from=pl.col("last_ippe_date")
        .dt.month_start()
        .dt.offset_by(f"{after_ippe}mo"),
        awv_interval_from=pl.col("last_awv_date").dt.month_start().dt.offset_by(f"{interval}mo"),
        awv_next_year_from=pl.col("last_awv_date").dt.truncate("1y").dt.offset_by("1y"),
    )


def visit_facts(ctx: EvalContext, qualifying: pl.DataFrame | None = None) -> pl.DataFrame:
    facts = _requests(ctx)
    facts = _with_practitioner_and_payer(ctx, facts)
    facts = _with_diagnoses(ctx, facts)
    facts = _with_history(ctx, facts)
    facts = _with_month(facts, qualifying)
    return _with_windows(ctx, facts)
