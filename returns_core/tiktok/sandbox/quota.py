"""The sandbox's rate limit: a request budget per app, as TikTok has (docs/tiktok_api.md section 6).

TikTok promises no number, so the sandbox has none by default; `--app-rate-limit N` (or
`Sandbox(app_rate_limit=N)`) gives every app a token bucket of N requests per second, with a burst
of one second's worth. A request over budget gets HTTP 429 with code 36009002, for every shop of
the app alike, so a client's shared pacing can be seen at work.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class AppQuota:
    rate: float  # requests per second, per app
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    refused: int = 0
    allowed: int = 0
    allowed_by_app: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"the app rate limit must be a positive number of requests per second, not {self.rate}")

    @property
    def burst(self) -> float:
        return max(1.0, self.rate)

    def take(self, app_key: str, now: float) -> bool:
        """Spend one request of `app_key`'s budget at wall time `now`; False when there is none left."""
        with self._lock:
            bucket = self._buckets.setdefault(app_key, _Bucket(self.burst, now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens < 1:
                self.refused += 1
                return False
            bucket.tokens -= 1
            self.allowed += 1
            self.allowed_by_app[app_key] += 1
            return True
