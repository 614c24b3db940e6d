"""Cancellations: buyers asking to cancel an order before it ships (docs/tiktok_api.md section 4.5).

The second queue beside returns. Each shop answers buyers' cancellation requests within the window it
chose in Seller Center: 1, 3 or 5 hours, or before the order's ready-to-ship time. When the window
passes unanswered, TikTok approves the cancellation by itself. Before that the buyer may withdraw the
request; the seller may approve it (the order is cancelled and refunded) or reject it with a reason
(the order goes ahead).

Cancellations come from their own random streams ("...:cancel...") and their own scheduler, so the
returns world of a seed is exactly what it was before cancellations existed. Like a return, each case
owns its RNG and at most one pending step: the world at time t is a pure function of (seed, anchor,
seller decisions, t).

Search Cancellations 202309 spells the withdrawn or rejected state CANCELLATION_REQUEST_CANCELLED and
the seller's action SELLER_RESPOND_CANCEL; 202602 spells them CANCELLATION_REQUEST_CANCEL and
SELLER_RESPOND_BUYER_CANCEL (docs section 9, point 5). A case keeps one state and serves each version
its own spelling.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from .. import errors
from .cases import LineItem, _amount, _price_lines, fmt, return_id_for
from .catalogue import DAY, HOUR, REFUND_REASONS, Reason, Shop, digits
from .timing import DIURNAL, DIURNAL_MEAN, poisson, weekday_weight

PENDING = "CANCELLATION_REQUEST_PENDING"
SUCCESS = "CANCELLATION_REQUEST_SUCCESS"
CLOSED = "CANCELLATION_REQUEST_CANCEL"  # withdrawn by the buyer or rejected by the seller: the order goes ahead
COMPLETE = "CANCELLATION_REQUEST_COMPLETE"
CLOSED_202309 = "CANCELLATION_REQUEST_CANCELLED"  # Search Cancellations 202309's spelling of CLOSED
ALL_STATUSES = (PENDING, SUCCESS, CLOSED, COMPLETE)
STATUS_ALIASES = {CLOSED_202309: CLOSED}  # a search filter may use either spelling
CANCEL_TYPES = ("CANCEL", "BUYER_CANCEL")
RESPOND_CANCEL = "SELLER_RESPOND_CANCEL"  # 202309
RESPOND_BUYER_CANCEL = "SELLER_RESPOND_BUYER_CANCEL"  # 202602

APPROVE = "APPROVE_REQUEST_CANCEL"  # Get Decision Eligibility's names for the two answers
REJECT = "REJECT_REQUEST_CANCEL"
DECISIONS = (APPROVE, REJECT)

# The windows a seller may choose for answering (Seller Center); None is "before ready-to-ship".
WINDOWS: tuple[int | None, ...] = (1, 3, 5, None)
_WINDOW_BY_SHOP: tuple[int | None, ...] = (None, 3, 1, 5)
READY_TO_SHIP_HOURS = (24, 72)  # an order must be ready to ship this long after it was paid
CANCELLATIONS_PER_RETURN = 0.4  # a shop's usual cancellations per return over the same time (the demo's)
SIMULATED_SELLER_CUTOFF = 3 * DAY  # history older than this (before the anchor) was answered by a simulated seller
_ID_BASE = 5035 * 10**15  # above every return id (cases.return_id_for): the two never meet in one store
_BUYER_CANCEL_P = 0.85  # the rest are cancelled by the seller or the system, with nothing to answer
_WITHDRAW_P = 0.06
_SELLER_APPROVES_P = 0.82
_MAX_SLOT = 1 << 18

CANCEL_REASONS: dict[str, Reason] = {
    key: REFUND_REASONS[key] for key in ("created_by_mistake", "no_longer_needed", "long_shipping_time", "better_price")
}
_CANCEL_REASON_WEIGHTS = {"created_by_mistake": 30, "no_longer_needed": 30, "long_shipping_time": 20,
                          "better_price": 20}
_SYSTEM_REASON = Reason("ecom_order_to_ship_canceled_reason_out_of_stock", "Out of stock", True)
REJECT_REASONS: tuple[tuple[str, str], ...] = (
    ("seller_reject_apply_product_has_been_packed", "The product has been packed"),
    ("seller_reject_apply_package_has_been_shipped", "The package has already been shipped"),
    ("seller_reject_apply_you_have_reached_an_agreement_with_the_buyer",
     "You have reached an agreement with the buyer"),
)
REJECT_REASON_TEXTS = dict(REJECT_REASONS)


def cancel_id_for(create_time: int, shop_index: int, slot: int) -> int:
    return return_id_for(create_time, shop_index, slot) - 4035 * 10**15 + _ID_BASE


def window_hours(shop: Shop) -> int | None:
    """The answer window this shop chose: 1, 3 or 5 hours, or None for "before ready-to-ship". The first shop
    (the demo's) answers before ready-to-ship, so its queue has cancellations waiting most of the time."""
    return _WINDOW_BY_SHOP[shop.index % len(_WINDOW_BY_SHOP)]


def window_words(hours: int | None) -> str:
    return "before the order is ready to ship" if hours is None else f"within {hours} h"


@dataclass(frozen=True)
class CancelDecision:
    """A seller's answer to a cancellation (already checked for shape)."""

    name: str  # APPROVE or REJECT
    reject_reason: str | None = None
    comment: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "reject_reason": self.reject_reason, "comment": self.comment}

    @classmethod
    def from_json(cls, doc: dict) -> CancelDecision:
        return cls(doc["name"], doc.get("reject_reason"), doc.get("comment"))


