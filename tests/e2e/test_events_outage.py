"""Acceptance 4 of issue 5: no event is lost across a broker outage and a SIGKILL.

The broker is stopped for 60 s (``GREENWAVE_E2E_OUTAGE_S`` shortens it for a
quick local run; on RabbitMQ it is 20 s, ``GREENWAVE_E2E_OUTAGE_S_RABBITMQ``,
which keeps the second broker's run short: the 60 s are proved on mosquitto,
and a node's persistence does not depend on the outage's length) while the
simulator keeps producing phase changes; halfway through, the agent is
killed with SIGKILL and started again. When the broker returns, central (a
persistent MQTT session) must hold every event from sequence number 1 on,
contiguous, with no announced drops.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.broker import Broker
from tests.e2e.harness import Keys, central, new_cabinet, wait_online

DEVICE = "cab-outage"
OUTAGE_S = {
    "mosquitto": float(os.environ.get("GREENWAVE_E2E_OUTAGE_S", "60")),
    "rabbitmq": float(os.environ.get("GREENWAVE_E2E_OUTAGE_S_RABBITMQ", "20")),
}


class EventLog:
    """Central's view of the events stream, deduplicated by sequence number."""

    def __init__(self) -> None:
        self.events: dict[int, dict[str, Any]] = {}
        self.dropped: list[Any] = []
        self.batches = 0

    def take(self, payload: bytes) -> None:
        batch = json.loads(payload)
        self.batches += 1
        self.dropped.extend(batch["dropped"])
        for event in batch["events"]:
            self.events.setdefault(event["seq"], event)

    @property
    def highest(self) -> int:
        return max(self.events, default=0)

    def missing(self) -> list[int]:
        return [n for n in range(1, self.highest + 1) if n not in self.events]


async def follow(broker: Broker, topic: str, log: EventLog, until: Any) -> None:
    """Receive events with a persistent session until ``until()`` holds."""
    async with aiomqtt.Client(
        broker.host, broker.port, identifier="central-e2e", clean_session=False
    ) as client:
        await client.subscribe(topic, qos=1)
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            log.take(message.payload)
            if until():
                return


@pytest.mark.timeout(300)
async def test_events_survive_a_broker_outage_and_a_sigkill(
    tmp_path: Path, broker: Broker, keys: Keys
) -> None:
    outage_s = OUTAGE_S[broker.name]
    cabinet = new_cabinet(tmp_path / DEVICE, DEVICE, broker, keys)
    log = EventLog()
    try:
        async with central(broker) as client:
            cabinet.start()
            async with asyncio.timeout(20):
                await wait_online(client, cabinet)
        async with asyncio.timeout(30):
            await follow(broker, cabinet.topics.events, log, lambda: log.highest >= 20)
        before_outage = log.highest

        broker.stop()
        outage_started = time.monotonic()
        await asyncio.sleep(outage_s / 2)
        assert cabinet.proc is not None
        cabinet.stop(signal.SIGKILL)
        cabinet.start()
        await asyncio.sleep(outage_s - (time.monotonic() - outage_started))
        broker.start()
        restarted_at = time.time()

        def caught_up() -> bool:
            # Events produced after the broker returned mean the backlog is through.
            newest = log.events.get(log.highest, {})
            return newest.get("ts", 0) > restarted_at + 2 and not log.missing()

        async with asyncio.timeout(60):
            await follow(broker, cabinet.topics.events, log, caught_up)
    finally:
        cabinet.stop()
        cabinet.sim.stop()

    assert log.missing() == [], f"events never received: {log.missing()[:20]}"
    assert log.dropped == []
    starts = [e for e in log.events.values() if e.get("kind") == "agent_start"]
    assert len(starts) == 2, "both agent runs (before and after SIGKILL) reported"
    during = [
        e
        for e in log.events.values()
        if e.get("src") == "controller" and e["ts"] < restarted_at - 1
    ]
    assert log.highest > before_outage + 2 * outage_s
    assert len(during) > 2 * outage_s, "the simulator kept producing events during the outage"
    print(
        f"\nevents: {log.highest} contiguous in {log.batches} batches; "
        f"{log.highest - before_outage} produced during/after a {outage_s:.0f} s outage"
    )
