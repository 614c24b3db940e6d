"""The webhook receiver over real HTTP on 127.0.0.1: server.py's route and lifespan under uvicorn in a
thread, a store with accounts, and (where TikTok has to answer) the sandbox served over HTTP, live,
sending signed webhooks to the receiver. Every wait is on a signal (wait_until), never a sleep.

What the receiver promises: TikTok's known answer verifies; a bad or missing signature, a body over
1 MB, or a body that is not a TikTok event changes nothing; an event is stored once however often it
comes, before the answer; events are signals, so late, repeated and out-of-order ones leave the store
equal to the sandbox; an event for a shop with no account is kept and shown, never acted on.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

import server
from returns_core import accounts, demo, rules, webhooks
from returns_core.ingest import canonical_json
from returns_core.store import accounts as account_store
from returns_core.store import webhook_events as inbox_store
from returns_core.store.db import Database
from returns_core.sync import sync_account
from returns_core.tiktok import events
from returns_core.tiktok.client import RetryPolicy
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, WebhookSettings
from returns_core.tiktok.signing import webhook_signature
from tests.conftest import PYTHON, decisions_sent, wait_until
from tests.reliability import all_tables, connect, stored_payloads, truth_payloads

DAY = 86_400
# docs/tiktok_api.md section 7: TikTok's own example, signed by app key "abcdef" with secret "123"
VECTOR_KEY, VECTOR_SECRET = "abcdef", "123"
VECTOR_SHOP = "7495540735365777507"
VECTOR_BODY = (b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
               b'"timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178",'
               b'"order_status":"UNPAID","update_time":1718305585}}')
VECTOR_SIGNATURE = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"
# no duplicates, no hold-backs, quick retries: each test asks for the disorder it wants
EXACT = WebhookSettings(duplicate_rate=0.0, reorder_rate=0.0, retry_delays=(0.05, 0.1, 0.2))
FAST = {"retry": RetryPolicy(max_attempts=1), "sleep": lambda s: None}
APPROVE_FOR = {"SELLER_RESPOND_REFUND": "APPROVE_REFUND", "SELLER_RESPOND_RETURN": "APPROVE_RETURN",
               "SELLER_RESPOND_RECEIVE_PACKAGE": "APPROVE_RECEIVED_PACKAGE",
               "SELLER_RESPOND_REPLACEMENT": "APPROVE_REPLACEMENT"}


@dataclass
class Receiver:
    url: str
    inbox: webhooks.Inbox

    def post(self, body: bytes, signature: str | bytes | None, **headers: str) -> httpx.Response:
        if signature is not None:
            headers["Authorization"] = signature
        return httpx.post(self.url, content=body, headers={"Content-Type": "application/json", **headers},
                          timeout=10)


@contextmanager
def running_receiver(db: Database, key: str, **options) -> Iterator[Receiver]:
    """server.py's route and lifespan under uvicorn on a free port (the demo shop left out)."""
    app = Starlette(routes=server.ROUTES, lifespan=server.receiver_lifespan(
        db_path=str(db.path), key=key, with_demo=False, address="http://127.0.0.1/unused", **options))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, name="test-receiver", daemon=True)
    thread.start()
    try:
        wait_until(lambda: served.started or not thread.is_alive(), "the receiver to listen")
        assert served.started, "the receiver did not start (see its log above)"
        port = served.servers[0].sockets[0].getsockname()[1]
        yield Receiver(f"http://127.0.0.1:{port}{webhooks.PATH}", server._running["inbox"])
    finally:
        served.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def receiver(db, db_key) -> Iterator[Receiver]:
    with running_receiver(db, db_key) as running:
        yield running


@pytest.fixture
def live(make_sandbox):
    """live(webhooks=..., **settings) -> (sandbox, url): served over HTTP, ticking, delivering."""
    stack: list = []

    def build(webhooks_settings: WebhookSettings = EXACT, **options):
        sandbox = make_sandbox(**{"shops": 1, "returns": 120, "webhooks": webhooks_settings, **options})
        served = sandbox.serve(tick=0.05)
        stack.append(served)
        return sandbox, served.__enter__().url

    yield build
    for served in reversed(stack):
        served.__exit__(None, None, None)


