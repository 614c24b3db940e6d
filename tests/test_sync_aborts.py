"""A sync round that cannot finish: every account still gets its outcome, and no run stays "running".

- The store cannot be written (a full disk) in the middle of a CLI sync of two accounts: the
  account it hit fails with a one-line reason and keeps the pages it committed, the other account
  syncs (or fails with its own line), the exit status says how many failed, and no traceback.
- A run whose outcome could not be written, or whose process was SIGKILLed, is closed as
  interrupted when the next sync round or the app starts; a run whose sync is alive is left alone.

The full disk is injected at the store layer (`FullDisk`: the store's one write path, as DuckDB
fails a commit that cannot reach the disk); the syncs talk real HTTP to the served sandbox.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable

import duckdb
import pytest

from returns_core import cli
from returns_core.store import sync_runs
from returns_core.store.db import Database
from returns_core.store.sync_runs import INTERRUPTED_REASON
from returns_core.sync import accounts_to_sync, sync_account, sync_accounts
from tests.apptest import open_app
from tests.reliability import SearchGate, run_cli, stored_payloads, truth_payloads, wait_for_line


class FullDisk:
    """The store's disk fills up while account `shop_id` commits its page `at_page`: that commit fails as
    DuckDB fails it, and so does every write after it until `free()` (or only that one, `stays_full=False`)."""

    def __init__(self, monkeypatch, shop_id: str, at_page: int, *, stays_full: bool = True,
                 on_full: Callable[[], None] = lambda: None):
        self.full, self.failed_writes, self._on_full = False, 0, on_full
        real_writer, real_add_pages = Database.writer, sync_runs.add_pages

        def add_pages(con, runs) -> None:  # inside the pages' own transaction
            real_add_pages(con, runs)
            for run_id, *_ in runs:
                shop, done = con.execute("SELECT shop_id, pages FROM sync_runs WHERE id = ?", [run_id]).fetchone()
                if shop == shop_id and done >= at_page and not self.failed_writes:
                    self.full = True

        @contextlib.contextmanager
        def writer(db: Database):
            if self.full:
                raise self._no_space(db)
            with real_writer(db) as con:
                yield con
                if self.full:  # the commit cannot reach the disk: DuckDB rolls back and raises
                    self.full = stays_full
                    raise self._no_space(db)

        monkeypatch.setattr(sync_runs, "add_pages", add_pages)
        monkeypatch.setattr(Database, "writer", writer)

    def _no_space(self, db: Database) -> duckdb.Error:
        self.failed_writes += 1
        self._on_full()
        return duckdb.TransactionException(
            f'TransactionContext Error: Failed to commit: Could not write file "{db.path}.wal": '
            "No space left on device")

    def free(self) -> None:
        self.full = False


class ShopGate(SearchGate):
    """A SearchGate for one shop's Search Returns: the other shops' are answered at once."""

    def __init__(self, sandbox, shop_cipher: str, let_through: int = 1):
        self._cipher = shop_cipher  # before the gate goes up
        super().__init__(sandbox, let_through)

    def _gated(self, method, path, query, *args, **kwargs):
        if dict(query).get("shop_cipher") != self._cipher:
            return self._answer(method, path, query, *args, **kwargs)
        return super()._gated(method, path, query, *args, **kwargs)


def runs(db: Database) -> list[tuple]:
    with db.reader() as con:
        return con.execute("SELECT shop_id, state, error FROM sync_runs ORDER BY id").fetchall()


def cli_sync(db: Database, capsys, *args: str) -> tuple[int, list[str], str]:
    """`sync` through the CLI's own entry point: (exit status, stdout lines, stderr)."""
    status = cli.main(["--db", str(db.path), "sync", *args])
    captured = capsys.readouterr()
    return status, captured.out.strip().splitlines(), captured.err


def line_of(lines: list[str], account) -> str:
    """The account's outcome line (shops sync side by side, so lines come in the order they finish)."""
    found = [line for line in lines if line.startswith(f"{account.name}: ")]
    assert len(found) == 1, lines
    return found[0]


@pytest.fixture
def two_accounts(db, db_key, sandbox_accounts, monkeypatch):
    """The sandbox's two shops, in the order a sync round takes them; the CLI opens `db` with its key."""
    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    chosen = accounts_to_sync(db)
    assert len(chosen) == 2
    return chosen


@pytest.mark.sandbox(returns=120)
def test_one_failed_write_fails_that_account_only_and_its_run_is_closed_as_failed(
        db, sandbox, two_accounts, one_page_at_a_time, monkeypatch, capsys):
    first, second = two_accounts
    disk = FullDisk(monkeypatch, first.shop_id, at_page=2, stays_full=False)

    status, lines, err = cli_sync(db, capsys)
    assert disk.failed_writes == 1
    assert status == 1 and len(lines) == 2, lines
    failed, synced = line_of(lines, first), line_of(lines, second)
    assert failed.startswith(f"{first.name}: 1 page(s), 50 new, 0 updated, 0 unchanged")
    assert "FAILED: Could not write to the database (" in failed and "No space left on device" in failed
    assert synced.startswith(f"{second.name}: 3 page(s), 120 new") and "FAILED" not in synced
    assert err.strip().splitlines()[-1] == "error: 1 of 2 account(s) failed to sync (see above)"
    assert "Traceback" not in err

    (shop_a, state_a, error_a), second_run = runs(db)
    assert (shop_a, state_a) == (first.shop_id, "failed") and error_a in failed
    assert second_run == (second.shop_id, "ok", None)
    # the page committed before the failure is kept, and the next sync completes the account exactly
    assert len(stored_payloads(db, first.shop_id)) == 50
    assert sync_account(db, first, trigger="test").ok
    assert stored_payloads(db, first.shop_id) == truth_payloads(sandbox, first.shop_id)


