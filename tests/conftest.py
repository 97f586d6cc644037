"""Shared fixtures.

Store fixtures: ``store_url`` runs a test on SQLite (a file in tmp_path) and on
PostgreSQL (``BILLING_TEST_PG_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
each PostgreSQL test in a fresh schema that is dropped afterwards. Without a reachable
server the PostgreSQL cases are skipped, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the test PostgreSQL database; skips (or fails on CI) when unreachable."""
    url = os.environ.get("BILLING_TEST_PG_URL") or DEFAULT_PG_URL
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.SQLAlchemyError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        message = f"PostgreSQL not reachable at {shown}: {exc.__class__.__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_schema_url(pg_admin_url: str) -> Iterator[str]:
    """A URL whose connections work in a new, empty schema (dropped after the test)."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(pg_admin_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for the store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture(autouse=True)
def _no_personal_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never read or write the developer's own store (its imported fee releases)."""
    monkeypatch.delenv("BILLING_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
