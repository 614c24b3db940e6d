"""One account's sync: TikTok (or the sandbox) -> client -> ingest -> store.

Incremental by TikTok's update_time: each run asks for `update_time >= watermark - overlap`,
sorted by update_time ascending, and commits page by page (return_writes.upsert_page), so the watermark
only ever covers pages that are in the store. A run that dies keeps what it committed; the next
run re-reads from the last committed page. Nothing is ever deleted.

Two syncs of one account never run at once: an OS lock file per account beside the database
(fcntl.flock, released by the kernel if the process dies).
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from returns_core import accounts as acc
from returns_core.accounts import Account
from returns_core.explain import REAUTH_REASON, Failure, FailureKind, explain
from returns_core.ingest import PageCounts, page_watermark
from returns_core.secretbox import SecretKeyError
from returns_core.store import sync_runs
from returns_core.store.db import Database, StoreError, utcnow
from returns_core.store.return_writes import store_records, upsert_page
from returns_core.tiktok import errors
from returns_core.tiktok_session import tiktok_session

logger = logging.getLogger(__name__)

OVERLAP_SECONDS = 10 * 60  # re-read a margin below the watermark: late commits on TikTok's side
PAGE_SIZE = 50  # TikTok's maximum for Search Returns
# Pages fetched ahead while earlier ones are written. When pages arrive faster than a write
# takes (a nearby server), the writer commits all that are waiting in one transaction, up to
# BATCH_PAGES: the cost of opening and closing the file is then shared. Each page is still
# committed whole or not at all, and the watermark still follows the committed data.
PREFETCH_PAGES = 20
BATCH_PAGES = 20

T = TypeVar("T")


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

    @property
    def fetched(self) -> int:
        return self.new + self.updated + self.unchanged


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

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def fetched(self) -> int:
        return self.new + self.updated + self.unchanged

    def summary(self) -> str:
        """One line for a log, the CLI or a toast."""
        counts = (f"{self.pages} page(s), {self.new} new, {self.updated} updated, {self.unchanged} unchanged "
                  f"in {self.duration_s:.1f} s")
        return f"{self.account}: {counts}" + (f"; FAILED: {self.error}" if self.error else "")


# --- the per-account lock -----------------------------------------------------------------------


def sync_lock_path(db: Database, shop_id: str) -> Path:
    """The lock file of one account's sync, beside the database."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", shop_id)
    return db.path.with_name(f"{db.path.name}.sync-{safe}.lock")


