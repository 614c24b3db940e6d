"""How a return moves: the lifecycle of docs/tiktok_api.md section 5, as one scheduled step at a time.

Each case has at most one pending step (`case.next_event`); applying it changes the status, bumps
update_time, appends a record and schedules the next step. Seller decisions come from three places
that all go through `apply_decision`: the seller's API calls, a simulated seller (only for history
older than 3 days before the anchor, so the past looks lived-in), and TikTok's auto-approval when a
deadline passes unanswered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .. import errors
from .cases import ReturnCase, Tracking, fmt, request_record
from .catalogue import DAY, HOUR, REFUND, REJECT_REASONS, REPLACEMENT, RETURN_AND_REFUND, money

PENDING = "RETURN_OR_REFUND_REQUEST_PENDING"
REJECTED = "REFUND_OR_RETURN_REQUEST_REJECT"
AWAITING_BUYER_SHIP = "AWAITING_BUYER_SHIP"
BUYER_SHIPPED_ITEM = "BUYER_SHIPPED_ITEM"
REJECT_RECEIVE_PACKAGE = "REJECT_RECEIVE_PACKAGE"
SUCCESS = "RETURN_OR_REFUND_REQUEST_SUCCESS"
CANCELLED = "RETURN_OR_REFUND_REQUEST_CANCEL"
COMPLETE = "RETURN_OR_REFUND_REQUEST_COMPLETE"
AWAITING_BUYER_RESPONSE = "AWAITING_BUYER_RESPONSE"
REPL_PENDING = "REPLACEMENT_REQUEST_PENDING"
REPL_REJECTED = "REPLACEMENT_REQUEST_REJECT"
REPL_REFUNDED = "REPLACEMENT_REQUEST_REFUND_SUCCESS"
REPL_CANCELLED = "REPLACEMENT_REQUEST_CANCEL"
REPL_COMPLETE = "REPLACEMENT_REQUEST_COMPLETE"
ALL_STATUSES = (PENDING, REJECTED, AWAITING_BUYER_SHIP, BUYER_SHIPPED_ITEM, REJECT_RECEIVE_PACKAGE, SUCCESS,
                CANCELLED, COMPLETE, AWAITING_BUYER_RESPONSE, REPL_PENDING, REPL_REJECTED, REPL_REFUNDED,
                REPL_CANCELLED, REPL_COMPLETE)

RESPOND_REFUND = "SELLER_RESPOND_REFUND"
RESPOND_RETURN = "SELLER_RESPOND_RETURN"
RESPOND_RECEIVE_PACKAGE = "SELLER_RESPOND_RECEIVE_PACKAGE"
RESPOND_REPLACEMENT = "SELLER_RESPOND_REPLACEMENT"

APPROVE_DECISIONS = frozenset({"APPROVE_REFUND", "APPROVE_RETURN", "APPROVE_RECEIVED_PACKAGE",
                               "APPROVE_REPLACEMENT", "ISSUE_REPLACEMENT_REFUND", "OFFER_PARTIAL_REFUND"})
REJECT_DECISIONS = frozenset({"REJECT_REFUND", "REJECT_RETURN", "REJECT_RECEIVED_PACKAGE", "REJECT_REPLACEMENT"})
OFFER_AFTER_RECEIVING = "OFFER_PARTIAL_REFUND_AFTER_RECEIVING_PKG"  # Reject Return 202606 only
PARTIAL_OFFERS = frozenset({"OFFER_PARTIAL_REFUND", OFFER_AFTER_RECEIVING})
# What Get Decision Eligibility (202601) may be asked about: its check_decisions enum. The cancellation
# decisions, DIRECT_REFUND and ISSUE_EXCHANGE_REFUND never fit a return of this simulator (no type takes them).
ELIGIBILITY_DECISIONS = ("APPROVE_REQUEST_CANCEL", "APPROVE_REFUND", "APPROVE_RETURN", "APPROVE_RECEIVED_PACKAGE",
                         "APPROVE_REPLACEMENT", "ISSUE_REPLACEMENT_REFUND", "DIRECT_REFUND", "REJECT_REQUEST_CANCEL",
                         "REJECT_REFUND", "REJECT_RETURN", "REJECT_RECEIVED_PACKAGE", "REJECT_REPLACEMENT",
                         "ISSUE_EXCHANGE_REFUND")

# Decisions that can ever apply to a type; anything else "does not fit the request type" (25020004).
_TYPE_DECISIONS = {
    REFUND: frozenset({"APPROVE_REFUND", "REJECT_REFUND"}),
    RETURN_AND_REFUND: frozenset({"APPROVE_RETURN", "OFFER_PARTIAL_REFUND", "REJECT_RETURN",
                                  "APPROVE_RECEIVED_PACKAGE", "REJECT_RECEIVED_PACKAGE", OFFER_AFTER_RECEIVING}),
    REPLACEMENT: frozenset({"APPROVE_REPLACEMENT", "ISSUE_REPLACEMENT_REFUND", "REJECT_REPLACEMENT"}),
}
# (type, status) where the seller may decide, and which decisions fit that stage.
_STAGE_DECISIONS = {
    (REFUND, PENDING): frozenset({"APPROVE_REFUND", "REJECT_REFUND"}),
    (RETURN_AND_REFUND, PENDING): frozenset({"APPROVE_RETURN", "OFFER_PARTIAL_REFUND", "REJECT_RETURN"}),
    (RETURN_AND_REFUND, BUYER_SHIPPED_ITEM): frozenset({"APPROVE_RECEIVED_PACKAGE", "REJECT_RECEIVED_PACKAGE",
                                                         OFFER_AFTER_RECEIVING}),
    (REPLACEMENT, REPL_PENDING): frozenset({"APPROVE_REPLACEMENT", "ISSUE_REPLACEMENT_REFUND",
                                            "REJECT_REPLACEMENT"}),
}
_STAGE_ACTION = {
    (REFUND, PENDING): RESPOND_REFUND,
    (RETURN_AND_REFUND, PENDING): RESPOND_RETURN,
    (RETURN_AND_REFUND, BUYER_SHIPPED_ITEM): RESPOND_RECEIVE_PACKAGE,
    (REPLACEMENT, REPL_PENDING): RESPOND_REPLACEMENT,
}
_AUTO_APPROVAL = {RESPOND_REFUND: "APPROVE_REFUND", RESPOND_RETURN: "APPROVE_RETURN",
                  RESPOND_RECEIVE_PACKAGE: "APPROVE_RECEIVED_PACKAGE", RESPOND_REPLACEMENT: "APPROVE_REPLACEMENT"}

SIMULATED_SELLER_CUTOFF = 3 * DAY  # history older than this (before the anchor) was decided by a simulated seller
_BUYER_CANCEL_P = 0.07
_ARBITRATION_P = 0.35
_BUYER_NEVER_SHIPS_P = 0.12
_BUYER_ACCEPTS_OFFER_P = 0.6
_ARBITRATION_SUPPORTS_BUYER_P = 0.45


@dataclass(frozen=True)
class Decision:
    """A seller decision as Approve/Reject Return receive it (already validated for shape)."""

    name: str
    buyer_keep_item: bool = False
    partial_refund: Decimal | None = None
    reject_reason: str | None = None
    comment: str | None = None

    def to_json(self) -> dict:
        doc = {"name": self.name, "buyer_keep_item": self.buyer_keep_item, "reject_reason": self.reject_reason,
               "comment": self.comment}
        doc["partial_refund"] = None if self.partial_refund is None else str(self.partial_refund)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Decision:
        partial = doc.get("partial_refund")
        return cls(name=doc["name"], buyer_keep_item=bool(doc.get("buyer_keep_item")),
                   partial_refund=None if partial is None else Decimal(partial),
                   reject_reason=doc.get("reject_reason"), comment=doc.get("comment"))


def reject_reasons(case: ReturnCase) -> tuple[tuple[str, str], ...]:
    """(name, text) reasons the seller may give now; none when there is nothing to reject."""
    action = _STAGE_ACTION.get((case.return_type, case.status))
    return REJECT_REASONS[action] if action else ()


def _stage_error(case: ReturnCase, name: str) -> tuple[int, str] | None:
    """Why the decision `name` does not fit the case's type and state now, as (code, message); None when it fits."""
    if name not in _TYPE_DECISIONS[case.return_type]:
        return errors.DECISION_NOT_FIT, (f"Decision {name} does not fit a {case.return_type} request "
                                         f"(return {case.return_id}).")
    stage = _STAGE_DECISIONS.get((case.return_type, case.status))
    if stage is None:
        return errors.ALREADY_DECIDED, (f"Return {case.return_id} is {case.status}: it is not waiting for a seller "
                                        "decision (already decided or closed).")
    if name not in stage:
        return errors.DECISION_NOT_FIT, (f"Decision {name} does not fit return {case.return_id} in "
                                         f"status {case.status}; allowed now: {', '.join(sorted(stage))}.")
    if name == "OFFER_PARTIAL_REFUND" and case.buyer_rejected_partial_refund:
        return errors.DECISION_NOT_FIT, "The buyer already rejected a partial refund offer for this return."
    return None


