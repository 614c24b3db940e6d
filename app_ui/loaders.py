"""Every read a page shows: typed, cached, and keyed by the data version.

One convention for all of them: a loader is a function of `(version, ...)` decorated with
`@loader`; pages call it without the version (`loaders.accounts()`), and the decorator passes
the current `runtime.data_version()`, so a finished sync (here or from cron), or an edit here,
makes every loader read again. Results are small (a page of rows, counts, aggregates) and cached
for at most CACHE_TTL_S seconds.

A loader whose answer also depends on the clock takes `now`, the current minute
(`this_minute()`): a deadline passes, and an age grows, while the data stays the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

import pandas as pd
import streamlit as st

from app_ui import runtime
from app_ui.runtime import DataVersion
from returns_core import demo, review, rules
from returns_core.accounts import Account, list_accounts
from returns_core.filters import DateBasis, ReturnFilters, kind_totals, total_from_status_counts
from returns_core.store import alerts, analytics, returns, sync_runs, webhook_events
from returns_core.store.analytics import GroupBy, Kpis, Measure, RateCoverage, RateLevel, SpikeReport
from returns_core.store.db import utcnow
from returns_core.store.returns import FlagCounts, QueueCounts

CACHE_TTL_S = 300  # a safety net only: the data version is what refreshes a loader
CACHE_ENTRIES = 256

P = ParamSpec("P")
R = TypeVar("R")


def loader(load: Callable[Concatenate[DataVersion, P], R]) -> Callable[P, R]:
    """Cache `load` under the data version; the page calls it with the other arguments only."""
    cached = st.cache_data(ttl=CACHE_TTL_S, max_entries=CACHE_ENTRIES, show_spinner=False)(load)

    @functools.wraps(load)
    def current(*args: P.args, **kwargs: P.kwargs) -> R:
        return cached(runtime.data_version(), *args, **kwargs)

    return current


def this_minute() -> datetime:
    """Now, to the minute: the `now` of the loaders that depend on the clock."""
    return utcnow().replace(second=0, microsecond=0)


# --- accounts and syncs ---------------------------------------------------------------------


@loader
def accounts(version: DataVersion) -> list[Account]:
    """Every connected account."""
    return list_accounts(runtime.db())


@loader
def last_syncs(version: DataVersion) -> dict[str, datetime]:
    """When each account last synced successfully (accounts that never did are absent)."""
    return {shop_id: run.succeeded_at for shop_id, run in sync_runs.last_syncs(runtime.db()).items()
            if run.succeeded_at}


@loader
def sync_run_count(version: DataVersion, shop_ids: tuple[str, ...]) -> int:
    """How many sync runs these accounts (all when none) have."""
    return sync_runs.count(runtime.db(), shop_ids)


@loader
def sync_runs_page(version: DataVersion, shop_ids: tuple[str, ...], limit: int, offset: int) -> pd.DataFrame:
    """One page of sync runs, newest first."""
    return sync_runs.page(runtime.db(), shop_ids, limit=limit, offset=offset)


@loader
def demo_enabled(version: DataVersion) -> bool:
    """Whether the demo shop is wanted (the setting, and $RETURNS_DEMO)."""
    return demo.demo_enabled(runtime.db())


# --- the returns grid, its filters and Refunds ------------------------------------------------


@loader
def grid_page(version: DataVersion, filters: ReturnFilters, sort_by: str, descending: bool, limit: int,
              offset: int) -> pd.DataFrame:
    """One page of the returns grid."""
    return returns.grid_page(runtime.db(), filters, sort_by=sort_by, descending=descending, limit=limit,
                             offset=offset)


@loader
def status_kind_counts(version: DataVersion, filters: ReturnFilters) -> dict[tuple[str, str], int]:
    """Rows per (Status, kind) under the other filters: the one scan behind the three below."""
    return returns.status_kind_counts(runtime.db(), filters)


def _counts(filters: ReturnFilters) -> dict[tuple[str, str], int]:
    # the status filter is ignored by the counts: left out of the cache key, a picked status reuses the scan
    return status_kind_counts(filters.with_(statuses=()))


def status_counts(filters: ReturnFilters) -> dict[str, int]:
    """Returns per Status under the other filters."""
    return returns.status_totals(_counts(filters))


def return_count(filters: ReturnFilters) -> int:
    """How many returns the filters select."""
    # the status counts are on screen anyway: summing them saves a scan of the whole table
    return total_from_status_counts(status_counts(filters), filters)


def kind_counts(filters: ReturnFilters) -> dict[str, int]:
    """How many returns and how many cancellations the filters select (the same scan as the status counts)."""
    return kind_totals(_counts(filters), filters)


@loader
def backtest_label(version: DataVersion, backtest_id: int) -> str | None:
    """What a decision rule's backtest is, for the grid's filter summary; None when it is no longer kept."""
    return rules.backtest_label(runtime.db(), backtest_id)


@loader
def reason_options(version: DataVersion, shop_ids: tuple[str, ...]) -> list[str]:
    """The reasons to filter by, for these accounts (all when none)."""
    return returns.reason_options(runtime.db(), shop_ids)


@loader
def marketplace_statuses(version: DataVersion) -> list[str]:
    """TikTok's statuses to filter by."""
    return returns.marketplace_status_options(runtime.db())


