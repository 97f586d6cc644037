"""The close commands (close.md, "Commands"): each one transaction, each logged.

Every command that changes a month reads its row, does its slow work (evaluating,
rendering) outside the transaction, then in ONE transaction takes the month with a
version check (``store.close.bump_version``), writes, and appends to the audit log. A
concurrent change makes the check fail: ``ChangedConcurrently``, nothing written.
Refusals (``CloseRefused``, exit 1) are raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billing_engine.calendar import Month
from billing_engine.services.close import lines as ln
from billing_engine.services.close.base import (
    EXPORTED,
    LOCKED,
    OPEN,
    BadCloseInput,
    Outcome,
    cycle_lines,
    month_state,
    now,
    refuse_unless,
)
from billing_engine.services.close.claimed import carried_lines
from billing_engine.services.close.claims import build_claims
from billing_engine.services.close.edits import (
    CLAIM_TABLES,
    claim_context,
    failed_edits,
    practice_row,
)
from billing_engine.services.close.start import start
from billing_engine.store import Store
from billing_engine.store import close as closedb

__all__ = [
    "EXPORTED", "LOCKED", "OPEN", "BadCloseInput", "Outcome", "approve", "hold", "lock",
    "month_state", "now", "refuse_unless", "reopen", "review", "start",
]  # fmt: skip

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
        row = month_state(connection, key)
        frame = cycle_lines(connection, key, row["cycle"])
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
        row = month_state(connection, key)
    refuse_unless(row, (OPEN,), "approve or hold lines")
    at = now()
    with closedb.close_transaction(store.engine, key) as tx:
        closedb.bump_version(tx, key, row["version"], at)
        lines = cycle_lines(tx, key, row["cycle"])
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
            why=reason,
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
        row = month_state(connection, key)
        refuse_unless(row, (OPEN,), "lock")
        pending = closedb.count_lines(connection, key, row["cycle"], ln.PENDING)
    if pending:
        raise closedb.CloseRefused(
            f"{key}: {pending:,} lines are still pending: approve or hold them"
        )
    bundle = store.load_bundle(CLAIM_TABLES)
    at = now()
    cycle = int(row["cycle"])
    with closedb.close_transaction(store.engine, key) as tx:
        closedb.bump_version(tx, key, row["version"], at, state=LOCKED, last_locked_at=at)
        lines = cycle_lines(tx, key, cycle)
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
        by_edit = _counts(holds, "hold_reason") if holds.height else {}
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


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    """How many rows per value of ``column``, by value."""
    counts = frame.group_by(column).len().sort(column)
    return dict(zip(counts[column].to_list(), counts["len"].to_list(), strict=True))


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
        row = month_state(connection, key)
    if row["state"] == EXPORTED:
        raise closedb.CloseRefused(
            f"{key} is exported (cycle {row['cycle']}): what was sent cannot be reopened; "
            f"correct the data and run billing close start {key} for an adjustment cycle"
        )
    refuse_unless(row, (LOCKED,), "reopen")
    at = now()
    with closedb.close_transaction(store.engine, key) as tx:
        closedb.bump_version(tx, key, row["version"], at, state=OPEN)
        voided = closedb.claim_ids(tx, key, row["cycle"], LOCKED)
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
            why=reason.strip(),
            detail={"voided_claims": len(voided)},
        )
    return Outcome(
        f"{key}: cycle {row['cycle']} reopened ({reason.strip()}); {len(voided):,} claim ids "
        "voided (never reused)",
        {"month": key, "cycle": row["cycle"], "state": OPEN, "voided_claims": list(voided)},
    )