def eligibility(case: ReturnCase, name: str) -> dict:
    """Get Decision Eligibility's answer for one decision on this return: eligible, or why not (and the reject
    reasons an eligible reject may give)."""
    refusal = _stage_error(case, name)
    if refusal is not None:
        return {"decision": name, "eligible": False, "ineligible_code": refusal[0], "ineligible_reason": refusal[1]}
    answer: dict = {"decision": name, "eligible": True}
    if name in REJECT_DECISIONS:
        answer["available_reject_reasons"] = [{"name": key, "text": text} for key, text in reject_reasons(case)]
    return answer


def decision_error(case: ReturnCase, decision: Decision) -> tuple[int, str] | None:
    """Why TikTok would refuse this decision now, as (code, message); None when it fits."""
    refusal = _stage_error(case, decision.name)
    if refusal is not None:
        return refusal
    if decision.name in REJECT_DECISIONS | {OFFER_AFTER_RECEIVING}:
        names = [name for name, _ in reject_reasons(case)]
        if decision.reject_reason not in names:
            return errors.REASON_INVALID, (f"reject_reason {decision.reject_reason!r} is not valid for return "
                                           f"{case.return_id} now; valid: {', '.join(names)}.")
    return None


def partial_refund_error(case: ReturnCase, amount: str, currency: str | None) -> str | None:
    """Why a partial refund offer is malformed, or None: a positive amount below the refund total."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError):
        return f"partial refund amount {amount!r} is not a decimal string"
    if not value.is_finite() or value <= 0 or money(value) != value:
        return f"partial refund amount {amount!r} must be positive with at most 2 decimals"
    if value >= case.refund_total:
        return f"partial refund amount {amount} must be below the refund total {fmt(case.refund_total)}"
    if currency is not None and currency != case.currency:
        return f"partial refund currency {currency!r} does not match the return's currency {case.currency}"
    return None


def random_delay(rng: random.Random, low_hours: float, high_hours: float) -> int:
    return int(rng.uniform(low_hours, high_hours) * HOUR)


class Lifecycle:
    """Applies steps and decisions to cases. `anchor` separates simulated history from the live part."""

    def __init__(self, anchor: int):
        self.anchor = anchor

    def open(self, case: ReturnCase) -> None:
        """The buyer's request arrives: pending, with a deadline for the seller."""
        case.status = REPL_PENDING if case.return_type == REPLACEMENT else PENDING
        case.touch(case.create_time, request_record(case))
        self._await_seller(case, case.create_time, cancellable=True)

    def step(self, case: ReturnCase) -> None:
        """Apply the case's scheduled step."""
        assert case.next_event is not None
        t, kind = case.next_event
        case.next_event = None
        getattr(self, f"_on_{kind}")(case, t)

    def apply_decision(self, case: ReturnCase, decision: Decision, t: int, role: str = "SELLER") -> None:
        """Move the case as the (valid) decision says; `role` SYSTEM marks TikTok's auto-approval."""
        case.seller_action = None
        case.next_event = None
        rng = case.rng
        name = decision.name
        if name in ("APPROVE_REFUND", "APPROVE_RECEIVED_PACKAGE") or (name == "APPROVE_RETURN"
                                                                      and decision.buyer_keep_item):
            if name == "APPROVE_RETURN":
                case.can_buyer_keep_item = True
            case.status = SUCCESS
            self._schedule(case, t + random_delay(rng, 2, 30), "refund_paid")
        elif name == "APPROVE_RETURN":
            case.status = AWAITING_BUYER_SHIP
            case.warehouse_address = case.shop.local.warehouse
            if case.shipment_type == "PLATFORM":
                case.shipping_document_type = rng.choice(("SHIPPING_LABEL", "QR_CODE"))
            if rng.random() < _BUYER_NEVER_SHIPS_P:
                self._schedule(case, t + 7 * DAY, "ship_timeout")
            else:
                self._schedule(case, t + random_delay(rng, 6, 120), "buyer_ship")
        elif name in PARTIAL_OFFERS:
            case.status = AWAITING_BUYER_RESPONSE
            case.seller_proposed_return_type = "PARTIAL_REFUND"
            case.partial_refund = decision.partial_refund
            case.buyer_rejected_partial_refund = False
            self._schedule(case, t + random_delay(rng, 2, 72), "buyer_offer_response")
        elif name == "APPROVE_REPLACEMENT":
            case.status = REPL_COMPLETE
        elif name == "ISSUE_REPLACEMENT_REFUND":
            case.status = REPL_REFUNDED
        else:  # a rejection; the buyer may escalate it to TikTok
            case.status = {"REJECT_RECEIVED_PACKAGE": REJECT_RECEIVE_PACKAGE,
                           "REJECT_REPLACEMENT": REPL_REJECTED}.get(name, REJECTED)
            if rng.random() < _ARBITRATION_P:
                self._schedule(case, t + random_delay(rng, 4, 72), "arbitration_open")
        case.touch(t, _decision_record(case, decision, role))

    # --- waiting for the seller ------------------------------------------------------------

    def _await_seller(self, case: ReturnCase, t: int, cancellable: bool) -> None:
        """The seller must act within 24-48 h; until then the buyer may withdraw (if `cancellable`).

        History older than the cutoff was decided by a simulated seller before the anchor; everything
        else waits for the real seller, and TikTok auto-approves at the deadline.
        """
        rng = case.rng
        action = _STAGE_ACTION[(case.return_type, case.status)]
        deadline = t + rng.randint(24 * HOUR, 48 * HOUR)
        case.seller_action = (action, deadline)
        if cancellable and rng.random() < _BUYER_CANCEL_P:
            self._schedule(case, rng.randint(t + HOUR, deadline - HOUR), "buyer_cancel")
            return
        decide_at = t + int((deadline - t) * rng.uniform(0.05, 0.9))
        if case.create_time < self.anchor - SIMULATED_SELLER_CUTOFF and decide_at < self.anchor:
            self._schedule(case, decide_at, "seller_decides")
        else:
            self._schedule(case, deadline, "auto_approve")

    def _on_seller_decides(self, case: ReturnCase, t: int) -> None:
        self.apply_decision(case, _simulated_decision(case), t)

    def _on_auto_approve(self, case: ReturnCase, t: int) -> None:
        assert case.seller_action is not None
        self.apply_decision(case, Decision(_AUTO_APPROVAL[case.seller_action[0]]), t, role="SYSTEM")

    # --- buyer, carrier and platform steps ---------------------------------------------------

    def _on_buyer_cancel(self, case: ReturnCase, t: int) -> None:
        case.seller_action = None
        case.status = REPL_CANCELLED if case.return_type == REPLACEMENT else CANCELLED
        case.touch(t, {"event": "BUYER_CANCELLED_REQUEST", "role": "BUYER",
                       "description": "Buyer cancelled the request"})

    def _on_buyer_ship(self, case: ReturnCase, t: int) -> None:
        rng = case.rng
        name, provider_id = rng.choice(case.shop.local.carriers)
        case.tracking = Tracking(_tracking_number(rng, name), name, provider_id)
        case.status = BUYER_SHIPPED_ITEM
        case.touch(t, {"event": "BUYER_SHIPPED_ITEM", "role": "BUYER",
                       "description": f"Buyer shipped the item with {name}, tracking {case.tracking.number}"})
        self._schedule(case, t + random_delay(rng, 48, 144), "package_delivered")

    def _on_ship_timeout(self, case: ReturnCase, t: int) -> None:
        case.status = CANCELLED
        case.touch(t, {"event": "SYSTEM_CLOSED_REQUEST", "role": "SYSTEM",
                       "description": "The buyer did not ship the item before the deadline; the request was closed"})

    def _on_package_delivered(self, case: ReturnCase, t: int) -> None:
        case.touch(t, {"event": "PACKAGE_DELIVERED", "role": "SYSTEM",
                       "description": "The returned package was delivered to the seller's warehouse"})
        self._await_seller(case, t, cancellable=False)

    def _on_buyer_offer_response(self, case: ReturnCase, t: int) -> None:
        if case.rng.random() < _BUYER_ACCEPTS_OFFER_P:
            case.status = SUCCESS
            case.can_buyer_keep_item = True
            case.touch(t, {"event": "BUYER_ACCEPTED_PARTIAL_REFUND", "role": "BUYER",
                           "description": "Buyer accepted the partial refund offer and keeps the item"})
            self._schedule(case, t + random_delay(case.rng, 2, 30), "refund_paid")
            return
        case.buyer_rejected_partial_refund = True
        case.status = BUYER_SHIPPED_ITEM if case.tracking else PENDING
        case.touch(t, {"event": "BUYER_REJECTED_PARTIAL_REFUND", "role": "BUYER",
                       "description": "Buyer rejected the partial refund offer"})
        self._await_seller(case, t, cancellable=False)

    def _on_refund_paid(self, case: ReturnCase, t: int) -> None:
        case.status = COMPLETE
        took_offer = case.partial_refund is not None and not case.buyer_rejected_partial_refund
        paid = case.partial_refund if took_offer else case.refund_total
        case.touch(t, {"event": "REFUND_COMPLETED", "role": "SYSTEM",
                       "description": f"Refund of {fmt(paid)} {case.currency} was issued to the buyer"})
        if case.arbitration_status == "SUPPORT_BUYER":
            self._schedule(case, t + random_delay(case.rng, 24, 96), "arbitration_close")

    def _on_arbitration_open(self, case: ReturnCase, t: int) -> None:
        case.arbitration_status = "IN_PROGRESS"
        case.touch(t, {"event": "ARBITRATION_OPENED", "role": "BUYER",
                       "description": "Buyer asked TikTok Shop to review the seller's rejection"})
        self._schedule(case, t + random_delay(case.rng, 48, 168), "arbitration_ruling")

    def _on_arbitration_ruling(self, case: ReturnCase, t: int) -> None:
        rng = case.rng
        if rng.random() < _ARBITRATION_SUPPORTS_BUYER_P:
            case.arbitration_status = "SUPPORT_BUYER"
            case.touch(t, {"event": "ARBITRATION_SUPPORT_BUYER", "role": "OPERATOR",
                           "description": "TikTok Shop ruled for the buyer; the buyer will be refunded"})
            if case.return_type == REPLACEMENT:
                case.status = REPL_REFUNDED
                self._schedule(case, t + random_delay(rng, 48, 144), "arbitration_close")
            else:
                case.status = SUCCESS
                self._schedule(case, t + random_delay(rng, 2, 30), "refund_paid")
            return
        case.arbitration_status = "SUPPORT_SELLER"
        case.touch(t, {"event": "ARBITRATION_SUPPORT_SELLER", "role": "OPERATOR",
                       "description": "TikTok Shop ruled for the seller; the rejection stands"})
        self._schedule(case, t + random_delay(rng, 48, 144), "arbitration_close")

    def _on_arbitration_close(self, case: ReturnCase, t: int) -> None:
        case.arbitration_status = "CLOSED"
        case.touch(t, {"event": "ARBITRATION_CLOSED", "role": "OPERATOR", "description": "Arbitration closed"})

    @staticmethod
    def _schedule(case: ReturnCase, t: int, kind: str) -> None:
        case.next_event = (t, kind)


