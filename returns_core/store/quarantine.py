"""Quarantined objects: what a synced page held that cannot be stored as a return.

TikTok may send an object without a return_id (or something that is not an object at all). It
is never skipped: it is kept here as it came, in the transaction of its page (return_writes.
upsert_page), so the watermark only moves past it once it is kept, and the sync reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import duckdb

from returns_core.ingest import Malformed
from returns_core.store.db import Database


class Quarantined(NamedTuple):
    """One kept-aside object, as a reader sees it."""

    shop_id: str
    reason: str
    update_time: int | None
    payload: str
    first_seen_at: datetime
    last_seen_at: datetime
    times_seen: int


def keep(con: duckdb.DuckDBPyConnection, shop_id: str, objects: Sequence[Malformed], at: datetime,
         run_id: int | None) -> None:
    """Keep these objects, inside the transaction of their page; one seen before is counted again."""
    for obj in objects:
        seen = con.execute(
            "UPDATE quarantined_returns SET last_seen_at = ?, last_run_id = ?, times_seen = times_seen + 1 "
            "WHERE shop_id = ? AND payload = ? RETURNING id", [at, run_id, shop_id, obj.payload]).fetchall()
        if not seen:
            con.execute(
                "INSERT INTO quarantined_returns (shop_id, reason, update_time, payload, first_seen_at, last_seen_at, "
                "first_run_id, last_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [shop_id, obj.reason, obj.update_time, obj.payload, at, at, run_id, run_id])


def quarantined(db: Database, shop_id: str | None = None) -> list[Quarantined]:
    """The kept-aside objects of one account (all when None), oldest first."""
    rows = db.rows("SELECT shop_id, reason, update_time, payload, first_seen_at, last_seen_at, times_seen "
                   "FROM quarantined_returns WHERE ? IS NULL OR shop_id = ? ORDER BY id", [shop_id, shop_id])
    return [Quarantined(*row) for row in rows]
