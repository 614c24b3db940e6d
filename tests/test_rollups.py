"""The daily pre-aggregates behind Reason Analytics (store/rollups.py): always what the returns say.

Two checks over a store synced from the sandbox over HTTP: after syncs, a day moving on and a hand-made
status change, the daily rows are exactly what a count from scratch gives; and every chart reads the
same from them as from the returns themselves.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from returns_core import domain, workflow
from returns_core import sample_data as sample
from returns_core.filters import ReturnFilters
from returns_core.store import analytics, rollups
from returns_core.store import returns as grid
from returns_core.store.analytics import Measure
from returns_core.store.db import utcnow
from returns_core.store.schema import ALL_RETURNS, ROLLUPS
from returns_core.sync import sync_accounts

DAILY_TABLES = [table for table, _, _ in ROLLUPS]


def daily_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {table: sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall())) for table in DAILY_TABLES}


def daily_rows_and_a_fresh_count(db) -> tuple[dict, dict]:
    """The daily tables as stored, and as migration 12 would fill them from the returns now (rolled back)."""
    with duckdb.connect(str(db.path)) as con:
        stored = daily_rows(con)
        con.execute("BEGIN TRANSACTION")
        for table, _, contribution in ROLLUPS:
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} BY NAME {contribution.format(rows=ALL_RETURNS)}")
        fresh = daily_rows(con)
        con.execute("ROLLBACK")
    return stored, fresh


@pytest.fixture
def synced(db, sandbox, sandbox_accounts):
    sync_accounts(db, trigger="test")
    return db


def test_daily_rows_are_what_a_fresh_count_gives_after_syncs_and_hand_changes(synced, sandbox):
    db = synced
    stored, fresh = daily_rows_and_a_fresh_count(db)
    assert stored == fresh
    assert sum(len(rows) for rows in stored.values()) > 100
    with db.reader() as con:
        before = con.execute("SELECT sum(returns) FROM daily_returns").fetchone()[0]
    sandbox.advance(2 * 86400)  # returns arrive and move on; the next sync writes both
    assert all(r.ok for r in sync_accounts(db, trigger="test"))
    stored, fresh = daily_rows_and_a_fresh_count(db)
    assert stored == fresh
    with db.reader() as con:
        assert con.execute("SELECT sum(returns) FROM daily_returns").fetchone()[0] > before
        shop_id, return_id = con.execute(
            "SELECT shop_id, return_id FROM returns WHERE status = ? AND kind = 'return' LIMIT 1",
            [domain.REQUESTED]).fetchone()
    workflow.change_status(db, shop_id, return_id, domain.PENDING, "ana")  # a manager's hand-made change
    stored, fresh = daily_rows_and_a_fresh_count(db)
    assert stored == fresh
    assert any(domain.PENDING in row for row in stored["daily_returns"])


def test_returns_without_a_created_time_are_counted_too(db):
    undated = sample.tiktok_return("U1", created=None, line_items=[sample.line_item("L1", seller_sku="TEE-M")])
    dated = sample.tiktok_return("D1", created=sample.EXAMPLE_TIME,
                                 line_items=[sample.line_item("L1", seller_sku="TEE-M")])
    sample.write_returns(db, "s", [undated, dated])
    stored, fresh = daily_rows_and_a_fresh_count(db)
    assert stored == fresh
    assert analytics.kpis(db, ReturnFilters()).returns == 2
    assert list(analytics.top_skus(db, ReturnFilters())["Returns"]) == [2]


def period(days_back: int, days: int) -> tuple[date, date]:
    end = utcnow().date() - timedelta(days=days_back)
    return end - timedelta(days=days - 1), end


def views(db) -> list[ReturnFilters]:
    with db.reader() as con:
        shops = [row[0] for row in con.execute("SELECT DISTINCT shop_id FROM returns ORDER BY 1").fetchall()]
        reasons = [row[0] for row in con.execute("SELECT reason_text FROM returns WHERE kind = 'return' "
                                                 "GROUP BY 1 ORDER BY count(*) DESC, 1").fetchall()]
        codes = [row[0] for row in con.execute("SELECT reason_code FROM returns GROUP BY 1 "
                                               "ORDER BY count(*) DESC, 1").fetchall()]
    start, end = period(0, 30)
    return [
        ReturnFilters(),
        ReturnFilters(created_from=start, created_to=end),
        ReturnFilters(shop_ids=(shops[0],), created_from=start, created_to=end),
        ReturnFilters(types=(domain.REFUND,)),
        ReturnFilters(statuses=(domain.REFUNDED, domain.REJECTED), created_from=period(20, 40)[0]),
        ReturnFilters(shop_ids=tuple(shops), types=(domain.RETURN_AND_REFUND, domain.RETURN),
                      created_to=period(10, 1)[1]),
        ReturnFilters(reasons=tuple(reasons[:2]), created_from=period(0, 60)[0]),
        ReturnFilters(reason_codes=tuple(codes[:3]), statuses=(domain.REFUNDED,)),
    ]


def every_chart(db, filters: ReturnFilters) -> dict[str, object]:
    currency = (analytics.currencies(db, filters) or [None])[0]
    money = Measure(currency) if currency else analytics.RETURNS
    kpis = analytics.kpis(db, filters)
    report = analytics.spikes(db, filters)
    return {
        "kpis": (kpis.returns, kpis.closed, kpis.median_close), "types": kpis.by_type, "money": kpis.money,
        "currencies": analytics.currencies(db, filters),
        "reasons": analytics.reason_frequency(db, filters),
        "reasons money": analytics.reason_frequency(db, filters, money),
        "groups": analytics.group_frequency(db, filters),
        "groups money": analytics.group_frequency(db, filters, money),
        "responsibility": analytics.responsibility_split(db, filters),
        "trend": analytics.weekly_trend(db, filters), "trend groups": analytics.weekly_trend(db, filters, by="group"),
        "trend money": analytics.weekly_trend(db, filters, measure=money),
        "top skus": analytics.top_skus(db, filters, currency=currency),
        "top skus money": analytics.top_skus(db, filters, currency=currency, by_money=currency is not None),
        "top products": analytics.top_products(db, filters, currency=currency),
        "matrix": analytics.reason_sku_matrix(db, filters),
        "matrix groups": analytics.reason_sku_matrix(db, filters, by="group"),
        "spikes": report.rows, "spike window": (report.as_of, report.window_start, report.baseline_start),
        # the grid's counts (returns and cancellations) and its reason list
        "grid count": grid.count_returns(db, filters), "grid statuses": grid.status_kind_counts(db, filters),
        "grid reasons": grid.reason_options(db, filters.shop_ids),
    }


def test_every_chart_and_grid_count_reads_the_same_from_the_daily_rows_as_from_the_returns(synced, monkeypatch):
    db = synced
    checked = 0
    for filters in views(db):
        assert rollups.covers(filters)
        daily = every_chart(db, filters)
        with monkeypatch.context() as patched:
            patched.setattr(analytics, "_daily", lambda *_: None)  # every query from the returns themselves
            patched.setattr(grid, "_counted", lambda _: ("returns", "count(*)"))
            direct = every_chart(db, filters)
        for name, value in daily.items():
            if isinstance(value, pd.DataFrame):
                pd.testing.assert_frame_equal(value, direct[name], check_dtype=False, obj=f"{name} for {filters}")
                checked += len(value)
            else:
                assert value == direct[name], (name, filters)
    assert checked > 1000  # the views are not empty


def test_only_the_filters_the_daily_rows_keep_are_answered_from_them():
    assert rollups.covers(ReturnFilters(shop_ids=("a",), types=("Refund",), statuses=("Refund",),
                                        created_from=date(2026, 1, 1), created_to=date(2026, 2, 1)))
    assert rollups.covers(ReturnFilters(reasons=("Other",), reason_codes=("x",)))
    for other in (ReturnFilters(search="tee"), ReturnFilters(skus=("TEE-M",)),
                  ReturnFilters(marketplace_statuses=("X",)), ReturnFilters(waiting=True), ReturnFilters(flagged=True),
                  ReturnFilters(updated_from=date(2026, 1, 1))):
        assert not rollups.covers(other)
