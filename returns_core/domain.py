"""Domain rules: return types, the status mapping, allowed transitions, grid columns, deadlines and
what the seller may decide.

Everything here is data (dicts and tuples) so the app can show it and tests can check it.
See DESIGN.md, "Domain rules". A rule that SQL needs too has a Python function and a `..._sql`
twin generated from the same data (as in reason_groups), so the grid, the queue, the sidebar's
counts and the detail page cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
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

# --- Kinds: a buyer's return request, or a buyer's cancellation before shipment (the second queue) --

RETURN_KIND = "return"
CANCELLATION_KIND = "cancellation"
KINDS: tuple[str, ...] = (RETURN_KIND, CANCELLATION_KIND)
# A cancellation is its own Type, whatever TikTok's cancel_type (BUYER_CANCEL, CANCEL: kept verbatim in
# return_type); it lives in the same table, grid, filters and exports as the returns.
CANCELLATION = "Cancellation"
ALL_TYPES: tuple[str, ...] = TYPES + (CANCELLATION,)


def count_in_words(returns: int, cancellations: int, number: Callable[[int], str] = "{:,}".format) -> str:
    """Rows counted by kind, in the user's words: "2,006 returns and 803 cancellations"; "2,006 returns" when
    there is no cancellation, "803 cancellations" when there are only those. `number` writes each figure."""
    def counted(n: int, word: str) -> str:
        return f"{number(n)} {word}{'' if n == 1 else 's'}"

    if cancellations and returns:
        return f"{counted(returns, 'return')} and {counted(cancellations, 'cancellation')}"
    if cancellations:
        return counted(cancellations, "cancellation")
    return counted(returns, "return")

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
# Cancellations have their own mapping (TikTok's cancel_status). Search Cancellations 202309 spells the
# withdrawn or rejected request CANCELLATION_REQUEST_CANCELLED, newer versions and the filters
# CANCELLATION_REQUEST_CANCEL (docs/tiktok_api.md section 9): both map, and both are kept verbatim.
CANCELLATION_STATUS_MAP: dict[str, str] = {
    "CANCELLATION_REQUEST_PENDING": REQUESTED,
    "CANCELLATION_REQUEST_SUCCESS": ACCEPTED,
    "CANCELLATION_REQUEST_COMPLETE": REFUNDED,
    "CANCELLATION_REQUEST_CANCEL": CANCELLED,
    "CANCELLATION_REQUEST_CANCELLED": CANCELLED,
}
STATUS_MAPS: dict[str, dict[str, str]] = {RETURN_KIND: STATUS_MAP, CANCELLATION_KIND: CANCELLATION_STATUS_MAP}
assert not set(STATUS_MAP) & set(CANCELLATION_STATUS_MAP), "a TikTok status belongs to one kind"
MARKETPLACE_STATUSES: tuple[str, ...] = tuple(STATUS_MAP) + tuple(CANCELLATION_STATUS_MAP)

# TikTok's return_status in words, for the screen. The verbatim value stays in the store, in every
# export and on the return's page; a status not listed here is shown verbatim.
MARKETPLACE_STATUS_LABELS: dict[str, str] = {
    "RETURN_OR_REFUND_REQUEST_PENDING": "Request awaits seller",
    "REPLACEMENT_REQUEST_PENDING": "Replacement awaits seller",
    "EXCHANGE_REQUEST_PENDING": "Exchange awaits seller",
    "AWAITING_BUYER_SHIP": "Buyer to ship item",
    "BUYER_SHIPPED_ITEM": "Buyer shipped item",
    "AWAITING_BUYER_RESPONSE": "Awaiting buyer's answer",
    "RETURN_OR_REFUND_REQUEST_SUCCESS": "Approved, refund pending",
    "REPLACEMENT_REQUEST_REFUND_SUCCESS": "Replacement refund approved",
    "EXCHANGE_REQUEST_REFUND_SUCCESS": "Exchange refund approved",
    "RETURN_OR_REFUND_REQUEST_COMPLETE": "Refunded",
    "REPLACEMENT_REQUEST_COMPLETE": "Replacement completed",
    "EXCHANGE_REQUEST_COMPLETE": "Exchange completed",
    "REFUND_OR_RETURN_REQUEST_REJECT": "Request rejected",
    "REJECT_RECEIVE_PACKAGE": "Returned parcel rejected",
    "REPLACEMENT_REQUEST_REJECT": "Replacement rejected",
    "RETURN_OR_REFUND_REQUEST_CANCEL": "Request cancelled",
    "REPLACEMENT_REQUEST_CANCEL": "Replacement cancelled",
    "EXCHANGE_REQUEST_CANCEL": "Exchange cancelled",
    "CANCELLATION_REQUEST_PENDING": "Cancellation awaits seller",
    "CANCELLATION_REQUEST_SUCCESS": "Cancellation approved, refund pending",
    "CANCELLATION_REQUEST_COMPLETE": "Order cancelled and refunded",
    "CANCELLATION_REQUEST_CANCEL": "Cancellation withdrawn or rejected",
    "CANCELLATION_REQUEST_CANCELLED": "Cancellation closed: withdrawn or rejected",
}
assert set(MARKETPLACE_STATUS_LABELS) == set(MARKETPLACE_STATUSES), "every known TikTok status has its words"
assert len(set(MARKETPLACE_STATUS_LABELS.values())) == len(MARKETPLACE_STATUS_LABELS), "one status per label"


def marketplace_status_label(marketplace_status: str | None) -> str:
    """TikTok's return_status in words; a status we do not know yet stays verbatim, none is ''."""
    if not marketplace_status:
        return ""
    return MARKETPLACE_STATUS_LABELS.get(marketplace_status, marketplace_status)

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
# a closed case is closed by hand too: no step leads out of it
assert all(not ALLOWED_TRANSITIONS[status] for status in CLOSED_STATUSES)

