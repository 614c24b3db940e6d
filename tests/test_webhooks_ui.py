"""Where webhooks show in the app (AppTest on app.py): the sidebar's last event and waiting count, the
Webhook events page, and the Accounts page's webhook address, asked of and set through TikTok (the
sandbox served over HTTP)."""

from __future__ import annotations

import pytest

from returns_core import webhooks
from returns_core.store import webhook_events as inbox
from returns_core.store.db import Database
from tests import ui_fixtures as ui
from tests.apptest import button, open_app, sidebar_text, texts
from tests.reliability import connect

EVENTS_PAGE = "app_pages/events.py"
ACCOUNTS_PAGE = "app_pages/accounts.py"


def stored_event(db: Database, notification_id: str, state: str, *, event_type: int = 12, outcome: str = "",
                 return_id: str | None = "R1", verification: str = inbox.VERIFIED) -> None:
    event = inbox.NewEvent(notification_id, event_type, ui.ALPHA, return_id, "AWAITING_BUYER_SHIP", None,
                           verification, inbox.PENDING, None, '{"type": 12}')
    inbox.add(db, [event])
    if state != inbox.PENDING:
        inbox.claim(db, 100)
        inbox.settle(db, [inbox.Settled(notification_id, state, outcome)])


def table_with(at, column: str):
    """The table on screen that has this column (tables without a selection carry no key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def with_events(app_db) -> Database:
    ui.seed_store(app_db)
    stored_event(app_db, "n-done", inbox.DONE, outcome="Re-synced: TikTok says AWAITING_BUYER_SHIP (unchanged).")
    stored_event(app_db, "n-failed", inbox.FAILED, outcome="Gave up after 5 attempts: TikTok could not be reached.")
    stored_event(app_db, "n-kept", inbox.KEPT, event_type=99, return_id=None, outcome="Kept as received")
    stored_event(app_db, "n-wait-1", inbox.PENDING)
    stored_event(app_db, "n-wait-2", inbox.PENDING)
    return app_db


def test_the_sidebar_shows_when_the_last_event_came_and_how_many_wait(with_events):
    text = sidebar_text(open_app())
    assert "Last webhook event **just now**" in text
    assert "**2** waiting to be processed" in text and "1 failed" in text


def test_the_sidebar_says_nothing_of_webhooks_before_the_first_event(app_db):
    ui.seed_store(app_db)
    assert "webhook" not in sidebar_text(open_app()).lower()


def test_the_events_page_lists_each_event_with_its_outcome(with_events):
    at = open_app(EVENTS_PAGE)
    assert at.title[0].value == "Webhook events"
    table = table_with(at, "Notification ID")
    by_id = table.set_index("Notification ID")
    assert list(table["Notification ID"]) == ["n-wait-2", "n-wait-1", "n-kept", "n-failed", "n-done"]
    assert by_id.loc["n-failed", "State"] == "failed" and "Gave up" in by_id.loc["n-failed", "Outcome"]
    assert by_id.loc["n-kept", "Type"] == "99 (unknown)" and by_id.loc["n-kept", "State"] == "kept, not acted on"
    by_type = table_with(at, "Deliveries")
    assert set(by_type["Type"]) == {"12 RETURN_STATUS_CHANGE", "99 (unknown)"}
    assert "started without the webhook receiver" in texts(at)  # AppTest runs app.py, not server.py
    assert "Alerts sent" in texts(at)


def test_failed_events_can_be_queued_again_from_the_page(with_events):
    at = open_app(EVENTS_PAGE)
    at.button(key="events_retry").click().run()
    assert not at.exception
    assert inbox.summary(with_events).failed == 0 and inbox.summary(with_events).waiting == 3


def test_the_events_page_filters_by_state(with_events):
    at = open_app(EVENTS_PAGE)
    at.multiselect(key="events_states").set_value([inbox.FAILED]).run()
    table = table_with(at, "Notification ID")
    assert list(table["Notification ID"]) == ["n-failed"]


@pytest.mark.sandbox(shops=1, returns=30)
def test_the_accounts_page_asks_tiktok_for_the_address_and_sets_it(app_db, sandbox, sandbox_server):
    account, _ = connect(app_db, sandbox, sandbox_server.url)
    at = open_app(ACCOUNTS_PAGE)
    assert "only delivers to a public HTTPS address" in texts(at)
    at.button(key="accounts_webhook_ask").click().run()
    shown = table_with(at, "Address")
    assert set(shown["Address"]) == {"not set"} and list(shown["Event"]) == list(webhooks.HANDLED_TOPICS)

    at.text_input(key="accounts_webhook_to").set_value("http://10.1.2.3:8501/webhooks/tiktok")
    button(at, "Send this shop's events here").click().run()
    assert any("public" in e.value for e in at.error)
    assert webhooks.subscription(app_db, account).addresses == {}  # refused before TikTok was asked

    address = "http://127.0.0.1:8501/webhooks/tiktok"
    at.text_input(key="accounts_webhook_to").set_value(address)
    button(at, "Send this shop's events here").click().run()
    assert not at.exception
    # the address reads as typed; it is shown as text, not a live link (an invisible joiner stops linking)
    assert f"TikTok now sends {account.name}'s events to {address}" in texts(at).replace("\u2060", "")
    assert webhooks.subscription(app_db, account).covers(address)
    shown = table_with(at, "Address")
    assert set(shown["Address"]) == {address}

    button(at, "Stop this shop's events").click().run()
    assert webhooks.subscription(app_db, account).addresses == {}
