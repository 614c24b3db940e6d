"""TikTokClient and AuthClient against a scripted httpx.MockTransport: signing on the wire,
retries, token refresh, pagination, validation and secret hygiene."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from returns_core.tiktok import errors
from returns_core.tiktok.client import AuthClient, RetryPolicy, TikTokClient, TokenSet
from returns_core.tiktok.signing import sign

APP_KEY = "29a39d"
SECRET = "e59af819cc-SECRET"
ACCESS = "TTP_access_SECRET_1"
REFRESH = "TTP_refresh_SECRET_1"
CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"
API = "https://open-api.test"
AUTH = "https://auth.test"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def ok(data: dict | None = None) -> httpx.Response:
    return httpx.Response(200, json={"code": 0, "message": "Success", "request_id": "rid0", "data": data or {}})


def fail(code: int, message: str = "nope", status: int = 200, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers,
                          json={"code": code, "message": message, "request_id": "rid1", "data": None})


def token_data(n: int) -> dict:
    return {"access_token": f"TTP_access_NEW_{n}", "refresh_token": f"TTP_refresh_NEW_{n}",
            "access_token_expire_in": 1700600000, "refresh_token_expire_in": 1730000000,
            "open_id": "oid", "seller_name": "Shop", "seller_base_region": "GB", "user_type": 0,
            "granted_scopes": ["seller.return_refund.basic"]}


class Script:
    """A fake TikTok: answers from a per-host queue of replies and records every request."""

    def __init__(self, api: list[Reply] | None = None, auth: list[Reply] | None = None):
        self.queues = {"open-api.test": list(api or []), "auth.test": list(auth or [])}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.queues[request.url.host]
        assert queue, f"unexpected request {request.method} {request.url.path}"
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == "open-api.test"]

    def auth_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == "auth.test"]


class Clock:
    def __init__(self, now: float = 1623812664.7):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sleeper:
    """Records the delays instead of sleeping; advances the fake clock by them."""

    def __init__(self, clock: Clock | None = None):
        self.delays: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock:
            self.clock.now += max(seconds, 1.0)


def make(script: Script, *, refresh_token: str | None = REFRESH, clock: Clock | None = None,
         sleeper: Sleeper | None = None, on_refresh=None, retry: RetryPolicy | None = None) -> TikTokClient:
    return TikTokClient(APP_KEY, SECRET, ACCESS, refresh_token, CIPHER, api_base=API, auth_base=AUTH,
                        transport=httpx.MockTransport(script), retry=retry or RetryPolicy(),
                        clock=clock or Clock(), sleep=sleeper or Sleeper(), on_token_refresh=on_refresh)


def assert_signed(request: httpx.Request, secret: str = SECRET) -> None:
    """Recompute the sign from what actually went over the wire."""
    query = dict(request.url.params)
    body = request.content or None
    assert query["sign"] == sign(request.url.path, query, body, secret)


# --- signing on the wire ---------------------------------------------------------------------

def test_search_request_is_signed_exactly_like_vector_b():
    script = Script(api=[ok({"return_orders": [], "next_page_token": "", "total_count": 0})])
    client = TikTokClient(APP_KEY, "e59af819cc", ACCESS, shop_cipher=CIPHER, api_base=API,
                          transport=httpx.MockTransport(script), clock=lambda: 1623812664.9)
    client.search_returns({"return_status": ["RETURN_OR_REFUND_REQUEST_PENDING"], "update_time_ge": 1623000000},
                          page_size=20, sort_field="update_time", sort_order="DESC")
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url.path == "/return_refund/202309/returns/search"
    assert request.content == b'{"return_status":["RETURN_OR_REFUND_REQUEST_PENDING"],"update_time_ge":1623000000}'
    params = dict(request.url.params)
    assert params["timestamp"] == "1623812664"
    assert params["sign"] == "f986a09b129fab847a2f5c9c71a369d1fa6734774902817b3503a854a1606030"
    assert request.headers["x-tts-access-token"] == ACCESS
    assert request.headers["content-type"] == "application/json"
    assert "access_token" not in params


def test_get_shops_is_signed_without_shop_cipher_and_get_records_with_it():
    shops = [{"id": "1", "name": "S", "region": "GB", "seller_type": "LOCAL", "cipher": CIPHER, "code": "C"}]
    script = Script(api=[ok({"shops": shops}), ok({"records": [{"event": "ORDER_RETURN"}]})])
    client = make(script)
    assert client.get_authorized_shops() == shops
    assert client.get_return_records("4035318504086604100") == [{"event": "ORDER_RETURN"}]
    shops_req, records_req = script.requests
    assert "shop_cipher" not in shops_req.url.params
    assert shops_req.method == "GET" and not shops_req.content
    assert shops_req.headers["content-type"] == "application/json"
    assert records_req.url.params["shop_cipher"] == CIPHER
    assert records_req.url.params["locale"] == "en-US"
    for request in script.requests:
        assert_signed(request)


def test_page_token_with_plus_slash_equals_round_trips_and_is_signed_raw():
    token = "aDU2+dHIz/MlFh=="
    script = Script(api=[ok({"return_orders": [], "next_page_token": "", "total_count": 0})])
    make(script).search_returns(page_token=token)
    (request,) = script.requests
    assert request.url.params["page_token"] == token
    assert_signed(request)


# --- retries ---------------------------------------------------------------------------------

def test_429_is_retried_honouring_retry_after_and_resigned_with_a_fresh_timestamp():
    clock = Clock()
    sleeper = Sleeper(clock)
    script = Script(api=[fail(36009002, status=429, headers={"Retry-After": "3"}),
                         fail(36009002, status=429, headers={"Retry-After": "120"}),
                         ok({"shops": []})])
    assert make(script, clock=clock, sleeper=sleeper).get_authorized_shops() == []
    assert sleeper.delays == [3.0, 20.0]  # the second Retry-After is capped at max_delay
    stamps = [r.url.params["timestamp"] for r in script.requests]
    assert len(set(stamps)) == 3
    for request in script.requests:
        assert_signed(request)


def test_500_is_retried_with_jittered_exponential_backoff():
    sleeper = Sleeper()
    script = Script(api=[httpx.Response(500, text="<html>oops</html>"), httpx.Response(502),
                         httpx.Response(503, json={"code": 36009003, "message": "x"}), ok({"shops": []})])
    make(script, sleeper=sleeper, retry=RetryPolicy(base_delay=1.0)).get_authorized_shops()
    assert len(script.requests) == 4
    assert [0 <= d <= cap for d, cap in zip(sleeper.delays, [1.0, 2.0, 4.0], strict=True)] == [True] * 3


def test_internal_error_code_36009003_with_http_200_is_retried():
    script = Script(api=[fail(36009003), fail(36009007), ok({"reasons": [{"name": "n", "text": "t"}]})])
    assert make(script).get_reject_reasons("123") == [{"name": "n", "text": "t"}]
    assert len(script.requests) == 3
    assert script.requests[0].url.params["return_or_cancel_id"] == "123"


def test_truncated_json_is_retried_then_raised_as_malformed():
    truncated = lambda _: httpx.Response(200, content=b'{"code":0,"message":"Success","data":{"shops":[')  # noqa: E731
    script = Script(api=[truncated, ok({"shops": []})])
    assert make(script).get_authorized_shops() == []

    script = Script(api=[truncated] * 3)
    with pytest.raises(errors.MalformedResponseError):
        make(script, retry=RetryPolicy(max_attempts=3)).get_authorized_shops()
    assert len(script.requests) == 3


def test_envelope_without_code_is_malformed():
    script = Script(api=[httpx.Response(200, json={"data": {}})] * 2)
    with pytest.raises(errors.MalformedResponseError):
        make(script, retry=RetryPolicy(max_attempts=2)).get_authorized_shops()


def test_connect_error_is_retried_then_raised_as_a_clean_transport_error():
    script = Script(api=[httpx.ConnectError("refused"), ok({"shops": []})])
    assert make(script).get_authorized_shops() == []

    script = Script(api=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ReadError("reset")])
    with pytest.raises(errors.TransportError) as caught:
        make(script, retry=RetryPolicy(max_attempts=3)).get_authorized_shops()
    text = str(caught.value)
    assert "open-api.test" in text and "\n" not in text
    assert "sign" not in text and "?" not in text and SECRET not in text and ACCESS not in text
    assert len(script.requests) == 3


def test_rate_limit_still_failing_after_max_attempts_raises_rate_limited():
    sleeper = Sleeper()
    script = Script(api=[fail(36009002, status=429)] * 5)
    with pytest.raises(errors.RateLimitedError) as caught:
        make(script, sleeper=sleeper).get_authorized_shops()
    assert caught.value.code == 36009002 and caught.value.http_status == 429
    assert len(script.requests) == 5 and len(sleeper.delays) == 4


@pytest.mark.parametrize(("code", "status"),
                         [(106001, 401), (106001, 500), (36009004, 400), (105005, 200), (106013, 200)])
def test_signature_auth_and_parameter_errors_are_never_retried(code, status):
    sleeper = Sleeper()
    script = Script(api=[fail(code, status=status)])
    with pytest.raises(errors.AuthError) as caught:
        make(script, sleeper=sleeper).get_authorized_shops()
    assert caught.value.code == code and caught.value.request_id == "rid1"
    assert len(script.requests) == 1 and sleeper.delays == []


def test_business_error_on_write_is_not_retried():
    script = Script(api=[fail(25020010, "already approved")])
    with pytest.raises(errors.BusinessError):
        make(script).reject_return("1", "REJECT_REFUND", "r", idempotency_key="k")
    assert len(script.requests) == 1


def test_write_calls_are_retried_with_the_same_idempotency_key_and_body():
    script = Script(api=[httpx.Response(503), fail(36009002, status=429), ok({})])
    result = make(script).approve_return("4035318504086604100", "APPROVE_RETURN",
                                         idempotency_key="idem-1", buyer_keep_item=True)
    assert result == {}
    assert {r.url.params["idempotency_key"] for r in script.requests} == {"idem-1"}
    assert {r.content for r in script.requests} == {b'{"decision":"APPROVE_RETURN","buyer_keep_item":true}'}
    assert script.requests[0].url.path == "/return_refund/202309/returns/4035318504086604100/approve"
    for request in script.requests:
        assert_signed(request)


def test_reject_sends_reason_and_comment():
    script = Script(api=[ok({})])
    make(script).reject_return("9", "REJECT_REFUND", "seller_reject_apply_product_has_been_packed",
                               idempotency_key="k2", comment="packed")
    assert json.loads(script.requests[0].content) == {
        "decision": "REJECT_REFUND", "reject_reason": "seller_reject_apply_product_has_been_packed",
        "comment": "packed"}
    assert script.requests[0].url.path.endswith("/returns/9/reject")


# --- token expiry and refresh ----------------------------------------------------------------

def test_expired_token_refreshes_once_retries_and_reports_the_new_tokens():
    seen: list[TokenSet] = []
    script = Script(api=[fail(105002, status=401), ok({"shops": [{"cipher": "c"}]})], auth=[ok(token_data(1))])
    client = make(script, on_refresh=seen.append)
    assert client.get_authorized_shops() == [{"cipher": "c"}]
    (refresh,) = script.auth_requests()
    assert refresh.url.path == "/api/v2/token/refresh"
    assert dict(refresh.url.params) == {"app_key": APP_KEY, "app_secret": SECRET,
                                        "refresh_token": REFRESH, "grant_type": "refresh_token"}
    assert "x-tts-access-token" not in refresh.headers
    first, second = script.api_requests()
    assert first.headers["x-tts-access-token"] == ACCESS
    assert second.headers["x-tts-access-token"] == "TTP_access_NEW_1"
    assert_signed(second)
    assert seen == [TokenSet("TTP_access_NEW_1", "TTP_refresh_NEW_1", 1700600000, 1730000000, "oid", "Shop",
                             "GB", ("seller.return_refund.basic",))]


def test_a_second_expiry_after_refresh_is_raised_without_another_refresh():
    script = Script(api=[fail(105002), fail(105002)], auth=[ok(token_data(1))])
    with pytest.raises(errors.TokenExpiredError):
        make(script).get_authorized_shops()
    assert len(script.auth_requests()) == 1 and len(script.api_requests()) == 2


def test_expiry_without_refresh_token_is_raised():
    script = Script(api=[fail(105002)])
    with pytest.raises(errors.TokenExpiredError):
        make(script, refresh_token=None).get_authorized_shops()
    assert script.auth_requests() == []


def test_refused_refresh_token_raises_refresh_token_invalid():
    script = Script(api=[fail(105002)], auth=[fail(36004004, f"bad refresh token {REFRESH}")])
    seen: list[TokenSet] = []
    with pytest.raises(errors.RefreshTokenInvalidError) as caught:
        make(script, on_refresh=seen.append).get_authorized_shops()
    assert seen == []
    assert REFRESH not in str(caught.value) and SECRET not in str(caught.value)


def test_refresh_tokens_uses_the_rotated_refresh_token_next_time():
    script = Script(auth=[ok(token_data(1)), ok(token_data(2))])
    client = make(script)
    client.refresh_tokens()
    client.refresh_tokens()
    assert [r.url.params["refresh_token"] for r in script.auth_requests()] == [REFRESH, "TTP_refresh_NEW_1"]


# --- AuthClient ------------------------------------------------------------------------------

def test_get_token_is_an_unsigned_get_with_authorized_code_grant():
    script = Script(auth=[ok(token_data(7))])
    auth = AuthClient(APP_KEY, SECRET, auth_base=AUTH, transport=httpx.MockTransport(script))
    tokens = auth.get_token("CODE123")
    (request,) = script.requests
    assert request.method == "GET" and request.url.path == "/api/v2/token/get"
    assert dict(request.url.params) == {"app_key": APP_KEY, "app_secret": SECRET, "auth_code": "CODE123",
                                        "grant_type": "authorized_code"}
    assert tokens.access_token == "TTP_access_NEW_7" and tokens.access_token_expires_at == 1700600000


def test_used_auth_code_raises_auth_code_invalid():
    script = Script(auth=[fail(36004004, "Invalid auth code")])
    auth = AuthClient(APP_KEY, SECRET, auth_base=AUTH, transport=httpx.MockTransport(script))
    with pytest.raises(errors.AuthCodeInvalidError):
        auth.get_token("CODE123")


def test_token_response_missing_fields_is_malformed():
    script = Script(auth=[ok({"access_token": "x"})])
    auth = AuthClient(APP_KEY, SECRET, auth_base=AUTH, transport=httpx.MockTransport(script))
    with pytest.raises(errors.MalformedResponseError):
        auth.get_token("CODE123")


def test_authorize_url():
    auth = AuthClient(APP_KEY, SECRET)
    assert auth.authorize_url("7123", "st ate") == (
        "https://services.tiktokshop.com/open/authorize?service_id=7123&state=st+ate")
    assert auth.authorize_url("7123", "s", us=True).startswith("https://services.us.tiktokshop.com/open/authorize?")


# --- pagination and validation ---------------------------------------------------------------

def test_iter_return_pages_follows_tokens_with_filters_and_sort_unchanged():
    script = Script(api=[ok({"return_orders": [{"return_id": "1"}], "next_page_token": "t+1/=", "total_count": 3}),
                         ok({"return_orders": [{"return_id": "2"}], "next_page_token": "t2", "total_count": 3}),
                         ok({"return_orders": [{"return_id": "3"}], "next_page_token": "", "total_count": 3})])
    pages = list(make(script).iter_return_pages({"update_time_ge": 100}, page_size=10, sort_order="DESC"))
    assert [o["return_id"] for p in pages for o in p.return_orders] == ["1", "2", "3"]
    assert [r.url.params.get("page_token") for r in script.requests] == [None, "t+1/=", "t2"]
    assert {r.content for r in script.requests} == {b'{"update_time_ge":100}'}
    assert {(r.url.params["page_size"], r.url.params["sort_field"], r.url.params["sort_order"])
            for r in script.requests} == {("10", "update_time", "DESC")}


def test_empty_page_without_return_orders_is_an_empty_last_page():
    script = Script(api=[ok({"total_count": 0, "next_page_token": ""})])
    page = make(script).search_returns()
    assert (page.return_orders, page.next_page_token, page.total_count) == ([], "", 0)
    assert script.requests[0].content == b"{}"


def test_repeated_page_token_stops_with_malformed_instead_of_looping():
    page = {"return_orders": [{"return_id": "1"}], "next_page_token": "same", "total_count": 9}
    script = Script(api=[ok(page), ok(page)])
    with pytest.raises(errors.MalformedResponseError):
        list(make(script).iter_return_pages())


@pytest.mark.parametrize("kwargs", [{"page_size": 9}, {"page_size": 51}, {"page_size": "20"},
                                    {"sort_field": "UPDATE_TIME"}, {"sort_order": "asc"}])
def test_bad_search_arguments_raise_value_error_before_any_request(kwargs):
    script = Script()
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make(script).search_returns(**kwargs)
    assert script.requests == []


def test_unknown_search_filter_raises_value_error():
    with pytest.raises(ValueError, match="status"):
        make(Script()).search_returns({"status": ["X"]})


def test_write_call_needs_an_idempotency_key_and_partial_refund_needs_an_amount():
    client = make(Script())
    with pytest.raises(ValueError):
        client.approve_return("1", "APPROVE_REFUND", idempotency_key="")
    with pytest.raises(ValueError):
        client.approve_return("1", "OFFER_PARTIAL_REFUND", idempotency_key="k")
    with pytest.raises(ValueError):
        client.get_return_records("../shops")


# --- secret hygiene --------------------------------------------------------------------------

def test_error_messages_never_contain_secrets_even_when_the_server_echoes_them():
    def echo(request: httpx.Request) -> httpx.Response:
        leaked = f"bad sign {request.url.params['sign']} for {SECRET} token {ACCESS}"
        return fail(106001, leaked, status=401)

    script = Script(api=[echo])
    with pytest.raises(errors.AuthError) as caught:
        make(script).get_authorized_shops()
    sent_sign = script.requests[0].url.params["sign"]
    for text in (str(caught.value), repr(caught.value), caught.value.message):
        for secret in (SECRET, ACCESS, REFRESH, sent_sign):
            assert secret not in text


def test_tokenset_and_client_reprs_mask_secrets():
    tokens = TokenSet(ACCESS, REFRESH, 1, 2, "oid", "Shop")
    client = make(Script())
    for text in (repr(tokens), str(tokens), repr(client), repr(AuthClient(APP_KEY, SECRET))):
        assert ACCESS not in text and REFRESH not in text and SECRET not in text
    assert "oid" in repr(tokens) and "***" in repr(tokens)


def test_logs_carry_neither_sign_nor_secrets(caplog):
    script = Script(api=[fail(36009002, status=429), ok({"shops": []})], auth=[ok(token_data(1))])
    with caplog.at_level(logging.DEBUG):
        client = make(script)
        client.get_authorized_shops()
        client.refresh_tokens()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/authorization/202309/shops" in logged
    for secret in (SECRET, ACCESS, REFRESH, "sign=", "TTP_refresh_NEW_1", "TTP_access_NEW_1"):
        assert secret not in logged
