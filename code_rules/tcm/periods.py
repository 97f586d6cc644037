"""TCM-P1 across discharges and months: one TCM per period, the period of the first
discharge whose TCM the engine bills (a readmission inside it does not start another)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import CodeRule
from billing_engine.engine.primitives import Cap, Window
from code_rules.parameters_typed import typed
from code_rules.tcm.codes import all_met, empty_list


def with_periods_billed(
    ctx: EvalContext, facts: pl.DataFrame, rules: Sequence[CodeRule]
) -> pl.DataFrame:
    """TCM-P1 across discharges and months: which discharges the engine bills.

    A discharge "bills" when one of its rows meets every criterion of a code (claims
    history included, the one-per-period check not yet). A discharge inside the period
    of an earlier discharge that bills, and is not itself blocked, is blocked; this is
    settled earliest first (``frequency_cap`` in granted mode: one TCM per period, a
    pass per discharge rank, over the discharges, not the rows). A practitioner's row
    is also blocked when another practitioner bills the same discharge with a visit in
    an earlier month.
    """
    period_days = typed(ctx.params).tcm.period_days
    met = [all_met(r.criteria) for r in rules if r.alternative]
    rows = facts.select(
        "_row",
        "discharge_id",
        "patient_id",
        "discharge_date",
        "billing_practitioner_id",
        "f2f_date",
        would=pl.any_horizontal(met),
    )
    billing = (
        rows.filter(pl.col("would"))
        .group_by("discharge_id")
        .agg(bps=pl.col("billing_practitioner_id").drop_nulls().unique().sort())
    )
    discharges = (
        rows.select("discharge_id", "patient_id", "discharge_date")
        .unique()
        .join(billing, on="discharge_id", how="left")
        .with_columns(would=pl.col("bps").is_not_null())
        .sort("discharge_id")
    )
    pairs = (
        discharges.select("discharge_id", "patient_id", "discharge_date")
        .join(
            discharges.select(
                "patient_id",
                pl.col("discharge_id").alias("earlier_id"),
                pl.col("discharge_date").alias("earlier_date"),
            ),
            on="patient_id",
            how="inner",
        )
        .filter(
            (pl.col("earlier_date") < pl.col("discharge_date"))
            & (
                pl.col("discharge_date")
                <= pl.col("earlier_date") + pl.duration(days=period_days - 1)
            )
        )
        .select("discharge_id", "earlier_id")
    )
    one_per_period = Cap(
        "period", 1, window=Window.days_back("discharge_date", period_days - 1, closed="left")
    )
    starts = pr.frequency_cap(
        discharges,
        [one_per_period],
        group=("patient_id",),
        order=("discharge_date", "discharge_id"),
        qualifies=pl.col("would"),
        counting="granted",
        date="discharge_date",
    ).filter(pl.col("cap_granted"))
    effective = pairs.join(
        starts.select(pl.col("discharge_id").alias("earlier_id"), "bps"),
        on="earlier_id",
        how="inner",
    )
    earlier = effective.group_by("discharge_id").agg(
        earlier_tcm=pl.col("earlier_id").unique().sort(),
        earlier_bps=pl.col("bps")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort(),
    )
    same = (
        rows.filter(pl.col("would") & (pl.col("f2f_date") < ctx.start))
        .select("discharge_id", pl.col("billing_practitioner_id").alias("same_bp"))
        .join(rows.select("_row", "discharge_id", "billing_practitioner_id"), on="discharge_id")
        .filter(pl.col("same_bp") != pl.col("billing_practitioner_id").fill_null(""))
        .group_by("_row")
        .agg(same_bps=pl.col("same_bp").unique().sort())
    )
    empty = empty_list()
    mine = pl.col("billing_practitioner_id")
    return (
        facts.drop("earlier_tcm", "other_tcm_bps", "own_tcm")
        .join(earlier, on="discharge_id", how="left")
        .join(same, on="_row", how="left")
        .with_columns(pl.col("earlier_tcm", "earlier_bps", "same_bps").fill_null(empty))
        .with_columns(
            own_tcm=mine.is_not_null() & pl.col("earlier_bps").list.contains(mine).fill_null(False),
            other_tcm_bps=pl.concat_list(
                pl.col("earlier_bps").list.set_difference(pl.concat_list(mine.fill_null(""))),
                "same_bps",
            )
            .list.unique()
            .list.sort(),
        )
        .drop("earlier_bps", "same_bps")
    )
