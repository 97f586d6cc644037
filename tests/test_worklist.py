"""The care manager's worklist (``billing worklist``), on the demo practice at small size.

A 200-patient practice is imported into a SQLite store; the worklist is made at
2025-12-20 for December 2025, through the command as a care manager runs it and through
``services.worklist`` for the finer checks.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.engine.pipeline import EvaluationResult
from billing_engine.io.bundle import Bundle
from billing_engine.services.evaluation import evaluate
from billing_engine.services.worklist import (
    WORKLIST_COLUMNS,
    blocker_table,
    code_programs,
    owners,
    worklist,
)
from billing_engine.store import Store
from billing_engine.synth.practice import generate_practice
from cli.cmd_evaluate import load_bundle
from cli.main import billing
from reports.worklist import TABLE_WIDTH, to_html, to_table

MONTH = Month(2025, 12)
AS_OF = dt.date(2025, 12, 20)  # a Saturday; Christmas falls between it and the month's end
AS_OF_ARGS = ["2025-12", "--as-of", AS_OF.isoformat()]


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('worklist') / 'demo.db'}"
    with Store.open(url) as store:
        store.import_bundle(generate_practice(200, seed=7, end_month=str(MONTH)))
    return url


@pytest.fixture(scope="module")
def bundle(store_url: str) -> Bundle:
    return load_bundle(None, store_url, None, MONTH)[0]


@pytest.fixture(scope="module")
def result(bundle: Bundle) -> EvaluationResult:
    return evaluate(bundle, MONTH, AS_OF)


@pytest.fixture(scope="module")
def frame(result: EvaluationResult, bundle: Bundle) -> pl.DataFrame:
    return worklist(result, bundle)


def run(*args: str) -> str:
    done = CliRunner().invoke(billing, list(args))
    assert done.exit_code == 0, done.output
    return done.output


def cli_csv(store_url: str, *extra: str) -> pl.DataFrame:
    text = run("worklist", *AS_OF_ARGS, "--format", "csv", "--db", store_url, *extra)
    return pl.read_csv(io.StringIO(text), infer_schema_length=0)


def test_every_minutes_needed_equals_a_short_gap_of_billing_evaluate_at_the_same_as_of(
    store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    run("evaluate", "--month", "2025-12", "--as-of", AS_OF.isoformat(), "--out", str(out),
        "--db", store_url)  # fmt: skip
    gaps = pl.read_csv(out / "gaps.csv", infer_schema_length=0)
    short = gaps.filter(pl.col("status") == "short")
    listed = cli_csv(store_url)
    with_minutes = listed.filter(pl.col("minutes_needed").is_not_null())
    assert with_minutes.height > 0
    unmatched = with_minutes.join(short, on=["patient_id", "code", "minutes_needed"], how="anti")
    assert unmatched.is_empty(), unmatched
    missing = short.join(listed, on="patient_id", how="anti")
    assert missing.is_empty(), missing  # every patient with a short gap is on the list


def test_the_csv_and_json_carry_the_issue_columns_and_status_open_or_done(store_url: str) -> None:
    listed = cli_csv(store_url)
    assert tuple(listed.columns) == WORKLIST_COLUMNS
    assert set(listed["status"]) == {"open", "done"}
    text = run("worklist", *AS_OF_ARGS, "--format", "json", "--db", store_url)
    rows = json.loads(text)
    assert len(rows) == listed.height and tuple(rows[0]) == WORKLIST_COLUMNS


def test_open_rows_come_first_sorted_by_deadline_then_amount_highest_first(
    frame: pl.DataFrame,
) -> None:
    status = frame["status"].to_list()
    assert status == sorted(status, key=lambda s: s != "open")
    opened = frame.filter(pl.col("status") == "open")
    expected = opened.sort(["deadline", "amount"], descending=[False, True], nulls_last=True)
    assert opened.select("deadline", "amount").equals(expected.select("deadline", "amount"))


def test_one_row_per_patient_and_program(frame: pl.DataFrame) -> None:
    assert frame.select("patient_id", "program").is_duplicated().sum() == 0


def test_business_days_left_count_from_the_as_of_date_to_the_deadline_without_weekends_or_christmas(
    frame: pl.DataFrame,
) -> None:
    month_end = frame.filter(pl.col("deadline") == MONTH.end)
    assert month_end.height > 0
    # Dec 22, 23, 24, 26, 29, 30, 31: Christmas Day and the weekends are not business days
    assert set(month_end["business_days_left"]) == {7}


def test_blockers_are_the_reason_tables_words_for_the_gaps_minutes_cannot_fix(
    frame: pl.DataFrame, result: EvaluationResult
) -> None:
    words = set(blocker_table()["blocker"])
    shown = {b for cell in frame["blockers"].drop_nulls() for b in cell.split("; ")}
    assert shown and shown <= words
    plan = result.gaps.filter(pl.col("reason") == "care_plan_missing")["patient_id"]
    blocked = frame.filter(pl.col("patient_id").is_in(plan.implode()))
    assert (blocked["blockers"].fill_null("").str.contains("no care plan")).any()
    assert frame.filter(pl.col("blockers").is_not_null())["minutes_needed"].null_count() > 0


def test_billed_patients_are_done_with_what_the_next_add_on_threshold_needs(
    frame: pl.DataFrame, result: EvaluationResult
) -> None:
    done = frame.filter(pl.col("status") == "done")
    assert done.join(result.claim_lines, on="patient_id", how="anti").is_empty()
    billed = result.claim_lines.select("patient_id").unique()
    assert billed.join(done, on="patient_id", how="anti").is_empty()
    add_ons = code_programs(result).filter("add_on")["code"]
    next_step = done.filter(pl.col("minutes_needed").is_not_null())
    assert next_step.height > 0 and next_step["code"].is_in(add_ons.implode()).all()


def test_the_patients_care_manager_owns_the_row_over_who_logged_the_most_minutes(
    bundle: Bundle, result: EvaluationResult
) -> None:
    patient = worklist(result, bundle).filter(pl.col("status") == "open")["patient_id"][0]
    patients = bundle["patients"].with_columns(
        care_manager_id=pl.when(pl.col("patient_id") == patient).then(pl.lit("CM99"))
    )
    mine = replace(bundle, tables={**bundle.tables, "patients": patients})
    rows = worklist(result, mine, care_manager="CM99")
    assert set(rows["patient_id"]) == {patient}


def test_without_a_care_manager_the_staff_member_with_the_most_minutes_in_three_months_owns_it(
    bundle: Bundle,
) -> None:
    logged = bundle["encounters"].filter(
        (pl.col("kind") == "care_management")
        & pl.col("date").is_between(MONTH.shift(-2).start, MONTH.end)
    )
    totals = logged.group_by("patient_id", "performer_id").agg(pl.col("minutes").sum())
    patient = totals.group_by("patient_id").len().filter(pl.col("len") > 1)["patient_id"][0]
    mine = totals.filter(pl.col("patient_id") == patient).sort("minutes", descending=True)
    owner = owners(bundle, MONTH).filter(pl.col("patient_id") == patient)["care_manager_id"][0]
    assert owner == mine["performer_id"][0]


def test_care_manager_option_keeps_only_that_care_managers_patients(store_url: str) -> None:
    listed = cli_csv(store_url, "--care-manager", "CM01")
    assert listed.height > 0 and set(listed["care_manager_id"]) == {"CM01"}


def test_the_terminal_table_fits_100_columns_even_with_long_cells(
    store_url: str, frame: pl.DataFrame
) -> None:
    text = run("worklist", *AS_OF_ARGS, "--db", store_url)
    assert "CM01:" in text and "done this month" in text
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH
    long = frame.with_columns(
        code=pl.lit("99439+99490+G0506"),
        blockers=pl.lit("no consent; no care plan; no initiating visit; no coverage"),
        program=pl.lit("a_very_long_program_name"),
    )
    lines = to_table(long, title="x" * 150).splitlines()
    assert max(len(line) for line in lines) <= TABLE_WIDTH


def test_the_html_page_is_print_friendly_self_contained_and_one_section_per_care_manager(
    store_url: str, frame: pl.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "worklist.html"
    run("worklist", *AS_OF_ARGS, "--format", "html", "--out", str(out), "--db", store_url)
    page = out.read_text(encoding="utf-8")
    assert "@media print" in page and "break-after: page" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    owners_listed = frame["care_manager_id"].fill_null("unassigned").n_unique()
    assert page.count("<section>") == owners_listed


def test_the_html_page_escapes_what_the_store_holds(frame: pl.DataFrame) -> None:
    tricky = frame.head(1).with_columns(patient_id=pl.lit("<b>P1</b>"))
    page = to_html(tricky, title="t")
    assert "<b>P1</b>" not in page and "&lt;b&gt;P1&lt;/b&gt;" in page