def add_vector_account(db: Database) -> None:
    """An account for the docs' example shop, signed by app "abcdef" (no TikTok behind it)."""
    account_store.upsert_connected(
        db, [account_store.ConnectedShop(VECTOR_SHOP, "Docs example", None, None, None)], app_key=VECTOR_KEY,
        app_secret=VECTOR_SECRET, tokens=account_store.Tokens("access", "refresh"), api_base="https://tiktok.invalid",
        auth_base="https://tiktok.invalid", is_sandbox=False)


def event_body(shop_id: str, notification_id: str, event_type: int = events.RETURN_STATUS_CHANGE,
               data: dict | None = None, timestamp: int = 1_700_000_000) -> bytes:
    return json.dumps({"type": event_type, "tts_notification_id": notification_id, "shop_id": shop_id,
                       "timestamp": timestamp, "data": data or {}}, separators=(",", ":")).encode()


def sandbox_signed(body: bytes) -> str:
    return webhook_signature(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, body)


def rows(db: Database) -> dict[str, dict]:
    """The inbox by notification id."""
    with db.reader() as con:
        cur = con.execute("SELECT * FROM webhook_events")
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def settled(db: Database) -> bool:
    """Nothing waits in the inbox."""
    return inbox_store.summary(db).waiting == 0


def pending_decision(sandbox, shop_id: str) -> tuple[str, str]:
    for found in sandbox.returns_for(shop_id):
        actions = found.get("seller_next_action_response")
        if actions and actions[0]["action"] in APPROVE_FOR:
            return found["return_id"], APPROVE_FOR[actions[0]["action"]]
    raise AssertionError("no return waits for the seller")


def connected_and_subscribed(db, sandbox, url, receiver: Receiver) -> accounts.Account:
    """The sandbox shop connected and synced once, its webhooks pointed at the receiver."""
    account, _ = connect(db, sandbox, url)
    assert sync_account(db, account, trigger="test").ok
    subscribed = webhooks.subscribe(db, account, receiver.url)
    assert subscribed.covers(receiver.url)
    return account


def store_equals_sandbox(db, sandbox, shop_id: str) -> bool:
    return stored_payloads(db, shop_id) == truth_payloads(sandbox, shop_id)


# --- the signature --------------------------------------------------------------------------------


def test_tiktoks_known_answer_is_accepted_and_kept(db, receiver):
    add_vector_account(db)
    answer = receiver.post(VECTOR_BODY, VECTOR_SIGNATURE)
    assert answer.status_code == 200
    row = rows(db)["7380066284010030890"]
    assert (row["verification"], row["event_type"], row["shop_id"]) == ("verified", 1, VECTOR_SHOP)
    # ORDER_STATUS_CHANGE is not ours to act on: kept as received, byte for byte
    assert row["state"] == "kept" and row["body"].encode() == VECTOR_BODY


def test_the_signature_covers_every_byte_of_the_body(db, receiver):
    add_vector_account(db)
    before = all_tables(db)
    reserialized = json.dumps(json.loads(VECTOR_BODY)).encode()  # the same JSON, other bytes
    assert receiver.post(reserialized, VECTOR_SIGNATURE).status_code == 401
    assert receiver.post(VECTOR_BODY.replace(b"UNPAID", b"PAID!!"), VECTOR_SIGNATURE).status_code == 401
    assert all_tables(db) == before


@pytest.mark.parametrize("signature", [
    None, "", VECTOR_SIGNATURE.upper(), VECTOR_SIGNATURE[:-1] + "0", "sha256=" + VECTOR_SIGNATURE,
    webhook_signature(VECTOR_KEY, "wrong-secret", VECTOR_BODY), "é".encode("latin-1") * 64,
])
def test_a_bad_or_missing_signature_gets_401_and_nothing_is_stored(db, receiver, signature):
    add_vector_account(db)
    before = all_tables(db)
    answer = receiver.post(VECTOR_BODY, signature)
    assert answer.status_code == 401
    assert all_tables(db) == before
    assert "123" not in answer.text and VECTOR_SIGNATURE not in answer.text


# --- what is not a TikTok event -------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"not json", b"", b"\xff\xfe\x00garbage", b"[1, 2]", b'"text"',
                                  b'{"type": 12, "shop_id": "1"}', b'{"type": 12, "tts_notification_id": "1"}'])