DUE_SOON_HOURS = 24


def sql_literal(value: str) -> str:
    """A fixed text of the rules as a SQL string literal (quotes doubled), for the rules' SQL twins."""
    return "'" + value.replace("'", "''") + "'"


# --- Closed statuses ------------------------------------------------------------------------


def is_closed(status: str | None) -> bool:
    """True for a closed case (Refund, Rejected, Cancelled); an unmapped (empty) Status is open."""
    return status in CLOSED_STATUSES


def closed_sql(alias: str) -> str:
    """SQL twin of `is_closed` over `returns AS alias`: TRUE or FALSE, never NULL."""
    closed = ", ".join(sql_literal(s) for s in sorted(CLOSED_STATUSES))
    return f"coalesce({alias}.status IN ({closed}), FALSE)"


# --- Deadlines (TikTok's seller_next_action_response[].deadline, stored as Due By) ----------

OVERDUE = "Overdue"
DUE_SOON = "Due soon"
NO_DEADLINE = ""  # no Due By, a Due By far off, or a closed case

# The deadline says when TikTok decides by itself if the seller has not answered. A closed case
# waits for no answer, so it has no deadline state whatever Due By it kept from its last wait.
# Each state holds while Due By is before now plus its hours; the first that holds wins.
DEADLINE_STATES: tuple[tuple[str, int], ...] = ((OVERDUE, 0), (DUE_SOON, DUE_SOON_HOURS))


def deadline_state(status: str | None, due_by: datetime | None, now: datetime) -> str:
    """OVERDUE, DUE_SOON or NO_DEADLINE for a return's Status and Due By (naive UTC)."""
    # pandas may hand over NaT for a missing time, and NaT is not equal to itself
    if due_by is None or due_by != due_by or is_closed(status):
        return NO_DEADLINE
    for state, hours in DEADLINE_STATES:
        if due_by < now + timedelta(hours=hours):
            return state
    return NO_DEADLINE


def deadline_sql(state: str, alias: str, now: datetime) -> tuple[str, list]:
    """SQL twin of `deadline_state(...) == state` over `returns AS alias`, and its parameters."""
    names = [name for name, _ in DEADLINE_STATES]
    if state not in names:
        raise ValueError(f"No SQL for the deadline state {state!r}; choose one of {', '.join(names)}.")
    index = names.index(state)
    sql, params = f"NOT {closed_sql(alias)}", []
    if index:  # not an earlier state
        sql += f" AND {alias}.due_by >= ?"
        params.append(now + timedelta(hours=DEADLINE_STATES[index - 1][1]))
    sql += f" AND {alias}.due_by < ?"
    params.append(now + timedelta(hours=DEADLINE_STATES[index][1]))
    return f"({sql})", params


def display_type(return_type: str | None) -> str | None:
    """TikTok `return_type` -> the Type word users see; unknown types stay verbatim."""
    if return_type is None:
        return None
    return TYPE_MAP.get(return_type, return_type)


def noun(kind: str | None) -> str:
    """What a row is, in a sentence: "return" or "cancellation"."""
    return "cancellation" if kind == CANCELLATION_KIND else "return"


