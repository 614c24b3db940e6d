"""httpx client for the TikTok Shop Partner API (docs/tiktok_api.md sections 1-6).

`AuthClient` talks to the token host (unsigned calls); `TikTokClient` signs every call for one
shop, retries what is safe to retry, refreshes an expired access token once, and raises the
typed errors of `errors.py`. No secret ever reaches a message, a log line or a repr.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import httpx

from returns_core.config import DEFAULT_API_BASE, DEFAULT_AUTH_BASE
from returns_core.tiktok import errors, events, ratelimit
from returns_core.tiktok.ratelimit import AppRateLimit
from returns_core.tiktok.signing import sign

logger = logging.getLogger(__name__)

SEARCH_FILTER_FIELDS = frozenset({
    "return_ids", "order_ids", "buyer_user_ids", "return_types", "return_status",
    "arbitration_status", "seller_proposed_return_type", "create_time_ge", "create_time_lt",
    "update_time_ge", "update_time_lt", "locale",
})
CANCELLATION_FILTER_FIELDS = frozenset({
    "cancel_ids", "order_ids", "buyer_user_ids", "cancel_types", "cancel_status", "create_time_ge", "create_time_lt",
    "update_time_ge", "update_time_lt", "locale",
})
SORT_FIELDS = ("create_time", "update_time")
SORT_ORDERS = ("ASC", "DESC")
PAGE_SIZE_RANGE = (10, 50)
CANCELLATION_PAGE_SIZE_RANGE = (1, 50)  # Search Cancellations allows smaller pages than Search Returns
SEARCH_CANCELLATIONS_PATH = "/return_refund/202309/cancellations/search"
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
# shop-scoped modules need shop_cipher; /authorization/* must not get it (36009004 "Unexpected identifier")
_SHOP_SCOPED_PREFIXES = ("/return_refund/", "/event/", "/analytics/")
WEBHOOKS_PATH = "/event/202309/webhooks"
# Analytics 202509 (TikTok's OAS, spec/analytics/): units sold per SKU over a date range, and per product per day
SKU_PERFORMANCE_PATH = "/analytics/202509/shop_skus/performance"
PRODUCT_PERFORMANCE_PATH = "/analytics/202509/shop_products/{product_id}/performance"
SKU_PAGE_SIZE_MAX = 100
DECISION_ELIGIBILITY_PATH = "/return_refund/202601/decision_eligibility"
# Get Decision Eligibility's check_decisions enum (spec/tiktok_return_refund_newer.openapi.yaml); no
# OFFER_PARTIAL_REFUND among them: TikTok cannot be asked about a partial refund offer this way
ELIGIBILITY_DECISIONS = ("APPROVE_RECEIVED_PACKAGE", "APPROVE_REFUND", "APPROVE_REPLACEMENT", "APPROVE_REQUEST_CANCEL",
                         "APPROVE_RETURN", "DIRECT_REFUND", "ISSUE_EXCHANGE_REFUND", "ISSUE_REPLACEMENT_REFUND",
                         "REJECT_RECEIVED_PACKAGE", "REJECT_REFUND", "REJECT_REPLACEMENT", "REJECT_REQUEST_CANCEL",
                         "REJECT_RETURN")


class _RedactQueryFilter(logging.Filter):
    """httpx logs every request URL at INFO; ours carry `sign` (and app_secret on the token host)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.copy_with(query=None) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


if not any(isinstance(f, _RedactQueryFilter) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactQueryFilter())


def _mask(token: str) -> str:
    return "***" if token else "''"


