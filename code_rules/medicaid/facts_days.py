"""Facts of a case-management day (both programs, both unit kinds) and of the days of
states billing per 15 minutes, with units after the state's caps.

One row per patient x program x billing practitioner x date of service with
case-management time logged: its T-code payer (TCODE-1), the state's rules (TCODE-2),
the counted minutes (facts_minutes), contacts and claims history.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.medicaid.facts_common import (
    EMPTY_IDS,
    case_claims,
    with_billing_practitioner,
    with_diagnoses,
    with_t_code_payer,
    with_t_code_pays,
    with_unit_code,
)
from code_rules.medicaid.facts_minutes import DAY_KEYS, day_minutes, units_expr
from code_rules.medicaid.state_table import PER_UNIT, case_codes, programs, with_state_rules
from code_rules.parameters_typed import typed

DAY_CAP_GROUP = ("patient_id", "program", "date")
MONTH_CAP_GROUP = ("patient_id", "program")


def _entries(ctx: EvalContext) -> pl.DataFrame:
    return nz.time_entries(ctx).filter(pl.col("program").is_in(programs(ctx)))


def _days(ctx: EvalContext, entries: pl.DataFrame) -> pl.DataFrame:
    """One row per DAY_KEYS with logged time, its payer and the state's rules."""
    days = entries.group_by(DAY_KEYS).agg(
        minutes_logged=pl.col("minutes").sum().cast(pl.Int64),
        logged_ids=pl.col("encounter_id").sort(),
    )
    days = with_t_code_payer(ctx, days, "date")
    return with_state_rules(ctx, days)


def _classified(entries: pl.DataFrame, days: pl.DataFrame) -> pl.DataFrame:
    """Entries with ``counted`` (the shared time rules let them count) and ``eligible``
    (and their performer's credential is one the state accepts)."""
    return (
        entries.join(
            days.select(*DAY_KEYS, "staff_credentials", "contact_modes"),
            on=DAY_KEYS,
            how="left",
            nulls_equal=True,
        )
        .with_columns(
            counted=pl.col("excluded").is_null() & (pl.col("minutes") > 0),
        )
        .with_columns(
            eligible=pl.col("counted")
            & pl.col("staff_credentials")
            .list.contains(pl.col("performer_credential"))
            .fill_null(False),
        )
    )


def _entry_facts(ctx: EvalContext, entries: pl.DataFrame) -> pl.DataFrame:
    """Per DAY_KEYS: shared-rule and eligible minutes, ids and contacts."""
    ordered = entries.sort("start_min", "encounter_id", nulls_last=True)
    eligible = pl.col("eligible")
    return ordered.group_by(DAY_KEYS).agg(
        shared_counted_minutes=pl.col("minutes").filter(pl.col("counted")).sum().cast(pl.Int64),
        eligible_raw_minutes=pl.col("minutes").filter(eligible).sum().cast(pl.Int64),
        eligible_ids=pl.col("encounter_id").filter(eligible).sort(),
        ineligible_credentials=pl.col("performer_credential")
        .filter(pl.col("counted") & ~eligible)
        .unique()
        .sort(),
        contacts=(
            eligible
            & (pl.col("outcome").is_null() | (pl.col("outcome") != nz.EXCLUDED_FAILED_ATTEMPT))
            & pl.col("contact_modes").list.contains(pl.col("contact_mode")).fill_null(False)
        )
        .sum()
        .cast(pl.Int64),
    )


def day_facts(ctx: EvalContext) -> pl.DataFrame:
    """Every patient x program x billing practitioner x day with case-management time,
    with its payer, state rules, minutes, units and claims history (all programs and
    unit kinds; the rules pick theirs)."""
    return ctx.memo.frame("medicaid.days", lambda: _day_facts(ctx))


def _day_facts(ctx: EvalContext) -> pl.DataFrame:
    entries = _entries(ctx)
    days = _days(ctx, entries)
    classified = _classified(entries, days)
    facts = (
        days.join(_entry_facts(ctx, classified), on=DAY_KEYS, how="left", nulls_equal=True)
        .join(day_minutes(ctx, classified), on=DAY_KEYS, how="left", nulls_equal=True)
        .with_columns(
            pl.col("shared_counted_minutes", "eligible_raw_minutes", "contacts").fill_null(0),
            pl.col("counted_minutes", "dual_minutes").fill_null(0),
            pl.col("eligible_ids", "ineligible_credentials").fill_null(EMPTY_IDS),
        )
    )
    facts = nz.monthly_place_of_service(ctx, with_billing_practitioner(ctx, facts), "eligible_ids")
    return facts


