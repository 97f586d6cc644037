"""Medicaid HCPCS T-codes: case management, targeted case management and nursing.

Every code, unit length, unit rule and cap comes from ``parameters.yaml`` beside this
file; the requirements in plain words are in ``README.md``. T-codes are state-defined
(TCODE-2): the Medicaid payer's state selects a row of the state table (``default`` for
any state not listed), which says whether a program bills per 15 minutes (T1016 / T1017)
or per month (T2022 / T2023), how minutes become units, the caps and whose minutes count.

Three rule sets:

- ``medicaid.daily``: one candidate per patient x program x billing practitioner x date
  of service with case-management time logged (15-minute codes; units on the day's
  total counted minutes, interchange semantics 9). Period and date of service = the day.
- ``medicaid.monthly``: one candidate per patient x program x billing practitioner x
  payer for the month, for states whose rules bill the program monthly. Date of service
  = the day the state's monthly minimum was met.
- ``medicaid.nursing``: one candidate per nurse visit of a Medicaid-primary patient in a
  state whose table enables the nursing codes (T1001 / T1002 / T1003; off by default).

The payer of a T-code is the patient's active Medicaid coverage of any rank (a dual
eligible's Medicaid behind Medicare), else the primary coverage, which then does not
pay (TCODE-1). Minutes counted for a Medicare care-management program of the same
patient are not counted again (TCODE-3).

The modules: ``state_table`` (the per-state rules), ``facts_common`` (payer, payer pays,
diagnoses, claims), ``facts_minutes`` (counted minutes and units), ``facts_days`` /
``facts_monthly`` / ``facts_nursing`` (each rule set's facts), ``criteria`` (shared
criteria) and ``rules_daily`` / ``rules_monthly`` / ``rules_nursing`` (the codes).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, run_rule_set
from code_rules.medicaid.facts_days import daily_facts
from code_rules.medicaid.facts_monthly import monthly_facts
from code_rules.medicaid.facts_nursing import nursing_facts
from code_rules.medicaid.rules_daily import daily_rules
from code_rules.medicaid.rules_monthly import monthly_rules
from code_rules.medicaid.rules_nursing import nursing_rules
from code_rules.medicaid.state_table import FAMILY


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    day = (pl.col("date"), pl.col("date"))
    return [
        run_rule_set(ctx, FAMILY, "medicaid.daily", daily_facts(ctx), daily_rules(ctx), period=day),
        run_rule_set(ctx, FAMILY, "medicaid.monthly", monthly_facts(ctx), monthly_rules(ctx)),
        run_rule_set(
            ctx, FAMILY, "medicaid.nursing", nursing_facts(ctx), nursing_rules(ctx), period=day
        ),
    ]