def test_what_is_not_a_tiktok_event_gets_400_and_nothing_is_stored(db, receiver, body):
    add_vector_account(db)
    before = all_tables(db)
    assert receiver.post(body, webhook_signature(VECTOR_KEY, VECTOR_SECRET, body)).status_code == 400
    assert all_tables(db) == before


def test_a_2_mb_body_gets_413_and_nothing_is_stored(db, receiver):
    add_vector_account(db)
    before = all_tables(db)
    padding = "x" * (2 * 1024 * 1024)
    body = event_body(VECTOR_SHOP, "7380066284010030891", data={"padding": padding})
    signature = webhook_signature(VECTOR_KEY, VECTOR_SECRET, body)
    assert receiver.post(body, signature).status_code == 413
    # sent in chunks without a Content-Length, the cap holds too
    chunked = httpx.post(receiver.url, content=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                         headers={"Authorization": signature}, timeout=10)
    assert chunked.status_code == 413
    assert all_tables(db) == before


def test_get_says_what_the_address_is_and_stores_nothing(db, receiver):
    before = all_tables(db)
    answer = httpx.get(receiver.url, timeout=10)
    assert answer.status_code == 405 and answer.headers["allow"] == "POST" and "webhook" in answer.text
    assert all_tables(db) == before


# --- stored once, before the answer ---------------------------------------------------------------


def test_a_replayed_event_is_answered_200_and_stored_once(db, receiver):
    add_vector_account(db)
    for _ in range(3):
        started = time.monotonic()
        answer = receiver.post(VECTOR_BODY, VECTOR_SIGNATURE)
        assert answer.status_code == 200
        assert time.monotonic() - started < events.ANSWER_WITHIN_SECONDS
        # stored before the answer: the row is there the moment the 200 is
        assert "7380066284010030890" in rows(db)
    (row,) = rows(db).values()
    assert row["deliveries"] == 3 and receiver.inbox.counters.received == 1
    assert receiver.inbox.counters.repeats == 2


def test_events_the_desk_does_not_act_on_are_kept_and_counted_by_type(db, receiver):
    add_vector_account(db)
    for n, kind in enumerate((99, events.ORDER_STATUS_CHANGE, 99)):
        body = event_body(VECTOR_SHOP, f"90000000000000000{n}", kind, {"order_id": "1"})
        assert receiver.post(body, webhook_signature(VECTOR_KEY, VECTOR_SECRET, body)).status_code == 200
    body = json.dumps({"type": "twelve", "tts_notification_id": "9", "shop_id": VECTOR_SHOP}).encode()
    assert receiver.post(body, webhook_signature(VECTOR_KEY, VECTOR_SECRET, body)).status_code == 200
    stored = rows(db)
    assert {r["state"] for r in stored.values()} == {"kept"} and len(stored) == 4
    counts = inbox_store.counts_by_type(db)
    assert dict(zip(counts["event_type"].map(webhooks.type_name), counts["events"], strict=True)) == {
        "1 ORDER_STATUS_CHANGE": 1, "99 (unknown)": 2, "(no type)": 1}
    assert "Returns Desk does not act on type 99 (unknown)" in stored["900000000000000000"]["outcome"]


# --- an unknown shop --------------------------------------------------------------------------------


def test_an_event_for_a_shop_without_account_is_kept_and_shown_but_never_acted_on(db, receiver, live):
    sandbox, url = live()
    connected_and_subscribed(db, sandbox, url, receiver)
    return_id = sandbox.returns_for(sandbox.shops[0]["id"])[0]["return_id"]
    body = event_body("1111111111111111111", "7000000000000000001", data={"return_id": return_id})
    answer = receiver.post(body, sandbox_signed(body))  # signed by our (sandbox) app: TikTok's own
    assert answer.status_code == 200
    row = rows(db)["7000000000000000001"]
    assert (row["verification"], row["state"]) == ("unknown_shop", "kept")
    assert "no account here has shop 1111111111111111111" in row["outcome"]
    receiver.inbox.process_waiting()
    assert rows(db)["7000000000000000001"]["state"] == "kept"  # never processed
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM returns WHERE shop_id = '1111111111111111111'").fetchone()[0] == 0


