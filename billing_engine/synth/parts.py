"""A synthetic practice of any size in bounded memory: generated in parts of patients.

``generate_practice`` holds the whole practice in memory (about 9 GB at a million
patients). ``write_practice_in_parts`` draws it ``PART_PATIENTS`` patients at a time and
appends each part to the CSV files, so memory follows the part. Part 0 is exactly
``generate_practice`` of the first part's patients with the given seed (a practice that
fits in one part is the same files as before); part k > 0 is drawn with the seed
``seed * SEED_STRIDE + k`` and its ids (patients, encounters, consents, care plans,
discharges, referrals) numbered on after those of the parts before it. The
practice-wide tables (practitioners, payers, fee schedule, practice, charges) are
written once, from part 0; each part carries its own share of the deliberate claim-edit
defects (close.md), so a bigger practice has proportionally more of them.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from billing_engine.io.safe_files import csv_bytes
from billing_engine.io.schema import TABLE_ORDER
from billing_engine.synth.practice import generate_practice
from billing_engine.synth.write import CSV_FORMAT, as_csv_cells, write_bundle_csv

PART_PATIENTS = 100_000
SEED_STRIDE = 1_000_003
# id column -> the prefix its synthetic values carry (numbered per part), and the table
# whose key it is (the part's largest id there moves the next part's numbers on)
PART_IDS = {
    "patient_id": ("PT", "patients"),
    "encounter_id": ("E", "encounters"),
    "consent_id": ("CN", "consents"),
    "care_plan_id": ("CP", "care_plans"),
    "discharge_id": ("DC", "discharges"),
    "referral_id": ("RF", "referrals"),
}


def part_sizes(patients: int, part: int = PART_PATIENTS) -> list[int]:
    count = math.ceil(patients / part)
    return [min(part, patients - k * part) for k in range(count)]


def _renumber(frame: pl.DataFrame, offsets: dict[str, int]) -> pl.DataFrame:
    """`frame` with each part-local id moved on by its offset (PT000001 -> PT100001)."""
    columns = []
    for column, (prefix, _) in PART_IDS.items():
        if column not in frame.columns or offsets.get(column, 0) == 0:
            continue
        digits = pl.col(column).str.strip_prefix(prefix)
        width = digits.str.len_chars()
        number = (digits.cast(pl.Int64) + offsets[column]).cast(pl.String)
        columns.append((pl.lit(prefix) + number.str.zfill(width)).alias(column))
    return frame.with_columns(columns) if columns else frame


def _csv(frame: pl.DataFrame, header: bool) -> bytes:
    data = csv_bytes(as_csv_cells(frame), **CSV_FORMAT)
    return data if header else data.split(b"\n", 1)[1]


def write_practice_in_parts(
    patients: int,
    out: Path,
    seed: int = 7,
    end_month: str = "2025-12",
    months: int = 12,
    part: int = PART_PATIENTS,
) -> dict[str, int]:
    """Write a practice of `patients` as the interchange CSV folder, `part` patients at
    a time (see the module docstring); returns the rows written per table."""
    sizes = part_sizes(patients, part)
    if len(sizes) == 1:
        return write_bundle_csv(generate_practice(patients, seed, end_month, months), out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    offsets: dict[str, int] = {}
    partial = {name: out / f".{name}.csv.part" for name in TABLE_ORDER}
    for index, size in enumerate(sizes):
        bundle = generate_practice(size, seed if index == 0 else seed * SEED_STRIDE + index,
                                   end_month, months)  # fmt: skip
        for name in TABLE_ORDER:
            frame = bundle[name]
            if frame.height == 0 or (index > 0 and "patient_id" not in frame.columns):
                continue
            frame = _renumber(frame, offsets)
            with partial[name].open("ab" if name in counts else "wb") as handle:
                handle.write(_csv(frame, header=name not in counts))
            counts[name] = counts.get(name, 0) + frame.height
        for column, (prefix, owner) in PART_IDS.items():
            offsets[column] = offsets.get(column, 0) + _largest(bundle[owner][column], prefix)
        del bundle
    for name in TABLE_ORDER:
        target = out / f"{name}.csv"
        if name in counts:
            partial[name].replace(target)
        else:
            target.unlink(missing_ok=True)
    return {name: counts[name] for name in TABLE_ORDER if name in counts}


def _largest(ids: pl.Series, prefix: str) -> int:
    """The largest number among a part's ids (0 when it has none)."""
    numbers = ids.str.strip_prefix(prefix).cast(pl.Int64).fill_null(0)
    return int(numbers.to_frame().select(pl.col(numbers.name).max().fill_null(0)).item())
