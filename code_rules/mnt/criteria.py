"""The criteria an auditor reads: what an MNT session (or the work list's next session)
needs, each citing the MNT rule it checks (README.md, reference MNT-*).

Every number and code in a detail comes from a parameter or a facts column.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SHORT, Criterion
from code_rules.mnt.shared import PAYMENT_RULE_IDS, mnt


def coverage_criterion(on: str) -> Criterion:
    """Coverage on the date column `on` (it feeds MNT's waived cost sharing, MNT-$)."""
    return pr.coverage_criterion(PAYMENT_RULE_IDS, shows=(on, "payer_id"))


def payment_criteria(code: str, on: str) -> list[Criterion]:
    """Coverage on the date column `on`, and the payer pays `code`."""
    return [coverage_criterion(on), pr.payer_pays_criterion(code, PAYMENT_RULE_IDS)]


def eligibility_criteria(ctx: EvalContext) -> list[Criterion]:
    """What a session needs whatever code it bills and whatever remains of the allowance:
    the sessions' ``eligible`` column is all of these met (the payer's check, the
    referral for additional hours and the allowance are the rules' own)."""
    return [
        *practitioner_criteria(ctx),
        coverage_criterion("date"),
        *diagnosis_criteria(ctx, "date"),
        referral_criterion(ctx),
        *same_day_criteria(),
        time_criterion(ctx),
    ]


def diagnosis_criteria(ctx: EvalContext, on: str) -> list[Criterion]:
    """Diagnosis criteria as of the date column `on` (the session date, or the work list's
    reference date)."""
    p = mnt(ctx)
    months = p.transplant_window_months
    listed = ", ".join(
        [*p.diabetes_icd10_prefixes, *p.renal_icd10_prefixes, *p.transplant_icd10_prefixes]
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


def practitioner_criteria(ctx: EvalContext) -> list[Criterion]:
    """A registered dietitian furnished every session of the day and bills it."""
    furnishers = mnt(ctx).furnisher_credentials
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
        pr.billing_practitioner_qualified_criterion(
            ("MNT-S1",),
            furnishers,
            "the billing practitioner is a registered dietitian with an NPI",
            require_npi=True,
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


def referral_criterion(ctx: EvalContext) -> Criterion:
    """A physician's MNT referral of the session's calendar year, on or before it."""
    physicians = " or ".join(mnt(ctx).referral.credentials)
    detail = (
        pl.when(pl.col("other_referral_id").is_not_null())
        .then(
            pl.format(
                "referral {} is from a practitioner with credential {}; MNT needs a "
                "referral by the treating physician ({})",
                pl.col("other_referral_id"),
                pl.col("other_referral_credential").fill_null("unknown"),
                pl.lit(physicians),
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
        f"an MNT referral by a physician ({physicians}) dated in the session's calendar "
        "year, on or before the session",
        pl.col("referral_id").is_not_null(),
        "referral_missing",
        ("MNT-R1",),
        detail=detail,
        shows=("referral_id", "referral_date"),
    )


def additional_referral_criterion(ctx: EvalContext) -> Criterion:
    """For the units beyond the allowance: a physician's additional-hours referral."""
    reason = mnt(ctx).referral.additional_hours_reason
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


def same_day_criteria() -> list[Criterion]:
    """No DSMT on the date, and no MNT claim of the same mode already on it."""
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
        pr.not_already_billed_criterion(
            pl.col("same_day_claims").list.len() == 0,
            "no MNT claim of the same mode already billed for this date (claims history)",
            ("MNT-U1",),
            detail=pl.format("already billed: {}", pl.col("same_day_claims").list.join(", ")),
            shows=("same_day_claims",),
        ),
    ]


def hours_criterion(ctx: EvalContext) -> Criterion:
    """The year's basic allowance has room for a unit of the session (MNT-H1)."""
    reason = mnt(ctx).referral.additional_hours_reason
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


def time_criterion(ctx: EvalContext) -> Criterion:
    """The session's minutes attain a unit; short (not blocked) while its day is open."""
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
