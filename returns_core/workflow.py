"""What managers do to a return: move its Status by hand, note, sign off, and act on TikTok.

The decisions are made here; the store writes them. Every change is appended to `history` with
who and when, in the same transaction as the change.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from returns_core import domain
from returns_core.accounts import Account, AccountError
from returns_core.store import actions, history
from returns_core.store.db import Database, StoreError, utcnow
from returns_core.store.return_writes import ReturnState, return_state, review_states, set_review, set_status
from returns_core.store.returns import find_return
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
        problem = domain.manual_transition_error(current.status, target, current.marketplace_status, current.kind)
        if problem:
            raise WorkflowError(problem)
        set_status(con, shop_id, return_id, target,
                   domain.is_mismatch(target, current.marketplace_status, current.kind))
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
    summary: str = ""  # what the decision does, in plain words, for the confirmation

    @property
    def cancellation(self) -> bool:
        """True when this answers a buyer's cancellation (Approve / Reject Cancellation, not the returns' calls)."""
        return self.decision in domain.CANCELLATION_DECISIONS

    @property
    def request(self) -> dict:
        """The method, path and body TikTok receives (plus the idempotency key in the query)."""
        if self.cancellation:
            # Approve Cancellation takes no body; Reject takes the reason (and a comment), no decision field
            body: dict | None = None
            if self.action == "reject":
                body = {"reject_reason": self.reject_reason}
                if self.comment:
                    body["comment"] = self.comment
            return {"method": "POST", "path": f"/return_refund/202309/cancellations/{self.return_id}/{self.action}",
                    "query": {"idempotency_key": self.idempotency_key}, "body": body}
        body = {"decision": self.decision}
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
                comment: str | None = None, partial_amount: str | None = None, buyer_keep_item: bool | None = None,
                options: DecisionOptions | None = None, reject_reasons: Sequence[Mapping] | None = None
                ) -> ActionPlan:
    """Check a decision before anything is sent, and build exactly what will be sent (with its words).

    The decision must be one TikTok accepts now (`options`, from Get Decision Eligibility) or, when
    TikTok was not asked, one the return's state allows. A reject reason must be one TikTok offered
    (`reject_reasons`, when known). A partial refund amount is read as a person types it and must be
    less than the refund total.
    """
    row = _stored_row(db, shop_id, return_id)
    if options is None:
        options = rule_options(row)
    if decision not in options.decisions:
        fits = ", ".join(options.decisions) or "none (TikTok is not waiting for the seller)"
        raise WorkflowError(f"{decision} does not fit this return ({row['marketplace_status']}); decisions that fit: "
                            f"{fits}.")
    action = "approve" if decision in options.approve else "reject"
    comment = (comment or "").strip() or None
    reason_text = None
    if action == "reject":
        if not reject_reason:
            raise WorkflowError("Choose a reject reason (they are fetched live from TikTok).")
        offered = reject_reasons if reject_reasons is not None else options.reject_reasons.get(decision)
        if offered:
            texts = {r.get("name"): r.get("text") or r.get("name") for r in offered}
            if reject_reason not in texts:
                raise WorkflowError("TikTok does not offer that reject reason for this return; choose one of the list.")
            reason_text = texts[reject_reason]
        if comment and len(comment) > MAX_COMMENT_LENGTH:
            raise WorkflowError(f"The comment is too long ({len(comment)} characters; at most {MAX_COMMENT_LENGTH}).")
    partial, amount = None, None
    if decision == "OFFER_PARTIAL_REFUND":
        amount = parse_amount(partial_amount)
        currency = row["refund_currency"]
        check_partial_refund(amount, row["refund_total"], currency)
        partial = {"amount": f"{amount:.2f}", "currency": currency}
    keep = buyer_keep_item if action == "approve" and decision == "APPROVE_RETURN" and buyer_keep_item else None
    words = in_words(decision, row["refund_total"], row["refund_currency"],
                     partial_amount=amount, buyer_keeps_item=bool(keep),
                     reason_text=reason_text or reject_reason, comment=comment)
    return ActionPlan(shop_id, return_id, action, decision, reject_reason=reject_reason if action == "reject" else None,
                      comment=comment if action == "reject" else None, buyer_keep_item=keep, partial_refund=partial,
                      summary=words)


def _stored_row(db: Database, shop_id: str, return_id: str) -> dict:
    """The return as last synced, or the refusal to decide on a return the store does not hold."""
    row = find_return(db, return_id, shop_id)
    if row is None:
        raise WorkflowError(f"Return {return_id} is not in the store; sync the account first.")
    return row


# --- Amounts typed by a person ------------------------------------------------------------------

_AMOUNT = re.compile(r"(\d+)(?:[.,](\d*))?")
_GROUPED = re.compile(r"\d{1,3}(?:[., \u00a0']\d{3})+(?:[.,]\d*)?")


def parse_amount(text: str | None) -> Decimal:
    """An amount as a person types it: "12.50", "12,50" (a decimal comma) or "12". Anything else is
    refused in words (a WorkflowError), never guessed: "1,234" could be a thousand or one and a bit."""
    raw = (text or "").strip()
    if not raw:
        raise WorkflowError("Enter an amount, such as 12.50.")
    if raw.startswith("-"):
        raise WorkflowError(f"The amount must be more than 0 (got {raw}).")
    match = _AMOUNT.fullmatch(raw)
    if match is None:
        if _GROUPED.fullmatch(raw):
            raise WorkflowError(f"Write {raw} without a thousands separator, such as 1234.50.")
        raise WorkflowError(f"{raw} is not an amount: write it like 12.50 or 12,50.")
    whole, cents = match.groups()
    if cents and len(cents) > 2:
        raise WorkflowError(f"{raw} has {len(cents)} digits after the separator: use at most 2 decimals and no "
                            "thousands separator, such as 1234.50.")
    amount = Decimal(f"{whole}.{cents or '0'}")
    if amount <= 0:
        raise WorkflowError(f"The amount must be more than 0 (got {raw}).")
    return amount


def check_partial_refund(amount: Decimal, refund_total: Decimal | None, currency: str | None) -> None:
    """Refuse a partial refund TikTok would refuse: it must be less than the refund total, in its currency."""
    if refund_total is None or not currency:
        raise WorkflowError("This return's refund total is unknown, so a partial refund cannot be checked; "
                            "re-sync the return.")
    if amount >= refund_total:
        total = money_text(refund_total, currency)
        raise WorkflowError(f"A partial refund must be less than the refund total ({total}); "
                            f"{money_text(amount, currency)} is not. To refund it all, approve instead.")


def money_text(amount: Decimal | None, currency: str | None) -> str:
    """72.49 USD (a dash when unknown)."""
    return "—" if amount is None else f"{amount:,.2f} {currency or ''}".strip()


def in_words(decision: str, refund_total: Decimal | None, currency: str | None, *,
             partial_amount: Decimal | None = None, buyer_keeps_item: bool = False, reason_text: str | None = None,
             comment: str | None = None) -> str:
    """What a decision does, in the words a manager confirms ("Refund 72.49 USD to the buyer and close the request")."""
    total = money_text(refund_total, currency)
    reason = f" The reason TikTok passes on: “{reason_text}”." if reason_text else ""
    note = f" Your comment: “{comment}”." if comment else ""
    words = {
        "APPROVE_REFUND": f"Refund {total} to the buyer and close the request.",
        "APPROVE_RETURN": (f"Refund {total} to the buyer now; the buyer keeps the item and the request closes."
                           if buyer_keeps_item else
                           f"Approve the return: the buyer ships the item back, and {total} is refunded once you "
                           "accept the package."),
        "OFFER_PARTIAL_REFUND": (f"Offer the buyer a partial refund of {money_text(partial_amount, currency)} "
                                 f"(of {total}); the buyer keeps the item. The buyer may accept or refuse the offer."),
        "APPROVE_RECEIVED_PACKAGE": f"Accept the returned package and refund {total} to the buyer.",
        "APPROVE_REPLACEMENT": "Send the buyer a replacement; no money is refunded.",
        "ISSUE_REPLACEMENT_REFUND": f"Refund {total} to the buyer instead of sending a replacement.",
        "REJECT_REFUND": "Reject the refund request: the buyer gets no refund (and may appeal to TikTok).",
        "REJECT_RETURN": "Reject the return request: the buyer gets no refund (and may appeal to TikTok).",
        "REJECT_RECEIVED_PACKAGE": "Reject the returned package: the buyer gets no refund (and may appeal to TikTok).",
        "REJECT_REPLACEMENT": "Reject the replacement request (the buyer may appeal to TikTok).",
        "APPROVE_REQUEST_CANCEL": f"Cancel the order as the buyer asks and refund {total}; nothing ships.",
        "REJECT_REQUEST_CANCEL": "Reject the cancellation: the order stays and ships, and the buyer gets no refund.",
    }.get(decision, domain.DECISION_LABELS.get(decision, decision) + ".")
    return words + (reason + note if decision.startswith("REJECT") else "")


# --- Which decisions TikTok accepts now -----------------------------------------------------------

APPROVE_DECISIONS: tuple[str, ...] = tuple(
    dict.fromkeys(d for approve, _ in domain.DECISIONS_BY_NEXT_ACTION.values() for d in approve))
REJECT_DECISIONS: tuple[str, ...] = tuple(
    dict.fromkeys(d for _, reject in domain.DECISIONS_BY_NEXT_ACTION.values() for d in reject))
# A partial refund offer is not among Get Decision Eligibility's check_decisions; it fits exactly where
# approving the return does (domain.DECISIONS_BY_NEXT_ACTION, SELLER_RESPOND_RETURN), so TikTok's answer
# for that decision stands for it.
_ANSWERED_THROUGH = {"OFFER_PARTIAL_REFUND": "APPROVE_RETURN"}


@dataclass(frozen=True)
class DecisionOptions:
    """The decisions TikTok would accept now for one return, and what is known about them."""

    approve: tuple[str, ...]
    reject: tuple[str, ...]
    # TikTok's reject reasons ({name, text}) per reject decision; none known when TikTok was not asked
    reject_reasons: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)
    # decisions the return's state would allow but TikTok refuses now, with TikTok's reason
    refused: Mapping[str, str] = field(default_factory=dict)
    asked_tiktok: bool = False
    note: str | None = None  # why TikTok was not asked, or what its answer means

    @property
    def decisions(self) -> tuple[str, ...]:
        return self.approve + self.reject


def rule_options(row: Mapping, note: str | None = None) -> DecisionOptions:
    """The decisions the return's state allows as last synced (domain.seller_decisions), without asking TikTok."""
    approve, reject = domain.seller_decisions(row["return_type"], row["marketplace_status"], row["next_action"])
    return DecisionOptions(approve, reject, note=note)


