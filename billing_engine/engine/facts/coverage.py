"""Coverage: the patient's primary payer on a date, and whether that payer pays a code."""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.intervals import active_on


def primary_coverage(ctx: EvalContext, frame: pl.DataFrame, date_column: str) -> pl.DataFrame:
    """Adds ``payer_id`` and ``payer_kind``: the lowest-rank coverage active on the date."""
    cov = ctx.bundle["coverages"].select(
        "patient_id", "payer_id", "start_date", "end_date", pl.col("rank").fill_null(1)
    )
    indexed = frame.with_row_index("_cov_row")
    matched = (
        indexed.select("_cov_row", "patient_id", date_column)
        .join(cov, on="patient_id", how="inner")
        .filter(active_on(date_column))
        .sort("_cov_row", "rank", "start_date", descending=[False, False, True])
        .unique(subset=["_cov_row"], keep="first")
        .select("_cov_row", "payer_id")
        .join(
            ctx.bundle["payers"].select("payer_id", pl.col("kind").alias("payer_kind")),
            on="payer_id",
            how="left",
        )
    )
    return indexed.join(matched, on="_cov_row", how="left").sort("_cov_row").drop("_cov_row")


def payer_pays(
    ctx: EvalContext, frame: pl.DataFrame, code_column: str, date_column: str, kinds: list[str]
) -> pl.Series:
    """Whether the row's payer pays its code on its date (interchange semantics 13).

    A ``payer_codes`` row in effect on the date decides; without one the payer pays
    when its kind is in `kinds`. Rows without a payer give null (not met).
    """
    rules = ctx.bundle["payer_codes"].select(
        "payer_id", pl.col("code").alias(code_column), "covered", "effective_from", "effective_to"
    )
    indexed = frame.select("payer_id", "payer_kind", code_column, date_column).with_row_index(
        "_pc_row"
    )
    listed = (
        indexed.join(rules, on=["payer_id", code_column], how="inner")
        .filter(active_on(date_column, "effective_from", "effective_to", open_start=True))
        .sort("_pc_row", "effective_from", nulls_last=False)
        .group_by("_pc_row")
        .agg(listed_covered=pl.col("covered").last())
    )
    return (
        indexed.join(listed, on="_pc_row", how="left")
        .sort("_pc_row")
        .select(
            pl.when(pl.col("payer_id").is_null())
            .then(None)
            .otherwise(pl.coalesce("listed_covered", pl.col("payer_kind").is_in(kinds)))
            .alias("pays")
        )
        .get_column("pays")
    )
