"""The bundle columns a claim needs (close.md, "Bundle additions for claims"): the
``practice`` row, the ``charges`` master, patient addresses, practitioner names and
taxonomies, payer X12 ids, coverage group numbers and relationships, and a few
deliberate defects for the claim edits at lock.

Every draw comes from a stream of its own, ``default_rng([seed, claim_stream])``, taken
after the bundle is assembled: the tables the evaluation reads are exactly what they
were without these columns (same seed, same claim lines, gaps and revenue), and the
defects are chosen among the rows the bundle really holds, so their counts are exact.
Whole-array work only (the one comprehension runs over the charge master's codes).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl

from billing_engine.io.schema import DECIMAL_DTYPE
from billing_engine.synth.arrays import I64
from billing_engine.synth.claim_vocabulary import ClaimVocabulary, load_claim_vocabulary
from billing_engine.synth.fixed_data import make_npi

DAYS_PER_YEAR = 365.25
WHOLE_DOLLAR = Decimal(1)
COMMERCIAL = "commercial"
SELF, SPOUSE, CHILD = "self", "spouse", "child"
GROUP_DIGITS = 6  # employer group numbers: prefix + 6 digits
# "Maria Alvarez, MD" / "Kevin Doyle (scheduling)": first name, last name
NAME_PATTERN = r"^(\S+)\s+([^,(]+?)\s*(?:[,(].*)?$"


def defect_rows(rng: np.random.Generator, rows: int, count: int) -> I64:
    """`count` distinct row indexes of `rows` (all of them when there are fewer)."""
    chosen: I64 = rng.choice(rows, size=min(count, rows), replace=False).astype(np.int64)
    return chosen


def share_count(share: float, rows: int) -> int:
    """The rows a defect share stands for: rounded, at least one (when there are rows)."""
    return min(rows, max(1, round(share * rows))) if share > 0 else 0


def blank_rows(frame: pl.DataFrame, columns: tuple[str, ...], rows: I64) -> pl.DataFrame:
    """`frame` with `columns` made null on the given row indexes."""
    hit = np.zeros(frame.height, dtype=np.bool_)
    hit[rows] = True
    mask = pl.Series(hit)
    return frame.with_columns(
        pl.when(mask).then(None).otherwise(pl.col(c)).alias(c) for c in columns
    )


def practice_frame(vocabulary: ClaimVocabulary) -> pl.DataFrame:
    """The one ``practice`` row: the billing provider and the 837 envelope parties."""
    row = {"npi": make_npi(vocabulary.npi_base), **vocabulary.practice}
    return pl.DataFrame({name: [value] for name, value in row.items()})


def practitioner_columns(frame: pl.DataFrame, vocabulary: ClaimVocabulary) -> pl.DataFrame:
    """First and last name split from ``name``; the NUCC taxonomy by practitioner_id."""
    return frame.with_columns(
        pl.col("name").str.extract(NAME_PATTERN, 1).alias("first_name"),
        pl.col("name").str.extract(NAME_PATTERN, 2).alias("last_name"),
        pl.col("practitioner_id")
        .replace_strict(vocabulary.taxonomies, default=None, return_dtype=pl.String)
        .alias("taxonomy"),
    )


def payer_columns(frame: pl.DataFrame, vocabulary: ClaimVocabulary) -> pl.DataFrame:
    """X12 payer ids (none for the defect payer) and the SBR09 codes the export states."""
    payer = pl.col("payer_id")
    return frame.with_columns(
        pl.when(payer == vocabulary.defects.payer_without_x12_id)
        .then(None)
        .otherwise(
            payer.replace_strict(vocabulary.x12_payer_ids, default=None, return_dtype=pl.String)
        )
        .alias("x12_payer_id"),
        payer.replace_strict(
            vocabulary.claim_filing_indicators, default=None, return_dtype=pl.String
        ).alias("claim_filing_indicator"),
    )


def patient_columns(
    rng: np.random.Generator, frame: pl.DataFrame, vocabulary: ClaimVocabulary
) -> pl.DataFrame:
    """Street address, city and state from the patient's ZIP; then the address and sex
    defects."""
    n = frame.height
    house = rng.integers(vocabulary.house_low, vocabulary.house_high + 1, n)
    street = rng.integers(0, len(vocabulary.streets), n)
    suffix = rng.integers(0, len(vocabulary.street_suffixes), n)
    apartment = rng.random(n) < vocabulary.apartment_share
    apartment_no = rng.integers(1, vocabulary.apartment_high + 1, n)
    streets = pl.Series(vocabulary.streets, dtype=pl.String)
    suffixes = pl.Series(vocabulary.street_suffixes, dtype=pl.String)
    parts = pl.DataFrame(
        {
            "house": pl.Series(house).cast(pl.String),
            "street": streets.gather(pl.Series(street, dtype=pl.Int64)),
            "suffix": suffixes.gather(pl.Series(suffix, dtype=pl.Int64)),
            "apartment": pl.Series(apartment_no).cast(pl.String),
        }
    )
    out = frame.with_columns(
        pl.concat_str([parts["house"], parts["street"], parts["suffix"]], separator=" ").alias(
            "address1"
        ),
        pl.when(pl.Series(apartment))
        .then(pl.lit("Apt ") + parts["apartment"])
        .otherwise(None)
        .alias("address2"),
        pl.col("zip")
        .replace_strict(vocabulary.zip_cities, default=None, return_dtype=pl.String)
        .alias("city"),
        pl.when(pl.col("zip").is_not_null())
        .then(pl.lit(vocabulary.state))
        .otherwise(None)
        .alias("state"),
    )
    defects = vocabulary.defects
    no_address = defect_rows(rng, n, share_count(defects.patients_without_address, n))
    out = blank_rows(out, ("address1", "address2"), no_address)
    no_sex = defect_rows(rng, n, defects.patients_without_sex)
    return blank_rows(out, ("sex",), no_sex)


def coverage_columns(
    rng: np.random.Generator,
    frame: pl.DataFrame,
    patients: pl.DataFrame,
    payers: pl.DataFrame,
    window_end: dt.date,
    vocabulary: ClaimVocabulary,
) -> pl.DataFrame:
    """Group numbers and relationships on commercial coverages (the others self); then
    the member-id defect."""
    m = frame.height
    facts = (
        frame.select("patient_id", "payer_id")
        .join(
            patients.select("patient_id", "birth_date"),
            on="patient_id",
            how="left",
            maintain_order="left",
        )
        .join(payers.select("payer_id", "kind"), on="payer_id", how="left", maintain_order="left")
    )
    commercial = (facts["kind"] == COMMERCIAL).fill_null(False).to_numpy()
    age = (
        facts.select((pl.lit(window_end) - pl.col("birth_date")).dt.total_days() / DAYS_PER_YEAR)
        .to_series()
        .to_numpy()
    )
    groups = rng.integers(10 ** (GROUP_DIGITS - 1), 10**GROUP_DIGITS, vocabulary.group_count)
    group_names = vocabulary.group_prefix + pl.Series(groups).cast(pl.String)
    group = group_names.gather(pl.Series(rng.integers(0, vocabulary.group_count, m)))
    child_draw = rng.random(m)
    spouse_draw = rng.random(m)
    child = commercial & (age < vocabulary.child_age) & (child_draw < vocabulary.child_share)
    spouse = commercial & ~child & (spouse_draw < vocabulary.spouse_share)
    relationship = np.where(child, CHILD, np.where(spouse, SPOUSE, SELF))
    out = frame.with_columns(
        pl.when(pl.Series(commercial)).then(group).otherwise(None).alias("group_number"),
        pl.Series("relationship", relationship, dtype=pl.String),
    )
    share = vocabulary.defects.coverages_without_member_id
    return blank_rows(out, ("member_id",), defect_rows(rng, m, share_count(share, m)))


def charge_master(
    rng: np.random.Generator, first_year: int, vocabulary: ClaimVocabulary
) -> pl.DataFrame:
    """One charge per code from January of `first_year` (open-ended) and one for the year
    before; the codes of ``without_charge`` get none."""
    reference = vocabulary.charge_reference
    multipliers = rng.uniform(vocabulary.multiplier_low, vocabulary.multiplier_high, len(reference))
    prior_share = Decimal(str(vocabulary.prior_year_share))
    current = {
        code: (amount * Decimal(f"{m:.4f}")).quantize(WHOLE_DOLLAR, ROUND_HALF_UP)
        for (code, amount), m in zip(reference, multipliers.tolist(), strict=True)
        if code not in vocabulary.without_charge
    }
    codes = list(current)
    prior = [(current[c] * prior_share).quantize(WHOLE_DOLLAR, ROUND_HALF_UP) for c in codes]
    this_year = dt.date(first_year, 1, 1)
    last_year = dt.date(first_year - 1, 1, 1)
    return pl.DataFrame(
        {
            "code": codes + codes,
            "modifier": [None] * (2 * len(codes)),
            "charge": [current[c] for c in codes] + prior,
            "effective_from": [this_year] * len(codes) + [last_year] * len(codes),
            "effective_to": [None] * len(codes) + [this_year - dt.timedelta(days=1)] * len(codes),
        },
        schema={
            "code": pl.String,
            "modifier": pl.String,
            "charge": DECIMAL_DTYPE,
            "effective_from": pl.Date,
            "effective_to": pl.Date,
        },
    ).sort("code", "effective_from")


def add_claim_data(
    frames: dict[str, pl.DataFrame], seed: int, window_end: dt.date, first_year: int
) -> dict[str, pl.DataFrame]:
    """`frames` (the assembled bundle tables) with the claim columns and tables added.

    The draws run in this order on their own stream: patients, coverages, charges.
    """
    vocabulary = load_claim_vocabulary()
    rng = np.random.default_rng([seed, vocabulary.claim_stream])
    out = dict(frames)
    out["practice"] = practice_frame(vocabulary)
    out["practitioners"] = practitioner_columns(frames["practitioners"], vocabulary)
    out["payers"] = payer_columns(frames["payers"], vocabulary)
    out["patients"] = patient_columns(rng, frames["patients"], vocabulary)
    out["coverages"] = coverage_columns(
        rng, frames["coverages"], frames["patients"], frames["payers"], window_end, vocabulary
    )
    out["charges"] = charge_master(rng, first_year, vocabulary)
    return out
