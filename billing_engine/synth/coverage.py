"""The coverages: each patient's payer, the dual eligibles' Medicaid, earlier commercial
coverage.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.synth.arrays import NO_DAY, date_col, jan_first, pick
from billing_engine.synth.draws import Draws
from billing_engine.synth.fixed_data import COM, MA, MCD, MCR, PAYERS


class CoverageDraws(Draws):
    """Coverages."""

    def coverages(self) -> None:
        rng, n = self.rng, self.n
        grp, pbs, birth = self.grp, self.pbs, self.birth
        end_year = self.end_month.year
        ma_start = np.maximum(pbs, jan_first(end_year - rng.integers(0, 6, n)))
        adult = birth + 18 * 365
        other_start = np.maximum(
            adult, (self.end - 30 - np.floor(rng.random(n) * 3650)).astype(np.int64)
        )
        start = np.select([grp == MCR, grp == MA], [pbs, ma_start], other_start)
        lapse = (grp == COM) & (rng.random(n) < 0.03)
        lapse_day = np.maximum(
            start + 30, self.start + np.floor(rng.random(n) * (self.end - self.start))
        ).astype(np.int64)
        end = np.where(lapse & (lapse_day <= self.end), lapse_day, NO_DAY)
        pats = [np.arange(n, dtype=np.int64)]
        payers = [grp]
        starts = [start]
        ends = [end]
        ranks = [np.ones(n, dtype=np.int64)]

        duals = np.nonzero(self.dual)[0]
        dual_start = np.maximum(
            adult[duals],
            (self.end - 30 - np.floor(rng.random(len(duals)) * 3650)).astype(np.int64),
        )
        pats.append(duals)
        payers.append(np.full(len(duals), MCD, dtype=np.int64))
        starts.append(dual_start)
        ends.append(np.full(len(duals), NO_DAY, dtype=np.int64))
        ranks.append(np.full(len(duals), 2, dtype=np.int64))

        self.ex_commercial = self.medicare & (pbs >= self.history_start) & (rng.random(n) < 0.7)
        ex = np.nonzero(self.ex_commercial)[0]
        ex_start = (pbs[ex] - 365 * (2 + np.floor(rng.random(len(ex)) * 10))).astype(np.int64)
        pats.append(ex)
        payers.append(np.full(len(ex), COM, dtype=np.int64))
        starts.append(np.maximum(ex_start, adult[ex]))
        ends.append(pbs[ex] - 1)
        ranks.append(np.ones(len(ex), dtype=np.int64))

        pat = np.concatenate(pats)
        payer = np.concatenate(payers)
        member_number = pl.Series(rng.integers(10**8, 10**9, len(pat))).cast(pl.String)
        prefixes = pick([p[5] for p in PAYERS], payer)
        frame = pl.DataFrame(
            {
                "pat": pat,
                "payer_id": pick([p[0] for p in PAYERS], payer),
                "start_date": np.concatenate(starts),
                "end_date": np.concatenate(ends),
                "rank": np.concatenate(ranks),
                "member_id": prefixes + member_number,
            }
        ).sort("pat", "rank", "start_date", maintain_order=True)
        self.frames["coverages"] = frame.with_columns(date_col("start_date"), date_col("end_date"))
