"""What managers do to a return: move its Status by hand, note, sign off, and act on TikTok.

The decisions are made here; the store writes them. Every change is appended to `history` with
who and when, in the same transaction as the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from returns_core import domain
from returns_core.accounts import Account, AccountError
from returns_core.store import actions, history
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import ReturnState, return_state, review_states, set_review, set_status
from returns_core.tiktok import errors

MAX_NOTE_LENGTH = 2000
MAX_COMMENT_LENGTH = 500  # TikTok's limit on a reject comment


class WorkflowError(ValueError):
    """A refused change, with a message for the user."""


def _actor(actor: str | None) -> str:
    name = (actor or "").strip()
    if not name:
        raise WorkflowError("Say who you are first (your name in the sidebar, or sign in).")
    return name[:200]


def _stored(state: ReturnState | None, return_id: str) -> ReturnState:
    """The return's state, or the refusal to change a return the store does not hold."""
    if state is None:
        raise WorkflowError(f"Return {return_id} is not in the store; sync the account first.")
    return state


def change_status(db: Database, shop_id: str, return_id: str, target: str, actor: str, note: str | None = None) -> None:
    """Move Status by hand along the allowed steps; closing needs TikTok's status to agree."""
    who = _actor(actor)
    with db.writer() as con:
        current = _stored(return_state(con, shop_id, return_id), return_id)
        problem = domain.manual_transition_error(current.status, target, current.marketplace_status)
        if problem:
            raise WorkflowError(problem)
        set_status(con, shop_id, return_id, target, domain.is_mismatch(target, current.marketplace_status))
        history.append(con, [history.entry(shop_id, return_id, who, "status", old=current.status, new=target,
                                           note=_clean_note(note))])


def _clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if len(text) > MAX_NOTE_LENGTH:
        raise WorkflowError(f"The note is too long ({len(text)} characters; at most {MAX_NOTE_LENGTH}).")
    return text or None


def add_note(db: Database, shop_id: str, return_id: str, actor: str, text: str) -> None:
    """Append a free-text note to a return's history."""
    who = _actor(actor)
    note = _clean_note(text)
    if not note:
        raise WorkflowError("The note is empty.")
    with db.writer() as con:
        _stored(return_state(con, shop_id, return_id), return_id)
        history.append(con, [history.entry(shop_id, return_id, who, "note", note=note)])


def sign_off(db: Database, keys: Iterable[tuple[str, str]], outcome: str, actor: str,
             note: str | None = None) -> int:
    """Record a manager's review outcome on Accepted returns, all or nothing. Returns how many."""
    who = _actor(actor)
    if outcome not in domain.REVIEW_OUTCOMES:
        raise WorkflowError(f"Unknown outcome {outcome!r}; choose one of {', '.join(domain.REVIEW_OUTCOMES)}.")
    text = _clean_note(note)
    keys = list(dict.fromkeys(keys))
    if not keys:
        raise WorkflowError("Select at least one return to sign off.")
    now = utcnow()
    with db.writer() as con:
        found = review_states(con, keys)
        if len(found) != len(keys):
            raise WorkflowError("Some selected returns are no longer in the store; refresh and try again.")
        not_accepted = [r.return_id for r in found if r.status != domain.ACCEPTED]
        if not_accepted:
            raise WorkflowError(
                f"Only Accepted returns can be signed off; {len(not_accepted)} selected are not "
                f"(e.g. {not_accepted[0]})."
            )
        set_review(con, keys, outcome, who, now)
        history.append(con, [history.entry(r.shop_id, r.return_id, who, "sign_off", old=r.review_outcome, new=outcome,
                                           note=text, at=now) for r in found])
    return len(found)


# --- Actions on TikTok ----------------------------------------------------------------------


