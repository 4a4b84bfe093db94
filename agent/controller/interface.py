"""The protocol-neutral controller interface: what the rest of the agent sees of a cabinet.

Every driver (NTCIP 1202 today, GB/T 20999 next) turns its protocol into these
values and implements :class:`Controller`. The supervisor, the MQTT link and
the CLI only ever talk to this interface, so none of them cares which
protocol a cabinet speaks.

Values are frozen dataclasses; times the controller reports in whole seconds
stay whole seconds, and ``received_at`` is the agent's monotonic clock when
the status arrived (for gap measurements), ``controller_time`` the
controller's own clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from agent.plan.model import Plan

#: What can be commanded to run: a pattern number, free, flash, or standby
#: (give control back to the controller's own time-of-day schedule).
PatternCommand = int | Literal["free", "flash", "standby"]
#: What a controller can report running.
RunningPattern = int | Literal["free", "flash", "none"]


class Light(enum.StrEnum):
    """The vehicle indication of one phase."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"
    DARK = "dark"


class PedLight(enum.StrEnum):
    """The pedestrian indication of one phase."""

    WALK = "walk"
    PED_CLEAR = "ped_clear"
    DONT_WALK = "dont_walk"
    DARK = "dark"


class ControlSource(enum.StrEnum):
    """Who drives the controller's timing right now (NTCIP unitControlStatus)."""

    SYSTEM = "system"  # central / the agent, through a system control object
    STANDBY = "standby"  # system control released: the local time base rules
    BACKUP = "backup"  # the controller's backup timer expired
    MANUAL = "manual"
    TIMEBASE = "timebase"
    INTERCONNECT = "interconnect"
    OTHER = "other"


class FlashState(enum.StrEnum):
    """Whether, and why, the intersection is in flash (NTCIP unitFlashStatus)."""

    NOT_FLASH = "not_flash"
    AUTOMATIC = "automatic"  # commanded (pattern 255 / time of day)
    LOCAL_MANUAL = "local_manual"  # cabinet switch
    FAULT_MONITOR = "fault_monitor"
    MMU = "mmu"  # the conflict monitor latched: a safety fault
    STARTUP = "startup"
    PREEMPT = "preempt"
    OTHER = "other"


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseSignal:
    """One phase's indications."""

    phase: int
    light: Light
    ped: PedLight


@dataclass(frozen=True, kw_only=True, slots=True)
class Alarms:
    """The controller's alarm words, raw (bit meanings per protocol)."""

    unit1: int = 0
    unit2: int = 0
    short: int = 0

    @property
    def any(self) -> bool:
        """True when any alarm bit is set."""
        return bool(self.unit1 or self.unit2 or self.short)


@dataclass(frozen=True, kw_only=True, slots=True)
class ControllerStatus:
    """One consistent snapshot of what the intersection is doing."""

    #: The agent's monotonic clock when the reply arrived (seconds).
    received_at: float
    phases: tuple[PhaseSignal, ...]
    #: The pattern actually running (after any transition).
    pattern: RunningPattern
    #: What the system (agent/central) has commanded; "standby" when released.
    commanded: PatternCommand
    #: Why coordination is or is not running (e.g. "not_free", "bad_plan").
    free_status: str
    #: Seconds into (or, for NTCIP, remaining in) the coordinated cycle.
    cycle_time_s: int
    control: ControlSource
    flash: FlashState
    alarms: Alarms
    #: The controller's clock, seconds since the epoch (UTC), when it reports one.
    controller_time: int | None = None
    #: Seconds of the controller's own backup timer (0 = off).
    backup_time_s: int | None = None

    @property
    def in_flash(self) -> bool:
        """True when the intersection is flashing, for whatever reason."""
        return self.flash is not FlashState.NOT_FLASH

    def phase(self, number: int) -> PhaseSignal | None:
        """The indications of one phase, if reported."""
        return next((p for p in self.phases if p.phase == number), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseConfig:
    """A phase as configured in the controller."""

    phase: int
    enabled: bool
    ring: int
    min_green_s: float
    yellow_s: float
    red_clear_s: float
    walk_s: float
    ped_clear_s: float
    max_green_s: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ControllerIdentity:
    """Who the controller is and what it supports."""

    protocol: str
    endpoint: str
    description: str = ""
    max_phases: int | None = None
    max_patterns: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class WriteReport:
    """What a plan write did: how many objects, confirmed by read-back."""

    objects_written: int
    objects_verified: int
    requests: int
    duration_s: float


@runtime_checkable
class Controller(Protocol):
    """The operations the agent needs of a signal controller, whatever its protocol.

    Every method raises :class:`agent.errors.ControllerError` (code
    ``E_CONTROLLER``) when the controller refuses or does not confirm, and
    :class:`agent.errors.LinkDown` when it cannot be reached.
    """

    @property
    def endpoint(self) -> str:
        """The controller's URL, for logs and status (no secrets)."""
        ...

    @property
    def connected(self) -> bool:
        """True while the transport is open (a stream can close under us)."""
        ...

    async def open(self) -> None:
        """Open the transport (idempotent)."""
        ...

    async def close(self) -> None:
        """Close the transport; safe to call twice."""
        ...

    async def read_status(self) -> ControllerStatus:
        """One status snapshot."""
        ...

    async def read_identity(self) -> ControllerIdentity:
        """The controller's identity and capacities."""
        ...

    async def read_phases(self) -> tuple[PhaseConfig, ...]:
        """The phase table as configured in the controller."""
        ...

    async def write_plan(self, plan: Plan) -> WriteReport:
        """Write a validated plan into the controller and confirm every object by read-back."""
        ...

    async def command_pattern(self, command: PatternCommand) -> None:
        """Command a pattern, free, flash or standby; confirmed by reading the control back."""
        ...

    async def set_backup_time(self, seconds: int) -> None:
        """Set the controller's own backup timer (0 = off); confirmed by read-back."""
        ...

    async def set_clock(self, epoch_s: int) -> None:
        """Set the controller's clock (UTC seconds); confirmed by read-back within 2 s."""
        ...
