"""One request budget per TikTok app, shared by every shop of that app in this process.

TikTok assigns QPS dynamically, per app, and says so only by refusing: HTTP 429 / code 36009002
(docs/tiktok_api.md section 6). A refusal for one shop is a signal for all of them, so every
client of an app draws from one `AppRateLimit`:

- Until the first refusal there is no pacing: a limit we do not know must not slow a desk that
  never meets it.
- On a refusal the pace becomes DECREASE x the rate TikTok let through, at most once per
  DECREASE_EVERY_S (a burst of refusals from one overshoot counts once), and every shop waits for
  its turn from then on; turns handed out at the old pace are taken again at the new one.
- Each success adds RECOVERY_PER_S / rate (a fixed amount per second of successes, however fast
  they come), so the pace creeps back up; past CEILING, or after FORGET_AFTER_S without a refusal,
  the pacing is dropped again (the limit is dynamic: it may have risen).

The rate TikTok let through is what it answered (refusals left out) since the last decrease, over
WINDOW_S to LONG_WINDOW_S; before the first decrease, also counting BURST_S more seconds. TikTok
lets a burst through before it refuses (the sandbox: a second's worth), so while a pace above the
limit drains that burst, the last second's rate is well above what TikTok grants. A decrease from
the last second's requests (as this did before) left the pace above the limit: the next requests
were refused too, among them the refused request's own retry, refused twice in a row. Since the last
decrease the burst was spent; over LONG_WINDOW_S, or with BURST_S counted, it weighs little, and
DECREASE x that rate is under the limit. So the decrease can be gentle and still keep the achieved
rate close under the limit; the time-based increase keeps refusals rare.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

DECREASE = 0.95  # the pace after a refusal, as a share of the rate TikTok let through before it
RECOVERY_PER_S = 1.0  # requests/s added to the pace per second of successful requests
FLOOR = 0.5  # requests/s: never slower than this, however many refusals
CEILING = 200.0  # requests/s: a pace that grew past this is dropped (no pacing)
FORGET_AFTER_S = 300.0  # no refusal for this long: TikTok's dynamic limit may have risen, probe again
# How far back the rate TikTok let through is measured: since the last decrease, within these bounds
WINDOW_S = 1.0
LONG_WINDOW_S = 10.0
BURST_S = 1.0  # the burst TikTok may let through, in seconds of its rate (the sandbox: one second's)
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
        self._decreases = 0
        self._answered: deque[float] = deque()  # when answered requests came back, within LONG_WINDOW_S
        self._sent: deque[float] = deque()  # when requests went, until the first answer came back
        self.refusals = 0
        self.slowest: float | None = None  # the lowest pace set so far (None: never paced)

    @property
    def rate(self) -> float | None:
        """The current pace in requests/s, or None when requests are not paced."""
        return self._rate

    def acquire(self) -> None:
        """Wait for this request's turn (no wait while unpaced)."""
        while True:
            with self._lock:
                now = self._clock()
                if not self._answered:
                    self._sent.append(now)
                    while self._sent[0] < now - LONG_WINDOW_S:
                        self._sent.popleft()
                start = now
                if self._rate is not None:
                    start = max(now, self._next_free)
                    self._next_free = start + 1.0 / self._rate
                decreases = self._decreases
            if start <= now:
                return
            self._sleep(start - now)
            with self._lock:
                # a turn given at the pace TikTok has just refused is not kept: taken again at the new pace,
                # or the requests already waiting would all go at the old one, refused (a retry among them)
                if self._decreases == decreases:
                    return

    def refused(self) -> None:
        """TikTok said "too many requests": slow every shop of the app down."""
        with self._lock:
            now = self._clock()
            self.refusals += 1
            if now - self._last_decrease < DECREASE_EVERY_S:
                return
            if self._rate is None:
                # unpaced until now: TikTok's burst (BURST_S of its rate) was full when these requests
                # began (after a pause of WINDOW_S or more), and part of what it answered came from there
                span = min(LONG_WINDOW_S, now - self._busy_since(now))
                divisor = span + BURST_S
            else:
                # paced since the last decrease, when the burst was spent
                span = divisor = min(LONG_WINDOW_S, max(WINDOW_S, now - self._last_decrease))
            answered = sum(1 for t in self._answered if t >= now - span)
            # refused before any answer came back (the very first requests, more of them at once than
            # TikTok's burst): only that fewer than those sent got through, so half of them
            achieved = (answered or sum(1 for t in self._sent if t >= now - span) / 2) / divisor
            self._last_decrease = now
            base = achieved if self._rate is None else min(self._rate, achieved)
            self._rate = max(FLOOR, DECREASE * base)
            self.slowest = self._rate if self.slowest is None else min(self.slowest, self._rate)
            # the refused request's own retry (and everyone else) waits one new interval; the turns
            # handed out at the old pace are void (acquire takes them again)
            self._next_free = now + 1.0 / self._rate
            self._decreases += 1

    def _busy_since(self, now: float) -> float:
        """When the requests going on at `now` began: the first one after a pause of WINDOW_S or more."""
        times = self._answered or self._sent
        since = now
        for at in reversed(times):
            if since - at >= WINDOW_S:
                break
            since = at
        return since

    def succeeded(self) -> None:
        """A request went through: let the pace recover a little."""
        with self._lock:
            now = self._clock()
            self._answered.append(now)
            while self._answered[0] < now - LONG_WINDOW_S:
                self._answered.popleft()
            if self._rate is None:
                return
            self._rate += RECOVERY_PER_S / self._rate
            if self._rate > CEILING or now - self._last_decrease > FORGET_AFTER_S:
                self._rate = None


_LIMITS: dict[tuple[str, str], AppRateLimit] = {}
_LIMITS_GUARD = threading.Lock()


def for_app(host: str, app_key: str) -> AppRateLimit:
    """The process-wide limit of one app at one API host (every client of the app shares it)."""
    with _LIMITS_GUARD:
        return _LIMITS.setdefault((host, app_key), AppRateLimit())
