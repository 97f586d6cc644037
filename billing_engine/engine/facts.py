"""Normalization: facts per patient and period, shared by every code family.

Each function takes the evaluation context and returns a polars frame; none touches
files or the database, none loops over rows. Families compose these facts into the
frame their rules read (see ``code_rules/<family>/rule.py``).

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

import datetime as dt

import polars as pl

from billing_engine.engine.context import EvalContext

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


def normalized_icd10(expr: pl.Expr) -> pl.Expr:
    """ICD-10-CM without the dot, upper case (E11.9 -> E119)."""
    return expr.str.replace_all(".", "", literal=True).str.to_uppercase().str.strip_chars()


def practitioners(ctx: EvalContext) -> pl.DataFrame:
    return ctx.bundle["practitioners"].select("practitioner_id", "npi", "credential")


def with_practitioner(
    ctx: EvalContext, frame: pl.DataFrame, id_column: str, prefix: str
) -> pl.DataFrame:
    """Join the practitioner named in `id_column`: adds `<prefix>_credential` and `<prefix>_npi`."""
    return frame.join(
        practitioners(ctx).select(
            pl.col("practitioner_id").alias(id_column),
            pl.col("credential").alias(f"{prefix}_credential"),
            pl.col("npi").alias(f"{prefix}_npi"),
        ),
        on=id_column,
        how="left",
    )


def valid_consents(ctx: EvalContext, program: str) -> pl.DataFrame:
    """Consents for `program` obtained by the month's end and not revoked before it.

    A revocation ends the consent at the end of the revocation's calendar month
    (CCM-C1), so a consent revoked in the evaluated month still covers it.
    """
    return ctx.bundle["consents"].filter(
        (pl.col("program") == program)
        & (pl.col("obtained_date") <= ctx.end)
        & (pl.col("revoked_date").is_null() | (pl.col("revoked_date") >= ctx.start))
    )


def consent_practitioners(ctx: EvalContext) -> pl.DataFrame:
    """The billing practitioner named by each patient's latest consent per program."""
    return (
        ctx.bundle["consents"]
        .filter(
            pl.col("billing_practitioner_id").is_not_null() & (pl.col("obtained_date") <= ctx.end)
        )
        .sort("obtained_date")
        .group_by("patient_id", "program")
        .agg(consent_practitioner_id=pl.col("billing_practitioner_id").last())
    )


def consent_facts(ctx: EvalContext, candidates: pl.DataFrame, program: str) -> pl.DataFrame:
    """Per candidate (patient_id, billing_practitioner_id): the consent that applies.

    A consent applies to a billing practitioner when it names that practitioner or
    names none. Adds ``consent_id``, ``consent_date`` (earliest applicable valid
    consent) and ``consent_status``: ``valid``, ``revoked`` (only consents revoked
    before the month) or ``missing``.
    """
    keys = ["patient_id", "billing_practitioner_id"]
    consents = ctx.bundle["consents"].filter(pl.col("program") == program)
    pairs = (
        candidates.select(keys)
        .unique()
        .join(
            consents.select(
                "patient_id",
                pl.col("billing_practitioner_id").alias("named_practitioner_id"),
                "consent_id",
                "obtained_date",
                "revoked_date",
            ),
            on="patient_id",
            how="inner",
        )
        .filter(
            pl.col("named_practitioner_id").is_null()
            | (pl.col("named_practitioner_id") == pl.col("billing_practitioner_id"))
        )
    )
    is_valid = (pl.col("obtained_date") <= ctx.end) & (
        pl.col("revoked_date").is_null() | (pl.col("revoked_date") >= ctx.start)
    )
    revoked_before = pl.col("revoked_date").is_not_null() & (pl.col("revoked_date") < ctx.start)
    summary = (
        pairs.with_columns(valid=is_valid, revoked=revoked_before)
        .sort("obtained_date")
        .group_by(keys)
        .agg(
            consent_id=pl.col("consent_id").filter(pl.col("valid")).first(),
            consent_date=pl.col("obtained_date").filter(pl.col("valid")).first(),
            any_revoked=pl.col("revoked").any(),
        )
    )
    return (
        candidates.join(summary, on=keys, how="left", nulls_equal=True)
        .with_columns(
            consent_status=pl.when(pl.col("consent_date").is_not_null())
            .then(pl.lit("valid"))
            .when(pl.col("any_revoked").fill_null(False))
            .then(pl.lit("revoked"))
            .otherwise(pl.lit("missing"))
        )
        .drop("any_revoked")
    )


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