@contextmanager
def account_lock(db: Database, account: Account) -> Iterator[None]:
    """Hold the account's sync lock, or raise SyncBusyError at once (never waits)."""
    path = sync_lock_path(db, account.shop_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            # flock locks belong to the open file, so a second open in this process conflicts too
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncBusyError(f"A sync of {account.name} is already running") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --- the sync -----------------------------------------------------------------------------------


def _failure(exc: BaseException) -> Failure:
    """Why a sync failed: its kind and one line (a refused authorization in the words the Accounts page shows)."""
    failure = explain(exc)
    if failure.kind is FailureKind.AUTHORIZATION:
        return Failure(failure.kind, REAUTH_REASON)
    return failure


def sync_account(db: Database, account: Account, *, full: bool = False,
                 on_progress: Callable[[SyncProgress], None] | None = None, trigger: str = "cli",
                 transport: httpx.BaseTransport | None = None, page_size: int = PAGE_SIZE,
                 overlap_s: int = OVERLAP_SECONDS, **client_options) -> SyncResult:
    """Sync one account incrementally (or everything with full=True); never raises for expected failures."""
    started = time.monotonic()

    def result(pages: int, counts: PageCounts, failure: Failure | None, run_id: int | None) -> SyncResult:
        return SyncResult(account.shop_id, account.name, pages, counts.new, counts.updated, counts.unchanged,
                          round(time.monotonic() - started, 3), failure.message if failure else None, run_id, full,
                          failure.kind if failure else None)

    if not account.enabled:
        disabled = Failure(FailureKind.DISABLED, f"The account {account.name} is disabled; enable it to sync")
        return result(0, PageCounts(), disabled, None)
    try:
        with account_lock(db, account):
            return _locked_sync(db, account, full, on_progress, trigger, transport, page_size, overlap_s,
                                client_options, result)
    except SyncBusyError as exc:
        return result(0, PageCounts(), Failure(FailureKind.BUSY, str(exc)), None)
    except StoreError as exc:
        return result(0, PageCounts(), Failure(explain(exc).kind, str(exc)), None)


def _locked_sync(db: Database, account: Account, full: bool, on_progress: Callable[[SyncProgress], None] | None,
                 trigger: str, transport: httpx.BaseTransport | None, page_size: int, overlap_s: int,
                 client_options: dict, result: Callable[..., SyncResult]) -> SyncResult:
    """The sync proper, under the account's lock: one run row, pages committed one by one."""
    started = time.monotonic()
    run_id, mark = sync_runs.start(db, account.shop_id, full=full, trigger=trigger)
    filters: dict = {}
    if not full and mark is not None:
        filters["update_time_ge"] = max(0, int(mark) - overlap_s)
    pages, counts, total = 0, PageCounts(), None
    failure: Failure | None = None

    def report(done: bool = False) -> None:
        if on_progress is not None:
            on_progress(SyncProgress(pages, counts.new, counts.updated, counts.unchanged, total, done,
                                     failure.message if failure else None, account.name, account.shop_id))

    try:
        # the session marks the account Invalid when TikTok refuses its authorization
        with tiktok_session(db, account, transport=transport, **client_options) as client:
            pages_in_order = client.iter_return_pages(filters, page_size=page_size, sort_field="update_time",
                                                      sort_order="ASC")
            with db.hold() as share, closing(prefetch(pages_in_order, PREFETCH_PAGES, BATCH_PAGES,
                                                      on_wait=share.release)) as fetched:
                for batch in fetched:
                    share.before_write()
                    objects = [obj for page in batch for obj in page.return_orders]
                    # pages come in update_time order, so the batch's watermark is its last page's
                    counts += upsert_page(db, account.shop_id, objects, synced_at=utcnow(),
                                          new_watermark=page_watermark(objects), run_id=run_id, pages=len(batch))
                    pages += len(batch)
                    total = batch[-1].total_count
                    report()
    except errors.TikTokError as exc:
        failure = _failure(exc)
        logger.warning("sync of %s failed: %s", account.name, exc)
    except (StoreError, acc.AccountError, SecretKeyError) as exc:
        failure = _failure(exc)
        logger.warning("sync of %s failed: %s", account.name, failure)
    except BaseException as exc:
        # a bug or an interrupt: record the run as failed, then let it surface
        error = f"Interrupted: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        _safe(lambda: sync_runs.finish(db, run_id, time.monotonic() - started, error))
        raise
    error = failure.message if failure else None
    _safe(lambda: sync_runs.wrap_up(db, run_id, time.monotonic() - started, error))
    report(done=True)
    return result(pages, counts, failure, run_id)


def prefetch(source: Iterator[T], depth: int = 1, batch: int = 1,
             on_wait: Callable[[], None] | None = None) -> Iterator[list[T]]:
    """Yield `source`'s items in order, in lists, while a thread fetches up to `depth` ahead.

    Each list holds the next item plus whatever else is already fetched, up to `batch` items:
    fetching (network) overlaps with writing (disk), and fast sources get fewer, larger writes.
    `on_wait` is called whenever the consumer would have to wait for the source.
    The source's exception is raised here, after the items that came before it.
    """
    ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((None, exc))

    worker = threading.Thread(target=produce, name="sync-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            if on_wait is not None and ready.empty():
                on_wait()
            item, exc = ready.get()
            items: list[T] = []
            last = None  # the end marker or an error, handled after the items before it
            while exc is None and item is not end:
                items.append(item)
                if len(items) >= batch:
                    break
                try:
                    item, exc = ready.get_nowait()
                except queue.Empty:
                    break
            else:
                last = (item, exc)
            if items:
                yield items
            if last is not None:
                if last[1] is not None:
                    raise last[1]
                return
    finally:
        stop.set()
        worker.join(timeout=60)


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


def sync_accounts(db: Database, accounts: Iterable[Account] | None = None, *, full: bool = False,
                  on_progress: Callable[[SyncProgress], None] | None = None,
                  on_start: Callable[[Account], None] | None = None,
                  on_result: Callable[[SyncResult], None] | None = None, trigger: str = "cli",
                  transport: httpx.BaseTransport | None = None, **options) -> list[SyncResult]:
    """Sync several accounts one after the other (default: every enabled account).

    `on_start` hears of each account before its sync, `on_result` of its result right after.
    """
    results = []
    for account in accounts_to_sync(db) if accounts is None else accounts:
        if on_start is not None:
            on_start(account)
        result = sync_account(db, account, full=full, on_progress=on_progress, trigger=trigger,
                              transport=transport, **options)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


class ReturnNotFoundError(LookupError):
    """TikTok does not know this return (for this shop)."""


def sync_return(db: Database, account: Account, return_id: str, *,
                transport: httpx.BaseTransport | None = None) -> PageCounts:
    """Re-read one return from TikTok and store it (the watermark does not move)."""
    with tiktok_session(db, account, transport=transport) as client:
        page = client.search_returns({"return_ids": [return_id]}, page_size=10)
    found = [o for o in page.return_orders if isinstance(o, dict) and str(o.get("return_id")) == return_id]
    if not found:
        raise ReturnNotFoundError(f"TikTok has no return {return_id} for {account.name}.")
    return upsert_page(db, account.shop_id, found, synced_at=utcnow())


def fetch_records(db: Database, account: Account, return_id: str, *,
                  transport: httpx.BaseTransport | None = None) -> int:
    """Fetch TikTok's event records of one return into return_records; returns how many."""
    with tiktok_session(db, account, transport=transport) as client:
        records = client.get_return_records(return_id)
    return store_records(db, account.shop_id, return_id, records, utcnow())
