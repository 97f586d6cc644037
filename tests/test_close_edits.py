"""Claim edits at lock, one by one: each defect a payer rejects holds the line with the
edit's name, and a complete line passes them all (close.md, "Claim edits at lock")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

import polars as pl
import pytest

from billing_engine.io.bundle import Bundle
from billing_engine.services.close.edits import EDITS, claim_context, failed_edits
from tests.close_support import claim_ready

D = dt.date


def _bundle() -> Bundle:
    frames = {
        "practitioners": pl.DataFrame(
            {"practitioner_id": ["PR1"], "npi": ["1487219036"], "credential": ["MD"]}
        ),
        "patients": pl.DataFrame({"patient_id": ["P1"], "birth_date": [D(1950, 2, 28)]}),
        "payers": pl.DataFrame({"payer_id": ["MCR"], "kind": ["medicare"]}),
        "coverages": pl.DataFrame(
            {"patient_id": ["P1"], "payer_id": ["MCR"], "start_date": [D(2020, 1, 1)]}
        ),
    }
    return claim_ready(Bundle.from_frames(frames))


LINE = pl.DataFrame(
    {
        "line_id": ["L1"],
        "patient_id": ["P1"],
        "payer_id": ["MCR"],
        "billing_npi": ["1487219036"],
        "icd10_codes": ["E11.9;I10"],
        "date_of_service": [D(2025, 12, 19)],
    }
)


def _with(bundle: Bundle, table: str, **values: object) -> Bundle:
    frame = bundle[table]
    frame = frame.with_columns(pl.lit(v, frame.schema[c]).alias(c) for c, v in values.items())
    return replace(bundle, tables={**bundle.tables, table: frame})


def _failed(bundle: Bundle, line: pl.DataFrame = LINE) -> list[str]:
    result = failed_edits(claim_context(line, bundle))
    return [] if not result.height else result["edit_failures"][0].split(";")


def test_a_complete_line_passes_every_claim_edit() -> None:
    assert _failed(_bundle()) == []


Defect = Callable[[Bundle], tuple[Bundle, pl.DataFrame]]
DEFECTS: dict[str, Defect] = {
    "billing_provider_incomplete": lambda b: (_with(b, "practice", zip="48104"), LINE),
    "submitter_incomplete": lambda b: (_with(b, "practice", receiver_id=None), LINE),
    "self_pay": lambda b: (_with(b, "payers", kind="self_pay"), LINE),
    "payer_id_missing": lambda b: (_with(b, "payers", x12_payer_id=None), LINE),
    "dos_outside_coverage": lambda b: (_with(b, "coverages", end_date=D(2025, 11, 30)), LINE),
    "member_id_missing": lambda b: (_with(b, "coverages", member_id=" "), LINE),
    "subscriber_missing": lambda b: (_with(b, "coverages", relationship="child"), LINE),
    "npi_invalid": lambda b: (b, LINE.with_columns(pl.lit("1234567890").alias("billing_npi"))),
    "diagnosis_missing": lambda b: (b, LINE.with_columns(pl.lit("").alias("icd10_codes"))),
    "patient_name_missing": lambda b: (_with(b, "patients", last_name=None), LINE),
    "patient_address_missing": lambda b: (_with(b, "patients", address1=""), LINE),
    "sex_missing": lambda b: (_with(b, "patients", sex=None), LINE),
}


def test_every_claim_edit_has_a_defect_that_trips_it() -> None:
    assert sorted(DEFECTS) == sorted(e.name for e in EDITS)


@pytest.mark.parametrize("edit", sorted(DEFECTS))
def test_a_line_with_the_defect_fails_that_edit_and_no_other(edit: str) -> None:
    bundle, line = DEFECTS[edit](_bundle())
    assert _failed(bundle, line) == [edit]


def test_the_hold_reason_names_the_first_failed_edit_and_all_are_listed() -> None:
    bundle = _with(_with(_bundle(), "patients", sex=None), "payers", x12_payer_id=None)
    result = failed_edits(claim_context(LINE, bundle))
    assert result["hold_reason"].to_list() == ["edit:payer_id_missing"]
    assert result["edit_failures"].to_list() == ["payer_id_missing;sex_missing"]


def test_a_line_without_its_practice_row_fails_the_billing_provider_edit() -> None:
    bundle = _bundle()
    bundle = replace(bundle, tables={**bundle.tables, "practice": bundle["practice"].head(0)})
    assert "billing_provider_incomplete" in _failed(bundle)
