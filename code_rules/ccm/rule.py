"""Chronic care management: the monthly codes and the G0506 initiating add-on.

Every code, threshold and cap comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. Two rule sets:

- ``ccm.monthly``: one candidate per patient x billing practitioner x month (anyone
  with CCM time logged that month or a valid CCM consent naming the practitioner).
  Staff CCM (base + add-on), the practitioner's own CCM (base + add-on) and complex
  CCM (base + add-on). Which alternative is billed is settled afterwards by the
  precedence table (code_rules/conflicts.yaml).
- ``ccm.g0506``: one candidate per visit whose cpt requests G0506.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    chronic_conditions_criterion,
    consent_criteria,
    coverage_criterion,
    evidence_list,
    minutes_criterion,
    not_billed_by_other_criterion,
    payer_pays_criterion,
    run_rule_set,
)
from billing_engine.engine.kernel import CodeRule, Criterion
from code_rules.parameters_typed import CcmTimedCode, typed
from code_rules.valuesets import chronic_value_set

FAMILY = "ccm"
IDENTITY = ("patient_id", "billing_practitioner_id", "payer_id")
SHARED_RULE_IDS = ("CCM-D1", "CCM-C1", "CCM-CP1", "CCM-I1", "CCM-B1", "TIME-3", "TIME-4", "TIME-8")
ANYONES_MINUTES = "clinical-staff and practitioner minutes"


@dataclass(frozen=True)
class Alternative:
    """One monthly CCM code pair (base + add-on): its parameters and the minutes it counts."""

    key: str  # rule keys ccm.<key>.base / ccm.<key>.addon, facts <key>_base_date / _addon_date
    code: CcmTimedCode  # ccm.<key>.*: the codes, threshold, add-on step and cap
    pool: str  # the time entries whose minutes count (nz.POOL_*)
    minutes: str  # the facts column of those minutes
    what: str  # those minutes, in words
    rule_ids: tuple[str, ...]


def alternatives(ctx: EvalContext) -> tuple[Alternative, Alternative, Alternative]:
    """Staff, the practitioner's own and complex CCM, in the order their rules are listed."""
    ccm = typed(ctx.params).ccm
    staff = Alternative(
        key="staff",
        code=ccm.staff,
        pool=nz.POOL_ALL,
        minutes="staff_minutes",
        what=ANYONES_MINUTES,
        rule_ids=("CCM-T1", "CCM-U1", "TIME-2"),
    )
    practitioner = Alternative(
        key="practitioner",
        code=ccm.practitioner,
        pool=nz.POOL_PRACTITIONER,
        minutes="practitioner_minutes",
        what="the billing practitioner's own minutes",
        rule_ids=("CCMP-T1", "CCMP-U1"),
    )
    complex_ccm = Alternative(
        key="complex",
        code=ccm.complex,
        pool=nz.POOL_ALL,
        minutes="staff_minutes",
        what=ANYONES_MINUTES,
        rule_ids=("CCCM-T1", "CCCM-M1", "CCCM-U1"),
    )
    return staff, practitioner, complex_ccm


def family_codes(ctx: EvalContext) -> list[str]:
    return [code for alt in alternatives(ctx) for code in (alt.code.base_code, alt.code.addon_code)]


