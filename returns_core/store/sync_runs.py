"""Sync runs and watermarks: one row per sync of an account, and how far its data reaches.

A run row is written when a sync starts, its counters grow with each committed page (in the
page's own transaction, see return_writes.upsert_page), and its outcome is written at the end.
The watermark (TikTok's update_time, Unix seconds) is what the committed pages cover; the next
incremental sync starts below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from returns_core import domain
from returns_core.filters import check_page
from returns_core.ingest import PageCounts
from returns_core.store.db import Database, utcnow

INTERRUPTED_REASON = ("Interrupted: the sync stopped before it could record its outcome (its process was killed "
                      "or shut down, or the database could not be written)")


@dataclass(frozen=True)
class LastSync:
    """An account's latest sync run, and when its last successful one finished."""

    at: datetime  # when the latest run finished, or started while it runs or when it never finished
    state: str  # "running", "ok" or "failed"
    error: str | None
    started_at: datetime  # when the latest run (an attempt, whatever its outcome) started
    succeeded_at: datetime | None  # when the last successful run finished (None: never)


# --- a run, from start to finish ----------------------------------------------------------------


def start(db: Database, shop_id: str, *, full: bool, trigger: str, at: datetime | None = None
          ) -> tuple[int, int | None]:
    """Open a run row started `at` (default now); returns its id and the account's watermark (None before
    the first sync).

    The caller holds the account's sync lock, so a run of it still marked running died unfinished.
    """
    with db.writer() as con:
        run_id, mark, _ = start_runs(con, [shop_id], full=full, trigger=trigger, at=at)[0]
        return run_id, mark


def start_runs(con: duckdb.DuckDBPyConnection, shop_ids: Sequence[str], *, full: bool, trigger: str,
               at: datetime | None = None) -> list[tuple[int, int | None, int | None]]:
    """`start` for several accounts in the caller's transaction (a sync round opens the runs of the shops
    it starts together): (run id, returns' watermark, cancellations' watermark) per shop, in the order given."""
    if not shop_ids:
        return []
    shops = list(shop_ids)
    con.execute("UPDATE sync_runs SET state = 'failed', error = ? WHERE list_contains(?::VARCHAR[], shop_id) "
                "AND state = 'running'", [INTERRUPTED_REASON, shops])
    opened = dict(con.execute(
        "INSERT INTO sync_runs (shop_id, started_at, full_sync, state, trigger) "
        "SELECT shop_id, ?, ?, 'running', ? FROM unnest(?::VARCHAR[]) AS s(shop_id) RETURNING shop_id, id",
        [at or utcnow(), full, trigger, shops]).fetchall())
    marks = {row[0]: row[1:] for row in con.execute(
        "SELECT shop_id, watermark, cancellations_watermark FROM sync_state WHERE list_contains(?::VARCHAR[], shop_id)",
        [shops]).fetchall()}
    return [(opened[shop_id], *marks.get(shop_id, (None, None))) for shop_id in shops]


def running(db: Database) -> list[tuple[int, str]]:
    """(run id, shop_id) of every run marked running."""
    return db.rows("SELECT id, shop_id FROM sync_runs WHERE state = 'running' ORDER BY id")


def close_interrupted(db: Database, run_ids: list[int]) -> int:
    """Close these runs as interrupted (the ones still running: one may have finished meanwhile);
    returns how many were closed. The caller knows no sync of theirs is alive (sync.close_stale_runs)."""
    if not run_ids:
        return 0
    with db.writer() as con:
        closed = con.execute(
            "UPDATE sync_runs SET state = 'failed', error = ? WHERE list_contains(?::BIGINT[], id) "
            "AND state = 'running' RETURNING id", [INTERRUPTED_REASON, list(run_ids)]).fetchall()
    return len(closed)


def add_page(con: duckdb.DuckDBPyConnection, run_id: int, pages: int, counts: PageCounts,
             cancellations: int = 0) -> None:
    """Count committed pages into their run, inside the pages' own transaction; `cancellations`: how many of
    the rows they read are cancellations (the rest are returns)."""
    add_pages(con, [(run_id, pages, counts, cancellations)])


