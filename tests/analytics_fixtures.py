"""The analytics stores of known content: ten hand-counted returns (RETURNS) and a spiky history.

Shared by tests/test_analytics.py (the aggregates) and tests/test_app_reasons.py (the page). Every row
is written as a TikTok return object through the sample factory (returns_core.sample_data).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from returns_core import sample_data as sample

A, B = "7001", "7002"
DEF = ("ecom_order_delivered_refund_reason_defective", "Product is defective or doesn't work")
SIZE = ("buyer_refund_item_is_too_small/short", "Item is too small/short")
MIND = ("ecom_order_delivered_refund_reason_no_need", "No longer needed")
LATE = ("ecom_order_delivered_refund_reason_not_received", "Package wasn't received")
WRONG = ("ecom_order_delivered_refund_reason_wrong_product_1", "Wrong item was sent")
OTHER = ("ecom_order_delivered_refund_reason_other", "Other")
NONE = (None, None)

BLND, TEE, MUG = "BLND-200-BLK", "TEE-M", "MUG-01"
PRODUCT = {BLND: "Blender 200", TEE: "Tee", MUG: "Mug"}


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


# id, shop, type, status, reason, created, updated, currency, refund_total, [(sku, line refund)]
RETURNS = [
    ("R1", A, "Refund", "Refund", DEF, t("2026-11-02 10:00"), t("2026-11-03 10:00"), "USD", "10.10",
     [(BLND, "10.10")]),
    ("R2", A, "Return & Refund", "Refund", DEF, t("2026-11-04 09:00"), t("2026-11-06 09:00"), "USD", "20.20",
     [(BLND, "20.20")]),
    ("R3", A, "Return & Refund", "Rejected", SIZE, t("2026-11-05 12:00"), t("2026-11-05 18:00"), "USD", "5.05",
     [(TEE, "5.05")]),
    ("R4", A, "Refund", "Pending", SIZE, t("2026-11-10 08:00"), t("2026-11-10 09:00"), "USD", "7.07",
     [(TEE, "7.07")]),
    ("R5", A, "Return", "Cancelled", MIND, t("2026-11-11 08:00"), t("2026-11-12 14:00"), None, None,
     [(MUG, None)]),
    ("R6", B, "Refund", "Refund", LATE, t("2026-11-12 00:00"), t("2026-11-13 12:00"), "EUR", "9.99",
     [(MUG, "9.99")]),
    ("R7", B, "Return & Refund", "Accepted", WRONG, t("2026-11-16 00:00"), t("2026-11-16 01:00"), "EUR", "15.00",
     [(BLND, "7.50"), (TEE, "7.50")]),
    ("R8", B, "Refund", "Requested", OTHER, t("2026-11-17 00:00"), t("2026-11-17 05:00"), "EUR", "0.01",
     [(BLND, "0.01")]),
    ("R9", A, "Refund", "Refund", DEF, t("2026-11-18 23:59:59"), t("2026-11-19 23:59:59"), "USD", "0.33",
     [(BLND, "0.11"), (BLND, "0.22")]),
    ("R10", A, "Return & Refund", "Requested", NONE, t("2026-11-19 00:00"), t("2026-11-23 00:00"), "USD", "1.00",
     []),
]


def insert(db, rows) -> None:
    """Write exact returns and line items (a few hundred rows at most) as TikTok return objects, through the
    sync's own page write: a row's Type and Status become the TikTok return_type and return_status behind them."""
    returns = []
    for rid, shop, typ, status, (code, text), created, updated, currency, total, items in rows:
        returns.append((shop, sample.tiktok_return(
            rid, order_id="O" + rid, return_type=sample.return_type_for(typ),
            return_status=sample.marketplace_status_for(status), reason=code, reason_text=text, created=created,
            updated=updated, refund_amount=sample.refund(currency, total) if total else None,
            line_items=[sample.line_item(f"{rid}-{n}", sku_id="ID-" + sku, seller_sku=sku,
                                         product_name=PRODUCT.get(sku, sku), currency=currency if amount else None,
                                         refund_total=amount)
                        for n, (sku, amount) in enumerate(items)])))
    sample.write_shop_returns(db, returns)


AS_OF = date(2026, 3, 18)  # the day of the latest return in the spiky store
WINDOW = AS_OF - timedelta(days=6)
GUARD = WINDOW - timedelta(weeks=1)  # the week before the window: in neither count

# (sku, reason): (returns per baseline week, returns in the last 7 days)
RATES = {
    (BLND, DEF): (2, 10),   # planted: 5x its usual week (and it began in the guard week)
    (BLND, SIZE): (4, 4),   # keeps BLND as a whole at 14 vs 6 a week (2.3x): no spike
    (MUG, DEF): (2, 2),     # keeps "defective" as a whole at 13 vs 5 a week (2.6x): no spike
    ("LAMP-9", DEF): (1, 1),
    (TEE, SIZE): (6, 8),    # busy but steady
    (MUG, LATE): (3, 1),
    (TEE, MIND): (1, 4),    # 4x but only 4 returns: below the minimum count
    ("LAMP-9", MIND): (0, 3),  # new, but only 3
    (MUG, MIND): (3, 2),
    (MUG, WRONG): (2, 7),   # 3.5x, but 7 against 2 a week happens by chance about 1 week in 200
}
NOISE = (1, -1, 0, 2, -2, 1, -1, 0)  # sums to 0: the baseline mean is exactly the rate (for rates of 2 and up)


def spiky_rows(as_of: date = AS_OF, shop: str = A):
    """Nine weeks of steady noisy returns, an old burst outside the baseline, and the planted spike."""
    rows, n = [], 0
    window = as_of - timedelta(days=6)
    guard = window - timedelta(weeks=1)

    def add(sku, reason, day, hour):
        nonlocal n
        n += 1
        created = datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)
        rows.append((f"{shop}-S{n}", shop, "Refund", "Refund", reason, created, created + timedelta(days=1), "USD",
                     "1.00", [(sku, "1.00")]))

    for (sku, reason), (weekly, recent) in RATES.items():
        for week in range(8):  # week 0 ends the day before the guard week
            start = guard - timedelta(days=7 * (week + 1))
            for i in range(weekly + NOISE[week] if weekly >= 2 else weekly):
                add(sku, reason, start + timedelta(days=i % 7), 9 + i % 8)
        for i in range(recent):
            add(sku, reason, window + timedelta(days=i % 7), 10)
        # the guard week runs at the usual rate, but the planted problem already began there
        for i in range(8 if (sku, reason) == (BLND, DEF) else weekly):
            add(sku, reason, guard + timedelta(days=i % 7), 11)
    # ten weeks back, before the baseline: a burst that must not count
    for i in range(30):
        add(BLND, DEF, guard - timedelta(days=63 + i % 7), 12)
    add(TEE, SIZE, as_of, 23)  # the latest return: sets "now"
    return rows
