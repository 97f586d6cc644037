"""Tables of the monthly close (``../shared/spec/close.md``; migration ``0004_close``).

=====================  ============================================================
table                  one row per
=====================  ============================================================
``close_months``       month under close: its state, current cycle and ``version``
``close_cycles``       (month, cycle): who opened, locked and first exported it
``close_lines``        claim line saved for a cycle, with its review status
``close_gaps``         gap of a cycle's evaluation (what the office reviews beside lines)
``claims``             claim sent (or to be sent) to a payer; ids never reused
``claim_lines``        service line of a claim (the close line it came from)
``export_batches``     (month, cycle, payer): the 837P interchange and its control number
``audit_log``          action of a close command; append-only (triggers refuse changes)
=====================  ============================================================

Concurrency: every command reads the month's ``version`` and bumps it with
``UPDATE ... WHERE version = :read`` before it writes anything else, in the same
transaction. Two commands on one month at once: the second's update finds no row (on
PostgreSQL it waits for the first to commit, then sees the new version) and the command
is refused. Unique constraints make a duplicate claim id, claim line, cycle, close line
or control number impossible even so.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from billing_engine.store.models import Base

MONEY = sa.Numeric(14, 2)
UTC_TIME = sa.DateTime(timezone=True)

# the claim-line columns of ``billing evaluate`` (interchange.md), as a close line keeps them
LINE_TEXT_COLUMNS = (
    "patient_id",
    "payer_id",
    "billing_practitioner_id",
    "billing_npi",
    "code",
    "modifiers",
    "place_of_service",
    "icd10_codes",
    "evidence",
    "rule",
)
LINE_DATE_COLUMNS = ("date_of_service", "period_start", "period_end")
LINE_MONEY_COLUMNS = ("allowed_amount", "payer_amount", "patient_amount")


class CloseMonth(Base):
    """A month under close: ``open``, ``locked`` or ``exported``, in its current cycle."""

    __tablename__ = "close_months"

    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)  # YYYY-MM
    state: Mapped[str] = mapped_column(sa.String(10))
    cycle: Mapped[int] = mapped_column(sa.Integer())
    # bumped by every command, compared before it writes (see the module docstring)
    version: Mapped[int] = mapped_column(sa.Integer())
    updated_at: Mapped[dt.datetime] = mapped_column(UTC_TIME)
    last_locked_at: Mapped[dt.datetime | None] = mapped_column(UTC_TIME, nullable=True)


class CloseCycle(Base):
    """One pass of review -> lock -> export of a month (cycle 1 bills it)."""

    __tablename__ = "close_cycles"

    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    cycle: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(10))
    as_of: Mapped[dt.date] = mapped_column(sa.Date())
    run_id: Mapped[str] = mapped_column(sa.String(36))
    rule_set_version: Mapped[str] = mapped_column(sa.String())
    opened_at: Mapped[dt.datetime] = mapped_column(UTC_TIME)
    opened_by: Mapped[str] = mapped_column(sa.String())
    # the last evaluation (start, or start again while open)
    evaluated_at: Mapped[dt.datetime] = mapped_column(UTC_TIME)
    # the number of the cycle's next close line (numbers are never reused)
    next_line: Mapped[int] = mapped_column(sa.Integer())
    # how many times the cycle was locked (a reopen voids the claim ids of a lock)
    locks: Mapped[int] = mapped_column(sa.Integer(), default=0)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTC_TIME, nullable=True)
    locked_by: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    # the first export: kept so that a re-export writes the same bytes
    exported_at: Mapped[dt.datetime | None] = mapped_column(UTC_TIME, nullable=True)
    exported_by: Mapped[str | None] = mapped_column(sa.String(), nullable=True)


class CloseLine(Base):
    """A claim line of a cycle's evaluation, as evaluated, with its review decision."""

    __tablename__ = "close_lines"
    __table_args__ = (sa.Index("ix_close_lines_month_cycle", "month", "cycle"),)

    line_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7))
    cycle: Mapped[int] = mapped_column(sa.Integer())
    # original (cycle 1), or the adjustment kind: new, replace, void
    kind: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(10))  # pending, approved, held
    hold_reason: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    edit_failures: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTC_TIME, nullable=True)
    # replace / void: the claimed line and the claim chain (its original claim id)
    adjusts_line_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    adjusts_claim_id: Mapped[str | None] = mapped_column(sa.String(38), nullable=True)
    patient_id: Mapped[str] = mapped_column(sa.String())
    payer_id: Mapped[str] = mapped_column(sa.String())
    billing_practitioner_id: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    billing_npi: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    code: Mapped[str] = mapped_column(sa.String())
    modifiers: Mapped[str] = mapped_column(sa.String())
    units: Mapped[int] = mapped_column(sa.Integer())
    date_of_service: Mapped[dt.date] = mapped_column(sa.Date())
    place_of_service: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    icd10_codes: Mapped[str] = mapped_column(sa.String())
    period_start: Mapped[dt.date | None] = mapped_column(sa.Date(), nullable=True)
    period_end: Mapped[dt.date | None] = mapped_column(sa.Date(), nullable=True)
    allowed_amount: Mapped[Decimal] = mapped_column(MONEY)
    payer_amount: Mapped[Decimal] = mapped_column(MONEY)
    patient_amount: Mapped[Decimal] = mapped_column(MONEY)
    evidence: Mapped[str] = mapped_column(sa.Text())
    rule: Mapped[str] = mapped_column(sa.String())


