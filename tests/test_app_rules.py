"""AppTest: the Decision rules page through the real app.py, and its link into the grid."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from returns_core import rules
from returns_core.reason_groups import CHANGED_MIND
from returns_core.store import rules as rule_rows
from returns_core.store.db import utcnow
from tests.apptest import button, metric, open_app, return_ids, texts
from tests.test_app_pages import filter_summary, follow
from tests.test_decision_rules import _world

PAGE = "app_pages/rules.py"


@pytest.fixture
def world(app_db):
    now = utcnow().replace(microsecond=0)
    _world(app_db, now)
    return app_db


def table(at, column: str):
    """The first table on the page with this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def fill_small_changed_mind(at) -> None:
    """The form as a manager would fill it for the hand-counted rule of test_decision_rules."""
    k = "rules_form_new_"
    at.text_input(key=f"{k}name").input("Small changed-mind refunds")
    at.multiselect(key=f"{k}types").set_value(["Refund", "Return & Refund"])
    at.multiselect(key=f"{k}groups").set_value([CHANGED_MIND])
    at.text_input(key=f"{k}max").input("50")
    at.text_input(key=f"{k}currency").input("usd")
    at.number_input(key=f"{k}cap").set_value(2)


def test_the_page_renders_on_an_empty_store(app_db):
    at = open_app(PAGE)
    assert at.title[0].value == "Decision rules"
    assert "No rule yet" in texts(at)


def test_a_draft_rule_is_backtested_and_its_link_opens_the_grid_on_exactly_those_returns(world):
    at = open_app(PAGE, actor="Mia")
    fill_small_changed_mind(at)
    button(at, "Backtest on synced returns").click().run()
    assert not at.exception, at.exception
    assert metric(at, "Would have decided") == "7"
    assert metric(at, "Refund it would have paid") == "124.50 USD"
    assert metric(at, "At risk") == "2"
    assert metric(at, "Missed deadlines avoided") == "3"
    # A, B and D were first synced past the seller's turn: their deadlines are said to be unknown, not kept
    assert "Missed deadlines: 3 of these returns were first synced after the seller's turn had passed" in texts(at)
    assert "8 returns matched; the daily cap left 1 of them to people." in texts(at)
    assert rules.list_rules(world) == []  # a backtest keeps no rule
    rows = table(at, "Return ID")
    decided = ["R-A", "R-B", "R-D", "R-J", "R-K", "R-L", "R-M"]
    assert sorted(rows["Return ID"]) == decided
    link = next(p for p in at.get("page_link") if p.proto.label == "Show these 7 returns in the grid")
    query = parse_qs(link.proto.query_string)
    follow(at, query)
    assert sorted(return_ids(at)) == decided
    backtest_id = query["backtest"][0]
    assert f"Backtest #{backtest_id} of “Small changed-mind refunds” (last 90 days)" in filter_summary(at)
    at.button(key="returns_clear").click().run()
    assert len(return_ids(at)) == 13 and "backtest" not in at.query_params


def test_a_saved_rule_is_switched_on_and_the_kill_switch_stops_all_with_every_change_in_the_history(world):
    at = open_app(PAGE, actor="Mia")
    fill_small_changed_mind(at)
    button(at, "Save rule (switched off)").click().run()
    [rule] = rules.list_rules(world)
    assert not rule.enabled and f"Saved **Small changed-mind refunds** (#{rule.id})" in texts(at)
    at.button(key=f"rules_switch_{rule.id}").click().run()
    assert rules.get_rule(world, rule.id).enabled
    button(at, "Stop all rules now").click().run()
    assert rules.kill_switch(world)
    assert "All rules are stopped" in texts(at)
    button(at, "Let the rules act again").click().run()
    assert not rules.kill_switch(world)
    history = rule_rows.history_frame(world)
    assert list(history["Change"])[::-1] == ["created", "enabled", "kill_switch", "kill_switch"]
    assert set(history["Who"]) == {"Mia"}
    shown = table(at, "Change")
    assert len(shown) == 4


def test_a_rule_that_cannot_be_used_says_why_and_keeps_nothing(world):
    at = open_app(PAGE, actor="Mia")
    fill_small_changed_mind(at)
    at.text_input(key="rules_form_new_max").input("12,345.00")
    button(at, "Save rule (switched off)").click().run()
    assert any("thousands separator" in e.value for e in at.error)
    assert rules.list_rules(world) == []


def test_without_a_name_nothing_can_be_changed_and_the_name_is_asked_right_there(world):
    at = open_app(PAGE)
    assert button(at, "Stop all rules now").disabled
    at.text_input(key="rules_name").input("Mia")
    at.button(key="rules_use_name").click().run()
    assert not button(at, "Stop all rules now").disabled


def test_what_the_rules_did_lists_each_decision_in_words(world):
    rule = rules.set_enabled(world, rules.save_rule(world, rules.make_rule(
        name="Small changed-mind refunds", action=rules.APPROVE, daily_cap=5), "Mia").id, True, "Mia")
    now = utcnow()
    assert rule_rows.claim(world, rule_id=rule.id, shop_id="7100000001", return_id="R-J", action=rules.APPROVE,
                           idempotency_key="k", daily_cap=5, day_start=now.replace(hour=0), day_end=now.replace(
                               hour=23, minute=59), claimed_by="test", at=now) is None
    with world.writer() as con:
        rule_rows.finish_decision(con, "7100000001", "R-J", state="ok", decision="APPROVE_REFUND",
                                  result="Approve the refund: sent.", at=now)
    at = open_app(PAGE, actor="Mia")
    done = table(at, "What happened")
    assert done[["Rule", "Return ID", "Account", "Decision", "Outcome"]].values.tolist() == [
        [f"#{rule.id} Small changed-mind refunds", "R-J", "Shop One", "Approve the refund", "ok"]]
    assert "Today: 1 of 5." in texts(at)