def merge_intervals(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Union of [start_min, end_min) intervals per key: one row per merged interval."""
    return (
        frame.sort([*keys, "start_min"])
        .with_columns(prev_end=pl.col("end_min").cum_max().shift(1).over(keys))
        .with_columns(
            piece=(pl.col("prev_end").is_null() | (pl.col("start_min") > pl.col("prev_end")))
            .cast(pl.Int32)
            .cum_sum()
            .over(keys)
        )
        .group_by([*keys, "piece"])
        .agg(start_min=pl.col("start_min").min(), end_min=pl.col("end_min").max())
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


def chronic_conditions(ctx: EvalContext, value_set: pl.DataFrame) -> pl.DataFrame:
    """Per patient: distinct chronic ICD-10-CM categories active in the month.

    A condition counts when active in the month (onset on or before its end, resolved
    on or after its start) and chronic: its ``chronic`` column, else membership of the
    value set. Categories are the first three characters (interchange semantics 12).
    ``chronic_icd10`` lists one code per category for claims, in an order that does not
    depend on the source's row order (a bundle file and the store agree): earliest
    onset first (no onset = longest standing), then by code.
    """
    return ctx.memo.frame("chronic", lambda: _chronic_conditions(ctx, value_set))


def _chronic_conditions(ctx: EvalContext, value_set: pl.DataFrame) -> pl.DataFrame:
    members = value_set.select(pl.col("icd10").alias("code"), pl.lit(True).alias("in_value_set"))
    result = (
        ctx.bundle["conditions"]
        .filter(
            (pl.col("onset_date").is_null() | (pl.col("onset_date") <= ctx.end))
            & (pl.col("resolved_date").is_null() | (pl.col("resolved_date") >= ctx.start))
        )
        .with_columns(code=normalized_icd10(pl.col("icd10")))
        .join(members, on="code", how="left")
        .filter(pl.coalesce("chronic", "in_value_set", pl.lit(False)))
        .with_columns(category=pl.col("code").str.slice(0, 3))
        .sort("patient_id", "onset_date", "code", nulls_last=False)
        .unique(subset=["patient_id", "category"], keep="first", maintain_order=True)
        .group_by("patient_id", maintain_order=True)
        .agg(
            n_chronic=pl.len().cast(pl.Int64),
            chronic_icd10=pl.col("icd10"),
        )
    )
    return result


MAX_CLAIM_DIAGNOSES = 4  # ICD-10-CM codes a claim line carries (interchange claim_lines)


def conditions_on_date(
    ctx: EvalContext,
    frame: pl.DataFrame,
    date_column: str,
    prefixes: list[str] | None = None,
    limit: int = MAX_CLAIM_DIAGNOSES,
) -> pl.Series:
    """Per row of `frame`: the patient's conditions active on the row's date, as a list.

    Active = onset blank or on/before the date, and resolved blank or on/after it. Only
    codes starting with one of `prefixes` (ICD-10-CM without the dot) when given. One
    entry per code, earliest onset first (blank onset = longest standing), then by code,
    at most `limit`. Aligned with `frame`; rows without any give an empty list.
    """
    code = normalized_icd10(pl.col("icd10"))
    conditions = ctx.bundle["conditions"].with_columns(code=code)
    if prefixes is not None:
        conditions = conditions.filter(
            pl.any_horizontal([pl.col("code").str.starts_with(x) for x in prefixes])
            if prefixes
            else pl.lit(False)
        )
    indexed = frame.select("patient_id", date_column).with_row_index("_dx_row")
    found = (
        indexed.join(conditions, on="patient_id", how="inner")
        .filter(
            (pl.col("onset_date").is_null() | (pl.col("onset_date") <= pl.col(date_column)))
            & (pl.col("resolved_date").is_null() | (pl.col("resolved_date") >= pl.col(date_column)))
        )
        .sort("_dx_row", "onset_date", "code", nulls_last=False)
        .unique(subset=["_dx_row", "code"], keep="first", maintain_order=True)
        .group_by("_dx_row", maintain_order=True)
        .agg(found=pl.col("icd10").head(limit))
    )
    return (
        indexed.join(found, on="_dx_row", how="left")
        .sort("_dx_row")
        .select(pl.col("found").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .get_column("found")
    )


def care_plan_facts(ctx: EvalContext, program: str, revision_actions: list[str]) -> pl.DataFrame:
    """Per patient: the latest established plan by the month's end, and any plan
    established or substantially revised inside the month."""
    plans = ctx.bundle["care_plans"].filter(pl.col("program") == program)
    established = (
        plans.filter((pl.col("action") == "established") & (pl.col("date") <= ctx.end))
        .sort("date")
        .group_by("patient_id")
        .agg(care_plan_id=pl.col("care_plan_id").last(), care_plan_date=pl.col("date").last())
    )
    revised = (
        plans.filter(pl.col("action").is_in(revision_actions) & ctx.in_month("date"))
        .sort("date")
        .group_by("patient_id")
        .agg(revised_plan_id=pl.col("care_plan_id").last(), revised_plan_date=pl.col("date").last())
    )
    return established.join(revised, on="patient_id", how="full", coalesce=True)


def practitioner_visits(
    ctx: EvalContext, codes: list[str], kinds: list[str], patients: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Face-to-face visits with a practitioner: (patient_id, practitioner_id, date, source_id).

    From encounters of `kinds` (office visits need one of `codes` in their cpt;
    wellness kinds count as they are) performed or billed by the practitioner, and
    from claims_history rows with one of `codes` billed under the practitioner's NPI.
    Only visits on or before the month's end; only `patients` (a patient_id frame)
    when given.
    """
    encounters = ctx.bundle["encounters"].filter(
        pl.col("kind").is_in(kinds) & (pl.col("date") <= ctx.end)
    )
    history = ctx.bundle["claims_history"].filter(pl.col("date_of_service") <= ctx.end)
    if patients is not None:
        encounters = encounters.join(patients, on="patient_id", how="semi")
        history = history.join(patients, on="patient_id", how="semi")
    enc = encounters.filter(
        pl.col("kind").is_in(kinds)
        & (pl.col("outcome").is_null() | (pl.col("outcome") != "attempt_failed"))
        & (
            (pl.col("kind") != "office_visit")
            | pl.col("cpt").list.eval(pl.element().is_in(codes)).list.any()
        )
    ).select("patient_id", "date", "encounter_id", "performer_id", "billing_practitioner_id")
    by_practitioner = pl.concat(
        [
            enc.select(
                "patient_id",
                pl.col("performer_id").alias("practitioner_id"),
                "date",
                pl.col("encounter_id").alias("source_id"),
            ),
            enc.filter(pl.col("billing_practitioner_id").is_not_null()).select(
                "patient_id",
                pl.col("billing_practitioner_id").alias("practitioner_id"),
                "date",
                pl.col("encounter_id").alias("source_id"),
            ),
        ]
    )
    ignored = ctx.params.as_strs("common.ignored_claim_statuses")
    claims = (
        history.filter(
            pl.col("code").is_in(codes)
            & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        )
        .join(
            practitioners(ctx).filter(pl.col("npi").is_not_null()),
            left_on="billing_npi",
            right_on="npi",
            how="inner",
        )
        .select(
            "patient_id",
            "practitioner_id",
            pl.col("date_of_service").alias("date"),
            pl.concat_str(
                pl.lit("claim:"),
                pl.col("code"),
                pl.lit("@"),
                pl.col("date_of_service").cast(pl.String),
            ).alias("source_id"),
        )
    )
    return pl.concat([by_practitioner, claims]).unique()


def billed_claims(
    ctx: EvalContext, codes: list[str], through: dt.date | None = None
) -> pl.DataFrame:
    """Claims history rows for `codes` that count as billed, dated on or before `through`
    (default: the month's end; frequency limits never look at later claims).

    Adds ``claim_practitioner_id``: the practitioner of the bundle whose NPI billed the
    claim (null for another practice's NPI), and ``units`` defaulted to 1.
    """
    ignored = ctx.params.as_strs("common.ignored_claim_statuses")
    last = through or ctx.end
    return (
        ctx.bundle["claims_history"]
        .filter(
            pl.col("code").is_in(codes)
            & (pl.col("date_of_service") <= last)
            & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        )
        .with_columns(pl.col("units").fill_null(1))
        .join(
            practitioners(ctx)
            .filter(pl.col("npi").is_not_null())
            .select(
                pl.col("npi").alias("billing_npi"),
                pl.col("practitioner_id").alias("claim_practitioner_id"),
            )
            .unique(subset=["billing_npi"], keep="first"),
            on="billing_npi",
            how="left",
        )
    )


def claims_in_month(ctx: EvalContext, codes: list[str]) -> pl.DataFrame:
    """Claims history rows of the month for `codes` that count as billed."""
    ignored = ctx.params.as_strs("common.ignored_claim_statuses")
    return ctx.bundle["claims_history"].filter(
        pl.col("code").is_in(codes)
        & ctx.in_month("date_of_service")
        & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
    )


def max_mdm(ctx: EvalContext) -> pl.DataFrame:
    """(patient_id, billing_practitioner_id) -> highest MDM rank recorded in the month
    on any encounter billed under that practitioner (interchange semantics 5)."""
    order = ctx.params.as_strs("common.mdm_rank")
    ranks = pl.DataFrame({"mdm": order, "mdm_rank": list(range(1, len(order) + 1))})
    entries = time_entries(ctx).select("encounter_id", "billing_practitioner_id")
    return (
        ctx.bundle["encounters"]
        .filter(ctx.in_month("date") & pl.col("mdm").is_not_null())
        .join(
            entries.rename({"billing_practitioner_id": "resolved_bp"}),
            on="encounter_id",
            how="left",
        )
        .with_columns(
            billing_practitioner_id=pl.coalesce(
                "resolved_bp", "billing_practitioner_id", "performer_id"
            )
        )
        .join(ranks, on="mdm", how="inner")
        .group_by("patient_id", "billing_practitioner_id")
        .agg(mdm_rank=pl.col("mdm_rank").max(), mdm_ids=pl.col("encounter_id").sort())
    )


def mdm_rank_of(ctx: EvalContext, level: str) -> int:
    return ctx.params.as_strs("common.mdm_rank").index(level) + 1


def primary_coverage(ctx: EvalContext, frame: pl.DataFrame, date_column: str) -> pl.DataFrame:
    """Adds ``payer_id`` and ``payer_kind``: the lowest-rank coverage active on the date."""
    cov = ctx.bundle["coverages"].select(
        "patient_id", "payer_id", "start_date", "end_date", pl.col("rank").fill_null(1)
    )
    indexed = frame.with_row_index("_cov_row")
    matched = (
        indexed.select("_cov_row", "patient_id", date_column)
        .join(cov, on="patient_id", how="inner")
        .filter(
            (pl.col("start_date") <= pl.col(date_column))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col(date_column)))
        )
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
        .filter(
            (pl.col("effective_from").is_null() | (pl.col("effective_from") <= pl.col(date_column)))
            & (pl.col("effective_to").is_null() | (pl.col("effective_to") >= pl.col(date_column)))
        )
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