@dataclass(frozen=True)
class ActionPlan:
    """Exactly what will be sent to TikTok, shown to the user before they confirm."""

    shop_id: str
    return_id: str
    action: str  # "approve" | "reject"
    decision: str
    reject_reason: str | None = None
    comment: str | None = None
    buyer_keep_item: bool | None = None
    partial_refund: dict | None = None
    idempotency_key: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def request(self) -> dict:
        """The method, path and body TikTok receives (plus the idempotency key in the query)."""
        body: dict = {"decision": self.decision}
        if self.action == "approve":
            if self.buyer_keep_item is not None:
                body["buyer_keep_item"] = self.buyer_keep_item
            if self.partial_refund:
                body["partial_refund"] = self.partial_refund
        else:
            body["reject_reason"] = self.reject_reason
            if self.comment:
                body["comment"] = self.comment
        return {
            "method": "POST",
            "path": f"/return_refund/202309/returns/{self.return_id}/{self.action}",
            "query": {"idempotency_key": self.idempotency_key},
            "body": body,
        }


def plan_action(db: Database, shop_id: str, return_id: str, decision: str, *, reject_reason: str | None = None,
                comment: str | None = None, partial_refund: dict | None = None,
                buyer_keep_item: bool | None = None) -> ActionPlan:
    """Check a decision fits the return as we last saw it, and build what will be sent."""
    with db.reader() as con:
        _, marketplace_status, return_type, next_action = _stored(return_state(con, shop_id, return_id), return_id)
    approve, reject = domain.seller_decisions(return_type, marketplace_status, next_action)
    if decision not in approve + reject:
        fits = ", ".join(approve + reject) or "none (TikTok is not waiting for the seller)"
        raise WorkflowError(f"{decision} does not fit this return ({marketplace_status}); decisions that fit: {fits}.")
    action = "approve" if decision in approve else "reject"
    comment = (comment or "").strip() or None
    if action == "reject" and not reject_reason:
        raise WorkflowError("Choose a reject reason (they are fetched live from TikTok).")
    if comment and len(comment) > MAX_COMMENT_LENGTH:
        raise WorkflowError(f"The comment is too long ({len(comment)} characters; at most {MAX_COMMENT_LENGTH}).")
    if decision == "OFFER_PARTIAL_REFUND":
        amount = domain.to_decimal((partial_refund or {}).get("amount"))
        if amount is None or amount <= 0:
            raise WorkflowError("A partial refund needs a positive amount.")
        if not (partial_refund or {}).get("currency"):
            raise WorkflowError("A partial refund needs its currency.")
    return ActionPlan(shop_id, return_id, action, decision, reject_reason=reject_reason if action == "reject" else None,
                      comment=comment if action == "reject" else None,
                      buyer_keep_item=buyer_keep_item if action == "approve" else None,
                      partial_refund=partial_refund if decision == "OFFER_PARTIAL_REFUND" else None)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    marketplace_status: str | None = None
    repeated: bool = False  # the same idempotency key was already sent successfully: nothing sent again


_BUSINESS_WORDS = {
    errors.ALREADY_DECIDED: "TikTok says this return was already decided, so it cannot be changed now.",
    errors.DECISION_NOT_FIT: (
        "TikTok says this decision does not fit the return's type or state; re-sync and pick again."
    ),
    errors.QUICK_REFUND_ACTIVE: "Quick refund is active on this return, so the package cannot be rejected.",
    errors.NO_PERMISSION: "TikTok says this shop has no permission for this return (wrong shop?).",
    errors.REASON_INVALID: "TikTok no longer accepts that reject reason; reload the reasons and choose again.",
}


def explain(exc: BaseException) -> str:
    """A failed action in words a manager can act on (one line, no secrets).

    Only what is particular to a decision sent to TikTok is said here; every other failure is
    worded by explain.explain_error, the one explainer for talking to TikTok.
    """
    from returns_core.explain import explain_error

    if isinstance(exc, errors.TikTokError) and exc.code in _BUSINESS_WORDS:
        return f"{_BUSINESS_WORDS[exc.code]} ({exc.code})"
    if isinstance(exc, errors.RateLimitedError | errors.ServerError | errors.TransportError
                  | errors.MalformedResponseError):
        # TikTok may or may not have applied it; the same key makes a retry safe either way
        return (f"TikTok could not be reached reliably, so the result is unknown. Retrying is safe: the same "
                f"confirmation is applied at most once. ({exc})")
    return explain_error(exc)


