"""TikTok return objects -> store rows, and the one-transaction bulk upsert of a page.

A page is written in ONE transaction: the returns, their line items, the history rows, the sync
watermark and the run counters. A crash between pages therefore loses nothing that was
committed and duplicates nothing on the next run (the upsert is keyed by (shop_id, return_id)).
Rows go in as typed Arrow tables, never row by row (docs/streamlit_duckdb.md B4).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import duckdb
import pyarrow as pa

from returns_core import domain
from returns_core.store.db import Database

logger = logging.getLogger(__name__)

_MONEY = pa.decimal128(18, 4)
_TIME = pa.timestamp("us")
_QUANTUM = Decimal("0.0001")
_MONEY_LIMIT = Decimal(10) ** 14  # DECIMAL(18,4) holds 14 integer digits

RETURN_SCHEMA = pa.schema([
    ("shop_id", pa.string()),
    ("return_id", pa.string()),
    ("order_id", pa.string()),
    ("return_type", pa.string()),
    ("type", pa.string()),
    ("marketplace_status", pa.string()),
    ("status", pa.string()),
    ("unmapped", pa.bool_()),
    ("mismatch", pa.bool_()),
    ("arbitration_status", pa.string()),
    ("role", pa.string()),
    ("reason_code", pa.string()),
    ("reason_text", pa.string()),
    ("created_at", _TIME),
    ("updated_at", _TIME),
    ("refund_currency", pa.string()),
    ("refund_total", _MONEY),
    ("refund_subtotal", _MONEY),
    ("refund_shipping_fee", _MONEY),
    ("refund_tax", _MONEY),
    ("next_action", pa.string()),
    ("due_by", _TIME),
    ("tracking_number", pa.string()),
    ("shipping_provider", pa.string()),
    ("seller_skus", pa.string()),
    ("lines", pa.list_(pa.struct([
        ("seller_sku", pa.string()),
        ("sku_id", pa.string()),
        ("product_name", pa.string()),
        ("refund_currency", pa.string()),
        ("refund_total", _MONEY),
    ]))),
    ("payload", pa.string()),
    ("first_seen_at", _TIME),
    ("last_synced_at", _TIME),
])

LINE_ITEM_SCHEMA = pa.schema([
    ("shop_id", pa.string()),
    ("return_id", pa.string()),
    ("return_line_item_id", pa.string()),
    ("order_line_item_id", pa.string()),
    ("sku_id", pa.string()),
    ("seller_sku", pa.string()),
    ("sku_name", pa.string()),
    ("product_name", pa.string()),
    ("product_image_url", pa.string()),
    ("refund_currency", pa.string()),
    ("refund_total", _MONEY),
])

HISTORY_SCHEMA = pa.schema([
    ("shop_id", pa.string()),
    ("return_id", pa.string()),
    ("happened_at", _TIME),
    ("actor", pa.string()),
    ("kind", pa.string()),
    ("old_value", pa.string()),
    ("new_value", pa.string()),
    ("note", pa.string()),
    ("details", pa.string()),
])

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

SYNC_ACTOR = "sync"


@dataclass(frozen=True)
class PageCounts:
    """What one page did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: PageCounts) -> PageCounts:
        return PageCounts(self.new + other.new, self.updated + other.updated, self.unchanged + other.unchanged)


# --- field readers: TikTok may omit or garble anything ------------------------------------------


