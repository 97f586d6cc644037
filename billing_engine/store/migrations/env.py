"""Alembic environment of the store.

Runs on the connection that ``billing_engine.store.connect.upgrade`` passes in
``config.attributes["connection"]``; failing that on ``config.attributes["url"]``, the
``sqlalchemy.url`` option or ``default_db_url()``. Offline (SQL script) mode is not
supported: the store always migrates a live database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from billing_engine.store import close_models, user_models  # noqa: F401  (join the metadata)
from billing_engine.store.connect import create_store_engine
from billing_engine.store.location import default_db_url
from billing_engine.store.models import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_store_engine(url or default_db_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("the store's migrations run online only")
run_migrations_online()
