"""The patient's side: practitioners, consents, conditions and care plans."""

from __future__ import annotations

import polars as pl

from billing_engine.engine.context import EvalContext
from billing_engine.intervals import active_on, overlaps


def normalized_icd10(expr: pl.Expr) -> pl.Expr:
    """ICD-10-CM without the dot, upper case (E11.9 -> E119)."""
    return expr.str.replace_all(".", "", literal=True).str.to_uppercase().str.strip_chars()


def practitioners(ctx: EvalContext) -> pl.DataFrame:
    return ctx.bundle["practitioners"].select("practitioner_id", "npi", "credential")


def with_practitioner(
    ctx: EvalContext, frame: pl.DataFrame, id_column: str, prefix: str
) -> pl.DataFrame:
    """Join the practitioner named in `id_column`: adds `<prefix>_credential` and `<prefix>_npi`."""
    return frame.join(
        practitioners(ctx).select(
            pl.col("practitioner_id").alias(id_column),
            pl.col("credential").alias(f"{prefix}_credential"),
            pl.col("npi").alias(f"{prefix}_npi"),
        ),
        on=id_column,
        how="left",
    )


def valid_consents(ctx: EvalContext, program: str) -> pl.DataFrame:
    """Consents for `program` obtained by the month's end and not revoked before it.

    A revocation ends the consent at the end of the revocation's calendar month
    (CCM-C1), so a consent revoked in the evaluated month still covers it.
    """
    return ctx.bundle["consents"].filter(
        (pl.col("program") == program)
        & overlaps(pl.lit(ctx.start), pl.lit(ctx.end), "obtained_date", "revoked_date")
    )


def consent_practitioners(ctx: EvalContext) -> pl.DataFrame:
    """The billing practitioner named by each patient's latest consent per program."""
    return (
        ctx.bundle["consents"]
        .filter(
            pl.col("billing_practitioner_id").is_not_null() & (pl.col("obtained_date") <= ctx.end)
        )
        .sort("obtained_date")
        .group_by("patient_id", "program")
        .agg(consent_practitioner_id=pl.col("billing_practitioner_id").last())
    )


def consent_facts(ctx: EvalContext, candidates: pl.DataFrame, program: str) -> pl.DataFrame:
    """Per candidate (patient_id, billing_practitioner_id): the consent that applies.

    A consent applies to a billing practitioner when it names that practitioner or
    names none. Adds ``consent_id``, ``consent_date`` (earliest applicable valid
    consent) and ``consent_status``: ``valid``, ``revoked`` (only consents revoked
    before the month) or ``missing``.
    """
    keys = ["patient_id", "billing_practitioner_id"]
    consents = ctx.bundle["consents"].filter(pl.col("program") == program)
    pairs = (
        candidates.select(keys)
        .unique()
        .join(
            consents.select(
                "patient_id",
                pl.col("billing_practitioner_id").alias("named_practitioner_id"),
                "consent_id",
                "obtained_date",
                "revoked_date",
            ),
            on="patient_id",
            how="inner",
        )
        .filter(
            pl.col("named_practitioner_id").is_null()
            | (pl.col("named_practitioner_id") == pl.col("billing_practitioner_id"))
        )
    )
    is_valid = overlaps(pl.lit(ctx.start), pl.lit(ctx.end), "obtained_date", "revoked_date")
    revoked_before = pl.col("revoked_date").is_not_null() & (pl.col("revoked_date") < ctx.start)
    summary = (
        pairs.with_columns(valid=is_valid, revoked=revoked_before)
        .sort("obtained_date")
        .group_by(keys)
        .agg(
            consent_id=pl.col("consent_id").filter(pl.col("valid")).first(),
            consent_date=pl.col("obtained_date").filter(pl.col("valid")).first(),
            any_revoked=pl.col("revoked").any(),
        )
    )
    return (
        candidates.join(summary, on=keys, how="left", nulls_equal=True)
        .with_columns(
            consent_status=pl.when(pl.col("consent_date").is_not_null())
            .then(pl.lit("valid"))
            .when(pl.col("any_revoked").fill_null(False))
            .then(pl.lit("revoked"))
            .otherwise(pl.lit("missing"))
        )
        .drop("any_revoked")
    )


