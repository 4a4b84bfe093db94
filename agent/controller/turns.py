"""One request at a time on a controller link, without hiding a silent controller.

Controllers and serial lines answer one request at a time, so each client
(:mod:`agent.controller.ntcip.snmp_client`, :mod:`agent.controller.gbt20999.client`)
sends one and waits for its answer before the next. A command's request may
wait ``timeout_s`` (0.5 s) for each of its three tries; a status poll queued
behind it would then wait up to 1.5 s before it is even sent, and the poller,
which must call a dead controller down within about a second, would see
nothing wrong. Measured by the chaos tests: 2.2 s on UDP, 3.3 s on a serial
line.

So a status poll that waits its turn fails, as an unanswered poll would, once
the controller has let a request's try time out and then said nothing for
the poll's own budget; the poller counts it as a missed poll. Nothing else
fails a waiting poll: a slow controller that answers each request within its
timeout (0.3 s for a SET, say) is healthy, and a busy link that keeps
answering (a long plan write) lets the poll through at its turn.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from agent.errors import LinkDown


class LinkTurns:
    """The link's one-request-at-a-time lock, and whether the controller is answering."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        #: Callers waiting for the lock (asyncio.Lock reads unlocked while a woken
        #: waiter has not run yet; a poll must not queue unbudgeted behind it).
        self._waiting = 0
        self._heard_at = -math.inf
        #: Tries that timed out since the controller last said anything.
        self._unanswered = 0
        #: Polls failed because the link stayed silent while they waited their turn.
        self.silent_waits = 0

    def heard(self) -> None:
        """The controller sent something (any answer, even a stale one)."""
        self._heard_at = asyncio.get_running_loop().time()
        self._unanswered = 0

    def timed_out(self) -> None:
        """A try got no answer within its timeout."""
        self._unanswered += 1

    def release(self) -> None:
        self._lock.release()

    async def take(self, *, poll: bool, budget_s: float, link: str) -> None:
        """Wait for the link; a ``poll`` raises :class:`LinkDown` when it is evidently silent.

        Silent: a try timed out unanswered, and nothing was heard for
        ``budget_s`` while the poll waited. ``link`` describes the link for the
        error.
        """
        if not self._lock.locked() and self._waiting == 0:
            await self._lock.acquire()
            return
        self._waiting += 1
        try:
            if not poll:
                await self._lock.acquire()
                return
            await self._take_for_poll(budget_s, link)
        finally:
            self._waiting -= 1

    async def _take_for_poll(self, budget_s: float, link: str) -> None:
        loop = asyncio.get_running_loop()
        since = loop.time()
        acquiring: asyncio.Future[Any] = asyncio.ensure_future(self._lock.acquire())
        try:
            while True:
                quiet_for = loop.time() - max(since, self._heard_at)
                # Re-check when the budget of silence would be used up (or, while no
                # try has timed out yet, a budget later: timeouts are not announced).
                wait = budget_s - quiet_for if self._unanswered else budget_s
                done, _ = await asyncio.wait((acquiring,), timeout=max(0.005, wait))
                if done:
                    acquiring.result()
                    return
                quiet_for = loop.time() - max(since, self._heard_at)
                if self._unanswered and quiet_for >= budget_s:
                    self.silent_waits += 1
                    raise LinkDown(
                        f"{link}: no answer for {quiet_for:.2f} s "
                        "(a request in flight timed out, the controller silent)"
                    )
        except BaseException:
            acquiring.cancel()
            # Cancelled too late, the lock may be ours already: give it back.
            acquiring.add_done_callback(self._release_if_taken)
            raise

    def _release_if_taken(self, acquiring: asyncio.Future[Any]) -> None:
        if not acquiring.cancelled() and acquiring.exception() is None:
            self._lock.release()
