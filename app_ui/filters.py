"""The returns filters, the paged returns table and its export, shared by the grid and Refunds.

The filters fold away behind a one-line summary of what is active (with Clear filters). Every
filter and sort widget is bound to a query parameter (the keys of filters.filters_to_query, and
sort / order / size / page), so a link reproduces the view. A value that cannot be applied shows
one line of error and the last good filters stay in force.

Two parameters are instructions rather than state, handled before any widget is drawn:
`show=due|overdue|waiting` (the sidebar's "Show them", "Show all waiting") replaces every filter
with exactly that set, and `back=` (the list a return was opened from, see navigation) restores
the list when the browser's Back button lands on it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from app_ui import decisions, loaders, navigation
from app_ui.account_view import Scope
from app_ui.formatting import local_time, md_escape, time_column, until, zone_note
from app_ui.navigation import DETAIL_PAGE
from app_ui.runtime import db
from returns_core import domain
from returns_core.filters import (
    BACKTEST_KEY,
    MAX_SEARCH_LENGTH,
    SORTABLE,
    FilterError,
    ReturnFilters,
    filters_from_query,
    filters_to_query,
    parse_backtest,
    parse_skus,
)
from returns_core.store import returns
from returns_core.store.db import utcnow

PAGE_SIZES = (25, 50, 100)
ORDERS = ("Newest / highest first", "Oldest / lowest first")
DEFAULT_SORT, DEFAULT_ORDER, DEFAULT_SIZE = "Created At", ORDERS[0], 50
EXPORTS = (("CSV", ".csv", "text/csv"),
           ("Excel", ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
           ("Parquet", ".parquet", "application/vnd.apache.parquet"))
OVERDUE, DUE_SOON = "🔴 Overdue", "🟠 Due soon"
# how domain.deadline_state shows, the same on every page
DEADLINE_MARKS = {domain.OVERDUE: OVERDUE, domain.DUE_SOON: DUE_SOON}
DEADLINE_ICONS = {domain.OVERDUE: "🔴", domain.DUE_SOON: "🟠"}

FLAG_LABELS = {  # toggle key -> (ReturnFilters field, label)
    "waiting": ("waiting", "Waiting for you"),
    "due": ("due_soon", f"Due within {domain.DUE_SOON_HOURS} h"),
    "overdue": ("overdue", "Overdue"),
    "flagged": ("flagged", "Mismatch or unmapped"),
    "arbitration": ("arbitration", "In arbitration"),
}

# ?show=... : the exact sets the sidebar and the Waiting for you list count, soonest deadline first
SHOW_KEY = "show"
SHOWABLE: dict[str, tuple[ReturnFilters, str]] = {
    "due": (ReturnFilters(due_soon=True), f"due within {domain.DUE_SOON_HOURS} h"),
    "overdue": (ReturnFilters(overdue=True), "past their deadline"),
    "waiting": (ReturnFilters(waiting=True), "waiting for your decision"),
    # the second queue's own deadlines (the sidebar counts them apart)
    # the count before these words names the cancellations ("the 3 cancellations due within 24 h")
    "cancellations_due": (ReturnFilters(types=(domain.CANCELLATION,), due_soon=True),
                          f"due within {domain.DUE_SOON_HOURS} h"),
    "cancellations_overdue": (ReturnFilters(types=(domain.CANCELLATION,), overdue=True), "past their deadline"),
}
SOONEST_FIRST = ("Due By", ORDERS[1])


@dataclass(frozen=True)
class GridView:
    """What the list shows: the filters, the sort and the page size."""

    filters: ReturnFilters
    sort_by: str = DEFAULT_SORT
    order: str = DEFAULT_ORDER
    size: int = DEFAULT_SIZE

    @property
    def descending(self) -> bool:
        return self.order == ORDERS[0]


# --- setting the widgets from a link ---------------------------------------------------------


def widget_values(filters: ReturnFilters) -> dict[str, object]:
    """The filter widgets' values that select exactly `filters` (accounts aside: the sidebar has them)."""
    created = tuple(d for d in (filters.created_from, filters.created_to) if d) if filters.created_from else ()
    values: dict[str, object] = {
        "q": filters.search, "type": list(filters.types), "reason": list(filters.reasons),
        "mstatus": list(filters.marketplace_statuses), "created": created, "sku": " ".join(filters.skus),
        "status": list(filters.statuses),
    }
    values.update({key: getattr(filters, field) for key, (field, _) in FLAG_LABELS.items()})
    return values


