"""The sandbox behaves like TikTok Shop: seeded realistic data, lifecycle over time, decisions,
auth checks, paging, faults, persistence, and the same answers in-process and over real HTTP.

Requests are signed with a tiny local helper on signing.sign (these tests never use client.py).
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from returns_core.tiktok import errors
from returns_core.tiktok.sandbox import (
    PLANTED_SHOP_INDEX,
    PLANTED_SIZE_REASON_CODE,
    PLANTED_SIZE_SHARE,
    PLANTED_SIZE_SKU,
    PLANTED_SPIKE_FACTOR,
    PLANTED_SPIKE_REASON_CODE,
    PLANTED_SPIKE_REASON_TEXT,
    PLANTED_SPIKE_SKU,
    PLANTED_SPIKE_START,
    SANDBOX_APP_KEY,
    SANDBOX_APP_SECRET,
    Sandbox,
    SandboxStateError,
)
from returns_core.tiktok.sandbox.lifecycle import ALL_STATUSES
from returns_core.tiktok.sandbox.server import serve_forever
from returns_core.tiktok.signing import sign
from tests.conftest import wait_until

DAY = 86_400
HOUR = 3_600
NOW = 1_790_000_000 + 13 * HOUR  # a fixed "wall clock": 13:00 UTC, so the anchor is 13 h earlier
ANCHOR = NOW - NOW % DAY
SEARCH = "/return_refund/202309/returns/search"
SHOPS = "/authorization/202309/shops"
WAITING = {"RETURN_OR_REFUND_REQUEST_PENDING", "BUYER_SHIPPED_ITEM", "REPLACEMENT_REQUEST_PENDING"}
_DEFAULT = object()


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, t: float = NOW):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Seller:
    """Signed calls as a seller's app makes them: app_key, timestamp, sign, token header, shop_cipher."""

    def __init__(self, sandbox: Sandbox, clock: Clock, http: httpx.Client | None = None, shop: int = 0,
                 tokens: dict | None = None):
        self.sandbox = sandbox
        self.clock = clock
        self.http = http or httpx.Client(transport=sandbox.transport(), base_url="https://sandbox.test")
        self.tokens = tokens or sandbox.issue_tokens()
        self.shop = sandbox.shops[shop]

    def call(self, method: str, path: str, params: dict | None = None, body: object = None, *,
             cipher: object = _DEFAULT, token: object = _DEFAULT, timestamp: int | None = None,
             app_key: str = SANDBOX_APP_KEY, secret: str = SANDBOX_APP_SECRET) -> httpx.Response:
        raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
        query = {"app_key": app_key, "timestamp": str(int(self.clock()) if timestamp is None else timestamp)}
        cipher = self.shop["cipher"] if cipher is _DEFAULT else cipher
        if cipher is not None and not path.startswith("/authorization"):
            query["shop_cipher"] = cipher
        query.update(params or {})
        query["sign"] = sign(path, query, raw, secret)
        headers = {"content-type": "application/json"}
        token = self.tokens["access_token"] if token is _DEFAULT else token
        if token is not None:
            headers["x-tts-access-token"] = token
        return self.http.request(method, path, params=query, content=raw, headers=headers)

    def search(self, params: dict | None = None, body: object = None, version: str = "202309") -> dict:
        path = f"/return_refund/{version}/returns/search"
        return self.call("POST", path, params, {} if body is None else body).json()

    def all_pages(self, sort_field: str = "create_time", sort_order: str = "ASC",
                  body: dict | None = None) -> list[dict]:
        found, token = [], ""
        while True:
            params = {"page_size": "50", "sort_field": sort_field, "sort_order": sort_order}
            if token:
                params["page_token"] = token
            answer = self.search(params, body)
            assert answer["code"] == 0, answer
            found += answer["data"].get("return_orders", [])
            token = answer["data"]["next_page_token"]
            if not token:
                return found

    def approve(self, return_id: str, body: dict, key: str | None = None) -> dict:
        params = {"idempotency_key": key} if key else None
        return self.call("POST", f"/return_refund/202309/returns/{return_id}/approve", params, body).json()

    def reject(self, return_id: str, body: dict, key: str | None = None, version: str = "202309") -> dict:
        params = {"idempotency_key": key} if key else None
        return self.call("POST", f"/return_refund/{version}/returns/{return_id}/reject", params, body).json()

    def reasons(self, return_id: str) -> list[dict]:
        answer = self.call("GET", "/return_refund/202309/reject_reasons", {"return_or_cancel_id": return_id}).json()
        assert answer["code"] == 0, answer
        return answer["data"]["reasons"]

    def records(self, return_id: str) -> list[dict]:
        answer = self.call("GET", f"/return_refund/202309/returns/{return_id}/records").json()
        assert answer["code"] == 0, answer
        return answer["data"]["records"]

    def one(self, return_id: str) -> dict:
        answer = self.search(body={"return_ids": [return_id]})
        assert answer["code"] == 0, answer
        (found,) = answer["data"]["return_orders"]
        return found


def make(returns: int = 300, shops: int = 2, seed: int = 7, clock: Clock | None = None, **kwargs) -> Sandbox:
    return Sandbox(seed=seed, shops=shops, returns=returns, wall_clock=clock or Clock(), **kwargs)


def first(returns: list[dict], **wanted: str) -> dict:
    return next(r for r in returns if all(r[k] == v for k, v in wanted.items()))


@pytest.fixture(scope="module")
def world() -> tuple[Sandbox, Clock]:
    """A read-only sandbox shared by tests that do not change it."""
    clock = Clock()
    return make(returns=400, clock=clock), clock


@pytest.fixture(scope="module")
def large() -> Sandbox:
    """One shop with 5000 returns: enough volume to measure the planted patterns (read-only)."""
    return make(returns=5000, shops=1)


@pytest.fixture
def busy() -> tuple[Sandbox, Seller]:
    """A fresh single-shop sandbox with enough returns that every pending kind exists."""
    clock = Clock()
    sandbox = make(returns=1500, shops=1, clock=clock)
    return sandbox, Seller(sandbox, clock)


# --- data: seeded, realistic, planted patterns ---------------------------------------------------


def test_same_seed_gives_the_same_world_and_another_seed_a_different_one():
    a, b, c = make(seed=11), make(seed=11), make(seed=12)
    assert a.shops == b.shops
    assert a.returns_for(a.shops[0]["id"]) == b.returns_for(b.shops[0]["id"])
    assert a.shops != c.shops
    assert a.returns_for(a.shops[0]["id"]) != c.returns_for(c.shops[0]["id"])


def test_anchor_defaults_to_the_start_of_the_wall_clock_day(world):
    sandbox, _ = world
    assert sandbox.anchor == ANCHOR
    assert sandbox.now() == NOW


def test_shops_look_like_authorized_shops(world):
    sandbox, _ = world
    for shop in sandbox.shops:
        assert set(shop) == {"id", "name", "region", "seller_type", "cipher", "code"}
        assert re.fullmatch(r"\d{19}", shop["id"])
        assert shop["cipher"].startswith("GCP_") and len(shop["cipher"]) > 20
        assert shop["seller_type"] in ("LOCAL", "CROSS_BORDER")
        assert re.fullmatch(r"[A-Z0-9]{12}", shop["code"])
    assert sandbox.shops[0]["name"] == "Northwind Home US"
    assert {s["region"] for s in make(shops=4).shops} >= {"US", "GB", "SG"}


