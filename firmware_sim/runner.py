"""The running simulator: real-time stepping, the protocol servers, the control channel.

:class:`SimClockDriver` keeps the simulated controller at ``speed`` times
the wall clock: it is told the time by an injected clock (the asyncio loop's
in production, a fake one in tests) and steps the controller to match, in
one call. It runs every :data:`STEP_INTERVAL_S` of wall time and also just
before every request is answered, so a status read is always current. If
the host cannot keep up (a very high ``speed``), the driver drops the
backlog instead of freezing the loop, and the achieved speed shows it.

:func:`run_simulator` owns everything that does I/O: the UDP, TCP and pty
servers in front of one :class:`~firmware_sim.ntcip_responder.NtcipResponder`,
the tasks (stepping, the stdin control channel, the live view) in one
``TaskGroup``, and the SIGTERM/SIGINT handlers. It reports the bound
addresses through ``emit`` (one ``udp HOST:PORT`` / ``tcp HOST:PORT`` /
``pty LINK DEVICE`` line each, then ``ready``) and returns when told to
stop, after closing every server and removing every pty link.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog

from agent.errors import GreenwaveError
from agent.protocols.ntcip1202 import describe_oid
from agent.protocols.snmp import ErrorStatus, PduType, SnmpValue
from firmware_sim.commands import ScheduledFault, parse_command, run_command
from firmware_sim.controller import SimController
from firmware_sim.ntcip_responder import (
    DEFAULT_COMMUNITY,
    SERIAL_MAX_MESSAGE,
    UDP_MAX_MESSAGE,
    Exchange,
    NtcipResponder,
    Outcome,
    WriteHook,
)
from firmware_sim.pmpp_session import DEFAULT_ADDRESS, PmppSession
from firmware_sim.serve import PtyPort, TcpServer, format_host_port, serve_tcp, serve_udp
from firmware_sim.view import LiveView, ViewInfo

log = structlog.get_logger("firmware_sim.runner")

#: Wall time between two steps of the simulation, seconds.
STEP_INTERVAL_S: Final = 0.05
#: Largest backlog the driver steps in one go, in wall seconds at the running speed ...
MAX_LAG_S: Final = 1.0
#: ... but never less than this much simulated time (the core steps it in milliseconds).
MIN_BACKLOG_S: Final = 300.0
#: How often the live view is redrawn, per second.
VIEW_HZ: Final = 4


class SimStartError(GreenwaveError):
    """The simulator could not start (a port in use, a pty path taken ...)."""

    code = "E_SIM_START"


# ------------------------------------------------------------------- the clock


class SimClockDriver:
    """Steps a controller so that simulated time runs ``speed`` times the wall clock."""

    def __init__(
        self,
        controller: SimController,
        *,
        speed: float,
        clock: Callable[[], float],
        faults: tuple[ScheduledFault, ...] = (),
        on_fault: Callable[[ScheduledFault, str], None] | None = None,
        max_lag_s: float = MAX_LAG_S,
    ) -> None:
        """``clock`` returns wall seconds (monotonic); ``faults`` run at simulated times.

        A backlog larger than ``max_lag_s`` of wall time at ``speed`` (and than
        :data:`MIN_BACKLOG_S` simulated seconds) is dropped, not stepped.
        """
        if speed <= 0:
            raise ValueError("the speed must be above 0")
        self.controller = controller
        self.speed = speed
        self._clock = clock
        self._max_lag_ms = round(max(MIN_BACKLOG_S, max_lag_s * speed) * 1000)
        self._start_sim_ms = controller.now_ms
        self._start_wall = clock()
        self._anchor_wall = self._start_wall
        self._anchor_sim_ms = controller.now_ms
        self._faults = sorted(faults, key=lambda f: f.at_s)
        self._on_fault = on_fault
        #: Simulated milliseconds dropped because the host could not keep up.
        self.dropped_ms = 0

    @property
    def elapsed_s(self) -> float:
        """Simulated seconds since the driver started."""
        return (self.controller.now_ms - self._start_sim_ms) / 1000

    @property
    def achieved_speed(self) -> float:
        """Simulated seconds per wall second since start (``speed`` unless the host lags)."""
        wall = self._clock() - self._start_wall
        return self.elapsed_s / wall if wall > 0 else self.speed

    def catch_up(self) -> None:
        """Step the controller to the simulated time that corresponds to now."""
        now = self._clock()
        ctrl = self.controller
        target = self._anchor_sim_ms + round((now - self._anchor_wall) * self.speed * 1000)
        if target - ctrl.now_ms > self._max_lag_ms:
            # Behind by more than the allowed backlog: step what is allowed, drop the rest.
            self.dropped_ms += target - ctrl.now_ms - self._max_lag_ms
            target = ctrl.now_ms + self._max_lag_ms
            self._anchor_wall, self._anchor_sim_ms = now, target
        while self._faults:
            due_ms = self._start_sim_ms + round(self._faults[0].at_s * 1000)
            if due_ms > target:
                break
            fault = self._faults.pop(0)
            if due_ms > ctrl.now_ms:
                ctrl.step_ms(due_ms - ctrl.now_ms)
            answer = run_command(ctrl, fault.command)
            if self._on_fault is not None:
                self._on_fault(fault, answer)
        if target > ctrl.now_ms:
            ctrl.step_ms(target - ctrl.now_ms)


# ------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Everything ``greenwave-sim serve`` was asked for, validated."""

    udp: tuple[tuple[str, int], ...] = ()
    tcp: tuple[tuple[str, int], ...] = ()
    pty: tuple[Path, ...] = ()
    speed: float = 1.0
    community: bytes = DEFAULT_COMMUNITY
    #: PMPP drop address answered on TCP and the pty.
    address: int = DEFAULT_ADDRESS
    #: Byte-stream wire speed (TCP and pty); None = no pacing.
    baud: int | None = None
    hooks: tuple[WriteHook, ...] = ()
    faults: tuple[ScheduledFault, ...] = ()
    udp_max_message: int = UDP_MAX_MESSAGE
    serial_max_message: int = SERIAL_MAX_MESSAGE
    #: Read operator commands on standard input.
    control: bool = True
    step_interval_s: float = STEP_INTERVAL_S
    #: Append the hi-res event log to this file as JSON lines (None: do not).
    events_file: Path | None = None
    #: The wall-clock epoch at which the controller clock read its start time: the
    #: simulator first runs (fast) through everything since then, so that several
    #: simulators launched one after another share one clock (None: start now).
    start_at_wall: float | None = None


