"""Alembic migrations of the store (run from code by ``billing_engine.store.connect.upgrade``)."""
