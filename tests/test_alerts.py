"""Alerts end to end: rules over a store built through the real write path, sent through apprise to a
local SMTP server (aiosmtpd) and a local HTTP receiver, each once, with the right links; never twice
when evaluators race (two threads; the app's scheduler and a cron subprocess); failures retried and
visible; channel secrets kept out of the store file, logs and errors.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from returns_core import alerts, jobs
from returns_core import sample_data as sample
from returns_core.accounts import mark_invalid, mark_valid
from returns_core.filters import filters_from_query
from returns_core.store import alerts as alert_rows
from returns_core.store import returns
from returns_core.store import webhook_events as inbox
from returns_core.store.db import Database, utcnow
from tests.conftest import PYTHON, ROOT, free_port, wait_until

SHOP, NAME = "7000000001", "Alpha Shop"
LABEL = f"{NAME} ({SHOP})"
SMTP_USER, SMTP_PASSWORD = "alerts", "smtp-Pa55-w0rd-never-shown"
HOOK_SECRET = "hook-path-token-XyZ123"  # a webhook's secret lives in its path, as Slack's does


# --- the receivers ------------------------------------------------------------------------------


class Mailbox:
    """A local SMTP server's inbox: every message it accepted, parsed. Logs in as SMTP_USER only."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def login(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        """aiosmtpd's authenticator: the one user and password (a refusal is answered by aiosmtpd: 535)."""
        ok = (auth_data.login, auth_data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    def url(self) -> str:
        """The apprise address of this server (plain SMTP with login: its password is the secret)."""
        return (f"mailto://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{self.port}?from=desk@shop.example"
                f"&to=ops@shop.example&mode=insecure")

    def bodies(self) -> list[str]:
        """Each message's plain-text body."""
        return [m.get_body(preferencelist=("plain",)).get_content() for m in self.messages]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), auth_require_tls=False,
                            authenticator=box.login)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


class Hook:
    """A local HTTP receiver for apprise's json:// posts.

    Answers `statuses` in turn, then 200. While `held`, each request waits for `release()` after
    saying it `arrived`: a test can keep a sender in the middle of a send.
    """

    def __init__(self) -> None:
        self.posts: list[dict] = []  # accepted bodies
        self.requests = 0  # every request, refused ones too
        self.statuses: list[int] = []
        self.always: int | None = None
        self.arrived = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self.port = 0

    def url(self, secret: str = HOOK_SECRET) -> str:
        return f"json://127.0.0.1:{self.port}/hook/{secret}"

    def hold(self) -> None:
        self.arrived.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def answer(self, body: bytes) -> int:
        """Record one request; the status to answer it with."""
        with self._lock:
            self.requests += 1
            status = self.statuses.pop(0) if self.statuses else (self.always or 200)
            if status == 200:
                self.posts.append(json.loads(body))
        return status

    def titles(self) -> list[str]:
        return [post["title"] for post in self.posts]


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.arrived.set()
            assert receiver._open.wait(60), "the test never released the receiver"
            self.send_response(receiver.answer(body))
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.release()
    server.shutdown()
    server.server_close()


# --- the store ----------------------------------------------------------------------------------


def a_return(rid: str, due_in_hours: float | None, now: datetime, *, status: str = "RETURN_OR_REFUND_REQUEST_PENDING",
             return_type: str = "REFUND", action: str | None = "SELLER_RESPOND_REFUND", sku: str = "MUG-1",
             reason: str = "Damaged item", created: datetime | None = None) -> dict:
    """A TikTok return object with one line item and, when given, a seller deadline that many hours away."""
    deadline = [(action, now + timedelta(hours=due_in_hours))] if due_in_hours is not None else ()
    return sample.tiktok_return(
        rid, order_id=f"O-{rid}", return_type=return_type, return_status=status, reason_text=reason,
        created=created or now - timedelta(days=30), refund_amount=sample.refund("USD", "12.50"),
        next_actions=deadline,
        line_items=[sample.line_item(f"L-{rid}", seller_sku=sku, currency="USD", refund_total="12.50")])