def decision_options(db: Database, account: Account, return_id: str, *, transport=None) -> DecisionOptions:
    """The decisions TikTok accepts now, asked live with Get Decision Eligibility; when TikTok cannot answer
    (an older API version, a failure), those the return's state allows, with a note saying so.

    A return TikTok is not waiting on (by our last sync) is not asked about: nothing fits it.
    """
    from returns_core.tiktok.client import ELIGIBILITY_DECISIONS
    from returns_core.tiktok_session import tiktok_session

    row = _stored_row(db, account.shop_id, return_id)
    rules = rule_options(row)
    if not rules.decisions:
        return rules
    if not account.shop_cipher:  # TikTok's return calls are addressed by it: nothing can be asked or sent
        return rule_options(row, note="TikTok cannot be asked about this shop: the account has no shop cipher. "
                                      "Reconnect it on the Accounts page.")
    # only the decisions of its kind: a return is not asked about cancelling, nor a cancellation about refunds
    cancellation = row.get("kind") == domain.CANCELLATION_KIND
    askable = tuple(d for d in APPROVE_DECISIONS + REJECT_DECISIONS
                    if d in ELIGIBILITY_DECISIONS and (d in domain.CANCELLATION_DECISIONS) == cancellation)
    try:
        with tiktok_session(db, account, transport=transport) as client:
            answers = client.get_decision_eligibility(return_id, askable)
    except (errors.TikTokError, AccountError) as exc:
        return rule_options(row, note=f"TikTok could not say which decisions it accepts now ({explain(exc)}); "
                                      "these follow the return's state as last synced.")
    by_name = {a["decision"]: a for a in answers if isinstance(a, dict) and isinstance(a.get("decision"), str)}

    def eligible(decision: str) -> bool:
        answer = by_name.get(_ANSWERED_THROUGH.get(decision, decision))
        return bool(answer) and answer.get("eligible") is True

    approve = tuple(d for d in APPROVE_DECISIONS if eligible(d))
    reject = tuple(d for d in REJECT_DECISIONS if eligible(d))
    reasons = {d: tuple(r for r in by_name[d].get("available_reject_reasons") or ()
                        if isinstance(r, dict) and r.get("name")) for d in reject}
    refused = {}
    for decision in rules.decisions:
        answer = by_name.get(_ANSWERED_THROUGH.get(decision, decision))
        if answer is not None and answer.get("eligible") is False:
            refused[decision] = str(answer.get("ineligible_reason") or f"code {answer.get('ineligible_code')}")
    note = None
    if not approve and not reject:
        note = "TikTok accepts no decision on this return now: it changed since the last sync. Re-sync it."
    return DecisionOptions(approve, reject, reasons, refused, asked_tiktok=True, note=note)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    marketplace_status: str | None = None
    status: str | None = None  # our Status after the re-sync
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
            return ActionResult(True, sent.result or "Already sent.", *_statuses(db, plan), repeated=True)
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
            if plan.cancellation and plan.action == "approve":
                client.approve_cancellation(plan.return_id, idempotency_key=key)
            elif plan.cancellation:
                client.reject_cancellation(plan.return_id, plan.reject_reason or "", idempotency_key=key,
                                           comment=plan.comment)
            elif plan.action == "approve":
                client.approve_return(plan.return_id, plan.decision, idempotency_key=key,
                                      buyer_keep_item=plan.buyer_keep_item, partial_refund=plan.partial_refund)
            else:
                client.reject_return(plan.return_id, plan.decision, plan.reject_reason or "",
                                     idempotency_key=key, comment=plan.comment)
    except (errors.TikTokError, AccountError) as exc:
        message = explain(exc)
        _finish_action(db, plan, who, "failed", message)
        return ActionResult(False, message)
    label = (domain.RETURNLESS_REFUND_LABEL if plan.buyer_keep_item
             else domain.DECISION_LABELS.get(plan.decision, plan.decision))
    try:
        sync_return(db, account, plan.return_id, transport=transport)
    except (errors.TikTokError, AccountError, ReturnNotFoundError) as exc:
        # TikTok accepted the decision: record it as sent even though the re-sync failed
        reason = explain(exc)
        message = f"{label}: sent. The re-sync afterwards failed ({reason}); re-sync the return to see its status."
        _finish_action(db, plan, who, "ok", message)
        return ActionResult(True, message, *_statuses(db, plan))
    marketplace_status, status = _statuses(db, plan)
    message = (f"{label}: sent. Status is now {status or 'unmapped'}; TikTok now shows "
               f"“{domain.marketplace_status_label(marketplace_status) or 'no status'}”.")
    _finish_action(db, plan, who, "ok", message)
    return ActionResult(True, message, marketplace_status, status)