def set_view(filters: ReturnFilters, *, sort: tuple[str, str] | None = None) -> None:
    """Put every filter widget (and the sort and order, when given) on exactly this view.

    For callbacks and for the start of a run, before the widgets are drawn.
    """
    st.session_state.update(widget_values(filters))
    # a backtest's returns (?backtest=) have no widget: the address holds them
    if filters.backtest is None:
        st.query_params.pop(BACKTEST_KEY, None)
    else:
        st.query_params[BACKTEST_KEY] = str(filters.backtest)
    if sort is not None:
        st.session_state["sort"], st.session_state["order"] = sort


def clear_filters() -> None:
    """Clear filters: every filter back to "any" (the sort stays)."""
    set_view(ReturnFilters())


def show_link(what: str) -> dict[str, str]:
    """Query parameters of a link that opens the grid on exactly the set `what` (a SHOWABLE key)."""
    if what not in SHOWABLE:
        raise ValueError(f"Nothing to show as {what!r}; one of {', '.join(SHOWABLE)}.")
    return {SHOW_KEY: what}


def show_exactly(what: str, prefix: str = "returns") -> None:
    """Replace every filter with exactly the set `what`, soonest deadline first, and say so once."""
    filters, _ = SHOWABLE[what]
    set_view(filters, sort=SOONEST_FIRST)
    st.session_state[f"{prefix}_notice"] = what


def _view_from_query(query: dict) -> dict[str, object]:
    """sort / order / size / page from a list's query string, those that are valid."""
    view: dict[str, object] = {}
    if query.get("sort") in SORTABLE:
        view["sort"] = query["sort"]
    if query.get("order") in ORDERS:
        view["order"] = query["order"]
    for key, valid in (("size", PAGE_SIZES), ("page", None)):
        text = str(query.get(key, ""))
        if text.isdigit() and int(text) >= 1 and (valid is None or int(text) in valid):
            view[key] = int(text)
    return view


def follow_link(prefix: str) -> None:
    """Apply `show=` or `back=` from the address, take them (and a return's id/shop) out of it, and run again.

    The run again matters: on the browser's Back button Streamlit lets the address decide every bound
    widget of that run (a missing parameter means "any"), over what is set here; the next run takes the
    view set here, and the widgets write it back into the address.
    """
    params = st.query_params
    what = params.get(SHOW_KEY)
    back = navigation.BACK_KEY in params
    if what is None and not back:
        return
    if what is not None:
        del params[SHOW_KEY]
        if what in SHOWABLE:
            show_exactly(what, prefix)
    if back:
        page, _, query = navigation.came_from()
        for key in navigation.RETURN_KEYS:
            if key in params:
                del params[key]
        if page == st.session_state.get(f"{prefix}_page_file"):
            try:
                set_view(filters_from_query(query))
                st.session_state.update(_view_from_query(query))
            except FilterError:
                pass  # a damaged link: the list opens as it is
    st.rerun()


# --- the filter panel --------------------------------------------------------------------------


def describe(filters: ReturnFilters) -> list[str]:
    """The active filters in words, for the summary line (accounts aside: the sidebar shows them)."""
    words: list[str] = []
    if filters.search:
        words.append(f"Search “{md_escape(filters.search)}”")
    for label, values in (("Type", filters.types), ("Status", filters.statuses),
                          ("TikTok status", tuple(domain.marketplace_status_label(s)
                                                  for s in filters.marketplace_statuses)),
                          ("Reason", filters.reasons), ("SKU", filters.skus)):
        if values:
            words.append(f"{label}: {', '.join(md_escape(v) for v in values)}")
    if filters.created_from or filters.created_to:
        start, end = filters.created_from or filters.created_to, filters.created_to or filters.created_from
        words.append(f"Created {start:%d %b %Y}" + (f" – {end:%d %b %Y}" if end != start else ""))
    words += [label for field, label in FLAG_LABELS.values() if getattr(filters, field)]
    if filters.backtest is not None:
        label = loaders.backtest_label(filters.backtest)
        words.append(md_escape(label) if label else f"Backtest #{filters.backtest} (no longer kept: run it again)")
    return words


