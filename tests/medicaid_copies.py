"""The Medicaid family's hand-written copies of three primitives, frozen as they were
before the family adopted billing_engine/primitives.py (code_rules/medicaid at 7b27cc9):
tests/test_primitives.py checks the primitives against them value for value."""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext


def with_medicaid_payer(ctx: EvalContext, frame: pl.DataFrame, date_column: str) -> pl.DataFrame:
    """The T-code payer: a payer kind of ``medicaid.paying_payer_kinds`` first (any rank),
    then rank, then the latest start; with ``payer_state``."""
    kinds = ctx.params.as_strs("medicaid.paying_payer_kinds")
    cov = ctx.bundle["coverages"].select(
        "patient_id", "payer_id", "start_date", "end_date", pl.col("rank").fill_null(1)
    )
    payers = ctx.bundle["payers"].select(
        "payer_id", pl.col("kind").alias("payer_kind"), pl.col("state").alias("payer_state")
    )
    indexed = frame.with_row_index("_cov_row")
    matched = (
        indexed.select("_cov_row", "patient_id", date_column)
        .join(cov, on="patient_id", how="inner")
        .filter(
            (pl.col("start_date") <= pl.col(date_column))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col(date_column)))
        )
        .join(payers, on="payer_id", how="left")
        .with_columns(_not_paying=~pl.col("payer_kind").is_in(kinds).fill_null(False))
        .sort(
            "_cov_row", "_not_paying", "rank", "start_date", descending=[False, False, False, True]
        )
        .unique(subset=["_cov_row"], keep="first")
        .select("_cov_row", "payer_id", "payer_kind", "payer_state")
    )
    return indexed.join(matched, on="_cov_row", how="left").sort("_cov_row").drop("_cov_row")


def with_pays(ctx: EvalContext, facts: pl.DataFrame, codes: list[str], date: str) -> pl.DataFrame:
    """``pays:<code>`` for each code (payer_codes rows, else the T-code payer kinds)."""
    kinds = ctx.params.as_strs("medicaid.paying_payer_kinds")
    for code in codes:
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", date, kinds).alias(f"pays:{code}")
        )
    return facts


def _greedy(units: pl.Expr, cap: pl.Expr, group: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """(units before this row in `group`, units this row may still bill under `cap`),
    filling the cap in row order; a null cap bills everything."""
    cumulative = units.cum_sum().over(group)
    before = cumulative - units
    capped = pl.min_horizontal(cumulative, cap) - pl.min_horizontal(before, cap)
    return before, pl.when(cap.is_null()).then(units).otherwise(capped)
