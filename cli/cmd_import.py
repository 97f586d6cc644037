"""CLI commands: ``billing import BUNDLE [--db URL]``."""

from __future__ import annotations

from pathlib import Path

import click

from billing_engine.store import ImportSummary, Store
from cli.cmd_evaluate import input_limits, settings_option
from cli.options import db_option


def format_summary(summary: ImportSummary) -> list[str]:
    """The per-table lines printed after an import (tables without rows are left out)."""
    header = f"{'table':<16}{'inserted':>10}{'updated':>10}{'unchanged':>11}"
    lines = [header]
    for name, counts in summary.tables.items():
        if counts.inserted or counts.updated or counts.unchanged:
            line = f"{name:<16}{counts.inserted:>10}{counts.updated:>10}{counts.unchanged:>11}"
            if counts.duplicates:
                line += f"  ({counts.duplicates} repeated key(s): last row kept)"
            lines.append(line)
    lines.append(f"{'total':<16}{summary.inserted:>10}{summary.updated:>10}{summary.unchanged:>11}")
    return lines


@click.command("import")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@db_option
@settings_option
def import_command(bundle: Path, db_url: str | None, settings_path: Path | None) -> None:
    """Import BUNDLE (CSV/Parquet folder or .xlsx) into the database.

    The whole bundle is checked first; a bundle with input errors is refused and
    nothing is written. Records are matched by id or natural key: new ones are
    inserted, changed ones updated, records absent from BUNDLE are kept. The
    ``ingest.*`` entries of --settings override the input limits; others are ignored.
    """
    from billing_engine.ingest import read_bundle  # lazy: only this command needs it

    data = read_bundle(bundle, input_limits(settings_path))
    with Store.open(db_url) as store:
        summary = store.import_bundle(data)
        location = store.url
    click.echo(f"imported {bundle} into {location}")
    for line in format_summary(summary):
        click.echo(line)


COMMANDS: list[click.Command] = [import_command]