def deadlines_store(db: Database) -> datetime:
    """One shop with returns around their deadlines; returns the `now` they were written at."""
    now = utcnow().replace(microsecond=0)
    sample.add_account(db, SHOP, NAME)
    sample.write_returns(db, SHOP, [
        a_return("R-SOON", 3, now),  # due in 3 h and the seller can decide: alert
        a_return("R-LATER", 30, now),  # due in 30 h: not within 6 h
        # the buyer's turn (nothing for the seller to decide), and a closed case: no alert either
        a_return("R-WAITING", 2, now, return_type="RETURN_AND_REFUND", status="AWAITING_BUYER_SHIP", action=None),
        a_return("R-CLOSED", 1, now, status="RETURN_OR_REFUND_REQUEST_COMPLETE", action=None),
        a_return("R-LATE", -2, now),  # overdue by 2 h, nobody decided: alert
        a_return("R-STALE", -48, now),  # overdue for 2 days: before the overdue rule's 24 h look-back
    ], synced_at=now)
    return now


def detail(rid: str, base: str = alerts.DEFAULT_BASE_URL) -> str:
    return f"{base}/detail?id={rid}&shop={SHOP}"


# --- deadlines: each alert once, on both channels, with the detail link ---------------------------


def test_a_return_due_within_6_hours_and_an_overdue_one_are_sent_once_by_email_and_webhook(db, mailbox, hook):
    now = deadlines_store(db)
    alerts.add_channel(db, mailbox.url(), "Ops e-mail")
    alerts.add_channel(db, hook.url(), "Ops webhook")

    first = alerts.evaluate(db, now=now)
    again = alerts.evaluate(db, now=now + timedelta(minutes=1))

    assert (first.raised, first.sent, first.errors) == (2, 4, ())
    assert (again.raised, again.sent) == (0, 0)
    assert sorted(m["Subject"] for m in mailbox.messages) == sorted(hook.titles())
    assert len(mailbox.messages) == 2
    soon = next(b for b in mailbox.bodies() if "R-SOON" in b)
    assert detail("R-SOON") in soon and "Deadline for the seller" in soon and "Nobody has decided" in soon
    late = next(p for p in hook.posts if "R-LATE" in p["title"])
    assert detail("R-LATE") in late["message"] and "overdue" in late["title"]
    assert {(a["rule"], a["subject"]) for a in alert_rows.alerts_of(db)} == {
        (alerts.DUE_SOON, "R-SOON"), (alerts.OVERDUE, "R-LATE")}


def test_the_links_start_with_the_apps_public_address(db, hook):
    now = deadlines_store(db)
    alerts.set_base_url(db, "https://desk.shop.example/")
    alerts.add_channel(db, hook.url())
    alerts.evaluate(db, now=now)
    assert any(detail("R-SOON", "https://desk.shop.example") in p["message"] for p in hook.posts)
    with pytest.raises(alerts.AlertError):
        alerts.set_base_url(db, "desk.shop.example")


def test_thresholds_and_switches_decide_what_is_raised(db, hook):
    now = deadlines_store(db)
    alerts.add_channel(db, hook.url())
    alerts.set_rule(db, alerts.DUE_SOON, on=True, threshold=36)  # R-LATER (30 h) now counts too
    alerts.set_rule(db, alerts.OVERDUE, on=False)
    alerts.evaluate(db, now=now)
    assert {a["subject"] for a in alert_rows.alerts_of(db)} == {"R-SOON", "R-LATER"}
    assert alerts.rule_settings(db)[alerts.OVERDUE] == alerts.RuleSetting(False, 24)
    with pytest.raises(alerts.AlertError, match="between 1 and 168"):
        alerts.set_rule(db, alerts.DUE_SOON, on=True, threshold=0)


