"""The sandbox's Analytics API (units sold) against TikTok's OAS, and the client that reads it.

The OAS is spec/analytics/ (an extract of @tts-open-toolkit/cli 0.1.7); every object schema is closed,
so a field TikTok does not declare fails. Also: the figures are the sandbox's own ground truth; a day's
units sold hold the returned units of its orders (even those whose return is still to come) and come
back at each SKU's rate; the planted defect raises its SKU's rate, not its sales; asking changes no return.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from returns_core.tiktok import errors
from returns_core.tiktok.client import SKU_PERFORMANCE_PATH, TikTokClient
from returns_core.tiktok.sandbox import PLANTED_SPIKE_SKU, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox
from returns_core.tiktok.sandbox.catalogue import PLANTED_SPIKE_START
from returns_core.tiktok.sandbox.sales import MAX_ORDER_TO_REQUEST_DAYS, DaySales, local_date
from returns_core.tiktok.signing import sign
from tests.tiktok_spec import SERVER, analytics_contract, conforms

NOW = 1_790_000_000 + 13 * 3600  # 2026-09-21 13:00 UTC
PRODUCT = "/analytics/202509/shop_products/{}/performance"


@pytest.fixture(scope="module")
def contract():
    return analytics_contract()


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(seed=5, shops=1, returns=1500, wall_clock=lambda: NOW)


def call(sandbox: Sandbox, path: str, params: dict) -> httpx.Response:
    http = httpx.Client(transport=sandbox.transport(), base_url=SERVER)
    query = {"app_key": SANDBOX_APP_KEY, "timestamp": str(NOW), "shop_cipher": sandbox.shops[0]["cipher"], **params}
    query["sign"] = sign(path, query, b"", SANDBOX_APP_SECRET)
    token = sandbox.issue_tokens()["access_token"]
    return http.get(path, params=query, headers={"x-tts-access-token": token, "content-type": "application/json"})


def client_for(sandbox: Sandbox) -> TikTokClient:
    tokens = sandbox.issue_tokens()
    return TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens["access_token"], tokens["refresh_token"],
                        sandbox.shops[0]["cipher"], api_base=SERVER, transport=sandbox.transport(),
                        clock=lambda: NOW)


def test_sku_pages_conform_to_tiktoks_oas_and_page_through_every_sku(contract, sandbox):
    seen, token = [], ""
    while True:
        params = {"start_date_ge": "2026-09-01", "end_date_lt": "2026-09-08", "page_size": "20"}
        if token:
            params["page_token"] = token
        body = conforms(contract, "GET", SKU_PERFORMANCE_PATH, call(sandbox, SKU_PERFORMANCE_PATH, params))
        assert body["code"] == 0
        data = body["data"]
        seen += [row["id"] for row in data["skus"]]
        token = data["next_page_token"]
        if not token:
            break
    shop = sandbox.catalogue.shops[0]
    assert sorted(seen) == sorted(int(s.sku_id) for s in shop.skus) and data["total_count"] == len(shop.skus)
    assert data["latest_available_date"] == "2026-09-20"  # yesterday in the shop's zone (US, UTC-5)


def test_product_days_conform_and_add_up_to_their_skus(contract, sandbox):
    shop = sandbox.catalogue.shops[0]
    product = shop.skus[0].product_id
    path = PRODUCT.format(product)
    body = conforms(contract, "GET", path, call(sandbox, path, {"start_date_ge": "2026-09-10",
                                                                "end_date_lt": "2026-09-25", "granularity": "1D"}))
    intervals = body["data"]["performance"]["intervals"]
    # days after the latest available one (2026-09-20) have no figures yet
    assert [i["start_date"] for i in intervals] == [(date(2026, 9, 10) + timedelta(days=n)).isoformat()
                                                    for n in range(11)]
    for interval in intervals:
        day = date.fromisoformat(interval["start_date"])
        truth = sandbox.units_sold_for(shop.id, day)
        assert interval["sales"]["items_sold"] == sum(truth[s.sku_id][1] for s in shop.skus if s.product_id == product)
    whole = conforms(contract, "GET", path, call(sandbox, path, {"start_date_ge": "2026-09-10",
                                                                 "end_date_lt": "2026-09-25"}))
    [one] = whole["data"]["performance"]["intervals"]
    assert one["sales"]["items_sold"] == sum(i["sales"]["items_sold"] for i in intervals)


@pytest.mark.parametrize("params, message", [
    ({"end_date_lt": "2026-09-08"}, "start_date_ge"),
    ({"start_date_ge": "2026/09/01", "end_date_lt": "2026-09-08"}, "YYYY-MM-DD"),
    ({"start_date_ge": "2026-09-08", "end_date_lt": "2026-09-08"}, "after"),
    ({"start_date_ge": "2026-09-01", "end_date_lt": "2026-09-08", "page_size": "101"}, "page_size"),
    ({"start_date_ge": "2026-09-01", "end_date_lt": "2026-09-08", "page_token": "bm9wZQ=="}, "page_token"),
    ({"start_date_ge": "2026-09-01", "end_date_lt": "2026-09-08", "sort_field": "returns"}, "sort_field"),
])
def test_bad_sku_requests_get_tiktoks_error_envelope(contract, sandbox, params, message):
    response = call(sandbox, SKU_PERFORMANCE_PATH, params)
    body = conforms(contract, "GET", SKU_PERFORMANCE_PATH, response)
    assert response.status_code == 400 and body["code"] == errors.INVALID_PARAMETER and message in body["message"]


def test_an_unsigned_or_foreign_product_request_is_refused(sandbox):
    response = call(sandbox, PRODUCT.format("1"), {"start_date_ge": "2026-09-01", "end_date_lt": "2026-09-02"})
    assert response.json()["code"] == errors.INVALID_PARAMETER and "does not exist" in response.json()["message"]
    http = httpx.Client(transport=sandbox.transport(), base_url=SERVER)
    unsigned = http.get(SKU_PERFORMANCE_PATH, params={"app_key": SANDBOX_APP_KEY, "timestamp": str(NOW),
                                                      "start_date_ge": "2026-09-01", "end_date_lt": "2026-09-02"})
    assert unsigned.status_code == 400 and unsigned.json()["code"] == errors.COMMON_PARAM_INVALID


def test_the_client_reads_ids_as_strings_money_as_decimal_and_the_latest_day(sandbox):
    shop = sandbox.catalogue.shops[0]
    with client_for(sandbox) as client:
        pages = list(client.iter_sku_sales(date(2026, 9, 19), date(2026, 9, 20)))
        product = client.get_product_sales(shop.skus[0].product_id, date(2026, 9, 18), date(2026, 9, 21))
    rows = [s for page in pages for s in page.skus]
    truth = sandbox.units_sold_for(shop.id, date(2026, 9, 19))
    assert {s.sku_id: (s.sku_orders, s.units_sold) for s in rows} == truth
    by_id = {s.sku_id: s for s in shop.skus}
    for row in rows:
        assert isinstance(row.gmv, Decimal) and row.gmv == by_id[row.sku_id].price * row.units_sold
        assert row.product_id == by_id[row.sku_id].product_id and row.currency == "USD"
    assert pages[0].latest_available_date == date(2026, 9, 20)
    assert [i.start_date for i in product.intervals] == [date(2026, 9, 18), date(2026, 9, 19), date(2026, 9, 20)]


def test_the_client_refuses_a_malformed_analytics_answer():
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"code": 0, "message": "Success", "request_id": "x",
                "data": {"skus": [{"id": 1, "product_id": 2, "units_sold": "many"}]}}
        return httpx.Response(200, content=json.dumps(body).encode())

    client = TikTokClient("k", "s", "t", shop_cipher="c", api_base=SERVER, transport=httpx.MockTransport(answer))
    with client, pytest.raises(errors.MalformedResponseError):
        client.get_sku_sales(date(2026, 9, 1), date(2026, 9, 2))


@pytest.fixture(scope="module")
def busy() -> Sandbox:
    """Enough returns for 10 spike days of the planted defect to show (seed 7, the demo's)."""
    return Sandbox(seed=7, shops=1, returns=12_000, wall_clock=lambda: NOW)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def by_order_day(sandbox: Sandbox, shop) -> dict[date, dict[str, tuple[int, int]]]:
    """{order day: {sku_id: (orders, units)}} of the returns the world holds now, counted by the test."""
    sales = sandbox._api.sales
    found: dict[date, dict[str, tuple[int, int]]] = {}
    for r in sandbox.returns_for(shop.id):
        day = sales.order_day(sandbox._world.case(r["return_id"]))
        skus = [line["sku_id"] for line in r["return_line_items"]]
        for sku_id in set(skus):
            orders, units = found.setdefault(day, {}).get(sku_id, (0, 0))
            found[day][sku_id] = (orders + 1, units + skus.count(sku_id))
    return found


def cohorts(sandbox: Sandbox, shop, first: date, last: date) -> tuple[dict[str, int], dict[str, int]]:
    """Per seller SKU: units returned of the orders of [first, last] (also those still to come), units sold."""
    sales = sandbox._api.sales
    returned: dict[str, int] = {}
    sold: dict[str, int] = {}
    for day in days(first, last):
        back = sales.returned_of_orders(shop, day)
        for sku in shop.skus:
            returned[sku.seller_sku] = returned.get(sku.seller_sku, 0) + back.get(sku.sku_id, DaySales(0, 0)).units
            sold[sku.seller_sku] = sold.get(sku.seller_sku, 0) + sales.final(shop, sku, day).units
    return returned, sold


def test_returns_are_of_orders_placed_days_before_as_a_buyer_would_ask():
    sandbox = Sandbox(seed=5, shops=1, returns=1500, wall_clock=lambda: NOW)
    shop = sandbox.catalogue.shops[0]
    sales = sandbox._api.sales
    waits: dict[str, list[int]] = {}
    for case in sandbox._world.cases(shop.id):
        wait = (local_date(shop, case.create_time) - sales.order_day(case)).days
        kind = ("before shipment" if case.reason.code.startswith("ecom_order_to_ship_canceled")
                else "delivery" if case.return_type == "REFUND" else "after use")
        waits.setdefault(kind, []).append(wait)
        assert sales.order_day(case) == sales.order_day(case)  # its own stream: the same every time
    assert all(0 <= w <= 3 for w in waits["before shipment"])  # cancelled before it shipped
    assert all(2 <= w <= 18 for w in waits["delivery"])  # at the parcel's (due) arrival
    assert all(2 <= w <= MAX_ORDER_TO_REQUEST_DAYS for w in waits["after use"])  # within the 30-day window
    assert 8 < sum(waits["after use"]) / len(waits["after use"]) < 14
    assert min(len(w) for w in waits.values()) > 100


def test_a_days_units_sold_are_its_orders_returned_units_plus_those_kept_at_each_skus_rate(busy):
    """Poisson thinning: every returned unit is one of a day's units sold, and over months returned ÷
    sold comes out at each SKU's rate."""
    shop = busy.catalogue.shops[0]
    sales = busy._api.sales
    latest = busy.latest_sales_date(shop.id)
    history = datetime.fromtimestamp(busy.anchor - busy._settings["history_days"] * 86_400, UTC).date()
    counted = by_order_day(busy, shop)
    for day in days(history - timedelta(days=MAX_ORDER_TO_REQUEST_DAYS), latest):
        back = sales.returned_of_orders(shop, day)
        if day + timedelta(days=MAX_ORDER_TO_REQUEST_DAYS) < latest:  # every return of its orders has come
            assert {k: (v.orders, v.units) for k, v in back.items()} == counted.get(day, {}), day
        for sku in shop.skus:
            final = sales.final(shop, sku, day)
            returned = back.get(sku.sku_id, DaySales(0, 0))
            assert returned.units <= final.units and returned.orders <= final.orders, (day, sku.seller_sku)
            reported = sales.reported(shop, sku, day, latest)
            assert returned.units <= reported.units <= final.units, (day, sku.seller_sku)
    # orders the planted defect cannot reach (their returns all came before it started)
    spike_from = datetime.fromtimestamp(busy.anchor + PLANTED_SPIKE_START, UTC).date()
    returned, sold = cohorts(busy, shop, history, spike_from - timedelta(days=MAX_ORDER_TO_REQUEST_DAYS + 1))
    expected = sum(sold[s.seller_sku] * sales.return_rate(shop, s) for s in shop.skus)
    assert abs(sum(returned.values()) / expected - 1) < 0.05
    for sku in shop.skus:  # each SKU at its own rate: within 4 standard deviations of its binomial
        p, n = sales.return_rate(shop, sku), sold[sku.seller_sku]
        if returned[sku.seller_sku] >= 50:
            assert abs(returned[sku.seller_sku] - n * p) < 4 * math.sqrt(n * p * (1 - p)), sku.seller_sku


def test_the_planted_defect_raises_its_skus_rate_while_its_sales_go_on_as_before(busy):
    shop = busy.catalogue.shops[0]
    sales = busy._api.sales
    last = busy.latest_sales_date(shop.id) - timedelta(days=1)  # final figures only
    history = datetime.fromtimestamp(busy.anchor - busy._settings["history_days"] * 86_400, UTC).date()
    spike_from = datetime.fromtimestamp(busy.anchor + PLANTED_SPIKE_START, UTC).date()
    untouched = spike_from - timedelta(days=MAX_ORDER_TO_REQUEST_DAYS + 1)
    planted = shop.sku(PLANTED_SPIKE_SKU)
    neighbours = [s.seller_sku for s in shop.skus if s.product_id == planted.product_id and s is not planted]
    assert neighbours
    # by order day: the orders placed since the defect began come back far more often
    returned_before, sold_before = cohorts(busy, shop, history, untouched)
    returned_after, sold_after = cohorts(busy, shop, spike_from, last)
    rate_before = returned_before[PLANTED_SPIKE_SKU] / sold_before[PLANTED_SPIKE_SKU]
    rate_after = returned_after[PLANTED_SPIKE_SKU] / sold_after[PLANTED_SPIKE_SKU]
    assert abs(rate_before / sales.return_rate(shop, planted) - 1) < 0.2
    assert rate_after > 1.3 * rate_before  # 1.7x expected: 4 more defective returns for every usual one
    assert all(rate_after > 1.5 * returned_after[s] / sold_after[s] for s in neighbours)
    daily_before = sold_before[PLANTED_SPIKE_SKU] / len(days(history, untouched))
    daily_after = sold_after[PLANTED_SPIKE_SKU] / len(days(spike_from, last))
    assert 0.7 < daily_after / daily_before < 1.4  # sales did not jump with the returns
    # by the day returns are asked for, as Reason Analytics counts: the same rise from the first day
    asked: dict[tuple[str, bool], int] = {}
    for r in busy.returns_for(shop.id):
        day = local_date(shop, r["create_time"])
        for line in r["return_line_items"]:
            if history <= day <= last:
                key = (line["seller_sku"], day >= spike_from)
                asked[key] = asked.get(key, 0) + 1
    sold = {(s.seller_sku, after): sum(sales.final(shop, s, d).units for d in span)
            for s in shop.skus for after, span in ((False, days(history, spike_from - timedelta(days=1))),
                                                    (True, days(spike_from, last)))}
    rates = {key: asked.get(key, 0) / sold[key] for key in sold}
    assert rates[(PLANTED_SPIKE_SKU, True)] > 1.3 * rates[(PLANTED_SPIKE_SKU, False)]
    assert all(rates[(PLANTED_SPIKE_SKU, True)] > 1.5 * rates[(s, True)] for s in neighbours)


def test_returns_still_to_come_count_for_their_orders_day_and_asking_changes_no_return():
    clock = [float(NOW)]
    sandbox = Sandbox(seed=5, shops=1, returns=1500, wall_clock=lambda: clock[0])
    twin = Sandbox(seed=5, shops=1, returns=1500, wall_clock=lambda: clock[0])
    shop = sandbox.catalogue.shops[0]
    world = sandbox._world
    heard: list[str] = []
    listener = world.listener
    world.listener = lambda case, before: (heard.append(case.return_id), listener and listener(case, before))
    latest = sandbox.latest_sales_date(shop.id)
    recent = days(latest - timedelta(days=MAX_ORDER_TO_REQUEST_DAYS + 2), latest)
    held, version = len(world.cases(shop.id)), world.version(shop.id)
    asked = {day: sandbox.units_sold_for(shop.id, day) for day in recent}
    back = {day: sandbox._api.sales.returned_of_orders(shop, day) for day in recent}
    # nothing happened in the world: no new return, no step, nobody told
    assert (len(world.cases(shop.id)), world.version(shop.id), heard) == (held, version, [])
    assert asked == {day: sandbox.units_sold_for(shop.id, day) for day in recent}  # twice: the same
    # the returns of those days' orders that were still to come arrive as they were counted
    came = by_order_day(sandbox, shop)
    clock[0] += (MAX_ORDER_TO_REQUEST_DAYS + 3) * 86_400
    counted = by_order_day(sandbox, shop)
    assert {day: {k: (v.orders, v.units) for k, v in found.items()} for day, found in back.items()} == {
        day: counted.get(day, {}) for day in recent}
    came_later = sum(units for day in recent for _, units in counted.get(day, {}).values()) - sum(
        units for day in recent for _, units in came.get(day, {}).values())
    assert came_later > 100  # most of the latest days' returns were still to come
    # the world is the one it would have been had nobody asked, and a restarted sandbox says the same
    assert sandbox.returns_for(shop.id) == twin.returns_for(shop.id)
    restarted = Sandbox(seed=5, shops=1, returns=1500, anchor=sandbox.anchor, wall_clock=lambda: clock[0])
    assert asked == {day: restarted.units_sold_for(shop.id, day) for day in recent[:-1]} | {
        latest: asked[latest]}  # the latest day was preliminary then; its final figure now
    assert all(asked[latest][k][1] <= v[1] for k, v in restarted.units_sold_for(shop.id, latest).items())


def test_the_latest_day_is_preliminary_and_final_a_day_later():
    clock = [float(NOW)]
    sandbox = Sandbox(seed=5, shops=1, returns=300, wall_clock=lambda: clock[0])
    shop_id = sandbox.shops[0]["id"]
    latest = sandbox.latest_sales_date(shop_id)
    early = sandbox.units_sold_for(shop_id, latest)
    assert sandbox.units_sold_for(shop_id, latest + timedelta(days=1)) == {}
    sandbox.advance(86_400)
    final = sandbox.units_sold_for(shop_id, latest)
    assert sandbox.latest_sales_date(shop_id) == latest + timedelta(days=1)
    assert all(early[k][1] <= final[k][1] for k in final) and sum(v[1] for v in early.values()) < sum(
        v[1] for v in final.values())


@pytest.mark.parametrize("starts_before_anchor", [0, 3 * 86_400])
def test_the_returns_a_world_draws_ahead_are_the_ones_it_then_makes(starts_before_anchor):
    """World.returns_created: returns still to come (also history not yet played, when the world starts
    before its anchor) are drawn as they will be, and drawing them moves nothing."""
    clock = [float(NOW)]
    anchor = NOW - NOW % 86_400 + starts_before_anchor
    sandbox = Sandbox(seed=3, shops=2, returns=400, anchor=anchor, wall_clock=lambda: clock[0])
    world = sandbox._world
    shop = sandbox.catalogue.shops[1]

    def facts(cases):
        return [(c.return_id, c.order_id, c.create_time, c.return_type, c.reason.code,
                 [(x.sku.sku_id, x.subtotal) for x in c.lines]) for c in cases]

    begin, end = NOW - 2 * 86_400, NOW + 6 * 86_400
    ahead = facts(world.returns_created(shop, begin, end))
    assert world.time == NOW and len([c for c in world.cases(shop.id) if c.create_time > NOW]) == 0
    assert sum(1 for f in ahead if f[2] > NOW) > 10 and sum(1 for f in ahead if f[2] <= NOW) > 0
    assert sorted(ahead) == sorted(facts(world.returns_created(shop, begin, end)))  # twice: the same
    clock[0] += 7 * 86_400
    sandbox.returns_for(shop.id)  # the world moves on
    made = facts(c for c in world.cases(shop.id) if begin <= c.create_time < end)
    assert sorted(ahead) == sorted(made)
