"""The close commands (close.md, "Commands"): each one transaction, each logged.

Every command that changes a month reads its row, does its slow work (evaluating,
rendering) outside the transaction, then in ONE transaction takes the month with a
version check (``store.close.bump_version``), writes, and appends to the audit log. A
concurrent change makes the check fail: ``ChangedConcurrently``, nothing written.
Refusals (``CloseRefused``, exit 1) are raised before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.services.close import lines as ln
from billing_engine.services.close.claimed import carried_lines
from billing_engine.services.close.claims import build_claims
from billing_engine.services.close.edits import (
    CLAIM_TABLES,
    claim_context,
    failed_edits,
    practice_row,
)
from billing_engine.services.close.evaluation import evaluate_from_store
from billing_engine.store import Store
from billing_engine.store import close as closedb

OPEN, LOCKED, EXPORTED = "open", "locked", "exported"
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


class BadCloseInput(ConfigError):
    """A close command named lines or options that do not exist (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Outcome:
    """What a command did: one human summary and the same as data (``--json``)."""

    summary: str
    data: dict[str, Any] = field(default_factory=dict)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _month_state(connection: Connection, month: str) -> dict[str, Any]:
    row = closedb.month_row(connection, month)
    if row is None:
        raise closedb.CloseRefused(f"{month} has no close yet: run billing close start {month}")
    return row


def _refuse_unless(row: dict[str, Any], allowed: Sequence[str], action: str) -> None:
    if row["state"] not in allowed:
        raise closedb.CloseRefused(
            f"{row['month']} is {row['state']} (cycle {row['cycle']}): cannot {action}"
        )


def _cycle_lines(connection: Connection, month: str, cycle: int) -> pl.DataFrame:
    return closedb.rows_of(
        closedb.LINES,
        (closedb.LINES.c.month == month) & (closedb.LINES.c.cycle == cycle),
        connection,
    )


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


def start(store: Store, month: Month, *, user: str, as_of: dt.date | None = None) -> Outcome:
    """Evaluate ``month`` and save its lines; re-evaluate an open cycle; open an adjustment
    cycle on an exported month; refused on a locked one."""
    key = str(month)
    with store.engine.connect() as connection:
        row = closedb.month_row(connection, key)
    if row is not None:
        _refuse_unless(row, (OPEN, EXPORTED), "start (reopen it or export it first)")
    bundle, result = evaluate_from_store(store, month, as_of)
    evaluated = ln.claim_lines_of(result.claim_lines)
    at = now()
    run_id = store.record_run(
        month=key,
        as_of=result.as_of,
        rule_set_version=result.rule_set_version,
        input_row_counts=bundle.row_counts(),
        line_count=result.claim_lines.height,
        gap_count=result.gaps.height,
        source=f"billing close start ({store.url})",
    )
    with closedb.close_transaction(store.engine, key) as tx:
        if row is None:
            closedb.insert_month(tx, key, at)
            return _first_cycle(tx, key, evaluated, result, run_id, user, at)
        if row["state"] == OPEN:
            closedb.bump_version(tx, key, row["version"], at)
            return _reevaluate(tx, row, evaluated, result, run_id, user, at)
        return _adjustment_cycle(tx, row, evaluated, result, run_id, user, at)


def _new_cycle(
    tx: Connection, month: str, cycle: int, result: Any, run_id: str, user: str, at: dt.datetime
) -> None:
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


def _first_cycle(
    tx: Connection,
    month: str,
    evaluated: pl.DataFrame,
    result: Any,
    run_id: str,
    user: str,
    at: dt.datetime,
) -> Outcome:
    _new_cycle(tx, month, 1, result, run_id, user, at)
    rows = _line_rows(evaluated, month, 1, 1, ln.KIND_ORIGINAL)
    closedb.insert_frame(tx, closedb.LINES, rows.select(_stored_line_columns()))
    closedb.update_cycle(tx, month, 1, next_line=rows.height + 1)
    closedb.insert_frame(tx, closedb.GAPS, _gap_rows(result.gaps, month, 1))
    detail = {"lines": rows.height, "gaps": result.gaps.height, "run_id": run_id}
    closedb.audit(tx, at=at, user=user, action="start", month=month, cycle=1, detail=detail)
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


def _reevaluate(
    tx: Connection,
    row: dict[str, Any],
    evaluated: pl.DataFrame,
    result: Any,
    run_id: str,
    user: str,
    at: dt.datetime,
) -> Outcome:
    month, cycle = row["month"], row["cycle"]
    stored = _cycle_lines(tx, month, cycle)
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
    closedb.audit(
        tx,
        at=at,
        user=user,
        action="start",
        month=month,
        cycle=cycle,
        ids=dropped,
        reason="re-evaluated",
        detail=detail,
    )
    summary = (
        f"{month}: cycle {cycle} re-evaluated: {match.kept.height:,} lines kept with their "
        f"decisions, {added.height:,} new (pending), {len(dropped):,} dropped"
    )
    if dropped:
        summary += " (" + ", ".join(dropped[:10]) + (", ..." if len(dropped) > 10 else "") + ")"
    return Outcome(summary, {"month": month, "cycle": cycle, "state": OPEN, **detail})


def _adjustment_cycle(
    tx: Connection,
    row: dict[str, Any],
    evaluated: pl.DataFrame,
    result: Any,
    run_id: str,
    user: str,
    at: dt.datetime,
) -> Outcome:
    month, cycle = row["month"], row["cycle"] + 1
    differences = ln.adjustments(evaluated, carried_lines(tx, month))
    if not differences.height:
        closedb.bump_version(tx, month, row["version"], at)
        closedb.audit(
            tx,
            at=at,
            user=user,
            action="start",
            month=month,
            cycle=row["cycle"],
            reason="no difference",
            detail={"run_id": run_id},
        )
        return Outcome(
            f"{month}: nothing to review: the month as stored now matches what was claimed "
            f"(cycle {row['cycle']} stays exported)",
            {"month": month, "cycle": row["cycle"], "state": EXPORTED, "adjustments": {}},
        )
    closedb.bump_version(tx, month, row["version"], at, state=OPEN, cycle=cycle)
    _new_cycle(tx, month, cycle, result, run_id, user, at)
    rows = _line_rows(differences, month, cycle, 1, None)
    closedb.insert_frame(tx, closedb.LINES, rows.select(_stored_line_columns()))
    closedb.update_cycle(tx, month, cycle, next_line=rows.height + 1)
    closedb.insert_frame(tx, closedb.GAPS, _gap_rows(result.gaps, month, cycle))
    kinds = dict(rows.group_by("kind").len().sort("kind").iter_rows())
    detail = {"adjustments": kinds, "lines": rows.height, "run_id": run_id}
    closedb.audit(
        tx,
        at=at,
        user=user,
        action="start",
        month=month,
        cycle=cycle,
        reason="adjustment cycle",
        detail=detail,
    )
    text = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return Outcome(
        f"{month}: adjustment cycle {cycle} opened with {rows.height:,} lines ({text}), pending",
        {"month": month, "cycle": cycle, "state": OPEN, **detail},
    )


# -- review, approve, hold -------------------------------------------------------------

REVIEW_FIRST = ("line_id", "status", "hold_reason", "edit_failures")


def review(
    store: Store,
    month: Month,
    *,
    status: str | None = None,
    patient: str | None = None,
    code: str | None = None,
) -> pl.DataFrame:
    """The current cycle's lines: ``line_id, status, hold_reason, edit_failures``, ``kind``,
    the adjusted claim, then the claim-line columns."""
    key = str(month)
    with store.engine.connect() as connection:
        row = _month_state(connection, key)
        frame = _cycle_lines(connection, key, row["cycle"])
    for column, value in (("status", status), ("patient_id", patient), ("code", code)):
        if value is not None:
            frame = frame.filter(pl.col(column) == value)
    return frame.select(
        *REVIEW_FIRST,
        "kind",
        "adjusts_claim_id",
        *ln.LINE_COLUMNS,
        "cycle",
        "decided_by",
        "decided_at",
    ).sort("patient_id", "date_of_service", "code", "line_id")


def _chosen(
    frame: pl.DataFrame,
    line_ids: Sequence[str],
    patient: str | None,
    code: str | None,
    all_pending: bool,
) -> pl.DataFrame:
    if line_ids:
        unknown = sorted(set(line_ids) - set(frame["line_id"].to_list()))
        if unknown:
            raise BadCloseInput(f"no such line in the current cycle: {', '.join(unknown[:5])}")
        frame = frame.filter(pl.col("line_id").is_in(list(line_ids)))
    if patient is not None:
        frame = frame.filter(pl.col("patient_id") == patient)
    if code is not None:
        frame = frame.filter(pl.col("code") == code)
    if all_pending:
        frame = frame.filter(pl.col("status") == ln.PENDING)
    return frame


def approve(
    store: Store,
    month: Month,
    *,
    user: str,
    all_pending: bool = False,
    line_ids: Sequence[str] = (),
    patient: str | None = None,
    code: str | None = None,
) -> Outcome:
    """``pending`` or ``held`` -> ``approved`` (``--all``: the pending lines only)."""
    if not (all_pending or line_ids or patient or code):
        raise BadCloseInput("say which lines: --all, --line ID..., --patient ID or --code C")
    return _decide(store, month, user, ln.APPROVED, None, line_ids, patient, code, all_pending)


def hold(store: Store, month: Month, *, user: str, line_ids: Sequence[str], reason: str) -> Outcome:
    """-> ``held``, with the reason (required)."""
    if not reason.strip():
        raise BadCloseInput("a hold needs a reason (--reason TEXT)")
    if not line_ids:
        raise BadCloseInput("say which lines to hold: --line ID...")
    return _decide(store, month, user, ln.HELD, reason.strip(), line_ids, None, None, False)


def _decide(
    store: Store,
    month: Month,
    user: str,
    status: str,
    reason: str | None,
    line_ids: Sequence[str],
    patient: str | None,
    code: str | None,
    all_pending: bool,
) -> Outcome:
    key = str(month)
    with store.engine.connect() as connection:
        row = _month_state(connection, key)
    _refuse_unless(row, (OPEN,), "approve or hold lines")
    at = now()
    with closedb.close_transaction(store.engine, key) as tx:
        closedb.bump_version(tx, key, row["version"], at)
        lines = _cycle_lines(tx, key, row["cycle"])
        chosen = _chosen(lines, line_ids, patient, code, all_pending)
        chosen = chosen.filter(pl.col("status") != status)
        ids = chosen["line_id"].to_list()
        closedb.set_line_status(tx, ids, status=status, user=user, at=at, hold_reason=reason)
        action = "approve" if status == ln.APPROVED else "hold"
        closedb.audit(
            tx,
            at=at,
            user=user,
            action=action,
            month=key,
            cycle=row["cycle"],
            ids=ids,
            reason=reason,
            detail={"lines": len(ids)},
        )
    verb = "approved" if status == ln.APPROVED else "held"
    return Outcome(
        f"{key}: {len(ids):,} lines {verb}" + (f" ({reason})" if reason else ""),
        {"month": key, "cycle": row["cycle"], "action": action, "lines": len(ids), "ids": ids},
    )


# -- lock, reopen ----------------------------------------------------------------------


def lock(store: Store, month: Month, *, user: str) -> Outcome:
    """Run the claim edits on the approved lines, hold the failures, number the claims."""
    key = str(month)
    with store.engine.connect() as connection:
        row = _month_state(connection, key)
        _refuse_unless(row, (OPEN,), "lock")
        pending = connection.execute(
            sa.select(sa.func.count()).where(
                closedb.LINES.c.month == key,
                closedb.LINES.c.cycle == row["cycle"],
                closedb.LINES.c.status == ln.PENDING,
            )
        ).scalar_one()
    if pending:
        raise closedb.CloseRefused(
            f"{key}: {pending:,} lines are still pending: approve or hold them"
        )
    bundle = store.load_bundle(CLAIM_TABLES)
    at = now()
    cycle = int(row["cycle"])
    with closedb.close_transaction(store.engine, key) as tx:
        closedb.bump_version(tx, key, row["version"], at, state=LOCKED, last_locked_at=at)
        lines = _cycle_lines(tx, key, cycle)
        approved = lines.filter(pl.col("status") == ln.APPROVED)
        holds = failed_edits(claim_context(approved, bundle))
        closedb.set_line_holds(tx, holds, user, at)
        passing = approved.join(holds.select("line_id"), on="line_id", how="anti")
        cycle_row = closedb.cycle_row(tx, key, cycle)
        assert cycle_row is not None
        lock_no = int(cycle_row["locks"]) + 1
        built = build_claims(
            passing,
            carried_lines(tx, key),
            bundle["charges"],
            month=key,
            cycle=cycle,
            lock=lock_no,
            practice_npi=practice_row(bundle)["npi"],
        )
        context = claim_context(passing, bundle)
        members = (
            built.lines.select("claim_id", "line_id")
            .join(context.select("line_id", "member_id"), on="line_id", how="left")
            .group_by("claim_id")
            .agg(pl.col("member_id").drop_nulls().first())
        )
        claims = built.claims.join(members, on="claim_id", how="left").with_columns(
            pl.lit(key).alias("month"),
            pl.lit(cycle).alias("cycle"),
            pl.lit(LOCKED).alias("status"),
            pl.lit(at).alias("created_at"),
        )
        closedb.insert_frame(tx, closedb.CLAIMS, claims)
        closedb.insert_frame(
            tx,
            closedb.CLAIM_LINES,
            built.lines.with_columns(pl.lit(key).alias("month"), pl.lit(cycle).alias("cycle")),
        )
        closedb.update_cycle(
            tx, key, cycle, state=LOCKED, locks=lock_no, locked_at=at, locked_by=user
        )
        by_edit = (
            dict(holds.group_by("hold_reason").len().sort("hold_reason").iter_rows())
            if holds.height
            else {}
        )
        totals = _totals(claims)
        detail = {
            "claims": claims.height,
            "lines": built.lines.height,
            "held_by_edits": holds.height,
            "edits": by_edit,
            **totals,
        }
        closedb.audit(
            tx,
            at=at,
            user=user,
            action="lock",
            month=key,
            cycle=cycle,
            ids=claims["claim_id"].to_list(),
            detail=detail,
        )
    summary = (
        f"{key}: cycle {cycle} locked: {claims.height:,} claims, {built.lines.height:,} lines, "
        f"charge {totals['total_charge']}, allowed {totals['allowed_amount']}; "
        f"{holds.height:,} lines held by claim edits"
    )
    if by_edit:
        summary += " (" + ", ".join(f"{k} {n}" for k, n in by_edit.items()) + ")"
    return Outcome(summary, {"month": key, "cycle": cycle, "state": LOCKED, **detail})


def _totals(claims: pl.DataFrame) -> dict[str, str]:
    names = ("total_charge", "allowed_amount", "payer_amount", "patient_amount")
    if not claims.height:
        return {n: "0.00" for n in names}
    sums = claims.select(pl.col(n).sum() for n in names).row(0, named=True)
    return {n: f"{sums[n]:.2f}" for n in names}


def reopen(store: Store, month: Month, *, user: str, reason: str) -> Outcome:
    """``locked`` -> ``open``: the lock's claim ids are voided, never reused."""
    if not reason.strip():
        raise BadCloseInput("a reopen needs a reason (--reason TEXT)")
    key = str(month)
    with store.engine.connect() as connection:
        row = _month_state(connection, key)
    if row["state"] == EXPORTED:
        raise closedb.CloseRefused(
            f"{key} is exported (cycle {row['cycle']}): what was sent cannot be reopened; "
            f"correct the data and run billing close start {key} for an adjustment cycle"
        )
    _refuse_unless(row, (LOCKED,), "reopen")
    at = now()
    with closedb.close_transaction(store.engine, key) as tx:
        closedb.bump_version(tx, key, row["version"], at, state=OPEN)
        voided = (
            tx.execute(
                sa.select(closedb.CLAIMS.c.claim_id).where(
                    closedb.CLAIMS.c.month == key,
                    closedb.CLAIMS.c.cycle == row["cycle"],
                    closedb.CLAIMS.c.status == LOCKED,
                )
            )
            .scalars()
            .all()
        )
        closedb.set_claims_status(tx, key, row["cycle"], LOCKED, "voided")
        closedb.update_cycle(tx, key, row["cycle"], state=OPEN)
        closedb.audit(
            tx,
            at=at,
            user=user,
            action="reopen",
            month=key,
            cycle=row["cycle"],
            ids=list(voided),
            reason=reason.strip(),
            detail={"voided_claims": len(voided)},
        )
    return Outcome(
        f"{key}: cycle {row['cycle']} reopened ({reason.strip()}); {len(voided):,} claim ids "
        "voided (never reused)",
        {"month": key, "cycle": row["cycle"], "state": OPEN, "voided_claims": list(voided)},
    )
