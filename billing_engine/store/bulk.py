"""Bulk rows in and out of the store, inside the caller's transaction.

SQLAlchemy's ``executemany`` of dictionaries costs microseconds of Python per cell; a
million-patient practice is twenty-odd million rows. So the interchange tables move in
bulk, on the connection (and transaction) the caller holds:

- PostgreSQL: ``COPY ... FROM STDIN`` of CSV that polars writes (new rows straight into
  the table; changed rows into a temporary table, then one ``INSERT ... SELECT ... ON
  CONFLICT DO UPDATE``), and ``COPY (SELECT ...) TO STDOUT`` read back by polars;
- SQLite: the driver's ``executemany`` on plain tuples of the values SQLAlchemy itself
  would store (dates and times as ISO text, decimals as REAL, booleans as 0/1), and a
  plain cursor read, typed by polars;
- a whole store read back: ``billing_engine.store.whole_store``.

Values are turned into the database's form with polars expressions over whole columns;
only the driver touches one row at a time. Every frame given has the table's column
names and the store's dtypes (``codec``): text, integers, floats, decimals, booleans,
dates, times and UTC datetimes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billing_engine.io.safe_files import database_load_csv

# rows per COPY chunk or executemany call: bounded memory for the text in flight
BULK_ROWS = 200_000


# the rows of one slice as they are written: the frame's slice in, the table's rows out
Prepare = Callable[[pl.DataFrame], pl.DataFrame]


def _as_is(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


def insert_rows(
    connection: Connection,
    table: sa.Table,
    frame: pl.DataFrame,
    key: Sequence[str],
    prepare: Prepare = _as_is,
) -> None:
    """Insert rows whose primary keys the table does not hold (PostgreSQL: COPY, the
    caller holds the import lock; SQLite: as ``upsert_rows``, which costs it nothing more
    and stays right should another connection have written first).

    `prepare` completes each slice of ``BULK_ROWS`` rows just before it is written (the
    import's row digests): on PostgreSQL while the server stores the slices before it.
    """
    if frame.height == 0:
        return
    if connection.dialect.name == "postgresql":
        _copy_in(connection, table.name, frame, prepare)
    else:
        columns = prepare(frame.head(0)).columns
        _sqlite_write(connection, _insert_sql(connection, table, columns, key), frame, prepare)


# rows from which a first import into an empty PostgreSQL table builds the primary key
# after the COPY rather than row by row during it (encounters of 1M patients, 11.6M rows:
# 42.8 s against 51.5 s for the server)
KEY_BUILT_AFTER_ROWS = 100_000


@contextmanager
def primary_key_built_after(connection: Connection, table: sa.Table, rows: int) -> Iterator[None]:
    """Around the insert of `rows` rows into an EMPTY table: on PostgreSQL, from
    ``KEY_BUILT_AFTER_ROWS`` rows, its primary key is dropped and built again at the end
    (one sort instead of a B-tree insert per row), inside the caller's transaction: a
    failure rolls the drop back with everything else, and a reader of the table waits for
    the commit (the table is locked) instead of seeing it empty. The rows must hold no
    repeated key (``codec.to_store_frame`` drops repeats). The table is then analyzed:
    the planner knows its size and order at once (reading the whole store in key order
    walks the key's index instead of sorting), not when autovacuum comes by."""
    constraint = table.primary_key
    if (
        connection.dialect.name != "postgresql"
        or rows < KEY_BUILT_AFTER_ROWS
        or constraint.name is None
    ):
        yield
        return
    quote = connection.dialect.identifier_preparer.quote
    name, pk = quote(table.name), quote(str(constraint.name))
    columns = ", ".join(quote(c.name) for c in constraint.columns)
    connection.exec_driver_sql(f"ALTER TABLE {name} DROP CONSTRAINT {pk}")
    yield
    connection.exec_driver_sql(f"ALTER TABLE {name} ADD CONSTRAINT {pk} PRIMARY KEY ({columns})")
    connection.exec_driver_sql(f"ANALYZE {name}")


def upsert_rows(
    connection: Connection, table: sa.Table, frame: pl.DataFrame, key: Sequence[str]
) -> None:
    """Insert rows, or update every other column of the row with the same primary key."""
    if frame.height == 0:
        return
    if connection.dialect.name != "postgresql":
        _sqlite_write(connection, _insert_sql(connection, table, frame.columns, key), frame)
        return
    quote = connection.dialect.identifier_preparer.quote
    stage = quote(f"stage_{table.name}")
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {stage} (LIKE {quote(table.name)} INCLUDING DEFAULTS)"
    )
    _copy_in(connection, f"stage_{table.name}", frame)
    columns = ", ".join(quote(c) for c in frame.columns)
    connection.exec_driver_sql(
        f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} FROM {stage} "
        + _on_conflict(connection, frame.columns, key)
    )
    connection.exec_driver_sql(f"DROP TABLE {stage}")


