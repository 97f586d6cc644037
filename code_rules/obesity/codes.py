"""IBT's names: the family, its rule ids, the interchange values it reads and the date and
evidence-id helpers every part shares."""

from __future__ import annotations

import calendar

import polars as pl

from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import typed

FAMILY = "obesity"
RULE_SET = "obesity.visits"
KIND = "obesity_counseling"  # interchange encounters.kind
GROUP_MODE = "group"  # interchange encounters.contact_mode
FAILED_ATTEMPT = "attempt_failed"  # interchange encounters.outcome
BMI_KIND, WEIGHT_KIND = "bmi", "weight_kg"  # interchange measurements.kind
NEW_CYCLE = "new_cycle"  # obesity.after_cycle
RULE_IDS = ("IBT-E1", "IBT-S1", "IBT-F1", "IBT-U1", "IBT-$", "TIME-1")
COST_SHARING_RULE_IDS = ("IBT-$",)  # what the coverage and payer checks feed
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))
MONTHS_PER_YEAR = len(calendar.month_name) - 1  # calendar arithmetic, not a rule threshold


def family_codes(ctx: EvalContext) -> tuple[str, str]:
    """(individual code, group code)."""
    obesity = typed(ctx.params).obesity
    return obesity.individual_code, obesity.group_code


def months(expr: pl.Expr, n: int | pl.Expr) -> pl.Expr:
    """`expr` shifted by `n` whole months (clipped to the month's last day, as add_months)."""
    if isinstance(n, int):
        return expr.dt.offset_by(f"{n}mo")
    return expr.dt.offset_by(pl.format("{}mo", n))


def measurement_ref(kind: str, date: str) -> pl.Expr:
    """An evidence id for a measurement: ``measurement:<kind>@<date>``."""
    return pl.concat_str(pl.lit(f"measurement:{kind}@"), pl.col(date).cast(pl.String))


def claim_ref() -> pl.Expr:
    """An evidence id for a claims-history row: ``claim:<code>@<date of service>``."""
    return pl.concat_str(
        pl.lit("claim:"), pl.col("code"), pl.lit("@"), pl.col("date_of_service").cast(pl.String)
    )
