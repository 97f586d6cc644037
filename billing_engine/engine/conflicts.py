"""Conflict resolution: the ordered, cited precedence table applied to outcomes.

The table (``code_rules/conflicts.yaml``) has two parts:
- ``precedence``: groups of mutually exclusive alternatives, first wins. Scope
  ``practitioner`` compares alternatives of one patient, billing practitioner and
  period; scope ``patient`` keeps one billing practitioner per patient and period.
  A losing line becomes a ``suppressed`` gap with the group's reason and a detail
  naming the code kept; a short add-on gap of a losing alternative goes with it.
- ``history``: services billed outside the engine (claims history) that exclude an
  alternative in the same period, e.g. CCM vs home-health care plan oversight by the
  same practitioner. The engine's line becomes a ``suppressed`` gap naming the claim.
- ``addons``: an add-on line whose base line is not billed for the same patient,
  practitioner and period becomes a ``blocked`` gap ``add_on_without_base``.
- ``mue``: medically unlikely edits, the most units of a code per patient, billing
  practitioner and date of service. Units above the cap are cut; a line left with none
  becomes a ``blocked`` gap ``frequency_limit_reached``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from billing_engine.engine.kernel import STATUS_BLOCKED, STATUS_SUPPRESSED
from billing_engine.params.conflict_table import (
    AddOn,
    ConflictTable,
    HistoryConflict,
    PrecedenceGroup,
    UnitCap,
)

PERIOD = ["patient_id", "period_start"]


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
    # an add-on belongs to its own practitioner's base line, whatever the group's scope:
    # another practitioner's losing base leaves the winner's add-on gap alone
    own_base = [*PERIOD, "billing_practitioner_id"]
    base_lost = (
        frame.filter(losing_line & pl.col("base_key").is_null())
        .select(*own_base, pl.col("rule_key").alias("base_key"), pl.lit(True).alias("_base_lost"))
        .unique()
    )
    frame = frame.join(base_lost, on=[*own_base, "base_key"], how="left", nulls_equal=True)
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


def _apply_history(
    outcomes: pl.DataFrame, conflict: HistoryConflict, history: pl.DataFrame
) -> pl.DataFrame:
    """Suppress the conflict's alternatives when a claim of its codes falls in the period.

    `history`: claims billed (patient_id, claim_practitioner_id, code, date_of_service).
    """
    claims = history.filter(pl.col("code").is_in(conflict.codes))
    member = pl.col("alternative").is_in(conflict.alternatives) | pl.col("rule_key").is_in(
        conflict.alternatives
    )
    frame = outcomes.with_row_index("_row")
    candidates = frame.filter(pl.col("is_line") & member)
    if claims.is_empty() or candidates.is_empty():
        return outcomes
    keys = ["patient_id"]
    right = claims.select(
        "patient_id",
        pl.col("claim_practitioner_id").alias("billing_practitioner_id"),
        pl.col("code").alias("_claim_code"),
        pl.col("date_of_service").alias("_claim_date"),
    )
    if conflict.scope == "practitioner":
        keys.append("billing_practitioner_id")
    else:
        right = right.drop("billing_practitioner_id")
    hits = (
        candidates.select(
            "_row", "patient_id", "billing_practitioner_id", "period_start", "period_end"
        )
        .join(right, on=keys, how="inner")
        .filter(pl.col("_claim_date").is_between(pl.col("period_start"), pl.col("period_end")))
        .sort("_row", "_claim_date", "_claim_code")
        .group_by("_row", maintain_order=True)
        .agg(_claim_code=pl.col("_claim_code").first(), _claim_date=pl.col("_claim_date").first())
    )
    if hits.is_empty():
        return outcomes
    frame = frame.join(hits, on="_row", how="left")
    losing = pl.col("_claim_code").is_not_null()
    who = "this practitioner" if conflict.scope == "practitioner" else "a practitioner"
    detail = pl.format(
        "suppressed in favour of {} billed by {} on {} (claims history)",
        pl.col("_claim_code"),
        pl.lit(who),
        pl.col("_claim_date"),
    )
    return _suppress(frame, losing, conflict.reason, detail).sort("_row").select(outcomes.columns)


def _apply_mue(outcomes: pl.DataFrame, caps: tuple[UnitCap, ...]) -> pl.DataFrame:
    """Cut units above each code's cap per patient, practitioner and date of service."""
    if not caps:
        return outcomes
    table = pl.DataFrame(
        {"code": [c.code for c in caps], "_cap": [c.units for c in caps]},
        schema={"code": pl.String, "_cap": pl.Int64},
    )
    keys = ["patient_id", "billing_practitioner_id", "code", "date_of_service"]
    frame = (
        outcomes.with_row_index("_row")
        .join(table, on="code", how="left")
        .with_columns(
            _before=pl.when(pl.col("is_line") & pl.col("_cap").is_not_null())
            .then(pl.col("units").cum_sum().over(keys, order_by="_row") - pl.col("units"))
            .otherwise(None)
        )
        .with_columns(
            _allowed=pl.min_horizontal(
                pl.col("units"), (pl.col("_cap") - pl.col("_before")).clip(lower_bound=0)
            )
        )
    )
    over = pl.col("_allowed").is_not_null() & (pl.col("_allowed") < pl.col("units"))
    frame = frame.with_columns(
        units=pl.when(over).then(pl.col("_allowed")).otherwise(pl.col("units")),
        _none_left=over & (pl.col("_allowed") == 0),
    )
    none_left = pl.col("_none_left")
    detail = pl.format(
        "the unit cap (MUE) of {} unit(s) per date of service is reached", pl.col("_cap")
    )
    frame = _suppress(frame, none_left, "frequency_limit_reached", detail).with_columns(
        status=pl.when(none_left).then(pl.lit(STATUS_BLOCKED)).otherwise(pl.col("status"))
    )
    return frame.sort("_row").select(outcomes.columns)


def resolve(
    outcomes: pl.DataFrame,
    start: dt.date,
    end: dt.date,
    table: ConflictTable,
    history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Apply the precedence groups in order, then claims-history conflicts, the add-on ->
    base check and the unit caps. `history` holds the claims of ``table.history_codes()``
    (see ``_apply_history``)."""
    for group in table.in_force(start, end):
        outcomes = _apply_group(outcomes, group)
    if history is not None:
        for conflict in table.history_in_force(start, end):
            outcomes = _apply_history(outcomes, conflict, history)
    outcomes = _apply_addons(outcomes, table.addons)
    return _apply_mue(outcomes, table.mue)