class CloseGap(Base):
    """A gap of a cycle's evaluation (``gaps.csv`` columns)."""

    __tablename__ = "close_gaps"
    __table_args__ = (sa.Index("ix_close_gaps_month_cycle", "month", "cycle"),)

    gap_no: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    cycle: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    patient_id: Mapped[str] = mapped_column(sa.String())
    code: Mapped[str] = mapped_column(sa.String())
    status: Mapped[str] = mapped_column(sa.String())
    reason: Mapped[str] = mapped_column(sa.String())
    detail: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    minutes_logged: Mapped[int | None] = mapped_column(sa.Integer(), nullable=True)
    minutes_needed: Mapped[int | None] = mapped_column(sa.Integer(), nullable=True)
    deadline: Mapped[dt.date | None] = mapped_column(sa.Date(), nullable=True)
    period_start: Mapped[dt.date | None] = mapped_column(sa.Date(), nullable=True)
    period_end: Mapped[dt.date | None] = mapped_column(sa.Date(), nullable=True)
    evidence: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)


class Claim(Base):
    """A claim: one patient, payer and billing practitioner, at most 50 lines."""

    __tablename__ = "claims"
    __table_args__ = (sa.Index("ix_claims_month_cycle", "month", "cycle"),)

    claim_id: Mapped[str] = mapped_column(sa.String(38), primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7))
    cycle: Mapped[int] = mapped_column(sa.Integer())
    frequency: Mapped[str] = mapped_column(sa.String(1))  # 1 original, 7 replace, 8 void
    # 7 and 8: the claim chain's original claim (REF*F8); 1: NULL
    original_claim_id: Mapped[str | None] = mapped_column(sa.String(38), nullable=True)
    # locked (numbered), exported, or voided (its lock was reopened: never reused)
    status: Mapped[str] = mapped_column(sa.String(10))
    patient_id: Mapped[str] = mapped_column(sa.String())
    payer_id: Mapped[str] = mapped_column(sa.String())
    billing_practitioner_id: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    rendering_npi: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    billing_npi: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    # the coverage's member id at lock (claims.csv; the 837 carries it too)
    member_id: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    line_count: Mapped[int] = mapped_column(sa.Integer())
    total_charge: Mapped[Decimal] = mapped_column(MONEY)
    allowed_amount: Mapped[Decimal] = mapped_column(MONEY)
    payer_amount: Mapped[Decimal] = mapped_column(MONEY)
    patient_amount: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_TIME)


class ClaimLine(Base):
    """A service line of a claim: the close line it carries, and its charge."""

    __tablename__ = "claim_lines"
    __table_args__ = (sa.UniqueConstraint("claim_id", "line_id"),)

    claim_id: Mapped[str] = mapped_column(sa.String(38), primary_key=True)
    line_number: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    line_id: Mapped[str] = mapped_column(sa.String(40))
    month: Mapped[str] = mapped_column(sa.String(7))
    cycle: Mapped[int] = mapped_column(sa.Integer())
    code: Mapped[str] = mapped_column(sa.String())
    modifiers: Mapped[str] = mapped_column(sa.String())
    units: Mapped[int] = mapped_column(sa.Integer())
    charge: Mapped[Decimal] = mapped_column(MONEY)
    date_of_service: Mapped[dt.date] = mapped_column(sa.Date())
    place_of_service: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    icd10_codes: Mapped[str] = mapped_column(sa.String())
    billing_npi: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    allowed_amount: Mapped[Decimal] = mapped_column(MONEY)
    payer_amount: Mapped[Decimal] = mapped_column(MONEY)
    patient_amount: Mapped[Decimal] = mapped_column(MONEY)


class ExportBatch(Base):
    """The 837P interchange of one payer in one cycle, numbered at its first export."""

    __tablename__ = "export_batches"

    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    cycle: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    payer_id: Mapped[str] = mapped_column(sa.String(), primary_key=True)
    # ISA13 = GS06 = ST02: unique in the store, so no two interchanges share one
    control_number: Mapped[int] = mapped_column(sa.Integer(), unique=True)
    file_name: Mapped[str] = mapped_column(sa.String())
    sha256: Mapped[str] = mapped_column(sa.String(64))
    claims: Mapped[int] = mapped_column(sa.Integer())
    lines: Mapped[int] = mapped_column(sa.Integer())
    total_charge: Mapped[Decimal] = mapped_column(MONEY)
    # the interchange as first written: a re-export writes these very bytes
    content: Mapped[str] = mapped_column(sa.Text())


class AuditEntry(Base):
    """One action of a close command. Rows are only ever inserted."""

    __tablename__ = "audit_log"

    entry_id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTC_TIME)
    user: Mapped[str] = mapped_column(sa.String())
    action: Mapped[str] = mapped_column(sa.String())
    month: Mapped[str] = mapped_column(sa.String(7), index=True)
    cycle: Mapped[int | None] = mapped_column(sa.Integer(), nullable=True)
    ids: Mapped[list[str]] = mapped_column(sa.JSON())
    reason: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON())


CLOSE_TABLES: tuple[str, ...] = (
    "close_months",
    "close_cycles",
    "close_lines",
    "close_gaps",
    "claims",
    "claim_lines",
    "export_batches",
    "audit_log",
)
