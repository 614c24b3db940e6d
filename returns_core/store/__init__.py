"""The DuckDB store: schema, migrations, upserts and queries."""

from returns_core.store.db import Database, StoreBusyError, StoreError, utcnow

__all__ = ["Database", "StoreBusyError", "StoreError", "utcnow"]
