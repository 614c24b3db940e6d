"""Times in words, the same on every page (times are stored as naive UTC)."""

from __future__ import annotations

from datetime import datetime

from returns_core.store.db import utcnow


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'5 min ago' style, for times stored as naive UTC."""
    if when is None:
        return "never"
    seconds = int(((now or utcnow()) - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def utc_text(when: datetime | None) -> str:
    """A time as '2026-11-29 21:07 UTC', or '-' when unknown."""
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "-"
