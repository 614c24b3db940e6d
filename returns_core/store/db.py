"""Opening the DuckDB file: short holds, wait-and-retry on the lock, migrations.

DuckDB lets one process hold the file, and while it does no other process can even read it
(docs/streamlit_duckdb.md B3). A cron sync and the app must coexist, so nothing here keeps the
file open between units of work: `reader()` and `writer()` open it, do one thing and close it.
Inside one process, connections to the same path share one database instance, so concurrent
threads each get their own connection and DuckDB's MVCC keeps them apart.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from returns_core.secretbox import SecretBox, resolve_key
from returns_core.store.schema import MIGRATIONS

# DuckDB registers its Python table functions (python_arrow_scan...) on a new database instance
# just after putting it in its instance cache. A thread that connects in that moment gets the
# instance without them ("Table Function python_arrow_scan does not exist"), and since every
# unit of work here opens and closes the file, that moment recurs. So opening and closing are
# serialised within the process; each takes milliseconds.
_OPEN_CLOSE_LOCK = threading.Lock()

# One write path per process: whichever thread writes (a background sync, a page, the scheduler)
# takes its file's write lock for the transaction. Two transactions of one process then never
# conflict on a row, so no write needs a conflict retry. Re-entrant, so a writer may call code
# that writes on its own connection without deadlocking itself.
_WRITE_LOCKS: dict[Path, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.RLock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path.resolve(), threading.RLock())

# What upgrading a store made by an earlier version costs, for the word said before it (migration 2
# rewrites every return once: 0.6 s at 10k, 7.4 s at 100k, 73 s at 1M on 2 cores)
UPGRADE_TIME = "one time; about 8 s per 100,000 returns"

# A waiter retries at least this often, so a writer that pauses a little longer lets it in.
MAX_RETRY_DELAY_S = 0.1
# How long a long writer (a sync) leaves the file free when another process waits for it: longer
# than a waiter's retry interval (MAX_RETRY_DELAY_S), so the waiter gets its turn (see FileHold).
YIELD_S = 0.25


class StoreError(Exception):
    """A store problem worth showing to a user as one line."""


class StoreBusyError(StoreError):
    """Another process held the database for longer than we were willing to wait."""


def utcnow() -> datetime:
    """Naive UTC now, the form every TIMESTAMP column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def _close(con: duckdb.DuckDBPyConnection) -> None:
    with _OPEN_CLOSE_LOCK:
        con.close()


def _applied_migrations(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The schema versions this file has (none when it is new)."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
                       ).fetchone()[0]:
        return set()
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


