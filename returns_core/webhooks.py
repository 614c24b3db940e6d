"""TikTok's webhooks on our side: receive them, store them first, process them, subscribe to them.

    TikTok --POST /webhooks/tiktok--> receive(): verify, store in the inbox, answer 200
                                      worker: claim -> re-sync / mark Invalid / want an alert -> settle

Receiving (`Inbox.receive`, called by the app server's route in server.py): the body is read raw (at
most MAX_BODY_BYTES), parsed, and its `Authorization` header checked in constant time against the raw
bytes with the app secret of the shop's account (docs/tiktok_api.md section 7). A bad or missing
signature is 401 and nothing is stored. A good one is stored in the inbox (store.webhook_events)
before the answer, deduplicated on `tts_notification_id`, so TikTok gets its 200 in milliseconds and
an event once answered is never lost.

Processing happens after the answer, in the app's worker thread (`Inbox.start`) or from cron
(`python -m returns_core webhooks process`). Events are signals, never data (DESIGN.md): a
RETURN_STATUS_CHANGE (12) makes us re-read that return from TikTok (Search Returns by return_ids),
and a CANCELLATION_STATUS_CHANGE (11) that cancellation (Search Cancellations by cancel_ids), so
repeated, late and out-of-order events all leave the store equal to what TikTok says now. Then the
decision rules act on what the re-sync brought, through the sync's own hook (rules.act_on_shops). A
SELLER_DEAUTHORIZATION (6) marks the account Invalid unless TikTok still accepts its authorization
(the seller granted it again after the event). An UPCOMING_AUTHORIZATION_EXPIRATION (7) raises an
alert through the alerts engine (returns_core.alerts) and leaves an "alert wanted" mark on its row,
which the engine's own rounds take (`wanted_alerts` / `take_alerts`). Other types,
and types not known yet, are kept as received and counted. A failure is retried after
RETRY_DELAYS, MAX_ATTEMPTS times in all, then shown as failed. The scheduled sync stays the safety
net for events that never arrived.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from returns_core import accounts as acc
from returns_core import domain
from returns_core.accounts import Account
from returns_core.explain import FailureKind, authorization_refused, explain, explain_error
from returns_core.ingest import update_time
from returns_core.store import webhook_events as inbox
from returns_core.store.db import Database, FileHold, StoreBusyError, StoreError, utcnow
from returns_core.store.history import entry
from returns_core.store.return_writes import upsert_page
from returns_core.tiktok import events
from returns_core.tiktok.client import RetryPolicy
from returns_core.tiktok.signing import verify_webhook
from returns_core.tiktok_session import tiktok_session

logger = logging.getLogger(__name__)

PATH = "/webhooks/tiktok"  # on the app's own port (server.py)
MAX_BODY_BYTES = 1 << 20  # TikTok's events are a few hundred bytes; anything near this is not one
# The topics Returns Desk subscribes to and acts on (the rest are kept as received if they come)
HANDLED_TOPICS = ("RETURN_STATUS_CHANGE", "CANCELLATION_STATUS_CHANGE", "SELLER_DEAUTHORIZATION",
                  "UPCOMING_AUTHORIZATION_EXPIRATION")
# The events that name one return or cancellation to re-read: type -> (the kind of row, the id field in
# `data`, the status field in `data`), per docs/tiktok_api.md section 7
RESYNCED: dict[int, tuple[str, str, str]] = {
    events.RETURN_STATUS_CHANGE: (domain.RETURN_KIND, "return_id", "return_status"),
    events.CANCELLATION_STATUS_CHANGE: (domain.CANCELLATION_KIND, "cancel_id", "cancel_status"),
}
ACTED_ON = frozenset(events.TOPICS[topic] for topic in HANDLED_TOPICS)
MAX_ATTEMPTS = 5
RETRY_DELAYS = (10.0, 60.0, 300.0, 1800.0)  # seconds after attempts 1..4; the 5th failure is final
CLAIM_BATCH = 500  # events one processing round takes
RESYNC_IDS = 50  # ids per Search Returns / Search Cancellations call (the page size maximum of both)
CREDENTIALS_TTL = 60.0  # seconds an account's app secret stays in the receiver's memory
IDLE_WAIT = 30.0  # the worker looks at the inbox at least this often
STORE_WITHIN = 2.5  # seconds the receiver waits for its event to be stored: under TikTok's 3 s
COMMIT_BATCH = 500  # received events stored in one transaction at most
WEBHOOK_ACTOR = "webhook"  # who a webhook-triggered re-sync's history entry names
MAX_ID_LENGTH = 128
# The worker's TikTok calls retry briefly: a longer outage is the inbox's retry schedule's job, and
# one shop's outage must not hold up the events of the others for minutes.
CLIENT_OPTIONS: dict[str, Any] = {"retry": RetryPolicy(max_attempts=2, base_delay=0.5, max_delay=2.0), "timeout": 15.0}


@dataclass(frozen=True)
class Answer:
    """What the receiver answers TikTok: an HTTP status and a short text (never a secret)."""

    status: int
    text: str


# --- reading an event ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """The envelope of one webhook (docs/tiktok_api.md section 7), as far as we read it."""

    notification_id: str
    event_type: int | None  # None when `type` is not a number
    shop_id: str
    timestamp: datetime | None
    data: dict[str, Any]

    @property
    def return_id(self) -> str | None:
        """The return (type 12) or cancellation (type 11, its cancel_id: a row of `returns` too) it names."""
        fields = RESYNCED.get(self.event_type)  # type: ignore[arg-type]
        return _identifier(self.data.get(fields[1])) if fields else None

    @property
    def return_status(self) -> str | None:
        """TikTok's status the event says (return_status, or cancel_status), as a hint: the re-read decides."""
        fields = RESYNCED.get(self.event_type)  # type: ignore[arg-type]
        value = self.data.get(fields[2]) if fields else None
        return value[:100] if isinstance(value, str) else None


