"""How long the Reason Analytics page takes to render (AppTest, no browser) over N synthetic returns.

    .venv/bin/python bench/analytics_render.py [--returns 100000] [--repeat 5]

The returns are TikTok return objects written through the sync's own page write (the sample factory,
returns_core.sample_data), drawn with a realistic shape: skewed reasons (TikTok codes and texts), SKU
popularity falling off like a power law, more returns in recent months, most statuses closed, two
shops in two currencies, one line item per return (two for ~15%), and one planted quality spike
(SKU-0003 "defective" 5x over the last 10 days).

Prints: the insert time; the page's first render in a new session (cold caches: every
aggregate runs in DuckDB); a rerun with warm caches; a render after a filter change (cache miss
again); and the aggregates alone, without Streamlit. Each figure after the first is the median
of --repeat runs.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from returns_core import domain  # noqa: E402
from returns_core import sample_data as sample  # noqa: E402
from returns_core.filters import ReturnFilters  # noqa: E402
from returns_core.store import analytics  # noqa: E402
from returns_core.store.db import Database, utcnow  # noqa: E402

SHOPS = (("7000000001", "Bench Shop US", "USD"), ("7000000002", "Bench Shop GB", "GBP"))
SPIKE_SKU = "SKU-0003"

# (weight, code, text): roughly the mix sellers report, in TikTok's own words
REASONS = (
    (20, "ecom_order_delivered_refund_and_return_reason_no_need", "No longer needed"),
    (12, "ecom_order_delivered_refund_reason_not_match_description", "Item doesn't match description"),
    (10, "ecom_order_delivered_refund_reason_defective", "Product is defective or doesn't work"),
    (9, "ecom_order_delivered_refund_reason_damaged", "Damaged item or packaging"),
    (9, "buyer_refund_ordered_incorrect_size", "Ordered incorrect size"),
    (6, "ecom_order_delivered_refund_reason_wrong_product_1", "Wrong item was sent"),
    (6, "ecom_order_delivered_refund_reason_missing_product", "Package received but missing item"),
    (7, "ecom_order_delivered_refund_reason_not_received", "Package wasn't received"),
    (5, "ecom_order_delivered_refund_reason_missed_delivery_date", "Missed estimated delivery date"),
    (8, "ecom_order_delivered_refund_reason_other", "Other"),
    (4, "ecom_order_delivered_refund_reason_damaged_in_transit", "Package or item damaged in transit"),
    (4, "ecom_order_to_ship_canceled_reason_created_by_mistakes", "Order created by mistake"),
)
STATUSES = ((45, "RETURN_OR_REFUND_REQUEST_COMPLETE"), (8, "REFUND_OR_RETURN_REQUEST_REJECT"),
            (10, "RETURN_OR_REFUND_REQUEST_CANCEL"), (12, "RETURN_OR_REFUND_REQUEST_SUCCESS"),
            (15, "AWAITING_BUYER_SHIP"), (10, "RETURN_OR_REFUND_REQUEST_PENDING"))
TYPES = ((35, "REFUND"), (55, "RETURN_AND_REFUND"), (10, "REPLACEMENT"))


def insert_returns(db: Database, n: int, *, seed: int = 7) -> None:
    """N returns over two shops and the last 365 days, with their line items, as TikTok return objects
    written through the sync's own page write (returns_core.sample_data)."""
    now = utcnow().replace(microsecond=0)
    draw = random.Random(seed)
    reasons, statuses, types = _weighted(REASONS), _weighted(STATUSES), _weighted(TYPES)
    returns = []
    for i in range(n):
        shop_id, _, currency = SHOPS[i % len(SHOPS)]
        code, text = draw.choice(reasons)
        (status,), (return_type,) = draw.choice(statuses), draw.choice(types)
        sku = f"SKU-{int(500 * draw.random() ** 3):04d}"  # power law: a few SKUs take most returns
        minutes_ago = int(365 * 24 * 60 * (1 - math.sqrt(draw.random())))  # more returns in recent months
        u_close, u_money, u_spike = draw.random(), draw.random(), draw.random()
        # the planted problem: in shop 1, over the last 10 days, 1 return in 25 is a defective SKU-0003
        if i % len(SHOPS) == 0 and minutes_ago < 10 * 24 * 60 and u_spike < 0.04:
            (code, text), sku = REASONS[2][1:], SPIKE_SKU
        created = now - timedelta(minutes=minutes_ago)
        total = round(Decimal(5 + 195 * u_money * u_money), 2)
        skus = [sku] if draw.random() >= 0.15 else [sku, f"SKU-{draw.randrange(500):04d}"]
        returns.append((shop_id, sample.tiktok_return(
            str(4_000_000_000_000_000_000 + i), order_id=str(5_000_000_000_000_000_000 + i), return_type=return_type,
            return_status=status, reason=code, reason_text=text, created=created,
            updated=created + timedelta(hours=int(1 + 240 * u_close * u_close)),
            refund_amount=sample.refund(currency, total),
            line_items=[sample.line_item(f"{i}-{k}", sku_id=f"ID-{line_sku}", seller_sku=line_sku, sku_name="Default",
                                         product_name=f"Product {int(line_sku[4:]) // 4}", currency=currency,
                                         refund_total=total if k == 1 else round(total / 2, 2))
                        for k, line_sku in enumerate(skus, start=1)])))
    sample.write_shop_returns(db, returns)


