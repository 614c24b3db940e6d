"""Reason analytics: every aggregate checked against a small store with known answers.

The `store` fixture holds ten returns over two accounts and three weeks (listed in RETURNS);
the expected numbers in each test are worked out by hand from that list. The `spiky` fixture
is nine weeks of steady, noisy returns with one planted spike (SKU BLND-200-BLK, reason
"defective") in the last seven days.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from returns_core import reason_groups
from returns_core.filters import ReturnFilters, grid_query, week_filters
from returns_core.store import analytics
from returns_core.store.analytics import Measure
from returns_core.store.db import Database
from returns_core.store.returns import count_returns
from tests.analytics_fixtures import (
    AS_OF,
    BLND,
    DEF,
    GUARD,
    LATE,
    MIND,
    MUG,
    OTHER,
    RETURNS,
    SIZE,
    TEE,
    WINDOW,
    WRONG,
    A,
    B,
    insert,
    spiky_rows,
    t,
)


@pytest.fixture
def store(db):
    insert(db, RETURNS)
    return db


ALL = ReturnFilters()
USD, EUR = Measure("USD"), Measure("EUR")


def as_dict(frame, key, value):
    return dict(zip(frame[key], frame[value], strict=True))


# --- grouping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "text", "group", "responsibility"), [
    # TikTok's published buyer reasons (partner.tiktokshop.com/docv2/page/refund-reasons)
    ("ecom_order_delivered_refund_reason_defective", "Defective item", "Defective or damaged", "Seller"),
    ("ecom_order_delivered_refund_reason_damaged", "Damaged item or packaging", "Defective or damaged", "Seller"),
    ("buyer_refund_product_is_expired/spoiled", "Product is expired/spoiled", "Defective or damaged", "Seller"),
    ("ecom_order_delivered_refund_reason_wrong_product_1", "Wrong item was sent", "Wrong item", "Seller"),
    ("ecom_order_delivered_refund_reason_not_match_description", "Item doesn't match description",
     "Not as described", "Seller"),
    ("buyer_refund_suspected_counterfeit", "Suspected Counterfeit", "Not as described", "Seller"),
    ("buyer_refund_quality_or_style_not_as_expected", "Quality or style not as expected", "Not as described",
     "Unknown"),
    ("buyer_refund_item_is_too_big/long", "Item is too big/long", "Size or fit", "Buyer"),
    ("buyer_refund_ordered_incorrect_size", "Ordered incorrect size", "Size or fit", "Buyer"),
    ("ecom_order_delivered_refund_reason_missing_broken_parts", "Missing or broken parts", "Missing parts", "Seller"),
    ("ecom_order_delivered_refund_reason_missing_product", "Package received but missing item", "Missing parts",
     "Seller"),
    ("ecom_order_delivered_refund_reason_not_received", "Package wasn't received", "Logistics or late", "Logistics"),
    ("ecom_order_shipped_refund_reason_not_arrive_on_time", "Product wouldn't arrive on time", "Logistics or late",
     "Logistics"),
    ("ecom_order_delivered_refund_reason_missed_delivery_date_seller", "Missed estimated delivery date",
     "Logistics or late", "Logistics"),
    ("seller_shipped_refund_package_lost", "Package lost", "Logistics or late", "Logistics"),
    ("ecom_order_shipped_refund_wrong_delivery_info", "Wrong delivery information", "Logistics or late", "Buyer"),
    ("ecom_order_delivered_refund_reason_no_need_uk", "No longer needed", "Changed mind", "Buyer"),
    ("buyer_refund_does_not_suit_me", "Does not suit me", "Changed mind", "Buyer"),
    ("ecom_order_to_ship_canceled_reason_created_by_mistakes", "Order created by mistake", "Changed mind", "Buyer"),
    ("ecom_order_delivered_refund_reason_other_uk", "Other", "Other", "Unknown"),
    ("ecom_order_delivered_refund_reason_general_adjustment", "General adjustment.", "Other", "Unknown"),
    (None, None, "Other", "Unknown"),
    # only a localized text, no code
    (None, "Arrived late", "Logistics or late", "Logistics"),
    (None, "Doesn't fit", "Size or fit", "Buyer"),
    # the sandbox's own catalogue (returns_core/tiktok/sandbox/catalogue.py)
    ("ecom_order_delivered_refund_and_return_reason_defective_product", "Product is defective or doesn't work",
     "Defective or damaged", "Seller"),
    ("ecom_order_delivered_refund_and_return_reason_size_not_fit", "Size doesn't fit", "Size or fit", "Buyer"),
    ("ecom_order_delivered_refund_reason_damaged_in_transit", "Package or item damaged in transit",
     "Defective or damaged", "Logistics"),
    ("ecom_order_to_ship_canceled_reason_long_shipping_time", "Shipping takes too long", "Logistics or late",
     "Logistics"),
    ("ecom_order_delivered_refund_reason_late_delivery", "Package arrived too late", "Logistics or late",
     "Logistics"),
    ("ecom_order_delivered_refund_reason_missing_product_seller", "Package is missing items", "Missing parts",
     "Seller"),
    ("ecom_order_to_ship_canceled_reason_better_price", "Found a better price elsewhere", "Changed mind", "Buyer"),
])
def test_tiktok_reason_catalogue_is_grouped(db, code, text, group, responsibility):
    assert reason_groups.classify(code, text) == (group, responsibility)
    key = reason_groups.normalize_sql("?::VARCHAR", "?::VARCHAR")
    sql = f"SELECT {reason_groups.group_sql('k')}, {reason_groups.responsibility_sql('k')} FROM (SELECT {key} AS k)"
    with db.reader() as con:
        assert con.execute(sql, [code, text]).fetchone() == (group, responsibility)


def test_phrases_match_whole_words_only():
    assert reason_groups.classify(None, "Benefits unclear") == ("Other", "Unknown")
    assert reason_groups.classify(None, "Chocolate melted") == ("Other", "Unknown")


def test_every_group_and_responsibility_is_reachable():
    assert {r.group for r in reason_groups.REASON_RULES} | {reason_groups.OTHER} == set(reason_groups.GROUPS)
    assert {r.responsibility for r in reason_groups.REASON_RULES} == set(reason_groups.RESPONSIBILITIES)


# --- KPIs -------------------------------------------------------------------------------------


def test_kpis_count_money_per_currency_types_and_median_close(store):
    k = analytics.kpis(store, ALL)
    assert k.returns == 10
    assert k.closed == 6  # R1, R2, R3, R5, R6, R9
    # closing times 6, 24, 24, 30, 36, 48 hours: the median is halfway between 24 and 30
    assert k.median_close == timedelta(hours=27)
    assert as_dict(k.by_type, "Type", "Returns") == {"Refund": 5, "Return & Refund": 4, "Return": 1}
    assert as_dict(k.by_type, "Type", "Share") == {"Refund": 0.5, "Return & Refund": 0.4, "Return": 0.1}
    money = k.money.set_index("Currency")
    assert list(money.index) == ["USD", "EUR"]
    assert money.loc["USD", "Returns"] == 6 and money.loc["EUR", "Returns"] == 3
    assert money.loc["USD", "Requested"] == Decimal("43.75")
    assert money.loc["USD", "Completed"] == Decimal("30.63")
    assert money.loc["EUR", "Requested"] == Decimal("25.00")
    assert money.loc["EUR", "Completed"] == Decimal("9.99")
    assert all(isinstance(v, Decimal) for v in money["Requested"])


def test_kpis_follow_account_and_date_filters(store):
    k = analytics.kpis(store, ReturnFilters(shop_ids=(A,), created_from=date(2026, 11, 9)))
    assert k.returns == 4  # R4, R5, R9, R10
    assert k.closed == 2 and k.median_close == timedelta(hours=27)  # R5 30 h, R9 24 h
    assert as_dict(k.money, "Currency", "Requested") == {"USD": Decimal("8.40")}


def test_kpis_of_an_empty_view(store):
    k = analytics.kpis(store, ReturnFilters(shop_ids=("nobody",)))
    assert (k.returns, k.closed, k.median_close) == (0, 0, None)
    assert k.by_type.empty and k.money.empty


# --- reasons, groups, responsibility ------------------------------------------------------------


def test_reason_frequency_is_a_pareto_by_tiktok_text(store):
    f = analytics.reason_frequency(store, ALL)
    assert list(f["Reason"]) == [DEF[1], SIZE[1], analytics.NO_REASON, MIND[1], OTHER[1], LATE[1], WRONG[1]]
    assert list(f["Returns"]) == [3, 2, 1, 1, 1, 1, 1]
    assert list(f["Share"]) == pytest.approx([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert list(f["Cumulative Share"]) == pytest.approx([0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert list(f["Group"][:2]) == ["Defective or damaged", "Size or fit"]


def test_reason_frequency_by_refund_money_stays_in_one_currency(store):
    f = analytics.reason_frequency(store, ALL, USD)
    assert as_dict(f, "Reason", "Refund") == {
        DEF[1]: Decimal("30.63"), SIZE[1]: Decimal("12.12"), analytics.NO_REASON: Decimal("1.00")}
    assert list(f["Share"]) == pytest.approx([30.63 / 43.75, 12.12 / 43.75, 1.00 / 43.75])
    assert as_dict(analytics.reason_frequency(store, ALL, EUR), "Reason", "Refund") == {
        WRONG[1]: Decimal("15.00"), LATE[1]: Decimal("9.99"), OTHER[1]: Decimal("0.01")}


def test_group_frequency_and_the_reasons_in_each_group(store):
    g = analytics.group_frequency(store, ALL)
    assert list(g["Group"]) == ["Defective or damaged", "Other", "Size or fit", "Changed mind",
                                "Logistics or late", "Wrong item"]
    assert list(g["Returns"]) == [3, 2, 2, 1, 1, 1]
    assert list(g["Cumulative Share"]) == pytest.approx([0.3, 0.5, 0.7, 0.8, 0.9, 1.0])
    assert as_dict(g, "Group", "Reasons")["Other"] == [OTHER[1]]  # the NULL reason has no text to list


def test_responsibility_split(store):
    r = analytics.responsibility_split(store, ALL)
    assert list(r["Responsibility"]) == ["Seller", "Buyer", "Logistics", "Unknown"]
    assert list(r["Returns"]) == [4, 3, 1, 2]
    assert list(r["Share"]) == pytest.approx([0.4, 0.3, 0.1, 0.2])
    assert as_dict(r, "Responsibility", "Reasons")["Seller"] == [DEF[1], WRONG[1]]
    money = analytics.responsibility_split(store, ALL, EUR)
    assert as_dict(money, "Responsibility", "Refund") == {
        "Seller": Decimal("15.00"), "Logistics": Decimal("9.99"), "Unknown": Decimal("0.01")}


# --- trend ------------------------------------------------------------------------------------


def test_weekly_trend_by_created_date(store):
    w = analytics.weekly_trend(store, ALL, by="group")
    totals = w.groupby("Week")["Returns"].sum().to_dict()
    assert totals == {date(2026, 11, 2): 3, date(2026, 11, 9): 3, date(2026, 11, 16): 4}
    rows = {(r.Week, r.Group): r.Returns for r in w.itertuples()}
    assert rows[(date(2026, 11, 2), "Defective or damaged")] == 2
    assert rows[(date(2026, 11, 16), "Defective or damaged")] == 1  # R9, Wednesday 23:59:59


def test_weekly_trend_by_updated_date(store):
    w = analytics.weekly_trend(store, ALL, by="reason", basis="updated")
    totals = w.groupby("Week")["Returns"].sum().to_dict()
    assert totals == {date(2026, 11, 2): 3, date(2026, 11, 9): 3, date(2026, 11, 16): 3, date(2026, 11, 23): 1}


def test_weekly_trend_of_refund_money(store):
    w = analytics.weekly_trend(store, ALL, by="reason", measure=USD)
    assert {(r.Week, r.Reason): r.Refund for r in w.itertuples()} == {
        (date(2026, 11, 2), DEF[1]): Decimal("30.30"), (date(2026, 11, 2), SIZE[1]): Decimal("5.05"),
        (date(2026, 11, 9), SIZE[1]): Decimal("7.07"),
        (date(2026, 11, 16), DEF[1]): Decimal("0.33"), (date(2026, 11, 16), analytics.NO_REASON): Decimal("1.00")}


def test_week_filters_stay_inside_the_date_range():
    f = ReturnFilters(created_from=date(2026, 11, 4))
    assert week_filters(f, date(2026, 11, 2)) == f.with_(created_to=date(2026, 11, 8))
    u = week_filters(ALL, date(2026, 11, 9), "updated")
    assert (u.updated_from, u.updated_to) == (date(2026, 11, 9), date(2026, 11, 15))


# --- products ---------------------------------------------------------------------------------


def test_top_skus_by_returns_and_money_lost(store):
    s = analytics.top_skus(store, ALL, currency="USD")
    assert list(s["SKU"]) == [BLND, TEE, MUG]
    assert list(s["Returns"]) == [5, 3, 2]  # R9's two BLND lines are one return
    assert list(s["Product"]) == ["Blender 200", "Tee", "Mug"]
    assert list(s["Refund requested"]) == [Decimal("30.63"), Decimal("12.12"), Decimal(0)]
    assert list(s["Refund completed"]) == [Decimal("30.63"), Decimal(0), Decimal(0)]
    assert list(s["Top reason"]) == [DEF[1], SIZE[1], MIND[1]]  # MUG: a 1-1 tie, broken by name
    assert list(s["Top reason share"]) == pytest.approx([3 / 5, 2 / 3, 1 / 2])
    e = analytics.top_skus(store, ALL, currency="EUR", by_money=True)
    assert list(e["SKU"]) == [MUG, BLND, TEE]
    assert list(e["Refund requested"]) == [Decimal("9.99"), Decimal("7.51"), Decimal("7.50")]
    assert list(e["Refund completed"]) == [Decimal("9.99"), Decimal(0), Decimal(0)]


def test_top_products_carry_their_skus(store):
    p = analytics.top_products(store, ALL, currency="USD", limit=2)
    assert list(p["Product"]) == ["Blender 200", "Tee"]
    assert list(p["SKUs"]) == [[BLND], [TEE]]
    assert list(p["Returns"]) == [5, 3]


def test_reason_by_sku_matrix(store):
    m = analytics.reason_sku_matrix(store, ALL)
    assert {(r.SKU, r.Reason): r.Returns for r in m.itertuples()} == {
        (BLND, DEF[1]): 3, (BLND, WRONG[1]): 1, (BLND, OTHER[1]): 1,
        (TEE, SIZE[1]): 2, (TEE, WRONG[1]): 1, (MUG, MIND[1]): 1, (MUG, LATE[1]): 1}
    assert list(dict.fromkeys(m["SKU"])) == [BLND, TEE, MUG]
    top1 = analytics.reason_sku_matrix(store, ALL, by="group", limit_skus=1)
    assert set(top1["SKU"]) == {BLND}


def test_reason_breakdown_of_one_sku(store):
    f = analytics.reason_frequency(store, ReturnFilters(skus=(TEE,)))
    assert as_dict(f, "Reason", "Returns") == {SIZE[1]: 2, WRONG[1]: 1}


# --- drill-down -------------------------------------------------------------------------------


def test_every_chart_value_is_the_count_of_the_grid_rows_it_opens(store):
    for row in analytics.reason_frequency(store, ALL).itertuples():
        if row.Reason != analytics.NO_REASON:
            assert count_returns(store, ALL.with_(reasons=(row.Reason,))) == row.Returns
    for row in analytics.group_frequency(store, ALL).itertuples():
        if row.Group != "Other":  # Other also holds R10, which has no reason text to filter on
            assert count_returns(store, ALL.with_(reasons=tuple(row.Reasons))) == row.Returns
    for row in analytics.top_skus(store, ALL).itertuples():
        assert count_returns(store, ALL.with_(skus=(row.SKU,))) == row.Returns
    for row in analytics.reason_sku_matrix(store, ALL).itertuples():
        assert count_returns(store, ALL.with_(skus=(row.SKU,), reasons=(row.Reason,))) == row.Returns
    for row in analytics.weekly_trend(store, ALL, by="reason").itertuples():
        if row.Reason != analytics.NO_REASON:
            week = week_filters(ALL, row.Week).with_(reasons=(row.Reason,))
            assert count_returns(store, week) == row.Returns


def test_grid_query_uses_the_grids_url_keys():
    f = ReturnFilters(shop_ids=(A,), types=("Refund",), statuses=("Refund", "Accepted"), reasons=(DEF[1],),
                      skus=(BLND,), created_from=date(2026, 11, 2), created_to=date(2026, 11, 8))
    assert grid_query(f) == {
        "type": ["Refund"], "status": ["Refund", "Accepted"], "reason": [DEF[1]], "sku": BLND,
        "created": ["2026-11-02", "2026-11-08"]}


def test_grid_query_refuses_what_the_grid_url_cannot_say():
    assert grid_query(ReturnFilters(updated_from=date(2026, 11, 2))) is None
    assert grid_query(ReturnFilters(shop_ids=(A, B))) is None  # the Account View holds one or all
    assert grid_query(ReturnFilters(skus=tuple(f"S{i}" for i in range(60)))) is None


# --- spikes -----------------------------------------------------------------------------------

@pytest.fixture
def spiky(db):
    insert(db, spiky_rows())
    return db


def test_spike_detection_finds_the_planted_spike_and_nothing_else(spiky):
    report = analytics.spikes(spiky, ALL)
    assert (report.as_of, report.window_start) == (AS_OF, WINDOW)
    assert report.baseline_start == GUARD - timedelta(weeks=8) and report.baseline_weeks == 8
    assert report.baseline_end == GUARD - timedelta(days=1)
    found = report.spikes
    assert [(r.Account, r.Level, r.SKU, r.Reason) for r in found.itertuples()] == [(A, "SKU × Reason", BLND, DEF[1])]
    spike = found.iloc[0]
    assert (spike["Recent"], spike["Baseline"], spike["Weekly Baseline"], spike["Ratio"]) == (10, 16, 2.0, 5.0)


def test_spikes_are_counted_per_account(spiky):
    # Beta sells the same SKU with many steady "defective" returns: pooled, Alpha's spike would vanish
    steady = [(f"B{w}-{i}", B, "Refund", "Refund", DEF,
               datetime.combine(WINDOW - timedelta(days=7 * w), datetime.min.time()) + timedelta(hours=i),
               datetime.combine(WINDOW, datetime.min.time()), "USD", "1", [(BLND, "1")])
              for w in range(8) for i in range(10)]  # 10 in the window (w=0), 70 over the baseline weeks
    insert(spiky, steady)
    found = analytics.spikes(spiky, ALL).spikes
    assert [(r.Account, r.SKU, r.Reason) for r in found.itertuples()] == [(A, BLND, DEF[1])]
    assert analytics.spikes(spiky, ReturnFilters(shop_ids=(B,))).spikes.empty


def test_spike_rows_are_exactly_the_grid_rows_of_the_window(spiky):
    report = analytics.spikes(spiky, ALL)
    for row in report.rows.itertuples():
        narrowed = report.window_filters(ALL, row.Account, sku=row.SKU, reason=row.Reason)
        assert count_returns(spiky, narrowed) == row.Recent, row


def test_near_misses_are_not_spikes(spiky):
    rows = {(r.Level, r.SKU, r.Reason): r for r in analytics.spikes(spiky, ALL).rows.itertuples()}
    assert rows[("SKU", BLND, None)].Ratio == pytest.approx(14 / 6)
    assert not rows[("SKU", BLND, None)].Spike
    assert not rows[("Reason", None, DEF[1])].Spike
    assert rows[("SKU × Reason", TEE, MIND[1])].Ratio == 4.0 and not rows[("SKU × Reason", TEE, MIND[1])].Spike
    chance = rows[("SKU × Reason", MUG, WRONG[1])]
    assert (chance.Recent, chance.Ratio) == (7, 3.5) and not chance.Spike
    assert chance.Chance == pytest.approx(0.00453, abs=1e-5)  # Poisson P(X >= 7 | 2 a week)
    assert rows[("SKU × Reason", BLND, DEF[1])].Chance < 1e-4
    assert math.isnan(rows[("SKU × Reason", "LAMP-9", MIND[1])].Ratio)  # no baseline at all: "new"


def test_spikes_ignore_the_period_start_and_follow_its_end(spiky):
    same = analytics.spikes(spiky, ReturnFilters(created_from=AS_OF - timedelta(days=2)))
    assert [(r.SKU, r.Reason) for r in same.spikes.itertuples()] == [(BLND, DEF[1])]
    earlier = analytics.spikes(spiky, ReturnFilters(created_to=AS_OF - timedelta(days=14)))
    assert earlier.as_of < AS_OF - timedelta(days=13) and earlier.spikes.empty


def test_short_history_shortens_the_baseline(db):
    insert(db, [(f"H{i}", A, "Refund", "Refund", DEF, t("2026-03-01 10:00") + timedelta(days=i), t("2026-03-25"),
                 "USD", "1", [(BLND, "1")]) for i in range(21)])
    report = analytics.spikes(db, ALL)
    assert report.baseline_weeks == 1  # 21 days: 7 recent, 7 left out, 7 of baseline
    assert report.spikes.empty  # 7 vs 7 a week


def test_without_a_baseline_week_nothing_is_a_spike(db):
    insert(db, [(f"H{i}", A, "Refund", "Refund", DEF, t("2026-03-08 10:00") + timedelta(hours=i), t("2026-03-25"),
                 "USD", "1", [(BLND, "1")]) for i in range(12)] + [
        ("H-old", A, "Refund", "Refund", DEF, t("2026-03-01 10:00"), t("2026-03-25"), "USD", "1", [(BLND, "1")])])
    report = analytics.spikes(db, ALL)
    assert report.baseline_weeks == 0 and report.spikes.empty


def test_no_returns_no_spikes(db):
    report = analytics.spikes(db, ALL)
    assert report.as_of is None and report.spikes.empty


# --- the sandbox's planted patterns -----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """The embedded demo shop's world (seed 7, one shop, 2,000 returns), synced once into a store."""
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.demo import DEMO_RETURNS, DEMO_SEED
    from returns_core.sync import sync_accounts
    from returns_core.tiktok.client import TokenSet
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox

    db = Database(tmp_path_factory.mktemp("demo") / "returns.duckdb", key=Fernet.generate_key().decode())
    sandbox = Sandbox(seed=DEMO_SEED, shops=1, returns=DEMO_RETURNS)
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    accounts = add_accounts_with_tokens(db, "Sandbox", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                        tokens.refresh_token, api_base="https://sandbox.invalid",
                                        auth_base="https://sandbox.invalid", is_sandbox=True,
                                        transport=sandbox.transport(), tokens=tokens)
    results = sync_accounts(db, accounts, transport=sandbox.transport())
    assert all(r.ok for r in results), results
    return db, sandbox


