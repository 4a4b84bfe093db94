"""The supervisor: one task group owning every long-lived task of the agent (STYLE.md §4).

::

    Supervisor.run()
    └── TaskGroup
        ├── controller-poller   StatusPoller.run: 10 Hz status, link health, reconnects
        ├── status-fanout       each status → spat, hi-res events (outbox), state
        ├── mqtt-link           the broker connection and its reconnect loop
        ├── command-intake      command topics → CommandHandler.intake (verify, cheap)
        ├── command-worker      CommandHandler.run: one command at a time to the controller
        ├── acks                AckSender.run: acks in order, across outages
        ├── spat                SpatPublisher.run: ≤ spat_hz, newest only
        ├── state               StateReporter.run: retained, on change and every 30 s
        ├── events-forward      the durable outbox → ``events``, numbered batches
        ├── events-sync         fsync of new events, at most once a second
        └── local-socket        the technician's control socket (agent/local), when configured

No task is fire-and-forget: they all live in the group, and cancelling
:meth:`Supervisor.run` (SIGTERM) cancels them all. ``ready`` is called once
every task has started and the stored plan has been checked against the
controller.

The parts are built by the composition root (``agent/app.py``) from the
config; the supervisor sees only interfaces (the :class:`Controller`, the
link's publish/commands, the outbox), so tests run it with the real simulator
and broker and nothing here imports a driver or aiomqtt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from agent import __version__, heap
from agent.central.jws import CommandVerifier
from agent.central.topics import DeviceTopics
from agent.config import AgentConfig
from agent.controller.interface import Controller, PatternCommand
from agent.controller.poller import LinkState, PollSettings, StatusPoller
from agent.logs import get_logger
from agent.supervisor.authority import AuditSink, Authority, ClockCheck, Override
from agent.supervisor.commands import CommandAudit, CommandHandler
from agent.supervisor.modes import Mode
from agent.supervisor.notify import Notifier, task_problem
from agent.supervisor.store import CommandStore
from agent.supervisor.telemetry import (
    AckSender,
    EventDeriver,
    LatestPublisher,
    Publisher,
    SpatPublisher,
    StateReporter,
    signal_summary,
    wall_time_of,
)

log = get_logger("supervisor")


class Inbound(Protocol):
    """One message from a command topic."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


