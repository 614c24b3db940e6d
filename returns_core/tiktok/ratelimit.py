"""One request budget per TikTok app, shared by every shop of that app in this process.

TikTok assigns QPS dynamically, per app, and says so only by refusing: HTTP 429 / code 36009002
(docs/tiktok_api.md section 6). A refusal for one shop is a signal for all of them, so every
client of an app draws from one `AppRateLimit`:

- Until the first refusal there is no pacing: a limit we do not know must not slow a desk that
  never meets it.
- On a refusal the pace becomes DECREASE x the rate actually achieved over the last second, at
  most once per DECREASE_EVERY_S (a burst of refusals from one overshoot counts once), and every
  shop waits for its turn from then on.
- Each success adds RECOVERY_PER_S / rate (a fixed amount per second of successes, however fast
  they come), so the pace creeps back up; past CEILING, or after FORGET_AFTER_S without a refusal,
  the pacing is dropped again (the limit is dynamic: it may have risen).

A gentle decrease keeps the achieved rate close under the limit (a halving would average three
quarters of it); the gentle, time-based increase keeps refusals rare.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

DECREASE = 0.85  # the pace after a refusal, as a share of the rate achieved just before it
RECOVERY_PER_S = 0.5  # requests/s added to the pace per second of successful requests
FLOOR = 0.5  # requests/s: never slower than this, however many refusals
CEILING = 200.0  # requests/s: a pace that grew past this is dropped (no pacing)
FORGET_AFTER_S = 300.0  # no refusal for this long: TikTok's dynamic limit may have risen, probe again
WINDOW_S = 1.0  # how far back the achieved rate is measured
# The least time between two decreases: the refusals of one overshoot (every request in flight at
# that moment) come back within milliseconds and count once; a pace still too fast is refused
# again after this and comes down again.
DECREASE_EVERY_S = 0.25


class AppRateLimit:
    """A token bucket whose rate follows TikTok's refusals (additive increase, gentle decrease)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._rate: float | None = None  # requests/s; None: no pacing (no refusal seen)
        self._next_free = 0.0  # when the next request may go, on the clock
        self._last_decrease = float("-inf")
        self._sent: deque[float] = deque()  # send times within the last WINDOW_S
        self.refusals = 0
        self.slowest: float | None = None  # the lowest pace set so far (None: never paced)

    @property
    def rate(self) -> float | None:
        """The current pace in requests/s, or None when requests are not paced."""
        return self._rate

    def acquire(self) -> None:
        """Wait for this request's turn (no wait while unpaced)."""
        with self._lock:
            now = self._clock()
            start = now
            if self._rate is not None:
                start = max(now, self._next_free)
                self._next_free = start + 1.0 / self._rate
            self._sent.append(start)
            while self._sent and self._sent[0] < start - WINDOW_S:
                self._sent.popleft()
        if start > now:
            self._sleep(start - now)

    def refused(self) -> None:
        """TikTok said "too many requests": slow every shop of the app down."""
        with self._lock:
            now = self._clock()
            self.refusals += 1
            if now - self._last_decrease < DECREASE_EVERY_S:
                return
            self._last_decrease = now
            achieved = sum(1 for t in self._sent if t >= now - WINDOW_S) / WINDOW_S
            base = achieved if self._rate is None else min(self._rate, achieved)
            self._rate = max(FLOOR, DECREASE * base)
            self.slowest = self._rate if self.slowest is None else min(self.slowest, self._rate)
            # the refused request's own retry (and everyone else) waits one new interval
            self._next_free = max(self._next_free, now + 1.0 / self._rate)

    def succeeded(self) -> None:
        """A request went through: let the pace recover a little."""
        with self._lock:
            if self._rate is None:
                return
            self._rate += RECOVERY_PER_S / self._rate
            if self._rate > CEILING or self._clock() - self._last_decrease > FORGET_AFTER_S:
                self._rate = None


_LIMITS: dict[tuple[str, str], AppRateLimit] = {}
_LIMITS_GUARD = threading.Lock()


def for_app(host: str, app_key: str) -> AppRateLimit:
    """The process-wide limit of one app at one API host (every client of the app shares it)."""
    with _LIMITS_GUARD:
        return _LIMITS.setdefault((host, app_key), AppRateLimit())