def _with_day_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Claims of the day's code this month: same day by this NPI, units that day, in month."""
    claims = case_claims(ctx)
    indexed = facts.select("patient_id", "code", "date", "bp_npi").with_row_index("_row")
    joined = (
        indexed.join(claims, on=["patient_id", "code"], how="inner")
        .group_by("_row")
        .agg(
            same_day_own=(
                (pl.col("date_of_service") == pl.col("date"))
                & (pl.col("billing_npi") == pl.col("bp_npi"))
            ).any(),
            claimed_units_day=pl.col("units")
            .filter(pl.col("date_of_service") == pl.col("date"))
            .sum(),
            claimed_units_month=pl.col("units").sum(),
        )
    )
    return (
        facts.with_row_index("_row")
        .join(joined, on="_row", how="left")
        .drop("_row")
        .with_columns(
            pl.col("same_day_own").fill_null(False),
            pl.col("claimed_units_day", "claimed_units_month").fill_null(0).cast(pl.Int64),
        )
    )


def daily_facts(ctx: EvalContext) -> pl.DataFrame:
    """The days of states billing per 15 minutes, with units after the caps."""
    unit = typed(ctx.params).medicaid.unit_minutes
    facts = day_facts(ctx).filter(pl.col("unit") == PER_UNIT)
    facts = with_unit_code(ctx, facts)
    facts = _with_day_claims(ctx, facts)
    facts = with_t_code_pays(ctx, facts, case_codes(ctx), "date")
    facts = with_diagnoses(ctx, facts)
    codes = case_codes(ctx)
    pays = pl.coalesce(
        *[pl.when(pl.col("code") == code).then(pl.col(f"pays:{code}")) for code in codes]
    )
    ready = (
        pl.col("billing_practitioner_id").is_not_null()
        & pl.col("billing_credentials").list.contains(pl.col("bp_credential")).fill_null(False)
        & pl.col("payer_id").is_not_null()
        & pays.fill_null(False)
        & ~pl.col("same_day_own")
        & (pl.col("counted_minutes") >= pl.col("first_unit_minutes"))
    )
    facts = facts.with_columns(raw_units=units_expr("counted_minutes", unit))
    facts = facts.with_columns(ready_units=pl.when(ready).then(pl.col("raw_units")).otherwise(0))
    return _with_caps(facts)


def _with_caps(facts: pl.DataFrame) -> pl.DataFrame:
    """Units after the state's caps, filled day by day in date then billing-practitioner
    order: the day's cap over the lines of the patient's program that day, then the
    month's over its days (each cap less the units already claimed; a null cap is none).
    A line that is not ready (a criterion other than a cap fails) uses no units."""
    day = pr.Cap("day", pl.col("max_units_per_day"), prior="claimed_units_day")
    month = pr.Cap("month", pl.col("max_units_per_month"), prior="claimed_units_month")
    facts = _renamed(
        pr.frequency_cap(
            facts,
            [day],
            group=DAY_CAP_GROUP,
            order=("billing_practitioner_id",),
            units="ready_units",
            keep_order="sorted",
        ),
        "day",
        {"room": "day_cap_left", "earlier": "units_day_before", "granted": "day_units"},
    )
    return _renamed(
        pr.frequency_cap(
            facts,
            [month],
            group=MONTH_CAP_GROUP,
            order=("date", "billing_practitioner_id"),
            units="day_units",
            keep_order="sorted",
        ),
        "month",
        {"room": "month_cap_left", "earlier": "units_month_before", "granted": "units"},
    )


CAP_COLUMNS = ("prior", "earlier", "used", "room", "within", "granted")


def _renamed(capped: pl.DataFrame, cap: str, names: dict[str, str]) -> pl.DataFrame:
    """`frequency_cap`'s columns of `cap` under this family's names (the rest dropped)."""
    return capped.rename({f"{cap}_{k}": v for k, v in names.items()}).drop(
        [f"{cap}_{k}" for k in CAP_COLUMNS if k not in names] + ["cap_rank"]
    )
