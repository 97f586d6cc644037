"""Office visits (routine, initiating, TCM face-to-face), wellness visits, discharges and
TCM contacts.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.calendar import add_business_days_expr
from billing_engine.synth.arrays import (
    I64,
    NO_DAY,
    Bool,
    date_col,
    encounter_rows,
    make_ids,
    nearest_weekday,
    next_weekday,
    pick,
    uniform_day,
    weekday_within,
    weighted_choice,
)
from billing_engine.synth.draws import Draws
from billing_engine.synth.fixed_data import LCSW, PCPS, RN
from billing_engine.synth.vocabulary import load_vocabulary


class VisitDraws(Draws):
    """Visits and discharges."""

    # -- visits ------------------------------------------------------------------------------

    def _start_times(self, rows: int, first: int, step: int, slots: int) -> I64:
        return (first + step * np.floor(self.rng.random(rows) * slots)).astype(np.int64)

    def routine_visits(self) -> None:
        rng, n = self.rng, self.n
        interval = (90 + np.floor(rng.random(n) * 91)).astype(np.int64)
        phase = np.floor(rng.random(n) * interval).astype(np.int64)
        first = np.where(self.new, self.join, self.history_start + phase).astype(np.int64)
        slots = (self.end - self.history_start) // 90 + 2
        pats: list[I64] = []
        days: list[I64] = []
        first_visit: list[Bool] = []
        for k in range(slots):
            jitter = np.floor(rng.random(n) * 15).astype(np.int64) - 7 if k else 0
            day = nearest_weekday(first + k * interval + jitter)
            keep = (day <= self.end) & (day >= self.history_start) & ~self.no_routine
            pats.append(np.nonzero(keep)[0].astype(np.int64))
            days.append(day[keep])
            first_visit.append(np.full(int(keep.sum()), k == 0) & self.new[keep])
        pat = np.concatenate(pats)
        day = np.concatenate(days)
        new_visit = np.concatenate(first_visit)
        rows = len(pat)
        vocabulary = load_vocabulary()
        level = weighted_choice(rng, vocabulary.routine_weights, rows)  # MDM low / moderate / high
        new_level = rng.random(rows) < vocabulary.new_moderate_share  # moderate, else low
        cpt = np.where(
            new_visit,
            np.where(new_level, vocabulary.new_moderate, vocabulary.new_low),
            np.asarray(vocabulary.routine_codes)[level],
        )
        mdm_level = np.where(new_visit, np.where(new_level, 1, 0), level)
        base_minutes = np.where(
            new_visit, np.where(new_level, 40, 30), np.asarray((15, 25, 35))[level]
        )
        minutes = np.minimum(base_minutes + np.floor(rng.random(rows) * 10), 40).astype(np.int64)
        covering = rng.random(rows) < 0.04
        performer = np.where(
            covering, (self.pcp[pat] + 1 + rng.integers(0, 2, rows)) % PCPS, self.pcp[pat]
        ).astype(np.int64)
        self.parts.append(
            encounter_rows(
                "office_visit",
                pat,
                day,
                minutes,
                performer,
                billing=performer,
                start=self._start_times(rows, 8 * 60, 15, 34),
                priority=2,
                cpt=pl.Series(cpt),
                mdm=pick(("low", "moderate", "high"), mdm_level.astype(np.int64)),
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    def initiating_visits(self) -> None:
        rng = self.rng
        m = len(self.c_pat)
        chosen = np.nonzero(rng.random(m) < 0.92)[0]
        rows = len(chosen)
        pat = self.c_pat[chosen]
        day = self.c_obtained[chosen]
        vocabulary = load_vocabulary()
        high = rng.random(rows) < vocabulary.initiating_high_share
        g0506 = rng.random(rows) < vocabulary.g0506_share
        new_visit = self.new[pat] & (day == self.join[pat])
        base = np.where(
            new_visit,
            vocabulary.initiating_new,
            np.where(high, vocabulary.initiating_high, vocabulary.initiating_moderate),
        )
        cpt = pl.Series(base) + pl.Series(np.where(g0506, ";" + vocabulary.g0506, ""))
        minutes = (30 + np.floor(rng.random(rows) * 16)).astype(np.int64)
        self.parts.append(
            encounter_rows(
                "office_visit",
                pat,
                day,
                minutes,
                self.pcp[pat],
                billing=self.pcp[pat],
                start=self._start_times(rows, 8 * 60, 15, 34),
                priority=0,
                cpt=cpt,
                mdm=pl.Series(np.where(high, "high", "moderate")),
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    def wellness_visits(self) -> None:
        rng, n = self.rng, self.n
        on_part_b = self.medicare & (self.pbs != NO_DAY)
        awv = np.nonzero(on_part_b & (self.pbs <= self.end - 365) & (rng.random(n) < 0.30))[0]
        a = len(awv)
        day = weekday_within(
            uniform_day(
                rng, np.full(a, self.start, dtype=np.int64), np.full(a, self.end, dtype=np.int64)
            ),
            np.full(a, self.start, dtype=np.int64),
            np.full(a, self.end, dtype=np.int64),
        )
        has_prior = (self.pbs[awv] <= day - 730) & (rng.random(a) < 0.85)
        prior_day = nearest_weekday(
            (day - 365 - np.round(rng.normal(0.0, 25.0, a))).astype(np.int64)
        )
        prior_initial = self.pbs[awv] > prior_day - 365
        vocabulary = load_vocabulary()
        code = np.where(has_prior, vocabulary.awv_subsequent, vocabulary.awv_initial)
        pcp = self.pcp[awv]
        self.parts.append(
            encounter_rows(
                "awv",
                awv.astype(np.int64),
                day,
                (30 + np.floor(rng.random(a) * 16)).astype(np.int64),
                pcp,
                billing=pcp,
                start=self._start_times(a, 8 * 60, 15, 34),
                cpt=pl.Series(code),
                contact_mode="in_person",
                place_of_service="11",
            )
        )
        p = np.nonzero(has_prior)[0]
        prior_code = np.where(prior_initial[p], vocabulary.awv_initial, vocabulary.awv_subsequent)
        self.prior_awv = pl.DataFrame(
            {"pat": awv[p].astype(np.int64), "date": prior_day[p], "code": prior_code}
        )
        self.parts.append(
            encounter_rows(
                "awv",
                awv[p].astype(np.int64),
                prior_day[p],
                (30 + np.floor(rng.random(len(p)) * 16)).astype(np.int64),
                pcp[p],
                billing=pcp[p],
                start=self._start_times(len(p), 8 * 60, 15, 34),
                cpt=pl.Series(prior_code),
                contact_mode="in_person",
                place_of_service="11",
            )
        )

        recent = on_part_b & (self.pbs > self.end - 365) & (self.pbs <= self.end - 30)
        ippe = np.nonzero(recent & (rng.random(n) < 0.40))[0]
        i = len(ippe)
        lo = self.pbs[ippe] + 14
        hi = np.minimum(self.pbs[ippe] + 330, self.end)
        ippe_day = weekday_within(uniform_day(rng, lo, hi), lo, hi)
        self.parts.append(
            encounter_rows(
                "ippe",
                ippe.astype(np.int64),
                ippe_day,
                (30 + np.floor(rng.random(i) * 16)).astype(np.int64),
                self.pcp[ippe],
                billing=self.pcp[ippe],
                start=self._start_times(i, 8 * 60, 15, 34),
                cpt=vocabulary.ippe,
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    # -- discharges and TCM ---------------------------------------------------------------

    def discharges(self) -> None:
        rng, n = self.rng, self.n
        months = len(self.ms)
        burden = 0.4 + 0.3 * self.n_cat
        probability = 0.02 * burden / burden.mean()
        pat, month = np.nonzero(rng.random((n, months)) < probability[:, None])
        pat = pat.astype(np.int64)
        d = len(pat)
        discharge = uniform_day(rng, self.ms[month], self.me[month])
        setting = weighted_choice(rng, (0.74, 0.12, 0.10, 0.04), d)
        los = np.select(
            [setting == 0, setting == 1, setting == 2],
            [
                np.minimum(rng.geometric(0.28, d), 14),
                1 + np.floor(rng.random(d) * 2),
                7 + np.floor(rng.random(d) * 19),
            ],
            7 + np.floor(rng.random(d) * 8),
        ).astype(np.int64)
        disposition = weighted_choice(rng, (0.84, 0.06, 0.04, 0.03, 0.02, 0.01), d)
        frame = pl.DataFrame(
            {
                "pat": pat,
                "admit_date": discharge - los,
                "discharge_date": discharge,
                "setting": pick(("inpatient_acute", "observation", "snf", "irf"), setting),
                "disposition": pick(
                    (
                        "home",
                        "snf",
                        "assisted_living",
                        "nursing_facility",
                        "hospice",
                        "domiciliary",
                    ),
                    disposition,
                ),
            }
        ).sort("pat", "discharge_date", maintain_order=True)
        self.frames["discharges"] = frame.select(
            make_ids("DC", frame.height).alias("discharge_id"),
            "pat",
            date_col("admit_date"),
            date_col("discharge_date"),
            "setting",
            "disposition",
        )
        self._tcm(frame["pat"].to_numpy().astype(np.int64), frame["discharge_date"].to_numpy())

    def _tcm(self, pat: I64, discharge: I64) -> None:
        rng = self.rng
        d = len(pat)
        business = pl.DataFrame({"day": discharge.astype(np.int32)}).select(
            *(
                add_business_days_expr(pl.col("day").cast(pl.Date), k, self.holidays)
                .cast(pl.Int32)
                .alias(f"bd{k}")
                for k in (1, 2, 3)
            )
        )
        bd = np.stack([business[f"bd{k}"].to_numpy().astype(np.int64) for k in (1, 2, 3)])
        outcome = weighted_choice(
            rng, (0.48, 0.29, 0.11, 0.05, 0.07), d
        )  # bd 1/2/3, 2 failed, none
        care_manager = np.where(self.cm[pat] == LCSW, RN[0], self.cm[pat]).astype(np.int64)
        contact = np.nonzero(outcome <= 2)[0]
        c = len(contact)
        self.parts.append(
            encounter_rows(
                "tcm_contact",
                pat[contact],
                bd[outcome[contact], contact],
                (10 + np.floor(rng.random(c) * 16)).astype(np.int64),
                care_manager[contact],
                billing=self.pcp[pat[contact]],
                start=self._start_times(c, 9 * 60, 5, 85),
                contact_mode=pl.Series(np.where(rng.random(c) < 0.9, "phone", "video")),
                activities=pl.Series(
                    np.where(
                        rng.random(c) < 0.6,
                        "medication_reconciliation;care_coordination",
                        "care_coordination;education",
                    )
                ),
            )
        )
        failed = np.nonzero(outcome == 3)[0]
        f = len(failed)
        for k in (0, 1):
            self.parts.append(
                encounter_rows(
                    "tcm_contact",
                    pat[failed],
                    bd[k, failed],
                    np.full(f, 2, dtype=np.int64),
                    care_manager[failed],
                    billing=self.pcp[pat[failed]],
                    start=self._start_times(f, 9 * 60, 5, 85),
                    contact_mode="phone",
                    outcome="attempt_failed",
                )
            )
        visit = np.nonzero(rng.random(d) < 0.90)[0]
        v = len(visit)
        day = next_weekday(discharge[visit] + 5 + np.floor(rng.random(v) * 12).astype(np.int64))
        level = weighted_choice(rng, (0.35, 0.55, 0.10), v)
        vocabulary = load_vocabulary()
        self.parts.append(
            encounter_rows(
                "office_visit",
                pat[visit],
                day,
                (25 + np.floor(rng.random(v) * 16)).astype(np.int64),
                self.pcp[pat[visit]],
                billing=self.pcp[pat[visit]],
                start=self._start_times(v, 8 * 60, 15, 34),
                priority=1,
                cpt=pl.Series(
                    np.where(
                        rng.random(v) < vocabulary.tcm_moderate_share,
                        vocabulary.tcm_moderate,
                        vocabulary.tcm_high,
                    )
                ),
                mdm=pick(("high", "moderate", "low"), level),
                activities=pick(
                    (None, "medication_reconciliation"), (rng.random(v) < 0.8).astype(np.int64)
                ),
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    def dedupe_office_visits(self) -> None:
        """One office visit per patient and day (initiating > TCM face-to-face > routine)."""
        everything = pl.concat(self.parts)
        is_visit = pl.col("kind") == "office_visit"
        self.visits = (
            everything.filter(is_visit)
            .sort("pat", "date", "priority", maintain_order=True)
            .unique(subset=["pat", "date"], keep="first", maintain_order=True)
        )
        self.parts = [self.visits, everything.filter(~is_visit)]