def test_an_unknown_shops_event_signed_by_no_app_of_ours_gets_401(db, receiver, live):
    sandbox, url = live()
    connected_and_subscribed(db, sandbox, url, receiver)
    before = all_tables(db)
    body = event_body("1111111111111111111", "7000000000000000002")
    assert receiver.post(body, webhook_signature("other-app", "other-secret", body)).status_code == 401
    assert all_tables(db) == before


# --- events are signals: the store ends equal to TikTok -------------------------------------------


def test_a_status_change_re_syncs_that_return_and_records_it_in_history(db, receiver, live):
    sandbox, url = live()
    account = connected_and_subscribed(db, sandbox, url, receiver)
    return_id, decision = pending_decision(sandbox, account.shop_id)
    with_client(db, account, lambda c: c.approve_return(return_id, decision, idempotency_key=f"t-{return_id}"))
    truth = {r["return_id"]: r for r in sandbox.returns_for(account.shop_id)}[return_id]
    wait_until(lambda: (found := rows(db)) and all(r["state"] == "done" for r in found.values()),
               "the event's processing")
    assert stored_status(db, return_id) == truth["return_status"]
    assert store_equals_sandbox(db, sandbox, account.shop_id)
    kinds = [(r[0], r[1]) for r in db.rows("SELECT actor, kind FROM history WHERE return_id = ? ORDER BY id",
                                           [return_id])]
    assert ("sync", "marketplace_status") in kinds and ("webhook", "webhook") in kinds
    (event,) = [r for r in rows(db).values() if r["return_id"] == return_id]
    assert event["state"] == "done" and truth["return_status"] in event["outcome"]


def test_duplicates_and_out_of_order_deliveries_leave_the_store_equal_to_the_sandbox(db, receiver, live):
    chaos = WebhookSettings(duplicate_rate=0.5, reorder_rate=0.5, reorder_delay=0.5, retry_delays=(0.05,), seed=3)
    sandbox, url = live(chaos, returns=200)
    account = connected_and_subscribed(db, sandbox, url, receiver)
    sync_runs_before = db.value("SELECT count(*) FROM sync_runs")
    sandbox.advance(2 * DAY)
    stats = wait_until(lambda: (s := sandbox.webhooks.stats())["delivered"] == s["events"] + s["duplicates"] and s,
                       "every push delivered")
    assert stats["duplicates"] > 0 and stats["held_back"] > 0 and stats["failed"] == 0
    wait_until(lambda: settled(db) and store_equals_sandbox(db, sandbox, account.shop_id),
               "the store to equal the sandbox", timeout=120)
    stored = rows(db)
    assert len(stored) == stats["events"]  # each event once, however often it came
    assert sum(r["deliveries"] for r in stored.values()) == stats["events"] + stats["duplicates"]
    assert {r["state"] for r in stored.values()} == {"done"}
    assert db.value("SELECT count(*) FROM sync_runs") == sync_runs_before  # no sync ran: the webhooks did it


def test_an_older_event_arriving_last_does_not_roll_the_return_back(db, receiver, live):
    sandbox, url = live(webhooks_settings=WebhookSettings(duplicate_rate=0, reorder_rate=0))
    account, _ = connect(db, sandbox, url)  # not subscribed: this test sends the events itself
    assert sync_account(db, account, trigger="test").ok
    return_id, decision = pending_decision(sandbox, account.shop_id)
    before = {r["return_id"]: r for r in sandbox.returns_for(account.shop_id)}[return_id]
    with_client(db, account, lambda c: c.approve_return(return_id, decision, idempotency_key=f"o-{return_id}"))
    after = {r["return_id"]: r for r in sandbox.returns_for(account.shop_id)}[return_id]
    newer = event_body(account.shop_id, "7100000000000000002", data={
        "return_id": return_id, "return_status": after["return_status"], "update_time": after["update_time"]})
    older = event_body(account.shop_id, "7100000000000000001", data={
        "return_id": return_id, "return_status": before["return_status"], "update_time": before["update_time"]})
    assert receiver.post(newer, sandbox_signed(newer)).status_code == 200
    wait_until(lambda: stored_status(db, return_id) == after["return_status"], "the newer event's re-sync")
    assert receiver.post(older, sandbox_signed(older)).status_code == 200
    wait_until(lambda: rows(db)["7100000000000000001"]["state"] == "done", "the older event's processing")
    assert stored_status(db, return_id) == after["return_status"]
    assert store_equals_sandbox(db, sandbox, account.shop_id)
    assert f"the event said {before['return_status']}" in rows(db)["7100000000000000001"]["outcome"]


