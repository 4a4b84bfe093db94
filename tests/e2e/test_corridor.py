"""Issue 6 end to end: a five-intersection corridor keeps its green wave when central goes.

Five simulators run the example corridor (``examples/plans/corridor-*.json``)
on one shared clock (``--start`` + ``--start-at-wall``, ten times real time,
pre-run so they are already in step), five agents drive them, and central
(the reference client) loads the plans and commands the green-wave pattern
with one ``activate_at`` for all five. Then:

1. the broker stops: every agent falls back to ``local`` within
   ``heartbeat_timeout_s`` + 1 s (measured from the agents' logs, printed),
   and the simulators' own hi-res event logs show every intersection's
   coordinated phase starting green at its planned offset (±0.5 s) before,
   through and after the fallback;
2. the broker returns: the agents stay ``local`` although heartbeats flow;
3. a new command puts them in ``central``; heartbeats stop while the broker
   stays up: the same fallback;
4. one agent is killed with SIGKILL while central drives: its controller's
   own backup timer takes it back to the time-of-day schedule.

Times in the simulators are simulated seconds (10 per wall second); the
agents' timeouts are wall seconds.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.central.client import CentralClient
from agent.central.commands import AckStatus
from agent.controller.interface import ControlSource
from tests.broker import Broker
from tests.e2e.harness import REPO, Cabinet, Keys, central, new_cabinet, next_json

PLANS = sorted((REPO / "examples" / "plans").glob("corridor-*.json"))
DEVICES = [f"main-{n}" for n in ("1st", "2nd", "3rd", "4th", "5th")]
SPEED = 10
HEARTBEAT_TIMEOUT_S = 3.0
BACKUP_TIME_S = 100  # controller (simulated) seconds: 10 wall seconds
#: Thursday 07:00 local (UTC offset 0): the corridor's day plan runs pattern 1 (06:30-09:30).
START = "2026-11-26T07:00:00Z"
MIDNIGHT = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
GREEN_WAVE = 1
COORD_PHASE = 2
TOLERANCE_S = 0.5


def plan(index: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(PLANS[index].read_text())
    return doc


def planned_offset(index: int, pattern: int) -> tuple[float, float]:
    """(offset, cycle) of ``pattern`` at intersection ``index``."""
    row = next(p for p in plan(index)["patterns"] if p["pattern"] == pattern)
    return float(row["offset"]), float(row["cycle"])


def sim_events(cabinet: Cabinet) -> list[dict[str, Any]]:
    path = cabinet.root / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def offset_errors(cabinet: Cabinet, index: int, since_sim: float) -> list[float]:
    """For each coordinated-phase green start since ``since_sim``: its error from the plan."""
    offset, cycle = planned_offset(index, GREEN_WAVE)
    errors = []
    for event in sim_events(cabinet):
        if event["code"] == 1 and event["param"] == COORD_PHASE and event["t"] >= since_sim:
            position = (event["t"] - MIDNIGHT - offset) % cycle
            errors.append(min(position, cycle - position))
    return errors


async def first_record_after(
    cabinet: Cabinet, event: str, after_wall: float, *, within: float = 10, **match: str
) -> float:
    """Wall time of the first agent log record ``event`` (with ``match``) after ``after_wall``."""
    deadline = time.monotonic() + within
    while True:
        for record in cabinet.log_records(event):
            at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
            if at >= after_wall and all(record.get(k) == v for k, v in match.items()):
                return at
        if time.monotonic() > deadline:
            raise AssertionError(f"{cabinet.device}: no {event} {match} after {after_wall}")
        await asyncio.sleep(0.1)


async def states(client: CentralClient, cabinets: list[Cabinet]) -> dict[str, dict[str, Any]]:
    """The newest retained state of every cabinet."""
    found: dict[str, dict[str, Any]] = {}
    async with client.subscribe(*(c.topics.state for c in cabinets)) as sub:
        async with asyncio.timeout(10):
            while len(found) < len(cabinets):
                body = await next_json(sub)
                found[body["device"]] = body
    return found


async def wait_modes(
    client: CentralClient, cabinets: list[Cabinet], mode: str, *, within: float, **signal: Any
) -> None:
    """Wait until every cabinet's state says ``mode`` (and the signal fields given)."""
    want = {c.device for c in cabinets}
    async with client.subscribe(*(c.topics.state for c in cabinets)) as sub:
        async with asyncio.timeout(within):
            while want:
                body = await next_json(sub)
                seen = body.get("signal") or {}
                if body["mode"] == mode and all(seen.get(k) == v for k, v in signal.items()):
                    want.discard(body["device"])


async def heartbeats(client: CentralClient, keys: Keys, stop: asyncio.Event) -> float:
    """Send a broadcast heartbeat every 0.5 s until ``stop``; the wall time of the last one."""
    signer = keys.signer()
    last = 0.0
    while not stop.is_set():
        await client.heartbeat(signer.heartbeat())
        last = time.time()
        await asyncio.sleep(0.5)
    return last


async def command_all(client: CentralClient, keys: Keys, cabinets: list[Cabinet]) -> float:
    """The green-wave pattern for the whole corridor: one token, one activate_at; applied."""
    activate_at = time.time() + 2
    command = keys.signer().sign(
        "control.pattern",
        {"pattern": GREEN_WAVE, "activate_at": activate_at},
        aud=[c.device for c in cabinets],
    )
    async with client.acks([c.device for c in cabinets]) as acks:
        await client.publish(command, group="corridor-a")
        outcome = await acks.wait_for(command.jti, want=AckStatus.APPLIED, timeout_s=20)
    assert outcome.ok, outcome
    return activate_at


