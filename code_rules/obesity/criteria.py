"""IBT criteria, in the order their reasons take precedence: the visit's own (who, where,
BMI, minutes: they decide whether an encounter is an IBT visit at all) and the
schedule's (benefit period, weight loss, session cap, cadence). The auditor's page; the
joins are in facts_*.py."""

from __future__ import annotations

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import Criterion
from code_rules.obesity.codes import COST_SHARING_RULE_IDS
from code_rules.parameters_typed import typed

SESSION_CAP, CADENCE = "session_cap", "cadence"  # the two frequency caps' criteria


def _month_span(first: int, last: int) -> str:
    """``month 1`` or ``months 2-6``: schedule months in words."""
    return f"month {first}" if first == last else f"months {first}-{last}"


def eligibility(ctx: EvalContext, code: str) -> list[Criterion]:
    """The visit's own criteria (they decide whether an encounter is an IBT visit)."""
    rp = typed(ctx.params)
    obesity = rp.obesity
    billers = rp.common.billing_credentials
    furnishers = [
        *billers,
        *rp.common.clinical_staff_credentials,
        *obesity.incident_to_extra_credentials,
    ]
    places = obesity.primary_care_places_of_service
    min_bmi = obesity.min_bmi
    lookback = obesity.measurement_lookback_months
    individual, group = obesity.individual_min_minutes, obesity.group_min_minutes
    return [
        pr.coverage_criterion(COST_SHARING_RULE_IDS, ("date", "payer_id")),
        pr.payer_pays_criterion(code, COST_SHARING_RULE_IDS),
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
            f"the session reaches its unit's midpoint ({individual} minutes individual, "
            f"{group} minutes group)",
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


def schedule(ctx: EvalContext) -> list[Criterion]:
    """Benefit period, 6-month weight loss, session cap and cadence (IBT-F1, IBT-U1)."""
    obesity = typed(ctx.params).obesity
    cap = obesity.session_cap
    min_loss = obesity.min_weight_loss_kg
    cycle = obesity.cycle_months
    weekly_through = obesity.weekly_through_month
    other_week_through = obesity.every_other_week_through_month
    reassessed_at = obesity.reassessment_through_months
    monthly = _month_span(other_week_through + 1, cycle)
    month = pl.col("schedule_month")
    return [
        Criterion(
            "within_benefit_period",
            f"the visit falls in the {cycle}-month benefit period begun at the first IBT visit",
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
            f"{monthly} only after at least {min_loss} kg lost at the {reassessed_at}-month "
            "reassessment",
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
            SESSION_CAP,
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
            CADENCE,
            f"{_month_span(1, weekly_through)} weekly, "
            f"{_month_span(weekly_through + 1, other_week_through)} every other week, "
            f"{monthly} once per month window",
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
