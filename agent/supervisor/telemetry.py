"""What the agent tells central: ``spat``, ``state``, hi-res ``events`` and ``ack`` (SPEC §4).

Pure parts (message bodies, event derivation) are plain functions and classes;
the publishing loops take a :class:`Publisher` so they run the same against
the real MQTT link and in tests.

* **spat** (QoS 0): the newest status, at most ``spat_hz`` per second. A slow
  broker never makes the agent queue old signal states: the loop publishes
  the newest status when it may, and drops what it could not send.
* **state** (QoS 1, retained): on every change of what it says (mode, link,
  plan, control, flash, alarms, the running pattern) and at least every
  ``state_interval_s``; the fast-changing cycle timer is not a "change".
* **events**: the hi-res log, derived at the poll rate (0.1 s at 10 Hz) from
  consecutive statuses with the Indiana codes (1 begin green, 7/8 green
  termination/begin yellow, 9/10 end yellow/begin red clearance, 21/22/23
  pedestrian walk/clearance/don't walk, 131 pattern change, 173 flash status
  change), plus the agent's own events (commands, link changes). They go to
  the durable outbox, which forwards them in numbered batches.
* **ack** (QoS 1): through :class:`AckSender`, which keeps acks in order and
  retries them across broker outages (bounded; an ack older than the
  command's lifetime is of no use to central and is dropped with a log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from agent.central.commands import Ack
from agent.controller.interface import ControllerStatus, Light, PedLight
from agent.errors import GreenwaveError
from agent.logs import get_logger

log = get_logger("supervisor.telemetry")

#: Acks kept while the broker is away; beyond, the oldest are dropped.
ACK_BACKLOG = 1000
#: An ack not published within this long is dropped (central's command expired).
ACK_MAX_AGE_S = 600.0

#: Pattern numbers in events for the non-numbered states (NTCIP conventions).
_PATTERN_PARAM = {"free": 254, "flash": 255, "none": 0}


class Publisher(Protocol):
    """The outbound half of the MQTT link."""

    @property
    def connected(self) -> bool:
        """True while connected to the broker."""
        ...

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        """Publish; QoS 1 returns after the broker's PUBACK; raises when not connected."""
        ...

    async def wait_connected(self) -> None:
        """Return once connected."""
        ...


class LatestPublisher(Protocol):
    """The link's QoS 0 path for ``spat``: hand over the newest message, never wait."""

    def publish_latest(self, topic: str, payload: bytes) -> bool:
        """Send ``payload`` soon, replacing one of ``topic`` still waiting; False while down."""
        ...


def compact(body: Mapping[str, Any]) -> bytes:
    """The wire form of a JSON message: compact UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def wall_time_of(status: ControllerStatus, *, wall: float, mono: float) -> float:
    """The wall-clock time a status arrived, from its monotonic receive time."""
    return wall - (mono - status.received_at)


def spat_body(device: str, status: ControllerStatus, ts: float) -> dict[str, Any]:
    """The ``spat`` message for one status."""
    return {
        "device": device,
        "ts": round(ts, 2),
        "pattern": status.pattern,
        "cycle_s": status.cycle_time_s,
        "control": str(status.control),
        "flash": str(status.flash),
        "phases": [
            {"phase": p.phase, "light": str(p.light), "ped": str(p.ped)} for p in status.phases
        ],
    }


def signal_summary(status: ControllerStatus | None) -> dict[str, Any] | None:
    """The slow-changing part of a status, for ``state`` (no cycle timer)."""
    if status is None:
        return None
    return {
        "pattern": status.pattern,
        "commanded": status.commanded,
        "free_status": status.free_status,
        "control": str(status.control),
        "flash": str(status.flash),
        "alarms": {
            "unit1": status.alarms.unit1,
            "unit2": status.alarms.unit2,
            "short": status.alarms.short,
        },
        "backup_time_s": status.backup_time_s,
    }


class EventDeriver:
    """Hi-res events (Indiana codes) from consecutive statuses."""

    def __init__(self) -> None:
        self._last: ControllerStatus | None = None

    def reset(self) -> None:
        """Forget the last status (after a link loss: no events invented across the gap)."""
        self._last = None

    def update(self, status: ControllerStatus, ts: float) -> list[dict[str, Any]]:
        """The events between the previous status and ``status``, stamped ``ts``."""
        previous, self._last = self._last, status
        if previous is None:
            return []
        stamp = round(ts, 1)
        out: list[dict[str, Any]] = []

        def emit(code: int, param: int) -> None:
            out.append({"ts": stamp, "src": "controller", "code": code, "param": param})

        before = {p.phase: p for p in previous.phases}
        for now in status.phases:
            was = before.get(now.phase)
            if was is None:
                continue
            if was.light is not now.light:
                if now.light is Light.GREEN:
                    emit(1, now.phase)
                elif now.light is Light.YELLOW:
                    if was.light is Light.GREEN:
                        emit(7, now.phase)
                    emit(8, now.phase)
                elif now.light is Light.RED and was.light is Light.YELLOW:
                    emit(9, now.phase)
                    emit(10, now.phase)
            if was.ped is not now.ped:
                code = {PedLight.WALK: 21, PedLight.PED_CLEAR: 22, PedLight.DONT_WALK: 23}.get(
                    now.ped
                )
                if code is not None:
                    emit(code, now.phase)
        if previous.pattern != status.pattern:
            pattern = status.pattern
            emit(131, pattern if isinstance(pattern, int) else _PATTERN_PARAM[pattern])
        if previous.flash is not status.flash:
            emit(173, 0 if not status.in_flash else 1)
        return out


class AckSender:
    """Publishes acks in order; keeps them across a broker outage (bounded)."""

    def __init__(
        self,
        publisher: Publisher,
        topic: str,
        *,
        backlog: int = ACK_BACKLOG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self._clock = clock
        self._queue: deque[tuple[float, Ack]] = deque(maxlen=backlog)
        self._ready = asyncio.Event()
        self.sent = 0
        self.dropped = 0

    def send(self, ack: Ack) -> None:
        """Queue one ack (never blocks)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            log.warning("ack_dropped", reason="backlog full", jti=self._queue[0][1].jti)
        self._queue.append((self._clock(), ack))
        self._ready.set()

    @property
    def pending(self) -> int:
        """Acks not yet published."""
        return len(self._queue)

    async def run(self) -> None:
        """Publish queued acks forever; wait for the broker when it is away."""
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            queued_at, ack = self._queue[0]
            if self._clock() - queued_at > ACK_MAX_AGE_S:
                self._queue.popleft()
                self.dropped += 1
                log.warning("ack_dropped", reason="too old", jti=ack.jti, status=str(ack.status))
                continue
            try:
                await self.publisher.publish(self.topic, ack.to_bytes(), qos=1, retain=False)
            except GreenwaveError:
                await self.publisher.wait_connected()
                continue
            self._queue.popleft()
            self.sent += 1