def status_counts_text(counts: dict[str, int]) -> str:
    """How many returns each Status has under the other filters, and how many TikTok status is unknown."""
    text = " · ".join(f"{status} **{counts.get(status, 0):,}**" for status in domain.STATUSES)
    if counts.get("Unmapped"):
        text += (f"  \n{counts['Unmapped']:,} returns have a TikTok status we do not know yet: see "
                 "**Mismatch or unmapped**.")
    return text


def filter_panel(current: Scope, *, prefix: str, types: tuple[str, ...] = domain.ALL_TYPES,
                 narrow: Callable[[ReturnFilters], ReturnFilters] | None = None,
                 page_file: str = navigation.GRID_PAGE, noun: str = "returns") -> GridView:
    """A one-line summary of the active filters (with Clear filters) over the folded filters and sort.

    Returns the view (the last good filters after a bad input). `narrow` restricts every count and
    row further (Refunds: refund requests only).
    """
    st.session_state[f"{prefix}_page_file"] = page_file
    follow_link(prefix)
    notice = st.container()
    summary_row = st.container(key=f"{prefix}_summary", horizontal=True, vertical_alignment="center", gap="small")
    with st.expander("Filters and sort", icon=":material/tune:"):
        picked = _filter_widgets(current, prefix, types)
        counts = loaders.status_counts(narrow(picked) if narrow else picked)
        # no format_func on a bound widget: the address would hold the formatted words, not the value
        statuses = st.pills("Status", list(domain.STATUSES), selection_mode="multi", key="status",
                            bind="query-params", help="Our processing status.")
        st.caption(status_counts_text(counts))
        picked = picked.with_(statuses=tuple(statuses or ()))
        view = _sort_widgets(narrow(picked) if narrow else picked)
    st.session_state[f"{prefix}_last_filters"] = picked

    shown = counted(view.filters, noun)
    active = describe(picked)
    sort_words = ([f"sorted by {view.sort_by}, {view.order.lower()}"]
                  if (view.sort_by, view.order) != (DEFAULT_SORT, DEFAULT_ORDER) else [])
    summary_row.markdown(f":material/filter_alt: {shown}"
                         + "".join(f" · {w}" for w in active + sort_words) + ("" if active else " · no filters"))
    summary_row.button("Clear filters", key=f"{prefix}_clear", icon=":material/filter_alt_off:",
                       type="tertiary", on_click=clear_filters, disabled=not active)
    what = st.session_state.pop(f"{prefix}_notice", None)
    if what in SHOWABLE:
        notice.info(f"Showing exactly the {shown} {SHOWABLE[what][1]}, soonest deadline first. "
                    "Your other filters were cleared.", icon=":material/filter_alt:")
    return view


def counted(filters: ReturnFilters, noun: str = "returns") -> str:
    """What the filters select, counted in words with the figures in bold. The grid's rows are returns and
    cancellations, so each kind is named ("**2,006** returns and **803** cancellations", "**803**
    cancellations"); a page that counts one thing names it (`noun`: "**312** refund requests")."""
    if noun != "returns":
        return f"**{loaders.return_count(filters):,}** {noun}"
    kinds = loaders.kind_counts(filters)  # read off the status counts' scan: no count of its own
    returns, cancellations = kinds[domain.RETURN_KIND], kinds[domain.CANCELLATION_KIND]
    if not returns and not cancellations and filters.types == (domain.CANCELLATION,):
        return "**0** cancellations"  # none, of the only kind asked for
    return domain.count_in_words(returns, cancellations, "**{:,}**".format)


