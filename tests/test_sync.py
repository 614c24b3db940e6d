"""Sync end to end over real HTTP on 127.0.0.1 against the sandbox: exact, incremental, resumable."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from returns_core import accounts as acc
from returns_core import domain
from returns_core import sample_data as sample
from returns_core.explain import CLOCK_REASON, REAUTH_REASON
from returns_core.ingest import to_utc
from returns_core.store.db import Database
from returns_core.store.sync_runs import watermark
from returns_core.sync import (
    SyncProgress,
    account_lock,
    fetch_records,
    sync_account,
    sync_accounts,
    sync_return,
)
from returns_core.tiktok.client import RetryPolicy
from returns_core.tiktok_session import tiktok_session
from tests.conftest import ROOT

FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)


def store_view(db: Database, shop_id: str) -> dict[str, tuple]:
    """return_id -> (marketplace_status, status, type, refund_total, updated_at) as stored."""
    with db.reader() as con:
        rows = con.execute(
            "SELECT return_id, marketplace_status, status, type, refund_total, updated_at FROM returns "
            "WHERE shop_id = ?", [shop_id]).fetchall()
    return {r[0]: r[1:] for r in rows}


def truth_view(sandbox, shop_id: str) -> dict[str, tuple]:
    """The same view computed from the sandbox's ground truth with DESIGN.md's mapping."""
    view = {}
    for obj in sandbox.returns_for(shop_id):
        money = (obj.get("refund_amount") or {}).get("refund_total")
        view[obj["return_id"]] = (
            obj["return_status"], domain.STATUS_MAP.get(obj["return_status"]), domain.display_type(obj["return_type"]),
            Decimal(money).quantize(Decimal("0.0001")) if money is not None else None, to_utc(obj["update_time"]))
    return view


def history_count(db: Database, kind: str) -> int:
    with db.reader() as con:
        return con.execute("SELECT count(*) FROM history WHERE kind = ?", [kind]).fetchone()[0]


def test_first_sync_stores_every_sandbox_return_exactly(db, sandbox, sandbox_accounts):
    assert len(sandbox_accounts) == 2
    results = {r.shop_id: r for r in sync_accounts(db, trigger="test")}
    total = 0
    expected_runs = []
    for account in sorted(sandbox_accounts, key=lambda a: a.name.lower()):
        result = results[account.shop_id]
        truth = truth_view(sandbox, account.shop_id)
        assert len(truth) >= 500
        assert result.ok, result.error
        assert (result.new, result.updated, result.pages) == (len(truth), 0, -(-len(truth) // 50))
        assert store_view(db, account.shop_id) == truth
        total += len(truth)
        expected_runs.append(("ok", result.pages, len(truth), None))
    with db.reader() as con:
        assert con.execute("SELECT count(*), count(DISTINCT (shop_id, return_id)) FROM returns").fetchone() == (
            total, total)
        runs = con.execute("SELECT state, pages, new_count, error FROM sync_runs ORDER BY id").fetchall()
    assert runs == expected_runs
    assert history_count(db, "created") == total


def test_incremental_sync_fetches_only_the_changes(db, sandbox, sandbox_accounts):
    sync_accounts(db)
    before = {a.shop_id: truth_view(sandbox, a.shop_id) for a in sandbox_accounts}
    sandbox.advance(6 * 3600)
    results = sync_accounts(db)
    fetched = sum(r.fetched for r in results)
    assert all(r.ok for r in results)
    assert 0 < fetched < 300, f"an incremental sync re-read {fetched} of 1000 returns"
    moved = 0
    for account in sandbox_accounts:
        after = truth_view(sandbox, account.shop_id)
        assert store_view(db, account.shop_id) == after
        moved += sum(1 for rid, row in after.items() if rid in before[account.shop_id]
                     and row[0] != before[account.shop_id][rid][0])
    assert moved > 0, "the sandbox moved no return in 6 hours; the test proves nothing"
    assert history_count(db, "marketplace_status") == moved
@pytest.mark.sandbox(returns=300)
def test_a_sync_that_dies_halfway_keeps_its_pages_and_the_next_one_completes(db, sandbox, sandbox_accounts,
                                                                            one_page_at_a_time):
    account = sandbox_accounts[0]

    def break_after_three_pages(p: SyncProgress) -> None:
        if p.pages == 3:
            sandbox.faults.inject("500", count=100)

    failed = sync_account(db, account, on_progress=break_after_three_pages, retry=FAST_RETRY)
    assert failed.error and "server error" in failed.error
    # pages fetched ahead before the fault are still committed; nothing after it
    assert 3 <= failed.pages <= 5 and len(store_view(db, account.shop_id)) == 50 * failed.pages
    mark = watermark(db, account.shop_id)
    assert mark is not None
    sandbox.faults.clear()

    again = sync_account(db, account)
    truth = truth_view(sandbox, account.shop_id)
    assert again.ok and again.pages < len(truth) // 50
    assert store_view(db, account.shop_id) == truth
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM returns WHERE shop_id = ?", [account.shop_id]).fetchone() == (
            len(truth),)
        assert con.execute("SELECT state FROM sync_runs ORDER BY id").fetchall() == [("failed",), ("ok",)]
        assert con.execute("SELECT count(*) FROM history WHERE kind = 'created'").fetchone() == (len(truth),)
@pytest.mark.sandbox(returns=200)
def test_full_sync_rereads_everything_and_deletes_nothing(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    sync_account(db, account)
    sample.write_returns(db, account.shop_id, [sample.tiktok_return("only-here")])  # TikTok no longer lists it
    result = sync_account(db, account, full=True)
    n = len(sandbox.returns_for(account.shop_id))
    assert result.ok and result.fetched == n and result.new == 0 and result.full
    assert "only-here" in store_view(db, account.shop_id)
    assert len(store_view(db, account.shop_id)) == n + 1
@pytest.mark.sandbox(returns=100)
def test_a_second_sync_of_the_same_account_is_refused(db, sandbox_accounts):
    account = sandbox_accounts[0]
    first_page = threading.Event()
    release = threading.Event()

    def hold(p: SyncProgress) -> None:
        first_page.set()
        release.wait(10)

    worker = threading.Thread(target=sync_account, args=(db, account), kwargs={"on_progress": hold})
    worker.start()
    try:
        assert first_page.wait(10)
        refused = sync_account(db, account)
        assert refused.error == f"A sync of {account.name} is already running"
        assert refused.run_id is None
        other = sync_account(db, sandbox_accounts[1])  # another account is not blocked
        assert other.ok
    finally:
        release.set()
        worker.join(20)
    assert sync_account(db, account).ok  # the lock is released afterwards
@pytest.mark.sandbox(returns=50)
def test_the_lock_is_per_account_and_exclusive(db, sandbox_accounts):
    with account_lock(db, sandbox_accounts[0]):
        assert "already running" in sync_account(db, sandbox_accounts[0]).error
@pytest.mark.sandbox(returns=50)
def test_a_revoked_token_marks_the_account_invalid(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    with tiktok_session(db, account) as client:
        token = client._access_token
        refresh = client._refresh_token
    sandbox.revoke(token)
    sandbox.revoke(refresh)
    result = sync_account(db, account)
    assert result.error == REAUTH_REASON
    assert acc.get_account(db, account.shop_id).status == "Invalid"
    assert acc.get_account(db, account.shop_id).auth_error == REAUTH_REASON
    with db.reader() as con:
        assert con.execute("SELECT state, error FROM sync_runs").fetchall() == [("failed", REAUTH_REASON)]
@pytest.mark.sandbox(returns=300)
def test_an_expired_token_mid_sync_is_refreshed_and_the_new_one_saved_encrypted(db, sandbox, sandbox_accounts,
                                                                                one_page_at_a_time):
    account = sandbox_accounts[0]
    with tiktok_session(db, account) as client:
        old_access, old_refresh = client._access_token, client._refresh_token

    def expire_after_page_one(p: SyncProgress) -> None:
        # at most pages 2 and 3 are fetched ahead by now: pages 4+ meet the expired token
        if p.pages == 1:
            sandbox.expire_access_token(old_access)

    result = sync_account(db, account, on_progress=expire_after_page_one)
    assert result.ok and result.new == len(sandbox.returns_for(account.shop_id))
    with tiktok_session(db, account) as client:
        new_access, new_refresh = client._access_token, client._refresh_token
    assert (new_access, new_refresh) != (old_access, old_refresh)
    assert new_refresh != old_refresh, "TikTok rotates the refresh token: the new one must be kept"
    assert acc.get_account(db, account.shop_id).status == "Active"
    raw = db.path.read_bytes() + (db.path.with_name(db.path.name + ".wal").read_bytes()
                                  if db.path.with_name(db.path.name + ".wal").exists() else b"")
    for token in (old_access, old_refresh, new_access, new_refresh):
        assert token.encode() not in raw
@pytest.mark.sandbox(returns=200)
def test_progress_reports_every_page_then_done(db, sandbox, sandbox_accounts):
    seen: list[SyncProgress] = []
    sync_account(db, sandbox_accounts[0], on_progress=seen.append)
    n = len(sandbox.returns_for(sandbox_accounts[0].shop_id))
    pages = -(-n // 50)
    counts = [p.pages for p in seen]
    # one report per commit (pages fetched meanwhile are committed together), then a final one
    assert counts == sorted(counts) and counts[0] >= 1 and counts[-2:] == [pages, pages]
    assert seen[-1].done and seen[-1].error is None and seen[-1].new == n and seen[0].total_count == n
@pytest.mark.sandbox(returns=50)
def test_a_disabled_account_is_not_synced(db, sandbox_accounts):
    disabled = acc.set_enabled(db, sandbox_accounts[0].name, False)
    assert "disabled" in sync_account(db, disabled).error
    assert [r.shop_id for r in sync_accounts(db)] == [sandbox_accounts[1].shop_id]
@pytest.mark.sandbox(returns=50)
def test_network_down_fails_readably_and_keeps_the_account_active(db, sandbox_accounts, sandbox_server):
    account = sandbox_accounts[0]
    with db.writer() as con:
        con.execute("UPDATE accounts SET api_base = 'http://127.0.0.1:9', auth_base = 'http://127.0.0.1:9'")
    result = sync_account(db, acc.get_account(db, account.shop_id), retry=FAST_RETRY)
    assert result.error.startswith("Cannot reach TikTok")
    assert acc.get_account(db, account.shop_id).status == "Active"
@pytest.mark.sandbox(returns=50)
def test_sync_return_and_records(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    truth = sandbox.returns_for(account.shop_id)[0]
    counts = sync_return(db, account, truth["return_id"])
    assert counts.new == 1
    assert store_view(db, account.shop_id) == {truth["return_id"]: truth_view(sandbox, account.shop_id)[
        truth["return_id"]]}
    assert watermark(db, account.shop_id) is None  # one return says nothing about the others
    assert fetch_records(db, account, truth["return_id"]) >= 1
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM return_records").fetchone()[0] >= 1


@pytest.mark.sandbox(returns=100)
@pytest.mark.parametrize("kind", ["429", "500", "503", "malformed", "truncate", "reset"])
def test_transient_faults_are_retried_within_a_sync(db, sandbox, sandbox_accounts, kind):
    sandbox.faults.inject(kind, count=2, retry_after=0.01)
    result = sync_account(db, sandbox_accounts[0], retry=RetryPolicy(max_attempts=4, base_delay=0.01,
                                                                     max_delay=0.05))
    assert result.ok and result.new == len(sandbox.returns_for(sandbox_accounts[0].shop_id))


@pytest.mark.sandbox(returns=50)
def test_a_wrong_local_clock_fails_the_sync_but_does_not_invalidate_the_account(db, sandbox_accounts):
    account = sandbox_accounts[0]
    result = sync_account(db, account, clock=lambda: time.time() + 3600)
    assert result.error.startswith(CLOCK_REASON)
    assert acc.get_account(db, account.shop_id).status == "Active"


@pytest.mark.sandbox(returns=50)
def test_the_sync_lock_dies_with_its_process(db, sandbox_accounts):
    account = sandbox_accounts[0]
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from returns_core.store.db import Database\n"
         "from returns_core.accounts import get_account\n"
         "from returns_core.sync import account_lock\n"
         f"db = Database({str(db.path)!r}, key={db._key!r})\n"
         f"with account_lock(db, get_account(db, {account.shop_id!r})):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(60)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert sync_account(db, account).error == f"A sync of {account.name} is already running"
    finally:
        holder.kill()
        holder.wait(10)
    assert sync_account(db, account).ok


@pytest.mark.sandbox(returns=50)
def test_a_changed_encryption_key_fails_the_sync_readably(db, sandbox_accounts):
    other_key = Database(db.path, key="A" * 43 + "=")
    result = sync_account(other_key, sandbox_accounts[0])
    assert result.error.startswith("Stored credentials cannot be decrypted with this key")
    with db.reader() as con:
        assert con.execute("SELECT state FROM sync_runs").fetchall() == [("failed",)]


def test_page_writes_pause_only_while_another_process_waits(db):
    from returns_core.store import db as store_db

    slept: list[tuple[float, bool]] = []
    share = db.hold(sleep=lambda s: slept.append((s, share.holding)))
    with share:
        share.before_write()
        assert slept == [] and share.holding  # nobody waits: no pause, and the file stays open for the next write
        db.path.with_name(db.path.name + ".waiting").write_text("999999")  # another process signals
        share.before_write()
        assert slept == [(store_db.YIELD_S, False)]  # the file was closed during the pause
        assert share.holding
    assert not share.holding
    assert store_db.YIELD_S > store_db.MAX_RETRY_DELAY_S * 1.5  # longer than the waiter's retry interval + jitter


