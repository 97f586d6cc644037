"""Intensive behavioral therapy (IBT) for obesity: G0447 (individual) and G0473 (group).

Every code, threshold, window and cap comes from ``parameters.yaml`` beside this file;
the requirements in plain words are in ``README.md``. One rule set, ``obesity.visits``:
one candidate per ``obesity_counseling`` encounter dated in the month (``contact_mode``
group bills the group code, anything else the individual code). Date of service and
period are the visit date.

The schedule (IBT-F1, IBT-U1) is anchored at the first IBT visit of a 12-month benefit
period: the earliest of the claims history rows for either code (not denied) and the
encounters that meet the visit's own criteria (coverage, payer, practitioner, setting,
BMI, minutes). With the setting ``obesity.after_cycle: new_cycle`` the first such visit on
or after the period's end starts the next period. Frequency counts read the claims
history together with what this evaluation bills: visits of the month are decided in
date order (then encounter id), each seeing the ones billed before it. That order is a
loop over the visits' rank within the patient's month (a handful of passes, each a
whole-frame expression over every patient), as the anchor chain is a loop over
benefit periods.

Where things are: ``codes.py`` (names, rule ids, helpers), ``facts_visits.py`` (the
visits and their own facts), ``facts_schedule.py`` (benefit periods, cadence, weights,
the order visits are decided in), ``criteria.py`` (what a visit needs), and here the
two code rules and ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, evidence_list, run_rule_set
from billing_engine.engine.kernel import CodeRule
from code_rules.obesity.codes import FAMILY, KIND, RULE_IDS, RULE_SET, family_codes
from code_rules.obesity.criteria import eligibility, schedule
from code_rules.obesity.facts_schedule import (
    anchor_of,
    decide_in_order,
    with_claim_counts,
    with_schedule,
    with_weights,
)
from code_rules.obesity.facts_visits import visit_facts
from code_rules.parameters_typed import Obesity, typed

__all__ = ["FAMILY", "evaluate", "family_codes", "visit_facts", "visit_rules"]

SHARED_PARAMETERS = (
    Obesity.MIN_BMI,
    Obesity.MEASUREMENT_LOOKBACK_MONTHS,
    Obesity.PRIMARY_CARE_PLACES_OF_SERVICE,
    Obesity.SESSION_CAP,
    Obesity.MIN_WEIGHT_LOSS_KG,
    Obesity.COST_SHARING_WAIVED,
)


def individual_rule(ctx: EvalContext) -> CodeRule:
    """G0447: an individual session (any contact mode but group)."""
    obesity = typed(ctx.params).obesity
    return _visit_rule(
        ctx,
        obesity.individual_code,
        "obesity.individual",
        (Obesity.INDIVIDUAL_CODE, Obesity.INDIVIDUAL_MIN_MINUTES),
        "IBT for obesity, individual session",
    )


def group_rule(ctx: EvalContext) -> CodeRule:
    """G0473: a group session (contact_mode group)."""
    obesity = typed(ctx.params).obesity
    return _visit_rule(
        ctx,
        obesity.group_code,
        "obesity.group",
        (Obesity.GROUP_CODE, Obesity.GROUP_MIN_MINUTES),
        "IBT for obesity, group session",
    )


def _visit_rule(
    ctx: EvalContext, code: str, key: str, own: tuple[str, str], description: str
) -> CodeRule:
    """One code's rule: not already billed, the visit's own criteria, then the schedule."""
    already = pr.not_already_billed_criterion(
        pl.col("own_claim_ids").list.len() == 0,
        "this visit is not already in claims history (same code, date and NPI)",
        ("IBT-U1",),
        shows=("own_claim_ids",),
    )
    return CodeRule(
        key=key,
        code=code,
        family=FAMILY,
        considered=pl.col("code") == code,
        criteria=(already, *eligibility(ctx, code), *schedule(ctx)),
        units=pl.lit(1),
        date_of_service=pl.col("date"),
        evidence=evidence_list(
            "encounter_id",
            "bmi_ref",
            pl.when(pl.col("needs_weight_loss")).then(pl.col("baseline_ref")),
            pl.when(pl.col("needs_weight_loss")).then(pl.col("reassessed_ref")),
        ),
        rules=RULE_IDS,
        minutes_logged=pl.col("minutes"),
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("icd10_codes"),
        parameters=(*own, *SHARED_PARAMETERS),
        description=description,
    )


def visit_rules(ctx: EvalContext) -> list[CodeRule]:
    return [individual_rule(ctx), group_rule(ctx)]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    ctx = ctx.narrowed_to(nz.patients_seen(ctx, [KIND]))  # the candidates: visits of the month
    visits, claims, anchors = visit_facts(ctx)
    candidates = anchor_of(visits.filter(ctx.in_month("date")), anchors, "encounter_id", "date")
    candidates = with_schedule(ctx, candidates)
    candidates = with_weights(ctx, candidates)
    candidates = with_claim_counts(candidates, claims, anchors)
    rules = visit_rules(ctx)
    facts = decide_in_order(ctx, candidates, rules)
    visit = (pl.col("date"), pl.col("date"))
    return [run_rule_set(ctx, FAMILY, RULE_SET, facts, rules, period=visit)]
