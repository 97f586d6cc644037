"""Services already given or billed: visits, claims history and decision making."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.engine.facts.patients import practitioners
from billing_engine.engine.facts.time import time_entries


def patients_seen(ctx: EvalContext, kinds: Sequence[str]) -> pl.DataFrame:
    """The patients (``patient_id``) with an encounter of `kinds` dated in the month,
    whatever its outcome: the most a family of such visits can speak of
    (``EvalContext.narrowed_to``)."""
    return (
        ctx.bundle["encounters"]
        .filter(pl.col("kind").is_in(kinds) & ctx.in_month("date"))
        .select("patient_id")
        .unique()
    )


def practitioner_visits(
    ctx: EvalContext, codes: list[str], kinds: list[str], patients: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Face-to-face visits with a practitioner: (patient_id, practitioner_id, date, source_id).

    From encounters of `kinds` (office visits need one of `codes` in their cpt;
    wellness kinds count as they are) performed or billed by the practitioner, and
    from claims_history rows with one of `codes` billed under the practitioner's NPI.
    Only visits on or before the month's end; only `patients` (a patient_id frame)
    when given.
    """
    # one lazy query: the filters reach the scans and the two sources run side by side
    encounters = ctx.bundle["encounters"].lazy()
    history = ctx.bundle["claims_history"].lazy().filter(pl.col("date_of_service") <= ctx.end)
    if patients is not None:
        encounters = encounters.join(patients.lazy(), on="patient_id", how="semi")
        history = history.join(patients.lazy(), on="patient_id", how="semi")
    enc = encounters.filter(
        pl.col("kind").is_in(kinds)
        & (pl.col("date") <= ctx.end)
        & (pl.col("outcome").is_null() | (pl.col("outcome") != "attempt_failed"))
        & (
            (pl.col("kind") != "office_visit")
            | pl.col("cpt").list.eval(pl.element().is_in(codes)).list.any()
        )
    )
    by_practitioner = [
        enc.filter(pl.col(column).is_not_null()).select(
            "patient_id",
            pl.col(column).alias("practitioner_id"),
            "date",
            pl.col("encounter_id").alias("source_id"),
        )
        for column in ("performer_id", "billing_practitioner_id")
    ]
    ignored = ctx.params.as_strs("common.ignored_claim_statuses")
    claims = (
        history.filter(
            pl.col("code").is_in(codes)
            & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        )
        .join(
            practitioners(ctx).lazy().filter(pl.col("npi").is_not_null()),
            left_on="billing_npi",
            right_on="npi",
            how="inner",
        )
        .select(
            "patient_id",
            "practitioner_id",
            pl.col("date_of_service").alias("date"),
            pl.concat_str(
                pl.lit("claim:"),
                pl.col("code"),
                pl.lit("@"),
                pl.col("date_of_service").cast(pl.String),
            ).alias("source_id"),
        )
    )
    return pl.concat([*by_practitioner, claims]).unique().collect()


def billed_claims(
    ctx: EvalContext, codes: list[str], through: dt.date | None = None
) -> pl.DataFrame:
    """Claims history rows for `codes` that count as billed, dated on or before `through`
    (default: the month's end; frequency limits never look at later claims).

    Adds ``claim_practitioner_id``: the practitioner of the bundle whose NPI billed the
    claim (null for another practice's NPI), and ``units`` defaulted to 1.
    """
    ignored = ctx.params.as_strs("common.ignored_claim_statuses")
    last = through or ctx.end
    return (
        ctx.bundle["claims_history"]
        .filter(
            pl.col("code").is_in(codes)
            & (pl.col("date_of_service") <= last)
            & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        )
        .with_columns(pl.col("units").fill_null(1))
        .join(
            practitioners(ctx)
            .filter(pl.col("npi").is_not_null())
            .select(
                pl.col("npi").alias("billing_npi"),
                pl.col("practitioner_id").alias("claim_practitioner_id"),
            )
            .unique(subset=["billing_npi"], keep="first"),
            on="billing_npi",
            how="left",
        )
    )


def claims_in_month(ctx: EvalContext, codes: list[str]) -> pl.DataFrame:
    """Claims history rows of the month for `codes` that count as billed."""
    ignored = ctx.params.as_strs("common.ignored_claim_statuses")
    return ctx.bundle["claims_history"].filter(
        pl.col("code").is_in(codes)
        & ctx.in_month("date_of_service")
        & (pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
    )


def max_mdm(ctx: EvalContext) -> pl.DataFrame:
    """(patient_id, billing_practitioner_id) -> highest MDM rank recorded in the month
    on any encounter billed under that practitioner (interchange semantics 5)."""
    order = ctx.params.as_strs("common.mdm_rank")
    ranks = pl.DataFrame({"mdm": order, "mdm_rank": list(range(1, len(order) + 1))})
    entries = time_entries(ctx).select("encounter_id", "billing_practitioner_id")
    return (
        ctx.bundle["encounters"]
        .filter(ctx.in_month("date") & pl.col("mdm").is_not_null())
        .join(
            entries.rename({"billing_practitioner_id": "resolved_bp"}),
            on="encounter_id",
            how="left",
        )
        .with_columns(
            billing_practitioner_id=pl.coalesce(
                "resolved_bp", "billing_practitioner_id", "performer_id"
            )
        )
        .join(ranks, on="mdm", how="inner")
        .group_by("patient_id", "billing_practitioner_id")
        .agg(mdm_rank=pl.col("mdm_rank").max(), mdm_ids=pl.col("encounter_id").sort())
    )


def mdm_rank_of(ctx: EvalContext, level: str) -> int:
    return ctx.params.as_strs("common.mdm_rank").index(level) + 1
