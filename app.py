"""Returns Desk: the entry point. Page registry, the sidebar every page shares, shared setup."""

import streamlit as st

from app_ui import filters as grid_filters
from app_ui import identity, loaders, navigation, runtime, widgets
from app_ui.account_view import ACCOUNT_KEY, account_options, account_query, no_account_notice, scope
from app_ui.formatting import ago, local_time, md_escape
from returns_core import accounts as accounts_core
from returns_core import domain, jobs, roles, webhooks
from returns_core.store.db import StoreError

st.set_page_config(page_title="Returns Desk", page_icon=":material/assignment_return:", layout="wide")

grid_page = st.Page(navigation.GRID_PAGE, title="Returns", icon=":material/table_rows:", url_path="", default=True)
# Streamlit serves the default page at the root only (it ignores a default page's url_path), so a
# bookmark or link to /returns said "Page not found": the grid is registered there too, hidden.
# Listed after grid_page, so links to GRID_PAGE (st.page_link, st.switch_page) still lead to the root.
grid_alias_page = st.Page(navigation.GRID_PAGE, title="Returns", icon=":material/table_rows:", url_path="returns",
                          visibility="hidden")
detail_page = st.Page(navigation.DETAIL_PAGE, title="Return detail", icon=":material/receipt_long:", url_path="detail",
                      visibility="hidden")
review_page = st.Page(navigation.REVIEW_QUEUE_PAGE, title="Review Queue", icon=":material/fact_check:",
                      url_path="review")
reconciliation_page = st.Page(navigation.RECONCILIATION_PAGE, title="Reconciliation", icon=":material/rule:",
                              url_path="reconciliation")
rules_page = st.Page(navigation.RULES_PAGE, title="Decision rules", icon=":material/rule_settings:",
                     url_path="rules")
refunds_page = st.Page(navigation.REFUNDS_PAGE, title="Refunds", icon=":material/payments:", url_path="refunds")
reasons_page = st.Page(navigation.REASONS_PAGE, title="Reason Analytics", icon=":material/insights:",
                       url_path="reasons")
accounts_page = st.Page(navigation.ACCOUNTS_PAGE, title="Accounts", icon=":material/store:", url_path="accounts")
history_page = st.Page(navigation.SYNC_HISTORY_PAGE, title="Sync history", icon=":material/history:",
                       url_path="sync-history")

settings_page = st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:", url_path="settings")
events_page = st.Page("app_pages/events.py", title="Webhook events", icon=":material/webhook:", url_path="events")

page = st.navigation({
    "Returns": [grid_page, grid_alias_page, detail_page, review_page, reconciliation_page, refunds_page,
                rules_page],
    "Analytics": [reasons_page],
    "Configuration": [accounts_page, history_page, settings_page, events_page],
})
DATA_PAGES = {p.title for p in (grid_page, detail_page, review_page, reconciliation_page, refunds_page, reasons_page)}

# --- sidebar: Account View ------------------------------------------------------------------
def render_account_view() -> None:
    options = account_options(list(scope().accounts))
    if st.session_state.get(ACCOUNT_KEY) not in options:
        st.session_state.pop(ACCOUNT_KEY, None)
    st.sidebar.selectbox("Account View", options, key=ACCOUNT_KEY, bind="query-params",
                         help="One shop, or all shops together. Kept in the link.")
    chosen = scope()
    if chosen.selected is not None:
        account = chosen.selected
        if account.is_sandbox:
            st.sidebar.badge("SANDBOX", icon=":material/science:", color="orange",
                             help="Demo data from the built-in TikTok Shop simulator, not a real shop")
        if account.status != accounts_core.ACTIVE:
            st.sidebar.warning(f"This account is **{account.status}**. "
                               + ("Enable it" if account.status == accounts_core.DISABLED else "Reconnect it")
                               + " on the Accounts page.", icon=":material/link_off:")
    elif any(a.is_sandbox for a in chosen.accounts):
        st.sidebar.badge("Includes SANDBOX data", icon=":material/science:", color="orange",
                         help="The demo shop's returns come from the built-in TikTok Shop simulator")
    if runtime.current().demo_error:
        st.sidebar.caption(f"The demo shop could not be created: {md_escape(runtime.current().demo_error)}")


