"""Counted minutes of a case-management day: the shared time rules, less what another
program keeps (TCODE-3), and the units they make under the state's unit rule (TIME-1).

Timed entries count as their interval union (TIME-5), less minutes inside a
face-to-face or separately billed service (TIME-6); minutes of the same patient and day
logged to a program earlier in ``common.program_minute_priority`` are not counted again
(TCODE-3); untimed entries add their minutes.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from code_rules.medicaid.state_table import programs
from code_rules.parameters_typed import typed

DAY_KEYS = ["patient_id", "program", "billing_practitioner_id", "date"]
PATIENT_DAY = ["patient_id", "date"]


def _interval_frame(entries: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return entries.filter(pl.col("start_min").is_not_null()).select(
        *keys,
        start_min=pl.col("start_min").cast(pl.Int32),
        end_min=(pl.col("start_min") + pl.col("minutes")).cast(pl.Int32),
    )


def _overlap(pieces: pl.DataFrame, blocks: pl.DataFrame, on: list[str], name: str) -> pl.DataFrame:
    """Per DAY_KEYS: minutes of the merged `pieces` inside the merged `blocks` (joined `on`)."""
    joined = pieces.join(
        blocks.select(*on, b_start=pl.col("start_min"), b_end=pl.col("end_min")),
        on=on,
        how="inner",
    )
    return joined.group_by(DAY_KEYS).agg(
        (pl.min_horizontal("end_min", "b_end") - pl.max_horizontal("start_min", "b_start"))
        .clip(lower_bound=0)
        .sum()
        .cast(pl.Int64)
        .alias(name)
    )


def _higher_programs(ctx: EvalContext) -> dict[str, list[str]]:
    """Our program -> the programs that keep a minute logged to both
    (``common.program_minute_priority``: Medicare programs before case management)."""
    priority = typed(ctx.params).common.program_minute_priority
    return {
        program: priority[: priority.index(program)] if program in priority else []
        for program in programs(ctx)
    }


def _counted_all(ctx: EvalContext) -> pl.DataFrame:
    """Every care-management entry of the month that the shared time rules count."""
    return nz.time_entries(ctx).filter(pl.col("excluded").is_null() & (pl.col("minutes") > 0))


def higher_program_time(ctx: EvalContext) -> pl.DataFrame:
    """Per patient, day and our program: counted minutes of the programs that take
    precedence over it (``higher_minutes``: timed entries as their interval union, plus
    untimed entries) and whether any of those has no start_time (``higher_untimed``)."""
    counted = _counted_all(ctx)
    parts = []
    for program, higher in _higher_programs(ctx).items():
        mine = counted.filter(pl.col("program").is_in(higher))
        merged = nz.merge_intervals(_interval_frame(mine, PATIENT_DAY), PATIENT_DAY)
        timed = merged.group_by(PATIENT_DAY).agg(
            timed=(pl.col("end_min") - pl.col("start_min")).sum().cast(pl.Int64)
        )
        untimed = (
            mine.filter(pl.col("start_min").is_null())
            .group_by(PATIENT_DAY)
            .agg(untimed=pl.col("minutes").sum().cast(pl.Int64))
        )
        parts.append(
            timed.join(untimed, on=PATIENT_DAY, how="full", coalesce=True).select(
                *PATIENT_DAY,
                program=pl.lit(program),
                higher_minutes=pl.col("timed").fill_null(0) + pl.col("untimed").fill_null(0),
                higher_untimed=pl.col("untimed").is_not_null(),
            )
        )
    return pl.concat(parts)


def _blocks(ctx: EvalContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Merged blocking intervals: (visits per patient and day; visits united with the
    timed minutes of higher-priority programs per patient, day and our program)."""
    schema = {"patient_id": pl.String, "date": pl.Date, "start_min": pl.Int32, "end_min": pl.Int32}
    visits = pl.DataFrame(schema=schema)
    if typed(ctx.params).common.exclude_time_during_visits:
        visits = nz.visit_intervals(ctx).select(
            *PATIENT_DAY, pl.col("start_min", "end_min").cast(pl.Int32)
        )
    counted = _counted_all(ctx)
    parts = []
    for program, higher in _higher_programs(ctx).items():
        timed = _interval_frame(counted.filter(pl.col("program").is_in(higher)), PATIENT_DAY)
        parts.append(pl.concat([visits, timed]).with_columns(program=pl.lit(program)))
    keys = [*PATIENT_DAY, "program"]
    union = nz.merge_intervals(pl.concat(parts), keys).drop("piece")
    return nz.merge_intervals(visits, PATIENT_DAY).drop("piece"), union


