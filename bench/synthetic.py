"""Synthetic returns for benchmarks: one INSERT ... SELECT over range(n), no Python loop."""

from __future__ import annotations

from datetime import timedelta

from returns_core import domain
from returns_core.store.db import Database, utcnow

_REASONS = ("Damaged item", "Wrong size", "Not as described", "Changed my mind", "Missing parts",
            "Arrived late", "Wrong item sent", "Quality issue")


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def insert_returns(db: Database, n: int, shop_ids: tuple[str, ...] = ("7000000001",)) -> None:
    """Insert `n` returns spread over `shop_ids`, statuses, types, reasons and the last 365 days."""
    marketplace = list(domain.STATUS_MAP)
    statuses = [domain.STATUS_MAP[m] for m in marketplace]
    return_types = list(domain.TYPE_MAP)
    types = [domain.TYPE_MAP[t] for t in return_types]
    now = utcnow().replace(microsecond=0)
    sql = f"""
        INSERT INTO returns (shop_id, return_id, order_id, return_type, type, marketplace_status, status,
                             unmapped, mismatch, reason_code, reason_text, created_at, updated_at,
                             refund_currency, refund_total, refund_subtotal, refund_shipping_fee, refund_tax,
                             due_by, tracking_number, seller_skus, payload, first_seen_at, last_synced_at)
        SELECT {_sql_list(shop_ids)}[1 + i % {len(shop_ids)}],
               CAST(4000000000000000000 + i AS VARCHAR),
               CAST(5000000000000000000 + i AS VARCHAR),
               {_sql_list(return_types)}[1 + i % {len(return_types)}],
               {_sql_list(types)}[1 + i % {len(types)}],
               {_sql_list(marketplace)}[1 + (i // 7) % {len(marketplace)}],
               {_sql_list(statuses)}[1 + (i // 7) % {len(statuses)}],
               false, false,
               'R' || CAST(i % {len(_REASONS)} AS VARCHAR),
               {_sql_list(_REASONS)}[1 + i % {len(_REASONS)}],
               TIMESTAMP '{now}' - INTERVAL (i % 525600) MINUTE,
               TIMESTAMP '{now}' - INTERVAL (i % 525600) MINUTE + INTERVAL 1 HOUR,
               'USD',
               CAST((i % 10000) / 100.0 AS DECIMAL(18,4)),
               CAST((i % 10000) / 100.0 * 0.9 AS DECIMAL(18,4)),
               CAST((i % 10000) / 100.0 * 0.05 AS DECIMAL(18,4)),
               CAST((i % 10000) / 100.0 * 0.05 AS DECIMAL(18,4)),
               CASE WHEN i % 5 = 0 THEN TIMESTAMP '{now}' + INTERVAL (i % 72) HOUR END,
               'TRK' || CAST(i AS VARCHAR),
               'SKU-' || CAST(i % 500 AS VARCHAR),
               '{{}}',
               TIMESTAMP '{now}', TIMESTAMP '{now}'
        FROM range(?) t(i)
    """
    with db.writer() as con:
        con.execute(sql, [n])


def insert_account(db: Database, shop_id: str = "7000000001", name: str = "Bench Shop") -> None:
    """An Active account (its tokens are placeholders: benchmarks never call TikTok)."""
    now = utcnow()
    box = db.box
    with db.writer() as con:
        con.execute(
            "INSERT INTO accounts (shop_id, name, shop_name, app_key, app_secret_enc, access_token_enc, "
            "refresh_token_enc, access_token_expires_at, refresh_token_expires_at, api_base, auth_base, "
            "created_at, updated_at) VALUES (?, ?, ?, 'bench', ?, ?, ?, ?, ?, 'http://127.0.0.1:9', "
            "'http://127.0.0.1:9', ?, ?)",
            [shop_id, name, name, box.encrypt("x"), box.encrypt("x"), box.encrypt("x"),
             now + timedelta(days=7), now + timedelta(days=300), now, now])
