"""The store: the only SQLAlchemy code. See ``billing_engine.store.db`` for the details."""

from billing_engine.store import (
    close_models,  # noqa: F401  (the close tables join the metadata)
    user_models,  # noqa: F401  (the users table joins the metadata)
)
from billing_engine.store.bundles import ImportSummary, TableImportCounts
from billing_engine.store.connect import StoreError, default_db_url, display_url
from billing_engine.store.db import Store

__all__ = [
    "ImportSummary",
    "Store",
    "StoreError",
    "TableImportCounts",
    "default_db_url",
    "display_url",
]
