"""The in-memory interchange bundle: one typed polars frame per table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from billing_engine.schema import TABLES


@dataclass(frozen=True)
class Bundle:
    """Every interchange table as a polars frame typed per ``billing_engine.schema``.

    A table absent from the source is present here as an empty frame with the right
    schema. Extra columns found in the source are kept after the spec's columns.
    """

    tables: Mapping[str, pl.DataFrame]
    source: str = "<memory>"

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.tables[name]

    def row_counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.tables.items()}

    def for_patients(self, patient_ids: list[str]) -> Bundle:
        """The same bundle with only these patients' rows in patient-keyed tables."""
        return Bundle(
            {
                name: frame.filter(pl.col("patient_id").is_in(patient_ids))
                if "patient_id" in frame.columns
                else frame
                for name, frame in self.tables.items()
            },
            self.source,
        )

    @classmethod
    def from_frames(cls, frames: Mapping[str, pl.DataFrame], source: str = "<memory>") -> Bundle:
        """Build a bundle from already-typed frames, filling absent tables with empty ones.

        Columns missing from a given frame are added as nulls of the declared type, so
        callers (tests, the store, the generator) may pass only the columns they use.
        """
        unknown = set(frames) - set(TABLES)
        if unknown:
            raise KeyError(f"unknown interchange table(s): {sorted(unknown)}")
        out: dict[str, pl.DataFrame] = {}
        for name, table in TABLES.items():
            frame = frames.get(name)
            if frame is None:
                out[name] = table.empty_frame()
                continue
            missing = [
                pl.lit(None, dtype=c.dtype).alias(c.name)
                for c in table.columns
                if c.name not in frame.columns
            ]
            if missing:
                frame = frame.with_columns(missing)
            spec_cols = list(table.column_names)
            extra = [c for c in frame.columns if c not in spec_cols]
            casts = [pl.col(c.name).cast(c.dtype) for c in table.columns]
            out[name] = frame.select([*casts, *[pl.col(c) for c in extra]])
        return cls(out, source)