@dataclass(frozen=True)
class TokenSet:
    """A seller's tokens; the expiry fields are absolute unix seconds, as TikTok sends them."""

    access_token: str
    refresh_token: str
    access_token_expires_at: int
    refresh_token_expires_at: int
    open_id: str | None = None
    seller_name: str | None = None
    seller_base_region: str | None = None
    granted_scopes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"TokenSet(access_token={_mask(self.access_token)}, "
                f"refresh_token={_mask(self.refresh_token)}, "
                f"access_token_expires_at={self.access_token_expires_at}, "
                f"refresh_token_expires_at={self.refresh_token_expires_at}, "
                f"open_id={self.open_id!r}, seller_name={self.seller_name!r}, "
                f"seller_base_region={self.seller_base_region!r}, "
                f"granted_scopes={self.granted_scopes!r})")

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TokenSet:
        """Build from the `data` of /api/v2/token/get or /refresh."""
        try:
            return cls(
                access_token=_str(data["access_token"]),
                refresh_token=_str(data["refresh_token"]),
                access_token_expires_at=int(data["access_token_expire_in"]),
                refresh_token_expires_at=int(data["refresh_token_expire_in"]),
                open_id=data.get("open_id"),
                seller_name=data.get("seller_name"),
                seller_base_region=data.get("seller_base_region"),
                granted_scopes=tuple(data.get("granted_scopes") or ()),
            )
        except KeyError as exc:
            raise errors.MalformedResponseError(f"Token response lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError):
            # never echo the values: they are tokens
            raise errors.MalformedResponseError("Token response has a field of the wrong type") from None


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: full-jitter exponential backoff."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass
class SearchPage:
    """One page of Search Returns."""

    return_orders: list[dict]
    next_page_token: str
    total_count: int


@dataclass(frozen=True)
class SkuSales:
    """One SKU's sales over the asked date range (GetShopSKUPerformanceList); gmv exact, in `currency`."""

    sku_id: str
    product_id: str
    units_sold: int
    sku_orders: int
    gmv: Decimal | None
    currency: str | None


@dataclass
class SkuSalesPage:
    """One page of SKU performance, and the latest shop-local day TikTok has figures for."""

    skus: list[SkuSales]
    next_page_token: str
    total_count: int
    latest_available_date: date | None


@dataclass(frozen=True)
class ProductSales:
    """One product's sales in one interval [start_date, end_date) of shop-local days."""

    start_date: date
    end_date: date
    items_sold: int
    orders: int
    gmv: Decimal | None
    currency: str | None


@dataclass
class ProductPerformance:
    """GetShopProductPerformanceDetail: the product's intervals (one per day with granularity 1D)."""

    intervals: list[ProductSales]
    latest_available_date: date | None
@dataclass
class CancellationPage:
    """One page of Search Cancellations."""

    cancellations: list[dict]
    next_page_token: str
    total_count: int


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth retrying; `error` is raised if none are left."""

    def __init__(self, error: errors.TikTokError, retry_after: float | None = None):
        self.error = error
        self.retry_after = retry_after


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process.

    Building one loads the CA bundle (~15 ms), and each client would build its own: twice per
    sync, per approve and per test connection. A context is safe to share across threads.
    """
    return httpx.create_ssl_context()


class _Requester:
    """Shared request loop: send, read the envelope, classify, back off and retry."""

    def __init__(self, base: str, transport: httpx.BaseTransport | None, retry: RetryPolicy,
                 timeout: float, sleep: Callable[[float], None], secrets: Callable[[], list[str]],
                 limit: AppRateLimit | None = None):
        if retry.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        self.base = base.rstrip("/")
        split = urlsplit(self.base)
        self.host = split.netloc or self.base
        self.base_path = split.path
        self.retry = retry
        self.sleep = sleep
        self._secrets = secrets
        self.limit = limit  # the app's shared pace (None: unpaced, as the token host is)
        self._rng = random.Random()
        self.http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False,
                                 verify=_tls_context())

    def scrub(self, text: str, *extra: str) -> str:
        """Remove any secret a server might echo back into its message."""
        for secret in (*self._secrets(), *extra):
            if secret:
                text = text.replace(secret, "***")
        return text

    def send_once(self, method: str, path: str, query: Mapping[str, str],
                  headers: Mapping[str, str], content: bytes | None) -> dict:
        """One attempt; returns `data` on code 0, raises a typed error or `_Retryable`."""
        url = f"{self.base}{path}?{urlencode(query)}" if query else f"{self.base}{path}"
        try:
            response = self.http.request(method, url, headers=headers, content=content)
        except httpx.UnsupportedProtocol:
            raise errors.TransportError(f"Bad API base URL for host {self.host!r}") from None
        except httpx.TransportError as exc:
            # the exception's own text may carry the URL (and so the sign): name the kind only
            err = errors.TransportError(f"{exc.__class__.__name__} talking to {self.host}{path}")
            logger.debug("%s %s -> %s", method, path, exc.__class__.__name__)
            raise _Retryable(err) from None
        status = response.status_code
        logger.debug("%s %s -> HTTP %s", method, path, status)
        retry_after = _retry_after(response)
        envelope = _parse_envelope(response.content)
        if envelope is None:
            if status == 429:
                raise _Retryable(errors.RateLimitedError(
                    f"Too many requests (HTTP 429) from {self.host}", http_status=status), retry_after)
            if status >= 500:
                raise _Retryable(errors.ServerError(
                    f"HTTP {status} from {self.host}{path}", http_status=status), retry_after)
            malformed = errors.MalformedResponseError(
                f"Unreadable response (HTTP {status}) from {self.host}{path}", http_status=status)
            # a 4xx page that is not JSON (wrong base URL, proxy) will not improve on retry
            if 400 <= status < 500 and status != 408:
                raise malformed
            raise _Retryable(malformed, retry_after)
        code, message, request_id, data = envelope
        if code == errors.OK:
            return data
        err = errors.error_for(code, self.scrub(message, query.get("sign", "")) or f"TikTok error {code}",
                               request_id, status)
        never_retry = code in errors.AUTH_CODES or code == errors.TOKEN_EXPIRED
        if code in errors.RETRYABLE_CODES or (not never_retry and (status == 429 or status >= 500)):
            raise _Retryable(err, retry_after)
        raise err

    def send(self, method: str, path: str, build: Callable[[], tuple[dict, dict]],
             content: bytes | None, on_token_expired: Callable[[], bool] | None = None) -> dict:
        """Retry loop; `build` makes fresh (query, headers) per attempt so each is re-signed."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if self.limit is not None:
                self.limit.acquire()
            query, headers = build()  # signed after the wait: the timestamp must be fresh
            try:
                data = self.send_once(method, path, query, headers, content)
                if self.limit is not None:
                    self.limit.succeeded()
                return data
            except errors.TokenExpiredError:
                # one refresh per call; a second 105002 after a fresh token is a real failure
                if refreshed or on_token_expired is None or not on_token_expired():
                    raise
                refreshed = True
                attempt -= 1  # the refresh is not a failed attempt
                continue
            except _Retryable as retryable:
                if self.limit is not None and isinstance(retryable.error, errors.RateLimitedError):
                    self.limit.refused()  # a signal for every shop of this app, not only this one
                if attempt >= self.retry.max_attempts:
                    raise retryable.error from None
                delay = self.retry.delay(attempt, retryable.retry_after, self._rng)
                logger.debug("%s %s: retry %d in %.2fs", method, path, attempt, delay)
                self.sleep(delay)

    def close(self) -> None:
        self.http.close()


def _parse_envelope(raw: bytes) -> tuple[int, str, str | None, dict] | None:
    """(code, message, request_id, data), or None when the body is not a TikTok envelope."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    data = body.get("data")
    if data is None:
        data = {}  # errors carry null; write calls carry {}
    if not isinstance(data, dict):
        return None
    message = body.get("message")
    request_id = body.get("request_id")
    return (code, message if isinstance(message, str) else "",
            request_id if isinstance(request_id, str) else None, data)


