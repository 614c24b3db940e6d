"""What a user narrows the returns to, checked, and its round trip through the URL.

No SQL here: `store.returns.where_clause` turns these filters into SQL. The grid and refunds
pages bind their filter widgets to the query parameters below, so a link reproduces the view;
other pages (reason charts) link to the grid with `filters_to_query` / `grid_query`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from typing import Literal

from returns_core import domain

MAX_SEARCH_LENGTH = 200
MAX_PAGE_SIZE = 500
MAX_SKUS = 50

SORTABLE: tuple[str, ...] = tuple(name for name, _ in domain.GRID_COLUMNS)

DateBasis = Literal["created", "updated"]  # which date of a return a period or week is of


class FilterError(ValueError):
    """A filter value a user typed that cannot be applied (shown as one line)."""


@dataclass(frozen=True)
class ReturnFilters:
    """What the user narrowed the returns to. Empty tuples mean "any"."""

    shop_ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # domain.KINDS: returns, or buyers' cancellations before shipment
    statuses: tuple[str, ...] = ()
    marketplace_statuses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # TikTok's reason text, as shown in the Reason column
    reason_codes: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()  # seller SKU or SKU id of any line item
    created_from: date | None = None  # inclusive, UTC day
    created_to: date | None = None  # inclusive, UTC day
    updated_from: date | None = None
    updated_to: date | None = None
    due_soon: bool = False  # domain.deadline_state is DUE_SOON (an open case, deadline within 24 h)
    overdue: bool = False  # domain.deadline_state is OVERDUE (an open case, deadline passed)
    flagged: bool = False  # mismatch or unmapped status
    arbitration: bool = False  # arbitration_status present
    waiting: bool = False  # TikTok waits for the seller's decision (domain.can_decide): "Waiting for you"
    review_outcomes: tuple[str, ...] = ()  # "" stands for "not signed off yet"
    search: str = ""  # return ID, order ID, SKU or tracking number
    backtest: int | None = None  # the returns a decision rule's backtest would have decided (returns_core.rules)

    def __post_init__(self) -> None:
        if len(self.search) > MAX_SEARCH_LENGTH:
            raise FilterError(f"Search text is too long ({len(self.search)} characters; at most {MAX_SEARCH_LENGTH}).")
        for start, end, label in (
            (self.created_from, self.created_to, "Created"),
            (self.updated_from, self.updated_to, "Updated"),
        ):
            if start and end and start > end:
                raise FilterError(f"{label} date range is backwards: {start} is after {end}.")

    def with_(self, **changes) -> ReturnFilters:
        """A copy with these fields changed."""
        return replace(self, **changes)

    def is_empty(self) -> bool:
        """True when nothing is narrowed."""
        return all(not getattr(self, f.name) for f in fields(self))


def check_page(limit: int, offset: int) -> None:
    """Refuse a page size or offset a user (or a URL) could send that no page has."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise FilterError(f"Page size must be between 1 and {MAX_PAGE_SIZE}.")
    if offset < 0:
        raise FilterError("Page offset cannot be negative.")


def total_from_status_counts(counts: dict[str, int], filters: ReturnFilters) -> int:
    """The filtered count, read off `status_counts` (which ignores only the status filter): no second scan."""
    if filters.statuses:
        return sum(counts.get(status, 0) for status in filters.statuses)
    return sum(counts.values())


def kind_totals(counts: dict[tuple[str, str], int], filters: ReturnFilters) -> dict[str, int]:
    """The filtered count per kind (return, cancellation), read off `status_kind_counts` the same way."""
    totals = dict.fromkeys(domain.KINDS, 0)
    for (status, kind), n in counts.items():
        if not filters.statuses or status in filters.statuses:
            totals[kind] = totals.get(kind, 0) + n
    return totals


# --- refunds -------------------------------------------------------------------------------

REFUND_TYPES: tuple[str, ...] = (domain.REFUND, domain.RETURN_AND_REFUND)


def refund_filters(filters: ReturnFilters) -> ReturnFilters:
    """Only refund requests (Refund, Return & Refund), within any Type the user picked."""
    types = tuple(t for t in filters.types if t in REFUND_TYPES) if filters.types else REFUND_TYPES
    # a pick with no refund type means "none": keep an impossible type rather than "any"
    return filters.with_(types=types or ("-",))


# --- filters in the URL ---------------------------------------------------------------------

