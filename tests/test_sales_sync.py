"""Units sold synced per shop, SKU, product and day over real HTTP against the sandbox (issue 13, part 2)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from returns_core.sales_sync import SALES_BACKFILL_DAYS, fetch_sales
from returns_core.store import sales
from returns_core.store.db import Database, utcnow
from returns_core.sync import sync_accounts
from returns_core.tiktok.client import RetryPolicy
from returns_core.tiktok_session import tiktok_session

DAY = 86_400
FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)


def stored_units(db: Database, shop_id: str, day) -> dict[str, tuple[int, int]]:
    rows = db.rows("SELECT sku_id, sku_orders, units_sold FROM sku_sales WHERE shop_id = ? AND day = ?",
                   [shop_id, day])
    return {sku_id: (orders, units) for sku_id, orders, units in rows}


def analytics_calls(sandbox) -> list[str]:
    """Count the Analytics requests the sandbox answers from now on (their paths)."""
    seen: list[str] = []
    answer = sandbox.answer

    def counted(method, path, *args, **kwargs):
        if path.startswith("/analytics/"):
            seen.append(path)
        return answer(method, path, *args, **kwargs)

    sandbox.answer = counted
    return seen


def backfill_start(latest: date, today: date | None = None) -> date:
    """The first sync's first day: SALES_BACKFILL_DAYS back from TikTok's latest day, or the day it asked
    first (90 days before our UTC date) when that is earlier (the shop's zone is ahead of UTC)."""
    today = today or utcnow().date()
    return min(today - timedelta(SALES_BACKFILL_DAYS), latest - timedelta(SALES_BACKFILL_DAYS - 1))


def covered_days(db: Database, shop_id: str) -> int:
    cover = sales.coverage(db, shop_id)
    return (cover.last_day - cover.first_day).days + 1


@pytest.mark.parametrize("utc_ahead_by", [1, 0, -1], ids=["utc-a-day-ahead", "same-day", "utc-a-day-behind"])
def test_the_first_backfill_holds_90_days_up_to_tiktoks_latest_whatever_our_utc_date(db, sandbox, sandbox_accounts,
                                                                                    utc_ahead_by):
    """TikTok's latest day is yesterday in the shop's zone; our date is UTC's. A US shop just after midnight
    UTC is a day behind it: the backfill still reaches 90 days back from TikTok's latest."""
    account = sandbox_accounts[0]
    latest = sandbox.latest_sales_date(account.shop_id)
    today = latest + timedelta(days=1 + utc_ahead_by)
    calls = analytics_calls(sandbox)
    with tiktok_session(db, account) as client:
        outcome = fetch_sales(client, lambda: None, today)
    fetched = outcome.fetch
    assert outcome.error is None and fetched.last_day == latest
    assert fetched.first_day == backfill_start(latest, today)
    assert SALES_BACKFILL_DAYS <= fetched.days <= SALES_BACKFILL_DAYS + 1
    assert sorted(fetched.skus) == [fetched.first_day + timedelta(days=n) for n in range(fetched.days)]
    assert len([c for c in calls if c.endswith("/shop_skus/performance")]) == fetched.days  # no day asked twice


def test_a_sync_stores_every_skus_units_sold_for_every_day_as_tiktok_reports_them(db, sandbox, sandbox_accounts):
    results = sync_accounts(db, sandbox_accounts)
    assert all(r.ok and r.sales_error is None for r in results), [r.summary() for r in results]
    for account in sandbox_accounts:
        latest = sandbox.latest_sales_date(account.shop_id)
        cover = sales.coverage(db, account.shop_id)
        assert cover is not None and (cover.first_day, cover.last_day) == (backfill_start(latest), latest)
        day = cover.first_day
        while day <= latest:
            assert stored_units(db, account.shop_id, day) == sandbox.units_sold_for(account.shop_id, day), day
            day += timedelta(days=1)
        # each product's days as TikTok's product endpoint gives them: the sum of its SKUs
        assert db.rows(
            "SELECT p.product_id, p.day, p.items_sold FROM product_sales p WHERE p.shop_id = ? AND p.items_sold <> "
            "(SELECT sum(s.units_sold) FROM sku_sales s WHERE s.shop_id = p.shop_id AND s.product_id = p.product_id "
            "AND s.day = p.day)", [account.shop_id]) == []
        assert db.value("SELECT count(DISTINCT product_id) FROM product_sales WHERE shop_id = ?",
                        [account.shop_id]) == db.value(
            "SELECT count(DISTINCT product_id) FROM sku_sales WHERE shop_id = ? AND units_sold > 0", [account.shop_id])
    assert [r.sales_days for r in results] == [(sandbox.latest_sales_date(a.shop_id) - backfill_start(
        sandbox.latest_sales_date(a.shop_id))).days + 1 for a in sandbox_accounts]


def test_the_next_sync_asks_once_when_no_day_is_new_and_rereads_the_revised_days_when_one_is(
        db, sandbox, sandbox_accounts):
    sync_accounts(db, sandbox_accounts)
    shop_id = sandbox_accounts[0].shop_id
    latest = sandbox.latest_sales_date(shop_id)
    preliminary = stored_units(db, shop_id, latest)
    assert preliminary == sandbox.units_sold_for(shop_id, latest)

    calls = analytics_calls(sandbox)
    assert all(r.ok and r.sales_days == 0 for r in sync_accounts(db, sandbox_accounts))
    assert len(calls) == len(sandbox_accounts)  # one request per shop says nothing is new

    sandbox.advance(DAY)  # TikTok closes a day and finalizes the one before
    calls.clear()
    results = sync_accounts(db, sandbox_accounts)
    assert all(r.ok for r in results)
    final = sandbox.units_sold_for(shop_id, latest)
    assert stored_units(db, shop_id, latest) == final != preliminary  # revised, not kept
    assert sum(u for _, u in final.values()) > sum(u for _, u in preliminary.values())
    assert stored_units(db, shop_id, latest + timedelta(days=1)) == sandbox.units_sold_for(
        shop_id, latest + timedelta(days=1))
    assert sales.coverage(db, shop_id).last_day == latest + timedelta(days=1)
    sku_calls = [p for p in calls if p.endswith("/shop_skus/performance")]
    assert len(sku_calls) == 3 * len(sandbox_accounts)  # the two days read again and the new one


def test_units_sold_failing_leaves_the_returns_sync_ok_with_a_note_and_the_next_sync_catches_up(
        db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    sandbox.faults.inject("500", 1000, path_prefix="/analytics/")
    [result] = sync_accounts(db, [account], retry=FAST_RETRY)
    assert result.ok and result.new > 0 and result.sales_days == 0
    assert result.sales_error and "units sold not synced" in result.summary()
    assert sales.coverage(db, account.shop_id) is None
    sandbox.faults.clear()
    [again] = sync_accounts(db, [account])
    assert again.ok and again.sales_error is None and again.sales_days > 0
    latest = sandbox.latest_sales_date(account.shop_id)
    assert stored_units(db, account.shop_id, latest) == sandbox.units_sold_for(account.shop_id, latest)


def test_the_first_sync_asks_one_sku_page_a_day_and_one_request_a_product_sold(db, sandbox, sandbox_accounts):
    """The backfill's cost (README): the SKU list has no daily split, so one request a day at its largest page
    (100 SKUs: one page a day here); a product's days come in one request (granularity=1D)."""
    calls = analytics_calls(sandbox)
    assert all(r.ok for r in sync_accounts(db, sandbox_accounts))
    most_skus_a_day = db.value("SELECT max(n) FROM (SELECT count(*) AS n FROM sku_sales GROUP BY shop_id, day)")
    assert 0 < most_skus_a_day <= 100
    sku_calls = [c for c in calls if c.endswith("/shop_skus/performance")]
    product_calls = [c for c in calls if "/shop_products/" in c]
    # one request a day: the 90 days up to TikTok's latest, and one more when a shop's zone is ahead of UTC
    assert len(sku_calls) == sum(covered_days(db, a.shop_id) for a in sandbox_accounts)
    assert all(SALES_BACKFILL_DAYS <= covered_days(db, a.shop_id) <= SALES_BACKFILL_DAYS + 1
               for a in sandbox_accounts)
    assert len(product_calls) == db.value("SELECT count(DISTINCT (shop_id, product_id)) FROM product_sales") > 0
    assert len(calls) == len(sku_calls) + len(product_calls)
