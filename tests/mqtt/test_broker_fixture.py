"""The broker fixture itself: a real mosquitto that keeps QoS 1 messages across a restart."""

from __future__ import annotations

import aiomqtt

from tests.broker import Mosquitto


async def test_publish_and_receive(broker: Mosquitto) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="t-sub") as sub:
        await sub.subscribe("t/x", qos=1)
        async with aiomqtt.Client(broker.host, broker.port, identifier="t-pub") as pub:
            await pub.publish("t/x", b"hello", qos=1)
        async for message in sub.messages:
            assert message.payload == b"hello"
            break


async def test_persistent_session_survives_restart(broker: Mosquitto) -> None:
    async with aiomqtt.Client(
        broker.host, broker.port, identifier="t-keep", clean_session=False
    ) as sub:
        await sub.subscribe("t/keep", qos=1)
    broker.stop()
    broker.start()
    async with aiomqtt.Client(broker.host, broker.port, identifier="t-pub") as pub:
        await pub.publish("t/keep", b"queued", qos=1)
    async with aiomqtt.Client(
        broker.host, broker.port, identifier="t-keep", clean_session=False
    ) as sub:
        async for message in sub.messages:
            assert message.payload == b"queued"
            break
