"""Test support for the monthly close: a small practice whose claims are complete.

``claim_ready`` fills every column a claim needs where the bundle leaves it blank (the
practice row, names, addresses, sex, payer X12 ids, member ids), so a test knows that
every hold it sees comes from the defect it put in on purpose.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import polars as pl

from billing_engine.io.bundle import Bundle
from billing_engine.store import Store
from billing_engine.synth.practice import generate_practice

MONTH = "2025-12"
MONEY = pl.Decimal(18, 2)
GROUP_NPI = "1234567893"  # the CMS example NPI (valid check digit)
PRACTICE = {
    "name": "Lakeside Family Medicine",
    "npi": GROUP_NPI,
    "tin": "382345678",
    "taxonomy": "261QP2300X",
    "address1": "100 Main Street",
    "address2": "Suite 2",
    "city": "Grand Rapids",
    "state": "MI",
    "zip": "495031234",
    "phone": "6165550100",
    "submitter_id": "LAKESIDE01",
    "submitter_name": "Lakeside Family Medicine",
    "contact_name": "Billing Office",
    "contact_phone": "6165550101",
    "receiver_id": "CLEARHOUSE",
    "receiver_name": "Example Clearinghouse",
}


def _fill(frame: pl.DataFrame, values: dict[str, pl.Expr]) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).fill_null(v).alias(c) for c, v in values.items())


def claim_ready(bundle: Bundle) -> Bundle:
    """``bundle`` with every claim column filled where blank (see the module docstring)."""
    t = dict(bundle.tables)
    t["practice"] = pl.DataFrame([PRACTICE]).cast(
        {c: dtype for c, dtype in bundle["practice"].schema.items() if c in PRACTICE}
    )
    t["patients"] = _fill(
        t["patients"],
        {
            "first_name": pl.lit("Pat"),
            "last_name": pl.lit("Doe") + pl.col("patient_id"),
            "sex": pl.lit("F"),
            "address1": pl.lit("1 Elm Street"),
            "city": pl.lit("Grand Rapids"),
            "state": pl.lit("MI"),
            "zip": pl.lit("49503"),
        },
    )
    t["payers"] = _fill(t["payers"], {"x12_payer_id": pl.lit("X") + pl.col("payer_id")})
    t["coverages"] = _fill(
        t["coverages"], {"member_id": pl.lit("M") + pl.col("patient_id")}
    ).with_columns(pl.col("relationship").fill_null("self"))
    t["practitioners"] = _fill(
        t["practitioners"],
        {
            "first_name": pl.lit("Alex"),
            "last_name": pl.col("practitioner_id"),
            "taxonomy": pl.lit("207Q00000X"),
        },
    )
    return replace(bundle, tables=t)


def practice_bundle(patients: int = 120, seed: int = 11) -> Bundle:
    return claim_ready(generate_practice(patients, seed=seed, end_month=MONTH))


def open_store(url: str, bundle: Bundle | None = None) -> Store:
    store = Store.open(url)
    store.import_bundle(bundle if bundle is not None else practice_bundle())
    return store


def tmp_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'close.db'}"


def close_lines(n: int, **values: object) -> pl.DataFrame:
    """``n`` approved-to-be close lines of one patient (99211, one a day), ``values`` set."""
    base = {
        "line_id": [f"L{i:03d}" for i in range(n)],
        "kind": ["original"] * n,
        "adjusts_line_id": [None] * n,
        "adjusts_claim_id": [None] * n,
        "patient_id": ["P1"] * n,
        "payer_id": ["MCR"] * n,
        "billing_practitioner_id": ["PR1"] * n,
        "billing_npi": ["1487219036"] * n,
        "code": ["99211"] * n,
        "modifiers": [""] * n,
        "units": [1] * n,
        "date_of_service": [dt.date(2025, 12, 1 + i % 28) for i in range(n)],
        "place_of_service": ["11"] * n,
        "icd10_codes": ["I10"] * n,
        "period_start": [None] * n,
        "period_end": [None] * n,
        "allowed_amount": [Decimal("24.91")] * n,
        "payer_amount": [Decimal("19.93")] * n,
        "patient_amount": [Decimal("4.98")] * n,
        "evidence": ["E1"] * n,
        "rule": ["NV-1"] * n,
    }
    frame = pl.DataFrame(base).with_columns(
        pl.col("allowed_amount", "payer_amount", "patient_amount").cast(MONEY),
        pl.col("period_start", "period_end").cast(pl.Date),
        pl.col("adjusts_line_id", "adjusts_claim_id").cast(pl.String),
    )
    return frame.with_columns(pl.lit(v, frame.schema[c]).alias(c) for c, v in values.items())
