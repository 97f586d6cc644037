"""IBT facts, part 2: the schedule of each visit of the month (IBT-F1, IBT-U1): its
benefit period, schedule month, cadence window and 6-month weights, the claims history
in them, and what this evaluation bills before it (visits decided in date order)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import CodeRule
from billing_engine.engine.primitives import Cap, Window
from code_rules.obesity.codes import (
    EMPTY_IDS,
    MONTHS_PER_YEAR,
    NEW_CYCLE,
    WEIGHT_KIND,
    measurement_ref,
    months,
)
from code_rules.obesity.criteria import CADENCE, SESSION_CAP
from code_rules.parameters_typed import typed


def benefit_anchors(ctx: EvalContext, points: pl.DataFrame) -> pl.DataFrame:
    """(patient_id, anchor): the first visit of each benefit period.

    `points` are (patient_id, date) of IBT visits. The first period starts at the
    earliest; with ``after_cycle: new_cycle`` the first visit on or after a period's end
    starts the next one (one pass per benefit period, over every patient at once).
    """
    obesity = typed(ctx.params).obesity
    cycle = obesity.cycle_months
    new_cycle = obesity.after_cycle == NEW_CYCLE
    current = points.group_by("patient_id").agg(anchor=pl.col("date").min())
    found = [current]
    while new_cycle and current.height:
        current = (
            points.join(current, on="patient_id", how="inner")
            .filter(pl.col("date") >= months(pl.col("anchor"), cycle))
            .group_by("patient_id")
            .agg(anchor=pl.col("date").min())
        )
        found.append(current)
    return pl.concat(found)


def anchor_of(frame: pl.DataFrame, anchors: pl.DataFrame, key: str, date: str) -> pl.DataFrame:
    """Adds `anchor`: the start of the benefit period the row's date falls in."""
    latest = (
        frame.select(key, "patient_id", date)
        .join(anchors, on="patient_id", how="inner")
        .filter(pl.col("anchor") <= pl.col(date))
        .group_by(key)
        .agg(pl.col("anchor").max())
    )
    return frame.join(latest, on=key, how="left")


