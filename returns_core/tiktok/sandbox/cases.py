"""One return ("case"): its fixed facts drawn at creation, its mutable lifecycle state, and its
JSON exactly as Search Returns serializes it (docs/tiktok_api.md section 4.1).

A case owns its random.Random, seeded from (seed, shop, arrival slot), so each case is a pure
function of the seed, the time it is looked at, and the seller decisions applied to it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import Decimal

from .catalogue import (
    CDN,
    PLANTED_SHOP_INDEX,
    PLANTED_SIZE_REASON_WEIGHTS,
    PLANTED_SIZE_SKU,
    PLANTED_SPIKE_SKU,
    REFUND,
    REFUND_REASON_WEIGHTS,
    REFUND_REASONS,
    REPLACEMENT,
    RETURN_AND_REFUND,
    RETURN_FAMILY,
    RETURN_REASON_WEIGHTS,
    RETURN_REASONS,
    TYPE_WEIGHTS,
    Reason,
    Shop,
    Sku,
    digits,
    money,
)

# Return ids are time-ordered like TikTok's: base + (seconds since EPOCH, shop, slot) packed in bits.
_ID_BASE = 4035 * 10**15
_ID_EPOCH = 1_700_000_000
MAX_SLOT = 1 << 18
PRODUCT_IMAGE_SIZE = 800

_ROLES = ("BUYER", "OPERATOR", "SYSTEM")
_ROLE_WEIGHTS = (0.95, 0.03, 0.02)
_LINE_COUNTS = (1, 2, 3)
_LINE_COUNT_WEIGHTS = (0.74, 0.19, 0.07)
_ORDER_SHIPPING_USD = ("0", "0", "3.99", "4.99", "5.99")
_RETURN_SHIPPING_USD = ("4.99", "5.99", "6.99", "7.99")
_DISCOUNT_RATES = (Decimal("0.05"), Decimal("0.1"), Decimal("0.15"), Decimal("0.2"))
_EVIDENCE_REASONS = frozenset({"defective", "damaged", "wrong_item", "not_as_described", "missing_parts",
                               "missing_product", "damaged_in_transit"})
BUYER_NOTES: dict[str, tuple[str, ...]] = {
    "defective": ("Stopped working after two uses.", "Won't turn on at all.", "Makes a burning smell."),
    "damaged": ("Box was crushed and the item is cracked.", "Arrived scratched."),
    "wrong_item": ("Received a different colour.", "This is not the model I ordered."),
    "not_as_described": ("Looks nothing like the photos.", "Material feels much cheaper than described."),
    "size": ("Runs small, I need a size up.", "Too tight even in my usual size."),
    "missing_parts": ("The lid is missing.", "No charging cable in the box."),
    "changed_mind": ("Ordered by accident.", "Found something I like better."),
    "not_received": ("Tracking says delivered but nothing arrived.",),
    "missing_product": ("Only one of the two items was in the box.",),
}


def _cumulative(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    keys, cum, total = [], [], 0.0
    for key, weight in weights.items():
        total += weight
        keys.append(key)
        cum.append(total)
    return keys, cum


_TYPE_CHOICE = _cumulative(TYPE_WEIGHTS)
_RETURN_FAMILY_WEIGHTS = tuple(TYPE_WEIGHTS[t] for t in RETURN_FAMILY)
_REFUND_REASON_CHOICE = _cumulative(REFUND_REASON_WEIGHTS)
_RETURN_REASON_CHOICE = {category: _cumulative(w) for category, w in RETURN_REASON_WEIGHTS.items()}
_PLANTED_SIZE_CHOICE = _cumulative(PLANTED_SIZE_REASON_WEIGHTS)


def return_id_for(create_time: int, shop_index: int, slot: int) -> int:
    """A unique 19-digit id: two returns share create time, shop and slot only if they are one return.

    The first 16 shops fit in 4 bits beside the slot (the ids every store made so far holds); shops
    past them (an agency-sized sandbox) add their group of 16 above the time field, which stays
    below 2^52 until 2040, so their ids never meet the first 16 shops'."""
    group, index = divmod(shop_index, 16)
    return _ID_BASE + (group << 52) + ((create_time - _ID_EPOCH) << 22 | index << 18 | slot)


