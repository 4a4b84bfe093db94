"""Fixtures of the end-to-end tests: broker, keys, and a guard against leaked processes.

Every end-to-end test runs twice, against mosquitto and against a private
RabbitMQ node with its MQTT plugin (``test_x[mosquitto]``, ``test_x[rabbitmq]``):
the agent must not depend on one broker's quirks (issue 9, ``docs/brokers.md``).
``-k mosquitto`` or ``-k rabbitmq`` picks one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker, Mosquitto, RabbitMQ
from tests.e2e.harness import Keys, reap_leaked


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves an agent or simulator process running (and kill it)."""
    yield
    leaked = reap_leaked()
    assert not leaked, f"{leaked} process(es) left running"


@pytest.fixture(scope="session")
def rabbitmq_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RabbitMQ database that has booted once, copied into each test's node.

    A node's very first boot waits 3-6 s for cluster peers; from a copy it
    starts in about 3 s (``tests/broker.py``, :class:`RabbitMQ`).
    """
    return RabbitMQ.make_seed(tmp_path_factory.mktemp("rabbitmq-seed"))


@pytest.fixture(params=["mosquitto", "rabbitmq"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """A running broker on an ephemeral loopback port (each test gets a fresh one)."""
    if request.param == "mosquitto":
        with Mosquitto(tmp_path / "broker") as mosquitto:
            yield mosquitto
        return
    seed: Path = request.getfixturevalue("rabbitmq_seed")
    with RabbitMQ(tmp_path / "rabbitmq", seed=seed) as rabbitmq:
        yield rabbitmq


@pytest.fixture
def keys() -> Keys:
    """Fresh TEST keys for central (root + command)."""
    return Keys()
