"""Where things live: the database path and the settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = PROJECT_ROOT / "data" / "returns.duckdb"

DEFAULT_API_BASE = "https://open-api.tiktokglobalshop.com"
DEFAULT_AUTH_BASE = "https://auth.tiktok-shops.com"


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    """`--db`, else $RETURNS_DB, else data/returns.duckdb."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("RETURNS_DB")
    return Path(env) if env else DEFAULT_DB
