"""Operator commands for a running simulator: MMU fault injection, MMU reset, status.

Two ways in, one meaning (sans-I/O: text in, data out, applied to a
:class:`~firmware_sim.controller.SimController`):

- lines on the simulator's standard input (the control channel)::

      inject KIND [CHANNEL] [SECONDS]   arm an MMU fault (see below)
      reset                             reset the MMU (the unit restarts with start-up flash)
      status                            one line: clock, mode, pattern, MMU
      help                              this list

- ``--fault KIND@SECONDS[:CHANNEL]`` options, for scripted demos: the fault
  is armed when the simulated time since start reaches SECONDS
  (``reset@SECONDS`` resets the MMU).

KIND is one of ``conflict``, ``dark``, ``short-yellow``, ``skipped-yellow``,
``min-green`` (:class:`~firmware_sim.mmu.FaultKind`). CHANNEL is a load-switch
channel 1-16 (default: the injector picks one that shows the fault).
SECONDS after CHANNEL is how long a conflict or dark channel lasts (default
2 s), or how long the short yellow or short green is (default 2 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Final, TypeAlias

from firmware_sim.controller import SimController
from firmware_sim.mmu import FaultKind

#: Fault kinds by their command-line names.
FAULT_KINDS: Final = {kind.value: kind for kind in FaultKind}

HELP: Final = (
    "commands: inject KIND [CHANNEL] [SECONDS] | reset | status | help;"
    f" KIND: {', '.join(FAULT_KINDS)}"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Inject:
    """Arm an MMU fault on the cabinet outputs."""

    kind: FaultKind
    channel: int | None = None
    #: Duration (conflict, dark) or the short interval (short-yellow, min-green), seconds.
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class MmuReset:
    """Reset the MMU (clears a latched fault)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ShowStatus:
    """Report one status line."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ShowHelp:
    """Report the command list."""


Command: TypeAlias = Inject | MmuReset | ShowStatus | ShowHelp


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduledFault:
    """A ``--fault`` option: a command to run at a simulated time since start."""

    at_s: float
    command: Inject | MmuReset
    label: str


def _kind(name: str) -> FaultKind:
    kind = FAULT_KINDS.get(name.lower())
    if kind is None:
        raise ValueError(f"{name!r} is not a fault kind ({', '.join(FAULT_KINDS)})")
    return kind


def _channel(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 16:
        raise ValueError(f"{text!r} is not a channel 1-16")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise ValueError(f"{text!r}: seconds must be above 0 and at most 3600")
    return value


def parse_command(line: str) -> Command | None:
    """One control-channel line; None for a blank line or a ``#`` comment. Raises ValueError."""
    words = line.split("#", 1)[0].split()
    if not words:
        return None
    verb, args = words[0].lower(), words[1:]
    if verb == "inject":
        if not 1 <= len(args) <= 3:
            raise ValueError("usage: inject KIND [CHANNEL] [SECONDS]")
        return Inject(
            kind=_kind(args[0]),
            channel=_channel(args[1]) if len(args) > 1 else None,
            seconds=_seconds(args[2]) if len(args) > 2 else None,
        )
    simple: dict[str, Command] = {
        "reset": MmuReset(),
        "status": ShowStatus(),
        "help": ShowHelp(),
    }
    if verb in simple:
        if args:
            raise ValueError(f"{verb} takes no arguments")
        return simple[verb]
    raise ValueError(f"unknown command {verb!r}; {HELP}")


def parse_fault(text: str) -> ScheduledFault:
    """``KIND@SECONDS[:CHANNEL]`` or ``reset@SECONDS``. Raises ValueError."""
    name, sep, rest = text.partition("@")
    if not sep:
        raise ValueError(f"{text!r}: write KIND@SECONDS[:CHANNEL], e.g. conflict@30")
    when, _, channel = rest.partition(":")
    try:
        at_s = float(when)
    except ValueError:
        raise ValueError(f"{when!r} is not a number of seconds") from None
    if at_s < 0:
        raise ValueError("the time of a fault cannot be negative")
    command: Inject | MmuReset
    if name.lower() == "reset":
        if channel:
            raise ValueError("reset@SECONDS takes no channel")
        command = MmuReset()
    else:
        command = Inject(kind=_kind(name), channel=_channel(channel) if channel else None)
    return ScheduledFault(at_s=at_s, command=command, label=text)


def ntcip_name(value: Enum) -> str:
    """An enumeration member as NTCIP spells it: ``NOT_FREE`` -> ``notFree``."""
    first, *rest = value.name.lower().split("_")
    return first + "".join(word.capitalize() for word in rest)


def status_line(controller: SimController) -> str:
    """One line for a technician: clock, mode, pattern, control, MMU."""
    status = controller.status()
    clock = datetime.fromtimestamp(status.global_time, UTC).strftime("%Y-%m-%d %H:%M:%S")
    mmu = status.mmu_fault or "ok"
    return (
        f"{clock}Z mode={status.mode.value} pattern={status.coord_pattern_status}"
        f" free={ntcip_name(status.local_free_status)}"
        f" control={ntcip_name(status.unit_control_status)}"
        f" flash={ntcip_name(status.unit_flash_status)} mmu={mmu}"
    )


def run_command(controller: SimController, command: Command) -> str:
    """Apply ``command`` and return a one-line answer for the operator."""
    match command:
        case Inject(kind=kind, channel=channel, seconds=seconds):
            extra = {} if seconds is None else {"duration_s": seconds, "value_s": seconds}
            try:
                controller.inject(kind, channel=channel, **extra)
            except ValueError as err:
                return f"cannot inject {kind.value}: {err}"
            where = f" on channel {channel}" if channel is not None else ""
            return f"armed {kind.value}{where}"
        case MmuReset():
            latched = controller.mmu_reset()
            return "MMU reset: unit restarts" if latched else "MMU reset: nothing was latched"
        case ShowStatus():
            return status_line(controller)
        case ShowHelp():
            return HELP
