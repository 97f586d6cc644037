"""Database tables of the store.

The sixteen interchange tables are generated from ``billing_engine.io.schema.TABLES`` (the
schema module is the only place a column is declared), so a column added there shows up
here at once; the test that compares these models with the alembic migrations then
fails until a new revision is written. Type mapping:

=============================  ==================================================
schema type                    SQL type
=============================  ==================================================
str, enum, npi, icd10          ``String`` (values stored as given)
date / time                    ``Date`` / ``Time``
int / bool / float             ``Integer`` / ``Boolean`` / ``Float``
decimal                        ``Numeric(18, 4)``
list                           ``Text``: the items joined by ``;`` (``''`` = empty list)
=============================  ==================================================

Every interchange table has a primary key: its ``Table.key`` column(s) when the spec
gives an id, else ``row_key``, the natural-key values joined with ``|`` (null -> ``''``,
ICD-10 codes without the dot and upper-cased, dates ISO). Four bookkeeping columns
follow the spec's columns: ``extra`` (the row's non-spec columns as a JSON object, or
NULL when the imported bundle had none), ``row_hash`` (digest of the stored values, used
to tell updated from unchanged rows on re-import), ``imported_at`` (when the row was
last inserted or changed) and ``retired_at`` (when a snapshot import no longer held the
row: it is kept for history and never evaluated; NULL while the row is current). Only
primary keys are NOT NULL: checking required columns
and references is ingest's job, the store keeps what it was given.

``evaluation_runs`` and ``imports`` belong to the engine and are typed ORM models, and
so are the imported CMS fee tables ``fee_rvu`` (the physician fee schedule's relative
values, one row per year, effective date, QP flag, HCPCS code and modifier) and
``fee_gpci`` (the GPCIs, one row per year and Medicare locality): their columns are
``billing_engine.io.cms_pfs.PFS_COLUMNS`` / ``cms_gpci.GPCI_COLUMNS`` plus
``imported_at``, the decimals ``Numeric(12, 4)``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from billing_engine.io.schema import TABLES, ColType, Column
from billing_engine.io.schema import Table as SpecTable

ROW_KEY = "row_key"
EXTRA = "extra"
ROW_HASH = "row_hash"
IMPORTED_AT = "imported_at"
RETIRED_AT = "retired_at"
BOOKKEEPING_COLUMNS = (EXTRA, ROW_HASH, IMPORTED_AT, RETIRED_AT)

LIST_SEPARATOR = ";"
ROW_KEY_SEPARATOR = "|"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def sql_type(column: Column) -> sa.types.TypeEngine[Any]:
    """The SQL type that stores one interchange column."""
    match column.type:
        case ColType.DATE:
            return sa.Date()
        case ColType.TIME:
            return sa.Time()
        case ColType.INT:
            return sa.Integer()
        case ColType.BOOL:
            return sa.Boolean()
        case ColType.DECIMAL:
            return sa.Numeric(18, 4)
        case ColType.FLOAT:
            return sa.Float()
        case ColType.LIST:
            return sa.Text()
        case ColType.STR | ColType.ENUM | ColType.NPI | ColType.ICD10:
            return sa.String()
    raise AssertionError(f"no SQL type for {column.type}")  # pragma: no cover


def primary_key_columns(spec: SpecTable) -> tuple[str, ...]:
    """The primary-key columns of an interchange table in the store."""
    return spec.key or (ROW_KEY,)


def _interchange_table(spec: SpecTable) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    if not spec.key:
        columns.append(sa.Column(ROW_KEY, sa.String(), primary_key=True))
    columns.extend(
        sa.Column(
            c.name, sql_type(c), primary_key=c.name in spec.key, nullable=c.name not in spec.key
        )
        for c in spec.columns
    )
    columns.extend(
        (
            sa.Column(EXTRA, sa.Text(), nullable=True),
            sa.Column(ROW_HASH, sa.String(64), nullable=False),
            sa.Column(IMPORTED_AT, sa.DateTime(timezone=True), nullable=False),
            # set when a snapshot import no longer holds the row: kept, never evaluated
            sa.Column(RETIRED_AT, sa.DateTime(timezone=True), nullable=True),
        )
    )
    return sa.Table(spec.name, Base.metadata, *columns)


INTERCHANGE_TABLES: dict[str, sa.Table] = {
    name: _interchange_table(spec) for name, spec in TABLES.items()
}


class EvaluationRun(Base):
    """One ``billing evaluate`` run: what went in and how much came out."""

    __tablename__ = "evaluation_runs"

    run_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7), index=True)  # YYYY-MM
    as_of: Mapped[dt.date] = mapped_column(sa.Date())
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    rule_set_version: Mapped[str] = mapped_column(sa.String())
    input_row_counts: Mapped[dict[str, int]] = mapped_column(sa.JSON())
    line_count: Mapped[int] = mapped_column(sa.Integer())
    gap_count: Mapped[int] = mapped_column(sa.Integer())
    source: Mapped[str] = mapped_column(sa.String())
    # --allow-unverified: parameter values carried forward past their verified date
    allow_unverified: Mapped[bool] = mapped_column(
        sa.Boolean(), default=False, server_default=sa.false()
    )
    unverified_parameters: Mapped[list[str] | None] = mapped_column(sa.JSON(), nullable=True)


class ImportRecord(Base):
    """One bundle import: its input row counts and what it changed."""

    __tablename__ = "imports"

    import_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    source: Mapped[str] = mapped_column(sa.String())
    row_counts: Mapped[dict[str, int]] = mapped_column(sa.JSON())
    # per table: {"inserted": n, "updated": n, "unchanged": n, "duplicates": n}
    table_counts: Mapped[dict[str, dict[str, int]]] = mapped_column(sa.JSON())
    inserted: Mapped[int] = mapped_column(sa.Integer())
    updated: Mapped[int] = mapped_column(sa.Integer())
    unchanged: Mapped[int] = mapped_column(sa.Integer())


FEE_DECIMAL = sa.Numeric(12, 4)


class FeeRvu(Base):
    """One row of an imported CMS Relative Value File (``cms_pfs.PFS_COLUMNS``)."""

    __tablename__ = "fee_rvu"

    year: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    effective_from: Mapped[dt.date] = mapped_column(sa.Date(), primary_key=True)
    qp: Mapped[bool] = mapped_column(sa.Boolean(), primary_key=True)
    hcpcs: Mapped[str] = mapped_column(sa.String(), primary_key=True)
    modifier: Mapped[str] = mapped_column(sa.String(), primary_key=True)  # '' = none
    status: Mapped[str] = mapped_column(sa.String())
    work_rvu: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    nf_pe_rvu: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    nf_na: Mapped[str] = mapped_column(sa.String())
    f_pe_rvu: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    f_na: Mapped[str] = mapped_column(sa.String())
    mp_rvu: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    conv_factor: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    release: Mapped[str] = mapped_column(sa.String())
    source_file: Mapped[str] = mapped_column(sa.String())
    imported_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class FeeGpci(Base):
    """One locality of an imported CMS GPCI file (``cms_gpci.GPCI_COLUMNS``)."""

    __tablename__ = "fee_gpci"

    year: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)
    locality: Mapped[str] = mapped_column(sa.String(), primary_key=True)  # MAC-number
    mac: Mapped[str] = mapped_column(sa.String())
    state: Mapped[str] = mapped_column(sa.String())
    locality_number: Mapped[int] = mapped_column(sa.Integer())
    locality_name: Mapped[str] = mapped_column(sa.String())
    pw_gpci: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    pe_gpci: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    mp_gpci: Mapped[Decimal] = mapped_column(FEE_DECIMAL)
    footnote: Mapped[str] = mapped_column(sa.String())
    release: Mapped[str] = mapped_column(sa.String())
    source_file: Mapped[str] = mapped_column(sa.String())
    imported_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


FEE_RVU_TABLE = cast(sa.Table, FeeRvu.__table__)
FEE_GPCI_TABLE = cast(sa.Table, FeeGpci.__table__)

metadata = Base.metadata
