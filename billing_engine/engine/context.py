"""What one evaluation reads: the bundle, the month, the as-of date and its parameters.

``EvalContext`` is immutable; the frames several families share (time entries, daily
minutes, chronic conditions, ...) are computed once per evaluation into its ``memo``,
the one mutable part, made explicit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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

    def narrowed_to(self, patients: pl.DataFrame) -> EvalContext:
        """The same evaluation over only the rows of `patients` (a ``patient_id`` frame).

        Every rule is per patient (the premise of evaluating in patient parts,
        ``engine.partitions``), so a family whose candidates are a few patients' events
        of the month gives the same result from their rows alone, without reading
        everyone's. The memo starts afresh: its frames were of the whole bundle.
        """
        return replace(self, bundle=self.bundle.narrowed_to(patients), memo=Memo())

    def in_month(self, column: str) -> pl.Expr:
        return pl.col(column).is_between(self.start, self.end)
