"""Value sets (code lists) the rules use, each built by a script in this folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

HERE = Path(__file__).parent


@lru_cache(maxsize=1)
def chronic_value_set() -> pl.DataFrame:
    """The chronic-condition value set (CCM-D1): icd10 (no dot), condition, category.

    Built by ``build_chronic_conditions.py`` from the CMS Chronic Conditions Warehouse
    list (Tuva Project curation), acute categories removed.
    """
    return pl.read_csv(HERE / "chronic_conditions.csv", schema_overrides={"icd10": pl.String})
