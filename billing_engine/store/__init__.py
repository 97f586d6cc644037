"""The store: the only SQLAlchemy code. See ``billing_engine.store.db`` for the details.

The names below load on first use (PEP 562): importing a light module of the package
(``billing_engine.store.location``) does not load SQLAlchemy, Alembic and the models.
``billing_engine.store.db`` imports every model module, so the metadata is whole
wherever a ``Store`` is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from billing_engine.store.bundles import ImportSummary, TableImportCounts
    from billing_engine.store.connect import StoreError, display_url
    from billing_engine.store.db import Store
    from billing_engine.store.location import default_db_url

_HOMES = {
    "ImportSummary": "billing_engine.store.bundles",
    "Store": "billing_engine.store.db",
    "StoreError": "billing_engine.store.connect",
    "TableImportCounts": "billing_engine.store.bundles",
    "default_db_url": "billing_engine.store.location",
    "display_url": "billing_engine.store.connect",
}

__all__ = [
    "ImportSummary",
    "Store",
    "StoreError",
    "TableImportCounts",
    "default_db_url",
    "display_url",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value
