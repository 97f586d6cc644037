"""Bulk rows in and out of the store, inside the caller's transaction.

SQLAlchemy's ``executemany`` of dictionaries costs microseconds of Python per cell; a
million-patient practice is twenty-odd million rows. So the interchange tables move in
bulk, on the connection (and transaction) the caller holds:

- PostgreSQL: ``COPY ... FROM STDIN`` of CSV that polars writes (new rows straight into
  the table; changed rows into a temporary table, then one ``INSERT ... SELECT ... ON
  CONFLICT DO UPDATE``), and ``COPY (SELECT ...) TO STDOUT`` read back by polars (a
  whole store: the COPYs received by a thread while polars types what came before);
- SQLite: the driver's ``executemany`` on plain tuples of the values SQLAlchemy itself
  would store (dates and times as ISO text, decimals as REAL, booleans as 0/1), and a
  plain cursor read, typed by polars;
- a whole SQLite file read back (``read_whole_store``): connectorx, straight into
  Arrow columns (a large table in ranges of rowids, two at once), all tables from one
  committed state, each table converted by the caller as soon as it is read.

Values are turned into the database's form with polars expressions over whole columns;
only the driver touches one row at a time. Every frame given has the table's column
names and the store's dtypes (``codec``): text, integers, floats, decimals, booleans,
dates, times and UTC datetimes.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote as url_quote

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

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
    sql = _literal_sql(connection.dialect, statement)
    if connection.dialect.name == "postgresql":
        typed = [pl.DataFrame(schema=dict(schema))]
        for block in _copy_out(connection, sql):  # typed a block at a time: bounded text
            typed.append(_typed_copy_block(block, schema))
        return pl.concat(typed, rechunk=False)
    cursor = _driver_cursor(connection)
    cursor.execute(sql)
    stored = {n: _sqlite_dtype(schema[n]) for n in names}
    typed = [pl.DataFrame(schema=dict(schema))]
    while rows := cursor.fetchmany(BULK_ROWS):  # the driver's tuples, a block at a time
        raw = pl.DataFrame(rows, schema=stored, orient="row")
        typed.append(raw.select(_from_sqlite(pl.col(n), schema[n]).alias(n) for n in names))
    return pl.concat(typed, rechunk=False)


def _literal_sql(dialect: sa.Dialect, statement: sa.Select[Any]) -> str:
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


def _copy_out(connection: Connection, select_sql: str) -> Iterator[bytes]:
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


def _typed_copy_block(block: bytes, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Whole rows of ``COPY ... TO STDOUT`` CSV as a frame of `schema`."""
    names = list(schema)
    text_schema = {n: pl.String() for n in names}
    raw = pl.read_csv(block, has_header=False, new_columns=names, schema=text_schema)
    return raw.select(_from_text(pl.col(n), schema[n]).alias(n) for n in names)


def _read_postgresql(
    connection: Connection, selects: Selects, finish: Finish
) -> dict[str, pl.DataFrame]:
    """Every select's rows, the ``COPY`` of each in turn received by a thread of its own
    while this one types the blocks before it (and finishes the tables before it): the
    driver's loop over the COPY's messages, one a row, overlaps polars' parsing."""

    def blocks() -> Iterator[tuple[str, bytes | None]]:  # None: the table's rows are all in
        for name, (statement, _) in selects.items():
            sql = _literal_sql(connection.dialect, statement)
            for block in _copy_out(connection, sql):
                yield name, block
            yield name, None

    whole: dict[str, pl.DataFrame] = {}
    typed: list[pl.DataFrame] = []
    for name, block in _made_ahead(blocks()):
        schema = selects[name][1]
        if block is not None:
            typed.append(_typed_copy_block(block, schema))
            continue
        frame = pl.concat([pl.DataFrame(schema=dict(schema)), *typed], rechunk=False)
        typed.clear()
        whole[name] = finish(name, frame)
        del frame  # the frame as read goes now, not when the next table is in
    return whole


