"""Domain rules: return types, the status mapping, allowed transitions, grid columns.

Everything here is data (dicts and tuples) so the app can show it and tests can check it.
See DESIGN.md, "Domain rules".
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# --- Type -----------------------------------------------------------------------------------

REFUND = "Refund"
RETURN_AND_REFUND = "Return & Refund"
RETURN = "Return"

TYPE_MAP: dict[str, str] = {
    "REFUND": REFUND,
    "RETURN_AND_REFUND": RETURN_AND_REFUND,
    "REPLACEMENT": RETURN,
    "EXCHANGE": RETURN,
}
TYPES: tuple[str, ...] = (REFUND, RETURN_AND_REFUND, RETURN)

# --- Status ---------------------------------------------------------------------------------

REQUESTED = "Requested"
PENDING = "Pending"
ACCEPTED = "Accepted"
REFUNDED = "Refund"  # "Refund (completed)" in DESIGN.md; the display word is "Refund"
REJECTED = "Rejected"
CANCELLED = "Cancelled"

STATUSES: tuple[str, ...] = (REQUESTED, PENDING, ACCEPTED, REFUNDED, REJECTED, CANCELLED)
CLOSED_STATUSES: frozenset[str] = frozenset({REFUNDED, REJECTED, CANCELLED})

STATUS_MAP: dict[str, str] = {
    "RETURN_OR_REFUND_REQUEST_PENDING": REQUESTED,
    "REPLACEMENT_REQUEST_PENDING": REQUESTED,
    "EXCHANGE_REQUEST_PENDING": REQUESTED,
    "AWAITING_BUYER_SHIP": PENDING,
    "BUYER_SHIPPED_ITEM": PENDING,
    "AWAITING_BUYER_RESPONSE": PENDING,
    "RETURN_OR_REFUND_REQUEST_SUCCESS": ACCEPTED,
    "REPLACEMENT_REQUEST_REFUND_SUCCESS": ACCEPTED,
    "EXCHANGE_REQUEST_REFUND_SUCCESS": ACCEPTED,
    "RETURN_OR_REFUND_REQUEST_COMPLETE": REFUNDED,
    "REPLACEMENT_REQUEST_COMPLETE": REFUNDED,
    "EXCHANGE_REQUEST_COMPLETE": REFUNDED,
    "REFUND_OR_RETURN_REQUEST_REJECT": REJECTED,
    "REJECT_RECEIVE_PACKAGE": REJECTED,
    "REPLACEMENT_REQUEST_REJECT": REJECTED,
    "RETURN_OR_REFUND_REQUEST_CANCEL": CANCELLED,
    "REPLACEMENT_REQUEST_CANCEL": CANCELLED,
    "EXCHANGE_REQUEST_CANCEL": CANCELLED,
}
MARKETPLACE_STATUSES: tuple[str, ...] = tuple(STATUS_MAP)

# Steps a user may take by hand between TikTok's own changes. Closing steps (Refund, Rejected,
# Cancelled) are further checked against TikTok's status by `manual_transition_error`.
ALLOWED_TRANSITIONS: dict[str, tuple[str, ...]] = {
    REQUESTED: (PENDING, REJECTED, CANCELLED),
    PENDING: (ACCEPTED, REJECTED, CANCELLED),
    ACCEPTED: (REFUNDED, REJECTED),
    REFUNDED: (),
    REJECTED: (),
    CANCELLED: (),
}

ARBITRATION_STATUSES: tuple[str, ...] = ("IN_PROGRESS", "SUPPORT_BUYER", "SUPPORT_SELLER", "CLOSED")

DUE_SOON_HOURS = 24


def display_type(return_type: str | None) -> str | None:
    """TikTok `return_type` -> the Type word users see; unknown types stay verbatim."""
    if return_type is None:
        return None
    return TYPE_MAP.get(return_type, return_type)


def mapped_status(marketplace_status: str | None) -> str | None:
    """TikTok `return_status` -> our Status, or None when the status is unknown (unmapped)."""
    if marketplace_status is None:
        return None
    return STATUS_MAP.get(marketplace_status)


def is_unmapped(marketplace_status: str | None) -> bool:
    return marketplace_status is not None and marketplace_status not in STATUS_MAP


def is_mismatch(status: str | None, marketplace_status: str | None) -> bool:
    """True when our Status disagrees with what TikTok's status maps to (unmapped is not a mismatch)."""
    expected = mapped_status(marketplace_status)
    return expected is not None and status != expected


