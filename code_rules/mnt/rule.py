"""Placeholder: the mnt family is being built (issue 3)."""

from __future__ import annotations

from collections.abc import Sequence

from billing_engine.family import RuleSetResult
from billing_engine.normalize import EvalContext

FAMILY = "mnt"


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    return []
