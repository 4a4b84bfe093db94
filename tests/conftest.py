"""Fixtures shared by every test package: a real mosquitto on loopback (plain, or with TLS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.broker import Mosquitto
from tests.pki import ThrowawayPki, make_test_pki


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running mosquitto on an ephemeral loopback port, stopped after the test."""
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def pki(tmp_path: Path) -> ThrowawayPki:
    """A fresh TEST CA, broker and client certificate in this test's tmp_path."""
    return make_test_pki(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path: Path, pki: ThrowawayPki) -> Iterator[Mosquitto]:
    """A mosquitto with a plain listener and a TLS one that requires a client certificate."""
    with Mosquitto(tmp_path / "tls-broker", tls=pki.broker_files()) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts with structlog's defaults: a CLI run in-process configures it
    for the process (level, stream), which must not leak into the next test."""
    yield
    structlog.reset_defaults()
