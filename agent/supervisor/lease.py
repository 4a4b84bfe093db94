"""The central lease: is central really there? (SPEC §6)

Central counts as present only while all three hold:

1. the broker connection is up;
2. a valid heartbeat (or any valid command, which proves the same) arrived
   less than ``heartbeat_timeout_s`` ago — a live broker with a dead central
   is still a loss;
3. the running ``control.pattern``'s own ``lease_s``, when it gave one, has
   not run out since its activation.

:meth:`CentralLease.lost` says why central is lost (or None), and
:meth:`CentralLease.deadline` when that could next change, so the supervisor
sleeps exactly until then instead of polling. Time is injected (monotonic
seconds), so the tests run on a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable


class CentralLease:
    """Tracks the three conditions of central presence."""

    def __init__(self, clock: Callable[[], float], *, heartbeat_timeout_s: float) -> None:
        if heartbeat_timeout_s <= 0:
            raise ValueError("heartbeat_timeout_s must be positive")
        self._clock = clock
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.broker_up = False
        self._last_heard: float | None = None
        self._lease_until: float | None = None

    def broker(self, up: bool) -> None:
        """The broker connection went up or down."""
        self.broker_up = up

    def heard(self) -> None:
        """A valid heartbeat or command arrived now."""
        self._last_heard = self._clock()

    def command(self, *, lease_s: float | None, activates_in_s: float = 0.0) -> None:
        """A ``control.pattern`` took effect (or will in ``activates_in_s``); its lease."""
        self.heard()
        if lease_s is None:
            self._lease_until = None
        else:
            self._lease_until = self._clock() + max(0.0, activates_in_s) + lease_s

    def release(self) -> None:
        """No central command is in force any more (release, fallback)."""
        self._lease_until = None

    @property
    def last_heard_ago(self) -> float | None:
        """Seconds since central was last heard from (None: never)."""
        return None if self._last_heard is None else self._clock() - self._last_heard

    def lost(self) -> str | None:
        """Why central counts as lost now, or None while it is present."""
        now = self._clock()
        if not self.broker_up:
            return "the broker connection is down"
        if self._last_heard is None:
            return "central has not been heard from"
        silent = now - self._last_heard
        if silent >= self.heartbeat_timeout_s:
            return f"no valid heartbeat for {silent:.1f} s (timeout {self.heartbeat_timeout_s:g} s)"
        if self._lease_until is not None and now >= self._lease_until:
            return "the command's lease ran out"
        return None

    def deadline(self) -> float | None:
        """The monotonic time at which central would be lost without news (None: never)."""
        if not self.broker_up or self._last_heard is None:
            return None
        due = self._last_heard + self.heartbeat_timeout_s
        if self._lease_until is not None:
            due = min(due, self._lease_until)
        return due
