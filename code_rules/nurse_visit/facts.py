"""Nurse visit: the facts of each visit (the joins an auditor skips).

One row per ``nurse_visit`` encounter dated in the month (documented failed attempts
are not visits), billed under the encounter's billing practitioner, else its performer
when the performer may bill; with the latest professional service that makes the
patient established, the same day's E/Ms, drug administrations and nurse visits coded
elsewhere, the claims of the code that day, the coverage and whether the payer pays.
The criteria that read these columns are in ``rule.py``.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.parameters_typed import typed

KIND = "nurse_visit"
SCOPE_GROUP = "group"
EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


def _not_failed() -> pl.Expr:
    return pl.col("outcome").is_null() | (pl.col("outcome") != "attempt_failed")


def _billed_history(ctx: EvalContext) -> pl.DataFrame:
    """Claims history rows that count as billed, with the bundle practitioner of the NPI
    (``claim_practitioner_id``, null for another practice) and a ``claim:<code>@<date>`` id."""
    ignored = typed(ctx.params).common.ignored_claim_statuses
    npis = (
        nz.practitioners(ctx)
        .filter(pl.col("npi").is_not_null())
        .select(
            pl.col("npi").alias("billing_npi"),
            pl.col("practitioner_id").alias("claim_practitioner_id"),
        )
        .unique(subset=["billing_npi"], keep="first")
    )
    return (
        ctx.bundle["claims_history"]
        .filter(pl.col("status").is_null() | ~pl.col("status").is_in(ignored))
        .with_columns(pl.col("units").fill_null(1))
        .join(npis, on="billing_npi", how="left")
        .with_columns(
            claim_id=pl.concat_str(
                pl.lit("claim:"),
                pl.col("code"),
                pl.lit("@"),
                pl.col("date_of_service").cast(pl.String),
            )
        )
    )


def _visits(ctx: EvalContext) -> pl.DataFrame:
    """The month's nurse visits with performer, billing practitioner and place of service."""
    rp = typed(ctx.params)
    billers = rp.common.billing_credentials
    visits = ctx.bundle["encounters"].filter(
        (pl.col("kind") == KIND) & ctx.in_month("date") & _not_failed()
    )
    visits = nz.with_practitioner(ctx, visits, "performer_id", "performer").with_columns(
        billing_practitioner_id=pl.coalesce(
            "billing_practitioner_id",
            pl.when(pl.col("performer_credential").is_in(billers)).then(pl.col("performer_id")),
        ),
        place_of_service=pl.col("place_of_service").fill_null(
            rp.nurse_visit.default_place_of_service
        ),
    )
    visits = nz.with_practitioner(ctx, visits, "billing_practitioner_id", "bp").join(
        nz.practitioner_specialties(ctx).rename(
            {"practitioner_id": "billing_practitioner_id", "specialty": "bp_specialty"}
        ),
        on="billing_practitioner_id",
        how="left",
    )
    return visits.select(
        "encounter_id",
        "patient_id",
        "date",
        "performer_id",
        "performer_credential",
        "billing_practitioner_id",
        "bp_credential",
        "bp_npi",
        "bp_specialty",
        "place_of_service",
    )


def _prior_services(ctx: EvalContext) -> pl.DataFrame:
    """Professional services of the practice: (patient_id, practitioner_id, prior_date,
    source_id) from encounters of the prior kinds (performer and billing practitioner)
    and from claims history under an NPI of the bundle."""
    rp = typed(ctx.params)
    encounters = ctx.bundle["encounters"].filter(
        pl.col("kind").is_in(rp.nurse_visit.established.prior_kinds) & _not_failed()
    )
    by_encounter = [
        encounters.filter(pl.col(column).is_not_null()).select(
            "patient_id",
            pl.col(column).alias("practitioner_id"),
            pl.col("date").alias("prior_date"),
            pl.col("encounter_id").alias("source_id"),
            biller_id=pl.coalesce("billing_practitioner_id", "performer_id"),
        )
        for column in ("performer_id", "billing_practitioner_id")
    ]
    claims = (
        _billed_history(ctx)
        .filter(pl.col("claim_practitioner_id").is_not_null())
        .select(
            "patient_id",
            pl.col("claim_practitioner_id").alias("practitioner_id"),
            pl.col("date_of_service").alias("prior_date"),
            pl.col("claim_id").alias("source_id"),
            pl.col("claim_practitioner_id").alias("biller_id"),
        )
    )
    return pl.concat([*by_encounter, claims]).unique()


