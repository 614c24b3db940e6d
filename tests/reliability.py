"""Helpers shared by the reliability tests (faults, crash safety, concurrency, bad input, secrets).

- `steady_clock()`: a frozen sandbox wall clock that stays valid for a long test. The sandbox
  checks signed timestamps against its wall clock and refuses one more than 30 s ahead, so a clock
  frozen at "now" breaks any test that talks to it for longer than 30 s. Freezing it a few minutes
  ahead keeps the world still and signatures valid for ~4.5 minutes.
- `connect(db, sandbox, url)`: connect the sandbox's shop(s) in `db` over real HTTP.
- `dump(db)`: the full content of the synced tables, minus the columns that record *when* we
  synced (which differ between any two syncs), sorted: two stores are "the same" when equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb

from returns_core.accounts import Account
from returns_core.connect import add_accounts_with_tokens
from returns_core.ingest import canonical_json
from returns_core.store import schema
from returns_core.store.db import Database
from returns_core.tiktok.client import RetryPolicy, TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from tests.conftest import ROOT

# retries that don't make a test sleep: 3 attempts, at most 50 ms apart
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
CLOCK_LEEWAY_S = 240  # < TikTok's 5-minute past window; leaves 270 s before "30 s ahead"
SYNCED_TABLES = ("returns", "return_line_items", "history", "sync_state")
# columns that say when a sync ran, not what it stored
_VOLATILE = {"returns": ("first_seen_at", "last_synced_at"), "history": ("id", "happened_at"),
             "sync_state": ("updated_at",)}
LOCK_TEXT = "Could not set lock"


def steady_clock() -> Callable[[], float]:
    frozen = time.time() + CLOCK_LEEWAY_S
    return lambda: frozen


class SearchGate:
    """Lets the sandbox answer only as many Search Returns requests as the test allows; the rest wait.

    A sync in another thread or process is then paused at a known point (it has committed the
    pages it was given and waits for the next one), so a test makes two syncs, or a sync and a
    reader, overlap instead of hoping they do.
    """

    def __init__(self, sandbox, let_through: int = 1, path: str = "/return_refund/"):
        self._answer, self._path = sandbox.answer, path
        self._cond = threading.Condition()
        self._allowed, self._served, self._waiting = let_through, 0, 0
        sandbox.answer = self._gated  # the HTTP server asks the instance, so this takes effect at once

    def _gated(self, method, path, *args, **kwargs):
        if path.startswith(self._path):
            with self._cond:
                self._waiting += 1
                self._cond.notify_all()
                let_in = self._cond.wait_for(lambda: self._served < self._allowed, timeout=120)
                self._waiting -= 1
                assert let_in, "the test never let the sandbox answer"
                self._served += 1
        return self._answer(method, path, *args, **kwargs)

    def wait_held(self, timeout: float = 60) -> bool:
        """Wait until a request is held at the gate (the sync asks for a page it may not have yet)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting > 0, timeout=timeout)

    def allow(self, more: int = 1) -> None:
        with self._cond:
            self._allowed += more
            self._cond.notify_all()

    def release(self) -> None:
        """Let every request through from now on."""
        self.allow(10**9)


def connect(db: Database, sandbox, url: str, name: str = "Sandbox") -> tuple[Account, TokenSet]:
    """Connect the sandbox's (first) shop as `name`; returns the account and the tokens it got."""
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    accounts = add_accounts_with_tokens(db, name, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                        tokens.refresh_token, api_base=url, auth_base=url, is_sandbox=True,
                                        tokens=tokens)
    return accounts[0], tokens


def _rows(con, table: str, *, all_columns: bool) -> list[tuple]:
    names = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]
    if not all_columns:
        names = [c for c in names if c not in _VOLATILE.get(table, ())]
    cols = ", ".join(f'"{c}"' for c in names)
    rows = con.execute(f'SELECT {cols} FROM "{table}"').fetchall()
    # lists of structs (returns.lines) come back as lists of dicts: as text, rows stay comparable in sets
    return sorted((tuple(repr(v) if isinstance(v, (list, dict)) else v for v in row) for row in rows), key=repr)