@pytest.mark.slow
def test_the_sandbox_planted_spike_is_flagged(demo_store):
    from returns_core.tiktok import sandbox as planted

    db, sandbox = demo_store
    shop = sandbox.shops[planted.PLANTED_SHOP_INDEX]["id"]
    report = analytics.spikes(db, ALL)
    pairs = [(r.Account, r.SKU, r.Reason) for r in report.spikes.itertuples() if r.Level == "SKU × Reason"]
    assert pairs[0] == (shop, planted.PLANTED_SPIKE_SKU, planted.PLANTED_SPIKE_REASON_TEXT)
    row = report.spikes[report.spikes["Level"] == "SKU × Reason"].iloc[0]
    narrowed = report.window_filters(ALL, shop, sku=row["SKU"], reason=row["Reason"])
    assert count_returns(db, narrowed) == row["Recent"]


@pytest.mark.slow
def test_the_sandbox_size_sku_leads_with_size(demo_store):
    from returns_core.tiktok import sandbox as planted

    db, _ = demo_store
    skus = analytics.top_skus(db, ALL, limit=50).set_index("SKU")
    assert skus.loc[planted.PLANTED_SIZE_SKU, "Top reason"] == planted.PLANTED_SIZE_REASON_TEXT
    groups = analytics.group_frequency(db, ReturnFilters(skus=(planted.PLANTED_SIZE_SKU,)))
    assert groups.iloc[0]["Group"] == "Size or fit"