@pytest.mark.timeout(300)
async def test_the_corridor_keeps_its_green_wave_when_central_goes(
    tmp_path: Path, broker: Broker, keys: Keys
) -> None:
    anchor = time.time() - 40  # 400 simulated seconds of pre-run: all in step
    cabinets: list[Cabinet] = []
    try:
        for index, device in enumerate(DEVICES):
            root = tmp_path / device
            sim_args = ("--plan", str(PLANS[index]), "--events", str(root / "events.jsonl"))
            clock = ("--start", START, "--utc-offset", "0", "--start-at-wall", str(anchor))
            central = (
                f"heartbeat_timeout_s = {HEARTBEAT_TIMEOUT_S}\nbackup_time_s = {BACKUP_TIME_S}"
            )
            cabinet = new_cabinet(
                root,
                device,
                broker,
                keys,
                *sim_args,
                sim_clock=clock,
                controller_config="set_clock = false",
                central_config=central,
            )
            cabinets.append(cabinet)
        for cabinet in cabinets:
            cabinet.start()
        await _run_scenario(broker, keys, cabinets)
    finally:
        for cabinet in cabinets:
            cabinet.stop()
            cabinet.sim.stop()


async def _run_scenario(broker: Broker, keys: Keys, cabinets: list[Cabinet]) -> None:
    report: list[str] = []
    async with central(broker) as client:
        await wait_modes(client, cabinets, "local", within=30)
        # Central loads each intersection's plan and commands the green wave.
        signer = keys.signer()
        for index, cabinet in enumerate(cabinets):
            load = signer.sign("plan.load", {"plan": plan(index)}, aud=cabinet.device)
            outcome = await client.command(
                load, device=cabinet.device, want=AckStatus.APPLIED, timeout_s=30
            )
            assert outcome.ok, outcome
        stop_beats = asyncio.Event()
        beats = asyncio.create_task(heartbeats(client, keys, stop_beats))
        await command_all(client, keys, cabinets)
        await wait_modes(client, cabinets, "central", within=20, pattern=GREEN_WAVE)
        stop_beats.set()
        await beats
    before = time.time()
    await asyncio.sleep(2)

    # 1. The broker stops: every agent is local within the timeout + 1 s.
    stopped_at = time.time()
    broker.stop()
    for cabinet in cabinets:
        cabinet_local = await first_record_after(cabinet, "mode_changed", stopped_at, after="local")
        took = cabinet_local - stopped_at
        report.append(f"{cabinet.device}: broker stop -> local in {took:.3f} s")
        assert took <= HEARTBEAT_TIMEOUT_S + 1, report[-1]
    await asyncio.sleep(30)  # three cycles of pattern 1 (100 s) at 10x
    for index, cabinet in enumerate(cabinets):
        # Before, through and after the fallback: every coordinated green on its offset.
        since_sim = _sim_time(cabinet, before - 5)
        errors = offset_errors(cabinet, index, since_sim)
        assert len(errors) >= 3, f"{cabinet.device}: too few coordinated greens ({len(errors)})"
        worst = max(errors)
        report.append(f"{cabinet.device}: {len(errors)} coordinated greens, worst {worst:.2f} s")
        assert worst <= TOLERANCE_S, report[-1]

    # 2. The broker returns: the agents stay local while heartbeats flow.
    broker.start()
    async with central(broker) as client:
        stop_beats = asyncio.Event()
        beats = asyncio.create_task(heartbeats(client, keys, stop_beats))
        await asyncio.sleep(3)
        found = await states(client, cabinets)
        assert {d: s["mode"] for d, s in found.items()} == {c.device: "local" for c in cabinets}
        assert all(s["central"]["connected"] for s in found.values())

        # 3. A new command: central again. Heartbeats stop, the broker stays up: fallback.
        await command_all(client, keys, cabinets)
        await wait_modes(client, cabinets, "central", within=20)
        stop_beats.set()
        last_beat = await beats
        for cabinet in cabinets:
            at = await first_record_after(cabinet, "mode_changed", last_beat, after="local")
            took = at - last_beat
            report.append(f"{cabinet.device}: last heartbeat -> local in {took:.3f} s")
            assert took <= HEARTBEAT_TIMEOUT_S + 1, report[-1]

        # 4. SIGKILL while central drives: the controller's backup timer takes over.
        stop_beats = asyncio.Event()
        beats = asyncio.create_task(heartbeats(client, keys, stop_beats))
        await command_all(client, keys, cabinets)
        victim = cabinets[2]
        victim.stop(signal.SIGKILL)
        killed_at = time.time()
        controller = victim.controller()
        await controller.open()
        try:
            async with asyncio.timeout(BACKUP_TIME_S / SPEED + 10):
                while True:
                    status = await controller.read_status()
                    if status.commanded == "standby" and status.control is ControlSource.BACKUP:
                        break
                    await asyncio.sleep(0.2)
        finally:
            await controller.close()
        report.append(
            f"{victim.device}: agent SIGKILLed -> controller backup mode after "
            f"{time.time() - killed_at:.1f} s (backup time {BACKUP_TIME_S / SPEED:.0f} s)"
        )
        stop_beats.set()
        await beats
    print("\n" + "\n".join(report))


def _sim_time(cabinet: Cabinet, wall: float) -> float:
    """The simulated clock at wall time ``wall`` (from the sim's shared-clock arguments)."""
    start = datetime.fromisoformat(START.replace("Z", "+00:00")).timestamp()
    anchor = float(cabinet.sim.proc.args[cabinet.sim.proc.args.index("--start-at-wall") + 1])  # type: ignore[union-attr,index,arg-type]
    return start + SPEED * (wall - anchor)
