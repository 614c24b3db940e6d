"""What every page shares: the database, background syncs, the selected account, cached loaders.

UI only: the SQL lives in returns_core.store, the syncing in returns_core.jobs / sync.
Cached results are keyed by a data version, so a finished sync (here or from cron) refreshes them.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from returns_core import accounts as accounts_core
from returns_core import config, demo, jobs
from returns_core.explain import explain_error
from returns_core.filters import ReturnFilters, total_from_status_counts
from returns_core.store import returns, sync_runs
from returns_core.store.db import UPGRADE_TIME, Database, utcnow

GRID_PAGE = "app_pages/returns.py"
DETAIL_PAGE = "app_pages/detail.py"
REFUNDS_PAGE = "app_pages/refunds.py"
REASONS_PAGE = "app_pages/reasons.py"
REVIEW_QUEUE_PAGE = "app_pages/review_queue.py"
RECONCILIATION_PAGE = "app_pages/reconciliation.py"
ACCOUNTS_PAGE = "app_pages/accounts.py"
SYNC_HISTORY_PAGE = "app_pages/sync_history.py"

ALL_ACCOUNTS = "All accounts"
ACCOUNT_KEY = "account"  # the sidebar's Account View, bound to ?account=
NO_ACCOUNT_TITLE = "No Active/Valid Accounts Found"

_CACHE = {"ttl": 300, "max_entries": 256, "show_spinner": False}


# --- the database and the background syncs (one per process and database) ----------------


def _encryption_key() -> str | None:
    """secrets.toml [returns_desk] encryption_key, if there is a secrets file that has one."""
    try:
        section = st.secrets.get("returns_desk") or {}
        key = section.get("encryption_key")
    except (FileNotFoundError, KeyError, AttributeError):  # no secrets file: st.secrets raises
        return None
    return str(key) if key else None


def secret_section(name: str) -> dict:
    """A section of secrets.toml, or {} when there is none (or no secrets file)."""
    try:
        value = st.secrets.get(name)
    except (FileNotFoundError, KeyError):
        return {}
    return dict(value) if value else {}


@dataclass
class Runtime:
    """The app process's shared state for one database."""

    db: Database
    jobs: jobs.SyncJobs
    auto_sync: jobs.AutoSync
    edits: int = 0  # grows when a page changes data in-process (re-sync, account changes)
    demo_error: str | None = None  # why the demo shop could not be created, if it could not

    @property
    def version(self) -> tuple[int, int]:
        return self.jobs.version, self.edits

    def close(self) -> None:
        self.auto_sync.stop()


@st.cache_resource(show_spinner=False, on_release=lambda runtime: runtime.close())
def _runtime(path: str, key: str | None) -> Runtime:
    db = Database(path, key=key)
    upgrading = db.upgrade_pending()
    with st.spinner(f"Upgrading the data store to this version ({UPGRADE_TIME})...") if upgrading else nullcontext():
        db.migrate()
    sync_jobs = jobs.SyncJobs(db)
    runtime = Runtime(db, sync_jobs, jobs.AutoSync(sync_jobs).start())
    try:
        demo.ensure_demo_account(db)
    except Exception as exc:  # noqa: BLE001 - the app must start even when the demo shop cannot be made
        runtime.demo_error = explain_error(exc)
    return runtime


def runtime() -> Runtime:
    return _runtime(str(config.db_path()), _encryption_key() or os.environ.get("RETURNS_DESK_KEY"))


def db() -> Database:
    return runtime().db


def data_version() -> tuple:
    """Changes when data changes: a sync here, an edit here, or a sync by another process."""
    rt = runtime()
    return (str(rt.db.path), *rt.version, _data_stamp(str(rt.db.path), rt.version))


@st.cache_data(ttl=5, max_entries=16, show_spinner=False)
def _data_stamp(path: str, version: tuple) -> tuple:
    return sync_runs.data_stamp(db())


def data_changed() -> None:
    """Call after changing data in this process, so cached results are reloaded."""
    runtime().edits += 1


# --- cached loaders (small results only; the version argument keys them) ------------------


@st.cache_data(**_CACHE)
def load_accounts(version: tuple) -> list[accounts_core.Account]:
    return accounts_core.list_accounts(db())


@st.cache_data(**_CACHE)
def load_grid_page(version: tuple, filters: ReturnFilters, sort_by: str, descending: bool, limit: int,
                   offset: int) -> pd.DataFrame:
    return returns.grid_page(db(), filters, sort_by=sort_by, descending=descending, limit=limit, offset=offset)


