"""The rules of ``mnt.sessions``: one per code, each read as one.

A session's units within the year's allowance bill its base code (97802 initial
assessment, 97803 re-assessment, 97804 group); the units beyond it bill the
additional-hours code (G0270 individual, G0271 group) with a physician's
additional-hours referral, else they are a gap. Once the allowance is used and such a
referral is on file the whole session takes the additional-hours route.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import evidence_list
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.mnt.criteria import (
    additional_referral_criterion,
    diagnosis_criteria,
    hours_criterion,
    payment_criteria,
    practitioner_criteria,
    referral_criterion,
    same_day_criteria,
    time_criterion,
)
from code_rules.mnt.shared import FAMILY, INDIVIDUAL, RULE_IDS, mnt
from code_rules.parameters_typed import Mnt, MntGroup, MntIndividual, MntReferral

COMMON_PARAMETERS = (
    MntIndividual.UNIT_MINUTES,
    MntGroup.UNIT_MINUTES,
    Mnt.UNIT_ROUNDING,
    Mnt.FIRST_YEAR_MINUTES,
    Mnt.LATER_YEAR_MINUTES,
    MntReferral.CREDENTIALS,
    Mnt.FURNISHER_CREDENTIALS,
)


def _individual() -> pl.Expr:
    return pl.col("mode") == INDIVIDUAL


def _additional_route() -> pl.Expr:
    """The allowance is used and an additional-hours referral of the year is on file."""
    return pl.col("additional_route")


def _base_rule(
    ctx: EvalContext, key: str, code: str, parameter: str, considered: pl.Expr, description: str
) -> CodeRule:
    """A base code: the session's units within the year's allowance."""
    criteria: tuple[Criterion, ...] = (
        *practitioner_criteria(ctx),
        *payment_criteria(code, "date"),
        *diagnosis_criteria(ctx, "date"),
        referral_criterion(ctx),
        *same_day_criteria(),
        hours_criterion(ctx),
        time_criterion(ctx),
    )
    return CodeRule(
        key=key,
        code=code,
        family=FAMILY,
        considered=considered & ~_additional_route(),
        criteria=criteria,
        units=pl.col("allowance_units"),
        date_of_service=pl.col("date"),
        evidence=evidence_list("encounter_ids", "referral_id", "claim_ids"),
        rules=RULE_IDS,
        minutes_logged=pl.col("minutes"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("qualifying_icd10").list.head(4),
        parameters=(parameter, *COMMON_PARAMETERS, Mnt.INITIAL_ASSESSMENT_SCOPE),
        description=description,
    )


def _additional_rule(
    ctx: EvalContext, key: str, code: str, parameter: str, mode: pl.Expr, description: str
) -> CodeRule:
    """An additional-hours code: the whole session on the additional-hours route, or the
    units of a session beyond what remained of the allowance."""
    beyond_part = (
        ~_additional_route() & (pl.col("remaining_units") > 0) & (pl.col("overflow_units") > 0)
    )
    criteria: tuple[Criterion, ...] = (
        *practitioner_criteria(ctx),
        *payment_criteria(code, "date"),
        *diagnosis_criteria(ctx, "date"),
        additional_referral_criterion(ctx),
        *same_day_criteria(),
        time_criterion(ctx),
    )
    return CodeRule(
        key=key,
        code=code,
        family=FAMILY,
        considered=mode & (_additional_route() | beyond_part),
        criteria=criteria,
        units=pl.col("overflow_units"),
        date_of_service=pl.col("date"),
        evidence=evidence_list("encounter_ids", "change_referral_id", "referral_id", "claim_ids"),
        rules=RULE_IDS,
        minutes_logged=pl.col("minutes"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("qualifying_icd10").list.head(4),
        parameters=(parameter, *COMMON_PARAMETERS, MntReferral.ADDITIONAL_HOURS_REASON),
        description=description,
    )


def individual_initial_rule(ctx: EvalContext) -> CodeRule:
    """97802: the patient's first billable individual session (unless already claimed)."""
    return _base_rule(
        ctx,
        "mnt.individual.initial",
        mnt(ctx).individual.initial_code,
        MntIndividual.INITIAL_CODE,
        _individual() & pl.col("initial"),
        "individual MNT, initial assessment",
    )


def individual_followup_rule(ctx: EvalContext) -> CodeRule:
    """97803: every other individual session."""
    return _base_rule(
        ctx,
        "mnt.individual.followup",
        mnt(ctx).individual.followup_code,
        MntIndividual.FOLLOWUP_CODE,
        _individual() & ~pl.col("initial"),
        "individual MNT, re-assessment",
    )


def group_rule(ctx: EvalContext) -> CodeRule:
    """97804: a group session."""
    return _base_rule(
        ctx,
        "mnt.group",
        mnt(ctx).group.code,
        MntGroup.CODE,
        ~_individual(),
        "group MNT",
    )


def individual_additional_rule(ctx: EvalContext) -> CodeRule:
    """G0270: additional hours of an individual session."""
    return _additional_rule(
        ctx,
        "mnt.individual.additional",
        mnt(ctx).individual.additional_code,
        MntIndividual.ADDITIONAL_CODE,
        _individual(),
        "individual MNT, additional hours (change in condition)",
    )


def group_additional_rule(ctx: EvalContext) -> CodeRule:
    """G0271: additional hours of a group session."""
    return _additional_rule(
        ctx,
        "mnt.group.additional",
        mnt(ctx).group.additional_code,
        MntGroup.ADDITIONAL_CODE,
        ~_individual(),
        "group MNT, additional hours (change in condition)",
    )


def session_rules(ctx: EvalContext) -> list[CodeRule]:
    return [
        individual_initial_rule(ctx),
        individual_followup_rule(ctx),
        group_rule(ctx),
        individual_additional_rule(ctx),
        group_additional_rule(ctx),
    ]
