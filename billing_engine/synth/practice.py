"""A deterministic synthetic primary-care practice: demo data, test data, benchmark input.

``generate_practice(patients, seed, end_month, months)`` builds a complete interchange
bundle for one practice; ``write_bundle_csv`` writes it as the interchange CSV folder.

Determinism and speed: every random draw comes from ``numpy.random.default_rng(seed)`` in
a fixed order, nothing reads the clock, and every column is built over whole arrays (the
only Python loops run over visit slots, months and tables, never over patients or
encounters). The same arguments always give the same bundle; 100,000 patients take a few
seconds.

Vocabulary: the codes (CPT/HCPCS, ICD-10-CM), the Medicaid fee table, the ZIP codes and
the weights that choose between visit codes live in ``vocabulary.yaml`` next to
this module (the machinery holds no code-shaped literal); it is read once, on import.

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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from numpy.typing import NDArray

from billing_engine.calendar import Month, add_business_days_expr, federal_holidays
from billing_engine.errors import ConfigError
from billing_engine.io import strict_yaml
from billing_engine.io.bundle import Bundle
from billing_engine.io.safe_files import write_csv
from billing_engine.io.schema import TABLE_ORDER, TABLES

__all__ = [
    "OTHER_PRACTICE_NPI",
    "generate_practice",
    "make_npi",
    "npi_check_digit",
    "npi_is_valid",
    "write_bundle_csv",
]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Bool = NDArray[np.bool_]

_EPOCH = dt.date(1970, 1, 1)
_NO_DAY = int(np.iinfo(np.int32).min)  # "no date" in the integer day columns
_VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class _Vocabulary:
    """The generator's codes, fee table, ZIP codes and code weights (vocabulary.yaml)."""

    npi_prefix: str
    medicaid_fees: tuple[tuple[str, str], ...]  # (code, amount per unit)
    zips: tuple[str, ...]
    # code, weight from age 65, weight below 65, category counts by the engine's value set
    chronic: tuple[tuple[str, float, float, bool], ...]
    chronic_overrides: dict[str, tuple[float, bool]]  # code -> (probability, value)
    acute: tuple[str, ...]
    tobacco: str
    mnt_diagnoses: tuple[str, ...]
    obesity: str
    routine_codes: tuple[str, ...]  # by MDM level low / moderate / high
    routine_weights: tuple[float, ...]
    new_low: str
    new_moderate: str
    new_moderate_share: float
    initiating_new: str
    initiating_moderate: str
    initiating_high: str
    initiating_high_share: float
    g0506: str
    g0506_share: float
    awv_initial: str
    awv_subsequent: str
    ippe: str
    tcm_moderate: str
    tcm_high: str
    tcm_moderate_share: float
    other_practice_ccm: str


def _mapping(raw: object, where: str) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: object, where: str) -> list[object]:
    if not isinstance(raw, list) or not raw:
        raise TypeError(f"{where}: expected a non-empty list")
    return raw


def _text(raw: object, where: str) -> str:
    """A code or other string: quoted in the file (an unquoted number is refused)."""
    if not isinstance(raw, str) or not raw:
        raise TypeError(f"{where}: expected a quoted string, got {raw!r}")
    return raw


def _texts(raw: object, where: str) -> tuple[str, ...]:
    return tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(_list(raw, where)))


