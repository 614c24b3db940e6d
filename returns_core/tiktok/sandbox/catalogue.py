"""The sandbox's static world: shops, products and SKUs, reason codes and texts, reject reasons.

Everything is a pure function of the seed (random.Random seeded from it, never the global RNG),
so the same seed always yields the same shops and products.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

DAY = 86_400
HOUR = 3_600
CENT = Decimal("0.01")

# --- Planted quality patterns (what analytics must find; tests assert on these) ------------------

PLANTED_SHOP_INDEX = 0  # both patterns live in the first shop
PLANTED_SPIKE_SKU = "BLND-200-BLK"
PLANTED_SPIKE_REASON_CODE = "ecom_order_delivered_refund_and_return_reason_defective_product"
PLANTED_SPIKE_REASON_TEXT = "Product is defective or doesn't work"
PLANTED_SPIKE_START = -10 * DAY  # anchor-relative: the spike starts 10 days before the anchor, never ends
PLANTED_SPIKE_FACTOR = 5.0  # defective returns of that SKU per day, after vs before the start
PLANTED_SIZE_SKU = "LGNG-HW-M-BLK"
PLANTED_SIZE_REASON_CODE = "ecom_order_delivered_refund_and_return_reason_size_not_fit"
PLANTED_SIZE_REASON_TEXT = "Size doesn't fit"
PLANTED_SIZE_SHARE = 0.72  # share of that SKU's return-and-refund / replacement requests giving that reason

# --- Return types --------------------------------------------------------------------------------

REFUND = "REFUND"
RETURN_AND_REFUND = "RETURN_AND_REFUND"
REPLACEMENT = "REPLACEMENT"
TYPE_WEIGHTS: dict[str, float] = {REFUND: 0.35, RETURN_AND_REFUND: 0.55, REPLACEMENT: 0.10}
RETURN_FAMILY = (RETURN_AND_REFUND, REPLACEMENT)  # types where the buyer asks about a delivered item


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    seller_at_fault: bool  # decides who pays shipping and whether it is refunded


def _reason(code: str, text: str, seller_at_fault: bool) -> Reason:
    return Reason(code, text, seller_at_fault)


_RR = "ecom_order_delivered_refund_and_return_reason_"
RETURN_REASONS: dict[str, Reason] = {
    "defective": _reason(PLANTED_SPIKE_REASON_CODE, PLANTED_SPIKE_REASON_TEXT, True),
    "damaged": _reason(_RR + "damaged_product", "Product arrived damaged", True),
    "wrong_item": _reason(_RR + "wrong_product_seller", "Wrong product was sent", True),
    "not_as_described": _reason(_RR + "not_as_described", "Product doesn't match the description or photos", True),
    "size": _reason(PLANTED_SIZE_REASON_CODE, PLANTED_SIZE_REASON_TEXT, False),
    "missing_parts": _reason(_RR + "missing_accessories", "Missing parts or accessories", True),
    "changed_mind": _reason(_RR + "no_longer_needed", "No longer needed / changed my mind", False),
    "other": _reason(_RR + "other", "Other", False),
}

_RF = "ecom_order_delivered_refund_reason_"
_TS = "ecom_order_to_ship_canceled_reason_"
# Refund-only requests: delivery problems, plus refunds asked for before the order shipped.
REFUND_REASONS: dict[str, Reason] = {
    "missing_product": _reason(_RF + "missing_product_seller", "Package is missing items", True),
    "not_received": _reason(_RF + "package_not_received", "Package wasn't received", True),
    "late_delivery": _reason(_RF + "late_delivery", "Package arrived too late", True),
    "damaged_in_transit": _reason(_RF + "damaged_in_transit", "Package or item damaged in transit", True),
    "refund_other": _reason(_RF + "other", "Other", False),
    "created_by_mistake": _reason(_TS + "created_by_mistakes", "Order created by mistake", False),
    "no_longer_needed": _reason(_TS + "no_longer_needed", "No longer needed", False),
    "long_shipping_time": _reason(_TS + "long_shipping_time", "Shipping takes too long", True),
    "better_price": _reason(_TS + "better_price", "Found a better price elsewhere", False),
}
REFUND_REASON_WEIGHTS: dict[str, float] = {
    "missing_product": 14, "not_received": 22, "late_delivery": 10, "damaged_in_transit": 14, "refund_other": 6,
    "created_by_mistake": 10, "no_longer_needed": 10, "long_shipping_time": 8, "better_price": 6,
}
# Why buyers send delivered items back, by product category.
RETURN_REASON_WEIGHTS: dict[str, dict[str, float]] = {
    "appliance": {"defective": 30, "damaged": 12, "wrong_item": 4, "not_as_described": 12, "missing_parts": 9,
                  "changed_mind": 26, "other": 7},
    "kitchen": {"defective": 8, "damaged": 18, "wrong_item": 6, "not_as_described": 16, "missing_parts": 8,
                "changed_mind": 36, "other": 8},
    "home": {"defective": 6, "damaged": 16, "wrong_item": 8, "not_as_described": 24, "changed_mind": 36, "other": 10},
    "apparel": {"size": 26, "not_as_described": 20, "changed_mind": 24, "defective": 4, "damaged": 3,
                "wrong_item": 9, "other": 14},
    "beauty": {"defective": 6, "damaged": 20, "wrong_item": 8, "not_as_described": 22, "changed_mind": 32,
               "other": 12},
    "electronics": {"defective": 24, "damaged": 10, "wrong_item": 6, "not_as_described": 16, "missing_parts": 12,
                    "changed_mind": 25, "other": 7},
    "outdoor": {"defective": 12, "damaged": 14, "wrong_item": 6, "not_as_described": 20, "missing_parts": 8,
                "changed_mind": 30, "other": 10},
    "pets_toys": {"defective": 10, "damaged": 14, "wrong_item": 7, "not_as_described": 18, "missing_parts": 11,
                  "changed_mind": 30, "other": 10},
}
# The planted size SKU runs small: most of its returns say so.
PLANTED_SIZE_REASON_WEIGHTS: dict[str, float] = {
    "size": PLANTED_SIZE_SHARE * 100, "not_as_described": 8, "changed_mind": 10, "wrong_item": 4, "other": 6,
}

# --- Reject reasons (Get Reject Reasons): they depend on what the seller is rejecting ------------

_AGREEMENT = ("seller_reject_apply_you_have_reached_an_agreement_with_the_buyer",
              "You have reached an agreement with the buyer")
_EVIDENCE = ("seller_reject_apply_insufficient_evidence", "The buyer's evidence is insufficient")
REJECT_REASONS: dict[str, tuple[tuple[str, str], ...]] = {
    "SELLER_RESPOND_REFUND": (
        ("seller_reject_apply_package_has_not_exceeded_estimated_delivery_time",
         "The package has not exceeded the estimated delivery time"),
        ("seller_reject_apply_tracking_shows_delivered", "Tracking shows the package was delivered"),
        _AGREEMENT, _EVIDENCE),
    "SELLER_RESPOND_RETURN": (
        ("seller_reject_apply_product_not_eligible_for_return", "The product is not eligible for return"),
        ("seller_reject_apply_return_window_expired", "The return window has expired"),
        _AGREEMENT, _EVIDENCE),
    "SELLER_RESPOND_RECEIVE_PACKAGE": (
        ("seller_reject_receive_product_used_or_damaged_by_buyer", "The returned product was used or damaged"),
        ("seller_reject_receive_wrong_product_returned", "The returned product is not the one sold"),
        ("seller_reject_receive_missing_items", "The returned package is missing items or accessories"),
        ("seller_reject_receive_empty_package", "The returned package was empty")),
    "SELLER_RESPOND_REPLACEMENT": (
        ("seller_reject_replacement_product_works_as_described", "The product works as described"),
        _AGREEMENT, _EVIDENCE),
}

# --- Shops -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    currency: str
    fx: Decimal  # price multiplier from the USD list prices of the templates
    utc_offset: int  # hours; returns follow the local day
    tax_rates: tuple[str, ...]  # sales tax added on top (US); VAT-inclusive regions have none
    carriers: tuple[tuple[str, str], ...]  # (provider name, provider id)
    warehouse: str


REGIONS: dict[str, Region] = {
    "US": Region("USD", Decimal("1"), -5, ("0", "0.06", "0.0625", "0.07", "0.0725", "0.0825", "0.0875"),
                 (("UPS", "US_UPS"), ("USPS", "US_USPS"), ("FedEx", "US_FEDEX")),
                 "2450 Industrial Pkwy, Reno, NV 89506, United States"),
    "GB": Region("GBP", Decimal("0.8"), 0, ("0",),
                 (("Royal Mail", "GB_RM"), ("Evri", "GB_EVRI"), ("DPD", "GB_DPD")),
                 "Unit 4, Meridian Business Park, Leicester LE19 1WX, United Kingdom"),
    "DE": Region("EUR", Decimal("0.92"), 1, ("0",), (("DHL", "DE_DHL"), ("Hermes", "DE_HERMES")),
                 "Am Lagerhof 12, 04435 Schkeuditz, Germany"),
    "SG": Region("SGD", Decimal("1.35"), 8, ("0",), (("Ninja Van", "SG_NINJAVAN"), ("J&T Express", "SG_JNT")),
                 "21 Toh Guan Road East, #05-11, Singapore 608609"),
    "MY": Region("MYR", Decimal("4.5"), 8, ("0",), (("J&T Express", "MY_JNT"), ("Pos Laju", "MY_POSLAJU")),
                 "Lot 8, Jalan Perindustrian 3, 47100 Puchong, Selangor, Malaysia"),
    "MX": Region("MXN", Decimal("17"), -6, ("0",), (("Estafeta", "MX_ESTAFETA"), ("DHL", "MX_DHL")),
                 "Av. Industrial 455, 54900 Tultitlán, Estado de México, Mexico"),
}

# (name, region, seller_type, focus categories). Shop 0 carries both planted SKUs.
SHOP_TEMPLATES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Northwind Home US", "US", "LOCAL", ("appliance", "kitchen", "home", "apparel")),
    ("Brightleaf Kitchen GB", "GB", "CROSS_BORDER", ("kitchen", "appliance", "home")),
    ("Harbor Lane Outfitters US", "US", "LOCAL", ("apparel", "outdoor", "electronics")),
    ("Kestrel Beauty SG", "SG", "CROSS_BORDER", ("beauty", "home", "electronics")),
    ("Lumen Living DE", "DE", "CROSS_BORDER", ("home", "kitchen", "pets_toys")),
    ("Maple & Moss MY", "MY", "LOCAL", ("beauty", "apparel", "home")),
    ("Casa Azul MX", "MX", "LOCAL", ("kitchen", "pets_toys", "outdoor")),
    ("Fjord Active GB", "GB", "LOCAL", ("outdoor", "apparel", "electronics")),
)
MAX_SHOPS = 256  # return ids keep 4 bits for the shop and 4 more for its group of 16 (cases.return_id_for)
SELLER_NAMES = ("Northwind Trading Co.", "Bluebird Commerce Ltd.", "Juniper Goods LLC", "Copperfield Retail Group")

# --- Products ---------------------------------------------------------------------------------------

_COLOURS = {"BLK": "Black", "WHT": "White", "GRY": "Grey", "NVY": "Navy", "RED": "Red", "GRN": "Sage Green",
            "PNK": "Blush Pink", "BLU": "Blue", "ROSE": "Rose", "CRL": "Coral", "BRY": "Berry"}
_SIZES = ("S", "M", "L", "XL")
_SIZE_WEIGHTS = {"S": 0.2, "M": 0.35, "L": 0.3, "XL": 0.15, "7": 0.15, "8": 0.25, "9": 0.25, "10": 0.2, "11": 0.15}

# (code, product name, category, USD list price, colours, sizes)
PRODUCT_TEMPLATES: tuple[tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("BLND-200", "PowerBlend 200 Countertop Blender, 1.5 L", "appliance", "79.99", ("BLK", "WHT", "RED"), ()),
    ("KTTL-17", "Glass Electric Kettle 1.7 L", "appliance", "34.99", ("BLK", "WHT"), ()),
    ("AIRF-55", "Air Fryer 5.5 Qt with Digital Display", "appliance", "89.99", ("BLK", "GRY"), ()),
    ("GRND-CF", "Burr Coffee Grinder", "appliance", "49.99", ("BLK",), ()),
    ("MIXR-HD", "Hand Mixer, 5 Speeds", "appliance", "29.99", ("WHT", "RED"), ()),
    ("TSTR-2S", "2-Slice Wide Slot Toaster", "appliance", "39.99", ("BLK", "WHT"), ()),
    ("KNIF-8C", "8-Piece Kitchen Knife Set with Block", "kitchen", "59.99", (), ()),
    ("PAN-11N", "11-inch Nonstick Frying Pan", "kitchen", "32.99", (), ()),
    ("STRG-10", "Glass Food Storage Containers, 10-Pack", "kitchen", "27.99", (), ()),
    ("BOTL-32", "Insulated Water Bottle 32 oz", "kitchen", "24.99", ("BLK", "WHT", "GRN", "PNK", "BLU"), ()),
    ("MUG-SET", "Ceramic Mug Set of 4", "kitchen", "26.99", ("WHT", "GRY"), ()),
    ("CUTB-BM", "Bamboo Cutting Board Set", "kitchen", "21.99", (), ()),
    ("THRW-KN", "Chunky Knit Throw Blanket", "home", "39.99", ("GRY", "WHT", "PNK", "GRN"), ()),
    ("PILW-CV", "Linen Pillow Covers, Set of 2", "home", "18.99", ("GRY", "WHT", "GRN"), ()),
    ("LEDS-16", "LED Strip Lights 16 ft with Remote", "home", "19.99", (), ()),
    ("LAMP-DK", "Dimmable LED Desk Lamp", "home", "34.99", ("BLK", "WHT"), ()),
    ("CURT-BO", "Blackout Curtains, 2 Panels", "home", "29.99", ("GRY", "NVY"), ()),
    ("ORGN-DR", "Drawer Organizer Bins, 6-Pack", "home", "16.99", (), ()),
    ("MIRR-RD", "Round Wall Mirror 24 in", "home", "49.99", ("BLK",), ()),
    ("DIFF-AR", "Aroma Diffuser 300 ml", "home", "25.99", ("WHT",), ()),
    ("LGNG-HW", "High-Waist Sculpt Leggings", "apparel", "28.99", ("BLK", "NVY"), _SIZES),
    ("HOOD-FL", "Fleece Pullover Hoodie", "apparel", "42.99", ("GRY", "BLK"), _SIZES),
    ("TEE-CTN", "Organic Cotton Crew Tee", "apparel", "16.99", ("WHT", "BLK", "NVY"), _SIZES),
    ("JCKT-PF", "Lightweight Puffer Jacket", "apparel", "69.99", ("BLK", "GRN"), _SIZES),
    ("SOCK-6P", "Cushioned Crew Socks, 6 Pairs", "apparel", "14.99", (), ("M", "L")),
    ("SNKR-RN", "Everyday Running Sneakers", "apparel", "59.99", (), ("7", "8", "9", "10", "11")),
    ("SERM-VC", "Vitamin C Brightening Serum 30 ml", "beauty", "22.99", (), ()),
    ("LIPT-MT", "Matte Lip Tint", "beauty", "12.99", ("ROSE", "CRL", "BRY"), ()),
    ("SUNS-50", "Daily Mineral Sunscreen SPF 50", "beauty", "18.99", (), ()),
    ("HAIR-DR", "Ionic Hair Dryer 1875 W", "beauty", "49.99", ("BLK", "PNK"), ()),
    ("BRSH-ST", "Makeup Brush Set, 12 Pieces", "beauty", "19.99", (), ()),
    ("MASK-SH", "Sheet Face Masks, 10-Pack", "beauty", "15.99", (), ()),
    ("EARB-TW", "True Wireless Earbuds with Charging Case", "electronics", "39.99", ("BLK", "WHT"), ()),
    ("CHRG-65", "65 W USB-C Fast Charger", "electronics", "29.99", ("WHT",), ()),
    ("CASE-IP", "Shockproof Phone Case for iPhone 15", "electronics", "14.99", ("BLK", "BLU", "PNK"), ()),
    ("PWRB-10", "Power Bank 10,000 mAh", "electronics", "25.99", ("BLK", "WHT"), ()),
    ("SPKR-BT", "Portable Bluetooth Speaker", "electronics", "45.99", ("BLK", "BLU"), ()),
    ("RING-LT", "10-inch Ring Light with Tripod", "electronics", "32.99", (), ()),
    ("CBLE-3P", "Braided USB-C Cable, 3-Pack", "electronics", "12.99", (), ()),
    ("WTCH-SB", "Silicone Smartwatch Band", "electronics", "9.99", ("BLK", "PNK", "GRN"), ()),
    ("YOGA-MT", "Non-Slip Yoga Mat 6 mm", "outdoor", "29.99", ("GRN", "PNK", "BLU"), ()),
    ("DUMB-AD", "Adjustable Dumbbell 25 lb", "outdoor", "89.99", (), ()),
    ("LNTR-CP", "Rechargeable Camping Lantern", "outdoor", "27.99", (), ()),
    ("BAND-RS", "Resistance Bands, Set of 5", "outdoor", "15.99", (), ()),
    ("TENT-2P", "2-Person Pop-Up Tent", "outdoor", "79.99", ("GRN",), ()),
    ("PETB-OR", "Orthopedic Pet Bed, Large", "pets_toys", "49.99", ("GRY",), ()),
    ("TOY-BLK", "Magnetic Building Blocks, 64 Pieces", "pets_toys", "34.99", (), ()),
    ("LSHR-RT", "Retractable Dog Leash 16 ft", "pets_toys", "17.99", ("BLK", "BLU"), ()),
    ("FDTR-AU", "Automatic Pet Feeder", "pets_toys", "64.99", ("WHT",), ()),
    ("PZZL-1K", "1000-Piece Jigsaw Puzzle", "pets_toys", "16.99", (), ()),
)
# Share of shop 0's returns that carry each planted product: the blender is the bestseller.
_PLANTED_PRODUCT_SHARES = {"BLND-200": 0.13, "LGNG-HW": 0.07}
# Within a planted product, the planted variant dominates.
_PLANTED_VARIANT_WEIGHTS = {PLANTED_SPIKE_SKU: 3.0, PLANTED_SIZE_SKU: 3.0}
CDN = "https://p16-sandbox.ttcdn-returns.example"  # a fake CDN host (.example never resolves)


@dataclass(frozen=True)
class Sku:
    sku_id: str
    seller_sku: str
    sku_name: str
    product_id: str
    product_name: str
    category: str
    price: Decimal
    image_url: str


@dataclass(frozen=True)
class Shop:
    index: int
    id: str
    name: str
    region: str
    seller_type: str
    cipher: str
    code: str
    skus: tuple[Sku, ...]
    sku_cum_weights: tuple[float, ...]  # for rng.choices: SKU popularity among returns

    @property
    def currency(self) -> str:
        return REGIONS[self.region].currency

    @property
    def local(self) -> Region:
        return REGIONS[self.region]

    def public(self) -> dict:
        """The shop as GET /authorization/202309/shops lists it."""
        return {"id": self.id, "name": self.name, "region": self.region, "seller_type": self.seller_type,
                "cipher": self.cipher, "code": self.code}

    def sku(self, seller_sku: str) -> Sku:
        return next(s for s in self.skus if s.seller_sku == seller_sku)


@dataclass(frozen=True)
class Catalogue:
    seed: int
    seller_name: str
    open_id: str
    shops: tuple[Shop, ...]

    def shop_by_id(self, shop_id: str) -> Shop | None:
        return next((s for s in self.shops if s.id == shop_id), None)

    def shop_by_cipher(self, cipher: str) -> Shop | None:
        return next((s for s in self.shops if s.cipher == cipher), None)


def digits(*parts: object, n: int) -> str:
    """n decimal digits derived from `parts`: stable across runs (unlike hash())."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return str(int.from_bytes(digest, "big") % 10**n).zfill(n)