# --- sidebar: Sync Returns ------------------------------------------------------------------
def render_sync(every_job: list[jobs.SyncJob]) -> None:
    """The button, the progress and the result, all drawn from one reading of the jobs.

    Reading them twice let a sync that ended in between show "synced" beside a disabled button.
    """
    chosen = scope()
    in_view = {a.shop_id for a in chosen.in_view}
    latest = [job for job in every_job if job.shop_id in in_view]
    widgets.sync_button(st.sidebar, key="sidebar_sync", running=any(job.running for job in latest))
    sync_progress(tuple(a.shop_id for a in chosen.in_view), latest)
    announce_finished(latest)


def sync_progress(shop_ids: tuple[str, ...], latest: list[jobs.SyncJob]) -> None:
    """Live progress while a sync runs (polled every second without redrawing the page)."""
    running = any(job.running for job in latest)
    # the full run draws from its own reading; only the fragment's own reruns read the jobs again
    reading = {"jobs": latest}

    @st.fragment(run_every="1s" if running else None)
    def progress() -> None:
        jobs_now = reading.pop("jobs", None)
        if jobs_now is None:
            jobs_now = runtime.current().jobs.latest(shop_ids)
        still_running = [job for job in jobs_now if job.running]
        for job in still_running:
            label = f"Syncing {md_escape(job.account_name)}: {job.summary()}"
            if job.total_count:
                st.progress(min(1.0, job.fetched / job.total_count), text=label)
            else:
                st.caption(f":material/progress_activity: {label}")
        if running and not still_running:
            st.rerun()  # a sync ended: redraw the whole app with fresh data

    with st.sidebar:
        progress()


def announce_finished(latest: list[jobs.SyncJob]) -> None:
    """After a sync: one box for the accounts in view (each account's newest outcome replaces its
    last), failures first with what to do; and a toast, once per session, for the syncs started here."""
    finished = sorted((job for job in latest if not job.running), key=lambda job: job.state == jobs.DONE)
    if finished:
        lines = [f"**{md_escape(job.account_name)}** synced {job.summary()}." if job.state == jobs.DONE
                 else f"**Sync of {md_escape(job.account_name)} failed**: {md_escape(job.error)} {job.advice}"
                 for job in finished]
        failed = finished[0].state != jobs.DONE
        box = st.sidebar.error if failed else st.sidebar.success
        box("  \n".join(lines), icon=":material/error:" if failed else ":material/check_circle:")
    watched = st.session_state.setdefault(widgets.WATCHED_KEY, set())
    announced = st.session_state.setdefault("sidebar_announced", set())
    for job in finished:
        if job.id in watched and job.id not in announced:
            announced.add(job.id)
            if job.state == jobs.DONE:
                st.toast(f"{md_escape(job.account_name)}: {job.new:,} new, {job.updated:,} updated",
                         icon=":material/sync:")
            else:
                st.toast(f"Sync of {md_escape(job.account_name)} failed: {job.advice}", icon=":material/error:")


# --- sidebar: freshness, deadlines, schedule -------------------------------------------------
def render_status() -> None:
    chosen = scope()
    last = loaders.last_syncs()
    for account in chosen.in_view:
        when = last.get(account.shop_id)
        st.sidebar.caption(f"Last sync of {md_escape(account.name)}: **{ago(when)}**"
                           + (f" · {local_time(when)}" if when else ""))
    due, overdue = loaders.deadline_counts(chosen.shop_ids, loaders.this_minute())
    soon_col, late_col = st.sidebar.columns(2)
    soon_col.metric(f"Due in {domain.DUE_SOON_HOURS} h", f"{due:,}",
                    help="Returns whose TikTok deadline for the seller falls within the next 24 hours")
    late_col.metric("Overdue", f"{overdue:,}", delta="act now" if overdue else None, delta_color="inverse",
                    delta_arrow="off",
                    help="The seller deadline passed: TikTok decides by itself (usually approves). Sync to see.")
    # "Show them" opens the grid on exactly the returns counted: every other filter is replaced
    if due:
        soon_col.page_link(navigation.GRID_PAGE, label="Show them", icon=":material/schedule:",
                           query_params={**grid_filters.show_link("due"), **account_query()})
    if overdue:
        late_col.page_link(navigation.GRID_PAGE, label="Show them", icon=":material/alarm:",
                           query_params={**grid_filters.show_link("overdue"), **account_query()})
    render_cancellation_deadlines(chosen.shop_ids)

    choices = list(jobs.AUTO_SYNC_CHOICES)
    if "sidebar_auto_sync" not in st.session_state:
        st.session_state["sidebar_auto_sync"] = jobs.auto_sync_choice(runtime.current().db)

    def save_choice() -> None:
        jobs.set_auto_sync(runtime.current().db, st.session_state["sidebar_auto_sync"])

    st.sidebar.selectbox("Auto-sync", choices, key="sidebar_auto_sync", on_change=save_choice,
                         disabled=roles.MANAGE_ACCOUNTS not in identity.current_permissions(),
                         help="Sync every active account on this schedule while the app runs. "
                              "For syncs while the app is closed, use cron (see the README).")


