"""What every close command shares: the month states, the refusals, ``Outcome``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy.engine import Connection

from billing_engine.errors import ConfigError
from billing_engine.store import close as closedb

OPEN, LOCKED, EXPORTED = "open", "locked", "exported"


class BadCloseInput(ConfigError):
    """A close command named lines or options that do not exist (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Outcome:
    """What a command did: one human summary and the same as data (``--json``)."""

    summary: str
    data: dict[str, Any] = field(default_factory=dict)


def now() -> dt.datetime:
    return closedb.utc_now()


def month_state(connection: Connection, month: str) -> dict[str, Any]:
    row = closedb.month_row(connection, month)
    if row is None:
        raise closedb.CloseRefused(f"{month} has no close yet: run billing close start {month}")
    return row


def refuse_unless(row: dict[str, Any], allowed: Sequence[str], action: str) -> None:
    if row["state"] not in allowed:
        raise closedb.CloseRefused(
            f"{row['month']} is {row['state']} (cycle {row['cycle']}): cannot {action}"
        )


def cycle_lines(connection: Connection, month: str, cycle: int) -> pl.DataFrame:
    return closedb.rows_of(
        closedb.LINES,
        (closedb.LINES.c.month == month) & (closedb.LINES.c.cycle == cycle),
        connection,
    )