def test_a_new_deadline_of_the_same_return_alerts_again(db, hook):
    now = deadlines_store(db)
    alerts.add_channel(db, hook.url())
    alerts.evaluate(db, now=now)
    # TikTok moved the case on: the seller has a new decision to make, with a new deadline
    sample.write_returns(db, SHOP, [a_return("R-SOON", 4, now + timedelta(hours=1),
                                             action="SELLER_RESPOND_RECEIVE_PACKAGE")], synced_at=now)
    alerts.evaluate(db, now=now + timedelta(hours=1))
    assert [a["subject"] for a in alert_rows.alerts_of(db, alerts.DUE_SOON)] == ["R-SOON", "R-SOON"]


def test_nothing_is_raised_while_no_channel_is_set_up_and_the_first_channel_hears_of_what_holds(db, hook):
    now = deadlines_store(db)
    assert alerts.evaluate(db, now=now) == alerts.Evaluation()
    assert alert_rows.alerts_of(db) == []
    alerts.add_channel(db, hook.url())
    assert alerts.evaluate(db, now=now).raised == 2


# --- never twice ----------------------------------------------------------------------------------


def many_due(db: Database, n: int) -> datetime:
    now = utcnow().replace(microsecond=0)
    sample.add_account(db, SHOP, NAME)
    sample.write_returns(db, SHOP, [a_return(f"R{i:03}", 1 + i / 100, now) for i in range(n)], synced_at=now)
    return now


def test_two_threads_evaluating_at_once_send_each_alert_once(db, mailbox, hook):
    now = many_due(db, 20)
    alerts.add_channel(db, mailbox.url())
    alerts.add_channel(db, hook.url())
    start = threading.Barrier(2)
    results: list[alerts.Evaluation] = []

    def evaluator() -> None:
        start.wait()
        results.append(alerts.evaluate(db, now=now))

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert sum(r.raised for r in results) == 20 and sum(r.sent for r in results) == 40
    assert sorted(hook.titles()) == sorted(set(hook.titles())) and len(hook.posts) == 20
    assert sorted(m["Subject"] for m in mailbox.messages) == sorted(hook.titles())
    assert all(d["state"] == "sent" and d["attempts"] == 1
               for a in alert_rows.alerts_of(db) for d in alert_rows.deliveries(db, a["id"]))


class CountingSchedule(jobs.AlertsSchedule):
    """The app's alert scheduler, counting its evaluations and what they did."""

    def __init__(self, db: Database, check_every: float) -> None:
        super().__init__(db, check_every)
        self.results: list[alerts.Evaluation] = []

    def tick(self, now: datetime | None = None) -> alerts.Evaluation:
        result = super().tick(now)
        self.results.append(result)
        return result


