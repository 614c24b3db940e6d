"""TikTok return objects -> store rows: a pure mapper, with no SQL and no database.

It maps a return object (or a cancellation object: FIELDS says where each kind keeps what) to its
`returns` row and `return_line_items` rows, event records to
`return_records` rows, and plans what a page changes given what the store holds (the new and
updated returns, the history to record, the counts). The store writes the plan in one
transaction (store/return_writes.py). The Arrow schemas are the shape of those rows: the store
loads them as typed tables, never row by row (docs/streamlit_duckdb.md B4).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from returns_core import domain

_MONEY = pa.decimal128(18, 4)
_TIME = pa.timestamp("us")
_QUANTUM = Decimal("0.0001")
_MONEY_LIMIT = Decimal(10) ** 14  # DECIMAL(18,4) holds 14 integer digits
# How far ahead of this computer's clock TikTok may date an update before we call it "from the
# future". TikTok accepts a request signed up to 5 minutes behind its own clock (docs/tiktok_api.md,
# `timestamp`), so on any sync that works at all its update_times run at most ~5 minutes ahead of
# ours; twice that leaves room. A later update_time means a clock is wrong (ours or TikTok's, or the
# demo shop's after our clock was set back): the return is kept and flagged, but the watermark never
# moves past now + this margin, or every later incremental sync would ask for nothing.
FUTURE_MARGIN_S = 10 * 60

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
    ("kind", pa.string()),
    ("can_decide", pa.bool_()),
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


@dataclass(frozen=True)
class PageCounts:
    """What one page did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0  # objects that are not returns, kept aside (see split_page)

    @property
    def read(self) -> int:
        """Rows read and stored (quarantined objects aside)."""
        return self.new + self.updated + self.unchanged

    def __add__(self, other: PageCounts) -> PageCounts:
        return PageCounts(self.new + other.new, self.updated + other.updated, self.unchanged + other.unchanged,
                          self.quarantined + other.quarantined)


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


def from_the_future(updated_at: datetime | None, now: datetime) -> bool:
    """True when TikTok dates an update more than FUTURE_MARGIN_S after `now` (both naive UTC)."""
    return updated_at is not None and updated_at > now + timedelta(seconds=FUTURE_MARGIN_S)


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
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:  # what orjson does not take (an integer past 64 bits): the same text, slower
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


class KindFields(NamedTuple):
    """Where a kind's object keeps what a `returns` row holds (a cancellation names its fields cancel_*)."""

    id: str
    type: str
    status: str
    reason: str
    reason_text: str
    lines: str
    line_id: str


# Search Returns' return objects and Search Cancellations' cancellation objects (docs/tiktok_api.md 4.1, 4.5)
FIELDS: dict[str, KindFields] = {
    domain.RETURN_KIND: KindFields("return_id", "return_type", "return_status", "return_reason", "return_reason_text",
                                   "return_line_items", "return_line_item_id"),
    domain.CANCELLATION_KIND: KindFields("cancel_id", "cancel_type", "cancel_status", "cancel_reason",
                                         "cancel_reason_text", "cancel_line_items", "cancel_line_item_id"),
}


def return_row(shop_id: str, obj: Mapping[str, Any], *, previous_status: str | None = None,
               synced_at: datetime, items: list[dict[str, Any]] | None = None,
               kind: str = domain.RETURN_KIND) -> dict[str, Any]:
    """One TikTok return object (or cancellation object, by `kind`) as a `returns` row (status mapped by the
    kind's mapping; unmapped keeps the previous one).

    `items` are its `line_item_rows`, when the caller has them already.
    """
    fields = FIELDS[kind]
    marketplace_status = _text(obj.get(fields.status))
    status = domain.mapped_status(marketplace_status, kind) or previous_status
    refund = _dict(obj.get("refund_amount"))
    line_items = _dicts(obj.get(fields.lines))
    if items is None:
        items = line_item_rows(shop_id, obj, kind)
    next_action, due_by = _next_action(obj)
    return_type = _text(obj.get(fields.type))
    return {
        "shop_id": shop_id,
        "return_id": _text(obj.get(fields.id)),
        "order_id": _text(obj.get("order_id")),
        "return_type": return_type,
        "type": domain.display_kind_type(kind, return_type),
        "marketplace_status": marketplace_status,
        "status": status,
        "unmapped": domain.is_unmapped(marketplace_status, kind),
        "mismatch": domain.is_mismatch(status, marketplace_status, kind),
        "arbitration_status": _text(obj.get("arbitration_status")),
        "role": _text(obj.get("role")),
        "reason_code": _text(obj.get(fields.reason)),
        "reason_text": _text(obj.get(fields.reason_text)),
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
        "kind": kind,
        # stored, so that "Waiting for you" reads one column instead of working the rule out for every row
        "can_decide": domain.can_decide(return_type, marketplace_status, next_action),
    }


