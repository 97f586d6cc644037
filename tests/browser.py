"""Open a saved page in a real headless Chromium (Debian's ``chromium``, driven by
playwright), as a reader would: every console error, every request beyond the file
itself, each chart's size and drawing, and a full-page screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"


def chromium_or_skip() -> Path:
    """Debian's chromium; missing, the browser test is skipped, but fails on CI."""
    found = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set, so the browser test must run")
        pytest.skip(message)
    return Path(found)


@dataclass(frozen=True)
class Opened:
    errors: list[str]  # console errors and page errors
    requests: list[str]  # requests for anything but the page itself (all refused)
    charts: list[dict[str, Any]]  # width, height, children of each <svg>


@contextmanager
def chromium_tab(**context: Any) -> Iterator[tuple[Any, list[str]]]:
    """A tab of headless Chromium (a new context with `context`'s options, 1280 x 900 by
    default) and the list its console and page errors are collected into."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        try:
            options = {"viewport": {"width": 1280, "height": 900}, **context}
            tab = browser.new_context(**options).new_page()
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            yield tab, errors
        finally:
            browser.close()


def open_page(page: Path, screenshot: Path) -> Opened:
    """Load `page` offline in headless Chromium and write a full-page `screenshot`."""
    from playwright.sync_api import Route

    url = page.resolve().as_uri()
    requests: list[str] = []

    def route(r: Route) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    with chromium_tab(viewport={"width": 1200, "height": 900}) as (tab, errors):
        tab.route("**/*", route)
        tab.goto(url, wait_until="load")
        charts: list[dict[str, Any]] = tab.eval_on_selector_all(
            "svg",
            """els => els.map(e => {
                const box = e.getBoundingClientRect();
                return {width: box.width, height: box.height,
                        children: e.querySelectorAll('path, text, use, rect').length};
            })""",
        )
        screenshot.parent.mkdir(exist_ok=True)
        tab.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    return Opened(errors, requests, charts)