def _on_conflict(connection: Connection, columns: Sequence[str], key: Sequence[str]) -> str:
    """``ON CONFLICT (key) DO UPDATE SET`` every other column (both dialects spell it so)."""
    quote = connection.dialect.identifier_preparer.quote
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in key)
    return f"ON CONFLICT ({', '.join(quote(k) for k in key)}) DO UPDATE SET {updates}"


def _driver_cursor(connection: Connection) -> Any:
    """A cursor of the driver's own connection: inside the caller's transaction."""
    return connection.connection.driver_connection.cursor()  # type: ignore[union-attr]


def select_frame(
    connection: Connection, statement: sa.Select[Any], schema: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """The rows of `statement` as a frame of `schema` (its columns, in order).

    Types: text, integers, floats, decimals, booleans, dates, times and UTC datetimes.
    """
    names = list(schema)
    sql = literal_sql(connection.dialect, statement)
    if connection.dialect.name == "postgresql":
        typed = [pl.DataFrame(schema=dict(schema))]
        for block in copy_out(connection, sql):  # typed a block at a time: bounded text
            typed.append(typed_copy_block(block, schema))
        return pl.concat(typed, rechunk=False)
    cursor = _driver_cursor(connection)
    cursor.execute(sql)
    stored = {n: _sqlite_dtype(schema[n]) for n in names}
    typed = [pl.DataFrame(schema=dict(schema))]
    while rows := cursor.fetchmany(BULK_ROWS):  # the driver's tuples, a block at a time
        raw = pl.DataFrame(rows, schema=stored, orient="row")
        typed.append(raw.select(_from_sqlite(pl.col(n), schema[n]).alias(n) for n in names))
    return pl.concat(typed, rechunk=False)


def literal_sql(dialect: sa.Dialect, statement: sa.Select[Any]) -> str:
    """`statement` as SQL text with its values written in (for COPY and connectorx)."""
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# --------------------------------------------------------------------------- PostgreSQL


def _as_copy_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Cells PostgreSQL's CSV COPY reads exactly (times to the microsecond, UTC stamps)."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Time:
            col = col.dt.strftime("%H:%M:%S%.6f")
        elif isinstance(dtype, pl.Datetime):
            col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00")
        exprs.append(col.alias(name))
    return frame.select(exprs)


def _copy_in(
    connection: Connection, table_name: str, frame: pl.DataFrame, prepare: Prepare = _as_is
) -> None:
    """COPY `frame` in, its slices prepared and turned into CSV while psycopg's writer
    thread sends the slices before (bounded: its queue holds at most 128 MiB), so the
    server stores rows as the client makes the next ones: the two overlap on two cores.
    """
    from psycopg.copy import QueuedLibpqWriter  # (only a PostgreSQL store loads the driver)

    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in prepare(frame.head(0)).columns)
    sql = f"COPY {quote(table_name)} ({columns}) FROM STDIN WITH (FORMAT csv)"
    cursor = _driver_cursor(connection)
    with cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for chunk in frame.iter_slices(BULK_ROWS):
            copy.write(database_load_csv(_as_copy_text(prepare(chunk))))


# bytes of CSV gathered before polars parses them (each COPY message is whole rows)
COPY_OUT_BYTES = 64 << 20