def _weighted(weighted) -> list[tuple[str, ...]]:
    """Each value `weight` times: a uniform pick from the list picks by weight."""
    return [tuple(value) for weight, *value in weighted for _ in range(weight)]


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def aggregates_only(db: Database, filters: ReturnFilters) -> None:
    """Every aggregate the page asks for, straight from returns_core (no Streamlit)."""
    analytics.kpis(db, filters)
    currency = analytics.currencies(db, filters)[0]
    analytics.reason_frequency(db, filters)
    analytics.top_skus(db, filters, currency=currency, limit=10)
    analytics.spikes(db, filters)
    analytics.weekly_trend(db, filters, by="group")
    analytics.group_frequency(db, filters)
    analytics.reason_sku_matrix(db, filters)
    analytics.top_products(db, filters, currency=currency)
    analytics.responsibility_split(db, filters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="analytics-bench-")
    path = Path(folder) / "bench.duckdb"
    os.environ.update(RETURNS_DB=str(path), RETURNS_DEMO="0")
    os.environ.pop("RETURNS_DESK_KEY", None)
    db = Database(path)
    db.migrate()
    for shop_id, name, _ in SHOPS:
        sample.add_account(db, shop_id, name)
    insert_s = timed(lambda: insert_returns(db, args.returns))
    db.checkpoint()
    with db.reader() as con:
        n_returns, n_lines = con.execute(
            "SELECT (SELECT count(*) FROM returns), (SELECT count(*) FROM return_line_items)").fetchone()

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/reasons.py")
    cold = timed(at.run)
    assert not at.exception, at.exception
    assert at.title[0].value == "Reason Analytics", [t.value for t in at.title]
    warm = statistics.median(timed(at.run) for _ in range(args.repeat))

    at.selectbox(key="reasons_period").set_value("All time")
    all_time = timed(at.run)
    picks = [[domain.REFUND], [domain.RETURN_AND_REFUND], [domain.RETURN], [domain.REFUND, domain.RETURN],
             [domain.RETURN_AND_REFUND, domain.RETURN], list(domain.TYPES)]

    def change_type(i: int) -> float:
        at.multiselect(key="reasons_types").set_value(picks[i % len(picks)])
        return timed(at.run)

    changed = statistics.median(change_type(i) for i in range(min(args.repeat, len(picks))))
    assert not at.exception, at.exception
    at.multiselect(key="reasons_types").set_value([]).run()
    spikes = [w.value for w in at.warning]
    sql_only = statistics.median(timed(lambda: aggregates_only(db, ReturnFilters())) for _ in range(args.repeat))

    print(f"returns: {n_returns:,} with {n_lines:,} line items (insert {insert_s:.2f} s)")
    print(f"Reason Analytics, first render in a new session (cold caches): {cold:.3f} s")
    print(f"rerun, warm caches (median of {args.repeat}): {warm:.3f} s")
    print(f"period set to All time (every aggregate over all returns): {all_time:.3f} s")
    print(f"All time, after a Type filter change (cache miss; median of {min(args.repeat, len(picks))}): "
          f"{changed:.3f} s")
    print(f"the same aggregates alone over all returns, no Streamlit (median of {args.repeat}): {sql_only:.3f} s")
    print("spikes shown:", "; ".join(spikes) if spikes else "none")


if __name__ == "__main__":
    main()