@dataclass
class RunSummary:
    """What a run did, for the last log line and for tests."""

    requests: int = 0
    answered: int = 0
    bad_community: int = 0
    malformed: int = 0
    sim_seconds: float = 0.0
    achieved_speed: float = 0.0
    endpoints: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- shared clock


def _catch_up_from(controller: SimController, wall_anchor: float, speed: float) -> None:
    """Run the controller through the simulated time since ``wall_anchor``, at once."""
    behind_ms = int(speed * (time.time() - wall_anchor) * 1000)
    while behind_ms > 0:
        step = min(behind_ms, 60_000)
        controller.step_ms(step)
        behind_ms -= step
    log.info(
        "sim_caught_up",
        since_wall=wall_anchor,
        sim_seconds=round(speed * (time.time() - wall_anchor), 1),
    )


# ---------------------------------------------------------------------- event export

#: How often new hi-res events are appended to ``--events FILE`` (wall s).
EXPORT_INTERVAL_S = 0.5


class EventExporter:
    """Appends the controller's new hi-res events to a file, one JSON object per line.

    ``{"seq": n, "t": seconds since the epoch (0.1 s), "code": c, "param": p}`` —
    the Indiana enumeration, as ATSPM tools read it. Rows the bounded log
    dropped before they were written show as a jump in ``seq``.
    """

    def __init__(self, controller: SimController, path: Path) -> None:
        self.controller = controller
        self._file = path.open("a", encoding="utf-8")
        self._seen = 0

    def write_new(self) -> int:
        rows = self.controller.events.since(self._seen)
        for row in rows:
            self._file.write(
                f'{{"seq":{row.seq},"t":{row.time_ds / 10:.1f},"code":{row.code},'
                f'"param":{row.param}}}\n'
            )
        if rows:
            self._seen = rows[-1].seq
            self._file.flush()
        return len(rows)

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------- logging


