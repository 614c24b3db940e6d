"""Return rate = units returned ÷ units sold (issue 13, part 2), checked by hand on small stores.

The `store` holds the ten hand-counted returns of analytics_fixtures.RETURNS; units sold are written
for account A only, on 2026-11-01..15: BLND 4 a day (60), TEE 1 a day (15), MUG 2 a day (30). Account B
has returns but no units sold. Every expected figure below is worked out from those two lists.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from returns_core.filters import ReturnFilters
from returns_core.store import analytics
from returns_core.store.analytics import RateRule, SpikeRule
from returns_core.store.sales import SalesFetch, save_fetch
from returns_core.tiktok.client import ProductSales, SkuSales
from tests.analytics_fixtures import BLND, DEF, MUG, RETURNS, SIZE, TEE, A, B, insert

PRODUCT_ID = {BLND: "P-BLND", TEE: "P-TEE", MUG: "P-MUG"}
PRICE = {BLND: Decimal("79.99"), TEE: Decimal("16.99"), MUG: Decimal("26.99")}


def sales_rows(db, shop: str, first: date, last: date, per_day) -> None:
    """Units sold as a sales step stores them: per_day(sku, day) units of each SKU on each day."""
    skus: dict[date, list[SkuSales]] = {}
    products: dict[str, list[ProductSales]] = {}
    day = first
    while day <= last:
        for sku in PRODUCT_ID:
            units = per_day(sku, day)
            skus.setdefault(day, []).append(SkuSales("ID-" + sku, PRODUCT_ID[sku], units, units, PRICE[sku] * units,
                                                     "USD"))
            products.setdefault(PRODUCT_ID[sku], []).append(
                ProductSales(day, day + timedelta(days=1), units, units, PRICE[sku] * units, "USD"))
        day += timedelta(days=1)
    save_fetch(db, shop, SalesFetch(first, last, skus, products))


@pytest.fixture
def store(db):
    insert(db, RETURNS)
    sales_rows(db, A, date(2026, 11, 1), date(2026, 11, 15), lambda sku, day: {BLND: 4, TEE: 1, MUG: 2}[sku])
    return db


def table(frame, key: str) -> dict:
    return {row[key]: row for row in frame.to_dict("records")}


def test_rate_per_sku_counts_returned_units_on_days_with_sales_only(store):
    rates = table(analytics.return_rates(store, ReturnFilters(), "sku"), "SKU")
    # BLND: R1, R2 in the covered days (R9's two units on 11-18 are after them; R7, R8 are B's) of 60 sold
    assert (rates[BLND]["Returns"], rates[BLND]["Units returned"], rates[BLND]["Units sold"]) == (2, 2, 60)
    assert rates[BLND]["Return rate"] == pytest.approx(2 / 60)
    # Wilson 95 % by hand: (2 + 1.9208 -+ 1.96 * sqrt(2 * 58 / 60 + 0.9604)) / 63.8416
    assert rates[BLND]["Low"] == pytest.approx(0.00919, abs=5e-5)
    assert rates[BLND]["High"] == pytest.approx(0.11364, abs=5e-5)
    assert rates[BLND]["Enough sales"]
    # TEE: R3, R4 of 15 sold: 13 %, but under 30 units sold it is marked, and ranked after the others
    assert (rates[TEE]["Units returned"], rates[TEE]["Units sold"]) == (2, 15)
    assert rates[TEE]["Return rate"] == pytest.approx(2 / 15) and not rates[TEE]["Enough sales"]
    assert (rates[MUG]["Units returned"], rates[MUG]["Units sold"]) == (1, 30)
    assert list(table(analytics.return_rates(store, ReturnFilters(), "sku"), "SKU")) == [BLND, MUG, TEE]


def test_rate_per_product_divides_by_tiktoks_product_figures(store):
    rates = table(analytics.return_rates(store, ReturnFilters(), "product"), "Product")
    assert {name: (r["Units returned"], r["Units sold"]) for name, r in rates.items()} == {
        "Blender 200": (2, 60), "Tee": (2, 15), "Mug": (1, 30)}
    assert rates["Tee"]["SKUs"] == [TEE]


def test_rate_per_reason_divides_by_every_unit_sold_in_view(store):
    rates = table(analytics.return_rates(store, ReturnFilters(), "reason"), "Reason")
    # 105 units sold in A's covered days; B's reasons have no units sold to divide by, so they are absent
    assert {reason: (r["Units returned"], r["Units sold"]) for reason, r in rates.items()} == {
        DEF[1]: (2, 105), SIZE[1]: (2, 105), "No longer needed": (1, 105)}
    assert rates[DEF[1]]["Return rate"] == pytest.approx(2 / 105)


def test_the_period_and_type_filters_narrow_returns_and_sales_alike(store):
    period = ReturnFilters(created_from=date(2026, 11, 5), created_to=date(2026, 11, 30))
    rates = table(analytics.return_rates(store, period, "sku"), "SKU")
    # 11-05..11-15 are covered: BLND 44 sold and none returned (R1, R2 were before), TEE 2 of 11, MUG 1 of 22
    assert {sku: (r["Units returned"], r["Units sold"]) for sku, r in rates.items()} == {
        BLND: (0, 44), TEE: (2, 11), MUG: (1, 22)}
    assert rates[BLND]["Return rate"] == 0 and rates[BLND]["Low"] == 0
    refunds = table(analytics.return_rates(store, ReturnFilters(types=("Refund",)), "sku"), "SKU")
    # Refund type: R1 (BLND) and R4 (TEE); sales are the same units sold
    assert {sku: (r["Units returned"], r["Units sold"]) for sku, r in refunds.items()} == {
        BLND: (1, 60), TEE: (1, 15), MUG: (0, 30)}


def test_chosen_skus_count_only_their_own_units_and_sales(store):
    # a return of a blender and a mug: with only the blender chosen, the mug is not a blender return
    insert(store, [("R11", A, "Refund", "Refund", DEF, datetime(2026, 11, 6, 9), datetime(2026, 11, 7, 9), "USD",
                    "30.00", [(BLND, "20.00"), (MUG, "10.00")])])
    rates = table(analytics.return_rates(store, ReturnFilters(skus=(BLND,)), "sku"), "SKU")
    assert {sku: (r["Units returned"], r["Units sold"]) for sku, r in rates.items()} == {BLND: (3, 60)}
    reasons = table(analytics.return_rates(store, ReturnFilters(skus=(BLND,)), "reason"), "Reason")
    assert {reason: (r["Units returned"], r["Units sold"]) for reason, r in reasons.items()} == {DEF[1]: (3, 60)}


def test_one_account_in_view_and_the_coverage_says_which_days_and_shops_have_sales(store):
    assert analytics.return_rates(store, ReturnFilters(shop_ids=(B,)), "sku").empty
    coverage = analytics.rate_coverage(store, ReturnFilters())
    assert (coverage.first_day, coverage.last_day, coverage.shops, coverage.shops_without) == (
        date(2026, 11, 1), date(2026, 11, 15), 1, (B,))
    assert analytics.rate_coverage(store, ReturnFilters(shop_ids=(A,), created_to=date(2026, 11, 12))).last_day == \
        date(2026, 11, 12)
    alone = analytics.rate_coverage(store, ReturnFilters(shop_ids=(B,)))
    assert (alone.first_day, alone.shops, alone.shops_without) == (None, 0, (B,))
    narrow = analytics.rate_coverage(store, ReturnFilters(created_from=date(2026, 11, 10)))
    assert (narrow.first_day, narrow.last_day) == (date(2026, 11, 10), date(2026, 11, 15))
    assert analytics.rate_coverage(store, ReturnFilters(created_from=date(2026, 11, 16))).first_day is None


def test_a_rate_with_no_units_sold_has_no_headline(store):
    # units sold synced, but a SKU that sold nothing in the period: no rate, no interval
    sales_rows(store, A, date(2026, 11, 1), date(2026, 11, 15), lambda sku, day: 0 if sku == TEE else 4)
    rates = table(analytics.return_rates(store, ReturnFilters(), "sku"), "SKU")
    assert rates[TEE]["Units sold"] == 0 and pd_isna(rates[TEE]["Return rate"]) and pd_isna(rates[TEE]["Low"])
    assert not rates[TEE]["Enough sales"]
    assert RateRule().min_units == 30 and "too few sales" in RateRule().describe()


def pd_isna(value) -> bool:
    return bool(pd.isna(value))


# --- spikes judged on the rate ---------------------------------------------------------------

AS_OF = date(2026, 3, 18)
WINDOW = AS_OF - timedelta(days=6)
GUARD = WINDOW - timedelta(weeks=1)
BASELINE = GUARD - timedelta(weeks=8)


def spiky_store(db):
    """Eight baseline weeks, a guard week, and the last seven days, in account A:
    BLND sells 10 a day throughout; 2 defective returns a week, then 10 in the last 7 days.
    TEE sells 10 a day, then 40 a day in the last 7 days; 3 size returns a week, then 12."""
    rows, n = [], 0

    def add(sku, reason, day):
        nonlocal n
        n += 1
        created = datetime.combine(day, datetime.min.time()) + timedelta(hours=10)
        rows.append((f"S{n}", A, "Refund", "Refund", reason, created, created + timedelta(hours=1), "USD", "1.00",
                     [(sku, "1.00")]))

    for week in range(8):
        start = BASELINE + timedelta(weeks=week)
        for i in range(2):
            add(BLND, DEF, start + timedelta(days=i))
        for i in range(3):
            add(TEE, SIZE, start + timedelta(days=2 + i))
    for i in range(10):
        add(BLND, DEF, WINDOW + timedelta(days=i % 7))
    for i in range(12):
        add(TEE, SIZE, WINDOW + timedelta(days=i % 7))
    insert(db, rows)
    sales_rows(db, A, BASELINE, AS_OF, lambda sku, day: {BLND: 10, TEE: 40 if day >= WINDOW else 10, MUG: 0}[sku])
    return db


def test_a_sku_that_sells_four_times_as_much_is_a_count_spike_but_not_a_rate_spike(db):
    store = spiky_store(db)
    today = AS_OF + timedelta(days=1)
    counts = analytics.spikes(store, ReturnFilters(), today=today)
    flagged = {(r["Level"], r["SKU"]) for r in counts.spikes.to_dict("records")}
    assert ("SKU", TEE) in flagged and ("SKU", BLND) in flagged  # 12 vs 3 a week; 10 vs 2 a week

    report = analytics.rate_spikes(store, ReturnFilters(), today=today)
    assert (report.as_of, report.window_start, report.baseline_start, report.baseline_weeks) == (
        AS_OF, WINDOW, BASELINE, 8)
    rows = {(r["Level"], r["SKU"], r["Reason"] if isinstance(r["Reason"], str) else None): r
            for r in report.rows.to_dict("records")}
    blnd = rows[("SKU", BLND, None)]
    # baseline 16 of 560 sold; recent 70 sold, so 2 expected; 10 returned is 5x the rate
    assert (blnd["Recent"], blnd["Recent sold"], blnd["Baseline"], blnd["Baseline sold"]) == (10, 70, 16, 560)
    assert blnd["Expected"] == pytest.approx(2.0) and blnd["Ratio"] == pytest.approx(5.0) and blnd["Spike"]
    tee = rows[("SKU", TEE, None)]
    # baseline 24 of 560; recent 280 sold, so 12 expected: 12 returned is its usual rate
    assert (tee["Recent"], tee["Recent sold"], tee["Baseline"], tee["Baseline sold"]) == (12, 280, 24, 560)
    assert tee["Expected"] == pytest.approx(12.0) and tee["Ratio"] == pytest.approx(1.0) and not tee["Spike"]
    defective = rows[("Reason", None, DEF[1])]
    # a reason divides by all the account's units: 10 of 350 against 16 of 1,120 (5 expected): 2x, no spike
    assert (defective["Recent sold"], defective["Baseline sold"]) == (350, 1120)
    assert defective["Expected"] == pytest.approx(5.0) and not defective["Spike"]
    assert {(r["Level"], r["SKU"]) for r in report.spikes.to_dict("records")} == {
        ("SKU", BLND), ("SKU × Reason", BLND)}
    assert "twice as much" in SpikeRule().describe_rate()


def test_no_rate_spikes_without_units_sold(db):
    insert(db, RETURNS)
    report = analytics.rate_spikes(db, ReturnFilters(), today=date(2026, 11, 25))
    assert report.as_of is None and report.rows.empty
