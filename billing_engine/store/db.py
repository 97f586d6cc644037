"""The store: imported bundles and evaluation runs in SQLite or PostgreSQL.

Where the database is
    ``Store.open(url)`` takes an SQLAlchemy URL (``sqlite:///path/billing.db``,
    ``postgresql+psycopg://user:password@host:5432/dbname``). Without one it uses
    ``default_db_url()``: the ``BILLING_DB`` environment variable when set, else
    ``sqlite:///$XDG_DATA_HOME/billing-engine/billing.db`` where ``XDG_DATA_HOME``
    defaults to ``~/.local/share`` (the folder is created when missing). The
    ``billing import`` command takes ``--db URL`` or the same ``BILLING_DB`` variable.

Schema
    Opening a store runs the alembic migrations in ``billing_engine/store/migrations``
    up to head, from code (no ``alembic.ini`` needed). The tables are described in
    ``billing_engine.store.models``.

Imports
    ``Store.import_bundle`` writes a whole bundle in ONE transaction: every table or
    nothing. A row is identified by its table's id or natural key (see ``models``); a
    row already stored with the same values is left alone ("unchanged"), a row with the
    same identity and other values is replaced ("updated") and a new identity is
    inserted. Rows absent from a later export are kept, unless the import is a
    snapshot (``snapshot=True``, ``billing import --snapshot``): then each table the
    bundle holds is the full truth and its stored rows the bundle lacks are retired
    (``retired_at`` set: kept for history, never loaded for evaluation); tables the
    bundle does not hold are untouched. A retired row that a later import holds again
    becomes current ("updated", counted as restored). Writes are batched dialect
    upserts (``INSERT ... ON CONFLICT DO UPDATE``). No import leaves two current
    coverages of one patient and payer whose dates overlap: such an import is refused.

Migrations on PostgreSQL take a transaction-scoped advisory lock first, so two
processes opening a fresh database at once migrate it one after the other (the second
finds it at head); SQLite serializes writers itself.

Fee files
    ``Store.import_pfs`` / ``Store.import_gpci`` store the normalized CMS frames of
    ``billing_engine.io.cms_files`` in ``fee_rvu`` / ``fee_gpci``. A release replaces, in ONE
    transaction, every stored row of the same (year, effective date, QP flag) for the RVU
    file, of the same year for the GPCIs; other years and effective dates are kept.
    ``Store.fee_tables`` reads them back typed; ``Store.fee_releases`` lists what is stored.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import polars as pl
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from billing_engine.calendar import Month
from billing_engine.errors import BillingError, ConfigError, StoreMissing
from billing_engine.io.bundle import Bundle
from billing_engine.io.cms_files import GPCI_COLUMNS, GPCI_SCHEMA, PFS_COLUMNS, PFS_SCHEMA
from billing_engine.io.overlap import overlapping_coverages
from billing_engine.io.schema import TABLES
from billing_engine.io.schema import Table as SpecTable
from billing_engine.store import codec
from billing_engine.store.models import (
    EXTRA,
    FEE_GPCI_TABLE,
    FEE_RVU_TABLE,
    IMPORTED_AT,
    INTERCHANGE_TABLES,
    RETIRED_AT,
    ROW_HASH,
    EvaluationRun,
    ImportRecord,
    primary_key_columns,
)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
BATCH_ROWS = 10_000  # rows per executemany call
_STORED_HASH = "__stored_hash"
_STORED_RETIRED = "__stored_retired"
# pg_advisory_xact_lock key space of the store's migrations (one lock per schema)
_MIGRATION_LOCK = "billing_engine.store.migrate:"
PFS_RELEASE_KEY = ("year", "effective_from", "qp")
GPCI_RELEASE_KEY = ("year",)


class StoreError(BillingError):
    """The database cannot be opened or used."""


def default_db_url() -> str:
    """``BILLING_DB`` if set, else the SQLite file under ``$XDG_DATA_HOME/billing-engine``."""
    configured = os.environ.get("BILLING_DB")
    if configured:
        return configured
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if data_home and Path(data_home).is_absolute() else None
    if base is None:
        base = Path.home() / ".local" / "share"
    folder = base / "billing-engine"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'billing.db'}"


def display_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An alembic ``Config`` built in code; works from an installed package.

    ``connection`` (preferred) makes ``env.py`` run on it; otherwise ``url`` is used.
    Developers write a new revision with
    ``command.revision(alembic_config(url), autogenerate=True, message=...)``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy emit BEGIN itself so that reads and DDL are transactional too
    dbapi_connection.isolation_level = None


def _sqlite_on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def create_store_engine(url: str) -> Engine:
    """An engine for a supported database, with SQLite made fully transactional."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {display_url(url)}") from exc
    if backend not in SUPPORTED_DIALECTS:
        raise StoreError(f"unsupported database {backend!r}; use SQLite or PostgreSQL")
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"not a usable database URL {display_url(url)!r}: {exc}") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest migration.

    On PostgreSQL the migration runs under a transaction-scoped advisory lock keyed by
    the current schema: a second process opening the same fresh database waits, then
    alembic reads the version table again and finds it at head (no duplicate
    ``alembic_version`` row, no half-created tables). The lock ends with the transaction.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:prefix || current_schema()))"),
                {"prefix": _MIGRATION_LOCK},
            )
        command.upgrade(alembic_config(connection=connection), "head")


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


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's message, on one line."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())