def _simulated_decision(case: ReturnCase) -> Decision:
    """What a typical seller decided, for history the user was not around for."""
    rng = case.rng
    assert case.seller_action is not None
    action = case.seller_action[0]
    roll = rng.random()
    reason = rng.choice(REJECT_REASONS[action])[0]
    if action == RESPOND_REFUND:
        return Decision("APPROVE_REFUND") if roll < 0.86 else Decision("REJECT_REFUND", reject_reason=reason)
    if action == RESPOND_RECEIVE_PACKAGE:
        return (Decision("APPROVE_RECEIVED_PACKAGE") if roll < 0.92
                else Decision("REJECT_RECEIVED_PACKAGE", reject_reason=reason))
    if action == RESPOND_REPLACEMENT:
        if roll < 0.72:
            return Decision("APPROVE_REPLACEMENT")
        return Decision("ISSUE_REPLACEMENT_REFUND") if roll < 0.88 else Decision("REJECT_REPLACEMENT",
                                                                                reject_reason=reason)
    if roll < 0.12:
        return Decision("REJECT_RETURN", reject_reason=reason)
    if roll < 0.20 and not case.buyer_rejected_partial_refund:
        offer = money(case.refund_total * Decimal(str(round(rng.uniform(0.2, 0.6), 2))))
        return Decision("OFFER_PARTIAL_REFUND", partial_refund=max(offer, Decimal("0.01")))
    return Decision("APPROVE_RETURN", buyer_keep_item=rng.random() < 0.12)


