"""Medical nutrition therapy: 97802/97803/G0270 (individual) and 97804/G0271 (group).

Every code, threshold, window and list comes from ``parameters.yaml`` beside this file;
the requirements in plain words are in ``README.md``. Two rule sets:

- ``mnt.sessions``: one candidate per patient, date of service, billing practitioner and
  mode (individual, or group when ``contact_mode`` is group): the ``mnt`` encounters of
  that day are one session, their minutes added up before units are counted. Period
  and date of service are the session date.
- ``mnt.allowance``: the dietitian's work list. One candidate per patient with a
  physician's MNT referral this calendar year (on or before the month's end) whose
  yearly allowance still has minutes after this month's lines; always a gap (``short``
  while the month is open) whose detail says how many minutes remain.

The yearly allowance (MNT-H1) is counted in minutes: claims history of the calendar
year (not denied; individual codes 15 minutes a unit, group codes 30) plus the sessions
of this evaluation that bill, in date order. A session's units are capped by what
remains; the units beyond it bill the additional-hours code (G0270/G0271) when a
physician's ``change_in_condition`` referral of the year is on file, else they are a
gap. Which sessions bill is decided by whole-frame expressions: the eligibility that
does not depend on the allowance (practitioner, coverage, payer, diagnosis, referral,
same-day DSMT, claims already on the date, at least one unit) is computed first, then
the allowance is a clamped running sum over the eligible sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from billing_engine.engine.family import (
    RuleSetResult,
    coverage_criterion,
    evidence_list,
    payer_pays_criterion,
    run_rule_set,
    time_status,
)
from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SHORT, CodeRule, Criterion

FAMILY = "mnt"
INDIVIDUAL, GROUP = "individual", "group"  # session modes
MNT_KIND, DSMT_KIND = "mnt", "dsmt"  # interchange encounters.kind
GROUP_CONTACT = "group"  # interchange encounters.contact_mode
FAILED_ATTEMPT = "attempt_failed"  # interchange encounters.outcome
MIDPOINT = "midpoint"  # mnt.unit_rounding
EVER = "ever"  # mnt.initial_assessment_scope
SESSION_KEYS = ["patient_id", "date", "billing_practitioner_id", "mode"]
RULE_IDS = ("MNT-D1", "MNT-R1", "MNT-S1", "MNT-H1", "MNT-U1", "MNT-X1", "MNT-T1", "MNT-$")
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


@dataclass(frozen=True)
class Codes:
    initial: str
    followup: str
    individual_additional: str
    group: str
    group_additional: str

    def all(self) -> list[str]:
        return [
            self.initial,
            self.followup,
            self.individual_additional,
            self.group,
            self.group_additional,
        ]

    def group_codes(self) -> list[str]:
        return [self.group, self.group_additional]


def family_codes(ctx: EvalContext) -> Codes:
    p = ctx.params
    return Codes(
        initial=p.as_str("mnt.individual.initial_code"),
        followup=p.as_str("mnt.individual.followup_code"),
        individual_additional=p.as_str("mnt.individual.additional_code"),
        group=p.as_str("mnt.group.code"),
        group_additional=p.as_str("mnt.group.additional_code"),
    )


def _year(ctx: EvalContext) -> tuple[dt.date, dt.date]:
    """First and last day of the evaluated month's calendar year."""
    year = ctx.start.year
    return dt.date(year, 1, 1), dt.date(year + 1, 1, 1) - dt.timedelta(days=1)


def _unit_minutes(ctx: EvalContext, mode: pl.Expr) -> pl.Expr:
    p = ctx.params
    return (
        pl.when(mode == GROUP)
        .then(pl.lit(p.as_int("mnt.group.unit_minutes")))
        .otherwise(pl.lit(p.as_int("mnt.individual.unit_minutes")))
        .cast(pl.Int64)
    )


def _first_unit_minutes(ctx: EvalContext, unit: pl.Expr) -> pl.Expr:
    """Minutes that attain the first unit: past the midpoint (8 of 15), or the full unit."""
    if ctx.params.as_str("mnt.unit_rounding") == MIDPOINT:
        return unit // 2 + 1
    return unit


