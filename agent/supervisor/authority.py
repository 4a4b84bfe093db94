"""Who may drive the timing now, and keeping it so: modes, the lease, fallback, backup timer.

:class:`Authority` turns what happens (a command applied, the broker lost, a
heartbeat, a status with flash, the controller link) into
:class:`~agent.supervisor.modes.ModeEvent` for the one state machine, and acts
on each transition:

* **central lost → local within a second.** The lease (``lease.py``) knows
  the moment central is lost; :meth:`Authority.watch_lease` sleeps exactly
  until then. The fallback releases the controller to its own time-of-day
  schedule (``systemPatternControl`` = 0, standby): the controller changes
  pattern through its normal transition at a cycle boundary, coordinated on
  its clock, which the agent keeps set from the system clock — so
  neighbouring intersections keep their offsets and the green wave.
* **defence in depth.** The controller's own backup timer is set longer than
  the agent's heartbeat timeout and restarted (by rewriting the commanded
  pattern) while central drives; if the agent dies, the controller falls back
  by itself when it runs out.
* **admission.** Before a central command is carried out: ``E_OVERRIDE``
  while a technician holds control; ``E_CLOCK`` for a coordinated pattern or
  an ``activate_at`` while the system clock is not trusted.

Every transition is audited, recorded as an event and published in ``state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent.central.commands import Code, CommandRejected, ControlPatternArgs
from agent.central.jws import VerifiedCommand
from agent.controller.interface import Controller, ControllerStatus, FlashState, PatternCommand
from agent.errors import ControllerError, GreenwaveError
from agent.logs import get_logger
from agent.supervisor.lease import CentralLease
from agent.supervisor.modes import Mode, ModeEvent, ModeMachine, Transition

log = get_logger("supervisor.authority")

#: Commands a technician's override blocks.
_CONTROL_COMMANDS = frozenset({"plan.load", "control.pattern", "control.release"})
#: Flash states that are a fault, not an order.
_FAULT_FLASH = frozenset({FlashState.MMU, FlashState.FAULT_MONITOR})
#: How far the controller's clock may drift before the agent sets it (s).
CLOCK_SET_TOLERANCE_S = 1.5
#: How often the controller's clock is compared with the system clock (s).
CLOCK_CHECK_INTERVAL_S = 60.0


class ClockCheck(Protocol):
    """Whether the system clock can be trusted (``clock.py``)."""

    def check(self) -> Any:
        """A verdict with ``synced: bool`` and ``detail: str``."""
        ...


class AuditSink(Protocol):
    """The audit log."""

    def append(self, kind: str, /, *, durable: bool = False, **fields: Any) -> Any:
        """Append one entry."""
        ...


#: Longest override a technician may take at once (minutes); they may extend it.
MAX_OVERRIDE_MINUTES = 480.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Override:
    """A technician's time-boxed local control."""

    pattern: PatternCommand
    who: str
    started_at: float
    until_wall: float
    until_mono: float

    def as_state(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "who": self.who,
            "started_at": round(self.started_at, 1),
            "until": round(self.until_wall, 1),
        }


class OverrideRefused(GreenwaveError):
    """A technician's override cannot be taken (code E_OVERRIDE); the message says why."""

    code = "E_OVERRIDE"


def backup_time_for(heartbeat_timeout_s: float) -> int:
    """The controller backup time: comfortably longer than the agent's own timeout."""
    return max(10, math.ceil(2 * heartbeat_timeout_s + 5))