# --------------------------------------------------------------------------- practitioners

# Where a monthly line's place of service came from (CCM-POS), in the order tried.
POS_FROM_PRACTITIONER = "practitioner"
POS_FROM_ENCOUNTERS = "encounters"
POS_FROM_SETTING = "setting"


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().replace("", None)


def practitioner_specialties(ctx: EvalContext) -> pl.DataFrame:
    """practitioner_id -> ``specialty`` compared as one group (trimmed, lower case; blank
    is null). Free text and CMS specialty codes are compared as given, never mapped."""
    return ctx.bundle["practitioners"].select(
        "practitioner_id",
        specialty=_blank_to_null(pl.col("specialty")).str.to_lowercase(),
    )


def same_specialty(left: str, right: str) -> pl.Expr:
    """Two practitioners' specialties count as one group: equal, or either one blank (the
    conservative reading: an unknown specialty may be the same one)."""
    return pl.col(left).is_null() | pl.col(right).is_null() | (pl.col(left) == pl.col(right))


def practitioner_places_of_service(ctx: EvalContext, id_column: str, name: str) -> pl.DataFrame:
    """`id_column` -> `name`: the practitioner's own ``place_of_service`` (blank is null)."""
    return ctx.bundle["practitioners"].select(
        pl.col("practitioner_id").alias(id_column),
        _blank_to_null(pl.col("place_of_service")).alias(name),
    )


