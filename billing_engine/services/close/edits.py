"""Claim edits at lock: what a clearinghouse or payer rejects a claim line for.

Each edit is a named criterion, a polars expression that is true where the line FAILS,
over the line's claim context (``claim_context``: the close line joined with its
patient, payer, the coverage in force on the date of service, the billing
practitioner and the practice). A line that fails any edit is held at lock with reason
``edit:<name>`` (the first failed, in the order below) and every failed name in
``edit_failures`` (close.md, "Claim edits at lock").

The list holds close.md's edits and three more: ``submitter_incomplete`` (the envelope
needs a receiver id and a contact phone), ``self_pay`` (a self-pay line is billed to the
patient, not sent on an 837P) and ``subscriber_missing`` (a coverage whose patient is
not the subscriber, ``relationship`` other than ``self``, needs the subscriber's own
name and birth date in loop 2010BA, which the bundle does not carry). The practice's
ZIP must have 9 digits: the guide requires ZIP+4 for the billing provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from billing_engine.io.bundle import Bundle
from billing_engine.io.cells import valid_npi

SELF = "self"
SELF_PAY = "self_pay"
NINE_DIGITS = r"^\d{9}$"
# the bundle tables a claim is built and checked from (the close reads only these)
CLAIM_TABLES = ("practice", "practitioners", "patients", "payers", "coverages", "charges")


def _blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def _any_blank(*columns: str) -> pl.Expr:
    return pl.any_horizontal(_blank(c) for c in columns)


@dataclass(frozen=True)
class ClaimEdit:
    name: str
    meaning: str
    fails: Callable[[], pl.Expr]


EDITS: tuple[ClaimEdit, ...] = (
    ClaimEdit(
        "billing_provider_incomplete",
        "the practice (billing provider) lacks a valid NPI, a 9-digit TIN or its address (ZIP+4)",
        lambda: (
            ~valid_npi(pl.col("practice_npi")).fill_null(False)
            | ~pl.col("practice_tin").str.contains(NINE_DIGITS).fill_null(False)
            # loop 2010AA carries the ZIP+4 (TR3 005010X222A1, the billing provider's N403)
            | ~pl.col("practice_zip").str.contains(NINE_DIGITS).fill_null(False)
            | _any_blank("practice_address1", "practice_city", "practice_state")
        ),
    ),
    ClaimEdit(
        "submitter_incomplete",
        "the practice lacks the 837 envelope parties: a receiver id and a contact phone",
        lambda: (
            _blank("practice_receiver_id")
            | (_blank("practice_contact_phone") & _blank("practice_phone"))
        ),
    ),
    ClaimEdit(
        "self_pay",
        "the line's payer is self-pay: the patient is billed directly, not on an 837P",
        lambda: pl.col("kind").eq_missing(SELF_PAY),
    ),
    ClaimEdit(
        "payer_id_missing",
        "the payer has no x12_payer_id (loop 2010BB)",
        lambda: _blank("x12_payer_id"),
    ),
    ClaimEdit(
        "dos_outside_coverage",
        "no coverage of the patient by the payer is in force on the date of service",
        lambda: ~pl.col("covered").fill_null(False),
    ),
    ClaimEdit(
        "member_id_missing",
        "the coverage has no member_id",
        lambda: pl.col("covered").fill_null(False) & _blank("member_id"),
    ),
    ClaimEdit(
        "subscriber_missing",
        "the patient is not the subscriber and the bundle has no subscriber demographics",
        lambda: pl.col("relationship").fill_null(SELF).ne(SELF),
    ),
    ClaimEdit(
        "npi_invalid",
        "the billing practitioner's NPI is missing or fails its check digit",
        lambda: ~valid_npi(pl.col("billing_npi")).fill_null(False),
    ),
    ClaimEdit(
        "diagnosis_missing",
        "the line has no ICD-10 code",
        lambda: _blank("icd10_codes"),
    ),
    ClaimEdit(
        "patient_name_missing",
        "the patient has no first or last name",
        lambda: _any_blank("first_name", "last_name"),
    ),
    ClaimEdit(
        "patient_address_missing",
        "the patient has no street address, city, state or ZIP",
        lambda: _any_blank("address1", "city", "state", "zip"),
    ),
    ClaimEdit(
        "sex_missing",
        "the patient's sex is not recorded",
        lambda: _blank("sex"),
    ),
)

PRACTICE_COLUMNS = (
    "name",
    "npi",
    "tin",
    "taxonomy",
    "address1",
    "address2",
    "city",
    "state",
    "zip",
    "phone",
    "submitter_id",
    "submitter_name",
    "contact_name",
    "contact_phone",
    "receiver_id",
    "receiver_name",
)
PATIENT_COLUMNS = (
    "patient_id",
    "first_name",
    "last_name",
    "birth_date",
    "sex",
    "address1",
    "address2",
    "city",
    "state",
    "zip",
)


def practice_row(bundle: Bundle) -> dict[str, str | None]:
    """The practice (the billing provider): its first row, or every field None."""
    frame = bundle["practice"]
    if not frame.height:
        return dict.fromkeys(PRACTICE_COLUMNS)
    return {c: frame[c][0] for c in PRACTICE_COLUMNS}


def claim_context(lines: pl.DataFrame, bundle: Bundle) -> pl.DataFrame:
    """``lines`` (with ``line_id, patient_id, payer_id, date_of_service``) joined with what
    a claim needs: patient demographics, the payer's X12 id and filing indicator, the
    coverage in force on the date of service, and the practice as ``practice_*``."""
    coverage = (
        lines.select("line_id", "patient_id", "payer_id", "date_of_service")
        .join(bundle["coverages"], on=["patient_id", "payer_id"], how="inner")
        .filter(
            (pl.col("start_date") <= pl.col("date_of_service"))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col("date_of_service")))
        )
        .sort("line_id", "rank", "start_date", nulls_last=True)
        .group_by("line_id", maintain_order=True)
        .first()
        .select(
            "line_id",
            pl.lit(True).alias("covered"),
            "member_id",
            "group_number",
            "relationship",
            pl.col("start_date").alias("coverage_start"),
        )
    )
    payers = bundle["payers"].select(
        "payer_id",
        pl.col("name").alias("payer_name"),
        "kind",
        "x12_payer_id",
        "claim_filing_indicator",
    )
    practice = practice_row(bundle)
    return (
        lines.join(bundle["patients"].select(PATIENT_COLUMNS), on="patient_id", how="left")
        .join(payers, on="payer_id", how="left")
        .join(coverage, on="line_id", how="left")
        .with_columns(
            pl.lit(value, pl.String).alias(f"practice_{name}") for name, value in practice.items()
        )
    )


def failed_edits(context: pl.DataFrame) -> pl.DataFrame:
    """``line_id, hold_reason, edit_failures`` of the lines that fail an edit."""
    names = [pl.when(e.fails()).then(pl.lit(e.name)) for e in EDITS]
    return (
        context.select("line_id", pl.concat_list(names).list.drop_nulls().alias("failed"))
        .filter(pl.col("failed").list.len() > 0)
        .select(
            "line_id",
            (pl.lit("edit:") + pl.col("failed").list.first()).alias("hold_reason"),
            pl.col("failed").list.join(";").alias("edit_failures"),
        )
    )