def fmt(amount: Decimal) -> str:
    """TikTok's money strings: decimal, no trailing zeros ("12.5", "10", "0")."""
    text = format(money(amount), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class LineItem:
    return_line_item_id: str
    order_line_item_id: str
    sku: Sku
    subtotal: Decimal
    shipping: Decimal
    tax: Decimal
    seller_discount: Decimal
    platform_discount: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping + self.tax


@dataclass(frozen=True)
class Tracking:
    number: str
    provider_name: str
    provider_id: str


@dataclass(eq=False)
class ReturnCase:
    shop: Shop
    key: int  # int(return_id): the keyset tiebreaker
    order_id: str
    buyer_user_id: str
    return_type: str
    role: str
    reason_key: str
    reason: Reason
    create_time: int
    lines: list[LineItem]
    shipping_fee_platform_discount: Decimal
    return_shipping: tuple[Decimal, Decimal, Decimal]  # paid by buyer, platform, seller
    shipment_type: str | None
    handover_method: str | None
    rng: random.Random
    # mutable lifecycle state
    status: str = ""
    update_time: int = 0
    arbitration_status: str | None = None
    seller_action: tuple[str, int] | None = None  # (action, deadline) while the seller must act
    tracking: Tracking | None = None
    shipping_document_type: str | None = None
    warehouse_address: str | None = None
    can_buyer_keep_item: bool | None = None
    seller_proposed_return_type: str | None = None
    partial_refund: Decimal | None = None
    buyer_rejected_partial_refund: bool | None = None
    records: list[dict] = field(default_factory=list)
    next_event: tuple[int, str] | None = None  # the one scheduled lifecycle step
    version: int = 0  # bumped on every change; stale scheduler entries carry an older one
    _json: bytes | None = None

    @property
    def return_id(self) -> str:
        return str(self.key)

    @property
    def currency(self) -> str:
        return self.shop.currency

    @property
    def refund_total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def return_method(self) -> str | None:
        if self.shipment_type is None:
            return None
        return "PLATFORM_SHIPPED" if self.shipment_type == "PLATFORM" else "BUYER_SHIPPED"

    def touch(self, t: int, record: dict) -> None:
        """Every transition moves update_time and appends a record (docs section 5)."""
        self.update_time = t
        self.records.append({**record, "create_time": t})
        self._json = None

    def to_json(self) -> bytes:
        """The Search Returns object, encoded once per change (paging serves these bytes as they are)."""
        if self._json is None:
            self._json = json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False).encode()
        return self._json

    def as_dict(self) -> dict:
        currency = self.currency
        doc: dict = {
            "return_id": self.return_id,
            "order_id": self.order_id,
            "return_type": self.return_type,
            "return_status": self.status,
            "role": self.role,
            "return_reason": self.reason.code,
            "return_reason_text": self.reason.text,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "refund_amount": _amount(currency, self.lines),
            "discount_amount": [{
                "currency": currency,
                "product_platform_discount": fmt(sum((x.platform_discount for x in self.lines), Decimal(0))),
                "product_seller_discount": fmt(sum((x.seller_discount for x in self.lines), Decimal(0))),
                "shipping_fee_platform_discount": fmt(self.shipping_fee_platform_discount),
                "shipping_fee_seller_discount": "0",
            }],
            "shipping_fee_amount": [{
                "currency": currency,
                "buyer_paid_return_shipping_fee": fmt(self.return_shipping[0]),
                "platform_paid_return_shipping_fee": fmt(self.return_shipping[1]),
                "seller_paid_return_shipping_fee": fmt(self.return_shipping[2]),
            }],
            "return_line_items": [_line_json(currency, line) for line in self.lines],
            "is_combined_return": False,
        }
        optional = {
            "arbitration_status": self.arbitration_status,
            "shipment_type": self.shipment_type,
            "handover_method": self.handover_method,
            "return_method": self.return_method,
            "return_shipping_document_type": self.shipping_document_type,
            "can_buyer_keep_item": self.can_buyer_keep_item,
            "seller_proposed_return_type": self.seller_proposed_return_type,
            "buyer_rejected_partial_refund": self.buyer_rejected_partial_refund,
        }
        doc.update({k: v for k, v in optional.items() if v is not None})
        if self.seller_action is not None:
            action, deadline = self.seller_action
            doc["seller_next_action_response"] = [{"action": action, "deadline": deadline}]
        if self.tracking is not None:
            doc["return_tracking_number"] = self.tracking.number
            doc["return_provider_name"] = self.tracking.provider_name
            doc["return_provider_id"] = self.tracking.provider_id
        if self.warehouse_address is not None:
            doc["return_warehouse_address"] = {"full_address": self.warehouse_address}
        if self.partial_refund is not None:
            doc["partial_refund"] = {"amount": fmt(self.partial_refund), "currency": currency}
        return doc


