"""Criteria the Medicaid T-code rules share: who bills, who pays, whose minutes count and
when a short month or day can still be completed.

Each criterion cites the Medicaid rule ids it checks (medicare_rules.md section 2.16).
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SHORT, Criterion

# The rule ids of the case-management codes and of the nursing codes.
RULE_IDS = ("TCODE-1", "TCODE-2", "TCODE-3", "TIME-1", "TIME-4", "TIME-5", "TIME-6", "TIME-7")
NURSING_RULE_IDS = ("TCODE-1", "TCODE-2", "TIME-1")
PAYER_RULES = ("TCODE-1",)  # the payer of a T-code and whether it pays
STATE_RULES = ("TCODE-2",)  # the state's rules: who bills, caps, minimums, claims
TIME_RULES = ("TCODE-2", "TIME-1")  # the first unit under the state's unit rule


def practitioner_criteria() -> list[Criterion]:
    """A known billing practitioner whose credential the state lets bill the T-code."""
    return [
        pr.billing_practitioner_known_criterion(
            STATE_RULES, "no billing practitioner: set billing_practitioner_id on the entries"
        ),
        pr.billing_practitioner_qualified_criterion(
            STATE_RULES,
            pl.col("billing_credentials"),
            "the billing practitioner's credential may bill the state's T-code",
            shows=("bp_credential", "state_key"),
        ),
    ]


def staff_criterion() -> Criterion:
    """Some of the counted minutes are by staff whose credential the state accepts."""
    return Criterion(
        "staff_eligible",
        "minutes were furnished by staff whose credential the state accepts",
        (pl.col("shared_counted_minutes") == 0) | (pl.col("eligible_raw_minutes") > 0),
        "practitioner_not_qualified",
        ("TCODE-2", "TIME-4"),
        detail=pl.format(
            "the state's rules ({}) do not accept minutes by {}",
            pl.col("state_key"),
            pl.col("ineligible_credentials").list.join(", "),
        ),
        shows=("ineligible_credentials", "state_key"),
    )


def payer_criteria(code: str) -> list[Criterion]:
    """The T-code payer (facts: ``payer_id``, ``payer_kind``, ``payer_state``) pays `code`."""
    return [
        pr.coverage_criterion(PAYER_RULES, shows=("payer_id", "payer_kind", "payer_state")),
        pr.payer_pays_criterion(code, PAYER_RULES),
    ]


def not_already_billed(met: pl.Expr, description: str, shows: tuple[str, ...]) -> Criterion:
    """The service is not already in claims history (`met`: the rule set's own test)."""
    return pr.not_already_billed_criterion(met, description, STATE_RULES, shows=shows)


def time_status(ctx: EvalContext, last_day: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(`short` while work dated on or after as-of can still land by `last_day`, deadline)."""
    open_ = pl.lit(ctx.as_of) <= last_day
    status = pl.when(open_).then(pl.lit(STATUS_SHORT)).otherwise(pl.lit(STATUS_BLOCKED))
    return status, pl.when(open_).then(last_day).otherwise(None)


def minutes_short(needed: str, counted: str) -> pl.Expr:
    """Minutes still needed to reach `needed` (0 once reached)."""
    return (pl.col(needed) - pl.col(counted)).clip(lower_bound=0).cast(pl.Int64)
