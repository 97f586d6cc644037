"""The 15-minute case-management codes (T1016 case management, T1017 targeted case
management): one line per patient x program x billing practitioner x date of service,
in states whose rules bill the program per 15 minutes. Units are the day's counted
minutes under the state's unit rule, within the state's daily and monthly caps.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import evidence_list
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.medicaid.criteria import (
    RULE_IDS,
    STATE_RULES,
    TIME_RULES,
    minutes_short,
    not_already_billed,
    payer_criteria,
    practitioner_criteria,
    staff_criterion,
    time_status,
)
from code_rules.medicaid.state_table import FAMILY, Program, case_programs
from code_rules.parameters_typed import Common, Medicaid, typed


def _daily_cap() -> Criterion:
    return Criterion(
        "daily_cap",
        "the state's daily unit cap is not used up by other lines of the day",
        pl.col("day_cap_left").is_null() | (pl.col("units_day_before") < pl.col("day_cap_left")),
        "frequency_limit_reached",
        STATE_RULES,
        detail=pl.format(
            "{} unit(s) a day at most ({} rules)",
            pl.col("max_units_per_day"),
            pl.col("state_key"),
        ),
        shows=("max_units_per_day", "claimed_units_day", "units_day_before"),
    )


def _monthly_cap() -> Criterion:
    return Criterion(
        "monthly_cap",
        "the state's monthly unit cap is not used up by claims or earlier days",
        pl.col("month_cap_left").is_null()
        | (pl.col("units_month_before") < pl.col("month_cap_left")),
        "frequency_limit_reached",
        STATE_RULES,
        detail=pl.format(
            "{} unit(s) a month at most ({} rules); {} billed before this day",
            pl.col("max_units_per_month"),
            pl.col("state_key"),
            pl.col("units_month_before") + pl.col("claimed_units_month"),
        ),
        shows=("max_units_per_month", "claimed_units_month", "units_month_before"),
    )


def _first_unit(ctx: EvalContext) -> Criterion:
    status, deadline = time_status(ctx, pl.col("date"))
    return Criterion(
        "time_threshold",
        "the day's counted minutes reach the first unit under the state's unit rule",
        pl.col("counted_minutes") >= pl.col("first_unit_minutes"),
        "time_below_threshold",
        TIME_RULES,
        status=status,
        detail=pl.format(
            "{} of {} minutes counted on the day ({} unit rule; {} minute(s) left to "
            "a program that takes precedence)",
            pl.col("counted_minutes"),
            pl.col("first_unit_minutes"),
            pl.col("unit_rule"),
            pl.col("dual_minutes"),
        ),
        minutes_needed=minutes_short("first_unit_minutes", "counted_minutes"),
        deadline=deadline,
        shows=("counted_minutes", "dual_minutes", "unit_rule", "raw_units"),
    )


def unit_rule(ctx: EvalContext, program: Program) -> CodeRule:
    """The program's 15-minute code for one day's counted minutes."""
    name, code = program.params.program, program.params.unit_code
    unit = typed(ctx.params).medicaid.unit_minutes
    return CodeRule(
        key=f"medicaid.{program.key}.unit",
        code=code,
        family=FAMILY,
        considered=pl.col("program") == name,
        criteria=(
            *practitioner_criteria(),
            *payer_criteria(code),
            staff_criterion(),
            not_already_billed(
                ~pl.col("same_day_own"),
                "this code is not already billed for the day under this NPI (claims history)",
                shows=("claimed_units_day",),
            ),
            _daily_cap(),
            _monthly_cap(),
            _first_unit(ctx),
        ),
        units=pl.col("units"),
        date_of_service=pl.col("date"),
        evidence=evidence_list("eligible_ids", "place_of_service_evidence"),
        rules=RULE_IDS,
        minutes_logged=pl.col("minutes_logged"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("icd10_codes"),
        parameters=(
            program.params.UNIT_CODE,
            Medicaid.UNIT_MINUTES,
            Medicaid.UNIT_RULE_OVERRIDE,
            Medicaid.DUAL_ELIGIBLE_OVERLAP,
            Common.MONTHLY_PLACE_OF_SERVICE,
        ),
        description=f"{name}, per {unit}-minute unit on the day's minutes",
    )


def daily_rules(ctx: EvalContext) -> list[CodeRule]:
    """Case management, then targeted case management."""
    return [unit_rule(ctx, program) for program in case_programs(ctx)]
