"""A deterministic synthetic primary-care practice: demo data, test data, benchmark input.

``generate_practice(patients, seed, end_month, months)`` builds a complete interchange
bundle for one practice; ``write_bundle_csv`` writes it as the interchange CSV folder.

Determinism and speed: every random draw comes from ``numpy.random.default_rng(seed)`` in
a fixed order, nothing reads the clock, and every column is built over whole arrays (the
only Python loops run over visit slots, months and tables, never over patients or
encounters). The same arguments always give the same bundle; 100,000 patients take a few
seconds.

Vocabulary: the codes (CPT/HCPCS, ICD-10-CM), the Medicaid fee table, the ZIP codes and
the weights that choose between visit codes live in ``vocabulary.yaml``, read by
``billing_engine.synth.vocabulary`` (the machinery holds no code-shaped literal).

Time frame: "the window" is the ``months`` calendar months ending with ``end_month``;
"history" is the 12 months before it (routine visits, prior-year claims). Consents and
condition onsets reach further back.

Distributions (p = probability, U(a, b) = uniform; per patient unless stated):

- Practice (fixed whatever the size): 3 billing practitioners (MD, DO, NP; primary care;
  NPIs with a valid Luhn check digit over 80840 + 9 digits), 4 care managers (RN, RN,
  LPN, LCSW), 1 RD (bills MNT) and 1 NONCLINICAL scheduler. PCP: MD 40 %, DO 35 %,
  NP 25 %. Assigned care manager: RN 35 % / RN 35 % / LPN 20 % / LCSW 10 %.
- Payers: Original Medicare 55 %, Medicare Advantage 20 % (percent_of_medicare:100),
  Michigan Medicaid 10 % (``schedule``; a small ``fee_schedule`` is included), commercial
  15 % (percent_of_medicare:110). 15 % of Original Medicare patients are dual eligible
  (Medicaid as rank 2); half of the duals are QMB. 3 % of commercial coverages end inside
  the window; 70 % of patients who started Medicare since the history began carry their
  earlier commercial coverage, ending the day before Part B.
- Age at the window's end: Medicare/MA 65 + 27 * Beta(1.2, 2.2) (born about 1933-1960 for
  a 2025 window; 4 % of them disabled, U(35, 64)); Medicaid 19 + 45 * Beta(1.5, 1.8);
  commercial 22 + 42 * Beta(2, 1.6). Part B starts on the 1st of the 65th-birthday month.
  Sex F 56 %. ZIP from 20 Michigan ZIP codes. Death inside the window: p = 0.3 %
  (+1.2 % from age 85), date U over the window; nothing is dated on or after it. 6 %
  are new patients first seen inside the window (new-patient E/M 99203/99204; none of
  the practice's records predate that visit); 3 % have no routine visits.
- Conditions: count ~ Poisson(2.9) from age 65, Poisson(1.0) below (mean about 2.3),
  drawn without replacement from 20 common chronic ICD-10-CM codes with age-specific
  prevalence weights (I10, E78.5, E11.9, E11.65, E66.9, N18.30, I50.22, J44.9, F32.9,
  I48.91, M17.11, G30.9, F41.1, E03.9, I25.10, J45.909, M81.0, G47.33, K21.9, F17.210).
  Onset date on 60 % of rows (U(1 month, 15 years) before the window), inside the window
  on 3 %; 2 % resolved. ``chronic`` is blank except: G47.33 true on 50 %, K21.9 true on
  10 %, M17.11 true on 30 %, F32.9 false on 20 %. 6 % of patients also have one acute
  condition (J06.9, N39.0, J20.9, S93.401A) inside the window, resolved after 7-21 days,
  ``chronic`` false.
- CCM consents: p = 45 % among patients with 2+ counted chronic categories; obtained
  before the window (U over the 18 months before it) for 55 %, inside it for 45 %;
  verbal 70 % / written 30 %; billing practitioner = PCP; 3 % revoked (30 % of those keep
  logging time one month longer). Care plan ``established`` for 95 % (same day 50 %, else
  1-14 days later); per consented patient-month ``revised`` p = 10 %, ``reviewed`` 4 %.
- Routine office visits (kind office_visit): every 3-6 months (interval U(90, 180) days,
  ±7 days jitter, weekdays) from the start of history; 99213 50 % / 99214 40 % /
  99215 10 % with matching minutes 15-40 and MDM low/moderate/high; performer and billing
  practitioner the PCP (4 % a covering colleague). Initiating visit on the consent date
  for 92 % of consents (99214 70 % / 99215 30 %, with G0506 on 30 %).
- Wellness: AWV (kind awv, G0439; G0438 without a prior AWV) for 30 % of Medicare/MA
  patients with Part B for a year or more, date U over the window; 85 % of them (if on
  Part B two years) had one 365 ± 25 days earlier (encounter, and a claim for 90 %).
  IPPE (G0402) for 40 % of those whose Part B started 1-12 months before the window's
  end.
- CCM time (kind care_management, program ccm): per consented patient an engagement
  rate ~ Gamma(4, 0.45); per active patient-month min(Poisson(rate), 6) entries dated
  U over the month (on/after consent; 2 % of first months log one before it); minutes
  from {5..35} with a mode at 10-15 (mean about 15), so monthly totals spread over 0-90
  with their bulk at 15-45; performer the assigned care manager 86 %, another 6 %, the
  PCP 5 %, the NONCLINICAL scheduler 3 %; start_time on 60 %; 3 % of timed entries get an
  overlapping second entry; contact phone 68 % / portal 15 % / video 10 % / in person 7 %;
  1-4 activities; 4 % attempt_failed (2-4 min); MDM moderate (70 %) / high (30 %) on one
  entry in 10 % of patient-months.
- Other encounters: nurse visits (RN, 10 min) on 1.2 % of patient-months plus on the same
  day as 3 % of window office visits; tobacco counseling (3-15 min) at 40 % of window
  office visits of F17.210 patients; Medicaid case management (program case_management,
  1-3 entries of 5-40 min) in 65 % of months for 20 % of Medicaid patients; MNT (RD,
  1-3 sessions after a referral) for 6 % of Medicare diabetic/CKD patients; IBT for
  obesity for 8 % of Medicare/MA patients with E66.9: a course starting U over the window
  (weekly in month 1, every other week in months 2-6, monthly in months 7-12 when the
  weight lost by day 168, Normal(3.5, 2) kg, reaches 3 kg), 15 minutes (group 30 minutes
  for 10 % of courses) with the PCP; BMI 30 + Gamma(2, 2.5) and weight_kg on the first
  day, weight_kg again on day 168.
- Discharges: p = 2 % per patient-month, scaled by chronic burden (0.4 + 0.3 * categories);
  setting inpatient_acute 74 % / observation 12 % / snf 10 % / irf 4 %; disposition home
  84 %, snf 6 %, assisted_living 4 %, nursing_facility 3 %, hospice 2 %, domiciliary 1 %.
  TCM contact (phone, 10-25 min) 1/2/3 business days after discharge for 48/29/11 %,
  two failed attempts for 5 %, none for 7 %; face-to-face visit (99214/99215, MDM high
  35 % / moderate 55 % / low 10 %) 5-16 days after discharge for 90 %.
- Claims history: 85 % of office visits before the window (each cpt code; paid 95 %,
  denied 3 %, pending 2 %), prior AWVs, and a 99490 billed by another practice (its own
  valid NPI) in 1 % of CCM patient-months.
- Measurements: BMI ~ Normal(28.5, 5.5) (30 + Gamma(2, 2.5) with E66.9) for 60 % of
  patients at 85 % of their window office visits; weight_kg from BMI and height for 35 %
  of them.

- Claim data (close.md, "Bundle additions for claims"; ``claim_data``, from a random
  stream of its own so the tables above are the same with or without it): one
  ``practice`` row (group NPI with a valid check digit, TIN, taxonomy 261QP2300X, a
  9-digit Ann Arbor ZIP, phones, 837 submitter and receiver); patient street address
  (apartment on 12 %), city and state from the ZIP; practitioner first/last name split
  from ``name`` and a NUCC taxonomy (the scheduler has none); payer X12 ids (SBR09
  stated for Medicare Advantage only); commercial coverages carry an employer group
  number (60 groups) and relationship child (60 % under 26) or spouse (12 % of the
  others), every other coverage self; a charge master: per code a multiplier U(1.5,
  2.5) on its national Medicare amount, whole dollars, and 95 % of it for the year
  before the window.
- Deliberate defects for the claim edits (drawn among the bundle's rows): 0.7 % of
  coverages without member_id, 0.3 % of patients without address1/address2 (each at
  least one row), 2 patients without sex, the commercial payer without x12_payer_id,
  and no charge row for 99407 and G0473. The demo (2,000 patients, seed 7): 16 of its
  2,269 coverages without member_id, 6 patients without address, 2 without sex.

Modules: ``draws`` (the state being drawn), one per generator (``patients``,
``coverage``, ``consents``, ``visits``, ``programs``, ``records``, ``fixed_data``),
``arrays`` (whole-array helpers), ``vocabulary`` and ``write`` (the CSV folder), and
``claim_data`` with ``claim_vocabulary`` (the claim columns, added after assembly).
This module fixes the order of the draws and assembles the bundle.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.io.schema import TABLE_ORDER, TABLES
from billing_engine.synth.arrays import NO_DAY, date_col, make_ids, minutes_to_time, pick
from billing_engine.synth.claim_data import add_claim_data
from billing_engine.synth.consents import ConsentDraws
from billing_engine.synth.coverage import CoverageDraws
from billing_engine.synth.fixed_data import (
    OTHER_PRACTICE_NPI,
    PRACTITIONERS,
    FixedTables,
    make_npi,
    npi_check_digit,
    npi_is_valid,
)
from billing_engine.synth.patients import PatientDraws
from billing_engine.synth.programs import ProgramDraws
from billing_engine.synth.records import RecordDraws
from billing_engine.synth.visits import VisitDraws
from billing_engine.synth.write import write_bundle_csv

__all__ = [
    "OTHER_PRACTICE_NPI",
    "generate_practice",
    "make_npi",
    "npi_check_digit",
    "npi_is_valid",
    "write_bundle_csv",
]


# tables that only hold what this practice did (nothing before a new patient joined)
_PRACTICE_RECORDS = frozenset({"encounters", "referrals", "claims_history", "measurements"})


class _Practice(
    FixedTables,
    PatientDraws,
    CoverageDraws,
    ConsentDraws,
    VisitDraws,
    ProgramDraws,
    RecordDraws,
):
    """Draws the practice table by table; the call order in ``bundle`` fixes the stream."""

    # -- assembly ------------------------------------------------------------------------------

    def encounters(self) -> None:
        frame = pl.concat(self.parts)
        frame = frame.filter(pl.col("date") <= self.end).sort(
            "date", "pat", "start", "kind", "performer", maintain_order=True
        )
        practitioner_ids = [p[0] for p in PRACTITIONERS]
        self.frames["encounters"] = frame.select(
            make_ids("E", frame.height, max(8, len(str(frame.height)))).alias("encounter_id"),
            "pat",
            date_col("date"),
            minutes_to_time("start").alias("start_time"),
            "minutes",
            pick(practitioner_ids, frame["performer"].to_numpy()).alias("performer_id"),
            pl.when(pl.col("billing") >= 0)
            .then(
                pick(practitioner_ids, np.maximum(frame["billing"].to_numpy(), 0)).alias(
                    "billing_practitioner_id"
                )
            )
            .alias("billing_practitioner_id"),
            "kind",
            "program",
            "contact_mode",
            "mdm",
            pl.col("cpt").str.split(";"),
            pl.col("activities").str.split(";"),
            "place_of_service",
            "outcome",
        )

    def in_care(self, frame: pl.DataFrame, column: str, since_join: bool) -> pl.DataFrame:
        """Drop rows dated on/after the patient's death (and, for the practice's own
        records, before a new patient joined)."""
        pat = frame["pat"].to_numpy().astype(np.int64)
        days = frame[column].cast(pl.Int32).fill_null(NO_DAY).to_numpy().astype(np.int64)
        keep = days < self.last_day[pat]
        if since_join:
            keep &= ~self.new[pat] | (days >= self.join[pat])
        return frame.filter(pl.Series(keep))

    def bundle(self) -> Bundle:
        self.fixed_tables()
        self.patients()
        self.coverages()
        self.conditions()
        self.consents()
        self.care_plans()
        self.routine_visits()
        self.initiating_visits()
        self.wellness_visits()
        self.discharges()
        self.dedupe_office_visits()
        self.ccm_time()
        self.nurse_visits()
        self.tobacco_counseling()
        self.obesity_counseling()
        self.case_management()
        self.mnt()
        self.claims()
        self.measurements()
        self.encounters()
        dated = {
            "coverages": "start_date",
            "conditions": "onset_date",
            "consents": "obtained_date",
            "care_plans": "date",
            "encounters": "date",
            "discharges": "discharge_date",
            "measurements": "date",
            "referrals": "date",
            "claims_history": "date_of_service",
        }
        frames: dict[str, pl.DataFrame] = {}
        for name in TABLE_ORDER:
            frame = self.frames.get(name)
            if frame is None:
                continue
            if "pat" in frame.columns:
                frame = frame.with_columns(pl.col("pat").cast(pl.Int64))
                if name in dated:
                    frame = self.in_care(frame, dated[name], name in _PRACTICE_RECORDS)
                frame = frame.with_columns(
                    self.patient_ids.gather(frame["pat"]).alias("patient_id")
                ).drop("pat")
            columns = [c for c in TABLES[name].column_names if c in frame.columns]
            frames[name] = frame.select(columns)
        frames = add_claim_data(frames, self.seed, self.month_list[-1].end, self.month_list[0].year)
        source = (
            f"synth:patients={self.n},seed={self.seed},end_month={self.end_month},"
            f"months={len(self.month_list)}"
        )
        return Bundle.from_frames(frames, source=source)


def generate_practice(
    patients: int, seed: int = 7, end_month: str = "2025-12", months: int = 12
) -> Bundle:
    """A deterministic synthetic practice of `patients` patients (see the module docstring).

    `end_month` (YYYY-MM) is the last month of the `months`-month window that holds the
    practice's activity; the same arguments always return the same bundle.
    """
    if patients < 1:
        raise ValueError(f"patients must be at least 1, got {patients}")
    if not 1 <= months <= 60:
        raise ValueError(f"months must be 1-60, got {months}")
    return _Practice(patients, seed, Month.parse(end_month), months).bundle()
