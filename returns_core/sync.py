"""One account's sync: TikTok (or the sandbox) -> client -> ingest -> store.

Incremental by TikTok's update_time: each run asks for `update_time >= watermark - overlap`,
sorted by update_time ascending, and commits page by page (ingest.upsert_page), so the watermark
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
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from returns_core import accounts as acc
from returns_core.accounts import Account
from returns_core.ingest import PageCounts, page_watermark, store_records, upsert_page
from returns_core.secretbox import SecretKeyError
from returns_core.store.db import Database, StoreError, utcnow
from returns_core.tiktok import errors

logger = logging.getLogger(__name__)

OVERLAP_SECONDS = 10 * 60  # re-read a margin below the watermark: late commits on TikTok's side
PAGE_SIZE = 50  # TikTok's maximum for Search Returns
# Pages fetched ahead while earlier ones are written. When pages arrive faster than a write
# takes (a nearby server), the writer commits all that are waiting in one transaction, up to
# BATCH_PAGES: the cost of opening and closing the file is then shared. Each page is still
# committed whole or not at all, and the watermark still follows the committed data.
PREFETCH_PAGES = 20
BATCH_PAGES = 20
# Fair share of the database file. While fetched pages are waiting, the sync keeps the file open
# from one write to the next (opening and closing it cost more than writing a page), and lets it
# go before it waits on the network. Another process (the app) waiting on the lock could still
# starve, so when one signals that it waits (Database.others_waiting), the sync closes the file
# for YIELD_S: longer than a waiter's retry interval (db.MAX_RETRY_DELAY_S), so it gets its turn.
YIELD_S = 0.25

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


def is_sync_running(db: Database, account: Account) -> bool:
    """True while some process holds this account's sync lock."""
    try:
        with account_lock(db, account):
            return False
    except SyncBusyError:
        return True


# --- sync runs ----------------------------------------------------------------------------------


INTERRUPTED_REASON = "Interrupted: the sync process stopped before finishing (killed or shut down)"


def _start_run(db: Database, shop_id: str, full: bool, trigger: str) -> tuple[int, int | None]:
    with db.writer() as con:
        # the caller holds this account's sync lock, so a run still marked running died unfinished
        con.execute("UPDATE sync_runs SET state = 'failed', error = ? WHERE shop_id = ? AND state = 'running'",
                    [INTERRUPTED_REASON, shop_id])
        run_id = con.execute(
            "INSERT INTO sync_runs (shop_id, started_at, full_sync, state, trigger) VALUES (?, ?, ?, 'running', ?) "
            "RETURNING id", [shop_id, utcnow(), full, trigger]).fetchone()[0]
        row = con.execute("SELECT watermark FROM sync_state WHERE shop_id = ?", [shop_id]).fetchone()
    return run_id, (row[0] if row else None)


def _wrap_up(db: Database, run_id: int, duration: float, error: str | None) -> None:
    """The run's outcome, then the WAL folded into the file: one opening of the file for both."""
    with db.session():
        _finish_run(db, run_id, duration, error)
        db.checkpoint()


def _finish_run(db: Database, run_id: int, duration: float, error: str | None) -> None:
    with db.writer() as con:
        con.execute("UPDATE sync_runs SET finished_at = ?, duration_s = ?, state = ?, error = ? WHERE id = ?",
                    [utcnow(), duration, "failed" if error else "ok", error, run_id])


def watermark(db: Database, shop_id: str) -> int | None:
    """The account's update_time watermark (Unix seconds), or None before the first sync."""
    with db.reader() as con:
        row = con.execute("SELECT watermark FROM sync_state WHERE shop_id = ?", [shop_id]).fetchone()
    return row[0] if row else None


def last_syncs(db: Database) -> dict[str, tuple]:
    """shop_id -> (finished_at or started_at, state, error) of its latest run."""
    with db.reader() as con:
        rows = con.execute(
            "SELECT shop_id, coalesce(finished_at, started_at), state, error FROM sync_runs "
            "QUALIFY row_number() OVER (PARTITION BY shop_id ORDER BY started_at DESC, id DESC) = 1").fetchall()
    return {r[0]: r[1:] for r in rows}


# --- the sync -----------------------------------------------------------------------------------


def _failure_reason(exc: BaseException) -> str:
    if acc.authorization_refused(exc):
        return acc.REAUTH_REASON
    return acc.explain_error(exc)


def sync_account(db: Database, account: Account, *, full: bool = False,
                 on_progress: Callable[[SyncProgress], None] | None = None, trigger: str = "cli",
                 transport: httpx.BaseTransport | None = None, page_size: int = PAGE_SIZE,
                 overlap_s: int = OVERLAP_SECONDS, **client_options) -> SyncResult:
    """Sync one account incrementally (or everything with full=True); never raises for expected failures."""
    started = time.monotonic()

    def result(pages: int, counts: PageCounts, error: str | None, run_id: int | None) -> SyncResult:
        return SyncResult(account.shop_id, account.name, pages, counts.new, counts.updated, counts.unchanged,
                          round(time.monotonic() - started, 3), error, run_id, full)

    if not account.enabled:
        return result(0, PageCounts(), f"The account {account.name} is disabled; enable it to sync", None)
    try:
        with account_lock(db, account):
            return _locked_sync(db, account, full, on_progress, trigger, transport, page_size, overlap_s,
                                client_options, result)
    except SyncBusyError as exc:
        return result(0, PageCounts(), str(exc), None)
    except StoreError as exc:
        return result(0, PageCounts(), str(exc), None)


