"""Chronic care management: the monthly codes and the G0506 initiating add-on.

Every code, threshold and cap comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. Two rule sets:

- ``ccm.monthly``: one candidate per patient x billing practitioner x month (anyone
  with CCM time logged that month or a valid CCM consent naming the practitioner).
  Staff CCM (base + add-on), the practitioner's own CCM (base + add-on) and complex
  CCM (base + add-on). Which alternative is billed is settled afterwards by the
  precedence table (code_rules/conflicts.yaml).
- ``ccm.g0506``: one candidate per visit whose cpt requests G0506.

The alternatives (code pairs) are in ``alternatives.py``, the facts (the joins) in
``facts.py``; this file holds the criteria and the rules.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    chronic_conditions_criterion,
    consent_criteria,
    evidence_list,
    minutes_criterion,
    not_billed_by_other_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.ccm.alternatives import Alternative, addon_units, alternatives, family_codes
from code_rules.ccm.facts import g0506_facts, monthly_facts
from code_rules.parameters_typed import typed

__all__ = [
    "FAMILY",
    "Alternative",
    "alternatives",
    "evaluate",
    "family_codes",
    "g0506_facts",
    "g0506_rules",
    "monthly_facts",
    "monthly_rules",
]

FAMILY = "ccm"
IDENTITY = ("patient_id", "billing_practitioner_id", "payer_id")
SHARED_RULE_IDS = ("CCM-D1", "CCM-C1", "CCM-CP1", "CCM-I1", "CCM-B1", "TIME-3", "TIME-4", "TIME-8")
G0506_PAYER_RULE_IDS = ("G0506-$",)  # coverage and payer pays feed the cost sharing


def _eligibility(ctx: EvalContext, alt: Alternative) -> list[Criterion]:
    """Criteria every monthly base code shares, in the order their reasons take precedence."""
    code = alt.code.base_code
    rp = typed(ctx.params)
    program = rp.ccm.consent_program
    billers = rp.common.billing_credentials
    minimum = rp.ccm.min_chronic_conditions
    return [
        pr.billing_practitioner_known_criterion(
            ("CCM-B1",),
            "no billing practitioner: set billing_practitioner_id or name one on the consent",
        ),
        pr.billing_practitioner_qualified_criterion(
            ("CCM-B1",), billers, "the billing practitioner is a physician or NPP who may bill CCM"
        ),
        pr.coverage_criterion(alt.payer_rule_ids, shows=("reference_date", "payer_id")),
        pr.payer_pays_criterion(code, alt.payer_rule_ids),
        *consent_criteria(program, ("CCM-C1", "TIME-8")),
        chronic_conditions_criterion(minimum, ("CCM-D1",)),
        Criterion(
            "care_plan",
            "a comprehensive care plan established on or before the month's end",
            pl.col("care_plan_id").is_not_null(),
            "care_plan_missing",
            ("CCM-CP1",),
            shows=("care_plan_id", "care_plan_date"),
        ),
        Criterion(
            "initiating_visit",
            "seen by the billing practitioner within the look-back before consent, "
            "or an initiating visit since",
            pl.col("initiating_visit_date").is_not_null(),
            "initiating_visit_missing",
            ("CCM-I1",),
            shows=("initiating_visit_id", "initiating_visit_date"),
        ),
        not_billed_by_other_criterion(
            "no other practitioner billed CCM for the patient this month", ("CCM-B1",), "CCM"
        ),
        pr.not_already_billed_criterion(
            ~pl.col("own_claim_codes").list.contains(code),
            "this code is not already billed for the month (claims history)",
            ("CCM-U1",),
            shows=("own_claim_codes",),
        ),
    ]


def monthly_rules(ctx: EvalContext) -> list[CodeRule]:
    staff, practitioner, complex_ccm = alternatives(ctx)
    return [
        *_staff_rules(ctx, staff),
        *_practitioner_rules(ctx, practitioner),
        *_complex_rules(ctx, complex_ccm),
    ]


def _staff_rules(ctx: EvalContext, alt: Alternative) -> list[CodeRule]:
    """Staff CCM: every candidate is considered; anyone's CCM minutes count."""
    evidence = _evidence(alt)
    return [
        _base_rule(ctx, alt, pl.lit(True), evidence, ()),
        _addon_rule(ctx, alt, evidence),
    ]


