"""MNT's names, codes and unit arithmetic, shared by its facts and its rules.

Every code and size is read through the typed accessor (``typed(ctx.params).mnt``);
the interchange's own values (encounter kinds, contact modes, outcomes) are named here.
"""

from __future__ import annotations

import datetime as dt
from typing import overload

import polars as pl

from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import Mnt, typed

FAMILY = "mnt"
INDIVIDUAL, GROUP = "individual", "group"  # session modes
MNT_KIND, DSMT_KIND = "mnt", "dsmt"  # interchange encounters.kind
GROUP_CONTACT = "group"  # interchange encounters.contact_mode
FAILED_ATTEMPT = "attempt_failed"  # interchange encounters.outcome
MIDPOINT = "midpoint"  # mnt.unit_rounding
EVER = "ever"  # mnt.initial_assessment_scope
SESSION_KEYS = ["patient_id", "date", "billing_practitioner_id", "mode"]
RULE_IDS = ("MNT-D1", "MNT-R1", "MNT-S1", "MNT-H1", "MNT-U1", "MNT-X1", "MNT-T1", "MNT-$")
PAYMENT_RULE_IDS = ("MNT-$",)  # what coverage and the payer's check feed: cost sharing
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


def mnt(ctx: EvalContext) -> Mnt:
    """The run's ``mnt.*`` parameters."""
    return typed(ctx.params).mnt


def family_codes(ctx: EvalContext) -> list[str]:
    """Every MNT code: initial, follow-up, individual additional, group, group additional."""
    p = mnt(ctx)
    return [
        p.individual.initial_code,
        p.individual.followup_code,
        p.individual.additional_code,
        p.group.code,
        p.group.additional_code,
    ]


def group_codes(ctx: EvalContext) -> list[str]:
    p = mnt(ctx)
    return [p.group.code, p.group.additional_code]


def year(ctx: EvalContext) -> tuple[dt.date, dt.date]:
    """First and last day of the evaluated month's calendar year."""
    first = ctx.start.year
    return dt.date(first, 1, 1), dt.date(first + 1, 1, 1) - dt.timedelta(days=1)


def unit_minutes(ctx: EvalContext, mode: pl.Expr) -> pl.Expr:
    """Minutes of one unit of the session's mode (individual or group)."""
    p = mnt(ctx)
    return (
        pl.when(mode == GROUP)
        .then(pl.lit(p.group.unit_minutes))
        .otherwise(pl.lit(p.individual.unit_minutes))
        .cast(pl.Int64)
    )


@overload
def first_unit_minutes(ctx: EvalContext, unit: int) -> int: ...
@overload
def first_unit_minutes(ctx: EvalContext, unit: pl.Expr) -> pl.Expr: ...
def first_unit_minutes(ctx: EvalContext, unit: int | pl.Expr) -> int | pl.Expr:
    """Minutes that attain the first unit: past the midpoint (more than half the unit),
    or the full unit (``mnt.unit_rounding``)."""
    if mnt(ctx).unit_rounding == MIDPOINT:
        return unit // 2 + 1
    return unit


def units(ctx: EvalContext, minutes: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """Units of a day's minutes: each unit after the first also needs its midpoint passed."""
    return ((minutes + unit - first_unit_minutes(ctx, unit)) // unit).clip(lower_bound=0)


def starts_with_any(column: str, prefixes: list[str]) -> pl.Expr:
    return pl.any_horizontal(
        [pl.lit(False), *[pl.col(column).str.starts_with(prefix) for prefix in prefixes]]
    )


def claim_id(code: pl.Expr, day: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("claim:"), code, pl.lit("@"), day.cast(pl.String))


def not_failed() -> pl.Expr:
    """An encounter that took place (its outcome is not a failed attempt)."""
    return pl.col("outcome").fill_null("") != FAILED_ATTEMPT
