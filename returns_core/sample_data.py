"""Sample stores for tests and benchmarks, built through the real write path.

Returns are TikTok return objects (the shape `ingest` maps: docs/tiktok_api.md 4.1, the sandbox's
`ReturnCase.as_dict`) written by `store.return_writes.upsert_page`, the sync's own page write; accounts
go through `store.accounts`, sync runs through `store.sync_runs`. Nothing here holds SQL, so a new
TikTok field needs a change in the migration and the mapper only: a sample that wants the field
passes it by its TikTok name (`tiktok_return(..., return_warehouse_address={...})`).

Sample accounts carry placeholder secrets and point at a port where nothing listens: they never
reach TikTok.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from returns_core import domain
from returns_core.ingest import PageCounts, page_watermark
from returns_core.store import accounts as account_rows
from returns_core.store import sync_runs
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import upsert_page

Money = Decimal | str | int | float
Moment = datetime | int

NOWHERE = "http://127.0.0.1:9"  # the discard port: a sample account's calls fail at once
BATCH = 50_000  # objects per upsert_page call when writing many

# --- TikTok return objects -------------------------------------------------------------------


def unix(moment: Moment | None) -> int | None:
    """A naive UTC datetime (or Unix seconds already) as TikTok's Unix seconds."""
    if moment is None or isinstance(moment, int):
        return moment
    return int(moment.replace(tzinfo=UTC).timestamp())


def _money(value: Money) -> str:
    return str(value) if isinstance(value, str) else str(Decimal(str(value)))


def refund(currency: str | None, total: Money | None, *, subtotal: Money | None = None,
           shipping_fee: Money | None = None, tax: Money | None = None) -> dict[str, str]:
    """A `refund_amount` object: money as TikTok sends it, decimal strings; absent parts left out."""
    parts = {"currency": currency, "refund_total": total, "refund_subtotal": subtotal,
             "refund_shipping_fee": shipping_fee, "refund_tax": tax}
    return {key: value if key == "currency" else _money(value) for key, value in parts.items() if value is not None}


def line_item(line_id: str, *, seller_sku: str | None = None, sku_id: str | None = None,
              sku_name: str | None = None, product_name: str | None = None, image_url: str | None = None,
              currency: str | None = None, refund_total: Money | None = None,
              order_line_item_id: str | None = None) -> dict[str, Any]:
    """One of a return's `return_line_items`."""
    item: dict[str, Any] = {"return_line_item_id": line_id, "order_line_item_id": order_line_item_id,
                            "sku_id": sku_id, "seller_sku": seller_sku, "sku_name": sku_name,
                            "product_name": product_name}
    if image_url is not None:
        item["product_image"] = {"url": image_url}
    if refund_total is not None:
        item["refund_amount"] = refund(currency, refund_total)
    return {key: value for key, value in item.items() if value is not None}


def tiktok_return(return_id: str, *, order_id: str | None = None, return_type: str = "RETURN_AND_REFUND",
                  return_status: str = "RETURN_OR_REFUND_REQUEST_PENDING", reason: str | None = None,
                  reason_text: str | None = None, created: Moment | None = None, updated: Moment | None = None,
                  refund_amount: dict[str, str] | None = None,
                  next_actions: Sequence[tuple[str | None, Moment]] = (), tracking_number: str | None = None,
                  provider: str | None = None, line_items: Sequence[dict[str, Any]] = (),
                  **fields: Any) -> dict[str, Any]:
    """A TikTok return object; any other TikTok field goes in by its own name (`fields`).

    `next_actions` are TikTok's `seller_next_action_response`: (action, deadline) pairs. The earliest
    deadline becomes Due By; an action of None gives a deadline with no action named.
    """
    obj: dict[str, Any] = {
        "return_id": return_id,
        "order_id": order_id,
        "return_type": return_type,
        "return_status": return_status,
        "return_reason": reason,
        "return_reason_text": reason_text,
        "create_time": unix(created),
        "update_time": unix(updated if updated is not None else created),
        "refund_amount": refund_amount,
        "seller_next_action_response": [
            {key: value for key, value in (("action", action), ("deadline", unix(deadline))) if value is not None}
            for action, deadline in next_actions] or None,
        "return_tracking_number": tracking_number,
        "return_provider_name": provider,
        "return_line_items": list(line_items) or None,
    }
    obj.update(fields)
    return {key: value for key, value in obj.items() if value is not None}


