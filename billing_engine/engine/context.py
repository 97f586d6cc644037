"""What one evaluation reads: the bundle, the month, the as-of date and its parameters.

``EvalContext`` is immutable; the frames several families share (time entries, daily
minutes, chronic conditions, ...) are computed once per evaluation into its ``memo``,
the one mutable part, made explicit (and safe to share between the threads of
families evaluated at once).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import polars as pl

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.params.period import PeriodParameters


class Memo:
    """Frames computed once per evaluation, by name, whichever thread asks first.

    Each name has its own lock, held while its frame is built: a second thread asking
    for it waits for that frame instead of building it again, and threads asking for
    other names go on. A build may ask for other names (never, through them, for its
    own: that would recurse), so the locks are always taken in one dependency order
    and cannot deadlock.
    """

    def __init__(self) -> None:
        self._frames: dict[str, pl.DataFrame] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()  # guards `_locks`

    def frame(self, name: str, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """The frame `name`, built by `build` the first time it is asked for."""
        found = self._frames.get(name)
        if found is not None:
            return found
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
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
