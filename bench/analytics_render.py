"""How long the Reason Analytics page takes to render (AppTest, no browser) over N synthetic returns.

    .venv/bin/python bench/analytics_render.py [--returns 100000] [--repeat 5]

The returns are written by one INSERT ... SELECT over range(N) with a realistic shape: skewed
reasons (TikTok codes and texts), SKU popularity falling off like a power law, more returns in
recent months, most statuses closed, two shops in two currencies, one line item per return
(two for ~15%), and one planted quality spike (SKU-0003 "defective" 5x over the last 10 days).

Prints: the insert time; the page's first render in a new session (cold caches: every
aggregate runs in DuckDB); a rerun with warm caches; a render after a filter change (cache miss
again); and the aggregates alone, without Streamlit. Each figure after the first is the median
of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic import insert_account  # noqa: E402
from returns_core import domain  # noqa: E402
from returns_core.filters import ReturnFilters  # noqa: E402
from returns_core.store import analytics  # noqa: E402
from returns_core.store.db import Database, utcnow  # noqa: E402
from returns_core.store.schema import FILL_LINES_SQL  # noqa: E402

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


def _slots(weighted) -> str:
    """A SQL list where each value appears `weight` times: indexing it by a uniform draw picks by weight.

    One value per row gives a list of text; more give a list of unnamed structs, ('code', 'text').
    """
    rows = [value for weight, *value in weighted for _ in range(weight)]
    items = [_quote(row[0]) if len(row) == 1 else "(" + ", ".join(_quote(v) for v in row) + ")" for row in rows]
    return "[" + ", ".join(items) + "]"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _uniform(column: str, salt: int) -> str:
    """A reproducible draw in [0, 1) per row: hash of the row number and a salt."""
    return f"((hash({column} * 1000003 + {salt}) % 1000000) / 1000000.0)"


def insert_returns(db: Database, n: int) -> None:
    """N returns over two shops and the last 365 days, then their line items; all in SQL."""
    now = utcnow().replace(microsecond=0)
    reasons, statuses, types = _slots(REASONS), _slots(STATUSES), _slots(TYPES)
    shop_ids = "[" + ", ".join(_quote(s) for s, _, _ in SHOPS) + "]"
    currencies = "[" + ", ".join(_quote(c) for _, _, c in SHOPS) + "]"
    status_map = "MAP {" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in domain.STATUS_MAP.items()) + "}"
    type_map = "MAP {" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in domain.TYPE_MAP.items()) + "}"
    sql = f"""
        INSERT INTO returns (shop_id, return_id, order_id, return_type, type, marketplace_status, status,
                             reason_code, reason_text, created_at, updated_at, refund_currency, refund_total,
                             seller_skus, first_seen_at, last_synced_at)
        WITH drawn AS (
            SELECT i,
                   1 + i % {len(SHOPS)} AS shop,
                   {reasons}[1 + CAST(floor({_uniform('i', 1)} * len({reasons})) AS INTEGER)] AS reason,
                   {statuses}[1 + CAST(floor({_uniform('i', 2)} * len({statuses})) AS INTEGER)] AS mstatus,
                   {types}[1 + CAST(floor({_uniform('i', 3)} * len({types})) AS INTEGER)] AS rtype,
                   -- power law: a few SKUs take most returns
                   CAST(floor(500 * pow({_uniform('i', 4)}, 3)) AS INTEGER) AS sku,
                   -- more returns in recent months
                   CAST(365 * 24 * 60 * (1 - sqrt({_uniform('i', 5)})) AS BIGINT) AS minutes_ago,
                   {_uniform('i', 6)} AS u_close, {_uniform('i', 7)} AS u_money, {_uniform('i', 8)} AS u_spike
            FROM range(?) t(i)
        ),
        shaped AS (
            -- the planted problem: in shop 1, over the last 10 days, 1 return in 25 is a defective SKU-0003
            SELECT *, shop = 1 AND minutes_ago < 10 * 24 * 60 AND u_spike < 0.04 AS planted FROM drawn
        )
        SELECT {shop_ids}[shop], CAST(4000000000000000000 + i AS VARCHAR), CAST(5000000000000000000 + i AS VARCHAR),
               rtype, {type_map}[rtype], mstatus, {status_map}[mstatus],
               CASE WHEN planted THEN {_quote(REASONS[2][1])} ELSE reason[1] END,
               CASE WHEN planted THEN {_quote(REASONS[2][2])} ELSE reason[2] END,
               TIMESTAMP '{now}' - INTERVAL (minutes_ago) MINUTE,
               TIMESTAMP '{now}' - INTERVAL (minutes_ago) MINUTE
                   + INTERVAL (CAST(1 + 240 * u_close * u_close AS INTEGER)) HOUR,
               {currencies}[shop],
               CAST(round(5 + 195 * u_money * u_money, 2) AS DECIMAL(18,4)),
               CASE WHEN planted THEN '{SPIKE_SKU}' ELSE printf('SKU-%04d', sku) END,
               TIMESTAMP '{now}', TIMESTAMP '{now}'
        FROM shaped
    """
    lines = """
        INSERT INTO return_line_items (shop_id, return_id, return_line_item_id, sku_id, seller_sku, sku_name,
                                       product_name, refund_currency, refund_total)
        SELECT r.shop_id, r.return_id, r.return_id || '-' || CAST(n AS VARCHAR), 'ID-' || sku, sku, 'Default',
               'Product ' || CAST(CAST(substr(sku, 5) AS INTEGER) // 4 AS VARCHAR), r.refund_currency,
               CASE WHEN n = 1 THEN r.refund_total ELSE CAST(round(r.refund_total / 2, 2) AS DECIMAL(18,4)) END
        FROM returns r,
             LATERAL (SELECT n, CASE WHEN n = 1 THEN r.seller_skus
                                     ELSE printf('SKU-%04d', CAST(hash(r.return_id) % 500 AS INTEGER)) END AS sku
                      FROM range(1, CASE WHEN hash(r.return_id || 'x') % 100 < 15 THEN 3 ELSE 2 END) t(n))
    """
    with db.writer() as con:
        con.execute(sql, [n])
        con.execute(lines)
        con.execute(FILL_LINES_SQL)


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
        insert_account(db, shop_id, name)
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