def test_each_shop_has_its_history_of_returns_before_the_anchor(world):
    sandbox, _ = world
    for shop in sandbox.shops:
        returns = sandbox.returns_for(shop["id"])
        history = [r for r in returns if r["create_time"] < ANCHOR]
        assert len(history) == 400
        assert min(r["create_time"] for r in history) >= ANCHOR - 90 * DAY
        assert len({r["return_id"] for r in returns}) == len(returns)
        assert all(re.fullmatch(r"\d{19}", r["return_id"]) and r["order_id"].isdigit() for r in returns)


def test_return_types_come_in_realistic_proportions(large):
    sandbox = large
    types = Counter(r["return_type"] for r in sandbox.returns_for(sandbox.shops[0]["id"]))
    total = sum(types.values())
    assert abs(types["REFUND"] / total - 0.35) < 0.04
    assert abs(types["RETURN_AND_REFUND"] / total - 0.55) < 0.04
    assert abs(types["REPLACEMENT"] / total - 0.10) < 0.03
    assert set(types) == {"REFUND", "RETURN_AND_REFUND", "REPLACEMENT"}


def test_history_is_mostly_settled_with_a_live_tail_waiting_for_the_seller(large):
    sandbox = large
    statuses = Counter(r["return_status"] for r in sandbox.returns_for(sandbox.shops[0]["id"]))
    total = sum(statuses.values())
    assert 0.5 < statuses["RETURN_OR_REFUND_REQUEST_COMPLETE"] / total < 0.75
    assert 0.04 < statuses["REFUND_OR_RETURN_REQUEST_REJECT"] / total < 0.15
    assert 0.04 < statuses["RETURN_OR_REFUND_REQUEST_CANCEL"] / total < 0.15
    assert 0 < statuses["RETURN_OR_REFUND_REQUEST_PENDING"] / total < 0.05


def test_every_status_is_reachable(busy):
    sandbox, seller = busy
    seen = {r["return_status"] for r in sandbox.returns_for(seller.shop["id"])}
    for _ in range(10):  # time brings shipments, payouts, arbitration...
        sandbox.advance(DAY)
        seen |= {r["return_status"] for r in sandbox.returns_for(seller.shop["id"])}
    # ...and a partial refund offer only ever comes from a seller (whose week-old token has expired)
    seller.tokens = sandbox.issue_tokens()
    pending = first(sandbox.returns_for(seller.shop["id"]), return_type="RETURN_AND_REFUND",
                    return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    offer = {"decision": "OFFER_PARTIAL_REFUND", "partial_refund": {"amount": "1", "currency": "USD"}}
    assert seller.approve(pending["return_id"], offer)["code"] == 0
    seen.add(seller.one(pending["return_id"])["return_status"])
    assert seen == set(ALL_STATUSES)


def test_money_adds_up_exactly_and_lines_sum_to_the_return(world):
    sandbox, _ = world
    for shop in sandbox.shops:
        currency = {"US": "USD", "GB": "GBP"}[shop["region"]]
        for r in sandbox.returns_for(shop["id"]):
            amount = r["refund_amount"]
            assert amount["currency"] == currency
            parts = [Decimal(amount[k]) for k in ("refund_subtotal", "refund_shipping_fee", "refund_tax")]
            assert Decimal(amount["refund_total"]) == sum(parts) > 0
            assert 1 <= len(r["return_line_items"]) <= 3
            for key in ("refund_total", "refund_subtotal", "refund_shipping_fee", "refund_tax"):
                lines = sum(Decimal(line["refund_amount"][key]) for line in r["return_line_items"])
                assert lines == Decimal(amount[key])
            assert r["discount_amount"][0]["currency"] == r["shipping_fee_amount"][0]["currency"] == currency
            if "partial_refund" in r:
                assert Decimal(r["partial_refund"]["amount"]) < Decimal(amount["refund_total"])


def test_line_items_name_real_looking_skus_and_images(world):
    sandbox, _ = world
    line = sandbox.returns_for(sandbox.shops[0]["id"])[0]["return_line_items"][0]
    assert re.fullmatch(r"\d{19}", line["sku_id"]) and line["return_line_item_id"].isdigit()
    assert re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)+", line["seller_sku"])
    assert line["product_name"] and line["sku_name"]
    assert re.fullmatch(r"https://[a-z0-9.-]+\.example/.+", line["product_image"]["url"])
    skus = {li["seller_sku"] for r in sandbox.returns_for(sandbox.shops[0]["id"]) for li in r["return_line_items"]}
    assert len(skus) > 25


def test_seller_deadlines_appear_only_while_the_seller_must_act(world):
    sandbox, seller = world[0], Seller(*world)
    for r in sandbox.returns_for(sandbox.shops[0]["id"]):
        actions = r.get("seller_next_action_response", [])
        if r["return_status"] not in WAITING:
            assert not actions, r
        elif actions:
            began = seller.records(r["return_id"])[-1]["create_time"]
            assert 24 * HOUR <= actions[0]["deadline"] - began <= 48 * HOUR
            assert actions[0]["action"].startswith("SELLER_RESPOND_")


def test_shipped_returns_carry_tracking_and_every_step_has_a_record(world):
    sandbox, seller = world[0], Seller(*world)
    returns = sandbox.returns_for(sandbox.shops[0]["id"])
    shipped = [r for r in returns if r["return_status"] == "BUYER_SHIPPED_ITEM"]
    assert shipped and all(r["return_tracking_number"] and r["return_provider_name"] for r in shipped)
    for r in returns[:40]:
        records = seller.records(r["return_id"])
        assert records[0]["event"].endswith("_REQUESTED_" + r["return_type"])
        assert records[0]["reason_text"] == r["return_reason_text"]
        assert records[0]["create_time"] == r["create_time"] and records[-1]["create_time"] == r["update_time"]
        assert [x["create_time"] for x in records] == sorted(x["create_time"] for x in records)
        assert all(x["role"] in ("BUYER", "SELLER", "OPERATOR", "SYSTEM") and x["description"] for x in records)


def test_old_history_was_decided_by_a_simulated_seller(world):
    sandbox, seller = world[0], Seller(*world)
    old = [r for r in sandbox.returns_for(sandbox.shops[0]["id"]) if r["create_time"] < ANCHOR - 10 * DAY][:40]
    events = {x["event"] for r in old for x in seller.records(r["return_id"])}
    assert {"SELLER_APPROVED_REFUND", "SELLER_APPROVED_RETURN", "REFUND_COMPLETED"} <= events


def test_planted_spike_defective_blender_returns_jump_about_fivefold(large):
    sandbox = large
    start = ANCHOR + PLANTED_SPIKE_START
    hits = [r for r in sandbox.returns_for(sandbox.shops[PLANTED_SHOP_INDEX]["id"])
            if r["return_reason"] == PLANTED_SPIKE_REASON_CODE
            and any(li["seller_sku"] == PLANTED_SPIKE_SKU for li in r["return_line_items"])]
    assert all(r["return_reason_text"] == PLANTED_SPIKE_REASON_TEXT for r in hits)
    per_day_before = sum(r["create_time"] < start for r in hits) / (90 - 10)
    per_day_after = sum(start <= r["create_time"] < ANCHOR for r in hits) / 10
    assert per_day_before > 0.5
    assert PLANTED_SPIKE_FACTOR * 0.6 < per_day_after / per_day_before < PLANTED_SPIKE_FACTOR * 1.5


