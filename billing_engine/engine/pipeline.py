"""The pipeline: normalize -> evaluate rules -> resolve conflicts -> (price) -> outputs.

``evaluate`` is pure: the same bundle, month, as-of date, parameters and settings give
the same result. Time is explicit: nothing here reads the clock. The code families
may be evaluated a few at a time in threads (``family_threads``): each reads the same
immutable context, the frames they share are built once (``context.Memo`` is
thread-safe), and their results are taken in family order, so the result is the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine import conflicts
from billing_engine.engine.context import EvalContext
from billing_engine.engine.facts import billed_claims, time_entries
from billing_engine.engine.family import RuleSetResult
from billing_engine.engine.frames import (
    capitation_frame,
    claim_lines_frame,
    gaps_frame,
    revenue_frame,
)
from billing_engine.engine.kernel import empty_outcomes
from billing_engine.engine.rulebook import Rulebook
from billing_engine.io.bundle import ENTERED_IN_ERROR, Bundle, entered_in_error
from billing_engine.params.period import UsedValue
from billing_engine.params.unverified import CONFLICTS, check_period, unverified_gaps
from billing_engine.pricing.allowed import fee_gaps, price_lines
from billing_engine.pricing.potential import potential_amounts
from billing_engine.pricing.shares import split_shares


@dataclass(frozen=True)
class EvaluationResult:
    month: Month
    as_of: dt.date
    rule_set_version: str
    claim_lines: pl.DataFrame
    gaps: pl.DataFrame
    revenue_by_payer: pl.DataFrame
    capitation: pl.DataFrame  # PMPM contracts for the month, beside fee-for-service
    priced_lines: pl.DataFrame  # line outcomes with their amounts (revenue over months)
    outcomes: pl.DataFrame  # every considered code, after conflicts (lines and gaps)
    rule_sets: tuple[RuleSetResult, ...]
    time_entries: pl.DataFrame
    parameters_used: Mapping[str, UsedValue]
    input_row_counts: Mapping[str, int]
    source: str
    settings: Mapping[str, Any]  # the overrides given for this run
    allow_unverified: bool = False  # --allow-unverified: values carried forward
    # name -> verified_through of each parameter used past it (and "conflicts")
    unverified_parameters: Mapping[str, dt.date] = field(default_factory=dict)


def evaluate(
    bundle: Bundle,
    month: Month,
    as_of: dt.date | None = None,
    *,
    rulebook: Rulebook,
    settings: Mapping[str, Any] | None = None,
    apply_deductible: bool = False,
    family_threads: int = 1,
) -> EvaluationResult:
    """Evaluate every code family of `rulebook` for one calendar month.

    `as_of` (default: the month's last day) decides whether a shortfall is still
    `short` (work dated on or after it can close the gap) or `blocked`. The rulebook's
    families, parameters, conflict table and fee library are all the rules there are;
    `settings` override its settings; `apply_deductible` charges the Part B
    deductible to the patient in the estimate (FEE-2). `family_threads` families are
    evaluated at once (polars works outside the GIL: a second family fills the core the
    first leaves idle between its small queries); the result does not depend on it.

    Encounters entered in error are removed here, once, before anything reads the
    bundle: they count nowhere. The month's care-management ones stay visible in
    ``time_entries`` as excluded ``entered_in_error`` (``billing explain`` shows them).
    """
    params = rulebook.parameters
    as_of = as_of or month.end
    period = params.for_period(month.start, month.end, settings)
    voided = bundle["encounters"].filter(entered_in_error())
    full_bundle, bundle = bundle, bundle.without_entered_in_error()
    table = rulebook.conflicts
    if not period.allow_unverified:
        check_period(params, month.start, month.end, table.verified_through)
    elif month.end > table.verified_through:  # the conflict table, carried forward
        period.unverified[CONFLICTS] = table.verified_through
        table = replace(table, verified_through=month.end)
    ctx = EvalContext(bundle=bundle, month=month, as_of=as_of, params=period)
    rule_sets = _family_results(ctx, rulebook, family_threads)
    outcomes = pl.concat([r.outcomes for r in rule_sets]) if rule_sets else empty_outcomes()
    history = billed_claims(ctx, table.history_codes(), through=dt.date.max)
    outcomes = conflicts.resolve(outcomes, month.start, month.end, table, history)
    fees = rulebook.fees
    priced = price_lines(outcomes.filter(pl.col("is_line")), bundle, params, period, fees)
    shared = split_shares(priced.lines, bundle, params, period, apply_deductible=apply_deductible)
    outcomes = pl.concat([outcomes, fee_gaps(priced.missing, outcomes.columns, priced.estimated)])
    lines = claim_lines_frame(shared, bundle)
    gap_rows = outcomes.filter(~pl.col("is_line"))
    line_rows = outcomes.filter(pl.col("is_line"))
    potential = potential_amounts(
        gap_rows, bundle, params, period, fees, lines=line_rows, conflict_table=table
    )
    marked = unverified_gaps(line_rows, period, outcomes.columns)
    outcomes = pl.concat([outcomes, marked])
    gap_rows = pl.concat(
        [
            gap_rows.with_columns(potential_amount=potential),
            marked.with_columns(potential_amount=pl.lit(None, dtype=potential.dtype)),
        ]
    )
    gaps = gaps_frame(gap_rows)
    return EvaluationResult(
        month=month,
        as_of=as_of,
        rule_set_version=params.version(),
        claim_lines=lines,
        gaps=gaps,
        revenue_by_payer=revenue_frame(lines, bundle),
        capitation=capitation_frame(bundle, month),
        priced_lines=shared,
        outcomes=outcomes,
        rule_sets=tuple(rule_sets),
        time_entries=_with_voided_entries(time_entries(ctx), voided, month),
        parameters_used=dict(sorted(period.used.items())),  # by name, whatever the threads
        input_row_counts=full_bundle.row_counts(),
        source=bundle.source,
        settings=dict(settings or {}),
        allow_unverified=period.allow_unverified,
        unverified_parameters=dict(sorted(period.unverified.items())),
    )


def _family_results(ctx: EvalContext, rulebook: Rulebook, threads: int) -> list[RuleSetResult]:
    """Every family's rule-set results, in the rulebook's family order."""
    families = list(rulebook.families.values())
    if threads <= 1 or len(families) <= 1:
        return [result for evaluate_family in families for result in evaluate_family(ctx)]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="family") as pool:
        done = list(pool.map(lambda evaluate_family: evaluate_family(ctx), families))
    return [result for results in done for result in results]


def _with_voided_entries(entries: pl.DataFrame, voided: pl.DataFrame, month: Month) -> pl.DataFrame:
    """The time entries plus the month's care-management encounters entered in error,
    excluded as ``entered_in_error`` (they never reach the rules)."""
    shown = voided.filter(
        (pl.col("kind") == "care_management") & pl.col("date").is_between(month.start, month.end)
    )
    if shown.height == 0:
        return entries
    marked = shown.with_columns(excluded=pl.lit(ENTERED_IN_ERROR))
    return pl.concat([entries, marked], how="diagonal_relaxed")
