"""Close lines over time (pure): which stored line a re-evaluated line is, and the
adjustment lines between a new evaluation and what the exported claims carry."""

from __future__ import annotations

import datetime as dt

import polars as pl

from billing_engine.services.close.lines import (
    LINE_COLUMNS,
    adjustments,
    line_ids,
    match_open_cycle,
)
from tests.close_support import close_lines

D = dt.date


def _monthly(code: str = "99490", day: int = 19, **values: object) -> pl.DataFrame:
    line = close_lines(1, code=code, date_of_service=D(2025, 12, day), **values)
    return line.with_columns(
        pl.lit(D(2025, 12, 1)).alias("period_start"), pl.lit(D(2025, 12, 31)).alias("period_end")
    ).select(LINE_COLUMNS)


def _claimed(line: pl.DataFrame) -> pl.DataFrame:
    return line.with_columns(pl.lit("L-OLD").alias("line_id"), pl.lit("C-1").alias("claim_chain"))


def _kinds(new: pl.DataFrame, claimed: pl.DataFrame) -> list[tuple[str, str]]:
    result = adjustments(new, claimed)
    return sorted(zip(result["kind"], result["code"], strict=True))


def test_line_ids_carry_month_cycle_and_a_number_never_reused() -> None:
    assert line_ids("2025-12", 2, 7, 2).to_list() == ["L202512-2-000007", "L202512-2-000008"]


def test_an_unchanged_line_keeps_its_stored_id_and_a_changed_one_is_new() -> None:
    stored = _monthly().with_columns(pl.lit("L1").alias("line_id"))
    same = match_open_cycle(_monthly(), stored)
    assert same.kept["line_id"].to_list() == ["L1"] and same.added.height == 0
    changed = match_open_cycle(_monthly(units=2), stored)
    assert changed.added.height == 1 and changed.dropped["line_id"].to_list() == ["L1"]


def test_what_was_claimed_unchanged_needs_no_adjustment() -> None:
    assert _kinds(_monthly(), _claimed(_monthly())) == []


def test_a_new_diagnosis_on_a_claimed_line_is_a_replacement() -> None:
    new = _monthly(icd10_codes="I10;E11.9")
    result = adjustments(new, _claimed(_monthly()))
    assert result.select("kind", "adjusts_line_id", "adjusts_claim_id").rows() == [
        ("replace", "L-OLD", "C-1")
    ]


def test_the_threshold_day_moving_within_the_month_is_a_replacement_not_a_void() -> None:
    assert _kinds(_monthly(day=24), _claimed(_monthly(day=19))) == [("replace", "99490")]


def test_a_code_that_changed_for_the_same_month_is_a_replacement() -> None:
    assert _kinds(_monthly(code="99487"), _claimed(_monthly())) == [("replace", "99487")]


def test_a_claimed_line_no_longer_supported_is_a_void_and_a_new_one_is_new() -> None:
    other = close_lines(1, code="99211", date_of_service=D(2025, 12, 3)).select(LINE_COLUMNS)
    assert _kinds(other, _claimed(_monthly())) == [("new", "99211"), ("void", "99490")]
