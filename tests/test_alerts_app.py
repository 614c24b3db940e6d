"""The Settings page through the real app.py (AppTest): channels added, tested and removed without their
secret ever showing; rules and the app's address saved; and the links alerts carry open the right view.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from streamlit.testing.v1 import AppTest

from returns_core import alerts
from returns_core.store import alerts as alert_rows
from tests.apptest import button, grid, open_app, return_ids, texts
from tests.test_alerts import HOOK_SECRET, LABEL, SHOP, deadlines_store, hook, spike_store  # noqa: F401 - fixture

SETTINGS = "app_pages/settings.py"
SECRET = "s3cret-Pa55word-in-the-url"


def everything(at: AppTest) -> str:
    """Every element the app drew (their protobufs, widget values and defaults included) and the session state."""
    parts: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts.append(repr(at.session_state))  # every key the session holds, with its value
    return "\n".join(parts)


def add(at: AppTest, url: str, name: str = "") -> AppTest:
    at.text_input(key="settings_channel_name").input(name)
    at.text_input(key="settings_channel_url").input(url)
    button(at, "Add channel").click().run()
    assert not at.exception, at.exception
    return at


def test_a_channel_is_added_tested_and_removed_and_its_secret_never_shows(app_db, hook, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    url = f"json://desk:{SECRET}@127.0.0.1:{hook.port}/hook/{HOOK_SECRET}"
    at = add(open_app(SETTINGS), url, "Ops webhook")

    assert "Added **Ops webhook** (`json://127.0.0.1`)" in texts(at)
    assert "**Ops webhook** · `json://127.0.0.1`" in texts(at)
    assert at.text_input(key="settings_channel_url").value == ""  # the form forgot what was typed
    channel = alerts.channels(app_db)[0]
    assert alert_rows.channel_url(app_db, channel.id) == url  # kept, encrypted, for sending only

    button(at, "Test").click().run()
    assert "Test message sent to **Ops webhook**." in texts(at)
    assert [p["title"] for p in hook.posts] == ["Returns Desk: test alert"]

    hook.always = 500
    button(at, "Test").click().run()
    failed = next(e.value for e in at.error)
    assert failed.startswith("Test to **Ops webhook** failed:") and "500" in failed

    for secret in (SECRET, HOOK_SECRET):
        assert secret not in everything(at)
        assert secret not in caplog.text
    button(at, "Remove").click().run()
    assert alerts.channels(app_db) == [] and "Removed **Ops webhook**." in texts(at)


def test_an_address_apprise_cannot_read_is_refused_without_repeating_it(app_db):
    at = add(open_app(SETTINGS), f"nosuchservice://{SECRET}@example.com/x")
    assert "apprise does not understand this address (nosuchservice://example.com)" in texts(at)
    assert SECRET not in everything(at) and alerts.channels(app_db) == []


def test_rule_switches_thresholds_and_the_apps_address_are_saved(app_db):
    at = open_app(SETTINGS)
    at.toggle(key=f"settings_rule_on_{alerts.OVERDUE}").set_value(False)
    at.number_input(key=f"settings_rule_n_{alerts.DUE_SOON}").set_value(12)
    button(at, "Save rules").click().run()
    assert "Alert rules saved." in texts(at)
    chosen = alerts.rule_settings(app_db)
    assert chosen[alerts.DUE_SOON] == alerts.RuleSetting(True, 12)
    assert chosen[alerts.OVERDUE] == alerts.RuleSetting(False, 24)

    at.text_input(key="settings_base_url").input("https://desk.shop.example/")
    button(at, "Save address").click().run()
    assert alerts.base_url(app_db) == "https://desk.shop.example"
    at.text_input(key="settings_base_url").input("not an address")
    button(at, "Save address").click().run()
    assert "The app's address must look like" in texts(at) and alerts.base_url(app_db) == "https://desk.shop.example"


def test_check_now_sends_and_the_alerts_sent_are_listed_with_their_outcome(app_db, hook):  # noqa: F811
    deadlines_store(app_db)
    alerts.add_channel(app_db, hook.url(), "Ops webhook")
    at = open_app(SETTINGS)
    button(at, "Check now").click().run()
    assert "Alerts: 2 raised, 2 sent." in texts(at)
    listed = grid(at, "settings_alerts")
    assert sorted(listed["Outcome"]) == ["sent", "sent"] and set(listed["Rule"]) == {"due_soon", "overdue"}


def grid_query_of(link: str) -> dict[str, str | list[str]]:
    parts = urlsplit(link)
    assert parts.path == "/returns"
    return {key: values if len(values) > 1 or key in ("created", "reason") else values[0]
            for key, values in parse_qs(parts.query).items()}


def test_a_spike_alerts_link_opens_the_grid_on_exactly_the_returns_it_counted(app_db, hook):  # noqa: F811
    now, spiking = spike_store(app_db)
    alerts.add_channel(app_db, hook.url())
    alerts.evaluate(app_db, now=now)
    links = [a["link"] for a in alert_rows.alerts_of(app_db, alerts.SPIKE)]
    assert len(links) == 2
    for link in links:
        query = grid_query_of(link)
        assert query["account"] == LABEL
        assert set(return_ids(open_app(**query))) == spiking


def test_a_deadline_alerts_link_opens_that_returns_detail_page(app_db, hook):  # noqa: F811
    now = deadlines_store(app_db)
    alerts.add_channel(app_db, hook.url())
    alerts.evaluate(app_db, now=now)
    link = next(a["link"] for a in alert_rows.alerts_of(app_db, alerts.DUE_SOON))
    parts = urlsplit(link)
    assert parts.path == "/detail"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query == {"id": "R-SOON", "shop": SHOP}
    at = open_app("app_pages/detail.py", **query)
    assert "R-SOON" in texts(at) + " ".join(str(t.value) for t in at.title)
