"""What a code family hands back to the pipeline, and helpers families share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import (
    STATUS_BLOCKED,
    STATUS_SHORT,
    CodeRule,
    Criterion,
    apply_rules,
)


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

PERIOD_START_COLUMN = "_period_start"


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


MINUTES_DETAIL = "{} of {} minutes counted ({})"  # a time gap's detail: counted, threshold, what
MINUTES_DETAIL_PATTERN = r"^(\d+) of (\d+) minutes counted"  # reads MINUTES_DETAIL back


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
        detail=pl.format(MINUTES_DETAIL, pl.col(minutes), needed, pl.lit(what)),
        minutes_needed=shortfall,
        deadline=time_deadline(ctx),
        shows=(minutes,),
    )


def evidence_list(*columns: str | pl.Expr) -> pl.Expr:
    """Concatenate id columns (strings or lists of strings) into one list, nulls dropped."""
    exprs = [pl.col(c) if isinstance(c, str) else c for c in columns]
    return pl.concat_list(exprs).list.drop_nulls().list.unique(maintain_order=True)


def not_billed_by_other_criterion(
    description: str, rules: tuple[str, ...], service: str = ""
) -> Criterion:
    """Nobody else billed the one-per-month service (facts: `other_claims`, the NPIs of
    other practitioners' claims for it this month)."""
    prefix = f"{service} " if service else ""
    return Criterion(
        "not_billed_by_other",
        description,
        pl.col("other_claims").list.len() == 0,
        "billed_by_other_practitioner",
        rules,
        detail=pl.format(
            f"{prefix}already billed this month by NPI {{}}",
            pl.col("other_claims").list.join(", "),
        ),
        shows=("other_claims",),
    )


def consent_criteria(program: str, rules: tuple[str, ...]) -> list[Criterion]:
    """Consent not revoked before the period, then consent present (facts: consent_facts)."""
    return [
        Criterion(
            "consent_not_revoked",
            f"the {program} consent was not revoked before the month",
            pl.col("consent_status") != "revoked",
            "consent_revoked",
            rules,
            shows=("consent_status",),
        ),
        Criterion(
            "consent",
            f"a documented {program} consent on or before the first counted service",
            pl.col("consent_status") == "valid",
            "consent_missing",
            rules,
            shows=("consent_id", "consent_date"),
        ),
    ]


def chronic_conditions_criterion(minimum: int, rules: tuple[str, ...]) -> Criterion:
    """At least `minimum` chronic condition categories active (facts: chronic_conditions)."""
    return Criterion(
        "chronic_conditions",
        "enough chronic conditions active in the month",
        pl.col("n_chronic") >= minimum,
        "chronic_conditions_insufficient",
        rules,
        detail=pl.format(
            "{} chronic condition categories active, {} needed",
            pl.col("n_chronic"),
            pl.lit(minimum),
        ),
        shows=("n_chronic", "chronic_icd10"),
    )


def run_rule_set(
    ctx: EvalContext,
    family: str,
    name: str,
    facts: pl.DataFrame,
    rules: Sequence[CodeRule],
    *,
    identity: tuple[str, ...] = ("patient_id", "billing_practitioner_id", "payer_id"),
    period: tuple[pl.Expr, pl.Expr] | None = None,
) -> RuleSetResult:
    """Evaluate `rules` over `facts` and package the result for the pipeline.

    `period` gives each outcome's period_start / period_end (default: the calendar
    month); per-visit rule sets pass the visit date for both. The facts keep each row's
    period start in ``PERIOD_START_COLUMN``, which ``billing explain`` uses to match a
    facts row to its outcome.
    """
    start, end = period or (pl.lit(ctx.start), pl.lit(ctx.end))
    texts = {rule.key: parameters_text(ctx, rule.parameters) for rule in rules}
    facts = facts.with_columns(start.cast(pl.Date).alias(PERIOD_START_COLUMN))
    facts, outcomes = apply_rules(facts, rules, identity, start, end, texts)
    return RuleSetResult(family, name, identity, facts, tuple(rules), outcomes)