def dump(db: Database, tables: tuple[str, ...] = SYNCED_TABLES) -> dict[str, list[tuple]]:
    """The synced tables without the columns saying when we synced, each sorted."""
    with db.reader() as con:
        return {t: _rows(con, t, all_columns=False) for t in tables}


def all_tables(db: Database) -> dict[str, list[tuple]]:
    """Every table, every column: for "a rejected input changes nothing"."""
    with db.reader() as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        return {t: _rows(con, t, all_columns=True) for t in tables}


def duplicates(db: Database) -> dict[str, int]:
    """Rows beyond the first per key, by table (all zeros when the store is clean)."""
    keys = {"returns": "shop_id, return_id", "return_line_items": "shop_id, return_id, return_line_item_id"}
    out = {}
    with db.reader() as con:
        for table, key in keys.items():
            out[table] = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {table}").fetchone()[0]
        # exactly one 'created' history row per stored return, never two
        out["history.created"] = con.execute(
            "SELECT count(*) - count(DISTINCT (shop_id, return_id)) FROM history WHERE kind = 'created'").fetchone()[0]
    return out


def stored_payloads(db: Database, shop_id: str) -> dict[str, str]:
    with db.reader() as con:
        return dict(con.execute("SELECT return_id, payload FROM returns WHERE shop_id = ?", [shop_id]).fetchall())


def truth_payloads(sandbox, shop_id: str) -> dict[str, str]:
    """What a perfect sync would store: the sandbox's ground truth, serialized as the store does."""
    return {o["return_id"]: canonical_json(o) for o in sandbox.returns_for(shop_id)}


def update_times(payloads: dict[str, str]) -> dict[str, int]:
    return {rid: int(json.loads(p)["update_time"]) for rid, p in payloads.items()}


def history_kinds(db: Database) -> Counter:
    with db.reader() as con:
        return Counter(dict(con.execute("SELECT kind, count(*) FROM history GROUP BY 1").fetchall()))


def back_to_version_1(path: Path) -> None:
    """Undo every migration after version 1 in the store at `path`, as if an older Returns Desk had left it:
    the tables, columns and sequences later migrations added are dropped, and so are their versions."""
    reference = path.with_name(path.name + ".version-1")
    version_1_store(reference, "0")
    try:
        with duckdb.connect(str(reference)) as con:
            old_columns, old_sequences = _schema_objects(con)
    finally:
        reference.unlink(missing_ok=True)
        Path(str(reference) + ".wal").unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        columns, sequences = _schema_objects(con)
        for (index,) in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall():
            con.execute(f'DROP INDEX "{index}"')  # version 1 had none (and they block dropping columns)
        for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
            con.execute(f'DROP VIEW "{view}"')  # version 1 had none
        for table, names in columns.items():
            if table not in old_columns:
                con.execute(f'DROP TABLE "{table}"')
                continue
            for name in names - old_columns[table]:
                con.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
        for sequence in sequences - old_sequences:
            con.execute(f'DROP SEQUENCE "{sequence}"')
        con.execute("DELETE FROM schema_migrations WHERE version > 1")


def _schema_objects(con) -> tuple[dict[str, set[str]], set[str]]:
    """({table: its columns}, sequences) of the store open on `con`."""
    columns: dict[str, set[str]] = {}
    for table, column in con.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_schema, table_name) WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE'"
    ).fetchall():
        columns.setdefault(table, set()).add(column)
    sequences = {row[0] for row in con.execute("SELECT sequence_name FROM duckdb_sequences()").fetchall()}
    return columns, sequences


