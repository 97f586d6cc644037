"""TCM's code rules: 99496 (high MDM) and 99495 (moderate MDM), each read as one, and the
death-review flags beside them (death_policy bill_and_flag)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import evidence_list
from billing_engine.engine.kernel import STATUS_INFO, CodeRule, Criterion, line_column
from code_rules.parameters_typed import Tcm, typed
from code_rules.tcm.codes import (
    BILL_AND_FLAG,
    FAMILY,
    RULE_IDS,
    SHARED_PARAMETERS,
    Alternative,
    all_met,
    alternatives,
)
from code_rules.tcm.criteria import criteria


def _high_mdm_so_far(ctx: EvalContext) -> pl.Expr:
    high = nz.mdm_rank_of(ctx, typed(ctx.params).tcm.high.min_mdm)
    return pl.col("mdm_rank").fill_null(0) >= high


def high_rule(ctx: EvalContext, high: Alternative) -> CodeRule:
    """99496: considered when the MDM so far is high (interchange semantics 8)."""
    return _code_rule(high, _high_mdm_so_far(ctx), criteria(ctx, high))


def moderate_rule(ctx: EvalContext, high: Alternative, moderate: Alternative) -> CodeRule:
    """99495: considered when the MDM so far is not high; also when the high MDM came
    with a visit (or an as-of date) past the high code's window but inside this one, and
    whenever its criteria are all met (the precedence table picks one)."""
    own = criteria(ctx, moderate)
    when = pl.coalesce("f2f_date", pl.lit(ctx.as_of))
    between = (when > pl.col(high.last_date)) & (when <= pl.col(moderate.last_date))
    return _code_rule(moderate, ~_high_mdm_so_far(ctx) | between | all_met(own), own)


def _code_rule(alt: Alternative, considered: pl.Expr, checks: Sequence[Criterion]) -> CodeRule:
    code = alt.code
    return CodeRule(
        key=f"tcm.{alt.key}",
        code=code.code,
        family=FAMILY,
        considered=considered,
        criteria=tuple(checks),
        units=pl.lit(1),
        date_of_service=pl.col("f2f_date"),
        evidence=evidence_list("discharge_id", "contact_ids", "f2f_id", "med_rec_id", "mdm_ids"),
        rules=RULE_IDS,
        alternative=f"tcm.{alt.key}",
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("icd10_codes"),
        parameters=(code.CODE, code.VISIT_WITHIN_DAYS, code.MIN_MDM, *SHARED_PARAMETERS),
        description=f"transitional care management, {alt.key} MDM",
    )


def discharge_rules(ctx: EvalContext) -> list[CodeRule]:
    """High then moderate, and with death_policy bill_and_flag their death flags."""
    high, moderate = alternatives(ctx)
    rules = [high_rule(ctx, high), moderate_rule(ctx, high, moderate)]
    if typed(ctx.params).tcm.death_policy == BILL_AND_FLAG:
        rules += death_flags(rules)
    return rules


def death_flags(billed: Sequence[CodeRule]) -> list[CodeRule]:
    """With death_policy bill_and_flag: an info gap beside a line whose period ends in
    death, for review or void (TCM-D2)."""
    flags = []
    higher: pl.Expr = pl.lit(False)
    for rule in billed:
        is_line = pl.col(line_column(rule))
        flags.append(
            CodeRule(
                key=f"{rule.key}.death_review",
                code=rule.code,
                family=FAMILY,
                considered=is_line & ~higher & pl.col("died_in_period"),
                criteria=(
                    Criterion(
                        "death_review",
                        "the period did not end in death (flag for review)",
                        pl.lit(False),
                        "patient_died",
                        ("TCM-D2",),
                        status=pl.lit(STATUS_INFO),
                        detail=pl.format(
                            "billed at the visit, but the patient died on {} within the period "
                            "ending {}: review or void",
                            pl.col("death_date"),
                            pl.col("period_end"),
                        ),
                        shows=("death_date", "period_end"),
                    ),
                ),
                units=pl.lit(1),
                date_of_service=pl.col("f2f_date"),
                evidence=rule.evidence,
                rules=("TCM-D2",),
                place_of_service=rule.place_of_service,
                icd10_codes=rule.icd10_codes,
                parameters=(Tcm.DEATH_POLICY,),
                description=f"{rule.description}: death in the period",
            )
        )
        higher = higher | is_line
    return flags