def _amount(currency: str, lines: list[LineItem]) -> dict:
    subtotal = sum((x.subtotal for x in lines), Decimal(0))
    shipping = sum((x.shipping for x in lines), Decimal(0))
    tax = sum((x.tax for x in lines), Decimal(0))
    return {"currency": currency, "refund_total": fmt(subtotal + shipping + tax), "refund_subtotal": fmt(subtotal),
            "refund_shipping_fee": fmt(shipping), "refund_tax": fmt(tax)}


def _line_json(currency: str, line: LineItem) -> dict:
    return {
        "return_line_item_id": line.return_line_item_id,
        "order_line_item_id": line.order_line_item_id,
        "sku_id": line.sku.sku_id,
        "seller_sku": line.sku.seller_sku,
        "sku_name": line.sku.sku_name,
        "product_name": line.sku.product_name,
        "product_image": {"url": line.sku.image_url, "width": PRODUCT_IMAGE_SIZE, "height": PRODUCT_IMAGE_SIZE},
        "refund_amount": _amount(currency, [line]),
    }


# --- Creation ------------------------------------------------------------------------------------


def new_case(shop: Shop, create_time: int, slot: int, rng: random.Random, *, seed: int, buyers: int,
             spike_probability: float) -> ReturnCase:
    """Draw a new return's facts. `buyers` is the shop's buyer pool size (repeat buyers happen);
    `spike_probability` is the chance this return is one of the planted defective blenders."""
    if spike_probability and rng.random() < spike_probability:
        return_type = rng.choices(RETURN_FAMILY, _RETURN_FAMILY_WEIGHTS)[0]
        primary = shop.sku(PLANTED_SPIKE_SKU)
        reason_key = "defective"
    else:
        return_type = rng.choices(_TYPE_CHOICE[0], cum_weights=_TYPE_CHOICE[1])[0]
        primary = rng.choices(shop.skus, cum_weights=shop.sku_cum_weights)[0]
        reason_key = _pick_reason(rng, shop, return_type, primary)
    reason = REFUND_REASONS[reason_key] if return_type == REFUND else RETURN_REASONS[reason_key]
    skus = [primary] + [_extra_sku(rng, shop, primary) for _ in range(rng.choices(_LINE_COUNTS,
                                                                                   _LINE_COUNT_WEIGHTS)[0] - 1)]
    lines = _price_lines(rng, shop, skus, reason, shipping_refunded=_refunds_shipping(reason))
    shipment_type = handover = None
    if return_type == RETURN_AND_REFUND:
        shipment_type = "PLATFORM" if rng.random() < 0.8 else "BUYER_ARRANGE"
        handover = (rng.choice(("DROP_OFF", "DROP_OFF", "PICKUP")) if shipment_type == "PLATFORM" else None)
    return ReturnCase(
        shop=shop,
        key=return_id_for(create_time, shop.index, slot),
        order_id=f"57{rng.randrange(10**16):016d}",
        buyer_user_id="7493" + digits(seed, shop.id, "buyer", rng.randrange(buyers), n=15),
        return_type=return_type,
        role=rng.choices(_ROLES, _ROLE_WEIGHTS)[0],
        reason_key=reason_key,
        reason=reason,
        create_time=create_time,
        lines=lines,
        shipping_fee_platform_discount=_shipping_voucher(rng, shop),
        return_shipping=_return_shipping(rng, shop, return_type, reason),
        shipment_type=shipment_type,
        handover_method=handover,
        rng=rng,
        can_buyer_keep_item=True if return_type == REPLACEMENT else None,
    )


def _pick_reason(rng: random.Random, shop: Shop, return_type: str, primary: Sku) -> str:
    if return_type == REFUND:
        keys, cum = _REFUND_REASON_CHOICE
    elif primary.seller_sku == PLANTED_SIZE_SKU and shop.index == PLANTED_SHOP_INDEX:
        keys, cum = _PLANTED_SIZE_CHOICE
    else:
        keys, cum = _RETURN_REASON_CHOICE[primary.category]
    return rng.choices(keys, cum_weights=cum)[0]


