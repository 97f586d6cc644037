"""The web app in a real headless Chromium, as a biller and a care manager use it: log in,
open the worklist, approve and hold lines, lock, download the 837P files, log out.
Screenshots go to ``tests/artifacts/web-*.png`` for review.

The app runs on waitress (as ``billing serve`` runs it) on a free loopback port, with
the real cookie settings (Secure: Chromium treats 127.0.0.1 as a secure origin).
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.web.app import create_app
from tests.browser import ARTIFACTS, chromium_tab
from tests.web_support import AS_OF, MONTH, PASSWORDS, make_store
from tests.x12_check import assert_valid_837p


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    import waitress

    app = create_app(make_store(tmp_path, patients=80), today=lambda: AS_OF)
    running = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{running.effective_port}"  # type: ignore[union-attr]
    finally:
        running.close()


def _log_in(tab: Any, base: str, name: str) -> None:
    tab.goto(f"{base}/login")
    tab.fill("#username", name)
    tab.fill("#password", PASSWORDS[name][1])
    tab.click("button[type=submit]")
    tab.wait_for_load_state("load")


def test_a_biller_runs_the_close_in_chromium_and_downloads_valid_claim_files(
    server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with chromium_tab(accept_downloads=True) as (tab, errors):
        _log_in(tab, server, "bill")
        assert tab.url.endswith("/close")
        tab.goto(f"{server}/worklist?month={MONTH}")
        tab.wait_for_selector("#worklist")
        tab.select_option("#care_manager", "CM01")  # htmx swaps the rows
        expect(tab.locator("#worklist")).not_to_contain_text("CM02")
        tab.screenshot(path=str(ARTIFACTS / "web-worklist.png"), full_page=True)
        tab.goto(f"{server}/close?month={MONTH}")
        tab.click("#do-start")
        tab.wait_for_selector("#lines")
        assert "cycle 1 opened" in tab.inner_text("#message")
        tab.locator("input[name=line]").first.check()
        tab.fill("#hold-reason", "visit note unsigned")
        tab.click("#hold-selected")
        expect(tab.locator("#message")).to_contain_text("held")
        tab.click("#approve-all")
        expect(tab.locator("#message")).to_contain_text("approved")
        tab.screenshot(path=str(ARTIFACTS / "web-close-review.png"), full_page=True)
        tab.click("#do-lock")
        expect(tab.locator("#state")).to_contain_text("locked")
        with tab.expect_download() as download:
            tab.click("#do-export")
        saved = tmp_path / "claims.zip"
        download.value.save_as(saved)
        tab.goto(f"{server}/close/{MONTH}/log")
        tab.screenshot(path=str(ARTIFACTS / "web-audit-log.png"), full_page=True)
        log = tab.inner_text("#log")
        tab.click("#logout")
        tab.wait_for_load_state("load")
        assert tab.url.endswith("/login")
        tab.goto(f"{server}/close")
        assert tab.url.endswith("/login")  # logged out: the session is gone
        assert errors == []
    for action in ("start", "hold", "approve", "lock", "export"):
        assert f"bill\t{action}" in log, action
    with zipfile.ZipFile(saved) as archive:
        files = [n for n in archive.namelist() if n.startswith("837p-")]
        assert files
        for name in files:
            assert_valid_837p(io.TextIOWrapper(archive.open(name)).read())


def test_a_care_manager_sees_her_worklist_and_a_patients_month_in_chromium(server: str) -> None:
    with chromium_tab() as (tab, errors):
        _log_in(tab, server, "rachel")
        assert "/worklist" in tab.url
        rows = tab.inner_text("#worklist")
        assert "CM01" in rows and "CM02" not in rows and "CM03" not in rows
        assert tab.locator("a[href='/close']").count() == 0  # no close for her
        tab.locator("#worklist a").first.click()
        tab.wait_for_selector("#explain")
        tab.screenshot(path=str(ARTIFACTS / "web-patient.png"), full_page=True)
        assert tab.inner_text("#timeline")
        assert errors == []