_T = TypeVar("_T")

# items a producing thread may hold ready before its consumer takes them (``_made_ahead``)
AHEAD_ITEMS = 2


def _made_ahead(items: Iterator[_T]) -> Iterator[_T]:
    """`items`, made by a thread of their own up to ``AHEAD_ITEMS`` ahead of the
    consumer; an error of the producer is raised in the consumer, and a consumer that
    stops early stops the producer at its next item."""
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=AHEAD_ITEMS)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((False, exc))
        finally:  # a generator stopped early ends its work here (a COPY: its block)
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="made-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, item = ready.get()
            if more:
                yield item
            elif item is None:
                return
            else:
                raise item
    finally:
        stop.set()
        thread.join()


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


# ------------------------------------------------------------- a whole store, read

# The dtypes connectorx reads from SQLite by the columns' declared types exactly as the
# cursor path types them (text, integers, REAL, ISO dates and times, 0/1 booleans); a
# table with another (a decimal: NUMERIC has no declared type connectorx knows) is read
# by the cursor.
_CONNECTORX_DTYPES = (pl.String, pl.Int64, pl.Float64, pl.Date, pl.Time, pl.Boolean)

# reads of a SQLite file that a commit of another connection may interleave with before
# the tables are read in one transaction instead (``read_whole_store``)
SNAPSHOT_ATTEMPTS = 3

# reads in flight at once (connectorx reads outside the GIL): 100,000 patients' SQLite
# store in 3.1 s instead of 4.1 s on 2 cores
READ_THREADS = min(2, os.cpu_count() or 1)

# a SQLite table whose rowids span more than this is read as ranges of about this many
# rowids, each on a connection of its own, ``READ_THREADS`` at once: the encounters of
# 100,000 patients (1.16 M rows) in 1.3-1.4 s instead of 2.2-2.6 s on 2 cores
ROWID_RANGE_ROWS = 250_000

Selects = Mapping[str, tuple[sa.Select[Any], Mapping[str, pl.DataType]]]

# what becomes of a table's frame as soon as it is read (the read of the next ones goes
# on meanwhile): the table's name and frame in, the frame kept out
Finish = Callable[[str, pl.DataFrame], pl.DataFrame]


