"""The sandbox answers what TikTok's OpenAPI contract promises, field for field.

Real responses of every implemented endpoint (successes, empty pages and error envelopes) are
validated with openapi-core against the operation's 200 schema in shared/spec. The spec does not
declare app_key/timestamp/sign, so only response bodies are checked. Validation is strict: every
object schema is closed (additionalProperties: false), so a field the spec does not know fails.
"""

from __future__ import annotations

import json

import httpx
import pytest
from openapi_core import OpenAPI

from returns_core import domain
from returns_core.tiktok import errors
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox
from returns_core.tiktok.signing import sign
from tests.tiktok_spec import SEARCH, SERVER, closed_contract, conforms, needs_spec

pytestmark = needs_spec
NOW = 1_790_000_000 + 13 * 3600


@pytest.fixture(scope="module")
def contract() -> OpenAPI:
    return closed_contract("tiktok_return_refund.openapi.yaml")


@pytest.fixture(scope="module")
def newer() -> OpenAPI:
    return closed_contract("tiktok_return_refund_newer.openapi.yaml")


class Seller:
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.http = httpx.Client(transport=sandbox.transport(), base_url=SERVER)
        self.token = sandbox.issue_tokens()["access_token"]
        self.cipher = sandbox.shops[0]["cipher"]

    def call(self, method: str, path: str, params: dict | None = None, body: dict | None = None,
             secret: str = SANDBOX_APP_SECRET) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        query = {"app_key": SANDBOX_APP_KEY, "timestamp": str(NOW), **(params or {})}
        if not path.startswith("/authorization"):
            query["shop_cipher"] = self.cipher
        query["sign"] = sign(path, query, raw, secret)
        return self.http.request(method, path, params=query, content=raw,
                                 headers={"x-tts-access-token": self.token, "content-type": "application/json"})


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(seed=5, shops=1, returns=1500, wall_clock=lambda: NOW)


@pytest.fixture
def seller(sandbox: Sandbox) -> Seller:
    return Seller(sandbox)


def test_every_search_page_conforms_and_every_status_is_one_the_domain_maps(contract, seller):
    seen, token = 0, ""
    while True:
        params = {"page_size": "50", "sort_field": "update_time", "sort_order": "DESC"}
        if token:
            params["page_token"] = token
        page = conforms(contract, "POST", SEARCH, seller.call("POST", SEARCH, params, {}))["data"]
        for r in page["return_orders"]:
            assert r["return_status"] in domain.MARKETPLACE_STATUSES
            assert r["return_type"] in domain.TYPE_MAP
        seen += len(page["return_orders"])
        token = page["next_page_token"]
        if not token:
            break
    assert seen == page["total_count"] >= 1500


def test_filtered_and_empty_search_pages_conform(contract, seller):
    bodies = [{"return_status": ["BUYER_SHIPPED_ITEM"], "return_types": ["RETURN_AND_REFUND"]},
              {"arbitration_status": ["IN_PROGRESS", "CLOSED"], "create_time_ge": NOW - 60 * 86400},
              {"seller_proposed_return_type": ["PARTIAL_REFUND"]},
              {"return_ids": ["4035000000000000001"]}]
    for body in bodies:
        conforms(contract, "POST", SEARCH, seller.call("POST", SEARCH, {"page_size": "20"}, body))
    empty = seller.call("POST", SEARCH, body={"order_ids": ["1"]}).json()["data"]
    assert "return_orders" not in empty


def test_search_202602_conforms_to_the_newer_contract(newer, seller):
    path = "/return_refund/202602/returns/search"
    page = conforms(newer, "POST", path, seller.call("POST", path, {"page_size": "50"}, {}))
    assert page["code"] == 0 and len(page["data"]["return_orders"]) == 50


def test_records_conform(contract, sandbox, seller):
    returns = sandbox.returns_for(sandbox.shops[0]["id"])
    picks = returns[::60] + [r for r in returns if r.get("arbitration_status")][:5]
    for r in picks:
        path = f"/return_refund/202309/returns/{r['return_id']}/records"
        answer = conforms(contract, "GET", path, seller.call("GET", path))
        assert answer["code"] == 0 and answer["data"]["records"]


def test_reject_reasons_conform(contract, sandbox, seller):
    path = "/return_refund/202309/reject_reasons"
    returns = sandbox.returns_for(sandbox.shops[0]["id"])
    for status in ("RETURN_OR_REFUND_REQUEST_PENDING", "BUYER_SHIPPED_ITEM", "RETURN_OR_REFUND_REQUEST_COMPLETE"):
        r = next(x for x in returns if x["return_status"] == status)
        conforms(contract, "GET", path, seller.call("GET", path, {"return_or_cancel_id": r["return_id"]}))
    assert conforms(contract, "GET", path, seller.call("GET", path))["code"] == errors.INVALID_PARAMETER