# --- CANCELLATION_STATUS_CHANGE (11): the second queue's events ----------------------------------------


def stored_cancellations(db: Database, shop_id: str) -> dict[str, str]:
    return dict(db.rows("SELECT return_id, payload FROM returns WHERE shop_id = ? AND kind = 'cancellation'",
                        [shop_id]))


def truth_cancellations(sandbox, shop_id: str) -> dict[str, str]:
    return {c["cancel_id"]: canonical_json(c) for c in sandbox.cancellations_for(shop_id)}


def waiting_cancellation(sandbox, shop_id: str) -> dict:
    return next(c for c in sandbox.cancellations_for(shop_id) if c.get("seller_next_action_response"))


def without_inbox(db: Database) -> dict:
    return {table: found for table, found in all_tables(db).items() if table != "webhook_events"}


def test_a_cancellation_status_change_re_syncs_that_cancellation(db, receiver, live):
    sandbox, url = live(cancellations=200)
    account = connected_and_subscribed(db, sandbox, url, receiver)  # every handled topic, 11 among them
    waiting = waiting_cancellation(sandbox, account.shop_id)
    cancel_id = waiting["cancel_id"]
    assert stored_status(db, cancel_id) == "CANCELLATION_REQUEST_PENDING"
    with_client(db, account, lambda c: c.reject_cancellation(
        cancel_id, c.get_reject_reasons(cancel_id)[0]["name"], idempotency_key=f"t-{cancel_id}"))
    truth = truth_cancellations(sandbox, account.shop_id)
    (event,) = wait_until(lambda: [r for r in rows(db).values() if r["return_id"] == cancel_id
                                   and r["state"] == "done"], "the type-11 event's processing")
    assert event["event_type"] == events.CANCELLATION_STATUS_CHANGE and event["verification"] == "verified"
    assert event["event_status"] == "CANCELLATION_REQUEST_CANCELLED"  # what the event said
    assert "TikTok says CANCELLATION_REQUEST_CANCELLED" in event["outcome"]
    assert stored_status(db, cancel_id) == "CANCELLATION_REQUEST_CANCELLED" != waiting["cancel_status"]
    assert stored_cancellations(db, account.shop_id) == truth  # the one re-read, the others as synced
    assert db.value("SELECT status FROM returns WHERE return_id = ?", [cancel_id]) == "Cancelled"
    notes = db.rows("SELECT actor, kind, note FROM history WHERE return_id = ? ORDER BY id", [cancel_id])
    assert ("webhook", "webhook", "TikTok's CANCELLATION_STATUS_CHANGE event: re-read from TikTok") in notes
    assert ("sync", "marketplace_status") in [(actor, kind) for actor, kind, _ in notes]


def test_a_forged_or_replayed_cancellation_event_changes_nothing(db, receiver, live):
    sandbox, url = live(cancellations=200)
    account = connected_and_subscribed(db, sandbox, url, receiver)
    waiting = waiting_cancellation(sandbox, account.shop_id)
    cancel_id = waiting["cancel_id"]
    forged = event_body(account.shop_id, "7200000000000000001", events.CANCELLATION_STATUS_CHANGE, {
        "order_id": waiting["order_id"], "cancellations_role": "BUYER", "cancel_id": cancel_id,
        "cancel_status": "CANCELLATION_REQUEST_COMPLETE", "create_time": waiting["create_time"]})
    before = all_tables(db)
    for signature in (webhook_signature(SANDBOX_APP_KEY, "not-the-secret", forged), None,
                      sandbox_signed(forged.replace(b"COMPLETE", b"SUCCESS"))):
        assert receiver.post(forged, signature).status_code == 401
    assert all_tables(db) == before

    with_client(db, account, lambda c: c.approve_cancellation(cancel_id, idempotency_key=f"t-{cancel_id}"))
    (event,) = wait_until(lambda: [r for r in rows(db).values() if r["return_id"] == cancel_id
                                   and r["state"] == "done"], "the type-11 event's processing")
    assert stored_status(db, cancel_id) == "CANCELLATION_REQUEST_SUCCESS"
    after = without_inbox(db)
    # TikTok delivers again (at least once): the same bytes, the same signature
    body = event["body"].encode()
    again = receiver.post(body, sandbox_signed(body))
    assert (again.status_code, again.text) == (200, "ok (already received)")
    receiver.inbox.process_waiting()
    assert without_inbox(db) == after
    assert rows(db)[event["tts_notification_id"]]["deliveries"] == 2


