"""Answering one request the way TikTok Shop's gateway, return_refund and event services do.

Order of checks, as a gateway would: route (404/405/version), then app_key, timestamp window and
sign, then the access token, then shop_cipher, then the endpoint's own parameters and business rules.
Token endpoints (the auth host) are unsigned and check app_key + app_secret instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .. import errors, events, signing
from . import cancellations
from .analytics import product_performance, sku_performance
from .auth import AuthStore
from .cancellations import CancelCase, CancelDecision
from .cases import ReturnCase
from .catalogue import Catalogue, Shop
from .envelope import SUCCESS_MESSAGE, ApiFailure, SandboxResponse, encode, new_request_id, respond
from .lifecycle import (
    APPROVE_DECISIONS,
    ELIGIBILITY_DECISIONS,
    OFFER_AFTER_RECEIVING,
    REJECT_DECISIONS,
    Decision,
    decision_error,
    eligibility,
    partial_refund_error,
    reject_reasons,
)
from .sales import Sales
from .search import CANCELLATIONS, ReturnSearch, SearchParameterError, parse_query
from .webhooks import Subscriptions, address_problem
from .world import World

TIMESTAMP_MAX_AGE = 300  # seconds in the past a signed request may be (docs section 2.1)
TIMESTAMP_MAX_AHEAD = 30
IDEMPOTENCY_KEY_MAX = 255
COMMENT_MAX = 500

SHOP_SCOPED, SELLER_SCOPED, TOKEN_HOST = "shop", "seller", "token"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    versions: frozenset[str]
    handler: str
    scope: str


def _route(method: str, pattern: str, versions: set[str], handler: str, scope: str = SHOP_SCOPED) -> Route:
    return Route(method, re.compile(pattern), frozenset(versions), handler, scope)


_RR = r"/return_refund/(?P<version>\d{6})"
_WEBHOOKS = r"/event/(?P<version>\d{6})/webhooks"
_ANALYTICS = r"/analytics/(?P<version>\d{6})"
ROUTES = (
    _route("POST", _RR + r"/returns/search", {"202309", "202602"}, "_search"),
    _route("GET", _RR + r"/returns/(?P<return_id>[^/]+)/records", {"202309"}, "_records"),
    _route("GET", _RR + r"/reject_reasons", {"202309"}, "_reject_reasons"),
    _route("GET", _RR + r"/decision_eligibility", {"202601"}, "_decision_eligibility"),
    _route("POST", _RR + r"/returns/(?P<return_id>[^/]+)/approve", {"202309"}, "_approve"),
    _route("POST", _RR + r"/returns/(?P<return_id>[^/]+)/reject", {"202309", "202606"}, "_reject"),
    _route("GET", _ANALYTICS + r"/shop_skus/performance", {"202509"}, "_sku_performance"),
    _route("GET", _ANALYTICS + r"/shop_products/(?P<product_id>[^/]+)/performance", {"202509"},
           "_product_performance"),
    _route("POST", _RR + r"/cancellations/search", {"202309", "202602"}, "_search_cancellations"),
    _route("POST", _RR + r"/cancellations/(?P<cancel_id>[^/]+)/approve", {"202309"}, "_approve_cancellation"),
    _route("POST", _RR + r"/cancellations/(?P<cancel_id>[^/]+)/reject", {"202309"}, "_reject_cancellation"),
    _route("GET", _WEBHOOKS, {"202309"}, "_webhooks_get"),
    _route("PUT", _WEBHOOKS, {"202309"}, "_webhooks_put"),
    _route("DELETE", _WEBHOOKS, {"202309"}, "_webhooks_delete"),
    _route("GET", r"/authorization/(?P<version>\d{6})/shops", {"202309"}, "_shops", SELLER_SCOPED),
    _route("GET", r"/api/v2/token/get", set(), "_token_get", TOKEN_HOST),
    _route("GET", r"/api/v2/token/refresh", set(), "_token_refresh", TOKEN_HOST),
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]  # decoded query; the first value of a repeated key, as TikTok signs it
    headers: dict[str, str]  # lower-case names
    body: bytes
    now: int  # world time
    wall: float  # real time: signed timestamps are checked against it


@dataclass(frozen=True)
class Call:
    """What the checks established about a request, for the endpoint handler."""

    request: Request
    version: str
    return_id: str  # the return's id in the path, or the cancellation's
    shop: Shop | None
    shop_ids: list[str]
    product_id: str = ""


class Api:
    def __init__(self, *, catalogue: Catalogue, world: World, auth: AuthStore, search: ReturnSearch,
                 idempotency: dict[str, dict], subscriptions: Subscriptions,
                 cancel_search: ReturnSearch | None = None):
        self._catalogue = catalogue
        self._world = world
        self.sales = Sales(world)  # units sold (Analytics): each day's orders, the world's returns among them
        self._auth = auth
        self._return_search = search
        self._cancel_search = cancel_search or ReturnSearch(world.cancellations, b"cancellations")
        self.idempotency = idempotency  # idempotency_key -> what the first request did and answered
        self.subscriptions = subscriptions  # webhook addresses per shop and topic
        self.state_changed = False  # set when persistent state (tokens, decisions) changed

    def answer(self, request: Request) -> SandboxResponse:
        request_id = new_request_id(request.now)
        try:
            route, args = _match(request)
            handler: Callable[[Call], bytes] = getattr(self, route.handler)
            if route.scope == TOKEN_HOST:
                call = Call(request, "", "", None, [])
            else:
                self._check_signature(request)
                shop_ids = self._auth.authorized_shops(request.headers.get("x-tts-access-token", ""), request.now,
                                                       request.params["app_key"])
                shop = self._check_shop_cipher(request, route, shop_ids)
                call = Call(request, args.get("version", ""), args.get("return_id") or args.get("cancel_id") or "",
                            shop, shop_ids, args.get("product_id", ""))
            return respond(errors.OK, SUCCESS_MESSAGE, request_id, handler(call))
        except ApiFailure as failure:
            return respond(failure.code, failure.message, request_id)

    # --- common checks -------------------------------------------------------------------------

    def _check_signature(self, request: Request) -> None:
        params = request.params
        if "app_key" not in params:
            raise ApiFailure(errors.COMMON_PARAM_INVALID, "Missing required common parameter app_key.")
        secret = self._auth.secret_of(params["app_key"])
        if secret is None:
            raise ApiFailure(errors.COMMON_PARAM_INVALID, "Invalid app_key: no app has this key.")
        if not params.get("sign"):
            raise ApiFailure(errors.COMMON_PARAM_INVALID, "Missing required common parameter sign.")
        raw = params.get("timestamp", "")
        if not (raw.isascii() and raw.isdigit()):
            raise ApiFailure(errors.COMMON_PARAM_INVALID,
                             f"Invalid timestamp {raw!r}: send the current Unix time in seconds.")
        age = request.wall - int(raw)
        if age > TIMESTAMP_MAX_AGE:
            raise ApiFailure(errors.COMMON_PARAM_INVALID,
                             "Invalid timestamp: it is more than 5 minutes in the past. Sign each request anew.")
        if age < -TIMESTAMP_MAX_AHEAD:
            raise ApiFailure(errors.COMMON_PARAM_INVALID, "Invalid timestamp: it is more than 30 seconds ahead.")
        content_type = request.headers.get("content-type", "application/json")
        if not signing.verify(request.path, params, request.body, secret, params["sign"], content_type):
            raise ApiFailure(errors.SIGN_INVALID, "Invalid credentials. The `sign` query parameter is invalid.")

    def _check_shop_cipher(self, request: Request, route: Route, shop_ids: list[str]) -> Shop | None:
        cipher = request.params.get("shop_cipher")
        if route.scope == SELLER_SCOPED:
            if cipher is not None:
                raise ApiFailure(errors.COMMON_PARAM_INVALID, "Unexpected identifier shop_cipher: "
                                                              f"{request.path} is not shop-scoped; do not send it.")
            return None
        if not cipher:
            raise ApiFailure(errors.SHOP_CIPHER_MISSING, "Missing shop_cipher: this API is shop-scoped.")
        shop = self._catalogue.shop_by_cipher(cipher)
        if shop is None:
            raise ApiFailure(errors.TOKEN_SHOP_MISMATCH, "Invalid shop_cipher: no shop has this cipher.")
        if shop.id not in shop_ids:
            raise ApiFailure(errors.TOKEN_SHOP_MISMATCH,
                             "The access token is not authorized for the shop this shop_cipher names.")
        return shop

    # --- return_refund -------------------------------------------------------------------------

    def _search(self, call: Call) -> bytes:
        assert call.shop is not None
        try:
            query = parse_query(call.request.params, _json_object(call.request.body))
            page = self._return_search.page(call.shop.id, query)
        except SearchParameterError as exc:
            raise ApiFailure(errors.INVALID_PARAMETER, str(exc)) from exc
        head = encode({"total_count": page.total_count, "next_page_token": page.next_page_token})
        if not page.cases:
            return head  # return_orders is omitted on an empty page
        return head[:-1] + b',"return_orders":[' + b",".join(case.to_json() for case in page.cases) + b"]}"

    def _records(self, call: Call) -> bytes:
        return encode({"records": self._case(call, call.return_id).records})

    def _reject_reasons(self, call: Call) -> bytes:
        return_id = call.request.params.get("return_or_cancel_id")
        if not return_id:
            raise ApiFailure(errors.INVALID_PARAMETER, "Missing required parameter return_or_cancel_id.")
        case = self._case_or_cancellation(call, return_id)
        reasons = cancellations.reject_reasons(case) if isinstance(case, CancelCase) else reject_reasons(case)
        return encode({"reasons": [{"name": name, "text": text} for name, text in reasons]})

    def _decision_eligibility(self, call: Call) -> bytes:
        params = call.request.params
        return_id = params.get("return_or_cancel_id")
        if not return_id:
            raise ApiFailure(errors.INVALID_PARAMETER, "Missing required parameter return_or_cancel_id.")
        # an array in form style without explode: the values joined by commas (spec: explode false)
        asked = [name for name in (params.get("check_decisions") or "").split(",") if name]
        unknown = [name for name in asked if name not in ELIGIBILITY_DECISIONS]
        if unknown:
            raise ApiFailure(errors.INVALID_PARAMETER, f"Invalid check_decisions value {unknown[0]!r}; possible "
                                                       f"values: {', '.join(ELIGIBILITY_DECISIONS)}.")
        case = self._case_or_cancellation(call, return_id)
        # without check_decisions every decision is evaluated, one result each
        names = dict.fromkeys(asked or ELIGIBILITY_DECISIONS)
        answer = cancellations.eligibility if isinstance(case, CancelCase) else eligibility
        return encode({"decisions": [answer(case, name) for name in names]})

    def _approve(self, call: Call) -> bytes:
        body = _json_object(call.request.body)
        name = _decision_name(body, APPROVE_DECISIONS)
        keep = body.get("buyer_keep_item", False)
        if not isinstance(keep, bool):
            raise ApiFailure(errors.INVALID_PARAMETER, "buyer_keep_item must be true or false.")
        if keep and name != "APPROVE_RETURN":
            raise ApiFailure(errors.INVALID_PARAMETER, "buyer_keep_item goes only with decision APPROVE_RETURN.")
        case = self._case(call, call.return_id)
        partial = None
        if name == "OFFER_PARTIAL_REFUND":
            partial = _partial_refund(case, body.get("partial_refund"), "partial_refund", "amount")
        return self._decide(call, case, "approve", Decision(name, buyer_keep_item=keep, partial_refund=partial))

    def _reject(self, call: Call) -> bytes:
        body = _json_object(call.request.body)
        allowed = REJECT_DECISIONS | ({OFFER_AFTER_RECEIVING} if call.version >= "202606" else set())
        name = _decision_name(body, allowed)
        reason = body.get("reject_reason")
        if not isinstance(reason, str) or not reason:
            raise ApiFailure(errors.INVALID_PARAMETER, "Missing required field reject_reason (a reason name from "
                                                       "Get Reject Reasons).")
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > COMMENT_MAX):
            raise ApiFailure(errors.INVALID_PARAMETER, f"comment must be a string of at most {COMMENT_MAX} characters.")
        case = self._case(call, call.return_id)
        partial = None
        if name == OFFER_AFTER_RECEIVING:
            partial = _partial_refund(case, body.get("partial_refund_amount"), "partial_refund_amount",
                                      "partial_refund_total")
        decision = Decision(name, partial_refund=partial, reject_reason=reason, comment=comment or None)
        return self._decide(call, case, "reject", decision)

    def _search_cancellations(self, call: Call) -> bytes:
        assert call.shop is not None
        try:
            query = parse_query(call.request.params, _json_object(call.request.body), CANCELLATIONS)
            page = self._cancel_search.page(call.shop.id, query)
        except SearchParameterError as exc:
            raise ApiFailure(errors.INVALID_PARAMETER, str(exc)) from exc
        head = encode({"total_count": page.total_count, "next_page_token": page.next_page_token})
        if not page.cases:
            return head  # cancellations is omitted on an empty page, as return_orders is
        items = b",".join(case.to_json(call.version) for case in page.cases)
        return head[:-1] + b',"cancellations":[' + items + b"]}"

    def _approve_cancellation(self, call: Call) -> bytes:
        case = self._cancellation(call, call.return_id)
        return self._decide(call, case, "cancel_approve", CancelDecision(cancellations.APPROVE))

    def _reject_cancellation(self, call: Call) -> bytes:
        body = _json_object(call.request.body)
        reason = body.get("reject_reason")
        if not isinstance(reason, str) or not reason:
            raise ApiFailure(errors.INVALID_PARAMETER, "Missing required field reject_reason (a reason name from "
                                                       "Get Reject Reasons).")
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > COMMENT_MAX):
            raise ApiFailure(errors.INVALID_PARAMETER, f"comment must be a string of at most {COMMENT_MAX} characters.")
        case = self._cancellation(call, call.return_id)
        decision = CancelDecision(cancellations.REJECT, reject_reason=reason, comment=comment or None)
        return self._decide(call, case, "cancel_reject", decision)

    def _decide(self, call: Call, case: ReturnCase | CancelCase, endpoint: str,
                decision: Decision | CancelDecision) -> bytes:
        """Apply a decision once per idempotency key: a repeat gets the first answer, acting no more."""
        key = call.request.params.get("idempotency_key")
        case_id = case.cancel_id if isinstance(case, CancelCase) else case.return_id
        fingerprint = {"shop_id": case.shop.id, "return_id": case_id, "endpoint": endpoint,
                       "decision": decision.name}
        if key is not None:
            if not key or len(key) > IDEMPOTENCY_KEY_MAX:
                raise ApiFailure(errors.INVALID_PARAMETER,
                                 f"idempotency_key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.")
            first = self.idempotency.get(key)
            if first is not None:
                if first["request"] != fingerprint:
                    raise ApiFailure(errors.INVALID_PARAMETER,
                                     "idempotency_key was already used for a different request.")
                if first["code"] != errors.OK:
                    raise ApiFailure(first["code"], first["message"])
                return b"{}"
        if isinstance(case, CancelCase):
            assert isinstance(decision, CancelDecision)
            refusal = cancellations.decision_error(case, decision)
        else:
            assert isinstance(decision, Decision)
            refusal = decision_error(case, decision)
        if refusal is None:
            self._world.decide(case, decision)
        if key is not None:
            code, message = refusal or (errors.OK, SUCCESS_MESSAGE)
            self.idempotency[key] = {"request": fingerprint, "code": code, "message": message}
        self.state_changed = self.state_changed or refusal is None or key is not None
        if refusal is not None:
            raise ApiFailure(*refusal)
        return b"{}"

    def _case(self, call: Call, return_id: str) -> ReturnCase:
        return _owned(call, return_id, "return", self._world.case)

    # --- analytics (units sold) ----------------------------------------------------------------

    def _sku_performance(self, call: Call) -> bytes:
        assert call.shop is not None
        return sku_performance(self.sales, call.shop, call.request.params, call.request.now)

    def _product_performance(self, call: Call) -> bytes:
        assert call.shop is not None
        return product_performance(self.sales, call.shop, call.product_id, call.request.params, call.request.now)

    def _cancellation(self, call: Call, cancel_id: str) -> CancelCase:
        return _owned(call, cancel_id, "cancellation", self._world.cancellation)

    def _case_or_cancellation(self, call: Call, request_id: str) -> ReturnCase | CancelCase:
        """return_or_cancel_id names either: a cancellation when one has that id, else a return."""
        if request_id.isascii() and request_id.isdigit() and self._world.cancellation(request_id) is not None:
            return self._cancellation(call, request_id)
        return self._case(call, request_id)

    # --- event (webhook subscriptions) ---------------------------------------------------------

    def _webhooks_get(self, call: Call) -> bytes:
        assert call.shop is not None
        found = self.subscriptions.listing(call.shop.id)
        return encode({"webhooks": found, "total_count": len(found)})

    def _webhooks_put(self, call: Call) -> bytes:
        assert call.shop is not None
        body = _json_object(call.request.body)
        topic = _topic(body)
        address = body.get("address")
        problem = address_problem(address)
        if problem:
            raise ApiFailure(errors.INVALID_PARAMETER, problem)
        assert isinstance(address, str)
        self.subscriptions.put(call.shop.id, topic, address, call.request.now)
        self.state_changed = True
        return b"{}"

    def _webhooks_delete(self, call: Call) -> bytes:
        assert call.shop is not None
        topic = _topic(_json_object(call.request.body))
        self.subscriptions.delete(call.shop.id, topic, call.request.now)
        self.state_changed = True
        return b"{}"  # success whether or not the topic was set, as TikTok documents

    # --- authorization -------------------------------------------------------------------------

    def _shops(self, call: Call) -> bytes:
        shops = [self._catalogue.shop_by_id(shop_id) for shop_id in call.shop_ids]
        return encode({"shops": [shop.public() for shop in shops if shop is not None]})

    def _token_get(self, call: Call) -> bytes:
        params = self._check_app_credentials(call.request, "authorized_code")
        data = self._auth.exchange_code(params.get("auth_code", ""), call.request.now, params["app_key"])
        self.state_changed = True
        return encode(data)

    def _token_refresh(self, call: Call) -> bytes:
        params = self._check_app_credentials(call.request, "refresh_token")
        data = self._auth.refresh_tokens(params.get("refresh_token", ""), call.request.now, params["app_key"])
        self.state_changed = True
        return encode(data)

    def _check_app_credentials(self, request: Request, grant_type: str) -> dict[str, str]:
        params = request.params
        secret = self._auth.secret_of(params.get("app_key", ""))
        if secret is None or params.get("app_secret") != secret:
            raise ApiFailure(errors.COMMON_PARAM_INVALID, "Invalid app_key or app_secret.")
        if params.get("grant_type") != grant_type:
            raise ApiFailure(errors.INVALID_PARAMETER,
                             f"grant_type must be {grant_type} (got {params.get('grant_type')!r}).")
        return params


def _owned(call: Call, case_id: str, noun: str, find: Callable[[str], Any]) -> Any:
    """The return or cancellation `case_id` names, when it exists and is the calling shop's; else TikTok's error."""
    assert call.shop is not None
    if not (case_id.isascii() and case_id.isdigit()):
        raise ApiFailure(errors.INVALID_PARAMETER, f"Invalid {'cancel' if noun == 'cancellation' else noun} id "
                                                   f"{case_id!r}: it must be numeric.")
    case = find(case_id)
    if case is None:
        raise ApiFailure(errors.INVALID_PARAMETER, f"{noun.capitalize()} {case_id} does not exist.")
    if case.shop.id != call.shop.id:
        raise ApiFailure(errors.NO_PERMISSION, f"No permission: {noun} {case_id} belongs to another shop.")
    return case


def _match(request: Request) -> tuple[Route, dict[str, str]]:
    """The route for this method and path, or the gateway's path / method / version error."""
    wrong_method = wrong_version = False
    for route in ROUTES:
        match = route.pattern.fullmatch(request.path)
        if match is None:
            continue
        args = match.groupdict()
        if route.method != request.method:
            wrong_method = True
        elif route.versions and args["version"] not in route.versions:
            wrong_version = True
        else:
            return route, args
    # a path served under this method in another version is a version error, even when other
    # methods share the path (GET/PUT/DELETE /event/{version}/webhooks)
    if wrong_version:
        raise ApiFailure(errors.INVALID_VERSION, f"Invalid API version in {request.path}.")
    if wrong_method:
        raise ApiFailure(errors.INVALID_METHOD, f"Invalid method {request.method} for {request.path}.")
    raise ApiFailure(errors.INVALID_PATH, f"Invalid path {request.path}.")


