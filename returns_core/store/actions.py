"""Decisions sent to TikTok (approve, reject), one row per idempotency key.

A decision is recorded as sent before the request goes out, and finished with TikTok's answer.
The key makes a resend safe: TikTok applies one key at most once, and a key already answered
"ok" is never sent again. These run inside the caller's transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

import duckdb

from returns_core.store.db import StoreError


class ActionInFlightError(StoreError):
    """Another send of the same confirmation was recorded first and has no answer yet."""


class SentAction(NamedTuple):
    """A decision as recorded: where it got to, TikTok's answer in words, and the request sent."""

    state: str  # "sent", "ok" or "failed"
    result: str | None
    request: Any  # the request as sent (decoded JSON)


def find(con: duckdb.DuckDBPyConnection, idempotency_key: str) -> SentAction | None:
    """The decision recorded under this key, or None."""
    # fetch to the end: a half-read result blocks the connection for the caller's next step
    rows = con.execute("SELECT state, result, request FROM actions WHERE idempotency_key = ?",
                       [idempotency_key]).fetchall()
    return SentAction(rows[0][0], rows[0][1], json.loads(rows[0][2] or "null")) if rows else None


def record_sent(con: duckdb.DuckDBPyConnection, idempotency_key: str, *, shop_id: str, return_id: str, action: str,
                decision: str, request: dict, actor: str, at: datetime) -> None:
    """Record a decision as being sent; ActionInFlightError when its key is recorded already."""
    try:
        con.execute(
            "INSERT INTO actions (idempotency_key, shop_id, return_id, action, decision, request, state, "
            "actor, created_at) VALUES (?, ?, ?, ?, ?, ?, 'sent', ?, ?)",
            [idempotency_key, shop_id, return_id, action, decision, json.dumps(request), actor, at])
    except duckdb.ConstraintException:
        raise ActionInFlightError("This action is already being sent; wait for its result.") from None


def finish(con: duckdb.DuckDBPyConnection, idempotency_key: str, state: str, message: str, at: datetime) -> None:
    """Record TikTok's answer to a decision: "ok" or "failed", in words."""
    con.execute("UPDATE actions SET state = ?, result = ?, finished_at = ? WHERE idempotency_key = ?",
                [state, message, at, idempotency_key])
