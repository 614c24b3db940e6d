"""The Sandbox: one simulated TikTok Shop seller, served in-process (httpx transport) or over HTTP.

World time is the wall clock plus an offset that `advance()` moves, so a running sandbox lives in
real time and tests can jump ahead. Signed timestamps are checked against the wall clock (clients
sign with real time); everything in the world (returns, deadlines, token expiry) uses world time.

With a state file, the sandbox survives restarts, and processes sharing the file (the app and a
cron sync both run the in-process demo shop) see each other's tokens, decisions and webhook
subscriptions: each write merges what is on disk under a file lock, and each call first picks up
what others wrote.

Live mode (`start_background()`, on by default in `serve()`): a clock thread moves the world every
second, and a delivery thread sends webhooks (see webhooks.py) for every step of a return, a
revoked authorization and an authorization about to expire, to the shops that subscribed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx

from .. import errors, events
from .api import Api, Request
from .auth import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, App, AuthStore, make_apps
from .cancellations import CancelCase
from .cases import ReturnCase
from .catalogue import DAY, build_catalogue
from .envelope import SandboxResponse, new_request_id, respond
from .faults import ANSWERED_UPFRONT, Fault, Faults
from .quota import AppQuota
from .search import ReturnSearch
from .server import SandboxServer
from .ticker import Ticker
from .transport import SandboxTransport
from .webhooks import (
    EXPIRY_NOTICE_DAYS,
    Dispatcher,
    Subscriptions,
    WebhookSettings,
    cancellation_status_data,
    deauthorization_data,
    expiration_data,
    return_status_data,
)
from .world import World

__all__ = ["SANDBOX_APP_KEY", "SANDBOX_APP_SECRET", "Sandbox", "SandboxStateError"]
STATE_FORMAT = 1
_MALFORMED_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"


TOO_MANY_MESSAGE = "Too many requests. You've made too many requests in a short period of time."


class SandboxStateError(ValueError):
    """The state file cannot be used with these settings (or cannot be read)."""


class Sandbox:
    def __init__(self, seed: int = 7, shops: int = 2, returns: int = 500, *, anchor: int | None = None,
                 history_days: int = 90, wall_clock: Callable[[], float] = time.time,
                 state_path: Path | str | None = None, webhooks: WebhookSettings | None = None,
                 app_rate_limit: float | None = None, apps: int = 1, cancellations: int = 0):
        self.seed = seed
        self.catalogue = build_catalogue(seed, shops)
        # TikTok's developer apps; the shops are split between them (auth.make_apps)
        self.apps: list[App] = make_apps(apps, [shop.id for shop in self.catalogue.shops])
        self.app_key, self.app_secret = self.apps[0].key, self.apps[0].secret  # the demo app
        self.faults = Faults()
        # TikTok's budget per app (None: unlimited, as TikTok looks when the limit is not met)
        self.quota = AppQuota(app_rate_limit) if app_rate_limit is not None else None
        self._wall = wall_clock
        self._lock = threading.RLock()
        self._settings = {"seed": seed, "shops": shops, "returns": returns, "history_days": history_days,
                          **({"apps": apps} if apps != 1 else {})}  # files from before apps have one
        if cancellations:  # buyers' cancellations per shop over the history (0: none; state files from before)
            self._settings["cancellations"] = cancellations
        self._state_path = Path(state_path) if state_path is not None else None
        self._disk_stamp = _stamp(self._state_path)
        saved = self._read_state()
        if saved and anchor is not None and anchor != saved["anchor"]:
            raise SandboxStateError(f"{self._state_path} holds a sandbox anchored at {saved['anchor']}, not "
                                    f"{anchor}. Delete it to start over.")
        self.anchor: int = saved["anchor"] if saved else (anchor if anchor is not None else _floor_day(wall_clock()))
        self._offset: float = saved["offset"] if saved else 0.0
        self._auth = AuthStore(self.catalogue, self.apps)
        self._idempotency: dict[str, dict] = saved["idempotency"] if saved else {}
        self._subscriptions = Subscriptions()
        if saved:
            self._auth.load(saved["auth"])
            self._subscriptions.merge(saved.get("webhooks", {}))  # absent in files from before webhooks
        self.webhooks = Dispatcher(self._app_of_shop, webhooks or WebhookSettings(), seed)
        self._ticker: Ticker | None = None
        self._expiry_noticed: dict[str, int] = {}  # shop id -> the last expiry notice's scheduled time
        self._start_world(saved["decisions"] if saved else [])
        with self._lock:
            self._save()

    # --- clock ----------------------------------------------------------------------------------

    def now(self) -> int:
        """World time: the wall clock plus whatever advance() added."""
        return int(self._wall() + self._offset)

    def advance(self, seconds: float) -> None:
        """Move world time forward: returns arrive and move through their lifecycle."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._current():
            self._offset += seconds
            self.webhooks.skip(seconds)
            self._catch_up(self.now())
            self._save()

    # --- the seller and its shops ---------------------------------------------------------------

    @property
    def shops(self) -> list[dict]:
        """The shops as GET /authorization/202309/shops lists them."""
        return [shop.public() for shop in self.catalogue.shops]

    def issue_auth_code(self, shop_ids: list[str] | None = None, app_key: str | None = None) -> str:
        """A one-use code (30 minutes) authorizing these shops (default: all of the app's) for an app
        (default: the demo app), as the redirect would carry."""
        with self._current():
            code = self._auth.issue_code(shop_ids, self.now(), app_key)
            self._save()
            return code

    def issue_tokens(self, shop_ids: list[str] | None = None, app_key: str | None = None) -> dict:
        """Skip the code: the `data` that token/get would answer."""
        with self._current():
            data = self._auth.issue_tokens(shop_ids, self.now(), app_key)
            self._save()
            return data

    def _app_of_shop(self, shop_id: str) -> App:
        """The app a shop's webhooks are signed with."""
        return next((app for app in self.apps if shop_id in app.shop_ids), self.apps[0])

    def expire_access_token(self, access_token: str) -> None:
        with self._current():
            self._auth.expire(access_token, self.now())
            self._save()

    def revoke(self, token: str) -> None:
        """The seller deauthorizes the app: the token's whole grant stops working, and each of its
        shops subscribed to SELLER_DEAUTHORIZATION is told so."""
        with self._current():
            for shop_id in self._auth.revoke(token):
                self._notify(events.SELLER_DEAUTHORIZATION, shop_id, deauthorization_data(shop_id), self.now())
            self._save()

    def returns_for(self, shop_id: str) -> list[dict]:
        """Ground truth: every return of the shop now, as Search Returns serializes it (create_time order)."""
        with self._current():
            self._world.run_until(self.now())
            cases = sorted(self._world.cases(shop_id), key=lambda c: (c.create_time, c.key))
            return [json.loads(case.to_json()) for case in cases]

    def units_sold_for(self, shop_id: str, day: date) -> dict[str, tuple[int, int]]:
        """Ground truth: {sku_id: (orders, units sold)} as the Analytics API reports the shop's local day
        now (empty when TikTok has no figures for it yet)."""
        with self._current():
            shop = self.catalogue.shop_by_id(shop_id)
            assert shop is not None, f"no shop {shop_id}"
            latest = self._api.sales.latest_available_date(shop, self.now())
            found = {sku.sku_id: self._api.sales.reported(shop, sku, day, latest) for sku in shop.skus}
            return {sku_id: (f.orders, f.units) for sku_id, f in found.items() if f is not None}

    def latest_sales_date(self, shop_id: str) -> date:
        """The latest shop-local day the Analytics API has figures for (yesterday, shop time)."""
        shop = self.catalogue.shop_by_id(shop_id)
        assert shop is not None, f"no shop {shop_id}"
        return self._api.sales.latest_available_date(shop, self.now())
    def cancellations_for(self, shop_id: str) -> list[dict]:
        """Ground truth: every cancellation of the shop now, as Search Cancellations 202309 serializes it."""
        with self._current():
            self._world.run_until(self.now())
            cases = sorted(self._world.cancellations.cases(shop_id), key=lambda c: (c.create_time, c.key))
            return [json.loads(case.to_json()) for case in cases]

    def cancellation_window(self, shop_id: str) -> int | None:
        """The hours this shop gives itself to answer a cancellation (None: before ready-to-ship)."""
        return self._world.cancellations.windows[shop_id]

    # --- serving ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: list[tuple[str, str]], headers: Mapping[str, str],
               body: bytes) -> SandboxResponse:
        """Answer one request (query as decoded pairs, body as raw bytes)."""
        response = self.answer(method, path, query, headers, body)
        if response.delay:
            time.sleep(response.delay)
        return response

    def answer(self, method: str, path: str, query: list[tuple[str, str]], headers: Mapping[str, str],
               body: bytes) -> SandboxResponse:
        """Like handle(), but a "timeout" fault's delay is left to the caller (response.delay),
        so a transport can turn it into its own client-side timeout."""
        fault = self.faults.take(path)
        if fault is not None and fault.kind in ANSWERED_UPFRONT:
            return self._fault_answer(fault)
        params: dict[str, str] = {}
        for key, value in query:
            params.setdefault(key, value)  # TikTok signs the first value of a repeated key
        if (self.quota is not None and not path.startswith("/api/v2/token/")
                # real time, not the world's (which tests may freeze or move): requests per real second
                and not self.quota.take(params.get("app_key", ""), time.monotonic())):
            # no Retry-After: TikTok promises none, so a client must pace itself from the refusals
            return respond(errors.TOO_MANY_REQUESTS, TOO_MANY_MESSAGE, new_request_id(self.now()))
        with self._current():
            wall = self._wall()
            now = int(wall + self._offset)
            self._catch_up(now)
            request = Request(method.upper(), path, params, {k.lower(): v for k, v in headers.items()}, body,
                              now, wall)
            response = self._api.answer(request)
            if self._api.state_changed:
                self._api.state_changed = False
                self._save()
        if fault is not None:
            response.fault = fault.kind
            if fault.kind == "truncate":
                response.body = response.body[: len(response.body) // 2]
            elif fault.kind == "timeout":
                response.delay = fault.delay
        return response

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport answering in-process from this sandbox (no sockets)."""
        return SandboxTransport(self)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0, *, live: bool = True,
              tick: float = 1.0) -> Iterator[SandboxServer]:
        """A real HTTP server on a background thread; `server.url` serves API and token paths.

        With `live` (the default) the world also ticks every `tick` seconds and webhooks go out
        while it serves (unless start_background() already runs them; then they keep running).
        """
        server = SandboxServer(self, host, port)
        started = live and not self.live
        if started:
            self.start_background(tick)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            if started:
                self.stop_background()

    # --- live: the world ticks on its own, and webhooks go out ------------------------------------

    @property
    def live(self) -> bool:
        """True while start_background() runs the clock thread and webhook delivery."""
        return self._ticker is not None

    def start_background(self, tick: float = 1.0, transport: httpx.BaseTransport | None = None) -> None:
        """Move the world every `tick` seconds and deliver webhooks, on daemon threads, until
        stop_background(). The app's embedded demo sandbox calls this so its grid moves by itself.
        `transport` replaces the network for webhook POSTs (tests)."""
        with self._lock:
            if self._ticker is not None:
                return
            self.webhooks.start(transport)
            self._ticker = Ticker(tick, self._tick)
            self._ticker.start()

    def stop_background(self) -> None:
        """Stop the clock thread and webhook delivery (pushes still queued are dropped)."""
        with self._lock:
            ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
        self.webhooks.stop()

    def _tick(self) -> None:
        with self._current():
            self._catch_up(self.now())

    def _catch_up(self, now: int) -> None:
        """Let the world run to `now` (each step may send a webhook) and send authorization notices."""
        self._world.run_until(now)
        self._notice_expiring_authorizations(now)

    def _on_return_step(self, case: ReturnCase, before: str) -> None:
        """World listener: a return arrived or moved (RETURN_STATUS_CHANGE)."""
        self._on_step(events.RETURN_STATUS_CHANGE, case.shop.id, case.status, before, case.update_time,
                      lambda: return_status_data(case))

    def _on_step(self, event_type: int, shop_id: str, status: str, before: str, when: int,
                 data: Callable[[], dict]) -> None:
        """A return or cancellation took a step: tell its shop, if subscribed to the topic and authorized."""
        if not self.webhooks.running or (self.webhooks.settings.status_changes_only and before == status):
            return
        if self._subscriptions.address(shop_id, events.TOPIC_OF_TYPE[event_type]) is None:
            return  # the common case: say so before looking through the grants
        expires = self._auth.authorization_expiry(shop_id)
        if expires is not None and when < expires:
            self._notify(event_type, shop_id, data(), when)

    def _on_cancellation_step(self, case: CancelCase, before: str) -> None:
        """Cancellations' listener: a buyer's cancellation arrived or moved (CANCELLATION_STATUS_CHANGE)."""
        self._on_step(events.CANCELLATION_STATUS_CHANGE, case.shop.id, case.status, before, case.update_time,
                      lambda: cancellation_status_data(case))

    def _notice_expiring_authorizations(self, now: int) -> None:
        """UPCOMING_AUTHORIZATION_EXPIRATION: 30 days before a shop's authorization lapses, then
        daily at 0:00 UTC until it lapses or the seller authorizes again (which moves the expiry)."""
        if not self.webhooks.running:
            return
        for shop_id, _ in self._subscriptions.subscribers("UPCOMING_AUTHORIZATION_EXPIRATION"):
            expires = self._auth.authorization_expiry(shop_id)
            if expires is None or now >= expires or now < expires - EXPIRY_NOTICE_DAYS * DAY:
                continue
            due = max(expires - EXPIRY_NOTICE_DAYS * DAY, _floor_day(now))
            if self._expiry_noticed.get(shop_id, -1) < due:
                # one notice per day however far the clock jumped, stamped when TikTok would have sent it
                self._expiry_noticed[shop_id] = due
                self._notify(events.UPCOMING_AUTHORIZATION_EXPIRATION, shop_id, expiration_data(shop_id, expires, due),
                             due)

    def _notify(self, event_type: int, shop_id: str, data: dict, timestamp: int) -> None:
        """Queue one event for the shop's address of that topic, if it has one (and delivery runs)."""
        address = self._subscriptions.address(shop_id, events.TOPIC_OF_TYPE[event_type])
        if address is not None and self.webhooks.running:
            self.webhooks.push(event_type, shop_id, address, data, timestamp)

    def _fault_answer(self, fault: Fault) -> SandboxResponse:
        request_id = new_request_id(self.now())
        retry_after = {"Retry-After": format(fault.retry_after, "g")} if fault.retry_after is not None else {}
        if fault.kind == "429":
            response = respond(errors.TOO_MANY_REQUESTS, TOO_MANY_MESSAGE, request_id,
                               headers=retry_after or {"Retry-After": "1"})
        elif fault.kind == "500":
            response = respond(errors.INTERNAL_ERROR, "Internal error. Please try again later.", request_id)
        elif fault.kind == "503":
            response = respond(errors.INTERNAL_ERROR, "Service temporarily unavailable.", request_id,
                               headers=retry_after, status=503)
        elif fault.kind == "expire_token":
            response = respond(errors.TOKEN_EXPIRED, "Expired credentials. The `access_token` or "
                               "`x-tts-access-token` header has expired.", request_id)
        else:  # malformed: a proxy's error page where JSON was expected
            response = SandboxResponse(200, {"Content-Type": "text/html"}, _MALFORMED_BODY)
        response.fault = fault.kind
        return response

    # --- the world and its state file -------------------------------------------------------------

    def _start_world(self, decisions: list[dict]) -> None:
        """Build the world from the seed and replay the seller's decisions up to now."""
        start = min([entry["t"] for entry in decisions] + [self.now()])
        self._world = World(self.catalogue, anchor=self.anchor, history_days=self._settings["history_days"],
                            returns_per_shop=self._settings["returns"], start=start,
                            cancellations_per_shop=self._settings.get("cancellations", 0))
        self._world.replay(decisions)
        self._world.run_until(self.now())
        self._world.listener = self._on_return_step  # only the live world notifies, not its replayed past
        self._world.cancellations.listener = self._on_cancellation_step
        token_key = hashlib.sha256(f"page-token:{self.seed}".encode()).digest()
        # its own key: a Search Returns page token never continues a Search Cancellations query
        cancel_key = hashlib.sha256(f"cancel-page-token:{self.seed}".encode()).digest()
        self._api = Api(catalogue=self.catalogue, world=self._world, auth=self._auth,
                        search=ReturnSearch(self._world, token_key), idempotency=self._idempotency,
                        subscriptions=self._subscriptions,
                        cancel_search=ReturnSearch(self._world.cancellations, cancel_key))

    @contextmanager
    def _current(self) -> Iterator[None]:
        """Hold the lock, after taking in what other processes wrote to the state file."""
        with self._lock:
            self._absorb_disk_changes()
            yield

    def _absorb_disk_changes(self) -> None:
        """Merge the state file when another process replaced it since we last read or wrote it."""
        stamp = _stamp(self._state_path)
        if stamp == self._disk_stamp:
            return
        state = self._read_state()
        self._disk_stamp = stamp
        if state is None:
            return
        if state["anchor"] != self.anchor:
            raise SandboxStateError(f"{self._state_path} now holds a sandbox anchored at {state['anchor']}, "
                                    f"not {self.anchor}.")
        self._auth.merge(state["auth"])
        self._subscriptions.merge(state.get("webhooks", {}))
        for key, first in state["idempotency"].items():
            self._idempotency.setdefault(key, first)
        self._offset = max(self._offset, state["offset"])
        known = {json.dumps(entry, sort_keys=True) for entry in self._world.decision_log}
        theirs = [entry for entry in state["decisions"] if json.dumps(entry, sort_keys=True) not in known]
        if theirs:  # decisions made elsewhere: replay everything in time order
            before = {case.key: (case.update_time, case.status) for shop in self.catalogue.shops
                      for case in self._world.cases(shop.id)} if self.webhooks.running else None
            self._start_world(sorted(self._world.decision_log + theirs, key=lambda entry: entry["t"]))
            if before is not None:
                self._announce_replayed_changes(before)

    def _announce_replayed_changes(self, before: dict[int, tuple[int, str]]) -> None:
        """After replaying another process's decisions, send the webhooks that process could not:
        one for each return whose update_time the replay moved (or that is new)."""
        for shop in self.catalogue.shops:
            for case in self._world.cases(shop.id):
                seen = before.get(case.key)
                if seen is None or seen[0] != case.update_time:
                    self._on_return_step(case, seen[1] if seen else "")

    def _read_state(self) -> dict | None:
        """The saved state, if any, after checking it belongs to a sandbox with these settings."""
        path = self._state_path
        if path is None or not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
            assert state["format"] == STATE_FORMAT
            Subscriptions().merge(state.get("webhooks", {}))  # fails here, not halfway through a merge
        except (OSError, ValueError, KeyError, AssertionError, TypeError, AttributeError) as exc:
            raise SandboxStateError(f"cannot read sandbox state {path}: {exc}; delete the file to start over") \
                from exc
        if state["settings"] != self._settings:
            raise SandboxStateError(f"{path} holds a sandbox with {state['settings']}, not {self._settings}. "
                                    "Delete it to start over.")
        return state

    def _save(self) -> None:
        """Merge what is on disk, then write atomically (temp file + os.replace) under a file lock."""
        path = self._state_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path):
            self._absorb_disk_changes()
            state = {"format": STATE_FORMAT, "settings": self._settings, "anchor": self.anchor,
                     "offset": self._offset, "auth": self._auth.to_json(), "decisions": self._world.decision_log,
                     "idempotency": self._idempotency, "webhooks": self._subscriptions.to_json()}
            with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name, suffix=".tmp",
                                             delete=False) as tmp:
                json.dump(state, tmp)
            os.replace(tmp.name, path)
            self._disk_stamp = _stamp(path)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialize read-merge-write between processes sharing a state file."""
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    """Identifies one version of the file: os.replace gives every write a new inode."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _floor_day(t: float) -> int:
    return int(t) // DAY * DAY
