"""Intensive behavioral therapy (IBT) for obesity: G0447 (individual) and G0473 (group).

Every code, threshold, window and cap comes from ``parameters.yaml`` beside this file;
the requirements in plain words are in ``README.md``. One rule set, ``obesity.visits``:
one candidate per ``obesity_counseling`` encounter dated in the month (``contact_mode``
group bills the group code, anything else the individual code). Date of service and
period are the visit date.

The schedule (IBT-F1, IBT-U1) is anchored at the first IBT visit of a 12-month benefit
period: the earliest of the claims history rows for either code (not denied) and the
encounters that meet the visit's own criteria (coverage, payer, practitioner, setting,
BMI, minutes). With the setting ``obesity.after_cycle: new_cycle`` the first such visit on
or after the period's end starts the next period. Frequency counts read the claims
history together with what this evaluation bills: visits of the month are decided in
date order (then encounter id), each seeing the ones billed before it. That order is a
loop over the visits' rank within the patient's month (a handful of passes, each a
whole-frame expression over every patient), as the anchor chain is a loop over
benefit periods.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from typing import Any

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    coverage_criterion,
    evidence_list,
    payer_pays_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import CodeRule, Criterion

FAMILY = "obesity"
RULE_SET = "obesity.visits"
KIND = "obesity_counseling"  # interchange encounters.kind
GROUP_MODE = "group"  # interchange encounters.contact_mode
FAILED_ATTEMPT = "attempt_failed"  # interchange encounters.outcome
BMI_KIND, WEIGHT_KIND = "bmi", "weight_kg"  # interchange measurements.kind
NEW_CYCLE = "new_cycle"
RULE_IDS = ("IBT-E1", "IBT-S1", "IBT-F1", "IBT-U1", "IBT-$", "TIME-1")
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))
MONTHS_PER_YEAR = len(calendar.month_name) - 1  # calendar arithmetic, not a rule threshold


def family_codes(ctx: EvalContext) -> tuple[str, str]:
    """(individual code, group code)."""
    p = ctx.params
    return p.as_str("obesity.individual_code"), p.as_str("obesity.group_code")


def _months(expr: pl.Expr, months: int | pl.Expr) -> pl.Expr:
    """`expr` shifted by whole months (clipped to the month's last day, as add_months)."""
    if isinstance(months, int):
        return expr.dt.offset_by(f"{months}mo")
    return expr.dt.offset_by(pl.format("{}mo", months))


def _ref(kind: str, date: str) -> pl.Expr:
    """An evidence id for a measurement: ``measurement:<kind>@<date>``."""
    return pl.concat_str(pl.lit(f"measurement:{kind}@"), pl.col(date).cast(pl.String))


def _claim_ref() -> pl.Expr:
    return pl.concat_str(
        pl.lit("claim:"), pl.col("code"), pl.lit("@"), pl.col("date_of_service").cast(pl.String)
    )


# --------------------------------------------------------------------------- facts


def _visits(ctx: EvalContext) -> pl.DataFrame:
    """Every IBT encounter on or before the month's end, with who furnished it and where."""
    p = ctx.params
    individual, group = family_codes(ctx)
    billers = p.as_strs("common.billing_credentials")
    encounters = ctx.bundle["encounters"].filter(
        (pl.col("kind") == KIND)
        & (pl.col("date") <= ctx.end)
        & (pl.col("outcome").is_null() | (pl.col("outcome") != FAILED_ATTEMPT))
    )
    visits = nz.with_practitioner(ctx, encounters, "performer_id", "performer").with_columns(
        billing_practitioner_id=pl.coalesce(
            "billing_practitioner_id",
            pl.when(pl.col("performer_credential").is_in(billers)).then(pl.col("performer_id")),
        )
    )
    visits = nz.with_practitioner(ctx, visits, "billing_practitioner_id", "bp")
    primary_care = ctx.bundle["practitioners"].select(
        pl.col("practitioner_id").alias("billing_practitioner_id"),
        pl.col("primary_care").fill_null(False).alias("bp_primary_care"),
    )
    group_visit = pl.col("contact_mode").fill_null("") == GROUP_MODE
    return (
        visits.join(primary_care, on="billing_practitioner_id", how="left")
        .with_columns(
            code=pl.when(group_visit).then(pl.lit(group)).otherwise(pl.lit(individual)),
            min_minutes=pl.when(group_visit)
            .then(pl.lit(p.as_int("obesity.group_min_minutes")))
            .otherwise(pl.lit(p.as_int("obesity.individual_min_minutes"))),
            place_of_service=pl.col("place_of_service").fill_null(
                p.as_str("obesity.default_place_of_service")
            ),
        )
        .select(
            "encounter_id",
            "patient_id",
            "date",
            "code",
            "contact_mode",
            "minutes",
            "min_minutes",
            "place_of_service",
            "performer_id",
            "performer_credential",
            "billing_practitioner_id",
            "bp_credential",
            "bp_npi",
            "bp_primary_care",
        )
    )


def _bmi_code(ctx: EvalContext) -> pl.Expr:
    """The Z68 code of the band the measured BMI falls in (highest band reached)."""
    bands: list[Any] = ctx.params["obesity.bmi_diagnosis_codes"]
    chain: Any = None  # polars' When/Then builder types are not public
    for low, code in sorted(bands, key=lambda band: float(band[0]), reverse=True):
        reached = pl.col("bmi") >= float(low)
        chain = (pl if chain is None else chain).when(reached).then(pl.lit(str(code)))
    if chain is None:
        return pl.lit(None, dtype=pl.String)
    result: pl.Expr = chain.otherwise(None)
    return result


def _with_bmi(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """The latest BMI measured on or before the visit, within the look-back."""
    lookback = ctx.params.as_int("obesity.measurement_lookback_months")
    bmi = (
        ctx.bundle["measurements"]
        .filter(pl.col("kind") == BMI_KIND)
        .select("patient_id", pl.col("date").alias("bmi_date"), pl.col("value").alias("bmi"))
    )
    found = (
        visits.select("encounter_id", "patient_id", "date")
        .join(bmi, on="patient_id", how="inner")
        .filter(
            (pl.col("bmi_date") <= pl.col("date"))
            & (pl.col("bmi_date") >= _months(pl.col("date"), -lookback))
        )
        .sort("encounter_id", "bmi_date")
        .group_by("encounter_id")
        .agg(pl.col("bmi").last(), pl.col("bmi_date").last())
    )
    return visits.join(found, on="encounter_id", how="left").with_columns(
        bmi_code=_bmi_code(ctx),
        bmi_ref=pl.when(pl.col("bmi_date").is_not_null()).then(_ref(BMI_KIND, "bmi_date")),
    )


def _with_diagnoses(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Claim diagnoses: active obesity conditions first, then the BMI code (secondary)."""
    prefixes = ctx.params.as_strs("obesity.obesity_condition_prefixes")
    code = nz.normalized_icd10(pl.col("icd10"))
    obesity = ctx.bundle["conditions"].filter(
        pl.any_horizontal([code.str.starts_with(prefix) for prefix in prefixes])
        if prefixes
        else pl.lit(False)
    )
    active = (
        visits.select("encounter_id", "patient_id", "date")
        .join(obesity, on="patient_id", how="inner")
        .filter(
            (pl.col("onset_date").is_null() | (pl.col("onset_date") <= pl.col("date")))
            & (pl.col("resolved_date").is_null() | (pl.col("resolved_date") >= pl.col("date")))
        )
        .group_by("encounter_id")
        .agg(obesity_icd10=pl.col("icd10").unique().sort())
    )
    return (
        visits.join(active, on="encounter_id", how="left")
        .with_columns(pl.col("obesity_icd10").fill_null(EMPTY_IDS))
        .with_columns(
            icd10_codes=pl.concat_list(
                pl.col("obesity_icd10").list.head(3), pl.concat_list(pl.col("bmi_code"))
            ).list.drop_nulls()
        )
    )


def _with_payer(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Primary coverage on the visit date and whether that payer pays each code."""
    visits = nz.primary_coverage(ctx, visits, "date")
    kinds = ctx.params.as_strs("common.payer_kinds_paying_by_default")
    for code in family_codes(ctx):
        frame = visits.with_columns(_code=pl.lit(code))
        visits = visits.with_columns(
            nz.payer_pays(ctx, frame, "_code", "date", kinds).alias(f"pays:{code}")
        )
    return visits


def _claims(ctx: EvalContext) -> pl.DataFrame:
    """IBT claims history (either code, not denied, on or before the month's end)."""
    return nz.billed_claims(ctx, list(family_codes(ctx))).select(
        "patient_id",
        "code",
        "billing_npi",
        claim_date=pl.col("date_of_service"),
        claim_id=_claim_ref(),
    )


def _anchors(ctx: EvalContext, points: pl.DataFrame) -> pl.DataFrame:
    """(patient_id, anchor): the first visit of each benefit period.

    `points` are (patient_id, date) of IBT visits. The first period starts at the
    earliest; with ``after_cycle: new_cycle`` the first visit on or after a period's end
    starts the next one (one pass per benefit period, over every patient at once).
    """
    cycle = ctx.params.as_int("obesity.cycle_months")
    new_cycle = ctx.params.as_str("obesity.after_cycle") == NEW_CYCLE
    current = points.group_by("patient_id").agg(anchor=pl.col("date").min())
    found = [current]
    while new_cycle and current.height:
        current = (
            points.join(current, on="patient_id", how="inner")
            .filter(pl.col("date") >= _months(pl.col("anchor"), cycle))
            .group_by("patient_id")
            .agg(anchor=pl.col("date").min())
        )
        found.append(current)
    return pl.concat(found)


def _anchor_of(frame: pl.DataFrame, anchors: pl.DataFrame, key: str, date: str) -> pl.DataFrame:
    """Adds `anchor`: the start of the benefit period the row's date falls in."""
    latest = (
        frame.select(key, "patient_id", date)
        .join(anchors, on="patient_id", how="inner")
        .filter(pl.col("anchor") <= pl.col(date))
        .group_by(key)
        .agg(pl.col("anchor").max())
    )
    return frame.join(latest, on=key, how="left")


def _with_schedule(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Benefit-period month, cadence window and benefit-period end of each visit."""
    p = ctx.params
    cycle = p.as_int("obesity.cycle_months")
    weekly_through = p.as_int("obesity.weekly_through_month")
    other_week_through = p.as_int("obesity.every_other_week_through_month")
    raw_months = (pl.col("date").dt.year() - pl.col("anchor").dt.year()) * MONTHS_PER_YEAR + (
        pl.col("date").dt.month().cast(pl.Int32) - pl.col("anchor").dt.month().cast(pl.Int32)
    )
    whole = (
        pl.when(_months(pl.col("anchor"), pl.col("_raw")) <= pl.col("date"))
        .then(pl.col("_raw"))
        .otherwise(pl.col("_raw") - 1)
    )
    month = pl.col("schedule_month")
    return (
        visits.with_columns(anchor=pl.coalesce("anchor", "date"))
        .with_columns(_raw=raw_months.cast(pl.Int64))
        .with_columns(schedule_month=(whole + 1).cast(pl.Int64))
        .with_columns(
            period_end=_months(pl.col("anchor"), cycle),
            interval_days=pl.when(month <= weekly_through)
            .then(pl.lit(p.as_int("obesity.weekly_interval_days")))
            .when(month <= other_week_through)
            .then(pl.lit(p.as_int("obesity.every_other_week_interval_days")))
            .otherwise(None)
            .cast(pl.Int64),
            month_window_start=_months(pl.col("anchor"), month - 1),
            month_window_end=_months(pl.col("anchor"), month),
            needs_weight_loss=month > other_week_through,
        )
        .drop("_raw")
    )


def _with_weights(ctx: EvalContext, visits: pl.DataFrame) -> pl.DataFrame:
    """Baseline weight (at the first visit) and the 6-month reassessment weight."""
    p = ctx.params
    lookback = p.as_int("obesity.measurement_lookback_months")
    from_months = p.as_int("obesity.reassessment_from_months")
    through_months = p.as_int("obesity.reassessment_through_months")
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
        (pl.col("w_date") <= anchor) & (pl.col("w_date") >= _months(anchor, -lookback)),
        True,
        "base_before",
    )
    after = pick(
        (pl.col("w_date") > anchor) & (pl.col("w_date") < _months(anchor, 1)), False, "base_after"
    )
    reassessed = pick(
        (pl.col("w_date") >= _months(anchor, from_months))
        & (pl.col("w_date") <= _months(anchor, through_months)),
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
            reassessment_from=_months(anchor, from_months),
            reassessment_through=_months(anchor, through_months),
        )
        .drop("base_before", "base_before_date", "base_after", "base_after_date")
        .with_columns(
            weight_loss_kg=(pl.col("baseline_weight") - pl.col("reassessed_weight")).round(3),
            baseline_ref=pl.when(pl.col("baseline_weight_date").is_not_null()).then(
                _ref(WEIGHT_KIND, "baseline_weight_date")
            ),
            reassessed_ref=pl.when(pl.col("reassessed_weight_date").is_not_null()).then(
                _ref(WEIGHT_KIND, "reassessed_weight_date")
            ),
        )
    )


def _in_window(date: str) -> pl.Expr:
    """`date` (of another IBT service) falls in the visit's cadence window.

    Rolling windows (months 1-6) are symmetric: another service less than
    ``interval_days`` before or after the visit. Months 7-12: the same month window.
    """
    other = pl.col(date)
    rolling = (other > pl.col("date") - pl.duration(days=pl.col("interval_days"))) & (
        other < pl.col("date") + pl.duration(days=pl.col("interval_days"))
    )
    monthly = (other >= pl.col("month_window_start")) & (other < pl.col("month_window_end"))
    return pl.when(pl.col("interval_days").is_null()).then(monthly).otherwise(rolling)


def _with_claim_counts(
    candidates: pl.DataFrame, claims: pl.DataFrame, anchors: pl.DataFrame
) -> pl.DataFrame:
    """Claims history in the visit's benefit period and cadence window, and the visit's
    own claim (same code, date and billing NPI: already billed)."""
    claims = _anchor_of(claims, anchors, "claim_id", "claim_date")
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


def _decide_in_order(candidates: pl.DataFrame, rules: Sequence[CodeRule]) -> pl.DataFrame:
    """Counts of what this evaluation bills before each visit, visit by visit in order.

    Pass r takes every patient's r-th visit of the month, adds the visits already billed
    by this evaluation (earlier passes) in its benefit period and cadence window to the
    claims-history counts, and decides whether it bills with the rules' own criteria.
    """
    billed = pl.DataFrame(
        schema={
            "patient_id": pl.String(),
            "anchor": pl.Date(),
            "billed_date": pl.Date(),
            "billed_id": pl.String(),
        }
    )
    bills = pl.lit(False)
    for rule in rules:
        met = pl.all_horizontal([pl.lit(True), *[c.met.fill_null(False) for c in rule.criteria]])
        bills = pl.when(rule.considered.fill_null(False)).then(met).otherwise(bills)
    ranked = candidates.sort("patient_id", "date", "encounter_id").with_columns(
        _rank=pl.int_range(1, pl.len() + 1).over("patient_id")
    )
    passes = int(ranked.select(pl.col("_rank").max().fill_null(0)).item())
    decided: list[pl.DataFrame] = []
    for rank in range(1, passes + 1):
        rows = ranked.filter(pl.col("_rank") == rank)
        earlier = (
            rows.select(
                "encounter_id",
                "patient_id",
                "anchor",
                "date",
                "interval_days",
                "month_window_start",
                "month_window_end",
            )
            .join(billed, on=["patient_id", "anchor"], how="inner")
            .group_by("encounter_id")
            .agg(
                billed_sessions=pl.len().cast(pl.Int64),
                billed_window_ids=pl.col("billed_id").filter(_in_window("billed_date")).sort(),
            )
        )
        rows = (
            rows.join(earlier, on="encounter_id", how="left")
            .with_columns(
                pl.col("billed_sessions").fill_null(0),
                pl.col("billed_window_ids").fill_null(EMPTY_IDS),
            )
            .with_columns(
                period_sessions=pl.col("claim_sessions") + pl.col("billed_sessions"),
                window_ids=pl.concat_list("claim_window_ids", "billed_window_ids"),
            )
            .with_columns(window_visits=pl.col("window_ids").list.len().cast(pl.Int64))
            .with_columns(_bills=bills)
        )
        billed = pl.concat(
            [
                billed,
                rows.filter(pl.col("_bills")).select(
                    "patient_id",
                    "anchor",
                    pl.col("date").alias("billed_date"),
                    pl.col("encounter_id").alias("billed_id"),
                ),
            ]
        )
        decided.append(rows.drop("_bills", "billed_sessions", "billed_window_ids"))
    if not decided:
        return ranked.with_columns(
            period_sessions=pl.col("claim_sessions"),
            window_ids=pl.col("claim_window_ids"),
            window_visits=pl.col("claim_window_ids").list.len().cast(pl.Int64),
        ).drop("_rank")
    return pl.concat(decided).drop("_rank")


def visit_facts(ctx: EvalContext) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(every IBT visit up to the month's end with its own facts, claims, anchors)."""
    visits = _visits(ctx)
    visits = _with_bmi(ctx, visits)
    visits = _with_diagnoses(ctx, visits)
    visits = _with_payer(ctx, visits)
    claims = _claims(ctx)
    own_met = pl.lit(False)
    for code in family_codes(ctx):
        met = pl.all_horizontal([c.met.fill_null(False) for c in _eligibility(ctx, code)])
        own_met = pl.when(pl.col("code") == code).then(met).otherwise(own_met)
    points = pl.concat(
        [
            claims.select("patient_id", pl.col("claim_date").alias("date")),
            visits.filter(own_met).select("patient_id", "date"),
        ]
    ).unique()
    return visits, claims, _anchors(ctx, points)


# --------------------------------------------------------------------------- criteria


def _eligibility(ctx: EvalContext, code: str) -> list[Criterion]:
    """The visit's own criteria (they decide whether an encounter is an IBT visit)."""
    p = ctx.params
    billers = p.as_strs("common.billing_credentials")
    furnishers = [
        *billers,
        *p.as_strs("common.clinical_staff_credentials"),
        *p.as_strs("obesity.incident_to_extra_credentials"),
    ]
    places = p.as_strs("obesity.primary_care_places_of_service")
    min_bmi = float(p["obesity.min_bmi"])
    lookback = p.as_int("obesity.measurement_lookback_months")
    return [
        coverage_criterion(shows=("date", "payer_id")),
        payer_pays_criterion(code),
        Criterion(
            "primary_care_billing_practitioner",
            "billed by a primary-care physician or NPP (primary_care with a billing credential)",
            pl.col("bp_credential").is_in(billers) & pl.col("bp_primary_care"),
            "practitioner_not_qualified",
            ("IBT-S1",),
            detail=pl.when(pl.col("billing_practitioner_id").is_null())
            .then(pl.lit("no billing practitioner: set billing_practitioner_id on the encounter"))
            .otherwise(
                pl.format(
                    "billing practitioner {} ({}, primary_care {}) cannot bill IBT",
                    pl.col("billing_practitioner_id"),
                    pl.col("bp_credential"),
                    pl.col("bp_primary_care"),
                )
            ),
            shows=("billing_practitioner_id", "bp_credential", "bp_primary_care"),
        ),
        Criterion(
            "furnished_by_qualified_person",
            "furnished by the billing practitioner, another practitioner or auxiliary "
            "personnel (clinical staff, registered dietitian) incident to them",
            (pl.col("performer_id") == pl.col("billing_practitioner_id"))
            | pl.col("performer_credential").is_in(furnishers),
            "practitioner_not_qualified",
            ("IBT-S1",),
            detail=pl.format(
                "performer {} ({}) may not furnish IBT",
                pl.col("performer_id"),
                pl.col("performer_credential"),
            ),
            shows=("performer_id", "performer_credential"),
        ),
        Criterion(
            "primary_care_setting",
            f"furnished in a primary care setting (POS {', '.join(places)})",
            pl.col("place_of_service").is_in(places),
            "setting_not_qualifying",
            ("IBT-S1",),
            detail=pl.format(
                "place of service {} is not a primary care setting", pl.col("place_of_service")
            ),
            shows=("place_of_service",),
        ),
        Criterion(
            "bmi",
            f"BMI at least {min_bmi} (latest measured on or before the visit, "
            f"within {lookback} months)",
            pl.col("bmi") >= min_bmi,
            "bmi_below_threshold",
            ("IBT-E1",),
            detail=pl.when(pl.col("bmi").is_null())
            .then(pl.lit(f"no BMI measured in the {lookback} months up to the visit"))
            .otherwise(
                pl.format(
                    "BMI {} measured {} is below {}",
                    pl.col("bmi"),
                    pl.col("bmi_date"),
                    pl.lit(min_bmi),
                )
            ),
            shows=("bmi", "bmi_date", "bmi_code"),
        ),
        Criterion(
            "session_minutes",
            "the session reaches its unit's midpoint (individual 15-minute, group 30-minute)",
            pl.col("minutes") >= pl.col("min_minutes"),
            "time_below_threshold",
            ("TIME-1",),
            detail=pl.format(
                "{} minutes of {} needed for one unit", pl.col("minutes"), pl.col("min_minutes")
            ),
            minutes_needed=(pl.col("min_minutes") - pl.col("minutes")).clip(lower_bound=0),
            shows=("minutes", "min_minutes", "contact_mode"),
        ),
    ]


def _schedule(ctx: EvalContext) -> list[Criterion]:
    """Benefit period, 6-month weight loss, session cap and cadence (IBT-F1, IBT-U1)."""
    p = ctx.params
    cap = p.as_int("obesity.session_cap")
    min_loss = float(p["obesity.min_weight_loss_kg"])
    month = pl.col("schedule_month")
    return [
        Criterion(
            "within_benefit_period",
            "the visit falls in the 12-month benefit period begun at the first IBT visit",
            pl.col("date") < pl.col("period_end"),
            "frequency_limit_reached",
            ("IBT-F1",),
            detail=pl.format(
                "the IBT benefit period that began {} ended {} (setting obesity.after_cycle)",
                pl.col("anchor"),
                pl.col("period_end"),
            ),
            shows=("anchor", "schedule_month", "period_end"),
        ),
        Criterion(
            "six_month_weight_loss",
            f"months 7-12 only after at least {min_loss} kg lost at the 6-month reassessment",
            ~pl.col("needs_weight_loss") | (pl.col("weight_loss_kg") >= min_loss),
            "weight_loss_not_met",
            ("IBT-F1",),
            detail=pl.when(pl.col("baseline_weight").is_null())
            .then(pl.format("no weight measured at the first IBT visit ({})", pl.col("anchor")))
            .when(pl.col("reassessed_weight").is_null())
            .then(
                pl.format(
                    "no weight reassessed between {} and {}",
                    pl.col("reassessment_from"),
                    pl.col("reassessment_through"),
                )
            )
            .otherwise(
                pl.format(
                    "{} kg lost ({} on {} to {} on {}); {} kg needed for month {}",
                    pl.col("weight_loss_kg"),
                    pl.col("baseline_weight"),
                    pl.col("baseline_weight_date"),
                    pl.col("reassessed_weight"),
                    pl.col("reassessed_weight_date"),
                    pl.lit(min_loss),
                    month,
                )
            ),
            shows=(
                "schedule_month",
                "baseline_weight",
                "baseline_weight_date",
                "reassessed_weight",
                "reassessed_weight_date",
                "weight_loss_kg",
            ),
        ),
        Criterion(
            "session_cap",
            f"fewer than {cap} other IBT sessions in the benefit period (both codes)",
            pl.col("period_sessions") < cap,
            "frequency_limit_reached",
            ("IBT-U1",),
            detail=pl.format(
                "{} IBT sessions already in the benefit period that began {}; at most {}",
                pl.col("period_sessions"),
                pl.col("anchor"),
                pl.lit(cap),
            ),
            shows=("anchor", "period_sessions"),
        ),
        Criterion(
            "cadence",
            "month 1 weekly, months 2-6 every other week, months 7-12 once per month window",
            pl.col("window_visits") == 0,
            "too_soon",
            ("IBT-F1",),
            detail=pl.when(pl.col("interval_days").is_null())
            .then(
                pl.format(
                    "month {} of the schedule ({} to {}) already has IBT: {}",
                    month,
                    pl.col("month_window_start"),
                    pl.col("month_window_end"),
                    pl.col("window_ids").list.join(", "),
                )
            )
            .otherwise(
                pl.format(
                    "month {} of the schedule allows one visit per {} days; also: {}",
                    month,
                    pl.col("interval_days"),
                    pl.col("window_ids").list.join(", "),
                )
            ),
            shows=("anchor", "schedule_month", "interval_days", "window_ids"),
        ),
    ]


def visit_rules(ctx: EvalContext) -> list[CodeRule]:
    individual, group = family_codes(ctx)
    evidence = evidence_list(
        "encounter_id",
        "bmi_ref",
        pl.when(pl.col("needs_weight_loss")).then(pl.col("baseline_ref")),
        pl.when(pl.col("needs_weight_loss")).then(pl.col("reassessed_ref")),
    )
    shared = (
        "obesity.min_bmi",
        "obesity.measurement_lookback_months",
        "obesity.primary_care_places_of_service",
        "obesity.session_cap",
        "obesity.min_weight_loss_kg",
        "obesity.cost_sharing_waived",
    )
    rules = []
    for code, part, what in (
        (individual, "individual", "IBT for obesity, individual session"),
        (group, "group", "IBT for obesity, group session"),
    ):
        already = Criterion(
            "not_already_billed",
            "this visit is not already in claims history (same code, date and NPI)",
            pl.col("own_claim_ids").list.len() == 0,
            "already_billed",
            ("IBT-U1",),
            shows=("own_claim_ids",),
        )
        rules.append(
            CodeRule(
                key=f"obesity.{part}",
                code=code,
                family=FAMILY,
                considered=pl.col("code") == code,
                criteria=(already, *_eligibility(ctx, code), *_schedule(ctx)),
                units=pl.lit(1),
                date_of_service=pl.col("date"),
                evidence=evidence,
                rules=RULE_IDS,
                minutes_logged=pl.col("minutes"),
                place_of_service=pl.col("place_of_service"),
                icd10_codes=pl.col("icd10_codes"),
                parameters=(f"obesity.{part}_code", f"obesity.{part}_min_minutes", *shared),
                description=what,
            )
        )
    return rules


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    visits, claims, anchors = visit_facts(ctx)
    candidates = _anchor_of(visits.filter(ctx.in_month("date")), anchors, "encounter_id", "date")
    candidates = _with_schedule(ctx, candidates)
    candidates = _with_weights(ctx, candidates)
    candidates = _with_claim_counts(candidates, claims, anchors)
    rules = visit_rules(ctx)
    facts = _decide_in_order(candidates, rules)
    visit = (pl.col("date"), pl.col("date"))
    return [run_rule_set(ctx, FAMILY, RULE_SET, facts, rules, period=visit)]
