"""Decision rules in the store: the rules and their history, the returns a rule matches (in SQL), the
backtests and the claim that lets a rule decide a return once.

A rule's conditions become a parameterised WHERE over `returns AS r` (`conditions_where`): values only
ever travel as parameters, so a rule typed on the page cannot change the SQL. The backtest runs where
the returns are (millions of rows never leave DuckDB) and keeps the returns it would have decided in
`backtest_returns`, which the grid's `backtest` filter reads: the link shows exactly those rows.

`claim` is the one door to acting: in ONE transaction it checks the kill switch, that the rule is
still on, that no person touched the return, and the rule's daily cap, then inserts the return's
row in `rule_decisions` (its PRIMARY KEY (shop_id, return_id)). Transactions of one process take
turns on the write lock and two processes cannot hold the file at once, so two syncs that finish
together never both claim a return: only the one whose insert took the row acts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import duckdb
import pandas as pd

from returns_core import domain, reason_groups
from returns_core.store.db import Database
from returns_core.store.history import SYNC_ACTOR

KILL_SWITCH_SETTING = "rules_kill_switch"  # "on": no rule acts (the settings table)
# who a machine's history entries name: a change by anyone else is a person's
MACHINE_ACTORS = (SYNC_ACTOR, "webhook")
# history kinds only a person's hand makes (a sync's "status" entries are named by MACHINE_ACTORS)
PERSON_KINDS = ("status", "note", "sign_off")
CLAIMED, OK, FAILED, FLAGGED = "claimed", "ok", "failed", "flagged"
_RULE_COLUMNS = ("id", "name", "conditions", "action", "reject_reason", "daily_cap", "enabled", "enabled_modes",
                 "enabled_at", "enabled_by", "created_at", "created_by", "updated_at", "updated_by", "retired_at")
_RULE_SELECT = ", ".join(_RULE_COLUMNS)


class ConditionsLike(Protocol):
    """What `conditions_where` reads of a rule's conditions (returns_core.rules.Conditions)."""

    shop_ids: tuple[str, ...]
    types: tuple[str, ...]
    reasons: tuple[str, ...]
    reason_groups: tuple[str, ...]
    max_refund: Decimal | None
    currency: str | None
    skus: tuple[str, ...]
    products: tuple[str, ...]
    buyer_keeps_item: bool | None


# --- the conditions as SQL ---------------------------------------------------------------------


def buyer_keeps_item_sql(alias: str) -> str:
    """TRUE when the request needs no parcel back: a refund-only request, or TikTok says the buyer may keep
    the item (its can_buyer_keep_item); never NULL."""
    flag = f"TRY_CAST(json_extract_string({alias}.payload, '$.can_buyer_keep_item') AS BOOLEAN)"
    return f"({alias}.return_type = 'REFUND' OR coalesce({flag}, FALSE))"


def _reason_key(code: str, text: str) -> str:
    """One text per reason: its code and text (a missing one classifies as empty: reason_groups.normalize_sql)."""
    return f"(coalesce({code}, '') || chr(31) || coalesce({text}, ''))"


def reasons_in_groups(db: Database, groups: tuple[str, ...]) -> list[str]:
    """The reasons of the stored returns that fall in these reason groups, as `_reason_key`s.

    Each distinct reason is classified once and the returns are then matched by value: DuckDB pushes a
    filter on the phrase rules below a DISTINCT, join or IN subquery and runs them per return (9 s against
    0.03 s at 200k returns).
    """
    normalized = reason_groups.normalize_sql("code", "text")
    # no WHERE on the group here either: DuckDB would push it below the DISTINCT, and a shop has few reasons
    sql = (f"SELECT k, {reason_groups.group_sql('n')} FROM (SELECT k, {normalized} AS n FROM (SELECT DISTINCT "
           f"{_reason_key('reason_code', 'reason_text')} AS k, reason_code AS code, reason_text AS text "
           "FROM returns)) ORDER BY k")
    return [key for key, group in db.rows(sql) if group in groups]


