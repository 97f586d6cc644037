"""Reads and writes of the close tables, inside one transaction per close command.

``close_transaction`` opens the transaction a command runs in and turns what a
concurrent writer causes (a lost version check, a unique key taken meanwhile, SQLite's
"database is locked", a PostgreSQL serialization failure) into ``ChangedConcurrently``:
the transaction is rolled back and the store is as it was. Everything else here takes
the transaction's ``Connection``. Frames in and out are polars, typed by the model's
columns.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from billing_engine.errors import BillingError
from billing_engine.store.close_models import (
    AuditEntry,
    Claim,
    ClaimLine,
    CloseCycle,
    CloseGap,
    CloseLine,
    CloseMonth,
    ExportBatch,
)
from billing_engine.store.connect import write_batches
from billing_engine.store.models import EvaluationRun

CHANGED_BY_SOMEONE_ELSE = "changed by someone else, run it again"
# pg_advisory_xact_lock key of the export's control numbers (one lock per schema)
_CONTROL_NUMBER_LOCK = "billing_engine.store.close.control_number:"


class CloseRefused(BillingError):
    """A close command that may not run now (exit code 1); nothing was changed."""


class ChangedConcurrently(CloseRefused):
    """Another user changed the month meanwhile: nothing was changed, run it again."""

    def __init__(self, month: str) -> None:
        super().__init__(f"{month}: {CHANGED_BY_SOMEONE_ELSE}")


def _is_concurrency_error(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(
        marker in text
        for marker in ("database is locked", "could not serialize", "deadlock detected")
    )


@contextmanager
def close_transaction(engine: Engine, month: str) -> Iterator[Connection]:
    """One transaction; a concurrent writer's trace becomes ``ChangedConcurrently``."""
    try:
        with engine.begin() as connection:
            yield connection
    except (IntegrityError, OperationalError) as exc:
        if _is_concurrency_error(exc):
            raise ChangedConcurrently(month) from exc
        raise


def table(model: type[Any]) -> sa.Table:
    return model.__table__  # type: ignore[no-any-return]


MONTHS, CYCLES, LINES, GAPS = (table(m) for m in (CloseMonth, CloseCycle, CloseLine, CloseGap))
CLAIMS, CLAIM_LINES, BATCHES, AUDIT = (
    table(m) for m in (Claim, ClaimLine, ExportBatch, AuditEntry)
)


def _polars_type(column: sa.Column[Any]) -> pl.DataType:
    kind = column.type
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return pl.Decimal(18, 2)
    if isinstance(kind, sa.DateTime):
        return pl.Datetime("us", "UTC")
    if isinstance(kind, sa.Date):
        return pl.Date()
    if isinstance(kind, sa.Integer):
        return pl.Int64()
    if isinstance(kind, sa.JSON):
        return pl.Object()
    return pl.String()


def schema_of(tbl: sa.Table, columns: Sequence[str] | None = None) -> dict[str, pl.DataType]:
    names = columns or [c.name for c in tbl.columns]
    return {name: _polars_type(tbl.c[name]) for name in names}