@dataclass(eq=False)
class CancelCase:
    shop: Shop
    key: int
    order_id: str
    buyer_user_id: str
    cancel_type: str
    role: str
    reason: Reason
    create_time: int
    ready_to_ship_by: int  # the order's ready-to-ship deadline
    lines: list[LineItem]
    rng: random.Random
    status: str = ""
    update_time: int = 0
    seller_action: int | None = None  # the deadline while the seller must answer
    records: list[dict] = field(default_factory=list)
    next_event: tuple[int, str] | None = None
    version: int = 0
    _json: dict[str, bytes] = field(default_factory=dict)

    @property
    def cancel_id(self) -> str:
        return str(self.key)

    @property
    def currency(self) -> str:
        return self.shop.currency

    def touch(self, t: int, record: dict) -> None:
        self.update_time = t
        self.records.append({**record, "create_time": t})
        self._json.clear()

    def to_json(self, version: str = "202309") -> bytes:
        """The Search Cancellations object of that API version, encoded once per change."""
        if version not in self._json:
            self._json[version] = json.dumps(self.as_dict(version), separators=(",", ":"),
                                              ensure_ascii=False).encode()
        return self._json[version]

    def as_dict(self, version: str = "202309") -> dict:
        newer = version >= "202602"
        status = CLOSED_202309 if self.status == CLOSED and not newer else self.status
        doc: dict = {
            "cancel_id": self.cancel_id,
            "order_id": self.order_id,
            "cancel_type": self.cancel_type,
            "cancel_status": status,
            "role": self.role,
            "cancel_reason": self.reason.code,
            "cancel_reason_text": self.reason.text,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "refund_amount": _amount(self.currency, self.lines),
            "cancel_line_items": [_line_json(self.currency, line) for line in self.lines],
        }
        if self.seller_action is not None:
            action = RESPOND_BUYER_CANCEL if newer else RESPOND_CANCEL
            doc["seller_next_action_response"] = [{"action": action, "deadline": self.seller_action}]
        if newer:
            doc["should_replenish_stock"] = self.status in (SUCCESS, COMPLETE)
        return doc


def _line_json(currency: str, line: LineItem) -> dict:
    return {
        "cancel_line_item_id": line.return_line_item_id,
        "order_line_item_id": line.order_line_item_id,
        "sku_id": line.sku.sku_id,
        "seller_sku": line.sku.seller_sku,
        "sku_name": line.sku.sku_name,
        "product_name": line.sku.product_name,
        "product_image": {"url": line.sku.image_url, "width": 800, "height": 800},
        "refund_amount": _amount(currency, [line]),
    }


