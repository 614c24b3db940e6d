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
from returns_core.store import history, quarantine, rollups, sync_runs
from returns_core.store.db import Database, one_return_sql

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


# A page's returns as stored once written (the upsert's status rule applied), for the daily rows
_PAGE_RETURNS_STORED = ("SELECT r.* FROM returns r JOIN (SELECT DISTINCT shop_id, return_id FROM _page_returns) p "
                        "USING (shop_id, return_id)")


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


class ShopPages(NamedTuple):
    """One shop's pages to commit (their objects in update_time order), and what they move."""

    shop_id: str
    objects: Sequence[Any]
    new_watermark: int | None = None
    run_id: int | None = None
    pages: int = 1
    restart_watermark: bool = False
    prepared: ingest.PreparedPage | None = None  # the objects prepared already (ingest.prepare_page)
    kind: str = domain.RETURN_KIND  # returns, or cancellations (rows of `returns` too, with their own watermark)


def write_page(con: duckdb.DuckDBPyConnection, shop_id: str, return_objects: Iterable[Any], *,
               synced_at: datetime, new_watermark: int | None = None, run_id: int | None = None, pages: int = 1,
               restart_watermark: bool = False, kind: str = domain.RETURN_KIND) -> PageCounts:
    """upsert_page inside the caller's transaction. `kind` says whether the objects are returns or
    cancellations: both are rows of `returns`, each kind with its own watermark."""
    return write_pages(con, [ShopPages(shop_id, list(return_objects), new_watermark, run_id, pages,
                                       restart_watermark, kind=kind)], synced_at=synced_at)[0]


def write_pages(con: duckdb.DuckDBPyConnection, batch: Sequence[ShopPages], *, synced_at: datetime
                ) -> list[PageCounts]:
    """Several shops' pages (each shop and kind once) inside the caller's transaction; what each did, in
    order.

    A sync round commits every shop's waiting pages together, and each kind of row is written in one
    statement for all of them: a statement's fixed cost, not the rows, is what limits one writer
    keeping up with many shops fetching at once.
    """
    if len({(pages.shop_id, pages.kind) for pages in batch}) != len(batch):
        raise ValueError("write_pages takes each shop's returns and cancellations once")
    prepared = [pages.prepared or ingest.prepare_page(pages.shop_id, pages.objects, pages.kind) for pages in batch]
    # a shop's returns and cancellations have ids apart (TikTok numbers both from one id space)
    stored = _stored(con, [(pages.shop_id, row["return_id"]) for pages, page in zip(batch, prepared, strict=True)
                           for row in page.rows])
    plans = [ingest.plan_page(pages.shop_id, page, stored.get(pages.shop_id, {}), synced_at, pages.kind)
             for pages, page in zip(batch, prepared, strict=True)]
    _write_plans(con, [(pages.shop_id, plan) for pages, plan in zip(batch, plans, strict=True)], synced_at)
    done = []
    for pages, page, plan in zip(batch, prepared, plans, strict=True):
        counts = plan.counts
        if page.malformed:
            quarantine.keep(con, pages.shop_id, page.malformed, synced_at, pages.run_id)
            counts += PageCounts(quarantined=len(page.malformed))
        done.append(counts)
    for kind in domain.KINDS:
        mine = [p for p in batch if p.kind == kind]
        sync_runs.set_watermarks(con, [(p.shop_id, p.new_watermark) for p in mine if p.restart_watermark],
                                 synced_at, kind)
        sync_runs.advance_watermarks(con, [(p.shop_id, p.new_watermark) for p in mine
                                           if not p.restart_watermark and p.new_watermark is not None], synced_at, kind)
    sync_runs.add_pages(con, [(p.run_id, p.pages, counts, counts.read if p.kind == domain.CANCELLATION_KIND else 0)
                              for p, counts in zip(batch, done, strict=True) if p.run_id is not None])
    return done


def _keys(keys: Sequence[tuple[str, str]]) -> pa.Table:
    return pa.table({"shop_id": pa.array([k[0] for k in keys], pa.string()),
                     "return_id": pa.array([k[1] for k in keys], pa.string())})


def _stored(con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, str]]
            ) -> dict[str, dict[str, StoredReturn]]:
    """shop_id -> return_id -> what is stored of it, for the (shop_id, return_id) keys already stored."""
    if not keys:
        return {}
    con.register("_page_keys", _keys(keys))
    try:
        # kept as they are for Reason Analytics' daily rows too, which the write then brings up to date
        rollups.before_write(con, "SELECT r.* FROM returns r JOIN _page_keys p USING (shop_id, return_id)")
        rows = rollups.kept_before(con)
    finally:
        con.unregister("_page_keys")
    stored: dict[str, dict[str, StoredReturn]] = {}
    for shop_id, return_id, *rest in rows:
        stored.setdefault(shop_id, {})[return_id] = StoredReturn(*rest)
    return stored


def _write_plans(con: duckdb.DuckDBPyConnection, plans: Sequence[tuple[str, ingest.PagePlan]],
                 synced_at: datetime) -> None:
    returns = [row for _, plan in plans for row in plan.returns]
    if returns:
        con.register("_page_returns", _table(returns, RETURN_SCHEMA))
        try:
            con.execute(_UPSERT_SQL)
            rollups.after_write(con, _PAGE_RETURNS_STORED)
        finally:
            con.unregister("_page_returns")
    # line items belong to their return object: the latest object's list replaces the old one (a new
    # return has none yet, so a first sync deletes nothing)
    updated = [(shop_id, return_id) for shop_id, plan in plans for return_id in plan.updated_ids]
    if updated:
        con.register("_page_keys", _keys(updated))
        try:
            con.execute("DELETE FROM return_line_items WHERE (shop_id, return_id) IN "
                        "(SELECT shop_id, return_id FROM _page_keys)")
        finally:
            con.unregister("_page_keys")
    items = [item for _, plan in plans for item in plan.line_items]
    if items:
        con.register("_page_items", _table(items, LINE_ITEM_SCHEMA))
        try:
            con.execute("INSERT INTO return_line_items BY NAME SELECT * FROM _page_items")
        finally:
            con.unregister("_page_items")
    history.append(con, [history.entry(shop_id, c.return_id, history.SYNC_ACTOR, c.kind, old=c.old, new=c.new,
                                       details=c.details, at=synced_at)
                         for shop_id, plan in plans for c in plan.changes])


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
    rows = con.execute(one_return_sql("returns", "status, marketplace_status, return_type, next_action, kind",
                                      "shop_id"), [return_id, shop_id]).fetchall()
    return ReturnState(*rows[0]) if rows else None


def set_status(con: duckdb.DuckDBPyConnection, shop_id: str, return_id: str, status: str, mismatch: bool) -> None:
    """Set our Status by hand, with whether it now disagrees with TikTok's."""
    the_return = one_return_sql("returns", "*", "shop_id")
    rollups.before_write(con, the_return, [return_id, shop_id])
    con.execute("UPDATE returns SET status = ?, mismatch = ? WHERE shop_id = ? AND return_id = ?",
                [status, mismatch, shop_id, return_id])
    rollups.after_write(con, the_return, [return_id, shop_id])


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
