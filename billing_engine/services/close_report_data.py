"""The frames behind the close report (``billing report html``): one month, as a biller
reviews it before the claims go out.

Everything here is a polars frame; the page itself (HTML, charts) is ``reports``'s job.
The month is evaluated as ``billing evaluate`` does; the trend evaluates each of the
last twelve months the same way (``services.revenue``). The CCM minutes distribution
is set against the thresholds the rules use, read from the rule parameters
(``ccm.staff.threshold_minutes`` plus each add-on step up to the add-on cap), never
written here. When the store has a close for the month, its lines, holds, claims and
adjustments come from the close tables (``store.close``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import MONEY
from billing_engine.services.evaluation import default_parameters, evaluate
from billing_engine.services.revenue import revenue
from billing_engine.store import Store
from billing_engine.store import close as closedb

TREND_MONTHS = 12  # the trend shows the report month and the eleven before it
# a patient this many minutes or fewer below a threshold is "worth a call" (the demo's
# "close to a threshold", cli.cmd_demo.CLOSE_MINUTES)
NEAR_MINUTES = 10
STAFF_BASE_CODE = "ccm.staff.base_code"
STAFF_ADDON_CODE = "ccm.staff.addon_code"
STAFF_THRESHOLD = "ccm.staff.threshold_minutes"
STAFF_STEP = "ccm.staff.addon_step_minutes"
STAFF_MAX_UNITS = "ccm.staff.addon_max_units"
AMOUNTS = ("allowed_amount", "payer_amount", "patient_amount")


@dataclass(frozen=True)
class CcmThresholds:
    """The clinical-staff CCM time ladder of a month, from the rule parameters."""

    base_code: str
    addon_code: str
    minutes: tuple[int, ...]  # base threshold, then one per add-on unit (20, 40, 60)

    def target(self, addon_units: pl.Expr) -> pl.Expr:
        """The threshold after ``addon_units`` add-on units already billed."""
        step = self.minutes[1] - self.minutes[0] if len(self.minutes) > 1 else 0
        return pl.lit(self.minutes[0]) + (addon_units + 1) * step


@dataclass(frozen=True)
class CloseTables:
    """What the close tables hold for the month (all cycles)."""

    state: str
    cycle: int
    lines: pl.DataFrame  # cycle, kind, status, lines, allowed_amount
    holds: pl.DataFrame  # hold_reason, lines, allowed_amount
    claims: pl.DataFrame  # cycle, frequency, status, claims, lines, total_charge, allowed_amount
    adjustments: pl.DataFrame  # cycle, kind, lines, allowed_amount (kind other than original)


@dataclass(frozen=True)
class CloseReportData:
    month: Month
    as_of: dt.date
    rule_set_version: str
    source: str
    totals: pl.DataFrame  # one row
    by_payer: pl.DataFrame  # payer_id, payer_name, lines, units, amounts
    by_code: pl.DataFrame  # code, lines, units, amounts
    by_payer_code: pl.DataFrame  # payer_id, code, allowed_amount
    gaps_by_reason: pl.DataFrame  # reason, gaps, patients, potential_amount, valued_gaps
    thresholds: CcmThresholds
    near_minutes: int
    # patient_id, payer_id, minutes, next_threshold, short_by, near, blocked, potential_amount
    minutes: pl.DataFrame
    trend: pl.DataFrame  # month, lines, amounts, left_on_table
    close: CloseTables | None


def ccm_thresholds(month: Month, settings: Mapping[str, Any] | None = None) -> CcmThresholds:
    """The staff CCM thresholds of ``month``: the base threshold and one more step per
    add-on unit allowed (``ccm.staff.*`` parameters)."""
    period = default_parameters().for_period(month.start, month.end, settings)
    base = period.as_int(STAFF_THRESHOLD)
    step = period.as_int(STAFF_STEP)
    units = period.as_int(STAFF_MAX_UNITS)
    return CcmThresholds(
        base_code=period.as_str(STAFF_BASE_CODE),
        addon_code=period.as_str(STAFF_ADDON_CODE),
        minutes=tuple(base + step * k for k in range(units + 1)),
    )


def minutes_distribution(
    result: EvaluationResult, thresholds: CcmThresholds, near: int = NEAR_MINUTES
) -> pl.DataFrame:
    """One row per patient considered for staff CCM: the minutes counted toward it, the
    next threshold, how many minutes short of it, and whether that is ``near``.

    Counted minutes come from the outcomes: a short base code counts its threshold less
    the minutes needed; a short add-on counts the next step less the minutes needed
    (``CcmThresholds.target`` after the add-on units billed); a patient at the add-on
    cap has no gap, and counts the minutes logged. A patient whose base code is neither
    billed nor short (blocked: no care plan, no consent, ...) is ``blocked``: more
    minutes would not make it billable, so it is never ``near``.
    """
    outcomes = result.outcomes
    staff = outcomes.filter(pl.col("code") == thresholds.base_code).select(
        "patient_id",
        "payer_id",
        base_line=pl.col("is_line"),
        blocked=~pl.col("is_line") & (pl.col("status") != "short"),
        base_needed=pl.col("minutes_needed"),
        logged=pl.col("minutes_logged"),
    )
    addon = (
        outcomes.filter(pl.col("code") == thresholds.addon_code)
        .group_by("patient_id")
        .agg(
            addon_units=pl.col("units").filter(pl.col("is_line")).sum(),
            addon_needed=pl.col("minutes_needed").filter(~pl.col("is_line")).min(),
        )
    )
    top = max(thresholds.minutes)
    frame = (
        staff.join(addon, on="patient_id", how="left")
        .with_columns(pl.col("addon_units").fill_null(0))
        .with_columns(
            minutes=pl.when(~pl.col("base_line") & pl.col("base_needed").is_not_null())
            .then(pl.lit(thresholds.minutes[0]) - pl.col("base_needed"))
            .when(pl.col("addon_needed").is_not_null())
            .then(thresholds.target(pl.col("addon_units")) - pl.col("addon_needed"))
            .otherwise(pl.col("logged").fill_null(0))
            .cast(pl.Int64)
        )
    )
    codes = [thresholds.base_code, thresholds.addon_code]
    potential = (
        result.gaps.filter(pl.col("code").is_in(codes) & (pl.col("status") == "short"))
        .group_by("patient_id")
        .agg(potential_amount=pl.col("potential_amount").sum().cast(MONEY))
    )
    return (
        frame.join(potential, on="patient_id", how="left")
        .with_columns(next_threshold=_next_threshold(pl.col("minutes"), thresholds.minutes))
        .with_columns(short_by=pl.col("next_threshold") - pl.col("minutes"))
        .with_columns(
            near=pl.col("short_by").is_not_null()
            & (pl.col("short_by") <= near)
            & (pl.col("minutes") > 0)
            & (pl.col("minutes") < top)
            & ~pl.col("blocked")
        )
        .select(
            "patient_id",
            "payer_id",
            "minutes",
            "next_threshold",
            "short_by",
            "near",
            "blocked",
            "potential_amount",
        )
        .sort("minutes", "patient_id")
    )


def _next_threshold(minutes: pl.Expr, ladder: tuple[int, ...]) -> pl.Expr:
    """The lowest threshold above ``minutes`` (null past the top)."""
    expr: pl.Expr = pl.lit(None, pl.Int64)
    for threshold in sorted(ladder, reverse=True):
        expr = pl.when(minutes < threshold).then(pl.lit(threshold, pl.Int64)).otherwise(expr)
    return expr


def gaps_by_reason(gaps: pl.DataFrame) -> pl.DataFrame:
    """Gaps by reason with the money behind each (``potential_amount``, the allowed
    amount if closed of the short gaps within reach), most money first."""
    return (
        gaps.group_by("reason")
        .agg(
            gaps=pl.len(),
            patients=pl.col("patient_id").n_unique(),
            valued_gaps=pl.col("potential_amount").is_not_null().sum(),
            potential_amount=pl.col("potential_amount").sum().cast(MONEY),
        )
        .sort(["potential_amount", "gaps", "reason"], descending=[True, True, False])
    )


def _totals(result: EvaluationResult, left_on_table: pl.DataFrame) -> pl.DataFrame:
    lines = result.claim_lines
    return lines.select(
        lines=pl.len(),
        units=pl.col("units").sum(),
        patients=pl.col("patient_id").n_unique(),
        **{a: pl.col(a).sum().cast(MONEY) for a in AMOUNTS},
    ).with_columns(
        left_on_table=pl.lit(left_on_table.item(0, "left_on_table"), MONEY)
        if left_on_table.height
        else pl.lit(None, MONEY),
        gaps=pl.lit(result.gaps.height, pl.Int64),
    )


def close_tables(store: Store, month: Month) -> CloseTables | None:
    """The month's close as frames, or None when the store has no close for it."""
    key = str(month)
    with store.engine.connect() as connection:
        row = closedb.month_row(connection, key)
        if row is None:
            return None
        lines = closedb.rows_of(closedb.LINES, closedb.LINES.c.month == key, connection)
        claims = closedb.rows_of(closedb.CLAIMS, closedb.CLAIMS.c.month == key, connection)
    current = lines.filter(pl.col("cycle") == row["cycle"])
    money = pl.col("allowed_amount").sum().cast(MONEY)
    return CloseTables(
        state=str(row["state"]),
        cycle=int(row["cycle"]),
        lines=lines.group_by("cycle", "kind", "status")
        .agg(lines=pl.len(), allowed_amount=money)
        .sort("cycle", "kind", "status"),
        holds=current.filter(pl.col("status") == "held")
        .group_by(pl.col("hold_reason").fill_null("(no reason given)"))
        .agg(lines=pl.len(), allowed_amount=money)
        .sort(["lines", "hold_reason"], descending=[True, False]),
        claims=claims.group_by("cycle", "frequency", "status")
        .agg(
            claims=pl.len(),
            lines=pl.col("line_count").sum(),
            total_charge=pl.col("total_charge").sum().cast(MONEY),
            allowed_amount=money,
        )
        .sort("cycle", "frequency", "status"),
        adjustments=lines.filter(pl.col("kind") != "original")
        .group_by("cycle", "kind", "status")
        .agg(lines=pl.len(), allowed_amount=money)
        .sort("cycle", "kind", "status"),
    )


