"""Conflict resolution: the ordered, cited precedence table applied to outcomes.

The table (``code_rules/conflicts.yaml``) has two parts:
- ``precedence``: groups of mutually exclusive alternatives, first wins. Scope
  ``practitioner`` compares alternatives of one patient, billing practitioner and
  period; scope ``patient`` keeps one billing practitioner per patient and period.
  A losing line becomes a ``suppressed`` gap with the group's reason and a detail
  naming the code kept; a short add-on gap of a losing alternative goes with it.
- ``addons``: an add-on line whose base line is not billed for the same patient,
  practitioner and period becomes a ``blocked`` gap ``add_on_without_base``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl
import yaml

from billing_engine.errors import ConfigError, ParameterNotVerified
from billing_engine.rules import STATUS_BLOCKED, STATUS_SUPPRESSED

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PERIOD = ["patient_id", "period_start"]


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
def load_table(path: Path | None = None) -> ConflictTable:
    if path is None:
        import code_rules

        path = Path(code_rules.__file__).with_name("conflicts.yaml")
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
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
        table = ConflictTable(groups, addons, _date(doc["verified_through"]))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: invalid conflict table: {exc}") from exc
    for group in table.groups:
        if group.scope not in ("practitioner", "patient"):
            raise ConfigError(f"{path}: group {group.id}: unknown scope {group.scope!r}")
    return table


def _suppress(
    outcomes: pl.DataFrame, losing: pl.Expr, reason: str, detail: pl.Expr
) -> pl.DataFrame:
    return outcomes.with_columns(
        is_line=pl.when(losing).then(False).otherwise(pl.col("is_line")),
        status=pl.when(losing).then(pl.lit(STATUS_SUPPRESSED)).otherwise(pl.col("status")),
        reason=pl.when(losing).then(pl.lit(reason)).otherwise(pl.col("reason")),
        detail=pl.when(losing).then(detail).otherwise(pl.col("detail")),
        minutes_needed=pl.when(losing).then(None).otherwise(pl.col("minutes_needed")),
        deadline=pl.when(losing).then(None).otherwise(pl.col("deadline")),
        units=pl.when(losing).then(None).otherwise(pl.col("units")),
        date_of_service=pl.when(losing).then(None).otherwise(pl.col("date_of_service")),
    )


def _apply_group(outcomes: pl.DataFrame, group: PrecedenceGroup) -> pl.DataFrame:
    rank = pl.col("alternative").replace_strict(
        list(group.order), list(range(len(group.order))), default=None, return_dtype=pl.Int32
    )
    frame = outcomes.with_row_index("_row").with_columns(_rank=rank)
    lines = frame.filter(pl.col("is_line") & pl.col("_rank").is_not_null())
    if lines.is_empty():
        return outcomes
    scope = [*PERIOD, "billing_practitioner_id"] if group.scope == "practitioner" else PERIOD
    # the winning line's scope row: best rank, then most minutes, then practitioner id
    winners = (
        lines.sort(
            ["_rank", "minutes_logged", "billing_practitioner_id", "base_key"],
            descending=[False, True, False, False],
            nulls_last=[False, True, False, False],
        )
        .group_by(scope, maintain_order=True)
        .agg(
            _win_rank=pl.col("_rank").first(),
            _win_bp=pl.col("billing_practitioner_id").first(),
            _win_code=pl.col("code").filter(pl.col("base_key").is_null()).first(),
        )
    )
    frame = frame.join(winners, on=scope, how="left", nulls_equal=True)
    if group.scope == "practitioner":
        loser = pl.col("_rank") > pl.col("_win_rank")
        detail = pl.format("suppressed in favour of {}", pl.col("_win_code"))
    else:
        loser = pl.col("_win_bp").is_not_null() & (
            pl.col("billing_practitioner_id").fill_null("") != pl.col("_win_bp")
        )
        detail = pl.format(
            "{} billed by practitioner {} this period", pl.col("_win_code"), pl.col("_win_bp")
        )
    in_group = pl.col("_rank").is_not_null()
    # a losing line, or an add-on gap whose base line is losing
    losing_line = in_group & pl.col("is_line") & loser.fill_null(False)
    base_lost = (
        frame.filter(losing_line & pl.col("base_key").is_null())
        .select(*scope, pl.col("rule_key").alias("base_key"), pl.lit(True).alias("_base_lost"))
        .unique()
    )
    frame = frame.join(base_lost, on=[*scope, "base_key"], how="left", nulls_equal=True)
    losing = losing_line | (in_group & ~pl.col("is_line") & pl.col("_base_lost").fill_null(False))
    result = _suppress(frame, losing, group.reason, detail)
    return result.sort("_row").select(outcomes.columns)


def _apply_addons(outcomes: pl.DataFrame, addons: tuple[AddOn, ...]) -> pl.DataFrame:
    if not addons:
        return outcomes
    pairs = pl.DataFrame(
        {"rule_key": [a.addon for a in addons], "_required_base": [a.base for a in addons]}
    )
    scope = [*PERIOD, "billing_practitioner_id"]
    base_lines = (
        outcomes.filter(pl.col("is_line"))
        .select(*scope, pl.col("rule_key").alias("_required_base"), pl.lit(True).alias("_has_base"))
        .unique()
    )
    frame = (
        outcomes.with_row_index("_row")
        .join(pairs, on="rule_key", how="left")
        .join(base_lines, on=[*scope, "_required_base"], how="left", nulls_equal=True)
    )
    # fix the orphans first: _suppress turns them into gaps, after which is_line is False
    frame = frame.with_columns(
        _orphan=pl.col("is_line")
        & pl.col("_required_base").is_not_null()
        & ~pl.col("_has_base").fill_null(False)
    )
    orphan = pl.col("_orphan")
    frame = _suppress(
        frame, orphan, "add_on_without_base", pl.lit("the add-on's base code is not billed")
    ).with_columns(status=pl.when(orphan).then(pl.lit(STATUS_BLOCKED)).otherwise(pl.col("status")))
    return frame.sort("_row").select(outcomes.columns)


def resolve(
    outcomes: pl.DataFrame, start: dt.date, end: dt.date, table: ConflictTable | None = None
) -> pl.DataFrame:
    """Apply the precedence groups in order, then the add-on -> base check."""
    table = table or load_table()
    for group in table.in_force(start, end):
        outcomes = _apply_group(outcomes, group)
    return _apply_addons(outcomes, table.addons)
