"""A small, fully known store for the AppTest page tests: two shops, eight returns, built by the sample factory.

The returns are TikTok return objects written through the sync's own page write (returns_core.sample_data).
Dates of creation are fixed; deadlines are relative to now so "due soon" and "overdue" stay true.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from returns_core import sample_data as sample
from returns_core.store.db import Database, utcnow

ALPHA, BETA = "7000000001", "7000000002"
ALPHA_NAME, BETA_NAME = "Alpha Shop", "Beta Shop"

# return_id, shop, return_type, marketplace status, reason, created, due_by (hours from now), total, currency,
# sku, tracking
RETURNS = [
    ("R1", ALPHA, "REFUND", "RETURN_OR_REFUND_REQUEST_PENDING", "Damaged item", "2026-01-05", 5, "10.00", "USD",
     "SKU-RED", "TRK111"),
    ("R2", ALPHA, "RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_SUCCESS", "Wrong size", "2026-01-10", 48, "20.00",
     "USD", "SKU-BLUE", "TRK222"),
    ("R3", ALPHA, "RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_COMPLETE", "Damaged item", "2026-02-01", None,
     "30.00", "USD", "SKU-RED", "TRK333"),
    ("R4", ALPHA, "REPLACEMENT", "AWAITING_BUYER_SHIP", "Wrong size", "2026-02-15", -2, None, None, "SKU-GREEN",
     "TRK444"),
    ("R5", ALPHA, "REFUND", "REFUND_OR_RETURN_REQUEST_REJECT", "Changed my mind", "2026-03-01", None, "5.00", "EUR",
     "SKU-BLUE", None),
    ("R6", BETA, "REFUND", "RETURN_OR_REFUND_REQUEST_SUCCESS", "Damaged item", "2026-03-05", 10, "7.50", "EUR",
     "SKU-X1", "TRK666"),
    ("R7", BETA, "RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_CANCEL", "Not as described", "2026-03-10", None,
     "12.00", "USD", "SKU-X2", "TRK777"),
    ("R8", BETA, "REFUND", "BRAND_NEW_TIKTOK_STATUS", "Damaged item", "2026-03-12", None, "1.00", "USD", "SKU-X3",
     None),
]


def add_account(db: Database, shop_id: str, name: str, *, enabled: bool = True, auth_state: str = "ok",
                refresh_expires_in: timedelta = timedelta(days=300), is_sandbox: bool = False) -> None:
    sample.add_account(db, shop_id, name, region="US", shop_cipher="CIPHER", app_key="appkey", enabled=enabled,
                       invalid_reason="Authorization was revoked" if auth_state == "invalid" else None,
                       refresh_expires_in=refresh_expires_in, is_sandbox=is_sandbox)


def return_object(rid: str, rtype: str, mstatus: str, reason: str, created: str, due_h: int | None,
                  total: str | None, currency: str | None, sku: str, tracking: str | None, now: datetime) -> dict:
    """One row of RETURNS as TikTok sends it: a deadline with no seller action named, one line item."""
    money = Decimal(total) if total else None
    created_at = datetime.fromisoformat(created + "T12:00:00")
    return sample.tiktok_return(
        rid, order_id=f"O{rid}", return_type=rtype, return_status=mstatus, reason=f"code-{reason[:4]}",
        reason_text=reason, created=created_at, updated=created_at + timedelta(days=1),
        refund_amount=sample.refund(currency, money, subtotal=money * Decimal("0.8"),
                                    shipping_fee=money * Decimal("0.1"), tax=money * Decimal("0.1"))
        if money else None,
        next_actions=[(None, now + timedelta(hours=due_h))] if due_h is not None else (),
        tracking_number=tracking, provider="UPS" if tracking else None,
        line_items=[sample.line_item(f"L{rid}", sku_id=f"ID-{sku}", seller_sku=sku, sku_name="Large",
                                     product_name=f"Product {sku}", image_url=f"https://example.invalid/{sku}.png",
                                     currency=currency, refund_total=money)])


def add_returns(db: Database) -> None:
    now = utcnow().replace(microsecond=0)
    sample.write_shop_returns(db, [(shop, return_object(rid, *rest, now=now)) for rid, shop, *rest in RETURNS],
                              synced_at=now)


def add_sync_run(db: Database, shop_id: str, *, state: str = "ok", error: str | None = None,
                 ago: timedelta = timedelta(minutes=30), new: int = 5) -> None:
    assert (state == "failed") == (error is not None), "a failed run says why; a good one has no error"
    sample.add_sync_run(db, shop_id, started_at=utcnow() - ago, error=error, new=new)


def seed_store(db: Database) -> None:
    """Two active accounts, the eight RETURNS, one line item and one history row each, two sync runs."""
    add_account(db, ALPHA, ALPHA_NAME)
    add_account(db, BETA, BETA_NAME)
    add_returns(db)
    add_sync_run(db, ALPHA)
    add_sync_run(db, BETA, state="failed", error="TikTok had a server error; try again later", new=0,
                 ago=timedelta(hours=2))
