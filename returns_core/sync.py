"""Syncing shops: TikTok (or the sandbox) -> client -> ingest -> store.

Many shops at once (an agency runs hundreds): at most `concurrency` shops fetch at a time, on as
many fetch threads that take one shop after another, through clients that share their app's pace at
TikTok (tiktok/ratelimit.py: the limit is per app, and a refusal for one shop slows them all). Every
page is written by one writer, the thread that called `sync_accounts`, through one FileHold: parallel
fetching never turns into writers queueing for the file, and another process waiting for it (the app,
a cron sync) still gets its turn. A shop that fails ends with its own outcome; the others go on.

Incremental by TikTok's update_time: each run asks for `update_time >= watermark - overlap`,
sorted by update_time ascending, and commits page by page (return_writes.upsert_page), so the watermark
only ever covers pages that are in the store. A run that dies keeps what it committed; the next
run re-reads from the last committed page. Nothing is ever deleted.

Each shop's fetcher reads its returns, then its buyers' cancellations (Search Cancellations), the second
queue: stored as rows of `returns` with kind 'cancellation', by their own watermark
(sync_state.cancellations_watermark), with the same guarantees.

What TikTok sends is not trusted blindly: an update_time from the future (ingest.FUTURE_MARGIN_S)
is stored and flagged but never moves the watermark, and an object that is not a return (no
return_id) is kept aside, quarantined, in the same transaction as its page, and reported.

Two syncs of one account never run at once: an OS lock file per account beside the database
(fcntl.flock, released by the kernel if the process dies). A run row a dead process left
"running" is closed as interrupted when the next sync starts (close_stale_runs).
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import httpx

from returns_core import accounts as acc
from returns_core import domain
from returns_core.accounts import Account
from returns_core.explain import REAUTH_REASON, Failure, FailureKind, explain
from returns_core.ingest import (
    FUTURE_MARGIN_S,
    PageCounts,
    PreparedPage,
    count_from_the_future,
    from_the_future,
    join_prepared,
    page_watermark,
    prepare_page,
    to_utc,
)
from returns_core.locks import flock_within
from returns_core.sales_sync import SalesOutcome, fetch_sales
from returns_core.secretbox import SecretKeyError
from returns_core.store import sales, settings, sync_runs
from returns_core.store.db import Database, FileHold, StoreError, utcnow
from returns_core.store.return_writes import ShopPages, store_records, upsert_page, write_pages
from returns_core.store.returns import find_return
from returns_core.tiktok import errors
from returns_core.tiktok.client import CancellationPage, SearchPage
from returns_core.tiktok_session import tiktok_session

logger = logging.getLogger(__name__)

OVERLAP_SECONDS = 10 * 60  # re-read a margin below the watermark: late commits on TikTok's side
PAGE_SIZE = 50  # TikTok's maximum for Search Returns
# Pages fetched ahead, per shop fetching, while earlier ones are written. When pages arrive faster
# than a write takes (a nearby server), the writer commits all that are waiting in one transaction per
# shop, up to BATCH_PAGES: the cost of opening and closing the file is then shared. Each page is still
# committed whole or not at all, and the watermark still follows the committed data.
PREFETCH_PAGES = 20
BATCH_PAGES = 20
# How long the writer keeps the file open while no page is waiting, before it lets it go for other
# processes: closing and opening it again between two pages a few milliseconds apart cost a sync round
# of 200 shops about 0.5 s of CPU (bench/agency.py), 5% of the round's.
HOLD_WHILE_WAITING_S = 0.2
# Shops fetching at once. Each waits on the network most of the time, so a handful keep the one
# writer busy; the app's pace at TikTok (tiktok/ratelimit.py), not this, bounds the request rate.
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
CONCURRENCY_SETTING = "sync_concurrency"
# A sync that finds its account's lock taken looks again for this long before it gives up: the lock
# may only be probed for an instant (close_stale_runs), which must not turn a sync away as running.
LOCK_GRACE_S = 0.05
# What a failing write to the store raises beneath our own StoreError: DuckDB's errors (a full disk
# fails the commit: 'Could not write file "...wal"') and the operating system's (the lock file).
STORE_WRITE_ERRORS = (duckdb.Error, OSError)

_END = object()  # a shop's fetching ended (with its error, if any)
NOT_REACHED = "Not synced: the sync was interrupted before this account"


class SyncBusyError(RuntimeError):
    """Another sync of the same account holds its lock."""


@dataclass(frozen=True)
class SyncProgress:
    """Where a running sync is, after each committed page (and once more when done)."""

    pages: int
    new: int
    updated: int
    unchanged: int
    total_count: int | None
    done: bool = False
    error: str | None = None
    account: str = ""
    shop_id: str = ""
    cancellations: int = 0  # of the rows read so far (`fetched`), the cancellations; the rest are returns

    @property
    def fetched(self) -> int:
        return self.new + self.updated + self.unchanged

    @property
    def returns(self) -> int:
        return self.fetched - self.cancellations


@dataclass(frozen=True)
class SyncResult:
    """What one account's sync did."""

    shop_id: str
    account: str
    pages: int
    new: int
    updated: int
    unchanged: int
    duration_s: float
    error: str | None
    run_id: int | None
    full: bool = False
    failure: FailureKind | None = None  # what kind of failure `error` is: callers decide by it, not by the words
    from_future: int = 0  # returns TikTok dated in the future (stored and flagged; the watermark stops short)
    quarantined: int = 0  # objects that are not returns (no return_id), kept aside in quarantined_returns
    watermark_repaired: bool = False  # the watermark was in the future: everything was read again
    sales_days: int = 0  # days of units sold stored (the return rate's denominator, sales_sync.py)
    sales_error: str | None = None  # why units sold could not be synced (the returns still were)
    cancellations: int = 0  # of the rows read (`fetched`), the cancellations; the rest are returns

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def fetched(self) -> int:
        return self.new + self.updated + self.unchanged

    @property
    def returns(self) -> int:
        return self.fetched - self.cancellations

    def notes(self) -> list[str]:
        """What the sync found wrong in TikTok's data, in words (empty when nothing was)."""
        notes = []
        if self.watermark_repaired:
            notes.append("the watermark was in the future (a clock was wrong), so every return was read again")
        if self.from_future:
            notes.append(f"{_count(self.from_future, 'return')} dated in the future by TikTok (more than "
                         f"{FUTURE_MARGIN_S // 60} min after this computer's clock): stored and flagged; "
                         "check this computer's clock")
        if self.quarantined:
            notes.append(f"{_count(self.quarantined, 'object')} from TikTok without a return_id: not synced, "
                         "kept aside in quarantined_returns")
        if self.sales_error:
            notes.append(f"units sold not synced ({self.sales_error}); return rates wait for the next sync")
        return notes

    def summary(self) -> str:
        """One line for a log, the CLI or a toast: "Shop: 58 page(s), 2809 new, 0 updated, 0 unchanged in 0.8 s:
        2006 returns and 803 cancellations" (its start, up to the seconds, is what scripts read)."""
        counts = (f"{self.pages} page(s), {self.new} new, {self.updated} updated, {self.unchanged} unchanged "
                  f"in {self.duration_s:.1f} s: {domain.count_in_words(self.returns, self.cancellations, str)}")
        return (f"{self.account}: {counts}" + "".join(f"; {note}" for note in self.notes())
                + (f"; FAILED: {self.error}" if self.error else ""))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def not_synced(account: Account, failure: Failure, *, full: bool = False) -> SyncResult:
    """The outcome of an account whose sync never got to run its pages."""
    return SyncResult(account.shop_id, account.name, 0, 0, 0, 0, 0.0, failure.message, None, full, failure.kind)


