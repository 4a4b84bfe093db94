"""The agent's modes (SPEC §6) as one explicit state machine: every (mode, event) pair listed.

=========  ====================================================================
mode       who drives the timing
=========  ====================================================================
central    a central ``control.pattern``, kept alive by heartbeats and its lease
local      the stored plan's time-of-day schedule, coordinated on local clocks
override   a technician, for a bounded time (central commands: ``E_OVERRIDE``)
flash      flash ordered by central or a technician, or reported by the controller
fault      the controller link is down, or the controller reports a fault (MMU)
=========  ====================================================================

The table below is the whole behaviour; :func:`next_mode` only looks it up. A
pair missing from the table is a programming error (:class:`KeyError` from a
test that walks every pair), never a silent "stay". ``None`` means "stay, on
purpose". Two rules shape it:

* **Never back to central by itself.** Link back, flash cleared, override
  over: all lead to ``local``. Only a new valid central command
  (``CENTRAL_COMMAND``) enters ``central``.
* **Faults win.** A lost controller link or an MMU flash puts any mode into
  ``fault``; leaving ``fault`` goes to ``local``.

The machine is pure: it holds the mode, why and since when (wall clock,
injected), and returns the :class:`Transition` it made, for the supervisor to
act on (release the controller, audit, publish ``state``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class Mode(enum.StrEnum):
    """Who drives the timing (published in ``state``)."""

    CENTRAL = "central"
    LOCAL = "local"
    OVERRIDE = "override"
    FLASH = "flash"
    FAULT = "fault"


class ModeEvent(enum.StrEnum):
    """What can happen to the agent."""

    #: A valid central ``control.pattern`` (a pattern or free) was applied.
    CENTRAL_COMMAND = "central_command"
    #: A valid central ``control.pattern`` ``flash`` was applied.
    CENTRAL_FLASH = "central_flash"
    #: A valid ``control.release`` was applied.
    CENTRAL_RELEASE = "central_release"
    #: Central is lost: broker down, no heartbeat, or the command's lease ran out.
    CENTRAL_LOST = "central_lost"
    #: A technician took local control / gave it back (or its time ran out).
    OVERRIDE_START = "override_start"
    OVERRIDE_END = "override_end"
    #: The controller reports flash it was not commanded into (cabinet switch, start-up).
    CONTROLLER_FLASH = "controller_flash"
    #: The controller's flash ended.
    CONTROLLER_FLASH_CLEARED = "controller_flash_cleared"
    #: The controller link is down, or the controller reports a fault (MMU).
    CONTROLLER_FAULT = "controller_fault"
    #: The link answers again and no fault is reported.
    CONTROLLER_OK = "controller_ok"


M, E = Mode, ModeEvent

#: (mode, event) → the next mode, or None to stay. Every pair is listed.
TRANSITIONS: Final[Mapping[tuple[Mode, ModeEvent], Mode | None]] = MappingProxyType(
    {
        # central: driven by central
        (M.CENTRAL, E.CENTRAL_COMMAND): None,  # a new pattern, still central
        (M.CENTRAL, E.CENTRAL_FLASH): M.FLASH,
        (M.CENTRAL, E.CENTRAL_RELEASE): M.LOCAL,
        (M.CENTRAL, E.CENTRAL_LOST): M.LOCAL,  # the fallback
        (M.CENTRAL, E.OVERRIDE_START): M.OVERRIDE,
        (M.CENTRAL, E.OVERRIDE_END): None,  # no override to end
        (M.CENTRAL, E.CONTROLLER_FLASH): M.FLASH,
        (M.CENTRAL, E.CONTROLLER_FLASH_CLEARED): None,
        (M.CENTRAL, E.CONTROLLER_FAULT): M.FAULT,
        (M.CENTRAL, E.CONTROLLER_OK): None,
        # local: the time-of-day schedule
        (M.LOCAL, E.CENTRAL_COMMAND): M.CENTRAL,
        (M.LOCAL, E.CENTRAL_FLASH): M.FLASH,
        (M.LOCAL, E.CENTRAL_RELEASE): None,
        (M.LOCAL, E.CENTRAL_LOST): None,
        (M.LOCAL, E.OVERRIDE_START): M.OVERRIDE,
        (M.LOCAL, E.OVERRIDE_END): None,
        (M.LOCAL, E.CONTROLLER_FLASH): M.FLASH,
        (M.LOCAL, E.CONTROLLER_FLASH_CLEARED): None,
        (M.LOCAL, E.CONTROLLER_FAULT): M.FAULT,
        (M.LOCAL, E.CONTROLLER_OK): None,
        # override: a technician; central commands are refused before they get here
        (M.OVERRIDE, E.CENTRAL_COMMAND): None,
        (M.OVERRIDE, E.CENTRAL_FLASH): None,
        (M.OVERRIDE, E.CENTRAL_RELEASE): None,
        (M.OVERRIDE, E.CENTRAL_LOST): None,
        (M.OVERRIDE, E.OVERRIDE_START): None,  # extended
        (M.OVERRIDE, E.OVERRIDE_END): M.LOCAL,
        (M.OVERRIDE, E.CONTROLLER_FLASH): None,  # the technician sees it; stays in charge
        (M.OVERRIDE, E.CONTROLLER_FLASH_CLEARED): None,
        (M.OVERRIDE, E.CONTROLLER_FAULT): M.FAULT,
        (M.OVERRIDE, E.CONTROLLER_OK): None,
        # flash
        (M.FLASH, E.CENTRAL_COMMAND): M.CENTRAL,  # central ends the flash it ordered
        (M.FLASH, E.CENTRAL_FLASH): None,
        (M.FLASH, E.CENTRAL_RELEASE): M.LOCAL,
        (M.FLASH, E.CENTRAL_LOST): M.LOCAL,  # a flash central ordered ends with central
        (M.FLASH, E.OVERRIDE_START): M.OVERRIDE,
        (M.FLASH, E.OVERRIDE_END): None,
        (M.FLASH, E.CONTROLLER_FLASH): None,
        (M.FLASH, E.CONTROLLER_FLASH_CLEARED): M.LOCAL,
        (M.FLASH, E.CONTROLLER_FAULT): M.FAULT,
        (M.FLASH, E.CONTROLLER_OK): None,
        # fault: nothing but the controller's recovery leaves it
        (M.FAULT, E.CENTRAL_COMMAND): None,
        (M.FAULT, E.CENTRAL_FLASH): None,
        (M.FAULT, E.CENTRAL_RELEASE): None,
        (M.FAULT, E.CENTRAL_LOST): None,
        (M.FAULT, E.OVERRIDE_START): None,
        (M.FAULT, E.OVERRIDE_END): None,
        (M.FAULT, E.CONTROLLER_FLASH): None,
        (M.FAULT, E.CONTROLLER_FLASH_CLEARED): None,
        (M.FAULT, E.CONTROLLER_FAULT): None,
        (M.FAULT, E.CONTROLLER_OK): M.LOCAL,
    }
)


def next_mode(mode: Mode, event: ModeEvent) -> Mode | None:
    """The mode after ``event`` in ``mode``, or None to stay (KeyError: a missing pair)."""
    return TRANSITIONS[(mode, event)]


@dataclass(frozen=True, kw_only=True, slots=True)
class Transition:
    """One mode change."""

    before: Mode
    after: Mode
    event: ModeEvent
    reason: str
    at: float


class ModeMachine:
    """The current mode, why and since when; :meth:`handle` applies the table."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        initial: Mode = Mode.LOCAL,
        reason: str = "agent started: the stored plan's time-of-day schedule",
    ) -> None:
        self._clock = clock
        self.mode = initial
        self.reason = reason
        self.since = clock()

    def handle(self, event: ModeEvent, reason: str) -> Transition | None:
        """Apply ``event``; the transition made, or None when the mode stays."""
        after = next_mode(self.mode, event)
        if after is None or after is self.mode:
            return None
        change = Transition(
            before=self.mode, after=after, event=event, reason=reason, at=self._clock()
        )
        self.mode, self.reason, self.since = after, reason, change.at
        return change
