"""The web app (``billing serve``) through Flask's test client: logins and lockout, CSRF,
each role allowed and refused where it should be, a care manager's own patients only,
the close run from the screen, reports, import, and no PHI in error pages or logs."""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from flask import Flask

from billing_engine.errors import ConfigError
from billing_engine.store import Store
from billing_engine.store.users import LOCKOUT, MAX_FAILED_LOGINS, add_user, check_login
from cli.main import billing
from tests.web_support import AS_OF, MONTH, PASSWORDS, logged_in, make_app, make_store, token

ALL_SCREENS = {
    "/worklist": {"care_manager", "billing", "admin"},
    "/close": {"billing", "admin", "finance"},
    "/reports": {"billing", "admin", "finance"},
    "/import": {"billing", "admin"},
}
WHO = {"care_manager": "rachel", "billing": "bill", "finance": "fran", "admin": "amy"}


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_store(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def app(store_url: str) -> Flask:
    return make_app(store_url)


def test_a_page_without_a_login_sends_to_the_login_page(app: Flask) -> None:
    answer = app.test_client().get("/worklist")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app: Flask) -> None:
    client = app.test_client()
    answer = client.post("/login", data={"username": "fran", "password": "nope-nope-nope",
                                         "csrf_token": token(client)})  # fmt: skip
    assert answer.status_code == 401 and "Wrong name or password" in answer.get_data(True)
    nobody = client.post("/login", data={"username": "ghost", "password": "nope-nope-nope",
                                         "csrf_token": token(client)})  # fmt: skip
    assert nobody.status_code == 401 and "Wrong name or password" in nobody.get_data(True)


def test_repeated_failures_lock_a_login_even_against_the_right_password(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'u.db'}") as store:
        add_user(store.engine, "zoe", role="finance", password="the-right-one")
        start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
        for _ in range(MAX_FAILED_LOGINS):
            assert check_login(store.engine, "zoe", "wrong-password", start).login is None
        locked = check_login(store.engine, "zoe", "the-right-one", start)
        assert locked.login is None and locked.locked_until == start + LOCKOUT
        later = start + LOCKOUT + dt.timedelta(seconds=1)
        assert check_login(store.engine, "zoe", "the-right-one", later).login is not None


def test_a_form_without_its_csrf_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    refused = client.post("/login", data={"username": "amy", "password": PASSWORDS["amy"][1]})
    assert refused.status_code == 400
    bill = logged_in(app, "bill")
    assert bill.post(f"/close/{MONTH}/lock").status_code == 400
    assert bill.post("/logout").status_code == 400


@pytest.mark.parametrize("role", sorted(WHO))
def test_each_role_sees_its_screens_and_is_refused_the_others(app: Flask, role: str) -> None:
    client = logged_in(app, WHO[role])
    for path, allowed in ALL_SCREENS.items():
        answer = client.get(f"{path}?month={MONTH}&as_of={AS_OF}")
        expected = 200 if role in allowed else 403
        assert answer.status_code == expected, (role, path, answer.status_code)


@pytest.mark.parametrize("role", ["care_manager", "finance"])
def test_only_billing_and_admin_change_a_close(app: Flask, role: str) -> None:
    client = logged_in(app, WHO[role])
    for action in ("start", "approve", "hold", "lock", "export", "reopen"):
        answer = client.post(f"/close/{MONTH}/{action}", data={"csrf_token": token(client)})
        assert answer.status_code == 403, (role, action)


def test_a_care_manager_sees_only_her_own_patients(app: Flask) -> None:
    rachel = logged_in(app, "rachel")
    page = rachel.get(f"/worklist?month={MONTH}&as_of={AS_OF}&status=all").get_data(True)
    assert "<td>CM01</td>" in page
    assert "<td>CM02</td>" not in page and "<td>CM03</td>" not in page
    sofia = logged_in(app, "sofia")
    hers = sofia.get(f"/worklist?month={MONTH}&as_of={AS_OF}&status=all").get_data(True)
    theirs = {p for p in _patients(hers)} - {p for p in _patients(page)}
    assert theirs, "CM03 has patients CM01 does not"
    other = sorted(theirs)[0]
    assert rachel.get(f"/patients/{other}?month={MONTH}").status_code == 404
    mine = sorted(_patients(page))[0]
    own = rachel.get(f"/patients/{mine}?month={MONTH}&as_of={AS_OF}")
    assert own.status_code == 200 and 'id="explain"' in own.get_data(True)
    assert 'id="timeline"' in own.get_data(True)


