"""Wellness visits: the IPPE (G0402) and the annual wellness visit (G0438 / G0439).

Every code, window and limit comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. One per-visit rule set,
``wellness.visit``: one candidate per wellness request in the month, i.e.

- an encounter of a request kind (office visit, awv, ippe) whose ``cpt`` names G0402,
  G0438 or G0439: one request per such code (an E/M code beside it is context);
- an ``ippe`` encounter without a wellness code: a G0402 request;
- an ``awv`` encounter without a wellness code: an AWV request whose code the engine
  picks, G0438 when the patient has never had an AWV, else G0439.

Frequency limits read claims history (denied claims do not count) together with the
month's earlier requests that qualify. That is settled in two passes over the same
rules: the first pass finds which requests qualify on claims history alone; the second
counts, for each request, the earlier qualifying requests of the month (ranked by date,
encounter id, IPPE before AWV) and the qualifying IPPE of the same day. At most one
IPPE and one AWV a month can qualify, and the earliest request that qualifies alone is
always billed, so the two passes give the exact result without iterating.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    coverage_criterion,
    evidence_list,
    payer_pays_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import STATUS_SUPPRESSED, CodeRule, Criterion, line_column

FAMILY = "wellness"
IPPE, AWV = "ippe", "awv"  # request groups (rules' alternatives are wellness.ippe / .awv)
MODE_CALENDAR_YEAR = "calendar_year"
EMPTY = pl.lit([], dtype=pl.List(pl.String))
RULE_IDS = {
    "ippe": ("IPPE-1", "AWV-$", "AWV-U1"),
    "initial": ("AWV-1", "IPPE-1", "AWV-3", "AWV-$", "AWV-U1"),
    "subsequent": ("AWV-2", "AWV-1", "AWV-MA", "IPPE-1", "AWV-3", "AWV-$", "AWV-U1"),
}


def _codes(ctx: EvalContext) -> tuple[str, str, str]:
    p = ctx.params
    return (
        p.as_str("wellness.ippe.code"),
        p.as_str("wellness.awv.initial_code"),
        p.as_str("wellness.awv.subsequent_code"),
    )


def _claim_id(code: pl.Expr, day: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("claim:"), code, pl.lit("@"), day.cast(pl.String))


# --------------------------------------------------------------------------- requests


def _requests(ctx: EvalContext) -> pl.DataFrame:
    """One row per wellness request of the month, with ``seq`` (its rank per patient)."""
    p = ctx.params
    ippe_code, initial, subsequent = _codes(ctx)
    wellness_codes = [ippe_code, initial, subsequent]
    visits = (
        ctx.bundle["encounters"]
        .filter(
            pl.col("kind").is_in(p.as_strs("wellness.request_kinds"))
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
            uncoded.filter(pl.col("kind") == p.as_str("wellness.ippe.kind")).select(
                *keep, requested=pl.lit(ippe_code)
            ),
            uncoded.filter(pl.col("kind") == p.as_str("wellness.awv.kind")).select(
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
    p = ctx.params
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
    facts = nz.primary_coverage(ctx, facts, "date")
    kinds = p.as_strs("common.payer_kinds_paying_by_default")
    for code in _codes(ctx):
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", "date", kinds).alias(f"pays:{code}")
        )
    return facts


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
    ippe_code, initial, subsequent = _codes(ctx)
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
    p = ctx.params
    ippe_code, initial, subsequent = _codes(ctx)
    ippe_months = p.as_int("wellness.ippe.window_months")
    wait_months = p.as_int("wellness.awv.part_b_wait_months")
    after_ippe = p.as_int("wellness.awv.after_ippe_full_months") + 1
    interval = p.as_int("wellness.awv.interval_full_months") + 1
    calendar_year = (pl.lit(p.as_str("wellness.awv.ma_frequency") == MODE_CALENDAR_YEAR)) & pl.col(
        "payer_kind"
    ).is_in(p.as_strs("wellness.awv.ma_payer_kinds")).fill_null(False)
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
        .otherwise(pl.lit("eleven_full_months")),
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


# --------------------------------------------------------------------------- rules


def _shared_head(ctx: EvalContext, code: str) -> list[Criterion]:
    """Who bills, who pays, and not billed already: every wellness code's first criteria."""
    billers = ctx.params.as_strs("common.billing_credentials")
    return [
        Criterion(
            "billing_practitioner_qualified",
            "billed under a physician or NPP (the visit's billing practitioner, else its "
            "performer)",
            pl.col("bp_credential").is_in(billers),
            "practitioner_not_qualified",
            ("IPPE-1", "AWV-1"),
            detail=pl.format(
                "{} ({}) cannot bill a wellness visit: set billing_practitioner_id",
                pl.col("billing_practitioner_id"),
                pl.col("bp_credential").fill_null("unknown"),
            ),
            shows=("performer_id", "billing_practitioner_id", "bp_credential"),
        ),
        coverage_criterion(shows=("date", "payer_id")),
        payer_pays_criterion(code),
        Criterion(
            "not_already_billed",
            "this visit is not already in claims history (same code group, same date)",
            pl.col("same_day_claims").list.len() == 0,
            "already_billed",
            ("AWV-U1",),
            detail=pl.format(
                "already billed for this date: {}", pl.col("same_day_claims").list.join(", ")
            ),
            shows=("same_day_claims",),
        ),
    ]


