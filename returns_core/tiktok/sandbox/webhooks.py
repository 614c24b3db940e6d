"""Webhooks as TikTok Shop sends them: subscriptions per shop and topic, and a delivery thread.

Subscriptions are what GET/PUT/DELETE /event/202309/webhooks read and write; they live in the state
file with the rest of the sandbox. The `Dispatcher` POSTs each event, signed in the `Authorization`
header (docs/tiktok_api.md section 7), from one background thread, so an answer to an API call never
waits for a receiver. Like TikTok it delivers at least once: some events twice, some held back so
later ones overtake them (both seeded, both settable to zero), and a push that fails (no answer
within 3 s, or a status other than 2xx or 401) is retried after 2 min, 30 min, 3 h and 12 h, then
dropped. Those delays count real time plus whatever `Sandbox.advance()` adds, so advancing the
clock brings retries due; tests may set shorter ones. The queue is bounded; what does not fit is
counted and dropped, which the desk's scheduled sync (the safety net) makes good.

A CANCELLATION_STATUS_CHANGE (11) goes out the same way for every step of a buyer's cancellation
(its request, the seller's answer or TikTok's at the deadline, the buyer withdrawing, the refund).

A RETURN_STATUS_CHANGE goes out for every step of a return (docs/tiktok_api.md section 5: every
transition fires webhook 12), also a step that keeps its status, such as the package arriving,
which opens a new seller deadline; `status_changes_only` keeps only real status changes, as the
Partner Center's trigger list reads. When the clock jumps, each return's steps go out in order,
one return after another.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import httpx

from .. import events
from ..signing import webhook_signature
from .auth import App
from .cancellations import CLOSED, CLOSED_202309, CancelCase
from .cases import ReturnCase

logger = logging.getLogger(__name__)

USER_AGENT = "TikTokShop-Sandbox-Webhook (Returns Desk)"
EXPIRY_NOTICE_DAYS = 30  # UPCOMING_AUTHORIZATION_EXPIRATION starts 30 days ahead, then daily at 0:00 UTC
_LOG_SIZE = 1000


@dataclass(frozen=True)
class WebhookSettings:
    """How the sandbox delivers webhooks. The defaults behave like TikTok; tests turn the chaos off."""

    duplicate_rate: float = 0.05  # share of events pushed a second time (same tts_notification_id)
    reorder_rate: float = 0.1  # share of events held back, so later events overtake them
    reorder_delay: float = 2.0  # a held-back event waits up to this many seconds
    retry_delays: tuple[float, ...] = events.RETRY_DELAYS  # after each failed push; then it is dropped
    timeout: float = events.ANSWER_WITHIN_SECONDS  # a receiver answering later has failed
    max_pending: int = 10_000  # pushes waiting (first tries, duplicates and retries); more are dropped
    seed: int | None = None  # duplicates and hold-backs; None: the sandbox's seed
    status_changes_only: bool = False  # True: no event for a step that keeps the return's status

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "reorder_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.reorder_delay < 0 or self.timeout <= 0 or any(d < 0 for d in self.retry_delays):
            raise ValueError("reorder_delay and retry_delays must be 0 or more, and timeout above 0")
        if self.max_pending < 1:
            raise ValueError("max_pending must be at least 1")


def address_problem(address: object) -> str | None:
    """Why the sandbox refuses a webhook address: TikTok's rule, except that local receivers pass.

    TikTok only pushes to public HTTPS domain names. The sandbox also accepts http(s) on
    127.0.0.1, ::1 or localhost with any port, so a user without a public address (and the tests)
    can receive its webhooks; it would never reach such an address from TikTok's side.
    """
    if isinstance(address, str) and len(address) <= events.ADDRESS_MAX and events.is_loopback_address(address):
        return None
    problem = events.public_address_problem(address)
    if problem is None:
        return None
    return f"{problem} (The sandbox also accepts http://127.0.0.1:PORT/... for a receiver on this machine.)"


# --- subscriptions ---------------------------------------------------------------------------------


@dataclass
class Subscription:
    """One shop's address for one topic, with Get Shop Webhooks' create and update times."""

    address: str | None  # None: deleted, kept so that the deletion wins a merge with an older copy
    create_time: int
    update_time: int
    stamp: float  # real time of the change (not the world's): across processes sharing a state file, the later wins


class Subscriptions:
    """Webhook addresses per shop and topic, as Get Shop Webhooks lists them."""

    def __init__(self) -> None:
        self._by_shop: dict[str, dict[str, Subscription]] = {}

    def put(self, shop_id: str, topic: str, address: str, now: int) -> None:
        """Update Shop Webhook: set (or replace) the address of one topic at world time `now`."""
        current = self._by_shop.get(shop_id, {}).get(topic)
        created = current.create_time if current is not None and current.address is not None else now
        self._by_shop.setdefault(shop_id, {})[topic] = Subscription(address, created, now, time.time())

    def delete(self, shop_id: str, topic: str, now: int) -> None:
        """Delete Shop Webhook: stop the topic (fine when it was never set)."""
        if self.address(shop_id, topic) is not None:
            self._by_shop[shop_id][topic] = Subscription(None, now, now, time.time())

    def address(self, shop_id: str, topic: str) -> str | None:
        """Where the shop's events of this topic go, if anywhere."""
        found = self._by_shop.get(shop_id, {}).get(topic)
        return found.address if found is not None else None

    def subscribers(self, topic: str) -> list[tuple[str, str]]:
        """(shop_id, address) of every shop subscribed to the topic."""
        return [(shop_id, topics[topic].address) for shop_id, topics in self._by_shop.items()
                if topic in topics and topics[topic].address is not None]

    def listing(self, shop_id: str) -> list[dict]:
        """The shop's live subscriptions in Get Shop Webhooks' shape, oldest first."""
        found = [(topic, sub) for topic, sub in self._by_shop.get(shop_id, {}).items() if sub.address is not None]
        found.sort(key=lambda item: (item[1].create_time, item[0]))
        return [{"event_type": topic, "address": sub.address, "create_time": sub.create_time,
                 "update_time": sub.update_time} for topic, sub in found]

    def to_json(self) -> dict:
        """The subscriptions (deletions included) for the state file."""
        return {shop_id: {topic: asdict(sub) for topic, sub in topics.items()}
                for shop_id, topics in self._by_shop.items()}

    def merge(self, doc: dict) -> None:
        """Fold in another process's subscriptions: per shop and topic, the later change wins."""
        for shop_id, topics in doc.items():
            for topic, raw in topics.items():
                theirs = Subscription(**raw)
                mine = self._by_shop.get(shop_id, {}).get(topic)
                if mine is None or theirs.stamp > mine.stamp:
                    self._by_shop.setdefault(shop_id, {})[topic] = theirs