def _patients(page: str) -> set[str]:
    import re

    return set(re.findall(r"/patients/(PT\d+)", page))


def test_the_worklist_filters_and_sorts_as_a_partial_for_htmx(app: Flask) -> None:
    bill = logged_in(app, "bill")
    partial = bill.get(f"/worklist?month={MONTH}&as_of={AS_OF}&care_manager=CM03&sort=amount",
                       headers={"HX-Request": "true"}).get_data(True)  # fmt: skip
    assert partial.startswith('<p class="muted" id="count">') and "<html" not in partial
    assert "<td>CM01</td>" not in partial


def test_the_close_runs_from_the_screen_under_the_logged_in_user(tmp_path: Path) -> None:
    app = make_app(make_store(tmp_path, patients=80))
    bill = logged_in(app, "bill")
    csrf = token(bill, f"/close?month={MONTH}")
    started = bill.post(f"/close/{MONTH}/start", data={"csrf_token": csrf}).get_data(True)
    assert "cycle 1 opened" in started
    line = started.split('name="line" value="')[1].split('"')[0]
    held = bill.post(f"/close/{MONTH}/hold", data={"csrf_token": csrf, "line": line})
    assert "a hold needs a reason" in held.get_data(True)  # the command's own refusal
    held = bill.post(
        f"/close/{MONTH}/hold", data={"csrf_token": csrf, "line": line, "reason": "note unsigned"}
    )
    assert "1 lines held" in held.get_data(True) or "held" in held.get_data(True)
    only_held = bill.get(f"/close?month={MONTH}&status=held").get_data(True)
    assert only_held.count('name="line"') == 1 and "note unsigned" in only_held
    bill.post(f"/close/{MONTH}/approve", data={"csrf_token": csrf, "all": "pending"})
    locked = bill.post(f"/close/{MONTH}/lock", data={"csrf_token": csrf}).get_data(True)
    assert "<strong>locked</strong>" in locked
    export = bill.post(f"/close/{MONTH}/export", data={"csrf_token": csrf})
    assert export.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(export.data)).namelist()
    assert "claims.csv" in names and any(n.startswith("837p-") for n in names)
    log = bill.get(f"/close/{MONTH}/log").get_data(True)
    for action in ("start", "hold", "approve", "lock", "export"):
        assert f"<td>bill</td><td>{action}</td>" in log, action
    again = bill.post(f"/close/{MONTH}/reopen", data={"csrf_token": csrf, "reason": "x"})
    assert "exported" in again.get_data(True)  # refused: what was sent cannot be reopened
    cycle2 = bill.post(f"/close/{MONTH}/start", data={"csrf_token": csrf}).get_data(True)
    assert "cycle 2" in cycle2  # the adjustment cycle, from the same button


def test_finance_reads_every_report_and_downloads_the_workbook(app: Flask) -> None:
    fran = logged_in(app, "fran")
    for path in ("/reports", "/reports/revenue?from=2025-10&to=2025-12",
                 "/reports/roi?from=2025-10&to=2025-12", f"/reports/close/{MONTH}"):  # fmt: skip
        assert fran.get(path).status_code == 200, path
    book = fran.get("/reports/workbook?from=2025-12&to=2025-12")
    assert book.headers["Content-Disposition"].startswith("attachment")
    sheets = openpyxl.load_workbook(io.BytesIO(book.data), read_only=True).sheetnames
    assert "Summary" in sheets and "Claim lines" in sheets
    assert fran.get("/reports/revenue?from=2020-01&to=2025-12").status_code == 400