def _filter_widgets(current: Scope, prefix: str, types: tuple[str, ...]) -> ReturnFilters:
    """The filter inputs, as ReturnFilters (the last good ones after a bad input)."""
    c1, c2, c3 = st.columns([2, 1, 1])
    search = c1.text_input("Search", key="q", bind="query-params", max_chars=MAX_SEARCH_LENGTH,
                           placeholder="Return ID, order ID, SKU or tracking number",
                           help="IDs match exactly or by their start; SKUs by any part; tracking numbers by any "
                                "part with a digit in it.")
    picked_types = c2.multiselect("Type", list(types), key="type", bind="query-params", placeholder="Any type")
    reasons = c3.multiselect("Reason", loaders.reason_options(current.shop_ids), key="reason",
                             bind="query-params", placeholder="Any reason")
    c4, c5, c6 = st.columns([2, 1, 1])
    marketplace = c4.multiselect("Marketplace Status", loaders.marketplace_statuses(), key="mstatus",
                                 bind="query-params", placeholder="Any TikTok status",
                                 help="TikTok's own status value (the grid shows it in words).")
    created = c5.date_input("Created between", value=(), key="created", bind="query-params", format="YYYY-MM-DD",
                            max_value=date(2100, 1, 1))
    sku_text = c6.text_input("SKU", key="sku", bind="query-params", max_chars=2000,
                             placeholder="One or more, separated by spaces")
    flags = {key: column.toggle(label, key=key, bind="query-params")
             for column, (key, (_, label)) in zip(st.columns(len(FLAG_LABELS)), FLAG_LABELS.items(), strict=True)}

    last_key = f"{prefix}_last_filters"
    try:
        days = tuple(created or ())
        return ReturnFilters(
            shop_ids=current.shop_ids, types=tuple(picked_types), reasons=tuple(reasons),
            marketplace_statuses=tuple(marketplace), skus=parse_skus(sku_text or ""),
            created_from=days[0] if days else None, created_to=days[-1] if days else None,
            search=(search or "").strip(), **{field: flags[key] for key, (field, _) in FLAG_LABELS.items()},
            backtest=parse_backtest(st.query_params.get_all(BACKTEST_KEY)),
        )
    except FilterError as exc:
        st.error(md_escape(exc), icon=":material/error:")
        filters = st.session_state.get(last_key) or ReturnFilters()
        return filters.with_(shop_ids=current.shop_ids, statuses=())


def _sort_widgets(filters: ReturnFilters) -> GridView:
    """Sort by, order and rows per page (sorting and paging run in the database)."""
    s1, s2, s3 = st.columns([2, 2, 1])
    sort_by = s1.selectbox("Sort by", SORTABLE, index=SORTABLE.index(DEFAULT_SORT), key="sort", bind="query-params")
    order = s2.selectbox("Order", ORDERS, key="order", bind="query-params")
    size = s3.selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(DEFAULT_SIZE), key="size",
                        bind="query-params")
    return GridView(filters, sort_by, order, size)


def list_query(view: GridView, page: int) -> dict[str, str | list[str]]:
    """The list's own query string (filters, sort, size, page), for the way back from a return."""
    query = filters_to_query(view.filters)
    for key, value, default in (("sort", view.sort_by, DEFAULT_SORT), ("order", view.order, DEFAULT_ORDER),
                                ("size", str(view.size), str(DEFAULT_SIZE)), ("page", str(page), "1")):
        if value != default:
            query[key] = value
    return query


# --- the table ---------------------------------------------------------------------------------

ACTIONS_COLUMN = "Actions"
OPEN = "Open"
DECIDE = "Decide"
ACCOUNT_COLUMN = "Account"  # the shop's name where the store has its ID (Account ID)
REFUND_COLUMN = "Refund Total"
DUE_COLUMN = "Due By"
FLAGS_COLUMN = "Flags"
ROW_HEIGHT = 35  # st.dataframe's row (and header) height in pixels
FLAG_ARBITRATION, FLAG_MISMATCH, FLAG_UNMAPPED = "⚖️", "≠", "?"
# pixels per column, so that at 1440 px with the sidebar open (about 1,090 px for the grid, with the row
# ticks) every column fits without sideways scrolling: a digit is 7 px and a cell keeps 17 px of padding,
# so the 19-digit return ID shows whole (148), as do Status, Refund and Due By; Order ID, Account, Type,
# TikTok status and Reason are shortened (whole on the return's page; the header help names the column).
# Actions (a ⋮ menu: Open, Decide) is pinned first, so a phone reaches it without sideways scrolling.
COLUMN_WIDTHS: dict[str, int] = {
    ACTIONS_COLUMN: 46, "Marketplace Return ID": 148, "Marketplace Order ID": 80, ACCOUNT_COLUMN: 60,
    "Type": 92, "Status": 78, "Marketplace Status": 112, "Reason": 104, "Created At": 58, "Updated At": 62,
    REFUND_COLUMN: 80, DUE_COLUMN: 98, FLAGS_COLUMN: 36,
}
# shorter headers where the full name would not fit: the full name starts the column's help
COLUMN_LABELS: dict[str, str] = {
    "Marketplace Return ID": "Return ID", "Marketplace Order ID": "Order ID", "Marketplace Status": "TikTok status",
    "Created At": "Created", "Updated At": "Updated", REFUND_COLUMN: "Refund",
}


