"""A parameter or conflict file's own ``sources`` table: what each cited key stands for.

Each value of a ``parameters.yaml`` (and each row of ``conflicts.yaml``) cites source
keys; the file defines every key it cites (title, address, optional year), so its
provenance is checked inside the repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billing_engine.errors import ConfigError


@dataclass(frozen=True)
class Source:
    """One entry of a file's ``sources`` table: what a cited source key stands for."""

    key: str
    title: str
    address: str  # URL, repository path or legal citation
    year: str = ""


def read_sources(doc: Mapping[str, Any], path: Path) -> dict[str, Source]:
    """The ``sources`` table of a parameter or conflict file (key -> entry)."""
    table = doc.get("sources")
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'sources' must be a mapping of key -> {{title, address}}")
    out: dict[str, Source] = {}
    for key, entry in table.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("title"), str)
            or not isinstance(entry.get("address"), str)
            or not set(entry) <= {"title", "address", "year"}
        ):
            raise ConfigError(
                f"{path}: source {key!r} needs a 'title' and an 'address' (and may have a 'year')"
            )
        out[str(key)] = Source(
            str(key), entry["title"], entry["address"], str(entry.get("year", ""))
        )
    return out


def cited_keys(raw: object, where: str) -> tuple[str, ...]:
    """A ``source``/``sources`` entry as a tuple of keys: a key or a list of keys."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(k, str) for k in items):
        raise ConfigError(f"{where}: sources must be a list of source keys, got {raw!r}")
    return tuple(items)


def check_cited(keys: Iterable[str], sources: Mapping[str, Source], where: str) -> None:
    """Refuse a cited key the file's ``sources`` table does not define."""
    for key in keys:
        if key not in sources:
            raise ConfigError(
                f"{where}: source {key!r} is not defined in the file's 'sources' table"
            )
