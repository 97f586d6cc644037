"""Write a scenario's tables (as in /work/shared/scenarios/public.yaml) as a CSV bundle.

Per the scenarios' README: one ``<table>.csv`` per table, header = the keys used in
that table's rows (in order of first use), booleans ``true``/``false``, a missing key
or ``None`` an empty cell, numbers as their text, dates ISO, lists ``;``-joined.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path


def cell_text(value: object) -> str:
    """One scenario value as the text of its CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat() if isinstance(value, dt.date) else value.strftime("%H:%M")
    if isinstance(value, list | tuple):
        return ";".join(cell_text(item) for item in value)
    return str(value)


def write_scenario_bundle(
    tables: Mapping[str, Sequence[Mapping[str, object]]], folder: Path
) -> None:
    """Write each table of ``tables`` as ``folder/<table>.csv`` (the folder is created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        header = list(dict.fromkeys(key for row in rows for key in row))
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow([cell_text(row.get(key)) for key in header])
