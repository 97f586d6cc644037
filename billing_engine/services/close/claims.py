"""Claims from approved close lines, at lock (pure polars, no store).

- **Original claims** (frequency ``1``): the cycle's ``original`` and ``new`` lines,
  one claim per patient, payer and billing practitioner, at most ``MAX_LINES`` lines
  (more split into further claims), lines by date of service and code.
- **Adjustments of a claimed chain** (a chain is an original claim and its later
  replacements): the approved ``replace`` and ``void`` lines of a chain make one claim
  against the chain's original claim id: a replacement (``7``) carrying the chain's
  full corrected set of lines, or a void (``8``, repeating the lines it voids) when no
  line remains (close.md, "Adjustment cycles").

Claim ids are ``C<YYYYMM>-<cycle>-<lock>-<n>``: the lock number grows with every lock
of the cycle (a reopen voids the ids of the lock before), so no id is ever reused.
Charges come from the practice's charge master (``charges``: per unit, by code,
modifier and date); without a row the charge is the allowed amount.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from billing_engine.services.close.lines import KIND_NEW, KIND_ORIGINAL, KIND_VOID, LINE_COLUMNS

MAX_LINES = 50  # service lines per 837P claim (005010X222A1, loop 2400 repeat)
FREQUENCY_ORIGINAL, FREQUENCY_REPLACEMENT, FREQUENCY_VOID = "1", "7", "8"
MONEY = pl.Decimal(18, 2)
CLAIM_KEY = ("patient_id", "payer_id", "billing_practitioner_id")
AMOUNTS = ("allowed_amount", "payer_amount", "patient_amount")
CLAIM_LINE_COLUMNS = (
    "claim_id",
    "line_number",
    "line_id",
    "code",
    "modifiers",
    "units",
    "charge",
    "date_of_service",
    "place_of_service",
    "icd10_codes",
    "billing_npi",
    *AMOUNTS,
)


CHAIN_COLUMNS = ("line_id", "adjusts_claim_id", *LINE_COLUMNS, "charge")


@dataclass(frozen=True)
class NewClaims:
    claims: pl.DataFrame  # the claims table's columns but status, month, cycle, created_at
    lines: pl.DataFrame  # CLAIM_LINE_COLUMNS


def charged(lines: pl.DataFrame, charges: pl.DataFrame) -> pl.DataFrame:
    """``lines`` with ``charge``: the charge master's unit charge x units, else allowed."""
    first_modifier = pl.col("modifiers").str.split(";").list.first().fill_null("")
    keyed = lines.with_row_index("__row").with_columns(first_modifier.alias("__modifier"))
    master = charges.select(
        "code",
        pl.col("modifier").fill_null("").alias("__modifier"),
        "charge",
        "effective_from",
        "effective_to",
    ).rename({"charge": "__unit_charge"})
    found = (
        keyed.select("__row", "code", "__modifier", "date_of_service")
        .join(master, on=["code", "__modifier"], how="inner")
        .filter(
            (pl.col("effective_from") <= pl.col("date_of_service"))
            & (
                pl.col("effective_to").is_null()
                | (pl.col("effective_to") >= pl.col("date_of_service"))
            )
        )
        .sort("__row", "effective_from", descending=[False, True])
        .group_by("__row", maintain_order=True)
        .first()
        .select("__row", "__unit_charge")
    )
    charge = (pl.col("__unit_charge").cast(pl.Decimal(18, 4)) * pl.col("units")).round(2)
    return (
        keyed.join(found, on="__row", how="left")
        .with_columns(
            pl.coalesce(charge.cast(MONEY), pl.col("allowed_amount").cast(MONEY)).alias("charge")
        )
        .sort("__row")
        .drop("__row", "__modifier", "__unit_charge")
    )


