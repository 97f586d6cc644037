"""The synthetic practice's claim columns (close.md, "Bundle additions for claims"):
the practice row, the charge master, addresses, names, taxonomies, payer ids, and the
deliberate defects the claim edits at lock should catch."""

from __future__ import annotations

import re

import polars as pl
import pytest

from billing_engine.calendar import Month
from billing_engine.io.bundle import Bundle
from billing_engine.io.schema import TABLES
from billing_engine.services.evaluation import evaluate
from billing_engine.synth.claim_vocabulary import load_claim_vocabulary
from billing_engine.synth.practice import generate_practice, npi_is_valid
from billing_engine.synth.vocabulary import load_vocabulary

DEMO_PATIENTS = 2000
DEMO_MONTH = Month.parse("2025-12")
# the defects of the demo practice, as the generator's docstring states them
DEMO_COVERAGES_WITHOUT_MEMBER_ID = 16
DEMO_PATIENTS_WITHOUT_ADDRESS = 6
DEMO_PATIENTS_WITHOUT_SEX = 2
CLAIM_TABLES = ("practice", "charges", "patients", "practitioners", "payers", "coverages")


@pytest.fixture(scope="module")
def demo() -> Bundle:
    return generate_practice(DEMO_PATIENTS)


def test_the_demo_has_one_practice_row_with_a_valid_group_npi_tin_zip_and_phones(
    demo: Bundle,
) -> None:
    practice = demo["practice"]
    assert practice.height == 1
    row = practice.row(0, named=True)
    assert npi_is_valid(row["npi"])
    assert re.fullmatch(r"\d{9}", row["tin"])
    assert re.fullmatch(r"\d{9}", row["zip"])
    assert re.fullmatch(r"\d{10}", row["phone"])
    assert re.fullmatch(r"\d{10}", row["contact_phone"])
    assert re.fullmatch(r"[A-Z]{2}", row["state"])
    assert all(row[c] for c in ("name", "address1", "city", "submitter_id", "receiver_id"))
    assert row["npi"] not in demo["practitioners"]["npi"].to_list()


def test_every_claim_column_with_a_pattern_or_enum_matches_it(demo: Bundle) -> None:
    bad: list[str] = []
    for name in CLAIM_TABLES:
        for column in TABLES[name].columns:
            values = demo[name][column.name].drop_nulls()
            if column.pattern and values.dtype == pl.String:
                wrong = values.filter(~values.str.contains(column.pattern))
                if wrong.len():
                    bad.append(f"{name}.{column.name}: {wrong.to_list()[:3]}")
            if column.enum and not set(values.to_list()) <= set(column.enum):
                bad.append(f"{name}.{column.name}: outside {column.enum}")
    assert bad == []


def test_every_code_the_demo_month_bills_has_a_charge_except_those_left_out_on_purpose(
    demo: Bundle,
) -> None:
    billed = set(evaluate(demo, DEMO_MONTH).claim_lines["code"].to_list())
    charged = set(demo["charges"]["code"].to_list())
    left_out = set(load_claim_vocabulary().without_charge)
    assert billed - charged == billed & left_out
    assert billed & left_out, "the no-row path (charge = allowed) is not exercised"
    assert not charged & left_out


def test_charges_are_whole_dollars_above_every_allowed_amount_of_the_demo_month(
    demo: Bundle,
) -> None:
    charges = demo["charges"].filter(pl.col("effective_to").is_null())
    assert (charges["charge"] == charges["charge"].round(0)).all()
    lines = evaluate(demo, DEMO_MONTH).claim_lines.filter(pl.col("allowed_amount").is_not_null())
    per_unit = lines.select("code", (pl.col("allowed_amount") / pl.col("units")).alias("unit"))
    joined = per_unit.join(charges, on="code")
    assert joined.height
    assert (joined["charge"].cast(pl.Float64) > joined["unit"].cast(pl.Float64)).all()


def test_the_demo_holds_the_stated_defects_and_no_others(demo: Bundle) -> None:
    patients, coverages, payers = demo["patients"], demo["coverages"], demo["payers"]
    assert coverages["member_id"].null_count() == DEMO_COVERAGES_WITHOUT_MEMBER_ID
    assert patients["address1"].null_count() == DEMO_PATIENTS_WITHOUT_ADDRESS
    assert patients["sex"].null_count() == DEMO_PATIENTS_WITHOUT_SEX
    assert payers.filter(pl.col("x12_payer_id").is_null())["payer_id"].to_list() == [
        load_claim_vocabulary().defects.payer_without_x12_id
    ]
    assert patients["city"].null_count() == 0
    assert patients["state"].null_count() == 0


def test_patient_cities_follow_their_zip_and_practitioner_names_follow_name(
    demo: Bundle,
) -> None:
    cities = load_claim_vocabulary().zip_cities
    patients = demo["patients"]
    assert set(patients["zip"].unique().to_list()) <= set(load_vocabulary().zips)
    expected = patients["zip"].replace_strict(cities, return_dtype=pl.String)
    assert (patients["city"] == expected).all()
    practitioners = demo["practitioners"]
    for name, first, last in practitioners.select("name", "first_name", "last_name").rows():
        assert name.startswith(f"{first} {last}")


def test_billing_practitioners_have_a_taxonomy_and_commercial_coverages_a_group(
    demo: Bundle,
) -> None:
    practitioners = demo["practitioners"].filter(pl.col("npi").is_not_null())
    assert practitioners["taxonomy"].null_count() == 0
    kinds = demo["payers"].select("payer_id", "kind")
    coverages = demo["coverages"].join(kinds, on="payer_id")
    commercial = coverages.filter(pl.col("kind") == "commercial")
    assert commercial["group_number"].null_count() == 0
    assert coverages.filter(pl.col("kind") != "commercial")["group_number"].null_count() == (
        coverages.height - commercial.height
    )
    relationships = coverages["relationship"].value_counts()
    counts = dict(zip(relationships["relationship"], relationships["count"], strict=True))
    assert counts["self"] > 0.9 * coverages.height
    assert counts.get("spouse", 0) > 0 and counts.get("child", 0) > 0
    assert coverages.filter(pl.col("kind") != "commercial")["relationship"].unique().to_list() == [
        "self"
    ]


def test_the_same_seed_gives_the_same_claim_columns_and_another_seed_other_ones() -> None:
    first, second = generate_practice(300, seed=5), generate_practice(300, seed=5)
    for name in CLAIM_TABLES:
        assert first[name].equals(second[name]), name
    other = generate_practice(300, seed=6)
    assert not first["patients"]["address1"].equals(other["patients"]["address1"])
    assert not first["charges"].equals(other["charges"])


def test_a_small_practice_still_gets_one_row_of_each_share_defect() -> None:
    bundle = generate_practice(50, seed=3)
    assert bundle["patients"]["address1"].null_count() == 1
    assert bundle["coverages"]["member_id"].null_count() == 1
    assert bundle["patients"]["sex"].null_count() == DEMO_PATIENTS_WITHOUT_SEX
