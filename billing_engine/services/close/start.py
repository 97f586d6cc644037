"""``billing close start``: evaluate a month from the store and save its lines.

First start: cycle 1, every claim line ``pending``. Again while open: re-evaluate; an
unchanged line keeps its id and decision, new lines are pending, lines no longer
supported are dropped and reported. On an exported month: the adjustment cycle, the
differences with what was claimed (``lines.adjustments``), or nothing to review.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from billing_engine.calendar import Month
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.services.close import lines as ln
from billing_engine.services.close.base import (
    EXPORTED,
    OPEN,
    Outcome,
    cycle_lines,
    now,
    refuse_unless,
)
from billing_engine.services.close.claimed import carried_lines
from billing_engine.services.close.evaluation import evaluate_from_store
from billing_engine.store import Store
from billing_engine.store import close as closedb

# what start does, in order (a command's progress bar shows them)
STEPS = ("evaluate the month from the store", "save the lines and gaps")


@dataclass(frozen=True)
class Evaluation:
    """What ``start`` evaluated, and who asked and when (handed to each case below)."""

    lines: pl.DataFrame  # ``lines.LINE_COLUMNS`` of the evaluation's claim lines
    result: EvaluationResult
    run_id: str
    user: str
    at: dt.datetime


GAP_COLUMNS = (
    "patient_id",
    "code",
    "status",
    "reason",
    "detail",
    "minutes_logged",
    "minutes_needed",
    "deadline",
    "period_start",
    "period_end",
    "evidence",
)


def audit_start(
    tx: Connection,
    run: Evaluation,
    month: str,
    cycle: int,
    *,
    ids: Sequence[str] = (),
    why: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """The audit row of a ``start`` (every case writes one)."""
    closedb.audit(
        tx, at=run.at, user=run.user, action="start", month=month, cycle=cycle, ids=ids,
        why=why, detail=detail,
    )  # fmt: skip


def _line_rows(
    frame: pl.DataFrame, month: str, cycle: int, first: int, kind: str | None
) -> pl.DataFrame:
    """New close lines (pending) from evaluated lines; ``kind`` None = the frame's own."""
    ids = ln.line_ids(month, cycle, first, frame.height)
    extra = [] if kind is None else [pl.lit(kind).alias("kind")]
    rows = frame.with_columns(
        ids, *extra, pl.lit(month).alias("month"), pl.lit(cycle).alias("cycle")
    )
    for column in ("adjusts_line_id", "adjusts_claim_id"):
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, pl.String).alias(column))
    return rows.with_columns(pl.lit(ln.PENDING).alias("status"))


def _gap_rows(gaps: pl.DataFrame, month: str, cycle: int) -> pl.DataFrame:
    return (
        gaps.select(GAP_COLUMNS)
        .with_row_index("gap_no", 1)
        .with_columns(
            pl.col("gap_no").cast(pl.Int64),
            pl.lit(month).alias("month"),
            pl.lit(cycle).alias("cycle"),
        )
    )


# -- start ---------------------------------------------------------------------------


