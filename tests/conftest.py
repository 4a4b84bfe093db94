"""Fixtures shared by every test package: a real mosquitto on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running mosquitto on an ephemeral loopback port, stopped after the test."""
    with Mosquitto(tmp_path / "broker") as running:
        yield running