def local_price(usd: str, region: Region) -> Decimal:
    """A list price in the shop's currency, rounded to a shelf-looking ending (.99, .90 or whole)."""
    raw = Decimal(usd) * region.fx
    if region.currency == "MXN":
        return Decimal(int(raw / 10) * 10 + 9)
    if region.currency == "MYR":
        return Decimal(int(raw)) + Decimal("0.90")
    return Decimal(int(raw)) + Decimal("0.99")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def build_catalogue(seed: int, shop_count: int) -> Catalogue:
    if not 1 <= shop_count <= MAX_SHOPS:
        raise ValueError(f"shops must be between 1 and {MAX_SHOPS}, got {shop_count}")
    rng = random.Random(f"sandbox:{seed}:seller")
    shops = tuple(_build_shop(seed, index) for index in range(shop_count))
    return Catalogue(seed=seed, seller_name=rng.choice(SELLER_NAMES),
                     open_id="sbx" + digits(seed, "open_id", n=16), shops=shops)


def _build_shop(seed: int, index: int) -> Shop:
    name, region, seller_type, focus = SHOP_TEMPLATES[index % len(SHOP_TEMPLATES)]
    if index >= len(SHOP_TEMPLATES):
        name = f"{name} {index // len(SHOP_TEMPLATES) + 1}"
    rng = random.Random(f"sandbox:{seed}:shop:{index}")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    cipher = "GCP_" + "".join(rng.choice(alphabet) for _ in range(32))
    code = region + ("CB" if seller_type == "CROSS_BORDER" else "LC") + "".join(
        rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
    shop_id = "749" + digits(seed, "shop", index, n=16)
    products = _pick_products(rng, focus, planted=index == PLANTED_SHOP_INDEX)
    skus, weights = _skus_for(seed, shop_id, REGIONS[region], products, rng)
    cum, total = [], 0.0
    for weight in weights:
        total += weight
        cum.append(total)
    return Shop(index=index, id=shop_id, name=name, region=region, seller_type=seller_type, cipher=cipher,
                code=code, skus=tuple(skus), sku_cum_weights=tuple(cum))


def _pick_products(rng: random.Random, focus: tuple[str, ...], planted: bool) -> list[tuple]:
    """25-40 products, mostly from the shop's focus categories; shop 0 always has the planted ones."""
    chosen = [p for p in PRODUCT_TEMPLATES if planted and p[0] in _PLANTED_PRODUCT_SHARES]
    in_focus = [p for p in PRODUCT_TEMPLATES if p[2] in focus and p not in chosen]
    others = [p for p in PRODUCT_TEMPLATES if p[2] not in focus and p not in chosen]
    count = rng.randint(25, 40)
    chosen += rng.sample(in_focus, min(len(in_focus), count - len(chosen)))
    chosen += rng.sample(others, max(0, count - len(chosen)))
    return chosen


def _skus_for(seed: int, shop_id: str, region: Region, products: list[tuple],
              rng: random.Random) -> tuple[list[Sku], list[float]]:
    """SKUs of the chosen products, and how often each shows up in returns."""
    popularity = {p[0]: rng.lognormvariate(0, 0.8) for p in products}
    planted = {code: share for code, share in _PLANTED_PRODUCT_SHARES.items() if code in popularity}
    if planted:  # pin the planted products' share of all returns so the patterns have volume
        rest = sum(w for code, w in popularity.items() if code not in planted)
        scale = rest / (1 - sum(planted.values()))
        popularity.update({code: share * scale for code, share in planted.items()})
    skus: list[Sku] = []
    weights: list[float] = []
    for code, name, category, usd, colours, sizes in products:
        product_id = "172" + digits(seed, shop_id, code, n=16)
        image_url = f"{CDN}/obj/{digits(seed, shop_id, code, 'img', n=12)}~tplv-origin.jpeg"
        variants = _variants(code, colours, sizes)
        variant_total = sum(w for _, _, w in variants)
        for seller_sku, sku_name, weight in variants:
            skus.append(Sku(sku_id="173" + digits(seed, shop_id, seller_sku, n=16), seller_sku=seller_sku,
                            sku_name=sku_name, product_id=product_id, product_name=name, category=category,
                            price=local_price(usd, region), image_url=image_url))
            weights.append(popularity[code] * weight / variant_total)
    return skus, weights


def _variants(code: str, colours: tuple[str, ...], sizes: tuple[str, ...]) -> list[tuple[str, str, float]]:
    """(seller_sku, sku_name, relative weight) for each variant: size x colour, first colour most popular."""
    colour_list = colours or ("",)
    size_list = sizes or ("",)
    variants = []
    for c_index, colour in enumerate(colour_list):
        for size in size_list:
            seller_sku = "-".join(part for part in (code, size, colour) if part)
            sku_name = ", ".join(part for part in (_COLOURS.get(colour, ""), size) if part) or "Standard"
            weight = (1.5 if c_index == 0 else 1.0) * _SIZE_WEIGHTS.get(size, 1.0)
            weight *= _PLANTED_VARIANT_WEIGHTS.get(seller_sku, 1.0)
            variants.append((seller_sku, sku_name, weight))
    return variants
