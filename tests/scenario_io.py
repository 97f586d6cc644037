"""Write a scenario's tables (as in /work/shared/scenarios/public.yaml) as a CSV bundle.

Per the scenarios' README: one ``<table>.csv`` per table, header = the keys used in
that table's rows (in order of first use), booleans ``true``/``false``, a missing key
or ``None`` an empty cell, numbers as their text, dates ISO, lists ``;``-joined.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

CCM_RULE_CASES = Path(__file__).resolve().parent / "rule_cases" / "ccm.yaml"


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


def write_ccm_case_bundle(folder: Path, entries: list[dict[str, Any]], **extra: Any) -> Path:
    """The CCM rule cases' base practice (P1, Medicare, DR_A) plus `entries`."""
    doc = yaml.safe_load(CCM_RULE_CASES.read_text(encoding="utf-8"))
    tables: dict[str, list[dict[str, Any]]] = copy.deepcopy(doc["base"])
    defaults = doc["defaults"]["encounters"]
    tables["encounters"] += [{**defaults, **entry} for entry in entries]
    for name, rows in extra.items():
        tables[name] = tables.get(name, []) + rows
    write_scenario_bundle(tables, folder)
    return folder