# --- the per-account lock -----------------------------------------------------------------------


def sync_lock_path(db: Database, shop_id: str) -> Path:
    """The lock file of one account's sync, beside the database."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", shop_id)
    return db.path.with_name(f"{db.path.name}.sync-{safe}.lock")


@contextmanager
def account_lock(db: Database, account: Account) -> Iterator[None]:
    """Hold the account's sync lock, or raise SyncBusyError (after at most LOCK_GRACE_S)."""
    path = sync_lock_path(db, account.shop_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not flock_within(fd, LOCK_GRACE_S):
            raise SyncBusyError(f"A sync of {account.name} is already running")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def sync_running(db: Database, shop_id: str) -> bool:
    """True while some process (this one included) holds the account's sync lock."""
    try:
        fd = os.open(sync_lock_path(db, shop_id), os.O_RDONLY)
    except FileNotFoundError:
        return False  # no sync of it ever ran beside this database
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # held for an instant (see LOCK_GRACE_S)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def close_stale_runs(db: Database) -> int:
    """Close as failed the runs a dead sync left "running" (SIGKILL, a power cut, a full disk that kept
    it from writing its outcome); returns how many. The kernel drops a sync's lock with its process, so
    a run whose account's lock nobody holds has no sync behind it. Called when a sync round or the app
    starts; never raises (a store that cannot be written now is left for the next start)."""
    try:
        running = sync_runs.running(db)
        return sync_runs.close_interrupted(db, [run_id for run_id, shop_id in running
                                                if not sync_running(db, shop_id)])
    except (StoreError, *STORE_WRITE_ERRORS) as exc:
        logger.warning("could not close the runs a stopped sync left running: %s", exc)
        return 0


# --- the sync -----------------------------------------------------------------------------------


def _failure(exc: BaseException) -> Failure:
    """Why a sync failed: its kind and one line (a refused authorization in the words the Accounts page shows)."""
    if isinstance(exc, STORE_WRITE_ERRORS):
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return Failure(FailureKind.STORE, f"Could not write to the database ({first}); the pages saved before "
                                          "are kept: free disk space or fix the file, then sync again")
    failure = explain(exc)
    if failure.kind is FailureKind.AUTHORIZATION:
        return Failure(failure.kind, REAUTH_REASON)
    return failure


@dataclass(frozen=True)
class StartPoint:
    """Where a run starts reading, given the account's watermark."""

    filters: dict  # the Search Returns filters: update_time_ge, or none for a full read
    from_scratch: bool  # a full read: its first committed page sets the watermark anew, even below the old one
    repaired: bool  # the watermark was from the future, so an incremental sync reads everything once


def start_point(mark: int | None, *, full: bool, overlap_s: int = OVERLAP_SECONDS) -> StartPoint:
    """Where a run with this watermark starts: below it by the overlap, or from the start."""
    # a watermark from the future (left by a version without FUTURE_MARGIN_S, or by a clock set back)
    # says nothing about what is stored: read everything again, as --full does, and derive it anew
    at = to_utc(mark) if mark is not None else None
    repaired = not full and mark is not None and (at is None or from_the_future(at, utcnow()))
    if full or repaired or mark is None:
        return StartPoint({}, full or repaired, repaired)
    return StartPoint({"update_time_ge": max(0, int(mark) - overlap_s)}, False, False)


def _safe(step: Callable[[], object]) -> None:
    """Bookkeeping after the data is committed must not hide the sync's own outcome."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - logged; the caller already has the real result
        logger.warning("sync bookkeeping failed: %s", exc)


def accounts_to_sync(db: Database, names: Sequence[str] = ()) -> list[Account]:
    """The accounts named (by name or shop id, each once), or every enabled account when none is named."""
    if names:
        return list({a.shop_id: a for a in (acc.get_account(db, name) for name in names)}.values())
    return [a for a in acc.list_accounts(db) if a.enabled]


# --- syncing shops: at most N fetching, one writer ------------------------------------------------


@dataclass(frozen=True)
class Overall:
    """Where a sync of several shops is: after every write and every finished shop."""

    shops: int
    done: int
    returns: int  # rows read and committed so far, every shop: returns and cancellations
    failed: int
    cancellations: int = 0  # of `returns`, the cancellations

    def line(self) -> str:
        """ "37 of 200 shops, 16,204 returns and 2,000 cancellations" (and how many failed)."""
        failed = f", {self.failed:,} failed" if self.failed else ""
        read = domain.count_in_words(self.returns - self.cancellations, self.cancellations)
        return f"{self.done:,} of {self.shops:,} shops, {read}{failed}"


def check_concurrency(value: int) -> int:
    """The number of shops to fetch at once, or ValueError saying what is allowed."""
    if not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError(f"Shops synced at once must be 1-{MAX_CONCURRENCY}, not {value}.")
    return value


def concurrency_setting(db: Database) -> int:
    """How many shops the app and the CLI sync at once: the store's setting, else DEFAULT_CONCURRENCY."""
    stored = settings.get_setting(db, CONCURRENCY_SETTING)
    try:
        return check_concurrency(int(stored)) if stored is not None else DEFAULT_CONCURRENCY
    except ValueError:
        logger.warning("ignoring the setting %s=%r: not 1-%d", CONCURRENCY_SETTING, stored, MAX_CONCURRENCY)
        return DEFAULT_CONCURRENCY


def set_concurrency(db: Database, value: int) -> None:
    """Keep how many shops to sync at once (ValueError when out of range)."""
    settings.set_setting(db, CONCURRENCY_SETTING, str(check_concurrency(value)))


class _Shop:
    """One shop's sync inside a round: its lock, its run row, its counts and its outcome."""

    def __init__(self, db: Database, account: Account, full: bool, overlap_s: int,
                 on_progress: Callable[[SyncProgress], None] | None):
        self.db, self.account, self.full = db, account, full
        self._overlap_s, self._on_progress = overlap_s, on_progress
        self.started = time.monotonic()
        self.run_id: int | None = None
        self.seconds = 0.0
        self.start = StartPoint({}, full, False)
        self.cancel_start = StartPoint({}, full, False)  # cancellations: their own watermark
        self.pages, self.counts, self.total, self.from_future = 0, PageCounts(), None, 0
        self.cancellations = 0  # of the rows in `counts`, the cancellations
        self.kind_pages = dict.fromkeys(domain.KINDS, 0)
        self._totals: dict[str, int] = {}
        self.failure: Failure | None = None
        self.sales = SalesOutcome()  # what the sales step fetched after the returns
        self.sales_cover: sales.SalesCoverage | None = None  # the units sold stored when its run opened
        self.sales_days = 0
        self.stopped = threading.Event()  # tells its fetcher to stop (the shop failed, or the round ends)
        self.began = False  # a fetch thread took it (until then its run is open, waiting for a free thread)
        self._held = ExitStack()

    def lock(self) -> bool:
        """Take the shop's lock; False (with `failure` set) when it cannot sync now. Its run is opened
        next (`opened`), with the runs of the shops starting beside it."""
        if not self.account.enabled:
            self.failure = Failure(FailureKind.DISABLED, f"The account {self.account.name} is disabled; "
                                                         "enable it to sync")
            return False
        try:
            self._held.enter_context(account_lock(self.db, self.account))
        except SyncBusyError as exc:
            self.failure = Failure(FailureKind.BUSY, str(exc))
        except STORE_WRITE_ERRORS as exc:  # the lock file cannot be made (a full disk)
            self.fail(exc)
        return self.failure is None

    def opened(self, run_id: int, mark: int | None, cancel_mark: int | None,
               sales_cover: sales.SalesCoverage | None) -> None:
        """Its run row is open: where it starts reading its returns, and its cancellations (each by its
        own watermark), and the units sold it has (read with them: none of it changes while the shop's
        lock is held, and its fetch thread then does not open the file for it)."""
        self.run_id = run_id
        self.sales_cover = sales_cover
        self.start = start_point(mark, full=self.full, overlap_s=self._overlap_s)
        self.cancel_start = start_point(cancel_mark, full=self.full, overlap_s=self._overlap_s)

    def not_opened(self, exc: BaseException) -> None:
        """Its run row could not be opened (the store is busy elsewhere, or cannot be written)."""
        if isinstance(exc, StoreError):
            self.failure = Failure(explain(exc).kind, str(exc))
        else:
            self.fail(exc)

    def write(self, pages: list[tuple[Page, PreparedPage]]) -> tuple[dict[str, PageCounts], int]:
        """Commit pages (in update_time order) with their watermark, on their own; returns what they did, by
        kind, and how many of their returns TikTok dates in the future."""
        now = utcnow()
        parts = self.to_write(pages, now)
        with self.db.writer() as con:
            done = write_pages(con, parts, synced_at=now)
        return ({p.kind: counts for p, counts in zip(parts, done, strict=True)},
                sum(count_from_the_future(p.objects, now, p.kind) for p in parts))

    def to_write(self, pages: list[tuple[Page, PreparedPage]], now: datetime) -> list[ShopPages]:
        """Its pages to commit (each prepared as it arrived), returns first, then cancellations, each
        kind with its own watermark: the last time on its pages not from the future (they come in
        update_time order), started anew by a full read's first page."""
        parts = []
        for kind in domain.KINDS:
            mine = [(page, prepared) for page, prepared in pages if _kind(page) == kind]
            if not mine:
                continue
            start = self.cancel_start if kind == domain.CANCELLATION_KIND else self.start
            objects = [obj for page, _ in mine for obj in _objects(page)]
            parts.append(ShopPages(self.account.shop_id, objects, page_watermark(objects, now), self.run_id, len(mine),
                                   start.from_scratch and self.kind_pages[kind] == 0,
                                   join_prepared([prepared for _, prepared in mine]), kind))
        return parts

    def wrote(self, pages: list[tuple[Page, PreparedPage]], done: dict[str, PageCounts], future: int) -> None:
        """Count committed pages in (what they did by kind), and report progress."""
        self.counts, self.pages = sum(done.values(), self.counts), self.pages + len(pages)
        if domain.CANCELLATION_KIND in done:
            self.cancellations += done[domain.CANCELLATION_KIND].read
        self.from_future += future
        for page, _ in pages:
            self.kind_pages[_kind(page)] += 1
            self._totals[_kind(page)] = page.total_count
        self.total = sum(self._totals.values())
        self.report()

    def fail(self, exc: BaseException) -> None:
        """The shop's sync failed (TikTok, the store, its account or a bug): say why, stop its fetcher."""
        if self.failure is None:
            if isinstance(exc, (errors.TikTokError, StoreError, acc.AccountError, SecretKeyError,
                                *STORE_WRITE_ERRORS)):
                self.failure = _failure(exc)
            else:
                logger.warning("sync of %s failed unexpectedly", self.account.name, exc_info=exc)
                self.failure = Failure(FailureKind.UNEXPECTED, f"Unexpected {_one_line(exc)}")
            logger.warning("sync of %s failed: %s", self.account.name, self.failure.message)
        self.stopped.set()

    def report(self, done: bool = False) -> None:
        if self._on_progress is not None:
            self._on_progress(SyncProgress(self.pages, self.counts.new, self.counts.updated, self.counts.unchanged,
                                           self.total, done, self.failure.message if self.failure else None,
                                           self.account.name, self.account.shop_id, self.cancellations))

    def save_sales(self) -> None:
        """Store the units sold the sales step fetched; a failure is a note, not the sync's failure."""
        fetch = self.sales.fetch
        if fetch is None or self.failure is not None:
            return
        try:
            sales.save_fetch(self.db, self.account.shop_id, fetch)
            self.sales_days = fetch.days
        except Exception as exc:  # noqa: BLE001 - the returns are committed; rates wait for the next sync
            logger.warning("units sold of %s not stored: %s", self.account.name, exc)
            self.sales = SalesOutcome(error=f"not stored: {_one_line(exc)}")

    def end(self, interrupted: BaseException | None = None) -> tuple[int, float, str | None] | None:
        """Stop it (its units sold stored first); the outcome its run row gets (run id, seconds, error),
        None when it has no run."""
        self.stopped.set()
        if interrupted is None:
            self.save_sales()
        self.seconds = time.monotonic() - self.started
        if interrupted is not None:
            self.failure = Failure(FailureKind.UNEXPECTED, f"Interrupted ({_one_line(interrupted)})" if self.began
                                   else NOT_REACHED)
        if self.run_id is None:
            return None
        return self.run_id, self.seconds, self.failure.message if self.failure else None

    def result(self, interrupted: BaseException | None = None) -> SyncResult:
        """After its run row is closed: release its lock and give its outcome."""
        self._held.close()
        if interrupted is None:
            self.report(done=True)
        return SyncResult(self.account.shop_id, self.account.name, self.pages, self.counts.new,
                          self.counts.updated, self.counts.unchanged, round(self.seconds, 3),
                          self.failure.message if self.failure else None, self.run_id, self.full,
                          self.failure.kind if self.failure else None, self.from_future,
                          self.counts.quarantined, self.start.repaired or self.cancel_start.repaired, self.sales_days,
                          self.sales.error if self.failure is None else None, self.cancellations)


def _open_runs(db: Database, shops: list[_Shop], *, full: bool, trigger: str) -> None:
    """Open the run rows of shops starting together, in one transaction."""
    try:
        with db.writer() as con:
            shop_ids = [shop.account.shop_id for shop in shops]
            opened = sync_runs.start_runs(con, shop_ids, full=full, trigger=trigger)
            covers = sales.coverages(con, shop_ids)
    except (StoreError, *STORE_WRITE_ERRORS) as exc:
        for shop in shops:
            shop.not_opened(exc)
        return
    for shop, (run_id, mark, cancel_mark) in zip(shops, opened, strict=True):
        shop.opened(run_id, mark, cancel_mark, covers.get(shop.account.shop_id))


def _close_runs(db: Database, shops: list[_Shop], interrupted: BaseException | None = None) -> None:
    """Write the outcome of shops ending together into their run rows, in one transaction."""
    outcomes = [outcome for outcome in (shop.end(interrupted) for shop in shops) if outcome is not None]
    if outcomes:
        # when even this write fails (the disk is still full), the runs stay "running" until the next
        # start closes them (close_stale_runs); the outcomes returned still say it
        def close() -> None:
            with db.writer() as con:
                sync_runs.finish_runs(con, outcomes)

        _safe(close)


Page = SearchPage | CancellationPage  # what a shop's fetcher hands the writer


def _kind(page: object) -> str:
    return domain.CANCELLATION_KIND if isinstance(page, CancellationPage) else domain.RETURN_KIND


def _objects(page: object) -> list:
    return page.cancellations if isinstance(page, CancellationPage) else page.return_orders


def _fetcher(ready: queue.Queue, out: queue.Queue, transport: httpx.BaseTransport | None, page_size: int,
             client_options: dict) -> None:
    """A fetch thread: one shop after another from `ready` (their runs open), until it gives None. Taking
    the next shop itself, as soon as the last one's fetching is done, keeps this slot busy while the one
    writer is still committing the last one's pages and closing its run."""
    while (shop := ready.get()) is not None:
        if not shop.stopped.is_set():  # a shop stopped before its turn (the round was interrupted)
            shop.began = True
            _fetch(shop, out, transport, page_size, client_options)


def _fetch(shop: _Shop, out: queue.Queue, transport: httpx.BaseTransport | None, page_size: int,
           client_options: dict) -> None:
    """One shop's fetching: its pages in update_time order into `out`, then its end (with its error)."""

    def put(item: tuple) -> bool:
        while not shop.stopped.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        # the session marks the account Invalid when TikTok refuses its authorization
        with tiktok_session(shop.db, shop.account, transport=transport, **client_options) as client:
            for page in client.iter_return_pages(shop.start.filters, page_size=page_size, sort_field="update_time",
                                                 sort_order="ASC"):
                # prepared here, while the next page is on its way: the one writer only compares and writes
                if not put((shop, page, prepare_page(shop.account.shop_id, page.return_orders))):
                    return
            # the second queue, after the returns: buyers' cancellations before shipment (a page with none
            # has nothing to commit and moves no watermark)
            for page in client.iter_cancellation_pages(shop.cancel_start.filters, page_size=page_size,
                                                       sort_field="update_time", sort_order="ASC"):
                if page.cancellations and not put(
                        (shop, page, prepare_page(shop.account.shop_id, page.cancellations, domain.CANCELLATION_KIND))):
                    return
            # the shop's units sold, after its returns and through the same client (sales_sync.py)
            shop.sales = fetch_sales(client, lambda: shop.sales_cover, utcnow().date(), shop.stopped.is_set)
        put((shop, _END, None))
    except BaseException as exc:  # noqa: BLE001 - handed to the writer: the shop's failure
        put((shop, _END, exc))


def _commit_together(db: Database, writes: list[tuple[_Shop, list]]) -> None:
    """Commit several shops' waiting pages in one transaction, each kind of row in one statement for
    all of them (return_writes.write_pages): a transaction's and a statement's fixed cost is then
    shared, which is what lets one writer keep up with many fetchers. When it fails, each shop writes
    on its own, so the failure is the failing shop's alone (a full disk fails them all, each with its
    own line). A failure to report progress is that shop's too."""
    if len(writes) > 1:
        now = utcnow()
        parts = [shop.to_write(pages, now) for shop, pages in writes]
        try:
            with db.writer() as con:
                done = iter(write_pages(con, [part for mine in parts for part in mine], synced_at=now))
        except Exception:  # noqa: BLE001 - retried shop by shop below, where it is told to the right shop
            logger.info("a write of %d shops together failed; writing them one by one", len(writes))
        else:
            for (shop, pages), mine in zip(writes, parts, strict=True):
                counts = {part.kind: next(done) for part in mine}  # each shop's kinds once (write_pages' rule)
                try:
                    shop.wrote(pages, counts, sum(count_from_the_future(p.objects, now, p.kind) for p in mine))
                except Exception as exc:  # noqa: BLE001 - this shop's failure, not the round's
                    shop.fail(exc)
            return
    for shop, pages in writes:
        try:
            shop.wrote(pages, *shop.write(pages))
        except Exception as exc:  # noqa: BLE001 - this shop's failure, not the round's
            shop.fail(exc)


def _across_apps(accounts: list[Account]) -> list[tuple[int, Account]]:
    """(place, account) in the order to start them: one shop of each TikTok app in turn (each app in
    the order given). Each app has its own pace at TikTok, so the shops fetching at once are spread over
    the apps, and one app being slowed down leaves the others going."""
    by_app: dict[tuple[str, str], deque[tuple[int, Account]]] = {}
    for place, account in enumerate(accounts):
        by_app.setdefault((account.api_base, account.app_key), deque()).append((place, account))
    turns: list[tuple[int, Account]] = []
    while by_app:
        for app in list(by_app):
            turns.append(by_app[app].popleft())
            if not by_app[app]:
                del by_app[app]
    return turns


def sync_accounts(db: Database, accounts: Iterable[Account] | None = None, *, full: bool = False,
                  concurrency: int = DEFAULT_CONCURRENCY,
                  on_progress: Callable[[SyncProgress], None] | None = None,
                  on_start: Callable[[Account], None] | None = None,
                  on_result: Callable[[SyncResult], None] | None = None,
                  on_overall: Callable[[Overall], None] | None = None, trigger: str = "cli",
                  transport: httpx.BaseTransport | None = None, page_size: int = PAGE_SIZE,
                  overlap_s: int = OVERLAP_SECONDS, **client_options) -> list[SyncResult]:
    """Sync these accounts (default: every enabled one), at most `concurrency` fetching at once.

    Every page is written here, on the calling thread, through one FileHold: one writer for the store
    however many shops fetch. Each account gets its result, in the order given: a shop that fails
    (TikTok, a store that cannot be written, a bug) ends with its own one line and the others go on.
    An interrupt (Ctrl-C) closes every open run as failed, gives every account not yet synced its
    "not synced" result, and is raised. Runs a dead process left "running" are closed first.
    `on_start` hears of each account as its sync begins, `on_result` of its result as it ends,
    `on_overall` of the whole round after every write.
    """
    check_concurrency(concurrency)
    close_stale_runs(db)
    order = list(accounts_to_sync(db) if accounts is None else accounts)
    results: dict[int, SyncResult] = {}
    pending = deque(_across_apps(order))
    active: dict[int, _Shop] = {}  # runs open: fetching, or ready for the next free fetch thread
    # Shops whose runs are open, for the fetch threads to take in turn. Up to `concurrency` wait there
    # beside the ones fetching, so a thread that is done with its shop starts the next at once instead
    # of waiting for this writer to get round to its end.
    ready: queue.Queue = queue.Queue()
    fetchers: list[threading.Thread] = []
    position_of: dict[int, int] = {}  # id(shop) -> its place in `order`
    work: queue.Queue = queue.Queue(maxsize=concurrency * PREFETCH_PAGES)
    returns_done = cancellations_done = 0

    def settle(position: int, result: SyncResult) -> None:
        nonlocal returns_done, cancellations_done
        results[position] = result
        returns_done += result.fetched
        cancellations_done += result.cancellations
        if on_result is not None:
            on_result(result)
        overall()

    def overall() -> None:
        if on_overall is not None:
            running = sum(s.counts.read for s in active.values())
            on_overall(Overall(len(order), len(results), returns_done + running,
                               sum(1 for r in results.values() if not r.ok),
                               cancellations_done + sum(s.cancellations for s in active.values())))

    def finish(positions: list[int], interrupted: BaseException | None = None) -> None:
        ending = [active.pop(position) for position in positions]
        _close_runs(db, ending, interrupted)
        for position, shop in zip(positions, ending, strict=True):
            settle(position, shop.result(interrupted))

    def start_more(share: FileHold) -> None:
        starting: list[int] = []
        refused: list[int] = []
        while pending and len(active) < 2 * concurrency:
            position, account = pending.popleft()
            if on_start is not None:
                on_start(account)
            shop = _Shop(db, account, full, overlap_s, on_progress)
            position_of[id(shop)] = position
            active[position] = shop
            (starting if shop.lock() else refused).append(position)
        if starting:
            share.before_write()
            _open_runs(db, [active[position] for position in starting], full=full, trigger=trigger)
        refused += [position for position in starting if active[position].failure is not None]
        if refused:
            finish(refused)
        for position in starting:
            if position in active:
                ready.put(active[position])
        while len(fetchers) < min(concurrency, len(active)):
            fetchers.append(threading.Thread(target=_fetcher, args=(ready, work, transport, page_size, client_options),
                                             daemon=True, name=f"sync-fetch-{len(fetchers) + 1}"))
            fetchers[-1].start()

    try:
        with db.hold() as share:
            start_more(share)
            while active:
                try:
                    # the next page is usually a moment away (8 shops fetching): the file stays open,
                    # as opening it again costs more than a write; a process waiting for it still
                    # gets it between writes (share.before_write)
                    items = [work.get(timeout=HOLD_WHILE_WAITING_S)]
                except queue.Empty:
                    share.release()  # waiting on the network: let other processes have the file
                    items = [work.get()]
                while len(items) < BATCH_PAGES:
                    try:
                        items.append(work.get_nowait())
                    except queue.Empty:
                        break
                # the pages waiting together are one write per shop, its end after them
                grouped: dict[int, tuple[_Shop, list, tuple | None]] = {}
                for shop, page, extra in items:  # extra: the page prepared, or the error a shop ended with
                    position = position_of[id(shop)]
                    if position not in active:
                        continue  # a shop that already failed: its late pages are dropped
                    _, pages, end = grouped.get(position, (shop, [], None))
                    if page is _END:
                        end = (extra,)
                    else:
                        pages.append((page, extra))
                    grouped[position] = (shop, pages, end)
                writes = [(shop, pages) for shop, pages, _ in grouped.values() if pages and shop.failure is None]
                if writes:
                    share.before_write()
                    _commit_together(db, writes)
                    overall()
                ended = []
                for position, (shop, _pages, end) in grouped.items():
                    if end is not None and end[0] is not None:
                        shop.fail(end[0])
                    if shop.failure is not None or end is not None:
                        ended.append(position)
                if ended:
                    share.before_write()
                    finish(ended)
                start_more(share)
            if results:
                _safe(db.checkpoint)  # the round's WAL folded into the file, once for every shop
    except BaseException as exc:  # Ctrl-C, or the process asked to stop: every account gets its outcome
        if active:
            finish(list(active), interrupted=exc)
        while pending:
            position, left = pending.popleft()
            settle(position, not_synced(left, Failure(FailureKind.UNEXPECTED, NOT_REACHED), full=full))
        raise
    finally:
        for _ in fetchers:  # no more shops: each fetch thread ends
            ready.put(None)
    outcomes = [results[i] for i in range(len(order))]
    from returns_core.rules import act_after_sync  # decision rules act on what this round brought (never raises)

    act_after_sync(db, outcomes, transport=transport, trigger=trigger)
    return outcomes


def sync_account(db: Database, account: Account, *, full: bool = False,
                 on_progress: Callable[[SyncProgress], None] | None = None, trigger: str = "cli",
                 transport: httpx.BaseTransport | None = None, page_size: int = PAGE_SIZE,
                 overlap_s: int = OVERLAP_SECONDS, **client_options) -> SyncResult:
    """Sync one account incrementally (or everything with full=True); never raises for expected failures."""
    return sync_accounts(db, [account], full=full, concurrency=1, on_progress=on_progress, trigger=trigger,
                         transport=transport, page_size=page_size, overlap_s=overlap_s, **client_options)[0]


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


class ReturnNotFoundError(LookupError):
    """TikTok does not know this return (for this shop)."""


def sync_return(db: Database, account: Account, return_id: str, *,
                transport: httpx.BaseTransport | None = None) -> PageCounts:
    """Re-read one return from TikTok and store it (the watermark does not move). A stored cancellation is
    re-read from Search Cancellations: every re-sync (a decision, the return's page, reconciliation) serves both."""
    stored = find_return(db, return_id, account.shop_id)
    if stored is not None and stored.get("kind") == domain.CANCELLATION_KIND:
        return sync_cancellation(db, account, return_id, transport=transport)
    with tiktok_session(db, account, transport=transport) as client:
        page = client.search_returns({"return_ids": [return_id]}, page_size=10)
    found = [o for o in page.return_orders if isinstance(o, dict) and str(o.get("return_id")) == return_id]
    if not found:
        raise ReturnNotFoundError(f"TikTok has no return {return_id} for {account.name}.")
    return upsert_page(db, account.shop_id, found, synced_at=utcnow())


def sync_cancellation(db: Database, account: Account, cancel_id: str, *,
                      transport: httpx.BaseTransport | None = None) -> PageCounts:
    """Re-read one cancellation from TikTok and store it (its watermark does not move)."""
    with tiktok_session(db, account, transport=transport) as client:
        page = client.search_cancellations({"cancel_ids": [cancel_id]}, page_size=10)
    found = [o for o in page.cancellations if isinstance(o, dict) and str(o.get("cancel_id")) == cancel_id]
    if not found:
        raise ReturnNotFoundError(f"TikTok has no cancellation {cancel_id} for {account.name}.")
    return upsert_page(db, account.shop_id, found, synced_at=utcnow(), kind=domain.CANCELLATION_KIND)


def fetch_records(db: Database, account: Account, return_id: str, *,
                  transport: httpx.BaseTransport | None = None) -> int:
    """Fetch TikTok's event records of one return into return_records; returns how many."""
    with tiktok_session(db, account, transport=transport) as client:
        records = client.get_return_records(return_id)
    return store_records(db, account.shop_id, return_id, records, utcnow())
