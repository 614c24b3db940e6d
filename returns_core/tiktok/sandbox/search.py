"""Search Returns and Search Cancellations: parameter checks, body filters, and stable keyset paging
(docs sections 4.1 and 4.5). One engine; `Searchable` says what each endpoint filters on.

Paging is keyset on (sort value, return id): a page token is the last key served, so a return whose
update_time moves mid-paging under update_time ASC shows up again later instead of being skipped.
The filtered, sorted keys are cached per (shop, query) and rebuilt only when the shop's returns
change, so each page costs a binary search, not a scan.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass

from . import cancellations
from .lifecycle import ALL_STATUSES
from .world import World

SORT_FIELDS = ("create_time", "update_time")
SORT_ORDERS = ("ASC", "DESC")
_TIME_BOUNDS = ("create_time_ge", "create_time_lt", "update_time_ge", "update_time_lt")
_CACHE_SIZE = 64


@dataclass(frozen=True)
class Searchable:
    """What one search endpoint filters on: its id lists and enum lists (body field -> case attribute),
    its page size range, and the spellings it takes for one value."""

    page_size_min: int
    page_size_max: int
    id_lists: dict[str, str]
    enum_lists: dict[str, tuple[tuple[str, ...], str]]  # body field -> (accepted values, case attribute)
    aliases: dict[str, str]  # a value's other spelling -> the one the cases hold

    def attribute(self, name: str) -> str:
        return self.id_lists[name] if name in self.id_lists else self.enum_lists[name][1]


RETURNS = Searchable(
    10, 50,
    {"return_ids": "return_id", "order_ids": "order_id", "buyer_user_ids": "buyer_user_id"},
    {"return_types": (("REFUND", "RETURN_AND_REFUND", "REPLACEMENT", "EXCHANGE"), "return_type"),
     "return_status": (ALL_STATUSES + ("EXCHANGE_REQUEST_PENDING", "EXCHANGE_REQUEST_REFUND_SUCCESS",
                                       "EXCHANGE_REQUEST_CANCEL", "EXCHANGE_REQUEST_COMPLETE"), "status"),
     "arbitration_status": (("IN_PROGRESS", "SUPPORT_BUYER", "SUPPORT_SELLER", "CLOSED"), "arbitration_status"),
     "seller_proposed_return_type": (("PARTIAL_REFUND",), "seller_proposed_return_type")},
    {})
# Search Cancellations (docs section 4.5): page_size 1-50; either spelling of the closed state (section 9)
CANCELLATIONS = Searchable(
    1, 50,
    {"cancel_ids": "cancel_id", "order_ids": "order_id", "buyer_user_ids": "buyer_user_id"},
    {"cancel_types": (cancellations.CANCEL_TYPES, "cancel_type"),
     "cancel_status": (cancellations.ALL_STATUSES + tuple(cancellations.STATUS_ALIASES), "status")},
    cancellations.STATUS_ALIASES)
PAGE_SIZE_MIN, PAGE_SIZE_MAX, PAGE_SIZE_DEFAULT = RETURNS.page_size_min, RETURNS.page_size_max, 10


class SearchParameterError(ValueError):
    """The request cannot be served as sent; the message says which parameter and why."""


@dataclass(frozen=True)
class SearchQuery:
    lists: tuple[tuple[str, frozenset[str]], ...]  # (filter name, accepted values), sorted by name
    bounds: tuple[tuple[str, int], ...]  # (bound name, unix seconds), sorted by name
    sort_field: str
    descending: bool
    page_size: int
    page_token: str
    searchable: Searchable = RETURNS

    @property
    def digest(self) -> str:
        """Identifies filters and sort: a page token only continues the query it came from."""
        shape = [[name, sorted(values)] for name, values in self.lists], list(self.bounds), self.sort_field, \
            self.descending
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]

    def matches(self, case) -> bool:
        for name, values in self.lists:
            if getattr(case, self.searchable.attribute(name)) not in values:
                return False
        for name, bound in self.bounds:
            value = case.create_time if name.startswith("create") else case.update_time
            if (value < bound) if name.endswith("_ge") else (value >= bound):
                return False
        return True


def parse_query(params: dict[str, str], body: dict, searchable: Searchable = RETURNS) -> SearchQuery:
    """Check query parameters and body filters; unknown body fields are ignored, as TikTok does."""
    low, high = searchable.page_size_min, searchable.page_size_max
    page_size = params.get("page_size", str(PAGE_SIZE_DEFAULT))
    if not (page_size.isascii() and page_size.isdigit()) or not low <= int(page_size) <= high:
        raise SearchParameterError(f"page_size must be a whole number from {low} to {high} (got {page_size!r}).")
    sort_field = params.get("sort_field", "create_time")
    if sort_field not in SORT_FIELDS:
        raise SearchParameterError(f"sort_field must be create_time or update_time (got {sort_field!r}).")
    sort_order = params.get("sort_order", "ASC")
    if sort_order not in SORT_ORDERS:
        raise SearchParameterError(f"sort_order must be ASC or DESC (got {sort_order!r}).")
    lists = []
    for name in (*searchable.id_lists, *searchable.enum_lists):
        values = body.get(name)
        if values is None or values == []:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SearchParameterError(f"{name} must be an array of strings.")
        if name in searchable.id_lists:
            bad = [v for v in values if not (v.isascii() and v.isdigit() and len(v) <= 19)]
        else:
            bad = [v for v in values if v not in searchable.enum_lists[name][0]]
        if bad:
            raise SearchParameterError(f"{name} has invalid values: {', '.join(map(repr, bad))}.")
        lists.append((name, frozenset(searchable.aliases.get(v, v) for v in values)))
    bounds = []
    for name in _TIME_BOUNDS:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SearchParameterError(f"{name} must be a Unix timestamp in seconds (got {value!r}).")
        bounds.append((name, value))
    return SearchQuery(lists=tuple(sorted(lists)), bounds=tuple(bounds), sort_field=sort_field,
                       descending=sort_order == "DESC", page_size=int(page_size),
                       page_token=params.get("page_token", ""), searchable=searchable)


@dataclass(frozen=True)
class Page:
    cases: list
    total_count: int
    next_page_token: str  # "" on the last page


class ReturnSearch:
    """Serves pages from per-(shop, query) sorted key lists, rebuilt when the shop's version moves.
    `world` is the returns World, or its Cancellations (the same reading methods)."""

    def __init__(self, world: World | cancellations.Cancellations, token_key: bytes):
        self._world = world
        self._token_key = token_key
        self._cache: OrderedDict[tuple, tuple[int, list[tuple[int, int]]]] = OrderedDict()

    def page(self, shop_id: str, query: SearchQuery) -> Page:
        keys = self._sorted_keys(shop_id, query)
        after = self._decode_token(query) if query.page_token else None
        if query.descending:
            end = bisect.bisect_left(keys, after) if after else len(keys)
            start = max(0, end - query.page_size)
            chunk = keys[start:end][::-1]
            more = start > 0
        else:
            start = bisect.bisect_right(keys, after) if after else 0
            chunk = keys[start:start + query.page_size]
            more = start + query.page_size < len(keys)
        token = self._encode_token(query, chunk[-1]) if more and chunk else ""
        return Page([self._world.case_by_key(key) for _, key in chunk], len(keys), token)

    def _sorted_keys(self, shop_id: str, query: SearchQuery) -> list[tuple[int, int]]:
        """Ascending (sort value, return key) of the matching returns, cached until the shop changes."""
        cache_key = (shop_id, query.lists, query.bounds, query.sort_field)
        version = self._world.version(shop_id)
        cached = self._cache.get(cache_key)
        if cached and cached[0] == version:
            self._cache.move_to_end(cache_key)
            return cached[1]
        by_update = query.sort_field == "update_time"
        keys = sorted((case.update_time if by_update else case.create_time, case.key)
                      for case in self._world.cases(shop_id) if query.matches(case))
        self._cache[cache_key] = (version, keys)
        self._cache.move_to_end(cache_key)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return keys

    # Page tokens: base64 of "value:key:query digest:mac". The MAC makes tampering detectable and
    # the digest ties the token to the filters and sort it was issued for.

    def _encode_token(self, query: SearchQuery, last: tuple[int, int]) -> str:
        payload = f"{last[0]}:{last[1]}:{query.digest}"
        return base64.b64encode(f"{payload}:{self._mac(payload)}".encode()).decode()

    def _decode_token(self, query: SearchQuery) -> tuple[int, int]:
        invalid = SearchParameterError("page_token is invalid: pass next_page_token from the previous page "
                                       "unchanged, with the same filters and sort.")
        try:
            text = base64.b64decode(query.page_token, validate=True).decode()
            value, key, digest, mac = text.split(":")
            payload = f"{value}:{key}:{digest}"
            cursor = (int(value), int(key))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise invalid from exc
        if not hmac.compare_digest(mac, self._mac(payload)) or digest != query.digest:
            raise invalid
        return cursor

    def _mac(self, payload: str) -> str:
        return hmac.new(self._token_key, payload.encode(), hashlib.sha256).hexdigest()[:24]
