"""TCM facts, part 1: the discharges with their periods and deadlines, the contacts after
them and the practitioners' face-to-face visits (the joins the criteria read)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from billing_engine.calendar import add_business_days_expr, federal_holidays
from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import typed
from code_rules.tcm.codes import (
    CONTACT_KIND,
    DAY,
    DAY_ONE,
    FAILED,
    FEDERAL_OBSERVED,
    NO_HOLIDAYS,
    alternatives,
    horizon,
)


def holidays(ctx: EvalContext, discharges: pl.DataFrame) -> tuple[dt.date, ...]:
    """Non-business days besides weekends, per the setting (BIZ-2)."""
    choice = typed(ctx.params).tcm.contact.holidays
    if choice == NO_HOLIDAYS or discharges.is_empty():
        return ()
    years = pl.col("discharge_date").dt.year()
    first, last = discharges.select(years.min().alias("first"), years.max() + 1).row(0)
    return federal_holidays(int(first), int(last), observed=choice == FEDERAL_OBSERVED)


def month_patients(ctx: EvalContext) -> pl.DataFrame:
    """The patients (``patient_id``) with a discharge whose period can reach the month:
    discharged from one period's length before the month's start through the horizon.
    The month shows only such discharges (their visit and its window fall in the
    period), and every earlier discharge that bears on them is the same patient's."""
    first = ctx.start - dt.timedelta(days=typed(ctx.params).tcm.period_days)
    return (
        ctx.bundle["discharges"]
        .filter(pl.col("discharge_date").is_between(first, horizon(ctx)))
        .select("patient_id")
        .unique()
    )


def encounters(ctx: EvalContext) -> pl.DataFrame:
    """Encounters known by the horizon; ``enc_bp`` = billing practitioner else performer."""
    return (
        ctx.bundle["encounters"]
        .filter(pl.col("date") <= horizon(ctx))
        .with_columns(
            enc_bp=pl.coalesce("billing_practitioner_id", "performer_id"),
            failed=(pl.col("outcome") == FAILED).fill_null(False),
        )
    )


def discharge_facts(ctx: EvalContext) -> pl.DataFrame:
    """Every discharge known by the horizon with its period, windows and deadlines."""
    tcm = typed(ctx.params).tcm
    period_days = tcm.period_days
    settings = tcm.qualifying_settings
    all_discharges = ctx.bundle["discharges"].filter(pl.col("discharge_date") <= horizon(ctx))
    qualifying = all_discharges.filter(pl.col("setting").is_in(settings)).select(
        "patient_id", next_discharge=pl.col("discharge_date")
    )
    following = (
        all_discharges.select("discharge_id", "patient_id", "discharge_date")
        .join(qualifying, on="patient_id", how="inner")
        .filter(pl.col("next_discharge") > pl.col("discharge_date"))
        .group_by("discharge_id")
        .agg(pl.col("next_discharge").min())
    )
    frame = all_discharges.join(following, on="discharge_id", how="left").with_columns(
        period_end=pl.col("discharge_date") + pl.duration(days=period_days - 1)
    )
    frame = frame.with_columns(
        window_end=pl.min_horizontal("period_end", pl.col("next_discharge") - DAY)
    )
    shift = 1 if tcm.visit.day_counting == DAY_ONE else 0
    for alt in alternatives(ctx):
        within = alt.code.visit_within_days - shift
        frame = frame.with_columns(
            (pl.col("discharge_date") + pl.duration(days=within)).alias(alt.last_date)
        )
    non_business = holidays(ctx, frame)
    n = tcm.contact.business_days
    deadline = add_business_days_expr(pl.col("discharge_date"), n, non_business)
    if tcm.contact.day_counting == DAY_ONE:
        deadline = (
            pl.when(pl.col("discharge_date").dt.is_business_day(holidays=list(non_business)))
            .then(add_business_days_expr(pl.col("discharge_date"), n - 1, non_business))
            .otherwise(deadline)
        )
    return frame.with_columns(contact_deadline=deadline)


