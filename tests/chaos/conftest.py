"""Fixtures of the chaos tests: central's TEST keys and a guard against leaked processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import AGENTS, Keys
from tests.simfront.helpers import STARTED


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a chaos test that leaves an agent or simulator process running (and kill it)."""
    yield
    leaked = [proc for proc in (*AGENTS, *STARTED) if proc.poll() is None]
    for proc in leaked:
        proc.kill()
        proc.wait(5)
    for proc in STARTED:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    AGENTS.clear()
    STARTED.clear()
    assert not leaked, f"{len(leaked)} process(es) left running"


@pytest.fixture
def keys() -> Keys:
    """Fresh TEST keys for central (root + command)."""
    return Keys()