def cron(db: Database, db_key: str) -> subprocess.Popen:
    """`python -m returns_core alerts` on this store, as cron runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(PYTHONPATH=str(ROOT), RETURNS_DESK_KEY=db_key, RETURNS_DEMO="0", PYTHONUNBUFFERED="1")
    return subprocess.Popen([PYTHON, "-m", "returns_core", "alerts", "--db", str(db.path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_the_apps_scheduler_and_a_cron_run_at_once_send_each_alert_once(db, db_key, hook):
    now = many_due(db, 5)
    alerts.add_channel(db, hook.url() + "?rto=120")  # a held send waits for the test, not apprise's 4 s
    schedule = CountingSchedule(db, check_every=0.02)
    try:
        # cron raises the alerts and is held in the middle of sending the first
        hook.hold()
        process = cron(db, db_key)
        wait_until(hook.arrived.is_set, "the cron run to start sending", timeout=120)
        # the app's scheduler evaluates again and again meanwhile: everything is raised and leased
        schedule.start()
        wait_until(lambda: len(schedule.results) >= 3, "three evaluations by the app while cron sends")
        assert sum(r.raised + r.sent for r in schedule.results) == 0
        hook.release()
        out, err = process.communicate(timeout=120)
        assert (process.returncode, out.strip(), err) == (0, "Alerts: 5 raised, 5 sent.", "")

        # the other way round: the app is held mid-send while a cron run comes and goes
        sample.write_returns(db, SHOP, [a_return(f"N{i}", 2, now) for i in range(3)], synced_at=now)
        hook.hold()
        wait_until(hook.arrived.is_set, "the app's scheduler to start sending the new alerts")
        process = cron(db, db_key)
        out, err = process.communicate(timeout=120)
        assert (process.returncode, out.strip(), err) == (0, "Alerts: 0 raised, 0 sent.", "")
        hook.release()
        wait_until(lambda: len(hook.posts) == 8, "the app to send the three new alerts")
        ticks = len(schedule.results)
        wait_until(lambda: len(schedule.results) >= ticks + 3, "three more evaluations by the app")
    finally:
        hook.release()
        schedule.stop()

    assert len(hook.posts) == 8 and len(set(hook.titles())) == 8
    raised_by = [a["raised_by"] for a in alert_rows.alerts_of(db)]
    assert raised_by.count("cli") == 5 and raised_by.count("app") == 3


# --- a crash between claim and send, a failure to deliver ----------------------------------------


def test_an_alert_raised_by_an_evaluator_that_died_before_sending_goes_out_on_the_next(db, hook, monkeypatch):
    now = deadlines_store(db)
    alerts.add_channel(db, hook.url())

    def died(*_args, **_kwargs):
        raise SystemExit("killed between claim and send")

    with monkeypatch.context() as patch:
        patch.setattr(alerts, "deliver_due", died)
        with pytest.raises(SystemExit):
            alerts.evaluate(db, now=now)
    assert hook.posts == [] and len(alert_rows.alerts_of(db)) == 2

    result = alerts.evaluate(db, now=now + timedelta(minutes=1))
    assert (result.raised, result.sent, len(hook.posts)) == (0, 2, 2)


def test_a_send_whose_sender_died_is_retried_once_its_lease_runs_out(db, hook):
    now = deadlines_store(db)
    alerts.add_channel(db, hook.url())
    alerts.raise_alerts(db, now=now)
    taken = alert_rows.take_due(db, now=now, lease=alerts.LEASE)  # ...and the sender dies before sending
    assert len(taken) == 2

    assert alerts.evaluate(db, now=now + timedelta(minutes=1)).sent == 0  # still leased to the dead sender
    assert alerts.evaluate(db, now=now + alerts.LEASE + timedelta(seconds=1)).sent == 2
    assert len(hook.posts) == 2
    assert {d["attempts"] for a in alert_rows.alerts_of(db) for d in alert_rows.deliveries(db, a["id"])} == {2}


def test_a_failed_delivery_is_retried_with_backoff_and_shown_with_its_attempts_and_error(db, hook):
    now = deadlines_store(db)
    alerts.add_channel(db, hook.url(), "Ops webhook")
    hook.statuses = [500, 500]  # the first two requests fail: both alerts' first attempt

    first = alerts.evaluate(db, now=now)
    assert (first.sent, first.retrying, len(first.errors)) == (0, 2, 2)
    shown = alert_rows.recent(db, now=now)
    assert list(shown["Outcome"]) == ["retrying", "retrying"] and list(shown["Attempts"]) == [1, 1]
    assert all("500" in error for error in shown["Last error"])
    assert list(shown["Next attempt"]) == [now + alerts.RETRY_DELAYS[0]] * 2

    assert alerts.evaluate(db, now=now + timedelta(seconds=30)).sent == 0  # not due yet
    retried = alerts.evaluate(db, now=now + alerts.RETRY_DELAYS[0])
    assert (retried.sent, retried.retrying) == (2, 0)
    shown = alert_rows.recent(db, now=now)
    assert list(shown["Outcome"]) == ["sent", "sent"] and list(shown["Attempts"]) == [2, 2]
    assert shown["Last error"].isna().all() and len(hook.posts) == 2


def test_a_channel_that_keeps_failing_is_given_up_after_the_last_attempt_and_shown_failed(db, hook):
    now = deadlines_store(db)
    alerts.set_rule(db, alerts.OVERDUE, on=False)
    alerts.add_channel(db, hook.url())
    hook.always = 503
    at = now
    for attempt in range(1, alerts.MAX_ATTEMPTS + 1):
        result = alerts.evaluate(db, now=at)
        assert (result.retrying, result.failed) == ((1, 0) if attempt < alerts.MAX_ATTEMPTS else (0, 1))
        at += alerts.RETRY_DELAYS[attempt - 1] if attempt < alerts.MAX_ATTEMPTS else timedelta(hours=1)
    assert alerts.evaluate(db, now=at).errors == ()
    assert hook.requests == alerts.MAX_ATTEMPTS
    shown = alert_rows.recent(db, now=at).iloc[0]
    assert (shown["Outcome"], shown["Attempts"]) == ("failed", alerts.MAX_ATTEMPTS) and "503" in shown["Last error"]


# --- spikes: the grid link reproduces exactly the returns counted ---------------------------------


def spike_store(db: Database) -> tuple[datetime, set[str]]:
    """Ten weeks of one return a week, then six returns of MUG-9 "Damaged item" in the last six days."""
    # noon of today (UTC): spikes count whole days, so checks an hour apart must not fall on two dates,
    # whenever the suite runs
    now = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    noon_yesterday = datetime.combine(now.date() - timedelta(days=1), datetime.min.time()) + timedelta(hours=12)
    sample.add_account(db, SHOP, NAME)
    usual = [a_return(f"BG{w}", None, now, sku="TEE-1", reason="Wrong size",
                      created=noon_yesterday - timedelta(weeks=w)) for w in range(0, 11)]
    spike = [a_return(f"SP{d}", None, now, sku="MUG-9", reason="Damaged item",
                      created=noon_yesterday - timedelta(days=d, hours=2)) for d in range(6)]
    sample.write_returns(db, SHOP, usual + spike, synced_at=now)
    return now, {f"SP{d}" for d in range(6)}


def rows_behind(link: str, db: Database) -> set[str]:
    """The return ids the grid shows for an alert's link (its query parameters, the account's view)."""
    parts = urlsplit(link)
    assert parts.path == "/returns"
    query = {key: values if len(values) > 1 or key == "created" else values[0]
             for key, values in parse_qs(parts.query).items()}
    assert query.pop("account") == LABEL
    filters = filters_from_query(query).with_(shop_ids=(SHOP,))
    return set(returns.grid_page(db, filters, limit=500)["Marketplace Return ID"])


def test_a_reason_and_a_sku_spike_are_each_sent_once_linking_to_exactly_the_returns_counted(db, hook):
    now, spiking = spike_store(db)
    alerts.add_channel(db, hook.url())

    assert alerts.evaluate(db, now=now).raised == 2
    assert alerts.evaluate(db, now=now + alerts.SPIKE_EVERY + timedelta(minutes=1)).raised == 0  # still the same

    raised = {a["subject"]: a for a in alert_rows.alerts_of(db, alerts.SPIKE)}
    assert set(raised) == {"SKU: MUG-9", "Reason: Damaged item"}
    for alert in raised.values():
        assert rows_behind(alert["link"], db) == spiking
        assert "6 returns" in alert["title"] and alert["link"] in alert["message"]
    assert sorted(p["title"] for p in hook.posts) == sorted(a["title"] for a in raised.values())


# --- authorizations and syncs ----------------------------------------------------------------------

BETA, BETA_NAME = "7000000002", "Beta Shop"


def test_an_authorization_expiring_within_7_days_is_sent_once_and_the_webhooks_signal_joins_it(db, hook):
    now = utcnow().replace(microsecond=0)
    sample.add_account(db, SHOP, NAME)
    sample.add_account(db, BETA, BETA_NAME, refresh_expires_in=timedelta(days=3))
    alerts.add_channel(db, hook.url())

    assert alerts.evaluate(db, now=now).raised == 1
    expiring = alert_rows.alerts_of(db, alerts.AUTHORIZATION)[0]
    assert expiring["shop_id"] == BETA and expiring["subject"] == alerts.EXPIRING
    assert expiring["link"] == "http://localhost:8501/accounts?account=Beta+Shop+%287000000002%29"
    assert BETA_NAME in hook.posts[0]["title"]

    # TikTok's UPCOMING_AUTHORIZATION_EXPIRATION for the same expiry (a string of Unix seconds): no second alert
    expires = datetime.fromisoformat(expiring["occurrence"]) + timedelta(hours=12)
    assert alerts.raise_authorization_expiring(db, BETA, str(sample.unix(expires))) is None
    # ...for another expiry day, and for a shop no account has: raised (and kept, never dropped)
    later = alerts.raise_authorization_expiring(db, BETA, sample.unix(expires + timedelta(days=2)))
    stranger = alerts.raise_authorization_expiring(db, "7999999999", None)
    assert later is not None and stranger is not None
    assert alerts.deliver_due(db).sent == 2
    assert "7999999999" in hook.posts[-1]["title"] or "7999999999" in hook.posts[-2]["title"]


def webhook_asks_for_an_alert(db: Database, notification_id: str, expires: datetime) -> None:
    """TikTok's UPCOMING_AUTHORIZATION_EXPIRATION stored and processed by the receiver: "alert wanted"."""
    body = json.dumps({"type": 7, "tts_notification_id": notification_id, "shop_id": SHOP,
                       "timestamp": sample.unix(utcnow()),
                       "data": {"message": "expiring", "expiration_time": str(sample.unix(expires))}})
    inbox.add(db, [inbox.NewEvent(notification_id, 7, SHOP, None, None, utcnow(), inbox.VERIFIED, inbox.PENDING,
                                  None, body)])
    inbox.settle(db, [inbox.Settled(notification_id, inbox.DONE, "Alert wanted", alert=inbox.ALERT_WANTED)])