def add_pages(con: duckdb.DuckDBPyConnection, runs: Sequence[tuple[int, int, PageCounts, int]]) -> None:
    """`add_page` for several runs at once: (run id, pages, what they did, cancellations read) each, in one
    statement."""
    if not runs:
        return
    summed: dict[int, tuple[int, PageCounts, int]] = {}
    for run_id, pages, counts, cancellations in runs:  # one run's returns and cancellations come as two parts
        before = summed.get(run_id, (0, PageCounts(), 0))
        summed[run_id] = (before[0] + pages, before[1] + counts, before[2] + cancellations)
    rows = [(run_id, *summed_up) for run_id, summed_up in summed.items()]
    con.execute(
        "UPDATE sync_runs SET pages = sync_runs.pages + p.pages, new_count = new_count + p.new, "
        "updated_count = updated_count + p.updated, unchanged_count = unchanged_count + p.unchanged, "
        "cancellations_count = cancellations_count + p.cancellations "
        "FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::BIGINT[]) AS pages, unnest(?::BIGINT[]) AS new, "
        "unnest(?::BIGINT[]) AS updated, unnest(?::BIGINT[]) AS unchanged, unnest(?::BIGINT[]) AS cancellations) p "
        "WHERE sync_runs.id = p.id",
        [[r[0] for r in rows], [r[1] for r in rows], [r[2].new for r in rows], [r[2].updated for r in rows],
         [r[2].unchanged for r in rows], [r[3] for r in rows]])


def finish(db: Database, run_id: int, duration: float, error: str | None, *, at: datetime | None = None) -> None:
    """Write a run's outcome, finished `at` (default now): ok, or failed with its reason."""
    with db.writer() as con:
        finish_runs(con, [(run_id, duration, error)], at=at)


def finish_runs(con: duckdb.DuckDBPyConnection, runs: Sequence[tuple[int, float, str | None]], *,
                at: datetime | None = None) -> None:
    """`finish` for several runs in the caller's transaction: (run id, seconds, error or None) each."""
    if not runs:
        return
    con.execute(
        "UPDATE sync_runs SET finished_at = ?, duration_s = r.duration, "
        "state = CASE WHEN r.error IS NULL THEN 'ok' ELSE 'failed' END, error = r.error "
        "FROM (SELECT unnest(?::BIGINT[]) AS id, unnest(?::DOUBLE[]) AS duration, unnest(?::VARCHAR[]) AS error) r "
        "WHERE sync_runs.id = r.id",
        [at or utcnow(), [r[0] for r in runs], [r[1] for r in runs], [r[2] for r in runs]])


# --- the watermark ------------------------------------------------------------------------------

# Returns and cancellations are read from two searches, each with its own update_time watermark.
_WATERMARK_COLUMNS = {domain.RETURN_KIND: "watermark", domain.CANCELLATION_KIND: "cancellations_watermark"}


def watermark(db: Database, shop_id: str, kind: str = domain.RETURN_KIND) -> int | None:
    """The account's update_time watermark (Unix seconds) of a kind, or None before its first sync."""
    with db.reader() as con:
        return _watermark(con, shop_id, kind)


def _watermark(con: duckdb.DuckDBPyConnection, shop_id: str, kind: str = domain.RETURN_KIND) -> int | None:
    column = _WATERMARK_COLUMNS[kind]
    rows = con.execute(f"SELECT {column} FROM sync_state WHERE shop_id = ?", [shop_id]).fetchall()
    return rows[0][0] if rows else None


def advance_watermark(con: duckdb.DuckDBPyConnection, shop_id: str, mark: int, at: datetime,
                      kind: str = domain.RETURN_KIND) -> None:
    """Raise the watermark to `mark`, inside the transaction of the pages it covers; never lower it."""
    advance_watermarks(con, [(shop_id, mark)], at, kind)


def advance_watermarks(con: duckdb.DuckDBPyConnection, marks: Sequence[tuple[str, int]], at: datetime,
                       kind: str = domain.RETURN_KIND) -> None:
    """`advance_watermark` for several accounts (each once) in one statement."""
    # never backwards within a sync: pages come in update_time order (a full re-read sets it anew instead)
    column = _WATERMARK_COLUMNS[kind]
    _upsert_watermarks(con, marks, at, column, f"greatest(coalesce(sync_state.{column}, 0), excluded.{column})")