def _text(value: Any) -> str | None:
    """A string field; numbers become their text, empty and odd values become None."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    text = str(value)
    return text if text != "" else None


def to_utc(value: Any) -> datetime | None:
    """TikTok Unix seconds (int or numeric string) -> naive UTC datetime; None when unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def to_money(value: Any) -> Decimal | None:
    """A money string as Decimal with the store's 4 places; None when missing or out of range."""
    amount = domain.to_decimal(value)
    if amount is None:
        return None
    try:
        amount = amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return None
    return amount if abs(amount) < _MONEY_LIMIT else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def update_time(obj: Mapping[str, Any]) -> int | None:
    """TikTok's update_time as int seconds, or None."""
    value = obj.get("update_time")
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def canonical_json(obj: Any) -> str:
    """The payload as stored: stable key order so equal objects give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _next_action(obj: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """The seller action with the earliest deadline (Due By), or the first action without one."""
    best: tuple[datetime, str | None] | None = None
    first_action: str | None = None
    for item in _dicts(obj.get("seller_next_action_response")):
        action = _text(item.get("action"))
        first_action = first_action or action
        deadline = to_utc(item.get("deadline"))
        if deadline is not None and (best is None or deadline < best[0]):
            best = (deadline, action)
    if best is None:
        return first_action, None
    return best[1], best[0]


def _seller_skus(line_items: list[dict]) -> str | None:
    words: list[str] = []
    for item in line_items:
        for key in ("seller_sku", "sku_id"):
            word = _text(item.get(key))
            if word and word not in words:
                words.append(word)
    return " ".join(words) or None


_LINE_FIELDS = ("seller_sku", "sku_id", "product_name", "refund_currency", "refund_total")


def return_row(shop_id: str, obj: Mapping[str, Any], *, previous_status: str | None = None,
               synced_at: datetime, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One TikTok return object as a `returns` row (status mapped; unmapped keeps the previous one).

    `items` are its `line_item_rows`, when the caller has them already.
    """
    marketplace_status = _text(obj.get("return_status"))
    status = domain.mapped_status(marketplace_status) or previous_status
    refund = _dict(obj.get("refund_amount"))
    line_items = _dicts(obj.get("return_line_items"))
    if items is None:
        items = line_item_rows(shop_id, obj)
    next_action, due_by = _next_action(obj)
    return_type = _text(obj.get("return_type"))
    return {
        "shop_id": shop_id,
        "return_id": _text(obj.get("return_id")),
        "order_id": _text(obj.get("order_id")),
        "return_type": return_type,
        "type": domain.display_type(return_type),
        "marketplace_status": marketplace_status,
        "status": status,
        "unmapped": domain.is_unmapped(marketplace_status),
        "mismatch": domain.is_mismatch(status, marketplace_status),
        "arbitration_status": _text(obj.get("arbitration_status")),
        "role": _text(obj.get("role")),
        "reason_code": _text(obj.get("return_reason")),
        "reason_text": _text(obj.get("return_reason_text")),
        "created_at": to_utc(obj.get("create_time")),
        "updated_at": to_utc(obj.get("update_time")),
        "refund_currency": _text(refund.get("currency")),
        "refund_total": to_money(refund.get("refund_total")),
        "refund_subtotal": to_money(refund.get("refund_subtotal")),
        "refund_shipping_fee": to_money(refund.get("refund_shipping_fee")),
        "refund_tax": to_money(refund.get("refund_tax")),
        "next_action": next_action,
        "due_by": due_by,
        "tracking_number": _text(obj.get("return_tracking_number")),
        "shipping_provider": _text(obj.get("return_provider_name")),
        "seller_skus": _seller_skus(line_items),
        "lines": [{k: item[k] for k in _LINE_FIELDS} for item in items] or None,
        "payload": canonical_json(obj),
        "first_seen_at": synced_at,
        "last_synced_at": synced_at,
    }