def _practitioner_rules(ctx: EvalContext, alt: Alternative) -> list[CodeRule]:
    """The practitioner's own CCM: considered once the practitioner logged CCM minutes."""
    evidence = _evidence(alt)
    return [
        _base_rule(ctx, alt, pl.col(alt.minutes) > 0, evidence, ()),
        _addon_rule(ctx, alt, evidence),
    ]


def _complex_rules(ctx: EvalContext, alt: Alternative) -> list[CodeRule]:
    """Complex CCM: considered with the practitioner's moderate or high MDM that month, or a
    care plan revised this month with complex CCM's minutes; both are then required."""
    min_rank = nz.mdm_rank_of(ctx, typed(ctx.params).ccm.complex.min_mdm)
    considered = (pl.col("mdm_rank").fill_null(0) >= min_rank) | (
        pl.col("revised_plan_id").is_not_null()
        & (pl.col(alt.minutes) >= alt.code.threshold_minutes)
    )
    evidence = _evidence(alt, "revised_plan_id", "mdm_ids")
    complexity = (
        Criterion(
            "mdm",
            "moderate or high medical decision making by the billing practitioner this month",
            pl.col("mdm_rank") >= min_rank,
            "mdm_insufficient",
            ("CCCM-M1",),
            shows=("mdm_rank",),
        ),
        Criterion(
            "care_plan_revised",
            "the care plan was established or substantially revised this month",
            pl.col("revised_plan_id").is_not_null(),
            "care_plan_not_revised",
            ("CCCM-M1",),
            shows=("revised_plan_id", "revised_plan_date"),
        ),
    )
    return [
        _base_rule(ctx, alt, considered, evidence, complexity),
        _addon_rule(ctx, alt, evidence),
    ]


def _evidence(alt: Alternative, *extra: str) -> pl.Expr:
    """The counted time entries, consent and care plan (+ `extra`), then the POS evidence."""
    return evidence_list(
        f"{alt.minutes}_ids", "consent_id", "care_plan_id", *extra, f"{alt.minutes}_pos_evidence"
    )


def _base_rule(
    ctx: EvalContext,
    alt: Alternative,
    considered: pl.Expr,
    evidence: pl.Expr,
    extra: tuple[Criterion, ...],
) -> CodeRule:
    """The month's base code: eligibility, `extra`, then the threshold minutes."""
    code = alt.code
    rp = typed(ctx.params)
    return CodeRule(
        key=f"ccm.{alt.key}.base",
        code=code.base_code,
        family=FAMILY,
        considered=considered,
        criteria=(
            *_eligibility(ctx, alt),
            *extra,
            minutes_criterion(
                ctx, alt.minutes, pl.lit(code.threshold_minutes), alt.rule_ids, alt.what
            ),
        ),
        units=pl.lit(1),
        date_of_service=pl.col(f"{alt.key}_base_date"),
        evidence=evidence,
        rules=(*alt.rule_ids, *SHARED_RULE_IDS),
        alternative=f"ccm.{alt.key}",
        minutes_logged=pl.col("minutes_logged"),
        place_of_service=pl.col(f"{alt.minutes}_pos"),
        icd10_codes=pl.col("chronic_icd10").list.head(nz.MAX_CLAIM_DIAGNOSES),
        parameters=(
            code.BASE_CODE,
            code.THRESHOLD_MINUTES,
            rp.ccm.MIN_CHRONIC_CONDITIONS,
            rp.common.MONTHLY_PLACE_OF_SERVICE,
        ),
        description=f"{alt.key} CCM base code",
    )