REJECT_REASON_TEXTS = {name: text for reasons in REJECT_REASONS.values() for name, text in reasons}
_DECISION_RECORDS = {
    "APPROVE_REFUND": ("SELLER_APPROVED_REFUND", "approved the refund request"),
    "APPROVE_RETURN": ("SELLER_APPROVED_RETURN",
                       "approved the return request; waiting for the buyer to ship the item"),
    "APPROVE_RECEIVED_PACKAGE": ("SELLER_APPROVED_RECEIVED_PACKAGE", "confirmed the returned package"),
    "APPROVE_REPLACEMENT": ("SELLER_APPROVED_REPLACEMENT", "approved the replacement; a new order was created"),
    "ISSUE_REPLACEMENT_REFUND": ("SELLER_ISSUED_REPLACEMENT_REFUND", "refunded the buyer instead of replacing"),
    "REJECT_REFUND": ("SELLER_REJECTED_REQUEST", "rejected the refund request"),
    "REJECT_RETURN": ("SELLER_REJECTED_REQUEST", "rejected the return request"),
    "REJECT_RECEIVED_PACKAGE": ("SELLER_REJECTED_RECEIVED_PACKAGE", "rejected the returned package"),
    "REJECT_REPLACEMENT": ("SELLER_REJECTED_REQUEST", "rejected the replacement request"),
}


