"""Where the default store lives, without loading the database layer.

``billing evaluate BUNDLE`` asks whether a store is configured (to lay its imported fee
releases over the shipped ones); answering must not cost SQLAlchemy, Alembic and the
models (half a second), so the default location is computed here, from the
environment alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_sqlite_file() -> Path:
    """The default store's SQLite file: ``billing.db`` under ``$XDG_DATA_HOME/billing-engine``
    (``~/.local/share`` when unset or relative); its folder is created."""
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if data_home and Path(data_home).is_absolute() else None
    if base is None:
        base = Path.home() / ".local" / "share"
    folder = base / "billing-engine"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "billing.db"


def default_db_url() -> str:
    """``BILLING_DB`` if set, else the SQLite file under ``$XDG_DATA_HOME/billing-engine``."""
    configured = os.environ.get("BILLING_DB")
    if configured:
        return configured
    return f"sqlite:///{default_sqlite_file()}"
