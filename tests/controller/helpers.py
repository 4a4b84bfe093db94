"""Helpers for the controller tests against the real simulator process.

A simulator is started with every front end at once (UDP, TCP and a pty), so
one process can be reached over each transport the agent supports; a test
picks one with :func:`controller_url`. With ``protocol="gbt"`` the simulator
also answers GB/T 20999 on UDP, TCP and a second pty, and the URL names
that protocol: the same scenario then runs over either protocol
(:data:`LINKS`), with the plan each protocol can carry (:func:`plan_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final, Literal

from agent.controller.factory import make_controller
from agent.controller.gbt20999.driver import GbtController
from agent.controller.interface import Controller, ControllerStatus, Light
from agent.controller.ntcip.driver import NtcipController
from agent.controller.poller import LinkState, PollSettings, StatusPoller
from agent.controller.url import parse_controller_url
from agent.plan.model import Plan
from agent.protocols import ntcip1202 as mib
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.snmp import Integer
from tests.controller.gbt.plans import gbt_example_plan
from tests.simfront.helpers import START_ARGS, SimProcess, example_plan, start_sim

#: How the agent reaches the simulator: SNMP over UDP, or PMPP over TCP, a pty
#: (``serial://``) or pyserial's ``socket://`` URL to the TCP port.
Transport = Literal["udp", "tcp", "pty", "socket"]
TRANSPORTS: Final[tuple[Transport, ...]] = ("udp", "tcp", "pty")
#: The controller protocols: NTCIP 1202 and GB/T 20999-2017.
Protocol = Literal["ntcip", "gbt"]
#: Every (protocol, transport) an end-to-end scenario runs over.
LINKS: Final[tuple[tuple[Protocol, Transport], ...]] = (
    *(("ntcip", transport) for transport in TRANSPORTS),
    *(("gbt", transport) for transport in TRANSPORTS),
)

#: The example plan's barrier groups: the main street (coordinated 2 and 6,
#: leading lefts 1 and 5) and the side street.
MAIN_GROUP: Final = (1, 2, 5, 6)
SIDE_GROUP: Final = (3, 4, 7, 8)


def serve_args(
    tmp_path: Path,
    *extra: str,
    udp: str = "127.0.0.1:0",
    tcp: str = "127.0.0.1:0",
    protocol: Protocol = "ntcip",
    gbt_udp: str = "127.0.0.1:0",
    gbt_tcp: str = "127.0.0.1:0",
) -> tuple[str, ...]:
    """``serve`` arguments: UDP, TCP and a pty at ``tmp_path/tty``, Monday 07:00 UTC.

    ``protocol="gbt"`` adds the GB/T 20999 endpoints, its pty at ``tmp_path/gbt-tty``.
    """
    gbt_args: tuple[str, ...] = ()
    if protocol == "gbt":
        gbt_args = (
            *("--gbt-udp", gbt_udp, "--gbt-tcp", gbt_tcp),
            *("--gbt-pty", str(gbt_pty_path(tmp_path))),
        )
    return (
        *("--udp", udp, "--tcp", tcp, "--pty", str(pty_path(tmp_path))),
        *gbt_args,
        *START_ARGS,
        *extra,
    )


def same_endpoints(
    sim: SimProcess, tmp_path: Path, *extra: str, protocol: Protocol
) -> tuple[str, ...]:
    """``serve`` arguments for a simulator on the very ports and ptys of ``sim``."""
    host, port = sim.tcp_address
    with_gbt = protocol == "gbt"
    return serve_args(
        tmp_path,
        *extra,
        udp=f"127.0.0.1:{sim.udp_port}",
        tcp=f"{host}:{port}",
        protocol=protocol,
        gbt_udp=sim.endpoints["gbt-udp"][0] if with_gbt else "127.0.0.1:0",
        gbt_tcp=sim.endpoints["gbt-tcp"][0] if with_gbt else "127.0.0.1:0",
    )


def pty_path(tmp_path: Path) -> Path:
    """Where the simulator's pty is linked."""
    return tmp_path / "tty"


def gbt_pty_path(tmp_path: Path) -> Path:
    """Where the simulator's GB/T 20999 pty is linked."""
    return tmp_path / "gbt-tty"


def start_all(tmp_path: Path, *extra: str, protocol: Protocol = "ntcip") -> SimProcess:
    """A simulator answering on UDP, TCP and a pty (see :func:`serve_args`)."""
    return start_sim(tmp_path, *serve_args(tmp_path, *extra, protocol=protocol))


