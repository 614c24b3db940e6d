"""Opening the DuckDB file: short holds, wait-and-retry on the lock, migrations.

DuckDB lets one process hold the file, and while it does no other process can even read it
(docs/streamlit_duckdb.md B3). A cron sync and the app must coexist, so nothing here keeps the
file open between units of work: `reader()` and `writer()` open it, do one thing and close it.
Inside one process, connections to the same path share one database instance, so concurrent
threads each get their own connection and DuckDB's MVCC keeps them apart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
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

# How long a unit of work waits for another process to let go of the file before saying "busy".
LOCK_TIMEOUT_S = 30.0

# Store, WAL, exports and backups hold customer data: readable by their owner only, like the key.
PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700

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

# While a process upgrades a store it rewrites `<db>.upgrading` this often with its progress; a
# marker not rewritten for UPGRADE_STALE_S is left over from an upgrade that was killed.
UPGRADE_BEAT_S = 1.0
UPGRADE_STALE_S = 10.0

# A waiter retries at least this often, so a writer that pauses a little longer lets it in.
MAX_RETRY_DELAY_S = 0.1
# How long a long writer (a sync) leaves the file free when another process waits for it: longer
# than a waiter's retry interval (MAX_RETRY_DELAY_S), so the waiter gets its turn (see FileHold).
YIELD_S = 0.25


class StoreError(Exception):
    """A store problem worth showing to a user as one line."""


class StoreBusyError(StoreError):
    """Another process held the database for longer than we were willing to wait."""


class StoreUpgradingError(StoreBusyError):
    """Another process is upgrading the store to this version's schema, and it takes a while."""


def keep_files_private() -> None:
    """From now on, every file this process creates is readable by its owner only (umask 077).

    The CLI and the app call it once at start: DuckDB creates the WAL and its spill files with
    the process's umask, so that is the only way they are never readable by others, even briefly.
    """
    os.umask(os.umask(0o077) | 0o077)


def make_private(path: Path) -> None:
    """Owner-only permissions on a file, or on a folder and everything in it (an export, a backup)."""
    if path.is_dir() and not path.is_symlink():
        for inner in path.rglob("*"):
            if not inner.is_symlink():
                os.chmod(inner, PRIVATE_FOLDER if inner.is_dir() else PRIVATE_FILE)
        os.chmod(path, PRIVATE_FOLDER)
    else:
        os.chmod(path, PRIVATE_FILE)


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


def _schema_complete(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the open file has every migration of this version (a replaced or new file may not)."""
    return _applied_migrations(con) >= {version for version, _ in MIGRATIONS}


def _apply_migration(con: duckdb.DuckDBPyConnection, version: int, sql: str) -> None:
    """One schema step in its own transaction, recorded in schema_migrations."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, utcnow()])
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class _UpgradeProgress:
    """While a store is upgraded, `<db>.upgrading` says how far (rewritten every UPGRADE_BEAT_S), so
    a process that waits for the file says "being upgraded (step 1 of 2, 40% ...)" rather than "busy"."""

    def __init__(self, con: duckdb.DuckDBPyConnection, marker: Path, steps: int):
        self._con, self._marker, self.steps, self.step = con, marker, steps, 0
        self._started = time.time()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._run, name="store-upgrade-progress", daemon=True)

    def __enter__(self) -> _UpgradeProgress:
        # DuckDB tracks a statement's progress only with its progress bar on; never printed
        self._con.execute("SET enable_progress_bar = true")
        self._con.execute("SET enable_progress_bar_print = false")
        self._write()
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._beat.join()
        with contextlib.suppress(OSError):
            self._marker.unlink()

    def _run(self) -> None:
        while not self._stop.wait(UPGRADE_BEAT_S):
            self._write()

    def _write(self) -> None:
        try:
            percent = float(self._con.query_progress())
        except duckdb.Error:
            percent = -1.0
        state = {"pid": os.getpid(), "started": self._started, "step": max(self.step, 1), "steps": self.steps,
                 "percent": percent}
        with contextlib.suppress(OSError):  # best effort: without it, waiters just say "busy"
            temporary = self._marker.with_name(self._marker.name + ".new")
            temporary.write_text(json.dumps(state))
            temporary.replace(self._marker)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(max(seconds, 0)), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


# DuckDB's words for an OS error, and its errno (so callers word it like any other file error)
_OS_REASONS = {"Permission denied": errno.EACCES, "No space left on device": errno.ENOSPC,
               "File too large": errno.EFBIG, "Read-only file system": errno.EROFS,
               "Disk quota exceeded": errno.EDQUOT, "No such file or directory": errno.ENOENT,
               "Is a directory": errno.EISDIR, "Not a directory": errno.ENOTDIR}
