"""A small, fully known store for the AppTest page tests: two shops, eight returns, written with SQL.

Dates of creation are fixed; deadlines are relative to now so "due soon" and "overdue" stay true.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from returns_core import domain
from returns_core.store import history
from returns_core.store.db import Database, utcnow
from returns_core.store.schema import FILL_LINES_SQL

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
    now = utcnow()
    box = db.box
    with db.writer() as con:
        con.execute(
            "INSERT INTO accounts (shop_id, name, shop_name, region, shop_cipher, app_key, app_secret_enc, "
            "access_token_enc, refresh_token_enc, access_token_expires_at, refresh_token_expires_at, api_base, "
            "auth_base, is_sandbox, enabled, auth_state, auth_error, created_at, updated_at) "
            "VALUES (?, ?, ?, 'US', 'CIPHER', 'appkey', ?, ?, ?, ?, ?, 'http://127.0.0.1:9', 'http://127.0.0.1:9', "
            "?, ?, ?, ?, ?, ?)",
            [shop_id, name, name, box.encrypt("app-secret"), box.encrypt("access"), box.encrypt("refresh"),
             now + timedelta(days=7), now + refresh_expires_in, is_sandbox, enabled, auth_state,
             "Authorization was revoked" if auth_state == "invalid" else None, now, now])


def add_returns(db: Database) -> None:
    now = utcnow().replace(microsecond=0)
    with db.writer() as con:
        for (rid, shop, rtype, mstatus, reason, created, due_h, total, currency, sku, tracking) in RETURNS:
            status = domain.mapped_status(mstatus)
            money = Decimal(total) if total else None
            created_at = datetime.fromisoformat(created + "T12:00:00")
            payload = {"return_id": rid, "order_id": f"O{rid}", "return_type": rtype, "return_status": mstatus}
            con.execute(
                "INSERT INTO returns (shop_id, return_id, order_id, return_type, type, marketplace_status, status, "
                "unmapped, mismatch, reason_code, reason_text, created_at, updated_at, refund_currency, refund_total, "
                "refund_subtotal, refund_shipping_fee, refund_tax, due_by, tracking_number, shipping_provider, "
                "seller_skus, payload, first_seen_at, last_synced_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, false, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [shop, rid, f"O{rid}", rtype, domain.display_type(rtype), mstatus, status, domain.is_unmapped(mstatus),
                 f"code-{reason[:4]}", reason, created_at, created_at + timedelta(days=1), currency, money,
                 money * Decimal("0.8") if money else None, money * Decimal("0.1") if money else None,
                 money * Decimal("0.1") if money else None,
                 now + timedelta(hours=due_h) if due_h is not None else None, tracking,
                 "UPS" if tracking else None, sku, json.dumps(payload), now, now])
            con.execute(
                "INSERT INTO return_line_items (shop_id, return_id, return_line_item_id, sku_id, seller_sku, sku_name, "
                "product_name, product_image_url, refund_currency, refund_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [shop, rid, f"L{rid}", f"ID-{sku}", sku, "Large", f"Product {sku}",
                 f"https://example.invalid/{sku}.png", currency, money])
            history.append(con, [history.entry(shop, rid, history.SYNC_ACTOR, "created", new=status, at=now)])
        con.execute(FILL_LINES_SQL)  # the line items on each return, as ingest writes them


def add_sync_run(db: Database, shop_id: str, *, state: str = "ok", error: str | None = None,
                 ago: timedelta = timedelta(minutes=30), new: int = 5) -> None:
    started = utcnow() - ago
    with db.writer() as con:
        con.execute(
            "INSERT INTO sync_runs (shop_id, started_at, finished_at, duration_s, state, pages, new_count, "
            "updated_count, unchanged_count, error, trigger) VALUES (?, ?, ?, 2.5, ?, 1, ?, 0, 0, ?, 'test')",
            [shop_id, started, started + timedelta(seconds=2.5), state, new, error])


def seed_store(db: Database) -> None:
    """Two active accounts, the eight RETURNS, one line item and one history row each, two sync runs."""
    add_account(db, ALPHA, ALPHA_NAME)
    add_account(db, BETA, BETA_NAME)
    add_returns(db)
    add_sync_run(db, ALPHA)
    add_sync_run(db, BETA, state="failed", error="TikTok had a server error; try again later", new=0,
                 ago=timedelta(hours=2))
