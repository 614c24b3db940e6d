"""Alerts in the store: channels (apprise URLs, encrypted), alerts raised once, and their deliveries.

Once per subject and rule: `claim` inserts each alert keyed by (rule, shop_id, subject, occurrence)
with ON CONFLICT DO NOTHING, in ONE transaction with a delivery row per channel. Only the caller
whose insert took the row gets its id back, so the app's scheduler and a cron run may evaluate at
the same moment and nothing is raised twice. Transactions of one process take turns on the write
lock, and two processes cannot hold the file at once, so the check and the insert never interleave.

A delivery goes claimed -> sent, or -> retrying (attempts, last error, next attempt) -> ... -> failed.
`take_due` leases due deliveries (attempts + 1) before anyone sends them; a sender that dies
leaves its lease to run out and the next evaluation sends the alert: late, never lost.
Channel URLs hold secrets (an SMTP password, a Slack webhook), so they cross this module in clear
and are stored only as the database SecretBox's ciphertext, like the accounts' tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from returns_core import domain
from returns_core.store.db import Database, utcnow

CLAIMED, SENT, RETRYING, FAILED = "claimed", "sent", "retrying", "failed"
MAX_ERROR_LENGTH = 500  # a last error is one readable line on the events page, never an essay
MAX_CANDIDATES = 500  # returns per rule and evaluation: a backlog goes out over the next ticks


@dataclass(frozen=True)
class NewAlert:
    """An alert a rule wants raised: once per (rule, shop_id, subject, occurrence)."""

    rule: str
    shop_id: str  # "" when it concerns no single shop
    subject: str  # what it is about: a return id, a spike ("SKU:RED-M"), "expiring", "revoked", "sync"
    occurrence: str  # which time: the deadline, the spike's last day, the expiry day, the first failed run
    title: str
    message: str
    link: str | None = None
    # True when the condition has no time of its own (a spike, a revoked authorization): it is
    # raised again only after an earlier alert of the same subject was cleared (the condition ended)
    ongoing: bool = False


@dataclass(frozen=True)
class Channel:
    """A configured channel as shown: never its URL."""

    id: int
    name: str
    shown: str  # the redacted form: scheme and host only
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    """One alert to send to one channel, leased to the caller. The repr never shows the URL."""

    alert_id: int
    channel_id: int
    channel: str
    title: str
    message: str
    attempts: int  # including this one
    url: str | None = field(repr=False)  # None when the channel was removed meanwhile


# --- channels -----------------------------------------------------------------------------------


def add_channel(db: Database, name: str, shown: str, url: str) -> int:
    """Store a channel, its URL encrypted; returns its id."""
    encrypted = db.box.encrypt(url)
    with db.writer() as con:
        return con.execute("INSERT INTO alert_channels (name, shown, url_enc, created_at) VALUES (?, ?, ?, ?) "
                           "RETURNING id", [name, shown, encrypted, utcnow()]).fetchone()[0]


def list_channels(db: Database) -> list[Channel]:
    """Every channel, oldest first (no URL)."""
    return [Channel(*row) for row in db.rows("SELECT id, name, shown, created_at FROM alert_channels ORDER BY id")]


def has_channels(db: Database) -> bool:
    """True when at least one channel is configured."""
    return bool(db.value("SELECT count(*) FROM alert_channels"))


def channel_url(db: Database, channel_id: int) -> str | None:
    """The channel's URL in clear (for sending only), or None when there is no such channel."""
    return db.box.decrypt(db.value("SELECT url_enc FROM alert_channels WHERE id = ?", [channel_id]))


def remove_channel(db: Database, channel_id: int) -> bool:
    """Delete a channel and what was still waiting to go to it; sent and failed ones stay as history."""
    with db.writer() as con:
        con.execute("DELETE FROM alert_deliveries WHERE channel_id = ? AND state IN (?, ?)",
                    [channel_id, CLAIMED, RETRYING])
        return bool(con.execute("DELETE FROM alert_channels WHERE id = ? RETURNING id", [channel_id]).fetchall())


# --- raising: the once-per-subject claim --------------------------------------------------------