def controller_url(
    sim: SimProcess,
    transport: Transport,
    tmp_path: Path,
    query: str = "",
    *,
    protocol: Protocol = "ntcip",
) -> str:
    """The controller URL of ``sim`` over ``transport``, with an optional query string."""
    if protocol == "gbt":
        udp, tcp = sim.endpoints["gbt-udp"][0], sim.endpoints["gbt-tcp"][0]
        base = {
            "udp": f"gbt+udp://{udp}",
            "tcp": f"gbt+tcp://{tcp}",
            "socket": f"gbt+socket://{tcp}",
            "pty": f"gbt+serial://{gbt_pty_path(tmp_path)}",
        }[transport]
        return f"{base}?{query}" if query else base
    host, port = sim.tcp_address
    base = {
        "udp": f"udp://127.0.0.1:{sim.udp_port}",
        "tcp": f"tcp://{host}:{port}",
        "socket": f"socket://{host}:{port}",
        "pty": f"serial://{pty_path(tmp_path)}",
    }[transport]
    return f"{base}?{query}" if query else base


def plan_for(protocol: Protocol) -> Plan:
    """The example plan as each protocol can carry it (GB/T: clearances in whole seconds)."""
    return gbt_example_plan() if protocol == "gbt" else example_plan()


def driver(url: str) -> Controller:
    """The agent's driver for ``url``, whatever the protocol (not yet open)."""
    controller = make_controller(parse_controller_url(url))
    assert isinstance(controller, NtcipController | GbtController)
    return controller


@contextlib.asynccontextmanager
async def connected_to(url: str) -> AsyncIterator[Controller]:
    """An open driver for ``url``, whatever the protocol, closed afterwards."""
    controller = driver(url)
    await controller.open()
    try:
        yield controller
    finally:
        await controller.close()


async def pattern_cycles(controller: Controller, patterns: list[int]) -> list[int]:
    """The cycle the controller holds for each pattern, read in its own protocol's objects."""
    if isinstance(controller, GbtController):
        values = await controller.client.query([gbt.SCHEME_CYCLE.at(p) for p in patterns])
        return [gbt.SCHEME_CYCLE.decode(value) for value in values]
    assert isinstance(controller, NtcipController)
    cycles = await controller.client.get([mib.PATTERN_CYCLE_TIME.instance(p) for p in patterns])
    return [value.value if isinstance(value, Integer) else -1 for value in cycles]


def ntcip(url: str) -> NtcipController:
    """The agent's driver for ``url``, as the factory builds it (not yet open)."""
    controller = make_controller(parse_controller_url(url))
    assert isinstance(controller, NtcipController)
    return controller


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[NtcipController]:
    """An open driver for ``url``, closed afterwards."""
    controller = ntcip(url)
    await controller.open()
    try:
        yield controller
    finally:
        await controller.close()


@contextlib.asynccontextmanager
async def polling(
    controller: Controller,
    settings: PollSettings | None = None,
    *,
    on_link_change: Callable[[LinkState], None] | None = None,
) -> AsyncIterator[StatusPoller]:
    """A :class:`StatusPoller` running on ``controller``; cancelled (and awaited) afterwards."""
    poller = StatusPoller(controller, settings, on_link_change=on_link_change)
    task = asyncio.create_task(poller.run(), name="status-poller")
    try:
        yield poller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def statuses_until(
    poller: StatusPoller,
    done: Callable[[ControllerStatus], bool],
    *,
    within: float,
    then: int = 0,
) -> list[ControllerStatus]:
    """Every status until the first that satisfies ``done``, and ``then`` more after it.

    Fails with ``TimeoutError`` after ``within`` seconds.
    """
    seen: list[ControllerStatus] = []
    extra = -1
    async with asyncio.timeout(within):
        async for status in poller.updates():
            seen.append(status)
            if extra < 0 and done(status):
                extra = 0
            elif extra >= 0:
                extra += 1
            if extra == then:
                return seen
    raise AssertionError("the poller stopped")  # pragma: no cover - updates() never ends


def lit(status: ControllerStatus, phases: tuple[int, ...]) -> bool:
    """True when any of ``phases`` shows green or yellow."""
    return any(
        (signal := status.phase(n)) is not None and signal.light in (Light.GREEN, Light.YELLOW)
        for n in phases
    )


def green(status: ControllerStatus, phases: tuple[int, ...]) -> bool:
    """True when every one of ``phases`` shows green."""
    return all(
        (signal := status.phase(n)) is not None and signal.light is Light.GREEN for n in phases
    )
