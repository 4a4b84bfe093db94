"""Fixtures of the controller tests, and the guard against leaked processes and tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.simfront.helpers import STARTED


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