def test_planted_spike_continues_after_the_anchor():
    sandbox = make(returns=5000, shops=1)
    sandbox.advance(10 * DAY)
    later = [r for r in sandbox.returns_for(sandbox.shops[0]["id"]) if r["create_time"] >= ANCHOR
             and r["return_reason"] == PLANTED_SPIKE_REASON_CODE
             and r["return_line_items"][0]["seller_sku"] == PLANTED_SPIKE_SKU]
    assert len(later) / 10 > 2.5  # about 5 a day, against about 1 a day before the spike


def test_planted_size_sku_gives_size_doesnt_fit_far_more_often_than_its_peers(large):
    sandbox = large
    asked = [r for r in sandbox.returns_for(sandbox.shops[0]["id"]) if r["return_type"] != "REFUND"]
    planted = [r for r in asked if r["return_line_items"][0]["seller_sku"] == PLANTED_SIZE_SKU]
    peers = [r for r in asked if r["return_line_items"][0]["seller_sku"].startswith(("LGNG", "HOOD", "TEE", "JCKT"))
             and r["return_line_items"][0]["seller_sku"] != PLANTED_SIZE_SKU]
    share = sum(r["return_reason"] == PLANTED_SIZE_REASON_CODE for r in planted) / len(planted)
    peer_share = sum(r["return_reason"] == PLANTED_SIZE_REASON_CODE for r in peers) / len(peers)
    assert len(planted) > 50
    assert abs(share - PLANTED_SIZE_SHARE) < 0.12
    assert peer_share < 0.35


# --- time -------------------------------------------------------------------------------------------


def test_advance_brings_new_returns_at_the_history_rate_and_moves_update_times():
    sandbox = make(returns=900, shops=1)
    shop = sandbox.shops[0]["id"]
    before = {r["return_id"]: r for r in sandbox.returns_for(shop)}
    sandbox.advance(5 * DAY)
    after = sandbox.returns_for(shop)
    new = [r for r in after if r["return_id"] not in before]
    assert 25 <= len(new) <= 75  # 900 over 90 days is 10 a day
    assert all(sandbox.now() - 5 * DAY <= r["create_time"] <= sandbox.now() for r in new)
    moved = [r for r in after if r["return_id"] in before and r["update_time"] != before[r["return_id"]]["update_time"]]
    assert moved and all(r["update_time"] > NOW for r in moved)


def test_unanswered_requests_are_auto_approved_at_the_deadline(busy):
    sandbox, seller = busy
    waiting = [r for r in sandbox.returns_for(seller.shop["id"]) if r["return_status"] in WAITING
               and r.get("seller_next_action_response")]
    deadline = max(r["seller_next_action_response"][0]["deadline"] for r in waiting)
    sandbox.advance(deadline - sandbox.now() + 1)
    events = Counter()
    for r in waiting:
        record = next(x for x in seller.records(r["return_id"]) if x["create_time"] > r["update_time"])
        events[record["event"]] += 1
    assert set(events) <= {"SYSTEM_AUTO_APPROVED", "BUYER_CANCELLED_REQUEST"}
    assert events["SYSTEM_AUTO_APPROVED"] > events["BUYER_CANCELLED_REQUEST"]


def test_the_world_is_a_function_of_time_not_of_how_often_it_is_looked_at():
    one, many = make(returns=500), make(returns=500)
    one.advance(3 * DAY)
    for _ in range(24):
        many.advance(3 * HOUR)
        many.returns_for(many.shops[0]["id"])
    for shop in one.shops:
        assert one.returns_for(shop["id"]) == many.returns_for(shop["id"])


def test_the_world_keeps_moving_with_the_wall_clock():
    clock = Clock()
    sandbox = make(returns=900, shops=1, clock=clock)
    count = len(sandbox.returns_for(sandbox.shops[0]["id"]))
    clock.t += 3 * DAY
    assert sandbox.now() == NOW + 3 * DAY
    assert len(sandbox.returns_for(sandbox.shops[0]["id"])) > count


# --- decisions -----------------------------------------------------------------------------------------


