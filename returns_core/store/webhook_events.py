"""The webhook inbox (table `webhook_events`, migration 3): every statement that reads or writes it.

An event is stored before the receiver answers TikTok, keyed by TikTok's `tts_notification_id`:
TikTok delivers at least once, so a repeat is counted (`deliveries`), never stored twice. Events
then wait in state `pending` until a worker claims them (`processing`) and settles them: `done`,
`skipped` (nothing to do for that account now), `failed` (after the last retry), or `kept` (stored
as received and never acted on: types we do not act on, events for a shop with no account here).
What to do with an event is decided in `returns_core.webhooks`; this module only keeps the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from returns_core.store import history
from returns_core.store.db import Database, utcnow

PENDING, PROCESSING, DONE, SKIPPED, FAILED, KEPT = "pending", "processing", "done", "skipped", "failed", "kept"
STATES = (PENDING, PROCESSING, DONE, SKIPPED, FAILED, KEPT)
WAITING = (PENDING, PROCESSING)  # what the sidebar counts as waiting to be processed
VERIFIED, UNKNOWN_SHOP = "verified", "unknown_shop"
ALERT_WANTED, ALERT_TAKEN = "wanted", "taken"

# The event columns a new row sets (the rest have defaults or are processing's)
_NEW_COLUMNS = ("tts_notification_id", "event_type", "shop_id", "return_id", "event_status", "event_time",
                "received_at", "last_received_at", "verification", "state", "outcome", "body")


@dataclass(frozen=True)
class NewEvent:
    """An event as the receiver read it, ready to store."""

    notification_id: str
    event_type: int | None
    shop_id: str
    return_id: str | None
    event_status: str | None
    event_time: datetime | None
    verification: str  # VERIFIED or UNKNOWN_SHOP
    state: str  # PENDING (to process) or KEPT (never acted on)
    outcome: str | None
    body: str


@dataclass(frozen=True)
class ClaimedEvent:
    """An event a worker took for processing; `attempts` already counts this one."""

    notification_id: str
    event_type: int | None
    shop_id: str
    return_id: str | None
    event_status: str | None
    event_time: datetime | None
    attempts: int
    body: str


@dataclass(frozen=True)
class Settled:
    """How processing left one event. `retry_at` set: try again then (state goes back to pending)."""

    notification_id: str
    state: str
    outcome: str
    retry_at: datetime | None = None
    alert: str | None = None


@dataclass(frozen=True)
class InboxSummary:
    """What the sidebar shows: the last arrival and how many events wait."""

    total: int
    waiting: int
    failed: int
    last_received_at: datetime | None
    last_processed_at: datetime | None


# --- the receiver's side -------------------------------------------------------------------------


def signing_apps(db: Database, shop_id: str) -> tuple[bool, list[tuple[str, str]]]:
    """Who may have signed an event for this shop: (True, [its account's (app_key, app_secret)]) when
    the shop has an account; else (False, every distinct app of the accounts here). Secrets decrypted."""
    with db.reader() as con:
        rows = con.execute("SELECT app_key, app_secret_enc FROM accounts WHERE shop_id = ?", [shop_id]).fetchall()
        known = bool(rows)
        if not known:
            rows = con.execute("SELECT DISTINCT app_key, app_secret_enc FROM accounts").fetchall()
    box = db.box
    apps: dict[tuple[str, str], None] = {}
    for app_key, secret_enc in rows:
        secret = box.decrypt(secret_enc)
        if app_key and secret:
            apps[(app_key, secret)] = None  # the same app over many shops: try it once
    return known, list(apps)


_NEW_SCHEMA = pa.schema([
    ("tts_notification_id", pa.string()), ("event_type", pa.int32()), ("shop_id", pa.string()),
    ("return_id", pa.string()), ("event_status", pa.string()), ("event_time", pa.timestamp("us")),
    ("received_at", pa.timestamp("us")), ("last_received_at", pa.timestamp("us")), ("verification", pa.string()),
    ("state", pa.string()), ("outcome", pa.string()), ("body", pa.string()),
])
_SETTLED_SCHEMA = pa.schema([
    ("tts_notification_id", pa.string()), ("state", pa.string()), ("outcome", pa.string()),
    ("next_attempt_at", pa.timestamp("us")), ("processed_at", pa.timestamp("us")), ("alert", pa.string()),
])


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)


def add(db: Database, events: Sequence[NewEvent], received_at: datetime | None = None) -> list[bool]:
    """Store received events in one transaction; for each, True when it is new and False when TikTok
    delivered it before (the repeat is counted in `deliveries`).

    A repeat of an event kept for an unknown shop that now verifies against an account (the shop was
    connected since) takes the verified reading, so it gets processed. Set-based: a burst of events
    costs a few statements, not a few per event.
    """
    at = received_at or utcnow()
    ids = list(dict.fromkeys(event.notification_id for event in events))
    stored: list[bool] = []
    with db.writer() as con:
        with _registered(con, "_ids", pa.table({"id": pa.array(ids, pa.string())})):
            known = dict(con.execute("SELECT w.tts_notification_id, w.verification FROM webhook_events w "
                                     "JOIN _ids i ON w.tts_notification_id = i.id").fetchall())
        new: dict[str, NewEvent] = {}
        upgrades: dict[str, NewEvent] = {}
        repeats: Counter[str] = Counter()
        for event in events:
            key = event.notification_id
            if key not in known and key not in new:
                new[key] = event
            elif (known.get(key) == UNKNOWN_SHOP and event.verification == VERIFIED and key not in upgrades
                  and key not in new):
                upgrades[key] = event
            else:
                repeats[key] += 1
                stored.append(False)
                continue
            stored.append(True)
        if new:
            rows = [{"tts_notification_id": e.notification_id, "event_type": e.event_type, "shop_id": e.shop_id,
                     "return_id": e.return_id, "event_status": e.event_status, "event_time": e.event_time,
                     "received_at": at, "last_received_at": at, "verification": e.verification, "state": e.state,
                     "outcome": e.outcome, "body": e.body} for e in new.values()]
            with _registered(con, "_new", pa.Table.from_pylist(rows, schema=_NEW_SCHEMA)):
                con.execute("INSERT INTO webhook_events BY NAME SELECT * FROM _new")
        for key, event in upgrades.items():
            con.execute(
                "UPDATE webhook_events SET verification = ?, state = ?, outcome = ?, last_received_at = ?, "
                "deliveries = deliveries + 1 WHERE tts_notification_id = ?",
                [VERIFIED, event.state, event.outcome, at, key])
        if repeats:
            counted = pa.table({"id": pa.array(list(repeats), pa.string()),
                                "n": pa.array(list(repeats.values()), pa.int32())})
            with _registered(con, "_repeats", counted):
                con.execute("UPDATE webhook_events SET deliveries = deliveries + r.n, last_received_at = ? "
                            "FROM _repeats r WHERE tts_notification_id = r.id", [at])
    return stored


# --- the worker's side ---------------------------------------------------------------------------


def claim(db: Database, limit: int, *, now: datetime | None = None, lease: timedelta = timedelta(minutes=5)
          ) -> list[ClaimedEvent]:
    """Take up to `limit` events due for processing (oldest first) and mark them `processing`.

    Due: pending with no retry time or one that has come, or `processing` for longer than `lease`
    (its worker died). One transaction, so two workers (the app's and a cron run) never take the same
    event. The attempt is counted here: an event that kills its worker still runs out of attempts.
    """
    now = now or utcnow()
    with db.writer() as con:
        rows = con.execute(
            "UPDATE webhook_events SET state = ?, claimed_at = ?, attempts = attempts + 1 "
            "WHERE tts_notification_id IN (SELECT tts_notification_id FROM webhook_events "
            "  WHERE (state = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)) "
            "     OR (state = ? AND claimed_at < ?) ORDER BY seq LIMIT ?) "
            "RETURNING tts_notification_id, event_type, shop_id, return_id, event_status, event_time, attempts, "
            "body, seq",
            [PROCESSING, now, PENDING, now, PROCESSING, now - lease, limit]).fetchall()
    rows.sort(key=lambda row: row[-1])
    return [ClaimedEvent(*row[:-1]) for row in rows]


def settle(db: Database, outcomes: Sequence[Settled], history_entries: Sequence[dict[str, Any]] = (),
           *, now: datetime | None = None) -> None:
    """Record how processing left each event, and the history entries it wrote, in one transaction."""
    if not outcomes and not history_entries:
        return
    now = now or utcnow()
    rows = [{"tts_notification_id": done.notification_id,
             "state": PENDING if done.retry_at is not None else done.state, "outcome": done.outcome,
             "next_attempt_at": done.retry_at, "processed_at": None if done.retry_at is not None else now,
             "alert": done.alert} for done in outcomes]
    with db.writer() as con:
        if rows:
            with _registered(con, "_settled", pa.Table.from_pylist(rows, schema=_SETTLED_SCHEMA)):
                con.execute(
                    "UPDATE webhook_events SET state = s.state, outcome = s.outcome, "
                    "next_attempt_at = s.next_attempt_at, "
                    "processed_at = coalesce(s.processed_at, webhook_events.processed_at), claimed_at = NULL, "
                    "alert = coalesce(s.alert, webhook_events.alert) "
                    "FROM _settled s WHERE webhook_events.tts_notification_id = s.tts_notification_id")
        history.append(con, history_entries)


def next_due(db: Database) -> datetime | None:
    """When the next waiting event comes due (a retry time), or None when none waits."""
    return db.value("SELECT min(coalesce(next_attempt_at, received_at)) FROM webhook_events WHERE state = ?",
                    [PENDING])


def stored_returns(db: Database, shop_id: str, return_ids: Sequence[str]) -> dict[str, tuple[str | None, int | None]]:
    """return_id -> (TikTok's status, update_time) as stored, for the ids that are stored."""
    if not return_ids:
        return {}
    marks = ", ".join("?" * len(return_ids))
    rows = db.rows(f"SELECT return_id, marketplace_status, TRY_CAST(payload->>'$.update_time' AS BIGINT) "
                   f"FROM returns WHERE shop_id = ? AND return_id IN ({marks})", [shop_id, *return_ids])
    return {row[0]: (row[1], row[2]) for row in rows}


def retry_failed(db: Database, notification_ids: Sequence[str] = ()) -> int:
    """Put failed events (these, or all) back in the queue with fresh attempts; returns how many."""
    where, params = "state = ?", [FAILED]
    if notification_ids:
        where += f" AND tts_notification_id IN ({', '.join('?' * len(notification_ids))})"
        params.extend(notification_ids)
    with db.writer() as con:
        rows = con.execute(f"UPDATE webhook_events SET state = ?, attempts = 0, next_attempt_at = NULL, "
                           f"outcome = 'queued again by hand' WHERE {where} RETURNING 1", [PENDING, *params])
        return len(rows.fetchall())


# --- alerts the alerts engine picks up -----------------------------------------------------------


def wanted_alerts(db: Database) -> list[dict[str, Any]]:
    """Events that want an alert sent and have not been taken yet, oldest first (with their body)."""
    with db.reader() as con:
        cur = con.execute(
            "SELECT tts_notification_id, event_type, shop_id, event_time, received_at, outcome, body "
            "FROM webhook_events WHERE alert = ? ORDER BY seq", [ALERT_WANTED])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def take_alerts(db: Database, notification_ids: Sequence[str]) -> None:
    """Mark wanted alerts as taken by the alerts engine."""
    if not notification_ids:
        return
    with db.writer() as con:
        con.execute(f"UPDATE webhook_events SET alert = ? WHERE alert = ? AND tts_notification_id IN "
                    f"({', '.join('?' * len(notification_ids))})", [ALERT_TAKEN, ALERT_WANTED, *notification_ids])


# --- what the pages show -------------------------------------------------------------------------


def summary(db: Database) -> InboxSummary:
    """Counts for the sidebar: all events, those waiting, those failed; last arrival and processing."""
    row = db.row("SELECT count(*), count(*) FILTER (WHERE state IN (?, ?)), count(*) FILTER (WHERE state = ?), "
                 "max(last_received_at), max(processed_at) FROM webhook_events", [*WAITING, FAILED])
    return InboxSummary(*row)


def counts_by_type(db: Database) -> pd.DataFrame:
    """Events and deliveries per type and state (every type, also those we do not act on)."""
    return db.frame(
        "SELECT event_type, state, count(*) AS events, sum(deliveries)::BIGINT AS deliveries "
        "FROM webhook_events GROUP BY ALL ORDER BY event_type NULLS LAST, state")


def recent(db: Database, limit: int = 200, states: Sequence[str] = (), event_types: Sequence[int] = ()
           ) -> pd.DataFrame:
    """The latest events (newest first), without their bodies."""
    where: list[str] = []
    params: list[Any] = []
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        params.extend(states)
    if event_types:
        where.append(f"event_type IN ({', '.join('?' * len(event_types))})")
        params.extend(event_types)
    sql = ("SELECT received_at, event_type, shop_id, return_id, event_status, state, outcome, attempts, "
           "deliveries, verification, processed_at, event_time, alert, tts_notification_id FROM webhook_events")
    if where:
        sql += " WHERE " + " AND ".join(where)
    return db.frame(sql + " ORDER BY seq DESC LIMIT ?", [*params, int(limit)])


def body_of(db: Database, notification_id: str) -> str | None:
    """The raw body of one event, as received."""
    return db.value("SELECT body FROM webhook_events WHERE tts_notification_id = ?", [notification_id])
