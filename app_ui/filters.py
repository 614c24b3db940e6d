"""The returns filters, the paged returns table and its export, shared by the grid and Refunds.

Every filter widget is bound to a query parameter (the keys of filters.filters_to_query), so a
link reproduces the view. A value that cannot be applied shows one line of error and the last
good filters stay in force.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from app_ui import decisions, loaders
from app_ui.account_view import Scope
from app_ui.formatting import utc_text
from app_ui.navigation import DETAIL_PAGE
from app_ui.runtime import db
from returns_core import domain
from returns_core.filters import MAX_SEARCH_LENGTH, SORTABLE, FilterError, ReturnFilters, parse_skus
from returns_core.store import returns
from returns_core.store.db import utcnow

PAGE_SIZES = (25, 50, 100)
ORDERS = ("Newest / highest first", "Oldest / lowest first")
EXPORTS = (("CSV", ".csv", "text/csv"),
           ("Excel", ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
           ("Parquet", ".parquet", "application/vnd.apache.parquet"))
DUE_COLUMN = "Deadline"
OVERDUE, DUE_SOON = "🔴 Overdue", "🟠 Due soon"
# how domain.deadline_state shows, the same on every page
DEADLINE_MARKS = {domain.OVERDUE: OVERDUE, domain.DUE_SOON: DUE_SOON}


def filter_panel(current: Scope, *, prefix: str, types: tuple[str, ...] = domain.TYPES,
                 narrow: Callable[[ReturnFilters], ReturnFilters] | None = None) -> ReturnFilters:
    """Draw the filters and return what they select (the last good filters after a bad input).

    `narrow` restricts every count and row further (Refunds: refund requests only).
    """
    c1, c2, c3 = st.columns([2, 1, 1])
    search = c1.text_input("Search", key="q", bind="query-params", max_chars=MAX_SEARCH_LENGTH,
                           placeholder="Return ID, order ID, SKU or tracking number",
                           help="IDs match exactly or by their start; SKUs and tracking numbers by any part.")
    picked_types = c2.multiselect("Type", list(types), key="type", bind="query-params", placeholder="Any type")
    reasons = c3.multiselect("Reason", loaders.reason_options(current.shop_ids), key="reason",
                             bind="query-params", placeholder="Any reason")
    c4, c5, c6 = st.columns([2, 1, 1])
    marketplace = c4.multiselect("Marketplace Status", loaders.marketplace_statuses(), key="mstatus",
                                 bind="query-params", placeholder="Any TikTok status")
    created = c5.date_input("Created between", value=(), key="created", bind="query-params", format="YYYY-MM-DD",
                            max_value=date(2100, 1, 1))
    sku_text = c6.text_input("SKU", key="sku", bind="query-params", max_chars=2000,
                             placeholder="One or more, separated by spaces")
    t1, t2, t3, t4 = st.columns(4)
    due_soon = t1.toggle(f"Due within {domain.DUE_SOON_HOURS} h", key="due", bind="query-params")
    overdue = t2.toggle("Overdue", key="overdue", bind="query-params")
    flagged = t3.toggle("Mismatch or unmapped", key="flagged", bind="query-params")
    arbitration = t4.toggle("In arbitration", key="arbitration", bind="query-params")

    last_key = f"{prefix}_last_filters"
    try:
        days = tuple(created or ())
        filters = ReturnFilters(
            shop_ids=current.shop_ids, types=tuple(picked_types), reasons=tuple(reasons),
            marketplace_statuses=tuple(marketplace), skus=parse_skus(sku_text or ""),
            created_from=days[0] if days else None, created_to=days[-1] if days else None,
            due_soon=due_soon, overdue=overdue, flagged=flagged, arbitration=arbitration,
            search=(search or "").strip(),
        )
    except FilterError as exc:
        st.error(str(exc), icon=":material/error:")
        filters = st.session_state.get(last_key) or ReturnFilters()
        filters = filters.with_(shop_ids=current.shop_ids)

    if narrow is not None:
        filters = narrow(filters)
    status_counts(loaders.status_counts(filters))
    statuses = st.pills("Status", list(domain.STATUSES), selection_mode="multi", key="status", bind="query-params",
                        help="Our processing status; the counts above are under the other filters.")
    filters = filters.with_(statuses=tuple(statuses or ()))
    st.session_state[last_key] = filters
    return filters


def status_counts(counts: dict[str, int]) -> None:
    """One number per Status (and Unmapped when TikTok sent a status we do not know)."""
    names = list(domain.STATUSES) + (["Unmapped"] if counts.get("Unmapped") else [])
    columns = st.columns(len(names) + 1)
    columns[0].metric("All", f"{sum(counts.values()):,}")
    for column, name in zip(columns[1:], names, strict=True):
        column.metric(name, f"{counts.get(name, 0):,}")


def with_deadline_flags(page: pd.DataFrame) -> pd.DataFrame:
    """Add the Deadline column (domain.deadline_state: overdue / due soon, none for a closed case) before Due By."""
    # worked out at each draw, not in the cached page: a deadline passes while the page stays cached
    now = utcnow()
    flags = [DEADLINE_MARKS.get(domain.deadline_state(status, due_by, now), "")
             for status, due_by in zip(page["Status"], page["Due By"], strict=True)]
    page = page.copy()
    page.insert(page.columns.get_loc("Due By"), DUE_COLUMN, pd.Series(flags, index=page.index, dtype="object"))
    return page


COLUMN_CONFIG = {
    "Created At": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="UTC"),
    "Updated At": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="UTC"),
    "Due By": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", help="TikTok's deadline for the seller (UTC)"),
    "Refund Total": st.column_config.NumberColumn(format="%.2f"),
    DUE_COLUMN: st.column_config.TextColumn(help=f"Overdue, or due within {domain.DUE_SOON_HOURS} h"),
    "Mismatch": st.column_config.CheckboxColumn(help="Our Status disagrees with TikTok's status"),
    "Unmapped Status": st.column_config.CheckboxColumn(help="TikTok sent a status we do not know yet"),
}


ACTIONS_COLUMN = "Actions"
OPEN = ":material/open_in_new: Open"
DECIDE = ":material/gavel: Approve / Reject"


def with_actions(page: pd.DataFrame) -> pd.DataFrame:
    """An Actions column in place of the page's CAN_DECIDE: Open for every row, plus Approve / Reject
    while TikTok waits for the seller (domain.can_decide, the rule the decision panel offers by)."""
    decidable = list(page[returns.CAN_DECIDE])
    page = page.drop(columns=[returns.CAN_DECIDE])
    page[ACTIONS_COLUMN] = [[OPEN, DECIDE] if can else [OPEN] for can in decidable]
    return page


def open_detail(row: pd.Series) -> None:
    """Open a grid row's return on the detail page."""
    st.switch_page(DETAIL_PAGE, query_params={"id": row["Marketplace Return ID"], "shop": row["Account ID"]})


