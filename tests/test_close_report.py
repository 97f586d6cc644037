"""The close report (``billing report html``), checked as a biller opens it.

A small demo store (200 patients) is closed for 2025-12 twice through
``services.close.whole.close_month`` (start, approve, lock with the claim edits,
export; then an adjustment cycle), so the page has edit holds, claims and adjustments.
The page is then opened in a real headless Chromium (Debian's ``chromium``, driven by
playwright): no console error, every chart drawn, no request beyond the file itself,
and a full-page screenshot for review (``tests/artifacts/close_report.png``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from billing_engine.calendar import Month
from billing_engine.services.close.whole import close_month
from billing_engine.services.close_report_data import (
    CloseReportData,
    ccm_thresholds,
    close_report_data,
)
from billing_engine.services.evaluation import default_parameters
from billing_engine.store import Store
from billing_engine.synth.practice import generate_practice
from cli.main import billing
from reports.close_report import render_close_report
from tests.browser import ARTIFACTS, open_page

MONTH = Month.parse("2025-12")
SCREENSHOT = ARTIFACTS / "close_report.png"
CREATED_AT = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def closed_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 200-patient demo store with 2025-12 closed (cycle 1) and adjusted (cycle 2)."""
    root = tmp_path_factory.mktemp("close_report")
    url = f"sqlite:///{root / 'close.db'}"
    with Store.open(url) as store:
        store.import_bundle(generate_practice(200, end_month=str(MONTH)))
        for _ in range(2):
            close_month(store, MONTH, user="amy", out_root=root / "claims")
    return url


@pytest.fixture(scope="module")
def report_data(closed_store: str) -> CloseReportData:
    with Store.open(closed_store, create=False) as store:
        return close_report_data(store.load_bundle(), MONTH, store=store)


@pytest.fixture(scope="module")
def page(closed_store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page as ``billing report html`` writes it."""
    out = tmp_path_factory.mktemp("page") / "close-2025-12.html"
    result = CliRunner().invoke(
        billing, ["report", "html", str(MONTH), "--out", str(out), "--db", closed_store]
    )
    assert result.exit_code == 0, result.output
    return out


def test_the_minutes_thresholds_are_the_ccm_rule_parameters() -> None:
    period = default_parameters().for_period(MONTH.start, MONTH.end)
    base = period.as_int("ccm.staff.threshold_minutes")
    step = period.as_int("ccm.staff.addon_step_minutes")
    units = period.as_int("ccm.staff.addon_max_units")
    ladder = ccm_thresholds(MONTH).minutes
    assert ladder == tuple(base + step * k for k in range(units + 1))
    assert ladder[0] == base and len(ladder) == units + 1


def test_the_patients_worth_a_call_are_those_just_below_a_threshold(
    report_data: CloseReportData,
) -> None:
    minutes = report_data.minutes
    near = minutes.filter(pl.col("near"))
    assert near.height > 0
    assert near["short_by"].max() <= report_data.near_minutes  # type: ignore[operator]
    assert (near["next_threshold"] - near["minutes"] == near["short_by"]).all()
    assert set(near["next_threshold"].to_list()) <= set(report_data.thresholds.minutes)
    assert not (minutes["near"] & minutes["blocked"]).any()  # minutes cannot fix a block
    far = minutes.filter(~pl.col("near") & (pl.col("minutes") > 0) & ~pl.col("blocked"))
    assert (far["short_by"].is_null() | (far["short_by"] > report_data.near_minutes)).all()


def test_the_gaps_money_by_reason_adds_up_to_the_money_left_on_the_table(
    report_data: CloseReportData,
) -> None:
    by_reason = report_data.gaps_by_reason["potential_amount"].sum()
    assert Decimal(str(by_reason)) == report_data.totals["left_on_table"].item()
    assert report_data.totals["left_on_table"].item() > 0


def test_the_trend_covers_the_twelve_months_ending_with_the_report_month(
    report_data: CloseReportData,
) -> None:
    months = report_data.trend["month"].to_list()
    assert months == [str(MONTH.shift(k - 11)) for k in range(12)]
    december = report_data.trend.filter(pl.col("month") == str(MONTH))
    assert december["allowed_amount"].item() == report_data.totals["allowed_amount"].item()


def test_the_close_section_holds_the_edit_holds_claims_and_adjustments(
    report_data: CloseReportData,
) -> None:
    close = report_data.close
    assert close is not None and close.cycle == 2
    assert close.holds.height > 0
    assert all(str(r).startswith("edit:") for r in close.holds["hold_reason"].to_list())
    assert "1" in close.claims["frequency"].to_list()
    assert set(close.adjustments["kind"].to_list()) <= {"new", "replace", "void"}
    assert close.adjustments.height > 0


def test_the_page_is_self_contained_with_no_script_and_no_outside_link(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", text, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(?!#)", text)
    assert "@import" not in text
    assert text.count("<svg") == 4
    for held in ("edit:payer_id_missing", "Worth a call", "Gaps by reason"):
        assert held in text


def test_a_month_without_a_close_says_so_instead_of_showing_empty_tables(
    report_data: CloseReportData,
) -> None:
    text = render_close_report(replace(report_data, close=None), created_at=CREATED_AT)
    assert f"The store has no close for {MONTH}" in text
    assert "Held lines" not in text


def test_the_report_of_a_store_that_does_not_exist_is_refused_with_exit_code_2(
    tmp_path: Path,
) -> None:
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        billing, ["report", "html", str(MONTH), "--out", str(out), "--db", missing]
    )
    assert result.exit_code == 2, result.output
    assert not out.exists() and not (tmp_path / "none.db").exists()


def test_the_page_renders_in_chromium_offline_with_every_chart_drawn(page: Path) -> None:
    opened = open_page(page, SCREENSHOT)
    errors, requests, charts = opened.errors, opened.requests, opened.charts
    assert errors == []
    assert requests == []
    assert len(charts) == 4
    for chart in charts:
        assert chart["width"] > 0 and chart["height"] > 0, chart
        assert chart["children"] > 0, chart
    assert SCREENSHOT.stat().st_size > 0