class CentralLink(Publisher, LatestPublisher, Protocol):
    """What the supervisor needs of the MQTT link."""

    async def run(self) -> None:
        """Keep the broker connection up forever (cancel to stop)."""
        ...

    def commands(self) -> AsyncIterator[Inbound]:
        """Messages from the command topics, after flood control."""
        ...

    @property
    def stats(self) -> Any:
        """Counters (a dataclass) for ``state`` and diagnostics."""
        ...

    def add_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener(status)`` (with ``status.up``) on every connection change."""
        ...


class Audit(AuditSink, CommandAudit, Protocol):
    """The audit log, as the supervisor uses it."""

    async def keep_synced(self, interval_s: float = 1.0) -> NoReturn:
        """fsync entries at most every ``interval_s``, forever."""
        ...


class Outbox(Protocol):
    """The durable events outbox."""

    def append(self, event: Mapping[str, Any]) -> int:
        """Store one event; its sequence number."""
        ...

    async def forward(
        self,
        publish: Callable[[bytes], Awaitable[object]],
        *,
        batch_size: int,
        device: str | None = None,
    ) -> NoReturn:
        """Forward stored events in numbered batches forever."""
        ...

    async def keep_synced(self) -> NoReturn:
        """fsync new events at most every interval, forever."""
        ...

    def stats(self) -> Any:
        """Counters (a dataclass) for ``state`` and diagnostics."""
        ...


class LocalSocket(Protocol):
    """The technician's control socket (``agent/local``), served while the agent runs."""

    async def serve(self, agent: Supervisor) -> None:
        """Serve the socket until cancelled (removing it on the way out)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Parts:
    """Everything the supervisor runs, built from the config."""

    config: AgentConfig
    controller: Controller
    link: CentralLink
    outbox: Outbox
    verifier: CommandVerifier
    store: CommandStore
    #: Whether the system clock is trusted (None: not checked, e.g. in unit tests).
    clock_trust: ClockCheck | None = None
    audit: Audit | None = None
    notifier: Notifier | None = None
    local: LocalSocket | None = None


class Supervisor:
    """Owns every task; builds the ``state`` document."""

    def __init__(self, parts: Parts, *, wall: Callable[[], float] = time.time) -> None:
        self.parts = parts
        config = parts.config
        self.device = config.device.id
        self.topics = DeviceTopics(config.device.id, config.device.groups)
        self.wall = wall
        self.started_mono = time.monotonic()
        self.poller = StatusPoller(
            parts.controller,
            PollSettings(
                rate_hz=config.controller.poll_hz, down_after=config.controller.down_after
            ),
            on_link_change=self._controller_link_changed,
        )
        self.acks = AckSender(parts.link, self.topics.ack)
        self.spat = SpatPublisher(
            parts.link, self.topics.spat, self.device, rate_hz=config.central.spat_hz, wall=wall
        )
        self.state = StateReporter(
            parts.link,
            self.topics.state,
            self.state_body,
            significant=_significant,
            interval_s=config.central.state_interval_s,
            wall=wall,
        )
        self.handler = CommandHandler(
            device_id=self.device,
            verifier=parts.verifier,
            controller=parts.controller,
            status=self.poller,
            store=parts.store,
            limits=config.site,
            acks=self.acks,
            events=self._record,
            wall=wall,
            diagnostics=self.diagnostics,
            on_change=self.state.poke,
            audit=parts.audit,
            fallback_plan=config.state.fallback_plan,
        )
        self.authority = Authority(
            controller=parts.controller,
            heartbeat_timeout_s=config.central.heartbeat_timeout_s,
            backup_time_s=config.central.backup_time_s,
            set_clock=config.controller.set_clock,
            wall=wall,
            clock_trust=parts.clock_trust,
            audit=parts.audit,
            record=self._record,
            on_change=self._changed,
            cancel_activation=self.handler.cancel_activation,
        )
        self.handler.admit = self.authority.admit
        self.handler.control_lock = self.authority.control_lock
        self.handler.on_applied = self.authority.applied
        self.handler.on_heard(self.authority.heard)
        parts.link.add_listener(lambda status: self.authority.broker(bool(status.up)))
        self.deriver = EventDeriver()
        self.notifier = parts.notifier or Notifier({})
        self._last_signal: dict[str, Any] | None = None

    # -- the task group ------------------------------------------------------------------

    async def run(self, *, ready: Callable[[], None] | None = None) -> None:
        """Run every task until cancelled."""
        link = self.parts.link
        self._record({"kind": "agent_start", "version": __version__})
        async with asyncio.TaskGroup() as group:
            tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
                "controller-poller": self.poller.run,
                "status-fanout": self._fan_out,
                "mqtt-link": link.run,
                "command-intake": self._intake,
                "command-worker": self.handler.run,
                "acks": self.acks.run,
                "spat": self.spat.run,
                "state": self.state.run,
                "events-forward": self._forward_events,
                "events-sync": self.parts.outbox.keep_synced,
                "central-lease": self.authority.watch_lease,
                "controller-keeper": self.authority.keep_controller,
            }
            if self.authority.set_clock:  # else keep_clock returns at once: no task to watch
                tasks["controller-clock"] = lambda: self.authority.keep_clock(
                    lambda: self.poller.latest
                )
            audit = self.parts.audit
            if audit is not None:
                tasks["audit-sync"] = audit.keep_synced
            notifier = self.notifier
            running: list[asyncio.Task[None]] = []
            tasks["watchdog"] = lambda: notifier.watchdog(
                lambda: self.poller.polls + self.poller.failures,
                problem=lambda: task_problem(running),
            )
            local = self.parts.local
            if local is not None:
                tasks["local-socket"] = lambda: local.serve(self)
            trust = self.parts.clock_trust
            if trust is not None and hasattr(trust, "watch"):
                tasks["clock-trust"] = lambda: trust.watch(self._clock_changed)
            for name, start in tasks.items():
                running.append(group.create_task(start(), name=name))
            self.handler.reconcile()
            await asyncio.sleep(0)
            log.info("agent_ready", device=self.device, tasks=len(tasks))
            if parts_audit := self.parts.audit:
                parts_audit.append("agent", durable=True, event="started", version=__version__)
            heap.trim()
            self.notifier.ready(self._status_line())
            if ready is not None:
                ready()

    async def _intake(self) -> None:
        link = self.parts.link
        async for message in link.commands():
            # A session's queued commands arrive while it is still being opened:
            # judge them once the link (and so the lease) counts as up.
            await link.wait_connected()
            self.handler.intake(message.topic, message.payload)
            # A flood must not hold the loop: let the poller run between messages.
            await asyncio.sleep(0)

    async def _fan_out(self) -> None:
        async for status in self.poller.updates():
            self.authority.status(status)
            self.spat.offer(status)
            ts = wall_time_of(status, wall=self.wall(), mono=time.monotonic())
            for event in self.deriver.update(status, ts):
                self.parts.outbox.append(event)
            summary = signal_summary(status)
            if summary != self._last_signal:
                self._last_signal = summary
                self.state.poke()

    async def _forward_events(self) -> None:
        async def publish(payload: bytes) -> None:
            await self.parts.link.publish(self.topics.events, payload, qos=1, retain=False)

        await self.parts.outbox.forward(
            publish, batch_size=self.parts.config.central.events_batch, device=self.device
        )

    def _controller_link_changed(self, link: LinkState) -> None:
        self._record(
            {"kind": "controller_link", "up": link.up, "reason": link.reason[:200]},
        )
        self.authority.controller_link(link.up, link.reason)
        if link.up:
            self.authority.controller_connected()
            self.handler.reconcile()
        else:
            self.deriver.reset()
        self.state.poke()

    def _status_line(self) -> str:
        machine = self.authority.machine
        return f"mode {machine.mode}: {machine.reason}"

    def _changed(self) -> None:
        """The mode changed: publish state, tell systemd."""
        self.state.poke()
        self.notifier.status(self._status_line())

    def _clock_changed(self, verdict: Any) -> None:
        self._record({"kind": "clock", "synced": verdict.synced, "detail": verdict.detail})
        if self.parts.audit is not None:
            self.parts.audit.append(
                "clock", durable=True, synced=verdict.synced, detail=verdict.detail
            )
        self.state.poke()

    def _record(self, event: Mapping[str, Any]) -> None:
        body = dict(event)
        body.setdefault("ts", round(self.wall(), 1))
        body.setdefault("src", "agent")
        self.parts.outbox.append(body)

    # -- what central sees ---------------------------------------------------------------

    # -- the technician's verbs (the local socket calls these) -------------------------------

    async def start_override(
        self, pattern: PatternCommand, *, minutes: float, who: str
    ) -> Override:
        """Time-boxed local control (see :meth:`Authority.start_override`)."""
        stored = self.parts.store.plan
        patterns = (
            frozenset(p.pattern for p in stored.plan.patterns)
            if stored is not None and stored.applied
            else frozenset()
        )
        return await self.authority.start_override(
            pattern, minutes=minutes, who=who, plan_patterns=patterns
        )

    def end_override(self, who: str) -> bool:
        """End a technician's override; False when none was in force."""
        return self.authority.end_override(who)

    def state_body(self) -> dict[str, Any]:
        """The ``state`` document (without ``ts``; the reporter stamps it)."""
        status = self.poller.latest
        machine = self.authority.machine
        lease = self.authority.lease
        heard = lease.last_heard_ago
        verdict = self.parts.clock_trust.check() if self.parts.clock_trust is not None else None
        stored = self.parts.store.plan
        control = self.parts.store.control
        link = self.poller.link
        return {
            "device": self.device,
            "version": __version__,
            "mode": str(machine.mode),
            "reason": machine.reason,
            "mode_since": round(machine.since, 1),
            "controller": {
                "endpoint": self.parts.controller.endpoint,
                "link": "up" if link.up else "down",
                "reason": link.reason,
            },
            "signal": signal_summary(status) if link.up else None,
            "plan": None
            if stored is None
            else {"version": stored.plan.version, "jti": stored.jti, "applied": stored.applied},
            "control": None
            if control is None
            else {
                "jti": control.jti,
                "pattern": control.pattern,
                "activate_at": control.activate_at,
                "lease_s": control.lease_s,
                "applied": control.applied,
                "in_force": machine.mode in (Mode.CENTRAL, Mode.FLASH),
            },
            "central": {
                "connected": lease.broker_up,
                "last_heartbeat": self.handler.stats.last_heartbeat,
                "heard_ago_s": None if heard is None else round(heard, 1),
                "heartbeat_timeout_s": lease.heartbeat_timeout_s,
                "lost": lease.lost(),
            },
            "clock": None if verdict is None else verdict.as_state(),
            "backup_time_s": self.authority.backup_time_s,
            "override": None
            if self.authority.override is None
            else self.authority.override.as_state(),
        }

    def diagnostics(self) -> dict[str, Any]:
        """The ``diag.request`` summary."""
        return {
            "uptime_s": round(time.monotonic() - self.started_mono, 1),
            "polls": self.poller.polls,
            "poll_failures": self.poller.failures,
            "commands": self.handler.stats.as_dict(),
            "acks": {"sent": self.acks.sent, "pending": self.acks.pending},
            "spat": {"sent": self.spat.sent, "skipped": self.spat.skipped},
            "link": dataclasses.asdict(self.parts.link.stats),
            "events": dataclasses.asdict(self.parts.outbox.stats()),
            "plan_version": self.parts.verifier.plan_version.version,
        }


#: Fields of ``state`` that change with every heartbeat or poll: published, but
#: not a reason by themselves to publish (SPEC §4: on change, and every 30 s).
_VOLATILE = {"central": ("last_heartbeat", "heard_ago_s")}


def _significant(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` without its volatile fields, for change detection."""
    out = dict(body)
    for section, fields in _VOLATILE.items():
        inner = out.get(section)
        if isinstance(inner, Mapping):
            out[section] = {k: v for k, v in inner.items() if k not in fields}
    return out