def version_1_store(path: Path, shop_id: str) -> Path:
    """A store as schema version 1 left it (before returns.lines): R1 with two line items, R2 with none."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
        con.execute(schema.MIGRATIONS[0][1])
        con.execute("INSERT INTO schema_migrations VALUES (1, now())")
        con.execute("INSERT INTO returns (shop_id, return_id, first_seen_at, last_synced_at) VALUES "
                    "(?, 'R1', now(), now()), (?, 'R2', now(), now())", [shop_id, shop_id])
        con.execute("INSERT INTO return_line_items (shop_id, return_id, return_line_item_id, sku_id, seller_sku, "
                    "product_name, refund_currency, refund_total) VALUES "
                    "(?, 'R1', 'L2', '222', NULL, 'Mug', 'USD', 2.5), (?, 'R1', 'L1', '111', 'TEE-M', 'Tee', 'USD', 1)",
                    [shop_id, shop_id])
    return path


def side_by_side(sync_one):
    """A round stand-in for jobs.SyncJobs (and sync.sync_accounts) made of a one-account stand-in: the
    accounts synced side by side, as the real round does, each progress and result reported as it comes.
    A stand-in that raises makes the round raise, after the others ended."""

    def sync_round(db, accounts, *, on_progress=None, on_result=None, trigger="app", full=False, **_):
        results: dict[int, object] = {}
        heard = threading.Lock()

        def one(position: int, account) -> None:
            try:
                result = sync_one(db, account, on_progress=on_progress, trigger=trigger, full=full)
            except BaseException as exc:  # noqa: BLE001 - raised by the round below
                results[position] = exc
                return
            with heard:
                if on_result is not None:
                    on_result(result)
            results[position] = result

        threads = [threading.Thread(target=one, args=(i, a), daemon=True) for i, a in enumerate(accounts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ordered = [results[i] for i in range(len(threads))]
        for outcome in ordered:
            if isinstance(outcome, BaseException):
                raise outcome
        return ordered

    return sync_round


# --- the CLI and a reader in other processes --------------------------------------------------


def run_cli(db: Database, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "returns_core", "--db", str(db.path), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, text: str, lines: list[str], timeout: float = 60) -> threading.Thread:
    """Read proc's stderr (on a thread, into `lines`, to its end) until a line contains `text`; returns the
    thread, to join once the process ends (then `lines` holds all of stderr)."""
    seen = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if text in line:
                seen.set()
        seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert seen.wait(timeout) and proc.poll() is None, "".join(lines)
    return reader


# A reader process: what a user's page load does, in a loop, until the stop file exists; it prints each
# count it saw and, at the end, a JSON report with its reads, counts and errors.
READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from returns_core.filters import ReturnFilters
    from returns_core.store import analytics, returns
    from returns_core.store.db import Database

    path, key, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    db = Database(path, key=key)
    counts, errors, reads = [], [], 0
    while not stop.exists():
        try:  # what a user's page load does: counts, one grid page, the analytics KPIs
            counts.append(returns.count_returns(db, ReturnFilters()))
            returns.grid_page(db, ReturnFilters(search="1"), limit=50)
            returns.status_counts(db, ReturnFilters())
            analytics.kpis(db, ReturnFilters())
            reads += 1
            print(f"saw {counts[-1]}", flush=True)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"reads": reads, "counts": counts, "errors": errors}), flush=True)
""")


class StoreReader:
    """READER in another process over `db`: `seen` holds each count it reported, as it reports it;
    `finish()` stops it and returns (its report, its stdout and stderr)."""

    def __init__(self, db: Database, db_key: str, env: dict):
        script, self._stop = db.path.parent / "reader.py", db.path.parent / "stop"
        script.write_text(READER)
        self.process = subprocess.Popen([sys.executable, str(script), str(db.path), db_key, str(self._stop)],
                                        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.seen: list[int] = []
        self._lines: list[str] = []
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        for line in self.process.stdout:
            self._lines.append(line)
            if line.startswith("saw "):
                self.seen.append(int(line.split()[1]))

    def finish(self) -> tuple[dict, str, str]:
        from tests.conftest import wait_until

        self._stop.touch()
        self.process.wait(60)
        err = self.process.stderr.read()
        wait_until(lambda: self._lines and self._lines[-1].startswith("{"), "the reader's report")
        return json.loads(self._lines[-1]), "".join(self._lines), err