def build_claims(
    approved: pl.DataFrame,
    claimed: pl.DataFrame,
    charges: pl.DataFrame,
    *,
    month: str,
    cycle: int,
    lock: int,
    practice_npi: str | None,
) -> NewClaims:
    """The claims of a lock.

    ``approved``: the approved lines that passed the edits (``line_id, kind,
    adjusts_line_id, adjusts_claim_id`` and ``LINE_COLUMNS``). ``claimed``: what the
    month's exported claims carry now (``line_id, claim_chain, charge`` and
    ``LINE_COLUMNS``).
    """
    originals = approved.filter(pl.col("kind").is_in([KIND_ORIGINAL, KIND_NEW]))
    adjusting = approved.filter(~pl.col("kind").is_in([KIND_ORIGINAL, KIND_NEW]))
    second, moved = _chain_claims(charged(adjusting, charges), claimed)
    first = _original_claims(
        pl.concat([charged(originals, charges), moved], how="diagonal_relaxed")
    )
    parts = [p for p in (first, second) if p.height]
    if not parts:
        return NewClaims(claims=_EMPTY_CLAIMS, lines=_EMPTY_LINES)
    claim_lines = pl.concat(parts, how="diagonal_relaxed")
    # number the claims in their order: originals first, each by patient, payer, ...
    order = claim_lines.select("__claim").unique(maintain_order=True).with_row_index("__seq", 1)
    prefix = f"C{month.replace('-', '')}-{cycle}-{lock}-"
    numbered = claim_lines.join(order, on="__claim").with_columns(
        (pl.lit(prefix) + pl.col("__seq").cast(pl.String).str.zfill(6)).alias("claim_id"),
        (pl.int_range(pl.len()).over("__claim") + 1).alias("line_number"),
    )
    claims = (
        numbered.group_by("claim_id", maintain_order=True)
        .agg(
            pl.col("frequency").first(),
            pl.col("original_claim_id").first(),
            pl.col("patient_id").first(),
            pl.col("payer_id").first(),
            pl.col("billing_practitioner_id").first(),
            pl.col("billing_npi").first().alias("rendering_npi"),
            pl.len().cast(pl.Int64).alias("line_count"),
            pl.col("charge").sum().alias("total_charge"),
            *[pl.col(a).sum() for a in AMOUNTS],
        )
        .with_columns(pl.lit(practice_npi, pl.String).alias("billing_npi"))
    )
    return NewClaims(claims=claims, lines=numbered.select(CLAIM_LINE_COLUMNS))


_EMPTY_LINES = pl.DataFrame(
    schema={
        "claim_id": pl.String,
        "line_number": pl.Int64,
        "line_id": pl.String,
        "code": pl.String,
        "modifiers": pl.String,
        "units": pl.Int64,
        "charge": MONEY,
        "date_of_service": pl.Date,
        "place_of_service": pl.String,
        "icd10_codes": pl.String,
        "billing_npi": pl.String,
        **dict.fromkeys(AMOUNTS, MONEY),
    }
)
_EMPTY_CLAIMS = pl.DataFrame(
    schema={
        "claim_id": pl.String,
        "frequency": pl.String,
        "original_claim_id": pl.String,
        "patient_id": pl.String,
        "payer_id": pl.String,
        "billing_practitioner_id": pl.String,
        "rendering_npi": pl.String,
        "line_count": pl.Int64,
        "total_charge": MONEY,
        **dict.fromkeys(AMOUNTS, MONEY),
        "billing_npi": pl.String,
    }
)


def _original_claims(lines: pl.DataFrame) -> pl.DataFrame:
    ordered = lines.sort(*CLAIM_KEY, "date_of_service", "code", "line_id", nulls_last=True)
    chunk = pl.int_range(pl.len()).over(list(CLAIM_KEY)) // MAX_LINES
    return ordered.with_columns(
        pl.concat_str(
            [pl.lit("1"), *[pl.col(c).fill_null("") for c in CLAIM_KEY], chunk.cast(pl.String)],
            separator="|",
        ).alias("__claim"),
        pl.lit(FREQUENCY_ORIGINAL).alias("frequency"),
        pl.lit(None, pl.String).alias("original_claim_id"),
    )