def test_an_import_shows_every_problem_before_anything_is_written(tmp_path: Path) -> None:
    app = make_app(make_store(tmp_path, patients=20))
    amy = logged_in(app, "amy")
    csrf = token(amy, "/import")
    upload = io.BytesIO()
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr("patients.csv", "patient_id,birth_date\nPTNEW1,1950-13-40\n")
    bad = amy.post("/import", data={"csrf_token": csrf, "bundle": (io.BytesIO(
        upload.getvalue()), "late.zip")}, content_type="multipart/form-data")  # fmt: skip
    text = bad.get_data(True)
    assert bad.status_code == 422 and "patients.csv, row 2, column birth_date" in text
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("patients.csv", "patient_id,birth_date\nPTNEW1,1950-03-04\n")
    checked = amy.post("/import", data={"csrf_token": csrf, "bundle": (io.BytesIO(
        good.getvalue()), "late.zip")}, content_type="multipart/form-data")  # fmt: skip
    assert checked.status_code == 200 and 'id="confirm"' in checked.get_data(True)
    done = amy.post("/import/confirm", data={"csrf_token": csrf}).get_data(True)
    assert "Imported: 1 inserted" in done
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.csv", "x\n")
    refused = amy.post("/import", data={"csrf_token": csrf, "bundle": (io.BytesIO(
        evil.getvalue()), "e.zip")}, content_type="multipart/form-data")  # fmt: skip
    assert refused.status_code == 422 and not (tmp_path.parent / "escape.csv").exists()


def test_an_error_page_and_the_log_hold_a_reference_but_no_phi(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cli.web import state as web_state

    def broken(*_args: object) -> None:
        raise ValueError("PT000001 Jane Doe born 1950-01-01")

    monkeypatch.setattr(web_state.AppState, "month_view", broken)
    bill = logged_in(app, "bill")
    with caplog.at_level(logging.ERROR, logger="billing.web"):
        answer = bill.get(f"/worklist?month={MONTH}")
    text = answer.get_data(True)
    assert answer.status_code == 500 and "reference" in text
    assert "Jane" not in text and "PT000001" not in text
    assert "Jane" not in caplog.text and "ValueError" in caplog.text


def test_the_session_cookie_is_http_only_same_site_strict_and_secure(store_url: str) -> None:
    from cli.web.app import create_app

    app = create_app(store_url)
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost").get_data(True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/login", base_url="https://localhost",
                         headers={"Referer": "https://localhost/login"}, data={
        "username": "fran", "password": PASSWORDS["fran"][1], "csrf_token": csrf})  # fmt: skip
    assert answer.status_code == 302
    cookie = answer.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie


def test_users_add_refuses_an_unclear_login(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    Store.open(url).close()
    run = CliRunner()
    short = run.invoke(billing, ["users", "add", "a", "--role", "admin", "--password-stdin",
                                 "--db", url], input="short\n")  # fmt: skip
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    args = ["users", "add", "c", "--role", "care_manager", "--password-stdin", "--db", url]
    no_id = run.invoke(billing, args, input="long-enough-1\n")
    assert no_id.exit_code != 0 and "--care-manager" in no_id.output
    ok = run.invoke(billing, ["users", "add", "a", "--role", "admin", "--password-stdin",
                              "--db", url], input="long-enough-1\n")  # fmt: skip
    assert ok.exit_code == 0 and "added a (admin)" in ok.output
    with Store.open(url) as store, pytest.raises(ConfigError, match="exists already"):
        add_user(store.engine, "a", role="admin", password="long-enough-2")


def test_a_long_worklist_comes_a_page_at_a_time(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.web import screens

    monkeypatch.setattr(screens, "PAGE_ROWS", 5)
    bill = logged_in(app, "bill")
    first = bill.get(f"/worklist?month={MONTH}&as_of={AS_OF}&status=all").get_data(True)
    assert "page 1 of" in first and 'id="next-page"' in first
    assert first.count("/patients/") == 5
    second = bill.get(f"/worklist?month={MONTH}&as_of={AS_OF}&status=all&page=2").get_data(True)
    assert "page 2 of" in second and "previous" in second