def set_watermark(con: duckdb.DuckDBPyConnection, shop_id: str, mark: int | None, at: datetime,
                  kind: str = domain.RETURN_KIND) -> None:
    """Set the watermark to `mark` (None: nothing covered yet), even below the old one: the first page of
    a full re-read, which derives it again from what it reads (the old one may be from the future)."""
    set_watermarks(con, [(shop_id, mark)], at, kind)


def set_watermarks(con: duckdb.DuckDBPyConnection, marks: Sequence[tuple[str, int | None]], at: datetime,
                   kind: str = domain.RETURN_KIND) -> None:
    """`set_watermark` for several accounts (each once) in one statement."""
    column = _WATERMARK_COLUMNS[kind]
    _upsert_watermarks(con, marks, at, column, f"excluded.{column}")


def _upsert_watermarks(con: duckdb.DuckDBPyConnection, marks: Sequence[tuple[str, int | None]], at: datetime,
                       column: str, new_value: str) -> None:
    if not marks:
        return
    con.execute(
        f"INSERT INTO sync_state (shop_id, {column}, updated_at) "
        "SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]), ? "
        f"ON CONFLICT (shop_id) DO UPDATE SET {column} = {new_value}, updated_at = excluded.updated_at",
        [[m[0] for m in marks], [m[1] for m in marks], at])


# --- reads --------------------------------------------------------------------------------------


def last_syncs(db: Database) -> dict[str, LastSync]:
    """Per account (shop_id) that ever synced: its latest run, and its last successful one."""
    rows = db.rows(
        "SELECT shop_id, coalesce(finished_at, started_at), state, error, started_at, "
        "max(finished_at) FILTER (WHERE state = 'ok') OVER (PARTITION BY shop_id) FROM sync_runs "
        "QUALIFY row_number() OVER (PARTITION BY shop_id ORDER BY started_at DESC, id DESC) = 1")
    return {row[0]: LastSync(*row[1:]) for row in rows}


def page(db: Database, shop_ids: tuple[str, ...] = (), *, limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """Sync runs of these accounts (all when none), newest first, one page of them."""
    check_page(limit, offset)
    where, params = _shop_condition(shop_ids)
    return db.frame(
        'SELECT s.started_at AS "Started", coalesce(a.name, s.shop_id) AS "Account", s.shop_id AS "Account ID", '
        's.trigger AS "Trigger", s.full_sync AS "Full", s.state AS "Result", s.duration_s AS "Duration (s)", '
        's.pages AS "Pages", s.new_count + s.updated_count + s.unchanged_count - s.cancellations_count AS "Returns", '
        's.cancellations_count AS "Cancellations", s.new_count AS "New", s.updated_count AS "Updated", '
        's.unchanged_count AS "Unchanged", s.error AS "Error" '
        f"FROM sync_runs s LEFT JOIN accounts a ON a.shop_id = s.shop_id WHERE {where} "
        "ORDER BY s.started_at DESC, s.id DESC LIMIT ? OFFSET ?",
        params + [limit, offset])


def count(db: Database, shop_ids: tuple[str, ...] = ()) -> int:
    """How many sync runs these accounts (all when none) have."""
    where, params = _shop_condition(shop_ids)
    return db.value(f"SELECT count(*) FROM sync_runs s WHERE {where}", params)


def _shop_condition(shop_ids: tuple[str, ...]) -> tuple[str, list]:
    if not shop_ids:
        return "TRUE", []
    return f"s.shop_id IN ({', '.join('?' * len(shop_ids))})", list(shop_ids)


def data_stamp(db: Database) -> tuple:
    """Changes whenever synced or edited data changes, also from another process (a cron sync).

    It reads the newest sync run, history row, account change and fetched record: every write
    the app shows ends in one of them, so cached page data keyed by it is never stale.
    """
    return db.row(
        "SELECT (SELECT max(id) FROM sync_runs), (SELECT max(coalesce(finished_at, started_at)) FROM sync_runs), "
        "(SELECT max(id) FROM history), (SELECT max(updated_at) FROM accounts), "
        "(SELECT max(fetched_at) FROM return_records)")
