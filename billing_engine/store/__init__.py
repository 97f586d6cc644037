"""The store: the only SQLAlchemy code (placeholder until implemented)."""
