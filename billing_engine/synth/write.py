"""Write a bundle as the interchange CSV folder."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from billing_engine.io.bundle import Bundle
from billing_engine.io.safe_files import write_csv
from billing_engine.io.schema import TABLE_ORDER

# how the interchange CSV writes empty cells, dates and times
CSV_FORMAT = {"null_value": "", "date_format": "%Y-%m-%d", "time_format": "%H:%M"}


def as_csv_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its list columns joined by ';', as the interchange CSV holds them."""
    return frame.select(
        pl.col(c).list.join(";") if isinstance(t, pl.List) else pl.col(c)
        for c, t in frame.schema.items()
    )


def write_bundle_csv(bundle: Bundle, out: Path) -> dict[str, int]:
    """Write one ``<table>.csv`` per non-empty table into `out`; returns rows per file.

    Interchange formats: ISO dates, HH:MM times, true/false, lists joined by ';', empty
    cells for nulls. A ``<table>.csv`` left over from an earlier bundle for a table that
    is empty now is removed, so the folder always reads back as this bundle. Files are
    written as ``safe_files.write_csv`` does (text that begins like a formula gets a
    leading apostrophe; a symbolic link of a file's name is replaced, never followed).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in TABLE_ORDER:
        frame = bundle[name]
        target = out / f"{name}.csv"
        if frame.height == 0:
            target.unlink(missing_ok=True)
            continue
        write_csv(as_csv_cells(frame), target, **CSV_FORMAT)
        counts[name] = frame.height
    return counts