def conditions_where(db: Database, c: ConditionsLike, alias: str = "r") -> tuple[str, list]:
    """SQL condition (without WHERE) and its parameters for a rule's conditions, over `returns AS alias`
    (a reason group becomes the stored reasons in it, read first)."""
    parts: list[str] = []
    params: list = []

    def any_of(expr: str, values: tuple) -> None:
        if values:
            parts.append(f"{expr} IN ({', '.join('?' * len(values))})")
            params.extend(values)

    # rules decide returns: a buyer's cancellation before shipment is another queue, decided by a person
    parts.append(f"{alias}.kind = ?")
    params.append(domain.RETURN_KIND)
    any_of(f"{alias}.shop_id", c.shop_ids)
    any_of(f"{alias}.type", c.types)
    any_of(f"{alias}.reason_text", c.reasons)
    if c.reason_groups:
        keys = reasons_in_groups(db, c.reason_groups)
        marks = ", ".join("?" * len(keys))
        parts.append(f"{_reason_key(f'{alias}.reason_code', f'{alias}.reason_text')} IN ({marks})" if keys
                     else "FALSE")
        params.extend(keys)
    if c.max_refund is not None:
        parts.append(f"{alias}.refund_currency = ? AND {alias}.refund_total <= ?")
        params += [c.currency, c.max_refund]
    if c.skus:
        marks = ", ".join("?" * len(c.skus))
        parts.append(f"coalesce(list_bool_or(list_transform({alias}.lines, lambda li: li.seller_sku IN ({marks}) "
                     f"OR li.sku_id IN ({marks}))), FALSE)")
        params += list(c.skus) * 2
    if c.products:
        marks = ", ".join("?" * len(c.products))
        parts.append(f"coalesce(list_bool_or(list_transform({alias}.lines, lambda li: li.product_name IN ({marks}))), "
                     "FALSE)")
        params += list(c.products)
    if c.buyer_keeps_item is not None:
        parts.append(("" if c.buyer_keeps_item else "NOT ") + buyer_keeps_item_sql(alias))
    return (" AND ".join(f"({p})" for p in parts) or "TRUE"), params


def touched_by_person_sql(alias: str = "r") -> str:
    """TRUE when a person changed the return here (Status by hand, a note, a sign-off) or a decision was
    sent for it from the desk (every rule decision is claimed first, so it is never a candidate again)."""
    kinds = ", ".join(domain.sql_literal(k) for k in PERSON_KINDS)
    machines = ", ".join(domain.sql_literal(a) for a in MACHINE_ACTORS)
    return (f"(EXISTS (SELECT 1 FROM history h WHERE h.shop_id = {alias}.shop_id AND h.return_id = {alias}.return_id "
            f"AND h.kind IN ({kinds}) AND h.actor NOT IN ({machines})) OR EXISTS (SELECT 1 FROM actions a "
            f"WHERE a.shop_id = {alias}.shop_id AND a.return_id = {alias}.return_id))")


def missed_deadline_sql(alias: str, now: datetime) -> tuple[str, list]:
    """TRUE for a return whose seller deadline passed unanswered, as far as the store knows: it still waits
    for the seller past its Due By; or a sync saw TikTok move it on at or after the deadline it had
    (history: a marketplace_status change whose update_time is not before its due_by_before); or TikTok's
    records of it (when fetched) say TikTok decided by itself."""
    overdue, params = domain.deadline_sql(domain.OVERDUE, alias, now)
    moved_at = "make_timestamp(TRY_CAST(json_extract_string(h.details, '$.update_time') AS BIGINT) * 1000000)"
    deadline = "TRY_CAST(json_extract_string(h.details, '$.due_by_before') AS TIMESTAMP)"
    return (f"(({overdue} AND {domain.stored_can_decide_sql(alias)}) "
            f"OR EXISTS (SELECT 1 FROM history h WHERE h.shop_id = {alias}.shop_id AND h.return_id = {alias}.return_id "
            f"AND h.kind = 'marketplace_status' AND {moved_at} >= {deadline}) "
            f"OR EXISTS (SELECT 1 FROM return_records rr WHERE rr.shop_id = {alias}.shop_id "
            f"AND rr.return_id = {alias}.return_id AND rr.role = 'SYSTEM' "
            "AND contains(upper(rr.event), 'AUTO')))"), params


