"""Time entries and program encounters: CCM time, nurse visits, tobacco and obesity
counseling, Medicaid case management, MNT (with its referrals).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.synth.arrays import (
    date_col,
    encounter_rows,
    make_ids,
    nearest_weekday,
    pick,
    repeat_rows,
    uniform_day,
    weekday_within,
    weighted_choice,
)
from billing_engine.synth.draws import Draws
from billing_engine.synth.fixed_data import (
    ACTIVITY_SETS,
    ACTIVITY_WEIGHTS,
    CM_FIRST,
    CM_MINUTE_WEIGHTS,
    CM_MINUTES,
    LCSW,
    MCD,
    PRACTITIONERS,
    RD,
    RN,
    SCHEDULER,
)


class ProgramDraws(Draws):
    """Care programs."""

    # -- time entries -------------------------------------------------------------------------

    def ccm_time(self) -> None:
        rng = self.rng
        m = len(self.c_pat)
        rate = rng.gamma(4.0, 0.45, m)
        consent, month = self.active_ccm_cells()
        cells = len(consent)
        self.ccm_cells = (consent, month)
        count = np.minimum(rng.poisson(rate[consent]), 6).astype(np.int64)
        early = rng.random(cells) < 0.02
        lo_cell = np.where(
            early, self.ms[month], np.maximum(self.ms[month], self.c_obtained[consent])
        ).astype(np.int64)
        hi_cell = self.me[month]
        mdm_cell = rng.random(cells) < 0.10
        mdm_high = rng.random(cells) < 0.30

        cell, position = repeat_rows(count)
        rows = len(cell)
        pat = self.c_pat[consent[cell]]
        lo, hi = lo_cell[cell], hi_cell[cell]
        day = weekday_within(uniform_day(rng, lo, hi), lo, hi)
        minutes = np.asarray(CM_MINUTES, dtype=np.int64)[
            weighted_choice(rng, CM_MINUTE_WEIGHTS, rows)
        ]
        who = rng.random(rows)
        other_cm = CM_FIRST + (self.cm[pat] - CM_FIRST + 1 + rng.integers(0, 3, rows)) % 4
        performer = np.select(
            [who < 0.86, who < 0.92, who < 0.97],
            [self.cm[pat], other_cm, self.pcp[pat]],
            SCHEDULER,
        ).astype(np.int64)
        failed = rng.random(rows) < 0.04
        minutes = np.where(failed, 2 + rng.integers(0, 3, rows), minutes)
        minutes = np.where(performer == SCHEDULER, 5, minutes).astype(np.int64)
        timed = rng.random(rows) < 0.60
        start = np.where(timed, self._start_times(rows, 8 * 60, 5, 109), -1).astype(np.int64)
        mode = weighted_choice(rng, (0.68, 0.15, 0.10, 0.07), rows)
        activity = weighted_choice(rng, ACTIVITY_WEIGHTS, rows)
        has_mdm = mdm_cell[cell] & (position == 0)
        mdm = np.where(has_mdm, np.where(mdm_high[cell], 2, 1), 0).astype(np.int64)
        billing = self.pcp[pat]
        self.parts.append(
            encounter_rows(
                "care_management",
                pat,
                day,
                minutes,
                performer,
                billing=billing,
                start=start,
                program="ccm",
                contact_mode=pick(("phone", "portal", "video", "in_person"), mode),
                activities=pick(ACTIVITY_SETS, np.where(failed, 0, activity).astype(np.int64)),
                mdm=pick((None, "moderate", "high"), mdm),
                outcome=pick((None, "attempt_failed"), failed.astype(np.int64)),
            )
        )
        # a few overlapping entries: a colleague logs time inside another entry's span
        overlap = np.nonzero(timed & ~failed & (rng.random(rows) < 0.03) & (minutes >= 5))[0]
        o = len(overlap)
        o_start = start[overlap] + np.floor(rng.random(o) * minutes[overlap]).astype(np.int64)
        o_performer = CM_FIRST + (self.cm[pat[overlap]] - CM_FIRST + 1 + rng.integers(0, 3, o)) % 4
        self.parts.append(
            encounter_rows(
                "care_management",
                pat[overlap],
                day[overlap],
                np.asarray((5, 10, 15), dtype=np.int64)[rng.integers(0, 3, o)],
                o_performer.astype(np.int64),
                billing=billing[overlap],
                start=o_start,
                program="ccm",
                contact_mode="phone",
                activities="care_coordination",
            )
        )

    def nurse_visits(self) -> None:
        rng, n = self.rng, self.n
        months = len(self.ms)
        pat, month = np.nonzero(rng.random((n, months)) < 0.012)
        pat = pat.astype(np.int64)
        lo, hi = self.ms[month], self.me[month]
        day = weekday_within(uniform_day(rng, lo, hi), lo, hi)
        in_window = self.visits.filter(pl.col("date") >= self.start)
        same_day = rng.random(in_window.height) < 0.03
        pat = np.concatenate([pat, in_window["pat"].to_numpy()[same_day]]).astype(np.int64)
        day = np.concatenate([day, in_window["date"].to_numpy()[same_day]]).astype(np.int64)
        rows = len(pat)
        self.parts.append(
            encounter_rows(
                "nurse_visit",
                pat,
                day,
                np.full(rows, 10, dtype=np.int64),
                np.asarray(RN, dtype=np.int64)[rng.integers(0, 2, rows)],
                billing=self.pcp[pat],
                start=self._start_times(rows, 8 * 60, 15, 33),
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    def tobacco_counseling(self) -> None:
        rng = self.rng
        in_window = self.visits.filter(pl.col("date") >= self.start)
        pat = in_window["pat"].to_numpy().astype(np.int64)
        chosen = self.tobacco[pat] & (rng.random(len(pat)) < 0.40)
        pat = pat[chosen]
        rows = len(pat)
        self.parts.append(
            encounter_rows(
                "tobacco_counseling",
                pat,
                in_window["date"].to_numpy()[chosen].astype(np.int64),
                np.asarray((3, 4, 5, 8, 10, 12, 15), dtype=np.int64)[rng.integers(0, 7, rows)],
                self.pcp[pat],
                billing=self.pcp[pat],
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    def obesity_counseling(self) -> None:
        """IBT for obesity: a course started inside the window, on the NCD's cadence."""
        rng, n = self.rng, self.n
        starts = np.nonzero(self.medicare & self.obese & (rng.random(n) < 0.08))[0]
        lo = np.full(len(starts), self.start, dtype=np.int64)
        hi = np.full(len(starts), self.end, dtype=np.int64)
        first = weekday_within(uniform_day(rng, lo, hi), lo, hi)
        lost = rng.normal(3.5, 2.0, len(starts))
        # weekly in month 1, every other week in months 2-6, monthly in 7-12 after 3 kg lost
        offsets = np.concatenate(
            [np.arange(0, 28, 7), np.arange(28, 168, 14), np.arange(182, 365, 30)]
        ).astype(np.int64)
        course = np.repeat(np.arange(len(starts)), len(offsets))
        day = first[course] + np.tile(offsets, len(starts))
        keep = (day <= self.end) & ((np.tile(offsets, len(starts)) < 182) | (lost[course] >= 3))
        course, day = course[keep], day[keep]
        pat = starts[course].astype(np.int64)
        group = rng.random(len(starts)) < 0.10
        self.parts.append(
            encounter_rows(
                "obesity_counseling",
                pat,
                day,
                np.where(group[course], 30, 15).astype(np.int64),
                self.pcp[pat],
                billing=self.pcp[pat],
                contact_mode=pl.Series(np.where(group[course], "group", "in_person")),
                place_of_service="11",
            )
        )
        weight = rng.normal(102.0, 12.0, len(starts)).round(1)
        bmi = (30.0 + rng.gamma(2.0, 2.5, len(starts))).round(1)
        self.ibt_weights = pl.DataFrame(
            {
                "pat": np.concatenate([starts, starts, starts]).astype(np.int64),
                "date": np.concatenate([first, first, first + 168]).astype(np.int64),
                "kind": ["bmi"] * len(starts) + ["weight_kg"] * (2 * len(starts)),
                "value": np.concatenate([bmi, weight, (weight - lost).round(1)]),
            }
        ).filter(pl.col("date") <= self.end)

    def case_management(self) -> None:
        rng, n = self.rng, self.n
        enrolled = (self.grp == MCD) & (rng.random(n) < 0.20)
        months = len(self.ms)
        active = enrolled[:, None] & (rng.random((n, months)) < 0.65)
        pat_cell, month_cell = np.nonzero(active)
        count = (1 + np.floor(rng.random(len(pat_cell)) * 3)).astype(np.int64)
        cell, _ = repeat_rows(count)
        pat = pat_cell[cell].astype(np.int64)
        rows = len(pat)
        lo, hi = self.ms[month_cell[cell]], self.me[month_cell[cell]]
        day = weekday_within(uniform_day(rng, lo, hi), lo, hi)
        performer = np.where(
            rng.random(rows) < 0.5, LCSW, np.asarray(RN)[rng.integers(0, 2, rows)]
        ).astype(np.int64)
        self.parts.append(
            encounter_rows(
                "care_management",
                pat,
                day,
                np.asarray((5, 8, 10, 15, 20, 25, 30, 40), dtype=np.int64)[
                    rng.integers(0, 8, rows)
                ],
                performer,
                billing=self.pcp[pat],
                start=self._start_times(rows, 8 * 60, 5, 109),
                program="case_management",
                contact_mode=pl.Series(np.where(rng.random(rows) < 0.6, "phone", "in_person")),
                activities="care_coordination",
            )
        )

    def mnt(self) -> None:
        rng, n = self.rng, self.n
        referred = np.nonzero(self.medicare & self.mnt_dx & (rng.random(n) < 0.06))[0]
        r = len(referred)
        ref_day = weekday_within(
            uniform_day(
                rng,
                np.full(r, self.start, dtype=np.int64),
                np.full(r, self.end - 10, dtype=np.int64),
            ),
            np.full(r, self.start, dtype=np.int64),
            np.full(r, self.end, dtype=np.int64),
        )
        reason = np.where(rng.random(r) < 0.8, "initial", "annual")
        referrals = pl.DataFrame(
            {
                "pat": referred.astype(np.int64),
                "date": ref_day,
                "referring_practitioner_id": pick(
                    [p[0] for p in PRACTITIONERS], self.pcp[referred]
                ),
                "reason": reason,
            }
        ).sort("pat", "date", maintain_order=True)
        self.frames["referrals"] = referrals.select(
            make_ids("RF", referrals.height).alias("referral_id"),
            "pat",
            date_col("date"),
            "referring_practitioner_id",
            pl.lit("mnt").alias("service"),
            "reason",
        )
        sessions = (1 + np.floor(rng.random(r) * 3)).astype(np.int64)
        cell, position = repeat_rows(sessions)
        pat = referred[cell].astype(np.int64)
        rows = len(pat)
        first_gap = (7 + np.floor(rng.random(r) * 14)).astype(np.int64)
        day = nearest_weekday(ref_day[cell] + first_gap[cell] + 14 * position)
        minutes = np.where(position == 0, 60, 30 + 15 * rng.integers(0, 2, rows)).astype(np.int64)
        self.parts.append(
            encounter_rows(
                "mnt",
                pat,
                day,
                minutes,
                np.full(rows, RD, dtype=np.int64),
                billing=np.full(rows, RD, dtype=np.int64),
                start=self._start_times(rows, 9 * 60, 30, 14),
                contact_mode="in_person",
                place_of_service="11",
            )
        )