@st.dialog("Approve or reject on TikTok", width="large")
def action_dialog(shop_id: str, return_id: str) -> None:
    """The detail page's decision panel, opened from the grid's Actions column."""
    ret = loaders.find_return(return_id, shop_id)
    if ret is None:
        st.warning(f"Return {return_id} is no longer in the store.")
        return
    account = next((a for a in loaders.accounts() if a.shop_id == shop_id), None)
    st.markdown(f"**Return {return_id}** · {ret['type'] or ret['return_type']} · `{ret['marketplace_status']}`"
                + (f" · due {utc_text(ret['due_by'])}" if ret["due_by"] is not None else ""))
    decisions.render_actions(db(), account, ret)
    st.page_link(DETAIL_PAGE, label="Open the full return", icon=":material/open_in_new:",
                 query_params={"id": return_id, "shop": shop_id})


def returns_table(filters: ReturnFilters, *, prefix: str, noun: str = "returns") -> None:
    """Sort, page, show and export the filtered returns; picking a row opens its detail page."""
    total = loaders.return_count(filters)
    s1, s2, s3 = st.columns([2, 2, 1])
    sort_by = s1.selectbox("Sort by", SORTABLE, index=SORTABLE.index("Created At"), key="sort",
                           bind="query-params")
    order = s2.selectbox("Order", ORDERS, key="order", bind="query-params")
    size = s3.selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(50), key="size", bind="query-params")
    pages = max(1, -(-total // size))

    # a new filter or sort starts again on page 1
    view_key = (filters, sort_by, order, size)
    previous = st.session_state.get(f"{prefix}_view")
    if (previous is not None and previous != view_key) or st.session_state.get("page", 1) > pages:
        st.session_state["page"] = 1
    st.session_state[f"{prefix}_view"] = view_key

    table_slot = st.container()
    f1, f2 = st.columns([3, 2], vertical_alignment="center")
    with f2:
        page_number = st.pagination(pages, key="page", bind="query-params", width="stretch")
    offset = (page_number - 1) * size
    page = loaders.grid_page(filters, sort_by, order == ORDERS[0], size, offset)
    first = offset + 1 if total else 0
    f1.caption(f"Showing {first:,}–{offset + len(page):,} of **{total:,}** {noun}")

    with table_slot:
        if total == 0:
            st.info(f"No {noun} match these filters." if not filters.is_empty() else f"No {noun} yet.",
                    icon=":material/filter_alt_off:")
        event = st.dataframe(
            with_actions(with_deadline_flags(page)), key=f"{prefix}_grid", on_select="rerun",
            selection_mode="single-row", hide_index=True, width="stretch",
            column_config=COLUMN_CONFIG | {ACTIONS_COLUMN: st.column_config.ButtonColumn(
                ACTIONS_COLUMN, key=f"{prefix}_action",
                help="Open the return, or approve / reject it on TikTok while TikTok waits for the seller")},
        )
        click = st.session_state.get(f"{prefix}_action")
        if click is not None and 0 <= click["row"] < len(page):
            row = page.iloc[click["row"]]
            if click["label"] == DECIDE:
                action_dialog(row["Account ID"], row["Marketplace Return ID"])
            else:
                open_detail(row)
        elif event.selection.rows:
            open_detail(page.iloc[event.selection.rows[0]])
        st.caption("Select a row to open the return; **Actions** approves or rejects on TikTok.")
    export_buttons(filters, sort_by=sort_by, descending=order == ORDERS[0], prefix=prefix, total=total)


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
    columns[0].markdown(f"**Export** the {total:,} filtered rows:")
    for column, (label, suffix, mime) in zip(columns[1:], EXPORTS, strict=True):
        too_big = suffix == ".xlsx" and total > returns.EXCEL_MAX_ROWS
        column.download_button(
            label, export_file(filters, suffix, sort_by=sort_by, descending=descending),
            file_name=f"{prefix}-{stamp}{suffix}", mime=mime, key=f"{prefix}_export_{suffix[1:]}",
            on_click="ignore", icon=":material/download:", disabled=total == 0 or too_big,
            help="Too many rows for one Excel sheet: use CSV or Parquet" if too_big else None,
        )
