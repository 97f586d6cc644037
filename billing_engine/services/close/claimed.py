"""What the exported claims carry now: per month for adjustments, as history elsewhere.

A claim **chain** is an original claim (frequency 1) and the replacements and voids
sent against it (``original_claim_id``). What a chain carries now is the lines of its
latest exported claim, nothing when that claim is a void (frequency 8). Claims of a
reopened lock (``voided``) and claims not yet exported count nowhere.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billing_engine.services.close.lines import LINE_COLUMNS
from billing_engine.store.close import CLAIM_LINES, CLAIMS, LINES, read_frame, schema_of

EXPORTED = "exported"
VOID = "8"


def carried_lines(connection: Connection, month: str | None = None) -> pl.DataFrame:
    """``month``'s (or every month's) claimed lines: ``month, claim_id, claim_chain,
    line_id, charge`` and ``LINE_COLUMNS`` (as the close line that was claimed)."""
    where = [CLAIMS.c.status == EXPORTED]
    if month is not None:
        where.append(CLAIMS.c.month == month)
    claims = read_frame(
        connection,
        sa.select(
            CLAIMS.c.claim_id,
            CLAIMS.c.month,
            CLAIMS.c.cycle,
            CLAIMS.c.frequency,
            CLAIMS.c.original_claim_id,
        ).where(*where),
        schema_of(CLAIMS, ["claim_id", "month", "cycle", "frequency", "original_claim_id"]),
    )
    latest = (
        claims.with_columns(pl.coalesce("original_claim_id", "claim_id").alias("claim_chain"))
        .sort("cycle", "claim_id")
        .group_by("claim_chain", maintain_order=True)
        .last()
        .filter(pl.col("frequency") != VOID)
        .select("claim_id", "claim_chain", "month")
    )
    line_schema = schema_of(LINES, ["line_id", *LINE_COLUMNS])
    statement = (
        sa.select(CLAIM_LINES.c.claim_id, CLAIM_LINES.c.charge, *[LINES.c[c] for c in line_schema])
        .join(LINES, LINES.c.line_id == CLAIM_LINES.c.line_id)
        .join(CLAIMS, CLAIMS.c.claim_id == CLAIM_LINES.c.claim_id)
        .where(*where)
    )
    schema = {"claim_id": pl.String(), "charge": pl.Decimal(18, 2), **line_schema}
    lines = read_frame(connection, statement, schema)
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
