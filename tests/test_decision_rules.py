"""Decision rules: kept as data with their history, matched in SQL, and replayed on history (the backtest).

The backtest's counts are checked by hand on a small world written through the sync's own write path
(sample_data: upsert_page): thirteen returns whose fate is chosen so that each count has its reason.
Acting (after a sync, against the sandbox over HTTP) is in tests/test_decision_rules_acting.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from returns_core import rules
from returns_core.config import DEFAULT_API_BASE
from returns_core.filters import ReturnFilters, filters_from_query, filters_to_query
from returns_core.reason_groups import CHANGED_MIND
from returns_core.sample_data import add_account, line_item, refund, tiktok_return, write_returns
from returns_core.sample_data import unix as sample_unix
from returns_core.store import rules as rule_rows
from returns_core.store.db import utcnow
from returns_core.store.return_writes import store_records
from returns_core.store.returns import count_returns, grid_page

S1, S2 = "7100000001", "7100000002"


def _world(db, now: datetime) -> None:
    """Thirteen returns, A..M (their ids are "R-A" ...), created in the days before `now`.

    Rule "small changed-mind refunds" = reason group Changed mind, Type Refund or Return & Refund, refund up to
    50 USD, at most 2 a day. By hand:
      A  Refund, Changed my mind, 10.00 USD, yesterday 09:00, refunded          -> decided
      B  Refund, No longer needed, 20.00 USD, yesterday 10:00, ended Rejected     -> decided, at risk (rejected)
      C  Return & Refund, Changed my mind, 30.00 USD, yesterday 11:00            -> matched, third that day: over cap
      D  Return & Refund, Changed my mind, 40.00 USD, 5 days ago, in arbitration  -> decided, at risk (arbitration)
      E  Refund, Changed my mind, 60.00 USD                                      -> over the amount cap
      F  Refund, Changed my mind, 15.00 GBP                                      -> another currency
      G  Refund, Damaged item, 5.00 USD                                          -> another reason group
      H  Replacement, Changed my mind, 5.00 USD (buyer keeps the item)           -> another type
      I  Refund, Changed my mind, 5.00 USD, 100 days ago                         -> outside the 90 days
      J  Refund, Changed my mind, 25.00 USD, 2 days ago, still waiting, overdue   -> decided, missed deadline
      K  Refund, Changed my mind, 12.50 USD, shop 2, 3 days ago, TikTok auto-approved it (its records)
                                                                                 -> decided, missed deadline
      L  Refund, Changed my mind, 8.00 USD, 4 days ago, synced waiting (deadline 24 h later), then synced
         again approved 5 minutes after that deadline                            -> decided, missed deadline
      M  Refund, Changed my mind, 9.00 USD, 6 days ago, synced waiting, then approved 2 h after the request,
         well before its deadline                                                -> decided
    Decided: A B D J K L M = 7 of 8 matched; 124.50 USD; at risk 2 (B rejected, D arbitration);
    missed 3 (J, K, L). A, B and D were first synced past the seller's turn, with no records: whether their
    deadline was missed is unknown (3); M was seen waiting, then answered in time (known: not missed).
    """
    add_account(db, S1, "Shop One", api_base=DEFAULT_API_BASE)  # live shops: TikTok's own address
    add_account(db, S2, "Shop Two", api_base=DEFAULT_API_BASE)
    yesterday = datetime.combine((now - timedelta(days=1)).date(), datetime.min.time())

    def ret(key, *, created, total, currency="USD", return_type="REFUND", reason="Changed my mind",
            status="RETURN_OR_REFUND_REQUEST_COMPLETE", **fields):
        return tiktok_return(f"R-{key}", order_id=f"O-{key}", return_type=return_type, return_status=status,
                             reason=f"code_{key}", reason_text=reason, created=created, updated=created,
                             refund_amount=refund(currency, total), **fields)

    shop_one = [
        ret("A", created=yesterday + timedelta(hours=9), total="10.00",
            line_items=[line_item("LA", seller_sku="MUG-1", product_name="Mug", currency="USD", refund_total="10")]),
        ret("B", created=yesterday + timedelta(hours=10), total="20.00", reason="No longer needed",
            status="REFUND_OR_RETURN_REQUEST_REJECT",
            line_items=[line_item("LB", seller_sku="TEE-1", product_name="Tee", currency="USD", refund_total="20")]),
        ret("C", created=yesterday + timedelta(hours=11), total="30.00", return_type="RETURN_AND_REFUND"),
        ret("D", created=now - timedelta(days=5), total="40.00", return_type="RETURN_AND_REFUND",
            status="AWAITING_BUYER_SHIP", arbitration_status="IN_PROGRESS"),
        ret("E", created=now - timedelta(days=2, hours=3), total="60.00"),
        ret("F", created=now - timedelta(days=2, hours=4), total="15.00", currency="GBP"),
        ret("G", created=now - timedelta(days=2, hours=5), total="5.00", reason="Damaged item"),
        ret("H", created=now - timedelta(days=2, hours=6), total="5.00", return_type="REPLACEMENT",
            status="REPLACEMENT_REQUEST_COMPLETE", can_buyer_keep_item=True),
        ret("I", created=now - timedelta(days=100), total="5.00"),
        ret("J", created=now - timedelta(days=2), total="25.00", status="RETURN_OR_REFUND_REQUEST_PENDING",
            next_actions=[("SELLER_RESPOND_REFUND", now - timedelta(hours=1))]),
    ]
    write_returns(db, S1, shop_one)
    write_returns(db, S2, [ret("K", created=now - timedelta(days=3), total="12.50")])
    for key, total, created, decided_after in (("L", "8.00", now - timedelta(days=4), timedelta(hours=24, minutes=5)),
                                               ("M", "9.00", now - timedelta(days=6), timedelta(hours=2))):
        deadline = created + timedelta(hours=24)
        write_returns(db, S1, [ret(key, created=created, total=total, status="RETURN_OR_REFUND_REQUEST_PENDING",
                                   next_actions=[("SELLER_RESPOND_REFUND", deadline)])])
        moved = ret(key, created=created, total=total, status="RETURN_OR_REFUND_REQUEST_SUCCESS")
        write_returns(db, S1, [moved | {"update_time": sample_unix(created + decided_after)}])
    store_records(db, S2, "R-K", [
        {"event": "BUYER_REQUESTED_REFUND", "role": "BUYER", "create_time": 1},
        {"event": "SYSTEM_AUTO_APPROVED", "role": "SYSTEM", "create_time": 2},
    ], now)


@pytest.fixture
def world(db):
    now = utcnow().replace(microsecond=0)
    _world(db, now)
    return now


SMALL_CHANGED_MIND = dict(name="Small changed-mind refunds", action=rules.APPROVE, daily_cap=2,
                          types=("Refund", "Return & Refund"), groups=(CHANGED_MIND,), max_refund="50", currency="usd")


def ids(db, filters: ReturnFilters) -> set[str]:
    return set(grid_page(db, filters, limit=500)["Marketplace Return ID"])


def test_backtest_counts_match_the_hand_count_on_a_small_synced_world(db, world):
    rule = rules.make_rule(**SMALL_CHANGED_MIND)
    result = rules.backtest(db, rule, actor="Mia", now=world)
    assert (result.matched, result.decided, result.over_cap) == (8, 7, 1)
    money = result.figures.money
    assert list(money["Currency"]) == ["USD"]
    assert (money["Returns"][0], money["Refund"][0]) == (7, Decimal("124.50"))
    assert isinstance(money["Refund"][0], Decimal)
    f = result.figures
    assert (f.ended_rejected, f.in_arbitration, f.at_risk, f.missed_deadlines) == (1, 1, 2, 3)
    assert f.deadline_unseen == 3
    assert result.pays_refunds


def test_the_backtest_link_opens_the_grid_on_exactly_the_decided_returns(db, world):
    result = rules.backtest(db, rules.make_rule(**SMALL_CHANGED_MIND), now=world)
    query = filters_to_query(ReturnFilters(backtest=result.id))
    assert query == {"backtest": str(result.id)}
    filters = filters_from_query(query)
    assert count_returns(db, filters) == 7
    assert ids(db, filters) == {"R-A", "R-B", "R-D", "R-J", "R-K", "R-L", "R-M"}
    # other filters narrow it further, as anywhere in the grid
    assert ids(db, filters.with_(shop_ids=(S2,))) == {"R-K"}
    label = f"Backtest #{result.id} of “Small changed-mind refunds” (last 90 days)"
    assert rules.backtest_label(db, result.id) == label


def test_a_backtest_keeps_its_rows_while_the_world_moves_on(db, world):
    result = rules.backtest(db, rules.make_rule(**SMALL_CHANGED_MIND), now=world)
    # made today at midnight, the only match of its day, whatever the hour: yesterday has hit the daily cap
    today = datetime.combine(world.date(), datetime.min.time())
    write_returns(db, S1, [tiktok_return("R-NEW", return_type="REFUND", reason_text="Changed my mind",
                                         created=today, refund_amount=refund("USD", "1.00"))])
    assert count_returns(db, ReturnFilters(backtest=result.id)) == 7
    again = rules.backtest(db, rules.make_rule(**SMALL_CHANGED_MIND), now=world)
    assert (again.matched, again.decided) == (9, 8)


def test_money_is_shown_per_currency_and_the_window_counts_days_back(db, world):
    rule = rules.make_rule(name="Changed mind", action=rules.APPROVE, daily_cap=100, groups=(CHANGED_MIND,))
    result = rules.backtest(db, rule, now=world)
    # A B C D E F H J K L M (I is 100 days old)
    assert (result.matched, result.decided) == (11, 11)
    money = {c: (n, total) for c, n, total in result.figures.money.itertuples(index=False)}
    assert money == {"USD": (10, Decimal("219.50")), "GBP": (1, Decimal("15.00"))}
    year = rules.backtest(db, rule, days=365, now=world)
    assert year.decided == 12


@pytest.mark.parametrize("conditions, expected", [
    (dict(products=("Mug",)), {"R-A"}),
    (dict(skus=("TEE-1",)), {"R-B"}),
    (dict(buyer_keeps_item=False), {"R-C", "R-D"}),
    (dict(buyer_keeps_item=True), {"R-A", "R-B", "R-E", "R-F", "R-H", "R-J", "R-K", "R-L", "R-M"}),
    (dict(shop_ids=(S2,)), {"R-K"}),
    (dict(reasons=("No longer needed",)), {"R-B"}),
    (dict(types=("Return",)), {"R-H"}),
])
def test_each_condition_selects_what_it_says(db, world, conditions, expected):
    rule = rules.make_rule(name="Probe", action=rules.FLAG, daily_cap=1000, groups=(CHANGED_MIND,), **conditions)
    result = rules.backtest(db, rule, now=world)
    assert ids(db, ReturnFilters(backtest=result.id)) == expected


def test_approve_with_the_buyer_keeping_the_item_replays_only_on_refund_requests(db, world):
    rule = rules.make_rule(name="Keep it", action=rules.APPROVE_KEEP_ITEM, daily_cap=1000, groups=(CHANGED_MIND,))
    result = rules.backtest(db, rule, now=world)
    assert "R-H" not in ids(db, ReturnFilters(backtest=result.id))  # a replacement has no refund to approve
    assert result.decided == 10


def test_a_value_that_looks_like_sql_is_only_a_value(db, world):
    rule = rules.make_rule(name="x", action=rules.FLAG, daily_cap=5, reasons=("x' OR '1'='1",))
    assert rules.backtest(db, rule, now=world).matched == 0


@pytest.mark.parametrize("typed, why", [
    (dict(name=" "), "Give the rule a name"),
    (dict(action="delete"), "Unknown action"),
    (dict(daily_cap="lots"), "whole number"),
    (dict(daily_cap=0), "between 1 and"),
    (dict(action=rules.REJECT), "reject reason"),
    (dict(max_refund="12,345.00", currency="USD"), "thousands separator"),
    (dict(max_refund="10"), "needs its currency"),
    (dict(types=("Refunds",)), "unknown 'Refunds'"),
    (dict(groups=("Bad vibes",)), "unknown 'Bad vibes'"),
])
def test_a_rule_that_cannot_be_used_is_refused_in_one_line_and_nothing_is_kept(db, typed, why):
    fields = dict(name="Rule", action=rules.APPROVE, daily_cap=10) | typed
    with pytest.raises(rules.RuleError, match=why) as refused:
        rules.save_rule(db, rules.make_rule(**fields), "Mia")
    assert "\n" not in str(refused.value)
    assert rules.list_rules(db) == []
    assert rule_rows.history_frame(db).empty


def test_every_change_to_a_rule_and_the_kill_switch_is_in_the_history(db, world):
    rule = rules.save_rule(db, rules.make_rule(**SMALL_CHANGED_MIND), "Mia")
    assert rule.id is not None and not rule.enabled
    rules.set_enabled(db, rule.id, True, "Mia")
    changed = rules.save_rule(db, rules.make_rule(**(SMALL_CHANGED_MIND | dict(daily_cap=3)), rule_id=rule.id), "Ben")
    assert changed.daily_cap == 3 and not changed.enabled  # a change must be tried on history again
    assert rules.save_rule(db, changed, "Ben") == changed  # nothing changed: nothing recorded
    rules.set_kill_switch(db, True, "Ana")
    rules.retire_rule(db, rule.id, "Ana")
    assert rules.list_rules(db) == []
    history = rule_rows.history_frame(db)
    assert list(history["Change"])[::-1] == ["created", "enabled", "edited", "kill_switch", "retired"]
    assert list(history["Who"])[::-1] == ["Mia", "Mia", "Ben", "Ana", "Ana"]
    edited = history[history["Change"] == "edited"].iloc[0]
    assert '"daily_cap": 2' in edited["Before"] and '"daily_cap": 3' in edited["After"]
    assert "switched off by the change" in edited["Note"]
    enabled = history[history["Change"] == "enabled"].iloc[0]
    assert f"{S1} (live)" in enabled["Note"] and f"{S2} (live)" in enabled["Note"]
    assert rules.kill_switch(db)


def test_switching_a_rule_on_records_each_accounts_mode(db, world):
    add_account(db, "7100000003", "Demo", is_sandbox=True)
    rule = rules.save_rule(db, rules.make_rule(name="All", action=rules.FLAG, daily_cap=1), "Mia")
    on = rules.set_enabled(db, rule.id, True, "Mia")
    assert on.enabled_modes == {S1: "live", S2: "live", "7100000003": "sandbox"}
    assert on.enabled_at is not None and on.enabled_by == "Mia"
