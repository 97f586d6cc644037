"""A small store with one login per role, and a logged-in test client for the web app."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from billing_engine.store import Store
from billing_engine.store.users import add_user
from billing_engine.synth.practice import generate_practice
from cli.web.app import create_app

MONTH = "2025-12"
AS_OF = dt.date(2025, 12, 20)
PASSWORDS = {
    "amy": ("admin", "admin-password-1", None),
    "bill": ("billing", "billing-password-1", None),
    "fran": ("finance", "finance-password-1", None),
    "rachel": ("care_manager", "care-password-1", "CM01"),
    "sofia": ("care_manager", "care-password-2", "CM03"),
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_store(folder: Path, patients: int = 150) -> str:
    """A synthetic practice's last quarter of 2025 in a SQLite store, with the logins."""
    url = f"sqlite:///{folder / 'web.db'}"
    with Store.open(url) as store:
        store.import_bundle(generate_practice(patients, seed=9, end_month=MONTH, months=3))
        for name, (role, password, care_manager) in PASSWORDS.items():
            add_user(store.engine, name, role=role, password=password,
                     care_manager_id=care_manager)  # fmt: skip
    return url


def make_app(url: str) -> Flask:
    return create_app(url, secure_cookies=False, today=lambda: AS_OF)


def token(client: FlaskClient, path: str = "/login") -> str:
    found = TOKEN.search(client.get(path).get_data(as_text=True))
    assert found is not None, path
    return found.group(1)


def logged_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post(
        "/login",
        data={"username": name, "password": PASSWORDS[name][1], "csrf_token": token(client)},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return client