def test_approving_a_refund_succeeds_then_completes_after_the_payout(busy):
    sandbox, seller = busy
    r = first(sandbox.returns_for(seller.shop["id"]), return_type="REFUND",
              return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    answer = seller.approve(r["return_id"], {"decision": "APPROVE_REFUND"})
    assert (answer["code"], answer["message"], answer["data"]) == (0, "Success", {})
    now = seller.one(r["return_id"])
    assert now["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
    assert now["update_time"] == sandbox.now() and "seller_next_action_response" not in now
    assert seller.records(r["return_id"])[-1]["event"] == "SELLER_APPROVED_REFUND"
    sandbox.advance(2 * DAY)
    assert seller.one(r["return_id"])["return_status"] == "RETURN_OR_REFUND_REQUEST_COMPLETE"
    assert seller.records(r["return_id"])[-1]["event"] == "REFUND_COMPLETED"


def test_approving_a_return_waits_for_the_buyer_to_ship(busy):
    sandbox, seller = busy
    pending = [r for r in sandbox.returns_for(seller.shop["id"]) if r["return_type"] == "RETURN_AND_REFUND"
               and r["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"]
    for r in pending:
        assert seller.approve(r["return_id"], {"decision": "APPROVE_RETURN"})["code"] == 0
        approved = seller.one(r["return_id"])
        assert approved["return_status"] == "AWAITING_BUYER_SHIP"
        assert approved["return_warehouse_address"]["full_address"]
    sandbox.advance(8 * DAY)
    seller.tokens = sandbox.issue_tokens()  # the first token expired after 7 days
    later = Counter(seller.one(r["return_id"])["return_status"] for r in pending)
    assert later["BUYER_SHIPPED_ITEM"] + later["RETURN_OR_REFUND_REQUEST_SUCCESS"] > 0
    assert set(later) <= {"BUYER_SHIPPED_ITEM", "RETURN_OR_REFUND_REQUEST_SUCCESS",
                          "RETURN_OR_REFUND_REQUEST_COMPLETE", "RETURN_OR_REFUND_REQUEST_CANCEL"}


def test_a_received_package_can_be_approved_or_rejected(busy):
    sandbox, seller = busy
    shipped = [r for r in sandbox.returns_for(seller.shop["id"]) if r["return_status"] == "BUYER_SHIPPED_ITEM"]
    reasons = seller.reasons(shipped[0]["return_id"])
    assert reasons and all(set(x) == {"name", "text"} for x in reasons)
    assert seller.approve(shipped[0]["return_id"], {"decision": "APPROVE_RECEIVED_PACKAGE"})["code"] == 0
    assert seller.one(shipped[0]["return_id"])["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
    answer = seller.reject(shipped[1]["return_id"], {"decision": "REJECT_RECEIVED_PACKAGE",
                                                     "reject_reason": reasons[0]["name"], "comment": "Box was empty"})
    assert answer["code"] == 0
    assert seller.one(shipped[1]["return_id"])["return_status"] == "REJECT_RECEIVE_PACKAGE"
    last = seller.records(shipped[1]["return_id"])[-1]
    assert last["note"] == "Box was empty" and last["reason_text"] == reasons[0]["text"]


def test_returnless_refund_and_partial_refund_offer(busy):
    sandbox, seller = busy
    pending = [r for r in sandbox.returns_for(seller.shop["id"]) if r["return_type"] == "RETURN_AND_REFUND"
               and r["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"]
    keep, offer = pending[0]["return_id"], pending[1]["return_id"]
    assert seller.approve(keep, {"decision": "APPROVE_RETURN", "buyer_keep_item": True})["code"] == 0
    assert seller.one(keep)["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
    assert seller.one(keep)["can_buyer_keep_item"] is True
    missing = seller.approve(offer, {"decision": "OFFER_PARTIAL_REFUND"})
    assert missing["code"] == errors.INVALID_PARAMETER and "partial_refund" in missing["message"]
    too_much = seller.approve(offer, {"decision": "OFFER_PARTIAL_REFUND", "partial_refund": {"amount": "99999"}})
    assert too_much["code"] == errors.INVALID_PARAMETER
    assert seller.approve(offer, {"decision": "OFFER_PARTIAL_REFUND",
                                  "partial_refund": {"amount": "2.5", "currency": "USD"}})["code"] == 0
    offered = seller.one(offer)
    assert offered["return_status"] == "AWAITING_BUYER_RESPONSE"
    assert offered["seller_proposed_return_type"] == "PARTIAL_REFUND"
    assert offered["partial_refund"] == {"amount": "2.5", "currency": "USD"}
    assert seller.search(body={"seller_proposed_return_type": ["PARTIAL_REFUND"],
                               "return_ids": [offer]})["data"]["total_count"] == 1
    sandbox.advance(4 * DAY)  # the buyer answers within 3 days
    assert seller.one(offer)["return_status"] != "AWAITING_BUYER_RESPONSE"


def test_replacements_can_be_approved_refunded_or_rejected(busy):
    sandbox, seller = busy
    pending = [r["return_id"] for r in sandbox.returns_for(seller.shop["id"])
               if r["return_status"] == "REPLACEMENT_REQUEST_PENDING"]
    assert seller.approve(pending[0], {"decision": "APPROVE_REPLACEMENT"})["code"] == 0
    assert seller.one(pending[0])["return_status"] == "REPLACEMENT_REQUEST_COMPLETE"
    assert seller.approve(pending[1], {"decision": "ISSUE_REPLACEMENT_REFUND"})["code"] == 0
    assert seller.one(pending[1])["return_status"] == "REPLACEMENT_REQUEST_REFUND_SUCCESS"
    reason = seller.reasons(pending[2])[0]["name"]
    assert seller.reject(pending[2], {"decision": "REJECT_REPLACEMENT", "reject_reason": reason})["code"] == 0
    assert seller.one(pending[2])["return_status"] == "REPLACEMENT_REQUEST_REJECT"


def test_reject_reasons_depend_on_the_state_and_must_be_one_of_them(busy):
    sandbox, seller = busy
    returns = sandbox.returns_for(seller.shop["id"])
    refund = first(returns, return_type="REFUND", return_status="RETURN_OR_REFUND_REQUEST_PENDING")["return_id"]
    ret = first(returns, return_type="RETURN_AND_REFUND", return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    closed = first(returns, return_status="RETURN_OR_REFUND_REQUEST_COMPLETE")["return_id"]
    refund_reasons = {x["name"] for x in seller.reasons(refund)}
    assert refund_reasons != {x["name"] for x in seller.reasons(ret["return_id"])}
    assert seller.reasons(closed) == []
    wrong = seller.reject(refund, {"decision": "REJECT_REFUND", "reject_reason": "seller_reject_apply_made_up"})
    assert wrong["code"] == errors.REASON_INVALID
    missing = seller.reject(refund, {"decision": "REJECT_REFUND"})
    assert missing["code"] == errors.INVALID_PARAMETER and "reject_reason" in missing["message"]
    reason = sorted(refund_reasons)[0]
    assert seller.reject(refund, {"decision": "REJECT_REFUND", "reject_reason": reason})["code"] == 0
    assert seller.one(refund)["return_status"] == "REFUND_OR_RETURN_REQUEST_REJECT"
    no_id = seller.call("GET", "/return_refund/202309/reject_reasons").json()
    assert no_id["code"] == errors.INVALID_PARAMETER and "return_or_cancel_id" in no_id["message"]


def test_decisions_that_do_not_fit_are_refused_with_tiktoks_business_codes(busy):
    sandbox, seller = busy
    returns = sandbox.returns_for(seller.shop["id"])
    refund = first(returns, return_type="REFUND", return_status="RETURN_OR_REFUND_REQUEST_PENDING")["return_id"]
    ret = first(returns, return_type="RETURN_AND_REFUND", return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    done = first(returns, return_type="REFUND", return_status="RETURN_OR_REFUND_REQUEST_COMPLETE")["return_id"]
    wrong_type = seller.approve(refund, {"decision": "APPROVE_REPLACEMENT"})
    assert (wrong_type["code"], wrong_type["data"]) == (errors.DECISION_NOT_FIT, {})
    wrong_stage = seller.approve(ret["return_id"], {"decision": "APPROVE_RECEIVED_PACKAGE"})
    assert wrong_stage["code"] == errors.DECISION_NOT_FIT
    assert seller.approve(done, {"decision": "APPROVE_REFUND"})["code"] == errors.ALREADY_DECIDED
    assert seller.approve(refund, {"decision": "APPROVE_REFUND"})["code"] == 0
    assert seller.approve(refund, {"decision": "APPROVE_REFUND"})["code"] == errors.ALREADY_DECIDED
    not_approval = seller.approve(ret["return_id"], {"decision": "REJECT_RETURN"})
    assert not_approval["code"] == errors.INVALID_PARAMETER
    assert seller.call("POST", f"/return_refund/202309/returns/{refund}/approve", body={}).status_code == 400


def test_returns_of_another_shop_or_unknown_ones_are_refused():
    clock = Clock()
    sandbox = make(clock=clock)
    other = sandbox.returns_for(sandbox.shops[1]["id"])[0]["return_id"]
    seller = Seller(sandbox, clock)
    assert seller.call("GET", f"/return_refund/202309/returns/{other}/records").json()["code"] == errors.NO_PERMISSION
    unknown = seller.call("GET", "/return_refund/202309/returns/4035000000000000001/records").json()
    assert unknown["code"] == errors.INVALID_PARAMETER and "does not exist" in unknown["message"]


def test_idempotency_key_answers_a_repeat_with_the_first_result_and_acts_once(busy):
    sandbox, seller = busy
    r = first(sandbox.returns_for(seller.shop["id"]), return_type="REFUND",
              return_status="RETURN_OR_REFUND_REQUEST_PENDING")["return_id"]
    assert seller.approve(r, {"decision": "APPROVE_REFUND"}, key="k-1")["code"] == 0
    records = seller.records(r)
    assert seller.approve(r, {"decision": "APPROVE_REFUND"}, key="k-1")["code"] == 0  # not 25020010
    sandbox.advance(3 * DAY)  # the refund is paid out meanwhile
    assert seller.approve(r, {"decision": "APPROVE_REFUND"}, key="k-1")["code"] == 0
    assert len(seller.records(r)) == len(records) + 1  # only the payout
    other_use = seller.approve(r, {"decision": "APPROVE_RETURN"}, key="k-1")
    assert other_use["code"] == errors.INVALID_PARAMETER and "idempotency_key" in other_use["message"]
    assert seller.approve(r, {"decision": "APPROVE_REFUND"})["code"] == errors.ALREADY_DECIDED


def test_idempotency_key_replays_a_refusal_too(busy):
    sandbox, seller = busy
    done = first(sandbox.returns_for(seller.shop["id"]), return_type="REFUND",
                 return_status="RETURN_OR_REFUND_REQUEST_COMPLETE")
    answers = [seller.approve(done["return_id"], {"decision": "APPROVE_REFUND"}, key="k-2") for _ in range(2)]
    assert answers[0]["code"] == answers[1]["code"] == errors.ALREADY_DECIDED
    assert answers[0]["message"] == answers[1]["message"]


def test_reject_202606_can_offer_a_partial_refund_after_receiving_the_package(busy):
    sandbox, seller = busy
    shipped = first(sandbox.returns_for(seller.shop["id"]), return_status="BUYER_SHIPPED_ITEM")["return_id"]
    reason = seller.reasons(shipped)[0]["name"]
    body = {"decision": "OFFER_PARTIAL_REFUND_AFTER_RECEIVING_PKG", "reject_reason": reason,
            "partial_refund_amount": {"partial_refund_total": "3", "currency": "USD"}}
    assert seller.reject(shipped, body)["code"] == errors.INVALID_PARAMETER  # not in 202309
    assert seller.reject(shipped, body, version="202606")["code"] == 0
    assert seller.one(shipped)["return_status"] == "AWAITING_BUYER_RESPONSE"


# --- auth ------------------------------------------------------------------------------------------------


def test_bad_sign_is_refused_with_401(world):
    seller = Seller(*world)
    answer = seller.call("POST", SEARCH, body={}, secret="not-the-secret")
    assert answer.status_code == 401 and answer.json()["code"] == errors.SIGN_INVALID
    tampered = seller.call("POST", SEARCH, body={})
    assert tampered.status_code == 200
    query = dict(tampered.request.url.params) | {"page_size": "20"}  # changed after signing
    resent = seller.http.post(SEARCH, params=query, content=b"{}", headers=dict(tampered.request.headers))
    assert resent.json()["code"] == errors.SIGN_INVALID


def test_sign_covers_the_raw_body_as_sent(world):
    seller = Seller(*world)
    query = {"app_key": SANDBOX_APP_KEY, "timestamp": str(NOW), "shop_cipher": seller.shop["cipher"]}
    query["sign"] = sign(SEARCH, query, b'{"return_types": ["REFUND"]}', SANDBOX_APP_SECRET)
    headers = {"x-tts-access-token": seller.tokens["access_token"], "content-type": "application/json"}
    same_json_other_bytes = seller.http.post(SEARCH, params=query, content=b'{"return_types":["REFUND"]}',
                                             headers=headers)
    assert same_json_other_bytes.json()["code"] == errors.SIGN_INVALID


def test_timestamp_must_be_within_5_minutes_past_and_30_seconds_ahead_of_the_wall_clock(world):
    seller = Seller(*world)
    for offset, code in ((-301, errors.COMMON_PARAM_INVALID), (-290, 0), (25, 0), (31, errors.COMMON_PARAM_INVALID)):
        answer = seller.call("POST", SEARCH, body={}, timestamp=NOW + offset)
        assert answer.json()["code"] == code, offset
    stale = seller.call("POST", SEARCH, body={}, timestamp=NOW - 3600)
    assert stale.status_code == 400 and "timestamp" in stale.json()["message"]


def test_timestamps_follow_the_wall_clock_even_after_the_world_clock_moves():
    clock = Clock()
    sandbox = make(clock=clock)
    seller = Seller(sandbox, clock)
    sandbox.advance(DAY)
    assert seller.search()["code"] == 0  # signed with the wall clock, which did not move
    assert seller.call("POST", SEARCH, body={}, timestamp=sandbox.now()).json()["code"] == errors.COMMON_PARAM_INVALID


def test_wrong_app_key_and_missing_common_params_are_refused(world):
    seller = Seller(*world)
    wrong = seller.call("POST", SEARCH, body={}, app_key="someone-else")
    assert wrong.status_code == 400 and wrong.json()["code"] == errors.COMMON_PARAM_INVALID
    no_sign = seller.http.post(SEARCH, params={"app_key": SANDBOX_APP_KEY, "timestamp": str(NOW)}, content=b"{}")
    assert no_sign.json()["code"] == errors.COMMON_PARAM_INVALID and "sign" in no_sign.json()["message"]


def test_access_token_must_be_present_known_and_not_revoked():
    clock = Clock()
    sandbox = make(clock=clock)
    seller = Seller(sandbox, clock)
    assert seller.call("POST", SEARCH, body={}, token=None).json()["code"] == errors.COMMON_PARAM_INVALID
    unknown = seller.call("POST", SEARCH, body={}, token="TTP_made_up").json()
    assert unknown["code"] == errors.COMMON_PARAM_INVALID and "not issued" in unknown["message"]
    sandbox.revoke(seller.tokens["access_token"])
    revoked = seller.call("POST", SEARCH, body={})
    assert revoked.status_code == 400
    assert revoked.json()["code"] == errors.COMMON_PARAM_INVALID and "revoked" in revoked.json()["message"]
    refresh = token_call(seller, "refresh", refresh_token=seller.tokens["refresh_token"])
    assert refresh["code"] == errors.AUTH_CODE_INVALID


def token_call(seller: Seller, kind: str, **params: str) -> dict:
    grant_type = "authorized_code" if kind == "get" else "refresh_token"
    query = {"app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "grant_type": grant_type, **params}
    return seller.http.get(f"/api/v2/token/{kind}", params=query).json()


def test_expired_access_token_gets_105002_and_a_refresh_brings_a_new_pair():
    clock = Clock()
    sandbox = make(clock=clock)
    seller = Seller(sandbox, clock)
    sandbox.expire_access_token(seller.tokens["access_token"])
    expired = seller.call("POST", SEARCH, body={})
    assert expired.status_code == 401 and expired.json()["code"] == errors.TOKEN_EXPIRED
    fresh = token_call(seller, "refresh", refresh_token=seller.tokens["refresh_token"])
    assert fresh["code"] == 0
    assert fresh["data"]["refresh_token"] != seller.tokens["refresh_token"]
    assert token_call(seller, "refresh", refresh_token=seller.tokens["refresh_token"])["code"] == (
        errors.AUTH_CODE_INVALID)  # the old refresh token is spent
    seller.tokens = fresh["data"]
    assert seller.search()["code"] == 0


def test_access_tokens_live_about_seven_days_of_world_time():
    clock = Clock()
    sandbox = make(clock=clock)
    seller = Seller(sandbox, clock)
    assert seller.tokens["access_token_expire_in"] == NOW + 7 * DAY  # absolute, despite the name
    sandbox.advance(7 * DAY - 60)
    assert seller.search()["code"] == 0
    sandbox.advance(120)
    assert seller.search()["code"] == errors.TOKEN_EXPIRED


def test_auth_code_works_once_within_30_minutes_and_only_with_the_app_credentials():
    clock = Clock()
    sandbox = make(clock=clock)
    seller = Seller(sandbox, clock, tokens={"access_token": "none"})
    code = sandbox.issue_auth_code()
    assert token_call(seller, "get", auth_code=code, app_secret="wrong")["code"] == errors.COMMON_PARAM_INVALID
    wrong_grant = seller.http.get("/api/v2/token/get", params={
        "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "auth_code": code,
        "grant_type": "authorization_code"}).json()
    assert wrong_grant["code"] == errors.INVALID_PARAMETER and "authorized_code" in wrong_grant["message"]
    got = token_call(seller, "get", auth_code=code)
    assert got["code"] == 0
    assert set(got["data"]) == {"access_token", "access_token_expire_in", "refresh_token", "refresh_token_expire_in",
                                "open_id", "seller_name", "seller_base_region", "user_type", "granted_scopes"}
    assert got["data"]["user_type"] == 0 and "seller.return_refund.basic" in got["data"]["granted_scopes"]
    assert token_call(seller, "get", auth_code=code)["code"] == errors.AUTH_CODE_INVALID
    late = sandbox.issue_auth_code()
    sandbox.advance(31 * 60)
    assert token_call(seller, "get", auth_code=late)["code"] == errors.AUTH_CODE_INVALID
    assert token_call(seller, "get", auth_code="TTP_bogus")["code"] == errors.AUTH_CODE_INVALID


def test_a_token_reaches_only_the_shops_it_was_granted():
    clock = Clock()
    sandbox = make(clock=clock)
    second = sandbox.shops[1]
    seller = Seller(sandbox, clock, tokens=sandbox.issue_tokens([second["id"]]), shop=1)
    listed = seller.call("GET", SHOPS).json()
    assert listed["code"] == 0 and listed["data"]["shops"] == [second]
    assert seller.search()["code"] == 0
    first_shop = seller.call("POST", SEARCH, body={}, cipher=sandbox.shops[0]["cipher"])
    assert first_shop.json()["code"] == errors.TOKEN_SHOP_MISMATCH
    assert seller.call("POST", SEARCH, body={}, cipher="GCP_nope").json()["code"] == errors.TOKEN_SHOP_MISMATCH


def test_shop_cipher_is_required_on_return_refund_and_forbidden_on_authorization(world):
    seller = Seller(*world)
    missing = seller.call("POST", SEARCH, body={}, cipher=None).json()
    assert missing["code"] == errors.SHOP_CIPHER_MISSING
    query = {"app_key": SANDBOX_APP_KEY, "timestamp": str(NOW), "shop_cipher": seller.shop["cipher"]}
    query["sign"] = sign(SHOPS, query, b"", SANDBOX_APP_SECRET)
    answer = seller.http.get(SHOPS, params=query, headers={"x-tts-access-token": seller.tokens["access_token"]})
    assert answer.status_code == 400 and answer.json()["code"] == errors.COMMON_PARAM_INVALID
    assert "Unexpected identifier shop_cipher" in answer.json()["message"]


def test_unknown_paths_methods_and_versions_get_gateway_errors(world):
    seller = Seller(*world)
    path = seller.call("GET", "/return_refund/202309/nothing_here")
    assert (path.status_code, path.json()["code"]) == (404, errors.INVALID_PATH)
    method = seller.call("GET", SEARCH)
    assert (method.status_code, method.json()["code"]) == (405, errors.INVALID_METHOD)
    version = seller.call("POST", "/return_refund/202401/returns/search", body={})
    assert (version.status_code, version.json()["code"]) == (404, errors.INVALID_VERSION)


def test_every_answer_is_a_tiktok_envelope(world):
    seller = Seller(*world)
    for answer in (seller.call("POST", SEARCH, body={}), seller.call("GET", "/nope"),
                   seller.call("POST", SEARCH, body={}, secret="x")):
        body = answer.json()
        assert set(body) == {"code", "message", "request_id", "data"}
        assert re.fullmatch(r"\d{14}[0-9A-F]{20}", body["request_id"])
        assert answer.headers["x-tt-logid"] == body["request_id"]


# --- Search Returns ----------------------------------------------------------------------------------


def test_body_must_be_a_json_object(world):
    seller = Seller(*world)
    for raw in (b"not json", b"[1, 2]"):
        answer = seller.call("POST", SEARCH, body=raw).json()
        assert answer["code"] == errors.BODY_NOT_JSON


@pytest.mark.parametrize("page_size", ["9", "51", "0", "ten", "-10", ""])
def test_page_size_outside_10_to_50_is_a_parameter_error(world, page_size):
    answer = Seller(*world).call("POST", SEARCH, {"page_size": page_size}, {})
    assert answer.status_code == 400
    assert answer.json()["code"] == errors.INVALID_PARAMETER and "page_size" in answer.json()["message"]


def test_page_size_defaults_to_10_and_accepts_the_bounds(world):
    seller = Seller(*world)
    assert len(seller.search()["data"]["return_orders"]) == 10
    assert len(seller.search({"page_size": "50"})["data"]["return_orders"]) == 50
    assert len(seller.search({"page_size": "10"})["data"]["return_orders"]) == 10


@pytest.mark.parametrize("params", [{"sort_field": "status"}, {"sort_order": "desc"}, {"sort_order": "UP"}])
def test_unknown_sort_is_a_parameter_error(world, params):
    answer = Seller(*world).search(params)
    assert answer["code"] == errors.INVALID_PARAMETER


@pytest.mark.parametrize("sort_field", ["create_time", "update_time"])
@pytest.mark.parametrize("sort_order", ["ASC", "DESC"])
def test_paging_returns_every_return_exactly_once_in_order(world, sort_field, sort_order):
    sandbox, clock = world
    found = Seller(sandbox, clock).all_pages(sort_field, sort_order)
    truth = sandbox.returns_for(sandbox.shops[0]["id"])
    assert len(found) == len({r["return_id"] for r in found}) == len(truth)
    assert sorted(found, key=lambda r: r["return_id"]) == sorted(truth, key=lambda r: r["return_id"])
    keys = [(r[sort_field], int(r["return_id"])) for r in found]
    assert keys == sorted(keys, reverse=sort_order == "DESC")


def test_total_count_and_the_last_page(world):
    seller = Seller(*world)
    first_page = seller.search({"page_size": "50"})["data"]
    assert first_page["total_count"] == len(world[0].returns_for(seller.shop["id"]))
    assert first_page["next_page_token"]


def test_an_empty_page_omits_return_orders(world):
    answer = Seller(*world).search(body={"return_ids": ["1"]})
    assert answer["code"] == 0
    assert answer["data"] == {"total_count": 0, "next_page_token": ""}


def test_filters_select_exactly_the_matching_returns(world):
    sandbox, clock = world
    seller = Seller(sandbox, clock)
    truth = sandbox.returns_for(seller.shop["id"])
    some = truth[::37]
    middle = truth[len(truth) // 2]
    cases = [
        ({"return_ids": [r["return_id"] for r in some]}, lambda r: r in some),
        ({"order_ids": [some[0]["order_id"]]}, lambda r: r["order_id"] == some[0]["order_id"]),
        ({"return_types": ["REPLACEMENT"]}, lambda r: r["return_type"] == "REPLACEMENT"),
        ({"return_status": ["REFUND_OR_RETURN_REQUEST_REJECT", "BUYER_SHIPPED_ITEM"]},
         lambda r: r["return_status"] in ("REFUND_OR_RETURN_REQUEST_REJECT", "BUYER_SHIPPED_ITEM")),
        ({"arbitration_status": ["CLOSED", "SUPPORT_SELLER"]},
         lambda r: r.get("arbitration_status") in ("CLOSED", "SUPPORT_SELLER")),
        ({"create_time_ge": middle["create_time"]}, lambda r: r["create_time"] >= middle["create_time"]),
        ({"create_time_lt": middle["create_time"]}, lambda r: r["create_time"] < middle["create_time"]),
        ({"update_time_ge": ANCHOR - 5 * DAY, "update_time_lt": ANCHOR},
         lambda r: ANCHOR - 5 * DAY <= r["update_time"] < ANCHOR),
        ({"return_types": ["REFUND"], "create_time_ge": ANCHOR - 30 * DAY, "some_future_field": 1},
         lambda r: r["return_type"] == "REFUND" and r["create_time"] >= ANCHOR - 30 * DAY),
    ]
    for body, wanted in cases:
        expected = {r["return_id"] for r in truth if wanted(r)}
        assert expected, body
        assert {r["return_id"] for r in seller.all_pages(body=body)} == expected, body


def test_buyer_filter_finds_the_buyers_returns(world):
    sandbox, clock = world
    seller = Seller(sandbox, clock)
    return_id = sandbox.returns_for(seller.shop["id"])[5]["return_id"]
    buyer = sandbox._world.case(return_id).buyer_user_id  # buyer ids are not in the return object
    found = seller.all_pages(body={"buyer_user_ids": [buyer]})
    assert return_id in {r["return_id"] for r in found}
    assert seller.search(body={"buyer_user_ids": ["1"]})["data"]["total_count"] == 0


@pytest.mark.parametrize("body", [{"return_types": "REFUND"}, {"return_status": ["DONE"]},
                                  {"create_time_ge": "yesterday"}, {"return_ids": ["abc"]}])
def test_malformed_filters_are_parameter_errors(world, body):
    assert Seller(*world).search(body=body)["code"] == errors.INVALID_PARAMETER


def test_search_202602_has_the_same_semantics(world):
    seller = Seller(*world)
    params = {"page_size": "20", "sort_field": "update_time", "sort_order": "DESC"}
    old, new = seller.search(params, version="202309"), seller.search(params, version="202602")
    assert old["data"] == new["data"]


def test_a_return_updated_mid_paging_under_update_time_asc_is_seen_again_not_lost(busy):
    sandbox, seller = busy
    params = {"page_size": "50", "sort_field": "update_time", "sort_order": "ASC"}
    target = first(sandbox.returns_for(seller.shop["id"]), return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    body = {"update_time_ge": target["update_time"]}  # an incremental sync window starting at it
    page = seller.search(params, body)["data"]
    assert target["return_id"] in {r["return_id"] for r in page["return_orders"]} and page["next_page_token"]
    decision = "APPROVE_REFUND" if target["return_type"] == "REFUND" else "APPROVE_RETURN"
    assert seller.approve(target["return_id"], {"decision": decision})["code"] == 0
    seen = [r["return_id"] for r in page["return_orders"]]
    token = page["next_page_token"]
    while token:
        page = seller.search({**params, "page_token": token}, body)["data"]
        seen += [r["return_id"] for r in page.get("return_orders", [])]
        token = page["next_page_token"]
    assert seen.count(target["return_id"]) == 2


def test_tampered_garbage_or_foreign_page_tokens_are_parameter_errors(world):
    seller = Seller(*world)
    token = seller.search({"page_size": "10"})["data"]["next_page_token"]
    assert seller.search({"page_size": "10", "page_token": token})["code"] == 0
    value, key, digest, mac = base64.b64decode(token).decode().split(":")
    forged = base64.b64encode(f"{value}:{int(key) - 5}:{digest}:{mac}".encode()).decode()
    for bad in (forged, "garbage!!", base64.b64encode(b"1:2").decode()):
        answer = seller.search({"page_token": bad})
        assert answer["code"] == errors.INVALID_PARAMETER and "page_token" in answer["message"]
    other_query = seller.search({"page_token": token, "sort_order": "DESC"})
    assert other_query["code"] == errors.INVALID_PARAMETER


# --- faults ----------------------------------------------------------------------------------------------


def test_429_carries_retry_after_and_counts_down(world):
    sandbox, clock = world
    seller = Seller(sandbox, clock)
    sandbox.faults.inject("429", count=2, retry_after=3)
    assert sandbox.faults.pending == 2
    for _ in range(2):
        limited = seller.call("POST", SEARCH, body={})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        assert limited.json()["code"] == errors.TOO_MANY_REQUESTS
    assert sandbox.faults.pending == 0
    assert seller.call("POST", SEARCH, body={}).status_code == 200


def test_faults_can_target_a_path_prefix_and_be_cleared(world):
    sandbox, clock = world
    seller = Seller(sandbox, clock)
    sandbox.faults.inject("500", count=5, path_prefix="/authorization")
    assert seller.call("POST", SEARCH, body={}).status_code == 200
    failed = seller.call("GET", SHOPS)
    assert failed.status_code == 500 and failed.json()["code"] == errors.INTERNAL_ERROR
    sandbox.faults.clear()
    assert seller.call("GET", SHOPS).status_code == 200
    with pytest.raises(ValueError):
        sandbox.faults.inject("gremlins")


def test_503_malformed_truncated_and_expired_token_faults(world):
    sandbox, clock = world
    seller = Seller(sandbox, clock)
    sandbox.faults.inject("503")
    assert seller.call("POST", SEARCH, body={}).status_code == 503
    for kind in ("malformed", "truncate"):
        sandbox.faults.inject(kind)
        answer = seller.call("POST", SEARCH, body={})
        assert answer.status_code == 200
        with pytest.raises(ValueError):
            answer.json()
    sandbox.faults.inject("expire_token")
    assert seller.call("POST", SEARCH, body={}).json()["code"] == errors.TOKEN_EXPIRED
    assert seller.search()["code"] == 0


def test_a_truncated_or_reset_write_still_happened(busy):
    sandbox, seller = busy
    pending = [r["return_id"] for r in sandbox.returns_for(seller.shop["id"])
               if r["return_type"] == "REFUND" and r["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"]
    sandbox.faults.inject("truncate")
    with pytest.raises(ValueError):
        seller.approve(pending[0], {"decision": "APPROVE_REFUND"}, key="t-1")
    sandbox.faults.inject("reset")
    with pytest.raises(httpx.ReadError):
        seller.approve(pending[1], {"decision": "APPROVE_REFUND"}, key="t-2")
    for return_id, key in ((pending[0], "t-1"), (pending[1], "t-2")):
        assert seller.one(return_id)["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
        assert seller.approve(return_id, {"decision": "APPROVE_REFUND"}, key=key)["code"] == 0  # safe retry


def test_timeout_fault_delays_the_answer_or_times_the_client_out(world):
    sandbox, clock = world
    seller = Seller(sandbox, clock, http=httpx.Client(transport=sandbox.transport(), base_url="https://s",
                                                      timeout=0.2))
    sandbox.faults.inject("timeout", delay=0.05)
    started = time.monotonic()
    assert seller.call("POST", SEARCH, body={}).status_code == 200
    assert time.monotonic() - started >= 0.05
    sandbox.faults.inject("timeout", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        seller.call("POST", SEARCH, body={})


def test_handle_reports_the_fault_it_applied(world):
    sandbox, _ = world
    sandbox.faults.inject("malformed")
    response = sandbox.handle("GET", SHOPS, [], {}, b"")
    assert response.fault == "malformed" and response.status == 200
    assert sandbox.handle("GET", SHOPS, [], {}, b"").fault is None


# --- persistence -------------------------------------------------------------------------------------


def test_a_restarted_sandbox_keeps_anchor_tokens_decisions_and_idempotency(tmp_path):
    state = tmp_path / "sandbox_state.json"
    clock = Clock()
    sandbox = make(returns=1500, shops=1, clock=clock, state_path=state)
    seller = Seller(sandbox, clock)
    r = first(sandbox.returns_for(seller.shop["id"]), return_type="REFUND",
              return_status="RETURN_OR_REFUND_REQUEST_PENDING")["return_id"]
    assert seller.approve(r, {"decision": "APPROVE_REFUND"}, key="p-1")["code"] == 0
    sandbox.advance(HOUR)
    before = sandbox.returns_for(seller.shop["id"])
    code = sandbox.issue_auth_code()
    assert token_call(Seller(make(returns=1500, shops=1, clock=clock, state_path=state), clock, tokens={}),
                      "get", auth_code=code)["code"] == 0  # issued codes survive a restart
    clock.t += DAY  # the app restarts the next day
    restarted = make(returns=1500, shops=1, clock=clock, state_path=state)
    assert restarted.anchor == sandbox.anchor
    assert restarted.now() == sandbox.now()
    again = Seller(restarted, clock, tokens=seller.tokens)
    assert again.search()["code"] == 0
    assert again.approve(r, {"decision": "APPROVE_REFUND"}, key="p-1")["code"] == 0
    after = {x["return_id"]: x for x in restarted.returns_for(seller.shop["id"])}
    assert all(after[x["return_id"]]["create_time"] == x["create_time"] for x in before)
    assert after[r]["return_status"] == "RETURN_OR_REFUND_REQUEST_COMPLETE"
    assert [x["event"] for x in again.records(r)].count("SELLER_APPROVED_REFUND") == 1
    assert token_call(again, "get", auth_code=code)["code"] == errors.AUTH_CODE_INVALID  # used before
    assert not list(tmp_path.glob("*.tmp"))  # every write went through a temp file and os.replace


def test_processes_sharing_a_state_file_see_each_others_tokens_and_decisions(tmp_path):
    state = tmp_path / "returns.sandbox.json"
    clock = Clock()
    app = make(returns=1500, shops=1, clock=clock, state_path=state)
    app_seller = Seller(app, clock)
    cron = make(returns=1500, shops=1, clock=clock, state_path=state)  # a cron sync starts meanwhile
    cron_seller = Seller(cron, clock, tokens=app_seller.tokens)
    old_refresh = app_seller.tokens["refresh_token"]
    fresh = token_call(cron_seller, "refresh", refresh_token=old_refresh)["data"]
    app_seller.tokens = cron_seller.tokens = fresh  # the database now holds the tokens cron got
    assert app_seller.search()["code"] == 0
    assert token_call(app_seller, "refresh", refresh_token=old_refresh)["code"] == errors.AUTH_CODE_INVALID
    r = first(app.returns_for(app_seller.shop["id"]), return_type="REFUND",
              return_status="RETURN_OR_REFUND_REQUEST_PENDING")["return_id"]
    assert app_seller.approve(r, {"decision": "APPROVE_REFUND"})["code"] == 0
    app.issue_auth_code()  # a later write by the app keeps what cron wrote
    assert cron_seller.one(r)["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
    restarted = make(returns=1500, shops=1, clock=clock, state_path=state)
    assert Seller(restarted, clock, tokens=fresh).one(r)["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"


def test_restart_at_the_same_moment_serves_identical_returns(tmp_path):
    state = tmp_path / "state.json"
    clock = Clock()
    sandbox = make(clock=clock, state_path=state)
    seller = Seller(sandbox, clock)
    r = first(sandbox.returns_for(seller.shop["id"]), return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    decision = "APPROVE_REFUND" if r["return_type"] == "REFUND" else "APPROVE_RETURN"
    assert seller.approve(r["return_id"], {"decision": decision})["code"] == 0
    restarted = make(clock=clock, state_path=state)
    for shop in sandbox.shops:
        assert restarted.returns_for(shop["id"]) == sandbox.returns_for(shop["id"])


def test_a_state_file_from_other_settings_is_refused(tmp_path):
    state = tmp_path / "state.json"
    make(seed=1, state_path=state)
    with pytest.raises(SandboxStateError, match="Delete it"):
        make(seed=2, state_path=state)
    with pytest.raises(SandboxStateError):
        make(seed=1, state_path=state, anchor=ANCHOR - DAY)
    state.write_text("{not json")
    with pytest.raises(SandboxStateError):
        make(seed=1, state_path=state)


# --- real HTTP ---------------------------------------------------------------------------------------


def test_the_http_server_answers_api_and_token_paths_on_localhost():
    clock = Clock()
    sandbox = make(clock=clock)
    with sandbox.serve(host="127.0.0.1", port=0) as server, httpx.Client(base_url=server.url) as http:
        assert server.url.startswith("http://127.0.0.1:")
        seller = Seller(sandbox, clock, http=http, tokens={"access_token": "none"})
        tokens = token_call(seller, "get", auth_code=sandbox.issue_auth_code())
        assert tokens["code"] == 0
        seller.tokens = tokens["data"]
        assert seller.call("GET", SHOPS).json()["data"]["shops"] == sandbox.shops
        assert len(seller.all_pages()) == len(sandbox.returns_for(seller.shop["id"]))
        assert seller.call("POST", SEARCH, body={}, secret="x").status_code == 401


def test_http_faults_reset_the_connection_and_time_out_the_client():
    clock = Clock()
    sandbox = make(clock=clock)
    with sandbox.serve() as server, httpx.Client(base_url=server.url, timeout=0.3) as http:
        seller = Seller(sandbox, clock, http=http)
        sandbox.faults.inject("reset")
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            seller.call("POST", SEARCH, body={})
        sandbox.faults.inject("timeout", delay=1.0)
        with pytest.raises(httpx.ReadTimeout):
            seller.call("POST", SEARCH, body={})
        assert seller.search()["code"] == 0


@pytest.mark.slow
def test_paging_10000_returns_over_http_gives_each_return_once():
    # how fast is measured in bench/ (bench_sync), not here
    clock = Clock()
    sandbox = make(returns=10_000, shops=1, clock=clock)
    with sandbox.serve() as server, httpx.Client(base_url=server.url) as http:
        seller = Seller(sandbox, clock, http=http)
        found = seller.all_pages("update_time", "ASC")
    assert len(found) == len({r["return_id"] for r in found}) >= 10_000


def test_serve_forever_prints_how_to_connect_and_stops_on_request(tmp_path):
    out, stop = io.StringIO(), threading.Event()
    thread = threading.Thread(target=serve_forever, kwargs={
        "port": 0, "seed": 3, "returns": 50, "shops": 1, "state_path": tmp_path / "s.json", "out": out,
        "stop": stop})
    thread.start()
    wait_until(lambda: "Ctrl-C" in out.getvalue(), "the banner")
    text = out.getvalue()
    url = re.search(r"Base URL \(API and auth\):\s+(\S+)", text).group(1)
    code = re.search(r"Auth code:\s+(\S+)", text).group(1)
    assert SANDBOX_APP_KEY in text and SANDBOX_APP_SECRET in text and "SANDBOX" in text
    assert f"--auth-code {code} --api-base {url} --auth-base {url}" in text
    assert "python -m returns_core accounts add" in text
    answer = httpx.get(f"{url}/api/v2/token/get", params={
        "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "auth_code": code,
        "grant_type": "authorized_code"}).json()
    assert answer["code"] == 0
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and "stopped" in out.getvalue()
