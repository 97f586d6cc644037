"""A whole store read back as frames, from one committed state (``read_whole_store``).

What ``bundles.load_bundle`` (``billing evaluate --db``, the close) reads a practice
with: every interchange table's current rows, each handed to the caller's conversion
as soon as it is read.

- SQLite file: connectorx, straight into Arrow columns, a large table in ranges of
  rowids, ``READ_THREADS`` reads at once on connections of their own, under a ``PRAGMA
  data_version`` watch (a commit in between: everything read again);
- PostgreSQL: ``COPY (SELECT ...) TO STDOUT`` on ``READ_THREADS`` connections sharing
  one exported repeatable-read snapshot, each connection's COPYs received by a thread
  while polars types the blocks that came;
- otherwise (a memory database, connectorx missing): one transaction, ``select_frame``.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote as url_quote

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from billing_engine.store.bulk import copy_out, literal_sql, select_frame, typed_copy_block

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
    every table; on PostgreSQL in one repeatable-read snapshot shared by
    ``READ_THREADS`` connections, each table's ``COPY`` received by a thread while
    polars types the blocks that came (``_read_postgresql``; 100,000 patients' store in
    1.9-2.4 s, 2.7-2.8 s on one connection, 4.3-4.6 s one block after the other;
    connectorx took 3.2-3.9 s).
    """
    read_sql = _connectorx_reader()
    path = sqlite_file(engine)
    if read_sql is not None and path is not None:
        frames = _read_sqlite_file(engine, path, read_sql, selects, finish)
        if frames is not None:
            return frames
    if engine.dialect.name == "postgresql":  # one snapshot for all tables
        return _read_postgresql(engine, selects, finish)
    with engine.connect() as connection:
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
    table = _table_of(select)
    if table is None:
        return [select]
    quoted = '"' + table.replace('"', '""') + '"'
    # one subquery each: SQLite answers a lone min() or max() of the rowid from the
    # b-tree's ends, but scans the whole table for both in one select
    bounds_sql = f"SELECT (SELECT min(rowid) FROM {quoted}), (SELECT max(rowid) FROM {quoted})"
    try:
        low, high = watch.execute(bounds_sql).fetchone()
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
    sql = literal_sql(engine.dialect, select)
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


# --------------------------------------------------------------------------- PostgreSQL


def _read_postgresql(engine: Engine, selects: Selects, finish: Finish) -> dict[str, pl.DataFrame]:
    """Every select's rows from one repeatable-read snapshot, on ``READ_THREADS``
    connections at once (the first exports its snapshot, the others take it: one
    committed state), the tables shared among them by size (``_by_size``). Each
    connection's ``COPY``s are received by a thread of its own while this one types the
    blocks that came (and finishes each table when its rows are all in): the server
    formats the text of two tables at once, the driver's loop over the COPY's messages
    (one a row) overlaps polars' parsing."""
    with engine.connect() as first, ExitStack() as others:
        first.execution_options(isolation_level="REPEATABLE READ")
        groups = _by_size(first, selects, READ_THREADS)
        connections = [first]
        if len(groups) > 1:
            snapshot = str(first.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one())
            if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):  # pragma: no cover - the server's
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            for _ in groups[1:]:
                other = others.enter_context(engine.connect())
                other.execution_options(isolation_level="REPEATABLE READ")
                other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                connections.append(other)

        def blocks(
            connection: Connection, names: Sequence[str]
        ) -> Iterator[tuple[str, bytes | None]]:  # None: the table's rows are all in
            for name in names:
                sql = literal_sql(connection.dialect, selects[name][0])
                for block in copy_out(connection, sql):
                    yield name, block
                yield name, None

        whole: dict[str, pl.DataFrame] = {}
        typed: dict[str, list[pl.DataFrame]] = {name: [] for name in selects}
        streams = [blocks(c, names) for c, names in zip(connections, groups, strict=True)]
        # the reading threads end here, before the connections they read close
        with closing(_made_ahead(*streams)) as arriving:
            for name, block in arriving:
                schema = selects[name][1]
                if block is not None:
                    typed[name].append(typed_copy_block(block, schema))
                    continue
                frame = pl.concat(
                    [pl.DataFrame(schema=dict(schema)), *typed.pop(name)], rechunk=False
                )
                whole[name] = finish(name, frame)
                del frame  # the frame as read goes now, not when the next table is in
    return {name: whole[name] for name in selects}


def _by_size(connection: Connection, selects: Selects, count: int) -> list[list[str]]:
    """The selects' names in at most `count` groups of about equal table size (the
    largest first, each to the group with least so far), each in the selects' order."""
    sizes: dict[str, int] = {}
    for name, (statement, _) in selects.items():
        table = _table_of(statement)
        size = None
        if table is not None:
            size = connection.execute(
                sa.text("SELECT pg_relation_size(to_regclass(:name))"), {"name": table}
            ).scalar_one()
        sizes[name] = int(size or 0)
    groups: list[list[str]] = [[] for _ in range(max(1, min(count, len(selects))))]
    totals = [0] * len(groups)
    for name in sorted(selects, key=lambda n: -sizes[n]):
        emptiest = totals.index(min(totals))
        groups[emptiest].append(name)
        totals[emptiest] += sizes[name]
    order = {name: k for k, name in enumerate(selects)}
    return [sorted(group, key=order.__getitem__) for group in groups if group]


def _table_of(select: sa.Select[Any]) -> str | None:
    """The name of the one table `select` reads from (None: anything else)."""
    froms = select.get_final_froms()
    if len(froms) != 1 or not isinstance(froms[0], sa.Table):
        return None
    return froms[0].name


_T = TypeVar("_T")

# items a producing thread may hold ready before its consumer takes them (``_made_ahead``)
AHEAD_ITEMS = 2


def _made_ahead(*streams: Iterator[_T]) -> Generator[_T, None, None]:
    """The items of `streams`, each made by a thread of its own up to ``AHEAD_ITEMS``
    ahead of the consumer (each stream's in its order, the streams' as they come); an
    error of a producer is raised in the consumer, and a consumer that stops early stops
    the producers at their next item."""
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=AHEAD_ITEMS * len(streams))
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce(items: Iterator[_T]) -> None:
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

    threads = [
        threading.Thread(target=produce, args=(items,), name="made-ahead", daemon=True)
        for items in streams
    ]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            more, item = ready.get()
            if more:
                yield item
            elif item is None:
                running -= 1
            else:
                raise item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