QUERY_LIST_KEYS: dict[str, str] = {
    "type": "types",
    "status": "statuses",
    "mstatus": "marketplace_statuses",
    "reason": "reasons",
}
BACKTEST_KEY = "backtest"  # ?backtest=5: exactly the returns backtest #5 would have decided
QUERY_FLAG_KEYS: dict[str, str] = {
    "due": "due_soon",
    "overdue": "overdue",
    "flagged": "flagged",
    "arbitration": "arbitration",
    "waiting": "waiting",
}


def parse_skus(text: str) -> tuple[str, ...]:
    """SKUs typed as one text, separated by commas or spaces."""
    skus = tuple(dict.fromkeys(s for s in text.replace(",", " ").split() if s))
    if len(skus) > MAX_SKUS:
        raise FilterError(f"Too many SKUs ({len(skus)}); at most {MAX_SKUS}.")
    return skus


def _parse_day(text: str) -> date:
    """A YYYY-MM-DD day from a URL; FilterError otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(f"{text!r} is not a date; use YYYY-MM-DD.") from None


def filters_to_query(f: ReturnFilters) -> dict[str, str | list[str]]:
    """The filters as query parameters (the keys the grid's widgets are bound to)."""
    query: dict[str, str | list[str]] = {}
    for key, name in QUERY_LIST_KEYS.items():
        if getattr(f, name):
            query[key] = list(getattr(f, name))
    for key, name in QUERY_FLAG_KEYS.items():
        if getattr(f, name):
            query[key] = "true"
    if f.skus:
        query["sku"] = " ".join(f.skus)
    if f.created_from or f.created_to:
        start = f.created_from or f.created_to
        end = f.created_to or f.created_from
        query["created"] = [start.isoformat(), end.isoformat()]
    if f.search:
        query["q"] = f.search
    if f.backtest is not None:
        query[BACKTEST_KEY] = str(f.backtest)
    return query


def filters_from_query(query: Mapping[str, str | list[str]]) -> ReturnFilters:
    """Query parameters back into filters; FilterError when a value cannot be read."""

    def values(key: str) -> tuple[str, ...]:
        raw = query.get(key)
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else list(raw)
        return tuple(v for v in items if v != "")

    changes: dict = {name: values(key) for key, name in QUERY_LIST_KEYS.items()}
    for key, name in QUERY_FLAG_KEYS.items():
        flag = values(key)
        changes[name] = bool(flag) and flag[-1].lower() == "true"
    changes["skus"] = parse_skus(" ".join(values("sku")))
    days = [_parse_day(v) for v in values("created")]
    if len(days) > 2:
        raise FilterError("The created-date range takes at most two dates.")
    if days:
        changes["created_from"], changes["created_to"] = days[0], days[-1]
    search = values("q")
    changes["search"] = search[-1] if search else ""
    changes["backtest"] = parse_backtest(values(BACKTEST_KEY))
    return ReturnFilters(**changes)


def parse_backtest(values: tuple[str, ...] | list[str]) -> int | None:
    """The backtest id of a link (?backtest=5), or None; FilterError when it is not a number."""
    if not values:
        return None
    text = str(values[-1]).strip()
    if not text.isdigit() or len(text) > 18:
        raise FilterError(f"{text!r} is not a backtest number.")
    return int(text)


# --- drill-down from a chart to the grid ------------------------------------------------------


def grid_query(filters: ReturnFilters) -> dict[str, str | list[str]] | None:
    """Query params that open the grid on exactly these rows, or None when its URL cannot say so.

    The account is not among them: the sidebar's Account View (bound to ?account=) selects it.
    """
    if len(filters.shop_ids) > 1:
        return None
    query = filters_to_query(filters)
    try:
        same = filters_from_query(query) == filters.with_(shop_ids=())
    except FilterError:  # e.g. more SKUs than the grid's SKU box takes
        return None
    return query if same else None


def week_filters(filters: ReturnFilters, week: date, basis: DateBasis = "created") -> ReturnFilters:
    """The filters narrowed to one Monday-to-Sunday week, inside any date range already set."""
    start, end = week, week + timedelta(days=6)
    if basis == "created":
        lo, hi = filters.created_from, filters.created_to
        return filters.with_(created_from=max(start, lo) if lo else start, created_to=min(end, hi) if hi else end)
    lo, hi = filters.updated_from, filters.updated_to
    return filters.with_(updated_from=max(start, lo) if lo else start, updated_to=min(end, hi) if hi else end)
