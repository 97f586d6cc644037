"""Nurse visit: 99211, the established-patient office visit clinical staff may furnish.

Every code, window and list comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. One rule set, ``nurse_visit.visit``:
one candidate per ``nurse_visit`` encounter dated in the month (documented failed
attempts are not visits), billed under the encounter's billing practitioner, else its
performer when the performer may bill. Period and date of service: the visit date.
The facts (the joins) are built in ``facts.py``; this file holds the criteria.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, evidence_list, run_rule_set
from billing_engine.engine.kernel import CodeRule, Criterion
from billing_engine.engine.primitives import Cap
from code_rules.nurse_visit.facts import KIND, SCOPE_GROUP, visit_facts
from code_rules.parameters_typed import (
    NurseVisit,
    NurseVisitEstablished,
    NurseVisitSameDayEm,
    typed,
)

__all__ = ["FAMILY", "KIND", "evaluate", "visit_facts", "visit_rules"]

FAMILY = "nurse_visit"
RULE_IDS = ("E11-1", "E11-2", "E11-3", "E11-4", "E11-$")
PAYER_RULE_IDS = ("E11-$",)  # coverage and payer pays feed the coinsurance


def _eligibility(ctx: EvalContext, code: str) -> list[Criterion]:
    """Every criterion but the per-day limit, in the order their reasons take precedence."""
    rp = typed(ctx.params)
    billers = rp.common.billing_credentials
    performers = [*rp.common.clinical_staff_credentials, *billers]
    years = rp.nurse_visit.established.lookback_years
    scope = rp.nurse_visit.established.scope
    em_by = (
        "billing practitioner or a practitioner of the group in the same specialty"
        if rp.nurse_visit.same_day_em.scope == SCOPE_GROUP
        else "billing practitioner"
    )
    return [
        pr.billing_practitioner_known_criterion(
            ("E11-1",),
            "no billing practitioner: set billing_practitioner_id (the supervising "
            "practitioner the visit is incident to)",
            "the visit is billed under a known billing practitioner",
        ),
        pr.billing_practitioner_qualified_criterion(
            ("E11-1",), billers, "the billing practitioner is a physician or NPP"
        ),
        Criterion(
            "performer_qualified",
            "performed by clinical staff or a practitioner",
            pl.col("performer_credential").is_in(performers),
            "practitioner_not_qualified",
            ("E11-1",),
            shows=("performer_id", "performer_credential"),
        ),
        pr.coverage_criterion(PAYER_RULE_IDS),
        pr.payer_pays_criterion(code, PAYER_RULE_IDS),
        Criterion(
            "established_patient",
            f"established patient: a professional service by the {scope.replace('_', ' ')} "
            f"in the {years} years before the visit",
            pl.col("established_date").is_not_null(),
            "initiating_visit_missing",
            ("E11-1",),
            detail=pl.lit(
                f"new patient: no professional service by the {scope.replace('_', ' ')} in the "
                f"{years} years before the visit; a practitioner must see the patient first"
            ),
            shows=("established_by", "established_date"),
        ),
        Criterion(
            "no_same_day_em",
            f"no higher office E/M the same day by the {em_by} (bill the higher E/M only)",
            pl.col("same_day_em_ids").list.len() == 0,
            "same_day_service",
            ("E11-2",),
            detail=pl.format(
                "another E/M the same day: {}", pl.col("same_day_em_ids").list.join(", ")
            ),
            shows=("same_day_em_ids",),
        ),
        Criterion(
            "no_same_day_drug_administration",
            "no drug administration (hydration, infusion, injection) the same day",
            pl.col("drug_administration_ids").list.len() == 0,
            "same_day_service",
            ("E11-3",),
            detail=pl.format(
                "drug administration the same day: {}",
                pl.col("drug_administration_ids").list.join(", "),
            ),
            shows=("drug_administration_ids",),
        ),
        pr.not_already_billed_criterion(
            pl.col("same_day_claim_units") == 0,
            f"no {code} already in claims history for the patient on the visit date",
            ("E11-4",),
            detail=pl.format(
                "{} already billed on the visit date by NPI {}",
                pl.lit(code),
                pl.col("same_day_claim_npis").list.join(", "),
            ),
            shows=("same_day_claim_units", "same_day_claim_npis"),
        ),
    ]


def _with_earlier_qualifying(
    ctx: EvalContext, facts: pl.DataFrame, criteria: Sequence[Criterion]
) -> pl.DataFrame:
    """``earlier_same_day``: the patient's visits the same day, before this one (by
    encounter_id), that meet every other criterion and so bill the day's unit."""
    qualifies = pl.all_horizontal([pl.lit(True), *[c.met.fill_null(False) for c in criteria]])
    already = pl.col("same_day_claim_units") + pl.col("same_day_coded_ids").list.len()
    cap = Cap("day", typed(ctx.params).nurse_visit.max_units_per_day, prior=already)
    capped = pr.frequency_cap(
        facts,
        [cap],
        group=("patient_id", "date"),
        order=("encounter_id",),
        qualifies=qualifies,
        keep_order="sorted",
    )
    return capped.rename({"day_earlier": "earlier_same_day"}).drop(
        "day_prior", "day_used", "day_room", "day_within", "day_granted", "cap_rank"
    )


def visit_rules(ctx: EvalContext, criteria: Sequence[Criterion]) -> list[CodeRule]:
    rp = typed(ctx.params)
    code = rp.nurse_visit.code
    limit = rp.nurse_visit.max_units_per_day
    per_day = Criterion(
        "once_per_day",
        f"at most {limit} {code} per patient per day (MUE)",
        pl.col("same_day_claim_units")
        + pl.col("earlier_same_day")
        + pl.col("same_day_coded_ids").list.len()
        < limit,
        "frequency_limit_reached",
        ("E11-4",),
        detail=pl.format(
            "{} already billed the same day: {} earlier nurse visit(s), coded on {}",
            pl.lit(code),
            pl.col("earlier_same_day"),
            pl.col("same_day_coded_ids").list.join(", "),
        ),
        shows=("earlier_same_day", "same_day_coded_ids", "same_day_claim_units"),
    )
    return [
        CodeRule(
            key="nurse_visit.visit",
            code=code,
            family=FAMILY,
            alternative="nurse_visit.visit",
            considered=pl.lit(True),
            criteria=(*criteria, per_day),
            units=pl.lit(1),
            date_of_service=pl.col("date"),
            evidence=evidence_list("encounter_id", "established_by"),
            rules=RULE_IDS,
            place_of_service=pl.col("place_of_service"),
            icd10_codes=pl.col("icd10"),
            parameters=(
                NurseVisit.CODE,
                NurseVisitEstablished.LOOKBACK_YEARS,
                NurseVisitEstablished.SCOPE,
                NurseVisitSameDayEm.SCOPE,
                NurseVisit.MAX_UNITS_PER_DAY,
            ),
            description="nurse visit (established patient, clinical staff)",
        )
    ]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    # every line and gap is a visit of the month: only those patients' rows are read
    ctx = ctx.narrowed_to(nz.patients_seen(ctx, [KIND]))
    code = typed(ctx.params).nurse_visit.code
    criteria = _eligibility(ctx, code)
    facts = _with_earlier_qualifying(ctx, visit_facts(ctx), criteria)
    visit = (pl.col("date"), pl.col("date"))
    return [
        run_rule_set(
            ctx, FAMILY, "nurse_visit.visit", facts, visit_rules(ctx, criteria), period=visit
        )
    ]
