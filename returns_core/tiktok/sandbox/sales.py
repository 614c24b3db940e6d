"""What the sandbox's shops sell: units sold and orders per SKU and shop-local day (the Analytics API).

The returns world (world.py) was built first and many tests pin it, so sales are derived from it
rather than the other way round, without touching a single return: each SKU has its own return
rate (its category's, varied per SKU), and its units sold on a day are drawn around the returned
units the world expects of it that day divided by that rate. Over any period, returned units ÷ units
sold then comes out at the SKU's rate. The planted defect (PLANTED_SPIKE_SKU) sells as before the
spike while its defective returns multiply: its rate rises, not only its count.

Every figure is a pure function of (seed, shop, SKU, day), each drawn from its own random stream
(never the world's), so asking for sales never changes a return. A shop sold before its first
return: days before the history sell at the history's first-day level.

TikTok finalizes a day's figures a little later: the latest available day (yesterday, shop time)
shows only part of its units, and the full figure from the next day on. A sync must re-read it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from .catalogue import DAY, Shop, Sku
from .timing import weekday_weight
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
TWO_UNIT_ORDERS = 0.15  # share of orders with two units of the SKU
PRELIMINARY_SHARE = 0.9  # of its final units, what the latest available day shows at first


@dataclass(frozen=True)
class DaySales:
    """One SKU on one shop-local day, as TikTok reports it."""

    orders: int
    units: int

    def gmv(self, sku: Sku) -> Decimal:
        return sku.price * self.units  # prices have cents at most, so this is exact


class Sales:
    def __init__(self, world: World):
        self._world = world
        self._seed = world.seed
        self._rates: dict[tuple[int, str], float] = {}
        self._shares: dict[tuple[int, str], float] = {}
        # figures are asked for again and again (every SKU page, every product's days): drawn once each
        self._finals: dict[tuple[int, str, date], DaySales] = {}
        self._per_day: dict[date, float] = {}
        start = world.anchor - world.history_days * DAY
        self._history_start = start
        self._day_weights = [weekday_weight(start + i * DAY) * (0.85 + 0.3 * i / world.history_days)
                             for i in range(world.history_days)]
        self._weight_sum = sum(self._day_weights)

    # --- what is known when ------------------------------------------------------------------

    def latest_available_date(self, shop: Shop, now: int) -> date:
        """Yesterday in the shop's time zone: the latest day TikTok has figures for."""
        return local_date(shop, now) - timedelta(days=1)

    def first_date(self, shop: Shop) -> date:
        """The shop's first day of sales the sandbox reports (a year before its history)."""
        start = self._world.anchor - self._world.history_days * DAY
        return datetime.fromtimestamp(start, UTC).date() - timedelta(days=365)

    # --- the figures -------------------------------------------------------------------------

    def return_rate(self, shop: Shop, sku: Sku) -> float:
        """The SKU's share of sold units that come back (before the planted defect)."""
        key = (shop.index, sku.seller_sku)
        if key not in self._rates:
            rng = random.Random(f"sandbox:{self._seed}:{shop.index}:rate:{sku.seller_sku}")
            base = BASE_RETURN_RATES.get(sku.category, 0.05)
            self._rates[key] = min(0.5, base * rng.lognormvariate(0, RATE_SPREAD))
        return self._rates[key]

    def expected_returned_units(self, shop: Shop, sku: Sku, day: date) -> float:
        """Returned units of this SKU the world expects on `day` (without the planted spike)."""
        if (shop.index, sku.sku_id) not in self._shares:
            cum = shop.sku_cum_weights
            for i, each in enumerate(shop.skus):
                self._shares[(shop.index, each.sku_id)] = (cum[i] - (cum[i - 1] if i else 0.0)) / cum[-1]
        return self._returns_per_day(day) * UNITS_PER_RETURN * self._shares[(shop.index, sku.sku_id)]

    def final(self, shop: Shop, sku: Sku, day: date) -> DaySales:
        """The day's final figures: orders around expected returned units ÷ rate (some with 2 units)."""
        key = (shop.index, sku.sku_id, day)
        found = self._finals.get(key)
        if found is not None:
            return found
        if day < self.first_date(shop):
            return DaySales(0, 0)
        mean_units = self.expected_returned_units(shop, sku, day) / self.return_rate(shop, sku)
        rng = random.Random(f"sandbox:{self._seed}:{shop.index}:sales:{sku.seller_sku}:{day.isoformat()}")
        orders = _poisson(rng, mean_units / (1 + TWO_UNIT_ORDERS))
        found = self._finals[key] = DaySales(orders, orders + _binomial(rng, orders, TWO_UNIT_ORDERS))
        return found

    def reported(self, shop: Shop, sku: Sku, day: date, latest: date) -> DaySales | None:
        """What TikTok shows for the day when `latest` is its latest available day: None after it,
        part of it on that day, the final figures before."""
        if day > latest:
            return None
        final = self.final(shop, sku, day)
        if day < latest:
            return final
        orders = math.floor(final.orders * PRELIMINARY_SHARE)
        return DaySales(orders, max(orders, math.floor(final.units * PRELIMINARY_SHARE)))

    def _returns_per_day(self, day: date) -> float:
        """The world's average requests per day on that (UTC) calendar day (world._history, _hour_bucket)."""
        if day not in self._per_day:
            self._per_day[day] = self._average_returns(day)
        return self._per_day[day]

    def _average_returns(self, day: date) -> float:
        world = self._world
        t = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        if t >= world.anchor:
            return world.returns_per_shop / world.history_days * weekday_weight(t)
        if t < self._history_start:  # before the history: its first day's level, on this weekday
            return world.returns_per_shop * weekday_weight(t) * 0.85 / self._weight_sum
        d = (t - self._history_start) // DAY
        return world.returns_per_shop * self._day_weights[d] / self._weight_sum


def local_date(shop: Shop, t: int) -> date:
    """The calendar date in the shop's time zone at world time t."""
    return datetime.fromtimestamp(t + shop.local.utc_offset * 3600, UTC).date()


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