def _extra_sku(rng: random.Random, shop: Shop, primary: Sku) -> Sku:
    """A second unit of the same SKU half the time, else another SKU from the same order."""
    if rng.random() < 0.5:
        return primary
    return rng.choices(shop.skus, cum_weights=shop.sku_cum_weights)[0]


def _refunds_shipping(reason: Reason) -> bool:
    """Shipping is refunded when the seller is at fault or the order never shipped."""
    return reason.seller_at_fault or reason.code.startswith("ecom_order_to_ship_canceled")


def _price_lines(rng: random.Random, shop: Shop, skus: list[Sku], reason: Reason,
                 shipping_refunded: bool) -> list[LineItem]:
    region = shop.local
    tax_rate = Decimal(rng.choice(region.tax_rates))
    lines = []
    for sku in skus:
        seller_discount = money(sku.price * rng.choice(_DISCOUNT_RATES)) if rng.random() < 0.35 else Decimal(0)
        platform_discount = (money(sku.price * Decimal(rng.randint(3, 10)) / 100)
                             if rng.random() < 0.25 else Decimal(0))
        subtotal = sku.price - seller_discount - platform_discount
        lines.append(LineItem(
            return_line_item_id=f"4035{rng.randrange(10**15):015d}",
            order_line_item_id=f"57{rng.randrange(10**16):016d}",
            sku=sku, subtotal=subtotal, shipping=Decimal(0), tax=money(subtotal * tax_rate),
            seller_discount=seller_discount, platform_discount=platform_discount))
    if shipping_refunded:
        # the order's shipping fee is refunded once; it sits on the first line so lines still sum exactly
        lines[0].shipping = money(Decimal(rng.choice(_ORDER_SHIPPING_USD)) * region.fx)
    return lines


def _shipping_voucher(rng: random.Random, shop: Shop) -> Decimal:
    return money(Decimal("3.99") * shop.local.fx) if rng.random() < 0.2 else Decimal(0)


def _return_shipping(rng: random.Random, shop: Shop, return_type: str,
                     reason: Reason) -> tuple[Decimal, Decimal, Decimal]:
    """Who pays the label back: free-returns promotions, the seller when at fault, else the buyer."""
    if return_type != RETURN_AND_REFUND:
        return Decimal(0), Decimal(0), Decimal(0)
    fee = money(Decimal(rng.choice(_RETURN_SHIPPING_USD)) * shop.local.fx)
    if rng.random() < 0.15:
        return Decimal(0), fee, Decimal(0)
    if reason.seller_at_fault:
        return Decimal(0), Decimal(0), fee
    return fee, Decimal(0), Decimal(0)


def request_record(case: ReturnCase) -> dict:
    """The first record: who opened the request, why, with the buyer's note and evidence."""
    rng = case.rng
    kind = {REFUND: "refund", RETURN_AND_REFUND: "return", REPLACEMENT: "replacement"}[case.return_type]
    description = {
        "BUYER": f"Buyer submitted a {kind} request",
        "OPERATOR": f"Customer service opened a {kind} request for the buyer",
        "SYSTEM": f"TikTok Shop opened a {kind} request automatically",
    }[case.role]
    record: dict = {"event": f"{case.role}_REQUESTED_{case.return_type}", "role": case.role,
                    "description": description, "reason_text": case.reason.text}
    notes = BUYER_NOTES.get(case.reason_key)
    if notes and rng.random() < 0.5:
        record["note"] = rng.choice(notes)
    if case.reason_key in _EVIDENCE_REASONS and rng.random() < 0.6:
        record["images"] = [{"url": f"{CDN}/obj/{rng.randrange(16**24):024x}~tplv-evidence.jpeg",
                             "width": 1080, "height": 1440} for _ in range(rng.randint(1, 3))]
        if case.reason_key == "defective" and rng.random() < 0.3:
            record["videos"] = [{"url": f"{CDN}/video/{rng.randrange(16**24):024x}.mp4",
                                 "cover": f"{CDN}/obj/{rng.randrange(16**24):024x}~tplv-cover.jpeg",
                                 "width": 720, "height": 1280, "duration_millis": rng.randint(4, 30) * 1000}]
    return record
