"""Wellness visits: the IPPE (G0402) and the annual wellness visit (G0438 / G0439).

Every code, window and limit comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. One per-visit rule set,
``wellness.visit``: one candidate per wellness request in the month, i.e.

- an encounter of a request kind (office visit, awv, ippe) whose ``cpt`` names G0402,
  G0438 or G0439: one request per such code (an E/M code beside it is context);
- an ``ippe`` encounter without a wellness code: a G0402 request;
- an ``awv`` encounter without a wellness code: an AWV request whose code the engine
  picks, G0438 when the patient has never had an AWV, else G0439.

Frequency limits read claims history (denied claims do not count) together with the
month's earlier requests that qualify. That is settled in two passes over the same
rules: the first pass finds which requests qualify on claims history alone; the second
counts, for each request, the earlier qualifying requests of the month (ranked by date,
encounter id, IPPE before AWV) and the qualifying IPPE of the same day. At most one
IPPE and one AWV a month can qualify, and the earliest request that qualifies alone is
always billed, so the two passes give the exact result without iterating.

The facts (the joins) are built in ``facts.py``, the criteria in ``criteria.py``; this
file lists each code's rule and runs the two passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, evidence_list, run_rule_set
from billing_engine.engine.kernel import CodeRule, Criterion, line_column
from code_rules.parameters_typed import Common, Wellness, WellnessAwv, WellnessIppe, typed
from code_rules.wellness.criteria import (
    awv_interval,
    awv_windows,
    ippe_window,
    lifetime,
    not_with_ippe,
    shared_head,
)
from code_rules.wellness.facts import AWV, IPPE, visit_facts

__all__ = ["FAMILY", "evaluate", "visit_facts", "visit_rules"]

FAMILY = "wellness"
IPPE_RULE_IDS = ("IPPE-1", "AWV-$", "AWV-U1")
INITIAL_RULE_IDS = ("AWV-1", "IPPE-1", "AWV-3", "AWV-$", "AWV-U1")
SUBSEQUENT_RULE_IDS = ("AWV-2", "AWV-1", "AWV-MA", "IPPE-1", "AWV-3", "AWV-$", "AWV-U1")
COMMON_PARAMETERS = (Common.BILLING_CREDENTIALS, Wellness.COST_SHARING_WAIVED)
AWV_EVIDENCE = ("encounter_id", "same_day_claims", "prior_ids", "last_awv_id", "last_ippe_id")


def _visit_rule(
    ctx: EvalContext,
    key: str,
    code: str,
    criteria: Sequence[Criterion],
    evidence: pl.Expr,
    rules: tuple[str, ...],
    alternative: str,
    parameters: tuple[str, ...],
    description: str,
) -> CodeRule:
    """A wellness code's line: one visit, on its date, with its diagnoses."""
    units = pl.lit(typed(ctx.params).wellness.units_per_visit)
    return CodeRule(
        key=key,
        code=code,
        family=FAMILY,
        considered=pl.col("code") == code,
        criteria=tuple(criteria),
        units=units,
        date_of_service=pl.col("date"),
        evidence=evidence,
        rules=rules,
        alternative=alternative,
        place_of_service=pl.col("place_of_service"),
        icd10_codes=pl.col("icd10"),
        parameters=parameters,
        description=description,
    )


def ippe_rule(ctx: EvalContext) -> CodeRule:
    """G0402: once per lifetime, within the window after the Part B effective date."""
    ippe = typed(ctx.params).wellness.ippe
    return _visit_rule(
        ctx,
        key="wellness.ippe",
        code=ippe.code,
        criteria=(
            *shared_head(ctx, ippe.code),
            lifetime(ippe.lifetime_limit, "IPPE", ("IPPE-1",)),
            ippe_window(ctx),
        ),
        evidence=evidence_list("encounter_id", "same_day_claims", "prior_ids"),
        rules=IPPE_RULE_IDS,
        alternative="wellness.ippe",
        parameters=(
            WellnessIppe.CODE,
            WellnessIppe.WINDOW_MONTHS,
            WellnessIppe.LIFETIME_LIMIT,
            *COMMON_PARAMETERS,
        ),
        description="initial preventive physical examination",
    )


