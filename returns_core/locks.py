"""Waiting a little for an OS file lock (fcntl.flock): the account's sync lock, a grant's refresh lock.

flock locks belong to the open file, so two opens in one process exclude each other as two processes
do, and the kernel drops a lock with its process: nothing is left locked after a crash.
"""

from __future__ import annotations

import fcntl
import time


def flock_within(fd: int, seconds: float, poll: float = 0.005) -> bool:
    """Take an exclusive flock on `fd`, trying for up to `seconds` (0: once); False when still held."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
