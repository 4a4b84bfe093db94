"""The demo's broker: a restartable child process on one port; a clear refusal without one."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from agent.central.client import BrokerSettings, CentralClient
from agent.demo import EXIT_UNUSABLE, DemoError
from agent.demo import broker as demo_broker
from agent.demo.broker import BrokerKind, BrokerProcess, choose_broker
from agent.demo.children import Children

KINDS = [
    pytest.param("mosquitto", id="mosquitto"),
    pytest.param(
        "embedded",
        id="embedded",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("amqtt") is None,
            reason="the embedded broker is the optional 'demo' extra (amqtt)",
        ),
    ),
]


async def round_trip(broker: BrokerProcess, payload: dict[str, object]) -> dict[str, object]:
    """Publish a message and read it back through the broker."""
    settings = BrokerSettings(host=broker.host, port=broker.port, timeout_s=5)
    async with (
        CentralClient(settings) as client,
        client.subscribe("greenwave/v1/demo-probe/state") as sub,
    ):
        await client.send("greenwave/v1/demo-probe/state", json.dumps(payload).encode())
        async with asyncio.timeout(5):
            message = await sub.get()
    body: dict[str, object] = message.json()
    return body


@pytest.mark.parametrize("kind", KINDS)
async def test_the_broker_stops_and_starts_again_on_the_same_port(
    tmp_path: Path, kind: BrokerKind
) -> None:
    children = Children()
    try:
        broker = choose_broker(kind, tmp_path / "broker", children)
        assert broker.description.startswith(kind)
        await broker.start()
        port = broker.port
        assert await round_trip(broker, {"n": 1}) == {"n": 1}
        await broker.stop()
        assert not broker.running
        with pytest.raises(Exception, match="cannot connect"):
            await round_trip(broker, {"n": 2})
        await broker.start()
        assert broker.port == port
        assert await round_trip(broker, {"n": 3}) == {"n": 3}
    finally:
        await children.stop_all()
    assert children.leftover() == []


def test_without_any_broker_the_demo_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_broker, "mosquitto_binary", lambda: None)
    monkeypatch.setattr(demo_broker, "embedded_available", lambda: False)
    for kind, says in (
        ("auto", "apt install mosquitto"),
        ("mosquitto", "apt install mosquitto"),
        ("embedded", "pip install 'greenwave[demo]'"),
    ):
        with pytest.raises(DemoError) as caught:
            choose_broker(kind, tmp_path, Children())  # type: ignore[arg-type]
        assert caught.value.exit_status == EXIT_UNUSABLE
        assert says in str(caught.value)
        assert "\n" not in str(caught.value)


def test_auto_falls_back_to_the_embedded_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_broker, "mosquitto_binary", lambda: None)
    monkeypatch.setattr(demo_broker, "embedded_available", lambda: True)
    chosen = choose_broker("auto", tmp_path, Children())
    assert chosen.description.startswith("embedded")
    assert chosen.argv[1:3] == ("-m", "agent.demo.embedded_broker")