@loader
def deadline_counts(version: DataVersion, shop_ids: tuple[str, ...], now: datetime,
                    types: tuple[str, ...] = ()) -> tuple[int, int]:
    """(due soon, overdue) at `now` among the open returns (of these Types: any when none) of these accounts."""
    return returns.deadline_counts(runtime.db(), shop_ids, types, now)


@loader
def refund_summary(version: DataVersion, filters: ReturnFilters) -> pd.DataFrame:
    """Refund money per currency: requested, accepted, completed."""
    return returns.refund_summary(runtime.db(), filters)


# --- one return -----------------------------------------------------------------------------


@loader
def find_return(version: DataVersion, return_id: str, shop_id: str | None) -> dict | None:
    """One return as stored (any account when shop_id is None), or None."""
    return returns.find_return(runtime.db(), return_id, shop_id)


@loader
def line_items(version: DataVersion, shop_id: str, return_id: str) -> pd.DataFrame:
    """The return's line items."""
    return returns.return_line_items(runtime.db(), shop_id, return_id)


@loader
def tiktok_records(version: DataVersion, shop_id: str, return_id: str) -> pd.DataFrame:
    """TikTok's event records of the return, as last fetched."""
    return returns.return_records(runtime.db(), shop_id, return_id)


@loader
def history(version: DataVersion, shop_id: str, return_id: str) -> pd.DataFrame:
    """Our own history of the return, newest first, in words."""
    return review.history_frame(runtime.db(), shop_id, return_id)


# --- review queue and reconciliation ---------------------------------------------------------


@loader
def queue_counts(version: DataVersion, filters: ReturnFilters, now: datetime) -> QueueCounts:
    """The review queue's totals: in the queue, not signed off, overdue, due soon."""
    return returns.queue_counts(runtime.db(), filters, now=now)


@loader
def queue_page(version: DataVersion, filters: ReturnFilters, limit: int, offset: int, now: datetime) -> pd.DataFrame:
    """One page of the review queue, oldest first, with ages and deadlines as of `now`."""
    return review.queue_page(runtime.db(), filters, limit=limit, offset=offset, now=now)


@loader
def flag_counts(version: DataVersion, filters: ReturnFilters) -> FlagCounts:
    """Mismatches and unmapped statuses."""
    return returns.flag_counts(runtime.db(), filters)


@loader
def reconciliation_page(version: DataVersion, filters: ReturnFilters, limit: int, offset: int) -> pd.DataFrame:
    """One page of flagged returns, with the problem in words."""
    return review.reconciliation_page(runtime.db(), filters, limit=limit, offset=offset)


@loader
def flagged_keys(version: DataVersion, filters: ReturnFilters, limit: int) -> list[tuple[str, str]]:
    """(shop_id, return_id) of the first flagged returns, in the order listed."""
    return returns.flagged_keys(runtime.db(), filters, limit)


# --- Reason Analytics -----------------------------------------------------------------------


@loader
def kpis(version: DataVersion, filters: ReturnFilters) -> Kpis:
    """Returns, money per currency, share by type, median time to close."""
    return analytics.kpis(runtime.db(), filters)


@loader
def currencies(version: DataVersion, filters: ReturnFilters) -> list[str]:
    """Currencies with refund money in view, the most used first."""
    return analytics.currencies(runtime.db(), filters)