def _addon_rule(ctx: EvalContext, alt: Alternative, evidence: pl.Expr) -> CodeRule:
    """The add-on: a line for the base code, then one unit per full step beyond it (capped)."""
    code = alt.code
    addon_code = code.addon_code
    needed = pl.lit(code.threshold_minutes + code.addon_step_minutes)
    return CodeRule(
        key=f"ccm.{alt.key}.addon",
        code=addon_code,
        family=FAMILY,
        considered=pl.col(f"ccm.{alt.key}.base:line"),
        criteria=(
            pr.payer_pays_criterion(addon_code, alt.payer_rule_ids),
            pr.not_already_billed_criterion(
                ~pl.col("own_claim_codes").list.contains(addon_code),
                "this code is not already billed for the month (claims history)",
                ("CCM-U1",),
                shows=("own_claim_codes",),
            ),
            minutes_criterion(ctx, alt.minutes, needed, alt.rule_ids, alt.what),
        ),
        units=addon_units(alt),
        date_of_service=pl.col(f"{alt.key}_addon_date"),
        evidence=evidence,
        rules=(*alt.rule_ids, *SHARED_RULE_IDS),
        alternative=f"ccm.{alt.key}",
        base_key=f"ccm.{alt.key}.base",
        minutes_logged=pl.col("minutes_logged"),
        place_of_service=pl.col(f"{alt.minutes}_pos"),
        icd10_codes=pl.col("chronic_icd10").list.head(nz.MAX_CLAIM_DIAGNOSES),
        parameters=(
            code.ADDON_CODE,
            code.THRESHOLD_MINUTES,
            code.ADDON_STEP_MINUTES,
            code.ADDON_MAX_UNITS,
            typed(ctx.params).common.MONTHLY_PLACE_OF_SERVICE,
        ),
        description=f"{alt.key} CCM add-on code",
    )


def g0506_rules(ctx: EvalContext) -> list[CodeRule]:
    rp = typed(ctx.params)
    g0506 = rp.ccm.g0506
    code = g0506.code
    billers = rp.common.billing_credentials
    limit = g0506.lifetime_limit
    minimum = rp.ccm.min_chronic_conditions
    criteria = (
        Criterion(
            "performed_by_billing_practitioner",
            "the billing practitioner personally performed the assessment and care planning",
            (pl.col("performer_id") == pl.col("billing_practitioner_id"))
            & pl.col("bp_credential").is_in(billers),
            "practitioner_not_qualified",
            ("G0506-2",),
            shows=("performer_id", "performer_credential", "bp_credential"),
        ),
        pr.coverage_criterion(G0506_PAYER_RULE_IDS),
        pr.payer_pays_criterion(code, G0506_PAYER_RULE_IDS),
        Criterion(
            "initiating_visit",
            "billed with the CCM initiating visit (E/M, AWV or IPPE) on the same date",
            pl.col("base_visit"),
            "add_on_without_base",
            ("G0506-1",),
            shows=("encounter_id",),
        ),
        *consent_criteria(rp.ccm.consent_program, ("CCM-C1",)),
        chronic_conditions_criterion(minimum, ("CCM-D1", "G0506-1")),
        pr.not_already_billed_criterion(
            pl.col("same_day_claims") == 0,
            f"no {code} already billed for this visit's date (claims history)",
            ("G0506-2",),
            shows=("same_day_claims",),
        ),
        Criterion(
            "once_per_beneficiary",
            f"{code} not billed for this patient on any other date, nor earlier this month",
            pl.col("used") < limit,
            "frequency_limit_reached",
            ("G0506-2",),
            shows=("used",),
        ),
    )
    return [
        CodeRule(
            key="ccm.g0506",
            code=code,
            family=FAMILY,
            considered=pl.lit(True),
            criteria=criteria,
            units=pl.lit(1),
            date_of_service=pl.col("date"),
            evidence=evidence_list("encounter_id", "consent_id"),
            rules=("G0506-1", "G0506-2", "G0506-3"),
            place_of_service=pl.col("place_of_service"),
            icd10_codes=pl.col("chronic_icd10").list.head(nz.MAX_CLAIM_DIAGNOSES),
            parameters=(g0506.CODE, g0506.LIFETIME_LIMIT, rp.ccm.MIN_CHRONIC_CONDITIONS),
            description="CCM comprehensive assessment and care planning add-on",
        )
    ]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    visit = (pl.col("date"), pl.col("date"))
    return [
        run_rule_set(ctx, FAMILY, "ccm.monthly", monthly_facts(ctx), monthly_rules(ctx)),
        run_rule_set(ctx, FAMILY, "ccm.g0506", g0506_facts(ctx), g0506_rules(ctx), period=visit),
    ]
