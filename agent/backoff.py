"""Time as the reconnect loops need it: an injectable clock and capped, jittered backoff.

Shared by every link that retries (the controller poller, the MQTT link), so
that tests of rates and backoff run on a fake clock, and every retry loop
backs off the same way (STYLE.md §5).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol


class Clock(Protocol):
    """What a retry loop needs of time."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Backoff:
    """Capped exponential backoff with jitter (each wait in [ceiling/2, ceiling]), resettable."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        if not 0 < initial <= cap:
            raise ValueError("backoff needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def next_delay(self) -> float:
        """The next wait: doubling from ``initial`` up to ``cap``, jittered."""
        ceiling = min(self.cap, self.initial * 2.0 ** min(self._attempt, 62))
        self._attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from ``initial`` (after a success, or a connection that lasted)."""
        self._attempt = 0