def _value_text(value: SnmpValue) -> str:
    inner = getattr(value, "value", None)
    if isinstance(inner, bytes):
        return inner.hex(" ") if inner else '""'
    if isinstance(inner, tuple):
        return ".".join(map(str, inner))
    return "null" if inner is None else str(inner)


def _log_exchange(exchange: Exchange) -> None:
    if exchange.outcome is Outcome.BAD_COMMUNITY:
        log.info("snmp_bad_community_dropped", request_id=exchange.request_id)
        return
    if exchange.outcome is not Outcome.ANSWERED:
        log.info("snmp_request_dropped", outcome=exchange.outcome.value, detail=exchange.detail)
        return
    if exchange.kind is not PduType.SET_REQUEST:
        if exchange.error_status is not ErrorStatus.NO_ERROR:
            log.debug(
                "snmp_get_error",
                status=exchange.error_status.name,
                index=exchange.error_index,
            )
        return
    writes = ", ".join(
        f"{describe_oid(vb.oid)}={_value_text(vb.value)}" for vb in exchange.varbinds
    )
    if exchange.error_status is ErrorStatus.NO_ERROR:
        log.info("snmp_set", writes=writes, hooks=list(exchange.hooks) or None)
    else:
        log.info(
            "snmp_set_refused",
            writes=writes,
            status=exchange.error_status.name,
            index=exchange.error_index,
            detail=exchange.detail,
            hooks=list(exchange.hooks) or None,
        )


# ------------------------------------------------------------------ the control channel


class _ControlChannel:
    """Reads operator commands line by line from a file descriptor (standard input)."""

    def __init__(self, fd: int, controller: SimController, emit: Callable[[str], None]) -> None:
        self._fd = fd
        self._controller = controller
        self._emit = emit
        self._buffer = b""
        self._attached = False

    def attach(self) -> bool:
        """Start reading; False when the descriptor cannot be watched (a file, /dev/null)."""
        try:
            asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
        except (OSError, ValueError):
            return False
        self._attached = True
        return True

    def detach(self) -> None:
        """Stop reading."""
        if self._attached:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._attached = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            log.info("control_channel_closed")
            self.detach()
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self.execute(raw.decode("utf-8", "replace"))

    def execute(self, line: str) -> None:
        """Run one command line and emit its answer."""
        try:
            command = parse_command(line)
        except ValueError as err:
            self._emit(f"error: {err}")
            return
        if command is None:
            return
        answer = run_command(self._controller, command)
        log.info("control_command", command=line.strip(), answer=answer)
        self._emit(answer)


# -------------------------------------------------------------------------- run


