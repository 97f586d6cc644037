"""The Medicaid nursing codes: T1001 (nursing assessment, per visit), T1002 (RN services)
and T1003 (LPN services), per 15 minutes. One line per nurse visit of a Medicaid-primary
patient in a state whose table enables the nursing codes (off by default); the three
are alternatives of one visit (``medicaid.nursing`` in code_rules/conflicts.yaml).
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import evidence_list
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.medicaid.criteria import (
    NURSING_RULE_IDS,
    PAYER_RULES,
    TIME_RULES,
    minutes_short,
    not_already_billed,
    practitioner_criteria,
)
from code_rules.medicaid.state_table import FAMILY, NURSE_FLAG
from code_rules.parameters_typed import Medicaid, MedicaidNursing, typed

ALTERNATIVE = "medicaid.nursing"


def _enabled() -> pl.Expr:
    """The visit's state enables the nursing codes and Medicaid is the primary coverage."""
    return pl.col(NURSE_FLAG).fill_null(False) & pl.col("medicaid_primary")


def _criteria(code: str) -> list[Criterion]:
    """What every nursing code needs: a billing practitioner the state accepts, a payer
    that pays the code and no claim of it on the visit's date under this NPI."""
    return [
        *practitioner_criteria(),
        pr.payer_pays_criterion(code, PAYER_RULES),
        not_already_billed(
            ~pl.col("billed_codes").list.contains(code),
            "this code is not already billed for the visit's date under this NPI",
            shows=("billed_codes",),
        ),
    ]


def _first_unit() -> Criterion:
    """A timed nursing code: the visit's minutes reach the state's first unit."""
    return Criterion(
        "time_threshold",
        "the visit's minutes reach the first unit under the state's unit rule",
        pl.col("visit_minutes") >= pl.col("first_unit_minutes"),
        "time_below_threshold",
        TIME_RULES,
        detail=pl.format(
            "{} of {} minutes ({} unit rule)",
            pl.col("visit_minutes"),
            pl.col("first_unit_minutes"),
            pl.col("unit_rule"),
        ),
        minutes_needed=minutes_short("first_unit_minutes", "visit_minutes"),
        shows=("visit_minutes", "unit_rule"),
    )


def _rule(
    name: str,
    code: str,
    code_parameter: str,
    which: pl.Expr,
    criteria: list[Criterion],
    units: pl.Expr,
) -> CodeRule:
    return CodeRule(
        key=f"medicaid.nursing.{name}",
        code=code,
        family=FAMILY,
        considered=_enabled() & which,
        criteria=tuple(criteria),
        units=units,
        date_of_service=pl.col("date"),
        evidence=evidence_list("encounter_id"),
        rules=NURSING_RULE_IDS,
        alternative=ALTERNATIVE,
        minutes_logged=pl.col("visit_minutes"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("icd10_codes"),
        parameters=(code_parameter, Medicaid.UNIT_MINUTES),
        description=f"Medicaid nursing ({name}) for a nurse visit",
    )


def assessment_rule(ctx: EvalContext) -> CodeRule:
    """T1001: an assessment visit by an RN or LPN, one unit whatever its length."""
    code = typed(ctx.params).medicaid.nursing.assessment_code
    which = pl.col("is_assessment") & (pl.col("is_rn") | pl.col("is_lpn"))
    return _rule(
        "assessment", code, MedicaidNursing.ASSESSMENT_CODE, which, _criteria(code), pl.lit(1)
    )


def rn_rule(ctx: EvalContext) -> CodeRule:
    """T1002: an RN's visit (not an assessment), per unit of its minutes."""
    code = typed(ctx.params).medicaid.nursing.rn_code
    which = ~pl.col("is_assessment") & pl.col("is_rn")
    criteria = [*_criteria(code), _first_unit()]
    return _rule("rn", code, MedicaidNursing.RN_CODE, which, criteria, pl.col("units"))


def lpn_rule(ctx: EvalContext) -> CodeRule:
    """T1003: an LPN's visit (not an assessment), per unit of its minutes."""
    code = typed(ctx.params).medicaid.nursing.lpn_code
    which = ~pl.col("is_assessment") & pl.col("is_lpn")
    criteria = [*_criteria(code), _first_unit()]
    return _rule("lpn", code, MedicaidNursing.LPN_CODE, which, criteria, pl.col("units"))


def nursing_rules(ctx: EvalContext) -> list[CodeRule]:
    return [assessment_rule(ctx), rn_rule(ctx), lpn_rule(ctx)]
