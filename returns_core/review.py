"""Queries behind the manager workflow: the review queue, reconciliation, and one return's history.

Built on `queries.where_clause`, so the queue and the reconciliation list filter exactly like the
grid. Paging, ordering and counting run in DuckDB; only one page ever reaches pandas.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from returns_core import domain
from returns_core.queries import MAX_PAGE_SIZE, FilterError, ReturnFilters, find_return, where_clause
from returns_core.store.db import Database, utcnow

NOT_SIGNED_OFF = ""  # stands for "not signed off yet" among review outcomes (as in ReturnFilters)
NOT_SIGNED_OFF_LABEL = "Not signed off"
OVERDUE = "Overdue"
DUE_SOON = "Due soon"
RESYNC_LIMIT = 50  # "re-sync all listed" stops here: each re-sync is one call to TikTok

HISTORY_KINDS: dict[str, str] = {
    "created": "First seen (sync)",
    "status": "Status",
    "marketplace_status": "TikTok status",
    "sign_off": "Sign-off",
    "note": "Note",
    "action": "Sent to TikTok",
}

Key = tuple[str, str]  # (shop_id, return_id)


# --- small formatters -------------------------------------------------------------------------


def format_age(seconds: float | int | None) -> str:
    """A duration as "3 d 4 h", "5 h 12 min" or "7 min"; empty when unknown."""
    if seconds is None or pd.isna(seconds):
        return ""
    minutes = max(int(seconds), 0) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def deadline_state(due_by: datetime | None, now: datetime | None = None) -> str:
    """"Overdue", "Due soon" (within DUE_SOON_HOURS) or "" for a Due By time (naive UTC)."""
    if due_by is None or pd.isna(due_by):
        return ""
    now = now or utcnow()
    if due_by < now:
        return OVERDUE
    if due_by < now + timedelta(hours=domain.DUE_SOON_HOURS):
        return DUE_SOON
    return ""


def outcome_label(outcome: str | None) -> str:
    """A stored review outcome in words ("Not signed off" when empty)."""
    if not outcome:
        return NOT_SIGNED_OFF_LABEL
    return domain.REVIEW_OUTCOMES.get(outcome, outcome)


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise FilterError(f"Page size must be between 1 and {MAX_PAGE_SIZE}.")
    if offset < 0:
        raise FilterError("Page offset cannot be negative.")


# --- review queue -----------------------------------------------------------------------------

QUEUE_COLUMNS: tuple[str, ...] = (
    "Marketplace Return ID", "Account ID", "Type", "Reason", "Refund Total", "Currency", "Created At", "Age",
    "Due By", "Deadline", "Outcome", "Signed Off By", "Signed Off At",
)


def queue_filters(shop_ids: Iterable[str] = (), outcomes: Iterable[str] = ()) -> ReturnFilters:
    """Accepted returns of these accounts (all when empty) with these outcomes ("" = not signed off)."""
    return ReturnFilters(shop_ids=tuple(shop_ids), statuses=(domain.ACCEPTED,), review_outcomes=tuple(outcomes))


def queue_page(db: Database, filters: ReturnFilters, *, limit: int = 50, offset: int = 0,
               now: datetime | None = None) -> pd.DataFrame:
    """One page of the review queue, oldest first, with Age and the Due By state."""
    _check_page(limit, offset)
    now = now or utcnow()
    where, params = where_clause(filters, now=now)
    sql = (
        "SELECT r.return_id, r.shop_id, r.type, r.reason_text, r.refund_total, r.refund_currency, r.created_at, "
        "date_diff('second', r.created_at, ?) AS age_seconds, r.due_by, r.review_outcome, r.reviewed_by, "
        f"r.reviewed_at FROM returns r WHERE {where} "
        # oldest first; the keys break ties so that paging is stable
        "ORDER BY r.created_at ASC NULLS LAST, r.shop_id, r.return_id LIMIT ? OFFSET ?"
    )
    with db.reader() as con:
        raw = con.execute(sql, [now, *params, limit, offset]).df()
    return pd.DataFrame({
        "Marketplace Return ID": raw["return_id"],
        "Account ID": raw["shop_id"],
        "Type": raw["type"],
        "Reason": raw["reason_text"],
        "Refund Total": raw["refund_total"],
        "Currency": raw["refund_currency"],
        "Created At": raw["created_at"],
        "Age": [format_age(s) for s in raw["age_seconds"]],
        "Due By": raw["due_by"],
        "Deadline": [deadline_state(d, now) for d in raw["due_by"]],
        "Outcome": [outcome_label(o) for o in raw["review_outcome"]],
        "Signed Off By": raw["reviewed_by"],
        "Signed Off At": raw["reviewed_at"],
    }, columns=list(QUEUE_COLUMNS))


@dataclass(frozen=True)
class QueueCounts:
    """Headline numbers above the queue, under the same filters."""

    total: int
    not_signed_off: int
    overdue: int
    due_soon: int


def queue_counts(db: Database, filters: ReturnFilters, now: datetime | None = None) -> QueueCounts:
    """How many queued returns, how many still need a sign-off, and how many deadlines are close."""
    now = now or utcnow()
    where, params = where_clause(filters, now=now)
    sql = (
        "SELECT count(*), count(*) FILTER (WHERE r.review_outcome IS NULL), "
        "count(*) FILTER (WHERE r.due_by < ?), count(*) FILTER (WHERE r.due_by >= ? AND r.due_by < ?) "
        f"FROM returns r WHERE {where}"
    )
    soon = now + timedelta(hours=domain.DUE_SOON_HOURS)
    with db.reader() as con:
        total, open_, overdue, due_soon = con.execute(sql, [now, now, soon, *params]).fetchone()
    return QueueCounts(total, open_, overdue, due_soon)


# --- reconciliation ---------------------------------------------------------------------------

RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "Marketplace Return ID", "Account ID", "Type", "Status", "Marketplace Status", "Expected Status", "Problem",
    "Updated At", "Last Synced At",
)


def reconciliation_filters(shop_ids: Iterable[str] = ()) -> ReturnFilters:
    """Every mismatch and unmapped status of these accounts (all when empty)."""
    return ReturnFilters(shop_ids=tuple(shop_ids), flagged=True)


def problem_text(status: str | None, marketplace_status: str | None, unmapped: bool) -> str:
    """Why a return is listed for reconciliation, in words."""
    if unmapped:
        return (f"Unmapped: TikTok's status {marketplace_status} is not in the status mapping; "
                "Status keeps its last known value.")
    expected = domain.mapped_status(marketplace_status)
    return f"Mismatch: Status is {status or 'empty'}, but TikTok's {marketplace_status} means {expected}."


def reconciliation_page(db: Database, filters: ReturnFilters, *, limit: int = 25, offset: int = 0) -> pd.DataFrame:
    """One page of flagged returns: unmapped first, then the least recently synced."""
    _check_page(limit, offset)
    where, params = where_clause(filters)
    sql = (
        "SELECT r.return_id, r.shop_id, r.type, r.status, r.marketplace_status, r.unmapped, r.updated_at, "
        f"r.last_synced_at FROM returns r WHERE {where} "
        "ORDER BY r.unmapped DESC, r.last_synced_at ASC, r.shop_id, r.return_id LIMIT ? OFFSET ?"
    )
    with db.reader() as con:
        raw = con.execute(sql, [*params, limit, offset]).df()
    rows = list(zip(raw["status"], raw["marketplace_status"], raw["unmapped"], strict=True))
    return pd.DataFrame({
        "Marketplace Return ID": raw["return_id"],
        "Account ID": raw["shop_id"],
        "Type": raw["type"],
        "Status": raw["status"],
        "Marketplace Status": raw["marketplace_status"],
        "Expected Status": [domain.mapped_status(m) or "" for _, m, _ in rows],
        "Problem": [problem_text(s, m, bool(u)) for s, m, u in rows],
        "Updated At": raw["updated_at"],
        "Last Synced At": raw["last_synced_at"],
    }, columns=list(RECONCILIATION_COLUMNS))


@dataclass(frozen=True)
class FlagCounts:
    """Mismatches and unmapped statuses under the filters."""

    mismatch: int
    unmapped: int

    @property
    def total(self) -> int:
        return self.mismatch + self.unmapped


def flag_counts(db: Database, filters: ReturnFilters) -> FlagCounts:
    """How many returns are flagged, by kind (an unmapped return counts once, as unmapped)."""
    where, params = where_clause(filters.with_(flagged=True))
    sql = (
        "SELECT count(*) FILTER (WHERE r.mismatch AND NOT r.unmapped), count(*) FILTER (WHERE r.unmapped) "
        f"FROM returns r WHERE {where}"
    )
    with db.reader() as con:
        mismatch, unmapped = con.execute(sql, params).fetchone()
    return FlagCounts(mismatch, unmapped)


def flagged_keys(db: Database, filters: ReturnFilters, limit: int = RESYNC_LIMIT) -> list[Key]:
    """(shop_id, return_id) of up to `limit` flagged returns, in the reconciliation list's order."""
    where, params = where_clause(filters.with_(flagged=True))
    sql = (f"SELECT r.shop_id, r.return_id FROM returns r WHERE {where} "
           "ORDER BY r.unmapped DESC, r.last_synced_at ASC, r.shop_id, r.return_id LIMIT ?")
    with db.reader() as con:
        return [(s, r) for s, r in con.execute(sql, [*params, max(0, min(limit, RESYNC_LIMIT))]).fetchall()]


