"""Helpers for the controller tests against the real simulator process.

A simulator is started with every front end at once (UDP, TCP and a pty), so
one process can be reached over each transport the agent supports; a test
picks one with :func:`controller_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final, Literal

from agent.controller.factory import make_controller
from agent.controller.interface import ControllerStatus, Light
from agent.controller.ntcip.driver import NtcipController
from agent.controller.poller import LinkState, PollSettings, StatusPoller
from agent.controller.url import parse_controller_url
from tests.simfront.helpers import START_ARGS, SimProcess, start_sim

#: How the agent reaches the simulator: SNMP over UDP, or PMPP over TCP, a pty
#: (``serial://``) or pyserial's ``socket://`` URL to the TCP port.
Transport = Literal["udp", "tcp", "pty", "socket"]
TRANSPORTS: Final[tuple[Transport, ...]] = ("udp", "tcp", "pty")

#: The example plan's barrier groups: the main street (coordinated 2 and 6,
#: leading lefts 1 and 5) and the side street.
MAIN_GROUP: Final = (1, 2, 5, 6)
SIDE_GROUP: Final = (3, 4, 7, 8)


def serve_args(
    tmp_path: Path, *extra: str, udp: str = "127.0.0.1:0", tcp: str = "127.0.0.1:0"
) -> tuple[str, ...]:
    """``serve`` arguments: UDP, TCP and a pty at ``tmp_path/tty``, Monday 07:00 UTC."""
    return ("--udp", udp, "--tcp", tcp, "--pty", str(pty_path(tmp_path)), *START_ARGS, *extra)


def pty_path(tmp_path: Path) -> Path:
    """Where the simulator's pty is linked."""
    return tmp_path / "tty"


def start_all(tmp_path: Path, *extra: str) -> SimProcess:
    """A simulator answering on UDP, TCP and a pty (see :func:`serve_args`)."""
    return start_sim(tmp_path, *serve_args(tmp_path, *extra))


def controller_url(sim: SimProcess, transport: Transport, tmp_path: Path, query: str = "") -> str:
    """The controller URL of ``sim`` over ``transport``, with an optional query string."""
    host, port = sim.tcp_address
    base = {
        "udp": f"udp://127.0.0.1:{sim.udp_port}",
        "tcp": f"tcp://{host}:{port}",
        "socket": f"socket://{host}:{port}",
        "pty": f"serial://{pty_path(tmp_path)}",
    }[transport]
    return f"{base}?{query}" if query else base


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
    controller: NtcipController,
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
