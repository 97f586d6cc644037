"""The patient's MNT history as of a date: claims of the year, the allowance's size, the
referrals on file and the diagnoses active (joins shared by both MNT rule sets)."""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.mnt.shared import (
    EMPTY_IDS,
    GROUP,
    INDIVIDUAL,
    MNT_KIND,
    claim_id,
    family_codes,
    group_codes,
    mnt,
    not_failed,
    starts_with_any,
    unit_minutes,
    year,
)


def mnt_claims(ctx: EvalContext) -> pl.DataFrame:
    """Every MNT claim that counts as billed (not denied), through the month's end, with
    the allowance minutes its units consumed and its mode."""
    is_group = pl.col("code").is_in(group_codes(ctx))
    mode = pl.when(is_group).then(pl.lit(GROUP)).otherwise(pl.lit(INDIVIDUAL))
    return nz.billed_claims(ctx, family_codes(ctx)).select(
        "patient_id",
        "code",
        "claim_practitioner_id",
        claim_date=pl.col("date_of_service"),
        claim_mode=mode,
        claim_minutes=(pl.col("units") * unit_minutes(ctx, mode)).cast(pl.Int64),
        claim_id=claim_id(pl.col("code"), pl.col("date_of_service")),
    )


def _received_before_year(ctx: EvalContext, claims: pl.DataFrame) -> pl.DataFrame:
    """Patients who received MNT in an earlier calendar year (a claim or an encounter)."""
    year_start, _ = year(ctx)
    encounters = ctx.bundle["encounters"].filter(
        (pl.col("kind") == MNT_KIND) & (pl.col("date") < year_start) & not_failed()
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


def with_allowance_size(
    ctx: EvalContext, facts: pl.DataFrame, claims: pl.DataFrame
) -> pl.DataFrame:
    """``first_year`` and ``allowance_minutes``: the first year's allowance unless MNT was
    received in an earlier calendar year (MNT-H1)."""
    p = mnt(ctx)
    return facts.join(_received_before_year(ctx, claims), on="patient_id", how="left").with_columns(
        first_year=~pl.col("received_before").fill_null(False),
        allowance_minutes=pl.when(pl.col("received_before").fill_null(False))
        .then(pl.lit(p.later_year_minutes))
        .otherwise(pl.lit(p.first_year_minutes))
        .cast(pl.Int64),
    )


def with_referrals(ctx: EvalContext, frame: pl.DataFrame, on: str) -> pl.DataFrame:
    """The patient's MNT referrals as of the date column `on`.

    ``referral_id``/``referral_date``: the latest referral by a physician dated in the
    same calendar year on or before `on`; ``change_referral_id``: the same for a referral
    for additional hours; ``change_referral_in_year``: any additional-hours referral of
    the year dated by the month's end (by anyone, on any date). The other columns say
    why a referral on file does not count (for the gaps' detail).
    """
    referral = mnt(ctx).referral
    physicians = referral.credentials
    change = referral.additional_hours_reason
    referrals = nz.with_practitioner(
        ctx,
        ctx.bundle["referrals"].filter(pl.col("service") == referral.service),
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


def with_diagnoses(ctx: EvalContext, frame: pl.DataFrame, on: str) -> pl.DataFrame:
    """Conditions active on the date column `on`: the qualifying ones (diabetes, renal
    disease, a kidney transplant within the window) and the ones showing dialysis."""
    p = mnt(ctx)
    months = p.transplant_window_months
    day = pl.col(on)
    onset = pl.col("onset_date")
    conditions = ctx.bundle["conditions"].with_columns(code=nz.normalized_icd10(pl.col("icd10")))
    active = pr.active_on(on, "onset_date", "resolved_date", open_start=True)
    transplant = starts_with_any("code", p.transplant_icd10_prefixes)
    recent = transplant & onset.is_not_null() & (day <= onset.dt.offset_by(f"{months}mo"))
    qualifying = (
        starts_with_any("code", p.diabetes_icd10_prefixes)
        | starts_with_any("code", p.renal_icd10_prefixes)
        | recent
    )
    dialysis = starts_with_any("code", p.dialysis_icd10_prefixes)
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