_CLAIM_SQL = (
    "INSERT INTO alerts (rule, shop_id, subject, occurrence, title, message, link, ongoing, raised_at, raised_by) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
    # an ongoing condition is raised again only once its earlier alert was cleared
    "WHERE NOT (? AND EXISTS (SELECT 1 FROM alerts WHERE rule = ? AND shop_id = ? AND subject = ? "
    "AND cleared_at IS NULL)) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
_DELIVERIES_SQL = (
    "INSERT INTO alert_deliveries (alert_id, channel_id, channel, state, attempts, next_attempt_at) "
    "SELECT ?, id, name || ' · ' || shown, ?, 0, ? FROM alert_channels"
)


def claim(db: Database, alerts: Sequence[NewAlert], *, raised_by: str, now: datetime | None = None) -> list[int]:
    """Raise the alerts nobody raised yet, each with a delivery per channel, in ONE transaction.

    Returns the ids of the alerts this call raised; an alert raised before (by this process or
    another) is left alone and not returned, so its caller never sends it again.
    """
    now = now or utcnow()
    raised: list[int] = []
    fresh = _not_raised(db, alerts)
    if not fresh:
        return raised
    with db.writer() as con:
        for a in fresh:
            found = con.execute(_CLAIM_SQL, [a.rule, a.shop_id, a.subject, a.occurrence, a.title, a.message, a.link,
                                             a.ongoing, now, raised_by, a.ongoing, a.rule, a.shop_id,
                                             a.subject]).fetchall()
            if found:
                raised.append(found[0][0])
                con.execute(_DELIVERIES_SQL, [found[0][0], CLAIMED, now])
    return raised


def _not_raised(db: Database, alerts: Sequence[NewAlert]) -> list[NewAlert]:
    """The alerts not raised yet, as far as a read can tell: most evaluations raise nothing new, and
    then need not wait for the write lock. The claim itself still decides."""
    if not alerts:
        return []
    keys = [_key(a.rule, a.shop_id, a.subject, a.occurrence) for a in alerts]
    open_keys = [_key(a.rule, a.shop_id, a.subject) for a in alerts if a.ongoing]
    found = {row[0] for row in db.rows(
        "SELECT rule || chr(31) || shop_id || chr(31) || subject || chr(31) || occurrence FROM alerts "
        "WHERE list_contains(?, rule || chr(31) || shop_id || chr(31) || subject || chr(31) || occurrence) "
        "UNION ALL SELECT rule || chr(31) || shop_id || chr(31) || subject FROM alerts "
        "WHERE ongoing AND cleared_at IS NULL AND list_contains(?, rule || chr(31) || shop_id || chr(31) || subject)",
        [keys, open_keys])}
    return [a for a, key in zip(alerts, keys, strict=True)
            if key not in found and not (a.ongoing and _key(a.rule, a.shop_id, a.subject) in found)]


def occurrences(db: Database, rule: str, shop_id: str, subject: str) -> list[str]:
    """The occurrences of the alerts already raised for this rule, shop and subject, oldest first."""
    return [row[0] for row in db.rows("SELECT occurrence FROM alerts WHERE rule = ? AND shop_id = ? AND subject = ? "
                                      "ORDER BY raised_at, id", [rule, shop_id, subject])]


def _key(*parts: str) -> str:
    return "\x1f".join(parts)


def clear_ended(db: Database, rule: str, still_on: Iterable[tuple[str, str]], now: datetime | None = None) -> int:
    """Mark the rule's ongoing alerts whose (shop_id, subject) no longer holds as ended; returns how many.

    The next time such a condition holds, it is a new occurrence and alerts again.
    """
    keys = sorted({_key(shop, subject) for shop, subject in still_on})
    ended = "rule = ? AND ongoing AND cleared_at IS NULL AND NOT list_contains(?, shop_id || chr(31) || subject)"
    if not db.value(f"SELECT count(*) FROM alerts WHERE {ended}", [rule, keys]):
        return 0  # the usual case, found without the write lock
    with db.writer() as con:
        return len(con.execute(f"UPDATE alerts SET cleared_at = ? WHERE {ended} RETURNING id",
                               [now or utcnow(), rule, keys]).fetchall())


# --- delivering -----------------------------------------------------------------------------------


def take_due(db: Database, *, now: datetime | None = None, lease: timedelta = timedelta(minutes=5),
             limit: int = 100) -> list[Delivery]:
    """Lease the deliveries due now (new, to retry, or whose sender died), counting the attempt.

    Leased in one transaction, so two evaluators never take the same delivery. The caller sends
    each and records the outcome (`record_sent` / `record_failed`) before the lease runs out.
    """
    now = now or utcnow()
    due = ("state IN (?, ?) AND next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?)",
           [CLAIMED, RETRYING, now, now])
    # a read first: most evaluations find nothing due and need not wait for the write lock
    if not db.value(f"SELECT count(*) FROM alert_deliveries WHERE {due[0]}", due[1]):
        return []
    with db.writer() as con:
        taken = con.execute(
            "UPDATE alert_deliveries SET attempts = attempts + 1, leased_until = ? "
            "WHERE (alert_id, channel_id) IN (SELECT (alert_id, channel_id) FROM alert_deliveries "
            f"  WHERE {due[0]} ORDER BY next_attempt_at, alert_id, channel_id LIMIT ?) "
            "RETURNING alert_id, channel_id",
            [now + lease, *due[1], limit]).fetchall()
        if not taken:
            return []
        rows = con.execute(
            "SELECT d.alert_id, d.channel_id, d.channel, a.title, a.message, d.attempts, c.url_enc "
            "FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id "
            "LEFT JOIN alert_channels c ON c.id = d.channel_id "
            "WHERE list_contains(?, d.alert_id || ':' || d.channel_id) ORDER BY d.next_attempt_at, d.alert_id",
            [[f"{alert}:{channel}" for alert, channel in taken]]).fetchall()
    box = db.box
    return [Delivery(*row[:6], url=box.decrypt(row[6])) for row in rows]


def record_sent(db: Database, alert_id: int, channel_id: int, now: datetime | None = None) -> None:
    """The channel took the alert."""
    with db.writer() as con:
        con.execute("UPDATE alert_deliveries SET state = ?, sent_at = ?, leased_until = NULL, last_error = NULL "
                    "WHERE alert_id = ? AND channel_id = ?", [SENT, now or utcnow(), alert_id, channel_id])


def record_failed(db: Database, alert_id: int, channel_id: int, error: str, retry_at: datetime | None) -> None:
    """The channel refused or could not be reached: retry at `retry_at`, or give up when it is None.

    `error` must already be free of the channel's secrets (returns_core.alerts scrubs it).
    """
    with db.writer() as con:
        con.execute("UPDATE alert_deliveries SET state = ?, last_error = ?, next_attempt_at = coalesce(?, "
                    "next_attempt_at), leased_until = NULL WHERE alert_id = ? AND channel_id = ? AND state <> ?",
                    [RETRYING if retry_at else FAILED, error[:MAX_ERROR_LENGTH], retry_at, alert_id, channel_id,
                     SENT])


# --- reads ------------------------------------------------------------------------------------------


def recent(db: Database, limit: int = 50, now: datetime | None = None) -> pd.DataFrame:
    """The latest alerts, one row per channel, newest first: what was raised and how its delivery went.

    Columns: Raised, Rule, Account, Account ID, Alert, Channel, Outcome (sent, sending, waiting,
    retrying, failed, no channel), Attempts, Last error, Sent, Next attempt, Link, Raised by.
    """
    return db.frame(
        'SELECT a.raised_at AS "Raised", a.rule AS "Rule", coalesce(acc.name, nullif(a.shop_id, \'\')) AS "Account", '
        'a.shop_id AS "Account ID", a.title AS "Alert", d.channel AS "Channel", '
        "CASE WHEN d.alert_id IS NULL THEN 'no channel' WHEN d.state IN (?, ?) THEN d.state "
        "WHEN d.leased_until > ? THEN 'sending' WHEN d.state = ? THEN 'retrying' ELSE 'waiting' END AS \"Outcome\", "
        'coalesce(d.attempts, 0) AS "Attempts", d.last_error AS "Last error", d.sent_at AS "Sent", '
        "CASE WHEN d.state IN (?, ?) THEN d.next_attempt_at END AS \"Next attempt\", a.link AS \"Link\", "
        'a.raised_by AS "Raised by" '
        "FROM (SELECT * FROM alerts ORDER BY raised_at DESC, id DESC LIMIT ?) a "
        "LEFT JOIN alert_deliveries d ON d.alert_id = a.id LEFT JOIN accounts acc ON acc.shop_id = a.shop_id "
        "ORDER BY a.raised_at DESC, a.id DESC, d.channel_id",
        [SENT, FAILED, now or utcnow(), RETRYING, CLAIMED, RETRYING, limit])


def deliveries(db: Database, alert_id: int) -> list[dict[str, Any]]:
    """An alert's deliveries as stored (state, attempts, last_error, next_attempt_at, sent_at...)."""
    with db.reader() as con:
        cur = con.execute("SELECT * FROM alert_deliveries WHERE alert_id = ? ORDER BY channel_id", [alert_id])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def alerts_of(db: Database, rule: str | None = None) -> list[dict[str, Any]]:
    """Raised alerts (of one rule, or all), oldest first, as stored."""
    with db.reader() as con:
        cur = con.execute("SELECT * FROM alerts WHERE ? IS NULL OR rule = ? ORDER BY id", [rule, rule])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- what the rules look at ---------------------------------------------------------------------

_RETURN_COLUMNS = ("r.shop_id, r.return_id, r.type, r.reason_text, r.refund_total, r.refund_currency, r.due_by, "
                   "coalesce(a.name, r.shop_id) AS account, r.kind")


def _records(con: Any, sql: str, params: Sequence) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def due_within(db: Database, now: datetime, hours: int) -> list[dict[str, Any]]:
    """Open returns the seller can still decide whose deadline falls within `hours` from now, soonest first."""
    # open and due before now + hours (the domain's overdue test moved ahead), and not yet past
    ahead, params = domain.deadline_sql(domain.OVERDUE, "r", now + timedelta(hours=hours))
    sql = (f"SELECT {_RETURN_COLUMNS} FROM returns r LEFT JOIN accounts a ON a.shop_id = r.shop_id "
           f"WHERE {ahead} AND r.due_by >= ? AND {domain.stored_can_decide_sql('r')} ORDER BY r.due_by, r.shop_id, "
           "r.return_id LIMIT ?")
    with db.reader() as con:
        return _records(con, sql, [*params, now, MAX_CANDIDATES])


def overdue_since(db: Database, now: datetime, hours: int) -> list[dict[str, Any]]:
    """Overdue returns (domain.OVERDUE) the seller can still decide, whose deadline passed within `hours`."""
    late, params = domain.deadline_sql(domain.OVERDUE, "r", now)
    sql = (f"SELECT {_RETURN_COLUMNS} FROM returns r LEFT JOIN accounts a ON a.shop_id = r.shop_id "
           f"WHERE {late} AND r.due_by >= ? AND {domain.stored_can_decide_sql('r')} ORDER BY r.due_by, r.shop_id, "
           "r.return_id LIMIT ?")
    with db.reader() as con:
        return _records(con, sql, [*params, now - timedelta(hours=hours), MAX_CANDIDATES])


# the authorization that ends the account's access: the refresh token's, or the access token's
# when there is no refresh token (the same reading as Account.status_at)
_AUTH_EXPIRY = ("CASE WHEN refresh_token_enc IS NOT NULL THEN refresh_token_expires_at "
                "ELSE access_token_expires_at END")


def expiring_authorizations(db: Database, now: datetime, until: datetime) -> list[dict[str, Any]]:
    """Enabled, valid accounts whose authorization runs out between now and `until`: shop_id, name, expires_at."""
    with db.reader() as con:
        return _records(con, f"SELECT shop_id, name, {_AUTH_EXPIRY} AS expires_at FROM accounts "
                             f"WHERE enabled AND auth_state = 'ok' AND {_AUTH_EXPIRY} >= ? AND {_AUTH_EXPIRY} < ? "
                             "ORDER BY shop_id", [now, until])


def revoked_authorizations(db: Database) -> list[dict[str, Any]]:
    """Enabled accounts whose authorization TikTok refused (status Invalid): shop_id, name, auth_error."""
    with db.reader() as con:
        return _records(con, "SELECT shop_id, name, auth_error FROM accounts WHERE enabled AND auth_state = 'invalid' "
                             "ORDER BY shop_id", [])


def failing_syncs(db: Database, times: int) -> list[dict[str, Any]]:
    """Shops whose syncs failed at least `times` times in a row since their last successful one.

    Per shop: shop_id, name, first_run_id (the streak's first failure: the streak's identity),
    failures, last_error, last_at.
    """
    with db.reader() as con:
        return _records(con, """
            WITH last_ok AS (SELECT shop_id, max(id) FILTER (WHERE state = 'ok') AS ok_id FROM sync_runs
                             GROUP BY shop_id)
            SELECT s.shop_id, coalesce(any_value(a.name), s.shop_id) AS name, min(s.id) AS first_run_id,
                   count(*) AS failures, arg_max(s.error, s.id) AS last_error,
                   max(coalesce(s.finished_at, s.started_at)) AS last_at
            FROM sync_runs s JOIN last_ok o ON o.shop_id = s.shop_id LEFT JOIN accounts a ON a.shop_id = s.shop_id
            WHERE s.state = 'failed' AND s.id > coalesce(o.ok_id, -1)
            GROUP BY s.shop_id HAVING count(*) >= ? ORDER BY s.shop_id""", [times])
