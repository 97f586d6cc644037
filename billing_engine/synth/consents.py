"""CCM consents and care plans."""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.synth.arrays import (
    NO_DAY,
    date_col,
    make_ids,
    pick,
    uniform_day,
    weekday_within,
)
from billing_engine.synth.draws import Draws
from billing_engine.synth.fixed_data import PRACTITIONERS


class ConsentDraws(Draws):
    """Consents and care plans."""

    # -- consents and care plans ------------------------------------------------------------

    def consents(self) -> None:
        rng = self.rng
        consented = (self.n_cat >= 2) & (rng.random(self.n) < 0.45)
        pat = np.nonzero(consented)[0].astype(np.int64)
        m = len(pat)
        before = rng.random(m) < 0.55
        obt_before = self.start - 1 - np.floor(rng.random(m) * 548)
        obt_in = self.start + np.floor(rng.random(m) * (self.end - 5 - self.start))
        obtained = np.where(before, obt_before, obt_in).astype(np.int64)
        obtained = np.where(self.new[pat], np.maximum(obtained, self.join[pat]), obtained)
        obtained = weekday_within(obtained, obtained - 2, obtained + 2)
        written = rng.random(m) < 0.30
        revokes = rng.random(m) < 0.03
        rv_lo = np.maximum(obtained + 30, self.start)
        rv_day = uniform_day(rng, rv_lo, np.full(m, self.end, dtype=np.int64))
        revoked = np.where(revokes & (rv_lo <= self.end), rv_day, NO_DAY)
        late_stop = rng.random(m) < 0.30
        # time keeps being logged until `stop` (end of the revocation month, or the next)
        rv_month_end = (
            revoked.astype("datetime64[D]").astype("datetime64[M]") + 1 + late_stop
        ).astype("datetime64[D]").astype(np.int64) - 1
        self.c_pat = pat
        self.c_obtained = obtained
        self.c_stop = np.where(revoked == NO_DAY, self.end, rv_month_end).astype(np.int64)
        self.frames["consents"] = pl.DataFrame(
            {
                "consent_id": make_ids("CN", m),
                "pat": pat,
                "program": pl.Series(["ccm"] * m, dtype=pl.String),
                "obtained_date": obtained,
                "method": np.where(written, "written", "verbal"),
                "billing_practitioner_id": pick([p[0] for p in PRACTITIONERS], self.pcp[pat]),
                "revoked_date": revoked,
            }
        ).with_columns(date_col("obtained_date"), date_col("revoked_date"))

    def care_plans(self) -> None:
        rng = self.rng
        m = len(self.c_pat)
        established = rng.random(m) < 0.95
        offset = np.where(rng.random(m) < 0.5, 0, 1 + np.floor(rng.random(m) * 14))
        est_day = (self.c_obtained + offset).astype(np.int64)
        has_plan = established & (est_day <= self.end)
        consent, month = self.active_ccm_cells()
        cells = len(consent)
        lo = np.maximum(self.ms[month], est_day[consent] + 1)
        hi = self.me[month]
        possible = has_plan[consent] & (lo <= hi)
        draw = rng.random(cells)
        revised = possible & (draw < 0.10)
        reviewed = possible & (draw >= 0.10) & (draw < 0.14)
        day = uniform_day(rng, lo, hi)
        est = np.nonzero(has_plan)[0]
        frame = pl.concat(
            [
                pl.DataFrame(
                    {"pat": self.c_pat[est], "date": est_day[est], "action": "established"}
                ),
                pl.DataFrame(
                    {
                        "pat": self.c_pat[consent[revised]],
                        "date": day[revised],
                        "action": "revised",
                    }
                ),
                pl.DataFrame(
                    {
                        "pat": self.c_pat[consent[reviewed]],
                        "date": day[reviewed],
                        "action": "reviewed",
                    }
                ),
            ]
        ).sort("pat", "date", "action", maintain_order=True)
        self.frames["care_plans"] = frame.select(
            make_ids("CP", frame.height).alias("care_plan_id"),
            "pat",
            pl.lit("ccm").alias("program"),
            date_col("date"),
            "action",
        )