def reject_reasons(db: Database, account: Account, return_id: str, *, transport=None) -> list[dict]:
    """The reasons TikTok accepts now for rejecting this return, asked live (they follow the return's state).

    Each is TikTok's {"name": its key, "text": its words}. Raises WorkflowError, in words, when
    TikTok cannot be asked or refuses.
    """
    # imported here: the session pulls in the HTTP client, which the other decisions never need
    from returns_core.tiktok_session import tiktok_session

    try:
        with tiktok_session(db, account, transport=transport) as client:
            reasons = client.get_reject_reasons(return_id)
    except (errors.TikTokError, AccountError) as exc:
        raise WorkflowError(f"Could not fetch the reject reasons: {explain(exc)}") from None
    return [r for r in reasons if isinstance(r, dict) and r.get("name")]


def send_action(db: Database, account: Account, plan: ActionPlan, actor: str, *, transport=None) -> ActionResult:
    """Send an approve/reject once per idempotency key, record it, then re-sync the return."""
    from returns_core.sync import ReturnNotFoundError, sync_return
    from returns_core.tiktok_session import tiktok_session

    who = _actor(actor)
    if account.shop_id != plan.shop_id:
        raise WorkflowError(f"Return {plan.return_id} belongs to shop {plan.shop_id}, not to {account.name}.")
    key = plan.idempotency_key
    with db.writer() as con:
        sent = actions.find(con, key)
        if sent and sent.request != plan.request:
            # one key, one request: TikTok would answer the first one's result for a different decision
            raise WorkflowError("This confirmation was already used for a different request; review it again.")
        if sent and sent.state == "ok":
            return ActionResult(True, sent.result or "Already sent.", _marketplace_status(db, plan), repeated=True)
        if sent is None:
            try:
                actions.record_sent(con, key, shop_id=plan.shop_id, return_id=plan.return_id, action=plan.action,
                                    decision=plan.decision, request=plan.request, actor=who, at=utcnow())
            except actions.ActionInFlightError as exc:
                raise WorkflowError(str(exc)) from None
    try:
        # a resend after a failure reuses the key, so TikTok acts at most once; a refused
        # authorization marks the account Invalid, as a sync would
        with tiktok_session(db, account, transport=transport) as client:
            if plan.action == "approve":
                client.approve_return(plan.return_id, plan.decision, idempotency_key=key,
                                      buyer_keep_item=plan.buyer_keep_item, partial_refund=plan.partial_refund)
            else:
                client.reject_return(plan.return_id, plan.decision, plan.reject_reason or "",
                                     idempotency_key=key, comment=plan.comment)
    except (errors.TikTokError, AccountError) as exc:
        message = explain(exc)
        _finish_action(db, plan, who, "failed", message)
        return ActionResult(False, message)
    label = domain.DECISION_LABELS.get(plan.decision, plan.decision)
    try:
        sync_return(db, account, plan.return_id, transport=transport)
    except (errors.TikTokError, AccountError, ReturnNotFoundError) as exc:
        # TikTok accepted the decision: record it as sent even though the re-sync failed
        reason = explain(exc)
        message = f"{label}: sent. The re-sync afterwards failed ({reason}); re-sync the return to see its status."
        _finish_action(db, plan, who, "ok", message)
        return ActionResult(True, message, _marketplace_status(db, plan))
    now_status = _marketplace_status(db, plan)
    message = f"{label}: sent. TikTok now shows {now_status}."
    _finish_action(db, plan, who, "ok", message)
    return ActionResult(True, message, marketplace_status=now_status)


def _marketplace_status(db: Database, plan: ActionPlan) -> str | None:
    """TikTok's status of the return as last synced."""
    with db.reader() as con:
        state = return_state(con, plan.shop_id, plan.return_id)
    return state.marketplace_status if state else None


def _finish_action(db: Database, plan: ActionPlan, actor: str, state: str, message: str) -> None:
    """Record TikTok's answer to a decision, and the decision in the return's history."""
    with db.writer() as con:
        actions.finish(con, plan.idempotency_key, state, message, utcnow())
        history.append(con, [history.entry(plan.shop_id, plan.return_id, actor, "action",
                                           new=f"{plan.decision}: {state}", note=message, details=plan.request)])
