"""The shipped rulebook: every family of ``registry``, the parameter files under
``code_rules/``, ``conflicts.yaml`` and the fee data of ``pricing/data``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from billing_engine.engine.rulebook import Rulebook
from billing_engine.params.conflict_table import ConflictTable, load_table
from billing_engine.params.parameters import ParameterSet
from billing_engine.pricing.fees import FeeLibrary

ROOT = Path(__file__).resolve().parent
CONFLICTS_FILE = ROOT / "conflicts.yaml"
FEE_DATA = ROOT / "pricing" / "data"


@lru_cache(maxsize=1)
def shipped_parameters() -> ParameterSet:
    """Every ``parameters.yaml`` under ``code_rules/``, loaded once per process."""
    return ParameterSet.load([ROOT])


def shipped_conflicts() -> ConflictTable:
    return load_table(CONFLICTS_FILE)


@lru_cache(maxsize=1)
def shipped_fees() -> FeeLibrary:
    """The fee data shipped with the rules (loaded once per process)."""
    return FeeLibrary.load_dir(FEE_DATA)


@lru_cache(maxsize=1)
def shipped_rulebook() -> Rulebook:
    from code_rules.registry import FAMILIES

    return Rulebook(FAMILIES, shipped_parameters(), shipped_conflicts(), shipped_fees())