def _lifetime(limit: int, what: str, rules: tuple[str, ...], hint: str = "") -> Criterion:
    return Criterion(
        "once_per_lifetime",
        f"no earlier {what} (claims history on another date, or earlier this month)",
        pl.col("prior_count") < limit,
        "frequency_limit_reached",
        rules,
        detail=pl.format(
            "the {} is once per lifetime; already: {}{}",
            pl.lit(what),
            pl.col("prior_ids").list.join(", "),
            pl.lit(hint),
        ),
        shows=("prior_count", "prior_ids"),
    )


def _not_with_ippe() -> Criterion:
    return Criterion(
        "not_same_day_as_ippe",
        "no IPPE billed for the patient on the same day",
        pl.col("same_day_ippe").is_null(),
        "conflict",
        ("IPPE-1",),
        status=pl.lit(STATUS_SUPPRESSED),
        detail=pl.format("an IPPE is billed the same day ({})", pl.col("same_day_ippe")),
        shows=("same_day_ippe",),
    )


def _awv_windows() -> list[Criterion]:
    return [
        Criterion(
            "after_first_year_of_part_b",
            "not within the first 12 months of Part B coverage (unknown part_b_start: not checked)",
            pl.col("part_b_start").is_null() | (pl.col("date") >= pl.col("awv_part_b_from")),
            "outside_eligibility_window",
            ("AWV-1",),
            detail=pl.format(
                "Part B began {}: an AWV is covered from {}",
                pl.col("part_b_start"),
                pl.col("awv_part_b_from"),
            ),
            shows=("part_b_start", "awv_part_b_from"),
        ),
        Criterion(
            "eleven_full_months_after_ippe",
            "11 full months have passed after the month of the IPPE",
            pl.col("last_ippe_date").is_null() | (pl.col("date") >= pl.col("awv_after_ippe_from")),
            "too_soon",
            ("AWV-1",),
            detail=pl.format(
                "IPPE on {} ({}): an AWV is covered from {}",
                pl.col("last_ippe_date"),
                pl.col("last_ippe_id"),
                pl.col("awv_after_ippe_from"),
            ),
            shows=("last_ippe_date", "last_ippe_id", "awv_after_ippe_from"),
        ),
    ]


def _awv_interval() -> list[Criterion]:
    calendar = pl.col("awv_frequency") == MODE_CALENDAR_YEAR
    return [
        Criterion(
            "eleven_full_months_after_last_awv",
            "11 full months have passed after the month of the last AWV "
            "(Medicare Advantage calendar-year setting: not applied)",
            calendar
            | pl.col("last_awv_date").is_null()
            | (pl.col("date") >= pl.col("awv_interval_from")),
            "too_soon",
            ("AWV-2",),
            detail=pl.format(
                "last AWV on {} ({}): the next is covered from {}",
                pl.col("last_awv_date"),
                pl.col("last_awv_id"),
                pl.col("awv_interval_from"),
            ),
            shows=("awv_frequency", "last_awv_date", "last_awv_id", "awv_interval_from"),
        ),
        Criterion(
            "once_per_calendar_year",
            "Medicare Advantage calendar-year setting: no other AWV this calendar year",
            ~calendar
            | pl.col("last_awv_date").is_null()
            | (pl.col("date") >= pl.col("awv_next_year_from")),
            "frequency_limit_reached",
            ("AWV-MA",),
            detail=pl.format(
                "the plan allows one AWV per calendar year; last on {} ({})",
                pl.col("last_awv_date"),
                pl.col("last_awv_id"),
            ),
            shows=("awv_frequency", "last_awv_date", "last_awv_id", "awv_next_year_from"),
        ),
    ]