def _units(ctx: EvalContext, minutes: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """Units of a day's minutes: each unit after the first also needs its midpoint passed."""
    return ((minutes + unit - _first_unit_minutes(ctx, unit)) // unit).clip(lower_bound=0)


def _starts_with_any(column: str, prefixes: list[str]) -> pl.Expr:
    return pl.any_horizontal(
        [pl.lit(False), *[pl.col(column).str.starts_with(prefix) for prefix in prefixes]]
    )


def _claim_id(code: pl.Expr, day: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("claim:"), code, pl.lit("@"), day.cast(pl.String))


# --------------------------------------------------------------------------- inputs


def _mnt_claims(ctx: EvalContext) -> pl.DataFrame:
    """Every MNT claim that counts as billed (not denied), through the month's end, with
    the allowance minutes its units consumed and its mode."""
    codes = family_codes(ctx)
    is_group = pl.col("code").is_in(codes.group_codes())
    mode = pl.when(is_group).then(pl.lit(GROUP)).otherwise(pl.lit(INDIVIDUAL))
    return nz.billed_claims(ctx, codes.all()).select(
        "patient_id",
        "code",
        "claim_practitioner_id",
        claim_date=pl.col("date_of_service"),
        claim_mode=mode,
        claim_minutes=(pl.col("units") * _unit_minutes(ctx, mode)).cast(pl.Int64),
        claim_id=_claim_id(pl.col("code"), pl.col("date_of_service")),
    )


def _received_before_year(ctx: EvalContext, claims: pl.DataFrame) -> pl.DataFrame:
    """Patients who received MNT in an earlier calendar year (a claim or an encounter)."""
    year_start, _ = _year(ctx)
    encounters = ctx.bundle["encounters"].filter(
        (pl.col("kind") == MNT_KIND)
        & (pl.col("date") < year_start)
        & (pl.col("outcome").fill_null("") != FAILED_ATTEMPT)
    )
    return (
        pl.concat(
            [
                claims.filter(pl.col("claim_date") < year_start).select("patient_id"),
                encounters.select("patient_id"),
            ]
        )
        .unique()
        .with_columns(received_before=pl.lit(True))
    )


def _with_referrals(ctx: EvalContext, frame: pl.DataFrame, on: str) -> pl.DataFrame:
    """The patient's MNT referrals as of the date column `on`.

    ``referral_id``/``referral_date``: the latest referral by a physician dated in the
    same calendar year on or before `on`; ``change_referral_id``: the same for a referral
    for additional hours; ``change_referral_in_year``: any additional-hours referral of
    the year dated by the month's end (by anyone, on any date). The other columns say
    why a referral on file does not count (for the gaps' detail).
    """
    p = ctx.params
    physicians = p.as_strs("mnt.referral.credentials")
    change = p.as_str("mnt.referral.additional_hours_reason")
    referrals = nz.with_practitioner(
        ctx,
        ctx.bundle["referrals"].filter(pl.col("service") == p.as_str("mnt.referral.service")),
        "referring_practitioner_id",
        "ref",
    ).select(
        "patient_id",
        "referral_id",
        "reason",
        "ref_credential",
        referral_date=pl.col("date"),
    )
    day = pl.col(on)
    in_year = pl.col("referral_date").dt.year() == day.dt.year()
    before = pl.col("referral_date") <= day
    physician = pl.col("ref_credential").is_in(physicians).fill_null(False)
    is_change = pl.col("reason") == change
    valid = in_year & before & physician
    not_physician = in_year & before & ~physician
    later = in_year & ~before & physician & (pl.col("referral_date") <= ctx.end)
    earlier_year = pl.col("referral_date").dt.year() < day.dt.year()
    indexed = frame.with_row_index("_ref_row")
    found = (
        indexed.select("_ref_row", "patient_id", on)
        .join(referrals, on="patient_id", how="inner")
        .sort("_ref_row", "referral_date", "referral_id")
        .group_by("_ref_row")
        .agg(
            referral_id=pl.col("referral_id").filter(valid).last(),
            referral_date=pl.col("referral_date").filter(valid).last(),
            change_referral_id=pl.col("referral_id").filter(valid & is_change).last(),
            change_referral_in_year=(
                in_year & is_change & (pl.col("referral_date") <= ctx.end)
            ).any(),
            other_referral_id=pl.col("referral_id").filter(not_physician).last(),
            other_referral_credential=pl.col("ref_credential").filter(not_physician).last(),
            other_change_id=pl.col("referral_id").filter(not_physician & is_change).last(),
            other_change_credential=pl.col("ref_credential")
            .filter(not_physician & is_change)
            .last(),
            later_referral_id=pl.col("referral_id").filter(later).first(),
            later_referral_date=pl.col("referral_date").filter(later).first(),
            later_change_id=pl.col("referral_id").filter(later & is_change).first(),
            later_change_date=pl.col("referral_date").filter(later & is_change).first(),
            earlier_referral_id=pl.col("referral_id").filter(earlier_year).last(),
            earlier_referral_date=pl.col("referral_date").filter(earlier_year).last(),
        )
    )
    return (
        indexed.join(found, on="_ref_row", how="left")
        .sort("_ref_row")
        .drop("_ref_row")
        .with_columns(pl.col("change_referral_in_year").fill_null(False))
    )


def _with_diagnoses(ctx: EvalContext, frame: pl.DataFrame, on: str) -> pl.DataFrame:
    """Conditions active on the date column `on`: the qualifying ones (diabetes, renal
    disease, a kidney transplant within the window) and the ones showing dialysis."""
    p = ctx.params
    months = p.as_int("mnt.transplant_window_months")
    day = pl.col(on)
    onset = pl.col("onset_date")
    conditions = ctx.bundle["conditions"].with_columns(code=nz.normalized_icd10(pl.col("icd10")))
    active = (onset.is_null() | (onset <= day)) & (
        pl.col("resolved_date").is_null() | (pl.col("resolved_date") >= day)
    )
    transplant = _starts_with_any("code", p.as_strs("mnt.transplant_icd10_prefixes"))
    recent = transplant & onset.is_not_null() & (day <= onset.dt.offset_by(f"{months}mo"))
    qualifying = (
        _starts_with_any("code", p.as_strs("mnt.diabetes_icd10_prefixes"))
        | _starts_with_any("code", p.as_strs("mnt.renal_icd10_prefixes"))
        | recent
    )
    dialysis = _starts_with_any("code", p.as_strs("mnt.dialysis_icd10_prefixes"))
    indexed = frame.with_row_index("_dx_row")
    found = (
        indexed.select("_dx_row", "patient_id", on)
        .join(conditions, on="patient_id", how="inner")
        .filter(active)
        .sort("_dx_row", "onset_date", "code", nulls_last=False)
        .group_by("_dx_row")
        .agg(
            qualifying_icd10=pl.col("icd10").filter(qualifying).unique(maintain_order=True),
            dialysis_icd10=pl.col("icd10").filter(dialysis).unique(maintain_order=True),
            old_transplant_icd10=pl.col("icd10").filter(transplant & ~recent).last(),
            old_transplant_date=pl.col("onset_date").filter(transplant & ~recent).last(),
        )
    )
    return (
        indexed.join(found, on="_dx_row", how="left")
        .sort("_dx_row")
        .drop("_dx_row")
        .with_columns(pl.col("qualifying_icd10", "dialysis_icd10").fill_null(EMPTY_IDS))
    )


def _with_pays(ctx: EvalContext, facts: pl.DataFrame, codes: list[str], on: str) -> pl.DataFrame:
    kinds = ctx.params.as_strs("common.payer_kinds_paying_by_default")
    for code in codes:
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", on, kinds).alias(f"pays:{code}")
        )
    return facts


def _sessions(ctx: EvalContext) -> pl.DataFrame:
    """One row per patient, date, billing practitioner and mode of the month's MNT."""
    p = ctx.params
    furnishers = p.as_strs("mnt.furnisher_credentials")
    encounters = (
        ctx.bundle["encounters"]
        .filter(
            (pl.col("kind") == MNT_KIND)
            & ctx.in_month("date")
            & (pl.col("outcome").fill_null("") != FAILED_ATTEMPT)
        )
        .with_columns(
            billing_practitioner_id=pl.coalesce("billing_practitioner_id", "performer_id"),
            mode=pl.when(pl.col("contact_mode") == GROUP_CONTACT)
            .then(pl.lit(GROUP))
            .otherwise(pl.lit(INDIVIDUAL)),
        )
    )
    encounters = nz.with_practitioner(ctx, encounters, "performer_id", "performer")
    unqualified = ~pl.col("performer_credential").is_in(furnishers).fill_null(False)
    sessions = (
        encounters.sort("date", "encounter_id")
        .group_by(SESSION_KEYS, maintain_order=True)
        .agg(
            minutes=pl.col("minutes").sum().cast(pl.Int64),
            encounter_ids=pl.col("encounter_id"),
            unqualified_performers=pl.col("performer_id")
            .filter(unqualified)
            .unique(maintain_order=True),
            place_of_service=pl.col("place_of_service").drop_nulls().first(),
        )
        .sort("patient_id", "date", "mode", "billing_practitioner_id")
        .with_columns(seq=pl.int_range(pl.len()).over("patient_id"))
    )
    unit = _unit_minutes(ctx, pl.col("mode"))
    return sessions.with_columns(
        unit_minutes=unit,
        first_unit_minutes=_first_unit_minutes(ctx, unit),
        session_units=_units(ctx, pl.col("minutes"), unit).cast(pl.Int64),
        place_of_service=pl.col("place_of_service").fill_null(p.as_str("mnt.place_of_service")),
    )


def _with_same_day_dsmt(ctx: EvalContext, sessions: pl.DataFrame) -> pl.DataFrame:
    encounters = ctx.bundle["encounters"].filter(
        (pl.col("kind") == DSMT_KIND)
        & ctx.in_month("date")
        & (pl.col("outcome").fill_null("") != FAILED_ATTEMPT)
    )
    claims = nz.billed_claims(ctx, ctx.params.as_strs("mnt.dsmt_codes")).filter(
        ctx.in_month("date_of_service")
    )
    dsmt = (
        pl.concat(
            [
                encounters.select("patient_id", "date", dsmt_id=pl.col("encounter_id")),
                claims.select(
                    "patient_id",
                    date=pl.col("date_of_service"),
                    dsmt_id=_claim_id(pl.col("code"), pl.col("date_of_service")),
                ),
            ]
        )
        .group_by("patient_id", "date")
        .agg(dsmt_ids=pl.col("dsmt_id").unique().sort())
    )
    return sessions.join(dsmt, on=["patient_id", "date"], how="left").with_columns(
        pl.col("dsmt_ids").fill_null(EMPTY_IDS)
    )


def _with_session_claims(
    ctx: EvalContext, sessions: pl.DataFrame, claims: pl.DataFrame
) -> pl.DataFrame:
    """Per session: the year's claim minutes through its date, the claim ids, the claims
    of its mode on its own date, and whether the initial assessment was billed before."""
    year_start, _ = _year(ctx)
    codes = family_codes(ctx)
    in_year = (pl.col("claim_date") >= year_start) & (pl.col("claim_date") <= pl.col("date"))
    initial_before = (pl.col("code") == codes.initial) & (pl.col("claim_date") < pl.col("date"))
    if ctx.params.as_str("mnt.initial_assessment_scope") != EVER:
        initial_before = initial_before & (pl.col("claim_date") >= year_start)
    found = (
        sessions.select(*SESSION_KEYS)
        .join(claims, on="patient_id", how="inner")
        .sort("claim_date", "code")
        .group_by(SESSION_KEYS)
        .agg(
            claims_minutes=pl.col("claim_minutes").filter(in_year).sum(),
            claim_ids=pl.col("claim_id").filter(in_year).unique(maintain_order=True),
            same_day_claims=pl.col("claim_id")
            .filter(
                (pl.col("claim_date") == pl.col("date")) & (pl.col("claim_mode") == pl.col("mode"))
            )
            .unique(maintain_order=True),
            initial_claimed=initial_before.any(),
        )
    )
    return sessions.join(found, on=SESSION_KEYS, how="left", nulls_equal=True).with_columns(
        pl.col("claims_minutes").fill_null(0).cast(pl.Int64),
        pl.col("claim_ids", "same_day_claims").fill_null(EMPTY_IDS),
        pl.col("initial_claimed").fill_null(False),
    )


def _with_allowance_size(
    ctx: EvalContext, facts: pl.DataFrame, claims: pl.DataFrame
) -> pl.DataFrame:
    p = ctx.params
    return facts.join(_received_before_year(ctx, claims), on="patient_id", how="left").with_columns(
        first_year=~pl.col("received_before").fill_null(False),
        allowance_minutes=pl.when(pl.col("received_before").fill_null(False))
        .then(pl.lit(p.as_int("mnt.later_year_minutes")))
        .otherwise(pl.lit(p.as_int("mnt.first_year_minutes")))
        .cast(pl.Int64),
    )


def _eligible(ctx: EvalContext) -> pl.Expr:
    """Everything a session needs except payment and the allowance (see the criteria)."""
    furnishers = ctx.params.as_strs("mnt.furnisher_credentials")
    return (
        (pl.col("unqualified_performers").list.len() == 0)
        & pl.col("bp_credential").is_in(furnishers).fill_null(False)
        & pl.col("bp_npi").is_not_null()
        & pl.col("payer_id").is_not_null()
        & (pl.col("qualifying_icd10").list.len() > 0)
        & (pl.col("dialysis_icd10").list.len() == 0)
        & pl.col("referral_id").is_not_null()
        & (pl.col("dsmt_ids").list.len() == 0)
        & (pl.col("same_day_claims").list.len() == 0)
        & (pl.col("session_units") > 0)
    )


def session_facts(ctx: EvalContext) -> pl.DataFrame:
    codes = family_codes(ctx)
    claims = _mnt_claims(ctx)
    facts = _sessions(ctx)
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
    facts = nz.primary_coverage(ctx, facts, "date")
    facts = _with_referrals(ctx, facts, "date")
    facts = _with_diagnoses(ctx, facts, "date")
    facts = _with_same_day_dsmt(ctx, facts)
    facts = _with_session_claims(ctx, facts, claims)
    facts = _with_allowance_size(ctx, facts, claims)
    facts = _with_pays(ctx, facts, codes.all(), "date")
    individual = pl.col("mode") == INDIVIDUAL
    facts = facts.sort("patient_id", "seq").with_columns(
        eligible=_eligible(ctx), _ok_individual=(_eligible(ctx) & individual).cast(pl.Int64)
    )
    # the first eligible individual session is the initial assessment (unless claimed)
    earlier_ok = pl.col("_ok_individual").cum_sum().over("patient_id") - pl.col("_ok_individual")
    facts = facts.with_columns(
        initial=individual & ~pl.col("initial_claimed") & (earlier_ok == 0)
    ).with_columns(
        base_code=pl.when(~individual)
        .then(pl.lit(codes.group))
        .when(pl.col("initial"))
        .then(pl.lit(codes.initial))
        .otherwise(pl.lit(codes.followup)),
        additional_code=pl.when(individual)
        .then(pl.lit(codes.individual_additional))
        .otherwise(pl.lit(codes.group_additional)),
    )
    pays_base = (
        pl.when(pl.col("base_code") == codes.group)
        .then(pl.col(f"pays:{codes.group}"))
        .when(pl.col("base_code") == codes.initial)
        .then(pl.col(f"pays:{codes.initial}"))
        .otherwise(pl.col(f"pays:{codes.followup}"))
        .fill_null(False)
    )
    # the allowance: a running sum of what the year's claims and the billed sessions used
    demand = (
        pl.when(pl.col("eligible") & pays_base)
        .then(pl.col("session_units") * pl.col("unit_minutes"))
        .otherwise(0)
        .cast(pl.Int64)
    )
    facts = facts.with_columns(_demand=demand).with_columns(
        minutes_used_before=pl.col("claims_minutes")
        + pl.col("_demand").cum_sum().over("patient_id")
        - pl.col("_demand")
    )
    remaining = (pl.col("allowance_minutes") - pl.col("minutes_used_before")).clip(lower_bound=0)
    facts = (
        facts.with_columns(remaining_minutes=remaining)
        .with_columns(remaining_units=pl.col("remaining_minutes") // pl.col("unit_minutes"))
        .with_columns(
            allowance_units=pl.min_horizontal("session_units", "remaining_units"),
        )
        .with_columns(
            overflow_units=pl.col("session_units") - pl.col("allowance_units"),
            additional_route=(pl.col("remaining_units") == 0) & pl.col("change_referral_in_year"),
        )
    )
    return facts.drop("_ok_individual")


# --------------------------------------------------------------------------- criteria


def _diagnosis_criteria(ctx: EvalContext, on: str) -> list[Criterion]:
    """Diagnosis criteria as of the date column `on` (the session date, or the work list's
    reference date)."""
    p = ctx.params
    months = p.as_int("mnt.transplant_window_months")
    listed = ", ".join(
        [
            *p.as_strs("mnt.diabetes_icd10_prefixes"),
            *p.as_strs("mnt.renal_icd10_prefixes"),
            *p.as_strs("mnt.transplant_icd10_prefixes"),
        ]
    )
    detail = (
        pl.when(
            pl.col("old_transplant_icd10").is_not_null() & pl.col("old_transplant_date").is_null()
        )
        .then(
            pl.format(
                "kidney transplant {} has no onset_date (the transplant date) to check the "
                "{}-month window; no other qualifying diagnosis",
                pl.col("old_transplant_icd10"),
                pl.lit(months),
            )
        )
        .when(pl.col("old_transplant_icd10").is_not_null())
        .then(
            pl.format(
                "kidney transplant {} on {} is more than {} months before {}; "
                "no other qualifying diagnosis",
                pl.col("old_transplant_icd10"),
                pl.col("old_transplant_date"),
                pl.lit(months),
                pl.col(on),
            )
        )
        .otherwise(
            pl.format(
                "no diabetes, chronic kidney disease or kidney transplant within {} months "
                "active on {} (ICD-10-CM {})",
                pl.lit(months),
                pl.col(on),
                pl.lit(listed),
            )
        )
    )
    return [
        Criterion(
            "diagnosis",
            "diabetes, renal disease, or a kidney transplant within the window, active on "
            "the date of service",
            pl.col("qualifying_icd10").list.len() > 0,
            "diagnosis_not_qualifying",
            ("MNT-D1",),
            detail=detail,
            shows=("qualifying_icd10", "old_transplant_icd10", "old_transplant_date"),
        ),
        Criterion(
            "not_on_dialysis",
            "the patient is not on maintenance dialysis (MNT is then part of the dialysis "
            "facility's care)",
            pl.col("dialysis_icd10").list.len() == 0,
            "diagnosis_not_qualifying",
            ("MNT-D1",),
            detail=pl.format(
                "on maintenance dialysis ({}): MNT is part of the dialysis facility's care",
                pl.col("dialysis_icd10").list.join(", "),
            ),
            shows=("dialysis_icd10",),
        ),
    ]


def _practitioner_criteria(ctx: EvalContext) -> list[Criterion]:
    furnishers = ctx.params.as_strs("mnt.furnisher_credentials")
    return [
        Criterion(
            "performer_qualified",
            "every session of the day was furnished by a registered dietitian",
            pl.col("unqualified_performers").list.len() == 0,
            "practitioner_not_qualified",
            ("MNT-S1",),
            detail=pl.format(
                "MNT furnished by {}, not a registered dietitian or nutrition professional",
                pl.col("unqualified_performers").list.join(", "),
            ),
            shows=("unqualified_performers",),
        ),
        Criterion(
            "billing_practitioner_qualified",
            "the billing practitioner is a registered dietitian with an NPI",
            pl.col("bp_credential").is_in(furnishers) & pl.col("bp_npi").is_not_null(),
            "practitioner_not_qualified",
            ("MNT-S1",),
            detail=pl.format(
                "billing practitioner {} ({}, NPI {}) cannot bill MNT: a registered "
                "dietitian with an NPI bills it",
                pl.col("billing_practitioner_id"),
                pl.col("bp_credential").fill_null("unknown"),
                pl.col("bp_npi").fill_null("none"),
            ),
            shows=("billing_practitioner_id", "bp_credential", "bp_npi"),
        ),
    ]


def _referral_criterion() -> Criterion:
    detail = (
        pl.when(pl.col("other_referral_id").is_not_null())
        .then(
            pl.format(
                "referral {} is from a practitioner with credential {}; MNT needs a "
                "referral by the treating physician (MD or DO)",
                pl.col("other_referral_id"),
                pl.col("other_referral_credential").fill_null("unknown"),
            )
        )
        .when(pl.col("later_referral_id").is_not_null())
        .then(
            pl.format(
                "referral {} is dated {}, after the session",
                pl.col("later_referral_id"),
                pl.col("later_referral_date"),
            )
        )
        .when(pl.col("earlier_referral_id").is_not_null())
        .then(
            pl.format(
                "the last MNT referral ({}, {}) is from an earlier year; a new physician "
                "referral is needed each calendar year",
                pl.col("earlier_referral_id"),
                pl.col("earlier_referral_date"),
            )
        )
        .otherwise(
            pl.lit("no MNT referral by a physician dated this year on or before the session")
        )
    )
    return Criterion(
        "referral",
        "an MNT referral by a physician (MD or DO) dated in the session's calendar year, "
        "on or before the session",
        pl.col("referral_id").is_not_null(),
        "referral_missing",
        ("MNT-R1",),
        detail=detail,
        shows=("referral_id", "referral_date"),
    )


def _additional_referral_criterion(ctx: EvalContext) -> Criterion:
    reason = ctx.params.as_str("mnt.referral.additional_hours_reason")
    problem = (
        pl.when(pl.col("other_change_id").is_not_null())
        .then(
            pl.format(
                "referral {} is from credential {}, not a physician",
                pl.col("other_change_id"),
                pl.col("other_change_credential").fill_null("unknown"),
            )
        )
        .when(pl.col("later_change_id").is_not_null())
        .then(
            pl.format(
                "referral {} is dated {}, after the session",
                pl.col("later_change_id"),
                pl.col("later_change_date"),
            )
        )
        .otherwise(pl.lit("none on file"))
    )
    return Criterion(
        "additional_hours_referral",
        f"a physician's {reason} referral dated this year on or before the session "
        "(additional hours beyond the yearly allowance)",
        pl.col("change_referral_id").is_not_null(),
        "referral_missing",
        ("MNT-H1", "MNT-R1"),
        detail=pl.format(
            "{} unit(s) of this session are beyond this year's {}-minute MNT allowance; "
            "{} needs a physician's {} referral dated this year on or before the session ({})",
            pl.col("overflow_units"),
            pl.col("allowance_minutes"),
            pl.col("additional_code"),
            pl.lit(reason),
            problem,
        ),
        shows=("change_referral_id", "remaining_minutes", "overflow_units"),
    )


def _same_day_criteria() -> list[Criterion]:
    return [
        Criterion(
            "no_dsmt_same_day",
            "no diabetes self-management training on the same date of service",
            pl.col("dsmt_ids").list.len() == 0,
            "same_day_service",
            ("MNT-X1",),
            detail=pl.format(
                "DSMT on the same date ({}): MNT and DSMT are not paid on one date of service",
                pl.col("dsmt_ids").list.join(", "),
            ),
            shows=("dsmt_ids",),
        ),
        Criterion(
            "not_already_billed",
            "no MNT claim of the same mode already billed for this date (claims history)",
            pl.col("same_day_claims").list.len() == 0,
            "already_billed",
            ("MNT-U1",),
            detail=pl.format("already billed: {}", pl.col("same_day_claims").list.join(", ")),
            shows=("same_day_claims",),
        ),
    ]


def _hours_criterion(ctx: EvalContext) -> Criterion:
    reason = ctx.params.as_str("mnt.referral.additional_hours_reason")
    year_kind = (
        pl.when(pl.col("first_year")).then(pl.lit("first year")).otherwise(pl.lit("later year"))
    )
    return Criterion(
        "hours_remaining",
        "this calendar year's basic MNT allowance has room for a unit of this session",
        pl.col("remaining_units") > 0,
        "hours_exhausted",
        ("MNT-H1",),
        detail=pl.format(
            "{} of the {}-minute MNT allowance for {} ({}) used before this session, {} "
            "left; additional hours bill {} only with a physician's {} referral this year",
            pl.col("minutes_used_before"),
            pl.col("allowance_minutes"),
            pl.col("date").dt.year(),
            year_kind,
            pl.col("remaining_minutes"),
            pl.col("additional_code"),
            pl.lit(reason),
        ),
        shows=("first_year", "allowance_minutes", "minutes_used_before", "remaining_minutes"),
    )


def _time_criterion(ctx: EvalContext) -> Criterion:
    open_day = pl.lit(ctx.as_of) <= pl.col("date")
    return Criterion(
        "time_threshold",
        "the session's minutes attain at least one unit",
        pl.col("session_units") > 0,
        "time_below_threshold",
        ("MNT-T1", "MNT-U1", "TIME-1"),
        status=pl.when(open_day).then(pl.lit(STATUS_SHORT)).otherwise(pl.lit(STATUS_BLOCKED)),
        detail=pl.format(
            "{} minutes logged; one {}-minute unit needs at least {}",
            pl.col("minutes"),
            pl.col("unit_minutes"),
            pl.col("first_unit_minutes"),
        ),
        minutes_needed=(pl.col("first_unit_minutes") - pl.col("minutes")).clip(lower_bound=0),
        deadline=pl.when(open_day).then(pl.col("date")),
        shows=("minutes", "session_units"),
    )


# --------------------------------------------------------------------------- rules


def session_rules(ctx: EvalContext) -> list[CodeRule]:
    codes = family_codes(ctx)
    individual = pl.col("mode") == INDIVIDUAL
    additional = pl.col("additional_route")
    beyond_part = ~additional & (pl.col("remaining_units") > 0) & (pl.col("overflow_units") > 0)
    common_params = (
        "mnt.individual.unit_minutes",
        "mnt.group.unit_minutes",
        "mnt.unit_rounding",
        "mnt.first_year_minutes",
        "mnt.later_year_minutes",
        "mnt.referral.credentials",
        "mnt.furnisher_credentials",
    )
    icd = pl.col("qualifying_icd10").list.head(4)
    base = [
        (
            "mnt.individual.initial",
            codes.initial,
            "mnt.individual.initial_code",
            individual & pl.col("initial") & ~additional,
            "individual MNT, initial assessment",
        ),
        (
            "mnt.individual.followup",
            codes.followup,
            "mnt.individual.followup_code",
            individual & ~pl.col("initial") & ~additional,
            "individual MNT, re-assessment",
        ),
        ("mnt.group", codes.group, "mnt.group.code", ~individual & ~additional, "group MNT"),
    ]
    rules: list[CodeRule] = []
    for key, code, param, considered, description in base:
        rules.append(
            CodeRule(
                key=key,
                code=code,
                family=FAMILY,
                considered=considered,
                criteria=(
                    *_practitioner_criteria(ctx),
                    coverage_criterion(shows=("date", "payer_id")),
                    payer_pays_criterion(code),
                    *_diagnosis_criteria(ctx, "date"),
                    _referral_criterion(),
                    *_same_day_criteria(),
                    _hours_criterion(ctx),
                    _time_criterion(ctx),
                ),
                units=pl.col("allowance_units"),
                date_of_service=pl.col("date"),
                evidence=evidence_list("encounter_ids", "referral_id", "claim_ids"),
                rules=RULE_IDS,
                minutes_logged=pl.col("minutes"),
                place_of_service=pl.col("place_of_service"),
                icd10_codes=icd,
                parameters=(param, *common_params, "mnt.initial_assessment_scope"),
                description=description,
            )
        )
    extra = [
        (
            "mnt.individual.additional",
            codes.individual_additional,
            "mnt.individual.additional_code",
            individual,
            "individual MNT, additional hours (change in condition)",
        ),
        (
            "mnt.group.additional",
            codes.group_additional,
            "mnt.group.additional_code",
            ~individual,
            "group MNT, additional hours (change in condition)",
        ),
    ]
    for key, code, param, mode, description in extra:
        rules.append(
            CodeRule(
                key=key,
                code=code,
                family=FAMILY,
                considered=mode & (additional | beyond_part),
                criteria=(
                    *_practitioner_criteria(ctx),
                    coverage_criterion(shows=("date", "payer_id")),
                    payer_pays_criterion(code),
                    *_diagnosis_criteria(ctx, "date"),
                    _additional_referral_criterion(ctx),
                    *_same_day_criteria(),
                    _time_criterion(ctx),
                ),
                units=pl.col("overflow_units"),
                date_of_service=pl.col("date"),
                evidence=evidence_list(
                    "encounter_ids", "change_referral_id", "referral_id", "claim_ids"
                ),
                rules=RULE_IDS,
                minutes_logged=pl.col("minutes"),
                place_of_service=pl.col("place_of_service"),
                icd10_codes=icd,
                parameters=(param, *common_params, "mnt.referral.additional_hours_reason"),
                description=description,
            )
        )
    return rules


# --------------------------------------------------------------------------- work list


def allowance_facts(ctx: EvalContext, sessions: pl.DataFrame) -> pl.DataFrame:
    """Patients with a physician's MNT referral this year: what is left of the allowance
    after the year's claims and this month's billed sessions."""
    codes = family_codes(ctx)
    year_start, _ = _year(ctx)
    claims = _mnt_claims(ctx)
    alive = pl.col("death_date").is_null() | (pl.col("death_date") >= ctx.start)
    patients = (
        ctx.bundle["patients"]
        .filter(alive)
        .select("patient_id")
        .with_columns(reference_date=pl.lit(ctx.end, dtype=pl.Date))
    )
    facts = _with_referrals(ctx, patients, "reference_date").filter(
        pl.col("referral_id").is_not_null()
    )
    in_year = pl.col("claim_date") >= year_start
    initial_claimed = pl.col("code") == codes.initial
    if ctx.params.as_str("mnt.initial_assessment_scope") != EVER:
        initial_claimed = initial_claimed & in_year
    year_claims = (
        claims.sort("claim_date", "code")
        .group_by("patient_id")
        .agg(
            year_claims_minutes=pl.col("claim_minutes").filter(in_year).sum().cast(pl.Int64),
            claim_ids=pl.col("claim_id").filter(in_year).unique(maintain_order=True),
            initial_claimed=initial_claimed.any(),
            claim_practitioner_id=pl.col("claim_practitioner_id").drop_nulls().last(),
        )
    )
    individual = pl.col("mode") == INDIVIDUAL
    month = (
        sessions.sort("patient_id", "seq")
        .group_by("patient_id")
        .agg(
            month_minutes_used=pl.col("_demand").sum().cast(pl.Int64),
            minutes_logged=pl.col("minutes").sum().cast(pl.Int64),
            initial_this_month=(pl.col("eligible") & individual).any(),
            session_practitioner_id=pl.col("billing_practitioner_id").last(),
            encounter_ids=pl.col("encounter_ids").list.explode(
                keep_nulls=False, empty_as_null=False
            ),
        )
    )
    facts = (
        facts.join(year_claims, on="patient_id", how="left")
        .join(month, on="patient_id", how="left")
        .with_columns(
            pl.col("year_claims_minutes", "month_minutes_used", "minutes_logged").fill_null(0),
            pl.col("claim_ids", "encounter_ids").fill_null(EMPTY_IDS),
            pl.col("initial_claimed", "initial_this_month").fill_null(False),
            billing_practitioner_id=pl.coalesce("session_practitioner_id", "claim_practitioner_id"),
        )
    )
    facts = _with_allowance_size(ctx, facts, claims)
    used = pl.col("year_claims_minutes") + pl.col("month_minutes_used")
    facts = facts.with_columns(
        minutes_used=used,
        remaining_minutes=(pl.col("allowance_minutes") - used).clip(lower_bound=0),
        next_initial=~pl.col("initial_claimed") & ~pl.col("initial_this_month"),
    )
    facts = nz.primary_coverage(ctx, facts, "reference_date")
    facts = _with_diagnoses(ctx, facts, "reference_date")
    return _with_pays(ctx, facts, [codes.initial, codes.followup], "reference_date")


def allowance_rules(ctx: EvalContext) -> list[CodeRule]:
    codes = family_codes(ctx)
    p = ctx.params
    unit = p.as_int("mnt.individual.unit_minutes")
    first_unit = unit // 2 + 1 if p.as_str("mnt.unit_rounding") == MIDPOINT else unit
    _, year_end = _year(ctx)
    # while the month is open the remaining minutes can be used until the year's end
    deadline = year_end if ctx.as_of <= ctx.end else None
    rules: list[CodeRule] = []
    for key, code, param, is_initial in (
        ("mnt.allowance.initial", codes.initial, "mnt.individual.initial_code", True),
        ("mnt.allowance.followup", codes.followup, "mnt.individual.followup_code", False),
    ):
        next_code = pl.col("next_initial") if is_initial else ~pl.col("next_initial")
        # always fails when considered (minutes remain): the work list is never a line
        remaining = Criterion(
            "allowance_used",
            "this year's MNT allowance is used (while minutes remain, the next session bills)",
            pl.col("remaining_minutes") < unit,
            "time_below_threshold",
            ("MNT-H1", "MNT-T1"),
            status=time_status(ctx),
            detail=pl.format(
                "{} of {} minutes of this year's MNT allowance remain ({} used, referral {}); "
                "a session of at least {} minutes bills {}",
                pl.col("remaining_minutes"),
                pl.col("allowance_minutes"),
                pl.col("minutes_used"),
                pl.col("referral_id"),
                pl.lit(first_unit),
                pl.lit(code),
            ),
            minutes_needed=pl.lit(first_unit, dtype=pl.Int64),
            deadline=pl.lit(deadline, dtype=pl.Date),
            shows=("allowance_minutes", "minutes_used", "remaining_minutes"),
        )
        rules.append(
            CodeRule(
                key=key,
                code=code,
                family=FAMILY,
                considered=next_code & (pl.col("remaining_minutes") >= unit),
                criteria=(
                    coverage_criterion(shows=("reference_date", "payer_id")),
                    payer_pays_criterion(code),
                    *_diagnosis_criteria(ctx, "reference_date"),
                    remaining,
                ),
                units=pl.lit(0),
                date_of_service=pl.lit(None, dtype=pl.Date),
                evidence=evidence_list("referral_id", "encounter_ids", "claim_ids"),
                rules=("MNT-H1", "MNT-R1", "MNT-D1"),
                minutes_logged=pl.col("minutes_logged"),
                icd10_codes=pl.col("qualifying_icd10").list.head(4),
                parameters=(
                    param,
                    "mnt.first_year_minutes",
                    "mnt.later_year_minutes",
                    "mnt.referral.credentials",
                ),
                description="MNT allowance left this year (work list)",
            )
        )
    return rules


def evaluate(ctx: EvalContext) -> Sequence[RuleSetResult]:
    visit = (pl.col("date"), pl.col("date"))
    sessions = session_facts(ctx)
    return [
        run_rule_set(ctx, FAMILY, "mnt.sessions", sessions, session_rules(ctx), period=visit),
        run_rule_set(
            ctx, FAMILY, "mnt.allowance", allowance_facts(ctx, sessions), allowance_rules(ctx)
        ),
    ]