# --- event bodies ----------------------------------------------------------------------------------

# The webhook's return_role knows BUYER, SELLER and SYSTEM only; customer service opens on the buyer's behalf.
_WEBHOOK_ROLE = {"OPERATOR": "SYSTEM"}


def return_status_data(case: ReturnCase) -> dict:
    """`data` of a RETURN_STATUS_CHANGE (12) event for the return as it is now."""
    return {"order_id": case.order_id, "return_id": case.return_id,
            "return_role": _WEBHOOK_ROLE.get(case.role, case.role), "return_type": case.return_type,
            "return_status": case.status, "create_time": case.create_time, "update_time": case.update_time}


def cancellation_status_data(case: CancelCase) -> dict:
    """`data` of a CANCELLATION_STATUS_CHANGE (11) event for the cancellation as it is now.

    docs/tiktok_api.md section 7: "11 | CANCELLATION_STATUS_CHANGE | order_id, cancel_id, cancellations_role,
    cancel_status, create_time", as in the sample payload of the [IK] notes:
        "data": {"order_id": "576486316948490001", "cancellations_role": "BUYER",
                 "cancel_status": "CANCELLATION_REQUEST_PENDING", "cancel_id": "4035318504086604100",
                 "create_time": 1627587600}
    No update_time (unlike type 12). Section 9.5: webhook 11 spells the closed status
    CANCELLATION_REQUEST_CANCELLED, as Search Cancellations 202309 does.
    """
    return {"order_id": case.order_id, "cancellations_role": case.role,
            "cancel_status": CLOSED_202309 if case.status == CLOSED else case.status,
            "cancel_id": case.cancel_id, "create_time": case.create_time}