def _number(raw: object, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError(f"{where}: expected a number, got {raw!r}")
    return float(raw)


def _share(raw: object, where: str) -> float:
    value = _number(raw, where)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: a share is 0-1, got {value}")
    return value


def _flag(raw: object, where: str) -> bool:
    if not isinstance(raw, bool):
        raise TypeError(f"{where}: expected true or false, got {raw!r}")
    return raw


def _parse_vocabulary(doc: Mapping[str, object]) -> _Vocabulary:
    npi_prefix = _text(doc["npi_prefix"], "npi_prefix")
    if len(npi_prefix) != 5 or not npi_prefix.isdigit():
        raise ValueError(f"npi_prefix: expected 5 digits, got {npi_prefix!r}")
    fees = tuple(
        (_text(code, "medicaid_fees"), _text(amount, f"medicaid_fees.{code}"))
        for code, amount in _mapping(doc["medicaid_fees"], "medicaid_fees").items()
    )
    for code, amount in fees:
        try:
            Decimal(amount)
        except InvalidOperation as exc:
            raise ValueError(f"medicaid_fees.{code}: not an amount: {amount!r}") from exc
    chronic_rows = [
        _mapping(item, f"chronic[{i}]") for i, item in enumerate(_list(doc["chronic"], "chronic"))
    ]
    chronic = tuple(
        (
            _text(row["code"], f"chronic[{i}].code"),
            _number(row["old"], f"chronic[{i}].old"),
            _number(row["young"], f"chronic[{i}].young"),
            _flag(row["counts"], f"chronic[{i}].counts"),
        )
        for i, row in enumerate(chronic_rows)
    )
    overrides = {
        _text(code, "chronic_overrides"): (
            _share(_mapping(entry, f"chronic_overrides.{code}")["share"], f"{code}.share"),
            _flag(_mapping(entry, f"chronic_overrides.{code}")["value"], f"{code}.value"),
        )
        for code, entry in _mapping(doc["chronic_overrides"], "chronic_overrides").items()
    }
    routine = [
        _mapping(item, f"routine_visits[{i}]")
        for i, item in enumerate(_list(doc["routine_visits"], "routine_visits"))
    ]
    if len(routine) != 3:
        raise ValueError(f"routine_visits: one row per MDM level (3), got {len(routine)}")
    new = _mapping(doc["new_patient_visit"], "new_patient_visit")
    initiating = _mapping(doc["initiating_visit"], "initiating_visit")
    awv = _mapping(doc["awv"], "awv")
    tcm = _mapping(doc["tcm_visit"], "tcm_visit")
    vocabulary = _Vocabulary(
        npi_prefix=npi_prefix,
        medicaid_fees=fees,
        zips=_texts(doc["zips"], "zips"),
        chronic=chronic,
        chronic_overrides=overrides,
        acute=_texts(doc["acute"], "acute"),
        tobacco=_text(doc["tobacco"], "tobacco"),
        mnt_diagnoses=_texts(doc["mnt_diagnoses"], "mnt_diagnoses"),
        obesity=_text(doc["obesity"], "obesity"),
        routine_codes=tuple(_text(r["code"], "routine_visits.code") for r in routine),
        routine_weights=tuple(_number(r["weight"], "routine_visits.weight") for r in routine),
        new_low=_text(new["low"], "new_patient_visit.low"),
        new_moderate=_text(new["moderate"], "new_patient_visit.moderate"),
        new_moderate_share=_share(new["moderate_share"], "new_patient_visit.moderate_share"),
        initiating_new=_text(initiating["new_patient"], "initiating_visit.new_patient"),
        initiating_moderate=_text(initiating["moderate"], "initiating_visit.moderate"),
        initiating_high=_text(initiating["high"], "initiating_visit.high"),
        initiating_high_share=_share(initiating["high_share"], "initiating_visit.high_share"),
        g0506=_text(initiating["g0506"], "initiating_visit.g0506"),
        g0506_share=_share(initiating["g0506_share"], "initiating_visit.g0506_share"),
        awv_initial=_text(awv["initial"], "awv.initial"),
        awv_subsequent=_text(awv["subsequent"], "awv.subsequent"),
        ippe=_text(doc["ippe"], "ippe"),
        tcm_moderate=_text(tcm["moderate"], "tcm_visit.moderate"),
        tcm_high=_text(tcm["high"], "tcm_visit.high"),
        tcm_moderate_share=_share(tcm["moderate_share"], "tcm_visit.moderate_share"),
        other_practice_ccm=_text(doc["other_practice_ccm"], "other_practice_ccm"),
    )
    chronic_codes = {row[0] for row in chronic}
    named = [*overrides, vocabulary.tobacco, *vocabulary.mnt_diagnoses, vocabulary.obesity]
    unknown = sorted(set(named) - chronic_codes)
    if unknown:
        raise ValueError(f"codes not in the chronic list: {unknown}")
    return vocabulary


@lru_cache(maxsize=1)
def _vocabulary() -> _Vocabulary:
    """The vocabulary file, read once."""
    try:
        doc = strict_yaml.load_path(_VOCABULARY_FILE)
        return _parse_vocabulary(_mapping(doc, "document"))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{_VOCABULARY_FILE}: invalid synth vocabulary: {exc}") from exc


# --------------------------------------------------------------------------- NPIs


def npi_check_digit(first9: str) -> str:
    """The NPI check digit: Luhn over ``80840`` + the 9-digit base (CMS NPI standard)."""
    if len(first9) != 9 or not first9.isdigit():
        raise ValueError(f"an NPI base is 9 digits, got {first9!r}")
    total = 0
    # the digit next to the (future) check digit is doubled, then every second one
    for position, char in enumerate(reversed(_vocabulary().npi_prefix + first9)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def make_npi(first9: str) -> str:
    """A 10-digit NPI: the base followed by its check digit."""
    return first9 + npi_check_digit(first9)


def npi_is_valid(npi: str) -> bool:
    return len(npi) == 10 and npi.isdigit() and npi_check_digit(npi[:9]) == npi[9]


OTHER_PRACTICE_NPI = make_npi("190357428")
"""The NPI of the other practice that bills CCM for a few of this practice's patients."""


# --------------------------------------------------------------------------- fixed data

# practitioner_id, name, credential, NPI base (None = no NPI), primary_care
_PRACTITIONERS: tuple[tuple[str, str, str, str | None, bool | None], ...] = (
    ("PR01", "Maria Alvarez, MD", "MD", "148721903", True),
    ("PR02", "James Okafor, DO", "DO", "162034587", True),
    ("PR03", "Linda Chen, NP", "NP", "175390246", True),
    ("CM01", "Rachel Brooks, RN", "RN", None, None),
    ("CM02", "Daniel Kim, RN", "RN", None, None),
    ("CM03", "Sofia Ramirez, LPN", "LPN", None, None),
    ("CM04", "Aaron Feld, LCSW", "LCSW", None, None),
    ("RD01", "Priya Natarajan, RD", "RD", "183920475", False),
    ("SC01", "Kevin Doyle (scheduling)", "NONCLINICAL", None, None),
)
_PCPS = 3  # indexes 0-2
_CM_FIRST = 3  # care managers are indexes 3-6
_RN = (3, 4)
_LCSW = 6
_RD = 7
_SCHEDULER = 8

# payer_id, name, kind, state, fee_basis, member-id prefix
_PAYERS: tuple[tuple[str, str, str, str | None, str, str], ...] = (
    ("MCR", "Original Medicare (Part B)", "medicare", None, "medicare_pfs", "1M"),
    ("MA01", "Lakeshore Medicare Advantage", "medicare_advantage", None,
     "percent_of_medicare:100", "LMA"),
    ("MCD-MI", "Michigan Medicaid", "medicaid", "MI", "schedule", "MI"),
    ("COM01", "Great Lakes Commercial PPO", "commercial", None,
     "percent_of_medicare:110", "GLC"),
)  # fmt: skip
_MCR, _MA, _MCD, _COM = 0, 1, 2, 3

_FIRST_F = (
    "Mary", "Patricia", "Linda", "Barbara", "Elizabeth", "Jennifer", "Susan", "Margaret",
    "Dorothy", "Karen", "Nancy", "Betty", "Sandra", "Donna", "Carol", "Ruth", "Sharon",
    "Michelle", "Laura", "Ana",
)  # fmt: skip
_FIRST_M = (
    "James", "Robert", "John", "Michael", "William", "David", "Richard", "Joseph",
    "Thomas", "Charles", "Daniel", "Paul", "Mark", "Donald", "George", "Kenneth", "Steven",
    "Edward", "Jose", "Wei",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Nguyen",
    "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Kowalski",
)  # fmt: skip

_ACTIVITIES = ("medication_reconciliation", "care_coordination", "education", "care_plan_review")
# every non-empty subset of _ACTIVITIES by bit mask, and its weight (fewer items likelier)
_ACTIVITY_SETS: tuple[str | None, ...] = (
    None,
    *(";".join(a for bit, a in enumerate(_ACTIVITIES) if mask >> bit & 1) for mask in range(1, 16)),
)
_ACTIVITY_WEIGHTS = tuple(
    0.0 if mask == 0 else {1: 0.45 / 4, 2: 0.35 / 6, 3: 0.15 / 4, 4: 0.05}[mask.bit_count()]
    for mask in range(16)
)
_CM_MINUTES = (5, 7, 8, 10, 12, 15, 18, 20, 22, 25, 30, 35)
_CM_MINUTE_WEIGHTS = (10, 6, 6, 16, 8, 18, 6, 12, 4, 7, 5, 2)

# tables that only hold what this practice did (nothing before a new patient joined)
_PRACTICE_RECORDS = frozenset({"encounters", "referrals", "claims_history", "measurements"})

_ENC_TEXT = (
    "kind", "program", "contact_mode", "mdm", "cpt", "activities", "place_of_service",
    "outcome",
)  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _day(day: dt.date) -> int:
    return (day - _EPOCH).days


def _cat(rng: np.random.Generator, weights: Sequence[float], size: int) -> I64:
    """Category indexes drawn with the given (unnormalised) weights."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum /= cum[-1]
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int64)


def _uniform_day(rng: np.random.Generator, lo: I64, hi: I64) -> I64:
    """A day drawn uniformly from lo..hi inclusive (lo where hi < lo)."""
    span = np.maximum(hi - lo + 1, 1)
    day: I64 = (lo + np.floor(rng.random(len(lo)) * span)).astype(np.int64)
    return day


def _weekday(day: I64) -> I64:
    """0 = Monday (1970-01-01 was a Thursday)."""
    weekday: I64 = ((day + 3) % 7).astype(np.int64)
    return weekday


def _nearest_weekday(day: I64) -> I64:
    """Saturday -> Friday, Sunday -> Monday."""
    wd = _weekday(day)
    moved: I64 = (day - (wd == 5) + (wd == 6)).astype(np.int64)
    return moved


def _weekday_within(day: I64, lo: I64, hi: I64) -> I64:
    """Move weekend days to the Friday before, else the Monday after, inside lo..hi."""
    wd = _weekday(day)
    back = day - np.where(wd == 5, 1, 0) - np.where(wd == 6, 2, 0)
    fwd = day + np.where(wd == 5, 2, 0) + np.where(wd == 6, 1, 0)
    return np.where(back >= lo, back, np.where(fwd <= hi, fwd, day)).astype(np.int64)


def _next_weekday(day: I64) -> I64:
    wd = _weekday(day)
    return (day + np.where(wd == 5, 2, 0) + np.where(wd == 6, 1, 0)).astype(np.int64)


def _first_of_month(day: I64) -> I64:
    months = day.astype("datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


def _add_years_month_start(day: I64, years: int) -> I64:
    """The 1st of the month `years` after the month of `day`."""
    months = day.astype("datetime64[D]").astype("datetime64[M]") + 12 * years
    return months.astype("datetime64[D]").astype(np.int64)


def _jan_first(years: I64) -> I64:
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)


def _pick(values: Sequence[str | None], idx: I64) -> pl.Series:
    """values[idx] as a string Series (None -> null)."""
    return pl.Series(list(values), dtype=pl.String).gather(pl.Series(idx, dtype=pl.Int64))


def _ids(prefix: str, count: int, width: int | None = None) -> pl.Series:
    width = width or max(6, len(str(count)))
    numbers = pl.Series(np.arange(1, count + 1, dtype=np.int64)).cast(pl.String)
    return (prefix + numbers.str.zfill(width)).alias("id")


def _date_col(name: str) -> pl.Expr:
    col = pl.col(name)
    return (
        pl.when(col == _NO_DAY).then(None).otherwise(col).cast(pl.Int32).cast(pl.Date).alias(name)
    )


def _day_col(name: str, values: I64) -> pl.Series:
    return pl.Series(name, values.astype(np.int64))


def _minutes_to_time(name: str) -> pl.Expr:
    col = pl.col(name)
    return pl.when(col < 0).then(None).otherwise(col * 60_000_000_000).cast(pl.Time).alias(name)


def _repeat_rows(counts: I64) -> tuple[I64, I64]:
    """For row counts per cell: (cell index of each new row, its position within the cell)."""
    cell = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    position = np.arange(len(cell), dtype=np.int64) - np.repeat(first, counts)
    return cell, position


def _enc(
    kind: str,
    pat: I64,
    day: I64,
    minutes: I64,
    performer: I64,
    billing: I64 | None = None,
    start: I64 | None = None,
    priority: int = 9,
    **text: pl.Series | str | None,
) -> pl.DataFrame:
    """One kind of encounters as an integer-coded frame (patient/practitioner indexes)."""
    rows = len(pat)
    none = np.full(rows, -1, dtype=np.int64)
    frame = pl.DataFrame(
        {
            "pat": pat.astype(np.int64),
            "date": day.astype(np.int64),
            "start": none if start is None else start.astype(np.int64),
            "minutes": minutes.astype(np.int64),
            "performer": performer.astype(np.int64),
            "billing": none if billing is None else billing.astype(np.int64),
            "priority": np.full(rows, priority, dtype=np.int64),
        }
    )
    unknown = set(text) - set(_ENC_TEXT)
    if unknown:
        raise TypeError(f"unknown encounter columns {sorted(unknown)}")
    text = {**text, "kind": kind}
    columns: list[pl.Series | pl.Expr] = []
    for name in _ENC_TEXT:
        value = text.get(name)
        if isinstance(value, pl.Series):
            columns.append(value.cast(pl.String).alias(name))
        else:
            columns.append(pl.lit(value, dtype=pl.String).alias(name))
    return frame.with_columns(columns)


# --------------------------------------------------------------------------- generator


class _Practice:
    """Draws the practice table by table; the call order in ``bundle`` fixes the stream."""

    def __init__(self, patients: int, seed: int, end_month: Month, months: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = patients
        self.seed = seed
        self.end_month = end_month
        first = end_month.shift(-(months - 1))
        self.month_list = [first.shift(i) for i in range(months)]
        self.ms = np.array([_day(m.start) for m in self.month_list], dtype=np.int64)
        self.me = np.array([_day(m.end) for m in self.month_list], dtype=np.int64)
        self.start = int(self.ms[0])
        self.end = int(self.me[-1])
        self.history_start = _day(first.shift(-12).start)
        self.holidays = federal_holidays(first.year - 2, end_month.year + 1)
        self.frames: dict[str, pl.DataFrame] = {}
        self.parts: list[pl.DataFrame] = []

    # -- patients and coverage ------------------------------------------------------

    def patients(self) -> None:
        rng, n = self.rng, self.n
        grp = _cat(rng, (0.55, 0.20, 0.10, 0.15), n)
        medicare = grp <= _MA
        disabled = medicare & (rng.random(n) < 0.04)
        age = np.select(
            [disabled, medicare, grp == _MCD],
            [
                35.0 + 29.0 * rng.random(n),
                65.0 + 27.0 * rng.beta(1.2, 2.2, n),
                19.0 + 45.0 * rng.beta(1.5, 1.8, n),
            ],
            22.0 + 42.0 * rng.beta(2.0, 1.6, n),
        )
        birth = (self.end - np.round(age * 365.25)).astype(np.int64)
        pbs_65 = np.minimum(_add_years_month_start(birth, 65), self.ms[-1])
        pbs_disabled = _first_of_month(
            (self.end - 365 - np.floor(rng.random(n) * 11 * 365)).astype(np.int64)
        )
        pbs = np.where(disabled, pbs_disabled, np.where(medicare, pbs_65, _NO_DAY))
        dual = (grp == _MCR) & (rng.random(n) < 0.15)
        qmb = dual & (rng.random(n) < 0.5)
        female = rng.random(n) < 0.56
        dies = rng.random(n) < 0.003 + 0.012 * (age >= 85)
        death_day = self.start + np.floor(rng.random(n) * (self.end - self.start + 1))
        death = np.where(dies, death_day, _NO_DAY).astype(np.int64)
        new = rng.random(n) < 0.06
        join = _nearest_weekday(
            (self.start + np.floor(rng.random(n) * (self.end - self.start - 20))).astype(np.int64)
        )
        no_routine = (rng.random(n) < 0.03) & ~new
        pcp = _cat(rng, (0.40, 0.35, 0.25), n)
        cm = _CM_FIRST + _cat(rng, (0.35, 0.35, 0.20, 0.10), n)
        zip_codes = _vocabulary().zips
        zips = rng.integers(0, len(zip_codes), n)
        first_idx = rng.integers(0, len(_FIRST_F), n)
        last_idx = rng.integers(0, len(_LAST), n)

        self.grp, self.medicare, self.age, self.birth = grp, medicare, age, birth
        self.pbs, self.dual, self.new, self.join = pbs, dual, new, join
        self.no_routine, self.pcp, self.cm = no_routine, pcp, cm
        # the day after which nothing happens (death) or a day past every date
        self.last_day = np.where(dies, death, self.end + 1).astype(np.int64)
        self.patient_ids = _ids("PT", n).alias("patient_id")

        sex = np.where(female, "F", "M")
        first_name = np.where(
            female, np.asarray(_FIRST_F)[first_idx], np.asarray(_FIRST_M)[first_idx]
        )
        frame = pl.DataFrame(
            {
                "patient_id": self.patient_ids,
                "birth_date": birth,
                "sex": sex,
                "first_name": first_name,
                "last_name": np.asarray(_LAST)[last_idx],
                "zip": np.asarray(zip_codes)[zips],
                "part_b_start": pbs,
                "qmb": qmb,
                "qmb_known": medicare,
                "death_date": death,
            }
        )
        self.frames["patients"] = frame.with_columns(
            _date_col("birth_date"),
            _date_col("part_b_start"),
            _date_col("death_date"),
            pl.when(pl.col("qmb_known")).then(pl.col("qmb")).alias("qmb"),
        ).drop("qmb_known")

    def coverages(self) -> None:
        rng, n = self.rng, self.n
        grp, pbs, birth = self.grp, self.pbs, self.birth
        end_year = self.end_month.year
        ma_start = np.maximum(pbs, _jan_first(end_year - rng.integers(0, 6, n)))
        adult = birth + 18 * 365
        other_start = np.maximum(
            adult, (self.end - 30 - np.floor(rng.random(n) * 3650)).astype(np.int64)
        )
        start = np.select([grp == _MCR, grp == _MA], [pbs, ma_start], other_start)
        lapse = (grp == _COM) & (rng.random(n) < 0.03)
        lapse_day = np.maximum(
            start + 30, self.start + np.floor(rng.random(n) * (self.end - self.start))
        ).astype(np.int64)
        end = np.where(lapse & (lapse_day <= self.end), lapse_day, _NO_DAY)
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
        payers.append(np.full(len(duals), _MCD, dtype=np.int64))
        starts.append(dual_start)
        ends.append(np.full(len(duals), _NO_DAY, dtype=np.int64))
        ranks.append(np.full(len(duals), 2, dtype=np.int64))

        self.ex_commercial = self.medicare & (pbs >= self.history_start) & (rng.random(n) < 0.7)
        ex = np.nonzero(self.ex_commercial)[0]
        ex_start = (pbs[ex] - 365 * (2 + np.floor(rng.random(len(ex)) * 10))).astype(np.int64)
        pats.append(ex)
        payers.append(np.full(len(ex), _COM, dtype=np.int64))
        starts.append(np.maximum(ex_start, adult[ex]))
        ends.append(pbs[ex] - 1)
        ranks.append(np.ones(len(ex), dtype=np.int64))

        pat = np.concatenate(pats)
        payer = np.concatenate(payers)
        member_number = pl.Series(rng.integers(10**8, 10**9, len(pat))).cast(pl.String)
        prefixes = _pick([p[5] for p in _PAYERS], payer)
        frame = pl.DataFrame(
            {
                "pat": pat,
                "payer_id": _pick([p[0] for p in _PAYERS], payer),
                "start_date": np.concatenate(starts),
                "end_date": np.concatenate(ends),
                "rank": np.concatenate(ranks),
                "member_id": prefixes + member_number,
            }
        ).sort("pat", "rank", "start_date", maintain_order=True)
        self.frames["coverages"] = frame.with_columns(
            _date_col("start_date"), _date_col("end_date")
        )

    # -- conditions -------------------------------------------------------------------

    def conditions(self) -> None:
        rng, n = self.rng, self.n
        vocabulary = _vocabulary()
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
        onset_in = _uniform_day(
            rng, np.full(m, self.start, dtype=np.int64), np.full(m, self.end, dtype=np.int64)
        )
        onset = np.where(recent, onset_in, np.where(has_onset, onset_before, _NO_DAY))
        resolves = rng.random(m) < 0.02
        lo = np.maximum(np.where(onset == _NO_DAY, self.history_start, onset), self.history_start)
        resolved_day = _uniform_day(rng, lo + 30, np.full(m, self.end, dtype=np.int64))
        resolved = np.where(resolves & (lo + 30 <= self.end), resolved_day, _NO_DAY)

        chronic = np.full(m, -1, dtype=np.int64)  # -1 blank, 0 false, 1 true
        draw = rng.random(m)
        for name, (probability, value) in vocabulary.chronic_overrides.items():
            chosen = (code == codes.index(name)) & (draw < probability)
            chronic[chosen] = int(value)
        in_value_set = np.array([c[3] for c in chronic_table])[code]
        counts = np.where(chronic == -1, in_value_set, chronic == 1)
        active = resolved == _NO_DAY
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
        a_onset = _uniform_day(
            rng, np.full(a, self.start, dtype=np.int64), np.full(a, self.end, dtype=np.int64)
        )
        a_resolved = a_onset + 7 + np.floor(rng.random(a) * 15).astype(np.int64)
        acute_code = rng.integers(0, len(vocabulary.acute), a)

        frame = pl.concat(
            [
                pl.DataFrame(
                    {
                        "pat": pat,
                        "icd10": _pick(codes, code),
                        "onset_date": onset,
                        "resolved_date": resolved,
                        "chronic_code": chronic,
                    }
                ),
                pl.DataFrame(
                    {
                        "pat": acute.astype(np.int64),
                        "icd10": _pick(vocabulary.acute, acute_code),
                        "onset_date": a_onset,
                        "resolved_date": np.where(a_resolved <= self.end, a_resolved, _NO_DAY),
                        "chronic_code": np.zeros(a, dtype=np.int64),
                    }
                ),
            ]
        ).sort("pat", maintain_order=True)
        self.frames["conditions"] = frame.with_columns(
            _date_col("onset_date"),
            _date_col("resolved_date"),
            pl.when(pl.col("chronic_code") >= 0).then(pl.col("chronic_code") == 1).alias("chronic"),
        ).drop("chronic_code")

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
        obtained = _weekday_within(obtained, obtained - 2, obtained + 2)
        written = rng.random(m) < 0.30
        revokes = rng.random(m) < 0.03
        rv_lo = np.maximum(obtained + 30, self.start)
        rv_day = _uniform_day(rng, rv_lo, np.full(m, self.end, dtype=np.int64))
        revoked = np.where(revokes & (rv_lo <= self.end), rv_day, _NO_DAY)
        late_stop = rng.random(m) < 0.30
        # time keeps being logged until `stop` (end of the revocation month, or the next)
        rv_month_end = (
            revoked.astype("datetime64[D]").astype("datetime64[M]") + 1 + late_stop
        ).astype("datetime64[D]").astype(np.int64) - 1
        self.c_pat = pat
        self.c_obtained = obtained
        self.c_stop = np.where(revoked == _NO_DAY, self.end, rv_month_end).astype(np.int64)
        self.frames["consents"] = pl.DataFrame(
            {
                "consent_id": _ids("CN", m),
                "pat": pat,
                "program": pl.Series(["ccm"] * m, dtype=pl.String),
                "obtained_date": obtained,
                "method": np.where(written, "written", "verbal"),
                "billing_practitioner_id": _pick([p[0] for p in _PRACTITIONERS], self.pcp[pat]),
                "revoked_date": revoked,
            }
        ).with_columns(_date_col("obtained_date"), _date_col("revoked_date"))

    def active_ccm_cells(self) -> tuple[I64, I64]:
        """(consent index, month index) of every consent-month in which CCM time is logged."""
        active = (self.me[None, :] >= self.c_obtained[:, None]) & (
            self.ms[None, :] <= self.c_stop[:, None]
        )
        consent, month = np.nonzero(active)
        return consent.astype(np.int64), month.astype(np.int64)

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
        day = _uniform_day(rng, lo, hi)
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
            _ids("CP", frame.height).alias("care_plan_id"),
            "pat",
            pl.lit("ccm").alias("program"),
            _date_col("date"),
            "action",
        )

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
            day = _nearest_weekday(first + k * interval + jitter)
            keep = (day <= self.end) & (day >= self.history_start) & ~self.no_routine
            pats.append(np.nonzero(keep)[0].astype(np.int64))
            days.append(day[keep])
            first_visit.append(np.full(int(keep.sum()), k == 0) & self.new[keep])
        pat = np.concatenate(pats)
        day = np.concatenate(days)
        new_visit = np.concatenate(first_visit)
        rows = len(pat)
        vocabulary = _vocabulary()
        level = _cat(rng, vocabulary.routine_weights, rows)  # MDM low / moderate / high
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
            covering, (self.pcp[pat] + 1 + rng.integers(0, 2, rows)) % _PCPS, self.pcp[pat]
        ).astype(np.int64)
        self.parts.append(
            _enc(
                "office_visit",
                pat,
                day,
                minutes,
                performer,
                billing=performer,
                start=self._start_times(rows, 8 * 60, 15, 34),
                priority=2,
                cpt=pl.Series(cpt),
                mdm=_pick(("low", "moderate", "high"), mdm_level.astype(np.int64)),
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
        vocabulary = _vocabulary()
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
            _enc(
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
        on_part_b = self.medicare & (self.pbs != _NO_DAY)
        awv = np.nonzero(on_part_b & (self.pbs <= self.end - 365) & (rng.random(n) < 0.30))[0]
        a = len(awv)
        day = _weekday_within(
            _uniform_day(
                rng, np.full(a, self.start, dtype=np.int64), np.full(a, self.end, dtype=np.int64)
            ),
            np.full(a, self.start, dtype=np.int64),
            np.full(a, self.end, dtype=np.int64),
        )
        has_prior = (self.pbs[awv] <= day - 730) & (rng.random(a) < 0.85)
        prior_day = _nearest_weekday(
            (day - 365 - np.round(rng.normal(0.0, 25.0, a))).astype(np.int64)
        )
        prior_initial = self.pbs[awv] > prior_day - 365
        vocabulary = _vocabulary()
        code = np.where(has_prior, vocabulary.awv_subsequent, vocabulary.awv_initial)
        pcp = self.pcp[awv]
        self.parts.append(
            _enc(
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
            _enc(
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
        ippe_day = _weekday_within(_uniform_day(rng, lo, hi), lo, hi)
        self.parts.append(
            _enc(
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
        discharge = _uniform_day(rng, self.ms[month], self.me[month])
        setting = _cat(rng, (0.74, 0.12, 0.10, 0.04), d)
        los = np.select(
            [setting == 0, setting == 1, setting == 2],
            [
                np.minimum(rng.geometric(0.28, d), 14),
                1 + np.floor(rng.random(d) * 2),
                7 + np.floor(rng.random(d) * 19),
            ],
            7 + np.floor(rng.random(d) * 8),
        ).astype(np.int64)
        disposition = _cat(rng, (0.84, 0.06, 0.04, 0.03, 0.02, 0.01), d)
        frame = pl.DataFrame(
            {
                "pat": pat,
                "admit_date": discharge - los,
                "discharge_date": discharge,
                "setting": _pick(("inpatient_acute", "observation", "snf", "irf"), setting),
                "disposition": _pick(
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
            _ids("DC", frame.height).alias("discharge_id"),
            "pat",
            _date_col("admit_date"),
            _date_col("discharge_date"),
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
        outcome = _cat(rng, (0.48, 0.29, 0.11, 0.05, 0.07), d)  # bd 1/2/3, 2 failed, none
        care_manager = np.where(self.cm[pat] == _LCSW, _RN[0], self.cm[pat]).astype(np.int64)
        contact = np.nonzero(outcome <= 2)[0]
        c = len(contact)
        self.parts.append(
            _enc(
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
                _enc(
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
        day = _next_weekday(discharge[visit] + 5 + np.floor(rng.random(v) * 12).astype(np.int64))
        level = _cat(rng, (0.35, 0.55, 0.10), v)
        vocabulary = _vocabulary()
        self.parts.append(
            _enc(
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
                mdm=_pick(("high", "moderate", "low"), level),
                activities=_pick(
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

        cell, position = _repeat_rows(count)
        rows = len(cell)
        pat = self.c_pat[consent[cell]]
        lo, hi = lo_cell[cell], hi_cell[cell]
        day = _weekday_within(_uniform_day(rng, lo, hi), lo, hi)
        minutes = np.asarray(_CM_MINUTES, dtype=np.int64)[_cat(rng, _CM_MINUTE_WEIGHTS, rows)]
        who = rng.random(rows)
        other_cm = _CM_FIRST + (self.cm[pat] - _CM_FIRST + 1 + rng.integers(0, 3, rows)) % 4
        performer = np.select(
            [who < 0.86, who < 0.92, who < 0.97],
            [self.cm[pat], other_cm, self.pcp[pat]],
            _SCHEDULER,
        ).astype(np.int64)
        failed = rng.random(rows) < 0.04
        minutes = np.where(failed, 2 + rng.integers(0, 3, rows), minutes)
        minutes = np.where(performer == _SCHEDULER, 5, minutes).astype(np.int64)
        timed = rng.random(rows) < 0.60
        start = np.where(timed, self._start_times(rows, 8 * 60, 5, 109), -1).astype(np.int64)
        mode = _cat(rng, (0.68, 0.15, 0.10, 0.07), rows)
        activity = _cat(rng, _ACTIVITY_WEIGHTS, rows)
        has_mdm = mdm_cell[cell] & (position == 0)
        mdm = np.where(has_mdm, np.where(mdm_high[cell], 2, 1), 0).astype(np.int64)
        billing = self.pcp[pat]
        self.parts.append(
            _enc(
                "care_management",
                pat,
                day,
                minutes,
                performer,
                billing=billing,
                start=start,
                program="ccm",
                contact_mode=_pick(("phone", "portal", "video", "in_person"), mode),
                activities=_pick(_ACTIVITY_SETS, np.where(failed, 0, activity).astype(np.int64)),
                mdm=_pick((None, "moderate", "high"), mdm),
                outcome=_pick((None, "attempt_failed"), failed.astype(np.int64)),
            )
        )
        # a few overlapping entries: a colleague logs time inside another entry's span
        overlap = np.nonzero(timed & ~failed & (rng.random(rows) < 0.03) & (minutes >= 5))[0]
        o = len(overlap)
        o_start = start[overlap] + np.floor(rng.random(o) * minutes[overlap]).astype(np.int64)
        o_performer = (
            _CM_FIRST + (self.cm[pat[overlap]] - _CM_FIRST + 1 + rng.integers(0, 3, o)) % 4
        )
        self.parts.append(
            _enc(
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
        day = _weekday_within(_uniform_day(rng, lo, hi), lo, hi)
        in_window = self.visits.filter(pl.col("date") >= self.start)
        same_day = rng.random(in_window.height) < 0.03
        pat = np.concatenate([pat, in_window["pat"].to_numpy()[same_day]]).astype(np.int64)
        day = np.concatenate([day, in_window["date"].to_numpy()[same_day]]).astype(np.int64)
        rows = len(pat)
        self.parts.append(
            _enc(
                "nurse_visit",
                pat,
                day,
                np.full(rows, 10, dtype=np.int64),
                np.asarray(_RN, dtype=np.int64)[rng.integers(0, 2, rows)],
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
            _enc(
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
        first = _weekday_within(_uniform_day(rng, lo, hi), lo, hi)
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
            _enc(
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
        enrolled = (self.grp == _MCD) & (rng.random(n) < 0.20)
        months = len(self.ms)
        active = enrolled[:, None] & (rng.random((n, months)) < 0.65)
        pat_cell, month_cell = np.nonzero(active)
        count = (1 + np.floor(rng.random(len(pat_cell)) * 3)).astype(np.int64)
        cell, _ = _repeat_rows(count)
        pat = pat_cell[cell].astype(np.int64)
        rows = len(pat)
        lo, hi = self.ms[month_cell[cell]], self.me[month_cell[cell]]
        day = _weekday_within(_uniform_day(rng, lo, hi), lo, hi)
        performer = np.where(
            rng.random(rows) < 0.5, _LCSW, np.asarray(_RN)[rng.integers(0, 2, rows)]
        ).astype(np.int64)
        self.parts.append(
            _enc(
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
        ref_day = _weekday_within(
            _uniform_day(
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
                "referring_practitioner_id": _pick(
                    [p[0] for p in _PRACTITIONERS], self.pcp[referred]
                ),
                "reason": reason,
            }
        ).sort("pat", "date", maintain_order=True)
        self.frames["referrals"] = referrals.select(
            _ids("RF", referrals.height).alias("referral_id"),
            "pat",
            _date_col("date"),
            "referring_practitioner_id",
            pl.lit("mnt").alias("service"),
            "reason",
        )
        sessions = (1 + np.floor(rng.random(r) * 3)).astype(np.int64)
        cell, position = _repeat_rows(sessions)
        pat = referred[cell].astype(np.int64)
        rows = len(pat)
        first_gap = (7 + np.floor(rng.random(r) * 14)).astype(np.int64)
        day = _nearest_weekday(ref_day[cell] + first_gap[cell] + 14 * position)
        minutes = np.where(position == 0, 60, 30 + 15 * rng.integers(0, 2, rows)).astype(np.int64)
        self.parts.append(
            _enc(
                "mnt",
                pat,
                day,
                minutes,
                np.full(rows, _RD, dtype=np.int64),
                billing=np.full(rows, _RD, dtype=np.int64),
                start=self._start_times(rows, 9 * 60, 30, 14),
                contact_mode="in_person",
                place_of_service="11",
            )
        )

    # -- claims and measurements -------------------------------------------------------------

    def _payer_on(self, pat: I64, day: I64) -> pl.Series:
        payer = np.where(
            self.ex_commercial[pat] & (day < self.pbs[pat]), _COM, self.grp[pat]
        ).astype(np.int64)
        return _pick([p[0] for p in _PAYERS], payer)

    def claims(self) -> None:
        rng = self.rng
        npis = [make_npi(p[3]) if p[3] else None for p in _PRACTITIONERS]
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
        o_day = _uniform_day(rng, self.ms[o_month], self.me[o_month])
        pat = np.concatenate([v_pat, a_pat, o_pat]).astype(np.int64)
        day = np.concatenate([v_day, awv["date"].to_numpy(), o_day]).astype(np.int64)
        npi = pl.concat(
            [
                _pick(npis, visit_claims["billing"].to_numpy().astype(np.int64)),
                _pick(npis, self.pcp[a_pat]),
                pl.Series([OTHER_PRACTICE_NPI] * len(o_pat), dtype=pl.String),
            ]
        )
        code = pl.concat(
            [
                visit_claims["code"],
                awv["code"],
                pl.Series([_vocabulary().other_practice_ccm] * len(o_pat), dtype=pl.String),
            ]
        )
        status = _cat(rng, (0.95, 0.03, 0.02), len(pat))
        frame = pl.DataFrame(
            {
                "pat": pat,
                "code": code,
                "units": np.ones(len(pat), dtype=np.int64),
                "date_of_service": day,
                "billing_npi": npi,
                "payer_id": self._payer_on(pat, day),
                "status": _pick(("paid", "denied", "pending"), status),
            }
        )
        frame = frame.unique(
            subset=["pat", "code", "date_of_service", "billing_npi"],
            keep="first",
            maintain_order=True,
        ).sort("pat", "date_of_service", "code", maintain_order=True)
        self.frames["claims_history"] = frame.with_columns(_date_col("date_of_service"))

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
        self.frames["measurements"] = frame.with_columns(_date_col("date"))

    # -- assembly ------------------------------------------------------------------------------

    def encounters(self) -> None:
        frame = pl.concat(self.parts)
        frame = frame.filter(pl.col("date") <= self.end).sort(
            "date", "pat", "start", "kind", "performer", maintain_order=True
        )
        practitioner_ids = [p[0] for p in _PRACTITIONERS]
        self.frames["encounters"] = frame.select(
            _ids("E", frame.height, max(8, len(str(frame.height)))).alias("encounter_id"),
            "pat",
            _date_col("date"),
            _minutes_to_time("start").alias("start_time"),
            "minutes",
            _pick(practitioner_ids, frame["performer"].to_numpy()).alias("performer_id"),
            pl.when(pl.col("billing") >= 0)
            .then(
                _pick(practitioner_ids, np.maximum(frame["billing"].to_numpy(), 0)).alias(
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

    def fixed_tables(self) -> None:
        npis = [make_npi(p[3]) if p[3] else None for p in _PRACTITIONERS]
        self.frames["practitioners"] = pl.DataFrame(
            {
                "practitioner_id": [p[0] for p in _PRACTITIONERS],
                "name": [p[1] for p in _PRACTITIONERS],
                "npi": npis,
                "credential": [p[2] for p in _PRACTITIONERS],
                "primary_care": [p[4] for p in _PRACTITIONERS],
                "qp": [False if p[3] else None for p in _PRACTITIONERS],
            },
            schema_overrides={"npi": pl.String, "primary_care": pl.Boolean, "qp": pl.Boolean},
        )
        self.frames["payers"] = pl.DataFrame(
            {
                "payer_id": [p[0] for p in _PAYERS],
                "name": [p[1] for p in _PAYERS],
                "kind": [p[2] for p in _PAYERS],
                "state": [p[3] for p in _PAYERS],
                "fee_basis": [p[4] for p in _PAYERS],
            },
            schema_overrides={"state": pl.String},
        )
        effective = dt.date(self.month_list[0].year, 1, 1)
        fees = _vocabulary().medicaid_fees
        self.frames["fee_schedule"] = pl.DataFrame(
            {
                "payer_id": [_PAYERS[_MCD][0]] * len(fees),
                "code": [code for code, _ in fees],
                "effective_from": [effective] * len(fees),
                "amount": [Decimal(amount) for _, amount in fees],
            },
            schema_overrides={"amount": pl.Decimal(18, 4)},
        )

    def in_care(self, frame: pl.DataFrame, column: str, since_join: bool) -> pl.DataFrame:
        """Drop rows dated on/after the patient's death (and, for the practice's own
        records, before a new patient joined)."""
        pat = frame["pat"].to_numpy().astype(np.int64)
        days = frame[column].cast(pl.Int32).fill_null(_NO_DAY).to_numpy().astype(np.int64)
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


# --------------------------------------------------------------------------- CSV


def _csv_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.List):
        return pl.col(name).list.join(";")
    return pl.col(name)


def write_bundle_csv(bundle: Bundle, out: Path) -> dict[str, int]:
    """Write one ``<table>.csv`` per non-empty table into `out`; returns rows per file.

    Interchange formats: ISO dates, HH:MM times, true/false, lists joined by ';', empty
    cells for nulls. A ``<table>.csv`` left over from an earlier bundle for a table that
    is empty now is removed, so the folder always reads back as this bundle. Files are
    written as ``safe_files.write_csv`` does (text that begins like a formula gets a
    leading apostrophe; a symbolic link of a file's name is replaced, never followed).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in TABLE_ORDER:
        frame = bundle[name]
        target = out / f"{name}.csv"
        if frame.height == 0:
            target.unlink(missing_ok=True)
            continue
        write_csv(
            frame.select([_csv_expr(c, t) for c, t in frame.schema.items()]),
            target,
            null_value="",
            date_format="%Y-%m-%d",
            time_format="%H:%M",
        )
        counts[name] = frame.height
    return counts