def line_item_rows(shop_id: str, obj: Mapping[str, Any], kind: str = domain.RETURN_KIND) -> list[dict[str, Any]]:
    """The `return_line_items` rows of one return (or cancellation) object (an item without an id gets its
    position)."""
    fields = FIELDS[kind]
    return_id = _text(obj.get(fields.id))
    rows: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(_dicts(obj.get(fields.lines)), start=1):
        item_id = _text(item.get(fields.line_id)) or f"#{position}"
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


@dataclass(frozen=True)
class Malformed:
    """An object of a page that cannot be stored as a return: kept aside as it came (quarantined)."""

    reason: str
    payload: str  # the object as received, as canonical JSON text
    update_time: int | None


def malformed_reason(obj: Any, kind: str = domain.RETURN_KIND) -> str | None:
    """Why a page's object cannot be stored as a return (or cancellation), or None when it can."""
    if not isinstance(obj, dict):
        return f"not a {kind} object (a JSON {type(obj).__name__})"
    if _text(obj.get(FIELDS[kind].id)) is None:
        return f"no {FIELDS[kind].id}"
    return None


def split_page(return_objects: Iterable[Any], kind: str = domain.RETURN_KIND) -> tuple[list[dict], list[Malformed]]:
    """A page's objects as (one object per return_id, the latest by update_time; the malformed ones).

    Nothing is dropped: an object that cannot be a return comes back as `Malformed`, to be kept.
    """
    latest: dict[str, dict] = {}
    malformed: list[Malformed] = []
    for obj in return_objects:
        reason = malformed_reason(obj, kind)
        if reason is not None:
            malformed.append(Malformed(reason, canonical_json(obj),
                                       update_time(obj) if isinstance(obj, dict) else None))
            continue
        return_id = _text(obj[FIELDS[kind].id]) or ""
        kept = latest.get(return_id)
        if kept is None or (update_time(obj) or 0) >= (update_time(kept) or 0):
            latest[return_id] = obj
    return list(latest.values()), malformed


class StoredReturn(NamedTuple):
    """What the store holds of a return that a page brings again."""

    marketplace_status: str | None
    status: str | None
    payload: str | None


class Change(NamedTuple):
    """A change a sync found on a return, recorded in the return's history."""

    return_id: str
    kind: str  # "created", "marketplace_status" or "status"
    old: str | None
    new: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class PagePlan:
    """What storing one page does to the store."""

    returns: list[dict[str, Any]]  # every return on the page, as its `returns` row
    line_items: list[dict[str, Any]]  # the line items of the returns that changed (they replace the old ones)
    changed_ids: list[str]  # the returns that are new or changed
    updated_ids: list[str]  # of those, the ones stored before (their old line items are replaced)
    changes: list[Change]  # what their history records
    counts: PageCounts


def page_return_ids(objects: Iterable[dict], kind: str = domain.RETURN_KIND) -> list[str]:
    """The return ids of a page's objects (as `split_page` left them: each has one)."""
    return [_text(obj[FIELDS[kind].id]) or "" for obj in objects]


def _same_payload(stored: str | None, obj: dict, text: str) -> bool:
    """True when the stored payload is this object: the same text, or the same JSON written differently."""
    if stored is None:
        return False
    if stored == text:
        return True
    try:
        return json.loads(stored) == obj
    except ValueError:
        return False


_NOT_YET = datetime(1970, 1, 1)  # a prepared row's time of syncing, until plan_page sets the real one


class PreparedPage(NamedTuple):
    """The part of storing a page that does not depend on what is stored: its returns (one object per
    return_id, the latest), their rows as if first seen, their line items, and what is kept aside.

    A sync prepares each page as it arrives, on the shop's fetch thread, so the one writer that
    serves every shop only compares with the store and writes."""

    objects: list[dict]
    rows: list[dict[str, Any]]  # return_row of each object with no previous status (unmapped: None)
    items: list[list[dict[str, Any]]]  # line_item_rows of each object
    malformed: list[Malformed]


def prepare_page(shop_id: str, return_objects: Iterable[Any], kind: str = domain.RETURN_KIND) -> PreparedPage:
    """Prepare a page (or consecutive pages) of TikTok return (or cancellation) objects for `plan_page`."""
    objects, malformed = split_page(return_objects, kind)
    items = [line_item_rows(shop_id, obj, kind) for obj in objects]
    # the rows' times of syncing are set when they are written (plan_page)
    rows = [return_row(shop_id, obj, synced_at=_NOT_YET, items=found, kind=kind)
            for obj, found in zip(objects, items, strict=True)]
    return PreparedPage(objects, rows, items, malformed)


