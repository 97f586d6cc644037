"""What one evaluation reads: the bundle, the month, the as-of date and its parameters.

``EvalContext`` is immutable; the frames several families share (time entries, daily
minutes, chronic conditions, ...) are computed once per evaluation into its ``memo``,
the one mutable part, made explicit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.params.period import PeriodParameters


class Memo:
    """Frames computed once per evaluation, by name."""

    def __init__(self) -> None:
        self._frames: dict[str, pl.DataFrame] = {}

    def frame(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """The frame `name`, built by `build` the first time it is asked for."""
        if name not in self._frames:
            self._frames[name] = build()
        return self._frames[name]


@dataclass(frozen=True)
class EvalContext:
    """Everything one evaluation reads: the bundle, the period and its parameters."""

    bundle: Bundle
    month: Month
    as_of: dt.date
    params: PeriodParameters
    memo: Memo = field(default_factory=Memo, compare=False)

    @property
    def start(self) -> dt.date:
        return self.month.start

    @property
    def end(self) -> dt.date:
        return self.month.end

    def in_month(self, column: str) -> pl.Expr:
        return pl.col(column).is_between(self.start, self.end)