def with_visit_place_of_service(ctx: EvalContext, frame: pl.DataFrame) -> pl.DataFrame:
    """A visit's ``place_of_service``: its own, else its billing practitioner's
    ``place_of_service``, else ``common.monthly_place_of_service``."""
    own = practitioner_places_of_service(ctx, "billing_practitioner_id", "_bp_pos")
    return (
        frame.join(own, on="billing_practitioner_id", how="left")
        .with_columns(
            place_of_service=pl.coalesce(
                _blank_to_null(pl.col("place_of_service")),
                "_bp_pos",
                pl.lit(ctx.params.as_str("common.monthly_place_of_service")),
            )
        )
        .drop("_bp_pos")
    )


def monthly_place_of_service(
    ctx: EvalContext, facts: pl.DataFrame, counted: str, name: str = "place_of_service"
) -> pl.DataFrame:
    """The place of service of a monthly line (CCM-POS: where the billing practitioner
    would see the patient face to face), for every row of `facts` at once.

    Tried in order: the billing practitioner's ``place_of_service``; else the one place
    of service that every encounter in the list column `counted` (the ids whose minutes
    count toward the line) names, blanks ignored; else ``common.monthly_place_of_service``.
    Adds `name`, ``<name>_source`` (``POS_FROM_*``) and ``<name>_evidence``
    (``practitioner:<id>`` when the practitioner's row gave it, else null).
    """
    setting = ctx.params.as_str("common.monthly_place_of_service")
    indexed = facts.drop(
        [c for c in (name, f"{name}_source", f"{name}_evidence") if c in facts.columns]
    ).with_row_index("_pos_row")
    encounter_pos = ctx.bundle["encounters"].select(
        "encounter_id", _blank_to_null(pl.col("place_of_service")).alias("_pos")
    )
    agreed = (
        indexed.select("_pos_row", pl.col(counted).alias("encounter_id"))
        .explode("encounter_id")
        .join(encounter_pos, on="encounter_id", how="inner")
        .filter(pl.col("_pos").is_not_null())
        .group_by("_pos_row")
        .agg(_places=pl.col("_pos").unique())
        .filter(pl.col("_places").list.len() == 1)
        .select("_pos_row", _encounters_pos=pl.col("_places").list.first())
    )
    own = practitioner_places_of_service(ctx, "billing_practitioner_id", "_bp_pos")
    from_bp = pl.col("_bp_pos").is_not_null()
    return (
        indexed.join(agreed, on="_pos_row", how="left")
        .join(own, on="billing_practitioner_id", how="left")
        .sort("_pos_row")
        .with_columns(
            pl.coalesce("_bp_pos", "_encounters_pos", pl.lit(setting)).alias(name),
            pl.when(from_bp)
            .then(pl.lit(POS_FROM_PRACTITIONER))
            .when(pl.col("_encounters_pos").is_not_null())
            .then(pl.lit(POS_FROM_ENCOUNTERS))
            .otherwise(pl.lit(POS_FROM_SETTING))
            .alias(f"{name}_source"),
            pl.when(from_bp)
            .then(pl.concat_str(pl.lit("practitioner:"), pl.col("billing_practitioner_id")))
            .alias(f"{name}_evidence"),
        )
        .drop("_pos_row", "_bp_pos", "_encounters_pos")
    )
