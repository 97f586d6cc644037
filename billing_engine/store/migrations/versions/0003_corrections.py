"""Corrections and run flags: the columns of the interchange additions, retired rows.

- ``practitioners.specialty`` / ``practitioners.place_of_service``,
  ``patients.care_manager_id``, ``encounters.status`` (``entered_in_error``) and
  ``claims_history.claim_id``: optional interchange columns (docs/interchange.md,
  "Additions").
- ``retired_at`` on every interchange table: set when a ``billing import --snapshot``
  no longer holds a stored row (the row is kept for history and never evaluated).
- ``evaluation_runs.allow_unverified`` / ``unverified_parameters``: a run evaluated
  with parameter values carried forward past their verified date, and which ones.

Generic types only, so the same revision runs on SQLite and PostgreSQL.

Revision ID: 0003_corrections
Revises: 0002_fees
Create Date: 2026-12-06 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_corrections"
down_revision: str | Sequence[str] | None = "0002_fees"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the interchange tables as they stood at 0002 (written out: later tables need a revision)
INTERCHANGE_TABLES = (
    "practitioners", "patients", "payers", "coverages", "fee_schedule", "payer_codes",
    "capitation", "attributions", "conditions", "consents", "care_plans", "encounters",
    "discharges", "measurements", "referrals", "claims_history",
)  # fmt: skip

NEW_COLUMNS = (
    ("practitioners", "specialty"),
    ("practitioners", "place_of_service"),
    ("patients", "care_manager_id"),
    ("encounters", "status"),
    ("claims_history", "claim_id"),
)


def upgrade() -> None:
    for table, column in NEW_COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(), nullable=True))
    for table in INTERCHANGE_TABLES:
        op.add_column(table, sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "evaluation_runs",
        sa.Column("allow_unverified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("evaluation_runs", sa.Column("unverified_parameters", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("evaluation_runs", "unverified_parameters")
    op.drop_column("evaluation_runs", "allow_unverified")
    for table in INTERCHANGE_TABLES:
        op.drop_column(table, "retired_at")
    for table, column in reversed(NEW_COLUMNS):
        op.drop_column(table, column)
