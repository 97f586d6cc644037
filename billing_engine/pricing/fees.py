"""The fee library: CMS PFS relative value units and GPCIs, shipped and imported.

Two normalized frames (columns in ``billing_engine.io.cms_pfs`` / ``cms_gpci``):
``rvus``, one row per HCPCS code and modifier for each release (year, effective_from, qp
variant), and ``gpcis``, one row per Medicare locality and year. The project ships a
default library derived from the CMS files by ``code_rules/pricing/build_fee_data.py``
(see ``code_rules/pricing/data/sources.yaml``); ``billing fees import-pfs`` /
``import-gpci`` load a newer or fuller CMS release into the store, and an imported
release replaces the shipped rows of the same year (and effective date and QP variant).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from billing_engine.io.cms_gpci import empty_gpci_frame, read_gpci_table
from billing_engine.io.cms_pfs import empty_pfs_frame, read_pfs_table

RELEASE_KEY = ("year", "effective_from", "qp")
GPCI_RELEASE_KEY = ("year",)


@dataclass(frozen=True)
class FeeLibrary:
    rvus: pl.DataFrame
    gpcis: pl.DataFrame

    @classmethod
    def empty(cls) -> FeeLibrary:
        return cls(empty_pfs_frame(), empty_gpci_frame())

    @classmethod
    def load_dir(cls, folder: Path) -> FeeLibrary:
        """Every ``pfs_rvu_*.csv`` and ``gpci_*.csv`` of a folder of normalized files."""
        rvus = [read_pfs_table(p) for p in sorted(folder.glob("pfs_rvu_*.csv"))]
        gpcis = [read_gpci_table(p) for p in sorted(folder.glob("gpci_*.csv"))]
        empty = cls.empty()
        return cls(
            pl.concat(rvus, how="vertical") if rvus else empty.rvus,
            pl.concat(gpcis, how="vertical") if gpcis else empty.gpcis,
        )

    def overlay(self, other: FeeLibrary) -> FeeLibrary:
        """This library with `other`'s releases replacing the same releases here."""
        return FeeLibrary(
            _replace(self.rvus, other.rvus, RELEASE_KEY),
            _replace(self.gpcis, other.gpcis, GPCI_RELEASE_KEY),
        )

    def releases(self) -> pl.DataFrame:
        """One row per loaded release: kind, year, effective_from, qp, release, rows."""
        pfs = self.rvus.group_by(*RELEASE_KEY, "release", "source_file").agg(rows=pl.len())
        gpci = self.gpcis.group_by("year", "release", "source_file").agg(rows=pl.len())
        return (
            pl.concat(
                [
                    pfs.with_columns(kind=pl.lit("pfs")),
                    gpci.with_columns(
                        kind=pl.lit("gpci"),
                        effective_from=pl.lit(None, dtype=pl.Date),
                        qp=pl.lit(None, dtype=pl.Boolean),
                    ),
                ],
                how="diagonal_relaxed",
            )
            .select("kind", *RELEASE_KEY, "release", "source_file", "rows")
            .sort("kind", "year", "effective_from", "qp", nulls_last=True)
        )


def _replace(base: pl.DataFrame, new: pl.DataFrame, key: tuple[str, ...]) -> pl.DataFrame:
    if new.is_empty():
        return base
    kept = base.join(new.select(key).unique(), on=list(key), how="anti", nulls_equal=True)
    return pl.concat([kept, new.select(base.columns)], how="vertical")