def marketplace_status_for(status: str) -> str:
    """A TikTok return_status that maps to our `status` (the first in the mapping)."""
    return next(tiktok for tiktok, ours in domain.STATUS_MAP.items() if ours == status)


def return_type_for(type_word: str) -> str:
    """The TikTok return_type behind a Type word (Return: REPLACEMENT)."""
    return next(tiktok for tiktok, ours in domain.TYPE_MAP.items() if ours == type_word)


# The example of docs/tiktok_api.md 4.1: every field the mapper reads, with exact money
EXAMPLE_SHOP = "7000000001"
EXAMPLE_RETURN_ID = "4035318504086604100"
EXAMPLE_TIME = 1_760_000_000  # 2025-10-09T08:53:20Z


def example_return(return_id: str = EXAMPLE_RETURN_ID, status: str = "RETURN_OR_REFUND_REQUEST_PENDING",
                   update_time: int = EXAMPLE_TIME, **fields: Any) -> dict[str, Any]:
    """A realistic return request (two line items, two seller actions); `fields` replace its own."""
    return tiktok_return(
        return_id, order_id="577686530908261117", return_type="RETURN_AND_REFUND", return_status=status,
        role="BUYER", reason="ecom_order_delivered_refund_and_return_reason_wrong_product_seller",
        reason_text="Wrong product", created=EXAMPLE_TIME - 3600, updated=update_time,
        next_actions=[("SELLER_RESPOND_RECEIVE_PACKAGE", EXAMPLE_TIME + 7200),
                      ("SELLER_RESPOND_RETURN", EXAMPLE_TIME + 3600)],
        refund_amount=refund("GBP", "10.10", subtotal="9.05", shipping_fee="0.70", tax="0.35"),
        tracking_number="JT123", provider="J&T Express",
        line_items=[
            line_item("L1", order_line_item_id="O1", sku_id="111", seller_sku="RED-M", sku_name="Red, M",
                      product_name="Shirt", image_url="https://img/1", currency="GBP", refund_total="5.05"),
            line_item("L2", order_line_item_id="O2", sku_id="222", seller_sku="RED-L", currency="GBP",
                      refund_total="5.05"),
        ],
    ) | fields


_REASONS = ("Damaged item", "Wrong size", "Not as described", "Changed my mind", "Missing parts",
            "Arrived late", "Wrong item sent", "Quality issue")