def deadline_unseen_sql(alias: str) -> str:
    """TRUE for a return the store never saw wait for the seller: not waiting now, no sync saw TikTok move it on
    from a seller deadline (history with due_by_before), and TikTok's records of it not fetched. It was first
    synced after the seller's turn had passed, so whether TikTok decided it by itself (a missed deadline) the
    store cannot tell: Search Returns and Search Cancellations do not say who decided, only Get Return Records
    does. A first sync of a shop's history finds nearly every closed return so."""
    return (f"(NOT {domain.can_decide_sql(alias)} "
            f"AND NOT EXISTS (SELECT 1 FROM history h WHERE h.shop_id = {alias}.shop_id "
            f"AND h.return_id = {alias}.return_id AND h.kind = 'marketplace_status' "
            "AND json_extract_string(h.details, '$.due_by_before') IS NOT NULL) "
            f"AND NOT EXISTS (SELECT 1 FROM return_records rr WHERE rr.shop_id = {alias}.shop_id "
            f"AND rr.return_id = {alias}.return_id))")


# --- the rules and their history -------------------------------------------------------------------


def _rule_record(row: tuple) -> dict[str, Any]:
    record = dict(zip(_RULE_COLUMNS, row, strict=True))
    record["conditions"] = json.loads(record["conditions"])
    record["enabled_modes"] = json.loads(record["enabled_modes"]) if record["enabled_modes"] else {}
    return record


def all_rules(db: Database, *, retired: bool = False) -> list[dict[str, Any]]:
    """Every rule (not the retired ones unless asked), oldest first, conditions decoded."""
    where = "" if retired else "WHERE retired_at IS NULL"
    return [_rule_record(row) for row in db.rows(f"SELECT {_RULE_SELECT} FROM decision_rules {where} "
                                                 "ORDER BY id")]


def rule_by_id(con: duckdb.DuckDBPyConnection, rule_id: int) -> dict[str, Any] | None:
    """One rule as this transaction sees it, or None."""
    rows = con.execute(f"SELECT {_RULE_SELECT} FROM decision_rules WHERE id = ?", [rule_id]).fetchall()
    return _rule_record(rows[0]) if rows else None


def insert_rule(con: duckdb.DuckDBPyConnection, fields: dict[str, Any], actor: str, at: datetime) -> int:
    """A new rule (switched off); returns its id."""
    return con.execute(
        "INSERT INTO decision_rules (name, conditions, action, reject_reason, daily_cap, enabled, created_at, "
        "created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, false, ?, ?, ?, ?) RETURNING id",
        [fields["name"], json.dumps(fields["conditions"], sort_keys=True), fields["action"], fields["reject_reason"],
         fields["daily_cap"], at, actor, at, actor]).fetchone()[0]


def update_rule(con: duckdb.DuckDBPyConnection, rule_id: int, fields: dict[str, Any], actor: str,
                at: datetime) -> None:
    """Change a rule's name, conditions, action, reason and cap."""
    con.execute(
        "UPDATE decision_rules SET name = ?, conditions = ?, action = ?, reject_reason = ?, daily_cap = ?, "
        "updated_at = ?, updated_by = ? WHERE id = ?",
        [fields["name"], json.dumps(fields["conditions"], sort_keys=True), fields["action"], fields["reject_reason"],
         fields["daily_cap"], at, actor, rule_id])


def set_enabled(con: duckdb.DuckDBPyConnection, rule_id: int, enabled: bool, modes: dict[str, str] | None,
                actor: str, at: datetime) -> None:
    """Switch a rule on (recording the accounts' modes at this moment) or off."""
    if enabled:
        con.execute("UPDATE decision_rules SET enabled = true, enabled_modes = ?, enabled_at = ?, enabled_by = ?, "
                    "updated_at = ?, updated_by = ? WHERE id = ?",
                    [json.dumps(modes or {}, sort_keys=True), at, actor, at, actor, rule_id])
    else:
        con.execute("UPDATE decision_rules SET enabled = false, updated_at = ?, updated_by = ? WHERE id = ?",
                    [at, actor, rule_id])


def retire_rule(con: duckdb.DuckDBPyConnection, rule_id: int, actor: str, at: datetime) -> None:
    """Take a rule off the page (switched off); its history and decisions stay."""
    con.execute("UPDATE decision_rules SET enabled = false, retired_at = ?, updated_at = ?, updated_by = ? "
                "WHERE id = ?", [at, at, actor, rule_id])


