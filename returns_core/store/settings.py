"""App-wide settings kept in the store (auto-sync schedule, the demo shop switch): text by key."""

from __future__ import annotations

from returns_core.store.db import Database, utcnow


def get_setting(db: Database, key: str, default: str | None = None) -> str | None:
    """The stored value of a setting, or `default` when it was never set."""
    row = db.row("SELECT value FROM settings WHERE key = ?", [key])
    return row[0] if row else default


def set_setting(db: Database, key: str, value: str) -> None:
    """Store a setting's value (replacing any earlier one)."""
    with db.writer() as con:
        con.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [key, value, utcnow()],
        )