def synthetic_returns(n: int, shop_ids: Sequence[str] = (EXAMPLE_SHOP,), *, now: datetime | None = None,
                      first: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """(shop_id, return object) for `n` returns spread evenly over shops, types, statuses, reasons and
    the last 365 days; one return in five has a deadline within 72 h. Deterministic for a given `now`."""
    now = (now or utcnow()).replace(microsecond=0)
    statuses, types = list(domain.STATUS_MAP), list(domain.TYPE_MAP)
    for i in range(first, first + n):
        created = now - timedelta(minutes=i % 525_600)
        total = Decimal(i % 10_000) / 100
        sku = f"SKU-{i % 500}"
        yield shop_ids[i % len(shop_ids)], tiktok_return(
            str(4_000_000_000_000_000_000 + i), order_id=str(5_000_000_000_000_000_000 + i),
            return_type=types[i % len(types)], return_status=statuses[(i // 7) % len(statuses)],
            reason=f"R{i % len(_REASONS)}", reason_text=_REASONS[i % len(_REASONS)],
            created=created, updated=created + timedelta(hours=1),
            refund_amount=refund("USD", total, subtotal=total * Decimal("0.9"),
                                 shipping_fee=total * Decimal("0.05"), tax=total * Decimal("0.05")),
            next_actions=[(None, now + timedelta(hours=i % 72))] if i % 5 == 0 else (),
            tracking_number=f"TRK{i}",
            line_items=[line_item(f"L{i}", seller_sku=sku, currency="USD", refund_total=total)])


# --- writing them --------------------------------------------------------------------------------


def write_returns(db: Database, shop_id: str, objects: Iterable[dict[str, Any]], *,
                  synced_at: datetime | None = None, watermark: bool = False) -> PageCounts:
    """Write return objects of one shop as a sync would (upsert_page), in pages of at most BATCH.

    With `watermark`, each page also raises the shop's watermark, as a sync's page does.
    """
    synced_at = synced_at or utcnow().replace(microsecond=0)
    counts = PageCounts()
    page: list[dict[str, Any]] = []
    for obj in [*objects, None]:
        if obj is not None:
            page.append(obj)
        if page and (obj is None or len(page) == BATCH):
            counts += upsert_page(db, shop_id, page, synced_at=synced_at,
                                  new_watermark=page_watermark(page) if watermark else None)
            page = []
    return counts


def write_shop_returns(db: Database, returns: Iterable[tuple[str, dict[str, Any]]], *,
                       synced_at: datetime | None = None, watermark: bool = False) -> PageCounts:
    """Write (shop_id, return object) pairs, each shop's in its own pages."""
    by_shop: dict[str, list[dict[str, Any]]] = {}
    for shop_id, obj in returns:
        by_shop.setdefault(shop_id, []).append(obj)
    counts = PageCounts()
    for shop_id, objects in by_shop.items():
        counts += write_returns(db, shop_id, objects, synced_at=synced_at, watermark=watermark)
    return counts


def add_account(db: Database, shop_id: str, name: str, *, shop_name: str | None = None, region: str | None = None,
                shop_cipher: str | None = None, app_key: str = "sample-app-key", enabled: bool = True,
                invalid_reason: str | None = None, access_expires_in: timedelta = timedelta(days=7),
                refresh_expires_in: timedelta = timedelta(days=300), is_sandbox: bool = False,
                api_base: str = NOWHERE) -> None:
    """A connected account as connecting one stores it; then disabled, or Invalid with the reason given."""
    now = utcnow()
    shop = account_rows.ConnectedShop(shop_id, name, shop_name or name, region, shop_cipher)
    tokens = account_rows.Tokens("sample-access-token", "sample-refresh-token", now + access_expires_in,
                                 now + refresh_expires_in)
    account_rows.upsert_connected(db, [shop], app_key=app_key, app_secret="sample-app-secret", tokens=tokens,
                                  api_base=api_base, auth_base=api_base, is_sandbox=is_sandbox)
    if not enabled:
        account_rows.set_enabled(db, shop_id, False)
    if invalid_reason is not None:
        account_rows.mark_invalid(db, shop_id, invalid_reason)


def add_sync_run(db: Database, shop_id: str, *, started_at: datetime | None = None, duration_s: float = 2.5,
                 error: str | None = None, pages: int = 1, new: int = 0, updated: int = 0, unchanged: int = 0,
                 trigger: str = "test", full: bool = False) -> int:
    """A finished sync run (failed when `error` is given) with these counts; returns its id."""
    started_at = started_at or utcnow()
    run_id, _ = sync_runs.start(db, shop_id, full=full, trigger=trigger, at=started_at)
    with db.writer() as con:
        sync_runs.add_page(con, run_id, pages, PageCounts(new, updated, unchanged))
    sync_runs.finish(db, run_id, duration_s, error, at=started_at + timedelta(seconds=duration_s))
    return run_id
