"""When buyers ask: the shape of a day and a week, and hourly counts (shared by returns and cancellations)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

# Requests follow the buyer's day (local hour 0..23) and week (Monday first); both average 1.
DIURNAL = (0.25, 0.15, 0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.25, 1.35,
         1.4, 1.4, 1.35, 1.3, 1.3, 1.35, 1.45, 1.55, 1.5, 1.25, 0.9, 0.5)
_WEEKDAY = (1.15, 1.1, 1.0, 1.0, 0.95, 0.85, 0.95)
DIURNAL_MEAN = sum(DIURNAL) / 24
_WEEKDAY_MEAN = sum(_WEEKDAY) / 7


def weekday_weight(t: int) -> float:
    return _WEEKDAY[datetime.fromtimestamp(t, UTC).weekday()] / _WEEKDAY_MEAN


def poisson(rng: random.Random, rate: float) -> int:
    """Knuth's method: fine for the small hourly rates here."""
    if rate <= 0:
        return 0
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
