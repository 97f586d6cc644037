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
    ``billing_engine.io.cms_pfs`` / ``cms_gpci`` in ``fee_rvu`` / ``fee_gpci``. A
    release replaces, in ONE transaction, every stored row of the same (year, effective
    date, QP flag) for the RVU file, of the same year for the GPCIs; other years and
    effective dates are kept. ``Store.fee_tables`` reads them back typed;
    ``Store.fee_releases`` lists what is stored.

This module is the ``Store`` itself: opening (``billing_engine.store.connect``: the URL,
the engine, the migrations) and the methods, each handing over to the module of what it
does: ``bundles`` (imports and reads of interchange rows), ``runs`` (evaluation runs) and
``fees`` (the CMS fee files).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import polars as pl
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from billing_engine.io.bundle import Bundle
from billing_engine.io.cms_gpci import GPCI_SCHEMA
from billing_engine.io.cms_pfs import PFS_SCHEMA
from billing_engine.store import (  # every model module: the metadata is whole here
    bundles,
    close_models,  # noqa: F401  (the close tables join the metadata)
    fees,
    runs,
    user_models,  # noqa: F401  (the users table joins the metadata)
)
from billing_engine.store.bundles import ImportSummary
from billing_engine.store.connect import (
    StoreError,
    create_store_engine,
    display_url,
    driver_reason,
    refuse_a_database_without_a_store,
    refuse_missing_sqlite_file,
    upgrade,
)
from billing_engine.store.location import default_db_url
from billing_engine.store.models import FEE_GPCI_TABLE, FEE_RVU_TABLE


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
            refuse_missing_sqlite_file(url)
        engine = create_store_engine(url)
        try:
            if not create:
                refuse_a_database_without_a_store(engine, url)
            upgrade(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = driver_reason(exc)
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
            return bundles.import_bundle(self._engine, bundle, snapshot)
        except SQLAlchemyError as exc:  # rolled back already
            raise StoreError(f"import into {self.url} failed: {driver_reason(exc)}") from exc

    def load_bundle(self, tables: Collection[str] | None = None) -> Bundle:
        """Every current stored row as a typed bundle (extra columns restored from ``extra``).

        With ``tables``, only those are read; the other tables come back empty.
        Retired rows (a snapshot import no longer held them) are left out. Rows come
        sorted by their id or natural key. Extra columns come back with JSON types
        (text, integer, float, boolean); dates and the like in them as text.
        """
        return bundles.load_bundle(self._engine, self.url, tables)

    def current_rows(self, name: str, columns: Sequence[str]) -> pl.DataFrame:
        """``columns`` of the current (not retired) stored rows of one interchange table.

        Typed as the bundle types them (list columns as their ``;``-joined text). What
        ``billing import`` checks an incremental bundle's references against.
        """
        return bundles.current_rows(self._engine, name, columns)

    def retired_rows(self, name: str) -> pl.DataFrame:
        """The retired rows of one interchange table: spec columns (as ``current_rows``
        types them) and ``retired_at`` (UTC)."""
        return bundles.retired_rows(self._engine, name)

    def imports(self) -> list[dict[str, Any]]:
        """Every import, oldest first."""
        return bundles.import_records(self._engine)

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
        return runs.record_run(
            self._engine,
            self.url,
            month,
            as_of,
            rule_set_version,
            input_row_counts,
            line_count,
            gap_count,
            source,
            run_id,
            allow_unverified=allow_unverified,
            unverified_parameters=unverified_parameters,
        )

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded evaluation run, oldest first."""
        return runs.recorded_runs(self._engine)

    # -- CMS fee files ---------------------------------------------------------------

    def import_pfs(self, frame: pl.DataFrame) -> int:
        """Store RVU rows (``cms_pfs.PFS_COLUMNS``); returns the number of rows written.

        Every stored row of each (year, effective_from, qp) in ``frame`` is replaced, all
        in one transaction: on any error nothing changes.
        """
        return fees.import_fees(
            self._engine, self.url, FEE_RVU_TABLE, frame, PFS_SCHEMA, fees.PFS_RELEASE_KEY
        )

    def import_gpci(self, frame: pl.DataFrame) -> int:
        """Store GPCI rows (``cms_gpci.GPCI_COLUMNS``); replaces each year in ``frame``."""
        return fees.import_fees(
            self._engine, self.url, FEE_GPCI_TABLE, frame, GPCI_SCHEMA, fees.GPCI_RELEASE_KEY
        )

    def fee_tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Every stored (RVU, GPCI) row, typed as ``PFS_SCHEMA`` / ``GPCI_SCHEMA``.

        Sorted by year, effective date, QP flag, code and modifier / year and locality.
        """
        return fees.fee_tables(self._engine)

    def fee_releases(self) -> list[dict[str, Any]]:
        """What fee data is stored: one entry per RVU (year, effective_from, qp) and GPCI year.

        Keys: kind (``pfs`` / ``gpci``), year, effective_from and qp (None for GPCIs),
        release, source_file, rows, imported_at (UTC). RVU releases first, each kind by
        year (and effective date, QP flag).
        """
        return fees.fee_releases(self._engine)