@dataclass(frozen=True)
class ResyncResult:
    """What re-syncing one return did."""

    shop_id: str
    return_id: str
    ok: bool
    message: str


def resync_returns(db: Database, keys: Iterable[Key], *, transport=None) -> list[ResyncResult]:
    """Fetch each return again from TikTok (at most RESYNC_LIMIT); a failure never stops the others."""
    # imported here: the sync pulls in the HTTP client, which the queue and history never need
    from returns_core.accounts import AccountError, explain_error, get_account
    from returns_core.store.db import StoreError
    from returns_core.sync import ReturnNotFoundError, sync_return
    from returns_core.tiktok.errors import TikTokError

    results: list[ResyncResult] = []
    accounts: dict = {}
    for shop_id, return_id in list(dict.fromkeys(keys))[:RESYNC_LIMIT]:
        try:
            if shop_id not in accounts:
                accounts[shop_id] = get_account(db, shop_id)
            sync_return(db, accounts[shop_id], return_id, transport=transport)
        except (TikTokError, AccountError, StoreError, ReturnNotFoundError) as exc:
            results.append(ResyncResult(shop_id, return_id, False, explain_error(exc)))
            continue
        row = find_return(db, return_id, shop_id)
        if row is None:
            results.append(ResyncResult(shop_id, return_id, False, "The return is no longer in the store."))
        elif row["unmapped"] or row["mismatch"]:
            why = problem_text(row["status"], row["marketplace_status"], row["unmapped"])
            results.append(ResyncResult(shop_id, return_id, True, f"Re-synced; still flagged. {why}"))
        else:
            results.append(ResyncResult(shop_id, return_id, True,
                                        f"Re-synced: {row['status']} / {row['marketplace_status']}."))
    return results