def copy_out(connection: Connection, select_sql: str) -> Iterator[bytes]:
    """The CSV of `select_sql`, in blocks of about ``COPY_OUT_BYTES`` of whole rows."""
    cursor = _driver_cursor(connection)
    block = io.BytesIO()
    with cursor.copy(f"COPY ({select_sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        for data in copy:
            block.write(data)
            if block.tell() >= COPY_OUT_BYTES:
                yield block.getvalue()
                block = io.BytesIO()
    if block.tell():
        yield block.getvalue()


def typed_copy_block(block: bytes, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Whole rows of ``COPY ... TO STDOUT`` CSV as a frame of `schema`."""
    names = list(schema)
    text_schema = {n: pl.String() for n in names}
    raw = pl.read_csv(block, has_header=False, new_columns=names, schema=text_schema)
    return raw.select(_from_text(pl.col(n), schema[n]).alias(n) for n in names)


def _from_text(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A PostgreSQL CSV cell as `dtype`."""
    if dtype == pl.String:
        return col
    if dtype == pl.Date:
        return col.str.to_date("%Y-%m-%d")
    if dtype == pl.Time:
        return col.str.to_time("%H:%M:%S%.f")
    if dtype == pl.Boolean:
        return pl.when(col.is_not_null()).then(col == "t")
    if isinstance(dtype, pl.Datetime):  # timestamptz, in the session's zone with its offset
        stamp = col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_unit="us")
        return stamp.dt.convert_time_zone(dtype.time_zone or "UTC")
    return col.cast(dtype)


# --------------------------------------------------------------------------- SQLite


def _insert_sql(
    connection: Connection, table: sa.Table, columns: Sequence[str], key: Sequence[str]
) -> str:
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks}) " + _on_conflict(
        connection, columns, key
    )


def _as_sqlite_values(frame: pl.DataFrame) -> pl.DataFrame:
    """The values SQLAlchemy's SQLite types store: ISO text for dates, times and stamps
    (``YYYY-MM-DD``, ``HH:MM:SS.ffffff``, ``YYYY-MM-DD HH:MM:SS.ffffff``), REAL for
    decimals; booleans stay booleans (the driver stores 0/1)."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        elif dtype == pl.Time:
            col = col.dt.strftime("%H:%M:%S%.6f")
        elif isinstance(dtype, pl.Datetime):
            stamp = col.dt.convert_time_zone("UTC") if dtype.time_zone else col
            col = stamp.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        elif isinstance(dtype, pl.Decimal):
            col = col.cast(pl.Float64)
        exprs.append(col.alias(name))
    return frame.select(exprs)


def _sqlite_write(
    connection: Connection, sql: str, frame: pl.DataFrame, prepare: Prepare = _as_is
) -> None:
    cursor = _driver_cursor(connection)
    for part in frame.iter_slices(BULK_ROWS):
        chunk = _as_sqlite_values(prepare(part))
        cursor.executemany(sql, chunk.iter_rows())


def _sqlite_dtype(dtype: pl.DataType) -> pl.DataType:
    """How SQLite hands a stored value back: dates and times as text, decimals as REAL,
    booleans as 0/1."""
    if dtype in (pl.Date, pl.Time) or isinstance(dtype, pl.Datetime):
        return pl.String()
    if isinstance(dtype, pl.Decimal):
        return pl.Float64()
    if dtype == pl.Boolean:
        return pl.Int64()
    return dtype


def _from_sqlite(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Date:
        return col.str.to_date("%Y-%m-%d")
    if dtype == pl.Time:
        return col.str.to_time("%H:%M:%S%.f")
    if dtype == pl.Boolean:
        return col.cast(pl.Boolean)
    if isinstance(dtype, pl.Datetime):  # stored as naive UTC text
        stamp = col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
        return stamp.dt.replace_time_zone(dtype.time_zone) if dtype.time_zone else stamp
    if isinstance(dtype, pl.Decimal):  # via the REAL's shortest text, as SQLAlchemy rounds it
        return col.round(dtype.scale or 0).cast(pl.String).cast(dtype)
    return col