def load_count(version: tuple, filters: ReturnFilters) -> int:
    # the status counts are on screen anyway: summing them saves a scan of the whole table
    return total_from_status_counts(load_status_counts(version, filters), filters)


@st.cache_data(**_CACHE)
def load_status_counts(version: tuple, filters: ReturnFilters) -> dict[str, int]:
    return returns.status_counts(db(), filters)


@st.cache_data(**_CACHE)
def load_reason_options(version: tuple, shop_ids: tuple[str, ...]) -> list[str]:
    return returns.reason_options(db(), shop_ids)


@st.cache_data(**_CACHE)
def load_marketplace_statuses(version: tuple) -> list[str]:
    return returns.marketplace_status_options(db())


@st.cache_data(**_CACHE)
def load_last_syncs(version: tuple) -> dict[str, datetime]:
    return {shop_id: run.succeeded_at for shop_id, run in sync_runs.last_syncs(db()).items() if run.succeeded_at}


@st.cache_data(ttl=60, max_entries=64, show_spinner=False)
def load_deadlines(version: tuple, shop_ids: tuple[str, ...]) -> tuple[int, int]:
    return returns.deadline_counts(db(), shop_ids)


@st.cache_data(**_CACHE)
def load_refund_summary(version: tuple, filters: ReturnFilters) -> pd.DataFrame:
    return returns.refund_summary(db(), filters)


# --- the selected account -----------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which accounts the user is looking at (Account View)."""

    accounts: tuple[accounts_core.Account, ...]  # every account
    selected: accounts_core.Account | None  # None = all accounts

    @property
    def shop_ids(self) -> tuple[str, ...]:
        """For filters: () means every account."""
        return (self.selected.shop_id,) if self.selected else ()

    @property
    def in_view(self) -> tuple[accounts_core.Account, ...]:
        return (self.selected,) if self.selected else self.accounts

    @property
    def usable(self) -> tuple[accounts_core.Account, ...]:
        return tuple(a for a in self.in_view if a.status == accounts_core.ACTIVE)

    @property
    def any_usable(self) -> bool:
        return any(a.status == accounts_core.ACTIVE for a in self.accounts)


def account_options(all_accounts: list[accounts_core.Account]) -> list[str]:
    return [ALL_ACCOUNTS] + [a.label for a in all_accounts]


def scope() -> Scope:
    """The accounts in view, from the sidebar's Account View (also in the URL as ?account=)."""
    everyone = tuple(load_accounts(data_version()))
    label = st.session_state.get(ACCOUNT_KEY, ALL_ACCOUNTS)
    selected = next((a for a in everyone if a.label == label), None)
    return Scope(everyone, selected)


def account_query() -> dict[str, str]:
    """The Account View as a query parameter, for links (st.page_link) that open a new view.

    Not for st.switch_page: the sidebar widget owns the bound `account` parameter and keeps it
    across a switch; passing it there raises StreamlitAPIException.
    """
    label = st.session_state.get(ACCOUNT_KEY)
    return {ACCOUNT_KEY: label} if label and label != ALL_ACCOUNTS else {}


# --- login ---------------------------------------------------------------------------------


def login_configured() -> bool:
    return bool(secret_section("auth"))


# --- shared bits of UI --------------------------------------------------------------------


def no_account_notice(current: Scope) -> None:
    """The empty state: why there is no usable account and where to fix it."""
    st.error(NO_ACCOUNT_TITLE, icon=":material/link_off:")
    st.markdown(
        "Returns can only be synced from a connected, active TikTok Shop account. This happens when:\n"
        "- **no shop is connected** yet (or the demo shop was turned off),\n"
        "- the shop's **authorization expired** or was revoked on TikTok (status *Expired* or *Invalid*),\n"
        "- the account is **disabled**."
    )
    for account in current.accounts:
        extra = f": {account.auth_error}" if account.auth_error and account.status == accounts_core.INVALID else ""
        st.caption(f"{account.label} is **{account.status}**{extra}")
    st.page_link(ACCOUNTS_PAGE, label="Connect or reconnect a shop on the Accounts page", icon=":material/store:")


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'5 min ago' style, for times stored as naive UTC."""
    if when is None:
        return "never"
    seconds = int(((now or utcnow()) - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def utc_text(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "-"