@loader
def reason_frequency(version: DataVersion, filters: ReturnFilters, measure: Measure = analytics.RETURNS
                     ) -> pd.DataFrame:
    """Per reason, largest first, with the cumulative share."""
    return analytics.reason_frequency(runtime.db(), filters, measure)


@loader
def group_frequency(version: DataVersion, filters: ReturnFilters, measure: Measure = analytics.RETURNS
                    ) -> pd.DataFrame:
    """Per reason group, largest first, with the reasons in each."""
    return analytics.group_frequency(runtime.db(), filters, measure)


@loader
def responsibility_split(version: DataVersion, filters: ReturnFilters, measure: Measure = analytics.RETURNS
                         ) -> pd.DataFrame:
    """Per responsibility (Seller, Buyer, Logistics, Unknown)."""
    return analytics.responsibility_split(runtime.db(), filters, measure)


@loader
def weekly_trend(version: DataVersion, filters: ReturnFilters, by: GroupBy, basis: DateBasis,
                 measure: Measure) -> pd.DataFrame:
    """Per week and reason or group."""
    return analytics.weekly_trend(runtime.db(), filters, by=by, basis=basis, measure=measure)


@loader
def top_skus(version: DataVersion, filters: ReturnFilters, currency: str | None, by_money: bool,
             limit: int) -> pd.DataFrame:
    """The SKUs returned most (by returns or by refund money in `currency`)."""
    return analytics.top_skus(runtime.db(), filters, currency=currency, by_money=by_money, limit=limit)


@loader
def top_products(version: DataVersion, filters: ReturnFilters, currency: str | None, by_money: bool,
                 limit: int) -> pd.DataFrame:
    """The products returned most (by returns or by refund money in `currency`)."""
    return analytics.top_products(runtime.db(), filters, currency=currency, by_money=by_money, limit=limit)


@loader
def reason_sku_matrix(version: DataVersion, filters: ReturnFilters, by: GroupBy, limit_skus: int) -> pd.DataFrame:
    """Returns per SKU and reason (or group), over the top SKUs."""
    return analytics.reason_sku_matrix(runtime.db(), filters, by=by, limit_skus=limit_skus)


@loader
def spikes(version: DataVersion, filters: ReturnFilters) -> SpikeReport:
    """Reasons and SKUs running well above their usual weeks."""
    return analytics.spikes(runtime.db(), filters)


@loader
def rate_spikes(version: DataVersion, filters: ReturnFilters) -> SpikeReport:
    """Reasons and SKUs whose return rate runs well above its usual weeks."""
    return analytics.rate_spikes(runtime.db(), filters)


@loader
def return_rates(version: DataVersion, filters: ReturnFilters, level: RateLevel, limit: int) -> pd.DataFrame:
    """Units returned ÷ units sold per SKU, product or reason, with its interval."""
    return analytics.return_rates(runtime.db(), filters, level, limit=limit)


@loader
def rate_coverage(version: DataVersion, filters: ReturnFilters) -> RateCoverage:
    """The days and shops in view that have units sold synced."""
    return analytics.rate_coverage(runtime.db(), filters)


# --- webhooks and alerts --------------------------------------------------------------------
# `received` and `rounds` are this process's receiver counters: an event stored or processed here
# changes them at once, before the data stamp (a few seconds) would notice


@loader
def webhook_summary(version: DataVersion, received: int, rounds: int) -> webhook_events.InboxSummary:
    """All events, those waiting, those failed; when the last arrived and was processed."""
    return webhook_events.summary(runtime.db())


@loader
def webhook_counts_by_type(version: DataVersion, received: int, rounds: int) -> pd.DataFrame:
    """Events and deliveries per type and state."""
    return webhook_events.counts_by_type(runtime.db())


@loader
def webhook_events_page(version: DataVersion, received: int, rounds: int, limit: int, states: tuple[str, ...],
                        types: tuple[int, ...]) -> pd.DataFrame:
    """The latest events, newest first, with these states and types (all when empty)."""
    return webhook_events.recent(runtime.db(), limit, states, types)


@loader
def alerts_sent(version: DataVersion, now: datetime) -> pd.DataFrame:
    """The latest alerts and how each delivery went."""
    return alerts.recent(runtime.db(), 100, now)
