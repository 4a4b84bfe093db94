"""One request at a time on a controller link, without hiding a silent controller.

Controllers and serial lines answer one request at a time, so each client
(:mod:`agent.controller.ntcip.snmp_client`, :mod:`agent.controller.gbt20999.client`)
sends one and waits for its answer before the next. A command's request may
wait ``timeout_s`` (0.5 s) for each of its three tries; a status poll queued
behind it would then wait up to 1.5 s before it is even sent, and the poller,
which must call a dead controller down within a second, would see nothing
wrong. Measured by the chaos tests: 2.2 s on UDP, 3.3 s on a serial line.

So a status poll that finds the link busy waits only as long as it would have
waited for its own answer: if the controller says nothing at all for that
long, to anyone, the poll fails as an unanswered poll would, and the poller
counts it. A busy link that keeps answering (a long plan write, request after
request) lets the poll through at its turn, as before.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from agent.errors import LinkDown


class LinkTurns:
    """The link's one-request-at-a-time lock, and when the controller last spoke."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._heard_at = -math.inf
        #: Polls failed because the link stayed silent while they waited their turn.
        self.silent_waits = 0

    def heard(self) -> None:
        """The controller sent something (any answer, even a stale one)."""
        self._heard_at = asyncio.get_running_loop().time()

    def release(self) -> None:
        self._lock.release()

    async def take(self, *, poll: bool, budget_s: float, link: str) -> None:
        """Wait for the link; a ``poll`` raises :class:`LinkDown` after ``budget_s`` of silence.

        ``link`` describes the link for that error.
        """
        if not poll or not self._lock.locked():
            await self._lock.acquire()
            return
        loop = asyncio.get_running_loop()
        since = loop.time()
        acquiring: asyncio.Future[Any] = asyncio.ensure_future(self._lock.acquire())
        try:
            while True:
                done, _ = await asyncio.wait((acquiring,), timeout=budget_s)
                if done:
                    acquiring.result()
                    return
                if loop.time() - max(since, self._heard_at) >= budget_s:
                    self.silent_waits += 1
                    raise LinkDown(
                        f"{link}: no answer for {budget_s:.2f} s "
                        "(a request in flight, the controller silent)"
                    )
        except BaseException:
            acquiring.cancel()
            # Cancelled too late, the lock may be ours already: give it back.
            acquiring.add_done_callback(self._release_if_taken)
            raise

    def _release_if_taken(self, acquiring: asyncio.Future[Any]) -> None:
        if not acquiring.cancelled() and acquiring.exception() is None:
            self._lock.release()
