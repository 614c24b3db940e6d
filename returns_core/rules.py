"""Decision rules: written as data, replayed on the returns already synced (a backtest), and only then
allowed to act, after each sync, on new returns that wait for the seller.

A rule is conditions (account, type, reason or reason group, refund up to a cap in one currency, SKU or
product, whether the buyer keeps the item), an action (approve, approve with the buyer keeping the item,
reject with a reason, or flag for a human), a daily cap and an on/off switch. Every change to a rule,
and the kill switch that stops them all, is kept in the rules' history with who and when.

Acting goes through the manager's own path (returns_core.workflow): TikTok's eligibility asked live,
the plan checked, one idempotency key per rule and return, the decision recorded in the return's
history under the rule's name, then an alert. Before any of it, the store's claim (store.rules.claim)
makes sure a return is decided once, even by two syncs finishing together, and that a rule never acts
while the kill switch is on, on a return a person touched, or beyond its daily cap. A rule also never
acts on an account whose mode (sandbox or live) is not the one it was switched on for: a rule meant
for the simulator must not meet real buyers, nor one meant for a live shop act on simulated returns
while its owner thinks it is live.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from returns_core import accounts as accounts_core
from returns_core import domain, reason_groups
from returns_core.accounts import Account
from returns_core.store import rules as store
from returns_core.store.db import Database, StoreError, utcnow
from returns_core.workflow import WorkflowError, parse_amount

logger = logging.getLogger(__name__)

APPROVE, APPROVE_KEEP_ITEM, REJECT, FLAG = "approve", "approve_keep_item", "reject", "flag"
ACTIONS: dict[str, str] = {
    APPROVE: "Approve (the step TikTok waits for)",
    APPROVE_KEEP_ITEM: "Approve, the buyer keeps the item (refund without a return)",
    REJECT: "Reject, with a reason",
    FLAG: "Flag for a human (nothing is sent to TikTok)",
}
DEFAULT_DAYS = 90
MAX_DAYS = 730
MAX_DAILY_CAP = 10_000
MAX_NAME_LENGTH = 80
MAX_VALUES = 50  # per condition (as the grid takes at most 50 SKUs): the page's lists stay readable
KEEP_BACKTESTS = 50  # backtests are snapshots behind a link; older ones are dropped
# a claim left unfinished this long belongs to a run that died: the next run finishes it (a decision takes
# a few TikTok calls, each with its own timeouts and retries, well within this)
STALE_CLAIM = timedelta(minutes=15)
RULE_ACTOR = "rule #{id} “{name}”"  # who a rule's entries in a return's history name
KILL_SWITCH_ACTOR_NOTE = "all rules stopped"
# The return's decision per action and TikTok's next action for the seller; a step missing here does
# not fit the action (e.g. "keeps the item" once the parcel is on its way back)
_APPROVE_KEEP_ITEM = {"SELLER_RESPOND_RETURN": "APPROVE_RETURN", "SELLER_RESPOND_REFUND": "APPROVE_REFUND"}
_KEY_SPACE = uuid.UUID("6f1d4c1e-3b0a-4a53-9a53-52c1f3a1e0d1")  # rule keys: uuid5 of rule and return


class RuleError(ValueError):
    """A rule refused as typed, with a one-line message for the user; nothing was changed."""


@dataclass(frozen=True)
class Conditions:
    """Which returns a rule is for. Empty means any; every condition given must hold."""

    shop_ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # the Type words (domain.TYPES)
    reasons: tuple[str, ...] = ()  # TikTok's reason text, as the grid shows it
    reason_groups: tuple[str, ...] = ()  # reason_groups.GROUPS
    max_refund: Decimal | None = None  # refund total up to this, in `currency`
    currency: str | None = None
    skus: tuple[str, ...] = ()  # seller SKU or SKU id of any line item
    products: tuple[str, ...] = ()  # product name of any line item
    buyer_keeps_item: bool | None = None  # None: either; True: no parcel comes back (store.buyer_keeps_item_sql)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["max_refund"] = None if self.max_refund is None else str(self.max_refund)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conditions:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in cls.__dataclass_fields__}
        if values.get("max_refund") is not None:
            values["max_refund"] = Decimal(values["max_refund"])
        return cls(**values)

    def describe(self) -> str:
        """The conditions in words, for the page and the history."""
        words = []
        for label, values in (("Account", self.shop_ids), ("Type", self.types), ("Reason", self.reasons),
                              ("Reason group", self.reason_groups), ("SKU", self.skus), ("Product", self.products)):
            if values:
                words.append(f"{label}: {', '.join(values)}")
        if self.max_refund is not None:
            words.append(f"Refund up to {self.max_refund:,.2f} {self.currency}")
        if self.buyer_keeps_item is not None:
            words.append("Buyer keeps the item" if self.buyer_keeps_item else "The item comes back")
        return " · ".join(words) or "Every return"


@dataclass(frozen=True)
class Rule:
    """A decision rule as kept (or a draft, id None)."""

    name: str
    conditions: Conditions
    action: str
    daily_cap: int
    reject_reason: str | None = None
    id: int | None = None
    enabled: bool = False
    enabled_modes: dict[str, str] = field(default_factory=dict)  # shop_id -> the account's mode when switched on
    enabled_at: datetime | None = None
    enabled_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def actor(self) -> str:
        """Who this rule's entries in a return's history name."""
        return RULE_ACTOR.format(id=self.id, name=self.name)

    def fields(self) -> dict[str, Any]:
        """What the store keeps of what a person edits."""
        return {"name": self.name, "conditions": self.conditions.to_json(), "action": self.action,
                "reject_reason": self.reject_reason, "daily_cap": self.daily_cap}

    def describe(self) -> str:
        """The rule in words: its conditions, its action and its cap."""
        action = ACTIONS.get(self.action, self.action)
        if self.action == REJECT:
            action = f"Reject, giving the reason “{self.reject_reason}”"
        return f"{self.conditions.describe()} → {action}; at most {self.daily_cap:,} a day"


def _rule(record: dict[str, Any]) -> Rule:
    return Rule(record["name"], Conditions.from_json(record["conditions"]), record["action"], record["daily_cap"],
                record["reject_reason"], record["id"], bool(record["enabled"]), record["enabled_modes"],
                record["enabled_at"], record["enabled_by"], record["updated_at"], record["updated_by"])


# --- checking what a person typed -----------------------------------------------------------------


def _values(label: str, values: Iterable[str], allowed: Sequence[str] | None = None) -> tuple[str, ...]:
    clean = tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    if len(clean) > MAX_VALUES:
        raise RuleError(f"{label}: at most {MAX_VALUES} values ({len(clean)} given).")
    if allowed is not None:
        unknown = [v for v in clean if v not in allowed]
        if unknown:
            raise RuleError(f"{label}: unknown {unknown[0]!r}; choose among {', '.join(allowed)}.")
    return clean


def make_rule(*, name: str, action: str, daily_cap: int | str, reject_reason: str | None = None,
              shop_ids: Iterable[str] = (), types: Iterable[str] = (), reasons: Iterable[str] = (),
              groups: Iterable[str] = (), max_refund: str | None = None, currency: str | None = None,
              skus: Iterable[str] = (), products: Iterable[str] = (), buyer_keeps_item: bool | None = None,
              rule_id: int | None = None) -> Rule:
    """A rule from what a person typed, checked; RuleError (one line) when something cannot be used."""
    title = " ".join((name or "").split())
    if not title:
        raise RuleError("Give the rule a name.")
    if len(title) > MAX_NAME_LENGTH:
        raise RuleError(f"The name is too long ({len(title)} characters; at most {MAX_NAME_LENGTH}).")
    if action not in ACTIONS:
        raise RuleError(f"Unknown action {action!r}; choose one of {', '.join(ACTIONS)}.")
    try:
        cap = int(str(daily_cap).strip())
    except ValueError:
        raise RuleError(f"The daily cap must be a whole number (got {daily_cap!r}).") from None
    if not 1 <= cap <= MAX_DAILY_CAP:
        raise RuleError(f"The daily cap must be between 1 and {MAX_DAILY_CAP:,}.")
    reason = (reject_reason or "").strip() or None
    if action == REJECT and not reason:
        raise RuleError("A reject rule needs TikTok's reject reason (its name, e.g. seller_reject_apply_..."
                        ").")
    amount = None
    money = (currency or "").strip().upper() or None
    if (max_refund or "").strip():
        try:
            amount = parse_amount(max_refund)
        except WorkflowError as exc:
            raise RuleError(f"Refund cap: {exc}") from None
        if not money or not money.isalpha() or len(money) != 3:
            raise RuleError("A refund cap needs its currency, as three letters (USD, GBP, ...).")
    conditions = Conditions(
        shop_ids=_values("Account", shop_ids), types=_values("Type", types, domain.TYPES),
        reasons=_values("Reason", reasons), reason_groups=_values("Reason group", groups, reason_groups.GROUPS),
        max_refund=amount, currency=money if amount is not None else None,
        skus=_values("SKU", skus), products=_values("Product", products), buyer_keeps_item=buyer_keeps_item)
    return Rule(title, conditions, action, cap, reason if action == REJECT else None, rule_id)


# --- the rules and their history ------------------------------------------------------------------


def list_rules(db: Database) -> list[Rule]:
    """Every rule on the page, oldest first (the order in which they are tried)."""
    return [_rule(r) for r in store.all_rules(db)]


def get_rule(db: Database, rule_id: int) -> Rule:
    with db.reader() as con:
        record = store.rule_by_id(con, rule_id)
    if record is None or record["retired_at"] is not None:
        raise RuleError(f"There is no rule #{rule_id}.")
    return _rule(record)


def _who(actor: str | None) -> str:
    name = (actor or "").strip()
    if not name:
        raise RuleError("Say who you are first (your name in the sidebar, or sign in).")
    return name[:200]


def save_rule(db: Database, rule: Rule, actor: str) -> Rule:
    """Keep a new rule (switched off) or the changes to one; each recorded in the rules' history.

    A rule that is on is switched off by a change: what it does must be tried on history again first.
    """
    who, now = _who(actor), utcnow()
    with db.writer() as con:
        if rule.id is None:
            rule_id = store.insert_rule(con, rule.fields(), who, now)
            store.add_history(con, rule_id, who, "created", new=rule.fields(), note=rule.describe(), at=now)
        else:
            before = store.rule_by_id(con, rule.id)
            if before is None or before["retired_at"] is not None:
                raise RuleError(f"There is no rule #{rule.id}.")
            old = _rule(before)
            if old.fields() == rule.fields():
                return old
            rule_id = rule.id
            store.update_rule(con, rule_id, rule.fields(), who, now)
            note = rule.describe()
            if old.enabled:
                store.set_enabled(con, rule_id, False, None, who, now)
                note += " (switched off by the change: backtest it, then switch it on again)"
            store.add_history(con, rule_id, who, "edited", old=old.fields(), new=rule.fields(), note=note, at=now)
    return get_rule(db, rule_id)


def accounts_modes(db: Database, rule: Rule) -> dict[str, str]:
    """shop_id -> mode of the accounts a rule covers now (its accounts, or every account)."""
    named = rule.conditions.shop_ids
    return {a.shop_id: a.mode for a in accounts_core.list_accounts(db) if not named or a.shop_id in named}


def set_enabled(db: Database, rule_id: int, enabled: bool, actor: str) -> Rule:
    """Switch a rule on (recording whether each of its accounts is sandbox or live at this moment) or off."""
    who, now = _who(actor), utcnow()
    rule = get_rule(db, rule_id)
    modes = accounts_modes(db, rule) if enabled else None
    if enabled and not modes:
        raise RuleError("None of this rule's accounts is connected: there is nothing it could act on.")
    with db.writer() as con:
        store.set_enabled(con, rule_id, enabled, modes, who, now)
        note = (f"on for {', '.join(f'{shop} ({mode})' for shop, mode in sorted(modes.items()))}" if enabled
                else "off")
        store.add_history(con, rule_id, who, "enabled" if enabled else "disabled",
                          old={"enabled": rule.enabled}, new={"enabled": enabled, "modes": modes}, note=note, at=now)
    return get_rule(db, rule_id)


def retire_rule(db: Database, rule_id: int, actor: str) -> None:
    """Remove a rule from the page (switched off); its history and decisions stay."""
    who, now = _who(actor), utcnow()
    rule = get_rule(db, rule_id)
    with db.writer() as con:
        store.retire_rule(con, rule_id, who, now)
        store.add_history(con, rule_id, who, "retired", old=rule.fields(), note=rule.describe(), at=now)


def kill_switch(db: Database) -> bool:
    """True while every rule is stopped."""
    with db.reader() as con:
        return store.kill_switch_on(con)


def set_kill_switch(db: Database, on: bool, actor: str) -> None:
    """Stop every rule at once (on), or let the rules that are on act again (off); recorded in the history."""
    who, now = _who(actor), utcnow()
    with db.writer() as con:
        before = store.kill_switch_on(con)
        store.set_kill_switch(con, on, now)
        store.add_history(con, None, who, "kill_switch", old={"on": before}, new={"on": on},
                          note=KILL_SWITCH_ACTOR_NOTE if on else "rules may act again", at=now)


# --- the backtest ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backtest:
    """A rule replayed on the returns created in the last `days` days."""

    id: int
    rule: Rule
    days: int
    since: datetime
    until: datetime
    matched: int  # returns the conditions select
    decided: int  # of those, what the daily cap lets through (a day's first, by creation)
    figures: store.BacktestFigures

    @property
    def over_cap(self) -> int:
        return self.matched - self.decided

    @property
    def pays_refunds(self) -> bool:
        """True when the action refunds the buyer (approve); a reject or a flag pays nothing itself."""
        return self.rule.action in (APPROVE, APPROVE_KEEP_ITEM)


def _backtest_where(db: Database, rule: Rule) -> tuple[str, list]:
    where, params = store.conditions_where(db, rule.conditions)
    if rule.action == APPROVE_KEEP_ITEM:
        # a replacement has no refund to approve, and keeping the item is a choice of refund requests only
        where += " AND r.return_type IN ('REFUND', 'RETURN_AND_REFUND')"
    return where, params


def backtest(db: Database, rule: Rule, *, days: int = DEFAULT_DAYS, actor: str = "", now: datetime | None = None
             ) -> Backtest:
    """Replay a rule (saved or a draft) on the returns created in the last `days` days, in the database."""
    if not 1 <= int(days) <= MAX_DAYS:
        raise RuleError(f"Replay between 1 and {MAX_DAYS} days.")
    now = now or utcnow()
    since = now - timedelta(days=int(days))
    where, params = _backtest_where(db, rule)
    snapshot = {**rule.fields(), "id": rule.id}
    backtest_id, counts = store.run_backtest(db, rule_id=rule.id, rule_json=snapshot, where=where, params=params,
                                             daily_cap=rule.daily_cap, days=int(days), since=since, until=now,
                                             ran_by=(actor or "").strip()[:200] or "someone", at=now)
    store.forget_backtests(db, KEEP_BACKTESTS)
    return Backtest(backtest_id, rule, int(days), since, now, counts.matched, counts.decided,
                    store.backtest_figures(db, backtest_id, now))


def backtest_label(db: Database, backtest_id: int) -> str | None:
    """"Backtest #5 of “Small refunds” (last 90 days)", or None when it is gone."""
    found = store.backtest_record(db, backtest_id)
    if found is None:
        return None
    return f"Backtest #{backtest_id} of “{found['rule']['name']}” (last {found['days']} days)"


# --- acting ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a rule did to one return, or why it left it alone."""

    rule_id: int
    shop_id: str
    return_id: str
    acted: bool
    message: str
    decision: str | None = None