def _identifier(value: object) -> str | None:
    """A TikTok id as text (ids are decimal strings, sometimes sent as numbers), or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_ID_LENGTH and text.isprintable() else None


def _unix_time(value: object) -> datetime | None:
    """Unix seconds (a number or, as TikTok sends expiration_time, a string) as naive UTC, or None."""
    if isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def read_event(body: bytes) -> Event | Answer:
    """The event in a raw body, or the 400 answer that says why it is not one."""
    try:
        doc = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return Answer(400, "The body is not JSON.")
    if not isinstance(doc, dict):
        return Answer(400, "The body is not a JSON object.")
    notification_id = _identifier(doc.get("tts_notification_id"))
    shop_id = _identifier(doc.get("shop_id"))
    if notification_id is None or shop_id is None:
        return Answer(400, "The event has no tts_notification_id or shop_id.")
    kind = doc.get("type")
    data = doc.get("data")
    return Event(notification_id, kind if isinstance(kind, int) and not isinstance(kind, bool) else None, shop_id,
                 _unix_time(doc.get("timestamp")), data if isinstance(data, dict) else {})


def type_name(event_type: object) -> str:
    """A type number in words: "12 RETURN_STATUS_CHANGE", "99 (unknown)" ("(no type)" for None or NaN)."""
    try:
        number = int(event_type)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "(no type)"
    return f"{number} {events.TOPIC_OF_TYPE.get(number, '(unknown)')}"


def _to_store(event: Event, verification: str, body: bytes) -> inbox.NewEvent:
    """The inbox row of a verified event: to process, or kept as received (and why)."""
    state, outcome = inbox.PENDING, None
    if verification == inbox.UNKNOWN_SHOP:
        # Signed with the secret of an app of ours, so it is TikTok's, but no account here has
        # this shop: nothing to act on (and nothing to act with). It is kept and shown, never
        # dropped, so a seller who authorized the app without being connected here shows up.
        state, outcome = inbox.KEPT, f"Kept: no account here has shop {event.shop_id}; not acted on."
    elif event.event_type not in ACTED_ON:
        state = inbox.KEPT
        outcome = f"Kept as received: Returns Desk does not act on type {type_name(event.event_type)}."
    elif event.event_type in RESYNCED and event.return_id is None:
        field = RESYNCED[event.event_type][1]
        state, outcome = inbox.KEPT, f"Kept: a {type_name(event.event_type)} without a {field}; nothing to re-sync."
    return inbox.NewEvent(event.notification_id, event.event_type, event.shop_id, event.return_id,
                          event.return_status, event.timestamp, verification, state, outcome,
                          body.decode("utf-8", errors="replace"))


# --- the app process's receiver and worker -------------------------------------------------------


@dataclass
class ProcessReport:
    """What one processing round did."""

    claimed: int = 0
    done: int = 0
    skipped: int = 0
    kept: int = 0
    retrying: int = 0
    failed: int = 0
    returns_changed: int = 0  # returns whose stored state a re-sync changed

    def add(self, other: ProcessReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        return (f"{self.claimed} event(s): {self.done} done, {self.skipped} skipped, {self.kept} kept, "
                f"{self.retrying} to retry, {self.failed} failed; {self.returns_changed} return(s) changed")


_LIVE: dict[Path, Inbox] = {}
_LIVE_LOCK = threading.Lock()


def live_inbox(db_path: str | Path) -> Inbox | None:
    """The running Inbox (receiver and worker) of this database in this process, if there is one."""
    with _LIVE_LOCK:
        return _LIVE.get(Path(db_path).resolve())


@dataclass
class _Counters:
    received: int = 0  # new events stored
    repeats: int = 0  # deliveries of events already stored
    refused: int = 0  # 401s
    changes: int = 0  # returns changed by processing: open pages reload when this moves
    rounds: int = 0
    last_error: str | None = None


class _GroupCommit:
    """Stores received events from one thread, many per transaction (datasette's write queue).

    Each receiver thread hands its event over and waits until it is committed, so it is stored
    before TikTok gets its answer. Opening the file costs more than writing an event, so a burst
    is stored in a few transactions instead of one per event.
    """

    def __init__(self, db: Database):
        self._db = db
        self._queue: queue.Queue[tuple[inbox.NewEvent, Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def store(self, event: inbox.NewEvent, timeout: float) -> bool:
        """Store one event (True: new, False: a repeat); raises what storing raised, or TimeoutError."""
        done: Future = Future()
        with self._lock:
            if self._stopped:
                raise StoreError("The receiver is shutting down.")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-inbox-writer", daemon=True)
                self._thread.start()
            self._queue.put((event, done))
        return done.result(timeout)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _run(self) -> None:
        # while events keep coming the file stays open between batches (it lets go for another
        # process that waits, and as soon as the queue is empty)
        hold = self._db.hold()
        try:
            self._drain(hold)
        finally:
            hold.release()

    def _drain(self, hold: FileHold) -> None:
        while True:
            try:
                first = self._queue.get_nowait()
            except queue.Empty:
                hold.release()
                first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < COMMIT_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            waiting = [(event, done) for event, done in batch if done.set_running_or_notify_cancel()]
            try:
                hold.before_write()
                results = inbox.add(self._db, [event for event, _ in waiting])
            except Exception as exc:  # noqa: BLE001 - every waiting receiver gets the failure
                for _, done in waiting:
                    done.set_exception(exc)
            else:
                for (_, done), result in zip(waiting, results, strict=True):
                    done.set_result(result)


class Inbox:
    """The webhook receiver and its worker thread for one database, in the app process.

    `receive` is thread-safe (the server calls it from a thread pool). `start()` runs the worker,
    which processes what was received (woken at once by each new event) and retries what failed.
    """

    def __init__(self, db: Database, *, transport: httpx.BaseTransport | None = None,
                 idle_wait: float = IDLE_WAIT, client_options: dict[str, Any] | None = None):
        self.db = db
        self._transport = transport
        self._client_options = client_options
        self._idle_wait = idle_wait
        self._credentials: dict[str, tuple[str, str, float]] = {}  # shop_id -> (app_key, secret, when read)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._committer = _GroupCommit(db)
        self.counters = _Counters()

    # --- receiving ---------------------------------------------------------------------------

    def receive(self, body: bytes, authorization: str | None) -> Answer:
        """Verify a webhook against its raw body, store it, and say what to answer TikTok."""
        if len(body) > MAX_BODY_BYTES:
            return Answer(413, "The body is too large for a TikTok event.")
        event = read_event(body)
        if isinstance(event, Answer):
            return event
        try:
            verification = self._verify(event.shop_id, body, authorization)
            if verification is None:
                with self._lock:
                    self.counters.refused += 1
                return Answer(401, "The signature does not match.")
            is_new = self._committer.store(_to_store(event, verification, body), STORE_WITHIN)
        except (StoreBusyError, FutureTimeout):
            # TikTok retries a push that fails; better than holding its connection past 3 s
            return Answer(503, "The store is busy; send it again later.")
        except StoreError as exc:
            logger.warning("webhook not stored: %s", exc)
            return Answer(503, "The store is not available; send it again later.")
        except Exception as exc:  # noqa: BLE001 - e.g. a changed encryption key: TikTok retries a 5xx
            logger.warning("webhook not stored: %s", explain_error(exc))
            return Answer(500, "The event could not be stored; send it again later.")
        with self._lock:
            if is_new:
                self.counters.received += 1
            else:
                self.counters.repeats += 1
        if is_new:
            self._wake.set()
        return Answer(200, "ok" if is_new else "ok (already received)")

    def _verify(self, shop_id: str, body: bytes, authorization: str | None) -> str | None:
        """VERIFIED (the shop's own app signed it), UNKNOWN_SHOP (an app of ours signed it, for a
        shop with no account here) or None (no signature of ours: refuse)."""
        if not authorization:
            return None
        with self._lock:
            cached = self._credentials.get(shop_id)
        if cached and time.monotonic() - cached[2] < CREDENTIALS_TTL and verify_webhook(
                cached[0], cached[1], body, authorization):
            return inbox.VERIFIED
        # not cached, or it did not match: the account may have been reconnected with another app.
        # A shop with no account here is checked against every app we hold: TikTok signs each event
        # with the secret of the app the seller authorized, so one that verifies is TikTok's (kept
        # and shown as "unknown shop", never acted on: see _to_store), and one that verifies against
        # none is not TikTok's event for us: refused like any bad signature, or anyone could fill
        # the inbox.
        known, apps = inbox.signing_apps(self.db, shop_id)
        for app_key, secret in apps:
            if verify_webhook(app_key, secret, body, authorization):
                if not known:
                    return inbox.UNKNOWN_SHOP
                with self._lock:
                    self._credentials[shop_id] = (app_key, secret, time.monotonic())
                return inbox.VERIFIED
        return None

    # --- processing --------------------------------------------------------------------------

    def process_waiting(self) -> ProcessReport:
        """One processing round, now (the worker's step; tests call it directly)."""
        report = process_waiting(self.db, transport=self._transport, client_options=self._client_options)
        with self._lock:
            self.counters.changes += report.returns_changed
            self.counters.rounds += 1 if report.claimed else 0
        return report

    def start(self) -> Inbox:
        """Run the worker thread, and make this the live inbox of its database in this process."""
        with _LIVE_LOCK:
            _LIVE[self.db.path.resolve()] = self
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the worker after its current round (events received after this are refused)."""
        self._committer.stop()
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        self._thread = None
        with _LIVE_LOCK:
            if _LIVE.get(self.db.path.resolve()) is self:
                del _LIVE[self.db.path.resolve()]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Process now (after a retry was queued by hand, say)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the round: an event stored during it wakes the next one
            try:
                report = self.process_waiting()
                with self._lock:
                    self.counters.last_error = None
                if report.claimed:
                    continue
                due = inbox.next_due(self.db)
                wait = self._idle_wait if due is None else (due - utcnow()).total_seconds()
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one failure
                message = explain_error(exc)
                logger.warning("webhook processing failed: %s", message)
                with self._lock:
                    self.counters.last_error = message
                wait = 5.0
            self._wake.wait(min(max(wait, 0.05), self._idle_wait))


# --- processing ----------------------------------------------------------------------------------


def process_waiting(db: Database, *, limit: int = CLAIM_BATCH, transport: httpx.BaseTransport | None = None,
                    client_options: dict[str, Any] | None = None) -> ProcessReport:
    """Claim the events due for processing, act on them, and record the outcomes (one round).

    `client_options` go to the TikTok client (default CLIENT_OPTIONS: brief retries).
    """
    options = CLIENT_OPTIONS if client_options is None else client_options
    claimed = inbox.claim(db, limit)
    report = ProcessReport(claimed=len(claimed))
    if not claimed:
        return report
    settled: list[inbox.Settled] = []
    history: list[dict[str, Any]] = []
    by_shop: dict[tuple[str, str], list[inbox.ClaimedEvent]] = {}  # (shop, kind) -> its re-sync events
    for event in claimed:
        if event.event_type in RESYNCED and event.return_id:
            by_shop.setdefault((event.shop_id, RESYNCED[event.event_type][0]), []).append(event)
        elif event.event_type == events.SELLER_DEAUTHORIZATION:
            settled.append(_deauthorized(db, event, transport))
        elif event.event_type == events.UPCOMING_AUTHORIZATION_EXPIRATION:
            settled.append(_expiring(db, event))
        else:
            settled.append(inbox.Settled(event.notification_id, inbox.KEPT,
                                         f"Kept as received: type {type_name(event.event_type)}."))
    resynced: set[str] = set()
    for (shop_id, kind), shop_events in by_shop.items():
        outcomes, entries, changed = _resync(db, shop_id, kind, shop_events, transport, options)
        settled.extend(outcomes)
        history.extend(entries)
        report.returns_changed += changed
        if changed:
            resynced.add(shop_id)
    inbox.settle(db, settled, history)
    if resynced:
        # new returns a re-sync brought wait for the seller like a sync's: the rules act on them the same way
        from returns_core.rules import act_on_shops  # rules imports the workflow, which imports much

        act_on_shops(db, sorted(resynced), transport=transport, trigger=WEBHOOK_ACTOR)
    for outcome in settled:
        if outcome.retry_at is not None:
            report.retrying += 1
        else:
            name = {inbox.DONE: "done", inbox.SKIPPED: "skipped", inbox.KEPT: "kept", inbox.FAILED: "failed"}
            setattr(report, name[outcome.state], getattr(report, name[outcome.state]) + 1)
    return report


def process_all(db: Database, *, transport: httpx.BaseTransport | None = None,
                client_options: dict[str, Any] | None = None) -> ProcessReport:
    """Process rounds until nothing is due (the cron command)."""
    total = ProcessReport()
    while (report := process_waiting(db, transport=transport, client_options=client_options)).claimed:
        total.add(report)
    return total


def _retry_or_fail(event: inbox.ClaimedEvent, reason: str) -> inbox.Settled:
    """A failed attempt: queued again after its delay, or failed for good after the last one."""
    if event.attempts >= MAX_ATTEMPTS:
        return inbox.Settled(event.notification_id, inbox.FAILED, f"Gave up after {event.attempts} attempts: {reason}")
    delay = RETRY_DELAYS[min(event.attempts, len(RETRY_DELAYS)) - 1]
    return inbox.Settled(event.notification_id, inbox.PENDING,
                         f"Attempt {event.attempts} failed: {reason} Retrying in {delay:g} s.",
                         retry_at=utcnow() + timedelta(seconds=delay))


def _fetch_returns(db: Database, account: Account, return_ids: Sequence[str], kind: str,
                   transport: httpx.BaseTransport | None, options: dict[str, Any]) -> dict[str, dict]:
    """TikTok's current objects of these returns (Search Returns by return_ids), or of these cancellations
    (Search Cancellations by cancel_ids), by id."""
    found: dict[str, dict] = {}
    cancellations = kind == domain.CANCELLATION_KIND
    id_field = "cancel_id" if cancellations else "return_id"
    with tiktok_session(db, account, transport=transport, **options) as client:
        for start in range(0, len(return_ids), RESYNC_IDS):
            chunk = list(return_ids[start:start + RESYNC_IDS])
            wanted = set(chunk)
            if cancellations:
                objects = client.search_cancellations({"cancel_ids": chunk}, page_size=RESYNC_IDS).cancellations
            else:
                objects = client.search_returns({"return_ids": chunk}, page_size=RESYNC_IDS).return_orders
            for obj in objects:
                if isinstance(obj, dict) and str(obj.get(id_field)) in wanted:
                    found[str(obj[id_field])] = obj
    return found


def _resync(db: Database, shop_id: str, kind: str, claimed: list[inbox.ClaimedEvent],
            transport: httpx.BaseTransport | None, options: dict[str, Any]
            ) -> tuple[list[inbox.Settled], list[dict[str, Any]], int]:
    """RETURN_STATUS_CHANGE (or, for kind 'cancellation', CANCELLATION_STATUS_CHANGE) events of one shop:
    re-read their returns (cancellations) from TikTok and store them.

    Returns the events' outcomes, history entries for the returns that changed, and how many did.
    """
    account = acc.find_by_shop_id(db, shop_id)
    if account is None:
        return [inbox.Settled(e.notification_id, inbox.SKIPPED, "Not re-synced: the shop's account was removed.")
                for e in claimed], [], 0
    status = account.status
    if status != acc.ACTIVE:
        # nothing can be read for it now; the first sync after it is enabled or reconnected catches up
        return [inbox.Settled(e.notification_id, inbox.SKIPPED,
                              f"Not re-synced: the account {account.name} is {status}; its next sync catches up.")
                for e in claimed], [], 0
    return_ids = list(dict.fromkeys(e.return_id for e in claimed if e.return_id))
    try:
        before = inbox.stored_returns(db, shop_id, return_ids)
        fetched = _fetch_returns(db, account, return_ids, kind, transport, options)
        synced_at = utcnow()
        upsert_page(db, shop_id, list(fetched.values()), synced_at=synced_at, kind=kind)
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome on the event, never lost
        if authorization_refused(exc):  # tiktok_session marked the account Invalid
            reason = f"Not re-synced: TikTok refused the authorization of {account.name}; reconnect the shop."
            return [inbox.Settled(e.notification_id, inbox.SKIPPED, reason) for e in claimed], [], 0
        failure = explain(exc)
        if failure.kind is FailureKind.UNEXPECTED:
            logger.exception("webhook re-sync of %s failed", shop_id)
        reason = failure.message
        return [_retry_or_fail(e, reason) for e in claimed], [], 0

    outcomes: list[inbox.Settled] = []
    by_return: dict[str, list[inbox.ClaimedEvent]] = {}
    for event in claimed:
        by_return.setdefault(event.return_id or "", []).append(event)
    entries: list[dict[str, Any]] = []
    cancellations = kind == domain.CANCELLATION_KIND
    noun, search, topic = (("cancellation", "Search Cancellations", "CANCELLATION_STATUS_CHANGE") if cancellations
                           else ("return", "Search Returns", "RETURN_STATUS_CHANGE"))
    status_field = "cancel_status" if cancellations else "return_status"
    for return_id, its_events in by_return.items():
        obj = fetched.get(return_id)
        if obj is None:
            reason = f"TikTok's {search} does not list {noun} {return_id} (yet)."
            outcomes.extend(_retry_or_fail(e, reason) for e in its_events)
            continue
        now_status, now_time = obj.get(status_field), update_time(obj)
        old_status, old_time = before.get(return_id, (None, None))
        changed = return_id not in before or old_time != now_time or old_status != now_status
        if changed:
            entries.append(entry(shop_id, return_id, WEBHOOK_ACTOR, "webhook", old=old_status, new=now_status,
                                 note=f"TikTok's {topic} event: re-read from TikTok",
                                 details={"tts_notification_ids": [e.notification_id for e in its_events],
                                          "update_time": now_time},
                                 at=synced_at))
        for event in its_events:
            event_time = update_time(_data(event))  # type 11 carries no update_time: nothing to compare
            if event_time is not None and now_time is not None and now_time < event_time:
                # TikTok announced a change its search does not show yet: read again shortly
                outcomes.append(_retry_or_fail(event, f"TikTok still lists {noun} {return_id} as it was before "
                                                      "the event."))
                continue
            said = f" (the event said {event.event_status})" if event.event_status not in (None, now_status) else ""
            what = f"changed from {old_status}" if changed and old_status else ("new" if changed else "unchanged")
            outcomes.append(inbox.Settled(event.notification_id, inbox.DONE,
                                          f"Re-synced: TikTok says {now_status} ({what}){said}."))
    return outcomes, entries, len(entries)


def _data(event: inbox.ClaimedEvent) -> dict[str, Any]:
    """The `data` of a stored event's body ({} when there is none)."""
    try:
        data = json.loads(event.body).get("data")
    except (ValueError, AttributeError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _deauthorized(db: Database, event: inbox.ClaimedEvent, transport: httpx.BaseTransport | None) -> inbox.Settled:
    """SELLER_DEAUTHORIZATION: the account becomes Invalid, unless TikTok still accepts it.

    Asking TikTok first is what makes a late or repeated event harmless: after the seller
    authorized the app again (and the shop was reconnected), an old deauthorization must not
    turn a working account Invalid.
    """
    from returns_core.connect import test_connection  # connect imports the demo, which imports this late

    account = acc.find_by_shop_id(db, event.shop_id)
    if account is None:
        return inbox.Settled(event.notification_id, inbox.SKIPPED, "No account has this shop any more.")
    when = event.event_time.strftime("%Y-%m-%d %H:%M UTC") if event.event_time else "at an unknown time"
    try:
        check = test_connection(db, account, transport=transport)
    except StoreError as exc:
        return _retry_or_fail(event, explain_error(exc))
    except Exception as exc:  # noqa: BLE001 - the account cannot be asked about: the signed event stands
        check = None
        reason = explain_error(exc)
    else:
        reason = check.message
    if check is not None and check.ok:
        return inbox.Settled(event.notification_id, inbox.DONE,
                             f"TikTok still accepts the authorization of {account.name} (granted again since "
                             f"the event): left as it is.")
    acc.mark_invalid(db, account.shop_id, f"The seller deauthorized the app on TikTok ({when}): reconnect the "
                                          f"shop on the Accounts page")
    return inbox.Settled(event.notification_id, inbox.DONE, f"{account.name} marked Invalid. TikTok: {reason}")


def _expiring(db: Database, event: inbox.ClaimedEvent) -> inbox.Settled:
    """UPCOMING_AUTHORIZATION_EXPIRATION: an alert.

    Raised at once through the alerts engine's hook, and also left on the row as 'wanted': the
    engine's own rounds take wanted alerts (raising is once per subject and rule, so the second
    raise is a no-op), which covers a hook that failed or found no channel set up yet.
    """
    raw_expiry = _data(event).get("expiration_time")
    expires = _unix_time(raw_expiry)
    account = acc.find_by_shop_id(db, event.shop_id)
    name = account.name if account else f"shop {event.shop_id}"
    when = expires.strftime("%Y-%m-%d %H:%M UTC") if expires else "soon"
    said = f"The authorization of {name} expires {when}; reconnect before then."
    try:
        from returns_core import alerts  # the alerts engine (apprise): only needed for this event

        raised = alerts.raise_authorization_expiring(db, event.shop_id, raw_expiry, raised_by="webhook")
    except StoreError as exc:
        return _retry_or_fail(event, explain_error(exc))
    except Exception as exc:  # noqa: BLE001 - the wanted mark stays for the engine's next round
        logger.warning("alert for %s not raised now: %s", event.shop_id, explain_error(exc))
        raised = None
    outcome = f"Alert raised: {said}" if raised is not None else \
        f"Alert wanted: {said} (sent by the alerts engine when a channel and the rule are on)"
    return inbox.Settled(event.notification_id, inbox.DONE, outcome, alert=inbox.ALERT_WANTED)


# --- alerts the alerts engine sends ------------------------------------------------------------


@dataclass(frozen=True)
class WantedAlert:
    """An alert a webhook asks for: today an authorization about to expire (type 7)."""

    notification_id: str
    shop_id: str
    account_name: str | None
    topic: str
    expires_at: datetime | None  # for UPCOMING_AUTHORIZATION_EXPIRATION
    message: str
    received_at: datetime


def wanted_alerts(db: Database) -> list[WantedAlert]:
    """Alerts webhooks asked for that the alerts engine has not taken yet (oldest first)."""
    names = {a.shop_id: a.name for a in acc.list_accounts(db)}
    wanted = []
    for row in inbox.wanted_alerts(db):
        try:
            data = json.loads(row["body"]).get("data") or {}
        except (ValueError, AttributeError, TypeError):
            data = {}
        wanted.append(WantedAlert(row["tts_notification_id"], row["shop_id"], names.get(row["shop_id"]),
                                  events.TOPIC_OF_TYPE.get(row["event_type"], str(row["event_type"])),
                                  _unix_time(data.get("expiration_time")) if isinstance(data, dict) else None,
                                  row["outcome"] or "", row["received_at"]))
    return wanted


def take_alerts(db: Database, notification_ids: Sequence[str]) -> None:
    """The alerts engine has these (it sends each once): they are no longer wanted."""
    inbox.take_alerts(db, notification_ids)


# --- subscribing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A shop's webhook addresses as TikTok lists them, by topic."""

    addresses: dict[str, str]

    @property
    def address(self) -> str | None:
        """Where the shop's return events go (RETURN_STATUS_CHANGE), if anywhere."""
        return self.addresses.get("RETURN_STATUS_CHANGE")

    def covers(self, address: str) -> bool:
        """True when every topic Returns Desk handles goes to `address`."""
        return all(self.addresses.get(topic) == address for topic in HANDLED_TOPICS)


def local_address(port: int, host: str | None = None, *, https: bool = False) -> str:
    """This app's own receiver as seen from this machine: http://127.0.0.1:PORT/webhooks/tiktok.

    `host` is the address the server listens on (Streamlit's server.address): a wildcard, localhost
    or a loopback address is reached as 127.0.0.1; any other is used as it is.
    """
    host = (host or "").strip()
    if host in ("", "0.0.0.0", "::", "localhost") or events.is_loopback_address(f"http://{host}/"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if https else 'http'}://{host}:{int(port)}{PATH}"


def _local_tiktok(account: Account) -> bool:
    """True for a sandbox account: the demo's, or one whose TikTok runs on this machine (`sandbox serve`)."""
    return account.mode == acc.SANDBOX_MODE


def address_problem(account: Account, address: str) -> str | None:
    """Why TikTok (or, for a sandbox account, the sandbox) would refuse this address; None when fine."""
    local = _local_tiktok(account)
    if local and isinstance(address, str) and events.is_loopback_address(address.strip()):
        return None  # the sandbox also delivers to this machine
    problem = events.public_address_problem(address.strip() if isinstance(address, str) else address)
    if problem and local:
        problem += " (The sandbox also accepts http://127.0.0.1:PORT/... on this machine.)"
    return problem


def _listed(hooks: list[dict]) -> Subscription:
    return Subscription({str(h.get("event_type")): str(h.get("address")) for h in hooks
                         if isinstance(h, dict) and h.get("event_type") and h.get("address")})


def subscription(db: Database, account: Account, *, transport: httpx.BaseTransport | None = None) -> Subscription:
    """The shop's webhook addresses, asked of TikTok (GET /event/202309/webhooks)."""
    with tiktok_session(db, account, transport=transport) as client:
        return _listed(client.get_webhooks())


def subscribe(db: Database, account: Account, address: str, *, topics: Sequence[str] = HANDLED_TOPICS,
              transport: httpx.BaseTransport | None = None) -> Subscription:
    """Send the shop's events of these topics to `address` (PUT /event/202309/webhooks per topic).

    Raises ValueError, before asking TikTok, for an address it would refuse: TikTok only delivers to
    a public HTTPS domain name (events.PUBLIC_ADDRESS_RULE); the sandbox also to this machine.
    """
    address = (address or "").strip()
    problem = address_problem(account, address)
    if problem:
        raise ValueError(problem)
    with tiktok_session(db, account, transport=transport) as client:
        for topic in topics:
            client.update_webhook(topic, address)
        return _listed(client.get_webhooks())


def unsubscribe(db: Database, account: Account, *, topics: Sequence[str] = HANDLED_TOPICS,
                transport: httpx.BaseTransport | None = None) -> Subscription:
    """Stop the shop's events of these topics (DELETE /event/202309/webhooks per topic)."""
    with tiktok_session(db, account, transport=transport) as client:
        for topic in topics:
            client.delete_webhook(topic)
        return _listed(client.get_webhooks())


def describe_body(body: str | None) -> str:
    """An event's body for display: pretty JSON when it is JSON (events carry no secret)."""
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body