def _statuses(db: Database, plan: ActionPlan) -> tuple[str | None, str | None]:
    """(TikTok's status, our Status) of the return as last synced."""
    with db.reader() as con:
        state = return_state(con, plan.shop_id, plan.return_id)
    return (state.marketplace_status, state.status) if state else (None, None)


def _finish_action(db: Database, plan: ActionPlan, actor: str, state: str, message: str) -> None:
    """Record TikTok's answer to a decision, and the decision in the return's history."""
    with db.writer() as con:
        actions.finish(con, plan.idempotency_key, state, message, utcnow())
        history.append(con, [history.entry(plan.shop_id, plan.return_id, actor, "action",
                                           new=f"{plan.decision}: {state}", note=message, details=plan.request)])


# --- Several returns at once ---------------------------------------------------------------------

BULK_LIMIT = 50  # one page of the list; each decision is a call to TikTok and a re-sync
APPROVE, REJECT = "approve", "reject"
VERDICTS = {APPROVE: "Approve", REJECT: "Reject"}


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one return of a bulk decision (or why it was left out)."""

    shop_id: str
    return_id: str
    ok: bool
    message: str
    status: str | None = None  # our Status afterwards, when TikTok accepted


@dataclass(frozen=True)
class BulkPlan:
    """One verdict for several returns: a plan (with its own idempotency key) per return that can take it,
    and the returns that cannot, with why. Nothing is sent for those."""

    verdict: str
    plans: tuple[ActionPlan, ...]
    left_out: tuple[RowOutcome, ...] = ()
    reason_text: str | None = None  # the one reject reason, in TikTok's words

    @property
    def summary(self) -> str:
        """The confirmation in plain words, e.g. "Reject 3 returns on TikTok, giving the reason “…”."."""
        count = f"{len(self.plans)} return{'s' if len(self.plans) != 1 else ''}"
        if self.verdict == APPROVE:
            return f"Approve {count} on TikTok, each as the step TikTok waits for (listed below)."
        return f"Reject {count} on TikTok, giving the reason “{self.reason_text}”. The buyers may appeal to TikTok."


def plan_bulk(db: Database, keys: Iterable[tuple[str, str]], verdict: str, *, reject_reason: str | None = None,
              reject_reasons: Sequence[Mapping] | None = None, comment: str | None = None) -> BulkPlan:
    """Plan one verdict (approve, or reject with one reason) for each return, by the return's state as last
    synced: the plain approve (or the reject) of the step TikTok waits for. Returns that wait for nothing
    are left out with why."""
    if verdict not in VERDICTS:
        raise WorkflowError(f"Unknown bulk decision {verdict!r}; choose approve or reject.")
    keys = list(dict.fromkeys(keys))
    if not keys:
        raise WorkflowError("Select at least one return.")
    if len(keys) > BULK_LIMIT:
        raise WorkflowError(f"Decide at most {BULK_LIMIT} returns at once ({len(keys)} selected).")
    if verdict == REJECT and not reject_reason:
        raise WorkflowError("Choose the reject reason for the selected returns.")
    plans, left_out = [], []
    for shop_id, return_id in keys:
        try:
            row = _stored_row(db, shop_id, return_id)
            options = rule_options(row)
            choices = options.approve if verdict == APPROVE else options.reject
            if not choices:
                raise WorkflowError(f"TikTok is not waiting for a seller decision ({row['marketplace_status']}).")
            plans.append(plan_action(db, shop_id, return_id, choices[0], reject_reason=reject_reason,
                                     reject_reasons=reject_reasons, comment=comment, options=options))
        except WorkflowError as exc:
            left_out.append(RowOutcome(shop_id, return_id, False, str(exc)))
    texts = {r.get("name"): r.get("text") for r in reject_reasons or ()}
    reason_text = (texts.get(reject_reason) or reject_reason) if verdict == REJECT else None
    return BulkPlan(verdict, tuple(plans), tuple(left_out), reason_text)


def common_reject_reasons(db: Database, accounts: Mapping[str, Account], keys: Iterable[tuple[str, str]], *,
                          transport=None) -> list[dict]:
    """The reject reasons TikTok offers for every one of these returns (asked live, one return at a time),
    in the first return's order. Raises WorkflowError when TikTok cannot be asked about one of them."""
    common: list[dict] | None = None
    for shop_id, return_id in dict.fromkeys(keys):
        account = accounts.get(shop_id)
        if account is None:
            raise WorkflowError(f"The account of return {return_id} is not connected.")
        offered = reject_reasons(db, account, return_id, transport=transport)
        names = {r["name"] for r in offered}
        common = [r for r in (offered if common is None else common) if r["name"] in names]
    return common or []


