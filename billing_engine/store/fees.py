"""The CMS fee files in the store: RVU rows in ``fee_rvu``, GPCIs in ``fee_gpci``.

A release replaces, in ONE transaction, every stored row of the same release key
(``PFS_RELEASE_KEY`` for the RVU file, ``GPCI_RELEASE_KEY`` for the GPCIs); other
releases are kept. The columns are the readers' normalized ones
(``billing_engine.io.cms_pfs``, ``billing_engine.io.cms_gpci``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from billing_engine.io.cms_gpci import GPCI_COLUMNS, GPCI_SCHEMA
from billing_engine.io.cms_pfs import PFS_COLUMNS, PFS_SCHEMA
from billing_engine.store.connect import StoreError, as_utc, driver_reason, write_batches
from billing_engine.store.models import FEE_GPCI_TABLE, FEE_RVU_TABLE, IMPORTED_AT

PFS_RELEASE_KEY = ("year", "effective_from", "qp")
GPCI_RELEASE_KEY = ("year",)


def import_fees(
    engine: Engine,
    store_url: str,
    table: sa.Table,
    frame: pl.DataFrame,
    schema: dict[str, pl.DataType],
    release_key: tuple[str, ...],
) -> int:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: the frame lacks column(s) {', '.join(missing)}")
    rows = frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())
    nulls = [c for c in schema if rows.get_column(c).null_count()]
    if nulls:
        raise ValueError(f"{table.name}: null values in column(s) {', '.join(nulls)}")
    if rows.height == 0:
        return 0
    now = dt.datetime.now(dt.UTC)
    releases = rows.select(release_key).unique(maintain_order=True)
    to_write = rows.with_columns(pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias(IMPORTED_AT))
    try:
        with engine.begin() as connection:
            for release in releases.iter_rows(named=True):
                connection.execute(
                    sa.delete(table).where(
                        *(table.c[name] == value for name, value in release.items())
                    )
                )
            write_batches(connection, sa.insert(table), to_write)
    except SQLAlchemyError as exc:  # rolled back already
        raise StoreError(f"fee import into {store_url} failed: {driver_reason(exc)}") from exc
    return rows.height


def fee_tables(engine: Engine) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every stored (RVU, GPCI) row, typed as ``PFS_SCHEMA`` / ``GPCI_SCHEMA``.

    Sorted by year, effective date, QP flag, code and modifier / year and locality.
    """
    rvu, gpci = FEE_RVU_TABLE, FEE_GPCI_TABLE
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        pfs_rows = connection.execute(
            sa.select(*(rvu.c[c] for c in PFS_COLUMNS)).order_by(
                *(rvu.c[c] for c in (*PFS_RELEASE_KEY, "hcpcs", "modifier"))
            )
        ).all()
        gpci_rows = connection.execute(
            sa.select(*(gpci.c[c] for c in GPCI_COLUMNS)).order_by(gpci.c.year, gpci.c.locality)
        ).all()
    return (
        pl.DataFrame(pfs_rows, schema=PFS_SCHEMA, orient="row"),
        pl.DataFrame(gpci_rows, schema=GPCI_SCHEMA, orient="row"),
    )


def fee_releases(engine: Engine) -> list[dict[str, Any]]:
    """What fee data is stored: one entry per RVU (year, effective_from, qp) and GPCI year.

    Keys: kind (``pfs`` / ``gpci``), year, effective_from and qp (None for GPCIs),
    release, source_file, rows, imported_at (UTC). RVU releases first, each kind by
    year (and effective date, QP flag).
    """
    kinds = (
        ("pfs", FEE_RVU_TABLE, PFS_RELEASE_KEY),
        ("gpci", FEE_GPCI_TABLE, GPCI_RELEASE_KEY),
    )
    out: list[dict[str, Any]] = []
    with engine.connect() as connection:
        for kind, table, key in kinds:
            groups = (*(table.c[c] for c in key), table.c.release, table.c.source_file)
            statement = (
                sa.select(
                    *groups,
                    sa.func.count().label("rows"),
                    sa.func.max(table.c[IMPORTED_AT]).label(IMPORTED_AT),
                )
                .group_by(*groups)
                .order_by(*groups)
            )
            for row in connection.execute(statement).mappings():
                out.append(
                    {
                        "kind": kind,
                        "year": row["year"],
                        "effective_from": row.get("effective_from"),
                        "qp": row.get("qp"),
                        "release": row["release"],
                        "source_file": row["source_file"],
                        "rows": row["rows"],
                        "imported_at": as_utc(row[IMPORTED_AT]),
                    }
                )
    return out