def add_history(con: duckdb.DuckDBPyConnection, rule_id: int | None, actor: str, kind: str, *,
                old: Any = None, new: Any = None, note: str | None = None, at: datetime) -> None:
    """Append one change of a rule (or of the kill switch, rule_id None) inside the caller's transaction."""
    con.execute(
        "INSERT INTO rule_history (rule_id, happened_at, actor, kind, old_value, new_value, note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [rule_id, at, actor, kind, None if old is None else json.dumps(old, sort_keys=True, default=str),
         None if new is None else json.dumps(new, sort_keys=True, default=str), note])


def history_frame(db: Database, rule_id: int | None = None, limit: int = 200) -> pd.DataFrame:
    """Changes to the rules and the kill switch (one rule's, when given), newest first."""
    where, params = ("WHERE h.rule_id = ?", [rule_id]) if rule_id is not None else ("", [])
    return db.frame(
        'SELECT h.happened_at AS "When", h.actor AS "Who", h.kind AS "Change", h.rule_id AS "Rule", '
        'd.name AS "Rule name", h.note AS "Note", h.old_value AS "Before", h.new_value AS "After" '
        f"FROM rule_history h LEFT JOIN decision_rules d ON d.id = h.rule_id {where} "
        "ORDER BY h.happened_at DESC, h.id DESC LIMIT ?", [*params, limit])


def kill_switch_on(con: duckdb.DuckDBPyConnection) -> bool:
    """True while the kill switch stops every rule (as this transaction sees it)."""
    rows = con.execute("SELECT value FROM settings WHERE key = ?", [KILL_SWITCH_SETTING]).fetchall()
    return bool(rows) and rows[0][0] == "on"


def set_kill_switch(con: duckdb.DuckDBPyConnection, on: bool, at: datetime) -> None:
    con.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at",
                [KILL_SWITCH_SETTING, "on" if on else "off", at])


# --- the backtest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestCounts:
    """What a replay found: returns matched, decided within the daily cap, and the cap's leftovers."""

    matched: int
    decided: int


def run_backtest(db: Database, *, rule_id: int | None, rule_json: dict, where: str, params: list, daily_cap: int,
                 days: int, since: datetime, until: datetime, ran_by: str, at: datetime
                 ) -> tuple[int, BacktestCounts]:
    """Replay a rule on the returns created in [since, until): the matching returns, each UTC day's first
    `daily_cap` of them (by creation) counted as decided and kept under a new backtest id. Returns it."""
    window = f"({where}) AND r.created_at >= ? AND r.created_at < ?"
    with db.writer() as con:
        backtest_id = con.execute(
            "INSERT INTO backtests (rule_id, rule, days, since, until, ran_at, ran_by) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id", [rule_id, json.dumps(rule_json, sort_keys=True, default=str), days, since, until, at,
                             ran_by]).fetchone()[0]
        # a day's decisions follow the returns' arrival, as a rule acting after each sync would
        con.execute(
            "INSERT INTO backtest_returns SELECT ?, shop_id, return_id FROM ("
            "SELECT r.shop_id, r.return_id, row_number() OVER (PARTITION BY CAST(r.created_at AS DATE) "
            "ORDER BY r.created_at, r.shop_id, r.return_id) AS nth "
            f"FROM returns r WHERE {window}) WHERE nth <= ?",
            [backtest_id, *params, since, until, daily_cap])
        matched = con.execute(f"SELECT count(*) FROM returns r WHERE {window}", [*params, since, until]).fetchone()[0]
        decided = con.execute("SELECT count(*) FROM backtest_returns WHERE backtest_id = ?",
                              [backtest_id]).fetchone()[0]
    return backtest_id, BacktestCounts(matched, decided)


def backtest_record(db: Database, backtest_id: int) -> dict[str, Any] | None:
    """A backtest as run (its rule decoded), or None."""
    found = db.record("SELECT id, rule_id, rule, days, since, until, ran_at, ran_by FROM backtests WHERE id = ?",
                      [backtest_id])
    if found is not None:
        found["rule"] = json.loads(found["rule"])
    return found


def backtest_in_sql(alias: str = "r") -> str:
    """SQL for "the return is one a backtest (the parameter) would have decided", for the grid's filter."""
    return (f"EXISTS (SELECT 1 FROM backtest_returns b WHERE b.backtest_id = ? AND b.shop_id = {alias}.shop_id "
            f"AND b.return_id = {alias}.return_id)")