# --- one return -------------------------------------------------------------------------------

HISTORY_COLUMNS: tuple[str, ...] = ("When (UTC)", "Who", "What", "From", "To", "Note")


def _history_rows(db: Database, shop_id: str, return_id: str) -> list[tuple]:
    with db.reader() as con:
        return con.execute(
            "SELECT happened_at, actor, kind, old_value, new_value, note, details FROM history "
            "WHERE shop_id = ? AND return_id = ? ORDER BY happened_at DESC, id DESC",
            [shop_id, return_id],
        ).fetchall()


def _history_value(kind: str, value: str | None) -> str | None:
    # sign-offs store outcome codes; show the words
    if kind == "sign_off" and value:
        return domain.REVIEW_OUTCOMES.get(value, value)
    return value


def history_frame(db: Database, shop_id: str, return_id: str) -> pd.DataFrame:
    """One return's history, newest first, in words."""
    rows = _history_rows(db, shop_id, return_id)
    return pd.DataFrame(
        [(at, who, HISTORY_KINDS.get(kind, kind), _history_value(kind, old), _history_value(kind, new), note)
         for at, who, kind, old, new, note, _ in rows],
        columns=list(HISTORY_COLUMNS),
    )


def history_csv(db: Database, shop_id: str, return_id: str) -> str:
    """The history as CSV (ISO 8601 UTC times, plus the raw details such as the request sent)."""
    rows = _history_rows(db, shop_id, return_id)
    frame = pd.DataFrame(
        [(shop_id, return_id, at.strftime("%Y-%m-%dT%H:%M:%SZ"), who, HISTORY_KINDS.get(kind, kind),
          _history_value(kind, old), _history_value(kind, new), note,
          json.dumps(json.loads(details), sort_keys=True) if details else None)
         for at, who, kind, old, new, note, details in rows],
        columns=["Account ID", "Marketplace Return ID", "When (UTC)", "Who", "What", "From", "To", "Note", "Details"],
    )
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue()
