"""While another process upgrades the store, the others say so (issue 15, item 14).

Upgrading a store of a million returns takes longer than the 30 s a unit of work waits for the
file. Meanwhile a cron sync or a page load must say "the store is being upgraded to this version"
with how far it is, not a bare "busy". The upgrading process keeps `<db>.upgrading` up to date;
a marker left behind by a killed upgrade goes stale and is ignored.

The upgrade here runs in a real second process, held at its first step until the test lets it go
(its stdin), so it is mid-upgrade for exactly as long as the test needs.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from cryptography.fernet import Fernet

from returns_core.store import db as store_db
from returns_core.store.schema import MIGRATIONS
from tests.apptest import new_session
from tests.conftest import PYTHON, ROOT, wait_until
from tests.reliability import version_1_store
from tests.test_cli import in_process

KEY = Fernet.generate_key().decode()
STEPS = len(MIGRATIONS) - 1  # a version 1 store has every later migration to apply

# The upgrade as `Database.migrate` runs it, held before each step until a line arrives on stdin.
UPGRADER = """
import sys
from returns_core.store import db as store_db

apply = store_db._apply_migration

def held(con, version, sql):
    print("upgrading", flush=True)
    sys.stdin.readline()
    apply(con, version, sql)

store_db._apply_migration = held
store_db.Database(sys.argv[1], key=sys.argv[2]).migrate()
print("done", flush=True)
"""


@pytest.fixture
def upgrading(tmp_path, cli_env, monkeypatch):
    """A version 1 store that another process is upgrading (held at step 1); the waiters here wait 1 s."""
    store = version_1_store(tmp_path / "old.duckdb", "7000000001")
    proc = subprocess.Popen([PYTHON, "-c", UPGRADER, str(store), KEY], cwd=ROOT, env=cli_env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said: list[str] = []
    threading.Thread(target=lambda: said.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    wait_until(lambda: "upgrading\n" in said or proc.poll() is not None, "the other process to start upgrading")
    assert proc.poll() is None, proc.stderr.read()
    monkeypatch.setattr(store_db, "LOCK_TIMEOUT_S", 1.0)
    monkeypatch.setenv("RETURNS_DESK_KEY", KEY)
    yield store, proc, said
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def finish(proc: subprocess.Popen, said: list[str]) -> None:
    proc.stdin.close()  # every held step goes on
    assert proc.wait(60) == 0, proc.stderr.read()
    wait_until(lambda: "done\n" in said, "the upgrade to finish")


def test_the_command_line_says_the_store_is_being_upgraded_with_its_progress(upgrading, monkeypatch, capsys,
                                                                             cli_env):
    store, proc, said = upgrading
    status, out, err = in_process(monkeypatch, capsys, cli_env, "--db", str(store), "accounts", "list")
    assert (status, out) == (1, "")
    assert err.startswith(f"error: The store {store.name} is being upgraded to this version by another process "
                          f"(step 1 of {STEPS}, running for ") and err.count("\n") == 1
    assert f"; {store_db.UPGRADE_TIME}). Try again when it is done." in err
    assert "busy" not in err

    finish(proc, said)
    assert not store.with_name(store.name + ".upgrading").exists(), "the marker outlived the upgrade"
    status, out, err = in_process(monkeypatch, capsys, cli_env, "--db", str(store), "accounts", "list")
    assert status == 0, err
    assert "No accounts yet" in out


def test_the_app_says_the_store_is_being_upgraded_with_its_progress(upgrading, monkeypatch):
    store, proc, said = upgrading
    monkeypatch.setenv("RETURNS_DB", str(store))
    at = new_session()
    at.run()
    assert not at.exception, at.exception
    shown = [str(e.value).replace("\\", "") for e in at.error]  # as shown: Markdown escapes removed
    assert any(f"The store {store.name} is being upgraded to this version by another process (step 1 of {STEPS}"
               in text for text in shown), shown

    finish(proc, said)
    at.run()
    assert not at.exception, at.exception
    assert not any("being upgraded" in str(e.value) for e in at.error)


def test_a_marker_left_by_a_killed_upgrade_is_not_taken_for_an_upgrade(tmp_path):
    store = tmp_path / "returns.duckdb"
    store_db.Database(store, key=KEY).migrate()
    marker = store.with_name(store.name + ".upgrading")
    marker.write_text('{"pid": 1, "started": 0, "step": 1, "steps": 3, "percent": 10}')
    stale = time.time() - store_db.UPGRADE_STALE_S - 1
    os.utime(marker, (stale, stale))
    # another process holding the file (a sync, as far as the lock goes) until its stdin closes
    holder = subprocess.Popen([PYTHON, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', "
                               "flush=True); sys.stdin.readline()", str(store)], text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(store_db.StoreBusyError) as refused:
            store_db.Database(store, key=KEY, lock_timeout=0.3).upgrade_pending()
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert not isinstance(refused.value, store_db.StoreUpgradingError)
    assert str(refused.value).startswith(f"The database {store.name} is busy")
