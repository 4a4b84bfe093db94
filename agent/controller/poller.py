"""The status poller: the agent's eyes, ten times a second, and the judge of link health.

One long-lived task (:meth:`StatusPoller.run`) polls the controller at a fixed
rate and publishes each :class:`ControllerStatus` to its subscribers. A
subscriber that falls behind gets the newest status, never a queue of stale
ones (SPaT wants the present, not the past).

Link health is a small state machine: the link is **up** after a successful
poll and **down** after ``down_after`` consecutive failed polls (or at once
when the transport itself closes: a pulled cable, a stopped simulator). While
down, the poller reopens the transport with capped, jittered exponential
backoff; the first successful poll brings it back up. No restart needed.

How fast a dead controller is noticed follows from the settings. A status
poll is tried once and waits ``SnmpSettings.poll_timeout_s`` (150 ms, plus
the wire time of a serial line); a failed poll is followed by the next free
slot of the poll grid. With the defaults (10 Hz, ``down_after`` 3) a
controller that falls silent is called down at most 0.1 + 2 x 0.2 + 0.15 =
0.65 s after its last answer, and a stream that closes at the next poll
(0.1 s): inside the one second the agent has. (With the 500 ms timeout and
two retries that commands use, three polls would take over 4 s.) A poll that
waits behind a command's request fails once a try of that request has timed
out and the controller has said nothing for 150 ms more
(:mod:`agent.controller.turns`): a command in flight delays the verdict by
its first try's 0.5 s at most, and never hides a silent controller.

Time is injected (:class:`Clock`) so that tests of rates and backoff do not
depend on the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from agent.backoff import Backoff, Clock, SystemClock
from agent.controller.interface import Controller, ControllerStatus
from agent.errors import ControllerError
from agent.logs import get_logger

log = get_logger("controller.poller")


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkState:
    """Whether the controller answers, since when, and why not."""

    up: bool
    since: float
    reason: str = ""
    consecutive_failures: int = 0


@dataclass(frozen=True, kw_only=True)
class PollSettings:
    """How often to poll and how quickly to give up on the link."""

    rate_hz: float = 10.0
    down_after: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0


class StatusPoller:
    """Polls one controller and publishes its status and link state."""

    def __init__(
        self,
        controller: Controller,
        settings: PollSettings | None = None,
        *,
        clock: Clock | None = None,
        on_link_change: Callable[[LinkState], None] | None = None,
    ) -> None:
        self.controller = controller
        self.settings = settings or PollSettings()
        self.clock = clock or SystemClock()
        self._on_link_change = on_link_change
        self._latest: ControllerStatus | None = None
        self._link = LinkState(up=False, since=self.clock.monotonic(), reason="not yet polled")
        self._changed = asyncio.Condition()
        self._version = 0  # bumped on every change (status or link)
        self._status_version = 0  # bumped on every new status
        self.polls = 0
        self.failures = 0
        self._backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)

    @property
    def latest(self) -> ControllerStatus | None:
        """The newest status, or None before the first successful poll."""
        return self._latest

    @property
    def link(self) -> LinkState:
        """The link's current state."""
        return self._link

    def _set_link(self, state: LinkState) -> None:
        changed = state.up != self._link.up
        self._link = state
        if changed:
            log.info(
                "controller_link_up" if state.up else "controller_link_down",
                endpoint=self.controller.endpoint,
                reason=state.reason,
            )
            if self._on_link_change is not None:
                self._on_link_change(state)

    async def _publish(self, status: ControllerStatus | None) -> None:
        async with self._changed:
            if status is not None:
                self._latest = status
                self._status_version += 1
            self._version += 1
            self._changed.notify_all()

    async def updates(self) -> AsyncIterator[ControllerStatus]:
        """Every new status (the newest one when the reader is behind)."""
        seen = self._status_version
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: self._status_version != seen)  # type: ignore[misc]
                seen = self._status_version
                status = self._latest
            if status is not None:
                yield status

    async def wait_for(self, predicate: Callable[[ControllerStatus], bool]) -> ControllerStatus:
        """The first status (current included) that satisfies ``predicate``.

        Bound it with ``asyncio.timeout``.
        """
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._latest is not None and predicate(self._latest)
            )
            assert self._latest is not None
            return self._latest

    async def wait_link(self, up: bool) -> LinkState:
        """Wait until the link is up (or down); bound it with ``asyncio.timeout``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._link.up is up)
            return self._link

    async def _poll_once(self) -> bool:
        try:
            status = await self.controller.read_status()
        except ControllerError as err:
            self.failures += 1
            failures = self._link.consecutive_failures + 1
            transport_gone = not self.controller.connected
            if self._link.up and failures < self.settings.down_after and not transport_gone:
                self._link = LinkState(
                    up=True, since=self._link.since, reason=str(err), consecutive_failures=failures
                )
                return True
            if self._link.up or self._link.reason != str(err):
                self._set_link(
                    LinkState(
                        up=False,
                        since=self.clock.monotonic() if self._link.up else self._link.since,
                        reason=str(err),
                        consecutive_failures=failures,
                    )
                )
                await self._publish(None)
            return False
        self.polls += 1
        if not self._link.up:
            self._set_link(LinkState(up=True, since=self.clock.monotonic()))
        elif self._link.consecutive_failures:
            self._link = LinkState(up=True, since=self._link.since)
        self._backoff.reset()
        await self._publish(status)
        return True

    async def run(self) -> None:
        """Poll forever (cancel to stop); reopen the link with backoff when it fails."""
        period = 1.0 / self.settings.rate_hz
        try:
            while True:
                try:
                    await self.controller.open()
                except ControllerError as err:
                    # A port that cannot even be opened (USB adapter unplugged) is a
                    # failed attempt too: the watchdog sees the poller is alive.
                    self.failures += 1
                    self._set_link(LinkState(up=False, since=self._link.since, reason=str(err)))
                    await self._publish(None)
                    await self.clock.sleep(self._backoff.next_delay())
                    continue
                next_at = self.clock.monotonic()
                while True:
                    ok = await self._poll_once()
                    if not ok:
                        break
                    next_at += period
                    now = self.clock.monotonic()
                    if next_at < now:  # behind: skip the missed slots, keep the phase
                        next_at += ((now - next_at) // period + 1) * period
                    await self.clock.sleep(next_at - now)
                await self.controller.close()
                await self.clock.sleep(self._backoff.next_delay())
        finally:
            await self.controller.close()