@dataclass(frozen=True)
class BacktestFigures:
    """What the decided returns cost and risk, from what happened to them in reality."""

    money: pd.DataFrame  # per currency: Returns, Refund (Decimal)
    ended_rejected: int
    in_arbitration: int
    at_risk: int  # rejected or in arbitration (each return once)
    missed_deadlines: int
    deadline_unseen: int  # of the decided, never seen waiting for the seller: missed or not, unknown here


def backtest_figures(db: Database, backtest_id: int, now: datetime) -> BacktestFigures:
    """Refund money per currency, the risk (ended Rejected, or went to arbitration) and missed deadlines."""
    joined = "FROM backtest_returns b JOIN returns r USING (shop_id, return_id) WHERE b.backtest_id = ?"
    money = db.frame(f'SELECT coalesce(r.refund_currency, \'-\') AS "Currency", count(*) AS "Returns", '
                     f'coalesce(sum(r.refund_total), 0) AS "Refund" {joined} GROUP BY 1 ORDER BY 3 DESC, 1',
                     [backtest_id])
    missed, missed_params = missed_deadline_sql("r", now)
    rejected = domain.sql_literal(domain.REJECTED)
    row = db.row(f"SELECT count(*) FILTER (WHERE r.status = {rejected}), "
                 "count(*) FILTER (WHERE r.arbitration_status IS NOT NULL), "
                 f"count(*) FILTER (WHERE r.status = {rejected} OR r.arbitration_status IS NOT NULL), "
                 f"count(*) FILTER (WHERE {missed}), count(*) FILTER (WHERE {deadline_unseen_sql('r')}) {joined}",
                 [*missed_params, backtest_id])
    return BacktestFigures(money, *row)


def backtest_rows(db: Database, backtest_id: int, limit: int = 50) -> pd.DataFrame:
    """The first decided returns, newest first, as the backtest table shows them."""
    return db.frame(
        'SELECT r.return_id AS "Return ID", r.shop_id AS "Account ID", r.created_at AS "Created At", r.type AS "Type", '
        'r.reason_text AS "Reason", r.refund_total AS "Refund", r.refund_currency AS "Currency", '
        'r.status AS "Status now", r.arbitration_status AS "Arbitration" '
        "FROM backtest_returns b JOIN returns r USING (shop_id, return_id) WHERE b.backtest_id = ? "
        "ORDER BY r.created_at DESC, r.shop_id, r.return_id LIMIT ?", [backtest_id, limit])


def forget_backtests(db: Database, keep: int) -> None:
    """Drop all but the newest `keep` backtests (they are snapshots for a link, not history)."""
    with db.writer() as con:
        con.execute("DELETE FROM backtest_returns WHERE backtest_id NOT IN "
                    "(SELECT id FROM backtests ORDER BY id DESC LIMIT ?)", [keep])
        con.execute("DELETE FROM backtests WHERE id NOT IN (SELECT id FROM backtests ORDER BY id DESC LIMIT ?)",
                    [keep])


# --- acting ----------------------------------------------------------------------------------------


def candidates(db: Database, *, where: str, params: list, shop_id: str, first_seen_from: datetime,
               limit: int) -> list[str]:
    """Return ids of one shop the rule matches that wait for the seller now, were first synced once the rule
    was on, no person touched and no rule decided yet: soonest deadline first."""
    sql = (f"SELECT r.return_id FROM returns r WHERE r.shop_id = ? AND ({where}) "
           f"AND {domain.stored_can_decide_sql('r')} "
           "AND r.first_seen_at >= ? AND NOT EXISTS (SELECT 1 FROM rule_decisions d WHERE d.shop_id = r.shop_id "
           f"AND d.return_id = r.return_id) AND NOT {touched_by_person_sql('r')} "
           "ORDER BY r.due_by NULLS LAST, r.created_at, r.return_id LIMIT ?")
    return [row[0] for row in db.rows(sql, [shop_id, *params, first_seen_from, limit])]