def day_minutes(ctx: EvalContext, entries: pl.DataFrame) -> pl.DataFrame:
    """Per DAY_KEYS: counted minutes of the eligible entries (``eligible`` column).

    The shared time rules, on the entries the state accepts: timed entries count as
    their interval union (TIME-5), less minutes inside a face-to-face or separately
    billed service (TIME-6, setting common.exclude_time_during_visits) and less minutes
    of the same patient and day logged to a program earlier in
    common.program_minute_priority (TCODE-3: Medicare care management first; setting
    medicaid.dual_eligible_overlap for entries without start_time); untimed entries add
    their minutes. Columns: ``counted_minutes``, ``dual_minutes`` (removed by TCODE-3).
    """
    eligible = entries.filter(pl.col("eligible"))
    pieces = nz.merge_intervals(_interval_frame(eligible, DAY_KEYS), DAY_KEYS)
    visits, union = _blocks(ctx)
    timed = pieces.group_by(DAY_KEYS).agg(
        piece_minutes=(pl.col("end_min") - pl.col("start_min")).sum().cast(pl.Int64)
    )
    untimed = (
        eligible.filter(pl.col("start_min").is_null())
        .group_by(DAY_KEYS)
        .agg(untimed_minutes=pl.col("minutes").sum().cast(pl.Int64))
    )
    keys = [*PATIENT_DAY, "program"]
    days = (
        timed.join(untimed, on=DAY_KEYS, how="full", coalesce=True, nulls_equal=True)
        .join(
            _overlap(pieces, visits, PATIENT_DAY, "visit_overlap"),
            on=DAY_KEYS,
            how="left",
            nulls_equal=True,
        )
        .join(
            _overlap(pieces, union, keys, "union_overlap"),
            on=DAY_KEYS,
            how="left",
            nulls_equal=True,
        )
        .join(higher_program_time(ctx), on=keys, how="left")
    )
    same_day = typed(ctx.params).medicaid.dual_eligible_overlap == "same_day"
    untimed_any = pl.col("untimed_minutes").is_not_null() | pl.col("higher_untimed").fill_null(
        False
    )
    interval = pl.col("union_overlap").fill_null(0) - pl.col("visit_overlap").fill_null(0)
    presumed = pl.max_horizontal(interval, pl.col("higher_minutes").fill_null(0))
    dual = pl.when(pl.lit(same_day) & untimed_any).then(presumed).otherwise(interval)
    before = (
        pl.col("piece_minutes").fill_null(0)
        - pl.col("visit_overlap").fill_null(0)
        + pl.col("untimed_minutes").fill_null(0)
    )
    return days.select(
        *DAY_KEYS,
        counted_minutes=(before - dual).clip(lower_bound=0).cast(pl.Int64),
        dual_minutes=pl.min_horizontal(dual, before).clip(lower_bound=0).cast(pl.Int64),
    )


def units_expr(minutes: str, unit: int) -> pl.Expr:
    """Units of `minutes` under the row's unit rule (first_unit_minutes /
    later_unit_minutes columns): 0 below the first unit's minutes, else 1 plus a unit
    for each full unit reached with later_unit_minutes to spare."""
    later = ((pl.col(minutes) - pl.col("later_unit_minutes")) // unit).clip(lower_bound=0)
    return (
        pl.when(pl.col(minutes) >= pl.col("first_unit_minutes"))
        .then(later + 1)
        .otherwise(0)
        .cast(pl.Int64)
    )