def display_kind_type(kind: str | None, tiktok_type: str | None) -> str | None:
    """The Type word of a return (by its return_type) or of a cancellation (always "Cancellation")."""
    return CANCELLATION if kind == CANCELLATION_KIND else display_type(tiktok_type)


def status_map(kind: str | None = RETURN_KIND) -> dict[str, str]:
    """The status mapping of a kind (returns when unknown)."""
    return STATUS_MAPS.get(kind or RETURN_KIND, STATUS_MAP)


def mapped_status(marketplace_status: str | None, kind: str | None = RETURN_KIND) -> str | None:
    """TikTok's status (return_status, or cancel_status for a cancellation) -> our Status, or None when the
    status is unknown to that kind's mapping (unmapped)."""
    if marketplace_status is None:
        return None
    return status_map(kind).get(marketplace_status)


def is_unmapped(marketplace_status: str | None, kind: str | None = RETURN_KIND) -> bool:
    return marketplace_status is not None and marketplace_status not in status_map(kind)


def is_mismatch(status: str | None, marketplace_status: str | None, kind: str | None = RETURN_KIND) -> bool:
    """True when our Status disagrees with what TikTok's status maps to (unmapped is not a mismatch)."""
    expected = mapped_status(marketplace_status, kind)
    return expected is not None and status != expected


def manual_transition_error(current: str | None, target: str, marketplace_status: str | None,
                            kind: str | None = RETURN_KIND) -> str | None:
    """Why a hand-made move from `current` to `target` is refused, or None when it is allowed."""
    if target not in STATUSES:
        return f"Unknown status {target!r}; choose one of {', '.join(STATUSES)}."
    if current == target:
        return f"The return is already {target}."
    if current is not None and target not in ALLOWED_TRANSITIONS.get(current, ()):
        allowed = ", ".join(ALLOWED_TRANSITIONS.get(current, ())) or "none (the case is closed)"
        return f"{current} cannot move to {target}; allowed next steps: {allowed}."
    if is_closed(target) and mapped_status(marketplace_status, kind) != target:
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
    # a buyer's cancellation: 202309 and 202602 name the action differently (docs section 5)
    "SELLER_RESPOND_CANCEL": (("APPROVE_REQUEST_CANCEL",), ("REJECT_REQUEST_CANCEL",)),
    "SELLER_RESPOND_BUYER_CANCEL": (("APPROVE_REQUEST_CANCEL",), ("REJECT_REQUEST_CANCEL",)),
}
# The decisions that answer a cancellation: sent to Approve / Reject Cancellation, not to the returns' endpoints.
CANCELLATION_DECISIONS: frozenset[str] = frozenset({"APPROVE_REQUEST_CANCEL", "REJECT_REQUEST_CANCEL"})

# When TikTok gives no next action, the state still tells what fits: (return_type, return_status) -> next action.
_NEXT_ACTION_BY_STATE: dict[tuple[str, str], str] = {
    ("REFUND", "RETURN_OR_REFUND_REQUEST_PENDING"): "SELLER_RESPOND_REFUND",
    ("RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_PENDING"): "SELLER_RESPOND_RETURN",
    ("RETURN_AND_REFUND", "BUYER_SHIPPED_ITEM"): "SELLER_RESPOND_RECEIVE_PACKAGE",
    ("REPLACEMENT", "REPLACEMENT_REQUEST_PENDING"): "SELLER_RESPOND_REPLACEMENT",
    ("BUYER_CANCEL", "CANCELLATION_REQUEST_PENDING"): "SELLER_RESPOND_CANCEL",
}

DECISION_LABELS: dict[str, str] = {
    "APPROVE_REFUND": "Approve the refund",
    "APPROVE_RETURN": "Approve the return (buyer ships the item back, then gets the full refund)",
    "OFFER_PARTIAL_REFUND": "Offer a partial refund you set (buyer keeps the item; may refuse the offer)",
    "APPROVE_RECEIVED_PACKAGE": "Accept the returned package and refund",
    "APPROVE_REPLACEMENT": "Approve the replacement",
    "ISSUE_REPLACEMENT_REFUND": "Refund instead of replacing",
    "REJECT_REFUND": "Reject the refund request",
    "REJECT_RETURN": "Reject the return request",
    "REJECT_RECEIVED_PACKAGE": "Reject the returned package",
    "REJECT_REPLACEMENT": "Reject the replacement request",
    "APPROVE_REQUEST_CANCEL": "Approve the cancellation (the order is cancelled and refunded)",
    "REJECT_REQUEST_CANCEL": "Reject the cancellation (the order goes ahead and ships)",
}

