"""The simulated world: every shop's returns at a given world time.

History: `returns_per_shop` requests per shop spread over `history_days` before the anchor. After the
anchor, requests keep arriving at the same average rate, drawn per hour bucket from the seed. Each
case carries its own RNG and at most one pending step, so cases never influence each other and the
world at time t is a pure function of (seed, anchor, seller decisions, t). A heap of (time, case)
finds due steps, so moving the clock costs only the steps that actually happen.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .cancellations import CancelCase, CancelDecision, Cancellations
from .cancellations import decision_error as cancel_decision_error
from .cases import MAX_SLOT, ReturnCase, new_case, return_id_for
from .catalogue import (
    DAY,
    HOUR,
    PLANTED_SHOP_INDEX,
    PLANTED_SPIKE_FACTOR,
    PLANTED_SPIKE_SKU,
    PLANTED_SPIKE_START,
    RETURN_FAMILY,
    RETURN_REASON_WEIGHTS,
    TYPE_WEIGHTS,
    Catalogue,
    Shop,
)
from .lifecycle import Decision, Lifecycle, decision_error
from .timing import DIURNAL, DIURNAL_MEAN, poisson, weekday_weight

MAX_RETURNS_PER_SHOP = 100_000


@dataclass(frozen=True)
class Arrival:
    shop: Shop
    create_time: int
    slot: int  # unique per shop and create time; part of the return id
    rng_key: str


def spike_probability(shop: Shop) -> float:
    """Chance that a request is a planted defective blender, so that their daily rate is
    PLANTED_SPIKE_FACTOR times the natural rate: (factor - 1) x P(blender, return type, defective)."""
    cum = shop.sku_cum_weights
    index = next(i for i, sku in enumerate(shop.skus) if sku.seller_sku == PLANTED_SPIKE_SKU)
    sku_share = (cum[index] - (cum[index - 1] if index else 0.0)) / cum[-1]
    family_share = sum(TYPE_WEIGHTS[t] for t in RETURN_FAMILY)
    reasons = RETURN_REASON_WEIGHTS[shop.skus[index].category]
    defective_share = reasons["defective"] / sum(reasons.values())
    return (PLANTED_SPIKE_FACTOR - 1) * sku_share * family_share * defective_share


class World:
    def __init__(self, catalogue: Catalogue, *, anchor: int, history_days: int, returns_per_shop: int,
                 start: int, cancellations_per_shop: int = 0):
        if not 0 <= returns_per_shop <= MAX_RETURNS_PER_SHOP:
            raise ValueError(f"returns must be between 0 and {MAX_RETURNS_PER_SHOP}, got {returns_per_shop}")
        if not 0 <= cancellations_per_shop <= MAX_RETURNS_PER_SHOP:
            raise ValueError(f"cancellations must be between 0 and {MAX_RETURNS_PER_SHOP}, "
                             f"got {cancellations_per_shop}")
        if history_days < 1:
            raise ValueError(f"history_days must be at least 1, got {history_days}")
        self.catalogue = catalogue
        self.seed = catalogue.seed
        self.anchor = anchor
        self.history_days = history_days
        self.returns_per_shop = returns_per_shop
        self.lifecycle = Lifecycle(anchor)
        self.time = -1  # nothing has happened yet; run_until(start) below plays the history
        self.decision_log: list[dict] = []  # seller decisions made through the API, for replay
        # told of every step of every return as it happens, with the status before it ("" for a new
        # return); set after the history is played, so only the live world notifies (webhooks)
        self.listener: Callable[[ReturnCase, str], None] | None = None
        self._by_id: dict[int, ReturnCase] = {}
        self._by_shop: dict[str, list[ReturnCase]] = {shop.id: [] for shop in catalogue.shops}
        self._versions: dict[str, int] = dict.fromkeys(self._by_shop, 0)
        self._arrivals: dict[int, Arrival] = {}
        self._heap: list[tuple[int, int, int]] = []  # (time, return key, case version or -1 for arrival)
        self._next_hour = 0  # next post-anchor hour bucket to draw
        self._spike = {shop.id: spike_probability(shop) if shop.index == PLANTED_SHOP_INDEX else 0.0
                       for shop in catalogue.shops}
        self._buyers = max(50, int(returns_per_shop * 0.8))
        for shop in catalogue.shops:
            for arrival in self._history(shop):
                self._queue_arrival(arrival)
        heapq.heapify(self._heap)
        # the second queue, from its own random streams: the returns above are what they were without it
        self.cancellations = Cancellations(catalogue, anchor=anchor, history_days=history_days,
                                           per_shop=cancellations_per_shop)
        self.run_until(start)

    # --- reading --------------------------------------------------------------------------------

    def cases(self, shop_id: str) -> list[ReturnCase]:
        """The shop's returns that exist at world time (arrival order; do not mutate)."""
        return self._by_shop[shop_id]

    def case(self, return_id: str) -> ReturnCase | None:
        return self._by_id.get(int(return_id)) if return_id.isascii() and return_id.isdigit() else None

    def case_by_key(self, key: int) -> ReturnCase:
        return self._by_id[key]

    def cancellation(self, cancel_id: str) -> CancelCase | None:
        return self.cancellations.case(cancel_id)

    def returns_created(self, shop: Shop, begin: int, end: int) -> list[ReturnCase]:
        """The shop's returns created in [begin, end), also those still to come.

        Those up to world time are the shop's cases as they are; later ones are drawn as they will be
        (an arrival and its case are pure functions of the seed), without queueing them or telling the
        listener: the world does not move, and a later run_until makes the very same returns. Only
        their facts (lines, reason, times) are meant to be read: a drawn case has no lifecycle yet.
        """
        cases = self._by_shop[shop.id]  # in create_time order: arrivals are processed in time order
        now = self.time
        found = cases[bisect_left(cases, begin, key=_created):bisect_left(cases, min(end, now + 1), key=_created)]
        begin = max(begin, now + 1)
        if begin < end:
            found += [self._draw(arrival) for arrival in self._still_to_come(shop, begin, end)]
        return found

    def spike_chance(self, shop: Shop, t: int) -> float:
        """The chance that a request of `shop` created at `t` is one of the planted defective blenders."""
        return 0.0 if t < self.anchor + PLANTED_SPIKE_START else self._spike[shop.id]

    def version(self, shop_id: str) -> int:
        """Changes whenever any of the shop's returns arrives or changes (search caches key on it)."""
        return self._versions[shop_id]

    # --- moving -----------------------------------------------------------------------------------

    def run_until(self, t: int) -> None:
        """Let time pass up to t: arrivals and lifecycle steps happen in time order."""
        self.cancellations.run_until(t)
        if t <= self.time:
            return
        while self.anchor + self._next_hour * HOUR <= t:
            for shop in self.catalogue.shops:
                for arrival in self._hour_bucket(shop, self._next_hour):
                    self._queue_arrival(arrival, push=True)
            self._next_hour += 1
        self._process(t)
        self.time = t

    def decide(self, case: ReturnCase | CancelCase, decision: Decision | CancelDecision) -> None:
        """Apply a (validated) seller decision now; logged so a restarted sandbox can replay it."""
        if isinstance(case, CancelCase):
            assert isinstance(decision, CancelDecision)
            self.cancellations.decide(case, decision)
            self.decision_log.append({"t": self.time, "cancel_id": case.cancel_id, **decision.to_json()})
            return
        assert isinstance(decision, Decision)
        before = case.status
        self.lifecycle.apply_decision(case, decision, self.time)
        self._changed(case)
        self._notify(case, before)
        self.decision_log.append({"t": self.time, "return_id": case.return_id, **decision.to_json()})

    def replay(self, log: list[dict]) -> None:
        """Re-apply logged decisions at their world times (a restart, or another process's decisions).

        A decision that no longer fits is dropped: two processes sharing a state file may both have
        decided the same return, and TikTok would have refused the later one.
        """
        for entry in log:
            self.run_until(entry["t"])
            if "cancel_id" in entry:
                cancellation = self.cancellation(entry["cancel_id"])
                answer = CancelDecision.from_json(entry)
                if cancellation is not None and cancel_decision_error(cancellation, answer) is None:
                    self.decide(cancellation, answer)
                continue
            case = self.case(entry["return_id"])
            decision = Decision.from_json(entry)
            if case is not None and decision_error(case, decision) is None:
                self.decide(case, decision)

    def _process(self, t: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= t:
            _, key, version = heapq.heappop(heap)
            if version < 0:
                case = self._materialize(self._arrivals.pop(key))
                self._notify(case, "")
            else:
                case = self._by_id[key]
                if case.version != version:
                    continue  # superseded by a decision
            self._settle(case, t)

    def _settle(self, case: ReturnCase, t: int) -> None:
        """Apply the case's due steps back to back (cases are independent), then wait for the next."""
        while case.next_event is not None and case.next_event[0] <= t:
            before = case.status
            self.lifecycle.step(case)
            self._notify(case, before)
        self._changed(case)

    def _notify(self, case: ReturnCase, before: str) -> None:
        """Tell the listener (if any) that `case` just took a step from status `before`."""
        if self.listener is not None:
            self.listener(case, before)

    def _changed(self, case: ReturnCase) -> None:
        case.version += 1
        self._versions[case.shop.id] += 1
        if case.next_event is not None:
            heapq.heappush(self._heap, (case.next_event[0], case.key, case.version))

    def _materialize(self, arrival: Arrival) -> ReturnCase:
        case = self._draw(arrival)
        self.lifecycle.open(case)
        self._by_id[case.key] = case
        self._by_shop[case.shop.id].append(case)
        return case

    def _draw(self, arrival: Arrival) -> ReturnCase:
        """The return an arrival brings, before it opens (a pure function of the arrival and the seed)."""
        return new_case(arrival.shop, arrival.create_time, arrival.slot, random.Random(arrival.rng_key),
                        seed=self.seed, buyers=self._buyers,
                        spike_probability=self.spike_chance(arrival.shop, arrival.create_time))

    def _still_to_come(self, shop: Shop, begin: int, end: int) -> list[Arrival]:
        """The shop's arrivals in [begin, end), all after world time: history ones still queued (only
        when the world starts before its anchor) and those of the hour buckets, drawn again (pure)."""
        found = []
        if begin < self.anchor:
            found = [a for a in self._arrivals.values()
                     if a.shop is shop and begin <= a.create_time < min(end, self.anchor)]
        first, last = max(0, (begin - self.anchor) // HOUR), -((self.anchor - end) // HOUR)  # last: ceiling
        for hour in range(first, last):
            found += [a for a in self._hour_bucket(shop, hour) if begin <= a.create_time < end]
        return found

    def _queue_arrival(self, arrival: Arrival, push: bool = False) -> None:
        key = return_id_for(arrival.create_time, arrival.shop.index, arrival.slot)
        self._arrivals[key] = arrival
        entry = (arrival.create_time, key, -1)
        if push:
            heapq.heappush(self._heap, entry)
        else:
            self._heap.append(entry)  # heapified once after the history is queued

    # --- when requests arrive ---------------------------------------------------------------------

    def _history(self, shop: Shop) -> list[Arrival]:
        """`returns_per_shop` request times over the history window: busier on weekdays and daytime,
        slowly growing (a shop that sells more gets more returns)."""
        rng = random.Random(f"sandbox:{self.seed}:{shop.index}:history")
        start = self.anchor - self.history_days * DAY
        days = range(self.history_days)
        day_weights = [weekday_weight(start + d * DAY) * (0.85 + 0.3 * d / self.history_days) for d in days]
        hours = range(24)
        hour_weights = [DIURNAL[(h + shop.local.utc_offset) % 24] for h in hours]
        picked_days = rng.choices(days, day_weights, k=self.returns_per_shop)
        picked_hours = rng.choices(hours, hour_weights, k=self.returns_per_shop)
        times = sorted(start + d * DAY + h * HOUR + rng.randrange(HOUR) for d, h in zip(picked_days, picked_hours,
                                                                                       strict=True))
        return [Arrival(shop, t, slot, f"sandbox:{self.seed}:{shop.index}:h:{slot}") for slot, t in enumerate(times)]

    def _hour_bucket(self, shop: Shop, hour: int) -> list[Arrival]:
        """Requests in one post-anchor hour: Poisson with the history's average rate, shaped by time of day."""
        rng = random.Random(f"sandbox:{self.seed}:{shop.index}:hour:{hour}")
        begin = self.anchor + hour * HOUR
        local_hour = (datetime.fromtimestamp(begin, UTC).hour + shop.local.utc_offset) % 24
        rate = (self.returns_per_shop / (self.history_days * 24) * weekday_weight(begin)
                * DIURNAL[local_hour] / DIURNAL_MEAN)
        count = min(poisson(rng, rate), MAX_SLOT - 1)
        times = sorted(begin + rng.randrange(HOUR) for _ in range(count))
        return [Arrival(shop, t, slot, f"sandbox:{self.seed}:{shop.index}:f:{hour}:{slot}")
                for slot, t in enumerate(times)]


def _created(case: ReturnCase) -> int:
    return case.create_time