def contacts(ctx: EvalContext, discharges: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """Per discharge: timely contacts and failed attempts (TCM-C1, BIZ-1), and the
    practitioner the discharge's contacts are billed under."""
    common = typed(ctx.params).common
    billers = common.billing_credentials
    staff = common.clinical_staff_credentials
    made = nz.with_practitioner(
        ctx, enc.filter(pl.col("kind") == CONTACT_KIND), "performer_id", "performer"
    ).filter(pl.col("performer_credential").is_in([*billers, *staff]))
    joined = (
        discharges.select("discharge_id", "patient_id", "discharge_date", "window_end")
        .join(
            made.select(
                "patient_id",
                "encounter_id",
                pl.col("date").alias("contact_on"),
                "failed",
                pl.coalesce(
                    "billing_practitioner_id",
                    pl.when(pl.col("performer_credential").is_in(billers)).then(
                        pl.col("performer_id")
                    ),
                ).alias("contact_bp"),
            ),
            on="patient_id",
            how="inner",
        )
        .filter(pr.active_on("contact_on", "discharge_date", "window_end", open_end=False))
        .join(discharges.select("discharge_id", "contact_deadline"), on="discharge_id")
        .with_columns(timely=pl.col("contact_on") <= pl.col("contact_deadline"))
        .sort("contact_on", "encounter_id")
    )
    return joined.group_by("discharge_id").agg(
        contacts_completed=(pl.col("timely") & ~pl.col("failed")).sum().cast(pl.Int64),
        attempts_failed=(pl.col("timely") & pl.col("failed")).sum().cast(pl.Int64),
        contact_ids=pl.col("encounter_id").filter(pl.col("timely")),
        contact_date=pl.col("contact_on").filter(pl.col("timely") & ~pl.col("failed")).first(),
        contact_bp=pl.col("contact_bp").drop_nulls().first(),
    )


def discharge_day_management(ctx: EvalContext, enc: pl.DataFrame) -> pl.DataFrame:
    """(patient_id, practitioner_id, date) of discharge-day management (TCM-X1): claims
    history under the practitioner's NPI, or an encounter coded with it under them."""
    codes = typed(ctx.params).tcm.discharge_day_management_codes
    claims = (
        nz.billed_claims(ctx, codes, through=horizon(ctx))
        .filter(pl.col("claim_practitioner_id").is_not_null())
        .select(
            "patient_id",
            pl.col("claim_practitioner_id").alias("billing_practitioner_id"),
            pl.col("date_of_service").alias("f2f_date"),
        )
    )
    coded = enc.filter(
        ~pl.col("failed") & pl.col("cpt").list.eval(pl.element().is_in(codes)).list.any()
    ).select(
        "patient_id",
        pl.col("enc_bp").alias("billing_practitioner_id"),
        pl.col("date").alias("f2f_date"),
    )
    return pl.concat([claims, coded]).unique().with_columns(f2f_on_ddm=pl.lit(True))


def visits(ctx: EvalContext, discharges: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """Per discharge and practitioner: the face-to-face visit (TCM-F1, TCM-X1)."""
    tcm = typed(ctx.params).tcm
    excluded = [*tcm.visit.nonqualifying_codes, *tcm.discharge_day_management_codes]
    qualifies = (
        pl.col("cpt").is_null()
        | (pl.col("cpt").list.len() == 0)
        | pl.col("cpt").list.eval(~pl.element().is_in(excluded)).list.any()
    )
    seen = enc.filter(pl.col("kind").is_in(tcm.visit.kinds) & ~pl.col("failed") & qualifies).select(
        "patient_id",
        pl.col("enc_bp").alias("billing_practitioner_id"),
        pl.col("encounter_id").alias("f2f_id"),
        pl.col("date").alias("f2f_date"),
        pl.col("place_of_service").alias("f2f_place_of_service"),
    )
    return (
        discharges.select("discharge_id", "patient_id", "discharge_date", "window_end")
        .join(seen, on="patient_id", how="inner")
        .filter(pr.active_on("f2f_date", "discharge_date", "window_end", open_end=False))
        .join(
            discharge_day_management(ctx, enc),
            on=["patient_id", "billing_practitioner_id", "f2f_date"],
            how="left",
        )
        .with_columns(pl.col("f2f_on_ddm").fill_null(False))
        .sort("discharge_id", "billing_practitioner_id", "f2f_on_ddm", "f2f_date", "f2f_id")
        .unique(subset=["discharge_id", "billing_practitioner_id"], keep="first")
        .select(
            "discharge_id",
            "billing_practitioner_id",
            "f2f_id",
            "f2f_date",
            "f2f_place_of_service",
            "f2f_on_ddm",
        )
    )