def _refuse_missing_sqlite_file(url: str) -> None:
    """``StoreMissing`` when `url` names a SQLite file that does not exist (connecting
    would create it)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # create_store_engine reports it
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    if not Path(database).expanduser().exists():
        raise StoreMissing(
            f"no store at {display_url(url)}: the file {database} does not exist; "
            "import a bundle first (billing import BUNDLE --db URL) or name the store "
            "with --db / BILLING_DB"
        )


def _refuse_a_database_without_a_store(engine: Engine, url: str) -> None:
    """``StoreMissing`` when the database holds no store (it was never migrated)."""
    with engine.connect() as connection:
        present = sa.inspect(connection).has_table("alembic_version")
    if not present:
        raise StoreMissing(
            f"{display_url(url)} holds no store (no tables); "
            "import a bundle first (billing import BUNDLE --db URL)"
        )


def _is_canonical_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _upsert(connection: Connection, table: sa.Table, key: tuple[str, ...]) -> sa.Executable:
    if connection.dialect.name == "postgresql":
        pg_stmt = postgresql.insert(table)
        pg_set = {c.name: pg_stmt.excluded[c.name] for c in table.columns if c.name not in key}
        return pg_stmt.on_conflict_do_update(index_elements=list(key), set_=pg_set)
    lite_stmt = sqlite.insert(table)
    lite_set = {c.name: lite_stmt.excluded[c.name] for c in table.columns if c.name not in key}
    return lite_stmt.on_conflict_do_update(index_elements=list(key), set_=lite_set)


def _current_rows(engine: Engine, name: str, columns: Sequence[str]) -> pl.DataFrame:
    spec, table = TABLES[name], INTERCHANGE_TABLES[name]
    dtypes = codec.store_dtypes(spec)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(*(table.c[c] for c in columns)).where(table.c[RETIRED_AT].is_(None))
        ).all()
    return pl.DataFrame(rows, schema={c: dtypes[c] for c in columns}, orient="row")


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
    for batch in renamed.iter_slices(BATCH_ROWS):
        connection.execute(statement, batch.to_dicts())


_COVERAGE_COLUMNS = ("patient_id", "payer_id", "start_date", "end_date")


def _refuse_overlapping_coverages(connection: Connection, now: dt.datetime) -> None:
    """Raise ``StoreError`` when a coverage written at ``now`` overlaps another current one
    of the same patient and payer (the import is then rolled back)."""
    table = INTERCHANGE_TABLES["coverages"]
    written = table.c[IMPORTED_AT] == now
    patients = sa.select(table.c.patient_id).where(written, table.c[RETIRED_AT].is_(None))
    rows = connection.execute(
        sa.select(*(table.c[c] for c in _COVERAGE_COLUMNS), written.label("written")).where(
            table.c[RETIRED_AT].is_(None), table.c.patient_id.in_(patients)
        )
    ).all()
    if not rows:
        return
    dtypes = codec.store_dtypes(TABLES["coverages"])
    frame = pl.DataFrame(
        rows,
        schema={**{c: dtypes[c] for c in _COVERAGE_COLUMNS}, "written": pl.Boolean()},
        orient="row",
    )
    pairs = overlapping_coverages(frame.filter("written"), frame)
    if pairs.height:
        first = pairs.row(0, named=True)
        raise StoreError(
            f"coverages: the coverage of patient {first['patient_id']} with payer "
            f"{first['payer_id']} from {first['start_date']} overlaps the one from "
            f"{first['other_start_date']} ({pairs.height} such pair(s)); end the stored "
            "coverage (end_date) or import the coverages as a snapshot"
        )


class Store:
    """A database holding imported bundles and the record of evaluation runs."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True) -> Store:
        """Connect and migrate to the newest schema; ``None`` means ``default_db_url()``.

        With ``create=False`` (the reading commands) a store that does not exist yet is
        refused with ``StoreMissing`` and nothing is created: a SQLite file that is
        missing, or a database without the store's tables.
        """
        url = url or default_db_url()
        if not create:
            _refuse_missing_sqlite_file(url)
        engine = create_store_engine(url)
        try:
            if not create:
                _refuse_a_database_without_a_store(engine, url)
            upgrade(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = _reason(exc)
            raise StoreError(f"cannot open the database {display_url(url)}: {reason}") from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- bundles ---------------------------------------------------------------------

    def import_bundle(self, bundle: Bundle, *, snapshot: bool = False) -> ImportSummary:
        """Insert or update every row of the bundle, all tables in one transaction.

        On any error the transaction is rolled back: the store is as it was before.
        Rows already stored with the same values are not written again. Stored rows
        that the bundle lacks are kept, or with ``snapshot`` retired in every table the
        bundle holds (``Bundle.given``). Database errors, and an import that would leave
        two overlapping current coverages of one patient and payer, are raised as
        ``StoreError``.
        """
        try:
            return self._import_bundle(bundle, snapshot)
        except SQLAlchemyError as exc:  # rolled back already
            raise StoreError(f"import into {self.url} failed: {_reason(exc)}") from exc

    def _import_bundle(self, bundle: Bundle, snapshot: bool) -> ImportSummary:
        now = dt.datetime.now(dt.UTC)
        counts: dict[str, TableImportCounts] = {}
        replaced = bundle.given if snapshot else frozenset()
        with self._engine.begin() as connection:
            for name, spec in TABLES.items():
                frame = bundle.tables.get(name)
                if frame is None:
                    frame = spec.empty_frame()
                counts[name] = self._import_table(connection, spec, frame, now, name in replaced)
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

    def _import_table(
        self,
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
        stored = pl.DataFrame(
            connection.execute(
                sa.select(*(table.c[k] for k in key), table.c[ROW_HASH], retired_flag)
            ).all(),
            schema={**key_dtypes, _STORED_HASH: pl.String(), _STORED_RETIRED: pl.Int8()},
            orient="row",
        )
        rows = rows.join(stored, on=list(key), how="left", maintain_order="left")
        is_new = pl.col(_STORED_HASH).is_null()
        was_retired = pl.col(_STORED_RETIRED) == 1
        is_changed = is_new.not_() & ((pl.col(_STORED_HASH) != pl.col(ROW_HASH)) | was_retired)
        inserted, updated, restored = rows.select(
            is_new.sum().alias("inserted"),
            is_changed.sum().alias("updated"),
            (is_new.not_() & was_retired).sum().alias("restored"),
        ).row(0)

        to_write = rows.filter(is_new | is_changed).select(
            pl.exclude(_STORED_HASH, _STORED_RETIRED),
            pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias(IMPORTED_AT),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(RETIRED_AT),
        )
        if to_write.height:
            statement = _upsert(connection, table, key)
            for batch in to_write.iter_slices(BATCH_ROWS):
                connection.execute(statement, batch.to_dicts())
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

    def load_bundle(self) -> Bundle:
        """Every current stored row as a typed bundle (extra columns restored from ``extra``).

        Retired rows (a snapshot import no longer held them) are left out. Rows come
        sorted by their id or natural key. Extra columns come back with JSON types
        (text, integer, float, boolean); dates and the like in them as text.
        """
        frames: dict[str, pl.DataFrame] = {}
        with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # one snapshot for all tables, even while an import commits
                connection.execution_options(isolation_level="REPEATABLE READ")
            for name, spec in TABLES.items():
                table = INTERCHANGE_TABLES[name]
                columns = [table.c[c] for c in spec.column_names]
                rows = connection.execute(
                    sa.select(*columns, table.c[EXTRA]).where(table.c[RETIRED_AT].is_(None))
                ).all()
                frames[name] = codec.from_rows(spec, rows)
        return Bundle.from_frames(frames, source=self.url)

    def current_rows(self, name: str, columns: Sequence[str]) -> pl.DataFrame:
        """``columns`` of the current (not retired) stored rows of one interchange table.

        Typed as the bundle types them (list columns as their ``;``-joined text). What
        ``billing import`` checks an incremental bundle's references against.
        """
        return _current_rows(self._engine, name, columns)

    def retired_rows(self, name: str) -> pl.DataFrame:
        """The retired rows of one interchange table: spec columns (as ``current_rows``
        types them) and ``retired_at`` (UTC)."""
        spec, table = TABLES[name], INTERCHANGE_TABLES[name]
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(*(table.c[c] for c in spec.column_names), table.c[RETIRED_AT]).where(
                    table.c[RETIRED_AT].is_not(None)
                )
            ).all()
        frame = pl.DataFrame(
            [row[:-1] for row in rows], schema=codec.store_dtypes(spec), orient="row"
        )
        stamps = pl.Series(RETIRED_AT, [_utc(row[-1]) for row in rows], pl.Datetime("us", "UTC"))
        return frame.with_columns(stamps)

    def imports(self) -> list[dict[str, Any]]:
        """Every import, oldest first."""
        with Session(self._engine) as session:
            records = session.scalars(
                sa.select(ImportRecord).order_by(ImportRecord.created_at, ImportRecord.import_id)
            ).all()
            return [
                {
                    "import_id": r.import_id,
                    "created_at": _utc(r.created_at),
                    "source": r.source,
                    "row_counts": dict(r.row_counts),
                    "table_counts": {k: dict(v) for k, v in r.table_counts.items()},
                    "inserted": r.inserted,
                    "updated": r.updated,
                    "unchanged": r.unchanged,
                }
                for r in records
            ]

    # -- evaluation runs -------------------------------------------------------------

    def record_run(
        self,
        month: str,
        as_of: dt.date,
        rule_set_version: str,
        input_row_counts: dict[str, int],
        line_count: int,
        gap_count: int,
        source: str,
        run_id: str | None = None,
        *,
        allow_unverified: bool = False,
        unverified_parameters: Iterable[str] | None = None,
    ) -> str:
        """Record one evaluation run; returns its ``run_id`` (a UUID).

        `run_id` is the id the run's outputs already carry (``billing evaluate`` makes
        it before writing); without it a new one is made. The commands record a run
        only after its outputs are in place, so a recorded run always has outputs; a
        run killed in between leaves outputs whose manifest names a run id and store
        that the store does not list, which is visible, never silent.
        ``allow_unverified`` records a run made with ``--allow-unverified`` and
        ``unverified_parameters`` the parameters it used past their verified date.
        """
        try:
            canonical = str(Month.parse(month)) == month
        except ConfigError:
            canonical = False
        if not canonical:
            raise ValueError(f"month must be YYYY-MM, not {month!r}")
        if run_id is None:
            run_id = str(uuid.uuid4())
        elif not _is_canonical_uuid(run_id):
            raise ValueError(f"run_id must be a UUID in canonical form, not {run_id!r}")
        run = EvaluationRun(
            run_id=run_id,
            month=month,
            as_of=as_of,
            created_at=dt.datetime.now(dt.UTC),
            rule_set_version=rule_set_version,
            input_row_counts={str(k): int(v) for k, v in input_row_counts.items()},
            line_count=line_count,
            gap_count=gap_count,
            source=source,
            allow_unverified=allow_unverified,
            unverified_parameters=(
                sorted(unverified_parameters) if unverified_parameters is not None else None
            ),
        )
        try:
            with Session(self._engine) as session, session.begin():
                session.add(run)
        except SQLAlchemyError as exc:  # rolled back already
            reason = _reason(exc)
            raise StoreError(f"recording run {run_id} in {self.url} failed: {reason}") from exc
        return run_id

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded evaluation run, oldest first."""
        with Session(self._engine) as session:
            records = session.scalars(
                sa.select(EvaluationRun).order_by(EvaluationRun.created_at, EvaluationRun.run_id)
            ).all()
            return [
                {
                    "run_id": r.run_id,
                    "month": r.month,
                    "as_of": r.as_of,
                    "created_at": _utc(r.created_at),
                    "rule_set_version": r.rule_set_version,
                    "input_row_counts": dict(r.input_row_counts),
                    "line_count": r.line_count,
                    "gap_count": r.gap_count,
                    "source": r.source,
                    "allow_unverified": bool(r.allow_unverified),
                    "unverified_parameters": list(r.unverified_parameters or []),
                }
                for r in records
            ]

    # -- CMS fee files ---------------------------------------------------------------

    def import_pfs(self, frame: pl.DataFrame) -> int:
        """Store RVU rows (``cms_files.PFS_COLUMNS``); returns the number of rows written.

        Every stored row of each (year, effective_from, qp) in ``frame`` is replaced, all
        in one transaction: on any error nothing changes.
        """
        return self._import_fees(FEE_RVU_TABLE, frame, PFS_SCHEMA, PFS_RELEASE_KEY)

    def import_gpci(self, frame: pl.DataFrame) -> int:
        """Store GPCI rows (``cms_files.GPCI_COLUMNS``); replaces each year in ``frame``."""
        return self._import_fees(FEE_GPCI_TABLE, frame, GPCI_SCHEMA, GPCI_RELEASE_KEY)

    def _import_fees(
        self,
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
            with self._engine.begin() as connection:
                for release in releases.iter_rows(named=True):
                    connection.execute(
                        sa.delete(table).where(
                            *(table.c[name] == value for name, value in release.items())
                        )
                    )
                statement = sa.insert(table)
                for batch in to_write.iter_slices(BATCH_ROWS):
                    connection.execute(statement, batch.to_dicts())
        except SQLAlchemyError as exc:  # rolled back already
            raise StoreError(f"fee import into {self.url} failed: {_reason(exc)}") from exc
        return rows.height

    def fee_tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Every stored (RVU, GPCI) row, typed as ``PFS_SCHEMA`` / ``GPCI_SCHEMA``.

        Sorted by year, effective date, QP flag, code and modifier / year and locality.
        """
        rvu, gpci = FEE_RVU_TABLE, FEE_GPCI_TABLE
        with self._engine.connect() as connection:
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

    def fee_releases(self) -> list[dict[str, Any]]:
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
        with self._engine.connect() as connection:
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
                            "imported_at": _utc(row[IMPORTED_AT]),
                        }
                    )
        return out