def join_prepared(pages: Sequence[PreparedPage]) -> PreparedPage:
    """Consecutive prepared pages as one: a return on several keeps its latest object, as split_page does."""
    if len(pages) == 1:
        return pages[0]
    latest: dict[str, int] = {}
    objects: list[dict] = []
    rows: list[dict[str, Any]] = []
    items: list[list[dict[str, Any]]] = []
    malformed: list[Malformed] = []
    for page in pages:
        malformed += page.malformed
        for obj, row, found in zip(page.objects, page.rows, page.items, strict=True):
            at = latest.get(row["return_id"])
            if at is None:
                latest[row["return_id"]] = len(objects)
                objects.append(obj)
                rows.append(row)
                items.append(found)
            elif (update_time(obj) or 0) >= (update_time(objects[at]) or 0):
                objects[at], rows[at], items[at] = obj, row, found
    return PreparedPage(objects, rows, items, malformed)


def plan_page(shop_id: str, page: PreparedPage | list[dict], stored: Mapping[str, StoredReturn], synced_at: datetime,
              kind: str = domain.RETURN_KIND) -> PagePlan:
    """What writing a page changes, given what the store holds of its returns (a prepared page, or
    `split_page` objects of `kind`)."""
    if not isinstance(page, PreparedPage):
        page = prepare_page(shop_id, page, kind)
    returns: list[dict[str, Any]] = []
    line_items: list[dict[str, Any]] = []
    changed_ids: list[str] = []
    updated_ids: list[str] = []
    changes: list[Change] = []
    new = updated = unchanged = 0
    for obj, prepared, items in zip(page.objects, page.rows, page.items, strict=True):
        old = stored.get(prepared["return_id"] or "")
        row, found = _plan_return(obj, dict(prepared), old, synced_at, kind)
        returns.append(row)
        if old is None:
            new += 1
        elif _same_payload(old.payload, obj, row["payload"]):
            unchanged += 1
            continue
        else:
            updated += 1
            updated_ids.append(row["return_id"])
        changed_ids.append(row["return_id"])
        line_items.extend(items)
        changes.extend(found)
    return PagePlan(returns, line_items, changed_ids, updated_ids, changes, PageCounts(new, updated, unchanged))


def _plan_return(obj: dict, row: dict[str, Any], old: StoredReturn | None, synced_at: datetime,
                 kind: str = domain.RETURN_KIND) -> tuple[dict[str, Any], list[Change]]:
    """One return's row (prepared, finished here) and the changes to record if its payload changed."""
    row["first_seen_at"] = row["last_synced_at"] = synced_at
    if old is not None and row["status"] is None:  # a status we cannot map keeps the previous one
        row["status"] = old.status
        row["mismatch"] = domain.is_mismatch(old.status, row["marketplace_status"], kind)
    return_id, details = row["return_id"], {"update_time": update_time(obj)}
    if old is None:
        return row, [Change(return_id, "created", None, row["marketplace_status"], details)]
    if row["marketplace_status"] == old.marketplace_status:
        # TikTok's status did not move: our Status (maybe set by hand) stands
        row["status"] = old.status
        row["mismatch"] = domain.is_mismatch(old.status, old.marketplace_status, kind)
        return row, []
    due_before = _previous_due_by(old)
    if due_before is not None:
        # the seller's deadline while TikTok waited: a move at or after it was TikTok's own (a missed deadline)
        details["due_by_before"] = due_before.isoformat()
    changes = [Change(return_id, "marketplace_status", old.marketplace_status, row["marketplace_status"], details)]
    if row["status"] != old.status:
        changes.append(Change(return_id, "status", old.status, row["status"], details))
    return row, changes


def _previous_due_by(old: StoredReturn) -> datetime | None:
    """Due By of the return as stored before this change (from its kept payload), or None."""
    try:
        previous = json.loads(old.payload or "null")
    except ValueError:
        return None
    return _next_action(previous)[1] if isinstance(previous, dict) else None


def page_watermark(return_objects: Iterable[Any], now: datetime | None = None) -> int | None:
    """The highest update_time on a page that is neither garbled nor from the future (at `now`, naive
    UTC; default the current time): what a committed page covers."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    # only times the store can hold: a garbled one (e.g. milliseconds) would push the watermark past
    # every real update_time, and no later incremental sync would fetch anything again; one from the
    # future would do the same (FUTURE_MARGIN_S)
    times = [t for t in (update_time(o) for o in return_objects if isinstance(o, dict))
             if t is not None and (at := to_utc(t)) is not None and not from_the_future(at, now)]
    return max(times) if times else None


def count_from_the_future(return_objects: Iterable[Any], now: datetime, kind: str = domain.RETURN_KIND) -> int:
    """How many of a page's returns TikTok dates in the future (see FUTURE_MARGIN_S)."""
    return sum(1 for o in return_objects
               if malformed_reason(o, kind) is None and from_the_future(to_utc(update_time(o)), now))


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
