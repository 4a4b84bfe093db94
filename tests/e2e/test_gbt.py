"""Issue 8 end to end: the agent drives a GB/T 20999 controller, and falls back without central.

The same rig as the NTCIP end-to-end tests -- mosquitto, ``greenwave run``,
the simulator as a process, central signing commands -- with the cabinet's
controller URL ``gbt+udp://``: central loads a plan (whole-second
clearances, which GB/T carries) and commands pattern 2, the controller runs
it, then the broker stops and the agent falls back to ``local`` and hands
the controller back to its own schedule (center day plan).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Final

from agent.central.client import CentralClient
from agent.central.commands import AckStatus
from agent.controller.interface import ControlSource
from tests.broker import Broker
from tests.controller.gbt.plans import gbt_example_document
from tests.e2e.harness import Cabinet, Keys, central, new_cabinet, next_json, wait_online

DEVICE: Final = "cab-gbt"
HEARTBEAT_TIMEOUT_S: Final = 3.0


async def heartbeats(client: CentralClient, keys: Keys, stop: asyncio.Event) -> None:
    """Central's broadcast heartbeat every 0.5 s until ``stop``."""
    signer = keys.signer()
    while not stop.is_set():
        await client.heartbeat(signer.heartbeat())
        await asyncio.sleep(0.5)


async def first_record_after(
    cabinet: Cabinet, event: str, after_wall: float, **match: str
) -> float:
    """Wall time of the first agent log record ``event`` (with ``match``) after ``after_wall``."""
    deadline = time.monotonic() + 10
    while True:
        for record in cabinet.log_records(event):
            at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
            if at >= after_wall and all(record.get(k) == v for k, v in match.items()):
                return at
        assert time.monotonic() < deadline, f"no {event} {match} after {after_wall}"
        await asyncio.sleep(0.1)


async def test_plan_pattern_and_fallback_over_gbt_20999(
    tmp_path: Path, broker: Broker, keys: Keys
) -> None:
    cabinet = new_cabinet(
        tmp_path / DEVICE,
        DEVICE,
        broker,
        keys,
        protocol="gbt",
        central_config=f"heartbeat_timeout_s = {HEARTBEAT_TIMEOUT_S}\nbackup_time_s = 600",
    )
    try:
        async with central(broker) as client:
            cabinet.start()
            async with asyncio.timeout(20):
                await wait_online(client, cabinet)
            signer = keys.signer()
            load = signer.sign("plan.load", {"plan": gbt_example_document(2)}, aud=DEVICE)
            outcome = await client.command(
                load, device=DEVICE, want=AckStatus.APPLIED, timeout_s=30
            )
            assert outcome.ok, outcome
            stop = asyncio.Event()
            beats = asyncio.create_task(heartbeats(client, keys, stop))
            try:
                run = signer.sign("control.pattern", {"pattern": 2}, aud=DEVICE)
                outcome = await client.command(
                    run, device=DEVICE, want=AckStatus.APPLIED, timeout_s=30
                )
                assert outcome.ok, outcome
                async with client.subscribe(cabinet.topics.state) as states:
                    async with asyncio.timeout(60):
                        while True:
                            state = await next_json(states)
                            if (state.get("signal") or {}).get("pattern") == 2:
                                break
                assert state["mode"] == "central"
                assert state["plan"] == {"version": 2, "jti": load.jti, "applied": True}
            finally:
                stop.set()
                await beats

        stopped_at = time.time()
        broker.stop()
        local_at = await first_record_after(cabinet, "mode_changed", stopped_at, after="local")
        assert local_at - stopped_at <= HEARTBEAT_TIMEOUT_S + 1

        controller = cabinet.controller()
        await controller.open()
        try:
            async with asyncio.timeout(15):
                while True:
                    status = await controller.read_status()
                    if status.commanded == "standby":
                        break
                    await asyncio.sleep(0.2)
        finally:
            await controller.close()
        assert status.control is ControlSource.STANDBY  # center day plan: the controller's own
        assert "plan_written" in cabinet.log()
        print(f"broker stop -> local in {local_at - stopped_at:.3f} s")
    finally:
        cabinet.stop()
        cabinet.sim.stop()
