"""Central's commands, from the MQTT topic to the controller and back as acknowledgements.

Every message on a command topic goes through the same steps::

    intake (the MQTT reader's task; cheap, never waits for the controller)
      └─ CommandVerifier.verify ── refused ──► ack "rejected" + code   (nothing else happens)
           │ (signature, key, role, times, audience, schema, version, replay: jws.py)
           ├─ heartbeat ──► central is alive (lease); no controller traffic
           └─ everything else ──► the work queue
    worker (one task; commands run one at a time, in arrival order)
      ├─ plan.load        judge (validator, site limits) ─ store ─ "accepted" ─ write +
      │                   read back ─ "applied"  (or "failed" E_CONTROLLER)
      ├─ control.pattern  needs the pattern in a plan the controller confirmed (E_NO_PLAN);
      │                   store ─ "accepted" ─ at activate_at: command + read back ─
      │                   "applied"; not running within 3 cycles ─ second ack "failed"
      ├─ control.release  store ─ "accepted" ─ standby + read back ─ "applied"
      ├─ keys.update      trust store replaced atomically ─ "accepted" ─ "applied"
      └─ diag.request     "applied" with a diagnostics summary

A command rejected by any check never reaches the controller. ``accepted`` is
sent only once what the command asks is on disk (``store.py``), ``applied``
only after the controller's read-back. Acks for refusals that carry no
verified command id (forgeries, garbage) are rate-limited so that a flood of
junk cannot become a flood of acks; every refusal is still counted.

Heartbeats addressed to ``"*"`` are not acknowledged (hundreds of devices
answering every beat would swamp central); central sees them taken in
``state`` (``central.last_heartbeat``). A heartbeat addressed to this device
by id is acknowledged ``applied``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.central.commands import (
    Ack,
    AckStatus,
    Code,
    CommandRejected,
    ControlPatternArgs,
    KeysUpdateArgs,
    PlanLoadArgs,
    check_plan_safety,
)
from agent.central.durable import StateFileError
from agent.central.jws import CommandVerifier, VerifiedCommand
from agent.controller.interface import Controller, ControllerStatus, PatternCommand
from agent.errors import ControllerError, GreenwaveError
from agent.logs import get_logger
from agent.plan.document import read_plan_file
from agent.plan.limits import SiteLimits
from agent.plan.model import Plan
from agent.plan.validator import validate_plan
from agent.supervisor.store import CommandStore, StoredControl

log = get_logger("supervisor.commands")

#: A pattern must be running within this many cycles after its activation (SPEC §4).
RUNNING_WITHIN_CYCLES = 3
#: Slack added to that bound for polling and transition rounding (s).
RUNNING_SLACK_S = 2.0
#: Acks per second for refusals without a verified command id (forgeries, junk).
UNVERIFIED_ACKS_PER_S = 5.0
#: Commands waiting for the worker; beyond it a verified command is refused E_RATE.
WORK_QUEUE = 64


class AckSink(Protocol):
    """Where acknowledgements go (the MQTT ack topic, through a retrying sender)."""

    def send(self, ack: Ack) -> None:
        """Queue ``ack`` for publication; never blocks."""
        ...


class StatusSource(Protocol):
    """The status stream (the poller)."""

    @property
    def latest(self) -> ControllerStatus | None:
        """The newest status."""
        ...

    async def wait_for(self, predicate: Callable[[ControllerStatus], bool]) -> ControllerStatus:
        """The first status satisfying ``predicate``."""
        ...


class CommandAudit(Protocol):
    """The audit log, as the command handler writes to it."""

    def append(self, kind: str, /, *, durable: bool = False, **fields: Any) -> Any: ...

    def note_rejection(
        self, code: str, detail: str, *, jti: str | None = None, **fields: Any
    ) -> Any: ...


EventSink = Callable[[Mapping[str, Any]], None]
WallClock = Callable[[], float]


@dataclass
class CommandStats:
    """Counters for ``state`` and the diagnostics summary."""

    received: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    applied: int = 0
    failed: int = 0
    heartbeats: int = 0
    acks_suppressed: int = 0
    #: Group commands whose ``aud`` did not name this device (ignored, not acked).
    not_addressed: int = 0
    last_heartbeat: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "rejected": dict(sorted(self.rejected.items())),
            "accepted": self.accepted,
            "applied": self.applied,
            "failed": self.failed,
            "heartbeats": self.heartbeats,
            "acks_suppressed": self.acks_suppressed,
            "not_addressed": self.not_addressed,
        }


class _TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass(frozen=True, slots=True)
class _Activation:
    jti: str
    cmd: str
    command: PatternCommand
    at: float
    #: Cycle length of the pattern (s), for the "running within 3 cycles" check.
    cycle_s: float | None


class CommandHandler:
    """Verifies, judges and carries out central's commands (see the module docstring)."""

    def __init__(
        self,
        *,
        device_id: str,
        verifier: CommandVerifier,
        controller: Controller,
        status: StatusSource,
        store: CommandStore,
        limits: SiteLimits,
        acks: AckSink,
        events: EventSink,
        wall: WallClock = time.time,
        diagnostics: Callable[[], Mapping[str, Any]] | None = None,
        on_change: Callable[[], None] | None = None,
        audit: CommandAudit | None = None,
        fallback_plan: Path | None = None,
    ) -> None:
        self.device_id = device_id
        self.verifier = verifier
        self.controller = controller
        self.status = status
        self.store = store
        self.limits = limits
        self.acks = acks
        self.events = events
        self.wall = wall
        self.diagnostics = diagnostics
        self.on_change = on_change
        self.audit = audit
        #: ``[state] fallback_plan``: the plan to run locally when central never loaded one.
        self.fallback_plan = fallback_plan
        self.stats = CommandStats()
        self._queue: asyncio.Queue[VerifiedCommand | str] = asyncio.Queue(WORK_QUEUE)
        self._unverified_acks = _TokenBucket(UNVERIFIED_ACKS_PER_S, 2 * UNVERIFIED_ACKS_PER_S)
        self._activation: _Activation | _Watch | None = None
        self._activation_changed = asyncio.Event()
        self._heard_listeners: list[Callable[[VerifiedCommand], None]] = []
        #: Held from choosing a control value through its write, read-back and
        #: ``on_applied``; shared with the backup-timer refresh (``authority.py``),
        #: so that a refresh can never land between a command and its read-back.
        self.control_lock = asyncio.Lock()
        #: Judges a verified command against the agent's mode and clock (E_OVERRIDE, E_CLOCK).
        self.admit: Callable[[VerifiedCommand], None] = lambda command: None
        #: Told when a control command took effect in the controller (mode changes).
        self.on_applied: Callable[[VerifiedCommand | None, str, PatternCommand | None], None] = (
            lambda command, cmd, pattern: None
        )
        #: The control command a killed agent left unanswered (see ``_reconcile``).
        self._interrupted: StoredControl | object | None = _UNCHECKED

    # -- intake ------------------------------------------------------------------------

    def on_heard(self, listener: Callable[[VerifiedCommand], None]) -> None:
        """Call ``listener`` for every valid command, heartbeats included (the central lease)."""
        self._heard_listeners.append(listener)

    def intake(self, topic: str, payload: bytes) -> None:
        """Judge one message from a command topic; quick, never touches the controller."""
        self.stats.received += 1
        try:
            command = self.verifier.verify(payload)
        except CommandRejected as rejection:
            if rejection.code is Code.E_AUDIENCE and "/group/" in topic:
                # A group command for other members of the group: not ours to answer.
                self.stats.not_addressed += 1
                return
            self._rejected(rejection)
            return
        except StateFileError as err:  # the replay memory cannot be written
            self._rejected(CommandRejected(Code.E_RATE, f"cannot store the command id: {err}"))
            return
        for listener in self._heard_listeners:
            listener(command)
        if command.cmd == "heartbeat":
            self._heartbeat(command)
            return
        try:
            self._queue.put_nowait(command)
        except asyncio.QueueFull:
            self._rejected(
                CommandRejected(
                    Code.E_RATE,
                    f"{WORK_QUEUE} commands are already waiting; send it again later",
                    jti=command.jti,
                    cmd=command.cmd,
                )
            )
        log.info("command_verified", jti=command.jti, cmd=command.cmd, kid=command.kid)

    def _heartbeat(self, command: VerifiedCommand) -> None:
        self.stats.heartbeats += 1
        self.stats.last_heartbeat = self.wall()
        if self.device_id in command.aud:
            self._ack(command, AckStatus.APPLIED, Code.OK, "central heartbeat taken")

    def reconcile(self) -> None:
        """Ask the worker to bring the controller in line with the store (link back up)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait("reconcile")

    # -- acks ----------------------------------------------------------------------------

    def _rejected(self, rejection: CommandRejected) -> None:
        code = str(rejection.code)
        self.stats.rejected[code] = self.stats.rejected.get(code, 0) + 1
        if rejection.jti is None and not self._unverified_acks.take():
            # A flood of junk: counted (stats, the audit log's summary), not one
            # event and one ack each.
            self.stats.acks_suppressed += 1
            if self.audit is not None:
                self.audit.note_rejection(code, rejection.detail, jti=None, cmd=None)
            return
        self._event(
            rejection.jti, rejection.cmd, AckStatus.REJECTED, rejection.code, rejection.detail
        )
        if rejection.jti is not None:
            log.info("command_rejected", code=code, detail=rejection.detail, jti=rejection.jti)
        self.acks.send(Ack.rejected(self.device_id, rejection, self.wall()))

    def _ack(
        self,
        command: VerifiedCommand,
        status: AckStatus,
        code: Code,
        detail: str,
        *,
        diag: Mapping[str, Any] | None = None,
    ) -> None:
        if status is AckStatus.ACCEPTED:
            self.stats.accepted += 1
        elif status is AckStatus.APPLIED:
            self.stats.applied += 1
        elif status is AckStatus.FAILED:
            self.stats.failed += 1
        if command.cmd != "heartbeat":
            self._event(command.jti, command.cmd, status, code, detail)
            log.info("command_" + str(status), jti=command.jti, cmd=command.cmd, detail=detail)
        self.acks.send(
            Ack(
                device=self.device_id,
                jti=command.jti,
                cmd=command.cmd,
                status=status,
                code=code,
                detail=" ".join(detail.split())[:1000],
                ts=self.wall(),
                diag=dict(diag) if diag is not None else None,
            )
        )
        if self.on_change is not None:
            self.on_change()

    def _event(
        self, jti: str | None, cmd: str | None, status: AckStatus, code: Code, detail: str = ""
    ) -> None:
        if self.audit is not None:
            if status is AckStatus.REJECTED:
                self.audit.note_rejection(str(code), detail, jti=jti, cmd=cmd)
            else:
                self.audit.append(
                    "command",
                    durable=status is AckStatus.ACCEPTED,
                    jti=jti,
                    cmd=cmd,
                    outcome=str(status),
                    code=str(code),
                    detail=detail,
                )
        self.events(
            {
                "ts": round(self.wall(), 1),
                "src": "agent",
                "kind": "command",
                "jti": jti,
                "cmd": cmd,
                "status": str(status),
                "result": str(code),
            }
        )

    # -- the worker ----------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out queued commands one at a time, and watch activations (cancel to stop)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._activations(), name="command-activations")
            while True:
                item = await self._queue.get()
                if isinstance(item, str):
                    await self._reconcile()
                    continue
                try:
                    await self._carry_out(item)
                except CommandRejected as rejection:
                    rejection.jti = item.jti
                    rejection.cmd = item.cmd
                    self._rejected(rejection)
                except GreenwaveError as err:  # a state file that cannot be written
                    log.error("command_failed", jti=item.jti, cmd=item.cmd, error=str(err))
                    self._ack(item, AckStatus.FAILED, _code(err), str(err))

    async def _carry_out(self, command: VerifiedCommand) -> None:
        self.admit(command)
        match command.cmd:
            case "plan.load":
                await self._plan_load(command, command.args_as(PlanLoadArgs))
            case "control.pattern":
                await self._control_pattern(command, command.args_as(ControlPatternArgs))
            case "control.release":
                await self._control_release(command)
            case "keys.update":
                self._keys_update(command, command.args_as(KeysUpdateArgs))
            case "diag.request":
                diag = dict(self.diagnostics()) if self.diagnostics is not None else {}
                self._ack(command, AckStatus.APPLIED, Code.OK, "diagnostics", diag=diag)
            case other:  # the verifier knows no other; a new command must be handled here
                raise CommandRejected(Code.E_SCHEMA, f"command {other!r} is not implemented")

    async def _plan_load(self, command: VerifiedCommand, args: PlanLoadArgs) -> None:
        report = check_plan_safety(args, self.limits, jti=command.jti)
        self.verifier.plan_version.check_newer(args.plan.version)
        self.store.store_plan(args.plan, jti=command.jti, now=self.wall())
        self.verifier.plan_version.record(args.plan.version)
        warnings = len(report.warnings)
        self._ack(
            command,
            AckStatus.ACCEPTED,
            Code.OK,
            f"plan {args.plan.version} stored"
            + (
                f" ({warnings} warning(s): {', '.join(sorted(report.rule_ids()))})"
                if warnings
                else ""
            ),
        )
        await self._write_plan(args.plan, command)

    async def _write_plan(self, plan: Plan, command: VerifiedCommand | None) -> bool:
        try:
            written = await self.controller.write_plan(plan)
        except ControllerError as err:
            log.error("plan_write_failed", version=plan.version, error=str(err))
            if command is not None:
                self.store.mark_plan_failed()
                self._ack(command, AckStatus.FAILED, Code.E_CONTROLLER, str(err))
            return False
        self.store.mark_plan_applied()
        if command is not None:
            self._ack(
                command,
                AckStatus.APPLIED,
                Code.OK,
                f"plan {plan.version} written: {written.objects_verified} objects confirmed "
                "by read-back",
            )
        return True

    def _applied_plan(self) -> Plan:
        stored = self.store.plan
        if stored is None:
            raise CommandRejected(Code.E_NO_PLAN, "no plan has been loaded (send plan.load first)")
        if not stored.applied:
            raise CommandRejected(
                Code.E_NO_PLAN,
                f"plan {stored.plan.version} is stored but the controller has not confirmed it",
            )
        return stored.plan

    async def _control_pattern(self, command: VerifiedCommand, args: ControlPatternArgs) -> None:
        cycle_s: float | None = None
        if isinstance(args.pattern, int):
            plan = self._applied_plan()
            pattern = next((p for p in plan.patterns if p.pattern == args.pattern), None)
            if pattern is None:
                numbers = ", ".join(str(p.pattern) for p in plan.patterns)
                raise CommandRejected(
                    Code.E_NO_PLAN,
                    f"pattern {args.pattern} is not in the loaded plan {plan.version} "
                    f"(it has {numbers})",
                )
            cycle_s = float(pattern.cycle)
        now = self.wall()
        self.store.store_control(
            StoredControl(
                jti=command.jti,
                pattern=args.pattern,
                activate_at=args.activate_at,
                lease_s=args.lease_s,
                accepted_at=now,
            )
        )
        at = args.activate_at if args.activate_at is not None else now
        when = "now" if at <= now else f"at {at:.0f} (in {at - now:.1f} s)"
        self._ack(command, AckStatus.ACCEPTED, Code.OK, f"pattern {args.pattern} stored, {when}")
        activation = _Activation(
            jti=command.jti, cmd=command.cmd, command=args.pattern, at=at, cycle_s=cycle_s
        )
        if at <= now:
            await self._activate(activation, command)
        else:
            self._schedule(activation)

    async def _control_release(self, command: VerifiedCommand) -> None:
        self.store.store_control(
            StoredControl(jti=command.jti, pattern=None, accepted_at=self.wall())
        )
        self._ack(command, AckStatus.ACCEPTED, Code.OK, "release stored")
        self._schedule(None)
        async with self.control_lock:
            try:
                await self.controller.command_pattern("standby")
            except ControllerError as err:
                self.store.mark_control_failed(command.jti)
                self._ack(command, AckStatus.FAILED, Code.E_CONTROLLER, str(err))
                return
            self.store.mark_control_applied(command.jti)
            self.on_applied(command, command.cmd, None)
        self._ack(
            command, AckStatus.APPLIED, Code.OK, "control released to the time-of-day schedule"
        )

    def _keys_update(self, command: VerifiedCommand, args: KeysUpdateArgs) -> None:
        self.verifier.trust.apply_update(args)
        kids = ", ".join(k.kid for k in args.keys) or "none"
        self._ack(command, AckStatus.ACCEPTED, Code.OK, f"command keys version {args.version}")
        self._ack(command, AckStatus.APPLIED, Code.OK, f"command keys now: {kids}")

    # -- activation and the running check ------------------------------------------------

    def cancel_activation(self) -> None:
        """Forget a scheduled activation or running check (central lost, override)."""
        self._schedule(None)

    def _schedule(self, activation: _Activation | _Watch | None) -> None:
        self._activation = activation
        self._activation_changed.set()

    async def _activate(self, activation: _Activation, command: VerifiedCommand | None) -> bool:
        async with self.control_lock:
            try:
                await self.controller.command_pattern(activation.command)
            except ControllerError as err:
                self.store.mark_control_failed(activation.jti)
                if command is not None:
                    self._ack(command, AckStatus.FAILED, Code.E_CONTROLLER, str(err))
                else:
                    self._late_ack(activation, AckStatus.FAILED, Code.E_CONTROLLER, str(err))
                return False
            self.store.mark_control_applied(activation.jti)
            self.on_applied(command, activation.cmd, activation.command)
        detail = f"controller holds pattern {activation.command}"
        if command is not None:
            self._ack(command, AckStatus.APPLIED, Code.OK, detail)
        else:
            self._late_ack(activation, AckStatus.APPLIED, Code.OK, detail)
        # Watch that it really runs: a new command replaces the watch. The controller
        # changes pattern at the next boundary of the cycle it runs (SPEC §4), so the
        # watch allows that cycle before the three of the new pattern.
        self._schedule(_Watch.of(activation, self.wall(), lead_s=self._running_cycle_s()))
        return True

    def _running_cycle_s(self) -> float:
        """The cycle the controller is in now: its pattern's in the stored plan, else the
        longest a site allows (free, flash, a time-of-day pattern central never sent)."""
        latest = self.status.latest
        stored = self.store.plan
        if latest is not None and stored is not None and isinstance(latest.pattern, int):
            for pattern in stored.plan.patterns:
                if pattern.pattern == latest.pattern:
                    return float(pattern.cycle)
        return float(self.limits.cycle_max)

    def _late_ack(
        self, activation: _Activation, status: AckStatus, code: Code, detail: str
    ) -> None:
        self._ack_by_id(activation.jti, activation.cmd, status, code, detail)

    def _ack_by_id(self, jti: str, cmd: str, status: AckStatus, code: Code, detail: str) -> None:
        """An ack for a command no longer at hand (a later activation, after a restart)."""
        if status is AckStatus.APPLIED:
            self.stats.applied += 1
        elif status is AckStatus.FAILED:
            self.stats.failed += 1
        self._event(jti, cmd, status, code, detail)
        log.info("command_" + str(status), jti=jti, cmd=cmd, detail=detail)
        self.acks.send(
            Ack(
                device=self.device_id,
                jti=jti,
                cmd=cmd,
                status=status,
                code=code,
                detail=detail[:1000],
                ts=self.wall(),
            )
        )
        if self.on_change is not None:
            self.on_change()

    async def _activations(self) -> None:
        """Wait for a scheduled activation or a running check; a newer one replaces it."""
        while True:
            self._activation_changed.clear()
            current = self._activation
            if current is None:
                await self._activation_changed.wait()
                continue
            waiter = asyncio.ensure_future(self._activation_changed.wait())
            try:
                if isinstance(current, _Watch):
                    outcome = asyncio.ensure_future(self._watch(current))
                else:
                    outcome = asyncio.ensure_future(self._activate_later(current))
                done, _ = await asyncio.wait({waiter, outcome}, return_when=asyncio.FIRST_COMPLETED)
                if outcome not in done:
                    outcome.cancel()
                    await asyncio.wait({outcome})
                elif self._activation is current:
                    self._activation = None
            finally:
                waiter.cancel()
                await asyncio.wait({waiter})

    async def _activate_later(self, activation: _Activation) -> None:
        delay = activation.at - self.wall()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._activation is activation:
            self._activation = None
            await self._activate(activation, None)

    async def _watch(self, watch: _Watch) -> None:
        def running(status: ControllerStatus) -> bool:
            return _runs(status, watch.activation.command)

        try:
            async with asyncio.timeout(watch.limit_s):
                await self.status.wait_for(running)
        except TimeoutError:
            latest = self.status.latest
            seen = "no status" if latest is None else f"it runs {latest.pattern}"
            self._late_ack(
                watch.activation,
                AckStatus.FAILED,
                Code.E_CONTROLLER,
                f"pattern {watch.activation.command} not running {watch.limit_s:.0f} s after "
                f"activation (the cycle in progress, {watch.lead_s:.0f} s, then "
                f"{RUNNING_WITHIN_CYCLES} cycles); {seen}",
            )
            return
        log.info("pattern_running", jti=watch.activation.jti, pattern=watch.activation.command)

    # -- after a reconnect or a restart ----------------------------------------------------

    async def _reconcile(self) -> None:
        """Bring the controller's tables in line with the stored plan (start, link back).

        * A stored plan the controller has not confirmed is judged again against
          today's site limits (they may have been tightened since it was
          accepted) and written; a plan that now breaks a rule is not written.
        * When central never loaded a plan and ``[state] fallback_plan`` names
          one, that plan is judged, stored (without a command id) and written:
          the controller's own schedule then runs it in ``local`` mode.

        The control command in force is never re-sent: after a restart or a
        fallback central must send a new command (SPEC §6).

        A command the agent acknowledged ``accepted`` and was killed before
        answering finally is answered now, once: the stored plan, when the
        controller confirms it, ``applied``; an interrupted control command
        ``failed`` (it is not resumed), an interrupted release ``applied`` once
        the controller holds standby.
        """
        stored = self.store.plan
        try:
            await self._finish_interrupted_control()
            if stored is not None and stored.plan.version > self.verifier.plan_version.version:
                # Killed between storing a plan and recording its version: record it now,
                # or another plan.load of the same version would pass the no-rollback check.
                self.verifier.plan_version.record(stored.plan.version)
        except GreenwaveError as err:  # a state file that cannot be written: try next time
            log.error("reconcile_state_write_failed", error=str(err))
        if stored is None and self.fallback_plan is not None:
            plan = self._fallback()
            if plan is None:
                return
            stored = self.store.store_plan(plan, jti=None, now=self.wall())
            log.info("fallback_plan_stored", version=plan.version, path=str(self.fallback_plan))
        if stored is not None and not stored.applied:
            report = validate_plan(stored.plan, self.limits)
            if not report.ok:
                log.error(
                    "stored_plan_unsafe",
                    version=stored.plan.version,
                    rules=sorted(report.rule_ids()),
                    reason="the site limits changed since it was accepted; not written",
                )
                return
            log.info("plan_rewrite", version=stored.plan.version, reason="not confirmed")
            written = await self._write_plan(stored.plan, None)
            if written and stored.jti is not None and stored.answered is False:
                self._ack_by_id(
                    stored.jti,
                    "plan.load",
                    AckStatus.APPLIED,
                    Code.OK,
                    f"plan {stored.plan.version} written (finished after an interruption), "
                    "confirmed by read-back",
                )

    async def _finish_interrupted_control(self) -> None:
        """Answer the control command a killed agent left unanswered (first reconcile only)."""
        if self._interrupted is _UNCHECKED:
            control = self.store.control
            unanswered = control is not None and control.answered is False
            self._interrupted = control if unanswered else None
        if not isinstance(self._interrupted, StoredControl):
            return
        control = self._interrupted
        if self.store.control is not control:  # a newer command replaced it
            self._interrupted = None
            return
        if control.pattern is not None:
            self.store.mark_control_failed(control.jti)
            self._interrupted = None
            self._ack_by_id(
                control.jti,
                "control.pattern",
                AckStatus.FAILED,
                Code.E_CONTROLLER,
                f"the agent restarted before the controller confirmed pattern {control.pattern}; "
                "a restart never resumes a control command: the local schedule runs",
            )
            return
        async with self.control_lock:
            try:
                await self.controller.command_pattern("standby")
            except ControllerError as err:  # tried again when the controller answers
                log.warning("release_after_restart_failed", jti=control.jti, error=str(err))
                return
            self.store.mark_control_applied(control.jti)
        self._interrupted = None
        self._ack_by_id(
            control.jti,
            "control.release",
            AckStatus.APPLIED,
            Code.OK,
            "control released to the time-of-day schedule (after the agent restarted)",
        )

    def _fallback(self) -> Plan | None:
        """The local fallback plan file, parsed and judged; None (logged) when unusable."""
        assert self.fallback_plan is not None
        try:
            plan = read_plan_file(self.fallback_plan)
        except GreenwaveError as err:
            log.error("fallback_plan_unusable", path=str(self.fallback_plan), error=str(err))
            return None
        report = validate_plan(plan, self.limits)
        if not report.ok:
            log.error(
                "fallback_plan_unsafe",
                path=str(self.fallback_plan),
                rules=sorted(report.rule_ids()),
            )
            return None
        return plan


#: ``CommandHandler._interrupted`` before the first reconcile looked at the store.
_UNCHECKED = object()


@dataclass(frozen=True, slots=True)
class _Watch:
    activation: _Activation
    limit_s: float

    #: The cycle the controller may finish first (the pattern running at activation).
    lead_s: float = 0.0

    @classmethod
    def of(cls, activation: _Activation, now: float, *, lead_s: float) -> _Watch:
        """Watch from ``now``: until activation, one cycle of the old pattern, 3 of the new."""
        cycles = (activation.cycle_s or 60.0) * RUNNING_WITHIN_CYCLES
        wait = max(0.0, activation.at - now) + lead_s + cycles + RUNNING_SLACK_S
        return cls(activation, wait, lead_s)


def _runs(status: ControllerStatus, command: PatternCommand) -> bool:
    if command == "flash":
        return status.in_flash
    if command == "standby":
        return True
    return status.pattern == command and not status.in_flash


def _code(err: GreenwaveError) -> Code:
    try:
        return Code(err.code)
    except ValueError:
        return Code.E_CONTROLLER if isinstance(err, ControllerError) else Code.E_RATE
