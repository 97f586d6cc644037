"""The conflict table's data: precedence groups, history conflicts, add-ons and unit caps.

Effective-dated and cited like the parameters; ``engine.conflicts`` applies it. The
shipped table is ``code_rules/conflicts.yaml`` (the rulebook loads it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.io import strict_yaml
from billing_engine.params.sources import Source, check_cited, read_sources


@dataclass(frozen=True)
class PrecedenceGroup:
    id: str
    scope: str
    reason: str
    order: tuple[str, ...]
    effective_from: dt.date
    effective_to: dt.date | None
    rules: tuple[str, ...]
    sources: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class HistoryConflict:
    id: str
    alternatives: tuple[str, ...]  # alternatives (or rule keys) the claim excludes
    codes: tuple[str, ...]  # claims-history codes that exclude them
    scope: str  # practitioner: same billing practitioner; patient: anyone
    reason: str
    effective_from: dt.date
    effective_to: dt.date | None
    rules: tuple[str, ...]
    sources: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class UnitCap:
    code: str
    units: int
    rules: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class AddOn:
    addon: str
    base: str
    rules: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ConflictTable:
    groups: tuple[PrecedenceGroup, ...]
    addons: tuple[AddOn, ...]
    verified_through: dt.date
    history: tuple[HistoryConflict, ...] = ()
    mue: tuple[UnitCap, ...] = ()
    # the file's sources table, sorted by key: what each cited source key stands for
    source_details: tuple[Source, ...] = ()

    def history_in_force(self, start: dt.date, end: dt.date) -> tuple[HistoryConflict, ...]:
        return tuple(
            h for h in self.history
            if h.effective_from <= start and (h.effective_to is None or h.effective_to >= end)
        )  # fmt: skip

    def history_codes(self) -> list[str]:
        return sorted({code for h in self.history for code in h.codes})

    def in_force(self, start: dt.date, end: dt.date) -> tuple[PrecedenceGroup, ...]:
        if end > self.verified_through:
            raise ParameterNotVerified(
                "conflicts", end, f"verified through {self.verified_through}"
            )
        return tuple(
            g for g in self.groups
            if g.effective_from <= start and (g.effective_to is None or g.effective_to >= end)
        )  # fmt: skip


def _date(raw: object) -> dt.date:
    return raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw))


@lru_cache(maxsize=4)
def load_table(path: Path) -> ConflictTable:
    """Read a conflict table file (the shipped one: ``code_rules/conflicts.yaml``)."""
    try:
        doc = strict_yaml.load_path(path)
        sources = read_sources(doc, path)
        groups = tuple(
            PrecedenceGroup(
                id=str(g["id"]),
                scope=str(g["scope"]),
                reason=str(g["reason"]),
                order=tuple(map(str, g["order"])),
                effective_from=_date(g["effective_from"]),
                effective_to=_date(g["effective_to"]) if g.get("effective_to") else None,
                rules=tuple(map(str, g["rules"])),
                sources=tuple(map(str, g["sources"])),
                description=str(g.get("description", "")),
            )
            for g in doc["precedence"]
        )
        addons = tuple(
            AddOn(str(a["addon"]), str(a["base"]), tuple(a["rules"]), tuple(a["sources"]))
            for a in doc["addons"]
        )
        history = tuple(
            HistoryConflict(
                id=str(h["id"]),
                alternatives=tuple(map(str, h["alternatives"])),
                codes=tuple(map(str, h["codes"])),
                scope=str(h["scope"]),
                reason=str(h["reason"]),
                effective_from=_date(h["effective_from"]),
                effective_to=_date(h["effective_to"]) if h.get("effective_to") else None,
                rules=tuple(map(str, h["rules"])),
                sources=tuple(map(str, h["sources"])),
                description=str(h.get("description", "")),
            )
            for h in doc.get("history") or []
        )
        mue = tuple(
            UnitCap(str(m["code"]), int(m["units"]), tuple(m["rules"]), tuple(m["sources"]))
            for m in doc.get("mue") or []
        )
        details = tuple(sources[key] for key in sorted(sources))
        table = ConflictTable(groups, addons, _date(doc["verified_through"]), history, mue, details)
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: invalid conflict table: {exc}") from exc
    scopes = [(g.id, g.scope) for g in table.groups] + [(h.id, h.scope) for h in table.history]
    for item_id, scope in scopes:
        if scope not in ("practitioner", "patient"):
            raise ConfigError(f"{path}: {item_id}: unknown scope {scope!r}")
    cited = [(g.id, g.sources) for g in table.groups]
    cited += [(h.id, h.sources) for h in table.history]
    cited += [(f"addon {a.addon}", a.sources) for a in table.addons]
    cited += [(f"mue {m.code}", m.sources) for m in table.mue]
    for name, keys in cited:
        check_cited(keys, sources, f"{path}: {name}")
    for cap in table.mue:
        if cap.units < 1:
            raise ConfigError(f"{path}: mue {cap.code}: units must be 1 or more")
    return table