def read_frame(
    connection: Connection, statement: sa.Select[Any], schema: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """The rows of ``statement`` as a frame of ``schema`` (its columns, in its order)."""
    rows = connection.execute(statement).all()
    names = list(schema)
    data = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    frame = pl.DataFrame(data, schema={n: _loose(t) for n, t in schema.items()}, strict=False)
    return frame.with_columns(pl.col(n).cast(t) for n, t in schema.items() if t != pl.Object())


def _loose(dtype: pl.DataType) -> pl.DataType:
    # Decimals from the driver may carry more places than the target: read wide, cast after
    return pl.Decimal(38, 10) if isinstance(dtype, pl.Decimal) else dtype


def rows_of(tbl: sa.Table, where: sa.ColumnElement[bool], connection: Connection) -> pl.DataFrame:
    """Every column of the rows of ``tbl`` matching ``where``."""
    return read_frame(connection, sa.select(*tbl.columns).where(where), schema_of(tbl))


def insert_frame(connection: Connection, tbl: sa.Table, frame: pl.DataFrame) -> None:
    """Insert the rows of ``frame`` (its columns must be columns of ``tbl``)."""
    if frame.height:
        write_batches(connection, tbl.insert(), frame)


def utc_now() -> dt.datetime:
    """The time a close command stamps on what it writes (UTC): the store's clock, as
    for ``imported_at``; the engine's rules never read it."""
    return dt.datetime.now(dt.UTC)


def record_run(connection: Connection, **values: Any) -> str:
    """Record the evaluation run of a ``start`` in its own transaction; returns its id.

    ``values``: the ``evaluation_runs`` columns but ``run_id`` and ``created_at``. A start
    that is refused therefore leaves no run behind.
    """
    run_id = str(uuid.uuid4())
    connection.execute(
        table(EvaluationRun).insert().values(run_id=run_id, created_at=utc_now(), **values)
    )
    return run_id


def month_row(connection: Connection, month: str) -> dict[str, Any] | None:
    row = connection.execute(sa.select(MONTHS).where(MONTHS.c.month == month)).mappings().first()
    return dict(row) if row is not None else None


def cycle_row(connection: Connection, month: str, cycle: int) -> dict[str, Any] | None:
    row = (
        connection.execute(
            sa.select(CYCLES).where(CYCLES.c.month == month, CYCLES.c.cycle == cycle)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def bump_version(
    connection: Connection, month: str, read_version: int, now: dt.datetime, **changes: Any
) -> None:
    """Take the month for this command: its version must still be ``read_version``."""
    result = connection.execute(
        MONTHS.update()
        .where(MONTHS.c.month == month, MONTHS.c.version == read_version)
        .values(version=read_version + 1, updated_at=now, **changes)
    )
    if result.rowcount != 1:
        raise ChangedConcurrently(month)


def insert_month(connection: Connection, month: str, now: dt.datetime) -> None:
    connection.execute(
        MONTHS.insert().values(
            month=month, state="open", cycle=1, version=1, updated_at=now, last_locked_at=None
        )
    )


def update_cycle(connection: Connection, month: str, cycle: int, **values: Any) -> None:
    connection.execute(
        CYCLES.update().where(CYCLES.c.month == month, CYCLES.c.cycle == cycle).values(**values)
    )


def audit(
    connection: Connection,
    *,
    at: dt.datetime,
    user: str,
    action: str,
    month: str,
    cycle: int | None,
    ids: Sequence[str] = (),
    why: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one row to the audit log (never updated nor deleted); ``why`` is its reason."""
    connection.execute(
        AUDIT.insert().values(
            at=at,
            user=user,
            action=action,
            month=month,
            cycle=cycle,
            ids=list(ids),
            reason=why,
            detail=_jsonable(dict(detail or {})),
        )
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def audit_rows(connection: Connection, month: str | None) -> list[dict[str, Any]]:
    statement = sa.select(AUDIT).order_by(AUDIT.c.entry_id)
    if month is not None:
        statement = statement.where(AUDIT.c.month == month)
    return [dict(r) for r in connection.execute(statement).mappings()]


def set_line_status(
    connection: Connection,
    line_ids: Sequence[str],
    *,
    status: str,
    user: str,
    at: dt.datetime,
    hold_reason: str | None = None,
    edit_failures: str | None = None,
) -> None:
    """Set the review status of close lines (in batches: an IN list has limits)."""
    values = {
        "status": status,
        "hold_reason": hold_reason,
        "edit_failures": edit_failures,
        "decided_by": user,
        "decided_at": at,
    }
    ids = list(line_ids)
    for start in range(0, len(ids), 5_000):
        connection.execute(
            LINES.update().where(LINES.c.line_id.in_(ids[start : start + 5_000])).values(**values)
        )


def set_line_holds(connection: Connection, holds: pl.DataFrame, user: str, at: dt.datetime) -> None:
    """Hold the lines of ``holds`` (``line_id, hold_reason, edit_failures``), one statement."""
    if not holds.height:
        return
    statement = (
        LINES.update()
        .where(LINES.c.line_id == sa.bindparam("b_line_id"))
        .values(
            status="held",
            hold_reason=sa.bindparam("b_hold_reason"),
            edit_failures=sa.bindparam("b_edit_failures"),
            decided_by=user,
            decided_at=at,
        )
    )
    write_batches(connection, statement, holds.rename(lambda c: f"b_{c}"))


def delete_lines(connection: Connection, line_ids: Sequence[str]) -> None:
    """Drop close lines of an open cycle that the evaluation no longer supports."""
    ids = list(line_ids)
    for start in range(0, len(ids), 5_000):
        connection.execute(LINES.delete().where(LINES.c.line_id.in_(ids[start : start + 5_000])))


def update_line_values(connection: Connection, frame: pl.DataFrame) -> None:
    """Refresh the evaluated values (amounts, evidence, rule, period) of kept lines."""
    if not frame.height:
        return
    columns = [c for c in frame.columns if c != "line_id"]
    statement = (
        LINES.update()
        .where(LINES.c.line_id == sa.bindparam("b_line_id"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )
    write_batches(connection, statement, frame.rename(lambda c: f"b_{c}"))


def delete_gaps(connection: Connection, month: str, cycle: int) -> None:
    connection.execute(GAPS.delete().where(GAPS.c.month == month, GAPS.c.cycle == cycle))


def set_claims_status(
    connection: Connection, month: str, cycle: int, from_status: str, to_status: str
) -> int:
    result = connection.execute(
        CLAIMS.update()
        .where(CLAIMS.c.month == month, CLAIMS.c.cycle == cycle, CLAIMS.c.status == from_status)
        .values(status=to_status)
    )
    return int(result.rowcount)


def max_control_number(connection: Connection) -> int:
    """The store's last interchange control number, for an export to number from.

    Control numbers are shared by every month, so two exports of different months at
    once would both read the same last number and the second would collide on the
    unique ``control_number`` (refused as "changed by someone else" although nobody
    changed its month). On PostgreSQL the reader therefore first takes a
    transaction-scoped advisory lock: a second export waits until the first commits,
    then reads the number the first one used. SQLite serialises writers already (the
    export's version update came first).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:prefix || current_schema()))"),
            {"prefix": _CONTROL_NUMBER_LOCK},
        )
    value = connection.execute(sa.select(sa.func.max(BATCHES.c.control_number))).scalar()
    return int(value or 0)


def batches(connection: Connection, month: str, cycle: int) -> list[dict[str, Any]]:
    statement = (
        sa.select(BATCHES)
        .where(BATCHES.c.month == month, BATCHES.c.cycle == cycle)
        .order_by(BATCHES.c.payer_id)
    )
    return [dict(r) for r in connection.execute(statement).mappings()]


# -- reads the close services ask for ------------------------------------------------


def count_lines(connection: Connection, month: str, cycle: int, status: str) -> int:
    """How many close lines of the cycle have ``status``."""
    statement = sa.select(sa.func.count()).where(
        LINES.c.month == month, LINES.c.cycle == cycle, LINES.c.status == status
    )
    return int(connection.execute(statement).scalar_one())


def claim_ids(connection: Connection, month: str, cycle: int, status: str) -> list[str]:
    """The ids of the cycle's claims in ``status``, in id order."""
    statement = (
        sa.select(CLAIMS.c.claim_id)
        .where(CLAIMS.c.month == month, CLAIMS.c.cycle == cycle, CLAIMS.c.status == status)
        .order_by(CLAIMS.c.claim_id)
    )
    return [str(i) for i in connection.execute(statement).scalars()]


def months(connection: Connection, month: str | None = None) -> list[dict[str, Any]]:
    """The ``close_months`` rows (one month, or all), by month."""
    statement = sa.select(MONTHS).order_by(MONTHS.c.month)
    if month is not None:
        statement = statement.where(MONTHS.c.month == month)
    return [dict(r) for r in connection.execute(statement).mappings()]


def line_sums_by_status(
    connection: Connection, month: str, cycle: int
) -> list[tuple[str, int, Decimal | None, Decimal | None]]:
    """Per review status of the cycle's lines: count, allowed and payer sums."""
    statement = (
        sa.select(
            LINES.c.status,
            sa.func.count(),
            sa.func.sum(LINES.c.allowed_amount),
            sa.func.sum(LINES.c.payer_amount),
        )
        .where(LINES.c.month == month, LINES.c.cycle == cycle)
        .group_by(LINES.c.status)
    )
    return [(r[0], int(r[1]), r[2], r[3]) for r in connection.execute(statement)]


def claim_sums_by_status(
    connection: Connection, month: str, cycle: int
) -> list[tuple[str, int, Decimal | None, Decimal | None, Decimal | None]]:
    """Per status of the cycle's claims: count, allowed, payer and charge sums."""
    statement = (
        sa.select(
            CLAIMS.c.status,
            sa.func.count(),
            sa.func.sum(CLAIMS.c.allowed_amount),
            sa.func.sum(CLAIMS.c.payer_amount),
            sa.func.sum(CLAIMS.c.total_charge),
        )
        .where(CLAIMS.c.month == month, CLAIMS.c.cycle == cycle)
        .group_by(CLAIMS.c.status)
    )
    return [(r[0], int(r[1]), r[2], r[3], r[4]) for r in connection.execute(statement)]


def changed_patients(
    connection: Connection,
    table_name: str,
    date_column: str,
    first: dt.date,
    last: dt.date,
    since: dt.datetime,
) -> list[str]:
    """The patient of each row of an interchange table dated ``first``..``last`` that was
    imported or retired after ``since`` (one entry per row)."""
    from billing_engine.store.models import IMPORTED_AT, INTERCHANGE_TABLES, RETIRED_AT

    t = INTERCHANGE_TABLES[table_name]
    changed = sa.or_(t.c[IMPORTED_AT] > since, t.c[RETIRED_AT] > since)
    statement = sa.select(t.c.patient_id).where(changed, t.c[date_column].between(first, last))
    return [str(r[0]) for r in connection.execute(statement)]


def exported_claims(connection: Connection, month: str | None = None) -> pl.DataFrame:
    """``claim_id, month, cycle, frequency, original_claim_id`` of every exported claim
    (of ``month`` when given)."""
    columns = ["claim_id", "month", "cycle", "frequency", "original_claim_id"]
    where = [CLAIMS.c.status == "exported"]
    if month is not None:
        where.append(CLAIMS.c.month == month)
    statement = sa.select(*(CLAIMS.c[c] for c in columns)).where(*where)
    return read_frame(connection, statement, schema_of(CLAIMS, columns))


def exported_claim_lines(
    connection: Connection, line_columns: Sequence[str], month: str | None = None
) -> pl.DataFrame:
    """``claim_id, charge`` and ``line_columns`` of the close line behind each service
    line of an exported claim (of ``month`` when given)."""
    where = [CLAIMS.c.status == "exported"]
    if month is not None:
        where.append(CLAIMS.c.month == month)
    line_schema = schema_of(LINES, list(line_columns))
    statement = (
        sa.select(CLAIM_LINES.c.claim_id, CLAIM_LINES.c.charge, *[LINES.c[c] for c in line_schema])
        .join(LINES, LINES.c.line_id == CLAIM_LINES.c.line_id)
        .join(CLAIMS, CLAIMS.c.claim_id == CLAIM_LINES.c.claim_id)
        .where(*where)
    )
    schema = {"claim_id": pl.String(), "charge": pl.Decimal(18, 2), **line_schema}
    return read_frame(connection, statement, schema)


def month_claims(
    connection: Connection,
    months_wanted: Sequence[str],
    claim_columns: Sequence[str],
    line_columns: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``claim_columns`` of the claims and ``line_columns`` of the claim lines of the
    given months (every status)."""
    wanted = list(months_wanted)
    claims = read_frame(
        connection,
        sa.select(*(CLAIMS.c[c] for c in claim_columns)).where(CLAIMS.c.month.in_(wanted)),
        schema_of(CLAIMS, list(claim_columns)),
    )
    lines = read_frame(
        connection,
        sa.select(*(CLAIM_LINES.c[c] for c in line_columns)).where(CLAIM_LINES.c.month.in_(wanted)),
        schema_of(CLAIM_LINES, list(line_columns)),
    )
    return claims, lines
