"""Syncs that run in the background of the app, and the auto-sync schedule.

The app must stay usable while accounts sync, so each round (a Sync click, a schedule tick) runs
in a plain thread (its own database connections, no Streamlit), syncing its accounts side by side
(sync.sync_accounts), and reports each account's progress into its `SyncJob`, which pages poll.
`SyncJobs` is the registry for one app process; `AutoSync` is the thread that starts syncs on
the schedule chosen in the sidebar (kept in the `settings` table, so every session sees it).
A cron sync in another process coexists: the store waits briefly on the file lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

# the module, not its functions: tests stand in for sync.sync_account by patching the module
from returns_core import accounts, sync
from returns_core.accounts import ACTIVE, DISABLED, EXPIRED, INVALID, Account, AccountError, get_account
from returns_core.domain import count_in_words
from returns_core.explain import FailureKind, explain
from returns_core.store import settings, sync_runs
from returns_core.store.db import Database, StoreBusyError, utcnow
from returns_core.sync import SyncProgress, SyncResult

logger = logging.getLogger(__name__)

RUNNING, DONE, FAILED = "running", "done", "failed"

AUTO_SYNC_SETTING = "auto_sync"
AUTO_SYNC_CHOICES: dict[str, timedelta | None] = {
    "Off": None,
    "Hourly": timedelta(hours=1),
    "Daily": timedelta(days=1),
}

ALERTS_EVERY_S = 60.0  # how often the app evaluates the alert rules (cron runs `python -m returns_core alerts`)

RECONNECT_ADVICE = "Reconnect the shop on the Accounts page, then sync again."
RETRY_ADVICE = "Try again in a minute."
BUSY_ADVICE = "Another sync (perhaps the scheduled one) is using the database; try again in a minute."
ENABLE_ADVICE = "Enable the account on the Accounts page first."
CLOCK_ADVICE = "Correct this computer's clock (turn on automatic time / NTP), then sync again."

# What the user can do about a failed sync, by what kind of failure it was (never by its words).
# Kinds not named here (network, TikTok down, rate limited, unexpected...) pass with time.
ADVICE: dict[FailureKind, str] = {
    FailureKind.AUTHORIZATION: RECONNECT_ADVICE,
    FailureKind.ACCOUNT: RECONNECT_ADVICE,
    FailureKind.CLOCK: CLOCK_ADVICE,
    FailureKind.BUSY: BUSY_ADVICE,
    FailureKind.DISABLED: ENABLE_ADVICE,
}


@dataclass(frozen=True)
class SyncJob:
    """One background sync of one account, as the sidebar shows it."""

    id: int
    shop_id: str
    account_name: str
    trigger: str
    started_at: datetime
    state: str = RUNNING
    pages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    total_count: int | None = None
    finished_at: datetime | None = None
    error: str | None = None
    failure: FailureKind | None = None
    advice: str | None = None
    cancellations: int = 0  # of the rows read so far (`fetched`), the cancellations

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def fetched(self) -> int:
        """The rows read from TikTok so far: returns and cancellations."""
        return self.new + self.updated + self.unchanged

    def summary(self) -> str:
        """Where the sync is ("1,800 of 2,016 returns (36 pages)"), or, once done, what it did
        ("2,006 returns and 803 cancellations (58 pages): 2,809 new, 0 updated, 0 unchanged").

        Counts are rows, each kind named; pages only say how many requests that took, in brackets.
        """
        pages = f"{self.pages:,} page{'' if self.pages == 1 else 's'}"
        if self.running and not self.pages:
            return "asking TikTok…"  # "0 returns (0 pages)" would read as an empty shop
        read = count_in_words(self.fetched - self.cancellations, self.cancellations)
        if self.running:
            if not self.total_count:
                return f"{read} ({pages})"
            if not self.cancellations:
                return f"{self.fetched:,} of {self.total_count:,} returns ({pages})"
            # the total is both searches': the kinds read so far, then how far the whole is
            return f"{read}, {self.fetched:,} of {self.total_count:,} ({pages})"
        return f"{read} ({pages}): {self.new:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged"


def advice_for(failure: FailureKind | None, account_status: str | None) -> str:
    """What the user can do about a failed sync: by the account's status first, then by the failure's kind."""
    # an account that cannot sync as it stands needs fixing first, whatever this attempt ran into
    if account_status in (EXPIRED, INVALID):
        return RECONNECT_ADVICE
    if account_status == DISABLED:
        return ENABLE_ADVICE
    return ADVICE.get(failure, RETRY_ADVICE) if failure is not None else RETRY_ADVICE


class SyncFunction(Protocol):
    """How background jobs sync a round of accounts (sync.sync_accounts; tests pass a stand-in).

    It reports each account's progress and result as they come (`on_progress`, `on_result`, keyed by
    the account's shop_id) and returns every result."""

    def __call__(self, db: Database, accounts: list[Account], *, on_progress: Callable[[SyncProgress], None],
                 on_result: Callable[[SyncResult], None], trigger: str, full: bool) -> list[SyncResult]: ...


