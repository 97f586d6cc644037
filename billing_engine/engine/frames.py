"""Output tables of ``billing evaluate`` (docs/interchange.md, "Outputs"), as frames.

``reports.outputs`` writes them.

Columns are the contract's, in its order; columns this project adds come after them:
claim lines add ``parameters`` (the parameter values the line used),
``secondary_payer_id``, ``secondary_amount`` (the patient's share a secondary coverage
picks up), ``sequestration_amount`` and ``fee_source`` (how the allowed amount was
found; ``secondary_*`` empty without secondary coverage); gaps add
``billing_practitioner_id``, ``payer_id``, ``rule`` and ``potential_amount`` (a short
gap's allowed amount if it were closed, only when it is within reach:
``pricing.potential.potential_amounts``);
revenue adds ``secondary_amount``, ``sequestration_amount`` and ``unpriced_lines``, a
``TOTAL`` row per payer and a last ``GRAND TOTAL`` row. A line without a fee keeps
empty amount columns (never zero) and has a ``fee_not_found`` gap.
``capitation`` lists PMPM contracts beside fee-for-service.
"""

from __future__ import annotations

import polars as pl

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.pricing.money import CALC, MONEY, exact, round_cents

CLAIM_LINE_COLUMNS = (
    "patient_id", "payer_id", "billing_practitioner_id", "billing_npi", "code", "modifiers",
    "units", "date_of_service", "place_of_service", "icd10_codes", "period_start",
    "period_end", "allowed_amount", "payer_amount", "patient_amount", "evidence", "rule",
    "parameters", "secondary_payer_id", "secondary_amount", "sequestration_amount",
    "fee_source",
)  # fmt: skip
GAP_COLUMNS = (
    "patient_id", "code", "period_start", "period_end", "status", "reason", "detail",
    "minutes_logged", "minutes_needed", "deadline", "evidence",
    "billing_practitioner_id", "payer_id", "rule", "potential_amount",
)  # fmt: skip
REVENUE_COLUMNS = (
    "payer_id", "payer_name", "code", "lines", "units", "allowed_amount", "payer_amount",
    "patient_amount", "secondary_amount", "sequestration_amount", "unpriced_lines",
)  # fmt: skip
CAPITATION_COLUMNS = (
    "payer_id", "payer_name", "name", "month", "members", "pmpm", "amount",
)  # fmt: skip
AMOUNT_COLUMNS = (
    "allowed_amount", "payer_amount", "patient_amount", "secondary_amount",
    "sequestration_amount",
)  # fmt: skip
FORMATS = ("csv", "json")
TOTAL = "TOTAL"  # a payer's subtotal row in revenue_by_payer (code column)
GRAND_TOTAL = "GRAND TOTAL"  # the last row of every revenue table
ALL_PAYERS = "all payers"