# the file DuckDB names (plain, or inside the JSON of an async write error), and the errno it gives
_QUOTED_FILE = re.compile(r'file \\?"(.*?)\\?"', re.IGNORECASE)
_ERRNO = re.compile(r'"errno"\s*:\s*"?(\d+)')


# DuckDB's file: three 4 KiB headers, then its blocks
_FILE_HEADERS = 3 * 4096


def _check_whole(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a store file shorter than the blocks it says it uses (cut short by a copy or a full disk).
    DuckDB reads a block only when a query needs it, so a cut-off end would otherwise show as a query
    failing later, or not at all for the pages that read only the start of the file."""
    # used blocks only: DuckDB cuts free blocks off the end of the file but still counts them in its total
    block_size, blocks = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    try:
        size = path.stat().st_size
    except OSError:
        return  # an in-memory or vanished file: what it holds is checked by the queries themselves
    if blocks and size < _FILE_HEADERS + blocks * block_size:
        raise _store_damaged(path, duckdb.IOException(
            f"the file is {size:,} bytes, its blocks need {_FILE_HEADERS + blocks * block_size:,}: truncated"))


def _store_damaged(path: Path, exc: duckdb.Error) -> StoreError:
    """The store file itself cannot be read: what is wrong with it, and what to do."""
    text = " ".join(str(exc).split()).removeprefix("IO Error: ")
    if "not a valid DuckDB database file" in text:
        return StoreError(f"{path} is not a Returns Desk store (not a DuckDB database): check --db or $RETURNS_DB.")
    if any(word in text for word in ("Could not read enough bytes", "Corrupt", "checksum", "truncated")):
        return StoreError(f"The store {path} is damaged or cut short ({text}): restore it from a backup "
                          "(`backup` makes one), or move it away to start a new store.")
    return StoreError(f"Cannot open the store {path}: {text}")


def _os_errno(text: str) -> int | None:
    """The operating system's error number behind a DuckDB I/O error, when it gives one."""
    given = _ERRNO.search(text)
    if given:
        return int(given.group(1))
    return next((code for reason, code in _OS_REASONS.items() if reason.lower() in text.lower()), None)


def io_reason(exc: OSError | duckdb.IOException) -> str:
    """Why a file could not be written, in the operating system's words ("No space left on device"),
    whether Python or DuckDB wrote it (DuckDB wraps the reason in its own text, or in JSON)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = " ".join(str(exc).split())
    code = _os_errno(text)
    return os.strerror(code) if code else text.removeprefix("IO Error: ")


def _file_error(path: Path, exc: duckdb.IOException) -> Exception:
    """A DuckDB I/O error inside a unit of work, as what it is: the operating system refusing a file
    (a full disk, a read-only folder: the OSError it was, whether the store's or an export's), or
    the store's own file damaged (cut short, corrupt)."""
    text = " ".join(str(exc).split())
    named = _QUOTED_FILE.search(text)
    target = Path(named.group(1)) if named else path
    code = _os_errno(text)
    if code is not None:
        return OSError(code, os.strerror(code), str(target))
    if str(target).startswith(str(path)):  # the store, its WAL or its spill files
        return _store_damaged(path, exc)
    return OSError(errno.EIO, text.removeprefix("IO Error: "), str(target))


class Database:
    """One DuckDB file. Thread-safe: every use opens its own connection."""

    def __init__(self, path: str | Path, *, key: str | None = None, lock_timeout: float | None = None):
        self.path = Path(path)
        self.lock_timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
        self._key = key
        self._migrated = False
        self._migrate_lock = threading.Lock()
        # how many times this process set the store up; grows when the file was deleted or replaced
        # under it (see `_open`), so caches keyed by it drop what they read from the old file
        self.generation = 0

    @cached_property
    def box(self) -> SecretBox:
        """Encrypts and decrypts the secrets kept in this database (key resolved on first use)."""
        return SecretBox(resolve_key(self.path, self._key, holds_secrets=self.holds_secrets))

    def holds_secrets(self) -> bool:
        """True when the store keeps any encrypted value (a token, an app secret, a channel's URL)."""
        if not self.path.exists():
            return False
        with self.reader() as con:
            columns = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'main' AND column_name LIKE '%\\_enc' ESCAPE '\\'").fetchall()
            return any(con.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE "{column}" IS NOT NULL)'
                                   ).fetchone()[0] for table, column in columns)

    @property
    def _waiting_file(self) -> Path:
        return self.path.with_name(self.path.name + ".waiting")

    @property
    def _upgrading_file(self) -> Path:
        return self.path.with_name(self.path.name + ".upgrading")

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting with jittered backoff while another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                with _OPEN_CLOSE_LOCK:
                    new_file = not self.path.exists()
                    con = duckdb.connect(str(self.path))
                if new_file:
                    make_private(self.path)
                # DuckDB draws a progress bar on the terminal for long statements (a migration):
                # noise in the CLI's output and in cron logs
                con.execute("SET enable_progress_bar = false")
                return con
            except duckdb.IOException as exc:
                if not _is_lock_error(exc):
                    raise _store_damaged(self.path, exc) from None
                if time.monotonic() >= deadline:
                    upgrade = self.upgrade_elsewhere()
                    if upgrade is not None:
                        raise StoreUpgradingError(
                            f"The store {self.path.name} is being upgraded to this version by another process "
                            f"({upgrade}; {UPGRADE_TIME}). Try again when it is done.") from None
                    raise StoreBusyError(
                        f"The database {self.path.name} is busy: another process (a sync?) has held it for "
                        f"over {self.lock_timeout:.0f} s. Try again in a moment."
                    ) from None
                self._signal_waiting()
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, MAX_RETRY_DELAY_S)

    def upgrade_elsewhere(self) -> str | None:
        """How far another process's upgrade of this store is, in words; None when none is running."""
        marker = self._upgrading_file
        try:
            if time.time() - marker.stat().st_mtime > UPGRADE_STALE_S:
                return None  # left over from an upgrade that was killed; the next opener redoes it
            state = json.loads(marker.read_text())
            said = [f"step {int(state['step'])} of {int(state['steps'])}"]
            if float(state.get("percent", -1)) >= 0:
                said.append(f"{float(state['percent']):.0f}% of it done")
            said.append(f"running for {_duration(time.time() - float(state['started']))}")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return "progress unknown"  # caught mid-write: an upgrade is running all the same
        return ", ".join(said)

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
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, closed on exit; DuckDB's I/O errors come out as what they are (`_file_error`)."""
        con = self._connect()
        try:
            yield con
        except duckdb.IOException as exc:
            raise _file_error(self.path, exc) from None
        finally:
            _close(con)

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # The app runs for days. When its store is deleted meanwhile (to start over), DuckDB would
        # quietly make an empty file and every query would miss its table: set a new one up instead
        # (one stat per unit of work).
        if self._migrated and not self.path.exists():
            self._set_up_again()
        self.migrate()
        try:
            with self._connection() as con:
                yield con
        except (duckdb.CatalogException, duckdb.BinderException):
            if self._schema_current():
                raise  # a bug in a query, not a store that changed
            # Another file took the store's place (a restored copy, one from an older version): set it
            # up (upgrade it) now, and say so once; what failed was read from the file it replaced.
            self._set_up_again()
            raise StoreError(f"The store {self.path.name} was replaced while this program ran; it is set up "
                             "again now: try again (reload the page).") from None

    def _schema_current(self) -> bool:
        with self._connection() as con:
            return _schema_complete(con)

    def _set_up_again(self) -> None:
        with self._migrate_lock:
            self._migrated = False
        self.migrate()

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
        with self._connection() as con:
            done = _applied_migrations(con)
        return bool(done) and any(version not in done for version, _ in MIGRATIONS)

    def migrate(self) -> None:
        """Apply pending migrations, each in its own transaction. Cheap after the first call."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            with self._connection() as con:
                _check_whole(con, self.path)
                done = _applied_migrations(con)
                con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
                )
                pending = [(version, sql) for version, sql in MIGRATIONS if version not in done]
                # a new store is set up in an instant; an upgrade of data may take minutes (UPGRADE_TIME),
                # so other processes are told how far it is instead of a bare "busy"
                with _UpgradeProgress(con, self._upgrading_file, len(pending)) if done and pending \
                        else contextlib.nullcontext() as progress:
                    for step, (version, sql) in enumerate(pending, 1):
                        if progress is not None:
                            progress.step = step
                        _apply_migration(con, version, sql)
            self._migrated = True
            self.generation += 1

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


def one_return_sql(table: str, columns: str, order_by: str) -> str:
    """SQL reading one return's rows of `table` (parameters: return_id, shop_id) through the table's
    index on return_id (schema migration 10). DuckDB uses an index only for the id on its own, so the
    id is looked up first and the shop checked after, instead of scanning every row for both."""
    return (f"WITH found AS MATERIALIZED (SELECT * FROM {table} WHERE return_id = ?) "  # noqa: S608 - fixed names
            f"SELECT {columns} FROM found WHERE shop_id = ? ORDER BY {order_by}")
