"""Time: which logged minutes count, and how many, per patient, program and practitioner.

Time rules applied here (rules reference section 1.2):
- TIME-3: only the evaluated calendar month; minutes never carry across months.
- TIME-4: only clinical staff (``common.clinical_staff_credentials``) and the billing
  practitioner personally; anybody else's time is excluded with a reason.
- TIME-5: overlapping entries (``start_time`` + ``minutes``) for the same patient,
  program and billing practitioner on one day are counted once (interval union); a
  minute logged to two programs counts for the one earlier in
  ``common.program_minute_priority`` only.
- TIME-6: minutes overlapping a face-to-face or separately billed service of the same
  patient (``common.separately_billed_kinds``) are not counted (setting
  ``common.exclude_time_during_visits``).
- TIME-7: nothing on inpatient days (admit date inclusive, discharge date exclusive).
- TIME-8: nothing dated before the program's consent.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.facts.patients import (
    consent_facts,
    consent_practitioners,
    with_practitioner,
)

# Exclusion reasons of time entries (shown by `billing explain`, documented in the README).
EXCLUDED_NO_BILLING_PRACTITIONER = "no_billing_practitioner"
EXCLUDED_NOT_CLINICAL_STAFF = "not_clinical_staff_or_billing_practitioner"
EXCLUDED_BEFORE_CONSENT = "before_consent"
EXCLUDED_INPATIENT_DAY = "inpatient_day"
EXCLUDED_FAILED_ATTEMPT = "attempt_failed"

ROLE_STAFF = "staff"
ROLE_PRACTITIONER = "practitioner"
ROLE_OTHER = "other"

POOL_ALL = "all"  # clinical staff and the billing practitioner (staff codes)
POOL_PRACTITIONER = "practitioner"  # the billing practitioner personally

TIME_KEYS = ["patient_id", "program", "billing_practitioner_id"]


def inpatient_days(ctx: EvalContext) -> pl.DataFrame:
    """(patient_id, admit_date, discharge_date) of stays whose days are inpatient days."""
    settings = ctx.params.as_strs("common.inpatient_settings")
    return (
        ctx.bundle["discharges"]
        .filter(
            pl.col("setting").is_in(settings)
            & (pl.col("admit_date") <= ctx.end)
            & (pl.col("discharge_date") > ctx.start)
        )
        .select("patient_id", "admit_date", "discharge_date")
    )


def time_entries(ctx: EvalContext) -> pl.DataFrame:
    """Every care-management entry of the month, with its billing practitioner and fate.

    Columns: the encounter's own, ``billing_practitioner_id`` (resolved: the entry's,
    else the practitioner of the patient's latest consent for the program, else the
    performer when the performer may bill), ``role`` (staff / practitioner / other),
    ``start_min`` (minutes after midnight), ``consent_date`` and ``excluded`` (null when
    the minutes count, else the first reason they don't).
    """
    return ctx.memo.frame("time_entries", lambda: _time_entries(ctx))


def _time_entries(ctx: EvalContext) -> pl.DataFrame:
    staff = ctx.params.as_strs("common.clinical_staff_credentials")
    billers = ctx.params.as_strs("common.billing_credentials")
    consent_programs = ctx.params.as_strs("common.consent_programs")
    month_entries = ctx.bundle["encounters"].filter(
        (pl.col("kind") == "care_management") & ctx.in_month("date")
    )
    entries = (
        with_practitioner(ctx, month_entries, "performer_id", "performer")
        .drop("performer_npi")
        .join(consent_practitioners(ctx), on=["patient_id", "program"], how="left")
        .with_columns(
            billing_practitioner_id=pl.coalesce(
                "billing_practitioner_id",
                "consent_practitioner_id",
                pl.when(pl.col("performer_credential").is_in(billers)).then(pl.col("performer_id")),
            ),
            start_min=(
                pl.col("start_time").dt.hour().cast(pl.Int32) * 60
                + pl.col("start_time").dt.minute().cast(pl.Int32)
            ),
        )
        .with_columns(
            role=pl.when(pl.col("performer_id") == pl.col("billing_practitioner_id"))
            .then(pl.lit(ROLE_PRACTITIONER))
            .when(pl.col("performer_credential").is_in(staff))
            .then(pl.lit(ROLE_STAFF))
            .otherwise(pl.lit(ROLE_OTHER))
        )
    )
    lookups = []
    for program in entries.get_column("program").drop_nulls().unique().sort().to_list():
        if program not in consent_programs:
            continue
        cands = (
            entries.filter(pl.col("program") == program)
            .select("patient_id", "billing_practitioner_id")
            .unique()
        )
        lookups.append(
            consent_facts(ctx, cands, program)
            .select("patient_id", "billing_practitioner_id", "consent_date")
            .with_columns(program=pl.lit(program))
        )
    if lookups:
        entries = entries.join(pl.concat(lookups), on=TIME_KEYS, how="left", nulls_equal=True)
    else:
        entries = entries.with_columns(consent_date=pl.lit(None, dtype=pl.Date))
    stays = inpatient_days(ctx)
    on_stay = (
        entries.select("encounter_id", "patient_id", "date")
        .join(stays, on="patient_id", how="inner")
        .filter(
            (pl.col("date") >= pl.col("admit_date")) & (pl.col("date") < pl.col("discharge_date"))
        )
        .select("encounter_id")
        .unique()
        .with_columns(inpatient=pl.lit(True))
    )
    entries = (
        entries.join(on_stay, on="encounter_id", how="left")
        .with_columns(
            excluded=pl.when(pl.col("outcome") == "attempt_failed")
            .then(pl.lit(EXCLUDED_FAILED_ATTEMPT))
            .when(pl.col("billing_practitioner_id").is_null())
            .then(pl.lit(EXCLUDED_NO_BILLING_PRACTITIONER))
            .when(pl.col("role") == ROLE_OTHER)
            .then(pl.lit(EXCLUDED_NOT_CLINICAL_STAFF))
            .when(
                pl.col("program").is_in(consent_programs)
                & (pl.col("consent_date").is_null() | (pl.col("date") < pl.col("consent_date")))
            )
            .then(pl.lit(EXCLUDED_BEFORE_CONSENT))
            .when(pl.col("inpatient").fill_null(False))
            .then(pl.lit(EXCLUDED_INPATIENT_DAY))
        )
        .drop("inpatient", "consent_practitioner_id")
    )
    return entries


# Per-key offset that keeps every key's minutes apart in one running maximum (a day's
# minutes, even with a long entry, stay far below it).
_KEY_SPAN = 1 << 32


def merge_intervals(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Union of [start_min, end_min) intervals per key: one row per merged interval.

    Columns: the keys, ``piece`` (an id of the merged interval, unique in the result),
    ``start_min`` and ``end_min``. Rows sorted by key and start; each key's intervals
    are lifted by its rank times ``_KEY_SPAN``, so one running maximum of the ends over
    the whole frame is each key's own (no per-key window): an interval starts a piece
    where it begins after every earlier end.
    """
    first = pl.int_range(pl.len()) == 0
    new_key = pl.any_horizontal(first, *(pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys))
    lift = new_key.cum_sum().cast(pl.Int64) * _KEY_SPAN
    start = lift + pl.col("start_min").cast(pl.Int64)
    end = lift + pl.col("end_min").cast(pl.Int64)
    prev_end = end.cum_max().shift(1)
    piece = (prev_end.is_null() | (start > prev_end)).cast(pl.Int32).cum_sum()
    return (
        frame.lazy()
        .sort([*keys, "start_min"])
        .with_columns(piece=piece)
        .group_by("piece")
        .agg(
            *(pl.col(k).first() for k in keys),
            start_min=pl.col("start_min").min(),
            end_min=pl.col("end_min").max(),
        )
        .select(*keys, "piece", "start_min", "end_min")
        .collect()
    )


def visit_intervals(ctx: EvalContext) -> pl.DataFrame:
    """Face-to-face and separately billed services per patient and day, as minute
    intervals (patient_id, date, start_min, end_min): care-management time that overlaps
    them is not counted (TIME-6, TIME-5; ``common.separately_billed_kinds``)."""
    kinds = ctx.params.as_strs("common.separately_billed_kinds")
    start = pl.col("start_time").dt.hour().cast(pl.Int32) * 60 + pl.col(
        "start_time"
    ).dt.minute().cast(pl.Int32)
    return (
        ctx.bundle["encounters"]
        .filter(
            pl.col("kind").is_in(kinds)
            & ctx.in_month("date")
            & pl.col("start_time").is_not_null()
            & (pl.col("minutes") > 0)
        )
        .select(
            "patient_id",
            "date",
            start_min=start,
            end_min=start + pl.col("minutes").cast(pl.Int32),
            visit_id=pl.col("encounter_id"),  # shown by `billing explain`
        )
    )


def _blocking_intervals(ctx: EvalContext, timed: pl.DataFrame) -> pl.DataFrame:
    """Per patient, day and program: the merged intervals that program's minutes may not use.

    Face-to-face and separately billed services (TIME-6, when
    ``common.exclude_time_during_visits``), and time logged to a program earlier in
    ``common.program_minute_priority`` (TIME-5: a minute supports one billed service).
    """
    keys = ["patient_id", "date"]
    visits = (
        visit_intervals(ctx)
        if ctx.params.as_bool("common.exclude_time_during_visits")
        else pl.DataFrame(
            schema={
                "patient_id": pl.String,
                "date": pl.Date,
                "start_min": pl.Int32,
                "end_min": pl.Int32,
            }
        )
    )
    priority = ctx.params.as_strs("common.program_minute_priority")
    logged = timed.filter(pl.col("pool") == POOL_ALL).select(
        *keys, "program", "start_min", "end_min"
    )
    parts = []
    for program in logged.get_column("program").unique().sort().to_list():
        blockers = [visits.select(*keys, "start_min", "end_min")]
        if program in priority:
            higher = priority[: priority.index(program)]
            blockers.append(
                logged.filter(pl.col("program").is_in(higher)).select(*keys, "start_min", "end_min")
            )
        parts.append(pl.concat(blockers).with_columns(program=pl.lit(program)))
    if not parts:
        return pl.DataFrame(
            schema={
                "patient_id": pl.String,
                "date": pl.Date,
                "program": pl.String,
                "block_start": pl.Int32,
                "block_end": pl.Int32,
            }
        )
    merged = merge_intervals(pl.concat(parts), [*keys, "program"])
    return merged.select(
        *keys,
        "program",
        pl.col("start_min").alias("block_start"),
        pl.col("end_min").alias("block_end"),
    )


def daily_minutes(ctx: EvalContext) -> pl.DataFrame:
    """Counted minutes per patient, program, billing practitioner, pool and day.

    Pool ``all`` holds clinical-staff and billing-practitioner time (staff codes count
    both, TIME-4); pool ``practitioner`` holds only the practitioner's own time.
    Timed entries are merged per key (TIME-5, concurrent staff) and lose the minutes
    that overlap a blocking interval (``_blocking_intervals``). Entries without a start
    time cannot be placed in the day and count as logged.
    """
    return ctx.memo.frame("daily_minutes", lambda: _daily_minutes(ctx))


def _daily_minutes(ctx: EvalContext) -> pl.DataFrame:
    counted = time_entries(ctx).filter(pl.col("excluded").is_null() & (pl.col("minutes") > 0))
    pooled = pl.concat(
        [
            counted.with_columns(pool=pl.lit(POOL_ALL)),
            counted.filter(pl.col("role") == ROLE_PRACTITIONER).with_columns(
                pool=pl.lit(POOL_PRACTITIONER)
            ),
        ]
    ).with_columns(minutes=pl.col("minutes").cast(pl.Int32))
    keys = [*TIME_KEYS, "pool", "date"]
    timed = pooled.filter(pl.col("start_min").is_not_null()).with_columns(
        end_min=pl.col("start_min") + pl.col("minutes")
    )
    merged = merge_intervals(timed, keys).with_columns(
        counted=pl.col("end_min") - pl.col("start_min")
    )
    overlap = (
        merged.join(
            _blocking_intervals(ctx, timed), on=["patient_id", "date", "program"], how="inner"
        )
        .with_columns(
            overlap=(
                pl.min_horizontal("end_min", "block_end")
                - pl.max_horizontal("start_min", "block_start")
            ).clip(lower_bound=0)
        )
        .group_by([*keys, "piece"])
        .agg(pl.col("overlap").sum())
    )
    merged = merged.join(overlap, on=[*keys, "piece"], how="left", nulls_equal=True).with_columns(
        counted=pl.col("counted") - pl.col("overlap").fill_null(0)
    )
    untimed = pooled.filter(pl.col("start_min").is_null()).select(*keys, counted=pl.col("minutes"))
    daily = (
        pl.concat([merged.select(*keys, "counted"), untimed])
        .group_by(keys)
        .agg(minutes=pl.col("counted").sum().cast(pl.Int64))
        .sort(keys)
        .with_columns(cumulative=pl.col("minutes").cum_sum().over(keys[:-1]))
    )
    return daily


def monthly_minutes(ctx: EvalContext, program: str, pool: str) -> pl.DataFrame:
    """(patient_id, billing_practitioner_id) -> counted minutes in the month for a pool."""
    return (
        daily_minutes(ctx)
        .filter((pl.col("program") == program) & (pl.col("pool") == pool))
        .group_by("patient_id", "billing_practitioner_id")
        .agg(minutes=pl.col("minutes").sum())
    )


def date_reached(
    ctx: EvalContext, targets: pl.DataFrame, program: str, pool: str, needed: str
) -> pl.Series:
    """For each target row, the first day the pool's cumulative minutes reach `needed`.

    `targets` has patient_id, billing_practitioner_id and the integer column `needed`;
    the result is a date series aligned with `targets` (null when never reached).
    """
    daily = daily_minutes(ctx).filter((pl.col("program") == program) & (pl.col("pool") == pool))
    indexed = targets.select("patient_id", "billing_practitioner_id", needed).with_row_index("_row")
    reached = (
        indexed.join(
            daily, on=["patient_id", "billing_practitioner_id"], how="inner", nulls_equal=True
        )
        .filter(pl.col("cumulative") >= pl.col(needed))
        .group_by("_row")
        .agg(reached=pl.col("date").min())
    )
    return indexed.join(reached, on="_row", how="left").sort("_row").get_column("reached")


def counted_entry_ids(ctx: EvalContext, program: str, pool: str) -> pl.DataFrame:
    """(patient_id, billing_practitioner_id) -> sorted ids of the entries that counted."""
    entries = time_entries(ctx).filter(
        (pl.col("program") == program) & pl.col("excluded").is_null() & (pl.col("minutes") > 0)
    )
    if pool == POOL_PRACTITIONER:
        entries = entries.filter(pl.col("role") == ROLE_PRACTITIONER)
    return entries.group_by("patient_id", "billing_practitioner_id").agg(
        entry_ids=pl.col("encounter_id").sort()
    )


def logged_minutes(ctx: EvalContext, program: str) -> pl.DataFrame:
    """(patient_id, billing_practitioner_id) -> every minute logged, counted or not."""
    return (
        time_entries(ctx)
        .filter(pl.col("program") == program)
        .group_by("patient_id", "billing_practitioner_id")
        .agg(minutes_logged=pl.col("minutes").sum())
    )