def test_a_cancellation_event_without_a_cancel_id_is_kept_not_acted_on(db, receiver):
    add_vector_account(db)
    body = event_body(VECTOR_SHOP, "7300000000000000001", events.CANCELLATION_STATUS_CHANGE, {"order_id": "1"})
    assert receiver.post(body, webhook_signature(VECTOR_KEY, VECTOR_SECRET, body)).status_code == 200
    row = rows(db)["7300000000000000001"]
    assert row["state"] == "kept" and "without a cancel_id" in row["outcome"]


# --- decision rules act on what a webhook's re-sync brought ------------------------------------------


def test_a_rule_decides_a_return_a_webhook_brought_once_and_a_replay_does_not_decide_it_again(db, receiver, live):
    sandbox, url = live(returns=2000)
    account, _ = connect(db, sandbox, url)  # not subscribed: this test sends the events itself
    assert sync_account(db, account, trigger="test").ok
    synced = {r for (r,) in db.rows("SELECT return_id FROM returns")}
    rule = rules.set_enabled(db, rules.save_rule(db, rules.make_rule(
        name="Approve what waits", action=rules.APPROVE, daily_cap=100), "Mia").id, True, "Mia")
    sent = decisions_sent(sandbox)
    sandbox.advance(6 * 3600)  # new returns arrive at TikTok
    new = next(r for r in sandbox.returns_for(account.shop_id)
               if r["return_id"] not in synced and r.get("seller_next_action_response"))
    return_id = new["return_id"]
    body = event_body(account.shop_id, "7400000000000000001", data={
        "order_id": new["order_id"], "return_id": return_id, "return_role": "BUYER", "return_type": new["return_type"],
        "return_status": new["return_status"], "create_time": new["create_time"], "update_time": new["update_time"]})
    assert receiver.post(body, sandbox_signed(body)).status_code == 200

    def decided() -> list[tuple]:
        return db.rows("SELECT return_id, rule_id, state FROM rule_decisions")

    wait_until(lambda: decided() == [(return_id, rule.id, "ok")], "the rule's decision")
    assert rows(db)["7400000000000000001"]["state"] == "done"
    assert sent == Counter({return_id: 1})  # one decision reached TikTok, for the return the webhook brought
    entries = db.rows("SELECT return_id, actor FROM history WHERE kind = 'action'")
    assert entries == [(return_id, rule.actor)]
    assert not next(r for r in sandbox.returns_for(account.shop_id)
                    if r["return_id"] == return_id).get("seller_next_action_response")

    # the same delivery again, and the same news under a new notification id: nothing is decided again
    assert receiver.post(body, sandbox_signed(body)).text == "ok (already received)"
    again = body.replace(b"7400000000000000001", b"7400000000000000002")
    assert receiver.post(again, sandbox_signed(again)).status_code == 200
    wait_until(lambda: rows(db)["7400000000000000002"]["state"] == "done", "the second event's processing")
    receiver.inbox.process_waiting()
    assert decided() == [(return_id, rule.id, "ok")] and sent == Counter({return_id: 1})
    assert db.rows("SELECT return_id, actor FROM history WHERE kind = 'action'") == entries


# --- the other types we act on --------------------------------------------------------------------


def test_seller_deauthorization_marks_the_account_invalid(db, receiver, live):
    sandbox, url = live()
    account, tokens = connect(db, sandbox, url)
    webhooks.subscribe(db, account, receiver.url)
    sandbox.revoke(tokens.access_token)
    wait_until(lambda: accounts.find_by_shop_id(db, account.shop_id).status == accounts.INVALID,
               "the account to turn Invalid")
    wait_until(lambda: settled(db), "the event's processing")
    (event,) = rows(db).values()
    assert event["event_type"] == events.SELLER_DEAUTHORIZATION and "marked Invalid" in event["outcome"]
    assert "deauthorized the app" in accounts.find_by_shop_id(db, account.shop_id).auth_error