def with_schedule(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Benefit-period month, cadence window and benefit-period end of each visit."""
    obesity = typed(ctx.params).obesity
    cycle = obesity.cycle_months
    weekly_through = obesity.weekly_through_month
    other_week_through = obesity.every_other_week_through_month
    raw_months = (pl.col("date").dt.year() - pl.col("anchor").dt.year()) * MONTHS_PER_YEAR + (
        pl.col("date").dt.month().cast(pl.Int32) - pl.col("anchor").dt.month().cast(pl.Int32)
    )
    whole = (
        pl.when(months(pl.col("anchor"), pl.col("_raw")) <= pl.col("date"))
        .then(pl.col("_raw"))
        .otherwise(pl.col("_raw") - 1)
    )
    month = pl.col("schedule_month")
    return (
        visits.with_columns(anchor=pl.coalesce("anchor", "date"))
        .with_columns(_raw=raw_months.cast(pl.Int64))
        .with_columns(schedule_month=(whole + 1).cast(pl.Int64))
        .with_columns(
            period_end=months(pl.col("anchor"), cycle),
            interval_days=pl.when(month <= weekly_through)
            .then(pl.lit(obesity.weekly_interval_days))
            .when(month <= other_week_through)
            .then(pl.lit(obesity.every_other_week_interval_days))
            .otherwise(None)
            .cast(pl.Int64),
            month_window_start=months(pl.col("anchor"), month - 1),
            month_window_end=months(pl.col("anchor"), month),
            needs_weight_loss=month > other_week_through,
        )
        .drop("_raw")
    )


def with_weights(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Baseline weight (at the first visit) and the 6-month reassessment weight."""
    obesity = typed(ctx.params).obesity
    lookback = obesity.measurement_lookback_months
    from_months = obesity.reassessment_from_months
    through_months = obesity.reassessment_through_months
    weights = (
        ctx.bundle["measurements"]
        .filter(pl.col("kind") == WEIGHT_KIND)
        .select("patient_id", pl.col("date").alias("w_date"), pl.col("value").alias("weight"))
    )
    keys = ["patient_id", "anchor"]
    pairs = visits.select(keys).unique().join(weights, on="patient_id", how="inner")
    anchor = pl.col("anchor")

    def pick(window: pl.Expr, last: bool, name: str) -> pl.DataFrame:
        ordered = pairs.filter(window).sort(*keys, "w_date")
        weight, date = pl.col("weight"), pl.col("w_date")
        return ordered.group_by(keys).agg(
            (weight.last() if last else weight.first()).alias(name),
            (date.last() if last else date.first()).alias(f"{name}_date"),
        )

    before = pick(
        pr.active_on("w_date", months(anchor, -lookback), anchor, open_end=False),
        True,
        "base_before",
    )
    after = pick(
        pr.active_on("w_date", anchor, months(anchor, 1), closed="none", open_end=False),
        False,
        "base_after",
    )
    reassessed = pick(
        pr.active_on(
            "w_date", months(anchor, from_months), months(anchor, through_months), open_end=False
        ),
        True,
        "reassessed_weight",
    )
    return (
        visits.join(before, on=keys, how="left")
        .join(after, on=keys, how="left")
        .join(reassessed, on=keys, how="left")
        .with_columns(
            baseline_weight=pl.coalesce("base_before", "base_after"),
            baseline_weight_date=pl.coalesce("base_before_date", "base_after_date"),
            reassessment_from=months(anchor, from_months),
            reassessment_through=months(anchor, through_months),
        )
        .drop("base_before", "base_before_date", "base_after", "base_after_date")
        .with_columns(
            weight_loss_kg=(pl.col("baseline_weight") - pl.col("reassessed_weight")).round(3),
            baseline_ref=pl.when(pl.col("baseline_weight_date").is_not_null()).then(
                measurement_ref(WEIGHT_KIND, "baseline_weight_date")
            ),
            reassessed_ref=pl.when(pl.col("reassessed_weight_date").is_not_null()).then(
                measurement_ref(WEIGHT_KIND, "reassessed_weight_date")
            ),
        )
    )


def _in_window(date: str) -> pl.Expr:
    """`date` (of another IBT service) falls in the visit's cadence window.

    Rolling windows (months 1-6) are symmetric: another service less than
    ``interval_days`` before or after the visit. Months 7-12: the same month window.
    """
    interval = pl.duration(days=pl.col("interval_days"))
    rolling = pr.active_on(
        date,
        pl.col("date") - interval,
        pl.col("date") + interval,
        closed="none",
        open_end=False,
    )
    monthly = pr.active_on(
        date, "month_window_start", "month_window_end", closed="left", open_end=False
    )
    return pl.when(pl.col("interval_days").is_null()).then(monthly).otherwise(rolling)


def with_claim_counts(
    candidates: pl.DataFrame, claims: pl.DataFrame, anchors: pl.DataFrame
) -> pl.DataFrame:
    """Claims history in the visit's benefit period and cadence window, and the visit's
    own claim (same code, date and billing NPI: already billed)."""
    claims = anchor_of(claims, anchors, "claim_id", "claim_date")
    joined = (
        candidates.select(
            "encounter_id",
            "patient_id",
            "anchor",
            "date",
            "code",
            "bp_npi",
            "interval_days",
            "month_window_start",
            "month_window_end",
        )
        .join(
            claims.rename({"code": "claim_code"}),
            on=["patient_id", "anchor"],
            how="inner",
        )
        .group_by("encounter_id")
        .agg(
            claim_sessions=pl.len().cast(pl.Int64),
            claim_window_ids=pl.col("claim_id").filter(_in_window("claim_date")).sort(),
            own_claim_ids=pl.col("claim_id").filter(
                (pl.col("claim_code") == pl.col("code"))
                & (pl.col("claim_date") == pl.col("date"))
                & (pl.col("billing_npi") == pl.col("bp_npi"))
            ),
        )
    )
    return candidates.join(joined, on="encounter_id", how="left").with_columns(
        pl.col("claim_sessions").fill_null(0),
        pl.col("claim_window_ids", "own_claim_ids").fill_null(EMPTY_IDS),
    )


def _cadence_window() -> Window:
    """The visit's cadence window as one open interval: rolling (months 1-6) the days
    less than ``interval_days`` either side of the visit; later the month window
    [start, end), which for whole days is (start - 1 day, end)."""
    interval = pl.duration(days=pl.col("interval_days"))
    monthly = pl.col("interval_days").is_null()
    return Window(
        start=pl.when(monthly)
        .then(pl.col("month_window_start") - pl.duration(days=1))
        .otherwise(pl.col("date") - interval),
        end=pl.when(monthly).then(pl.col("month_window_end")).otherwise(pl.col("date") + interval),
        closed="none",
    )


def decide_in_order(
    ctx: EvalContext, candidates: pl.DataFrame, rules: Sequence[CodeRule]
) -> pl.DataFrame:
    """Counts of what this evaluation bills before each visit, visit by visit in order.

    ``frequency_cap`` in granted mode over each benefit period (patient x anchor), visits
    in date then encounter order: the session cap counts the claims history and the
    visits billed before it in the period, the cadence cap (one) those in its cadence
    window. A visit uses the caps when every other criterion of its code is met. The ids
    of the earlier billed visits in the window (``window_ids``, for the cadence detail)
    are joined back from the granted visits.
    """
    caps = (SESSION_CAP, CADENCE)
    qualifies = pl.lit(False)
    for rule in rules:
        others = [c.met.fill_null(False) for c in rule.criteria if c.name not in caps]
        met = pl.all_horizontal([pl.lit(True), *others])
        qualifies = pl.when(rule.considered.fill_null(False)).then(met).otherwise(qualifies)
    group = ("patient_id", "anchor")
    capped = pr.frequency_cap(
        candidates,
        [
            Cap("period", typed(ctx.params).obesity.session_cap, prior="claim_sessions"),
            Cap(
                "cadence",
                1,
                prior=pl.col("claim_window_ids").list.len(),
                window=_cadence_window(),
            ),
        ],
        group=group,
        order=("date", "encounter_id"),
        qualifies=qualifies,
        counting="granted",
    )
    granted = capped.filter(pl.col("cap_granted")).select(
        *group,
        pl.col("date").alias("billed_date"),
        pl.col("encounter_id").alias("billed_id"),
        pl.col("cap_rank").alias("billed_rank"),
    )
    earlier = (
        capped.select(
            "encounter_id",
            *group,
            "date",
            "interval_days",
            "month_window_start",
            "month_window_end",
            "cap_rank",
        )
        .join(granted, on=list(group), how="inner")
        .filter(pl.col("billed_rank") < pl.col("cap_rank"))
        .group_by("encounter_id")
        .agg(billed_window_ids=pl.col("billed_id").filter(_in_window("billed_date")).sort())
    )
    per_patient = pl.int_range(1, pl.len() + 1).over("patient_id")
    return (
        capped.join(earlier, on="encounter_id", how="left")
        .with_columns(
            period_sessions=pl.col("period_used"),
            window_ids=pl.concat_list(
                "claim_window_ids", pl.col("billed_window_ids").fill_null(EMPTY_IDS)
            ),
        )
        .with_columns(window_visits=pl.col("window_ids").list.len().cast(pl.Int64))
        .select(*candidates.columns, "period_sessions", "window_ids", "window_visits")
        .sort("patient_id", "date", "encounter_id")
        .with_columns(_rank=per_patient)
        .sort("_rank", maintain_order=True)
        .drop("_rank")
    )
