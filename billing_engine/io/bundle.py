"""The in-memory interchange bundle: one typed polars frame per table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import polars as pl

from billing_engine.io.schema import TABLES


@dataclass(frozen=True)
class Bundle:
    """Every interchange table as a polars frame typed per ``billing_engine.io.schema``.

    A table absent from the source is present here as an empty frame with the right
    schema; ``given`` names the tables the source did hold (a snapshot import replaces
    those only). Extra columns found in the source are kept after the spec's columns.
    """

    tables: Mapping[str, pl.DataFrame]
    source: str = "<memory>"
    # the tables the source held (None: every table in ``tables``)
    given_tables: frozenset[str] | None = None

    @property
    def given(self) -> frozenset[str]:
        """The tables the source held, even when empty (absent ones are empty frames)."""
        return frozenset(self.tables) if self.given_tables is None else self.given_tables

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.tables[name]

    def row_counts(self) -> dict[str, int]:
        return {name: frame.height for name, frame in self.tables.items()}

    def for_patients(self, patient_ids: list[str]) -> Bundle:
        """The same bundle with only these patients' rows in patient-keyed tables."""
        return replace(
            self,
            tables={
                name: frame.filter(pl.col("patient_id").is_in(patient_ids))
                if "patient_id" in frame.columns
                else frame
                for name, frame in self.tables.items()
            },
        )

    def narrowed_to(self, patients: pl.DataFrame) -> Bundle:
        """The same bundle with only the rows of `patients` (a ``patient_id`` frame) in
        patient-keyed tables: one semi join per table, all run in one polars call."""
        keyed = [name for name, frame in self.tables.items() if "patient_id" in frame.columns]
        ids = patients.lazy().select("patient_id")
        kept = pl.collect_all(
            [self.tables[name].lazy().join(ids, on="patient_id", how="semi") for name in keyed]
        )
        return replace(self, tables={**self.tables, **dict(zip(keyed, kept, strict=True))})

    def without_entered_in_error(self) -> Bundle:
        """The bundle as evaluated: encounters with ``status=entered_in_error`` removed.

        Such a row is kept in the store and in the bundle read, but counts nowhere
        (minutes, visits, same-day checks, initiating visits); ``evaluate`` applies
        this once, before any family reads the bundle.
        """
        encounters = self.tables["encounters"]
        voided = entered_in_error()
        if not encounters.select(voided.any()).item():
            return self
        return replace(self, tables={**self.tables, "encounters": encounters.filter(~voided)})

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
        return cls(out, source, frozenset(frames))


ENTERED_IN_ERROR = "entered_in_error"


def entered_in_error() -> pl.Expr:
    """True for encounters whose ``status`` is ``entered_in_error`` (null means completed)."""
    return pl.col("status").eq_missing(ENTERED_IN_ERROR)
