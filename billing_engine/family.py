"""What a code family hands back to the pipeline, and helpers families share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from billing_engine.normalize import EvalContext
from billing_engine.rules import STATUS_BLOCKED, STATUS_SHORT, CodeRule, Criterion


@dataclass(frozen=True)
class RuleSetResult:
    """One facts frame, the rules evaluated over it, and their outcomes."""

    family: str
    name: str  # e.g. "ccm.monthly"
    identity: tuple[str, ...]  # the facts frame's candidate key
    facts: pl.DataFrame  # with each rule's criterion columns
    rules: tuple[CodeRule, ...]
    outcomes: pl.DataFrame


FamilyEvaluator = Callable[[EvalContext], Sequence[RuleSetResult]]


def parameters_text(ctx: EvalContext, names: Sequence[str]) -> str:
    """'name=value;...' of the parameters a rule used (for claim lines' evidence)."""
    parts = []
    for name in names:
        value = ctx.params[name]
        shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{name}={shown}")
    return ";".join(parts)


def time_status(ctx: EvalContext) -> pl.Expr:
    """`short` while work dated on or after as-of can still land in the period."""
    return pl.lit(STATUS_SHORT if ctx.as_of <= ctx.end else STATUS_BLOCKED)


def time_deadline(ctx: EvalContext) -> pl.Expr:
    return pl.lit(ctx.end if ctx.as_of <= ctx.end else None, dtype=pl.Date)


def minutes_criterion(
    ctx: EvalContext,
    minutes: str,
    needed: pl.Expr,
    rules: tuple[str, ...],
    what: str,
) -> Criterion:
    """`minutes` column reaches `needed`; else a time_below_threshold gap with the shortfall."""
    shortfall = (needed - pl.col(minutes)).clip(lower_bound=0).cast(pl.Int64)
    return Criterion(
        name="time_threshold",
        description=f"{what} reach the threshold in the calendar month",
        met=pl.col(minutes) >= needed,
        reason="time_below_threshold",
        rules=rules,
        status=time_status(ctx),
        detail=pl.format("{} of {} minutes counted ({})", pl.col(minutes), needed, pl.lit(what)),
        minutes_needed=shortfall,
        deadline=time_deadline(ctx),
        shows=(minutes,),
    )


def evidence_list(*columns: str | pl.Expr) -> pl.Expr:
    """Concatenate id columns (strings or lists of strings) into one list, nulls dropped."""
    exprs = [pl.col(c) if isinstance(c, str) else c for c in columns]
    return pl.concat_list(exprs).list.drop_nulls().list.unique(maintain_order=True)