@pytest.mark.parametrize("time_of_day", [time(12, 0), time(23, 58)], ids=["midday", "before-midnight"])
def test_alerts_webhooks_asked_for_are_raised_once_and_taken(db, hook, time_of_day):
    now = utcnow().replace(microsecond=0)
    sample.add_account(db, SHOP, NAME)
    alerts.add_channel(db, hook.url())
    # beyond the rule's own 7 days: only TikTok's notice raises it. Before midnight, the second notice's
    # expiry, 5 minutes later, falls on the next day: still the same authorization running out.
    expires = datetime.combine((now + timedelta(days=20)).date(), time_of_day)
    webhook_asks_for_an_alert(db, "n1", expires)
    webhook_asks_for_an_alert(db, "n2", expires + timedelta(minutes=5))  # TikTok sends the notice daily

    assert alerts.evaluate(db, now=now).raised == 1
    assert alerts.evaluate(db, now=now).raised == 0
    assert inbox.wanted_alerts(db) == [] and len(hook.posts) == 1
    assert hook.posts[0]["title"] == f"Authorization of {NAME} runs out on {expires:%Y-%m-%d %H:%M} UTC"


def test_a_revoked_authorization_alerts_once_and_again_only_after_a_reconnect(db, hook):
    now = utcnow().replace(microsecond=0)
    sample.add_account(db, SHOP, NAME, invalid_reason="TikTok refused the refresh token")
    alerts.add_channel(db, hook.url())
    assert alerts.evaluate(db, now=now).raised == 1
    assert alerts.evaluate(db, now=now + timedelta(hours=1)).raised == 0
    mark_valid(db, SHOP)
    assert alerts.evaluate(db, now=now + timedelta(hours=2)).raised == 0
    mark_invalid(db, SHOP, "The seller deauthorized the app")
    assert alerts.evaluate(db, now=now + timedelta(hours=3)).raised == 1
    assert [p["title"] for p in hook.posts] == [f"Authorization of {NAME} was revoked"] * 2
    assert "TikTok refused the refresh token" in hook.posts[0]["message"]