def _decision_record(case: ReturnCase, decision: Decision, role: str) -> dict:
    if decision.name in PARTIAL_OFFERS:
        event = "SELLER_OFFERED_PARTIAL_REFUND"
        what = f"offered a partial refund of {fmt(decision.partial_refund or 0)} {case.currency}"
    elif decision.name == "APPROVE_RETURN" and decision.buyer_keep_item:
        event, what = "SELLER_APPROVED_RETURNLESS_REFUND", "approved a refund; the buyer keeps the item"
    else:
        event, what = _DECISION_RECORDS[decision.name]
    if role == "SYSTEM":
        record = {"event": "SYSTEM_AUTO_APPROVED", "role": "SYSTEM",
                  "description": f"The seller did not respond before the deadline; TikTok Shop {what}"}
    else:
        record = {"event": event, "role": role, "description": f"Seller {what}"}
    if decision.reject_reason:
        record["reason_text"] = REJECT_REASON_TEXTS[decision.reject_reason]
    if decision.comment:
        record["note"] = decision.comment
    return record


def _tracking_number(rng: random.Random, carrier: str) -> str:
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))
    if carrier == "Royal Mail":
        return f"{rng.choice('ABCDEFGHJK')}{rng.choice('ABCDEFGHJK')}{rng.randrange(10**9):09d}GB"
    return f"{rng.randrange(10**20):020d}"