def start(
    store: Store,
    month: Month,
    *,
    user: str,
    as_of: dt.date | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Evaluate ``month`` and save its lines; re-evaluate an open cycle; open an adjustment
    cycle on an exported month; refused on a locked one."""
    key = str(month)
    with store.engine.connect() as connection:
        row = closedb.month_row(connection, key)
    if row is not None:
        refuse_unless(row, (OPEN, EXPORTED), "start (reopen it or export it first)")
    note = progress or (lambda _step: None)
    note(STEPS[0])
    bundle, result = evaluate_from_store(store, month, as_of, settings)
    note(STEPS[1])
    evaluated = ln.claim_lines_of(result.claim_lines)
    at = now()
    with closedb.close_transaction(store.engine, key) as tx:
        run_id = closedb.record_run(
            tx,
            month=key,
            as_of=result.as_of,
            rule_set_version=result.rule_set_version,
            input_row_counts=bundle.row_counts(),
            line_count=result.claim_lines.height,
            gap_count=result.gaps.height,
            source=f"billing close start ({store.url})",
            allow_unverified=result.allow_unverified,
            unverified_parameters=sorted(result.unverified_parameters) or None,
        )
        run = Evaluation(evaluated, result, run_id, user, at)
        if row is None:
            closedb.insert_month(tx, key, at)
            return _first_cycle(tx, key, run)
        if row["state"] == OPEN:
            closedb.bump_version(tx, key, row["version"], at)
            return _reevaluate(tx, row, run)
        return _adjustment_cycle(tx, row, run)


def _new_cycle(tx: Connection, month: str, cycle: int, run: Evaluation) -> None:
    result, run_id, user, at = run.result, run.run_id, run.user, run.at
    tx.execute(
        closedb.CYCLES.insert().values(
            month=month,
            cycle=cycle,
            state=OPEN,
            as_of=result.as_of,
            run_id=run_id,
            rule_set_version=result.rule_set_version,
            opened_at=at,
            opened_by=user,
            evaluated_at=at,
            next_line=1,
            locks=0,
        )
    )


def _first_cycle(tx: Connection, month: str, run: Evaluation) -> Outcome:
    evaluated, result, run_id = run.lines, run.result, run.run_id
    _new_cycle(tx, month, 1, run)
    rows = _line_rows(evaluated, month, 1, 1, ln.KIND_ORIGINAL)
    closedb.insert_frame(tx, closedb.LINES, rows.select(_stored_line_columns()))
    closedb.update_cycle(tx, month, 1, next_line=rows.height + 1)
    closedb.insert_frame(tx, closedb.GAPS, _gap_rows(result.gaps, month, 1))
    detail = {"lines": rows.height, "gaps": result.gaps.height, "run_id": run_id}
    audit_start(tx, run, month, 1, detail=detail)
    return Outcome(
        f"{month}: cycle 1 opened with {rows.height:,} lines (pending) and "
        f"{result.gaps.height:,} gaps; run {run_id}",
        {
            "month": month,
            "cycle": 1,
            "state": OPEN,
            "added": rows.height,
            "kept": 0,
            "dropped": [],
            **detail,
        },
    )


def _stored_line_columns() -> list[str]:
    return [
        c.name
        for c in closedb.LINES.columns
        if c.name not in ("hold_reason", "edit_failures", "decided_by", "decided_at")
    ]


def _reevaluate(tx: Connection, row: dict[str, Any], run: Evaluation) -> Outcome:
    evaluated, result, run_id, at = run.lines, run.result, run.run_id, run.at
    month, cycle = row["month"], row["cycle"]
    stored = cycle_lines(tx, month, cycle)
    keys: tuple[str, ...]
    if cycle == 1:
        wanted, keys = evaluated.with_columns(pl.lit(ln.KIND_ORIGINAL).alias("kind")), ln.IDENTITY
    else:
        claimed = carried_lines(tx, month)
        wanted, keys = ln.adjustments(evaluated, claimed), ln.ADJUSTMENT_IDENTITY
    match = ln.match_open_cycle(wanted, stored, keys)
    cycle_row = closedb.cycle_row(tx, month, cycle)
    assert cycle_row is not None
    first = int(cycle_row["next_line"])
    added = _line_rows(match.added, month, cycle, first, None)
    closedb.delete_lines(tx, match.dropped["line_id"].to_list())
    closedb.update_line_values(tx, match.kept)
    closedb.insert_frame(tx, closedb.LINES, added.select(_stored_line_columns()))
    closedb.delete_gaps(tx, month, cycle)
    closedb.insert_frame(tx, closedb.GAPS, _gap_rows(result.gaps, month, cycle))
    closedb.update_cycle(
        tx,
        month,
        cycle,
        next_line=first + added.height,
        evaluated_at=at,
        run_id=run_id,
        as_of=result.as_of,
        rule_set_version=result.rule_set_version,
    )
    dropped = match.dropped["line_id"].to_list()
    detail = {
        "kept": match.kept.height,
        "added": added.height,
        "dropped": dropped,
        "run_id": run_id,
    }
    audit_start(tx, run, month, cycle, ids=dropped, why="re-evaluated", detail=detail)
    summary = (
        f"{month}: cycle {cycle} re-evaluated: {match.kept.height:,} lines kept with their "
        f"decisions, {added.height:,} new (pending), {len(dropped):,} dropped"
    )
    if dropped:
        summary += " (" + ", ".join(dropped[:10]) + (", ..." if len(dropped) > 10 else "") + ")"
    return Outcome(summary, {"month": month, "cycle": cycle, "state": OPEN, **detail})


def _adjustment_cycle(tx: Connection, row: dict[str, Any], run: Evaluation) -> Outcome:
    evaluated, result, run_id, at = run.lines, run.result, run.run_id, run.at
    month, cycle = row["month"], row["cycle"] + 1
    differences = ln.adjustments(evaluated, carried_lines(tx, month))
    if not differences.height:
        closedb.bump_version(tx, month, row["version"], at)
        audit_start(tx, run, month, row["cycle"], why="no difference", detail={"run_id": run_id})
        return Outcome(
            f"{month}: nothing to review: the month as stored now matches what was claimed "
            f"(cycle {row['cycle']} stays exported)",
            {"month": month, "cycle": row["cycle"], "state": EXPORTED, "adjustments": {}},
        )
    closedb.bump_version(tx, month, row["version"], at, state=OPEN, cycle=cycle)
    _new_cycle(tx, month, cycle, run)
    rows = _line_rows(differences, month, cycle, 1, None)
    closedb.insert_frame(tx, closedb.LINES, rows.select(_stored_line_columns()))
    closedb.update_cycle(tx, month, cycle, next_line=rows.height + 1)
    closedb.insert_frame(tx, closedb.GAPS, _gap_rows(result.gaps, month, cycle))
    counts = rows.group_by("kind").len().sort("kind")
    kinds = dict(zip(counts["kind"].to_list(), counts["len"].to_list(), strict=True))
    detail = {"adjustments": kinds, "lines": rows.height, "run_id": run_id}
    audit_start(tx, run, month, cycle, why="adjustment cycle", detail=detail)
    text = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return Outcome(
        f"{month}: adjustment cycle {cycle} opened with {rows.height:,} lines ({text}), pending",
        {"month": month, "cycle": cycle, "state": OPEN, **detail},
    )


# -- review, approve, hold -------------------------------------------------------------