def test_a_sync_failing_3_times_in_a_row_alerts_once_per_run_of_failures(db, hook):
    now = utcnow().replace(microsecond=0)
    sample.add_account(db, SHOP, NAME)
    alerts.add_channel(db, hook.url())

    def run(error: str | None, minutes: int) -> None:
        sample.add_sync_run(db, SHOP, started_at=now - timedelta(hours=2) + timedelta(minutes=minutes), error=error)

    run(None, 0)
    run("TikTok is down", 1)
    run("TikTok is down", 2)
    assert alerts.evaluate(db, now=now).raised == 0
    run("TikTok is down", 3)
    assert alerts.evaluate(db, now=now).raised == 1
    run("TikTok is down", 4)
    assert alerts.evaluate(db, now=now).raised == 0
    run(None, 5)
    for minute in (6, 7, 8):
        run("Rate limited", minute)
    assert alerts.evaluate(db, now=now).raised == 1
    assert [p["title"] for p in hook.posts] == [f"Sync of {NAME} failed 3 times in a row"] * 2
    assert "Rate limited" in hook.posts[1]["message"] and "/sync-history?account=" in hook.posts[1]["message"]


# --- secrets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("mailtos://me:pw-123456@smtp.example.com?to=ops@example.com", "mailtos://smtp.example.com"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://…"),
    ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlaz", "https://hooks.slack.com"),
    ("json://user:secret@127.0.0.1:8080/hook/abc", "json://127.0.0.1"),
])
def test_a_channel_is_shown_by_its_scheme_and_host_only(url, shown):
    assert alerts.redact(url) == shown


