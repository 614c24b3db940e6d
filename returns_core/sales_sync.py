"""The sync's sales step: units sold per SKU and product per shop-local day, from TikTok's Analytics API.

Runs in a shop's fetch thread right after its returns (sync.py), through the same client (its pace,
retries and token refresh), and hands what it fetched to the writer, which stores it with
store.sales.save_fetch. It never fails the shop's sync: the returns are what the sync is for, so a
failure here (an app without the Analytics scope, a region TikTok has no analytics for) comes back
as a note in words and the next sync tries again.

Which days: the first time, the SALES_BACKFILL_DAYS days up to TikTok's latest_available_date (and
the day first asked, when our UTC date puts it a day earlier); after that from REVISED_DAYS before
the last day stored (TikTok revises its latest days) up to TikTok's latest_available_date. When
TikTok has no new day since the last step, only the one request that says so is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from returns_core.explain import explain
from returns_core.store.sales import SalesCoverage, SalesFetch
from returns_core.tiktok import errors
from returns_core.tiktok.client import SkuSales, TikTokClient

logger = logging.getLogger(__name__)

SALES_BACKFILL_DAYS = 90  # the first step's reach: "Last 90 days" on Reason Analytics has its rates
REVISED_DAYS = 2  # the latest days TikTok may still change: read again by every step that finds a new day
MAX_DAYS_PER_STEP = 400  # a bound on one step's requests (one per day), whatever TikTok's dates say


@dataclass(frozen=True)
class SalesOutcome:
    """What a sales step brought: the figures to store (None when nothing is new), or why it failed."""

    fetch: SalesFetch | None = None
    error: str | None = None


def first_day_to_fetch(cover: SalesCoverage | None, today: date) -> date:
    """The first shop-local day this step asks for."""
    if cover is None:
        return today - timedelta(days=SALES_BACKFILL_DAYS)
    return cover.last_day - timedelta(days=REVISED_DAYS - 1)


def fetch_sales(client: TikTokClient, stored: Callable[[], SalesCoverage | None], today: date,
                stop: Callable[[], bool] = lambda: False) -> SalesOutcome:
    """Fetch the days due for this shop, after what is `stored` (a sync reads it as it opens the shop's
    run); never raises, for TikTok's or the network's failures or the store's. `stop` says the sync no
    longer wants them (its round ended): nothing more is asked."""
    try:
        return SalesOutcome(_fetch(client, stored(), today, stop))
    except errors.TikTokError as exc:
        reason = explain(exc).message
        logger.warning("units sold not synced: %s", reason)
        return SalesOutcome(error=reason)
    except Exception as exc:  # noqa: BLE001 - a bug here must not undo a shop's synced returns: logged, noted
        logger.warning("units sold not synced: unexpected error", exc_info=exc)
        return SalesOutcome(error=f"unexpected {exc.__class__.__name__}")


def _fetch(client: TikTokClient, cover: SalesCoverage | None, today: date,
           stop: Callable[[], bool]) -> SalesFetch | None:
    asked = first_day_to_fetch(cover, today)
    day_one, latest = _one_day(client, asked)
    if latest is None:
        latest = today - timedelta(days=1)  # TikTok did not say: yesterday, as it usually is
    first = asked
    if cover is None:
        # TikTok's latest day is yesterday in the shop's own zone, which can be two days behind our UTC
        # date (a US shop just after midnight UTC): reach back, so the backfill still has its full days
        first = min(asked, latest - timedelta(days=SALES_BACKFILL_DAYS - 1))
    if latest < first:
        return None  # no figures for these days yet
    if cover is not None and latest <= cover.last_day:
        return None  # nothing new since the last step; the revised days are read when a new day comes
    last = min(latest, first + timedelta(days=MAX_DAYS_PER_STEP - 1))
    by_day: dict[date, list[SkuSales]] = {asked: day_one} if asked <= last else {}
    day = first
    while day <= last:
        if stop():
            return None
        if day not in by_day:
            by_day[day], _ = _one_day(client, day)
        day += timedelta(days=1)
    sold = sorted({s.product_id for skus in by_day.values() for s in skus if s.units_sold})
    end = last + timedelta(days=1)
    products = {}
    for product_id in sold:
        if stop():
            return None
        products[product_id] = client.get_product_sales(product_id, first, end).intervals
    return SalesFetch(first, last, by_day, products)


def _one_day(client: TikTokClient, day: date) -> tuple[list[SkuSales], date | None]:
    """Every SKU's figures of one day (all pages), and TikTok's latest_available_date."""
    skus: list[SkuSales] = []
    latest = None
    for page in client.iter_sku_sales(day, day + timedelta(days=1)):
        skus += page.skus
        latest = page.latest_available_date or latest
    return skus, latest
