"""Concurrent use: two syncs of one account, and a CLI sync while another process reads the store.

DuckDB lets one process hold the file at a time; the store opens it per unit of work and waits
on the lock, so a scheduled sync and the app coexist. Here: the second sync of an account is
refused with a clear message (threads and processes); a reader process hammering the store
during a CLI sync never sees an error, never sees half a page; and "Could not set lock" never
reaches a user.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from returns_core import cli
from returns_core.store.db import Database, StoreBusyError
from returns_core.sync import SyncProgress, sync_account
from tests.conftest import wait_until
from tests.reliability import (
    LOCK_TEXT,
    SearchGate,
    connect,
    dump,
    duplicates,
    run_cli,
    steady_clock,
    stored_payloads,
    truth_payloads,
    wait_for_line,
)


@pytest.fixture
def world(make_sandbox):
    """One shop, 1000 returns (20 pages), served over HTTP; (sandbox, server)."""
    sandbox = make_sandbox(shops=1, returns=1000, wall_clock=steady_clock())
    with sandbox.serve() as server:
        yield sandbox, server


def assert_synced_exactly(db: Database, sandbox, shop_id: str) -> None:
    assert stored_payloads(db, shop_id) == truth_payloads(sandbox, shop_id)
    assert all(v == 0 for v in duplicates(db).values())


# --- two syncs of one account ---------------------------------------------------------------------


def test_two_threads_syncing_one_account_at_once_one_runs_the_other_is_refused_clearly(db, world):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    gate = SearchGate(sandbox, let_through=0)  # whichever sync gets in waits for its first page
    start = threading.Barrier(2)
    results = []

    def run() -> None:
        start.wait()
        results.append(sync_account(db, account, trigger="test"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert gate.wait_held(), "neither sync asked TikTok for a page"
        wait_until(lambda: results, "the second sync to be refused")
    finally:
        gate.release()
    for t in threads:
        t.join(120)
    ok = [r for r in results if r.ok]
    refused = [r for r in results if not r.ok]
    assert len(ok) == 1 and len(refused) == 1, [r.summary() for r in results]
    assert refused[0].error == f"A sync of {account.name} is already running"
    assert refused[0].run_id is None and refused[0].pages == 0
    with db.reader() as con:
        assert con.execute("SELECT state FROM sync_runs").fetchall() == [("ok",)]  # the refused one wrote nothing
    assert_synced_exactly(db, sandbox, account.shop_id)


def test_a_second_sync_refused_while_one_runs_then_allowed_after_it(db, world):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    in_sync, release = threading.Event(), threading.Event()

    def hold(p: SyncProgress) -> None:
        # at its first commit, whatever it holds: on a busy machine pages fetched meanwhile share it, and a
        # first report at "page 1" never comes
        if not p.done and not in_sync.is_set():
            in_sync.set()
            release.wait(120)

    first = []
    worker = threading.Thread(target=lambda: first.append(sync_account(db, account, on_progress=hold)))
    worker.start()
    try:
        assert in_sync.wait(30)
        before = dump(db)
        second = sync_account(db, account, trigger="test")
        assert second.error == f"A sync of {account.name} is already running"
        assert dump(db) == before
    finally:
        release.set()
        worker.join(120)
    assert first[0].ok, first[0].error
    third = sync_account(db, account, trigger="test")
    assert third.ok and third.new == 0
    assert_synced_exactly(db, sandbox, account.shop_id)


def test_two_cli_syncs_of_one_account_at_once_the_second_is_refused_in_one_line(db, db_key, world, cli_env):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    env = {**cli_env, "RETURNS_DESK_KEY": db_key}
    # The first sync is held at a signal, not raced: the sandbox answers its first page, then holds
    # every further Search Returns request (retries included) until the second sync has ended. So the
    # first holds its account's lock for as long as the second needs to start, however busy the machine.
    gate = SearchGate(sandbox, let_through=1)
    first = run_cli(db, env, "sync")
    first_err: list[str] = []
    try:
        first_reader = wait_for_line(first, ": page 1,", first_err)
        assert gate.wait_held(), "the first sync never asked for its second page"

        second = run_cli(db, env, "sync", "--account", account.name)
        out, err = second.communicate(timeout=240)
        # the first was still mid-sync, held at the gate, when the second ended
        assert first.poll() is None and gate.wait_held(timeout=0), "".join(first_err)
    finally:
        gate.release()
    assert second.returncode == 1
    assert f"A sync of {account.name} is already running" in out
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err + out and LOCK_TEXT not in err + out

    first.wait(240)
    first_reader.join(60)
    first_out = first.stdout.read()
    assert first.returncode == 0, "".join(first_err)
    assert "Traceback" not in "".join(first_err) and LOCK_TEXT not in "".join(first_err) + first_out
    assert_synced_exactly(db, sandbox, account.shop_id)


# --- a CLI sync while another process reads (the app) ---------------------------------------------



def test_a_cli_sync_while_another_process_reads_in_a_loop_both_succeed_without_errors(db, db_key, world, cli_env,
                                                                                    store_reader):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    env = {**cli_env, "RETURNS_DESK_KEY": db_key}
    reader = store_reader(db, db_key, env)
    seen = reader.seen  # every count the reader reported, as it reports it
    wait_until(lambda: seen, "the reader's first read")
    # the sandbox answers one page at a time, each only once the reader has seen the one before
    gate = SearchGate(sandbox, let_through=1)
    sync = run_cli(db, env, "sync")
    try:
        for pages in (1, 2, 3):
            wait_until(lambda p=pages: seen and seen[-1] >= 50 * p, f"the reader to see page {pages} committed")
            gate.allow(1)
    finally:
        gate.release()
    sync_out, sync_err = sync.communicate(timeout=180)
    report, reader_out, reader_err = reader.finish()

    assert sync.returncode == 0, sync_err
    assert report["errors"] == []
    assert reader.process.returncode == 0, reader_err
    for text in (sync_out, sync_err, reader_out, reader_err):
        assert LOCK_TEXT not in text and "Traceback" not in text
    counts = report["counts"]
    assert report["reads"] >= 5, "the reader barely ran: the test proved nothing"
    assert len(set(counts)) >= 3, f"the reader never saw the sync in progress: {sorted(set(counts))}"
    # pages commit whole: a reader sees 0, 50, 100, ... returns, never half a page, never fewer later
    total = len(truth_payloads(sandbox, account.shop_id))
    assert counts == sorted(counts)
    assert all(c % 50 == 0 or c == total for c in counts), sorted(set(counts))
    assert_synced_exactly(db, sandbox, account.shop_id)


# --- the database held too long: a clear message, never DuckDB's lock text ------------------------

HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_a_database_held_past_the_wait_gives_a_clear_busy_message(db, cli_env, capsys, monkeypatch):
    script = db.path.parent / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), str(db.path), "20"], env=cli_env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        patient = Database(db.path, key="x", lock_timeout=0.5)
        patient.migrate = lambda: None  # already migrated; waiting on the lock is what is tested
        with pytest.raises(StoreBusyError) as busy, patient.reader():
            pass
        assert LOCK_TEXT not in str(busy.value) and "busy" in str(busy.value)

        # the CLI says it in one line, without a traceback
        monkeypatch.setattr(cli, "_db", lambda args: patient)
        assert cli.main(["--db", str(db.path), "accounts", "list"]) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith("error: The database ") and captured.err.count("\n") == 1
        assert LOCK_TEXT not in captured.err + captured.out and "Traceback" not in captured.err
    finally:
        holder.kill()
        holder.wait()
