"""Reads of TikTok's event records of a return (Get Return Records, kept in `return_records`) as TikTok sent them.

The table view of the records (time, event, who, description) is `returns.return_records`; this
module hands out each record's own JSON, for what only the JSON holds (the buyer's photos and videos).
"""

from __future__ import annotations

import json
from datetime import datetime

from returns_core.store.db import Database


def record_payloads(db: Database, shop_id: str, return_id: str) -> tuple[list[dict], datetime | None]:
    """A return's records as TikTok sent them, in TikTok's order, and when they were fetched (None: never)."""
    rows = db.rows("SELECT payload, fetched_at FROM return_records WHERE shop_id = ? AND return_id = ? ORDER BY seq",
                   [shop_id, return_id])
    payloads = [json.loads(payload) if isinstance(payload, str) else payload for payload, _ in rows]
    return [p for p in payloads if isinstance(p, dict)], max((at for _, at in rows), default=None)
