"""Crash safety and durability: SIGKILL a sync, SIGKILL a big write, restore a backup.

- `python -m returns_core --db X sync` against a served sandbox of 2000 returns is killed with
  SIGKILL at seeded random points, five times. After each kill the store opens, holds no
  duplicate, every stored return is exactly TikTok's, nothing older than the watermark is missing
  and the watermark is the newest committed update_time; the next sync completes and the store
  then equals the sandbox's truth, with the watermark at its newest update_time.
- A process killed in the middle of a big write transaction leaves a file that opens and holds
  exactly the last committed state (also when that state was only in the WAL).
- backup() of a synced store restores to an equal, usable store.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from returns_core.store import history
from returns_core.store.backup import backup
from returns_core.store.db import Database
from returns_core.store.sync_runs import INTERRUPTED_REASON, watermark
from returns_core.sync import sync_account
from tests.conftest import ROOT, wait_until
from tests.reliability import (
    all_tables,
    connect,
    duplicates,
    steady_clock,
    stored_payloads,
    truth_payloads,
    update_times,
)

KILLS = 5
SEED = 20260611  # the kill points are random, but the same on every run


def cli(db_path: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "returns_core", "--db", str(db_path), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after_page(proc: subprocess.Popen, page: int, extra_delay: float) -> tuple[bool, str]:
    """SIGKILL `proc` once it has used `extra_delay` s of CPU after reporting page `page` (or later) committed.

    Returns (whether it was still running when killed, its stderr)."""
    lines: list[str] = []
    reached = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r": page (\d+),", line)
            if found and int(found.group(1)) >= page:
                reached.set()
        reached.set()  # the stream ended: the process finished (or died) first

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert reached.wait(120), "the sync reported no page"
    # the kill point is measured in the sync's own CPU time, so it lands at the same place in its work
    # on an idle machine and on a busy one
    with contextlib.suppress(OSError):
        at_page = cpu_seconds(proc.pid)
        wait_until(lambda: proc.poll() is not None or cpu_seconds(proc.pid) - at_page >= extra_delay,
                   "the kill point", every=0.005)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    reader.join(10)
    return killed, "".join(lines)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_latency(sandbox, seconds: float) -> None:
    """Every Search Returns answer comes `seconds` late (0: as fast as it can, so the sync batches pages)."""
    sandbox.faults.clear()
    if seconds:
        sandbox.faults.inject("timeout", count=10**6, delay=seconds, path_prefix="/return_refund/")


@pytest.fixture
def big_world(make_sandbox):
    """One shop with 2000 returns, world frozen, served over HTTP."""
    sandbox = make_sandbox(shops=1, returns=2000, wall_clock=steady_clock())
    with sandbox.serve() as server:
        yield sandbox, server


def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(db, db_key, big_world, cli_env):
    sandbox, server = big_world
    account, _ = connect(db, sandbox, server.url)
    truth = truth_payloads(sandbox, account.shop_id)
    truth_times = update_times(truth)
    assert len(truth) >= 2000
    env = {**cli_env, "RETURNS_DESK_KEY": db_key}
    rng = random.Random(SEED)
    stored_before = 0
    kills = 0  # of a sync that had not stored everything yet
    for _ in range(KILLS):
        # kill points: during a page's fetch, its write, a many-page transaction (no latency), the bookkeeping
        latency, page, delay = rng.choice([0.0, 0.02, 0.04]), rng.randint(1, 8), rng.uniform(0.0, 0.15)
        set_latency(sandbox, latency)
        killed, stderr = kill_after_page(cli(db.path, env, "sync"), page, delay)
        assert "Traceback" not in stderr

        # the store opens, and holds a clean prefix of TikTok's returns
        stored = stored_payloads(db, account.shop_id)
        kills += killed and len(stored) < len(truth)
        assert all(v == 0 for v in duplicates(db).values())
        assert {rid: truth[rid] for rid in stored} == stored, "a stored return differs from TikTok's"
        assert len(stored) >= stored_before, "a crash lost committed returns"
        stored_before = len(stored)
        mark = watermark(db, account.shop_id)
        if stored:
            newest = max(update_times(stored).values())
            assert mark == newest, "the watermark must be the newest update_time committed"
            missing = {rid for rid, t in truth_times.items() if t < mark} - set(stored)
            assert not missing, f"{len(missing)} returns older than the watermark were skipped"
        else:
            assert mark is None
    assert kills >= 3, "the syncs finished before the kills: the test proved nothing"

    set_latency(sandbox, 0)
    final = cli(db.path, env, "sync")
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    assert "Traceback" not in err
    assert stored_payloads(db, account.shop_id) == truth
    assert watermark(db, account.shop_id) == max(truth_times.values())
    assert all(v == 0 for v in duplicates(db).values())
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM history WHERE kind = 'created'").fetchone()[0] == len(truth)
        line_items = con.execute("SELECT count(*) FROM return_line_items").fetchone()[0]
        runs = con.execute("SELECT state, error FROM sync_runs ORDER BY id").fetchall()
    assert line_items == sum(len(json.loads(p).get("return_line_items") or []) for p in truth.values())
    # a killed run is not left "running" forever in the sync history: the next sync closes it as interrupted
    assert runs[-1] == ("ok", None)
    assert runs.count(("failed", INTERRUPTED_REASON)) >= kills
    assert len(runs) == KILLS + 1 and set(runs) <= {("ok", None), ("failed", INTERRUPTED_REASON)}


WRITER = textwrap.dedent("""
    import sys, time
    from returns_core.store.db import Database

    path, key, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    db = Database(path, key=key)
    INSERT = '''
        INSERT INTO returns (shop_id, return_id, order_id, status, refund_total, payload, first_seen_at,
                             last_synced_at)
        SELECT 'shop', ? || '-' || i, 'order-' || i, 'Requested', (i % 1000) / 100,
               '{"n":' || i || ',"pad":"' || repeat('x', 200) || '"}',
               TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01'
        FROM range(?) t(i)'''
    with db.writer() as con:  # committed, and checkpointed when the connection closes
        con.execute(INSERT, ['a', batch])
    with db.reader():  # like an app serving users: the file stays open, so the next commit is only in the WAL
        with db.writer() as con:
            con.execute(INSERT, ['b', batch])
        print('committed', flush=True)
        with db.writer() as con:  # the big one, never committed
            print('writing', flush=True)
            con.execute(INSERT, ['c', 20_000_000])
            print('finished?!', flush=True)