class Authority:
    """Modes, the central lease, the fallback and the controller's backup timer."""

    def __init__(
        self,
        *,
        controller: Controller,
        heartbeat_timeout_s: float,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        clock_trust: ClockCheck | None = None,
        audit: AuditSink | None = None,
        backup_time_s: int = 0,
        set_clock: bool = True,
        record: Callable[[Mapping[str, Any]], None] = lambda event: None,
        on_change: Callable[[], None] = lambda: None,
        cancel_activation: Callable[[], None] = lambda: None,
    ) -> None:
        self.controller = controller
        self.machine = ModeMachine(wall)
        self.lease = CentralLease(mono, heartbeat_timeout_s=heartbeat_timeout_s)
        self.backup_time_s = backup_time_s or backup_time_for(heartbeat_timeout_s)
        #: How often the backup timer is restarted while central drives (agent seconds).
        self.refresh_s = max(0.5, min(self.backup_time_s / 4, heartbeat_timeout_s))
        self.set_clock = set_clock
        self.clock_trust = clock_trust
        self.audit = audit
        self._wall = wall
        self._mono = mono
        self._record = record
        self._on_change = on_change
        self._cancel_activation = cancel_activation
        #: Serialises every write of the control object (see CommandHandler.control_lock).
        self.control_lock = asyncio.Lock()
        self._lease_changed = asyncio.Event()
        self._work = asyncio.Event()
        self._prepare = False
        self._release = False
        self._commanded: PatternCommand = "standby"
        self.fallbacks = 0
        self.last_fallback_s: float | None = None
        #: The technician's override in force (mode ``override``), if any.
        self.override: Override | None = None

    # -- what the state machine hears ------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.machine.mode

    def _event(self, event: ModeEvent, reason: str) -> Transition | None:
        change = self.machine.handle(event, reason)
        if change is None:
            return None
        log.info(
            "mode_changed",
            before=str(change.before),
            after=str(change.after),
            cause=str(event),
            reason=reason,
        )
        self._record(
            {
                "kind": "mode",
                "mode": str(change.after),
                "before": str(change.before),
                "reason": reason,
            }
        )
        if self.audit is not None:
            self.audit.append(
                "mode",
                durable=True,
                before=str(change.before),
                after=str(change.after),
                event=str(event),
                reason=reason,
            )
        if self.audit is not None and change.after is Mode.FAULT:
            self.audit.append("controller_fault", durable=True, reason=reason)
        if change.before is Mode.OVERRIDE:
            self.override = None
        if (
            change.before in (Mode.CENTRAL, Mode.FLASH, Mode.OVERRIDE)
            and change.after is Mode.LOCAL
        ):
            self._cancel_activation()
            self.lease.release()
            self._release = True
            self._work.set()
        self._on_change()
        return change

    def admit(self, command: VerifiedCommand) -> None:
        """Refuse a command the current mode or clock does not allow (before it runs)."""
        if command.cmd not in _CONTROL_COMMANDS:
            return
        if self.mode is Mode.OVERRIDE:
            raise CommandRejected(
                Code.E_OVERRIDE,
                f"a technician holds local control ({self.machine.reason})",
                jti=command.jti,
                cmd=command.cmd,
            )
        if command.cmd == "control.pattern" and self.clock_trust is not None:
            args = command.args_as(ControlPatternArgs)
            coordinated = isinstance(args.pattern, int) or args.activate_at is not None
            verdict = self.clock_trust.check()
            if coordinated and not verdict.synced:
                raise CommandRejected(
                    Code.E_CLOCK,
                    "the device clock is not trusted, so coordination would drift off the "
                    f"corridor: {verdict.detail}; free, flash and release are still accepted",
                    jti=command.jti,
                    cmd=command.cmd,
                )

    def heard(self, command: VerifiedCommand) -> None:
        """A valid command or heartbeat: central is alive."""
        self.lease.heard()
        self._lease_changed.set()

    def applied(
        self, command: VerifiedCommand | None, cmd: str, pattern: PatternCommand | None
    ) -> None:
        """A control command took effect in the controller."""
        if cmd == "control.release":
            self._commanded = "standby"
            self.lease.release()
            self._event(ModeEvent.CENTRAL_RELEASE, "central released control")
        elif pattern is not None:
            self._commanded = pattern
            lease_s = None
            if command is not None and isinstance(command.args, ControlPatternArgs):
                lease_s = command.args.lease_s
            self.lease.command(lease_s=lease_s)
            if pattern == "flash":
                self._event(ModeEvent.CENTRAL_FLASH, "central ordered flash")
            else:
                self._event(ModeEvent.CENTRAL_COMMAND, f"central commanded pattern {pattern}")
        self._lease_changed.set()

    def broker(self, up: bool) -> None:
        """The MQTT link went up or down."""
        self.lease.broker(up)
        self._lease_changed.set()

    def controller_link(self, up: bool, reason: str) -> None:
        """The controller link went up or down."""
        if up:
            self._event(ModeEvent.CONTROLLER_OK, "the controller answers again")
        else:
            self._event(ModeEvent.CONTROLLER_FAULT, f"controller link down: {reason}")

    def status(self, status: ControllerStatus) -> None:
        """A new status: flash and faults change the mode."""
        mode = self.mode
        if status.flash in _FAULT_FLASH:
            self._event(ModeEvent.CONTROLLER_FAULT, f"the controller reports {status.flash}")
        elif status.in_flash and status.flash is not FlashState.STARTUP:
            # Start-up flash is the controller's own power-up sequence, not a mode.
            if mode is not Mode.FLASH:
                self._event(ModeEvent.CONTROLLER_FLASH, f"the controller reports {status.flash}")
        elif status.in_flash:
            pass
        elif mode is Mode.FLASH and self._commanded != "flash":
            self._event(ModeEvent.CONTROLLER_FLASH_CLEARED, "the controller's flash ended")
        elif mode is Mode.FAULT and status.flash not in _FAULT_FLASH:
            self._event(ModeEvent.CONTROLLER_OK, "the controller reports no fault")

    # -- the technician ------------------------------------------------------------------------

    async def start_override(
        self, pattern: PatternCommand, *, minutes: float, who: str, plan_patterns: frozenset[int]
    ) -> Override:
        """Take local control for ``minutes``: command ``pattern`` (read back), mode override.

        Raises :class:`OverrideRefused` (bad request, controller fault) or
        :class:`~agent.errors.ControllerError` (the controller did not confirm);
        nothing changes then.
        """
        if not 1 / 60 <= minutes <= MAX_OVERRIDE_MINUTES:
            raise OverrideRefused(f"an override lasts 1 s to {MAX_OVERRIDE_MINUTES:g} minutes")
        if isinstance(pattern, int) and pattern not in plan_patterns:
            known = ", ".join(str(p) for p in sorted(plan_patterns)) or "none: no plan loaded"
            raise OverrideRefused(f"pattern {pattern} is not in the loaded plan (it has {known})")
        if self.mode is Mode.FAULT:
            raise OverrideRefused(f"the controller is in fault: {self.machine.reason}")
        async with self.control_lock:
            await self.controller.command_pattern(pattern)
            self._commanded = pattern
        now_wall, now_mono = self._wall(), self._mono()
        self.override = Override(
            pattern=pattern,
            who=who,
            started_at=now_wall,
            until_wall=now_wall + minutes * 60,
            until_mono=now_mono + minutes * 60,
        )
        self._commanded = pattern
        self._cancel_activation()
        self.lease.release()
        what = f"technician {who}: pattern {pattern} for {minutes:g} min"
        if self.mode is Mode.OVERRIDE:
            self._audit_technician("override_extended", who, pattern=str(pattern), minutes=minutes)
            self._on_change()
        else:
            self._audit_technician("override_started", who, pattern=str(pattern), minutes=minutes)
            self._event(ModeEvent.OVERRIDE_START, what)
        self._lease_changed.set()
        self._work.set()
        return self.override

    def end_override(self, who: str) -> bool:
        """Give control back (to local); False when no override was in force."""
        if self.mode is not Mode.OVERRIDE:
            return False
        self._technician_event(ModeEvent.OVERRIDE_END, who, f"technician {who} released control")
        return True

    def _technician_event(self, event: ModeEvent, who: str, reason: str) -> None:
        self._audit_technician("override_ended", who, reason=reason)
        self._event(event, reason)
        self._lease_changed.set()

    def _audit_technician(self, action: str, who: str, **fields: Any) -> None:
        self._record({"kind": "technician", "action": action, "who": who, **fields})
        if self.audit is not None:
            self.audit.append("technician", durable=True, action=action, who=who, **fields)

    # -- long-lived tasks ---------------------------------------------------------------------

    async def watch_lease(self) -> None:
        """Fall back to local the moment central is lost (sleeps until the lease's deadline)."""
        while True:
            override = self.override
            expired = override is not None and self._mono() >= override.until_mono
            if self.mode is Mode.OVERRIDE and override is not None and expired:
                self._technician_event(
                    ModeEvent.OVERRIDE_END, override.who, "the override's time ran out"
                )
                continue
            if self.mode in (Mode.CENTRAL, Mode.FLASH) and self._commanded != "standby":
                why = self.lease.lost()
                if why is not None:
                    self.fallbacks += 1
                    self._event(ModeEvent.CENTRAL_LOST, f"central lost: {why}")
                    continue
            self._lease_changed.clear()
            deadline = self.lease.deadline()
            if self.override is not None:
                until = self.override.until_mono
                deadline = until if deadline is None else min(deadline, until)
            timeout = None if deadline is None else max(0.0, deadline - self._mono()) + 0.001
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._lease_changed.wait()

    def controller_connected(self) -> None:
        """The controller answers (again): set its backup timer; release it unless central rules."""
        self._prepare = True
        self._work.set()

    async def keep_controller(self) -> None:
        """Release the controller when falling back; keep its backup timer set and running."""
        refresh_s = self.refresh_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(refresh_s):
                    await self._work.wait()
            self._work.clear()
            try:
                if self._prepare:
                    await self.controller.set_backup_time(self.backup_time_s)
                    self._prepare = False
                    if (
                        self.mode not in (Mode.CENTRAL, Mode.OVERRIDE)
                        and self._commanded != "flash"
                    ):
                        self._release = True
                async with self.control_lock:
                    # The value is chosen under the lock: a command in flight finishes first.
                    if self._release:
                        started = self._mono()
                        await self.controller.command_pattern("standby")
                        self._release = False
                        self._commanded = "standby"
                        self.last_fallback_s = self._mono() - started
                        log.info("controller_released", seconds=round(self.last_fallback_s, 3))
                    elif self.mode in (Mode.CENTRAL, Mode.OVERRIDE) or self._commanded == "flash":
                        # Rewriting the commanded pattern restarts the controller's backup timer.
                        await self.controller.command_pattern(self._commanded)
            except ControllerError as err:
                log.warning("controller_keep_failed", error=str(err))
                await asyncio.sleep(0.2)
                self._work.set()

    async def keep_clock(self, latest: Callable[[], ControllerStatus | None]) -> None:
        """Keep the controller's clock on the system clock (when the system clock is trusted)."""
        if not self.set_clock:
            return
        while True:
            status = latest()
            trusted = self.clock_trust is None or self.clock_trust.check().synced
            if status is not None and status.controller_time is not None and trusted:
                drift = status.controller_time - self._wall()
                if abs(drift) > CLOCK_SET_TOLERANCE_S:
                    try:
                        await self.controller.set_clock(round(self._wall()))
                        log.info("controller_clock_set", drift_s=round(drift, 1))
                        self._record({"kind": "controller_clock_set", "drift_s": round(drift, 1)})
                    except ControllerError as err:
                        log.warning("controller_clock_set_failed", error=str(err))
            await asyncio.sleep(CLOCK_CHECK_INTERVAL_S if status is not None else 1.0)
