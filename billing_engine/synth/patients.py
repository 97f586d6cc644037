"""The patients (age, payer group, Part B, death, new patients, PCP and care manager) and
their conditions.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.synth.arrays import (
    NO_DAY,
    add_years_month_start,
    date_col,
    first_of_month,
    make_ids,
    nearest_weekday,
    pick,
    uniform_day,
    weighted_choice,
)
from billing_engine.synth.draws import Draws
from billing_engine.synth.fixed_data import CM_FIRST, FIRST_F, FIRST_M, LAST, MA, MCD, MCR
from billing_engine.synth.vocabulary import load_vocabulary


class PatientDraws(Draws):
    """Patients and conditions."""

    # -- patients ---------------------------------------------------------------------

    def patients(self) -> None:
        rng, n = self.rng, self.n
        grp = weighted_choice(rng, (0.55, 0.20, 0.10, 0.15), n)
        medicare = grp <= MA
        disabled = medicare & (rng.random(n) < 0.04)
        age = np.select(
            [disabled, medicare, grp == MCD],
            [
                35.0 + 29.0 * rng.random(n),
                65.0 + 27.0 * rng.beta(1.2, 2.2, n),
                19.0 + 45.0 * rng.beta(1.5, 1.8, n),
            ],
            22.0 + 42.0 * rng.beta(2.0, 1.6, n),
        )
        birth = (self.end - np.round(age * 365.25)).astype(np.int64)
        pbs_65 = np.minimum(add_years_month_start(birth, 65), self.ms[-1])
        pbs_disabled = first_of_month(
            (self.end - 365 - np.floor(rng.random(n) * 11 * 365)).astype(np.int64)
        )
        pbs = np.where(disabled, pbs_disabled, np.where(medicare, pbs_65, NO_DAY))
        dual = (grp == MCR) & (rng.random(n) < 0.15)
        qmb = dual & (rng.random(n) < 0.5)
        female = rng.random(n) < 0.56
        dies = rng.random(n) < 0.003 + 0.012 * (age >= 85)
        death_day = self.start + np.floor(rng.random(n) * (self.end - self.start + 1))
        death = np.where(dies, death_day, NO_DAY).astype(np.int64)
        new = rng.random(n) < 0.06
        join = nearest_weekday(
            (self.start + np.floor(rng.random(n) * (self.end - self.start - 20))).astype(np.int64)
        )
        no_routine = (rng.random(n) < 0.03) & ~new
        pcp = weighted_choice(rng, (0.40, 0.35, 0.25), n)
        cm = CM_FIRST + weighted_choice(rng, (0.35, 0.35, 0.20, 0.10), n)
        zip_codes = load_vocabulary().zips
        zips = rng.integers(0, len(zip_codes), n)
        first_idx = rng.integers(0, len(FIRST_F), n)
        last_idx = rng.integers(0, len(LAST), n)

        self.grp, self.medicare, self.age, self.birth = grp, medicare, age, birth
        self.pbs, self.dual, self.new, self.join = pbs, dual, new, join
        self.no_routine, self.pcp, self.cm = no_routine, pcp, cm
        # the day after which nothing happens (death) or a day past every date
        self.last_day = np.where(dies, death, self.end + 1).astype(np.int64)
        self.patient_ids = make_ids("PT", n).alias("patient_id")

        sex = np.where(female, "F", "M")
        first_name = np.where(
            female, np.asarray(FIRST_F)[first_idx], np.asarray(FIRST_M)[first_idx]
        )
        frame = pl.DataFrame(
            {
                "patient_id": self.patient_ids,
                "birth_date": birth,
                "sex": sex,
                "first_name": first_name,
                "last_name": np.asarray(LAST)[last_idx],
                "zip": np.asarray(zip_codes)[zips],
                "part_b_start": pbs,
                "qmb": qmb,
                "qmb_known": medicare,
                "death_date": death,
            }
        )
        self.frames["patients"] = frame.with_columns(
            date_col("birth_date"),
            date_col("part_b_start"),
            date_col("death_date"),
            pl.when(pl.col("qmb_known")).then(pl.col("qmb")).alias("qmb"),
        ).drop("qmb_known")

    # -- conditions -------------------------------------------------------------------

    def conditions(self) -> None:
        rng, n = self.rng, self.n
        vocabulary = load_vocabulary()
        chronic_table = vocabulary.chronic
        codes = [c[0] for c in chronic_table]
        k = len(codes)
        old = self.age >= 65
        w_old = np.array([c[1] for c in chronic_table])
        w_young = np.array([c[2] for c in chronic_table])
        weights = np.where(old[:, None], w_old[None, :], w_young[None, :])
        count = np.minimum(rng.poisson(np.where(old, 2.9, 1.0)), k)
        # sampling without replacement, weighted: smallest exponential keys win
        keys = rng.exponential(size=(n, k)) / weights
        order = np.argsort(keys, axis=1)
        rows, cols = np.nonzero(np.arange(k)[None, :] < count[:, None])
        pat = rows.astype(np.int64)
        code = order[rows, cols].astype(np.int64)
        m = len(pat)

        has_onset = rng.random(m) < 0.60
        onset_before = (self.start - 30 - np.floor(rng.random(m) * 15 * 365)).astype(np.int64)
        recent = rng.random(m) < 0.03
        onset_in = uniform_day(
            rng, np.full(m, self.start, dtype=np.int64), np.full(m, self.end, dtype=np.int64)
        )
        onset = np.where(recent, onset_in, np.where(has_onset, onset_before, NO_DAY))
        resolves = rng.random(m) < 0.02
        lo = np.maximum(np.where(onset == NO_DAY, self.history_start, onset), self.history_start)
        resolved_day = uniform_day(rng, lo + 30, np.full(m, self.end, dtype=np.int64))
        resolved = np.where(resolves & (lo + 30 <= self.end), resolved_day, NO_DAY)

        chronic = np.full(m, -1, dtype=np.int64)  # -1 blank, 0 false, 1 true
        draw = rng.random(m)
        for name, (probability, value) in vocabulary.chronic_overrides.items():
            chosen = (code == codes.index(name)) & (draw < probability)
            chronic[chosen] = int(value)
        in_value_set = np.array([c[3] for c in chronic_table])[code]
        counts = np.where(chronic == -1, in_value_set, chronic == 1)
        active = resolved == NO_DAY
        # distinct categories (first three characters) per patient
        categories = sorted({c[:3] for c in codes})
        code_category = np.array([categories.index(c[:3]) for c in codes], dtype=np.int64)
        pairs = np.unique(
            pat[counts & active] * len(categories) + code_category[code][counts & active]
        )
        self.n_cat = np.bincount(pairs // len(categories), minlength=n).astype(np.int64)
        self.tobacco = np.zeros(n, dtype=np.bool_)
        self.tobacco[pat[code == codes.index(vocabulary.tobacco)]] = True
        self.mnt_dx = np.zeros(n, dtype=np.bool_)
        for name in vocabulary.mnt_diagnoses:
            self.mnt_dx[pat[code == codes.index(name)]] = True
        self.obese = np.zeros(n, dtype=np.bool_)
        self.obese[pat[code == codes.index(vocabulary.obesity)]] = True

        acute = np.nonzero(rng.random(n) < 0.06)[0]
        a = len(acute)
        a_onset = uniform_day(
            rng, np.full(a, self.start, dtype=np.int64), np.full(a, self.end, dtype=np.int64)
        )
        a_resolved = a_onset + 7 + np.floor(rng.random(a) * 15).astype(np.int64)
        acute_code = rng.integers(0, len(vocabulary.acute), a)

        frame = pl.concat(
            [
                pl.DataFrame(
                    {
                        "pat": pat,
                        "icd10": pick(codes, code),
                        "onset_date": onset,
                        "resolved_date": resolved,
                        "chronic_code": chronic,
                    }
                ),
                pl.DataFrame(
                    {
                        "pat": acute.astype(np.int64),
                        "icd10": pick(vocabulary.acute, acute_code),
                        "onset_date": a_onset,
                        "resolved_date": np.where(a_resolved <= self.end, a_resolved, NO_DAY),
                        "chronic_code": np.zeros(a, dtype=np.int64),
                    }
                ),
            ]
        ).sort("pat", maintain_order=True)
        self.frames["conditions"] = frame.with_columns(
            date_col("onset_date"),
            date_col("resolved_date"),
            pl.when(pl.col("chronic_code") >= 0).then(pl.col("chronic_code") == 1).alias("chronic"),
        ).drop("chronic_code")