def test_approve_and_reject_answers_conform(contract, newer, sandbox, seller):
    returns = sandbox.returns_for(sandbox.shops[0]["id"])
    pending = [r for r in returns if r["return_type"] == "REFUND" and r["return_status"].endswith("PENDING")]
    approve = f"/return_refund/202309/returns/{pending[0]['return_id']}/approve"
    assert conforms(contract, "POST", approve, seller.call("POST", approve, body={"decision": "APPROVE_REFUND"}))[
        "data"] == {}
    again = conforms(contract, "POST", approve, seller.call("POST", approve, body={"decision": "APPROVE_REFUND"}))
    assert again["code"] == errors.ALREADY_DECIDED
    reason = seller.call("GET", "/return_refund/202309/reject_reasons",
                         {"return_or_cancel_id": pending[1]["return_id"]}).json()["data"]["reasons"][0]["name"]
    reject = f"/return_refund/202309/returns/{pending[1]['return_id']}/reject"
    body = {"decision": "REJECT_REFUND", "reject_reason": reason, "comment": "Tracking shows delivered"}
    assert conforms(contract, "POST", reject, seller.call("POST", reject, body=body))["code"] == 0
    reject_new = f"/return_refund/202606/returns/{pending[2]['return_id']}/reject"
    assert conforms(newer, "POST", reject_new, seller.call("POST", reject_new, body=body))["code"] == 0


def test_authorized_shops_conform_to_both_contracts(contract, newer, seller):
    path = "/authorization/202309/shops"
    for api in (contract, newer):
        assert conforms(api, "GET", path, seller.call("GET", path))["data"]["shops"]


def test_error_envelopes_conform(contract, sandbox, seller):
    bad_sign = seller.call("POST", SEARCH, body={}, secret="wrong")
    assert conforms(contract, "POST", SEARCH, bad_sign)["code"] == errors.SIGN_INVALID
    bad_size = seller.call("POST", SEARCH, {"page_size": "5"}, {})
    assert conforms(contract, "POST", SEARCH, bad_size)["code"] == errors.INVALID_PARAMETER
    sandbox.faults.inject("429")
    limited = seller.call("POST", SEARCH, body={})
    assert conforms(contract, "POST", SEARCH, limited)["code"] == errors.TOO_MANY_REQUESTS
    seller.token = "TTP_unknown"
    assert conforms(contract, "GET", "/authorization/202309/shops",
                    seller.call("GET", "/authorization/202309/shops"))["code"] == errors.COMMON_PARAM_INVALID



def test_decision_eligibility_conforms_to_the_newer_contract_and_knows_its_enum(newer, sandbox, seller):
    import yaml

    from returns_core.tiktok.client import DECISION_ELIGIBILITY_PATH, ELIGIBILITY_DECISIONS
    from returns_core.tiktok.sandbox.lifecycle import ELIGIBILITY_DECISIONS as SANDBOX_DECISIONS
    from tests.tiktok_spec import SPEC_DIR

    spec = yaml.safe_load((SPEC_DIR / "tiktok_return_refund_newer.openapi.yaml").read_text())
    enum = spec["components"]["schemas"]["GetDecisionEligibilityCheckDecisionsItem"]["enum"]
    assert sorted(ELIGIBILITY_DECISIONS) == sorted(SANDBOX_DECISIONS) == sorted(enum)
    path = DECISION_ELIGIBILITY_PATH
    returns = sandbox.returns_for(sandbox.shops[0]["id"])
    for status in ("RETURN_OR_REFUND_REQUEST_PENDING", "BUYER_SHIPPED_ITEM", "REPLACEMENT_REQUEST_PENDING",
                   "RETURN_OR_REFUND_REQUEST_COMPLETE"):
        r = next(x for x in returns if x["return_status"] == status)
        every = conforms(newer, "GET", path, seller.call("GET", path, {"return_or_cancel_id": r["return_id"]}))
        assert [d["decision"] for d in every["data"]["decisions"]] == list(SANDBOX_DECISIONS)
        asked = conforms(newer, "GET", path, seller.call("GET", path, {
            "return_or_cancel_id": r["return_id"], "check_decisions": "APPROVE_REFUND,REJECT_REFUND,REJECT_RETURN"}))
        answers = asked["data"]["decisions"]
        assert [d["decision"] for d in answers] == ["APPROVE_REFUND", "REJECT_REFUND", "REJECT_RETURN"]
        for answer in answers:
            assert answer["eligible"] == ("ineligible_code" not in answer)
            assert ("available_reject_reasons" in answer) == (answer["eligible"] and answer["decision"].startswith(
                "REJECT"))
    bad = seller.call("GET", path, {"return_or_cancel_id": returns[0]["return_id"], "check_decisions": "BOGUS"})
    assert conforms(newer, "GET", path, bad)["code"] == errors.INVALID_PARAMETER
    missing = seller.call("GET", path)
    assert conforms(newer, "GET", path, missing)["code"] == errors.INVALID_PARAMETER
    old_version = seller.call("GET", "/return_refund/202309/decision_eligibility",
                              {"return_or_cancel_id": returns[0]["return_id"]})
    assert old_version.json()["code"] == errors.INVALID_VERSION
