"""Finance's view of a range of months, as frames: what ``billing report excel`` shows.

Each month is evaluated as ``billing evaluate`` evaluates it (same fees, settings and
as-of rule; from the store, the exported claims of the OTHER months are claims history,
``services.close.evaluation``), and only what the tables need is kept of it, so a year
of a large practice is never held as twelve whole evaluations. The totals are those of
``services.revenue`` (the same line sums as ``revenue_by_payer.csv``):

* ``summary``: month x payer — lines, units, allowed, payer and patient shares, the
  payer's PMPM capitation (beside fee-for-service, never added in) and the money left
  on the table (``potential_amount`` of the short gaps within reach).
* ``by_code``: code over the range.
* ``by_care_manager``: month x care manager — patients, minutes logged, minutes that
  counted (time entries with no exclusion), lines and allowed. A patient's care manager
  is ``patients.care_manager_id``, else the performer who logged the most
  care-management minutes for the patient over the range (ties: the lower id).
* ``claim_lines`` and ``gaps``: every month's, with a leading ``month``.
* ``parameters``: each parameter value used, with its sources and the months it was used.

The file format is the writer's (``reports.workbook``); nothing here knows of it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from billing_engine.calendar import Month
from billing_engine.engine.frames import claim_lines_frame, line_totals
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.fees import FeeLibrary
from billing_engine.pricing.money import MONEY
from billing_engine.services.care_owners import care_owners as shared_owners
from billing_engine.services.close.claimed import as_claims_history, carried_lines
from billing_engine.services.close.evaluation import with_claimed_history
from billing_engine.services.evaluation import evaluate
from billing_engine.services.revenue import (
    MonthRevenue,
    RevenueReport,
    assemble_revenue,
    month_revenue,
)
from billing_engine.store import Store
from billing_engine.store.close import month_claims

UNASSIGNED = "unassigned"  # the care manager of a patient nobody logged minutes for
SHARES = ("allowed_amount", "payer_amount", "patient_amount")
FREQUENCY_KINDS = {"1": "original", "7": "replacement", "8": "void"}  # CLM05-3
SUMMARY_COLUMNS = (
    "month", "payer_id", "payer_name", "lines", "units", *SHARES, "pmpm", "left_on_table",
)  # fmt: skip
CARE_MANAGER_COLUMNS = (
    "month", "care_manager_id", "care_manager_name", "credential", "patients",
    "minutes_logged", "minutes_counted", "lines", "allowed_amount",
)  # fmt: skip
CLAIMS_SHEET_COLUMNS = (
    "month", "cycle", "claim_id", "line_number", "frequency", "kind", "original_claim_id",
    "status", "patient_id", "payer_id", "code", "modifiers", "units", "date_of_service",
    "charge", *SHARES, "created_at",
)  # fmt: skip
CLAIM_COLUMNS = (
    "month", "cycle", "claim_id", "frequency", "original_claim_id", "status", "patient_id",
    "payer_id", "billing_npi", "created_at",
)  # fmt: skip
CLAIM_LINE_COLUMNS = (
    "claim_id", "line_number", "code", "modifiers", "units", "date_of_service", "charge",
    "allowed_amount", "payer_amount", "patient_amount",
)  # fmt: skip


@dataclass(frozen=True)
class FinanceBook:
    """The frames of finance's workbook over `months` (see the module docstring)."""

    months: tuple[Month, ...]
    summary: pl.DataFrame
    by_code: pl.DataFrame
    by_care_manager: pl.DataFrame
    claim_lines: pl.DataFrame
    gaps: pl.DataFrame
    parameters: pl.DataFrame
    revenue: RevenueReport


@dataclass(frozen=True)
class _MonthPart:
    revenue: MonthRevenue
    gaps: pl.DataFrame
    minutes: pl.DataFrame  # month, patient_id, performer_id, minutes, counted
    parameters: pl.DataFrame  # month, name, value, sources


def finance_book(
    bundle: Bundle,
    months: Sequence[Month],
    *,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    fees: FeeLibrary | None = None,
    apply_deductible: bool = False,
    claimed: pl.DataFrame | None = None,
) -> FinanceBook:
    """Evaluate each of `months` and build finance's tables.

    `claimed` is the close's exported claim lines of every month (``claimed_lines``):
    each month then sees the other months' as claims history, as ``billing evaluate
    --db`` does. Without it the bundle is evaluated as it is.
    """
    parts: list[_MonthPart] = []
    for month in months:
        data = bundle
        if claimed is not None and claimed.height:
            others = claimed.filter(pl.col("month") != str(month))
            data = with_claimed_history(bundle, as_claims_history(others))
        parts.append(_month_part(evaluate(data, month, as_of, settings=settings, fees=fees)))
    report = assemble_revenue(
        bundle, [p.revenue for p in parts], settings=settings, apply_deductible=apply_deductible
    )
    gaps = pl.concat([p.gaps for p in parts], how="vertical")
    minutes = pl.concat([p.minutes for p in parts], how="vertical")
    names = bundle["payers"].select("payer_id", pl.col("name").alias("payer_name"))
    return FinanceBook(
        months=tuple(months),
        summary=summary_frame(report, gaps, names),
        by_code=report.by_code.select("code", "lines", "units", *SHARES, "unpriced_lines"),
        by_care_manager=care_manager_frame(bundle, report.lines, minutes),
        claim_lines=claim_lines_frame(report.lines, bundle, ("month",)),
        gaps=gaps,
        parameters=_parameters_frame(pl.concat([p.parameters for p in parts], how="vertical")),
        revenue=report,
    )