class SpatPublisher:
    """Publishes the newest status at most ``rate_hz`` times a second (QoS 0).

    Each message is handed to the link's :meth:`LatestPublisher.publish_latest`,
    which sends it without a task or a wait of its own and replaces one the
    socket has not taken yet: SPaT never queues behind a slow broker, and
    ten messages a second cost no more than their bytes.
    """

    def __init__(
        self,
        publisher: LatestPublisher,
        topic: str,
        device: str,
        *,
        rate_hz: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.device = device
        self.rate_hz = rate_hz
        self.wall = wall
        self._latest: ControllerStatus | None = None
        self._fresh = asyncio.Event()
        self.sent = 0
        self.skipped = 0

    def offer(self, status: ControllerStatus) -> None:
        """A new status; replaces one not yet sent."""
        if self._latest is not None and self._fresh.is_set():
            self.skipped += 1
        self._latest = status
        self._fresh.set()

    async def run(self) -> None:
        """Send the newest status, then wait out the rate limit; forever."""
        if self.rate_hz <= 0:
            await asyncio.Event().wait()
        period = 1.0 / self.rate_hz
        next_at = 0.0
        while True:
            await self._fresh.wait()
            self._fresh.clear()
            status = self._latest
            if status is None:
                continue
            ts = wall_time_of(status, wall=self.wall(), mono=time.monotonic())
            body = compact(spat_body(self.device, status, ts))
            if not self.publisher.publish_latest(self.topic, body):
                continue
            self.sent += 1
            now = time.monotonic()
            next_at = max(next_at + period, now)
            # Allow a little early (poll jitter) so 10 Hz statuses make 10 Hz spat.
            wait = next_at - now - period * 0.2
            if wait > 0:
                await asyncio.sleep(wait)


class StateReporter:
    """Publishes the retained ``state`` on every change and at least every ``interval_s``."""

    def __init__(
        self,
        publisher: Publisher,
        topic: str,
        build: Callable[[], dict[str, Any]],
        *,
        interval_s: float,
        wall: Callable[[], float] = time.time,
        significant: Callable[[dict[str, Any]], Any] = lambda body: body,
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.build = build
        self.significant = significant
        self.interval_s = interval_s
        self.wall = wall
        self._poke = asyncio.Event()
        self._last_sent: Any = None
        self.sent = 0

    def poke(self) -> None:
        """Something may have changed: compare and publish if it did."""
        self._poke.set()

    async def run(self) -> None:
        """Publish on change (compared without ``ts``) and on the interval; forever."""
        last_at = -float("inf")
        while True:
            body = self.build()
            key = self.significant(body)
            due = time.monotonic() - last_at >= self.interval_s
            if due or key != self._last_sent:
                try:
                    payload = compact({**body, "ts": round(self.wall(), 1)})
                    await self.publisher.publish(self.topic, payload, qos=1, retain=True)
                except GreenwaveError:
                    await self.publisher.wait_connected()
                    continue
                self._last_sent = key
                last_at = time.monotonic()
                self.sent += 1
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, last_at + self.interval_s - time.monotonic())):
                    await self._poke.wait()
            # Coalesce a burst of pokes (a status at 10 Hz) into one comparison.
            await asyncio.sleep(0.05)
