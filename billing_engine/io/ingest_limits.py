"""The input limits a bundle is checked against when it is read (``ingest_limits.yaml``).

The values, their units and the reason for each default live in the YAML file next to
this module; nothing here holds a number. ``InputLimits.load()`` gives the shipped
defaults, optionally overridden by name (``ingest.max_encounter_minutes: 720``), which is
how ``billing import`` and ``billing evaluate BUNDLE`` apply a ``--settings FILE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from billing_engine.errors import ConfigError
from billing_engine.io import strict_yaml

LIMITS_FILE = Path(__file__).with_name("ingest_limits.yaml")
PREFIX = "ingest."
"""Settings whose name starts with this are input limits, not evaluation settings."""

ID_SUFFIX = "_id"
"""A column whose name ends with this is an identifier (``max_id_chars`` applies)."""

# (table, column) -> the limit that caps its whole-number value
MAX_VALUE_LIMITS: dict[tuple[str, str], str] = {
    ("encounters", "minutes"): "max_encounter_minutes",
}

# (table, column) of end dates that may lie far ahead ("until further notice", 9999-12-31):
# ``latest_date`` does not apply to them.
OPEN_ENDED_DATES: frozenset[tuple[str, str]] = frozenset(
    {
        ("coverages", "end_date"),
        ("attributions", "end_date"),
        ("fee_schedule", "effective_to"),
        ("payer_codes", "effective_to"),
        ("capitation", "effective_to"),
    }
)


@dataclass(frozen=True)
class InputLimits:
    """How far a bundle's values may go (see ``ingest_limits.yaml`` for each one's reason)."""

    earliest_date: dt.date
    latest_date: dt.date
    max_encounter_minutes: int
    max_cell_chars: int
    max_id_chars: int

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, path: Path = LIMITS_FILE
    ) -> InputLimits:
        """The limits in ``path``, with ``overrides`` (full ``ingest.<name>`` names) applied."""
        values = dict(_file_values(path))
        for name, value in (overrides or {}).items():
            key = name.removeprefix(PREFIX)
            if not name.startswith(PREFIX) or key not in values:
                known = ", ".join(PREFIX + k for k in values)
                raise ConfigError(f"unknown input limit {name!r} (known: {known})")
            values[key] = value
        limits = cls(**{f.name: _checked(f.name, values[f.name]) for f in fields(cls)})
        if limits.latest_date < limits.earliest_date:
            raise ConfigError(
                f"input limit {PREFIX}latest_date ({limits.latest_date}) is before "
                f"{PREFIX}earliest_date ({limits.earliest_date})"
            )
        return limits

    def max_value(self, table: str, column: str) -> int | None:
        """The largest whole number ``table.column`` may hold, when it is capped."""
        limit = MAX_VALUE_LIMITS.get((table, column))
        return None if limit is None else int(getattr(self, limit))


@lru_cache(maxsize=1)
def default_limits() -> InputLimits:
    """The shipped limits, loaded once per process."""
    return InputLimits.load()


def split_settings(settings: Mapping[str, Any]) -> tuple[InputLimits, dict[str, Any]]:
    """A ``--settings`` mapping split into the input limits and the evaluation settings."""
    limits = {k: v for k, v in settings.items() if k.startswith(PREFIX)}
    rest = {k: v for k, v in settings.items() if not k.startswith(PREFIX)}
    return (InputLimits.load(limits) if limits else default_limits()), rest


def _file_values(path: Path) -> dict[str, Any]:
    try:
        doc = strict_yaml.load_path(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the input limits: {exc}") from exc
    limits = doc.get("limits") if isinstance(doc, dict) else None
    if not isinstance(limits, dict):
        raise ConfigError(f"{path}: needs a 'limits' mapping")
    values: dict[str, Any] = {}
    for f in fields(InputLimits):
        spec = limits.get(f.name)
        if not isinstance(spec, dict) or "value" not in spec:
            raise ConfigError(f"{path}: limit {f.name!r} needs a 'value'")
        values[f.name] = spec["value"]
    return values


def _checked(name: str, value: Any) -> Any:
    where = f"input limit {PREFIX}{name}"
    if name.endswith("_date"):
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{where} must be a date (YYYY-MM-DD), got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be a whole number of 1 or more, got {value!r}")
    return value
