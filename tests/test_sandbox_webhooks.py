"""Webhooks end to end over real HTTP on 127.0.0.1: the client subscribes a local receiver through
PUT /event/202309/webhooks, the sandbox changes returns (its clock, a seller decision, its own
ticking), and the receiver gets events signed as TikTok signs them, at least once, sometimes twice or
out of order, retried while it fails. Every wait is on a signal (wait_until), never a sleep.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from returns_core.tiktok import errors, events
from returns_core.tiktok.client import RetryPolicy, TikTokClient, TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox, WebhookSettings
from returns_core.tiktok.sandbox.server import add_live_arguments, live_options, serve_forever
from returns_core.tiktok.signing import sign, verify_webhook
from tests.conftest import wait_until

DAY = 86_400
HOUR = 3_600
WEBHOOKS = "/event/202309/webhooks"
# no duplicates, no hold-backs, quick retries: what each test asks for explicitly is what happens
EXACT = WebhookSettings(duplicate_rate=0.0, reorder_rate=0.0, retry_delays=(0.05, 0.1, 0.2, 0.4))
APPROVE_FOR = {"SELLER_RESPOND_REFUND": "APPROVE_REFUND", "SELLER_RESPOND_RETURN": "APPROVE_RETURN",
               "SELLER_RESPOND_RECEIVE_PACKAGE": "APPROVE_RECEIVED_PACKAGE",
               "SELLER_RESPOND_REPLACEMENT": "APPROVE_REPLACEMENT"}


class Receiver:
    """A webhook endpoint on 127.0.0.1 (stdlib http.server, any free port).

    It records every POST (headers and raw body) and answers from `answers` in turn, then
    `default`: an int is the status to answer; None holds the answer until `release` is set.
    """

    def __init__(self, answers: list[int | None] | None = None, default: int = 200):
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.release = threading.Event()
        self._answers = list(answers or [])
        self._default = default
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    answer = receiver._answers.pop(0) if receiver._answers else receiver._default
                if answer is None:
                    receiver.release.wait(timeout=60)
                    answer = 200
                try:
                    self.send_response(answer)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sandbox gave up waiting (its 3 s window) and hung up

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/tiktok"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def events(self) -> list[dict]:
        """Every body received, parsed, in arrival order (repeats included)."""
        with self._lock:
            return [json.loads(body) for _, body in self.posts]

    def count(self) -> int:
        with self._lock:
            return len(self.posts)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def build(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield build
    for r in made:
        r.close()


@pytest.fixture
def live(make_sandbox):
    """live(webhooks=..., **sandbox settings) -> (sandbox, base URL, tokens): served, ticking, delivering."""
    stack: list = []

    def build(webhooks: WebhookSettings = EXACT, tick: float = 0.05, **options) -> tuple[Sandbox, str, TokenSet]:
        sandbox = make_sandbox(**{"shops": 2, "returns": 300, "webhooks": webhooks, **options})
        served = sandbox.serve(tick=tick)
        server = served.__enter__()
        stack.append(served)
        return sandbox, server.url, TokenSet.from_data(sandbox.issue_tokens())

    yield build
    for served in reversed(stack):
        served.__exit__(None, None, None)


@pytest.fixture
def client_for():
    made: list[TikTokClient] = []

    def build(sandbox: Sandbox, url: str, tokens: TokenSet, shop: int = 0) -> TikTokClient:
        made.append(TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token, tokens.refresh_token,
                                 sandbox.shops[shop]["cipher"], api_base=url, auth_base=url, timeout=10,
                                 retry=RetryPolicy(max_attempts=2, base_delay=0.01), sleep=lambda s: None))
        return made[-1]

    yield build
    for client in made:
        client.close()


def signed_call(url: str, method: str, path: str, body: object, token: str, cipher: str | None) -> dict:
    """One signed call without the client (for what the client refuses to send)."""
    raw = json.dumps(body).encode() if body is not None else b""
    query = {"app_key": SANDBOX_APP_KEY, "timestamp": str(int(time.time()))}
    if cipher is not None:
        query["shop_cipher"] = cipher
    query["sign"] = sign(path, query, raw, SANDBOX_APP_SECRET)
    headers = {"content-type": "application/json", "x-tts-access-token": token}
    return httpx.request(method, url + path, params=query, content=raw, headers=headers).json()


def changed_since(before: list[dict], after: list[dict]) -> dict[str, dict]:
    """Returns (by id) that are new or whose update_time moved between two ground-truth readings."""
    was = {r["return_id"]: r["update_time"] for r in before}
    return {r["return_id"]: r for r in after if was.get(r["return_id"]) != r["update_time"]}


def pending_decision(sandbox: Sandbox, shop_id: str) -> tuple[str, str]:
    """(return_id, approve decision) of a return waiting for the seller."""
    for found in sandbox.returns_for(shop_id):
        actions = found.get("seller_next_action_response")
        if actions:
            return found["return_id"], APPROVE_FOR[actions[0]["action"]]
    raise AssertionError("no return waits for the seller")


# --- subscriptions: GET / PUT / DELETE /event/202309/webhooks ------------------------------------------


def test_put_get_delete_a_webhook_through_the_client(live, client_for, receiver):
    sandbox, url, tokens = live()
    client = client_for(sandbox, url, tokens)
    assert client.get_webhooks() == []
    first = receiver().url
    client.update_webhook("RETURN_STATUS_CHANGE", first)
    client.update_webhook("SELLER_DEAUTHORIZATION", first)
    created = sandbox.now()
    assert client.get_webhooks() == [
        {"event_type": "RETURN_STATUS_CHANGE", "address": first, "create_time": created, "update_time": created},
        {"event_type": "SELLER_DEAUTHORIZATION", "address": first, "create_time": created, "update_time": created}]
    sandbox.advance(60)
    client.update_webhook("RETURN_STATUS_CHANGE", "https://desk.example.com/webhooks/tiktok")
    (moved,) = [w for w in client.get_webhooks() if w["event_type"] == "RETURN_STATUS_CHANGE"]
    assert moved == {"event_type": "RETURN_STATUS_CHANGE", "address": "https://desk.example.com/webhooks/tiktok",
                     "create_time": created, "update_time": created + 60}
    client.delete_webhook("RETURN_STATUS_CHANGE")
    client.delete_webhook("RETURN_STATUS_CHANGE")  # TikTok answers success when none is set
    assert [w["event_type"] for w in client.get_webhooks()] == ["SELLER_DEAUTHORIZATION"]


def test_the_in_process_transport_serves_the_same_subscriptions(make_sandbox):
    sandbox = make_sandbox(shops=1, returns=30)
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    with TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token, tokens.refresh_token,
                      sandbox.shops[0]["cipher"], api_base="https://sandbox.test", transport=sandbox.transport(),
                      sleep=lambda s: None) as client:
        client.update_webhook("RETURN_STATUS_CHANGE", "http://127.0.0.1:8501/webhooks/tiktok")
        assert [w["address"] for w in client.get_webhooks()] == ["http://127.0.0.1:8501/webhooks/tiktok"]
        client.delete_webhook("RETURN_STATUS_CHANGE")
        assert client.get_webhooks() == []
    assert not sandbox.live and sandbox.webhooks.stats()["events"] == 0  # not served: nothing ticks or sends


def test_get_webhooks_answers_tiktoks_documented_shape(live, client_for):
    sandbox, url, tokens = live()
    client_for(sandbox, url, tokens).update_webhook("RETURN_STATUS_CHANGE", "https://desk.example.com/hook")
    answer = signed_call(url, "GET", WEBHOOKS, None, tokens.access_token, sandbox.shops[0]["cipher"])
    assert set(answer) == {"code", "message", "request_id", "data"} and answer["code"] == 0
    assert answer["data"]["total_count"] == 1
    assert set(answer["data"]["webhooks"][0]) == {"event_type", "address", "create_time", "update_time"}


@pytest.mark.parametrize("address", [
    "http://desk.example.com/hook",  # not https
    "https://203.0.113.7/hook",  # an IP address
    "https://desk.example.com:8443/hook",  # a port
    "ftp://desk.example.com/hook",
    "https://desk.example.com/" + "x" * 240,  # over 255 characters
    "http://192.168.1.10:8501/webhooks/tiktok",  # a LAN address: not this machine
    "",
])
def test_addresses_tiktok_refuses_are_parameter_errors(live, client_for, address):
    sandbox, url, tokens = live()
    client = client_for(sandbox, url, tokens)
    with pytest.raises((errors.ParameterError, ValueError)) as caught:
        client.update_webhook("RETURN_STATUS_CHANGE", address)
    if isinstance(caught.value, errors.ParameterError):
        assert caught.value.code == errors.INVALID_PARAMETER and "webhook address" in caught.value.message
    assert client.get_webhooks() == []


@pytest.mark.parametrize("address", [
    "https://desk.example.com/webhooks/tiktok",  # what TikTok itself accepts
    "http://127.0.0.1:8501/webhooks/tiktok",  # the sandbox's exception: a receiver on this machine
    "http://localhost:8501/webhooks/tiktok",
    "https://127.0.0.1:8443/webhooks/tiktok",
])
def test_public_https_and_local_addresses_are_accepted(live, client_for, address):
    sandbox, url, tokens = live()
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", address)
    assert [w["address"] for w in client.get_webhooks()] == [address]


def test_the_address_rule_names_tiktoks_requirements():
    assert events.public_address_problem("https://desk.example.com/webhooks/tiktok") is None
    assert "IP address" in events.public_address_problem("https://203.0.113.7/x")
    assert "port" in events.public_address_problem("https://desk.example.com:8443/x")
    assert "https://" in events.public_address_problem("http://desk.example.com/x")
    assert events.is_loopback_address("http://127.0.0.1:8501/x") and events.is_loopback_address("http://[::1]:1/")
    assert not events.is_loopback_address("http://10.0.0.1:8501/x")


def test_unknown_or_missing_event_types_are_refused(live, client_for):
    sandbox, url, tokens = live()
    with pytest.raises(ValueError, match="event_type"):
        client_for(sandbox, url, tokens).update_webhook("RETURN_CHANGED", "https://desk.example.com/hook")
    cipher = sandbox.shops[0]["cipher"]
    for body in ({"event_type": "RETURN_CHANGED", "address": "https://desk.example.com/hook"},
                 {"address": "https://desk.example.com/hook"}):
        answer = signed_call(url, "PUT", WEBHOOKS, body, tokens.access_token, cipher)
        assert answer["code"] == errors.INVALID_PARAMETER and "event_type" in answer["message"]
    answer = signed_call(url, "DELETE", WEBHOOKS, {"event_type": 12}, tokens.access_token, cipher)
    assert answer["code"] == errors.INVALID_PARAMETER


def test_webhooks_are_shop_scoped_and_checked_like_every_call(live, client_for):
    sandbox, url, tokens = live()
    client_for(sandbox, url, tokens, shop=0).update_webhook("RETURN_STATUS_CHANGE", "https://a.example.com/h")
    assert client_for(sandbox, url, tokens, shop=1).get_webhooks() == []
    only_first = TokenSet.from_data(sandbox.issue_tokens([sandbox.shops[0]["id"]]))
    with pytest.raises(errors.AuthError) as caught:
        client_for(sandbox, url, only_first, shop=1).update_webhook("RETURN_STATUS_CHANGE", "https://b.example.com/h")
    assert caught.value.code == errors.TOKEN_SHOP_MISMATCH
    assert signed_call(url, "GET", WEBHOOKS, None, tokens.access_token, None)["code"] == errors.SHOP_CIPHER_MISSING
    cipher = sandbox.shops[0]["cipher"]
    assert signed_call(url, "POST", WEBHOOKS, {}, tokens.access_token, cipher)["code"] == errors.INVALID_METHOD
    assert signed_call(url, "GET", "/event/202401/webhooks", None, tokens.access_token,
                       cipher)["code"] == errors.INVALID_VERSION


def test_subscriptions_survive_a_restart_and_are_shared_through_the_state_file(make_sandbox, tmp_path):
    state = tmp_path / "sandbox.json"
    first = make_sandbox(shops=1, returns=50, state_path=state)
    tokens = TokenSet.from_data(first.issue_tokens())
    cipher = first.shops[0]["cipher"]
    with first.serve(live=False) as server:
        answer = signed_call(server.url, "PUT", WEBHOOKS, {"event_type": "RETURN_STATUS_CHANGE",
                                                            "address": "http://127.0.0.1:9/h"}, tokens.access_token,
                             cipher)
        assert answer["code"] == 0
    again = make_sandbox(shops=1, returns=50, state_path=state)
    with again.serve(live=False) as server:
        listed = signed_call(server.url, "GET", WEBHOOKS, None, tokens.access_token, cipher)["data"]["webhooks"]
        assert [w["address"] for w in listed] == ["http://127.0.0.1:9/h"]
        signed_call(server.url, "DELETE", WEBHOOKS, {"event_type": "RETURN_STATUS_CHANGE"}, tokens.access_token,
                    cipher)
    with first.serve(live=False) as server:  # the first process sees the other one's deletion
        assert signed_call(server.url, "GET", WEBHOOKS, None, tokens.access_token, cipher)["data"]["webhooks"] == []


# --- delivery ------------------------------------------------------------------------------------------


def test_every_step_of_a_return_sends_a_signed_event_with_tiktoks_body(live, client_for, receiver):
    sandbox, url, tokens = live()
    inbox = receiver()
    shop_id = sandbox.shops[0]["id"]
    client_for(sandbox, url, tokens).update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    before = sandbox.returns_for(shop_id)
    sandbox.advance(DAY)
    changed = changed_since(before, sandbox.returns_for(shop_id))
    assert changed, "a day of world time changes some returns"
    sent = sandbox.webhooks.stats()["events"]
    assert sent >= len(changed)
    wait_until(lambda: inbox.count() >= sent, f"{sent} webhooks")
    for headers, body in inbox.posts:
        assert verify_webhook(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, body, headers.get("authorization"))
        assert headers["content-type"] == "application/json"
    got = inbox.events()
    for event in got:
        assert list(event) == ["type", "tts_notification_id", "shop_id", "timestamp", "data"]
        assert event["type"] == events.RETURN_STATUS_CHANGE and event["shop_id"] == shop_id
        assert event["tts_notification_id"].isdigit() and len(event["tts_notification_id"]) == 19
        assert set(event["data"]) == {"order_id", "return_id", "return_role", "return_type", "return_status",
                                      "create_time", "update_time"}
        assert event["data"]["return_role"] in ("BUYER", "SELLER", "SYSTEM")
    assert len({e["tts_notification_id"] for e in got}) == len(got) == sent  # exact settings: once each
    latest: dict[str, dict] = {}
    for event in got:  # in order: without hold-backs the pushes arrive as they were made
        assert event["data"]["update_time"] >= latest.get(event["data"]["return_id"], {}).get("update_time", 0)
        latest[event["data"]["return_id"]] = event["data"]
    assert set(latest) == set(changed)
    for return_id, data in latest.items():
        truth = changed[return_id]
        assert (data["return_status"], data["update_time"], data["order_id"], data["return_type"]) == (
            truth["return_status"], truth["update_time"], truth["order_id"], truth["return_type"])


def test_status_changes_only_leaves_out_steps_that_keep_the_status(live, client_for, receiver):
    frozen = time.time() + 240  # both runs see the same world
    sent = {}
    for only in (False, True):
        settings = WebhookSettings(duplicate_rate=0, reorder_rate=0, status_changes_only=only)
        sandbox, url, tokens = live(webhooks=settings, wall_clock=lambda: frozen, shops=1, returns=600)
        inbox = receiver()
        client_for(sandbox, url, tokens).update_webhook("RETURN_STATUS_CHANGE", inbox.url)
        sandbox.advance(10 * DAY)
        sent[only] = sandbox.webhooks.stats()["events"]
        wait_until(lambda inbox=inbox, n=sent[only]: inbox.count() >= n, "every push")
        last: dict[str, str] = {}
        repeats = 0
        for event in inbox.events():
            data = event["data"]
            repeats += last.get(data["return_id"]) == data["return_status"]
            last[data["return_id"]] = data["return_status"]
        assert (repeats == 0) == only
    assert sent[True] < sent[False]


def test_a_seller_decision_sends_an_event_with_the_new_status(live, client_for, receiver):
    sandbox, url, tokens = live()
    inbox = receiver()
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    return_id, decision = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(return_id, decision, idempotency_key=f"test-{return_id}")
    (event,) = wait_until(lambda: [e for e in inbox.events() if e["data"]["return_id"] == return_id], "the event")
    truth = next(r for r in sandbox.returns_for(sandbox.shops[0]["id"]) if r["return_id"] == return_id)
    assert event["data"]["return_status"] == truth["return_status"] != "RETURN_OR_REFUND_REQUEST_PENDING"
    assert event["data"]["update_time"] == truth["update_time"]


def test_nothing_is_sent_for_shops_without_a_subscription(live, client_for, receiver):
    sandbox, url, tokens = live()
    sandbox.advance(DAY)
    assert sandbox.webhooks.stats()["events"] == 0  # events are made as the world moves, so this is final
    inbox = receiver()
    client_for(sandbox, url, tokens, shop=1).update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    sandbox.advance(DAY)
    sent = sandbox.webhooks.stats()["events"]
    wait_until(lambda: inbox.count() >= sent > 0, "shop 2's webhooks")
    assert {e["shop_id"] for e in inbox.events()} == {sandbox.shops[1]["id"]}
    client_for(sandbox, url, tokens, shop=1).delete_webhook("RETURN_STATUS_CHANGE")
    sandbox.advance(DAY)
    assert sandbox.webhooks.stats()["events"] == sent


def test_duplicates_and_reordering_happen_when_enabled_and_follow_the_seed(live, client_for, receiver):
    chaos = WebhookSettings(duplicate_rate=0.3, reorder_rate=0.3, reorder_delay=0.5, seed=11,
                            retry_delays=(0.05,))
    runs = []
    frozen = time.time() + 240  # both runs see the same world
    for _ in range(2):
        sandbox, url, tokens = live(webhooks=chaos, wall_clock=lambda: frozen)
        inbox = receiver()
        client_for(sandbox, url, tokens).update_webhook("RETURN_STATUS_CHANGE", inbox.url)
        sandbox.advance(3 * DAY)
        stats = sandbox.webhooks.stats()
        wait_until(lambda sandbox=sandbox, inbox=inbox, stats=stats: inbox.count() >= stats["events"]
                   + stats["duplicates"] and sandbox.webhooks.stats()["pending"] == 0, "every push")
        ids = [e["tts_notification_id"] for e in inbox.events()]
        firsts = list(dict.fromkeys(ids))
        assert len(firsts) == stats["events"] and len(ids) == stats["events"] + stats["duplicates"]
        assert stats["duplicates"] > 0 and stats["held_back"] > 0
        assert firsts != sorted(firsts, key=int), "some events overtook earlier ones"
        bodies: dict[str, set[bytes]] = {}
        for _, body in inbox.posts:
            bodies.setdefault(json.loads(body)["tts_notification_id"], set()).add(body)
        assert all(len(same) == 1 for same in bodies.values())  # a duplicate is the same signed bytes
        order = {notification_id: n for n, notification_id in enumerate(sorted(firsts, key=int))}
        runs.append((stats["events"], sorted(order[i] for i in firsts if ids.count(i) > 1)))
    assert runs[0] == runs[1], "one seed, one pattern of duplicates"


def test_a_failing_receiver_gets_retries_until_it_accepts(live, client_for, receiver):
    sandbox, url, tokens = live()
    inbox = receiver(answers=[500, 503, 502])
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    return_id, decision = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(return_id, decision, idempotency_key=f"retry-{return_id}")
    wait_until(lambda: sandbox.webhooks.stats()["delivered"] == 1, "the delivery after three failures")
    assert inbox.count() == 4 and len({body for _, body in inbox.posts}) == 1
    assert all(verify_webhook(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, body, h["authorization"]) for h, body in inbox.posts)
    attempts = sandbox.webhooks.attempts()
    assert [(a.attempt, a.outcome, a.status) for a in attempts] == [
        (1, "failed", 500), (2, "failed", 503), (3, "failed", 502), (4, "delivered", 200)]
    assert sandbox.webhooks.stats()["retried"] == 3


def test_a_receiver_that_does_not_answer_in_time_is_retried(live, client_for, receiver):
    sandbox, url, tokens = live(webhooks=WebhookSettings(duplicate_rate=0, reorder_rate=0, timeout=0.3,
                                                         retry_delays=(0.05,)))
    inbox = receiver(answers=[None])  # holds the first answer past the sandbox's patience
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    return_id, decision = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(return_id, decision, idempotency_key=f"slow-{return_id}")
    wait_until(lambda: sandbox.webhooks.stats()["delivered"] == 1, "the retry's delivery")
    first, second = sandbox.webhooks.attempts()
    assert (first.outcome, first.status, first.error) == ("failed", None, "ReadTimeout")
    assert (second.outcome, second.status) == ("delivered", 200)


def test_pushes_stop_after_tiktoks_last_retry_and_a_401_ends_them_at_once(live, client_for, receiver):
    sandbox, url, tokens = live(webhooks=WebhookSettings(duplicate_rate=0, reorder_rate=0, retry_delays=(0.05, 0.05)))
    down = receiver(default=503)
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", down.url)
    return_id, decision = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(return_id, decision, idempotency_key=f"down-{return_id}")
    wait_until(lambda: sandbox.webhooks.stats()["gave_up"] == 1, "giving up")
    assert down.count() == 3 and sandbox.webhooks.stats()["pending"] == 0
    refusing = receiver(default=401)  # TikTok's guide: 401 is a valid answer (a bad signature); no retry
    client.update_webhook("RETURN_STATUS_CHANGE", refusing.url)
    other_id, other = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(other_id, other, idempotency_key=f"refuse-{other_id}")
    wait_until(lambda: sandbox.webhooks.stats()["refused"] == 1, "the 401")
    assert refusing.count() == 1 and sandbox.webhooks.stats()["pending"] == 0


def test_retries_keep_tiktoks_schedule_on_the_sandbox_clock(live, client_for, receiver):
    sandbox, url, tokens = live(webhooks=WebhookSettings(duplicate_rate=0, reorder_rate=0))
    assert sandbox.webhooks.settings.retry_delays == (120, 1800, 3 * 3600, 12 * 3600)
    inbox = receiver(answers=[500])
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    return_id, decision = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(return_id, decision, idempotency_key=f"clock-{return_id}")
    wait_until(lambda: sandbox.webhooks.stats()["failed"] == 1, "the first failure")
    assert sandbox.webhooks.stats()["retried"] == 1 and inbox.count() == 1  # waiting its 2 minutes
    client.delete_webhook("RETURN_STATUS_CHANGE")  # the retry still goes where the event was addressed
    sandbox.advance(120)
    wait_until(lambda: sandbox.webhooks.stats()["delivered"] == 1, "the retry 2 minutes later")
    assert inbox.count() == 2 and inbox.posts[0][1] == inbox.posts[1][1]


def test_revoking_an_authorization_sends_seller_deauthorization_and_ends_return_events(live, client_for, receiver):
    sandbox, url, tokens = live()
    inbox = receiver()
    for shop in (0, 1):
        client = client_for(sandbox, url, tokens, shop=shop)
        client.update_webhook("SELLER_DEAUTHORIZATION", inbox.url)
        client.update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    sandbox.revoke(tokens.access_token)
    (first, second) = wait_until(lambda: len(inbox.events()) == 2 and inbox.events(), "both shops' notices")
    assert {first["shop_id"], second["shop_id"]} == {s["id"] for s in sandbox.shops}
    for event in (first, second):
        assert event["type"] == events.SELLER_DEAUTHORIZATION
        assert event["data"] == {"message": f"Shop_id {event['shop_id']} is deauthorized from your APP by merchant."}
    sent = sandbox.webhooks.stats()["events"]
    sandbox.advance(DAY)
    assert sandbox.webhooks.stats()["events"] == sent  # a deauthorized shop's returns are not pushed


def test_upcoming_authorization_expiration_starts_30_days_ahead_then_daily_until_reauthorized(live, client_for,
                                                                                               receiver):
    sandbox, url, tokens = live(shops=1, returns=30)
    inbox = receiver()
    client_for(sandbox, url, tokens).update_webhook("UPCOMING_AUTHORIZATION_EXPIRATION", inbox.url)
    expires = tokens.refresh_token_expires_at
    sandbox.advance(expires - 30 * DAY - sandbox.now() - 1)
    assert sandbox.webhooks.stats()["events"] == 0
    sandbox.advance(1)
    (notice,) = wait_until(lambda: inbox.events(), "the first notice")
    assert notice["type"] == events.UPCOMING_AUTHORIZATION_EXPIRATION and notice["timestamp"] == expires - 30 * DAY
    assert notice["data"] == {"message": f"Authorization of shop_id {sandbox.shops[0]['id']} is expiring in 30 "
                                         "days. Please direct the merchant to re-authorize.",
                              "expiration_time": str(expires)}
    # up to just before the next 0:00 UTC (the notice repeats then): once a day, not once a tick, at
    # whatever time of day the test runs
    before_midnight = DAY - sandbox.now() % DAY - 1
    if before_midnight:
        sandbox.advance(before_midnight)
    assert sandbox.webhooks.stats()["events"] == 1
    sandbox.advance(DAY)
    second = wait_until(lambda: inbox.events()[1:], "the next day's notice")[0]
    assert second["timestamp"] % DAY == 0 and second["timestamp"] > notice["timestamp"]  # 0:00 UTC
    sandbox.issue_tokens()  # the seller authorizes again: a year from now
    sandbox.advance(2 * DAY)
    assert sandbox.webhooks.stats()["events"] == 2


def test_the_world_ticks_on_its_own_while_served(make_sandbox, client_for, receiver):
    wall = [time.time() + 240]
    sandbox = make_sandbox(wall_clock=lambda: wall[0], webhooks=EXACT)
    inbox = receiver()
    with sandbox.serve(tick=0.05) as server:
        tokens = TokenSet.from_data(sandbox.issue_tokens())
        client_for(sandbox, server.url, tokens).update_webhook("RETURN_STATUS_CHANGE", inbox.url)
        before = sandbox.webhooks.stats()["events"]
        wall[0] += DAY  # time passes; nobody calls the API or advance()
        wait_until(lambda: inbox.count() > before, "a webhook from the clock alone")
    assert not sandbox.live and not sandbox.webhooks.running
    assert not [t for t in threading.enumerate() if t.name.startswith("tiktok-sandbox") and t.is_alive()]


def test_api_answers_never_wait_for_a_slow_receiver(live, client_for, receiver):
    sandbox, url, tokens = live(webhooks=WebhookSettings(duplicate_rate=0, reorder_rate=0, timeout=30))
    stuck = receiver(answers=[None])
    client = client_for(sandbox, url, tokens)
    client.update_webhook("RETURN_STATUS_CHANGE", stuck.url)
    return_id, decision = pending_decision(sandbox, sandbox.shops[0]["id"])
    client.approve_return(return_id, decision, idempotency_key=f"stuck-{return_id}")
    wait_until(lambda: stuck.count() == 1, "the push in flight")
    # the receiver holds its answer for up to 30 s; the client gives up after 10 s: answers come regardless
    assert client.search_returns({"return_ids": [return_id]}).total_count == 1
    sandbox.advance(HOUR)
    assert client.get_webhooks()
    stuck.release.set()
    wait_until(lambda: sandbox.webhooks.stats()["delivered"] >= 1, "the held push")


def test_the_queue_is_bounded_and_stop_drops_what_is_left(live, client_for, receiver):
    sandbox, url, tokens = live(webhooks=WebhookSettings(duplicate_rate=0, reorder_rate=0, max_pending=3,
                                                         timeout=30))
    stuck = receiver(answers=[None])
    client_for(sandbox, url, tokens).update_webhook("RETURN_STATUS_CHANGE", stuck.url)
    sandbox.advance(3 * DAY)
    stats = sandbox.webhooks.stats()
    assert stats["pending"] <= 3 and stats["dropped"] > 0
    wait_until(lambda: stuck.count() == 1, "the first push in flight")
    stuck.release.set()
    sandbox.stop_background()
    stats = sandbox.webhooks.stats()
    assert stats["pending"] == 0 and not sandbox.webhooks.running
    assert stats["delivered"] + stats["abandoned"] == stats["events"]  # accepted pushes end one way or the other


def test_decisions_made_by_another_process_are_pushed_by_the_live_one(make_sandbox, client_for, receiver, tmp_path):
    state = tmp_path / "shared.json"
    app = make_sandbox(shops=1, returns=300, state_path=state, webhooks=EXACT)
    cron = make_sandbox(shops=1, returns=300, state_path=state)  # in-process demo of another process: not live
    inbox = receiver()
    with app.serve(tick=0.05) as server:
        tokens = TokenSet.from_data(app.issue_tokens())
        client_for(app, server.url, tokens).update_webhook("RETURN_STATUS_CHANGE", inbox.url)
        return_id, decision = pending_decision(app, app.shops[0]["id"])
        with cron.serve(live=False) as other:
            client_for(cron, other.url, tokens).approve_return(return_id, decision, idempotency_key=f"x-{return_id}")
        assert cron.webhooks.stats()["events"] == 0
        event = wait_until(lambda: [e for e in inbox.events() if e["data"]["return_id"] == return_id],
                           "the live process's push")[0]
    truth = next(r for r in cron.returns_for(app.shops[0]["id"]) if r["return_id"] == return_id)
    assert (event["data"]["return_status"], event["data"]["update_time"]) == (truth["return_status"],
                                                                              truth["update_time"])


# --- how a user drives it: `python -m returns_core sandbox serve` ---------------------------------------


def test_serve_flags_tune_the_clock_and_delivery():
    parser = argparse.ArgumentParser()
    add_live_arguments(parser)
    assert live_options(parser.parse_args([])) == {"tick": 1.0, "webhooks": WebhookSettings(),
                                                   "app_rate_limit": None}
    tuned = live_options(parser.parse_args(["--tick", "0.2", "--webhook-duplicates", "0", "--webhook-reorder", "0",
                                            "--webhook-retry-delays", "1,2.5", "--webhook-seed", "3",
                                            "--app-rate-limit", "10"]))
    assert tuned == {"tick": 0.2, "webhooks": WebhookSettings(duplicate_rate=0, reorder_rate=0,
                                                              retry_delays=(1.0, 2.5), seed=3),
                     "app_rate_limit": 10.0}
    assert live_options(parser.parse_args(["--webhook-retry-delays", ""]))["webhooks"].retry_delays == ()
    for bad in (["--webhook-duplicates", "2"], ["--webhook-retry-delays", "soon"], ["--tick", "0"],
                ["--app-rate-limit", "0"]):
        with pytest.raises(ValueError):
            live_options(parser.parse_args(bad))


def test_serve_forever_takes_subscriptions_and_says_how_it_delivers(tmp_path, receiver):
    out, stop = io.StringIO(), threading.Event()
    thread = threading.Thread(target=serve_forever, kwargs={
        "port": 0, "seed": 3, "returns": 50, "shops": 1, "out": out, "stop": stop, "tick": 0.05,
        "webhooks": WebhookSettings(duplicate_rate=0, reorder_rate=0, retry_delays=(1, 60))})
    thread.start()
    wait_until(lambda: "Ctrl-C" in out.getvalue(), "the banner")
    text = out.getvalue()
    assert "PUT /event/202309/webhooks" in text and "http://127.0.0.1:PORT/" in text
    assert "Delivery: 0% twice, 0% held back up to 2 s, retries after 1 s, 1 min." in text
    url = re.search(r"Base URL \(API and auth\):\s+(\S+)", text).group(1)
    code = re.search(r"Auth code:\s+(\S+)", text).group(1)
    data = httpx.get(f"{url}/api/v2/token/get", params={
        "app_key": SANDBOX_APP_KEY, "app_secret": SANDBOX_APP_SECRET, "auth_code": code,
        "grant_type": "authorized_code"}).json()["data"]
    shop = signed_call(url, "GET", "/authorization/202309/shops", None, data["access_token"], None)["data"]["shops"][0]
    inbox = receiver()
    answer = signed_call(url, "PUT", WEBHOOKS, {"event_type": "RETURN_STATUS_CHANGE", "address": inbox.url},
                         data["access_token"], shop["cipher"])
    assert answer["code"] == 0
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive() and "stopped" in out.getvalue()


def test_with_several_apps_each_shops_events_are_signed_with_its_own_apps_secret(live, receiver):
    sandbox, url, _ = live(shops=2, apps=2)
    first, second = sandbox.apps
    inbox = receiver()
    shop_id = second.shop_ids[0]
    tokens = TokenSet.from_data(sandbox.issue_tokens(app_key=second.key))
    cipher = next(shop["cipher"] for shop in sandbox.shops if shop["id"] == shop_id)
    with TikTokClient(second.key, second.secret, tokens.access_token, tokens.refresh_token, cipher, api_base=url,
                      auth_base=url, timeout=10) as client:
        client.update_webhook("RETURN_STATUS_CHANGE", inbox.url)
    sandbox.advance(DAY)
    sent = sandbox.webhooks.stats()["events"]
    assert sent > 0
    wait_until(lambda: inbox.count() >= sent, f"{sent} webhooks")
    for headers, body in inbox.posts:
        assert json.loads(body)["shop_id"] == shop_id
        assert verify_webhook(second.key, second.secret, body, headers.get("authorization"))
        assert not verify_webhook(first.key, first.secret, body, headers.get("authorization"))


# --- CANCELLATION_STATUS_CHANGE (11) ----------------------------------------------------------------

# docs/tiktok_api.md section 7: "11 | CANCELLATION_STATUS_CHANGE | order_id, cancel_id, cancellations_role,
# cancel_status, create_time"
CANCELLATION_EVENT_FIELDS = {"order_id", "cancel_id", "cancellations_role", "cancel_status", "create_time"}


def test_every_step_of_a_cancellation_sends_a_signed_type_11_event_with_tiktoks_body(live, client_for, receiver):
    sandbox, url, tokens = live(shops=1, returns=50, cancellations=300)
    inbox = receiver()
    shop_id = sandbox.shops[0]["id"]
    client_for(sandbox, url, tokens).update_webhook("CANCELLATION_STATUS_CHANGE", inbox.url)
    before = {c["cancel_id"]: c for c in sandbox.cancellations_for(shop_id)}
    sandbox.advance(DAY)
    after = {c["cancel_id"]: c for c in sandbox.cancellations_for(shop_id)}
    changed = {cid: c for cid, c in after.items() if before.get(cid, {}).get("update_time") != c["update_time"]}
    assert any(cid not in before for cid in changed) and any(cid in before for cid in changed), \
        "a day brings new cancellations and moves waiting ones"
    sent = sandbox.webhooks.stats()["events"]
    assert sent >= len(changed)
    wait_until(lambda: inbox.count() >= sent, f"{sent} webhooks")
    latest: dict[str, dict] = {}
    for headers, body in inbox.posts:
        assert verify_webhook(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, body, headers.get("authorization"))
        event = json.loads(body)
        assert list(event) == ["type", "tts_notification_id", "shop_id", "timestamp", "data"]
        assert (event["type"], event["shop_id"]) == (events.CANCELLATION_STATUS_CHANGE, shop_id)
        assert set(event["data"]) == CANCELLATION_EVENT_FIELDS  # only the topic subscribed: no type 12
        assert event["data"]["cancellations_role"] in ("BUYER", "SELLER", "SYSTEM")
        latest[event["data"]["cancel_id"]] = event["data"]  # in order: the last event of each is its status now
    assert set(latest) == set(changed)
    for cancel_id, data in latest.items():
        truth = changed[cancel_id]
        assert (data["cancel_status"], data["order_id"], data["create_time"], data["cancellations_role"]) == (
            truth["cancel_status"], truth["order_id"], truth["create_time"], truth["role"])


def test_a_sellers_answer_to_a_cancellation_sends_an_event_with_the_new_status(live, client_for, receiver):
    sandbox, url, tokens = live(shops=1, returns=50, cancellations=300)
    inbox = receiver()
    client = client_for(sandbox, url, tokens)
    client.update_webhook("CANCELLATION_STATUS_CHANGE", inbox.url)
    shop_id = sandbox.shops[0]["id"]
    waiting = next(c for c in sandbox.cancellations_for(shop_id) if c.get("seller_next_action_response"))
    reason = client.get_reject_reasons(waiting["cancel_id"])[0]["name"]
    client.reject_cancellation(waiting["cancel_id"], reason, idempotency_key=f"test-{waiting['cancel_id']}")
    (event,) = wait_until(lambda: [e for e in inbox.events() if e["data"]["cancel_id"] == waiting["cancel_id"]],
                          "the event")
    # section 9.5: webhook 11 spells the closed status as Search Cancellations 202309 does
    assert event["data"]["cancel_status"] == "CANCELLATION_REQUEST_CANCELLED" != waiting["cancel_status"]
    assert sandbox.webhooks.stats()["events"] == 1
