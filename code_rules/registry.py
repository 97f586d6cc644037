"""The code families the engine evaluates, in order.

Each family is a package under ``code_rules/`` with ``rule.py`` (an ``evaluate``
function), ``parameters.yaml`` (codes, thresholds and settings with their sources) and
a README. Conflicts between families are settled afterwards by
``code_rules/conflicts.yaml``.
"""

from __future__ import annotations

from billing_engine.engine.family import FamilyEvaluator
from code_rules.ccm import rule as ccm
from code_rules.medicaid import rule as medicaid
from code_rules.mnt import rule as mnt
from code_rules.nurse_visit import rule as nurse_visit
from code_rules.obesity import rule as obesity
from code_rules.tcm import rule as tcm
from code_rules.tobacco import rule as tobacco
from code_rules.wellness import rule as wellness

FAMILIES: dict[str, FamilyEvaluator] = {
    "ccm": ccm.evaluate,
    "tcm": tcm.evaluate,
    "wellness": wellness.evaluate,
    "nurse_visit": nurse_visit.evaluate,
    "obesity": obesity.evaluate,
    "tobacco": tobacco.evaluate,
    "mnt": mnt.evaluate,
    "medicaid": medicaid.evaluate,
}