def shop_names(current: Scope) -> dict[str, str]:
    """Account ID -> the shop's name."""
    return {a.shop_id: a.name for a in current.accounts}


def money(amount: object, currency: object) -> str:
    """'96.40 USD' (exact: the Decimal's own digits, at least two decimals), '' when there is none."""
    if amount is None or amount != amount:
        return ""
    return f"{amount:,.2f} {currency or ''}".strip()


def due_text(status: str | None, due_by: object, now, *, relative: bool = False) -> str:
    """'🔴 14 Dec, 09:30' (overdue), '🟠 …' (due within 24 h), the time alone otherwise, '' without Due By.

    `relative` puts how far off it is first: '🟠 in 5 h · 14 Dec, 09:30'.
    """
    if due_by is None or due_by != due_by:
        return ""
    icon = DEADLINE_ICONS.get(domain.deadline_state(status, due_by, now))
    text = local_time(due_by, labelled=False, now=now)
    if relative:
        text = f"{until(due_by, now)} · {text}"
    return f"{icon} {text}" if icon else text


def flags_text(row: pd.Series) -> str:
    """Arbitration, mismatch and unmapped status as a mark each (the column's help says which is which)."""
    marks = ((row["Arbitration"], FLAG_ARBITRATION), (row["Mismatch"], FLAG_MISMATCH),
             (row["Unmapped Status"], FLAG_UNMAPPED))
    return " ".join(mark for present, mark in marks if present)


def grid_frame(page: pd.DataFrame, names: dict[str, str], *, relative_due: bool = False) -> pd.DataFrame:
    """The page as the grid shows it: the seed columns in their order with words for people, then
    Refund Total, Due By (with its deadline mark), Flags and Actions.

    Worked out at each draw, not in the cached page: a deadline passes while the page stays cached.
    """
    now = utcnow()
    shown = pd.DataFrame(index=page.index)
    shown["Marketplace Return ID"] = page["Marketplace Return ID"]
    shown["Marketplace Order ID"] = page["Marketplace Order ID"]
    shown[ACCOUNT_COLUMN] = [names.get(s, s) for s in page["Account ID"]]
    shown["Type"] = page["Type"]
    shown["Status"] = page["Status"].fillna("Unmapped")
    shown["Marketplace Status"] = [domain.marketplace_status_label(s) for s in page["Marketplace Status"]]
    shown["Reason"] = page["Reason"]
    shown["Created At"] = page["Created At"]
    shown["Updated At"] = page["Updated At"]
    shown[REFUND_COLUMN] = [money(a, c) for a, c in zip(page["Refund Total"], page["Currency"], strict=True)]
    shown[DUE_COLUMN] = [due_text(s, d, now, relative=relative_due)
                         for s, d in zip(page["Status"], page["Due By"], strict=True)]
    shown[FLAGS_COLUMN] = [flags_text(row) for _, row in page.iterrows()]
    shown[ACTIONS_COLUMN] = [[OPEN, DECIDE] if can else [OPEN] for can in page[returns.CAN_DECIDE]]
    return shown