def chronic_conditions(ctx: EvalContext, value_set: pl.DataFrame) -> pl.DataFrame:
    """Per patient: distinct chronic ICD-10-CM categories active in the month.

    A condition counts when active in the month (onset on or before its end, resolved
    on or after its start) and chronic: its ``chronic`` column, else membership of the
    value set. Categories are the first three characters (interchange semantics 12).
    ``chronic_icd10`` lists one code per category for claims, in an order that does not
    depend on the source's row order (a bundle file and the store agree): earliest
    onset first (no onset = longest standing), then by code.
    """
    return ctx.memo.frame("chronic", lambda: _chronic_conditions(ctx, value_set))


def _chronic_conditions(ctx: EvalContext, value_set: pl.DataFrame) -> pl.DataFrame:
    members = value_set.select(pl.col("icd10").alias("code"), pl.lit(True).alias("in_value_set"))
    result = (
        ctx.bundle["conditions"]
        .filter(
            overlaps(
                pl.lit(ctx.start), pl.lit(ctx.end), "onset_date", "resolved_date", open_start=True
            )
        )
        .with_columns(code=normalized_icd10(pl.col("icd10")))
        .join(members, on="code", how="left")
        .filter(pl.coalesce("chronic", "in_value_set", pl.lit(False)))
        .with_columns(category=pl.col("code").str.slice(0, 3))
        .sort("patient_id", "onset_date", "code", nulls_last=False)
        .unique(subset=["patient_id", "category"], keep="first", maintain_order=True)
        .group_by("patient_id", maintain_order=True)
        .agg(
            n_chronic=pl.len().cast(pl.Int64),
            chronic_icd10=pl.col("icd10"),
        )
    )
    return result


MAX_CLAIM_DIAGNOSES = 4  # ICD-10-CM codes a claim line carries (interchange claim_lines)


def conditions_on_date(
    ctx: EvalContext,
    frame: pl.DataFrame,
    date_column: str,
    prefixes: list[str] | None = None,
    limit: int = MAX_CLAIM_DIAGNOSES,
) -> pl.Series:
    """Per row of `frame`: the patient's conditions active on the row's date, as a list.

    Active = onset blank or on/before the date, and resolved blank or on/after it. Only
    codes starting with one of `prefixes` (ICD-10-CM without the dot) when given. One
    entry per code, earliest onset first (blank onset = longest standing), then by code,
    at most `limit`. Aligned with `frame`; rows without any give an empty list.
    """
    code = normalized_icd10(pl.col("icd10"))
    conditions = ctx.bundle["conditions"].with_columns(code=code)
    if prefixes is not None:
        conditions = conditions.filter(
            pl.any_horizontal([pl.col("code").str.starts_with(x) for x in prefixes])
            if prefixes
            else pl.lit(False)
        )
    indexed = frame.select("patient_id", date_column).with_row_index("_dx_row")
    found = (
        indexed.join(conditions, on="patient_id", how="inner")
        .filter(active_on(date_column, "onset_date", "resolved_date", open_start=True))
        .sort("_dx_row", "onset_date", "code", nulls_last=False)
        .unique(subset=["_dx_row", "code"], keep="first", maintain_order=True)
        .group_by("_dx_row", maintain_order=True)
        .agg(found=pl.col("icd10").head(limit))
    )
    return (
        indexed.join(found, on="_dx_row", how="left")
        .sort("_dx_row")
        .select(pl.col("found").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .get_column("found")
    )


def care_plan_facts(ctx: EvalContext, program: str, revision_actions: list[str]) -> pl.DataFrame:
    """Per patient: the latest established plan by the month's end, and any plan
    established or substantially revised inside the month."""
    plans = ctx.bundle["care_plans"].filter(pl.col("program") == program)
    established = (
        plans.filter((pl.col("action") == "established") & (pl.col("date") <= ctx.end))
        .sort("date")
        .group_by("patient_id")
        .agg(care_plan_id=pl.col("care_plan_id").last(), care_plan_date=pl.col("date").last())
    )
    revised = (
        plans.filter(pl.col("action").is_in(revision_actions) & ctx.in_month("date"))
        .sort("date")
        .group_by("patient_id")
        .agg(revised_plan_id=pl.col("care_plan_id").last(), revised_plan_date=pl.col("date").last())
    )
    return established.join(revised, on="patient_id", how="full", coalesce=True)