def test_a_channel_secret_stays_out_of_the_file_the_logs_and_the_errors(db, hook, mailbox, caplog):
    now = deadlines_store(db)
    # everything any library logs; pytest even captures apprise's logger, which the app keeps to itself
    caplog.set_level(logging.DEBUG)
    secret_hook = f"json://hookuser:{SMTP_PASSWORD}@127.0.0.1:{hook.port}/hook/{HOOK_SECRET}"
    closed = f"json://127.0.0.1:{free_port()}/hook/{HOOK_SECRET}-closed"
    for url in (secret_hook, closed, mailbox.url().replace(SMTP_PASSWORD, SMTP_PASSWORD + "-wrong")):
        alerts.add_channel(db, url)
    hook.always = 500

    result = alerts.evaluate(db, now=now)
    tested = [alerts.test_channel(db, c.id) for c in alerts.channels(db)]

    assert len(result.errors) == 6 and all(tested)
    db.checkpoint()
    shown = [*result.errors, *tested, alert_rows.recent(db).to_csv(), caplog.text, repr(alerts.channels(db)),
             repr(alert_rows.take_due(db, now=now + timedelta(days=1)))]
    stored = db.path.read_bytes() + (db.path.with_name(db.path.name + ".wal").read_bytes()
                                     if db.path.with_name(db.path.name + ".wal").exists() else b"")
    for secret in (SMTP_PASSWORD, HOOK_SECRET):
        assert all(secret not in text for text in shown), secret
        assert secret.encode() not in stored
    assert {c.shown for c in alerts.channels(db)} == {"json://127.0.0.1", "mailto://127.0.0.1"}


def test_the_cron_command_reports_a_failed_delivery_in_one_line_without_the_secret(db, db_key, hook):
    now = deadlines_store(db)
    alerts.add_channel(db, hook.url())
    hook.always = 500
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(PYTHONPATH=str(ROOT), RETURNS_DESK_KEY=db_key, RETURNS_DEMO="0", RETURNS_DEBUG="1")
    done = subprocess.run([PYTHON, "-m", "returns_core", "alerts", "--db", str(db.path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout.strip() == "Alerts: 2 raised, 0 sent, 2 to retry."
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "2 alert delivery(ies) failed (tried again later)" in errors[0]
    assert HOOK_SECRET not in done.stdout + done.stderr  # debug logging on, and still not there
    assert now  # the store was written before the run
