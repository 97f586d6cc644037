"""Options shared by several commands."""

from __future__ import annotations

import click

db_option = click.option(
    "--db",
    "db_url",
    envvar="BILLING_DB",
    default=None,
    metavar="URL",
    help=(
        "SQLAlchemy database URL of the store (sqlite:///file.db, postgresql+psycopg://...); "
        "default: $BILLING_DB, else the SQLite file in the data folder."
    ),
)
