"""What the exported claims carry now: per month for adjustments, as history elsewhere.

A claim **chain** is an original claim (frequency 1) and the replacements and voids
sent against it (``original_claim_id``). What a chain carries now is the lines of its
latest exported claim, nothing when that claim is a void (frequency 8). Claims of a
reopened lock (``voided``) and claims not yet exported count nowhere.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy.engine import Connection

from billing_engine.services.close.lines import LINE_COLUMNS
from billing_engine.store import close as closedb

VOID = "8"


def carried_lines(connection: Connection, month: str | None = None) -> pl.DataFrame:
    """``month``'s (or every month's) claimed lines: ``month, claim_id, claim_chain,
    line_id, charge`` and ``LINE_COLUMNS`` (as the close line that was claimed)."""
    claims = closedb.exported_claims(connection, month)
    latest = (
        claims.with_columns(pl.coalesce("original_claim_id", "claim_id").alias("claim_chain"))
        .sort("cycle", "claim_id")
        .group_by("claim_chain", maintain_order=True)
        .last()
        .filter(pl.col("frequency") != VOID)
        .select("claim_id", "claim_chain", "month")
    )
    lines = closedb.exported_claim_lines(connection, ["line_id", *LINE_COLUMNS], month)
    return latest.join(lines, on="claim_id", how="inner").select(
        "month", "claim_id", "claim_chain", "line_id", "charge", *LINE_COLUMNS
    )


def as_claims_history(carried: pl.DataFrame) -> pl.DataFrame:
    """Claimed lines as ``claims_history`` rows (status ``pending``: sent, not yet paid)."""
    return carried.select(
        "patient_id",
        "code",
        "units",
        "date_of_service",
        "billing_npi",
        "payer_id",
        pl.lit("pending").alias("status"),
        "claim_id",
    )