def test_a_late_deauthorization_after_a_reconnect_leaves_the_account_active(db, receiver, live):
    sandbox, url = live()
    account, _ = connect(db, sandbox, url)  # authorized again after the event below was sent
    body = event_body(account.shop_id, "7200000000000000001", events.SELLER_DEAUTHORIZATION, {"message": "gone"})
    assert receiver.post(body, sandbox_signed(body)).status_code == 200
    wait_until(lambda: settled(db), "the event's processing")
    assert accounts.find_by_shop_id(db, account.shop_id).status == accounts.ACTIVE
    assert "still accepts" in rows(db)["7200000000000000001"]["outcome"]


def test_an_expiring_authorization_asks_the_alerts_engine_for_an_alert(db, receiver, live):
    sandbox, url = live()
    account, _ = connect(db, sandbox, url)
    expires = int(time.time()) + 5 * DAY
    body = event_body(account.shop_id, "7300000000000000001", events.UPCOMING_AUTHORIZATION_EXPIRATION,
                      {"message": "expiring", "expiration_time": str(expires)})
    assert receiver.post(body, sandbox_signed(body)).status_code == 200
    wait_until(lambda: settled(db), "the event's processing")
    (wanted,) = webhooks.wanted_alerts(db)
    assert (wanted.shop_id, wanted.account_name, wanted.topic) == (
        account.shop_id, account.name, "UPCOMING_AUTHORIZATION_EXPIRATION")
    assert wanted.expires_at == datetime.fromtimestamp(expires, UTC).replace(tzinfo=None)
    webhooks.take_alerts(db, [wanted.notification_id])
    assert webhooks.wanted_alerts(db) == []


def test_the_demo_shop_ticks_and_delivers_to_the_apps_own_receiver(db, db_key, monkeypatch):
    monkeypatch.setenv("RETURNS_DEMO", "1")
    account = demo.ensure_demo_account(db)
    sandbox = demo.demo_sandbox(db.path)
    with running_receiver(db, db_key) as running:
        try:
            assert demo.start_live(db, running.url, tick=0.2) is None
            assert sandbox.live and webhooks.subscription(db, account).covers(running.url)
            return_id, decision = pending_decision(sandbox, account.shop_id)
            with_client(db, account, lambda c: c.approve_return(return_id, decision, idempotency_key=f"d-{return_id}"))
            truth = {r["return_id"]: r for r in sandbox.returns_for(account.shop_id)}[return_id]["return_status"]
            wait_until(lambda: any(r["return_id"] == return_id and r["state"] == "done" for r in rows(db).values()),
                       "the demo webhook's processing")
            assert stored_status(db, return_id) == truth
        finally:
            demo.stop_live(db.path)
    assert not sandbox.live


# --- failures are retried, a bounded number of times, and shown ---------------------------------------


def test_a_failing_re_sync_is_retried_then_shown_as_failed(db, db_key, live, monkeypatch):
    monkeypatch.setattr(webhooks, "RETRY_DELAYS", (0.0, 0.0, 0.0, 0.0))
    sandbox, url = live()
    account, _ = connect(db, sandbox, url)
    return_id = sandbox.returns_for(account.shop_id)[0]["return_id"]
    body = event_body(account.shop_id, "7400000000000000001", data={"return_id": return_id})
    sandbox.faults.inject("500", count=1000, path_prefix="/return_refund/")
    with running_receiver(db, db_key, client_options=FAST) as running:
        assert running.post(body, sandbox_signed(body)).status_code == 200
        wait_until(lambda: rows(db)["7400000000000000001"]["state"] == "failed", "giving up", timeout=120)
    row = rows(db)["7400000000000000001"]
    assert row["attempts"] == webhooks.MAX_ATTEMPTS and row["outcome"].startswith("Gave up after 5 attempts")
    assert SANDBOX_APP_SECRET not in row["outcome"]
    sandbox.faults.clear()
    assert inbox_store.retry_failed(db) == 1
    webhooks.process_all(db, client_options=FAST)
    assert rows(db)["7400000000000000001"]["state"] == "done"