def _month_part(result: EvaluationResult) -> _MonthPart:
    """What the tables keep of one month's evaluation."""
    month = pl.lit(str(result.month))
    entries = result.time_entries
    minutes = entries.select(
        month.alias("month"),
        "patient_id",
        "performer_id",
        pl.col("minutes").fill_null(0).cast(pl.Int64),
        pl.col("excluded").is_null().alias("counted"),
    )
    used = [
        {"name": u.name, "value": _shown(u.value), "sources": "; ".join(u.sources)}
        for u in result.parameters_used.values()
    ]
    parameters = pl.DataFrame(
        used, schema={"name": pl.String, "value": pl.String, "sources": pl.String}
    ).with_columns(month=month)
    return _MonthPart(
        revenue=month_revenue(result),
        gaps=result.gaps.select(month.alias("month"), pl.all()),
        minutes=minutes,
        parameters=parameters,
    )


def _shown(value: object) -> str:
    """A parameter value as one line of text (lists and mappings as JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def summary_frame(report: RevenueReport, gaps: pl.DataFrame, names: pl.DataFrame) -> pl.DataFrame:
    """month x payer: lines, units, the shares, PMPM capitation and money left on the table.

    A payer with capitation or money left on the table but no line in a month has a row
    with 0 lines and empty amounts.
    """
    keys = ["month", "payer_id"]
    lines = line_totals(report.lines, keys).select(*keys, "lines", "units", *SHARES)
    capitation = report.capitation.group_by(keys).agg(
        pl.col("amount").sum().cast(MONEY).alias("pmpm")
    )
    left = (
        gaps.filter(pl.col("status") == "short")
        .group_by(keys)
        .agg(pl.col("potential_amount").sum().cast(MONEY).alias("left_on_table"))
    )
    return (
        lines.join(capitation, on=keys, how="full", coalesce=True)
        .join(left, on=keys, how="full", coalesce=True)
        .join(names, on="payer_id", how="left")
        .with_columns(pl.col("lines", "units").fill_null(0))
        .select(SUMMARY_COLUMNS)
        .sort(keys)
    )


def care_owners(bundle: Bundle, minutes: pl.DataFrame) -> pl.DataFrame:
    """patient_id -> owner: ``services.care_owners`` over the range's minutes."""
    return shared_owners(bundle["patients"], minutes).rename({"care_manager_id": "owner"})


def care_manager_frame(bundle: Bundle, lines: pl.DataFrame, minutes: pl.DataFrame) -> pl.DataFrame:
    """month x care manager: patients with minutes or lines, minutes logged and counted,
    lines and allowed amount of the care manager's patients."""
    owners = care_owners(bundle, minutes)
    keys = ["month", "care_manager_id"]

    def owned(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(owners, on="patient_id", how="left").with_columns(
            care_manager_id=pl.col("owner").fill_null(UNASSIGNED)
        )

    logged = (
        owned(minutes)
        .group_by(keys)
        .agg(
            pl.col("minutes").sum().alias("minutes_logged"),
            pl.col("minutes").filter(pl.col("counted")).sum().alias("minutes_counted"),
        )
    )
    billed = (
        owned(lines)
        .group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("lines"),
            pl.col("allowed_amount").cast(MONEY).sum().alias("allowed_amount"),
        )
    )
    patients = (
        pl.concat([owned(minutes).select(*keys, "patient_id"),
                   owned(lines).select(*keys, "patient_id")])
        .group_by(keys)
        .agg(pl.col("patient_id").n_unique().cast(pl.Int64).alias("patients"))
    )  # fmt: skip
    staff = bundle["practitioners"].select(
        pl.col("practitioner_id").alias("care_manager_id"),
        pl.col("name").alias("care_manager_name"),
        "credential",
    )
    return (
        patients.join(logged, on=keys, how="left")
        .join(billed, on=keys, how="left")
        .join(staff, on="care_manager_id", how="left")
        .with_columns(pl.col("minutes_logged", "minutes_counted", "lines").fill_null(0))
        .select(CARE_MANAGER_COLUMNS)
        .sort(keys)
    )


def _parameters_frame(used: pl.DataFrame) -> pl.DataFrame:
    """Each (parameter, value) used: its sources, first and last month."""
    return (
        used.group_by("name", "value", "sources")
        .agg(pl.col("month").min().alias("first_month"), pl.col("month").max().alias("last_month"))
        .sort("name", "first_month")
    )


def claimed_lines(store: Store) -> pl.DataFrame:
    """Every exported claim line of the store's close (``month`` and claims history)."""
    with store.engine.connect() as connection:
        return carried_lines(connection)


def claims_and_adjustments(store: Store, months: Sequence[Month]) -> pl.DataFrame:
    """The close's claim lines of `months`, each with its claim's cycle, frequency (and
    kind: original, replacement, void), original claim id and status; empty without a
    close."""
    wanted = [str(m) for m in months]
    with store.engine.connect() as connection:
        claims, lines = month_claims(connection, wanted, CLAIM_COLUMNS, CLAIM_LINE_COLUMNS)
    kinds = pl.col("frequency").replace_strict(FREQUENCY_KINDS, default=None)
    return (
        claims.with_columns(kind=kinds)
        .join(lines, on="claim_id", how="inner")
        .select(CLAIMS_SHEET_COLUMNS)
        .sort("month", "cycle", "claim_id", "line_number")
    )
