"""The manager workflow in words: the review queue, reconciliation, re-syncs, and one return's history.

No SQL here: the rows come from `store.returns` (queue_rows, reconciliation_rows, counts and
keys) and `store.history`, which filter exactly like the grid. This module turns them into the
tables the pages show: ages, deadline states (domain.deadline_state), outcomes and problems in words.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

import pandas as pd

from returns_core import domain
from returns_core.filters import ReturnFilters
from returns_core.spreadsheet import safe_frame
from returns_core.store import history, records
from returns_core.store.db import Database, utcnow
from returns_core.store.returns import RESYNC_LIMIT, find_return, queue_rows, reconciliation_rows

NOT_SIGNED_OFF = ""  # stands for "not signed off yet" among review outcomes (as in ReturnFilters)
NOT_SIGNED_OFF_LABEL = "Not signed off"

HISTORY_KINDS: dict[str, str] = {
    "created": "First seen (sync)",
    "status": "Status",
    "marketplace_status": "TikTok status",
    "sign_off": "Sign-off",
    "note": "Note",
    "action": "Sent to TikTok",
    "rule": "Decision rule",  # a rule flagged the return for a person (returns_core.rules)
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


def outcome_label(outcome: str | None) -> str:
    """A stored review outcome in words ("Not signed off" when empty)."""
    if not outcome:
        return NOT_SIGNED_OFF_LABEL
    return domain.REVIEW_OUTCOMES.get(outcome, outcome)


# --- the buyer's own words and evidence (TikTok's records) --------------------------------------


@dataclass(frozen=True)
class Video:
    url: str
    cover: str | None
    seconds: int | None


@dataclass(frozen=True)
class BuyerEvidence:
    """What the buyer said and showed, from TikTok's records of the return (Get Return Records)."""

    comments: tuple[str, ...]
    photos: tuple[str, ...]
    videos: tuple[Video, ...]
    fetched_at: datetime | None  # None: the records were never fetched

    @property
    def empty(self) -> bool:
        return not (self.comments or self.photos or self.videos)


def web_url(value: object) -> str | None:
    """An http(s) address from TikTok, or None: nothing else may become a link or an image on the page."""
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def buyer_evidence(db: Database, shop_id: str, return_id: str) -> BuyerEvidence:
    """The buyer's comments, photos and videos in the records as last fetched (the buyer's records only)."""
    payloads, fetched_at = records.record_payloads(db, shop_id, return_id)
    comments: list[str] = []
    photos: list[str] = []
    videos: list[Video] = []
    for record in payloads:
        # TikTok's own example spells the role "Buyer"
        if str(record.get("role") or "").upper() != "BUYER":
            continue
        note = record.get("note")
        if isinstance(note, str) and note.strip() and note.strip() not in comments:
            comments.append(note.strip())
        photos += [url for image in record.get("images") or () if isinstance(image, dict)
                   and (url := web_url(image.get("url")))]
        for video in record.get("videos") or ():
            if isinstance(video, dict) and (url := web_url(video.get("url"))):
                millis = video.get("duration_millis")
                seconds = round(millis / 1000) if isinstance(millis, int | float) and millis > 0 else None
                videos.append(Video(url, web_url(video.get("cover")), seconds))
    return BuyerEvidence(tuple(comments), tuple(dict.fromkeys(photos)), tuple(videos), fetched_at)


def items_with_quantity(items: pd.DataFrame) -> pd.DataFrame:
    """A return's line items (store.returns.return_line_items) one row per SKU, with how many: TikTok sends one
    line item per unit and no quantity (docs/tiktok_api.md 4.1). Refund is the SKU's total, still Decimal."""
    keys = ["Image", "Product", "Variant", "SKU", "SKU ID", "Currency"]
    if items.empty:
        return pd.DataFrame(columns=[*keys, "Qty", "Refund"])
    grouped = items.groupby(keys, dropna=False, sort=False)
    out = grouped.size().rename("Qty").to_frame().join(
        grouped["Refund"].agg(lambda refunds: sum((r for r in refunds if r is not None and r == r), Decimal(0))))
    return out.reset_index()


# --- review queue -----------------------------------------------------------------------------

QUEUE_COLUMNS: tuple[str, ...] = (
    "Marketplace Return ID", "Account ID", "Type", "Reason", "Refund Total", "Currency", "Created At", "Age",
    "Due By", "Deadline", "Outcome", "Signed Off By", "Signed Off At",
)


def queue_filters(shop_ids: Iterable[str] = (), outcomes: Iterable[str] = ()) -> ReturnFilters:
    """Accepted returns of these accounts (all when empty) with these outcomes ("" = not signed off)."""
    # returns only: an approved cancellation is an order that never shipped, nothing to sign off
    return ReturnFilters(shop_ids=tuple(shop_ids), kinds=(domain.RETURN_KIND,), statuses=(domain.ACCEPTED,),
                         review_outcomes=tuple(outcomes))


def queue_page(db: Database, filters: ReturnFilters, *, limit: int = 50, offset: int = 0,
               now: datetime | None = None) -> pd.DataFrame:
    """One page of the review queue, oldest first, with Age and the deadline state; Refund Total stays Decimal."""
    now = now or utcnow()
    raw = queue_rows(db, filters, limit=limit, offset=offset, now=now)
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
        "Deadline": [domain.deadline_state(s, d, now) for s, d in zip(raw["status"], raw["due_by"], strict=True)],
        "Outcome": [outcome_label(o) for o in raw["review_outcome"]],
        "Signed Off By": raw["reviewed_by"],
        "Signed Off At": raw["reviewed_at"],
    }, columns=list(QUEUE_COLUMNS))


# --- reconciliation ---------------------------------------------------------------------------

RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "Marketplace Return ID", "Account ID", "Type", "Status", "Marketplace Status", "Expected Status", "Problem",
    "Updated At", "Last Synced At",
)


def reconciliation_filters(shop_ids: Iterable[str] = ()) -> ReturnFilters:
    """Every mismatch and unmapped status of these accounts (all when empty)."""
    return ReturnFilters(shop_ids=tuple(shop_ids), flagged=True)


def problem_text(status: str | None, marketplace_status: str | None, unmapped: bool,
                 kind: str | None = domain.RETURN_KIND) -> str:
    """Why a return (or cancellation) is listed for reconciliation, in words."""
    if unmapped:
        return (f"Unmapped: TikTok's status {marketplace_status} is not in the status mapping; "
                "Status keeps its last known value.")
    expected = domain.mapped_status(marketplace_status, kind)
    return f"Mismatch: Status is {status or 'empty'}, but TikTok's {marketplace_status} means {expected}."


def reconciliation_page(db: Database, filters: ReturnFilters, *, limit: int = 25, offset: int = 0) -> pd.DataFrame:
    """One page of flagged returns: unmapped first, then the least recently synced, with the problem in words."""
    raw = reconciliation_rows(db, filters, limit=limit, offset=offset)
    rows = list(zip(raw["status"], raw["marketplace_status"], raw["unmapped"], raw["kind"], strict=True))
    return pd.DataFrame({
        "Marketplace Return ID": raw["return_id"],
        "Account ID": raw["shop_id"],
        "Type": raw["type"],
        "Status": raw["status"],
        "Marketplace Status": raw["marketplace_status"],
        "Expected Status": [domain.mapped_status(m, k) or "" for _, m, _, k in rows],
        "Problem": [problem_text(s, m, bool(u), k) for s, m, u, k in rows],
        "Updated At": raw["updated_at"],
        "Last Synced At": raw["last_synced_at"],
    }, columns=list(RECONCILIATION_COLUMNS))


class ResyncOutcome(Enum):
    """What re-syncing one flagged return came to."""

    FIXED = "fixed"  # TikTok's status now agrees and is mapped: no longer flagged
    STILL_FLAGGED = "still flagged"  # re-synced, but still a mismatch or unmapped
    FAILED = "failed"  # TikTok (or the store) could not give the return again


@dataclass(frozen=True)
class ResyncResult:
    """What re-syncing one return did: its outcome, and the outcome in words."""

    shop_id: str
    return_id: str
    outcome: ResyncOutcome
    message: str

    @property
    def ok(self) -> bool:
        """True when the return was re-synced (fixed or not)."""
        return self.outcome is not ResyncOutcome.FAILED


def resync_returns(db: Database, keys: Iterable[Key], *, transport=None) -> list[ResyncResult]:
    """Fetch each return again from TikTok (at most RESYNC_LIMIT); a failure never stops the others."""
    # imported here: the sync pulls in the HTTP client, which the queue and history never need
    from returns_core.accounts import AccountError, get_account
    from returns_core.explain import explain_error
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
            results.append(ResyncResult(shop_id, return_id, ResyncOutcome.FAILED, explain_error(exc)))
            continue
        results.append(_resync_outcome(db, shop_id, return_id))
    return results


def _resync_outcome(db: Database, shop_id: str, return_id: str) -> ResyncResult:
    """Whether a re-synced return is still flagged, read back from the store."""
    row = find_return(db, return_id, shop_id)
    if row is None:
        return ResyncResult(shop_id, return_id, ResyncOutcome.FAILED, "The return is no longer in the store.")
    if row["unmapped"] or row["mismatch"]:
        why = problem_text(row["status"], row["marketplace_status"], row["unmapped"])
        return ResyncResult(shop_id, return_id, ResyncOutcome.STILL_FLAGGED, f"Re-synced; still flagged. {why}")
    return ResyncResult(shop_id, return_id, ResyncOutcome.FIXED,
                        f"Re-synced: {row['status']} / {row['marketplace_status']}.")


# --- one return -------------------------------------------------------------------------------

HISTORY_COLUMNS: tuple[str, ...] = ("When (UTC)", "Who", "What", "From", "To", "Note")


def _history_value(kind: str, value: str | None) -> str | None:
    """A history value in words: sign-offs store outcome codes."""
    if kind == "sign_off" and value:
        return domain.REVIEW_OUTCOMES.get(value, value)
    return value


def history_frame(db: Database, shop_id: str, return_id: str) -> pd.DataFrame:
    """One return's history, newest first, in words."""
    rows = history.of_return(db, shop_id, return_id)
    return pd.DataFrame(
        [(at, who, HISTORY_KINDS.get(kind, kind), _history_value(kind, old), _history_value(kind, new), note)
         for at, who, kind, old, new, note, _ in rows],
        columns=list(HISTORY_COLUMNS),
    )


def history_csv(db: Database, shop_id: str, return_id: str) -> str:
    """The history as CSV (ISO 8601 UTC times, plus the raw details such as the request sent)."""
    rows = history.of_return(db, shop_id, return_id)
    frame = pd.DataFrame(
        [(shop_id, return_id, at.strftime("%Y-%m-%dT%H:%M:%SZ"), who, HISTORY_KINDS.get(kind, kind),
          _history_value(kind, old), _history_value(kind, new), note,
          json.dumps(json.loads(details), sort_keys=True) if details else None)
         for at, who, kind, old, new, note, details in rows],
        columns=["Account ID", "Marketplace Return ID", "When (UTC)", "Who", "What", "From", "To", "Note", "Details"],
    )
    out = io.StringIO()
    safe_frame(frame).to_csv(out, index=False)  # notes and names never run as formulas in a spreadsheet
    return out.getvalue()