def idempotency_key(rule_id: int, shop_id: str, return_id: str) -> str:
    """One key per rule and return: a resend after a crash is the same request, applied once by TikTok."""
    return str(uuid.uuid5(_KEY_SPACE, f"{rule_id}/{shop_id}/{return_id}"))


def mode_problem(rule: Rule, account: Account) -> str | None:
    """Why the rule may not act on this account now (its mode changed, or it was not there when the rule was
    switched on); None when it may."""
    expected = rule.enabled_modes.get(account.shop_id)
    if expected is None:
        return (f"{account.name} was not among the rule's accounts when it was switched on; switch the rule off "
                "and on again to include it")
    if expected != account.mode:
        return (f"{account.name} is in {account.mode} mode, but the rule was switched on while it was {expected}: "
                "switch the rule off and on again on purpose")
    return None


def day_span(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day of `now`, as [start, end): the day a daily cap counts."""
    start = datetime.combine(now.date(), datetime.min.time())
    return start, start + timedelta(days=1)


def act(db: Database, accounts: Iterable[Account], *, transport=None, now: datetime | None = None,
        ran_by: str = "sync") -> list[Outcome]:
    """Let every rule that is on decide the new returns of these accounts that wait for the seller.

    Rules are tried oldest first; a return is decided by one rule at most, once. Nothing happens while
    the kill switch is on. Never raises for one return's failure: each gets its outcome.
    """
    if kill_switch(db):
        return []
    rules = [r for r in list_rules(db) if r.enabled]
    if not rules:
        return []
    by_shop = {a.shop_id: a for a in accounts}
    claimed_by = f"{ran_by} (pid {os.getpid()})"
    outcomes = _resume(db, rules, by_shop, transport=transport, claimed_by=claimed_by, now=now)
    for rule in rules:
        where, params = store.conditions_where(db, rule.conditions)
        for account in by_shop.values():
            if rule.conditions.shop_ids and account.shop_id not in rule.conditions.shop_ids:
                continue
            problem = mode_problem(rule, account) or (None if account.usable else f"{account.name} is {account.status}")
            start, end = day_span(now or utcnow())
            left = rule.daily_cap - store.decided_today(db, start, end).get(rule.id, 0)
            if left <= 0:
                continue
            found = store.candidates(db, where=where, params=params, shop_id=account.shop_id,
                                     first_seen_from=rule.enabled_at, limit=left)
            if problem:
                outcomes += [Outcome(rule.id, account.shop_id, rid, False, problem) for rid in found]
                if found:
                    logger.warning("rule %s left %d returns of %s alone: %s", rule.id, len(found), account.name,
                                   problem)
                continue
            for return_id in found:
                outcomes.append(_decide(db, rule, account, return_id, transport=transport, claimed_by=claimed_by,
                                        now=now))
    return outcomes


def _resume(db: Database, rules: list[Rule], by_shop: dict[str, Account], *, transport, claimed_by: str,
            now: datetime | None) -> list[Outcome]:
    """Finish the decisions a run claimed and never finished (it died): with the same idempotency key, so
    TikTok applies a decision that did go out at most once."""
    at = now or utcnow()
    by_id = {r.id: r for r in rules}
    outcomes = []
    for shop_id, return_id, rule_id in store.reclaim_stale(db, list(by_id), older_than=at - STALE_CLAIM,
                                                           claimed_by=claimed_by, at=at):
        account = by_shop.get(shop_id) or accounts_core.find_by_shop_id(db, shop_id)
        rule = by_id[rule_id]
        problem = "its account is gone" if account is None else mode_problem(rule, account)
        if problem:
            outcomes.append(Outcome(rule_id, shop_id, return_id, False, f"Not resumed: {problem}."))
            continue
        outcomes.append(_carry_out(db, rule, account, return_id, transport=transport, resumed=True))
    return outcomes


def act_after_sync(db: Database, results: Iterable[Any], *, transport=None, trigger: str = "sync") -> list[Outcome]:
    """The sync's hook: the rules act on the accounts whose sync just succeeded. Never raises."""
    return act_on_shops(db, [r.shop_id for r in results if r.ok], transport=transport, trigger=trigger)


def act_on_shops(db: Database, shop_ids: Iterable[str], *, transport=None, trigger: str = "sync") -> list[Outcome]:
    """The rules act on these shops' new returns that wait for the seller, after anything stored them: a
    sync (act_after_sync) or a webhook's re-sync (webhooks.process_waiting). Never raises."""
    try:
        shops = set(shop_ids)
        if not shops:
            return []
        accounts = [a for a in accounts_core.list_accounts(db) if a.shop_id in shops]
        return act(db, accounts, transport=transport, ran_by=trigger)
    except Exception as exc:  # noqa: BLE001 - what stored the returns stands; the rules try again next time
        logger.warning("decision rules could not run after %s: %s", trigger, exc, exc_info=exc)
        return []


def _decide(db: Database, rule: Rule, account: Account, return_id: str, *, transport, claimed_by: str,
            now: datetime | None) -> Outcome:
    """Claim one return for the rule, then flag it or send the rule's decision the manager's way."""
    at = now or utcnow()
    start, end = day_span(at)
    key = None if rule.action == FLAG else idempotency_key(rule.id, account.shop_id, return_id)
    refused = store.claim(db, rule_id=rule.id, shop_id=account.shop_id, return_id=return_id, action=rule.action,
                          idempotency_key=key, daily_cap=rule.daily_cap, day_start=start, day_end=end,
                          claimed_by=claimed_by, at=at)
    if refused is not None:
        return Outcome(rule.id, account.shop_id, return_id, False, f"Not decided: {refused}.")
    return _carry_out(db, rule, account, return_id, transport=transport)


def _carry_out(db: Database, rule: Rule, account: Account, return_id: str, *, transport,
               resumed: bool = False) -> Outcome:
    """A claimed return: flag it, or ask TikTok and send the rule's decision (or give the claim back).

    `resumed`: a run that died claimed it; when it got as far as sending, the same request is sent again
    with the same key (TikTok answers a repeated key without acting twice), or its answer recorded."""
    from returns_core import workflow
    from returns_core.store import actions

    key = None if rule.action == FLAG else idempotency_key(rule.id, account.shop_id, return_id)
    if rule.action == FLAG:
        return _flag(db, rule, account, return_id)
    if resumed:
        with db.reader() as con:
            sent = actions.find(con, key)
        if sent is not None:
            body = (sent.request or {}).get("body") or {}
            plan = workflow.ActionPlan(account.shop_id, return_id, sent.request["path"].rsplit("/", 1)[-1],
                                       body.get("decision", ""), reject_reason=body.get("reject_reason"),
                                       comment=body.get("comment"), buyer_keep_item=body.get("buyer_keep_item"),
                                       partial_refund=body.get("partial_refund"), idempotency_key=key)
            try:
                result = workflow.send_action(db, account, plan, rule.actor, transport=transport)
            except (WorkflowError, StoreError) as exc:
                return _finished(db, rule, account, return_id, False, plan.decision, f"Not sent: {exc}")
            return _finished(db, rule, account, return_id, result.ok, plan.decision, result.message)
    try:
        options = workflow.decision_options(db, account, return_id, transport=transport)
        if not options.asked_tiktok:
            # nothing was sent: give the return back, so the next sync tries again
            store.release(db, account.shop_id, return_id)
            return Outcome(rule.id, account.shop_id, return_id, False,
                           f"Not decided: {options.note or 'TikTok could not be asked which decisions it accepts'}")
        decision, keep = _decision_for(rule, db, account.shop_id, return_id, options)
    except _NotNow as exc:
        # nothing was sent and TikTok may wait for this decision later (a parcel still on its way): give
        # the return back, so a later sync tries again
        store.release(db, account.shop_id, return_id)
        return Outcome(rule.id, account.shop_id, return_id, False, f"Not decided now: {exc}.")
    except (WorkflowError, StoreError) as exc:
        return _finished(db, rule, account, return_id, False, None, f"Not sent: {exc}")
    try:
        plan = workflow.plan_action(db, account.shop_id, return_id, decision, reject_reason=rule.reject_reason,
                                    buyer_keep_item=keep, options=options)
        plan = replace(plan, idempotency_key=key)
        result = workflow.send_action(db, account, plan, rule.actor, transport=transport)
    except (WorkflowError, StoreError) as exc:
        return _finished(db, rule, account, return_id, False, None, f"Not sent: {exc}")
    return _finished(db, rule, account, return_id, result.ok, decision, result.message)


def _decision_for(rule: Rule, db: Database, shop_id: str, return_id: str, options) -> tuple[str, bool | None]:
    """TikTok's decision for the rule's action at the step TikTok waits for, among those it accepts now."""
    from returns_core.store.returns import find_return

    row = find_return(db, return_id, shop_id) or {}
    step = domain.seller_next_action(row.get("return_type"), row.get("marketplace_status"), row.get("next_action"))
    approve, reject = domain.DECISIONS_BY_NEXT_ACTION.get(step or "", ((), ()))
    if rule.action == APPROVE_KEEP_ITEM:
        wanted = _APPROVE_KEEP_ITEM.get(step or "")
        if wanted is None:
            raise _NotNow(f"the buyer can keep the item only on a refund or return request ({step or 'no step'})")
        if wanted not in options.decisions:
            raise _NotNow(f"TikTok does not accept {wanted} on this return now")
        return wanted, wanted == "APPROVE_RETURN" or None
    choices = [d for d in (approve if rule.action == APPROVE else reject)
               if d in options.decisions and d != "OFFER_PARTIAL_REFUND"]
    if not choices:
        why = "; ".join(options.refused.values()) or "it accepts no decision on it now"
        raise _NotNow(f"TikTok does not accept a {rule.action} of this return now ({why})")
    return choices[0], None


class _NotNow(Exception):
    """TikTok does not wait for the rule's kind of decision on this return now; it may later."""


def _finished(db: Database, rule: Rule, account: Account, return_id: str, ok: bool, decision: str | None,
              message: str) -> Outcome:
    """Record how the rule's decision ended, and raise its alert."""
    with db.writer() as con:
        store.finish_decision(con, account.shop_id, return_id, state=store.OK if ok else store.FAILED,
                              decision=decision, result=message, at=utcnow())
    verb = "decided" if ok else "could not decide"
    _alert(db, rule, account, return_id, f"Rule “{rule.name}” {verb} return {return_id}", message)
    return Outcome(rule.id, account.shop_id, return_id, ok, message, decision)


def _flag(db: Database, rule: Rule, account: Account, return_id: str) -> Outcome:
    """Flag for a human: an entry in the return's history naming the rule, and an alert. Nothing goes to TikTok."""
    from returns_core.store import history

    message = f"Flagged for a human by rule #{rule.id} “{rule.name}”: {rule.conditions.describe()}."
    with db.writer() as con:
        store.finish_decision(con, account.shop_id, return_id, state=store.FLAGGED, decision=None, result=message,
                              at=utcnow())
        history.append(con, [history.entry(account.shop_id, return_id, rule.actor, "rule", new="flagged",
                                           note=message, details={"rule_id": rule.id})])
    _alert(db, rule, account, return_id, f"Rule “{rule.name}” flagged return {return_id} for a human", message)
    return Outcome(rule.id, account.shop_id, return_id, True, message)


RULE_ALERT = "decision_rule"  # the alerts' rule name for what decision rules did


def _alert(db: Database, rule: Rule, account: Account, return_id: str, title: str, message: str) -> None:
    """One alert per return a rule decided or flagged, through the alert channels (once, like every alert)."""
    from returns_core import alerts
    from returns_core.store import alerts as alert_store

    try:
        if not alert_store.has_channels(db):
            return
        link = alerts.detail_link(alerts.base_url(db), account.shop_id, return_id)
        if account.mode == accounts_core.SANDBOX_MODE:
            title = f"[Sandbox] {title}"
        alert_store.claim(db, [alert_store.NewAlert(RULE_ALERT, account.shop_id, return_id, f"rule {rule.id}", title,
                                                    f"{account.name}: {message}\nOpen the return: {link}", link)],
                          raised_by="rules")
    except Exception as exc:  # noqa: BLE001 - the decision stands; the alert is news of it
        logger.warning("alert for rule %s on return %s failed: %s", rule.id, return_id, exc)