def manual_transition_error(current: str | None, target: str, marketplace_status: str | None) -> str | None:
    """Why a hand-made move from `current` to `target` is refused, or None when it is allowed."""
    if target not in STATUSES:
        return f"Unknown status {target!r}; choose one of {', '.join(STATUSES)}."
    if current == target:
        return f"The return is already {target}."
    if current is not None and target not in ALLOWED_TRANSITIONS.get(current, ()):
        allowed = ", ".join(ALLOWED_TRANSITIONS.get(current, ())) or "none (the case is closed)"
        return f"{current} cannot move to {target}; allowed next steps: {allowed}."
    if target in CLOSED_STATUSES and mapped_status(marketplace_status) != target:
        shown = marketplace_status or "unknown"
        return (
            f"Cannot close as {target}: TikTok's status is {shown}. "
            "Act on TikTok first (or re-sync), then close the case."
        )
    return None


# --- Money ----------------------------------------------------------------------------------


def to_decimal(value: object) -> Decimal | None:
    """A TikTok money string ("1.23") as Decimal; None for missing or malformed values."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


# --- Grid -----------------------------------------------------------------------------------

# (display name, store column). The first nine are the seed columns, in DESIGN.md's order;
# the grid, the export and the CLI all use this one list.
GRID_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Marketplace Return ID", "return_id"),
    ("Marketplace Order ID", "order_id"),
    ("Account ID", "shop_id"),
    ("Type", "type"),
    ("Status", "status"),
    ("Marketplace Status", "marketplace_status"),
    ("Reason", "reason_text"),
    ("Created At", "created_at"),
    ("Updated At", "updated_at"),
    ("Refund Total", "refund_total"),
    ("Currency", "refund_currency"),
    ("Due By", "due_by"),
    ("Arbitration", "arbitration_status"),
    ("Mismatch", "mismatch"),
    ("Unmapped Status", "unmapped"),
)
SEED_COLUMNS: tuple[str, ...] = tuple(name for name, _ in GRID_COLUMNS[:9])


# --- Decisions on TikTok (docs/tiktok_api.md 4.3) -------------------------------------------

# What the seller may answer, by TikTok's seller_next_action: (approve decisions, reject decisions).
DECISIONS_BY_NEXT_ACTION: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "SELLER_RESPOND_REFUND": (("APPROVE_REFUND",), ("REJECT_REFUND",)),
    "SELLER_RESPOND_RETURN": (("APPROVE_RETURN", "OFFER_PARTIAL_REFUND"), ("REJECT_RETURN",)),
    "SELLER_RESPOND_RECEIVE_PACKAGE": (("APPROVE_RECEIVED_PACKAGE",), ("REJECT_RECEIVED_PACKAGE",)),
    "SELLER_RESPOND_REPLACEMENT": (("APPROVE_REPLACEMENT", "ISSUE_REPLACEMENT_REFUND"), ("REJECT_REPLACEMENT",)),
}

# When TikTok gives no next action, the state still tells what fits: (return_type, return_status) -> next action.
_NEXT_ACTION_BY_STATE: dict[tuple[str, str], str] = {
    ("REFUND", "RETURN_OR_REFUND_REQUEST_PENDING"): "SELLER_RESPOND_REFUND",
    ("RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_PENDING"): "SELLER_RESPOND_RETURN",
    ("RETURN_AND_REFUND", "BUYER_SHIPPED_ITEM"): "SELLER_RESPOND_RECEIVE_PACKAGE",
    ("REPLACEMENT", "REPLACEMENT_REQUEST_PENDING"): "SELLER_RESPOND_REPLACEMENT",
}

DECISION_LABELS: dict[str, str] = {
    "APPROVE_REFUND": "Approve the refund",
    "APPROVE_RETURN": "Approve the return (buyer ships the item back)",
    "OFFER_PARTIAL_REFUND": "Offer a partial refund (buyer keeps the item)",
    "APPROVE_RECEIVED_PACKAGE": "Accept the returned package and refund",
    "APPROVE_REPLACEMENT": "Approve the replacement",
    "ISSUE_REPLACEMENT_REFUND": "Refund instead of replacing",
    "REJECT_REFUND": "Reject the refund request",
    "REJECT_RETURN": "Reject the return request",
    "REJECT_RECEIVED_PACKAGE": "Reject the returned package",
    "REJECT_REPLACEMENT": "Reject the replacement request",
}


def seller_decisions(return_type: str | None, marketplace_status: str | None,
                     next_action: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(approve decisions, reject decisions) that fit this return now; both empty when nothing fits."""
    action = next_action or _NEXT_ACTION_BY_STATE.get((return_type or "", marketplace_status or ""))
    return DECISIONS_BY_NEXT_ACTION.get(action or "", ((), ()))


REVIEW_OUTCOMES: dict[str, str] = {
    "ok": "OK",
    "quality_issue": "Quality issue",
    "suspected_abuse": "Suspected abuse",
}
