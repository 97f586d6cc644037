"""The rulebook the engine is handed: families, parameters, conflict table, fee data.

The engine never looks for rules itself: whoever calls ``pipeline.evaluate`` loads a
``Rulebook`` (the shipped one: ``code_rules.rulebook.shipped_rulebook()``) and passes
it in, so a test, a what-if or next year's draft is just another rulebook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from billing_engine.engine.family import FamilyEvaluator
from billing_engine.params.conflict_table import ConflictTable
from billing_engine.params.parameters import ParameterSet
from billing_engine.pricing.fees import FeeLibrary


@dataclass(frozen=True)
class Rulebook:
    families: Mapping[str, FamilyEvaluator]  # name -> evaluator, in evaluation order
    parameters: ParameterSet
    conflicts: ConflictTable
    fees: FeeLibrary

    def only(self, names: set[str] | frozenset[str]) -> Rulebook:
        """The same rulebook with just the named families (in their order)."""
        return replace(self, families={n: f for n, f in self.families.items() if n in names})

    def with_families(self, families: Mapping[str, FamilyEvaluator]) -> Rulebook:
        return replace(self, families=families)

    def with_fees(self, fees: FeeLibrary) -> Rulebook:
        return replace(self, fees=fees)

    def with_parameters(self, parameters: ParameterSet) -> Rulebook:
        return replace(self, parameters=parameters)
