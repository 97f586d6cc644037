"""TCM facts, part 2: one row per discharge x practitioner (``all_facts``), with the MDM,
medication reconciliation, claims history of the period, diagnoses and payer."""

from __future__ import annotations

import datetime as dt

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import typed
from code_rules.tcm.codes import empty_list, family_codes, horizon
from code_rules.tcm.facts_discharges import contacts, discharge_facts, encounters, visits


def with_mdm(ctx: EvalContext, facts: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """TCM's MDM (interchange semantics 11): the highest ``mdm`` on encounters billed
    under the practitioner from the discharge date through the visit (or, without a
    visit yet, through the horizon)."""
    order = typed(ctx.params).common.mdm_rank
    ranks = pl.DataFrame({"mdm": order, "mdm_rank": list(range(1, len(order) + 1))})
    recorded = (
        enc.filter(pl.col("mdm").is_not_null() & ~pl.col("failed"))
        .join(ranks, on="mdm", how="inner")
        .select(
            "patient_id",
            pl.col("enc_bp").alias("billing_practitioner_id"),
            pl.col("date").alias("mdm_on"),
            "mdm_rank",
            pl.col("encounter_id").alias("mdm_id"),
        )
    )
    through = pl.coalesce("f2f_date", pl.min_horizontal("window_end", pl.lit(horizon(ctx)))).alias(
        "mdm_through"
    )
    found = (
        facts.select("_row", "patient_id", "billing_practitioner_id", "discharge_date", through)
        .join(recorded, on=["patient_id", "billing_practitioner_id"], how="inner")
        .filter(pr.active_on("mdm_on", "discharge_date", "mdm_through", open_end=False))
        .group_by("_row")
        .agg(pl.col("mdm_rank").max(), mdm_ids=pl.col("mdm_id").sort())
    )
    return (
        facts.join(found, on="_row", how="left")
        .with_columns(pl.col("mdm_ids").fill_null(empty_list()))
        .with_columns(
            mdm_level=pl.col("mdm_rank").replace_strict(
                ranks["mdm_rank"], ranks["mdm"], default=None, return_dtype=pl.String
            )
        )
    )


def with_medication_reconciliation(
    ctx: EvalContext, facts: pl.DataFrame, enc: pl.DataFrame
) -> pl.DataFrame:
    """The first medication reconciliation of the patient from the discharge date."""
    activity = typed(ctx.params).tcm.medication_reconciliation_activity
    done = enc.filter(~pl.col("failed") & pl.col("activities").list.contains(activity)).select(
        "patient_id", pl.col("date").alias("med_rec_date"), pl.col("encounter_id").alias("med_id")
    )
    found = (
        facts.select("_row", "patient_id", "discharge_date", "window_end")
        .join(done, on="patient_id", how="inner")
        .filter(pr.active_on("med_rec_date", "discharge_date", "window_end", open_end=False))
        .sort("med_rec_date", "med_id")
        .group_by("_row")
        .agg(pl.col("med_rec_date").first(), med_rec_id=pl.col("med_id").first())
    )
    return facts.join(found, on="_row", how="left")


def with_claims(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """TCM claims of claims history in the period (TCM-P1). A claim's own period starts
    at the latest discharge of the patient at most period_days - 1 days before its date
    of service (else at the date of service); it blocks a discharge inside that period
    and any discharge whose period holds the claim."""
    period_days = typed(ctx.params).tcm.period_days
    reach = pl.duration(days=period_days - 1)
    claims = (
        nz.billed_claims(ctx, family_codes(ctx), through=dt.date.max)
        .with_row_index("_claim")
        .select(
            "_claim",
            "patient_id",
            "billing_npi",
            pl.col("date_of_service").alias("claim_on"),
            pl.format("claim:{}@{}", pl.col("code"), pl.col("date_of_service")).alias("claim_id"),
        )
    )
    starts = (
        claims.join(
            ctx.bundle["discharges"].select("patient_id", "discharge_date"),
            on="patient_id",
            how="inner",
        )
        .filter(
            pr.active_on(
                "claim_on", "discharge_date", pl.col("discharge_date") + reach, open_end=False
            )
        )
        .group_by("_claim")
        .agg(claim_start=pl.col("discharge_date").max())
    )
    claims = claims.join(starts, on="_claim", how="left").with_columns(
        claim_start=pl.coalesce("claim_start", "claim_on")
    )
    hits = (
        facts.select("_row", "patient_id", "discharge_date", "period_end", "bp_npi")
        .join(claims, on="patient_id", how="inner")
        .filter(
            pr.active_on(
                "discharge_date", "claim_start", pl.col("claim_start") + reach, open_end=False
            )
            | pr.active_on("claim_on", "discharge_date", "period_end", open_end=False)
        )
        .group_by("_row")
        .agg(
            other_claims=pl.col("claim_id")
            .filter(pl.col("billing_npi") != pl.col("bp_npi").fill_null(""))
            .unique()
            .sort(),
            own_claims=pl.col("claim_id")
            .filter(pl.col("billing_npi") == pl.col("bp_npi"))
            .unique()
            .sort(),
        )
    )
    return facts.join(hits, on="_row", how="left").with_columns(
        pl.col("other_claims", "own_claims").fill_null(empty_list())
    )


def with_icd10(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Up to four conditions active on the reference date, longest-standing first."""
    active = (
        facts.select("_row", "patient_id", "reference_date")
        .join(ctx.bundle["conditions"], on="patient_id", how="inner")
        .filter(pr.active_on("reference_date", "onset_date", "resolved_date", open_start=True))
        .sort("_row", "onset_date", "icd10", nulls_last=False)
        .group_by("_row", maintain_order=True)
        .agg(icd10_codes=pl.col("icd10").unique(maintain_order=True).head(4))
    )
    return facts.join(active, on="_row", how="left").with_columns(
        pl.col("icd10_codes").fill_null(empty_list())
    )


def candidates(ctx: EvalContext, discharges: pl.DataFrame, enc: pl.DataFrame) -> pl.DataFrame:
    """One row per discharge x practitioner with a visit, else per discharge (contacts'
    practitioner, or none)."""
    seen = visits(ctx, discharges, enc)
    contacted = contacts(ctx, discharges, enc)
    without_visit = (
        discharges.select("discharge_id")
        .join(seen.select("discharge_id").unique(), on="discharge_id", how="anti")
        .join(contacted.select("discharge_id", "contact_bp"), on="discharge_id", how="left")
        .select("discharge_id", pl.col("contact_bp").alias("billing_practitioner_id"))
    )
    rows = pl.concat([seen, without_visit], how="diagonal_relaxed")
    return (
        rows.join(discharges, on="discharge_id", how="inner")
        .join(contacted.drop("contact_bp"), on="discharge_id", how="left")
        .with_columns(
            pl.col("contacts_completed", "attempts_failed").fill_null(0),
            pl.col("contact_ids").fill_null(empty_list()),
            pl.col("f2f_on_ddm").fill_null(False),
        )
        .sort("patient_id", "discharge_date", "discharge_id", "billing_practitioner_id")
        .with_row_index("_row")
    )


def all_facts(ctx: EvalContext) -> pl.DataFrame:
    """Facts for every discharge known by the horizon (before the month is selected)."""
    rp = typed(ctx.params)
    discharges = discharge_facts(ctx)
    enc = encounters(ctx)
    facts = candidates(ctx, discharges, enc)
    facts = nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
    facts = with_mdm(ctx, facts, enc)
    facts = with_medication_reconciliation(ctx, facts, enc)
    facts = facts.join(
        ctx.bundle["patients"].select("patient_id", "death_date"), on="patient_id", how="left"
    )
    facts = with_claims(ctx, facts)
    facts = facts.with_columns(
        date=pl.col("discharge_date"),  # the period's start: `billing explain` matches on it
        reference_date=pl.coalesce("f2f_date", "discharge_date"),
        place_of_service=pl.coalesce(
            "f2f_place_of_service", pl.lit(rp.tcm.default_place_of_service)
        ),
        contact_met=(pl.col("contacts_completed") >= 1)
        | (pl.col("attempts_failed") >= rp.tcm.contact.min_failed_attempts),
        f2f_day=(pl.col("f2f_date") - pl.col("discharge_date")).dt.total_days(),
        died_in_period=pl.col("death_date").is_not_null()
        & (pl.col("death_date") <= pl.col("period_end")),
    )
    facts = with_icd10(ctx, facts)
    facts = pr.coverage_on(ctx, facts, "reference_date")
    facts = pr.with_payer_pays(ctx, facts, family_codes(ctx), "reference_date")
    return facts.with_columns(
        earlier_tcm=empty_list(), other_tcm_bps=empty_list(), own_tcm=pl.lit(False)
    )
