"""The history of every return: the one writer and its reader.

Every change to a return is kept here with who and when: a sync's (created, TikTok's status,
our Status following it), a manager's (status by hand, note, sign-off) and a decision sent to
TikTok. History is append-only: rows are added inside the transaction of the change they
describe and are never updated or deleted (DESIGN.md, Domain rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from returns_core.ingest import canonical_json
from returns_core.store.db import Database, one_return_sql, utcnow

# Who a sync's changes are recorded as
SYNC_ACTOR = "sync"

HISTORY_SCHEMA = pa.schema([
    ("shop_id", pa.string()),
    ("return_id", pa.string()),
    ("happened_at", pa.timestamp("us")),
    ("actor", pa.string()),
    ("kind", pa.string()),
    ("old_value", pa.string()),
    ("new_value", pa.string()),
    ("note", pa.string()),
    ("details", pa.string()),
])


class HistoryRow(NamedTuple):
    """One change as stored, in the order a history table shows it."""

    happened_at: datetime
    actor: str
    kind: str
    old_value: str | None
    new_value: str | None
    note: str | None
    details: str | None  # JSON text, e.g. the request sent to TikTok


def entry(shop_id: str, return_id: str, actor: str, kind: str, *, old: str | None = None, new: str | None = None,
          note: str | None = None, details: dict[str, Any] | None = None,
          at: datetime | None = None) -> dict[str, Any]:
    """One history row (`at` defaults to now; `details` is kept as JSON text)."""
    return {"shop_id": shop_id, "return_id": return_id, "happened_at": at or utcnow(), "actor": actor,
            "kind": kind, "old_value": old, "new_value": new, "note": note,
            "details": canonical_json(details) if details is not None else None}


def append(con: duckdb.DuckDBPyConnection, entries: Sequence[dict[str, Any]]) -> None:
    """Add history rows inside the caller's transaction, in the order given (one statement for any number)."""
    if not entries:
        return
    con.register("_history", pa.Table.from_pylist(list(entries), schema=HISTORY_SCHEMA))
    try:
        con.execute("INSERT INTO history BY NAME SELECT * FROM _history")
    finally:
        con.unregister("_history")


def of_return(db: Database, shop_id: str, return_id: str) -> list[HistoryRow]:
    """One return's history, newest first."""
    rows = db.rows(one_return_sql("history", "happened_at, actor, kind, old_value, new_value, note, details",
                                  "happened_at DESC, id DESC"), [return_id, shop_id])
    return [HistoryRow(*row) for row in rows]