def _chain_claims(
    adjusting: pl.DataFrame, claimed: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Replacement and void claims, one per claimed chain an approved line adjusts; and
    the replaced lines that moved to another billing practitioner (``CHAIN_COLUMNS``).

    A claim has one billing practitioner. A replacement keeps the chain's practitioner
    when any corrected line still has it (else it takes its first line's); a corrected
    line of another practitioner leaves the chain and is billed on an original claim.
    """
    if not adjusting.height:
        return adjusting.head(0), adjusting.select(CHAIN_COLUMNS).head(0)
    chains = adjusting.select("adjusts_claim_id").unique()
    chain_lines = claimed.join(
        chains, left_on="claim_chain", right_on="adjusts_claim_id", how="semi"
    )
    untouched = chain_lines.join(
        adjusting.select("adjusts_line_id"),
        left_on="line_id",
        right_on="adjusts_line_id",
        how="anti",
    ).with_columns(pl.col("claim_chain").alias("adjusts_claim_id"))
    replaced = adjusting.filter(pl.col("kind") != KIND_VOID).select(CHAIN_COLUMNS)
    corrected = pl.concat([untouched.select(CHAIN_COLUMNS), replaced], how="vertical_relaxed")
    kept_chains = corrected.select("adjusts_claim_id").unique()
    practitioner = _claim_practitioner(corrected, claimed)
    same = pl.col("billing_practitioner_id").eq_missing(pl.col("__claim_practitioner"))
    with_practitioner = corrected.join(practitioner, on="adjusts_claim_id", how="left")
    moved = with_practitioner.filter(~same).select(CHAIN_COLUMNS)
    remaining = (
        with_practitioner.filter(same)
        .select(CHAIN_COLUMNS)
        .with_columns(pl.lit(FREQUENCY_REPLACEMENT).alias("frequency"))
    )
    # a chain with nothing left is voided: the void repeats the lines it takes back
    voids = (
        adjusting.filter(pl.col("kind") == KIND_VOID)
        .join(kept_chains, on="adjusts_claim_id", how="anti")
        .join(
            claimed.select("line_id", "charge"),
            left_on="adjusts_line_id",
            right_on="line_id",
            how="left",
            suffix="__claimed",
        )
        .with_columns(
            pl.coalesce("charge__claimed", "charge").alias("charge"),
            pl.lit(FREQUENCY_VOID).alias("frequency"),
        )
        .drop("charge__claimed")
    )
    together = pl.concat(
        [remaining, voids.select(*CHAIN_COLUMNS, "frequency")], how="vertical_relaxed"
    )
    chain_claims = together.sort("adjusts_claim_id", "date_of_service", "code").with_columns(
        (pl.lit("A|") + pl.col("adjusts_claim_id")).alias("__claim"),
        pl.col("adjusts_claim_id").alias("original_claim_id"),
    )
    return chain_claims, moved


def _claim_practitioner(corrected: pl.DataFrame, claimed: pl.DataFrame) -> pl.DataFrame:
    """``adjusts_claim_id, __claim_practitioner``: the billing practitioner a chain's
    replacement is sent under (see ``_chain_claims``)."""
    chain = claimed.group_by("claim_chain").agg(
        pl.col("billing_practitioner_id").first().alias("__chain")
    )
    ordered = corrected.sort("date_of_service", "code", "line_id")
    return (
        ordered.join(chain, left_on="adjusts_claim_id", right_on="claim_chain", how="left")
        .group_by("adjusts_claim_id")
        .agg(
            pl.col("billing_practitioner_id").eq_missing(pl.col("__chain")).any().alias("__keeps"),
            pl.col("__chain").first(),
            pl.col("billing_practitioner_id").first().alias("__first"),
        )
        .select(
            "adjusts_claim_id",
            pl.when(pl.col("__keeps"))
            .then(pl.col("__chain"))
            .otherwise(pl.col("__first"))
            .alias("__claim_practitioner"),
        )
    )


__all__ = ["LINE_COLUMNS", "MAX_LINES", "NewClaims", "build_claims", "charged"]