def grid_columns(names: dict[str, str], prefix: str) -> dict:
    """Widths that fit every column at 1440 px with the sidebar open (see returns.py's wide_page); what a
    cell shortens is explained in its header's help and shown whole on the return's page."""
    status_words = "  \n".join(f"{label}: `{code}`" for code, label in domain.MARKETPLACE_STATUS_LABELS.items())
    shops = "  \n".join(f"{md_escape(name)}: {md_escape(shop_id, code=True)}" for shop_id, name in names.items())

    def text(name: str, *, help: str | None = None, **options) -> st.column_config.Column:  # noqa: A002
        full = f"**{name}**: " if name in COLUMN_LABELS else ""
        return st.column_config.TextColumn(COLUMN_LABELS.get(name), help=f"{full}{help}" if help else None,
                                           width=COLUMN_WIDTHS.get(name), **options)

    columns = {
        "Marketplace Return ID": text("Marketplace Return ID", help="TikTok's return ID."),
        "Marketplace Order ID": text("Marketplace Order ID",
                                     help="TikTok's order ID; whole on the return's page and in exports."),
        ACCOUNT_COLUMN: text(ACCOUNT_COLUMN,
                             help=f"The shop. Its Account ID (TikTok's shop ID) is in every export:  \n{shops}"),
        "Type": text("Type", help="Return, Refund, Return & Refund or Replacement, or Cancellation (a buyer asking "
                                  "to cancel before shipment); whole on the return's page."),
        "Status": text("Status", help="Our processing status."),
        "Marketplace Status": text("Marketplace Status",
                                   help="TikTok's status in words. Its exact value, shown on the return's page and "
                                        f"in every export:  \n{status_words}"),
        "Reason": text("Reason", help="TikTok's reason text; whole on the return's page."),
        "Created At": time_column("Created", width=COLUMN_WIDTHS["Created At"], date_only=True,
                                  help="**Created At**: when the buyer asked (the time is on the return's page)."),
        "Updated At": time_column("Updated", width=COLUMN_WIDTHS["Updated At"], date_only=True,
                                  help="**Updated At**: TikTok's last change."),
        REFUND_COLUMN: text(REFUND_COLUMN, alignment="right", help="The refund the buyer asks for."),
        DUE_COLUMN: text(DUE_COLUMN, help="TikTok's deadline for the seller: 🔴 overdue, 🟠 due "
                                          f"within {domain.DUE_SOON_HOURS} h. {zone_note()}"),
        FLAGS_COLUMN: text(FLAGS_COLUMN, help=f"{FLAG_ARBITRATION} a TikTok arbitration is open or was held · "
                                              f"{FLAG_MISMATCH} our Status disagrees with TikTok's · "
                                              f"{FLAG_UNMAPPED} a TikTok status we do not know yet"),
        ACTIONS_COLUMN: st.column_config.ButtonColumn(
            ACTIONS_COLUMN, key=f"{prefix}_action", width=COLUMN_WIDTHS[ACTIONS_COLUMN], pinned=True,
            help="Open the return; Decide approves or rejects it on TikTok while TikTok waits for the seller."),
    }
    return columns


def open_detail(row: pd.Series, came_from: str = "returns", list_query: dict | None = None) -> None:
    """Open a grid row's return on the detail page, remembering the list it came from."""
    st.switch_page(DETAIL_PAGE, query_params=navigation.return_query(
        row["Marketplace Return ID"], row["Account ID"], came_from, list_query or {}))


def table_height(rows: int) -> int:
    """Tall enough for every row and the header: the page scrolls, the table has no scroll box of its own."""
    return (max(rows, 1) + 1) * ROW_HEIGHT + 3