# APPROVE_RETURN with buyer_keep_item=true (tiktok_api.md 4.3): a returnless full refund, its own choice in the card
RETURNLESS_REFUND = "APPROVE_RETURN_KEEP_ITEM"
RETURNLESS_REFUND_LABEL = "Refund in full now, no return (buyer keeps the item)"

# What the buyer asks for, in the card's words: the Type column groups replacements and exchanges under
# "Return" (TYPE_MAP), but deciding on one needs its own word
REQUEST_KINDS: dict[str, str] = {"REPLACEMENT": "Replacement", "EXCHANGE": "Exchange", "BUYER_CANCEL": CANCELLATION,
                                 "CANCEL": CANCELLATION}


def request_kind(return_type: str | None) -> str | None:
    """TikTok `return_type` -> what the buyer asks for ("Replacement"), else the Type word."""
    return REQUEST_KINDS.get(return_type or "") or display_type(return_type)


# What TikTok does by itself when Due By passes without the seller's answer: it approves (DESIGN.md,
# "TikTok auto-approves when a seller does not answer in time"; the sandbox does the same).
IF_NOBODY_ANSWERS: dict[str, str] = {
    "SELLER_RESPOND_REFUND": "TikTok approves the refund by itself",
    "SELLER_RESPOND_RETURN": "TikTok approves the return by itself (the buyer then ships the item back)",
    "SELLER_RESPOND_RECEIVE_PACKAGE": "TikTok accepts the returned package and refunds the buyer by itself",
    "SELLER_RESPOND_REPLACEMENT": "TikTok approves the replacement by itself",
    "SELLER_RESPOND_CANCEL": "TikTok approves the cancellation by itself (the order is cancelled and refunded)",
    "SELLER_RESPOND_BUYER_CANCEL": "TikTok approves the cancellation by itself (the order is cancelled and refunded)",
}


def seller_next_action(return_type: str | None, marketplace_status: str | None,
                       next_action: str | None) -> str | None:
    """TikTok's next action for the seller, or the one its state implies when TikTok sent none."""
    return next_action or _NEXT_ACTION_BY_STATE.get((return_type or "", marketplace_status or ""))


def seller_decisions(return_type: str | None, marketplace_status: str | None,
                     next_action: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(approve decisions, reject decisions) that fit this return now; both empty when nothing fits."""
    action = seller_next_action(return_type, marketplace_status, next_action)
    return DECISIONS_BY_NEXT_ACTION.get(action or "", ((), ()))


def if_nobody_answers(return_type: str | None, marketplace_status: str | None, next_action: str | None) -> str | None:
    """What TikTok does when the seller lets the deadline pass, or None when TikTok waits for no decision."""
    return IF_NOBODY_ANSWERS.get(seller_next_action(return_type, marketplace_status, next_action) or "")


def can_decide(return_type: str | None, marketplace_status: str | None, next_action: str | None) -> bool:
    """True while TikTok waits for the seller's approve or reject: the one rule behind every Decide button."""
    approve, reject = seller_decisions(return_type, marketplace_status, next_action)
    return bool(approve or reject)


def can_decide_sql(alias: str) -> str:
    """SQL twin of `can_decide` over `returns AS alias`: TRUE or FALSE, never NULL.

    Reads use the answer stored with each row (`stored_can_decide_sql`); this twin fills it in for rows
    stored before it was (store/schema.py migration 11). A change to the rule needs a migration that
    fills it in again.
    """
    implied = " ".join(
        f"WHEN {alias}.return_type = {sql_literal(return_type)} AND {alias}.marketplace_status = {sql_literal(status)} "
        f"THEN {sql_literal(action)}"
        for (return_type, status), action in _NEXT_ACTION_BY_STATE.items()
    )
    # `next_action or ...` in Python: an empty next action falls through to the implied one
    action = f"CASE WHEN {alias}.next_action <> '' THEN {alias}.next_action {implied} END"
    decidable = ", ".join(sql_literal(name) for name, (approve, reject) in DECISIONS_BY_NEXT_ACTION.items()
                          if approve or reject)
    return f"coalesce(({action}) IN ({decidable}), FALSE)"


def stored_can_decide_sql(alias: str) -> str:
    """`can_decide` as stored with each row of `returns AS alias` when it was written: TRUE or FALSE."""
    return f"coalesce({alias}.can_decide, FALSE)"


REVIEW_OUTCOMES: dict[str, str] = {
    "ok": "OK",
    "quality_issue": "Quality issue",
    "suspected_abuse": "Suspected abuse",
}
