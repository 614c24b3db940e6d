"""What the sandbox's shops sell: units sold and orders per SKU and shop-local day (the Analytics API).

A shop sells before it takes returns: each return is of an order placed on an earlier day (its order
day), and each unit a SKU sells comes back with the SKU's return rate p (its category's, varied per
SKU). The returns world (world.py) was built first and many tests pin it, so the sales are built
around it without touching a single return, by Poisson thinning: the units a SKU sells on a day are
the units of it in the returns whose order is of that day, plus a Poisson draw of the units that do
not come back, with mean λ·(1 - p), where λ·p is the returned units the world expects of that day's
orders (its arrival intensity on the days after, through the delay from order to return). That is
exactly "λ units sold, each back with chance p": over any period returned units ÷ units sold comes
out at p, and a day's orders never have more units returned than sold. The planted defect
(PLANTED_SPIKE_SKU) adds defective returns of its orders while its units not returned stay as they
were: it sells as before, and its rate rises, not only its count.

Every figure is a pure function of (seed, shop, SKU, day): order days and units not returned are
drawn from their own random streams (never the world's or a case's), and the returns of a day's
orders that are still to come are drawn as the world will make them (World.returns_created), without
making them happen. So asking for sales never changes a return, and a restarted sandbox answers the
same. A shop sold before its first return: days before the history sell at its first day's level
(the world holds no returns from before its history, so those days show fewer returns than p).

TikTok finalizes a day's figures a little later: the latest available day (yesterday, shop time)
shows only part of its units, and the full figure from the next day on. A sync must re-read it.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from .cases import ReturnCase, _cumulative
from .catalogue import (
    DAY,
    HOUR,
    REFUND,
    REFUND_REASON_WEIGHTS,
    REFUND_REASONS,
    RETURN_FAMILY,
    TYPE_WEIGHTS,
    Shop,
    Sku,
)
from .timing import DIURNAL, DIURNAL_MEAN, weekday_weight
from .world import World

# Share of sold units that come back, by category (returned units ÷ units sold), before per-SKU variation.
BASE_RETURN_RATES: dict[str, float] = {
    "apparel": 0.12, "appliance": 0.06, "electronics": 0.07, "beauty": 0.04, "home": 0.05,
    "kitchen": 0.05, "outdoor": 0.05, "pets_toys": 0.05,
}
RATE_SPREAD = 0.25  # lognormal sigma of a SKU's rate around its category's
# Units per return: 1, 2 or 3 line items with weights 0.74, 0.19, 0.07 (cases._LINE_COUNTS); each
# item is one unit, of a SKU drawn with the SKU's popularity (the extra items too, on average).
UNITS_PER_RETURN = 0.74 + 2 * 0.19 + 3 * 0.07
# A planted defective return's extra items: half of them another unit of the blender (part of the
# defect), half a SKU drawn by popularity (cases._extra_sku), which counts as that SKU's usual returns.
EXTRA_UNITS_BY_POPULARITY = 0.5 * (0.19 + 2 * 0.07)
TWO_UNIT_ORDERS = 0.15  # share of orders with two units of the SKU
PRELIMINARY_SHARE = 0.9  # of its final units not returned, what the latest available day shows at first


def _pmf(weights: dict[int, float]) -> dict[int, float]:
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def _convolve(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, x in a.items():
        for j, y in b.items():
            out[i + j] = out.get(i + j, 0.0) + x * y
    return out


# Days from the order to the return request (shop-local calendar days), by what the request is about.
# An order reaches the buyer 2-8 days after it is placed: a seller ships within a few days (a usual
# handling time is up to 3), the carrier takes 2-5 more. Before it ships, a buyer cancels within those
# first days (the "to_ship canceled" refunds). A refund for a delivery problem (not received, late,
# damaged in transit, missing items) comes around the day the parcel arrives or was due, up to 10 days
# later. A return or replacement comes after the buyer has opened and used the item: most in its first
# days (a defect, a size that does not fit, a changed mind show early), fewer each day after (x0.85 a
# day), until a return window of 30 days after delivery closes (assumed; TikTok's varies by region and
# category). So a day's orders keep coming back for up to MAX_ORDER_TO_REQUEST_DAYS (38) days.
DELIVERY_DAYS = _pmf({2: 0.05, 3: 0.15, 4: 0.25, 5: 0.25, 6: 0.15, 7: 0.1, 8: 0.05})
BEFORE_SHIPMENT = "before_shipment"
DELIVERY_PROBLEM = "delivery_problem"
AFTER_USE = "after_use"
ORDER_TO_REQUEST_DAYS: dict[str, dict[int, float]] = {
    BEFORE_SHIPMENT: _pmf({0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05}),
    DELIVERY_PROBLEM: _convolve(DELIVERY_DAYS, _pmf({w: 0.7 ** w for w in range(11)})),
    AFTER_USE: _convolve(DELIVERY_DAYS, _pmf({u: 0.85 ** u for u in range(31)})),
}
MAX_ORDER_TO_REQUEST_DAYS = max(max(pmf) for pmf in ORDER_TO_REQUEST_DAYS.values())
_TO_SHIP_CANCELED = "ecom_order_to_ship_canceled_"
# How a usual (not planted) request splits between those kinds (cases.new_case: type, then reason).
_REFUND_WEIGHT_TOTAL = sum(REFUND_REASON_WEIGHTS.values())
_TO_SHIP_SHARE = sum(w for key, w in REFUND_REASON_WEIGHTS.items()
                     if REFUND_REASONS[key].code.startswith(_TO_SHIP_CANCELED)) / _REFUND_WEIGHT_TOTAL
_KIND_SHARES = {BEFORE_SHIPMENT: TYPE_WEIGHTS[REFUND] * _TO_SHIP_SHARE,
                DELIVERY_PROBLEM: TYPE_WEIGHTS[REFUND] * (1 - _TO_SHIP_SHARE),
                AFTER_USE: sum(TYPE_WEIGHTS[t] for t in RETURN_FAMILY)}
_USUAL_DELAYS = [sum(_KIND_SHARES[kind] * pmf.get(k, 0.0) for kind, pmf in ORDER_TO_REQUEST_DAYS.items())
                 for k in range(MAX_ORDER_TO_REQUEST_DAYS + 1)]
_AFTER_USE_DELAYS = [ORDER_TO_REQUEST_DAYS[AFTER_USE].get(k, 0.0) for k in range(MAX_ORDER_TO_REQUEST_DAYS + 1)]
_DELAY_CHOICES = {kind: _cumulative(pmf) for kind, pmf in ORDER_TO_REQUEST_DAYS.items()}  # (days, cum)


@dataclass(frozen=True)
class DaySales:
    """One SKU on one shop-local day, as TikTok reports it."""

    orders: int
    units: int

    def gmv(self, sku: Sku) -> Decimal:
        return sku.price * self.units  # prices have cents at most, so this is exact


@dataclass(frozen=True)
class _DayFigures:
    """A SKU's orders of one day: those that come back (some of their units) and the others."""

    returned: DaySales
    kept: DaySales

    @property
    def final(self) -> DaySales:
        return DaySales(self.returned.orders + self.kept.orders, self.returned.units + self.kept.units)


