"""The rules of ``mnt.allowance``, the dietitian's work list: the code the patient's next
session would bill (97802 until an initial assessment is billed, else 97803) while the
year's allowance still has a unit's minutes. Always a gap (``short`` while the month is
open) whose detail says how many minutes remain; never a line."""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import evidence_list, time_status
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.mnt.criteria import diagnosis_criteria, payment_criteria
from code_rules.mnt.shared import FAMILY, first_unit_minutes, mnt, year
from code_rules.parameters_typed import Mnt, MntIndividual, MntReferral


def _allowance_used_criterion(ctx: EvalContext, code: str) -> Criterion:
    """Fails whenever the rule is considered (minutes remain): the work list's gap."""
    unit = mnt(ctx).individual.unit_minutes
    first_unit = first_unit_minutes(ctx, unit)
    _, year_end = year(ctx)
    # while the month is open the remaining minutes can be used until the year's end
    deadline = year_end if ctx.as_of <= ctx.end else None
    return Criterion(
        "allowance_used",
        "this year's MNT allowance is used (while minutes remain, the next session bills)",
        pl.col("remaining_minutes") < unit,
        "time_below_threshold",
        ("MNT-H1", "MNT-T1"),
        status=time_status(ctx),
        detail=pl.format(
            "{} of {} minutes of this year's MNT allowance remain ({} used, referral {}); "
            "a session of at least {} minutes bills {}",
            pl.col("remaining_minutes"),
            pl.col("allowance_minutes"),
            pl.col("minutes_used"),
            pl.col("referral_id"),
            pl.lit(first_unit),
            pl.lit(code),
        ),
        minutes_needed=pl.lit(first_unit, dtype=pl.Int64),
        deadline=pl.lit(deadline, dtype=pl.Date),
        shows=("allowance_minutes", "minutes_used", "remaining_minutes"),
    )


def _allowance_rule(
    ctx: EvalContext, key: str, code: str, parameter: str, next_code: pl.Expr
) -> CodeRule:
    """`code` is the next session's, and a unit's minutes remain of the allowance."""
    unit = mnt(ctx).individual.unit_minutes
    return CodeRule(
        key=key,
        code=code,
        family=FAMILY,
        considered=next_code & (pl.col("remaining_minutes") >= unit),
        criteria=(
            *payment_criteria(code, "reference_date"),
            *diagnosis_criteria(ctx, "reference_date"),
            _allowance_used_criterion(ctx, code),
        ),
        units=pl.lit(0),
        date_of_service=pl.lit(None, dtype=pl.Date),
        evidence=evidence_list("referral_id", "encounter_ids", "claim_ids"),
        rules=("MNT-H1", "MNT-R1", "MNT-D1"),
        minutes_logged=pl.col("minutes_logged"),
        icd10_codes=pl.col("qualifying_icd10").list.head(4),
        parameters=(
            parameter,
            Mnt.FIRST_YEAR_MINUTES,
            Mnt.LATER_YEAR_MINUTES,
            MntReferral.CREDENTIALS,
        ),
        description="MNT allowance left this year (work list)",
    )


def allowance_initial_rule(ctx: EvalContext) -> CodeRule:
    """97802 while no initial assessment is billed (claims or this month's sessions)."""
    return _allowance_rule(
        ctx,
        "mnt.allowance.initial",
        mnt(ctx).individual.initial_code,
        MntIndividual.INITIAL_CODE,
        pl.col("next_initial"),
    )


def allowance_followup_rule(ctx: EvalContext) -> CodeRule:
    """97803 once the initial assessment is billed."""
    return _allowance_rule(
        ctx,
        "mnt.allowance.followup",
        mnt(ctx).individual.followup_code,
        MntIndividual.FOLLOWUP_CODE,
        ~pl.col("next_initial"),
    )


def allowance_rules(ctx: EvalContext) -> list[CodeRule]:
    return [allowance_initial_rule(ctx), allowance_followup_rule(ctx)]
