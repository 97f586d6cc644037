"""Where the store is and how to reach it: its URL, its engine, its migrations.

``default_db_url()`` is ``BILLING_DB`` when set, else a SQLite file under
``$XDG_DATA_HOME/billing-engine``; ``create_store_engine`` makes SQLite fully
transactional; ``upgrade`` runs the alembic migrations of ``billing_engine/store/migrations``
from code, under an advisory lock on PostgreSQL. ``write_batches`` is how every write
of many rows goes (``BATCH_ROWS`` per ``executemany`` call).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from billing_engine.errors import BillingError, StoreMissing

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
BATCH_ROWS = 10_000  # rows per executemany call
# pg_advisory_xact_lock key space of the store's migrations (one lock per schema)
_MIGRATION_LOCK = "billing_engine.store.migrate:"
# the newest migration (tests/test_store.py holds it to alembic's head): a store already
# there opens without loading alembic, ~0.2 s of every store command
HEAD_REVISION = "0005_users"


class StoreError(BillingError):
    """The database cannot be opened or used."""


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
    from alembic.config import Config

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
    A store whose version table holds ``HEAD_REVISION`` alone is left as it is.
    """
    if _at_head(engine):
        return
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:prefix || current_schema()))"),
                {"prefix": _MIGRATION_LOCK},
            )
        command.upgrade(alembic_config(connection=connection), "head")


def _at_head(engine: Engine) -> bool:
    """Whether the store's version table names ``HEAD_REVISION`` and nothing else."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return False
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return list(versions.scalars()) == [HEAD_REVISION]


def write_batches(connection: Connection, statement: sa.Executable, rows: pl.DataFrame) -> None:
    """Execute ``statement`` with the rows of ``rows``, ``BATCH_ROWS`` at a time."""
    for batch in rows.iter_slices(BATCH_ROWS):
        connection.execute(statement, batch.to_dicts())


def driver_reason(exc: SQLAlchemyError) -> str:
    """The driver's message, on one line."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())


def refuse_missing_sqlite_file(url: str) -> None:
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


def refuse_a_database_without_a_store(engine: Engine, url: str) -> None:
    """``StoreMissing`` when the database holds no store (it was never migrated)."""
    with engine.connect() as connection:
        present = sa.inspect(connection).has_table("alembic_version")
    if not present:
        raise StoreMissing(
            f"{display_url(url)} holds no store (no tables); "
            "import a bundle first (billing import BUNDLE --db URL)"
        )


def as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
