"""What the web app keeps between requests: the store, and each month's evaluation.

Evaluating a month is the slow part of every screen (seconds on a large practice), and
every care manager looks at the same month, so one evaluation per (month, as-of day)
is kept and shared: the first request computes it under a lock, the others wait for it
and then read it. The evaluation is dropped when the store changes: a new import or a
close command (``StoreVersion``), so a screen never shows a month older than the store.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

import polars as pl
import sqlalchemy as sa

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.services.close.evaluation import evaluate_from_store, store_fees
from billing_engine.services.evaluation import EvaluationResult
from billing_engine.services.worklist import worklist
from billing_engine.store import Store

MAX_KEPT = 4  # evaluations kept (months x as-of days); the oldest goes first


@dataclass(frozen=True)
class MonthView:
    """One month evaluated from the store, with its whole worklist."""

    month: Month
    as_of: dt.date
    bundle: Bundle
    result: EvaluationResult
    worklist: pl.DataFrame


@dataclass
class AppState:
    store: Store
    _views: dict[tuple[str, dt.date], tuple[tuple[object, ...], MonthView]] = field(
        default_factory=dict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _computing: dict[tuple[str, dt.date], threading.Lock] = field(default_factory=dict)
    _fees: tuple[tuple[object, ...], FeeLibrary] | None = None

    def version(self) -> tuple[object, ...]:
        """What changes whenever the store does: imports and close changes."""
        with self.store.engine.connect() as connection:
            imports = connection.execute(
                sa.text("SELECT COUNT(*), MAX(created_at) FROM imports")
            ).one()
            closes = connection.execute(
                sa.text("SELECT COUNT(*), MAX(updated_at) FROM close_months")
            ).one()
        return (*tuple(imports), *tuple(closes))

    def month_view(self, month: Month, as_of: dt.date) -> MonthView:
        """The month's evaluation as of `as_of`, computed once while the store is unchanged."""
        key = (str(month), as_of)
        version = self.version()
        with self._lock:
            kept = self._views.get(key)
            if kept is not None and kept[0] == version:
                return kept[1]
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                kept = self._views.get(key)
                if kept is not None and kept[0] == version:
                    return kept[1]
            bundle, result = evaluate_from_store(self.store, month, as_of)
            view = MonthView(month, as_of, bundle, result, worklist(result, bundle))
            with self._lock:
                self._views[key] = (version, view)
                while len(self._views) > MAX_KEPT:
                    self._views.pop(next(iter(self._views)))
            return view

    def fees(self) -> FeeLibrary:
        """The store's fee library (``store_fees``), read once while the store is unchanged."""
        version = self.version()
        with self._lock:
            if self._fees is not None and self._fees[0] == version:
                return self._fees[1]
        library = store_fees(self.store)
        with self._lock:
            self._fees = (version, library)
        return library

    def forget(self) -> None:
        """Drop every kept evaluation (after a change the version would not show)."""
        with self._lock:
            self._views.clear()
