"""The whole close of a month in one call, as ``billing demo`` runs it.

start -> approve every pending line -> lock (the claim edits hold what a payer would
reject) -> export. A month already exported gets an adjustment cycle when the store
changed since (else its files are written again, the same bytes); a locked month is
exported. Each step is the command itself, with its own transaction and audit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billing_engine.calendar import Month
from billing_engine.services.close import commands as cmd
from billing_engine.services.close import export as close_export
from billing_engine.store import Store
from billing_engine.store import close as closedb


@dataclass(frozen=True)
class WholeClose:
    steps: tuple[cmd.Outcome, ...]
    held_by_edits: dict[str, int]
    out: Path

    @property
    def export(self) -> cmd.Outcome:
        return self.steps[-1]


def _state(store: Store, month: Month) -> str | None:
    with store.engine.connect() as connection:
        row = closedb.month_row(connection, str(month))
    return None if row is None else str(row["state"])


def close_month(
    store: Store,
    month: Month,
    *,
    user: str,
    out_root: Path,
    settings: Mapping[str, Any] | None = None,
) -> WholeClose:
    """Close ``month`` end to end; the files go to ``out_root/<month>-cycle<n>``."""
    steps: list[cmd.Outcome] = []
    held: dict[str, int] = {}
    state = _state(store, month)
    if state in (None, cmd.OPEN, cmd.EXPORTED):
        started = cmd.start(store, month, user=user, settings=settings)
        steps.append(started)
        state = _state(store, month)
    if state == cmd.OPEN:
        steps.append(cmd.approve(store, month, user=user, all_pending=True))
        locked = cmd.lock(store, month, user=user)
        held = dict(locked.data.get("edits", {}))
        steps.append(locked)
    with store.engine.connect() as connection:
        row = closedb.month_row(connection, str(month))
    assert row is not None
    out = out_root / f"{month}-cycle{row['cycle']}"
    steps.append(close_export.export(store, month, user=user, out=out))
    return WholeClose(tuple(steps), held, out)


def held_lines(store: Store, month: Month) -> int:
    """Lines of the month's current cycle held (by a person or a claim edit)."""
    with store.engine.connect() as connection:
        row = closedb.month_row(connection, str(month))
        if row is None:
            return 0
        return closedb.count_lines(connection, str(month), row["cycle"], "held")
