"""Claims history (past visits, prior AWVs, another practice's CCM) and measurements."""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.synth.arrays import I64, date_col, pick, uniform_day, weighted_choice
from billing_engine.synth.draws import Draws
from billing_engine.synth.fixed_data import COM, OTHER_PRACTICE_NPI, PAYERS, PRACTITIONERS, make_npi
from billing_engine.synth.vocabulary import load_vocabulary


class RecordDraws(Draws):
    """Claims history and measurements."""

    # -- claims and measurements -------------------------------------------------------------

    def _payer_on(self, pat: I64, day: I64) -> pl.Series:
        payer = np.where(
            self.ex_commercial[pat] & (day < self.pbs[pat]), COM, self.grp[pat]
        ).astype(np.int64)
        return pick([p[0] for p in PAYERS], payer)

    def claims(self) -> None:
        rng = self.rng
        npis = [make_npi(p[3]) if p[3] else None for p in PRACTITIONERS]
        past = self.visits.filter(pl.col("date") < self.start)
        past = past.filter(pl.Series(rng.random(past.height) < 0.85))
        visit_claims = past.select(
            "pat", "date", "billing", code=pl.col("cpt").str.split(";")
        ).explode("code")
        v_pat = visit_claims["pat"].to_numpy().astype(np.int64)
        v_day = visit_claims["date"].to_numpy().astype(np.int64)
        awv = self.prior_awv.filter(pl.Series(rng.random(self.prior_awv.height) < 0.90))
        a_pat = awv["pat"].to_numpy().astype(np.int64)
        consent, month = self.ccm_cells
        other = rng.random(len(consent)) < 0.01
        o_pat = self.c_pat[consent[other]]
        o_month = month[other]
        o_day = uniform_day(rng, self.ms[o_month], self.me[o_month])
        pat = np.concatenate([v_pat, a_pat, o_pat]).astype(np.int64)
        day = np.concatenate([v_day, awv["date"].to_numpy(), o_day]).astype(np.int64)
        npi = pl.concat(
            [
                pick(npis, visit_claims["billing"].to_numpy().astype(np.int64)),
                pick(npis, self.pcp[a_pat]),
                pl.Series([OTHER_PRACTICE_NPI] * len(o_pat), dtype=pl.String),
            ]
        )
        code = pl.concat(
            [
                visit_claims["code"],
                awv["code"],
                pl.Series([load_vocabulary().other_practice_ccm] * len(o_pat), dtype=pl.String),
            ]
        )
        status = weighted_choice(rng, (0.95, 0.03, 0.02), len(pat))
        frame = pl.DataFrame(
            {
                "pat": pat,
                "code": code,
                "units": np.ones(len(pat), dtype=np.int64),
                "date_of_service": day,
                "billing_npi": npi,
                "payer_id": self._payer_on(pat, day),
                "status": pick(("paid", "denied", "pending"), status),
            }
        )
        frame = frame.unique(
            subset=["pat", "code", "date_of_service", "billing_npi"],
            keep="first",
            maintain_order=True,
        ).sort("pat", "date_of_service", "code", maintain_order=True)
        self.frames["claims_history"] = frame.with_columns(date_col("date_of_service"))

    def measurements(self) -> None:
        rng, n = self.rng, self.n
        female = (self.frames["patients"]["sex"] == "F").to_numpy()
        base = np.where(self.obese, 30.0 + rng.gamma(2.0, 2.5, n), rng.normal(28.5, 5.5, n)).clip(
            16.0, 60.0
        )
        height = np.where(female, rng.normal(1.62, 0.07, n), rng.normal(1.76, 0.07, n))
        measured = rng.random(n) < 0.60
        weighed = measured & (rng.random(n) < 0.35)
        visits = self.visits.filter(pl.col("date") >= self.start)
        pat = visits["pat"].to_numpy().astype(np.int64)
        take = measured[pat] & (rng.random(len(pat)) < 0.85)
        pat = pat[take]
        day = visits["date"].to_numpy()[take].astype(np.int64)
        bmi = np.round(base[pat] + rng.normal(0.0, 0.5, len(pat)), 1)
        w = weighed[pat]
        weight = np.round(bmi[w] * height[pat[w]] ** 2, 1)
        frame = pl.concat(
            [
                pl.DataFrame({"pat": pat, "date": day, "kind": "bmi", "value": bmi}),
                pl.DataFrame({"pat": pat[w], "date": day[w], "kind": "weight_kg", "value": weight}),
                self.ibt_weights,
            ]
        )
        # one value per patient, day and kind (an IBT start may fall on a visit day)
        frame = frame.unique(subset=["pat", "date", "kind"], keep="first", maintain_order=True)
        frame = frame.sort("pat", "date", "kind", maintain_order=True)
        self.frames["measurements"] = frame.with_columns(date_col("date"))
