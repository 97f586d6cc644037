"""Wellness visits: the criteria an auditor reads, shared by the three codes.

Each reads the facts built in ``facts.py``; the rules that list them, code by code,
are in ``rule.py``. Every window's length in a description is its parameter's value.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import STATUS_SUPPRESSED, Criterion
from code_rules.parameters_typed import typed
from code_rules.wellness.facts import MODE_CALENDAR_YEAR

PAYER_RULE_IDS = ("AWV-$",)  # coverage and payer pays feed the waived cost sharing


def shared_head(ctx: EvalContext, code: str) -> list[Criterion]:
    """Who bills, who pays, and not billed already: every wellness code's first criteria."""
    billers = typed(ctx.params).common.billing_credentials
    return [
        pr.billing_practitioner_qualified_criterion(
            ("IPPE-1", "AWV-1"),
            billers,
            "billed under a physician or NPP (the visit's billing practitioner, else its "
            "performer)",
            detail=pl.format(
                "{} ({}) cannot bill a wellness visit: set billing_practitioner_id",
                pl.col("billing_practitioner_id"),
                pl.col("bp_credential").fill_null("unknown"),
            ),
            shows=("performer_id", "billing_practitioner_id", "bp_credential"),
        ),
        pr.coverage_criterion(PAYER_RULE_IDS, shows=("date", "payer_id")),
        pr.payer_pays_criterion(code, PAYER_RULE_IDS),
        pr.not_already_billed_criterion(
            pl.col("same_day_claims").list.len() == 0,
            "this visit is not already in claims history (same code group, same date)",
            ("AWV-U1",),
            detail=pl.format(
                "already billed for this date: {}", pl.col("same_day_claims").list.join(", ")
            ),
            shows=("same_day_claims",),
        ),
    ]


def lifetime(limit: int, what: str, rules: tuple[str, ...], hint: str = "") -> Criterion:
    """At most `limit` of `what` per lifetime (facts: ``prior_count``, ``prior_ids``)."""
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


def ippe_window(ctx: EvalContext) -> Criterion:
    """The IPPE is within its window after the Part B effective date."""
    months = typed(ctx.params).wellness.ippe.window_months
    return Criterion(
        "within_first_year_of_part_b",
        f"within the first {months} months after the Part B effective date (part_b_start known)",
        pr.active_on("date", "part_b_start", "ippe_window_end", open_end=False),
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


def not_with_ippe() -> Criterion:
    """No qualifying IPPE the same day (the AWV is then suppressed, not a gap)."""
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


def awv_windows(ctx: EvalContext) -> list[Criterion]:
    """Any AWV: after Part B's waiting months, and the full months after the IPPE."""
    awv = typed(ctx.params).wellness.awv
    return [
        Criterion(
            "after_first_year_of_part_b",
            f"not within the first {awv.part_b_wait_months} months of Part B coverage "
            "(unknown part_b_start: not checked)",
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
            f"{awv.after_ippe_full_months} full months have passed after the month of the IPPE",
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


def awv_interval(ctx: EvalContext) -> list[Criterion]:
    """The subsequent AWV: the full months after the last AWV, or the MA calendar year."""
    months = typed(ctx.params).wellness.awv.interval_full_months
    calendar = pl.col("awv_frequency") == MODE_CALENDAR_YEAR
    return [
        Criterion(
            "eleven_full_months_after_last_awv",
            f"{months} full months have passed after the month of the last AWV "
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
