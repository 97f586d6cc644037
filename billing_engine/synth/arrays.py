"""Whole-array helpers of the synthetic practice: days as integers, draws, columns.

Days are integers (days since 1970-01-01; ``NO_DAY`` is "no date"); every helper works
on whole numpy arrays or polars columns, never on one patient at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Bool = NDArray[np.bool_]

EPOCH = dt.date(1970, 1, 1)
NO_DAY = int(np.iinfo(np.int32).min)  # "no date" in the integer day columns

ENCOUNTER_TEXT = (
    "kind", "program", "contact_mode", "mdm", "cpt", "activities", "place_of_service",
    "outcome",
)  # fmt: skip


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def weighted_choice(rng: np.random.Generator, weights: Sequence[float], size: int) -> I64:
    """Category indexes drawn with the given (unnormalised) weights."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum /= cum[-1]
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int64)


def uniform_day(rng: np.random.Generator, lo: I64, hi: I64) -> I64:
    """A day drawn uniformly from lo..hi inclusive (lo where hi < lo)."""
    span = np.maximum(hi - lo + 1, 1)
    day: I64 = (lo + np.floor(rng.random(len(lo)) * span)).astype(np.int64)
    return day


def weekday_of(day: I64) -> I64:
    """0 = Monday (1970-01-01 was a Thursday)."""
    weekday: I64 = ((day + 3) % 7).astype(np.int64)
    return weekday


def nearest_weekday(day: I64) -> I64:
    """Saturday -> Friday, Sunday -> Monday."""
    wd = weekday_of(day)
    moved: I64 = (day - (wd == 5) + (wd == 6)).astype(np.int64)
    return moved


def weekday_within(day: I64, lo: I64, hi: I64) -> I64:
    """Move weekend days to the Friday before, else the Monday after, inside lo..hi."""
    wd = weekday_of(day)
    back = day - np.where(wd == 5, 1, 0) - np.where(wd == 6, 2, 0)
    fwd = day + np.where(wd == 5, 2, 0) + np.where(wd == 6, 1, 0)
    return np.where(back >= lo, back, np.where(fwd <= hi, fwd, day)).astype(np.int64)


def next_weekday(day: I64) -> I64:
    wd = weekday_of(day)
    return (day + np.where(wd == 5, 2, 0) + np.where(wd == 6, 1, 0)).astype(np.int64)


def first_of_month(day: I64) -> I64:
    months = day.astype("datetime64[D]").astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64)


def add_years_month_start(day: I64, years: int) -> I64:
    """The 1st of the month `years` after the month of `day`."""
    months = day.astype("datetime64[D]").astype("datetime64[M]") + 12 * years
    return months.astype("datetime64[D]").astype(np.int64)


def jan_first(years: I64) -> I64:
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)


def pick(values: Sequence[str | None], idx: I64) -> pl.Series:
    """values[idx] as a string Series (None -> null)."""
    return pl.Series(list(values), dtype=pl.String).gather(pl.Series(idx, dtype=pl.Int64))


def make_ids(prefix: str, count: int, width: int | None = None) -> pl.Series:
    width = width or max(6, len(str(count)))
    numbers = pl.Series(np.arange(1, count + 1, dtype=np.int64)).cast(pl.String)
    return (prefix + numbers.str.zfill(width)).alias("id")


def date_col(name: str) -> pl.Expr:
    col = pl.col(name)
    return pl.when(col == NO_DAY).then(None).otherwise(col).cast(pl.Int32).cast(pl.Date).alias(name)


def day_col(name: str, values: I64) -> pl.Series:
    return pl.Series(name, values.astype(np.int64))


def minutes_to_time(name: str) -> pl.Expr:
    col = pl.col(name)
    return pl.when(col < 0).then(None).otherwise(col * 60_000_000_000).cast(pl.Time).alias(name)


def repeat_rows(counts: I64) -> tuple[I64, I64]:
    """For row counts per cell: (cell index of each new row, its position within the cell)."""
    cell = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    position = np.arange(len(cell), dtype=np.int64) - np.repeat(first, counts)
    return cell, position


def encounter_rows(
    kind: str,
    pat: I64,
    day: I64,
    minutes: I64,
    performer: I64,
    billing: I64 | None = None,
    start: I64 | None = None,
    priority: int = 9,
    **text: pl.Series | str | None,
) -> pl.DataFrame:
    """One kind of encounters as an integer-coded frame (patient/practitioner indexes)."""
    rows = len(pat)
    none = np.full(rows, -1, dtype=np.int64)
    frame = pl.DataFrame(
        {
            "pat": pat.astype(np.int64),
            "date": day.astype(np.int64),
            "start": none if start is None else start.astype(np.int64),
            "minutes": minutes.astype(np.int64),
            "performer": performer.astype(np.int64),
            "billing": none if billing is None else billing.astype(np.int64),
            "priority": np.full(rows, priority, dtype=np.int64),
        }
    )
    unknown = set(text) - set(ENCOUNTER_TEXT)
    if unknown:
        raise TypeError(f"unknown encounter columns {sorted(unknown)}")
    text = {**text, "kind": kind}
    columns: list[pl.Series | pl.Expr] = []
    for name in ENCOUNTER_TEXT:
        value = text.get(name)
        if isinstance(value, pl.Series):
            columns.append(value.cast(pl.String).alias(name))
        else:
            columns.append(pl.lit(value, dtype=pl.String).alias(name))
    return frame.with_columns(columns)
