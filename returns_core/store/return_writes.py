"""Writing returns: a synced page, a return's event records, and a manager's changes.

A page is written in ONE transaction: the returns, their line items, the history rows, the objects
kept aside as not returns (quarantine), the sync watermark and the run counters. A crash between
pages therefore loses nothing that was committed and duplicates nothing on the next run (the upsert
is keyed by (shop_id, return_id)).
ingest plans the page from what is stored; this module reads what is stored and writes the plan.
Reading returns for pages is store/returns.py's job; the reads here serve a write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from returns_core import domain, ingest
from returns_core.ingest import LINE_ITEM_SCHEMA, RECORD_SCHEMA, RETURN_SCHEMA, PageCounts, StoredReturn
from returns_core.store import history, quarantine, sync_runs
from returns_core.store.db import Database

# Columns a sync may overwrite. Local columns (review_outcome, reviewed_by, reviewed_at,
# first_seen_at) are never listed; `status` has its own rule below.
_TIKTOK_COLUMNS = tuple(
    name for name in RETURN_SCHEMA.names
    if name not in ("shop_id", "return_id", "status", "first_seen_at")
)
# Our Status follows TikTok only when TikTok's status changed; otherwise a hand-made change stays.
_UPSERT_SQL = (
    "INSERT INTO returns BY NAME SELECT * FROM _page_returns ON CONFLICT (shop_id, return_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _TIKTOK_COLUMNS)
    + ", status = CASE WHEN returns.marketplace_status IS DISTINCT FROM excluded.marketplace_status"
      " THEN excluded.status ELSE returns.status END"
)


def _table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)


# --- a synced page ------------------------------------------------------------------------------


def upsert_page(db: Database, shop_id: str, return_objects: Iterable[Any], *, synced_at: datetime,
                new_watermark: int | None = None, run_id: int | None = None, pages: int = 1,
                restart_watermark: bool = False, kind: str = domain.RETURN_KIND) -> PageCounts:
    """Write one page (or `pages` consecutive pages) of TikTok return objects in ONE transaction.

    With the watermark the page covers and the run it belongs to, both move in the same transaction.
    `restart_watermark` (the first page of a full sync) replaces the watermark, even with an earlier
    one or none. Objects that are not returns are kept aside (store/quarantine.py) in the same
    transaction and counted as `quarantined`: none is skipped.
    """
    # one write path per process (db.writer), so no other write of ours can conflict with this one
    with db.writer() as con:
        return write_page(con, shop_id, return_objects, synced_at=synced_at, new_watermark=new_watermark,
                          run_id=run_id, pages=pages, restart_watermark=restart_watermark, kind=kind)


def write_page(con: duckdb.DuckDBPyConnection, shop_id: str, return_objects: Iterable[Any], *,
               synced_at: datetime, new_watermark: int | None = None, run_id: int | None = None, pages: int = 1,
               restart_watermark: bool = False, kind: str = domain.RETURN_KIND) -> PageCounts:
    """upsert_page inside the caller's transaction (a sync round commits several shops' pages at once).
    `kind` says whether the objects are returns or cancellations: both are rows of `returns`, each kind
    with its own watermark."""
    objects, malformed = ingest.split_page(return_objects, kind)
    counts = PageCounts()
    if objects:
        stored = _stored(con, shop_id, ingest.page_return_ids(objects, kind))
        plan = ingest.plan_page(shop_id, objects, stored, synced_at, kind)
        _write_plan(con, shop_id, plan, synced_at)
        counts = plan.counts
    if malformed:
        quarantine.keep(con, shop_id, malformed, synced_at, run_id)
        counts += PageCounts(quarantined=len(malformed))
    if restart_watermark:
        sync_runs.set_watermark(con, shop_id, new_watermark, synced_at, kind)
    elif new_watermark is not None:
        sync_runs.advance_watermark(con, shop_id, new_watermark, synced_at, kind)
    if run_id is not None:
        sync_runs.add_page(con, run_id, pages, counts)
    return counts


def _stored(con: duckdb.DuckDBPyConnection, shop_id: str, return_ids: list[str]) -> dict[str, StoredReturn]:
    """return_id -> what is stored of it, for the ids already stored."""
    con.register("_page_ids", pa.table({"return_id": pa.array(return_ids, pa.string())}))
    try:
        rows = con.execute(
            "SELECT r.return_id, r.marketplace_status, r.status, r.payload FROM returns r "
            "JOIN _page_ids p USING (return_id) WHERE r.shop_id = ?", [shop_id]).fetchall()
    finally:
        con.unregister("_page_ids")
    return {row[0]: StoredReturn(*row[1:]) for row in rows}


def _write_plan(con: duckdb.DuckDBPyConnection, shop_id: str, plan: ingest.PagePlan, synced_at: datetime) -> None:
    con.register("_page_returns", _table(plan.returns, RETURN_SCHEMA))
    try:
        con.execute(_UPSERT_SQL)
    finally:
        con.unregister("_page_returns")
    if plan.changed_ids:
        _replace_line_items(con, shop_id, plan.changed_ids, plan.line_items)
    history.append(con, [history.entry(shop_id, c.return_id, history.SYNC_ACTOR, c.kind, old=c.old, new=c.new,
                                       details=c.details, at=synced_at) for c in plan.changes])


def _replace_line_items(con: duckdb.DuckDBPyConnection, shop_id: str, return_ids: list[str],
                        items: list[dict]) -> None:
    # line items belong to their return object: the latest object's list replaces the old one
    con.register("_page_ids", pa.table({"return_id": pa.array(return_ids, pa.string())}))
    try:
        con.execute("DELETE FROM return_line_items WHERE shop_id = ? AND return_id IN "
                    "(SELECT return_id FROM _page_ids)", [shop_id])
    finally:
        con.unregister("_page_ids")
    if items:
        con.register("_page_items", _table(items, LINE_ITEM_SCHEMA))
        try:
            con.execute("INSERT INTO return_line_items BY NAME SELECT * FROM _page_items")
        finally:
            con.unregister("_page_items")


# --- event records ------------------------------------------------------------------------------


def store_records(db: Database, shop_id: str, return_id: str, records: Iterable[Any],
                  fetched_at: datetime) -> int:
    """Upsert a return's event records in one transaction; returns how many TikTok gave."""
    rows = ingest.record_rows(shop_id, return_id, records, fetched_at)
    if not rows:
        return 0
    with db.writer() as con:
        con.register("_records", _table(rows, RECORD_SCHEMA))
        try:
            con.execute(
                "INSERT INTO return_records BY NAME SELECT * FROM _records ON CONFLICT (shop_id, return_id, seq) "
                "DO UPDATE SET event = excluded.event, role = excluded.role, description = excluded.description, "
                "reason_text = excluded.reason_text, note = excluded.note, created_at = excluded.created_at, "
                "payload = excluded.payload, fetched_at = excluded.fetched_at")
        finally:
            con.unregister("_records")
    return len(rows)