def initial_awv_rule(ctx: EvalContext) -> CodeRule:
    """G0438: the first AWV of a lifetime, after Part B's wait and the IPPE's months."""
    awv = typed(ctx.params).wellness.awv
    return _visit_rule(
        ctx,
        key="wellness.awv.initial",
        code=awv.initial_code,
        criteria=(
            *shared_head(ctx, awv.initial_code),
            not_with_ippe(),
            lifetime(
                awv.initial_lifetime_limit,
                "initial AWV",
                ("AWV-1",),
                f" (a later AWV is the subsequent AWV, {awv.subsequent_code})",
            ),
            *awv_windows(ctx),
        ),
        evidence=evidence_list(*AWV_EVIDENCE),
        rules=INITIAL_RULE_IDS,
        alternative="wellness.awv",
        parameters=(
            WellnessAwv.INITIAL_CODE,
            WellnessAwv.INITIAL_LIFETIME_LIMIT,
            WellnessAwv.PART_B_WAIT_MONTHS,
            WellnessAwv.AFTER_IPPE_FULL_MONTHS,
            *COMMON_PARAMETERS,
        ),
        description="initial annual wellness visit",
    )


def subsequent_awv_rule(ctx: EvalContext) -> CodeRule:
    """G0439: every later AWV, after the full months since the last (or the MA year)."""
    awv = typed(ctx.params).wellness.awv
    return _visit_rule(
        ctx,
        key="wellness.awv.subsequent",
        code=awv.subsequent_code,
        criteria=(
            *shared_head(ctx, awv.subsequent_code),
            not_with_ippe(),
            *awv_windows(ctx),
            *awv_interval(ctx),
        ),
        evidence=evidence_list(*AWV_EVIDENCE),
        rules=SUBSEQUENT_RULE_IDS,
        alternative="wellness.awv",
        parameters=(
            WellnessAwv.SUBSEQUENT_CODE,
            WellnessAwv.PART_B_WAIT_MONTHS,
            WellnessAwv.AFTER_IPPE_FULL_MONTHS,
            WellnessAwv.INTERVAL_FULL_MONTHS,
            WellnessAwv.MA_FREQUENCY,
            *COMMON_PARAMETERS,
        ),
        description="subsequent annual wellness visit",
    )


def visit_rules(ctx: EvalContext) -> list[CodeRule]:
    _ = typed(ctx.params).wellness.cost_sharing_waived  # recorded with the run for pricing
    return [ippe_rule(ctx), initial_awv_rule(ctx), subsequent_awv_rule(ctx)]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    # every candidate is a request of the month: only those patients' rows are read
    ctx = ctx.narrowed_to(nz.patients_seen(ctx, typed(ctx.params).wellness.request_kinds))
    visit = (pl.col("date"), pl.col("date"))
    rules = visit_rules(ctx)
    # first pass: which requests qualify on claims history alone
    first = run_rule_set(ctx, FAMILY, "wellness.visit", visit_facts(ctx), rules, period=visit)
    qualifies = pl.any_horizontal([pl.col(line_column(rule)) for rule in rules])
    qualifying = first.facts.filter(qualifies).select(
        "seq", "patient_id", "date", "group", "encounter_id"
    )
    # an AWV on the day of a qualifying IPPE is suppressed: it uses up nothing
    ippe_days = qualifying.filter(pl.col("group") == IPPE).select("patient_id", "date").unique()
    qualifying = pl.concat(
        [
            qualifying.filter(pl.col("group") == IPPE),
            qualifying.filter(pl.col("group") == AWV).join(
                ippe_days, on=["patient_id", "date"], how="anti"
            ),
        ]
    )
    return [
        run_rule_set(
            ctx, FAMILY, "wellness.visit", visit_facts(ctx, qualifying), rules, period=visit
        )
    ]
