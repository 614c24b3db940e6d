"""Where each page lives: the files app.py registers, for st.page_link and st.switch_page; and the
way back from a return to the list it was opened from."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import streamlit as st

GRID_PAGE = "app_pages/returns.py"
DETAIL_PAGE = "app_pages/detail.py"
REFUNDS_PAGE = "app_pages/refunds.py"
REASONS_PAGE = "app_pages/reasons.py"
REVIEW_QUEUE_PAGE = "app_pages/review_queue.py"
RECONCILIATION_PAGE = "app_pages/reconciliation.py"
ACCOUNTS_PAGE = "app_pages/accounts.py"
SYNC_HISTORY_PAGE = "app_pages/sync_history.py"
RULES_PAGE = "app_pages/rules.py"

# A link to a return carries the list it came from: `back=<list>?<the list's own query string>`.
# The return's page links back to exactly that filtered, sorted page of the list; and when the
# browser's Back button lands on the list with `back` still in the address (Streamlit 1.67 pushes
# the new page's query onto the old page's address first), the list restores itself from it.
BACK_KEY = "back"
RETURN_KEYS = ("id", "shop", BACK_KEY)  # a return's own parameters: not the list's
LISTS: dict[str, tuple[str, str]] = {  # name in `back` -> (page file, "Back to ..." label)
    "returns": (GRID_PAGE, "Returns"),
    "refunds": (REFUNDS_PAGE, "Refunds"),
}


def return_query(return_id: str, shop_id: str, came_from: str, list_query: dict[str, str | list[str]]) -> dict:
    """The query parameters of a return's page, opened from the list `came_from` showing `list_query`."""
    if came_from not in LISTS:
        raise ValueError(f"Unknown list {came_from!r}; one of {', '.join(LISTS)}.")
    back = came_from + ("?" + urlencode(list_query, doseq=True) if list_query else "")
    return {"id": return_id, "shop": shop_id, BACK_KEY: back}


def came_from() -> tuple[str, str, dict[str, str | list[str]]]:
    """(page file, label, query) of the list this page was opened from (the Returns grid when unknown).

    A `back` that names no list, or is not a query string, falls back to the grid as it opens.
    """
    name, _, query = (st.query_params.get(BACK_KEY) or "").partition("?")
    page, label = LISTS.get(name, LISTS["returns"])
    if name not in LISTS:
        return page, label, {}
    parsed = parse_qs(query, keep_blank_values=False)
    return page, label, {key: values if len(values) > 1 else values[0] for key, values in parsed.items()
                         if key not in RETURN_KEYS}