def decision_error(case: CancelCase, decision: CancelDecision) -> tuple[int, str] | None:
    """Why TikTok would refuse this answer now, as (code, message); None when it fits."""
    if case.cancel_type != "BUYER_CANCEL":
        return errors.DECISION_NOT_FIT, (f"Cancellation {case.cancel_id} was made by the seller or the system: "
                                         "there is nothing to approve or reject.")
    if case.status != PENDING:
        return errors.ALREADY_DECIDED, (f"Cancellation {case.cancel_id} is {case.status}: it is not waiting for the "
                                        "seller (already decided, withdrawn or closed).")
    if decision.name == REJECT and decision.reject_reason not in REJECT_REASON_TEXTS:
        return errors.REASON_INVALID, (f"reject_reason {decision.reject_reason!r} is not valid for cancellation "
                                       f"{case.cancel_id}; valid: {', '.join(REJECT_REASON_TEXTS)}.")
    return None


def reject_reasons(case: CancelCase) -> tuple[tuple[str, str], ...]:
    return REJECT_REASONS if case.status == PENDING and case.cancel_type == "BUYER_CANCEL" else ()


def eligibility(case: CancelCase, name: str) -> dict:
    """Get Decision Eligibility's answer for one decision on this cancellation."""
    if name not in DECISIONS:
        return {"decision": name, "eligible": False, "ineligible_code": errors.DECISION_NOT_FIT,
                "ineligible_reason": f"Decision {name} does not fit a cancellation request."}
    refusal = decision_error(case, CancelDecision(name, REJECT_REASONS[0][0]))
    if refusal is not None:
        return {"decision": name, "eligible": False, "ineligible_code": refusal[0], "ineligible_reason": refusal[1]}
    answer: dict = {"decision": name, "eligible": True}
    if name == REJECT:
        answer["available_reject_reasons"] = [{"name": key, "text": text} for key, text in REJECT_REASONS]
    return answer


@dataclass(frozen=True)
class _Arrival:
    shop: Shop
    create_time: int
    slot: int
    rng_key: str


