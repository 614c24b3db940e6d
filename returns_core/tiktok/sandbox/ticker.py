"""A background thread that lets the sandbox's world move on its own.

The world only moves when something looks at it (a request, `advance()`); while the sandbox is
served or runs in the background, this looks every `interval` seconds, so returns change (and their
webhooks go out) in real time even when nobody calls the API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Ticker:
    """Calls `tick()` every `interval` seconds on a daemon thread until stop()."""

    def __init__(self, interval: float, tick: Callable[[], None], name: str = "tiktok-sandbox-clock"):
        if interval <= 0:
            raise ValueError("the tick interval must be above 0 seconds")
        self.interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for a tick in progress to finish."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._tick()
            except Exception:  # a bad tick must not stop the clock for good
                logger.exception("sandbox clock tick failed")
