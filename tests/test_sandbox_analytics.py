"""The sandbox's Analytics API (units sold) against TikTok's OAS, and the client that reads it.

The OAS is spec/analytics/ (an extract of @tts-open-toolkit/cli 0.1.7); every object schema is closed,
so a field TikTok does not declare fails. Also: the figures are the sandbox's own ground truth, they
follow the returns at each SKU's rate, and the planted defect raises its SKU's rate.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from returns_core.tiktok import errors
from returns_core.tiktok.client import SKU_PERFORMANCE_PATH, TikTokClient
from returns_core.tiktok.sandbox import PLANTED_SPIKE_SKU, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox
from returns_core.tiktok.sandbox.catalogue import PLANTED_SPIKE_START
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


def test_sales_follow_the_returns_at_each_skus_rate_and_the_planted_defect_raises_its_rate():
    """Returned units ÷ units sold per SKU over the history, against each SKU's own rate."""
    sandbox = Sandbox(seed=7, shops=1, returns=12_000, wall_clock=lambda: NOW)  # enough for 8 spike days
    shop = sandbox.catalogue.shops[0]
    sales = sandbox._api.sales
    spike_from = datetime.fromtimestamp(sandbox.anchor + PLANTED_SPIKE_START, UTC).date()
    last_day = sandbox.latest_sales_date(shop.id) - timedelta(days=1)  # final figures only
    returned: dict[tuple[str, bool], int] = {}
    first_day = None
    for r in sandbox.returns_for(shop.id):
        day = datetime.fromtimestamp(r["create_time"], UTC).date()
        if day > last_day:
            continue
        first_day = min(first_day or day, day)
        for line in r["return_line_items"]:
            key = (line["seller_sku"], day >= spike_from)
            returned[key] = returned.get(key, 0) + 1
    sold: dict[tuple[str, bool], int] = {}
    day = first_day
    while day <= last_day:
        for sku in shop.skus:
            key = (sku.seller_sku, day >= spike_from)
            sold[key] = sold.get(key, 0) + sales.final(shop, sku, day).units
        day += timedelta(days=1)
    # across the shop, before the spike: returned units over units sold is the sales-weighted mean rate
    before = [s for s in shop.skus if sold.get((s.seller_sku, False))]
    expected = sum(sold[(s.seller_sku, False)] * sales.return_rate(shop, s) for s in before)
    observed = sum(returned.get((s.seller_sku, False), 0) for s in before)
    assert abs(observed / expected - 1) < 0.05
    # the planted SKU sells at its usual pace but returns far more during the spike
    planted = shop.sku(PLANTED_SPIKE_SKU)
    rate_before = returned[(PLANTED_SPIKE_SKU, False)] / sold[(PLANTED_SPIKE_SKU, False)]
    rate_after = returned[(PLANTED_SPIKE_SKU, True)] / sold[(PLANTED_SPIKE_SKU, True)]
    assert abs(rate_before / sales.return_rate(shop, planted) - 1) < 0.2
    assert rate_after > 1.3 * rate_before  # 1.5x expected: 4 more defective returns for every usual one
    daily_before = sold[(PLANTED_SPIKE_SKU, False)] / ((spike_from - first_day).days)
    daily_after = sold[(PLANTED_SPIKE_SKU, True)] / ((last_day - spike_from).days + 1)
    assert 0.7 < daily_after / daily_before < 1.4  # sales did not jump with the returns


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