def _addon_units(alt: Alternative) -> pl.Expr:
    code = alt.code
    threshold = code.threshold_minutes
    step = code.addon_step_minutes
    cap = code.addon_max_units
    full_steps = ((pl.col(alt.minutes) - threshold) // step).clip(lower_bound=0)
    return pl.min_horizontal(full_steps, pl.lit(cap)).cast(pl.Int64)


def _candidates(ctx: EvalContext, program: str) -> pl.DataFrame:
    logged = nz.time_entries(ctx).filter(pl.col("program") == program)
    consented = nz.valid_consents(ctx, program).filter(
        pl.col("billing_practitioner_id").is_not_null()
    )
    return pl.concat(
        [
            logged.select("patient_id", "billing_practitioner_id"),
            consented.select("patient_id", "billing_practitioner_id"),
        ]
    ).unique(maintain_order=True)


def _with_minutes(ctx: EvalContext, facts: pl.DataFrame, program: str) -> pl.DataFrame:
    keys = ["patient_id", "billing_practitioner_id"]
    for pool, column in (
        (nz.POOL_ALL, "staff_minutes"),
        (nz.POOL_PRACTITIONER, "practitioner_minutes"),
    ):
        minutes = nz.monthly_minutes(ctx, program, pool).rename({"minutes": column})
        ids = nz.counted_entry_ids(ctx, program, pool).rename({"entry_ids": f"{column}_ids"})
        facts = facts.join(minutes, on=keys, how="left", nulls_equal=True).join(
            ids, on=keys, how="left", nulls_equal=True
        )
    empty = pl.lit([], dtype=pl.List(pl.String))
    return facts.join(
        nz.logged_minutes(ctx, program), on=keys, how="left", nulls_equal=True
    ).with_columns(
        pl.col("staff_minutes", "practitioner_minutes", "minutes_logged").fill_null(0),
        pl.col("staff_minutes_ids", "practitioner_minutes_ids").fill_null(empty),
    )


def _with_initiating_visit(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    initiating = typed(ctx.params).ccm.initiating_visit
    codes = initiating.codes
    if initiating.accept_level1_visit:
        codes = [*codes, initiating.level1_code]
    visits = nz.practitioner_visits(ctx, codes, initiating.kinds)
    lookback = initiating.lookback_months
    found = (
        facts.select("patient_id", "billing_practitioner_id", "consent_date")
        .filter(pl.col("consent_date").is_not_null())
        .join(
            visits,
            left_on=["patient_id", "billing_practitioner_id"],
            right_on=["patient_id", "practitioner_id"],
            how="inner",
        )
        .filter(
            (pl.col("date") >= pl.col("consent_date").dt.offset_by(f"-{lookback}mo"))
            & (pl.col("date") <= ctx.end)
        )
        .sort("date")
        .group_by("patient_id", "billing_practitioner_id")
        .agg(
            initiating_visit_id=pl.col("source_id").first(),
            initiating_visit_date=pl.col("date").first(),
        )
    )
    return facts.join(
        found, on=["patient_id", "billing_practitioner_id"], how="left", nulls_equal=True
    )


def _with_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Claims already billed this month for any CCM code: by this practitioner or others."""
    claims = nz.claims_in_month(ctx, family_codes(ctx)).select("patient_id", "billing_npi", "code")
    joined = (
        facts.select("patient_id", "billing_practitioner_id", "bp_npi")
        .join(claims, on="patient_id", how="inner")
        .group_by("patient_id", "billing_practitioner_id")
        .agg(
            other_claims=pl.col("billing_npi")
            .filter(pl.col("billing_npi") != pl.col("bp_npi").fill_null(""))
            .unique()
            .sort(),
            own_claim_codes=pl.col("code")
            .filter(pl.col("billing_npi") == pl.col("bp_npi"))
            .unique()
            .sort(),
        )
    )
    return facts.join(
        joined, on=["patient_id", "billing_practitioner_id"], how="left", nulls_equal=True
    ).with_columns(
        pl.col("other_claims", "own_claim_codes").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def _with_dates(ctx: EvalContext, facts: pl.DataFrame, program: str) -> pl.DataFrame:
    """Date each code's minutes were reached (or the month's end, per the setting)."""
    month_end = typed(ctx.params).common.date_of_service_rule == "month_end"
    columns: dict[str, pl.Series | pl.Expr] = {}
    for alt in alternatives(ctx):
        threshold = alt.code.threshold_minutes
        step = alt.code.addon_step_minutes
        needed = facts.select(
            "patient_id",
            "billing_practitioner_id",
            base_needed=pl.lit(threshold),
            addon_needed=threshold + step * pl.max_horizontal(_addon_units(alt), pl.lit(1)),
        )
        for part in ("base", "addon"):
            name = f"{alt.key}_{part}_date"
            if month_end:
                columns[name] = pl.lit(ctx.end, dtype=pl.Date)
            else:
                columns[name] = nz.date_reached(
                    ctx, needed, program, alt.pool, f"{part}_needed"
                ).alias(name)
    return facts.with_columns(**columns)


def monthly_facts(ctx: EvalContext) -> pl.DataFrame:
    rp = typed(ctx.params)
    program = rp.ccm.consent_program
    facts = _candidates(ctx, program)
    facts = _with_minutes(ctx, facts, program)
    facts = nz.consent_facts(ctx, facts, program)
    facts = facts.join(
        nz.chronic_conditions(ctx, chronic_value_set()), on="patient_id", how="left"
    ).with_columns(pl.col("n_chronic").fill_null(0))
    care_plans = nz.care_plan_facts(ctx, rp.ccm.care_plan_program, rp.ccm.complex.care_plan_actions)
    facts = facts.join(care_plans, on="patient_id", how="left")
    facts = _with_initiating_visit(ctx, facts)
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
    facts = _with_claims(ctx, facts)
    facts = facts.join(
        nz.max_mdm(ctx), on=["patient_id", "billing_practitioner_id"], how="left", nulls_equal=True
    ).with_columns(pl.col("mdm_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    facts = _with_dates(ctx, facts, program)
    for minutes in sorted({alt.minutes for alt in alternatives(ctx)}):
        facts = nz.monthly_place_of_service(ctx, facts, f"{minutes}_ids", f"{minutes}_pos")
    reference = pl.coalesce("staff_base_date", pl.lit(min(max(ctx.as_of, ctx.start), ctx.end)))
    facts = nz.primary_coverage(ctx, facts.with_columns(reference_date=reference), "reference_date")
    kinds = rp.common.payer_kinds_paying_by_default
    for code in family_codes(ctx):
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", "reference_date", kinds).alias(f"pays:{code}")
        )
    return facts


def _eligibility(ctx: EvalContext, code: str) -> list[Criterion]:
    """Criteria every monthly CCM code shares, in the order their reasons take precedence."""
    rp = typed(ctx.params)
    program = rp.ccm.consent_program
    billers = rp.common.billing_credentials
    minimum = rp.ccm.min_chronic_conditions
    return [
        Criterion(
            "billing_practitioner_known",
            "the time is billed under a known billing practitioner",
            pl.col("billing_practitioner_id").is_not_null(),
            "practitioner_not_qualified",
            ("CCM-B1",),
            detail=pl.lit(
                "no billing practitioner: set billing_practitioner_id or name one on the consent"
            ),
            shows=("billing_practitioner_id",),
        ),
        Criterion(
            "billing_practitioner_qualified",
            "the billing practitioner is a physician or NPP who may bill CCM",
            pl.col("bp_credential").is_in(billers),
            "practitioner_not_qualified",
            ("CCM-B1",),
            shows=("bp_credential",),
        ),
        coverage_criterion(shows=("reference_date", "payer_id")),
        payer_pays_criterion(code),
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
        Criterion(
            "not_already_billed",
            "this code is not already billed for the month (claims history)",
            ~pl.col("own_claim_codes").list.contains(code),
            "already_billed",
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
            *_eligibility(ctx, code.base_code),
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
        icd10_codes=pl.col("chronic_icd10").list.head(4),
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
            payer_pays_criterion(addon_code),
            Criterion(
                "not_already_billed",
                "this code is not already billed for the month (claims history)",
                ~pl.col("own_claim_codes").list.contains(addon_code),
                "already_billed",
            ),
            minutes_criterion(ctx, alt.minutes, needed, alt.rule_ids, alt.what),
        ),
        units=_addon_units(alt),
        date_of_service=pl.col(f"{alt.key}_addon_date"),
        evidence=evidence,
        rules=(*alt.rule_ids, *SHARED_RULE_IDS),
        alternative=f"ccm.{alt.key}",
        base_key=f"ccm.{alt.key}.base",
        minutes_logged=pl.col("minutes_logged"),
        place_of_service=pl.col(f"{alt.minutes}_pos"),
        icd10_codes=pl.col("chronic_icd10").list.head(4),
        parameters=(
            code.ADDON_CODE,
            code.THRESHOLD_MINUTES,
            code.ADDON_STEP_MINUTES,
            code.ADDON_MAX_UNITS,
            typed(ctx.params).common.MONTHLY_PLACE_OF_SERVICE,
        ),
        description=f"{alt.key} CCM add-on code",
    )


def g0506_facts(ctx: EvalContext) -> pl.DataFrame:
    """One row per visit in the month whose cpt requests G0506."""
    rp = typed(ctx.params)
    code = rp.ccm.g0506.code
    kinds = rp.ccm.initiating_visit.kinds
    visit_codes = rp.ccm.initiating_visit.codes
    ignored = rp.common.ignored_claim_statuses
    program = rp.ccm.consent_program
    requests = (
        ctx.bundle["encounters"]
        .filter(
            pl.col("kind").is_in(kinds) & ctx.in_month("date") & pl.col("cpt").list.contains(code)
        )
        .with_columns(
            billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id")
        )
    )
    requests = nz.with_practitioner(ctx, requests, "performer_id", "performer")
    requests = nz.with_practitioner(ctx, requests, "billing_practitioner_id", "bp")
    requests = nz.with_visit_place_of_service(ctx, requests)
    visits = requests.with_columns(
        base_visit=(pl.col("kind") != "office_visit")
        | pl.col("cpt").list.eval(pl.element().is_in(visit_codes)).list.any(),
        earlier_requests=pl.col("date").rank("ordinal").over("patient_id") - 1,
    ).select(
        "patient_id",
        "billing_practitioner_id",
        "performer_id",
        "performer_credential",
        "bp_credential",
        "encounter_id",
        "date",
        "base_visit",
        "earlier_requests",
        "place_of_service",
    )
    billed = (
        ctx.bundle["claims_history"]
        .filter(
            (pl.col("code") == code)
            & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        )
        .select("patient_id", pl.col("date_of_service"), pl.col("units").fill_null(1))
    )
    history = (
        visits.select("encounter_id", "patient_id", "date")
        .join(billed, on="patient_id", how="inner")
        .group_by("encounter_id")
        .agg(
            same_day_claims=(pl.col("date_of_service") == pl.col("date")).sum(),
            prior_units=pl.col("units").filter(pl.col("date_of_service") != pl.col("date")).sum(),
        )
    )
    visits = visits.join(history, on="encounter_id", how="left").with_columns(
        pl.col("same_day_claims", "prior_units").fill_null(0)
    )
    facts = nz.consent_facts(ctx, visits, program)
    facts = facts.join(
        nz.chronic_conditions(ctx, chronic_value_set()), on="patient_id", how="left"
    ).with_columns(pl.col("n_chronic").fill_null(0))
    facts = facts.with_columns(used=pl.col("prior_units") + pl.col("earlier_requests"))
    facts = nz.primary_coverage(ctx, facts, "date")
    frame = facts.with_columns(_code=pl.lit(code))
    return facts.with_columns(
        nz.payer_pays(ctx, frame, "_code", "date", rp.common.payer_kinds_paying_by_default).alias(
            f"pays:{code}"
        )
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
        coverage_criterion(),
        payer_pays_criterion(code),
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
        Criterion(
            "not_already_billed",
            f"no {code} already billed for this visit's date (claims history)",
            pl.col("same_day_claims") == 0,
            "already_billed",
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
            icd10_codes=pl.col("chronic_icd10").list.head(4),
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
