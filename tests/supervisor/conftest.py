"""Fixtures for the supervisor tests: a real simulator process, a polled controller, a handler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.central.commands import Ack, AckStatus
from agent.controller.factory import make_controller
from agent.controller.interface import Controller
from agent.controller.poller import PollSettings, StatusPoller
from agent.controller.url import parse_controller_url
from agent.plan.limits import SiteLimits
from agent.supervisor.commands import CommandHandler
from agent.supervisor.store import CommandStore
from tests.central.world import FakeClock, World
from tests.simfront.helpers import START_ARGS, STARTED, SimProcess, start_sim


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a simulator process running (and kill it)."""
    yield
    leaked = [proc for proc in STARTED if proc.poll() is None]
    for proc in leaked:
        proc.kill()
        proc.wait(5)
    for proc in STARTED:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    STARTED.clear()
    assert not leaked, f"{len(leaked)} simulator process(es) left running"


class AckLog:
    """An AckSink that keeps every ack and lets a test wait for one."""

    def __init__(self) -> None:
        self.acks: list[Ack] = []
        self._changed = asyncio.Event()

    def send(self, ack: Ack) -> None:
        self.acks.append(ack)
        self._changed.set()

    def of(self, jti: str | None) -> list[tuple[str, str]]:
        return [(str(a.status), str(a.code)) for a in self.acks if a.jti == jti]

    async def wait(self, jti: str | None, status: AckStatus, *, within: float = 10) -> Ack:
        async with asyncio.timeout(within):
            while True:
                for ack in self.acks:
                    if ack.jti == jti and ack.status is status:
                        return ack
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Rig:
    """A handler wired to a real simulator, with real keys and a state dir."""

    sim: SimProcess
    world: World
    controller: Controller
    poller: StatusPoller
    handler: CommandHandler
    acks: AckLog
    events: list[Mapping[str, Any]] = field(default_factory=list)


def sim_args(*extra: str) -> tuple[str, ...]:
    return ("--udp", "127.0.0.1:0", "--no-view", "--speed", "10", *START_ARGS, *extra)


@pytest.fixture
def sim_extra() -> tuple[str, ...]:
    """Extra simulator arguments (override in a module to add test hooks)."""
    return ()


@pytest.fixture
async def rig(tmp_path: Path, sim_extra: tuple[str, ...]) -> AsyncIterator[Rig]:
    (tmp_path / "state").mkdir()
    world = World(state_dir=tmp_path / "state", clock=FakeClock(time.time()))
    sim = start_sim(tmp_path, *sim_args(*sim_extra))
    controller = make_controller(parse_controller_url(f"udp://127.0.0.1:{sim.udp_port}"))
    poller = StatusPoller(controller, PollSettings(rate_hz=10))
    acks = AckLog()
    events: list[Mapping[str, Any]] = []
    handler = CommandHandler(
        device_id="cabinet-17",
        verifier=world.verifier,
        controller=controller,
        status=poller,
        store=CommandStore.open(world.state_dir),
        limits=SiteLimits(),
        acks=acks,
        events=events.append,
        diagnostics=lambda: {"answer": 42},
    )
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(poller.run(), name="poller"),
                group.create_task(handler.run(), name="handler"),
            ]
            async with asyncio.timeout(10):
                await poller.wait_link(True)
            yield Rig(sim, world, controller, poller, handler, acks, events)
            for task in tasks:
                task.cancel()
    finally:
        sim.stop()
