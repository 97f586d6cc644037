"""Interchange rows in the store: a bundle imported (``import_bundle``), read back.

``import_bundle`` writes a whole bundle in ONE transaction (see ``billing_engine.store.db``
for the rules: unchanged, updated, inserted, retired by a snapshot, restored); the reads
give the current rows as a typed bundle, one table's current or retired rows, and the
record of every import.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from billing_engine.io.bundle import Bundle
from billing_engine.io.overlap import overlapping_coverages
from billing_engine.io.schema import TABLES
from billing_engine.io.schema import Table as SpecTable
from billing_engine.store import bulk, codec, whole_store
from billing_engine.store.connect import StoreError, as_utc, write_batches
from billing_engine.store.models import (
    EXTRA,
    IMPORTED_AT,
    INTERCHANGE_TABLES,
    RETIRED_AT,
    ROW_HASH,
    ImportRecord,
    primary_key_columns,
)

_IMPORT_LOCK = "billing-engine import "
_STORED_HASH = "__stored_hash"
_STORED_RETIRED = "__stored_retired"


@dataclass(frozen=True)
class TableImportCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # input rows whose key repeated an earlier row of the same import (the last one is kept)
    duplicates: int = 0
    # stored rows a snapshot no longer holds, retired by this import
    retired: int = 0
    # retired rows this import holds again (current again; counted in ``updated`` too)
    restored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "retired": self.retired,
            "restored": self.restored,
        }


@dataclass(frozen=True)
class ImportSummary:
    """What one ``import_bundle`` did, per table (every interchange table is listed)."""

    import_id: str
    source: str
    created_at: dt.datetime
    tables: dict[str, TableImportCounts] = field(default_factory=dict)
    snapshot: bool = False  # the bundle's tables replaced the stored ones (rows retired)

    @property
    def inserted(self) -> int:
        return sum(c.inserted for c in self.tables.values())

    @property
    def updated(self) -> int:
        return sum(c.updated for c in self.tables.values())

    @property
    def unchanged(self) -> int:
        return sum(c.unchanged for c in self.tables.values())

    @property
    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.tables.values())

    @property
    def retired(self) -> int:
        return sum(c.retired for c in self.tables.values())


def _retire(connection: Connection, table: sa.Table, keys: pl.DataFrame, now: dt.datetime) -> None:
    """Set ``retired_at`` on the stored rows with these primary keys."""
    if keys.height == 0:
        return
    statement = (
        sa.update(table)
        .where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in keys.columns))
        .values({RETIRED_AT: now})
    )
    renamed = keys.rename({k: f"k_{k}" for k in keys.columns})
    write_batches(connection, statement, renamed)


_COVERAGE_COLUMNS = ("patient_id", "payer_id", "start_date", "end_date")


def _refuse_overlapping_coverages(connection: Connection, now: dt.datetime) -> None:
    """Raise ``StoreError`` when a coverage written at ``now`` overlaps another current one
    of the same patient and payer (the import is then rolled back)."""
    dtypes = codec.store_dtypes(TABLES["coverages"])
    # every current coverage, in bulk; narrowed here to the patients this import wrote to
    # (a query planner without statistics on a freshly filled table nests loops instead)
    current = bulk.select_frame(
        connection,
        _current("coverages", [*_COVERAGE_COLUMNS, IMPORTED_AT]),
        {**{c: dtypes[c] for c in _COVERAGE_COLUMNS}, IMPORTED_AT: pl.Datetime("us", "UTC")},
    ).select(*_COVERAGE_COLUMNS, written=pl.col(IMPORTED_AT) == now)
    patients = current.filter("written").get_column("patient_id").implode()
    frame = current.filter(pl.col("patient_id").is_in(patients))
    if frame.height == 0:
        return
    pairs = overlapping_coverages(frame.filter("written"), frame)
    if pairs.height:
        first = pairs.row(0, named=True)
        raise StoreError(
            f"coverages: the coverage of patient {first['patient_id']} with payer "
            f"{first['payer_id']} from {first['start_date']} overlaps the one from "
            f"{first['other_start_date']} ({pairs.height} such pair(s)); end the stored "
            "coverage (end_date) or import the coverages as a snapshot"
        )


def import_bundle(engine: Engine, bundle: Bundle, snapshot: bool) -> ImportSummary:
    """Write the bundle in one transaction (``Store.import_bundle`` says how)."""
    now = dt.datetime.now(dt.UTC)
    counts: dict[str, TableImportCounts] = {}
    replaced = bundle.given if snapshot else frozenset()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # one import at a time per schema (until commit): new rows are COPYed in, so a
            # second import must see the first's rows as stored, not collide with them
            # (SQLite's write lock does the same for its file)
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:prefix || current_schema()))"),
                {"prefix": _IMPORT_LOCK},
            )
        for name, spec in TABLES.items():
            frame = bundle.tables.get(name)
            if frame is None:
                frame = spec.empty_frame()
            counts[name] = import_table(connection, spec, frame, now, name in replaced)
        _refuse_overlapping_coverages(connection, now)
        summary = ImportSummary(str(uuid.uuid4()), bundle.source, now, counts, snapshot)
        connection.execute(
            sa.insert(ImportRecord),
            [
                {
                    "import_id": summary.import_id,
                    "created_at": now,
                    "source": summary.source,
                    "row_counts": {name: frame.height for name, frame in bundle.tables.items()},
                    "table_counts": {n: c.as_dict() for n, c in counts.items()},
                    "inserted": summary.inserted,
                    "updated": summary.updated,
                    "unchanged": summary.unchanged,
                }
            ],
        )
    return summary


def import_table(
    connection: Connection,
    spec: SpecTable,
    frame: pl.DataFrame,
    now: dt.datetime,
    replace: bool = False,
) -> TableImportCounts:
    """Write one table; with ``replace`` retire the current stored rows it lacks."""
    if frame.height == 0 and not replace:
        return TableImportCounts()
    table = INTERCHANGE_TABLES[spec.name]
    key = primary_key_columns(spec)
    rows, duplicates = codec.to_store_frame(spec, frame)

    key_dtypes = {k: rows.schema[k] for k in key}
    retired_flag = sa.case((table.c[RETIRED_AT].is_(None), 0), else_=1)
    stored = bulk.select_frame(
        connection,
        sa.select(*(table.c[k] for k in key), table.c[ROW_HASH], retired_flag),
        {**key_dtypes, _STORED_HASH: pl.String(), _STORED_RETIRED: pl.Int64()},
    )
    stamps = (
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias(IMPORTED_AT),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(RETIRED_AT),
    )
    if not stored.height:
        # a first import of the table: every row is new (no join, no copy of the table),
        # and each slice's digests are made as it is written (on PostgreSQL while the
        # server stores the slices before it)
        with_hash = functools.partial(codec.with_row_hash, spec)
        with bulk.primary_key_built_after(connection, table, rows.height):
            bulk.insert_rows(connection, table, rows.with_columns(*stamps), key, with_hash)
        return TableImportCounts(inserted=rows.height, duplicates=duplicates)
    rows = codec.with_row_hash(spec, rows).join(
        stored, on=list(key), how="left", maintain_order="left"
    )
    is_new = pl.col(_STORED_HASH).is_null()
    was_retired = pl.col(_STORED_RETIRED) == 1
    is_changed = is_new.not_() & ((pl.col(_STORED_HASH) != pl.col(ROW_HASH)) | was_retired)
    inserted, updated, restored = rows.select(
        is_new.sum().alias("inserted"),
        is_changed.sum().alias("updated"),
        (is_new.not_() & was_retired).sum().alias("restored"),
    ).row(0)

    written = pl.exclude(_STORED_HASH, _STORED_RETIRED)
    new_rows = rows if inserted == rows.height else rows.filter(is_new)  # all new: no copy
    bulk.insert_rows(connection, table, new_rows.select(written, *stamps), key)
    del new_rows
    bulk.upsert_rows(connection, table, rows.filter(is_changed).select(written, *stamps), key)
    retired = 0
    if replace:
        gone = stored.filter(pl.col(_STORED_RETIRED) == 0).join(
            rows.select(key), on=list(key), how="anti"
        )
        retired = gone.height
        _retire(connection, table, gone.select(key), now)
    return TableImportCounts(
        inserted=inserted,
        updated=updated,
        unchanged=rows.height - inserted - updated,
        duplicates=duplicates,
        retired=retired,
        restored=restored,
    )


def load_bundle(engine: Engine, source: str, tables: Collection[str] | None = None) -> Bundle:
    """Every current stored row as a typed bundle (extra columns restored from ``extra``).

    With ``tables``, only those tables are read; the others come back empty (for a
    reader that needs a few small tables of a large store, such as the claim edits).
    Retired rows (a snapshot import no longer held them) are left out. Rows come
    sorted by their id or natural key. Extra columns come back with JSON types
    (text, integer, float, boolean); dates and the like in them as text.
    """
    in_key_order = engine.dialect.name == "postgresql"
    selects = {
        name: (_current(name, [*spec.column_names, EXTRA], in_key_order), codec.stored_schema(spec))
        for name, spec in TABLES.items()
        if tables is None or name in tables
    }
    frames = whole_store.read_whole_store(
        engine, selects, lambda name, stored: codec.from_frame(TABLES[name], stored)
    )
    return Bundle.from_frames(frames, source=source)


def current_rows(engine: Engine, name: str, columns: Sequence[str]) -> pl.DataFrame:
    """``columns`` of the current (not retired) stored rows of one interchange table.

    Typed as the bundle types them (list columns as their ``;``-joined text). What
    ``billing import`` checks an incremental bundle's references against.
    """
    dtypes = codec.store_dtypes(TABLES[name])
    with engine.connect() as connection:
        return bulk.select_frame(
            connection, _current(name, columns), {c: dtypes[c] for c in columns}
        )


def _current(name: str, columns: Sequence[str], in_key_order: bool = False) -> sa.Select[Any]:
    """`columns` of the current (not retired) rows of one interchange table; with
    `in_key_order`, a table of a one-column key ordered by it.

    PostgreSQL's heap is not in the order rows were written (a row that fits goes to an
    earlier page with room), so the encounters of a sorted export come back out of
    order and ``codec.from_frame`` would sort them (a million patients' store read in
    35.0 s / 9.5 GB that way, 28.2 s / 4.5 GB in key order); the key's index walks them
    in order for ~10 % more of the server's time. ``from_frame`` still checks the order
    (a collation other than the bytes' is sorted again)."""
    table = INTERCHANGE_TABLES[name]
    select = sa.select(*(table.c[c] for c in columns)).where(table.c[RETIRED_AT].is_(None))
    key = list(table.primary_key.columns)
    return select.order_by(*key) if in_key_order and len(key) == 1 else select


def retired_rows(engine: Engine, name: str) -> pl.DataFrame:
    """The retired rows of one interchange table: spec columns (as ``current_rows``
    types them) and ``retired_at`` (UTC)."""
    spec, table = TABLES[name], INTERCHANGE_TABLES[name]
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(*(table.c[c] for c in spec.column_names), table.c[RETIRED_AT]).where(
                table.c[RETIRED_AT].is_not(None)
            )
        ).all()
    frame = pl.DataFrame([row[:-1] for row in rows], schema=codec.store_dtypes(spec), orient="row")
    stamps = pl.Series(RETIRED_AT, [as_utc(row[-1]) for row in rows], pl.Datetime("us", "UTC"))
    return frame.with_columns(stamps)


def import_records(engine: Engine) -> list[dict[str, Any]]:
    """Every import, oldest first."""
    with Session(engine) as session:
        records = session.scalars(
            sa.select(ImportRecord).order_by(ImportRecord.created_at, ImportRecord.import_id)
        ).all()
        return [
            {
                "import_id": r.import_id,
                "created_at": as_utc(r.created_at),
                "source": r.source,
                "row_counts": dict(r.row_counts),
                "table_counts": {k: dict(v) for k, v in r.table_counts.items()},
                "inserted": r.inserted,
                "updated": r.updated,
                "unchanged": r.unchanged,
            }
            for r in records
        ]