def close_report_data(
    bundle: Bundle,
    month: Month,
    *,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
    store: Store | None = None,
    trend_months: int = TREND_MONTHS,
) -> CloseReportData:
    """Every frame of the close report for ``month`` (see the module docstring)."""
    result = evaluate(bundle, month, as_of, settings=settings, fees=fees)
    months = [month.shift(k - trend_months + 1) for k in range(trend_months)]
    trend = revenue(bundle, months, as_of=as_of, settings=settings, fees=fees)
    by_month = trend.by_month.select(
        "month", "lines", "units", *AMOUNTS, "left_on_table", "short_gaps"
    )
    thresholds = ccm_thresholds(month, settings)
    payers = bundle["payers"].select("payer_id", pl.col("name").alias("payer_name"))
    lines = result.claim_lines
    by_payer = (
        lines.group_by("payer_id")
        .agg(lines=pl.len(), units=pl.col("units").sum(), **_sums())
        .join(payers, on="payer_id", how="left")
        .select("payer_id", "payer_name", "lines", "units", *AMOUNTS)
        .sort("allowed_amount", "payer_id", descending=[True, False], nulls_last=True)
    )
    return CloseReportData(
        month=month,
        as_of=result.as_of,
        rule_set_version=result.rule_set_version,
        source=result.source,
        totals=_totals(result, by_month.filter(pl.col("month") == str(month))),
        by_payer=by_payer,
        by_code=lines.group_by("code")
        .agg(lines=pl.len(), units=pl.col("units").sum(), **_sums())
        .sort("allowed_amount", "code", descending=[True, False], nulls_last=True),
        by_payer_code=lines.group_by("payer_id", "code")
        .agg(allowed_amount=pl.col("allowed_amount").sum().cast(MONEY))
        .sort("payer_id", "code"),
        gaps_by_reason=gaps_by_reason(result.gaps),
        thresholds=thresholds,
        near_minutes=NEAR_MINUTES,
        minutes=minutes_distribution(result, thresholds),
        trend=by_month,
        close=close_tables(store, month) if store is not None else None,
    )


def _sums() -> dict[str, pl.Expr]:
    return {a: pl.col(a).sum().cast(MONEY) for a in AMOUNTS}


__all__ = [
    "CcmThresholds",
    "CloseReportData",
    "CloseTables",
    "ccm_thresholds",
    "close_report_data",
    "close_tables",
    "gaps_by_reason",
    "minutes_distribution",
]