def returns_table(view: GridView, current: Scope, *, prefix: str, noun: str = "returns",
                  came_from: str = "returns") -> dict[str, str | list[str]]:
    """Page, show and export the filtered returns; picking a row opens its detail page.

    Returns the list's query string (filters, sort, size, page): the way back from a return.
    """
    filters = view.filters
    total = loaders.return_count(filters)
    if total == 0 and loaders.return_count(ReturnFilters(shop_ids=filters.shop_ids)) == 0:
        empty_store(noun)
        return list_query(view, 1)
    pages = max(1, -(-total // view.size))

    # a new filter or sort starts again on page 1
    view_key = (filters, view.sort_by, view.order, view.size)
    previous = st.session_state.get(f"{prefix}_view")
    if (previous is not None and previous != view_key) or st.session_state.get("page", 1) > pages:
        st.session_state["page"] = 1
    st.session_state[f"{prefix}_view"] = view_key

    table_slot = st.container()
    f1, f2 = st.columns([3, 2], vertical_alignment="center")
    with f2:
        page_number = st.pagination(pages, key="page", bind="query-params", width="stretch")
    offset = (page_number - 1) * view.size
    page = loaders.grid_page(filters, view.sort_by, view.descending, view.size, offset)
    first = offset + 1 if total else 0
    f1.caption(f"Showing {first:,}–{offset + len(page):,} of {counted(filters, noun)} · {zone_note()}")
    back = list_query(view, page_number)

    with table_slot:
        if total == 0:
            st.info(f"No {noun} match these filters.", icon=":material/filter_alt_off:")
        names = shop_names(current)
        event = st.dataframe(
            grid_frame(page, names), key=f"{prefix}_grid", on_select="rerun", selection_mode="single-row",
            hide_index=True, width="stretch", height=table_height(len(page)), row_height=ROW_HEIGHT,
            column_config=grid_columns(names, prefix),
        )
        follow_row(page, event.selection.rows, prefix=prefix, came_from=came_from, back=back)
    export_buttons(filters, sort_by=view.sort_by, descending=view.descending, prefix=prefix, total=total)
    return back


def follow_row(page: pd.DataFrame, selected: list[int], *, prefix: str, came_from: str, back: dict) -> None:
    """A click in a list of returns: Decide opens the decision panel, Open (or selecting the row)
    opens the return's page; both remember the list (`back`) for the way back."""
    click = st.session_state.get(f"{prefix}_action")
    if click is not None and 0 <= click["row"] < len(page):
        row = page.iloc[click["row"]]
        if click["label"] == DECIDE:
            decisions.open_decision_dialog(db(), loaders.accounts(), row["Account ID"], row["Marketplace Return ID"],
                                           navigation.return_query(row["Marketplace Return ID"], row["Account ID"],
                                                                   came_from, back))
        else:
            open_detail(row, came_from, back)
    elif selected:
        open_detail(page.iloc[selected[0]], came_from, back)


def empty_store(noun: str, where: str = "in the sidebar") -> None:
    """Before the first sync: what to press and what happens then."""
    st.info(f"**No {noun} yet.** Press **Sync Returns** ({where}). Returns Desk then fetches every "
            "return of your shops from TikTok in the background, and lists them here, the ones waiting for "
            "your decision first. The first sync of a large shop takes a minute or two; you can keep working "
            "meanwhile.", icon=":material/sync:")


def export_file(filters: ReturnFilters, suffix: str, *, sort_by: str, descending: bool) -> Callable[[], bytes]:
    """A callable for st.download_button: runs the export only when the user clicks."""
    database = db()

    def build() -> bytes:
        with tempfile.TemporaryDirectory(prefix="returns-export-") as folder:
            out = Path(folder) / f"returns{suffix}"
            returns.export_returns(database, filters, out, sort_by=sort_by, descending=descending)
            return out.read_bytes()

    return build


def export_buttons(filters: ReturnFilters, *, sort_by: str, descending: bool, prefix: str, total: int) -> None:
    """CSV, Excel and Parquet of exactly the filtered rows, in the grid's order."""
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    columns = st.columns(len(EXPORTS) + 1, vertical_alignment="center")
    columns[0].markdown(f"**Export** the {total:,} filtered rows (times in UTC):")
    for column, (label, suffix, mime) in zip(columns[1:], EXPORTS, strict=True):
        too_big = suffix == ".xlsx" and total > returns.EXCEL_MAX_ROWS
        column.download_button(
            label, export_file(filters, suffix, sort_by=sort_by, descending=descending),
            file_name=f"{prefix}-{stamp}{suffix}", mime=mime, key=f"{prefix}_export_{suffix[1:]}",
            on_click="ignore", icon=":material/download:", disabled=total == 0 or too_big,
            help="Too many rows for one Excel sheet: use CSV or Parquet" if too_big else None,
        )