def _default_sync(db: Database, accounts: list[Account], *, on_progress: Callable[[SyncProgress], None],
                  on_result: Callable[[SyncResult], None], trigger: str, full: bool) -> list[SyncResult]:
    """The real sync of a round: the accounts side by side, as many at once as the setting says."""
    return sync.sync_accounts(db, accounts, full=full, concurrency=sync.concurrency_setting(db),
                              on_progress=on_progress, on_result=on_result, trigger=trigger)


def _account_status(db: Database, shop_id: str) -> str | None:
    """The account's status now (None when it cannot be read): it decides part of the advice."""
    try:
        return get_account(db, shop_id).status
    except (AccountError, StoreBusyError):
        return None


class SyncJobs:
    """The background syncs of one app process. Thread-safe; shared by every session."""

    def __init__(self, db: Database, *, sync: SyncFunction = _default_sync, keep: int = 50):
        self.db = db
        self._sync = sync
        self._keep = keep
        self._lock = threading.Lock()
        self._jobs: dict[int, SyncJob] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._ids = itertools.count(1)
        self._version = 0

    @property
    def version(self) -> int:
        """Grows each time a sync finishes: cached query results keyed by it go stale."""
        return self._version

    def start(self, accounts: Iterable[Account], *, trigger: str = "app", full: bool = False) -> list[SyncJob]:
        """Start a background round syncing these accounts side by side (sync.sync_accounts: one writer,
        a bounded number fetching); an account already syncing keeps its running job."""
        started: list[SyncJob] = []
        new: dict[str, tuple[int, Account]] = {}  # shop_id -> (job id, account), this round's
        with self._lock:
            for account in accounts:
                current = self._running_for(account.shop_id)
                if current is not None:
                    started.append(current)
                    continue
                job = SyncJob(next(self._ids), account.shop_id, account.name, trigger, utcnow())
                self._jobs[job.id] = job
                new[account.shop_id] = (job.id, account)
                started.append(job)
            thread = None
            if new:
                thread = threading.Thread(target=self._run, args=(new, trigger, full), daemon=True,
                                          name=f"sync-round-{min(job_id for job_id, _ in new.values())}")
                for job_id, _ in new.values():
                    self._threads[job_id] = thread
            self._forget_old()
        if thread is not None:
            thread.start()
        return started

    def _running_for(self, shop_id: str) -> SyncJob | None:
        return next((j for j in self._jobs.values() if j.shop_id == shop_id and j.running), None)

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if not j.running), key=lambda j: j.id)
        for job in finished[: max(0, len(finished) - self._keep)]:
            self._jobs.pop(job.id, None)
            self._threads.pop(job.id, None)

    def _update(self, job_id: int, **changes: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = replace(job, **changes)
            if changes.get("state", RUNNING) != RUNNING:
                # in the same step as the state: whoever sees the job finished also sees new data
                self._version += 1

    def _run(self, round_: dict[str, tuple[int, Account]], trigger: str, full: bool) -> None:
        """The round's thread: sync, report each account's progress into its job, then its outcome."""

        def on_progress(p: SyncProgress) -> None:
            if p.shop_id in round_:
                self._update(round_[p.shop_id][0], pages=p.pages, new=p.new, updated=p.updated,
                             unchanged=p.unchanged, total_count=p.total_count, cancellations=p.cancellations)

        def on_result(result: SyncResult) -> None:
            if result.shop_id in round_:
                self._settle(*round_[result.shop_id], result)

        try:
            results = self._sync(self.db, [account for _, account in round_.values()], on_progress=on_progress,
                                 on_result=on_result, trigger=trigger, full=full)
        except Exception as exc:  # noqa: BLE001 - a background thread must always report, never die silently
            logger.exception("sync round failed")
            crash = explain(exc)
            for job_id, account in round_.values():
                if self._still_running(job_id):
                    self._fail(job_id, account, crash.message, crash.kind)
            return
        for result in results:  # an outcome the round did not report as it came (a stand-in)
            if result.shop_id in round_ and self._still_running(round_[result.shop_id][0]):
                on_result(result)

    def _still_running(self, job_id: int) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            return job is not None and job.running

    def _settle(self, job_id: int, account: Account, result: SyncResult) -> None:
        """Finish the job with the sync's counts, or as failed with what to do about it."""
        counts = {"pages": result.pages, "new": result.new, "updated": result.updated, "unchanged": result.unchanged,
                  "cancellations": result.cancellations}
        if result.error:
            self._fail(job_id, account, result.error, result.failure, **counts)
        else:
            self._update(job_id, state=DONE, finished_at=utcnow(), **counts)

    def _fail(self, job_id: int, account: Account, error: str, failure: FailureKind | None, **counts: int) -> None:
        """Finish the job as failed, with what the user can do about it."""
        advice = advice_for(failure, _account_status(self.db, account.shop_id))
        self._update(job_id, state=FAILED, error=error, failure=failure, advice=advice, finished_at=utcnow(),
                     **counts)

    def get(self, job_id: int) -> SyncJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def latest(self, shop_ids: Iterable[str] | None = None) -> list[SyncJob]:
        """The newest job of each of these accounts (default: every account), those that have one."""
        wanted = None if shop_ids is None else set(shop_ids)
        newest: dict[str, SyncJob] = {}
        with self._lock:
            for job in self._jobs.values():
                if wanted is not None and job.shop_id not in wanted:
                    continue
                if job.shop_id not in newest or job.id > newest[job.shop_id].id:
                    newest[job.shop_id] = job
        return sorted(newest.values(), key=lambda j: j.id)

    def running(self) -> list[SyncJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.running]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every running sync to end (tests, shutdown). True when none is left running."""
        for thread in list(self._threads.values()):
            if thread.ident is not None:
                thread.join(timeout)
        return not self.running()


# --- the schedule ----------------------------------------------------------------------------


def auto_sync_choice(db: Database) -> str:
    """"Off", "Hourly" or "Daily" as chosen in the sidebar."""
    value = settings.get_setting(db, AUTO_SYNC_SETTING)
    return value if value in AUTO_SYNC_CHOICES else "Off"


def set_auto_sync(db: Database, choice: str) -> None:
    if choice not in AUTO_SYNC_CHOICES:
        raise ValueError(f"Auto-sync must be one of {', '.join(AUTO_SYNC_CHOICES)}, not {choice!r}.")
    settings.set_setting(db, AUTO_SYNC_SETTING, choice)


def due_for_auto_sync(accounts: Iterable[Account], last_runs: dict[str, datetime], interval: timedelta,
                      now: datetime) -> list[Account]:
    """The usable accounts whose last sync attempt is older than the interval."""
    return [a for a in accounts if a.status == ACTIVE and
            (a.shop_id not in last_runs or now - last_runs[a.shop_id] >= interval)]


class Every:
    """A daemon thread that calls `step()` every `seconds` until stopped.

    A failing step is logged and the schedule goes on: a busy store or an unreachable TikTok is
    one bad minute, not the end of auto-sync or alerting.
    """

    def __init__(self, name: str, seconds: float, step: Callable[[], object]):
        self._name, self._seconds, self._step = name, seconds, step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def start(self) -> Every:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop; a step under way finishes first (up to 5 s)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._step()
            except Exception:  # noqa: BLE001 - see the class docstring
                logger.exception("%s check failed", self._name)


@dataclass
class AutoSync:
    """A daemon thread that starts background syncs on the chosen schedule, and the alerts beside it."""

    jobs: SyncJobs
    check_every: float = 60.0
    list_accounts: Callable[[Database], list[Account]] | None = None
    alerts_every: float | None = ALERTS_EVERY_S  # None: no alerts thread
    alerts: AlertsSchedule | None = None
    _thread: Every | None = None

    def start(self) -> AutoSync:
        if self._thread is None:
            self._thread = Every("auto-sync", self.check_every, self.tick).start()
            # the app's one scheduler: wherever the UI starts auto-sync, alerts are evaluated too
            if self.alerts_every:
                self.alerts = AlertsSchedule(self.jobs.db, self.alerts_every).start()
        return self

    def stop(self) -> None:
        if self.alerts is not None:
            self.alerts.stop()
        if self._thread is not None:
            self._thread.stop()

    def tick(self, now: datetime | None = None) -> list[SyncJob]:
        """One check: start the syncs that are due. Returns the jobs started."""
        db = self.jobs.db
        interval = AUTO_SYNC_CHOICES[auto_sync_choice(db)]
        if interval is None:
            return []
        list_accounts = self.list_accounts or accounts.list_accounts
        attempts = {shop_id: run.started_at for shop_id, run in sync_runs.last_syncs(db).items()}
        due = due_for_auto_sync(list_accounts(db), attempts, interval, now or utcnow())
        return self.jobs.start(due, trigger="auto") if due else []


# --- alerts while the app runs ----------------------------------------------------------------

@dataclass
class AlertsSchedule:
    """A daemon thread that evaluates the alert rules and sends what is due (returns_core.alerts).

    Started and stopped with the app's AutoSync. A cron run may evaluate at the same moment: the
    store's claim keeps every alert to one sending.
    """

    db: Database
    check_every: float = ALERTS_EVERY_S
    _thread: Every | None = None

    def start(self) -> AlertsSchedule:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = Every("alerts", self.check_every, self.tick).start()
        return self

    def stop(self) -> None:
        """Stop the thread; an evaluation under way finishes first (up to 5 s)."""
        if self._thread is not None:
            self._thread.stop()

    def tick(self, now: datetime | None = None) -> Any:
        """One evaluation: raise what the rules find, send what is due. Returns alerts.Evaluation."""
        from returns_core import alerts

        return alerts.evaluate(self.db, now=now, raised_by="app")
