"""Fixtures of the chaos tests: central's TEST keys and a guard against leaked processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Keys, reap_leaked


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a chaos test that leaves an agent or simulator process running (and kill it)."""
    yield
    leaked = reap_leaked()
    assert not leaked, f"{leaked} process(es) left running"


@pytest.fixture
def keys() -> Keys:
    """Fresh TEST keys for central (root + command)."""
    return Keys()