class Cancellations:
    """Every shop's cancellations over time: arrivals, steps and seller answers, in time order."""

    def __init__(self, catalogue, *, anchor: int, history_days: int, per_shop: int):
        self.seed = catalogue.seed
        self.catalogue = catalogue
        self.anchor = anchor
        self.history_days = history_days
        self.per_shop = per_shop
        self.windows = {shop.id: window_hours(shop) for shop in catalogue.shops}
        self.time = -1
        self._by_id: dict[int, CancelCase] = {}
        self._by_shop: dict[str, list[CancelCase]] = {shop.id: [] for shop in catalogue.shops}
        self._versions: dict[str, int] = dict.fromkeys(self._by_shop, 0)
        self._arrivals: dict[int, _Arrival] = {}
        self._heap: list[tuple[int, int, int]] = []
        self._next_hour = 0
        self._buyers = max(50, int(per_shop * 0.8))
        # told of every step (a case opened: before = ""), as World.listener is of returns' steps; set by
        # the live sandbox after its replay, so CANCELLATION_STATUS_CHANGE webhooks go out for the present only
        self.listener: Callable[[CancelCase, str], None] | None = None
        for shop in catalogue.shops:
            for arrival in self._history(shop):
                self._queue(arrival)
        heapq.heapify(self._heap)

    # --- reading ------------------------------------------------------------------------------

    def cases(self, shop_id: str) -> list[CancelCase]:
        return self._by_shop[shop_id]

    def case(self, cancel_id: str) -> CancelCase | None:
        return self._by_id.get(int(cancel_id)) if cancel_id.isascii() and cancel_id.isdigit() else None

    def case_by_key(self, key: int) -> CancelCase:
        return self._by_id[key]

    def version(self, shop_id: str) -> int:
        return self._versions[shop_id]

    # --- moving -------------------------------------------------------------------------------

    def run_until(self, t: int) -> None:
        if t <= self.time:
            return
        while self.anchor + self._next_hour * HOUR <= t:
            for shop in self.catalogue.shops:
                for arrival in self._hour_bucket(shop, self._next_hour):
                    self._queue(arrival, push=True)
            self._next_hour += 1
        heap = self._heap
        while heap and heap[0][0] <= t:
            _, key, version = heapq.heappop(heap)
            if version < 0:
                case = self._open(self._arrivals.pop(key))
                self._notify(case, "")
            else:
                case = self._by_id[key]
                if case.version != version:
                    continue
            while case.next_event is not None and case.next_event[0] <= t:
                when, kind = case.next_event
                case.next_event = None
                before = case.status
                getattr(self, f"_on_{kind}")(case, when)
                self._notify(case, before)
            self._changed(case)
        self.time = t

    def decide(self, case: CancelCase, decision: CancelDecision) -> None:
        """Apply the seller's (valid) answer now."""
        before = case.status
        self._apply(case, decision, self.time)
        self._changed(case)
        self._notify(case, before)

    def _apply(self, case: CancelCase, decision: CancelDecision, t: int, role: str = "SELLER") -> None:
        """Approve cancels and refunds the order; reject lets it ship."""
        case.seller_action = None
        case.next_event = None
        who = "TikTok Shop" if role == "SYSTEM" else "Seller"
        if decision.name == APPROVE:
            case.status = SUCCESS
            late = " (the seller did not answer in time)" if role == "SYSTEM" else ""
            record = {"event": "SYSTEM_AUTO_APPROVED" if role == "SYSTEM" else "SELLER_APPROVED_CANCELLATION",
                      "role": role, "description": f"{who} approved the cancellation{late}; the order is cancelled"}
            case.next_event = (t + int(case.rng.uniform(1, 24) * HOUR), "refund_paid")
        else:
            case.status = CLOSED
            record = {"event": "SELLER_REJECTED_CANCELLATION", "role": role,
                      "description": f"{who} rejected the cancellation; the order will ship",
                      "reason_text": REJECT_REASON_TEXTS.get(decision.reject_reason or "", "")}
            if decision.comment:
                record["note"] = decision.comment
        case.touch(t, record)

    # --- steps ----------------------------------------------------------------------------------

    def _open(self, arrival: _Arrival) -> CancelCase:
        shop, rng = arrival.shop, random.Random(arrival.rng_key)
        buyer = rng.random() < _BUYER_CANCEL_P
        keys, weights = zip(*_CANCEL_REASON_WEIGHTS.items(), strict=True)
        reason = CANCEL_REASONS[rng.choices(keys, weights)[0]] if buyer else _SYSTEM_REASON
        primary = rng.choices(shop.skus, cum_weights=shop.sku_cum_weights)[0]
        skus = [primary] * rng.choice((1, 1, 1, 2))
        paid = arrival.create_time - int(rng.uniform(0.05, 20) * HOUR)
        ready_by = paid + rng.randint(*READY_TO_SHIP_HOURS) * HOUR
        case = CancelCase(
            shop=shop, key=cancel_id_for(arrival.create_time, shop.index, arrival.slot),
            order_id=f"58{rng.randrange(10**16):016d}",
            buyer_user_id="7493" + digits(self.seed, shop.id, "buyer", rng.randrange(self._buyers), n=15),
            cancel_type="BUYER_CANCEL" if buyer else "CANCEL",
            role="BUYER" if buyer else rng.choice(("SELLER", "SYSTEM")),
            reason=reason, create_time=arrival.create_time, ready_to_ship_by=max(ready_by, arrival.create_time + HOUR),
            lines=_price_lines(rng, shop, skus, reason, shipping_refunded=True), rng=rng)
        self._by_id[case.key] = case
        self._by_shop[shop.id].append(case)
        t = case.create_time
        if not buyer:
            case.status = SUCCESS
            case.touch(t, {"event": f"{case.role}_CANCELLED_ORDER", "role": case.role,
                           "description": f"The order was cancelled by the {case.role.lower()}: {reason.text}"})
            case.next_event = (t + int(rng.uniform(1, 24) * HOUR), "refund_paid")
            return case
        case.status = PENDING
        hours = self.windows[shop.id]
        deadline = case.ready_to_ship_by if hours is None else t + hours * HOUR
        case.seller_action = deadline
        case.touch(t, {"event": "BUYER_REQUESTED_CANCELLATION", "role": "BUYER",
                       "description": "Buyer asked to cancel the order", "reason_text": reason.text})
        if rng.random() < _WITHDRAW_P:
            case.next_event = (rng.randint(t + 60, max(t + 60, deadline - 60)), "buyer_withdraws")
            return case
        decide_at = t + int((deadline - t) * rng.uniform(0.05, 0.9))
        if case.create_time < self.anchor - SIMULATED_SELLER_CUTOFF and decide_at < self.anchor:
            case.next_event = (decide_at, "seller_answers")
        else:
            case.next_event = (deadline, "auto_approve")
        return case

    def _on_seller_answers(self, case: CancelCase, t: int) -> None:
        if case.rng.random() < _SELLER_APPROVES_P:
            self._apply(case, CancelDecision(APPROVE), t)
        else:
            self._apply(case, CancelDecision(REJECT, case.rng.choice(REJECT_REASONS)[0]), t)

    def _on_auto_approve(self, case: CancelCase, t: int) -> None:
        self._apply(case, CancelDecision(APPROVE), t, role="SYSTEM")

    def _on_buyer_withdraws(self, case: CancelCase, t: int) -> None:
        case.seller_action = None
        case.status = CLOSED
        case.touch(t, {"event": "BUYER_WITHDREW_CANCELLATION", "role": "BUYER",
                       "description": "Buyer withdrew the cancellation request; the order will ship"})

    def _on_refund_paid(self, case: CancelCase, t: int) -> None:
        case.status = COMPLETE
        total = sum((line.total for line in case.lines), Decimal(0))
        case.touch(t, {"event": "REFUND_COMPLETED", "role": "SYSTEM",
                       "description": f"Refund of {fmt(total)} {case.currency} was issued to the buyer"})

    def _notify(self, case: CancelCase, before: str) -> None:
        """Tell the listener (if any) that `case` just took a step from status `before`."""
        if self.listener is not None:
            self.listener(case, before)

    def _changed(self, case: CancelCase) -> None:
        case.version += 1
        self._versions[case.shop.id] += 1
        if case.next_event is not None:
            heapq.heappush(self._heap, (case.next_event[0], case.key, case.version))

    # --- when requests arrive ---------------------------------------------------------------------

    def _queue(self, arrival: _Arrival, push: bool = False) -> None:
        key = cancel_id_for(arrival.create_time, arrival.shop.index, arrival.slot)
        self._arrivals[key] = arrival
        entry = (arrival.create_time, key, -1)
        if push:
            heapq.heappush(self._heap, entry)
        else:
            self._heap.append(entry)

    def _history(self, shop: Shop) -> list[_Arrival]:
        rng = random.Random(f"sandbox:{self.seed}:{shop.index}:cancel-history")
        start = self.anchor - self.history_days * DAY
        days = range(self.history_days)
        day_weights = [weekday_weight(start + d * DAY) for d in days]
        hour_weights = [DIURNAL[(h + shop.local.utc_offset) % 24] for h in range(24)]
        picked_days = rng.choices(days, day_weights, k=self.per_shop)
        picked_hours = rng.choices(range(24), hour_weights, k=self.per_shop)
        times = sorted(start + d * DAY + h * HOUR + rng.randrange(HOUR)
                       for d, h in zip(picked_days, picked_hours, strict=True))
        return [_Arrival(shop, t, slot, f"sandbox:{self.seed}:{shop.index}:cancel:h:{slot}")
                for slot, t in enumerate(times)]

    def _hour_bucket(self, shop: Shop, hour: int) -> list[_Arrival]:
        rng = random.Random(f"sandbox:{self.seed}:{shop.index}:cancel-hour:{hour}")
        begin = self.anchor + hour * HOUR
        local_hour = (datetime.fromtimestamp(begin, UTC).hour + shop.local.utc_offset) % 24
        rate = self.per_shop / (self.history_days * 24) * weekday_weight(begin) * DIURNAL[local_hour] / DIURNAL_MEAN
        count = min(poisson(rng, rate), _MAX_SLOT - 1)
        times = sorted(begin + rng.randrange(HOUR) for _ in range(count))
        return [_Arrival(shop, t, slot, f"sandbox:{self.seed}:{shop.index}:cancel:f:{hour}:{slot}")
                for slot, t in enumerate(times)]
