"""CLI commands: ``billing import BUNDLE [--snapshot] [--db URL]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import click
import polars as pl

from cli.cmd_evaluate import input_limits, settings_option
from cli.options import db_option

if TYPE_CHECKING:  # the store (SQLAlchemy, its models) loads only when a command opens it
    from billing_engine.store import ImportSummary, Store


def format_summary(summary: ImportSummary) -> list[str]:
    """The per-table lines printed after an import (tables without rows are left out).

    A snapshot import adds a ``retired`` column: the stored rows it no longer holds.
    """
    retired = summary.snapshot
    header = f"{'table':<16}{'inserted':>10}{'updated':>10}{'unchanged':>11}"
    lines = [header + (f"{'retired':>9}" if retired else "")]
    for name, counts in summary.tables.items():
        if counts.inserted or counts.updated or counts.unchanged or counts.retired:
            line = f"{name:<16}{counts.inserted:>10}{counts.updated:>10}{counts.unchanged:>11}"
            if retired:
                line += f"{counts.retired:>9}"
            if counts.duplicates:
                line += f"  ({counts.duplicates} repeated key(s): last row kept)"
            if counts.restored:
                line += f"  ({counts.restored} retired row(s) current again)"
            lines.append(line)
    total = f"{'total':<16}{summary.inserted:>10}{summary.updated:>10}{summary.unchanged:>11}"
    lines.append(total + (f"{summary.retired:>9}" if retired else ""))
    return lines


class _StoreOnDemand:
    """The store, opened the first time it is needed (a refused bundle never opens it).

    ``current_rows`` is what ingest checks an incremental bundle against; a SQLite
    store whose file does not exist yet holds nothing and is not created for asking.
    """

    def __init__(self, db_url: str | None) -> None:
        self._db_url = db_url
        self._store: Store | None = None

    def store(self) -> Store:
        if self._store is None:
            from billing_engine.store import Store

            self._store = Store.open(self._db_url)
        return self._store

    def _exists(self) -> bool:
        if self._store is not None:
            return True
        from sqlalchemy.engine import make_url

        from billing_engine.store import default_db_url

        url = make_url(self._db_url or default_db_url())
        return url.get_backend_name() != "sqlite" or Path(url.database or "").is_file()

    def current_rows(self, table: str, columns: Sequence[str]) -> pl.DataFrame:
        if not self._exists():
            from billing_engine.io.schema import TABLES

            return pl.DataFrame(schema={c: TABLES[table].column(c).dtype for c in columns})
        return self.store().current_rows(table, columns)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            self._store.close()


@click.command("import")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--snapshot",
    is_flag=True,
    help=(
        "Each table in BUNDLE is complete: stored rows of those tables that BUNDLE no "
        "longer holds are retired (kept, never evaluated). Tables absent from BUNDLE "
        "are untouched."
    ),
)
@db_option
@settings_option
def import_command(
    bundle: Path, snapshot: bool, db_url: str | None, settings_path: Path | None
) -> None:
    """Import BUNDLE (CSV/Parquet folder or .xlsx) into the database.

    The whole bundle is checked first, against itself and the stored records (an
    incremental bundle of late encounters may name stored patients and practitioners);
    a bundle with input errors is refused and nothing is written. Records are matched
    by id or natural key: new ones are inserted, changed ones updated; records absent
    from BUNDLE are kept, or retired with --snapshot. The ``ingest.*`` entries of
    --settings override the input limits; others are ignored.
    """
    from billing_engine.io.ingest import read_bundle  # lazy: only this command needs it
    from cli.progress import steps

    names = ["read and check the bundle", "write it to the store"]
    with _StoreOnDemand(db_url) as on_demand, steps(names) as progress:
        progress.step(names[0])
        data = read_bundle(
            bundle,
            input_limits(settings_path),
            stored=on_demand.current_rows,
            snapshot=snapshot,
        )
        progress.step(names[1])
        store = on_demand.store()
        summary = store.import_bundle(data, snapshot=snapshot)
        location = store.url
    kind = "snapshot " if snapshot else ""
    click.echo(f"imported {kind}{bundle} into {location}")
    for line in format_summary(summary):
        click.echo(line)


COMMANDS: list[click.Command] = [import_command]