def _kept(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    return frame


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine that another connection may read too: a
    plain file URL without query options; None otherwise (memory, a URI, PostgreSQL)."""
    url = engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or url.query or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def read_whole_store(
    engine: Engine, selects: Selects, finish: Finish = _kept
) -> dict[str, pl.DataFrame]:
    """Each named select as a frame of its schema, all from one committed state, each
    handed to `finish` as soon as it is read (so a caller's conversion of one table
    overlaps the read of the next, and the frame as read is let go table by table).

    At a million patients the SQLite driver's tuples cost more than the evaluation, so
    a SQLite file's tables are read by connectorx straight into Arrow columns, a large
    table in ranges of its rowids (``ROWID_RANGE_ROWS``), ``READ_THREADS`` reads at a
    time, on connections of its own (a table of another dtype, or one connectorx fails
    on, as ``select_frame`` reads it). ``PRAGMA data_version`` of a watching connection
    is read before and after; when another connection committed in between, everything
    is read again, at most ``SNAPSHOT_ATTEMPTS`` times. Else (PostgreSQL, a memory
    database, those attempts spent, connectorx not installed) one transaction reads
    every table, repeatable-read on PostgreSQL: there each table's ``COPY`` is received
    by a thread while polars types the blocks before (``_read_postgresql``; 100,000
    patients' store in 2.7-2.8 s, 4.3-4.6 s one after the other; connectorx took
    3.2-3.9 s, the server's two cores shared with the client).
    """
    read_sql = _connectorx_reader()
    path = sqlite_file(engine)
    if read_sql is not None and path is not None:
        frames = _read_sqlite_file(engine, path, read_sql, selects, finish)
        if frames is not None:
            return frames
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # one snapshot for all tables
            connection.execution_options(isolation_level="REPEATABLE READ")
            return _read_postgresql(connection, selects, finish)
        return {
            name: finish(name, select_frame(connection, *select))
            for name, select in selects.items()
        }


def _connectorx_reader() -> Callable[..., Any] | None:
    try:
        import connectorx
    except ImportError:  # pragma: no cover - a platform without its wheel
        return None
    return connectorx.read_sql


def _read_sqlite_file(
    engine: Engine, path: Path, read_sql: Callable[..., Any], selects: Selects, finish: Finish
) -> dict[str, pl.DataFrame] | None:
    quoted = url_quote(str(path))
    uri = "sqlite://" + quoted
    watch = sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, isolation_level=None)
    try:
        for _ in range(SNAPSHOT_ATTEMPTS):
            before = watch.execute("PRAGMA data_version").fetchone()
            pieces = {name: _rowid_ranges(watch, select) for name, (select, _) in selects.items()}
            whole: dict[str, pl.DataFrame] = {}
            with (
                ThreadPoolExecutor(max_workers=READ_THREADS) as pool,  # outside the GIL
                engine.connect() as connection,
            ):
                futures = {
                    name: [
                        pool.submit(_read_arrow, engine, uri, read_sql, piece, selects[name][1])
                        for piece in pieces[name]
                    ]
                    for name in selects
                }
                for name, parts in futures.items():  # in table order, each as it is read
                    frames = [future.result() for future in parts]
                    if any(frame is None for frame in frames):
                        frame = select_frame(connection, *selects[name])
                    else:
                        frame = pl.concat(cast(list[pl.DataFrame], frames), rechunk=False)
                    del frames, futures[name][:]
                    whole[name] = finish(name, frame)
                    del frame
            if watch.execute("PRAGMA data_version").fetchone() == before:
                return whole
    finally:
        watch.close()
    return None


def _rowid_ranges(watch: sqlite3.Connection, select: sa.Select[Any]) -> list[sa.Select[Any]]:
    """`select` as selects of consecutive rowid ranges of its table (itself when the
    table's rowids span at most ``ROWID_RANGE_ROWS``, or it reads from anything else)."""
    froms = select.get_final_froms()
    if len(froms) != 1 or not isinstance(froms[0], sa.Table):
        return [select]
    quoted = '"' + froms[0].name.replace('"', '""') + '"'
    try:
        low, high = watch.execute(f"SELECT min(rowid), max(rowid) FROM {quoted}").fetchone()
    except sqlite3.OperationalError:  # a table without rowids
        return [select]
    if low is None or high - low < ROWID_RANGE_ROWS:
        return [select]
    rowid: sa.ColumnClause[int] = sa.literal_column("rowid", sa.Integer())
    count = math.ceil((high - low + 1) / ROWID_RANGE_ROWS)
    bounds = [low + (high - low + 1) * k // count for k in range(count + 1)]
    return [
        select.where(rowid >= start, rowid < stop) for start, stop in itertools.pairwise(bounds)
    ]


def _read_arrow(
    engine: Engine,
    uri: str,
    read_sql: Callable[..., Any],
    select: sa.Select[Any],
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame | None:
    """The select read by connectorx as a frame of `schema`; None when a dtype is not
    one it reads as the driver paths do, or it fails (those paths then say why)."""
    if not all(any(dtype == kind for kind in _CONNECTORX_DTYPES) for dtype in schema.values()):
        return None
    sql = _literal_sql(engine.dialect, select)
    try:
        table = read_sql(uri, sql, return_type="arrow")
    except Exception:  # a stored value of another type: the cursor path says which
        return None
    frame = pl.from_arrow(table)
    names = list(schema)
    if not isinstance(frame, pl.DataFrame) or frame.width != len(names):
        return None
    return frame.select(
        pl.col(old).cast(schema[new]).alias(new)
        for old, new in zip(frame.columns, names, strict=True)
    )