def send_bulk(db: Database, accounts: Mapping[str, Account], bulk: BulkPlan, actor: str, *,
              transport=None) -> list[RowOutcome]:
    """Send each planned decision with its own idempotency key (so a retry of the same BulkPlan acts at most
    once per return), one after another; each return reports its own outcome, the left-out ones included."""
    who = _actor(actor)
    outcomes: list[RowOutcome] = []
    for plan in bulk.plans:
        account = accounts.get(plan.shop_id)
        if account is None or not account.usable:
            why = "is not connected" if account is None else f"is {account.status}"
            outcomes.append(RowOutcome(plan.shop_id, plan.return_id, False, f"Its account {why}; nothing was sent."))
            continue
        try:
            result = send_action(db, account, plan, who, transport=transport)
        except (WorkflowError, StoreError) as exc:
            outcomes.append(RowOutcome(plan.shop_id, plan.return_id, False, str(exc)))
            continue
        outcomes.append(RowOutcome(plan.shop_id, plan.return_id, result.ok, result.message, result.status))
    return outcomes + list(bulk.left_out)


def bulk_summary(verdict: str, outcomes: Sequence[RowOutcome]) -> str:
    """"Approved 3 of 3." or "Approved 2 of 3. Not done: R9 (why)." in one line."""
    done = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    text = f"{'Approved' if verdict == APPROVE else 'Rejected'} {len(done)} of {len(outcomes)}."
    if failed:
        text += " Not done: " + "; ".join(f"{o.return_id} ({o.message})" for o in failed)
    return text
