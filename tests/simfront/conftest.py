"""Fixtures of the simulator front-end tests, and the guard against leaked processes and tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from firmware_sim.controller import SimController
from firmware_sim.ntcip_responder import NtcipResponder

from .helpers import START_ARGS, STARTED, SimProcess, controller, coordinated, start_sim


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


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves tasks running on its loop."""
    yield
    current = asyncio.current_task()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in left:
        task.cancel()
    assert not left, f"tasks left running: {[t.get_name() for t in left]}"


@pytest.fixture
def ctrl() -> SimController:
    """The example plan, running pattern 1 coordinated (Monday 07:00 UTC)."""
    return coordinated(controller())


@pytest.fixture
def responder(ctrl: SimController) -> NtcipResponder:
    """A responder on :func:`ctrl`, community ``public``."""
    return NtcipResponder(ctrl)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    """A real ``greenwave-sim serve`` on an ephemeral UDP port, speed 50, Monday 07:00 UTC."""
    process = start_sim(tmp_path, "--udp", "127.0.0.1:0", "--speed", "50", *START_ARGS)
    try:
        yield process
    finally:
        process.stop()
