"""Faults on demand: the next N matching requests fail in a chosen way (for retry and resilience tests).

Kinds: "429", "500", "503" and "expire_token" answer an error without doing the request;
"malformed" answers 200 with a non-JSON body; "truncate" does the request and cuts the body in half;
"timeout" does the request and holds the answer back `delay` seconds; "reset" does the request and
drops the connection without an answer (so a write may have happened: retry with the idempotency key).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

FAULT_KINDS = frozenset({"429", "500", "503", "timeout", "truncate", "malformed", "reset", "expire_token"})
# These answer before the request is looked at: nothing is read or changed.
ANSWERED_UPFRONT = frozenset({"429", "500", "503", "malformed", "expire_token"})


@dataclass
class Fault:
    kind: str
    remaining: int
    path_prefix: str | None
    delay: float
    retry_after: float | None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def inject(self, kind: str, count: int = 1, *, path_prefix: str | None = None, delay: float = 0.0,
               retry_after: float | None = None) -> None:
        """Make the next `count` requests (under `path_prefix`, if given) fail with `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(sorted(FAULT_KINDS))}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(Fault(kind, count, path_prefix, delay, retry_after))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many faulty answers are still queued."""
        with self._lock:
            return sum(f.remaining for f in self._queue)

    def take(self, path: str) -> Fault | None:
        """The fault for this request, if any (first injected, first served); uses up one count."""
        with self._lock:
            for fault in self._queue:
                if fault.path_prefix is None or path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
        return None