def render_cancellation_deadlines(shop_ids: tuple[str, ...]) -> None:
    """The second queue's own deadlines, apart: a buyer's cancellation waits hours, not days (the shop's
    window), so it is counted and linked on its own line below the totals."""
    due, overdue = loaders.deadline_counts(shop_ids, loaders.this_minute(), (domain.CANCELLATION,))
    if not (due or overdue):
        return
    st.sidebar.caption(f":material/cancel: Of these, **cancellations**: {due:,} due, {overdue:,} overdue")
    # one link a line: beside each other, their labels would be cut at the sidebar's width
    for count, what, label in ((due, "cancellations_due", "Due"), (overdue, "cancellations_overdue", "Overdue")):
        if count:
            st.sidebar.page_link(navigation.GRID_PAGE, label=f"{label} cancellations", icon=":material/cancel:",
                                 query_params={**grid_filters.show_link(what), **account_query()})


# --- sidebar: webhooks -------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _webhook_changes_seen() -> dict[str, int]:
    """The returns webhooks changed that this process has told its loaders about."""
    return {"changes": 0}


def render_webhooks() -> None:
    """When the last webhook event arrived and how many wait. While this process receives them
    (server.py), it polls every 2 s and redraws the page when they changed returns: no Sync needed."""
    inbox = webhooks.live_inbox(runtime.db().path)

    def note_changes() -> int:
        changes = inbox.counters.changes if inbox else 0
        seen = _webhook_changes_seen()
        if changes != seen["changes"]:  # once per process and change: every cached loader reads again
            seen["changes"] = changes
            runtime.data_changed()
        return changes

    drawn = note_changes()

    @st.fragment(run_every="2s" if inbox else None)
    def webhook_status() -> None:
        if inbox and inbox.counters.changes != drawn:
            note_changes()
            st.rerun()
        counters = (inbox.counters.received, inbox.counters.rounds) if inbox else (0, 0)
        summary = loaders.webhook_summary(*counters)
        if summary.total:
            failed = f" · :red[{summary.failed:,} failed]" if summary.failed else ""
            st.caption(f":material/webhook: Last webhook event **{ago(summary.last_received_at)}** · "
                       f"**{summary.waiting:,}** waiting to be processed{failed}")
        elif inbox:
            st.caption(":material/webhook: No webhook event received yet")

    with st.sidebar:
        webhook_status()


def main() -> None:
    # read before anything reads the data version, so data shown is never older than a sync
    # this run reports as finished
    every_job = runtime.current().jobs.latest()
    render_account_view()
    identity.render_identity()
    render_sync(every_job)
    render_status()
    render_webhooks()
    current = scope()
    if page.title in DATA_PAGES and not current.any_usable:
        no_account_notice(current)
        if not current.accounts:
            return
    page.run()


try:
    # one script run is one unit of work: its queries share one open database instance (and its
    # cache) instead of re-opening the file for each; other processes wait until the run ends
    with runtime.db().session():
        main()
except StoreError as exc:
    # a cron sync held the database for too long, or the file cannot be opened: say so, no traceback
    st.error(md_escape(exc), icon=":material/database:")
    st.caption("Reload the page in a moment.")