def _with_biller_specialty(ctx: EvalContext, events: pl.DataFrame) -> pl.DataFrame:
    """Adds ``biller_specialty``: the specialty of the event's ``biller_id``."""
    return events.join(
        nz.practitioner_specialties(ctx).rename(
            {"practitioner_id": "biller_id", "specialty": "biller_specialty"}
        ),
        on="biller_id",
        how="left",
    )


def _own_or_same_specialty(group: bool) -> pl.Expr:
    """An event counts for the visit: it involves the visit's billing practitioner or,
    for the group scope, its biller is of the billing practitioner's specialty (a blank
    specialty on either side counts as the same: Pub. 100-04 ch. 12 §30.6.5/§30.6.7)."""
    own = pl.col("practitioner_id") == pl.col("billing_practitioner_id")
    if not group:
        return own
    colleague = pl.col("biller_id").is_not_null()
    return own | (colleague & nz.same_specialty("bp_specialty", "biller_specialty"))


def _with_established(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """The latest professional service within the look-back before the visit date, by
    the billing practitioner or (group scope) the group's same specialty."""
    rp = typed(ctx.params)
    years = rp.nurse_visit.established.lookback_years
    group = rp.nurse_visit.established.scope == SCOPE_GROUP
    found = facts.select(
        "encounter_id", "patient_id", "date", "billing_practitioner_id", "bp_specialty"
    ).join(_with_biller_specialty(ctx, _prior_services(ctx)), on="patient_id", how="inner")
    found = found.filter(
        pr.active_on(
            "prior_date",
            pl.col("date").dt.offset_by(f"-{years}y"),
            "date",
            closed="left",
            open_end=False,
        )
        & _own_or_same_specialty(group)
    )
    latest = (
        found.sort("prior_date", "source_id")
        .group_by("encounter_id")
        .agg(
            established_by=pl.col("source_id").last(),
            established_date=pl.col("prior_date").last(),
        )
    )
    return facts.join(latest, on="encounter_id", how="left")


def _same_day(
    facts: pl.DataFrame, events: pl.DataFrame, name: str, keep: pl.Expr | None = None
) -> pl.DataFrame:
    """Adds list column `name`: ids of `events` (patient_id, date, practitioner_id,
    source_id, ...) on the visit's date, other than the visit itself; only those for
    which `keep` holds (over the event's and the visit's columns) when given."""
    matched = facts.select(
        "encounter_id", "patient_id", "date", "billing_practitioner_id", "bp_specialty"
    ).join(events, on=["patient_id", "date"], how="inner")
    matched = matched.filter(pl.col("source_id") != pl.col("encounter_id"))
    if keep is not None:
        matched = matched.filter(keep)
    ids = matched.group_by("encounter_id").agg(pl.col("source_id").unique().sort().alias(name))
    return facts.join(ids, on="encounter_id", how="left").with_columns(
        pl.col(name).fill_null(EMPTY_IDS)
    )


def _coded_encounters(
    ctx: EvalContext, codes: list[str], skip_nurse_visits: bool = False
) -> pl.DataFrame:
    """Encounters whose cpt lists one of `codes`: one row per practitioner involved
    (without nurse visits when `skip_nurse_visits`: those are ranked among themselves)."""
    coded = ctx.bundle["encounters"].filter(
        _not_failed() & pl.col("cpt").list.eval(pl.element().is_in(codes)).list.any()
    )
    if skip_nurse_visits:
        coded = coded.filter(pl.col("kind") != KIND)
    return pl.concat(
        [
            coded.filter(pl.col(column).is_not_null()).select(
                "patient_id",
                "date",
                pl.col(column).alias("practitioner_id"),
                pl.col("encounter_id").alias("source_id"),
                biller_id=pl.coalesce("billing_practitioner_id", "performer_id"),
            )
            for column in ("performer_id", "billing_practitioner_id")
        ]
    ).unique()


def _coded_claims(ctx: EvalContext, codes: list[str], bundle_only: bool) -> pl.DataFrame:
    claims = _billed_history(ctx).filter(pl.col("code").is_in(codes))
    if bundle_only:
        claims = claims.filter(pl.col("claim_practitioner_id").is_not_null())
    return claims.select(
        "patient_id",
        pl.col("date_of_service").alias("date"),
        pl.col("claim_practitioner_id").alias("practitioner_id"),
        pl.col("claim_id").alias("source_id"),
        pl.col("claim_practitioner_id").alias("biller_id"),
    )


def _same_day_em(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``same_day_em_ids``: the higher E/Ms the same day (E11-2) by the visit's billing
    practitioner (performed or billed by, or a claim under that NPI) and, with the
    ``group`` scope, by any practitioner of the bundle of the billing practitioner's
    specialty (the E/M's biller: its billing practitioner, else its performer)."""
    rp = typed(ctx.params)
    codes = rp.nurse_visit.same_day_em.codes
    em = pl.concat([_coded_encounters(ctx, codes), _coded_claims(ctx, codes, True)])
    group = rp.nurse_visit.same_day_em.scope == SCOPE_GROUP
    return _same_day(
        facts, _with_biller_specialty(ctx, em), "same_day_em_ids", _own_or_same_specialty(group)
    )


def _with_same_day_services(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    rp = typed(ctx.params)
    facts = _same_day_em(ctx, facts)
    drug_codes = rp.nurse_visit.drug_administration.codes
    drugs = pl.concat([_coded_encounters(ctx, drug_codes), _coded_claims(ctx, drug_codes, False)])
    own_cpt = (
        ctx.bundle["encounters"]
        .filter(pl.col("cpt").list.eval(pl.element().is_in(drug_codes)).list.any())
        .select("encounter_id", own_drug=pl.lit(True))
    )
    facts = _same_day(facts, drugs, "drug_administration_ids")
    return (
        facts.join(own_cpt, on="encounter_id", how="left")
        .with_columns(
            drug_administration_ids=pl.when(pl.col("own_drug").fill_null(False))
            .then(pl.concat_list(pl.col("encounter_id"), pl.col("drug_administration_ids")))
            .otherwise(pl.col("drug_administration_ids"))
        )
        .drop("own_drug")
    )


def _with_claims_of_code(ctx: EvalContext, facts: pl.DataFrame, code: str) -> pl.DataFrame:
    """Units of `code` already in claims history for the patient on the visit date."""
    claims = _billed_history(ctx).filter(pl.col("code") == code)
    same_day = (
        facts.select("encounter_id", "patient_id", "date")
        .join(
            claims.select(
                "patient_id", pl.col("date_of_service").alias("date"), "units", "billing_npi"
            ),
            on=["patient_id", "date"],
            how="inner",
        )
        .group_by("encounter_id")
        .agg(
            same_day_claim_units=pl.col("units").sum().cast(pl.Int64),
            same_day_claim_npis=pl.col("billing_npi").unique().sort(),
        )
    )
    return facts.join(same_day, on="encounter_id", how="left").with_columns(
        pl.col("same_day_claim_units").fill_null(0),
        pl.col("same_day_claim_npis").fill_null(EMPTY_IDS),
    )


def _with_diagnoses(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """Up to four conditions active on the visit date (earliest onset first, then code)."""
    return facts.with_columns(icd10=nz.conditions_on_date(ctx, facts, "date"))


def visit_facts(ctx: EvalContext) -> pl.DataFrame:
    rp = typed(ctx.params)
    code = rp.nurse_visit.code
    facts = _visits(ctx)
    facts = _with_established(ctx, facts)
    facts = _with_same_day_services(ctx, facts)
    facts = _with_claims_of_code(ctx, facts, code)
    facts = _same_day(facts, _coded_encounters(ctx, [code], True), "same_day_coded_ids")
    facts = _with_diagnoses(ctx, facts)
    facts = pr.coverage_on(ctx, facts, "date")
    return pr.with_payer_pays(ctx, facts, [code], "date")