def claim_lines_frame(
    lines: pl.DataFrame, bundle: Bundle, leading: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Priced line outcomes (``pricing.split_shares``) as the contract's claim lines.

    `leading` columns of `lines` (a range's ``month``) are kept, before the contract's.
    """
    npis = bundle["practitioners"].select(
        pl.col("practitioner_id").alias("billing_practitioner_id"),
        pl.col("npi").alias("billing_npi"),
    )
    return (
        lines.join(npis, on="billing_practitioner_id", how="left")
        .with_columns(
            modifiers=pl.lit(None, dtype=pl.String),
            icd10_codes=pl.col("icd10_codes").list.join(";"),
            evidence=pl.col("evidence").list.join(";"),
        )
        .select(*leading, *CLAIM_LINE_COLUMNS)
        .sort(*leading, "patient_id", "date_of_service", "code")
    )


def gaps_frame(gaps: pl.DataFrame) -> pl.DataFrame:
    """Gap outcomes (with ``potential_amount``) as the contract's gaps."""
    return (
        gaps.with_columns(evidence=pl.col("evidence").list.join(";"))
        .select(GAP_COLUMNS)
        .sort("patient_id", "period_start", "code", "billing_practitioner_id")
    )


def line_totals(lines: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Lines, units, the amount sums and the unpriced lines of each group of `keys`.

    A money sum is empty (not zero) when no line of the group is priced; otherwise an
    empty amount of a priced line counts as 0 (a line without secondary coverage has an
    empty ``secondary_amount``), so the sums add up as the lines do. No keys: one row.
    """
    priced = pl.col("allowed_amount").is_not_null()
    aggregations = [
        pl.len().cast(pl.Int64).alias("lines"),
        pl.col("units").sum().cast(pl.Int64),
        *[
            pl.when(priced.any()).then(pl.col(c).cast(MONEY).fill_null(0).sum()).alias(c)
            for c in AMOUNT_COLUMNS
        ],
        pl.col("allowed_amount").is_null().sum().cast(pl.Int64).alias("unpriced_lines"),
    ]
    if not keys:
        return lines.select(aggregations)
    return lines.group_by(*keys).agg(aggregations)


def grand_total(
    frame: pl.DataFrame,
    label_column: str,
    labels: dict[str, str] | None = None,
    blank: tuple[str, ...] = (),
) -> pl.DataFrame:
    """`frame` with one last row labelled ``GRAND TOTAL`` in `label_column`.

    Numbers are summed (a money column stays empty when every row is empty), except the
    `blank` columns (rates such as a PMPM); text columns are empty unless given in
    `labels`. Rows that are already subtotals (``TOTAL`` in `label_column`) are left
    out of the sum.
    """
    labels = labels or {}
    rows = frame.filter(pl.col(label_column).ne_missing(TOTAL))
    sums = []
    for name, dtype in frame.schema.items():
        if name == label_column:
            sums.append(pl.lit(GRAND_TOTAL, dtype=dtype).alias(name))
        elif name in labels:
            sums.append(pl.lit(labels[name], dtype=dtype).alias(name))
        elif dtype.is_numeric() and name not in blank:
            total = pl.col(name).sum()
            if isinstance(dtype, pl.Decimal):
                total = pl.when(pl.col(name).is_not_null().any()).then(total)
            sums.append(total.cast(dtype).alias(name))
        else:
            sums.append(pl.lit(None, dtype=dtype).alias(name))
    return pl.concat([frame, rows.select(sums)], how="vertical")


def revenue_frame(lines: pl.DataFrame, bundle: Bundle) -> pl.DataFrame:
    """Lines, units and amounts by payer and code, one TOTAL row per payer (code
    ``TOTAL``) and, last, the ``GRAND TOTAL`` of every payer (payer_id and code
    ``GRAND TOTAL``, payer_name ``all payers``)."""
    names = bundle["payers"].select("payer_id", pl.col("name").alias("payer_name"))
    per_code = line_totals(lines, ["payer_id", "code"])
    totals = line_totals(lines, ["payer_id"]).with_columns(code=pl.lit(TOTAL))
    everything = line_totals(lines, []).with_columns(
        payer_id=pl.lit(GRAND_TOTAL), code=pl.lit(GRAND_TOTAL)
    )
    table = (
        pl.concat([per_code, totals.select(per_code.columns)])
        .join(names, on="payer_id", how="left")
        .with_columns(_total=pl.col("code") == TOTAL)
        .sort("payer_id", "_total", "code", nulls_last=True)
        .select(REVENUE_COLUMNS)
    )
    grand = everything.with_columns(payer_name=pl.lit(ALL_PAYERS)).select(REVENUE_COLUMNS)
    return pl.concat([table, grand.cast(table.schema)], how="vertical")


def _overlapping(month: Month, start: str, end: str) -> pl.Expr:
    return (pl.col(start) <= month.end) & (pl.col(end).is_null() | (pl.col(end) >= month.start))


def capitation_members(bundle: Bundle, month: Month) -> pl.DataFrame:
    """payer_id, patient_id of each member of a payer in `month` (unique), as PMPM
    contracts count them: the payer's attributed patients (``attributions`` overlapping
    the month) when the payer has attribution rows, else every patient with coverage by
    that payer overlapping the month."""
    attributed = bundle["attributions"].filter(_overlapping(month, "start_date", "end_date"))
    listed = bundle["attributions"].select("payer_id").unique()
    covered = (
        bundle["coverages"]
        .filter(_overlapping(month, "start_date", "end_date"))
        .join(listed, on="payer_id", how="anti")
    )
    return pl.concat(
        [attributed.select("payer_id", "patient_id"), covered.select("payer_id", "patient_id")]
    ).unique()


def capitation_frame(bundle: Bundle, month: Month) -> pl.DataFrame:
    """PMPM contracts in effect in `month`: members counted and the month's amount.

    Members are those of ``capitation_members``. Reported beside fee-for-service, never
    mixed in.
    """
    contracts = bundle["capitation"].filter(_overlapping(month, "effective_from", "effective_to"))
    members = (
        capitation_members(bundle, month)
        .group_by("payer_id")
        .agg(members=pl.col("patient_id").n_unique().cast(pl.Int64))
    )
    names = bundle["payers"].select("payer_id", pl.col("name").alias("payer_name"))
    return (
        contracts.join(members, on="payer_id", how="left")
        .join(names, on="payer_id", how="left")
        .with_columns(
            pl.col("members").fill_null(0),
            month=pl.lit(str(month)),
            pmpm=pl.col("amount").cast(MONEY),
        )
        .with_columns(amount=round_cents(exact(pl.col("amount")) * pl.col("members").cast(CALC)))
        .select(CAPITATION_COLUMNS)
        .sort("payer_id", "name", nulls_last=True)
    )
