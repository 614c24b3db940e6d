"""Decision rules acting after a sync, against the sandbox over real HTTP.

A rule that is on decides the returns first synced after it was switched on that wait for the seller,
the manager's way (eligibility, idempotency key, history naming the rule); once per return, also when
two syncs finish at the same moment; never under the kill switch, on a return a person touched, on an
account whose mode changed, or beyond its daily cap.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC

import pytest

from returns_core import accounts as accounts_core
from returns_core import domain, rules, workflow
from returns_core.config import DEFAULT_API_BASE
from returns_core.connect import add_accounts_with_tokens
from returns_core.sample_data import add_account
from returns_core.store.db import utcnow
from returns_core.sync import sync_accounts
from returns_core.tiktok.client import TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from tests.conftest import decisions_sent

pytestmark = pytest.mark.sandbox(shops=1, returns=200)


def waiting_in_sandbox(sandbox, shop_id: str) -> set[str]:
    """Ground truth: the returns of the sandbox now that wait for the seller (domain.can_decide: TikTok's next
    action for the seller, or the one its state implies, such as a parcel the buyer shipped)."""
    def next_action(obj: dict) -> str | None:
        return next((a.get("action") for a in obj.get("seller_next_action_response") or ()), None)

    return {o["return_id"] for o in sandbox.returns_for(shop_id)
            if domain.can_decide(o["return_type"], o["return_status"], next_action(o))}


def rule_on(db, *, action=rules.APPROVE, daily_cap=100, **conditions) -> rules.Rule:
    rule = rules.save_rule(db, rules.make_rule(name="Approve what waits", action=action, daily_cap=daily_cap,
                                               **conditions), "Mia")
    return rules.set_enabled(db, rule.id, True, "Mia")


def decided(db) -> list[tuple]:
    return db.rows("SELECT return_id, rule_id, state, decision FROM rule_decisions ORDER BY return_id")


def actions_per_return(db) -> Counter:
    return Counter(r for (r,) in db.rows("SELECT return_id FROM actions"))


def test_a_rule_acts_on_the_next_sync_once_per_return_the_managers_way(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule = rule_on(db)
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    assert len(waiting) >= 4, "the sandbox has too few waiting returns for this test"
    sent = decisions_sent(sandbox)
    [result] = sync_accounts(db, [account], trigger="test")
    assert result.ok, result.error
    rows = decided(db)
    assert {r[0] for r in rows} == waiting
    assert {(rule_id, state) for _, rule_id, state, _ in rows} == {(rule.id, "ok")}
    assert sent == Counter({rid: 1 for rid in waiting})  # one request per return reached TikTok
    assert actions_per_return(db) == Counter({rid: 1 for rid in waiting})
    # TikTok no longer waits on any of them, and each return's history names the rule
    assert waiting_in_sandbox(sandbox, account.shop_id).isdisjoint(waiting)
    entries = db.rows("SELECT return_id, actor, new_value FROM history WHERE kind = 'action'")
    assert {(rid, actor) for rid, actor, _ in entries} == {(rid, rule.actor) for rid in waiting}
    assert all(value.endswith(": ok") for _, _, value in entries)
    keys = dict(db.rows("SELECT return_id, idempotency_key FROM actions"))
    assert keys == {rid: rules.idempotency_key(rule.id, account.shop_id, rid) for rid in waiting}
    # the next sync has nothing new for the rule
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert decided(db) == rows and sum(sent.values()) == len(waiting)


def test_two_syncs_finishing_at_once_decide_each_return_once(db, sandbox, sandbox_accounts, monkeypatch):
    """Two syncs of the shop, in two threads, reach the rules together and race for the same returns."""
    account = sandbox_accounts[0]
    rule_on(db)
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    sent = decisions_sent(sandbox)
    together = threading.Barrier(2, timeout=120)
    first_synced = threading.Event()
    outcomes: dict[str, list] = {}
    real_act = rules.act

    def act_together(*args, **kwargs):
        first_synced.set()  # the first sync let go of the shop's lock: the second may sync now
        together.wait()  # both syncs are done: both act from here at the same moment
        found = real_act(*args, **kwargs)
        outcomes[threading.current_thread().name] = found
        return found

    monkeypatch.setattr(rules, "act", act_together)
    results: dict[str, object] = {}

    def sync(name: str) -> None:
        results[name] = sync_accounts(db, [account], trigger="test")[0]

    one = threading.Thread(target=sync, args=("one",), name="one")
    one.start()
    assert first_synced.wait(120), "the first sync never reached the rules"
    two = threading.Thread(target=sync, args=("two",), name="two")
    two.start()
    one.join(120)
    two.join(120)
    assert results["one"].ok and results["two"].ok, (results["one"].error, results["two"].error)
    assert set(outcomes) == {"one", "two"}
    acted = Counter(o.return_id for found in outcomes.values() for o in found if o.acted)
    assert acted == Counter({rid: 1 for rid in waiting})
    assert sent == Counter({rid: 1 for rid in waiting})
    assert actions_per_return(db) == Counter({rid: 1 for rid in waiting})
    left_alone = [o for found in outcomes.values() for o in found if not o.acted]
    assert all("decided it already" in o.message or o.message.startswith("Not decided now") for o in left_alone)


def test_the_kill_switch_stops_every_rule_until_it_is_off(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule_on(db)
    rule_on(db, action=rules.FLAG)
    sent = decisions_sent(sandbox)
    rules.set_kill_switch(db, True, "Ana")
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert decided(db) == [] and not sent
    assert rules.act(db, [account]) == []
    rules.set_kill_switch(db, False, "Ana")
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert {r[0] for r in decided(db)} == set(sent) == waiting_in_sandbox_before(db)


def waiting_in_sandbox_before(db) -> set[str]:
    """The returns the rules decided: all were waiting when they were synced."""
    return {r for (r,) in db.rows("SELECT return_id FROM actions")}


def test_a_return_a_person_touched_is_left_to_people(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule_on(db)
    rules.set_kill_switch(db, True, "Ana")  # the returns arrive, and people get to them first
    assert sync_accounts(db, [account], trigger="test")[0].ok
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    requested = sorted(rid for (rid,) in db.rows("SELECT return_id FROM returns WHERE status = 'Requested'")
                       if rid in waiting)
    moved, noted = requested[0], sorted(waiting - {requested[0]})[0]
    others = waiting - {moved, noted}
    workflow.add_note(db, account.shop_id, noted, "Ana", "Calling the buyer first")
    workflow.change_status(db, account.shop_id, moved, "Pending", "Ana")
    sent = decisions_sent(sandbox)
    rules.set_kill_switch(db, False, "Ana")
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert {r[0] for r in decided(db)} == others
    assert noted not in sent and moved not in sent


def test_a_rule_never_acts_beyond_its_daily_cap(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule_on(db, daily_cap=2)
    sent = decisions_sent(sandbox)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert len(decided(db)) == 2 and sum(sent.values()) == 2
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert len(decided(db)) == 2 and sum(sent.values()) == 2


def test_a_rule_switched_on_for_a_live_shop_never_acts_when_it_points_at_the_sandbox(db, sandbox, sandbox_server):
    shop = sandbox.shops[0]
    add_account(db, shop["id"], "Sandbox", shop_cipher=shop["cipher"], api_base=DEFAULT_API_BASE)
    rule = rule_on(db)
    assert rule.enabled_modes == {shop["id"]: accounts_core.LIVE_MODE}
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    [account] = add_accounts_with_tokens(db, "Sandbox", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                         tokens.refresh_token, api_base=sandbox_server.url,
                                         auth_base=sandbox_server.url, is_sandbox=True, tokens=tokens)
    assert account.mode == accounts_core.SANDBOX_MODE
    sent = decisions_sent(sandbox)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert decided(db) == [] and not sent
    outcomes = rules.act(db, [account])
    assert outcomes and not any(o.acted for o in outcomes)
    assert all("in sandbox mode, but the rule was switched on while it was live" in o.message for o in outcomes)
    # switched off and on again on purpose: now it is a sandbox rule
    rules.set_enabled(db, rule.id, False, "Mia")
    assert rules.set_enabled(db, rule.id, True, "Mia").enabled_modes == {shop["id"]: accounts_core.SANDBOX_MODE}


def test_the_mode_a_rule_was_switched_on_for_must_be_the_accounts_mode_now(db):
    add_account(db, "7100000009", "Live shop", api_base=DEFAULT_API_BASE)
    live = accounts_core.get_account(db, "Live shop")
    rule = rules.Rule("r", rules.Conditions(), rules.APPROVE, 1, id=1, enabled=True,
                      enabled_modes={"7100000009": accounts_core.SANDBOX_MODE})
    assert "in live mode, but the rule was switched on while it was sandbox" in rules.mode_problem(rule, live)
    assert rules.mode_problem(rules.Rule("r", rules.Conditions(), rules.APPROVE, 1, id=1, enabled=True), live) \
        .startswith("Live shop was not among the rule's accounts")
    same = rules.Rule("r", rules.Conditions(), rules.APPROVE, 1, id=1, enabled=True,
                      enabled_modes={"7100000009": accounts_core.LIVE_MODE})
    assert rules.mode_problem(same, live) is None


def test_a_flag_rule_sends_nothing_and_writes_the_returns_history(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule = rule_on(db, action=rules.FLAG)
    sent = decisions_sent(sandbox)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    assert {(r[0], r[2]) for r in decided(db)} == {(rid, "flagged") for rid in waiting}
    assert not sent
    flagged = db.rows("SELECT return_id, actor FROM history WHERE kind = 'rule' AND new_value = 'flagged'")
    assert set(flagged) == {(rid, rule.actor) for rid in waiting}


def test_a_reject_rule_gives_tiktoks_reason_where_tiktok_offers_it_and_leaves_the_rest_to_people(
        db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    reason = "seller_reject_apply_insufficient_evidence"  # offered for refund, return and replacement requests
    rule = rule_on(db, action=rules.REJECT, reject_reason=reason)
    steps = {o["return_id"]: domain.seller_next_action(o["return_type"], o["return_status"], next(
        (a.get("action") for a in o.get("seller_next_action_response") or ()), None))
        for o in sandbox.returns_for(account.shop_id)}
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    sent = decisions_sent(sandbox)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    outcome = {rid: (state, decision) for rid, _, state, decision in decided(db)}
    offered = {rid for rid in waiting if steps[rid] != "SELLER_RESPOND_RECEIVE_PACKAGE"}
    assert offered and offered != waiting, "the sandbox has too few returns of each kind for this test"
    assert {rid for rid, (state, _) in outcome.items() if state == "ok"} == offered
    assert all(decision.startswith("REJECT_") for rid, (_, decision) in outcome.items() if rid in offered)
    assert sent == Counter({rid: 1 for rid in offered})
    refused = db.rows("SELECT return_id, result FROM rule_decisions WHERE state = 'failed'")
    assert {rid for rid, _ in refused} == waiting - offered
    assert all("TikTok does not offer that reject reason" in why for _, why in refused)
    assert rule.describe().endswith(f"Reject, giving the reason “{reason}”; at most 100 a day")


def test_each_rule_decision_raises_one_alert_linking_to_the_return(db, sandbox, sandbox_accounts):
    from returns_core import alerts

    account = sandbox_accounts[0]
    alerts.add_channel(db, "json://127.0.0.1:9/hook", "Ops")
    rule = rule_on(db)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    decided_ids = {r[0] for r in decided(db)}
    raised = db.rows("SELECT subject, title, link FROM alerts WHERE rule = ?", [rules.RULE_ALERT])
    assert {subject for subject, _, _ in raised} == decided_ids
    assert all(title == f"[Sandbox] Rule “{rule.name}” decided return {subject}" for subject, title, _ in raised)
    assert all(link.endswith(f"/detail?id={subject}&shop={account.shop_id}") for subject, _, link in raised)
    assert db.value("SELECT count(*) FROM alert_deliveries") == len(decided_ids)  # one per channel, sent by the
    # next evaluation of the alerts (the app's minute, or cron)


def test_approve_with_the_buyer_keeping_the_item_refunds_without_a_return_and_leaves_other_steps(
        db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule_on(db, action=rules.APPROVE_KEEP_ITEM)
    steps = {o["return_id"]: domain.seller_next_action(o["return_type"], o["return_status"], next(
        (a.get("action") for a in o.get("seller_next_action_response") or ()), None))
        for o in sandbox.returns_for(account.shop_id)}
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    requests = {rid for rid in waiting if steps[rid] in ("SELLER_RESPOND_RETURN", "SELLER_RESPOND_REFUND")}
    assert requests and requests != waiting, "the sandbox has too few returns of each kind for this test"
    sent = decisions_sent(sandbox)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert {(rid, state) for rid, _, state, _ in decided(db)} == {(rid, "ok") for rid in requests}
    assert set(sent) == requests  # a parcel on its way back, or a replacement, is left to people
    bodies = dict(db.rows("SELECT return_id, request FROM actions"))
    for rid in requests:
        keep = steps[rid] == "SELLER_RESPOND_RETURN"
        assert ('"buyer_keep_item": true' in bodies[rid]) is keep
    after = {o["return_id"]: o for o in sandbox.returns_for(account.shop_id)}
    assert all(after[rid]["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS" for rid in requests)


def _claimed_by_a_run_that_died(db, rule, account, return_id) -> None:
    """What a run leaves when it dies after claiming a return (an hour ago)."""
    from datetime import timedelta

    from returns_core.store import rules as rule_rows
    from returns_core.store.db import utcnow

    then = utcnow() - timedelta(hours=1)
    assert rule_rows.claim(db, rule_id=rule.id, shop_id=account.shop_id, return_id=return_id, action=rule.action,
                           idempotency_key=rules.idempotency_key(rule.id, account.shop_id, return_id),
                           daily_cap=rule.daily_cap, day_start=then - timedelta(days=1),
                           day_end=then + timedelta(days=1), claimed_by="a run that died", at=then) is None


@pytest.mark.parametrize("died", ["before sending", "after TikTok applied it"])
def test_a_decision_a_dead_run_left_unfinished_is_finished_once_by_the_next(db, sandbox, sandbox_accounts, died):
    account = sandbox_accounts[0]
    rules.set_kill_switch(db, True, "Ana")
    rule = rule_on(db)
    assert sync_accounts(db, [account], trigger="test")[0].ok  # stored, not decided
    rules.set_kill_switch(db, False, "Ana")
    waiting = waiting_in_sandbox(sandbox, account.shop_id)
    left = sorted(waiting)[0]
    _claimed_by_a_run_that_died(db, rule, account, left)
    sent = decisions_sent(sandbox)
    if died == "after TikTok applied it":
        options = workflow.decision_options(db, account, left)
        plan = workflow.plan_action(db, account.shop_id, left, options.approve[0], options=options)
        from dataclasses import replace
        workflow.send_action(db, account, replace(plan, idempotency_key=rules.idempotency_key(
            rule.id, account.shop_id, left)), rule.actor)
    assert sync_accounts(db, [account], trigger="test")[0].ok
    states = {rid: state for rid, _, state, _ in decided(db)}
    assert states[left] == "ok"
    assert sent[left] == 1  # TikTok heard of it once, by the dead run or by the next
    assert actions_per_return(db)[left] == 1
    assert db.value("SELECT count(*) FROM history WHERE kind = 'action' AND return_id = ?", [left]) == 1


def test_the_kill_switch_stops_a_run_already_under_way_before_its_next_decision(db, sandbox, sandbox_accounts):
    account = sandbox_accounts[0]
    rule_on(db)
    sent = decisions_sent(sandbox)
    counted = sandbox.answer

    def stop_after_the_first(method, path, query, headers, body):
        answer = counted(method, path, query, headers, body)
        if sum(sent.values()) == 1 and not rules.kill_switch(db):
            rules.set_kill_switch(db, True, "Ana")  # pressed while the first decision is being sent
        return answer

    sandbox.answer = stop_after_the_first
    assert sync_accounts(db, [account], trigger="test")[0].ok
    assert sum(sent.values()) == 1
    assert [state for _, _, state, _ in decided(db)] == ["ok"]


def auto_approved(sandbox, shop_id: str) -> dict[str, int]:
    """Ground truth: the returns TikTok decided by itself (the seller did not answer in time), and when."""
    return {case.return_id: min(r["create_time"] for r in case.records if r["event"] == "SYSTEM_AUTO_APPROVED")
            for case in sandbox._world.cases(shop_id)
            if any(r["event"] == "SYSTEM_AUTO_APPROVED" for r in case.records)}


@pytest.mark.sandbox(shops=1, returns=2000)
def test_the_backtest_counts_the_missed_deadlines_syncs_saw_and_says_how_many_it_cannot_know(
        db, sandbox, sandbox_accounts):
    """A first sync finds returns TikTok already decided by itself, and nothing in TikTok's search says so: the
    backtest counts them as unknown, not as deadlines kept. Once syncs saw returns wait, it counts each one
    TikTok then moved on at its deadline."""
    account = sandbox_accounts[0]
    assert sync_accounts(db, [account], trigger="test")[0].ok
    before_sync = auto_approved(sandbox, account.shop_id)
    waiting = dict(db.rows(f"SELECT return_id, due_by FROM returns r WHERE {domain.can_decide_sql('r')}"))
    everything = rules.make_rule(name="Everything", action=rules.FLAG, daily_cap=rules.MAX_DAILY_CAP)
    first = rules.backtest(db, everything, now=utcnow())
    decided = {r for (r,) in db.rows("SELECT return_id FROM backtest_returns WHERE backtest_id = ?", [first.id])}
    hidden = set(before_sync) - set(waiting)  # decided by TikTok, and not waiting again at a later step
    assert hidden and hidden <= decided - set(waiting)  # there, and invisible to the store
    assert (first.figures.missed_deadlines, first.figures.deadline_unseen) == (0, len(decided - set(waiting)))

    sandbox.advance(3 * 86_400)  # every return seen waiting gets its answer: TikTok's, at the deadline
    assert sync_accounts(db, [account], trigger="test")[0].ok
    after = auto_approved(sandbox, account.shop_id)
    missed = {rid for rid, due in waiting.items()
              if due and rid in after and after[rid] >= due.replace(tzinfo=UTC).timestamp()}
    assert missed, "some returns seen waiting were decided by TikTok at their deadline"
    second = rules.backtest(db, everything, now=utcnow())
    assert second.figures.missed_deadlines == len(missed)
    # the past stays unknown, but for returns that came to wait for the seller again at a later step
    assert 0 < second.figures.deadline_unseen <= first.figures.deadline_unseen
