"""The state of one synthetic practice being drawn: its window, its random stream and
what the earlier draws decided (per patient arrays, consents, visits).

Each generator (``patients``, ``coverage``, ``consents``, ``visits``, ``programs``,
``records``, ``fixed_data``) is a ``Draws`` subclass adding the methods that draw its
tables; ``practice._Practice`` combines them and fixes the call order, hence the stream.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.calendar import Month, federal_holidays
from billing_engine.synth.arrays import F64, I64, Bool, day_number


class Draws:
    """The window and random stream, and the results later draws depend on."""

    # set by PatientDraws.patients
    grp: I64  # payer group: MCR, MA, MCD, COM
    medicare: Bool
    age: F64
    birth: I64
    pbs: I64  # Part B start (NO_DAY when none)
    dual: Bool
    new: Bool
    join: I64
    no_routine: Bool
    pcp: I64
    cm: I64
    last_day: I64
    patient_ids: pl.Series
    # set by CoverageDraws.coverages
    ex_commercial: Bool
    # set by PatientDraws.conditions
    n_cat: I64
    tobacco: Bool
    mnt_dx: Bool
    obese: Bool
    # set by ConsentDraws.consents
    c_pat: I64
    c_obtained: I64
    c_stop: I64
    # set by VisitDraws
    prior_awv: pl.DataFrame
    visits: pl.DataFrame
    # set by ProgramDraws
    ccm_cells: tuple[I64, I64]
    ibt_weights: pl.DataFrame

    def __init__(self, patients: int, seed: int, end_month: Month, months: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = patients
        self.seed = seed
        self.end_month = end_month
        first = end_month.shift(-(months - 1))
        self.month_list = [first.shift(i) for i in range(months)]
        self.ms = np.array([day_number(m.start) for m in self.month_list], dtype=np.int64)
        self.me = np.array([day_number(m.end) for m in self.month_list], dtype=np.int64)
        self.start = int(self.ms[0])
        self.end = int(self.me[-1])
        self.history_start = day_number(first.shift(-12).start)
        self.holidays = federal_holidays(first.year - 2, end_month.year + 1)
        self.frames: dict[str, pl.DataFrame] = {}
        self.parts: list[pl.DataFrame] = []

    def _start_times(self, rows: int, first: int, step: int, slots: int) -> I64:
        return (first + step * np.floor(self.rng.random(rows) * slots)).astype(np.int64)

    def active_ccm_cells(self) -> tuple[I64, I64]:
        """(consent index, month index) of every consent-month in which CCM time is logged."""
        active = (self.me[None, :] >= self.c_obtained[:, None]) & (
            self.ms[None, :] <= self.c_stop[:, None]
        )
        consent, month = np.nonzero(active)
        return consent.astype(np.int64), month.astype(np.int64)