class Sales:
    def __init__(self, world: World):
        self._world = world
        self._seed = world.seed
        self._rates: dict[tuple[int, str], float] = {}
        self._shares: dict[tuple[int, str], float] = {}
        # figures are asked for again and again (every SKU page, every product's days): drawn once each
        self._figures: dict[tuple[int, str, date], _DayFigures] = {}
        # per shop: the creation times whose returns are tallied by order day, and that tally
        self._scanned: dict[int, tuple[int, int]] = {}
        self._returned: dict[int, dict[date, dict[str, list[int]]]] = {}
        self._complete: dict[tuple[int, date], dict[str, list[int]]] = {}  # days whose returns are all tallied
        self._usual: dict[tuple[int, date], tuple[float, float]] = {}  # expected usual units created that day
        self._expected: dict[tuple[int, date], float] = {}
        start = world.anchor - world.history_days * DAY
        self._history_start = start
        self._first_date = datetime.fromtimestamp(start, UTC).date() - timedelta(days=365)
        self._day_weights = [weekday_weight(start + i * DAY) * (0.85 + 0.3 * i / world.history_days)
                             for i in range(world.history_days)]
        self._weight_sum = sum(self._day_weights)

    # --- what is known when ------------------------------------------------------------------

    def latest_available_date(self, shop: Shop, now: int) -> date:
        """Yesterday in the shop's time zone: the latest day TikTok has figures for."""
        return local_date(shop, now) - timedelta(days=1)

    def first_date(self, shop: Shop) -> date:
        """The shop's first day of sales the sandbox reports (a year before its history)."""
        return self._first_date

    # --- the figures -------------------------------------------------------------------------

    def return_rate(self, shop: Shop, sku: Sku) -> float:
        """The SKU's share of sold units that come back (before the planted defect)."""
        key = (shop.index, sku.seller_sku)
        if key not in self._rates:
            rng = random.Random(f"sandbox:{self._seed}:{shop.index}:rate:{sku.seller_sku}")
            base = BASE_RETURN_RATES.get(sku.category, 0.05)
            self._rates[key] = min(0.5, base * rng.lognormvariate(0, RATE_SPREAD))
        return self._rates[key]

    def order_day(self, case: ReturnCase) -> date:
        """The shop-local day the return's order was placed: some days before the request, by what the
        request is about (ORDER_TO_REQUEST_DAYS), drawn from the return's own stream."""
        # one uniform number hashed from the return's id: a stream of its own, and much cheaper to
        # start than a random.Random (tallying a day's orders reads every return of up to 38 days)
        digest = hashlib.blake2b(f"sandbox:{self._seed}:{case.shop.index}:ordered:{case.return_id}".encode(),
                                 digest_size=8).digest()
        days, cum = _DELAY_CHOICES[_request_kind(case)]
        wait = days[min(len(days) - 1, bisect.bisect(cum, int.from_bytes(digest) / 2**64 * cum[-1]))]
        return local_date(case.shop, case.create_time) - timedelta(days=wait)

    def returned_of_orders(self, shop: Shop, day: date) -> dict[str, DaySales]:
        """{sku_id: (orders, units)} of the shop's returns whose order is of `day`, also those whose
        request is still to come: each return is one order of each SKU on it, and a unit per line."""
        return {sku_id: DaySales(orders, units) for sku_id, (orders, units) in self._tally(shop, day).items()}

    def expected_returned_units(self, shop: Shop, sku: Sku, day: date) -> float:
        """Returned units of this SKU's orders of `day` the world expects (without the planted defect):
        the usual returned units created on each day after it, through the delay from order to request."""
        key = (shop.index, day)
        if key not in self._expected:
            total = 0.0
            for k, (usual, by_popularity) in enumerate(zip(_USUAL_DELAYS, _AFTER_USE_DELAYS, strict=True)):
                created, extra = self._usual_units(shop, day + timedelta(days=k))
                total += created * usual + extra * by_popularity
            self._expected[key] = total
        return self._expected[key] * self._share(shop, sku)

    def final(self, shop: Shop, sku: Sku, day: date) -> DaySales:
        """The day's final figures: the units of its orders that come back, and the others."""
        return self._day(shop, sku, day).final

    def reported(self, shop: Shop, sku: Sku, day: date, latest: date) -> DaySales | None:
        """What TikTok shows for the day when `latest` is its latest available day: None after it,
        part of it on that day, the final figures before. The part still missing on that first day is
        of orders that do not come back, so even then no day shows fewer units than come back."""
        if day > latest:
            return None
        figures = self._day(shop, sku, day)
        if day < latest:
            return figures.final
        orders = math.floor(figures.kept.orders * PRELIMINARY_SHARE)
        units = max(orders, math.floor(figures.kept.units * PRELIMINARY_SHARE))
        return DaySales(figures.returned.orders + orders, figures.returned.units + units)

    # --- how they are made -------------------------------------------------------------------

    def _day(self, shop: Shop, sku: Sku, day: date) -> _DayFigures:
        found = self._figures.get((shop.index, sku.sku_id, day))
        if found is None:
            self._draw_day(shop, day)
            found = self._figures[(shop.index, sku.sku_id, day)]
        return found

    def _draw_day(self, shop: Shop, day: date) -> None:
        """Every SKU of the shop on `day`: the returned units of the day's orders as the world has them,
        plus a Poisson draw of the units not returned, with mean λ·(1 - p) (orders of 1 or 2 units),
        one stream for the shop's day (the SKUs drawn in catalogue order)."""
        if day < self._first_date:
            for sku in shop.skus:
                self._figures[(shop.index, sku.sku_id, day)] = _DayFigures(DaySales(0, 0), DaySales(0, 0))
            return
        tally = self._tally(shop, day)
        rng = random.Random(f"sandbox:{self._seed}:{shop.index}:kept:{day.isoformat()}")
        for sku in shop.skus:
            rate = self.return_rate(shop, sku)
            kept_units = self.expected_returned_units(shop, sku, day) * (1 - rate) / rate
            orders = _poisson(rng, kept_units / (1 + TWO_UNIT_ORDERS))
            kept = DaySales(orders, orders + _binomial(rng, orders, TWO_UNIT_ORDERS))
            returned = tally.get(sku.sku_id, (0, 0))
            self._figures[(shop.index, sku.sku_id, day)] = _DayFigures(DaySales(returned[0], returned[1]), kept)

    def _tally(self, shop: Shop, day: date) -> dict[str, list[int]]:
        """{sku_id: [orders, units]} returned of the day's orders (do not mutate)."""
        key = (shop.index, day)
        found = self._complete.get(key)
        if found is None:
            self._scan(shop, _local_midnight(shop, day),
                       _local_midnight(shop, day + timedelta(days=MAX_ORDER_TO_REQUEST_DAYS + 1)))
            found = self._complete[key] = self._returned[shop.index].get(day, {})
        return found

    def _scan(self, shop: Shop, begin: int, end: int) -> None:
        """Tally by order day every return of the shop created in [begin, end), unless done already:
        the creation times tallied stay one span, so each return counts once."""
        tally = self._returned.setdefault(shop.index, {})
        done = self._scanned.get(shop.index)
        if done is None:
            spans = [(begin, end)]
            done = (begin, end)
        else:
            spans = [(begin, done[0]), (done[1], end)]
            done = (min(begin, done[0]), max(end, done[1]))
        for lo, hi in spans:
            if lo >= hi:
                continue
            for case in self._world.returns_created(shop, lo, hi):
                by_sku = tally.setdefault(self.order_day(case), {})
                seen: set[str] = set()
                for line in case.lines:
                    counts = by_sku.setdefault(line.sku.sku_id, [0, 0])
                    counts[1] += 1
                    if line.sku.sku_id not in seen:  # one order, whatever its units of the SKU
                        seen.add(line.sku.sku_id)
                        counts[0] += 1
        self._scanned[shop.index] = done

    def _share(self, shop: Shop, sku: Sku) -> float:
        """The SKU's share of the shop's returned units (its popularity among returns)."""
        if (shop.index, sku.sku_id) not in self._shares:
            cum = shop.sku_cum_weights
            for i, each in enumerate(shop.skus):
                self._shares[(shop.index, each.sku_id)] = (cum[i] - (cum[i - 1] if i else 0.0)) / cum[-1]
        return self._shares[(shop.index, sku.sku_id)]

    def _usual_units(self, shop: Shop, day: date) -> tuple[float, float]:
        """Returned units (all SKUs) the world expects created on the shop-local `day` without the
        planted defect: those of usual requests, and the extra items of planted ones that are any SKU."""
        key = (shop.index, day)
        if key not in self._usual:
            usual = extra = 0.0
            begin = _local_midnight(shop, day)
            for t in range(begin, begin + DAY, HOUR):
                requests, spike = self._requests_in_hour(shop, t), self._world.spike_chance(shop, t)
                usual += requests * (1 - spike) * UNITS_PER_RETURN
                extra += requests * spike * EXTRA_UNITS_BY_POPULARITY
            self._usual[key] = (usual, extra)
        return self._usual[key]

    def _requests_in_hour(self, shop: Shop, t: int) -> float:
        """The world's expected requests of a shop in the hour starting at t (world._history and
        world._hour_bucket): busier on weekdays and in the daytime, the history slowly growing."""
        world = self._world
        local_hour = DIURNAL[(datetime.fromtimestamp(t, UTC).hour + shop.local.utc_offset) % 24] / DIURNAL_MEAN
        if t >= world.anchor:
            return world.returns_per_shop / (world.history_days * 24) * weekday_weight(t) * local_hour
        if t < self._history_start:  # before the history: its first day's level, on this weekday
            return world.returns_per_shop * weekday_weight(t) * 0.85 / self._weight_sum * local_hour / 24
        d = (t - self._history_start) // DAY
        return world.returns_per_shop * self._day_weights[d] / self._weight_sum * local_hour / 24


def _request_kind(case: ReturnCase) -> str:
    if case.reason.code.startswith(_TO_SHIP_CANCELED):
        return BEFORE_SHIPMENT
    return DELIVERY_PROBLEM if case.return_type == REFUND else AFTER_USE


def local_date(shop: Shop, t: int) -> date:
    """The calendar date in the shop's time zone at world time t."""
    return datetime.fromtimestamp(t + shop.local.utc_offset * 3600, UTC).date()


def _local_midnight(shop: Shop, day: date) -> int:
    """World time at the start of the shop-local `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - shop.local.utc_offset * 3600


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation: Knuth's loop grows with the mean
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n > 50:
        return min(n, max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))
    return sum(1 for _ in range(n) if rng.random() < p)
