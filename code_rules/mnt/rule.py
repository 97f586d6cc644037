"""Medical nutrition therapy: 97802/97803/G0270 (individual) and 97804/G0271 (group).

Every code, threshold, window and list comes from ``parameters.yaml`` beside this file
(read through the typed accessor); the requirements in plain words are in ``README.md``.
Two rule sets:

- ``mnt.sessions``: one candidate per patient, date of service, billing practitioner and
  mode (individual, or group when ``contact_mode`` is group): the ``mnt`` encounters of
  that day are one session, their minutes added up before units are counted. Period
  and date of service are the session date. Facts: ``facts_sessions.py``; rules, one
  per code: ``rules_sessions.py``.
- ``mnt.allowance``: the dietitian's work list. One candidate per patient with a
  physician's MNT referral this calendar year (on or before the month's end) whose
  yearly allowance still has minutes after this month's lines; always a gap (``short``
  while the month is open) whose detail says how many minutes remain. Facts:
  ``facts_allowance.py``; rules: ``rules_allowance.py``.

The yearly allowance (MNT-H1) is counted in minutes: claims history of the calendar
year (not denied; a unit of an individual code consumes its unit's minutes, a group
unit the group unit's) plus the sessions of this evaluation that bill, in date order.
A session's units are capped by what remains; the units beyond it bill the
additional-hours code (G0270/G0271) when a physician's additional-hours referral of
the year is on file, else they are a gap. The joins both sets share (claims, referrals,
diagnoses, the allowance's size) are in ``facts_history.py``; the criteria an auditor
reads are in ``criteria.py``; names, codes and unit arithmetic in ``shared.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import RuleSetResult, run_rule_set
from code_rules.mnt.facts_allowance import allowance_facts
from code_rules.mnt.facts_sessions import session_facts
from code_rules.mnt.rules_allowance import allowance_rules
from code_rules.mnt.rules_sessions import session_rules
from code_rules.mnt.shared import FAMILY, family_codes

__all__ = [
    "FAMILY",
    "allowance_facts",
    "allowance_rules",
    "evaluate",
    "family_codes",
    "session_facts",
    "session_rules",
]


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    visit = (pl.col("date"), pl.col("date"))
    sessions = session_facts(ctx)
    return [
        run_rule_set(ctx, FAMILY, "mnt.sessions", sessions, session_rules(ctx), period=visit),
        run_rule_set(
            ctx, FAMILY, "mnt.allowance", allowance_facts(ctx, sessions), allowance_rules(ctx)
        ),
    ]
