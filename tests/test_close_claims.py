"""Claims from approved close lines (pure): grouping, the 50-line limit, charges, and the
replacement and void claims of a claimed chain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from billing_engine.services.close.claims import MAX_LINES, build_claims, charged
from billing_engine.services.close.lines import LINE_COLUMNS
from tests.close_support import MONEY, close_lines

D = dt.date


NO_CHARGES = pl.DataFrame(
    schema={"code": pl.String, "modifier": pl.String, "charge": pl.Decimal(18, 4),
            "effective_from": pl.Date, "effective_to": pl.Date}
)  # fmt: skip
NOTHING_CLAIMED = (
    close_lines(0)
    .select("line_id", *LINE_COLUMNS)
    .with_columns(pl.lit(None, pl.String).alias("claim_chain"), pl.lit(None, MONEY).alias("charge"))
)


def _build(approved: pl.DataFrame, claimed: pl.DataFrame = NOTHING_CLAIMED):  # type: ignore[no-untyped-def]
    return build_claims(
        approved, claimed, NO_CHARGES, month="2025-12", cycle=2, lock=1, practice_npi="1234567893"
    )


def test_more_than_fifty_lines_of_one_patient_split_into_further_claims() -> None:
    built = _build(close_lines(MAX_LINES * 2 + 3))
    assert built.claims["line_count"].to_list() == [MAX_LINES, MAX_LINES, 3]
    assert built.lines["line_number"].max() == MAX_LINES


def test_a_claim_totals_the_sum_of_its_lines_and_ids_follow_month_cycle_and_lock() -> None:
    built = _build(close_lines(3))
    claim = built.claims.row(0, named=True)
    assert claim["claim_id"] == "C202512-2-1-000001"
    assert claim["total_charge"] == Decimal("74.73") == claim["allowed_amount"]
    assert claim["billing_npi"] == "1234567893" and claim["rendering_npi"] == "1487219036"


def test_the_charge_master_prices_a_line_per_unit_and_else_the_allowed_amount() -> None:
    row = {"code": "99211", "modifier": None, "charge": Decimal("40"),
           "effective_from": D(2025, 1, 1), "effective_to": None}  # fmt: skip
    master = pl.DataFrame([row], schema=NO_CHARGES.schema)
    lines = pl.concat([close_lines(1, units=2), close_lines(1, code="99490")])
    assert charged(lines, master)["charge"].to_list() == [Decimal("80.00"), Decimal("24.91")]


def _claimed(lines: pl.DataFrame, chain: str) -> pl.DataFrame:
    return lines.select("line_id", *LINE_COLUMNS).with_columns(
        pl.lit(chain).alias("claim_chain"), pl.col("allowed_amount").alias("charge")
    )


def test_a_void_of_every_line_of_a_claim_is_a_frequency_8_claim_repeating_them() -> None:
    old = close_lines(2)
    voids = old.with_columns(
        pl.format("V{}", pl.col("line_id")).alias("line_id"),
        pl.lit("void").alias("kind"),
        pl.col("line_id").alias("adjusts_line_id"),
        pl.lit("C-ORIG").alias("adjusts_claim_id"),
    )
    built = _build(voids, _claimed(old, "C-ORIG"))
    claim = built.claims.row(0, named=True)
    assert (claim["frequency"], claim["original_claim_id"], claim["line_count"]) == (
        "8", "C-ORIG", 2,
    )  # fmt: skip


def test_a_replacement_carries_the_claims_full_corrected_set_ofclose_lines() -> None:
    old = close_lines(3)
    replace = old.head(1).with_columns(
        pl.lit("R1").alias("line_id"), pl.lit("replace").alias("kind"),
        pl.col("line_id").alias("adjusts_line_id"), pl.lit("C-ORIG").alias("adjusts_claim_id"),
        pl.lit("I10;E11.9").alias("icd10_codes"),
    )  # fmt: skip
    built = _build(replace, _claimed(old, "C-ORIG"))
    assert built.claims["frequency"].to_list() == ["7"]
    assert sorted(built.lines["line_id"]) == ["L001", "L002", "R1"]


def test_a_replacement_never_mixes_two_billing_practitioners() -> None:
    old = close_lines(2)
    moved = old.head(1).with_columns(
        pl.lit("R1").alias("line_id"), pl.lit("replace").alias("kind"),
        pl.col("line_id").alias("adjusts_line_id"), pl.lit("C-ORIG").alias("adjusts_claim_id"),
        pl.lit("PR2").alias("billing_practitioner_id"),
    )  # fmt: skip
    built = _build(moved, _claimed(old, "C-ORIG"))
    claims = built.claims.sort("frequency")
    assert claims.select("frequency", "billing_practitioner_id").rows() == [
        ("1", "PR2"), ("7", "PR1"),
    ]  # fmt: skip
    lines = built.lines.join(built.claims.select("claim_id", "frequency"), on="claim_id")
    assert sorted(lines.select("frequency", "line_id").rows()) == [("1", "R1"), ("7", "L001")]
