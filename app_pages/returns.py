"""Returns: what waits for the seller first, then every return, filtered, searched, sorted and paged
in the database."""

import streamlit as st

from app_ui import decisions, filters, loaders, navigation, runtime, widgets
from app_ui.account_view import Scope, scope
from app_ui.formatting import ago, viewer_zone, zone_note
from returns_core import domain
from returns_core.filters import ReturnFilters

WAITING_ROWS = 5  # the soonest deadlines shown above the list; "Show all" opens the rest in it
# Actions first and the return and its reason right after Due By: what a phone shows without scrolling sideways
WAITING_COLUMNS = (filters.ACTIONS_COLUMN, filters.DUE_COLUMN, "Marketplace Return ID", "Reason",
                   filters.REFUND_COLUMN, "Type", filters.ACCOUNT_COLUMN)
PHONE_ONLY = "returns_phone_sync"  # shown only where the sidebar starts folded away (Streamlit: up to 768 px)


def syncing(current: Scope) -> bool:
    """A sync of an account in view runs now."""
    return any(job.running for job in runtime.current().jobs.latest(tuple(a.shop_id for a in current.in_view)))


def phone_sync(current: Scope) -> None:
    """On a phone the sidebar starts folded away: Sync Returns and the last sync at the top of the page."""
    st.html(f"<style>@media (min-width: 769px) {{ .st-key-{PHONE_ONLY} {{ display: none; }} }}</style>")
    last = loaders.last_syncs()
    times = [last[a.shop_id] for a in current.in_view if a.shop_id in last]
    running = syncing(current)
    with st.container(key=PHONE_ONLY, horizontal=True, vertical_alignment="center"):
        st.caption(":material/progress_activity: Syncing…" if running
                   else f"Last sync **{ago(max(times))}**" if times else "Not synced yet")
        widgets.sync_button(st, key="returns_sync", running=running, kind="secondary")


def waiting_for_you(current: Scope, back: dict) -> None:
    """The returns TikTok waits for the seller to decide, soonest deadline first."""
    waiting = ReturnFilters(shop_ids=current.shop_ids, waiting=True)
    counts = loaders.queue_counts(waiting, loaders.this_minute())  # total, overdue, due soon: one query
    total = counts.total
    if total == 0:
        if loaders.return_count(ReturnFilters(shop_ids=current.shop_ids)):
            st.success("Nothing waits for your decision: TikTok has every answer it asked for.",
                       icon=":material/task_alt:")
        return
    sort_by, order = filters.SOONEST_FIRST
    page = loaders.grid_page(waiting, sort_by, order == filters.ORDERS[0], WAITING_ROWS, 0)
    overdue, due_soon = counts.overdue, counts.due_soon
    st.subheader(f":material/pending_actions: Waiting for you · {total:,}", anchor=False)
    cancellations = loaders.return_count(waiting.with_(types=(domain.CANCELLATION,)))
    second_queue = (f" Of them, **{cancellations:,}** are buyers asking to cancel before shipment: they wait only "
                    "as long as the shop's cancellation window (hours)." if cancellations else "")
    st.caption(f"TikTok waits for your answer, soonest deadline first: 🔴 **{overdue:,}** overdue, "
               f"🟠 **{due_soon:,}** due within {domain.DUE_SOON_HOURS} h.{second_queue} Tick one to decide it, "
               "or several to approve or reject them together.")
    names = filters.shop_names(current)
    decisions.clear_selection_after_decision("waiting_grid", "waiting")
    event = st.dataframe(
        filters.grid_frame(page, names, relative_due=True), key="waiting_grid", on_select="rerun",
        selection_mode="multi-row", hide_index=True, width="stretch", height=filters.table_height(len(page)),
        row_height=filters.ROW_HEIGHT, column_order=WAITING_COLUMNS,
        column_config=filters.grid_columns(names, "waiting") | {
            filters.DUE_COLUMN: st.column_config.TextColumn(
                f"{filters.DUE_COLUMN} ({viewer_zone()})", width=190,
                help=f"How long until TikTok decides by itself, and when. 🔴 overdue, 🟠 due within "
                     f"{domain.DUE_SOON_HOURS} h. {zone_note()}"),
            "Reason": st.column_config.TextColumn(width=200, help="TikTok's reason text."),
        })
    filters.follow_row(page, [], prefix="waiting", came_from="returns", back=back)  # its Actions column
    decisions.decide_selected(runtime.db(), loaders.accounts(), page, event.selection.rows, place="waiting",
                              detail_query=lambda rid, shop: navigation.return_query(rid, shop, "returns", back),
                              in_dialog=True)  # one screen to decide on, full screen on a phone
    if total > len(page):
        st.button(f"Show all {total:,} in the list", key="returns_show_waiting", icon=":material/list:",
                  type="tertiary", on_click=filters.show_exactly, args=("waiting",))


def wide_page() -> None:
    """On a wide screen, a narrower margin beside the grid: Streamlit's 5 rem on each side would cost
    the grid 96 px, and every column then fits at 1440 px with the sidebar open (filters.COLUMN_WIDTHS)."""
    st.html("<style>@media (min-width: 1200px) { .stMainBlockContainer { padding-left: 1.5rem; "
            "padding-right: 1.5rem; } }</style>")


def render() -> None:
    """Draw the page."""
    current = scope()
    wide_page()
    st.title("Returns")
    if loaders.return_count(ReturnFilters(shop_ids=current.shop_ids)) == 0:
        filters.empty_store("returns", "below, or in the sidebar")  # nothing to filter yet: and the button itself
        widgets.sync_button(st, key="returns_sync", running=syncing(current), width="content")
        return
    phone_sync(current)
    waiting_slot = st.container()  # first on the page, drawn last: it links back to the list as it ends up
    view = filters.filter_panel(current, prefix="returns")
    back = filters.returns_table(view, current, prefix="returns")
    with waiting_slot:
        waiting_for_you(current, back)


render()