def test_webhooks_process_from_cron_processes_what_the_app_left_waiting(db, live):
    sandbox, url = live()
    account, _ = connect(db, sandbox, url)
    return_id = sandbox.returns_for(account.shop_id)[0]["return_id"]
    event = webhooks.read_event(event_body(account.shop_id, "7500000000000000001", data={"return_id": return_id}))
    inbox_store.add(db, [webhooks._to_store(event, inbox_store.VERIFIED, b"{}")])
    report = webhooks.process_all(db)
    assert (report.claimed, report.done, report.returns_changed) == (1, 1, 1)
    assert stored_payloads(db, account.shop_id) == {return_id: truth_payloads(sandbox, account.shop_id)[return_id]}


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "returns_core", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_command_line_processes_and_lists_the_inbox(db, db_key, cli_env, live):
    sandbox, url = live()
    account, _ = connect(db, sandbox, url)
    return_id = sandbox.returns_for(account.shop_id)[0]["return_id"]
    event = webhooks.read_event(event_body(account.shop_id, "7500000000000000002", data={"return_id": return_id}))
    inbox_store.add(db, [webhooks._to_store(event, inbox_store.VERIFIED, b"{}")])
    env = {**cli_env, "RETURNS_DB": str(db.path), "RETURNS_DESK_KEY": db_key}
    processed = cli(env, "webhooks", "process")
    assert processed.returncode == 0, processed.stderr
    assert processed.stdout.startswith("1 event(s): 1 done") and "1 return(s) changed" in processed.stdout
    listed = cli(env, "webhooks", "list", "--limit", "5")
    assert listed.returncode == 0 and "1 event(s); 0 waiting, 0 failed" in listed.stdout
    assert "12 RETURN_STATUS_CHANGE" in listed.stdout and return_id in listed.stdout


@pytest.mark.parametrize("flags", [["--tick", "0"], ["--webhook-duplicates", "2"], ["--webhook-retry-delays", "x"]])
def test_sandbox_serve_refuses_bad_live_flags_as_a_usage_error(cli_env, flags):
    refused = cli(cli_env, "sandbox", "serve", "--port", "0", *flags)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1


def test_sandbox_serve_passes_its_live_flags_to_the_sandbox(monkeypatch):
    from returns_core import cli as cli_module
    from returns_core.tiktok.sandbox import server as sandbox_server

    seen: dict = {}
    monkeypatch.setattr(sandbox_server, "serve_forever", lambda *args, **kwargs: seen.update(kwargs))
    assert cli_module.main(["sandbox", "serve", "--port", "0", "--tick", "0.5", "--webhook-duplicates", "0",
                            "--webhook-reorder", "0.25", "--webhook-retry-delays", "1,2", "--webhook-seed", "9"]) == 0
    assert seen["tick"] == 0.5
    assert seen["webhooks"] == WebhookSettings(duplicate_rate=0.0, reorder_rate=0.25, retry_delays=(1.0, 2.0), seed=9)


# --- subscribing ----------------------------------------------------------------------------------


def test_subscribing_sets_every_handled_topic_and_reads_back_what_tiktok_lists(db, live):
    sandbox, url = live()
    account, _ = connect(db, sandbox, url)
    assert webhooks.subscription(db, account).addresses == {}
    address = "http://127.0.0.1:8501/webhooks/tiktok"
    listed = webhooks.subscribe(db, account, address)
    assert listed.covers(address) and listed.address == address
    assert set(webhooks.subscription(db, account).addresses) == set(webhooks.HANDLED_TOPICS)
    assert webhooks.unsubscribe(db, account).addresses == {}


def test_a_real_shop_needs_a_public_https_address_and_is_told_before_tiktok_is_asked(db):
    add_vector_account(db)
    account = accounts.find_by_shop_id(db, VECTOR_SHOP)
    for address in ("http://127.0.0.1:8501/webhooks/tiktok", "https://203.0.113.7/hook", "http://desk.example.com/h"):
        with pytest.raises(ValueError, match="public HTTPS"):
            webhooks.subscribe(db, account, address)  # the account's API base does not even resolve
    assert webhooks.address_problem(account, "https://desk.example.com/webhooks/tiktok") is None


# --- helpers ------------------------------------------------------------------------------------------


def with_client(db: Database, account: accounts.Account, act) -> None:
    from returns_core.tiktok_session import tiktok_session

    with tiktok_session(db, account) as client:
        act(client)


def stored_status(db: Database, return_id: str) -> str | None:
    return db.value("SELECT marketplace_status FROM returns WHERE return_id = ?", [return_id])