# --- a manager's changes (inside the caller's transaction, beside their history) ------------------


class ReturnState(NamedTuple):
    """What a manager's change is checked against: our Status and what TikTok last said."""

    status: str | None
    marketplace_status: str | None
    return_type: str | None
    next_action: str | None
    kind: str | None = domain.RETURN_KIND


def return_state(con: duckdb.DuckDBPyConnection, shop_id: str, return_id: str) -> ReturnState | None:
    """A return's state as this transaction sees it, or None when it is not stored."""
    # fetch to the end: a half-read result blocks the connection for the caller's next step (register)
    rows = con.execute(
        "SELECT status, marketplace_status, return_type, next_action, kind FROM returns "
        "WHERE shop_id = ? AND return_id = ?", [shop_id, return_id]).fetchall()
    return ReturnState(*rows[0]) if rows else None


def set_status(con: duckdb.DuckDBPyConnection, shop_id: str, return_id: str, status: str, mismatch: bool) -> None:
    """Set our Status by hand, with whether it now disagrees with TikTok's."""
    con.execute("UPDATE returns SET status = ?, mismatch = ? WHERE shop_id = ? AND return_id = ?",
                [status, mismatch, shop_id, return_id])


class ReviewState(NamedTuple):
    """A return as a sign-off sees it."""

    shop_id: str
    return_id: str
    status: str | None
    review_outcome: str | None


def review_states(con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, str]]) -> list[ReviewState]:
    """The stored ones among these (shop_id, return_id) keys, with their Status and review outcome."""
    rows = con.execute(
        "SELECT shop_id, return_id, status, review_outcome FROM returns WHERE (shop_id, return_id) IN "
        f"(SELECT * FROM (VALUES {', '.join(['(?, ?)'] * len(keys))}))",
        [part for key in keys for part in key]).fetchall()
    return [ReviewState(*row) for row in rows]


def set_review(con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, str]], outcome: str, reviewer: str,
               at: datetime) -> None:
    """Record a review outcome, who gave it and when, on these (shop_id, return_id) keys."""
    con.execute(
        "UPDATE returns SET review_outcome = ?, reviewed_by = ?, reviewed_at = ? WHERE (shop_id, return_id) IN "
        f"(SELECT * FROM (VALUES {', '.join(['(?, ?)'] * len(keys))}))",
        [outcome, reviewer, at, *(part for key in keys for part in key)])
