"""Output tables of ``billing evaluate`` (docs/interchange.md, "Outputs"), and writers.

Columns are the contract's, in its order; columns this project adds come after them:
claim lines add ``parameters`` (the parameter values the line used); gaps add
``billing_practitioner_id``, ``payer_id`` and ``rule``. Amount columns stay empty
until pricing is implemented (never zero).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from billing_engine.bundle import Bundle
from billing_engine.errors import ConfigError

if TYPE_CHECKING:
    from billing_engine.evaluate import EvaluationResult

CLAIM_LINE_COLUMNS = (
    "patient_id", "payer_id", "billing_practitioner_id", "billing_npi", "code", "modifiers",
    "units", "date_of_service", "place_of_service", "icd10_codes", "period_start",
    "period_end", "allowed_amount", "payer_amount", "patient_amount", "evidence", "rule",
    "parameters",
)  # fmt: skip
GAP_COLUMNS = (
    "patient_id", "code", "period_start", "period_end", "status", "reason", "detail",
    "minutes_logged", "minutes_needed", "deadline", "evidence",
    "billing_practitioner_id", "payer_id", "rule",
)  # fmt: skip
REVENUE_COLUMNS = (
    "payer_id", "payer_name", "code", "lines", "units", "allowed_amount", "payer_amount",
    "patient_amount",
)  # fmt: skip
AMOUNT_COLUMNS = ("allowed_amount", "payer_amount", "patient_amount")
FORMATS = ("csv", "json")


def claim_lines_frame(outcomes: pl.DataFrame, bundle: Bundle) -> pl.DataFrame:
    npis = bundle["practitioners"].select(
        pl.col("practitioner_id").alias("billing_practitioner_id"),
        pl.col("npi").alias("billing_npi"),
    )
    return (
        outcomes.filter(pl.col("is_line"))
        .join(npis, on="billing_practitioner_id", how="left")
        .with_columns(
            modifiers=pl.lit(None, dtype=pl.String),
            icd10_codes=pl.col("icd10_codes").list.join(";"),
            evidence=pl.col("evidence").list.join(";"),
            **{c: pl.lit(None, dtype=pl.String) for c in AMOUNT_COLUMNS},
        )
        .select(CLAIM_LINE_COLUMNS)
        .sort("patient_id", "date_of_service", "code")
    )


def gaps_frame(outcomes: pl.DataFrame) -> pl.DataFrame:
    return (
        outcomes.filter(~pl.col("is_line"))
        .with_columns(evidence=pl.col("evidence").list.join(";"))
        .select(GAP_COLUMNS)
        .sort("patient_id", "period_start", "code", "billing_practitioner_id")
    )


def revenue_frame(lines: pl.DataFrame, bundle: Bundle) -> pl.DataFrame:
    """Lines, units and amounts by payer and code, plus one TOTAL row per payer."""
    names = bundle["payers"].select("payer_id", pl.col("name").alias("payer_name"))
    amounts = [pl.col(c).cast(pl.Decimal(18, 2)).sum().alias(c) for c in AMOUNT_COLUMNS]
    per_code = lines.group_by("payer_id", "code").agg(
        pl.len().cast(pl.Int64).alias("lines"), pl.col("units").sum().cast(pl.Int64), *amounts
    )
    totals = per_code.group_by("payer_id").agg(
        pl.lit("TOTAL").alias("code"),
        pl.col("lines").sum(),
        pl.col("units").sum(),
        *[pl.col(c).sum() for c in AMOUNT_COLUMNS],
    )
    priced = lines.filter(pl.col("allowed_amount").is_not_null()).height > 0
    frame = (
        pl.concat([per_code, totals.select(per_code.columns)])
        .join(names, on="payer_id", how="left")
        .with_columns(_total=pl.col("code") == "TOTAL")
        .sort("payer_id", "_total", "code", nulls_last=True)
    )
    if not priced:
        frame = frame.with_columns(
            *[pl.lit(None, dtype=pl.String).alias(c) for c in AMOUNT_COLUMNS]
        )
    return frame.select(REVENUE_COLUMNS)


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates ISO, decimals with 2 places, everything else as is."""
    return frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Date()]
    )


def write_outputs(result: EvaluationResult, out_dir: Path, fmt: str = "csv") -> list[Path]:
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "claim_lines": _text(result.claim_lines),
        "gaps": _text(result.gaps),
        "revenue_by_payer": _text(result.revenue_by_payer),
    }
    if fmt == "csv":
        paths = []
        for name, frame in tables.items():
            path = out_dir / f"{name}.csv"
            frame.write_csv(path)
            paths.append(path)
        return paths
    document = {
        "month": str(result.month),
        "as_of": result.as_of.isoformat(),
        "rule_set_version": result.rule_set_version,
        "source": result.source,
        **{name: frame.to_dicts() for name, frame in tables.items()},
    }
    path = out_dir / "evaluation.json"
    path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    return [path]