@pytest.mark.sandbox(returns=120)
def test_a_disk_that_stays_full_gives_every_account_its_line_and_the_next_start_closes_the_run(
        db, sandbox, two_accounts, one_page_at_a_time, monkeypatch, capsys):
    first, second = two_accounts
    # the second shop's next page waits until the disk is full, so it has pages left to write then
    gate = ShopGate(sandbox, second.shop_cipher)
    disk = FullDisk(monkeypatch, first.shop_id, at_page=2, on_full=gate.release)

    status, lines, err = cli_sync(db, capsys)
    assert status == 1 and len(lines) == 2, lines
    assert line_of(lines, first).startswith(f"{first.name}: 1 page(s), 50 new")
    for account in (first, second):  # the second synced beside the first, until the disk filled
        assert "FAILED: Could not write" in line_of(lines, account)
    assert err.strip().splitlines()[-1] == "error: 2 of 2 account(s) failed to sync (see above)"
    assert "Traceback" not in err
    # not even the outcomes could be written: the runs are left "running"
    assert [(shop, state) for shop, state, _ in runs(db)] == [(first.shop_id, "running"),
                                                              (second.shop_id, "running")]

    disk.free()
    status, lines, _ = cli_sync(db, capsys, "--account", second.name)  # the next start
    assert status == 0, lines
    assert runs(db) == [(first.shop_id, "failed", INTERRUPTED_REASON), (second.shop_id, "failed", INTERRUPTED_REASON),
                        (second.shop_id, "ok", None)]


@pytest.fixture
def held_sync(db, db_key, sandbox, two_accounts, cli_env):
    """A CLI sync of the first account, alive and held mid-sync by the sandbox: (process, account, gate)."""
    first = two_accounts[0]
    gate = ShopGate(sandbox, first.shop_cipher)
    proc = run_cli(db, {**cli_env, "RETURNS_DESK_KEY": db_key}, "sync", "--account", first.name)
    err: list[str] = []
    try:
        wait_for_line(proc, ": page 1,", err)
        assert gate.wait_held(), "the sync never asked for its second page"
        yield proc, first, gate
    finally:
        gate.release()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@pytest.mark.sandbox(returns=120)
def test_a_run_killed_mid_sync_is_closed_when_the_next_sync_of_another_account_starts(
        db, two_accounts, held_sync, capsys):
    proc, first, _ = held_sync
    second = two_accounts[1]
    # a live sync's run is left alone: another account's sync starts meanwhile
    status, lines, _ = cli_sync(db, capsys, "--account", second.name)
    assert status == 0, lines
    assert runs(db) == [(first.shop_id, "running", None), (second.shop_id, "ok", None)]

    proc.kill()  # SIGKILL: no chance to write its outcome
    proc.wait(30)
    assert runs(db)[0] == (first.shop_id, "running", None)
    status, lines, _ = cli_sync(db, capsys, "--account", second.name)
    assert status == 0, lines
    assert runs(db) == [(first.shop_id, "failed", INTERRUPTED_REASON), (second.shop_id, "ok", None),
                        (second.shop_id, "ok", None)]


@pytest.mark.sandbox(returns=120)
def test_a_run_killed_mid_sync_is_closed_when_the_app_starts(db, two_accounts, held_sync, monkeypatch):
    proc, first, _ = held_sync
    proc.kill()
    proc.wait(30)
    assert runs(db) == [(first.shop_id, "running", None)]
    monkeypatch.setenv("RETURNS_DB", str(db.path))  # the key is in RETURNS_DESK_KEY (two_accounts)
    open_app()
    assert runs(db) == [(first.shop_id, "failed", INTERRUPTED_REASON)]


@pytest.mark.sandbox(returns=60)
def test_a_bug_in_one_account_or_an_interrupt_still_gives_every_account_its_outcome(db, two_accounts):
    first, second = two_accounts
    heard: list = []

    def break_on(account, exc: BaseException):
        def on_progress(p) -> None:
            if p.shop_id == account.shop_id and not p.done:
                raise exc
        return on_progress

    results = sync_accounts(db, on_progress=break_on(first, RuntimeError("a bug")), on_result=heard.append,
                            trigger="test")
    assert sorted(results, key=id) == sorted(heard, key=id) and [r.account for r in results] == [first.name,
                                                                                                  second.name]
    assert results[0].error == "Unexpected RuntimeError: a bug" and results[1].ok

    # an interrupt while both shops sync: both runs are closed, both say so
    heard.clear()
    with pytest.raises(KeyboardInterrupt):
        sync_accounts(db, full=True, on_progress=break_on(first, KeyboardInterrupt()), on_result=heard.append,
                      trigger="test")
    assert sorted((r.account, r.error) for r in heard) == sorted([
        (first.name, "Interrupted (KeyboardInterrupt)"), (second.name, "Interrupted (KeyboardInterrupt)")])
    assert all(state != "running" for _, state, _ in runs(db))  # the interrupted runs are closed as failed

    # one shop at a time: the account the interrupt never reached says it was not synced
    heard.clear()
    with pytest.raises(KeyboardInterrupt):
        sync_accounts(db, full=True, concurrency=1, on_progress=break_on(first, KeyboardInterrupt()),
                      on_result=heard.append, trigger="test")
    assert [(r.account, r.error) for r in heard] == [
        (first.name, "Interrupted (KeyboardInterrupt)"),
        (second.name, "Not synced: the sync was interrupted before this account")]
    assert all(state != "running" for _, state, _ in runs(db))
