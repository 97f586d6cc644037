"""Joins every Medicaid rule set shares: the T-code payer, payer pays, diagnoses, claims.

The payer of a T-code is the patient's active Medicaid coverage of any rank (a dual
eligible's Medicaid behind Medicare), else the primary coverage, which then does not
pay (TCODE-1): ``pr.coverage_on`` preferring ``medicaid.paying_payer_kinds``.
"""

from __future__ import annotations

import polars as pl

from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from code_rules.medicaid.state_table import case_codes, case_programs
from code_rules.parameters_typed import typed

EMPTY_IDS = pl.lit([], dtype=pl.List(pl.String))


def with_t_code_payer(ctx: EvalContext, frame: pl.DataFrame, date: str) -> pl.DataFrame:
    """``payer_id``, ``payer_kind``, ``payer_state``: the active coverage on `date` whose
    payer kind pays T-codes (any rank, lowest rank first), else the primary coverage."""
    kinds = typed(ctx.params).medicaid.paying_payer_kinds
    return pr.coverage_on(ctx, frame, date, prefer_kinds=kinds, with_state=True)


def with_t_code_pays(
    ctx: EvalContext, facts: pl.DataFrame, codes: list[str], date: str
) -> pl.DataFrame:
    """``pays:<code>`` for each code: a payer_codes row in effect, else the payer kind is
    one of ``medicaid.paying_payer_kinds``."""
    kinds = typed(ctx.params).medicaid.paying_payer_kinds
    return pr.with_payer_pays(ctx, facts, codes, date, kinds)


def with_diagnoses(ctx: EvalContext, facts: pl.DataFrame) -> pl.DataFrame:
    """``icd10_codes``: up to nz.MAX_CLAIM_DIAGNOSES of the patient's conditions active in
    the month."""
    conditions = (
        ctx.bundle["conditions"]
        .lazy()
        .join(facts.lazy().select("patient_id").unique(), on="patient_id", how="semi")
        .filter(
            pr.overlaps(
                pl.lit(ctx.start), pl.lit(ctx.end), "onset_date", "resolved_date", open_start=True
            )
        )
        .sort("patient_id", "onset_date", "icd10", nulls_last=False)
        .unique(subset=["patient_id", "icd10"], keep="first", maintain_order=True)
        .group_by("patient_id", maintain_order=True)
        .agg(icd10_codes=pl.col("icd10").head(nz.MAX_CLAIM_DIAGNOSES))
        .collect()
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