def deauthorization_data(shop_id: str) -> dict:
    """`data` of a SELLER_DEAUTHORIZATION (6) event."""
    return {"message": f"Shop_id {shop_id} is deauthorized from your APP by merchant."}


def expiration_data(shop_id: str, expires: int, now: int) -> dict:
    """`data` of an UPCOMING_AUTHORIZATION_EXPIRATION (7) event; expiration_time is a string, as TikTok sends it."""
    days = max(1, -(-(expires - now) // 86_400))
    return {"message": f"Authorization of shop_id {shop_id} is expiring in {days} days. "
                       "Please direct the merchant to re-authorize.",
            "expiration_time": str(expires)}


# --- delivery --------------------------------------------------------------------------------------


@dataclass
class Push:
    """One event on its way to one address; `attempts` counts the POSTs made so far."""

    notification_id: str
    event_type: int
    shop_id: str
    address: str
    body: bytes
    attempts: int = 0
    duplicate: bool = False  # the second push of an event, as TikTok's at-least-once delivery does


@dataclass(frozen=True)
class Attempt:
    """One POST and how it ended: "delivered" (2xx), "refused" (401: TikTok stops too) or "failed"."""

    notification_id: str
    event_type: int
    shop_id: str
    attempt: int
    outcome: str
    status: int | None
    error: str | None = None
    duplicate: bool = False


@dataclass(order=True)
class _Queued:
    """A push in the queue, ordered by when it is due (then by when it was queued)."""

    due: float
    seq: int
    push: Push = field(compare=False)


class Dispatcher:
    """The background sender. push() queues and returns at once; one thread does the POSTs."""

    def __init__(self, app_of_shop: Callable[[str], App], settings: WebhookSettings, seed: int):
        self._app_of_shop = app_of_shop  # each push is signed with the app its shop authorized
        self.settings = settings
        self._rng = random.Random(f"sandbox-webhooks:{settings.seed if settings.seed is not None else seed}")
        self._cond = threading.Condition()
        self._queue: list[_Queued] = []
        self._seq = itertools.count()
        self._skipped = 0.0  # seconds Sandbox.advance() added: pending retries come due that much sooner
        self._ids = itertools.count(secrets.randbelow(1 << 21))
        self._counts: Counter[str] = Counter()
        self._log: deque[Attempt] = deque(maxlen=_LOG_SIZE)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._transport: httpx.BaseTransport | None = None

    # --- control -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the delivery thread runs (events are only made while it does)."""
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def start(self, transport: httpx.BaseTransport | None = None) -> None:
        """Start the delivery thread (a no-op when it runs); `transport` replaces the network (tests)."""
        with self._cond:
            if self.running:
                return
            self._stopping = False
            self._transport = transport
            self._thread = threading.Thread(target=self._run, name="tiktok-sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the POST in flight (at most `timeout` seconds); what is still queued is dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.settings.timeout + 5)
        with self._cond:
            self._counts["abandoned"] += len(self._queue)
            self._queue.clear()
            self._thread = None

    def skip(self, seconds: float) -> None:
        """The sandbox clock jumped ahead: so does every pending push's wait."""
        with self._cond:
            self._skipped += seconds
            self._cond.notify_all()

    def clock(self) -> float:
        """Real elapsed time plus what advance() skipped: the clock retries are scheduled on."""
        return time.monotonic() + self._skipped

    # --- what tests and the CLI read ---------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts: events, duplicates, held_back, delivered, refused, failed (attempts), retried,
        gave_up, dropped (queue full), abandoned (queued at stop), pending (queued now)."""
        with self._cond:
            return {**{key: 0 for key in ("events", "duplicates", "held_back", "delivered", "refused", "failed",
                                          "retried", "gave_up", "dropped", "abandoned")},
                    **self._counts, "pending": len(self._queue)}

    def attempts(self) -> list[Attempt]:
        """The latest POSTs (up to 1000), oldest first."""
        with self._cond:
            return list(self._log)

    # --- sending ------------------------------------------------------------------------------

    def push(self, event_type: int, shop_id: str, address: str, data: dict, timestamp: int) -> str | None:
        """Queue one event for `address`; returns its tts_notification_id (None: queue full, dropped)."""
        notification_id = self._new_id()
        body = json.dumps({"type": event_type, "tts_notification_id": notification_id, "shop_id": shop_id,
                           "timestamp": timestamp, "data": data}, separators=(",", ":"), ensure_ascii=False).encode()
        push = Push(notification_id, event_type, shop_id, address, body)
        with self._cond:
            # four draws per event, whatever the rates, so one seed gives one pattern
            hold, hold_for, again, again_after = (self._rng.random() for _ in range(4))
            due = self.clock()
            if hold < self.settings.reorder_rate:
                due += (0.25 + 0.75 * hold_for) * self.settings.reorder_delay
                self._counts["held_back"] += 1
            if not self._enqueue(push, due):
                return None
            self._counts["events"] += 1
            if again < self.settings.duplicate_rate and self._enqueue(replace(push, duplicate=True),
                                                                      due + 0.05 + again_after):
                self._counts["duplicates"] += 1
        return notification_id

    def _enqueue(self, push: Push, due: float) -> bool:
        """Queue a push for `due` (dispatcher clock); False when the queue is full and it was dropped."""
        if len(self._queue) >= self.settings.max_pending:
            if not self._counts["dropped"]:
                logger.warning("sandbox webhooks: %d pushes waiting; dropping new ones", len(self._queue))
            self._counts["dropped"] += 1
            return False
        heapq.heappush(self._queue, _Queued(due, next(self._seq), push))
        self._cond.notify_all()
        return True

    def _new_id(self) -> str:
        """A new tts_notification_id: 19 digits, like TikTok's."""
        # TikTok's ids look like snowflakes: milliseconds, then a sequence; unique across restarts
        # (a receiver dedupes on it, so a reused id would hide a new event)
        return str(int(time.time() * 1000) << 22 | next(self._ids) & 0x3FFFFF)

    def _run(self) -> None:
        """The delivery thread: POST each push when due, one at a time, until stopped."""
        http: httpx.Client | None = None  # made on the first push: most sandboxes never send one
        try:
            while (push := self._next_due()) is not None:
                if http is None:
                    # no proxy from the environment between the sandbox and a receiver on 127.0.0.1
                    http = httpx.Client(transport=self._transport, timeout=self.settings.timeout,
                                        follow_redirects=False, trust_env=False)
                status, error = self._post(http, push)
                with self._cond:
                    self._settle(push, status, error)
        finally:
            if http is not None:
                http.close()

    def _next_due(self) -> Push | None:
        """The next push whose time has come, waiting for it; None once stopping."""
        with self._cond:
            while not self._stopping:
                wait = 1.0
                if self._queue:
                    wait = self._queue[0].due - self.clock()
                    if wait <= 0:
                        return heapq.heappop(self._queue).push
                self._cond.wait(timeout=min(wait, 1.0))
            return None

    def _post(self, http: httpx.Client, push: Push) -> tuple[int | None, str | None]:
        """One signed POST: (HTTP status, None), or (None, the kind of error) when no answer came."""
        app = self._app_of_shop(push.shop_id)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "Authorization": webhook_signature(app.key, app.secret, push.body)}
        try:
            response = http.post(push.address, content=push.body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is a failed push, never a dead thread
            return None, exc.__class__.__name__
        return response.status_code, None

    def _settle(self, push: Push, status: int | None, error: str | None) -> None:
        """Record an attempt; after a failure, queue the next retry or give up after the last."""
        push.attempts += 1
        if status is not None and (200 <= status < 300 or status == 401):
            # TikTok's guide: answer 200, or 401 for a bad signature; either ends the pushes
            outcome = "delivered" if status != 401 else "refused"
        else:
            outcome = "failed"
        self._counts[outcome] += 1
        self._log.append(Attempt(push.notification_id, push.event_type, push.shop_id, push.attempts, outcome,
                                 status, error, push.duplicate))
        if outcome != "failed":
            return
        delays = self.settings.retry_delays
        if self._stopping:
            self._counts["abandoned"] += 1
            return
        if push.attempts > len(delays):
            self._counts["gave_up"] += 1
            return
        if self._enqueue(push, self.clock() + delays[push.attempts - 1]):
            self._counts["retried"] += 1