def visit_rules(ctx: EvalContext) -> list[CodeRule]:
    p = ctx.params
    ippe_code, initial, subsequent = _codes(ctx)
    units = pl.lit(p.as_int("wellness.units_per_visit"))
    p.as_bool("wellness.cost_sharing_waived")  # recorded with the run for pricing
    ippe_window = Criterion(
        "within_first_year_of_part_b",
        "within the first 12 months after the Part B effective date (part_b_start known)",
        pl.col("date").is_between(pl.col("part_b_start"), pl.col("ippe_window_end")),
        "outside_eligibility_window",
        ("IPPE-1",),
        detail=pl.when(pl.col("part_b_start").is_null())
        .then(pl.lit("part_b_start is not known: the IPPE window cannot be checked"))
        .otherwise(
            pl.format(
                "Part B began {}: the IPPE window is {} to {}",
                pl.col("part_b_start"),
                pl.col("part_b_start"),
                pl.col("ippe_window_end"),
            )
        ),
        shows=("part_b_start", "ippe_window_end"),
    )

    def visit_rule(
        key: str,
        code: str,
        criteria: Sequence[Criterion],
        evidence: pl.Expr,
        rules: tuple[str, ...],
        alternative: str,
        parameters: tuple[str, ...],
        description: str,
    ) -> CodeRule:
        return CodeRule(
            key=key,
            code=code,
            family=FAMILY,
            considered=pl.col("code") == code,
            criteria=tuple(criteria),
            units=units,
            date_of_service=pl.col("date"),
            evidence=evidence,
            rules=rules,
            alternative=alternative,
            place_of_service=pl.col("place_of_service"),
            icd10_codes=pl.col("icd10"),
            parameters=parameters,
            description=description,
        )

    common_params = ("common.billing_credentials", "wellness.cost_sharing_waived")
    awv_evidence = evidence_list(
        "encounter_id", "same_day_claims", "prior_ids", "last_awv_id", "last_ippe_id"
    )
    return [
        visit_rule(
            key="wellness.ippe",
            code=ippe_code,
            criteria=(
                *_shared_head(ctx, ippe_code),
                _lifetime(p.as_int("wellness.ippe.lifetime_limit"), "IPPE", ("IPPE-1",)),
                ippe_window,
            ),
            evidence=evidence_list("encounter_id", "same_day_claims", "prior_ids"),
            rules=RULE_IDS["ippe"],
            alternative="wellness.ippe",
            parameters=(
                "wellness.ippe.code",
                "wellness.ippe.window_months",
                "wellness.ippe.lifetime_limit",
                *common_params,
            ),
            description="initial preventive physical examination",
        ),
        visit_rule(
            key="wellness.awv.initial",
            code=initial,
            criteria=(
                *_shared_head(ctx, initial),
                _not_with_ippe(),
                _lifetime(
                    p.as_int("wellness.awv.initial_lifetime_limit"),
                    "initial AWV",
                    ("AWV-1",),
                    f" (a later AWV is the subsequent AWV, {subsequent})",
                ),
                *_awv_windows(),
            ),
            evidence=awv_evidence,
            rules=RULE_IDS["initial"],
            alternative="wellness.awv",
            parameters=(
                "wellness.awv.initial_code",
                "wellness.awv.initial_lifetime_limit",
                "wellness.awv.part_b_wait_months",
                "wellness.awv.after_ippe_full_months",
                *common_params,
            ),
            description="initial annual wellness visit",
        ),
        visit_rule(
            key="wellness.awv.subsequent",
            code=subsequent,
            criteria=(
                *_shared_head(ctx, subsequent),
                _not_with_ippe(),
                *_awv_windows(),
                *_awv_interval(),
            ),
            evidence=awv_evidence,
            rules=RULE_IDS["subsequent"],
            alternative="wellness.awv",
            parameters=(
                "wellness.awv.subsequent_code",
                "wellness.awv.part_b_wait_months",
                "wellness.awv.after_ippe_full_months",
                "wellness.awv.interval_full_months",
                "wellness.awv.ma_frequency",
                *common_params,
            ),
            description="subsequent annual wellness visit",
        ),
    ]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    visit = (pl.col("date"), pl.col("date"))
    rules = visit_rules(ctx)
    # first pass: which requests qualify on claims history alone
    first = run_rule_set(ctx, FAMILY, "wellness.visit", visit_facts(ctx), rules, period=visit)
    qualifies = pl.any_horizontal([pl.col(line_column(rule)) for rule in rules])
    qualifying = first.facts.filter(qualifies).select(
        "seq", "patient_id", "date", "group", "encounter_id"
    )
    # an AWV on the day of a qualifying IPPE is suppressed: it uses up nothing
    ippe_days = qualifying.filter(pl.col("group") == IPPE).select("patient_id", "date").unique()
    qualifying = pl.concat(
        [
            qualifying.filter(pl.col("group") == IPPE),
            qualifying.filter(pl.col("group") == AWV).join(
                ippe_days, on=["patient_id", "date"], how="anti"
            ),
        ]
    )
    return [
        run_rule_set(
            ctx, FAMILY, "wellness.visit", visit_facts(ctx, qualifying), rules, period=visit
        )
    ]