def _locked_sync(db: Database, account: Account, full: bool, on_progress: Callable[[SyncProgress], None] | None,
                 trigger: str, transport: httpx.BaseTransport | None, page_size: int, overlap_s: int,
                 client_options: dict, result: Callable[..., SyncResult]) -> SyncResult:
    """The sync proper, under the account's lock: one run row, pages committed one by one."""
    started = time.monotonic()
    run_id, mark = _start_run(db, account.shop_id, full, trigger)
    filters: dict = {}
    if not full and mark is not None:
        filters["update_time_ge"] = max(0, int(mark) - overlap_s)
    pages, counts, total, error = 0, PageCounts(), None, None

    def report(done: bool = False) -> None:
        if on_progress is not None:
            on_progress(SyncProgress(pages, counts.new, counts.updated, counts.unchanged, total, done, error,
                                     account.name, account.shop_id))

    try:
        with acc.client_for(db, account, transport=transport, **client_options) as client:
            pages_in_order = client.iter_return_pages(filters, page_size=page_size, sort_field="update_time",
                                                      sort_order="ASC")
            with _FairShare(db) as share, closing(prefetch(pages_in_order, PREFETCH_PAGES, BATCH_PAGES,
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
        error = _failure_reason(exc)
        logger.warning("sync of %s failed: %s", account.name, exc)
        if acc.authorization_refused(exc):
            _safe(lambda: acc.mark_invalid(db, account.shop_id, error))
    except (StoreError, acc.AccountError, SecretKeyError) as exc:
        error = _failure_reason(exc)
        logger.warning("sync of %s failed: %s", account.name, error)
    except BaseException as exc:
        # a bug or an interrupt: record the run as failed, then let it surface
        error = f"Interrupted: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        _safe(lambda: _finish_run(db, run_id, time.monotonic() - started, error))
        raise
    _safe(lambda: _wrap_up(db, run_id, time.monotonic() - started, error))
    report(done=True)
    return result(pages, counts, error, run_id)


class _FairShare:
    """Holds the database file open across back-to-back page writes; lets it go for anyone waiting."""

    def __init__(self, db: Database, sleep: Callable[[float], None] = time.sleep):
        self._db, self._sleep = db, sleep
        self._session: AbstractContextManager | None = None

    @property
    def holding(self) -> bool:
        return self._session is not None

    def before_write(self) -> None:
        if self._db.others_waiting():
            self.release()
            self._sleep(YIELD_S)
        if self._session is None:
            session = self._db.session()
            session.__enter__()
            self._session = session

    def release(self) -> None:
        """Close the file (before waiting on the network, or for another process)."""
        session, self._session = self._session, None
        if session is not None:
            session.__exit__(None, None, None)

    def __enter__(self) -> _FairShare:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


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


def sync_accounts(db: Database, accounts: Iterable[Account] | None = None, *, full: bool = False,
                  on_progress: Callable[[SyncProgress], None] | None = None, trigger: str = "cli",
                  transport: httpx.BaseTransport | None = None, **options) -> list[SyncResult]:
    """Sync several accounts one after the other (default: every enabled account)."""
    chosen = list(accounts) if accounts is not None else [a for a in acc.list_accounts(db) if a.enabled]
    return [sync_account(db, a, full=full, on_progress=on_progress, trigger=trigger, transport=transport, **options)
            for a in chosen]


class ReturnNotFoundError(LookupError):
    """TikTok does not know this return (for this shop)."""


def sync_return(db: Database, account: Account, return_id: str, *,
                transport: httpx.BaseTransport | None = None) -> PageCounts:
    """Re-read one return from TikTok and store it (the watermark does not move)."""
    try:
        with acc.client_for(db, account, transport=transport) as client:
            page = client.search_returns({"return_ids": [return_id]}, page_size=10)
    except errors.TikTokError as exc:
        if acc.authorization_refused(exc):
            acc.mark_invalid(db, account.shop_id, _failure_reason(exc))
        raise
    found = [o for o in page.return_orders if isinstance(o, dict) and str(o.get("return_id")) == return_id]
    if not found:
        raise ReturnNotFoundError(f"TikTok has no return {return_id} for {account.name}.")
    return upsert_page(db, account.shop_id, found, synced_at=utcnow())


def fetch_records(db: Database, account: Account, return_id: str, *,
                  transport: httpx.BaseTransport | None = None) -> int:
    """Fetch TikTok's event records of one return into return_records; returns how many."""
    try:
        with acc.client_for(db, account, transport=transport) as client:
            records = client.get_return_records(return_id)
    except errors.TikTokError as exc:
        if acc.authorization_refused(exc):
            acc.mark_invalid(db, account.shop_id, _failure_reason(exc))
        raise
    return store_records(db, account.shop_id, return_id, records, utcnow())
