"""When two coverages of one patient and payer overlap: one definition for ingest and store.

A coverage runs from ``start_date`` through ``end_date`` inclusive (blank = open), as
the engine reads it when it looks for the coverage active on a date of service. Two
coverages of the same patient and payer with different start dates overlap when they
share at least one day; the store never keeps two such current rows (a corrected start
date must replace the old row, not sit beside it as a second open coverage).
"""

from __future__ import annotations

import polars as pl

COVERAGE_KEYS = ("patient_id", "payer_id")
OTHER = "other_"  # prefix of the right-hand row's columns in the pairs


def overlapping_coverages(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    """Pairs of a ``left`` and a ``right`` coverage that overlap.

    Both frames hold ``patient_id``, ``payer_id``, ``start_date``, ``end_date`` (typed)
    and any other columns; each result row has the left row's columns and the right
    row's prefixed with ``other_``. Rows with the same start date are the same coverage
    (its key) and never pair; a null key value never matches.
    """
    renamed = right.rename({c: OTHER + c for c in right.columns if c not in COVERAGE_KEYS})
    return (
        left.drop_nulls([*COVERAGE_KEYS, "start_date"])
        .join(renamed, on=list(COVERAGE_KEYS), how="inner")
        .filter(
            (pl.col("start_date") != pl.col(OTHER + "start_date"))
            & _on_or_before("start_date", OTHER + "end_date")
            & _on_or_before(OTHER + "start_date", "end_date")
        )
    )


def _on_or_before(start: str, end: str) -> pl.Expr:
    """``start`` is on or before ``end``, an open (null) end being forever."""
    return pl.col(end).is_null() | (pl.col(start) <= pl.col(end))
