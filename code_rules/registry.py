"""The code families the engine evaluates, in order."""

from __future__ import annotations

from billing_engine.family import FamilyEvaluator
from code_rules.ccm import rule as ccm

FAMILIES: dict[str, FamilyEvaluator] = {
    "ccm": ccm.evaluate,
}
