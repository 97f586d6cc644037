"""The record of evaluation runs: one row per ``billing evaluate`` whose outputs are written."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.store.connect import StoreError, as_utc, driver_reason
from billing_engine.store.models import EvaluationRun


def is_canonical_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def record_run(
    engine: Engine,
    store_url: str,
    month: str,
    as_of: dt.date,
    rule_set_version: str,
    input_row_counts: dict[str, int],
    line_count: int,
    gap_count: int,
    source: str,
    run_id: str | None = None,
    *,
    allow_unverified: bool = False,
    unverified_parameters: Iterable[str] | None = None,
) -> str:
    """Record one evaluation run; returns its ``run_id`` (a UUID).

    `run_id` is the id the run's outputs already carry (``billing evaluate`` makes
    it before writing); without it a new one is made. The commands record a run
    only after its outputs are in place, so a recorded run always has outputs; a
    run killed in between leaves outputs whose manifest names a run id and store
    that the store does not list, which is visible, never silent.
    ``allow_unverified`` records a run made with ``--allow-unverified`` and
    ``unverified_parameters`` the parameters it used past their verified date.
    """
    try:
        canonical = str(Month.parse(month)) == month
    except ConfigError:
        canonical = False
    if not canonical:
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    if run_id is None:
        run_id = str(uuid.uuid4())
    elif not is_canonical_uuid(run_id):
        raise ValueError(f"run_id must be a UUID in canonical form, not {run_id!r}")
    run = EvaluationRun(
        run_id=run_id,
        month=month,
        as_of=as_of,
        created_at=dt.datetime.now(dt.UTC),
        rule_set_version=rule_set_version,
        input_row_counts={str(k): int(v) for k, v in input_row_counts.items()},
        line_count=line_count,
        gap_count=gap_count,
        source=source,
        allow_unverified=allow_unverified,
        unverified_parameters=(
            sorted(unverified_parameters) if unverified_parameters is not None else None
        ),
    )
    try:
        with Session(engine) as session, session.begin():
            session.add(run)
    except SQLAlchemyError as exc:  # rolled back already
        reason = driver_reason(exc)
        raise StoreError(f"recording run {run_id} in {store_url} failed: {reason}") from exc
    return run_id


def recorded_runs(engine: Engine) -> list[dict[str, Any]]:
    """Every recorded evaluation run, oldest first."""
    with Session(engine) as session:
        records = session.scalars(
            sa.select(EvaluationRun).order_by(EvaluationRun.created_at, EvaluationRun.run_id)
        ).all()
        return [
            {
                "run_id": r.run_id,
                "month": r.month,
                "as_of": r.as_of,
                "created_at": as_utc(r.created_at),
                "rule_set_version": r.rule_set_version,
                "input_row_counts": dict(r.input_row_counts),
                "line_count": r.line_count,
                "gap_count": r.gap_count,
                "source": r.source,
                "allow_unverified": bool(r.allow_unverified),
                "unverified_parameters": list(r.unverified_parameters or []),
            }
            for r in records
        ]
