"""The store: the only SQLAlchemy code. See ``billing_engine.store.db`` for the details."""

from billing_engine.store.db import (
    ImportSummary,
    Store,
    StoreError,
    TableImportCounts,
    default_db_url,
    display_url,
)

__all__ = [
    "ImportSummary",
    "Store",
    "StoreError",
    "TableImportCounts",
    "default_db_url",
    "display_url",
]
