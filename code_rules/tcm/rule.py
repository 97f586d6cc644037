"""Transitional care management: 99495 (moderate MDM, visit within 14 days) and 99496
(high MDM, visit within 7 days).

Every code, window and list comes from ``parameters.yaml`` beside this file; the
requirements in plain words are in ``README.md``. One rule set, ``tcm.discharge``: one
candidate per discharge x billing practitioner.

- The practitioners of a discharge are those whose face-to-face visit (an office visit
  billed under them, else performed by them) falls in the discharge's 30-day period,
  each with their first such visit (a visit on a discharge-day-management date of the
  same practitioner only when there is no other). A discharge without a visit yet has
  one candidate: the practitioner its contacts are billed under (or none).
- A visit belongs to the latest discharge on or before it: a discharge's visit window
  ends the day before the next qualifying discharge of the patient (a readmission).
- Both codes of one discharge have the period discharge date .. discharge + 29, so the
  precedence table (code_rules/conflicts.yaml) settles high over moderate and one
  practitioner per period.
- One TCM per 30 days (TCM-P1): a discharge inside the period of an earlier discharge
  whose TCM the engine bills (whatever the month of its visit), or whose period holds a
  TCM claim of claims history, does not start a second TCM.
- The month evaluated shows the discharges whose face-to-face visit falls in it, and,
  while no visit is known, those whose visit window overlaps it (``visit_pending``
  until the window closes, then ``visit_late``). Encounters dated after
  max(as-of, month end) are not known yet.

Where things are: ``codes.py`` (names, rule ids, the two codes), ``facts_discharges.py``
and ``facts.py`` (the joins), ``criteria.py`` (what a code needs), ``rules.py`` (the two
code rules and the death flags), ``periods.py`` (one TCM per period across discharges).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, run_rule_set
from code_rules.tcm.codes import FAMILY, RULE_SET, alternatives, family_codes, horizon
from code_rules.tcm.facts import all_facts
from code_rules.tcm.facts_discharges import discharge_facts, month_patients
from code_rules.tcm.periods import with_periods_billed
from code_rules.tcm.rules import discharge_rules

__all__ = [
    "FAMILY",
    "all_facts",
    "discharge_facts",
    "discharge_rules",
    "evaluate",
    "family_codes",
    "horizon",
    "in_month",
]


def in_month(ctx: EvalContext) -> pl.Expr:
    """The discharges this month shows: visit in the month, or no visit yet and the
    visit window overlapping the month."""
    last = pl.min_horizontal(
        pl.max_horizontal([pl.col(alt.last_date) for alt in alternatives(ctx)]),
        pl.col("window_end"),
    )
    pending = (
        pl.col("f2f_date").is_null() & (pl.col("discharge_date") <= ctx.end) & (last >= ctx.start)
    )
    return ctx.in_month("f2f_date").fill_null(False) | pending


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    ctx = ctx.narrowed_to(month_patients(ctx))  # only their discharges reach the month
    rules = discharge_rules(ctx)
    facts = all_facts(ctx)
    facts = with_periods_billed(ctx, facts, rules)
    facts = facts.filter(in_month(ctx))
    period = (pl.col("discharge_date"), pl.col("period_end"))
    return [run_rule_set(ctx, FAMILY, RULE_SET, facts, rules, period=period)]
