"""The running simulator: real-time stepping, the protocol servers, the control channel.

:class:`SimClockDriver` keeps the simulated controller at ``speed`` times
the wall clock: it is told the time by an injected clock (the asyncio loop's
in production, a fake one in tests) and steps the controller to match, in
one call. It runs every :data:`STEP_INTERVAL_S` of wall time and also just
before every request is answered, so a status read is always current. If
the host cannot keep up (a very high ``speed``), the driver drops the
backlog instead of freezing the loop, and the achieved speed shows it.

:func:`run_simulator` owns everything that does I/O: the UDP, TCP and pty
servers in front of one :class:`~firmware_sim.ntcip_responder.NtcipResponder`
and, when GB/T 20999 endpoints are asked for, one
:class:`~firmware_sim.gbt_responder.GbtResponder` on the same controller;
the tasks (stepping, the stdin control channel, the live view) in one
``TaskGroup``, and the SIGTERM/SIGINT handlers. It reports the bound
addresses through ``emit`` (one ``udp HOST:PORT`` / ``tcp HOST:PORT`` /
``pty LINK DEVICE`` / ``gbt-udp HOST:PORT`` / ``gbt-tcp HOST:PORT`` /
``gbt-pty LINK DEVICE`` line each, then ``ready``) and returns when told to
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

from agent.errors import GreenwaveError, ProtocolError
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import Address, Message
from agent.protocols.gbt20999.objects import describe, lookup
from agent.protocols.ntcip1202 import describe_oid
from agent.protocols.snmp import ErrorStatus, PduType, SnmpValue
from firmware_sim.commands import ScheduledFault, parse_command, run_command
from firmware_sim.controller import SimController
from firmware_sim.gbt_responder import (
    DEFAULT_LINK_TIMEOUT_S,
    GbtHook,
    GbtResponder,
    GbtStreamSession,
)
from firmware_sim.gbt_responder import Exchange as GbtExchange
from firmware_sim.gbt_responder import Outcome as GbtOutcome
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
    #: GB/T 20999 endpoints: UDP (datagrams), TCP and ptys (0x5C-escaped frames).
    gbt_udp: tuple[tuple[str, int], ...] = ()
    gbt_tcp: tuple[tuple[str, int], ...] = ()
    gbt_pty: tuple[Path, ...] = ()
    #: Simulated seconds without GB/T traffic after which center control is dropped.
    gbt_link_timeout_s: int = DEFAULT_LINK_TIMEOUT_S
    gbt_hooks: tuple[GbtHook, ...] = ()

    @property
    def serves_gbt(self) -> bool:
        """True when any GB/T 20999 endpoint is asked for."""
        return bool(self.gbt_udp or self.gbt_tcp or self.gbt_pty)


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


def _gbt_value_text(address: Address, raw: bytes) -> str:
    """A set value for a log line: ``120``, ``{1,5}``, ``1 2 3 4``, or hex."""
    attribute = lookup(address)
    try:
        value = attribute.decode(raw) if attribute is not None else raw
    except ProtocolError:
        value = raw
    if isinstance(value, frozenset):
        return "{" + ",".join(str(item) for item in sorted(value)) + "}"
    if isinstance(value, tuple):
        items = list(value)
        while items and items[-1] in (0, (0, 0)):
            items.pop()
        return (
            " ".join(
                f"{item[0]:02d}:{item[1]:02d}" if isinstance(item, tuple) else str(item)
                for item in items
            )
            or "-"
        )
    if isinstance(value, bytes):
        return value.hex(" ") or "-"
    return str(value)


def _log_gbt_exchange(exchange: GbtExchange) -> None:
    if exchange.outcome is GbtOutcome.MALFORMED:
        log.info("gbt_frame_dropped", detail=exchange.detail)
        return
    if exchange.outcome is GbtOutcome.IGNORED:
        frame_type = exchange.frame_type.meaning if exchange.frame_type else None
        log.debug("gbt_frame_ignored", frame_type=frame_type)
        return
    if not exchange.values:
        if exchange.errors:
            log.debug(
                "gbt_query_error",
                errors=", ".join(f"{address}=0x{code:02X}" for address, code in exchange.errors),
            )
        return
    writes = ", ".join(
        f"{describe(address)}={_gbt_value_text(address, value)}"
        for address, value in exchange.values
    )
    if not exchange.errors:
        log.info("gbt_set", writes=writes, hooks=list(exchange.hooks) or None)
    else:
        address, code = exchange.errors[0]
        log.info(
            "gbt_set_refused",
            writes=writes,
            refused=describe(address),
            code=f"0x{code:02X}",
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

    gbt: GbtResponder | None = None
    if settings.serves_gbt:
        gbt = GbtResponder(
            controller,
            hooks=settings.gbt_hooks,
            link_timeout_s=settings.gbt_link_timeout_s,
            observer=_log_gbt_exchange,
        )

    def on_gbt_datagram(data: bytes) -> bytes | None:
        assert gbt is not None
        driver.catch_up()
        return gbt.handle(data, framing=Framing.DATAGRAM)

    def on_gbt_message(message: Message) -> Message | None:
        assert gbt is not None
        driver.catch_up()
        return gbt.respond(message)

    def new_gbt_session() -> GbtStreamSession:
        return GbtStreamSession(on_gbt_message)

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

        for host, port in settings.gbt_udp:
            try:
                transport, bound = await serve_udp(on_gbt_datagram, host, port)
            except OSError as err:
                raise SimStartError(
                    f"cannot listen on gbt-udp {format_host_port(host, port)}: "
                    f"{err.strerror or err}"
                ) from err
            stack.callback(transport.close)
            summary.endpoints.append(f"gbt-udp {format_host_port(*bound)}")
        for host, port in settings.gbt_tcp:
            try:
                server = await serve_tcp(new_gbt_session, host, port, baud=settings.baud)
            except OSError as err:
                raise SimStartError(
                    f"cannot listen on gbt-tcp {format_host_port(host, port)}: "
                    f"{err.strerror or err}"
                ) from err
            stack.push_async_callback(server.close)
            summary.endpoints.append(f"gbt-tcp {format_host_port(*server.address)}")
        for link in settings.gbt_pty:
            try:
                pty = PtyPort(link, new_gbt_session, baud=settings.baud)
            except OSError as err:
                raise SimStartError(f"cannot create the pty {link}: {err.strerror or err}") from err
            stack.push_async_callback(pty.close)
            pty.start()
            summary.endpoints.append(f"gbt-pty {link} {pty.device}")

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
            gbt_hooks=[hook.label for hook in settings.gbt_hooks] or None,
            gbt_link_timeout_s=settings.gbt_link_timeout_s if gbt is not None else None,
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
                gbt_answered = gbt.stats.answered if gbt is not None else 0
                gbt_dropped = gbt.stats.malformed if gbt is not None else 0
                live.refresh(
                    controller,
                    ViewInfo(
                        speed=driver.achieved_speed,
                        requests=stats.answered + gbt_answered,
                        dropped=stats.bad_community
                        + stats.malformed
                        + stats.unsupported
                        + gbt_dropped,
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
    if gbt is not None:
        summary.requests += gbt.stats.requests
        summary.answered += gbt.stats.answered
        summary.malformed += gbt.stats.malformed
    summary.sim_seconds = driver.elapsed_s
    summary.achieved_speed = driver.achieved_speed
    log.info(
        "sim_stopped",
        requests=stats.requests,
        answered=stats.answered,
        bad_community=stats.bad_community,
        malformed=stats.malformed,
        sets=stats.sets_applied,
        gbt_requests=gbt.stats.requests if gbt is not None else None,
        gbt_sets=gbt.stats.sets_applied if gbt is not None else None,
        sim_seconds=round(driver.elapsed_s, 1),
        speed=round(driver.achieved_speed, 2),
    )
    return summary