def _check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise ValueError(f"{name} must be a non-empty ID string of letters, digits, _ or -")
    return value


def _dump(body: Mapping[str, Any]) -> bytes:
    # serialized once: these exact bytes are signed and sent
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def authorize_url(service_id: str, state: str, *, us: bool = False) -> str:
    """The page where a seller authorizes the app; TikTok redirects back with ?code&state.

    A plain function: building the link needs no credentials and no HTTP client.
    """
    host = "services.us.tiktokshop.com" if us else "services.tiktokshop.com"
    return f"https://{host}/open/authorize?{urlencode({'service_id': service_id, 'state': state})}"


class AuthClient:
    """The token host: exchange an auth code, refresh tokens, build the authorize URL."""

    def __init__(self, app_key: str, app_secret: str, *, auth_base: str = DEFAULT_AUTH_BASE,
                 transport: httpx.BaseTransport | None = None, retry: RetryPolicy = RetryPolicy(),
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        self.app_key = app_key
        self._app_secret = app_secret
        self._pending: list[str] = []  # the code or refresh token of the call in flight
        self._http = _Requester(auth_base, transport, retry, timeout, sleep,
                                lambda: [self._app_secret, *self._pending])

    def __repr__(self) -> str:
        return f"AuthClient(app_key={self.app_key!r}, auth_base={self._http.base!r})"

    def _token_call(self, path: str, params: dict[str, str]) -> TokenSet:
        query = {"app_key": self.app_key, "app_secret": self._app_secret, **params}
        headers = {"content-type": "application/json"}
        self._pending = [v for k, v in params.items() if k in ("auth_code", "refresh_token")]
        try:
            data = self._http.send("GET", path, lambda: (query, headers), None)
        finally:
            self._pending = []
        return TokenSet.from_data(data)

    def get_token(self, auth_code: str) -> TokenSet:
        """Exchange a seller's authorization code for tokens."""
        return self._token_call("/api/v2/token/get",
                                {"auth_code": auth_code, "grant_type": "authorized_code"})

    def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens from a refresh token (TikTok rotates the refresh token too)."""
        try:
            return self._token_call("/api/v2/token/refresh",
                                    {"refresh_token": refresh_token, "grant_type": "refresh_token"})
        except (errors.RateLimitedError, errors.ServerError):
            raise
        except errors.ApiError as exc:
            # every request field is ours except the refresh token, so a refusal means it is bad
            raise errors.RefreshTokenInvalidError(
                f"Refresh token refused: {exc.message}", code=exc.code,
                request_id=exc.request_id, http_status=exc.http_status) from None

    def authorize_url(self, service_id: str, state: str, us: bool = False) -> str:
        """The page where a seller authorizes the app; TikTok redirects back with ?code&state."""
        return authorize_url(service_id, state, us=us)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TikTokClient:
    """Signed calls for one shop (shop_cipher) with one seller's tokens."""

    def __init__(self, app_key: str, app_secret: str, access_token: str,
                 refresh_token: str | None = None, shop_cipher: str | None = None, *,
                 api_base: str = DEFAULT_API_BASE, auth_base: str = DEFAULT_AUTH_BASE,
                 transport: httpx.BaseTransport | None = None, retry: RetryPolicy = RetryPolicy(),
                 timeout: float = 30.0,
                 on_token_refresh: Callable[[TokenSet], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 rate_limit: AppRateLimit | None = None):
        self.app_key = app_key
        self._app_secret = app_secret
        self._access_token = access_token
        self._refresh_token = refresh_token
        self.shop_cipher = shop_cipher
        self.on_token_refresh = on_token_refresh
        self._clock = clock
        self._auth = AuthClient(app_key, app_secret, auth_base=auth_base, transport=transport,
                                retry=retry, timeout=timeout, sleep=sleep)
        self._http = _Requester(api_base, transport, retry, timeout, sleep, self._secrets)
        # TikTok's limit is per app: every client of this app in the process shares one pace
        self._http.limit = rate_limit or ratelimit.for_app(self._http.host, app_key)

    def __repr__(self) -> str:
        return (f"TikTokClient(app_key={self.app_key!r}, shop_cipher={self.shop_cipher!r}, "
                f"api_base={self._http.base!r})")

    def _secrets(self) -> list[str]:
        return [s for s in (self._app_secret, self._access_token, self._refresh_token) if s]

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, params: Mapping[str, Any] | None = None,
              body: Mapping[str, Any] | None = None) -> dict:
        content = _dump(body) if body is not None else None
        extra = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if path.startswith(_SHOP_SCOPED_PREFIXES):
            if not self.shop_cipher:
                raise ValueError(f"{path} is shop-scoped: the client needs a shop_cipher")
            extra["shop_cipher"] = self.shop_cipher
        sign_path = self._http.base_path + path

        def build() -> tuple[dict, dict]:
            query = {"app_key": self.app_key, "timestamp": str(int(self._clock())), **extra}
            query["sign"] = sign(sign_path, query, content, self._app_secret)
            headers = {"x-tts-access-token": self._access_token, "content-type": "application/json"}
            return query, headers

        return self._http.send(method, path, build, content, self._refresh_on_expiry)

    def _refresh_on_expiry(self) -> bool:
        if not self._refresh_token:
            return False
        self.refresh_tokens()
        return True

    # --- tokens -------------------------------------------------------------------------------

    def refresh_tokens(self) -> TokenSet:
        """Refresh both tokens, use them from now on, and hand them to on_token_refresh."""
        if not self._refresh_token:
            raise errors.RefreshTokenInvalidError("No refresh token: reconnect the shop")
        tokens = self._auth.refresh(self._refresh_token)
        self._access_token, self._refresh_token = tokens.access_token, tokens.refresh_token
        logger.debug("access token refreshed for app %s", self.app_key)
        if self.on_token_refresh is not None:
            self.on_token_refresh(tokens)
        return tokens

    # --- endpoints ----------------------------------------------------------------------------

    def get_authorized_shops(self) -> list[dict]:
        """The shops this token may act for, each with its `cipher`."""
        return _list(self._call("GET", "/authorization/202309/shops"), "shops")

    def _search(self, name: str, path: str, items: str, allowed: frozenset[str], size_range: tuple[int, int],
                filters: Mapping[str, Any] | None, page_size: int, page_token: str | None, sort_field: str,
                sort_order: str) -> tuple[list[dict], str, int]:
        """One page of a search endpoint: (its objects under data.`items`, next_page_token, total_count)."""
        body = dict(filters or {})
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ValueError(f"Unknown {name} filter(s) {unknown}; allowed: {sorted(allowed)}")
        low, high = size_range
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not low <= page_size <= high:
            raise ValueError(f"page_size must be an integer from {low} to {high}, got {page_size!r}")
        if sort_field not in SORT_FIELDS:
            raise ValueError(f"sort_field must be one of {SORT_FIELDS}, got {sort_field!r}")
        if sort_order not in SORT_ORDERS:
            raise ValueError(f"sort_order must be one of {SORT_ORDERS}, got {sort_order!r}")
        params = {"page_size": page_size, "sort_field": sort_field, "sort_order": sort_order,
                  "page_token": page_token or None}
        data = self._call("POST", path, params, body)
        found = _list(data, items)
        token = data.get("next_page_token") or ""
        total = data.get("total_count", len(found))
        if not isinstance(token, str) or isinstance(total, bool) or not isinstance(total, int):
            raise errors.MalformedResponseError(f"{name} answered a bad next_page_token or total_count")
        return found, token, total

    def search_returns(self, filters: Mapping[str, Any] | None = None, *, page_size: int = 50,
                       page_token: str | None = None, sort_field: str = "update_time",
                       sort_order: str = "ASC") -> SearchPage:
        """One page of Search Returns; filters are the request body fields."""
        orders, token, total = self._search("Search Returns", "/return_refund/202309/returns/search", "return_orders",
                                            SEARCH_FILTER_FIELDS, PAGE_SIZE_RANGE, filters, page_size, page_token,
                                            sort_field, sort_order)
        return SearchPage(return_orders=orders, next_page_token=token, total_count=total)

    def search_cancellations(self, filters: Mapping[str, Any] | None = None, *, page_size: int = 50,
                             page_token: str | None = None, sort_field: str = "update_time",
                             sort_order: str = "ASC") -> CancellationPage:
        """One page of Search Cancellations (buyers' requests to cancel before shipment); filters are the body."""
        found, token, total = self._search("Search Cancellations", SEARCH_CANCELLATIONS_PATH, "cancellations",
                                           CANCELLATION_FILTER_FIELDS, CANCELLATION_PAGE_SIZE_RANGE, filters,
                                           page_size, page_token, sort_field, sort_order)
        return CancellationPage(cancellations=found, next_page_token=token, total_count=total)

    def iter_return_pages(self, filters: Mapping[str, Any] | None = None, *, page_size: int = 50,
                          sort_field: str = "update_time", sort_order: str = "ASC") -> Iterator[SearchPage]:
        """Every page of Search Returns, following next_page_token with filters and sort unchanged."""
        return _pages("Search Returns", lambda token: self.search_returns(
            filters, page_size=page_size, page_token=token, sort_field=sort_field, sort_order=sort_order))

    def iter_cancellation_pages(self, filters: Mapping[str, Any] | None = None, *, page_size: int = 50,
                                sort_field: str = "update_time", sort_order: str = "ASC"
                                ) -> Iterator[CancellationPage]:
        """Every page of Search Cancellations, following next_page_token with filters and sort unchanged."""
        return _pages("Search Cancellations", lambda token: self.search_cancellations(
            filters, page_size=page_size, page_token=token, sort_field=sort_field, sort_order=sort_order))

    def get_return_records(self, return_id: str, locale: str = "en-US") -> list[dict]:
        """TikTok's event records of one return."""
        path = f"/return_refund/202309/returns/{_check_id('return_id', return_id)}/records"
        return _list(self._call("GET", path, {"locale": locale}), "records")

    def get_reject_reasons(self, return_id: str, locale: str = "en-US") -> list[dict]:
        """The reject reasons ({name, text}) valid for this return right now."""
        params = {"return_or_cancel_id": _check_id("return_id", return_id), "locale": locale}
        return _list(self._call("GET", "/return_refund/202309/reject_reasons", params), "reasons")

    def get_decision_eligibility(self, return_id: str, decisions: Sequence[str] = (),
                                 locale: str = "en-US") -> list[dict]:
        """Which seller decisions TikTok accepts now for this return (Get Decision Eligibility, 202601): one
        {decision, eligible, ineligible_code, ineligible_reason, available_reject_reasons} per decision asked."""
        unknown = [d for d in decisions if d not in ELIGIBILITY_DECISIONS]
        if unknown:
            raise ValueError(f"check_decisions cannot ask about {unknown[0]!r}; allowed: {ELIGIBILITY_DECISIONS}")
        params = {"return_or_cancel_id": _check_id("return_id", return_id), "locale": locale}
        if decisions:
            # the spec's array is form style without explode: one parameter, the values joined by commas
            params["check_decisions"] = ",".join(decisions)
        return _list(self._call("GET", DECISION_ELIGIBILITY_PATH, params), "decisions")

    def approve_return(self, return_id: str, decision: str, *, idempotency_key: str,
                       buyer_keep_item: bool | None = None,
                       partial_refund: Mapping[str, str] | None = None) -> dict:
        """Approve a return; retries reuse idempotency_key so TikTok applies it once."""
        if decision == "OFFER_PARTIAL_REFUND" and not partial_refund:
            raise ValueError("OFFER_PARTIAL_REFUND needs partial_refund={'amount', 'currency'}")
        body: dict[str, Any] = {"decision": _nonempty("decision", decision)}
        if buyer_keep_item is not None:
            body["buyer_keep_item"] = buyer_keep_item
        if partial_refund is not None:
            body["partial_refund"] = dict(partial_refund)
        return self._write(return_id, "approve", body, idempotency_key)

    def reject_return(self, return_id: str, decision: str, reject_reason: str, *,
                      idempotency_key: str, comment: str | None = None) -> dict:
        """Reject a return with a reason key from get_reject_reasons."""
        body: dict[str, Any] = {"decision": _nonempty("decision", decision),
                                "reject_reason": _nonempty("reject_reason", reject_reason)}
        if comment is not None:
            body["comment"] = comment
        return self._write(return_id, "reject", body, idempotency_key)

    def get_sku_sales(self, start: date, end: date, *, page_size: int = SKU_PAGE_SIZE_MAX,
                      page_token: str | None = None) -> SkuSalesPage:
        """One page of every SKU's units sold, orders and GMV over the shop-local days [start, end)."""
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= SKU_PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be an integer from 1 to {SKU_PAGE_SIZE_MAX}, got {page_size!r}")
        params = {**_date_range(start, end), "page_size": page_size, "page_token": page_token or None,
                  # a fixed order keeps pages apart while figures change (TikTok's default is gmv)
                  "sort_field": "gmv", "sort_order": "DESC", "currency": "LOCAL"}
        data = self._call("GET", SKU_PERFORMANCE_PATH, params)
        token = data.get("next_page_token") or ""
        rows = _objects(data, "skus")
        total = data.get("total_count", len(rows))
        if not isinstance(token, str) or isinstance(total, bool) or not isinstance(total, int):
            raise errors.MalformedResponseError("SKU performance answered a bad next_page_token or total_count")
        skus = []
        for row in rows:
            gmv, currency = _money(row.get("gmv"), "SKU performance gmv")
            skus.append(SkuSales(_id(row.get("id"), "SKU id"), _id(row.get("product_id"), "product_id"),
                                 _count(row.get("units_sold")), _count(row.get("sku_orders")), gmv, currency))
        return SkuSalesPage(skus, token, total, _day(data.get("latest_available_date")))

    def iter_sku_sales(self, start: date, end: date) -> Iterator[SkuSalesPage]:
        """Every page of SKU performance over [start, end), following next_page_token."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.get_sku_sales(start, end, page_token=token)
            yield page
            if not page.next_page_token or not page.skus:
                return
            if page.next_page_token in seen:
                raise errors.MalformedResponseError("SKU performance repeated a page token")
            seen.add(page.next_page_token)
            token = page.next_page_token

    def get_product_sales(self, product_id: str, start: date, end: date, *, daily: bool = True) -> ProductPerformance:
        """One product's items sold, orders and GMV over [start, end): one interval per day, or one in all."""
        path = PRODUCT_PERFORMANCE_PATH.format(product_id=_check_id("product_id", product_id))
        params = {**_date_range(start, end), "granularity": "1D" if daily else "ALL", "currency": "LOCAL"}
        data = self._call("GET", path, params)
        performance = data.get("performance") or {}
        if not isinstance(performance, dict):
            raise errors.MalformedResponseError("Product performance answered a bad performance object")
        intervals = []
        for row in _objects(performance, "intervals"):
            sales = row.get("sales") or {}
            if not isinstance(sales, dict):
                raise errors.MalformedResponseError("Product performance answered a bad sales object")
            gmv, currency = _money(sales.get("gmv"), "product performance gmv")
            first, last = _day(row.get("start_date")), _day(row.get("end_date"))
            if first is None or last is None:
                raise errors.MalformedResponseError("Product performance answered an interval without dates")
            intervals.append(ProductSales(first, last, _count(sales.get("items_sold")), _count(sales.get("orders")),
                                          gmv, currency))
        return ProductPerformance(intervals, _day(data.get("latest_available_date")))
    def approve_cancellation(self, cancel_id: str, *, idempotency_key: str) -> dict:
        """Approve a buyer's cancellation (the order is cancelled and refunded); no body, as TikTok wants."""
        return self._decide_cancellation(cancel_id, "approve", None, idempotency_key)

    def reject_cancellation(self, cancel_id: str, reject_reason: str, *, idempotency_key: str,
                            comment: str | None = None) -> dict:
        """Reject a buyer's cancellation with a reason key from get_reject_reasons (the order goes ahead)."""
        body: dict[str, Any] = {"reject_reason": _nonempty("reject_reason", reject_reason)}
        if comment is not None:
            body["comment"] = comment
        return self._decide_cancellation(cancel_id, "reject", body, idempotency_key)

    def _decide_cancellation(self, cancel_id: str, action: str, body: dict | None, idempotency_key: str) -> dict:
        path = f"/return_refund/202309/cancellations/{_check_id('cancel_id', cancel_id)}/{action}"
        return self._call("POST", path, {"idempotency_key": _idempotency_key(idempotency_key)}, body)

    def get_webhooks(self) -> list[dict]:
        """The shop's webhook subscriptions: [{event_type, address, create_time, update_time}]."""
        return _list(self._call("GET", WEBHOOKS_PATH), "webhooks")

    def update_webhook(self, event_type: str, address: str) -> None:
        """Send this shop's events of one topic (e.g. "RETURN_STATUS_CHANGE") to `address`.

        TikTok itself only accepts a public HTTPS address (events.public_address_problem says why
        not); the sandbox also takes http://127.0.0.1:PORT/... so a local receiver can be tried.
        """
        body = {"address": _nonempty("address", address), "event_type": _topic(event_type)}
        self._call("PUT", WEBHOOKS_PATH, body=body)

    def delete_webhook(self, event_type: str) -> None:
        """Stop this shop's events of one topic; TikTok answers success even when none was set."""
        self._call("DELETE", WEBHOOKS_PATH, body={"event_type": _topic(event_type)})

    def _write(self, return_id: str, action: str, body: dict, idempotency_key: str) -> dict:
        key = _idempotency_key(idempotency_key)
        path = f"/return_refund/202309/returns/{_check_id('return_id', return_id)}/{action}"
        return self._call("POST", path, {"idempotency_key": key}, body)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()
        self._auth.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _idempotency_key(value: str) -> str:
    key = _nonempty("idempotency_key", value)
    if len(key) > 255:
        raise ValueError("idempotency_key must be at most 255 characters")
    return key


def _pages(name: str, fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Every page of a search: follow next_page_token (filters and sort unchanged) until it is empty."""
    token: str | None = None
    seen: set[str] = set()
    while True:
        page = fetch(token)
        yield page
        if not page.next_page_token:
            return
        # a server handing back a token it already gave would loop forever
        if page.next_page_token in seen:
            raise errors.MalformedResponseError(f"{name} repeated a page token")
        seen.add(page.next_page_token)
        token = page.next_page_token


def _nonempty(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _topic(event_type: str) -> str:
    if events.topic_number(_nonempty("event_type", event_type)) is None:
        raise ValueError(f"event_type must be one of {sorted(events.TOPICS)}, got {event_type!r}")
    return event_type


def _objects(data: Mapping[str, Any], key: str) -> list[dict]:
    rows = _list(data, key)
    if not all(isinstance(row, dict) for row in rows):
        raise errors.MalformedResponseError(f"Expected objects in data.{key}")
    return rows


def _date_range(start: date, end: date) -> dict[str, str]:
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    return {"start_date_ge": start.isoformat(), "end_date_lt": end.isoformat()}


def _id(value: Any, name: str) -> str:
    """An ID as our string: the Analytics OAS sends SKU and product IDs as JSON integers (int64)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise errors.MalformedResponseError(f"Analytics answered a bad {name}")
    return str(value)


def _count(value: Any) -> int:
    """A count TikTok may leave out when it is zero."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.MalformedResponseError("Analytics answered a count that is not a whole number")
    return value


def _money(value: Any, what: str) -> tuple[Decimal | None, str | None]:
    """{amount, currency} as an exact Decimal (never float) and its currency."""
    if value is None:
        return None, None
    amount = value.get("amount") if isinstance(value, dict) else None
    currency = value.get("currency") if isinstance(value, dict) else None
    try:
        exact = Decimal(amount) if isinstance(amount, str) else None
    except InvalidOperation:
        exact = None
    if exact is None or not exact.is_finite() or not (currency is None or isinstance(currency, str)):
        raise errors.MalformedResponseError(f"Analytics answered a bad {what}")
    return exact, currency


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else _bad_day()
    except ValueError:
        return _bad_day()


def _bad_day() -> date:
    raise errors.MalformedResponseError("Analytics answered a date that is not YYYY-MM-DD")


def _list(data: Mapping[str, Any], key: str) -> list[dict]:
    # TikTok omits list fields on empty results
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.MalformedResponseError(f"Expected a list in data.{key}")
    return value


__all__ = ["AuthClient", "CancellationPage", "ProductPerformance", "ProductSales", "RetryPolicy", "SearchPage",
           "SkuSales", "SkuSalesPage", "TikTokClient", "TokenSet"]
