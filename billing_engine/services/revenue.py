"""Revenue over a range of months: totals by payer, code and month, for finance.

Each month is evaluated as ``billing evaluate`` would (same fees, settings and as-of
rule); the yearly Part B deductible, when asked for, is then charged across the whole
range in date-of-service order, so January's lines use it up before February's.

The "money left on the table" of a month is the sum of ``gaps.potential_amount``: the
allowed amount, if closed, of every ``short`` gap within reach (work logged in the
month has started it, ``pricing.short_and_started``: "started, N minutes short", or a
TCM period whose contact or visit is still due; one per group of alternative codes and
none beside a billed alternative, ``pricing.potential.potential_amounts``). A short gap with
nothing logged toward it is counted apart, as ``not_started_gaps``, and never valued.
PMPM capitation is reported beside fee-for-service, never added into it.
``RevenueReport.table`` gives each table with its ``GRAND TOTAL`` row, as
``billing revenue`` prints and writes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine.frames import ALL_PAYERS, AMOUNT_COLUMNS, grand_total, line_totals
from billing_engine.errors import ConfigError
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import MONEY
from billing_engine.pricing.potential import short_and_started
from billing_engine.pricing.shares import SHARE_COLUMNS, split_shares
from billing_engine.services.evaluation import EvaluationResult, default_parameters, evaluate

MONTHS_PER_YEAR = 12
METRICS = AMOUNT_COLUMNS


@dataclass(frozen=True)
class RevenueReport:
    months: tuple[Month, ...]
    by_payer: pl.DataFrame
    by_code: pl.DataFrame
    by_month: pl.DataFrame
    capitation: pl.DataFrame
    lines: pl.DataFrame  # every priced line of the range, with its month
    # name -> verified_through of each parameter some month used past it (--allow-unverified)
    unverified_parameters: Mapping[str, dt.date] = field(default_factory=dict)

    def table(self, name: str) -> pl.DataFrame:
        """One of by_payer, by_code, by_month, capitation, ending with its grand total."""
        frame: pl.DataFrame = getattr(self, name)
        label = TABLE_LABELS[name]
        labels = {"payer_name": ALL_PAYERS} if name == "by_payer" else {}
        blank = ("pmpm",) if name == "capitation" else ()
        return grand_total(frame.with_columns(pl.col(label).cast(pl.String)), label, labels, blank)


TABLE_LABELS = {"by_payer": "payer_id", "by_code": "code", "by_month": "month",
                "capitation": "month"}  # fmt: skip


def months_between(first: Month, last: Month) -> list[Month]:
    """Every calendar month from `first` through `last`."""
    count = (last.year - first.year) * MONTHS_PER_YEAR + last.month - first.month + 1
    if count < 1:
        raise ConfigError(f"the range ends ({last}) before it starts ({first})")
    return [first.shift(i) for i in range(count)]


@dataclass(frozen=True)
class MonthRevenue:
    """What revenue over months keeps of one month's evaluation (the rest is let go, so
    a year of a large practice is never held in memory as whole evaluations)."""

    month: Month
    lines: pl.DataFrame  # the month's priced lines, with a ``month`` column
    left: pl.DataFrame  # one row: month, left_on_table and the short-gap counts
    capitation: pl.DataFrame
    unverified_parameters: Mapping[str, dt.date]


def month_revenue(result: EvaluationResult) -> MonthRevenue:
    """The part of one month's evaluation that revenue over months needs."""
    return MonthRevenue(
        month=result.month,
        lines=result.priced_lines.with_columns(month=pl.lit(str(result.month))),
        left=_left_on_table(result),
        capitation=result.capitation,
        unverified_parameters=dict(result.unverified_parameters),
    )


def revenue(
    bundle: Bundle,
    months: Sequence[Month],
    *,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
    apply_deductible: bool = False,
) -> RevenueReport:
    """Evaluate each of `months` as ``billing evaluate`` would and total the range."""
    parts = [
        month_revenue(evaluate(bundle, month, as_of, settings=settings, fees=fees))
        for month in months
    ]
    return assemble_revenue(bundle, parts, settings=settings, apply_deductible=apply_deductible)


def assemble_revenue(
    bundle: Bundle,
    parts: Sequence[MonthRevenue],
    *,
    settings: Mapping[str, Any] | None = None,
    apply_deductible: bool = False,
) -> RevenueReport:
    """The report of the months' parts (``month_revenue``), in the parts' order.

    With `apply_deductible` the yearly Part B deductible is charged across the whole
    range in date-of-service order (see the module docstring).
    """
    months = [part.month for part in parts]
    lines = pl.concat([part.lines for part in parts], how="vertical")
    if apply_deductible and not lines.is_empty():
        params = default_parameters()
        period = params.for_period(months[0].start, months[-1].end, settings)
        lines = split_shares(
            lines.drop(*SHARE_COLUMNS), bundle, params, period, apply_deductible=True
        )
    names = bundle["payers"].select("payer_id", pl.col("name").alias("payer_name"))
    left = pl.concat([part.left for part in parts], how="vertical")
    capitation = pl.concat([part.capitation for part in parts], how="vertical")
    cap_by_month = capitation.group_by("month").agg(
        pl.col("amount").sum().cast(MONEY).alias("capitation")
    )
    by_month = (
        left.join(line_totals(lines, ["month"]), on="month", how="left")
        .join(cap_by_month, on="month", how="left")
        .with_columns(pl.col("lines", "units", "unpriced_lines").fill_null(0))
        .select(
            "month",
            "lines",
            "units",
            *METRICS,
            "unpriced_lines",
            "capitation",
            "left_on_table",
            "within_reach_gaps",
            "not_started_gaps",
            "short_gaps",
        )
        .sort("month")
    )
    return RevenueReport(
        months=tuple(months),
        by_payer=line_totals(lines, ["payer_id"])
        .join(names, on="payer_id", how="left")
        .select("payer_id", "payer_name", "lines", "units", *METRICS, "unpriced_lines")
        .sort("payer_id"),
        by_code=line_totals(lines, ["code"]).sort("code"),
        by_month=by_month,
        capitation=capitation,
        lines=lines,
        unverified_parameters=dict(
            sorted({n: d for p in parts for n, d in p.unverified_parameters.items()}.items())
        ),
    )


def _left_on_table(result: EvaluationResult) -> pl.DataFrame:
    """month, left_on_table and the counts of short gaps within reach (valued), not
    started, and in all, of one evaluation."""
    short = result.gaps.filter(pl.col("status") == "short")
    valued = pl.col("potential_amount").is_not_null()
    return short.select(
        month=pl.lit(str(result.month)),
        left_on_table=pl.col("potential_amount").sum().cast(MONEY),
        within_reach_gaps=valued.sum().cast(pl.Int64),
        not_started_gaps=(~short_and_started()).sum().cast(pl.Int64),
        short_gaps=pl.len().cast(pl.Int64),
    )