def claim(db: Database, *, rule_id: int, shop_id: str, return_id: str, action: str, idempotency_key: str | None,
          daily_cap: int, day_start: datetime, day_end: datetime, claimed_by: str, at: datetime) -> str | None:
    """Claim a return for a rule, in one transaction: None when this call took it, else why not (in words)."""
    with db.writer() as con:
        if kill_switch_on(con):
            return "the kill switch stops every rule"
        rule = rule_by_id(con, rule_id)
        if rule is None or not rule["enabled"] or rule["retired_at"] is not None:
            return "the rule was switched off"
        taken = con.execute("SELECT rule_id FROM rule_decisions WHERE shop_id = ? AND return_id = ?",
                            [shop_id, return_id]).fetchall()
        if taken:
            return f"rule #{taken[0][0]} decided it already"
        touched = con.execute(f"SELECT {touched_by_person_sql('r')} FROM returns r WHERE r.shop_id = ? "
                              "AND r.return_id = ?", [shop_id, return_id]).fetchall()
        if not touched:
            return "the return is not in the store"
        if touched[0][0]:
            return "a person has worked on this return"
        used = con.execute("SELECT count(*) FROM rule_decisions WHERE rule_id = ? AND claimed_at >= ? "
                           "AND claimed_at < ?", [rule_id, day_start, day_end]).fetchone()[0]
        if used >= daily_cap:
            return f"its daily cap of {daily_cap} is reached"
        con.execute("INSERT INTO rule_decisions (shop_id, return_id, rule_id, action, idempotency_key, state, "
                    "claimed_at, claimed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [shop_id, return_id, rule_id, action, idempotency_key, CLAIMED, at, claimed_by])
    return None


def reclaim_stale(db: Database, rule_ids: list[int], *, older_than: datetime, claimed_by: str,
                  at: datetime) -> list[tuple[str, str, int]]:
    """Take over the claims of these rules that a run left unfinished before `older_than` (it died between
    claiming and recording TikTok's answer): (shop_id, return_id, rule_id) of each this call took. One
    UPDATE: of two runs that find the same claim, only one gets it back."""
    if not rule_ids:
        return []
    marks = ", ".join("?" * len(rule_ids))
    with db.writer() as con:
        return [tuple(row) for row in con.execute(
            "UPDATE rule_decisions SET claimed_at = ?, claimed_by = ? WHERE state = ? AND claimed_at < ? "
            f"AND rule_id IN ({marks}) RETURNING shop_id, return_id, rule_id",
            [at, claimed_by, CLAIMED, older_than, *rule_ids]).fetchall()]


def release(db: Database, shop_id: str, return_id: str) -> None:
    """Give back a claim nothing was sent for, so a later run may try the return again."""
    with db.writer() as con:
        con.execute("DELETE FROM rule_decisions WHERE shop_id = ? AND return_id = ? AND state = ?",
                    [shop_id, return_id, CLAIMED])


def finish_decision(con: duckdb.DuckDBPyConnection, shop_id: str, return_id: str, *, state: str,
                    decision: str | None, result: str, at: datetime) -> None:
    """Record how a claimed decision ended (inside the caller's transaction)."""
    con.execute("UPDATE rule_decisions SET state = ?, decision = ?, result = ?, finished_at = ? "
                "WHERE shop_id = ? AND return_id = ?", [state, decision, result, at, shop_id, return_id])


def decisions_frame(db: Database, rule_id: int | None = None, limit: int = 100) -> pd.DataFrame:
    """The rules' decisions, newest first (one rule's, when given)."""
    where, params = ("WHERE d.rule_id = ?", [rule_id]) if rule_id is not None else ("", [])
    return db.frame(
        'SELECT d.claimed_at AS "When", d.rule_id AS "Rule", x.name AS "Rule name", d.return_id AS "Return ID", '
        'd.shop_id AS "Account ID", d.decision AS "Decision", d.state AS "Outcome", d.result AS "What happened" '
        f"FROM rule_decisions d LEFT JOIN decision_rules x ON x.id = d.rule_id {where} "
        "ORDER BY d.claimed_at DESC, d.return_id LIMIT ?", [*params, limit])


def decided_today(db: Database, day_start: datetime, day_end: datetime) -> dict[int, int]:
    """rule id -> returns it claimed in [day_start, day_end)."""
    return dict(db.rows("SELECT rule_id, count(*) FROM rule_decisions WHERE claimed_at >= ? AND claimed_at < ? "
                        "GROUP BY 1", [day_start, day_end]))