def line_item_rows(shop_id: str, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `return_line_items` rows of one return object (an item without an id gets its position)."""
    return_id = _text(obj.get("return_id"))
    rows: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(_dicts(obj.get("return_line_items")), start=1):
        item_id = _text(item.get("return_line_item_id")) or f"#{position}"
        refund = _dict(item.get("refund_amount"))
        rows[item_id] = {
            "shop_id": shop_id,
            "return_id": return_id,
            "return_line_item_id": item_id,
            "order_line_item_id": _text(item.get("order_line_item_id")),
            "sku_id": _text(item.get("sku_id")),
            "seller_sku": _text(item.get("seller_sku")),
            "sku_name": _text(item.get("sku_name")),
            "product_name": _text(item.get("product_name")),
            "product_image_url": _text(_dict(item.get("product_image")).get("url")),
            "refund_currency": _text(refund.get("currency")),
            "refund_total": to_money(refund.get("refund_total")),
        }
    return list(rows.values())


def dedupe_latest(return_objects: Iterable[Any]) -> list[dict]:
    """One object per return_id: the one with the latest update_time (the later one on a tie)."""
    latest: dict[str, dict] = {}
    for obj in return_objects:
        if not isinstance(obj, dict):
            continue
        return_id = _text(obj.get("return_id"))
        if return_id is None:
            logger.warning("skipped a return object without return_id")
            continue
        kept = latest.get(return_id)
        if kept is None or (update_time(obj) or 0) >= (update_time(kept) or 0):
            latest[return_id] = obj
    return list(latest.values())


def _table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)


def _history(shop_id: str, return_id: str, at: datetime, kind: str, old: str | None, new: str | None,
             details: dict | None = None) -> dict[str, Any]:
    return {"shop_id": shop_id, "return_id": return_id, "happened_at": at, "actor": SYNC_ACTOR,
            "kind": kind, "old_value": old, "new_value": new, "note": None,
            "details": canonical_json(details) if details else None}


def _existing(con: duckdb.DuckDBPyConnection, shop_id: str, return_ids: list[str]) -> dict[str, tuple]:
    """return_id -> (marketplace_status, status, payload) for the ids already stored."""
    ids = pa.table({"return_id": pa.array(return_ids, pa.string())})
    con.register("_page_ids", ids)
    try:
        rows = con.execute(
            "SELECT r.return_id, r.marketplace_status, r.status, r.payload FROM returns r "
            "JOIN _page_ids p USING (return_id) WHERE r.shop_id = ?", [shop_id]).fetchall()
    finally:
        con.unregister("_page_ids")
    return {row[0]: row[1:] for row in rows}


def _same_payload(stored: str | None, obj: dict, text: str) -> bool:
    if stored is None:
        return False
    if stored == text:
        return True
    try:
        return json.loads(stored) == obj
    except ValueError:
        return False


def _plan(shop_id: str, objects: list[dict], existing: dict[str, tuple], synced_at: datetime
          ) -> tuple[list[dict], list[dict], list[dict], PageCounts, list[str]]:
    """Rows to write, history to append, counts, and the ids whose line items change."""
    rows: list[dict] = []
    items: list[dict] = []
    history: list[dict] = []
    changed_ids: list[str] = []
    new = updated = unchanged = 0
    for obj in objects:
        return_id = _text(obj["return_id"])
        old = existing.get(return_id)
        old_mp, old_status, old_payload = old if old else (None, None, None)
        line_items = line_item_rows(shop_id, obj)
        row = return_row(shop_id, obj, previous_status=old_status, synced_at=synced_at, items=line_items)
        if old is not None and row["marketplace_status"] == old_mp:
            # TikTok's status did not move: our Status (maybe set by hand) stands
            row["status"] = old_status
            row["mismatch"] = domain.is_mismatch(old_status, old_mp)
        rows.append(row)
        details = {"update_time": update_time(obj)}
        if old is None:
            new += 1
            history.append(_history(shop_id, return_id, synced_at, "created", None, row["marketplace_status"],
                                    details))
        elif _same_payload(old_payload, obj, row["payload"]):
            unchanged += 1
            continue
        else:
            updated += 1
            if row["marketplace_status"] != old_mp:
                history.append(_history(shop_id, return_id, synced_at, "marketplace_status", old_mp,
                                        row["marketplace_status"], details))
                if row["status"] != old_status:
                    history.append(_history(shop_id, return_id, synced_at, "status", old_status, row["status"],
                                            details))
        changed_ids.append(return_id)
        items.extend(line_items)
    return rows, items, history, PageCounts(new, updated, unchanged), changed_ids


def upsert_page(db: Database, shop_id: str, return_objects: Iterable[Any], *, synced_at: datetime,
                new_watermark: int | None = None, run_id: int | None = None, pages: int = 1,
                retries: int = 3) -> PageCounts:
    """Write one page (or `pages` consecutive pages) of TikTok return objects in ONE transaction."""
    objects = dedupe_latest(return_objects)
    for attempt in range(1, retries + 1):
        try:
            with db.writer() as con:
                return _write_page(con, shop_id, objects, synced_at, new_watermark, run_id, pages)
        except duckdb.TransactionException:
            # a hand edit committed on the same row meanwhile (same process, MVCC): redo on fresh data
            if attempt == retries:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _write_page(con: duckdb.DuckDBPyConnection, shop_id: str, objects: list[dict], synced_at: datetime,
                new_watermark: int | None, run_id: int | None, pages: int) -> PageCounts:
    counts = PageCounts()
    if objects:
        existing = _existing(con, shop_id, [_text(o["return_id"]) for o in objects])
        rows, items, history, counts, changed_ids = _plan(shop_id, objects, existing, synced_at)
        con.register("_page_returns", _table(rows, RETURN_SCHEMA))
        try:
            con.execute(_UPSERT_SQL)
        finally:
            con.unregister("_page_returns")
        if changed_ids:
            _replace_line_items(con, shop_id, changed_ids, items)
        if history:
            con.register("_page_history", _table(history, HISTORY_SCHEMA))
            try:
                con.execute("INSERT INTO history BY NAME SELECT * FROM _page_history")
            finally:
                con.unregister("_page_history")
    if new_watermark is not None:
        # never backwards: a full re-read starts from the oldest update_time again
        con.execute(
            "INSERT INTO sync_state (shop_id, watermark, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (shop_id) DO UPDATE SET watermark = greatest(coalesce(sync_state.watermark, 0), "
            "excluded.watermark), updated_at = excluded.updated_at",
            [shop_id, new_watermark, synced_at])
    if run_id is not None:
        con.execute(
            "UPDATE sync_runs SET pages = pages + ?, new_count = new_count + ?, updated_count = updated_count + ?, "
            "unchanged_count = unchanged_count + ? WHERE id = ?",
            [pages, counts.new, counts.updated, counts.unchanged, run_id])
    return counts


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


def page_watermark(return_objects: Iterable[Any]) -> int | None:
    """The highest update_time on a page: what a committed page covers."""
    # only times the store can hold: a garbled one (e.g. milliseconds) would push the watermark past
    # every real update_time, and no later incremental sync would fetch anything again
    times = [t for t in (update_time(o) for o in return_objects if isinstance(o, dict))
             if t is not None and to_utc(t) is not None]
    return max(times) if times else None


RECORD_SCHEMA = pa.schema([
    ("shop_id", pa.string()),
    ("return_id", pa.string()),
    ("seq", pa.int32()),
    ("event", pa.string()),
    ("role", pa.string()),
    ("description", pa.string()),
    ("reason_text", pa.string()),
    ("note", pa.string()),
    ("created_at", _TIME),
    ("payload", pa.string()),
    ("fetched_at", _TIME),
])


def record_rows(shop_id: str, return_id: str, records: Iterable[Any], fetched_at: datetime) -> list[dict]:
    """TikTok's event records of one return as `return_records` rows, numbered in TikTok's order."""
    rows = []
    for seq, rec in enumerate((r for r in records if isinstance(r, dict)), start=1):
        rows.append({
            "shop_id": shop_id, "return_id": return_id, "seq": seq,
            "event": _text(rec.get("event")), "role": _text(rec.get("role")),
            "description": _text(rec.get("description")), "reason_text": _text(rec.get("reason_text")),
            "note": _text(rec.get("note")), "created_at": to_utc(rec.get("create_time")),
            "payload": canonical_json(rec), "fetched_at": fetched_at,
        })
    return rows


def store_records(db: Database, shop_id: str, return_id: str, records: Iterable[Any],
                  fetched_at: datetime) -> int:
    """Upsert a return's event records in one transaction; returns how many TikTok gave."""
    rows = record_rows(shop_id, return_id, records, fetched_at)
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
