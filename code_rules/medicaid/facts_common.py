"""Joins every Medicaid rule set shares: the T-code payer, payer pays, diagnoses, claims.

The payer of a T-code is the patient's active Medicaid coverage of any rank (a dual
eligible's Medicaid behind Medicare), else the primary coverage, which then does not
pay (TCODE-1).
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine.context import EvalContext
from code_rules.medicaid.state_table import case_codes, case_programs
from code_rules.parameters_typed import typed

EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


def with_medicaid_payer(ctx: EvalContext, frame: pl.DataFrame, date_column: str) -> pl.DataFrame:
    """Adds ``payer_id``, ``payer_kind`` and ``payer_state``: the active coverage on the date
    whose payer kind pays T-codes (any rank, lowest rank first), else the primary coverage.

    A proposed shared helper: ``nz.primary_coverage`` with a preferred list of payer kinds.
    """
    kinds = typed(ctx.params).medicaid.paying_payer_kinds
    cov = ctx.bundle["coverages"].select(
        "patient_id", "payer_id", "start_date", "end_date", pl.col("rank").fill_null(1)
    )
    payers = ctx.bundle["payers"].select(
        "payer_id", pl.col("kind").alias("payer_kind"), pl.col("state").alias("payer_state")
    )
    indexed = frame.with_row_index("_cov_row")
    matched = (
        indexed.select("_cov_row", "patient_id", date_column)
        .join(cov, on="patient_id", how="inner")
        .filter(
            (pl.col("start_date") <= pl.col(date_column))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col(date_column)))
        )
        .join(payers, on="payer_id", how="left")
        .with_columns(_not_paying=~pl.col("payer_kind").is_in(kinds).fill_null(False))
        .sort(
            "_cov_row", "_not_paying", "rank", "start_date", descending=[False, False, False, True]
        )
        .unique(subset=["_cov_row"], keep="first")
        .select("_cov_row", "payer_id", "payer_kind", "payer_state")
    )
    return indexed.join(matched, on="_cov_row", how="left").sort("_cov_row").drop("_cov_row")


def with_pays(ctx: EvalContext, facts: pl.DataFrame, codes: list[str], date: str) -> pl.DataFrame:
    """``pays:<code>`` for each code (payer_codes rows, else the T-code payer kinds)."""
    kinds = typed(ctx.params).medicaid.paying_payer_kinds
    for code in codes:
        frame = facts.with_columns(_code=pl.lit(code))
        facts = facts.with_columns(
            nz.payer_pays(ctx, frame, "_code", date, kinds).alias(f"pays:{code}")
        )
    return facts


def with_diagnoses(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``icd10_codes``: up to nz.MAX_CLAIM_DIAGNOSES of the patient's conditions active in
    the month."""
    conditions = (
        ctx.bundle["conditions"]
        .filter(
            (pl.col("onset_date").is_null() | (pl.col("onset_date") <= ctx.end))
            & (pl.col("resolved_date").is_null() | (pl.col("resolved_date") >= ctx.start))
        )
        .sort("patient_id", "onset_date", "icd10", nulls_last=False)
        .unique(subset=["patient_id", "icd10"], keep="first", maintain_order=True)
        .group_by("patient_id", maintain_order=True)
        .agg(icd10_codes=pl.col("icd10").head(nz.MAX_CLAIM_DIAGNOSES))
    )
    return facts.join(conditions, on="patient_id", how="left")


def case_claims(ctx: EvalContext) -> pl.DataFrame:
    """Claims history of the month for the case-management codes (blank units = 1)."""
    return (
        nz.claims_in_month(ctx, case_codes(ctx))
        .with_columns(pl.col("units").fill_null(1))
        .select("patient_id", "code", "units", "date_of_service", "billing_npi")
    )


def with_unit_code(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``code``: the program's 15-minute code."""
    both = case_programs(ctx)
    return facts.with_columns(
        code=pl.col("program").replace_strict(
            [x.params.program for x in both],
            [x.params.unit_code for x in both],
            return_dtype=pl.String,
        )
    )


def with_monthly_code(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``code``: the program's monthly code."""
    both = case_programs(ctx)
    return facts.with_columns(
        code=pl.col("program").replace_strict(
            [x.params.program for x in both],
            [x.params.monthly_code for x in both],
            return_dtype=pl.String,
        )
    )


def with_billing_practitioner(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``bp_credential``, ``bp_npi``, ...: the billing practitioner's record."""
    return nz.with_practitioner(ctx, facts, "billing_practitioner_id", "bp")