async def run_simulator(
    controller: SimController,
    settings: ServeSettings,
    *,
    emit: Callable[[str], None],
    view: LiveView | None = None,
    stop: asyncio.Event | None = None,
    control_fd: int = 0,
) -> RunSummary:
    """Serve ``controller`` until SIGTERM/SIGINT or ``stop`` is set; see the module doc.

    Raises :class:`SimStartError` when a server cannot be started; whatever
    was started by then is closed again.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    responder = NtcipResponder(
        controller, community=settings.community, hooks=settings.hooks, observer=_log_exchange
    )

    def fault_done(fault: ScheduledFault, answer: str) -> None:
        log.info("scripted_fault", fault=fault.label, answer=answer)
        emit(f"fault {fault.label}: {answer}")

    if settings.start_at_wall is not None:
        _catch_up_from(controller, settings.start_at_wall, settings.speed)
    driver = SimClockDriver(
        controller,
        speed=settings.speed,
        clock=loop.time,
        faults=settings.faults,
        on_fault=fault_done,
    )

    def on_datagram(data: bytes) -> bytes | None:
        driver.catch_up()
        return responder.handle(data, max_size=settings.udp_max_message)

    def on_frame(payload: bytes) -> bytes | None:
        driver.catch_up()
        return responder.handle(payload, max_size=settings.serial_max_message)

    def new_session() -> PmppSession:
        return PmppSession(on_frame, address=settings.address)

    summary = RunSummary()
    async with contextlib.AsyncExitStack() as stack:
        for host, port in settings.udp:
            try:
                transport, bound = await serve_udp(on_datagram, host, port)
            except OSError as err:
                raise SimStartError(
                    f"cannot listen on udp {format_host_port(host, port)}: {err.strerror or err}"
                ) from err
            stack.callback(transport.close)
            summary.endpoints.append(f"udp {format_host_port(*bound)}")
        for host, port in settings.tcp:
            try:
                server: TcpServer = await serve_tcp(new_session, host, port, baud=settings.baud)
            except OSError as err:
                raise SimStartError(
                    f"cannot listen on tcp {format_host_port(host, port)}: {err.strerror or err}"
                ) from err
            stack.push_async_callback(server.close)
            summary.endpoints.append(f"tcp {format_host_port(*server.address)}")
        for link in settings.pty:
            try:
                pty = PtyPort(link, new_session, baud=settings.baud)
            except OSError as err:
                raise SimStartError(f"cannot create the pty {link}: {err.strerror or err}") from err
            stack.push_async_callback(pty.close)
            pty.start()
            summary.endpoints.append(f"pty {link} {pty.device}")

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
            stack.callback(loop.remove_signal_handler, signum)

        channel = _ControlChannel(control_fd, controller, emit)
        if settings.control and channel.attach():
            stack.callback(channel.detach)

        if view is not None:
            view.start()
            stack.callback(view.stop)

        log.info(
            "sim_started",
            speed=settings.speed,
            endpoints=summary.endpoints,
            address=settings.address,
            baud=settings.baud,
            hooks=[hook.label for hook in settings.hooks] or None,
        )
        for line in summary.endpoints:
            emit(line)
        emit("ready")

        async def step_forever() -> None:
            while True:
                driver.catch_up()
                await asyncio.sleep(settings.step_interval_s)

        async def redraw_forever(live: LiveView) -> None:
            while True:
                driver.catch_up()
                stats = responder.stats
                live.refresh(
                    controller,
                    ViewInfo(
                        speed=driver.achieved_speed,
                        requests=stats.answered,
                        dropped=stats.bad_community + stats.malformed + stats.unsupported,
                        endpoints=tuple(summary.endpoints),
                    ),
                )
                await asyncio.sleep(1 / VIEW_HZ)

        async def export_events(path: Path) -> None:
            exporter = EventExporter(controller, path)
            try:
                while True:
                    driver.catch_up()
                    exporter.write_new()
                    await asyncio.sleep(EXPORT_INTERVAL_S)
            finally:
                exporter.write_new()
                exporter.close()

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(step_forever(), name="sim-step")]
            if settings.events_file is not None:
                tasks.append(
                    group.create_task(export_events(settings.events_file), name="sim-events")
                )
            if view is not None:
                tasks.append(group.create_task(redraw_forever(view), name="sim-view"))
            await stop.wait()
            for task in tasks:
                task.cancel()

    stats = responder.stats
    summary.requests = stats.requests
    summary.answered = stats.answered
    summary.bad_community = stats.bad_community
    summary.malformed = stats.malformed
    summary.sim_seconds = driver.elapsed_s
    summary.achieved_speed = driver.achieved_speed
    log.info(
        "sim_stopped",
        requests=stats.requests,
        answered=stats.answered,
        bad_community=stats.bad_community,
        malformed=stats.malformed,
        sets=stats.sets_applied,
        sim_seconds=round(driver.elapsed_s, 1),
        speed=round(driver.achieved_speed, 2),
    )
    return summary
