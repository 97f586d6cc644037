"""The monthly case-management codes (T2022 case management, T2023 targeted case
management): one line per patient x program x billing practitioner x payer for the
month, in states whose rules bill the program monthly. The state's monthly minimum of
qualifying contacts and of counted minutes must both be reached; the date of service is
the day they were (or the month's end, ``common.date_of_service_rule``).
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import evidence_list, not_billed_by_other_criterion
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.medicaid.criteria import (
    RULE_IDS,
    STATE_RULES,
    minutes_short,
    not_already_billed,
    payer_criteria,
    practitioner_criteria,
    staff_criterion,
    time_status,
)
from code_rules.medicaid.state_table import FAMILY, Program, case_programs
from code_rules.parameters_typed import Common, Medicaid, typed


def _contacts(status: pl.Expr, deadline: pl.Expr) -> Criterion:
    return Criterion(
        "monthly_contacts",
        "the state's minimum of qualifying contacts in the month",
        pl.col("contacts") >= pl.col("monthly_min_contacts"),
        "time_below_threshold",
        STATE_RULES,
        status=status,
        detail=pl.format(
            "{} of {} qualifying contact(s) this month ({} rules)",
            pl.col("contacts"),
            pl.col("monthly_min_contacts"),
            pl.col("state_key"),
        ),
        deadline=deadline,
        shows=("contacts", "monthly_min_contacts"),
    )


def _minutes(status: pl.Expr, deadline: pl.Expr) -> Criterion:
    return Criterion(
        "monthly_minutes",
        "the state's minimum of counted minutes in the month",
        pl.col("counted_minutes") >= pl.col("monthly_min_minutes"),
        "time_below_threshold",
        STATE_RULES,
        status=status,
        detail=pl.format(
            "{} of {} minutes counted this month ({} rules)",
            pl.col("counted_minutes"),
            pl.col("monthly_min_minutes"),
            pl.col("state_key"),
        ),
        minutes_needed=minutes_short("monthly_min_minutes", "counted_minutes"),
        deadline=deadline,
        shows=("counted_minutes", "dual_minutes", "monthly_min_minutes"),
    )


def monthly_rule(ctx: EvalContext, program: Program) -> CodeRule:
    """The program's monthly code for one month's contacts and counted minutes."""
    name, code = program.params.program, program.params.monthly_code
    status, deadline = time_status(ctx, pl.lit(ctx.end))
    month_end = typed(ctx.params).common.date_of_service_rule == "month_end"
    return CodeRule(
        key=f"medicaid.{program.key}.monthly",
        code=code,
        family=FAMILY,
        considered=pl.col("program") == name,
        criteria=(
            *practitioner_criteria(),
            *payer_criteria(code),
            staff_criterion(),
            not_billed_by_other_criterion(
                "no other NPI billed this monthly code for the patient this month", STATE_RULES
            ),
            not_already_billed(
                ~pl.col("own_claims"),
                "this monthly code is not already billed for the month (claims history)",
                shows=("own_claims",),
            ),
            _contacts(status, deadline),
            _minutes(status, deadline),
        ),
        units=pl.lit(1),
        date_of_service=pl.lit(ctx.end) if month_end else pl.col("met_date"),
        evidence=evidence_list("eligible_ids", "place_of_service_evidence"),
        rules=RULE_IDS,
        minutes_logged=pl.col("minutes_logged"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("icd10_codes"),
        parameters=(
            program.params.MONTHLY_CODE,
            Medicaid.DUAL_ELIGIBLE_OVERLAP,
            Common.MONTHLY_PLACE_OF_SERVICE,
        ),
        description=f"{name}, per month (state minimum of contacts and minutes)",
    )


def monthly_rules(ctx: EvalContext) -> list[CodeRule]:
    """Case management, then targeted case management."""
    return [monthly_rule(ctx, program) for program in case_programs(ctx)]
