"""Build ``chronic_conditions.csv``, the engine's chronic-condition value set (CCM-D1).

Source: the CMS Chronic Conditions Warehouse (CCW) condition categories as ICD-10-CM
codes, curated by the Tuva Project (Apache-2.0), shipped to the team as
``shared/reference/ccw_chronic_conditions_icd10.csv``. CMS publishes no closed list of
CCM-qualifying conditions; the CCW list is the practical proxy the rules reference
names (CCM-D1, [SRC-NOR-CCM-OPPS]).

What this script does:
- keeps the rows whose ``inclusion`` is ``include`` (``exclude`` rows are CCW's
  exclusion codes, not members);
- drops the categories that describe acute events, which cannot be "expected to last
  at least 12 months" (CCM-D1): see ``ACUTE_CATEGORIES`` below, each with its reason;
- writes ``icd10`` (normalized: no dot, upper case), ``condition`` and ``category``.

Run: ``python code_rules/valuesets/build_chronic_conditions.py SOURCE.csv``
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from billing_engine.io.safe_files import write_csv

ACUTE_CATEGORIES: dict[str, str] = {
    "Acute Myocardial Infarction": "an acute event (the chronic sequel is Ischemic Heart Disease)",
    "Hepatitis A": "acute infection; no chronic form",
    "Hepatitis C (acute)": "acute by definition (chronic hepatitis C stays)",
    "Hepatitis E": "acute infection in almost all cases",
    "Hip/Pelvic Fracture": "an injury, not a condition lasting 12 months",
}

OUT = Path(__file__).with_name("chronic_conditions.csv")


def build(source: Path) -> pl.DataFrame:
    frame = pl.read_csv(source, infer_schema=False)
    return (
        frame.filter(
            (pl.col("inclusion") == "include") & ~pl.col("condition").is_in(list(ACUTE_CATEGORIES))
        )
        .select(
            pl.col("icd10").str.replace_all(".", "", literal=True).str.to_uppercase(),
            "condition",
            "category",
        )
        .unique(subset=["icd10", "condition"])
        .sort("icd10", "condition")
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    result = build(Path(argv[1]))
    write_csv(result, OUT)
    print(f"wrote {result.height} codes to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
