"""Options shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from billing_engine.pricing.fees import FeeLibrary

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


def store_is_configured(db_url: str | None) -> bool:
    """A store was named (--db / BILLING_DB) or the default SQLite store already exists."""
    if db_url:
        return True
    configured = os.environ.get("BILLING_DB")
    if not configured:  # the default file, known without parsing a URL (nor SQLAlchemy)
        from billing_engine.store.location import default_sqlite_file

        return default_sqlite_file().exists()
    from sqlalchemy.engine import make_url

    url = make_url(configured)
    return url.get_backend_name() != "sqlite" or Path(url.database or "").exists()


def fee_library(db_url: str | None) -> FeeLibrary:
    """The shipped fee library with the store's imported CMS releases laid over it.

    A store named by --db / BILLING_DB that does not exist is not created: the shipped
    library is used, as when no store is named.
    """
    from billing_engine.errors import StoreMissing
    from billing_engine.pricing.fees import FeeLibrary
    from code_rules.rulebook import shipped_fees as shipped

    library = shipped()
    if not store_is_configured(db_url):
        return library
    from billing_engine.store import Store

    try:
        with Store.open(db_url, create=False) as store:
            rvus, gpcis = store.fee_tables()
    except StoreMissing:
        return library
    return library.overlay(FeeLibrary(rvus, gpcis))


apply_deductible_option = click.option(
    "--apply-deductible",
    is_flag=True,
    help="Charge the yearly Part B deductible to the patient in the estimate (FEE-2).",
)


allow_unverified_option = click.option(
    "--allow-unverified",
    "allow_unverified",
    is_flag=True,
    help=(
        "Evaluate dates past the parameters' verified_through by carrying the last verified "
        "values forward; each affected line gets an info gap parameters_unverified "
        "(same as the setting common.allow_unverified: true)."
    ),
)


def with_allow_unverified(settings: dict[str, Any], allow_unverified: bool) -> dict[str, Any]:
    """The settings with ``common.allow_unverified`` set when the flag is given."""
    from billing_engine.params.parameters import ALLOW_UNVERIFIED

    if allow_unverified:
        return {**settings, ALLOW_UNVERIFIED: True}
    return settings


def login_name() -> str:
    """Who runs a command when ``--user`` is not given: the login name, else ``unknown``."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