""")


def test_sigkill_in_the_middle_of_a_big_write_keeps_exactly_the_last_committed_state(db, db_key, cli_env):
    script = db.path.parent / "writer.py"
    script.write_text(WRITER)
    batch = 5000
    proc = subprocess.Popen([sys.executable, str(script), str(db.path), db_key, str(batch)], cwd=ROOT, env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "committed"
    assert proc.stdout.readline().strip() == "writing"
    wal = db.path.with_name(db.path.name + ".wal")
    assert wal.exists(), "the second commit should sit in the WAL, not yet in the file"
    # well into the 20-million-row insert: it has worked half a CPU second since it began, however busy
    # the machine is (the insert takes many seconds of CPU; a kill then lands in its middle)
    started = cpu_seconds(proc.pid)
    wait_until(lambda: proc.poll() is not None or cpu_seconds(proc.pid) - started >= 0.5,
               "the writer to be well into its insert")
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    with db.reader() as con:
        counts = dict(con.execute("SELECT split_part(return_id, '-', 1), count(*) FROM returns GROUP BY 1").fetchall())
        exact = con.execute(
            "SELECT count(*) FROM returns WHERE payload = '{\"n\":' || split_part(return_id, '-', 2) || ',\"pad\":\"' "
            "|| repeat('x', 200) || '\"}' AND order_id = 'order-' || split_part(return_id, '-', 2)").fetchone()[0]
    assert counts == {"a": batch, "b": batch}
    assert exact == 2 * batch
    assert all(v == 0 for v in duplicates(db).values())
    # and the store keeps working: a write after the crash commits and reads back
    with db.writer() as con:
        con.execute("INSERT INTO settings VALUES ('after-crash', 'ok', now())")
    with db.reader() as con:
        assert con.execute("SELECT value FROM settings WHERE key = 'after-crash'").fetchone() == ("ok",)


def test_backup_of_a_synced_store_restores_to_an_equal_usable_store(db, db_key, make_sandbox, tmp_path):
    sandbox = make_sandbox(shops=1, returns=150, wall_clock=steady_clock())
    with sandbox.serve() as server:
        account, _ = connect(db, sandbox, server.url)
        assert sync_account(db, account, trigger="test").ok
        with db.writer() as con:
            keys = con.execute("SELECT shop_id, return_id FROM returns LIMIT 3").fetchall()
            history.append(con, [history.entry(shop_id, return_id, "ana@example.com", "note", note="checked 'it' 📦")
                                 for shop_id, return_id in keys])
        original = all_tables(db)
        result = backup(db, tmp_path / "audit")
        assert result.row_counts["returns"] == len(original["returns"]) >= 150
        assert {t: len(rows) for t, rows in original.items()} == result.row_counts

        con = duckdb.connect(str(tmp_path / "restored.duckdb"))
        con.execute(f"IMPORT DATABASE '{tmp_path / 'audit'}'")
        con.close()
        restored = Database(tmp_path / "restored.duckdb", key=db_key)
        assert all_tables(restored) == original

        # the restored store is a working store: same key opens its tokens, a sync adds to it
        sandbox.advance(3 * 86400)
        again = sync_account(restored, account, trigger="test")
        assert again.ok, again.error
        assert stored_payloads(restored, account.shop_id) == truth_payloads(sandbox, account.shop_id)