class Database:
    """One DuckDB file. Thread-safe: every use opens its own connection."""

    def __init__(self, path: str | Path, *, key: str | None = None, lock_timeout: float = 30.0):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._key = key
        self._migrated = False
        self._migrate_lock = threading.Lock()

    @cached_property
    def box(self) -> SecretBox:
        """Encrypts and decrypts the secrets kept in this database (key resolved on first use)."""
        return SecretBox(resolve_key(self.path, self._key))

    @property
    def _waiting_file(self) -> Path:
        return self.path.with_name(self.path.name + ".waiting")

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting with jittered backoff while another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                with _OPEN_CLOSE_LOCK:
                    con = duckdb.connect(str(self.path))
                # DuckDB draws a progress bar on the terminal for long statements (a migration):
                # noise in the CLI's output and in cron logs
                con.execute("SET enable_progress_bar = false")
                return con
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"Cannot open the database {self.path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"The database {self.path.name} is busy: another process (a sync?) has held it for "
                        f"over {self.lock_timeout:.0f} s. Try again in a moment."
                    ) from None
                self._signal_waiting()
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, MAX_RETRY_DELAY_S)

    def _signal_waiting(self) -> None:
        """Tell the process holding the file that someone waits (see `others_waiting`)."""
        # best effort: without the signal the holder still releases the file between units
        with contextlib.suppress(OSError):
            self._waiting_file.write_text(str(os.getpid()))

    def others_waiting(self, within: float = 1.0) -> bool:
        """True when another process has waited for this file during the last `within` seconds.

        A long writer (a sync) asks this between units of work and, when true, leaves the file
        free for longer than a waiter's retry interval, so readers are never starved.
        """
        try:
            stat = self._waiting_file.stat()
            if time.time() - stat.st_mtime > within:
                return False
            return self._waiting_file.read_text().strip() != str(os.getpid())
        except (OSError, ValueError):
            return False

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.migrate()
        con = self._connect()
        try:
            yield con
        finally:
            _close(con)

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for reads, closed (and the file released) on exit."""
        with self._open() as con:
            yield con

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep this process's DuckDB instance open for a short burst of reads (one page render).

        Each `reader()` inside still opens and closes its own connection, but they share the one
        instance and its buffer cache instead of re-opening the file and re-reading its blocks per
        query. The file stays held (other processes wait) until the block ends: keep it short.
        """
        with self._open():
            yield

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one write path: a connection inside one transaction, committed on success, rolled back
        on any error, while this process's other writers wait their turn."""
        with _write_lock(self.path), self._open() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # --- reads that return plain values (the store modules' building blocks) -----------------

    def rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Every row of a query, as tuples (DECIMAL money stays Decimal)."""
        with self.reader() as con:
            return con.execute(sql, list(params)).fetchall()

    def row(self, sql: str, params: Sequence = ()) -> tuple | None:
        """The first row of a query, or None."""
        with self.reader() as con:
            return con.execute(sql, list(params)).fetchone()

    def value(self, sql: str, params: Sequence = ()) -> Any:
        """The first column of the first row, or None when there is no row."""
        found = self.row(sql, params)
        return found[0] if found else None

    def record(self, sql: str, params: Sequence = ()) -> dict[str, Any] | None:
        """The first row as {column: value}, or None."""
        with self.reader() as con:
            cur = con.execute(sql, list(params))
            found = cur.fetchone()
            return None if found is None else dict(zip([d[0] for d in cur.description], found, strict=True))

    def frame(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        """A small result as a DataFrame that keeps exact values: Decimal money, None (not NaN) text.

        Never `.df()`: it turns DECIMAL money into float.
        """
        with self.reader() as con:
            return exact_frame(con, sql, params)

    def upgrade_pending(self) -> bool:
        """True when this store has data from an older version and `migrate` will change it.

        Some upgrades rewrite every return (UPGRADE_TIME), so callers say so first. A new,
        empty store is set up in an instant and does not count.
        """
        if self._migrated or not self.path.exists():
            return False
        con = self._connect()
        try:
            done = _applied_migrations(con)
        finally:
            _close(con)
        return bool(done) and any(version not in done for version, _ in MIGRATIONS)

    def migrate(self) -> None:
        """Apply pending migrations, each in its own transaction. Cheap after the first call."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            con = self._connect()
            try:
                done = _applied_migrations(con)
                con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
                )
                for version, sql in MIGRATIONS:
                    if version in done:
                        continue
                    con.execute("BEGIN TRANSACTION")
                    try:
                        con.execute(sql)
                        con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, utcnow()])
                    except BaseException:
                        con.execute("ROLLBACK")
                        raise
                    con.execute("COMMIT")
            finally:
                _close(con)
            self._migrated = True

    def checkpoint(self) -> None:
        """Fold the WAL into the file so it is self-contained (after a sync, before a backup)."""
        with self._open() as con:
            con.execute("FORCE CHECKPOINT")

    def hold(self, sleep: Callable[[float], None] = time.sleep) -> FileHold:
        """Keep the file open across back-to-back writes, letting it go for anyone waiting (a sync's pages)."""
        return FileHold(self, sleep)


class FileHold:
    """Holds the database file open across back-to-back writes; lets it go for anyone waiting.

    Opening and closing the file cost more than writing a page, so a sync whose pages arrive
    back to back keeps it open between writes (`before_write`), and lets it go (`release`) before
    it waits on the network. Another process waiting on the lock could still starve, so when one
    signals that it waits (`Database.others_waiting`), the file is closed for YIELD_S first.
    """

    def __init__(self, db: Database, sleep: Callable[[float], None] = time.sleep):
        self._db, self._sleep = db, sleep
        self._session: contextlib.AbstractContextManager | None = None

    @property
    def holding(self) -> bool:
        """True while the file is held open."""
        return self._session is not None

    def before_write(self) -> None:
        """Make way for a waiting process if there is one, then hold the file for the next write."""
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

    def __enter__(self) -> FileHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_NUMPY_TYPES = {"BIGINT": "int64", "INTEGER": "int64", "HUGEINT": "int64", "DOUBLE": "float64",
                "BOOLEAN": "bool"}


def exact_frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence) -> pd.DataFrame:
    """Run SQL into a small DataFrame that keeps exact values: Decimal money, dates, None (not NaN) text."""
    cur = con.execute(sql, list(params))
    frame = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description], dtype=object)
    for name, kind in ((d[0], str(d[1])) for d in cur.description):
        numpy_type = _NUMPY_TYPES.get(kind)
        # counts and ratios become plain numbers; a NULL count cannot happen, a NULL ratio becomes NaN
        if numpy_type and not (numpy_type != "float64" and frame[name].isna().any()):
            frame[name] = frame[name].astype(numpy_type)
    return frame
