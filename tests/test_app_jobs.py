"""Background syncs and the auto-sync schedule (returns_core.jobs), with a stand-in for the sync itself."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest

from returns_core import jobs
from returns_core.explain import CLOCK_REASON, REAUTH_REASON, FailureKind
from returns_core.store.db import utcnow
from returns_core.sync import SyncProgress, SyncResult, sync_account
from tests.reliability import side_by_side


@dataclass(frozen=True)
class FakeAccount:
    shop_id: str
    name: str
    status: str = "Active"


class GatedSync:
    """A sync that reports one page, then waits for the test to let it finish."""

    def __init__(self, error: str | None = None, failure: FailureKind | None = None,
                 raises: Exception | None = None):
        self.gate = threading.Event()
        self.first_page = threading.Event()
        self.calls: list[tuple[str, str]] = []
        self.error = error
        self.failure = failure
        self.raises = raises

    def __call__(self, db, account, *, on_progress, trigger, full):
        self.calls.append((account.shop_id, trigger))
        on_progress(SyncProgress(1, 3, 1, 0, 100, account=account.name, shop_id=account.shop_id))
        self.first_page.set()
        assert self.gate.wait(10)
        if self.raises:
            raise self.raises
        return SyncResult(account.shop_id, account.name, 2, 5, 1, 0, 0.1, self.error, None, failure=self.failure)


ALPHA = FakeAccount("7001", "Alpha")


def test_a_sync_runs_in_the_background_and_reports_progress_then_counts(db):
    sync = GatedSync()
    registry = jobs.SyncJobs(db, sync=side_by_side(sync))
    [job] = registry.start([ALPHA])
    assert sync.first_page.wait(5)
    running = registry.get(job.id)
    assert running.running and (running.pages, running.new, running.updated, running.total_count) == (1, 3, 1, 100)
    assert running.summary() == "4 of 100 returns (1 page)"  # returns counted as returns, pages in brackets
    assert registry.version == 0
    sync.gate.set()
    assert registry.wait(5)
    done = registry.get(job.id)
    assert (done.state, done.pages, done.new, done.updated) == (jobs.DONE, 2, 5, 1)
    assert done.finished_at is not None and done.error is None
    assert done.summary() == "6 returns (2 pages): 5 new, 1 updated, 0 unchanged"
    assert registry.version == 1


def test_a_second_sync_of_the_same_account_joins_the_running_one(db):
    sync = GatedSync()
    registry = jobs.SyncJobs(db, sync=side_by_side(sync))
    [first] = registry.start([ALPHA])
    [second] = registry.start([ALPHA])
    assert second.id == first.id
    sync.gate.set()
    registry.wait(5)
    assert len(sync.calls) == 1


def test_several_accounts_sync_side_by_side(db):
    sync = GatedSync()
    sync.gate.set()
    registry = jobs.SyncJobs(db, sync=side_by_side(sync))
    started = registry.start([ALPHA, FakeAccount("7002", "Beta")], trigger="auto")
    registry.wait(5)
    assert sorted(sync.calls) == [("7001", "auto"), ("7002", "auto")]
    assert [j.shop_id for j in registry.latest(["7001", "7002"])] == [j.shop_id for j in started]


@pytest.mark.parametrize(("error", "failure", "advice"), [
    (REAUTH_REASON, FailureKind.AUTHORIZATION, jobs.RECONNECT_ADVICE),
    ("TikTok had a server error; try again later (50002)", FailureKind.TIKTOK_DOWN, jobs.RETRY_ADVICE),
    ("A sync of Alpha is already running", FailureKind.BUSY, jobs.BUSY_ADVICE),
    # "clock" holds "lock": the words once sent a wrong clock to the busy advice
    (f"{CLOCK_REASON} (36009004)", FailureKind.CLOCK, jobs.CLOCK_ADVICE),
])
def test_a_failed_sync_says_why_and_what_to_do(db, error, failure, advice):
    sync = GatedSync(error=error, failure=failure)
    sync.gate.set()
    registry = jobs.SyncJobs(db, sync=side_by_side(sync))
    [job] = registry.start([ALPHA])
    registry.wait(5)
    failed = registry.get(job.id)
    assert failed.state == jobs.FAILED
    assert failed.error == error
    assert failed.failure is failure
    assert failed.advice == advice
    assert registry.version == 1


@pytest.mark.sandbox(returns=20)
def test_a_wrong_clock_gets_the_clock_advice_not_the_busy_advice(db, sandbox_accounts):
    account = sandbox_accounts[0]

    def sync_an_hour_ahead(db, account, *, on_progress, trigger, full):
        return sync_account(db, account, full=full, on_progress=on_progress, trigger=trigger,
                                 clock=lambda: time.time() + 3600)

    registry = jobs.SyncJobs(db, sync=side_by_side(sync_an_hour_ahead))
    [job] = registry.start([account])
    assert registry.wait(30)
    failed = registry.get(job.id)
    assert failed.state == jobs.FAILED and failed.failure is FailureKind.CLOCK
    assert "clock" in failed.error
    assert failed.advice == jobs.CLOCK_ADVICE != jobs.BUSY_ADVICE


def test_a_crashing_sync_is_reported_not_lost(db):
    sync = GatedSync(raises=RuntimeError("boom\nsecond line"))
    sync.gate.set()
    registry = jobs.SyncJobs(db, sync=side_by_side(sync))
    [job] = registry.start([ALPHA])
    registry.wait(5)
    failed = registry.get(job.id)
    assert failed.state == jobs.FAILED
    assert failed.error == "boom"
    assert failed.failure is FailureKind.UNEXPECTED
    assert failed.advice == jobs.RETRY_ADVICE


def test_auto_sync_choice_is_kept_in_the_settings_table(db):
    assert jobs.auto_sync_choice(db) == "Off"
    jobs.set_auto_sync(db, "Daily")
    assert jobs.auto_sync_choice(db) == "Daily"
    with pytest.raises(ValueError, match="Auto-sync must be one of"):
        jobs.set_auto_sync(db, "Weekly")


def test_due_for_auto_sync_picks_active_accounts_not_synced_within_the_interval():
    now = utcnow()
    accounts = [FakeAccount("1", "never synced"), FakeAccount("2", "synced long ago"),
                FakeAccount("3", "synced just now"), FakeAccount("4", "expired", status="Expired")]
    last = {"2": now - timedelta(hours=2), "3": now - timedelta(minutes=5)}
    due = jobs.due_for_auto_sync(accounts, last, timedelta(hours=1), now)
    assert [a.shop_id for a in due] == ["1", "2"]


def test_auto_sync_tick_starts_nothing_when_off_and_due_accounts_when_on(db):
    sync = GatedSync()
    sync.gate.set()
    registry = jobs.SyncJobs(db, sync=side_by_side(sync))
    schedule = jobs.AutoSync(registry, list_accounts=lambda _db: [ALPHA])
    assert schedule.tick() == []
    jobs.set_auto_sync(db, "Hourly")
    [job] = schedule.tick()
    registry.wait(5)
    assert job.trigger == "auto"
    assert sync.calls == [("7001", "auto")]


def test_auto_sync_thread_stops_when_asked(db):
    schedule = jobs.AutoSync(jobs.SyncJobs(db, sync=side_by_side(GatedSync())), check_every=0.01,
                             list_accounts=lambda _db: []).start()
    schedule.stop()
    assert not schedule._thread.is_alive()


def test_a_jobs_counts_name_returns_and_cancellations_apart():
    started = utcnow()
    both = jobs.SyncJob(1, "7001", "Alpha", "app", started, state=jobs.DONE, pages=58, new=2809, cancellations=803)
    assert both.summary() == "2,006 returns and 803 cancellations (58 pages): 2,809 new, 0 updated, 0 unchanged"
    only = jobs.SyncJob(1, "7001", "Alpha", "app", started, state=jobs.DONE, pages=1, new=3, unchanged=1,
                        cancellations=4)
    assert only.summary() == "4 cancellations (1 page): 3 new, 0 updated, 1 unchanged"
    running = jobs.SyncJob(1, "7001", "Alpha", "app", started, pages=45, new=2200, total_count=2811,
                           cancellations=194)
    assert running.summary() == "2,006 returns and 194 cancellations, 2,200 of 2,811 (45 pages)"