def _json_object(body: bytes) -> dict:
    """The request body as a JSON object; an empty body counts as {}."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiFailure(errors.BODY_NOT_JSON, "The request body must be JSON.") from exc
    if not isinstance(value, dict):
        raise ApiFailure(errors.BODY_NOT_JSON, "The request body must be a JSON object.")
    return value


def _topic(body: dict) -> str:
    topic = body.get("event_type")
    if not isinstance(topic, str) or not topic:
        raise ApiFailure(errors.INVALID_PARAMETER, "Missing required field event_type (a webhook topic such as "
                                                   "RETURN_STATUS_CHANGE).")
    if events.topic_number(topic) is None:
        raise ApiFailure(errors.INVALID_PARAMETER, f"Invalid event_type {topic!r}; possible values: "
                                                   f"{', '.join(events.TOPICS)}.")
    return topic


def _decision_name(body: dict, allowed: frozenset[str] | set[str]) -> str:
    name = body.get("decision")
    if not isinstance(name, str) or name not in allowed:
        raise ApiFailure(errors.INVALID_PARAMETER,
                         f"decision must be one of {', '.join(sorted(allowed))} (got {name!r}).")
    return name


def _partial_refund(case: ReturnCase, value: object, field: str, amount_field: str) -> Decimal:
    if not isinstance(value, dict) or not isinstance(value.get(amount_field), str):
        raise ApiFailure(errors.INVALID_PARAMETER, f"{field}.{amount_field} is required for a partial refund offer.")
    currency = value.get("currency")
    problem = partial_refund_error(case, value[amount_field], currency if isinstance(currency, str) else None)
    if problem:
        raise ApiFailure(errors.INVALID_PARAMETER, problem)
    return Decimal(value[amount_field])
