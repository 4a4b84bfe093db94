"""Chaos: the broker restarted (SIGTERM, or SIGKILL) while central drives with signed commands.

Each round central takes control with a ``control.pattern`` (heartbeats flow
all along: the mode must be ``central``), publishes a second, different
pattern and, a random 0-``MAX_DELAY_MS`` ms later, the broker goes down --
stopped cleanly or killed -- for a random 0.2-1 s, then comes back on the
same port with its persistence. Each time the agent must fall back to
``local`` within a second of losing the broker (measured from its own log)
and release the controller, reconnect by itself, and not return to
``central`` by itself. At the end: every command acknowledged ``accepted``
was answered ``applied`` or ``failed`` exactly once, the controller's control
object only ever switched to patterns that commands asked for, each once, the
events are contiguous from 1 with no gap or reused number, and the state files
read with the agent's own loaders.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent.central.commands import AckStatus
from tests.broker import Mosquitto
from tests.chaos.rig import (
    CENTRAL_CONFIG,
    PATTERNS,
    Central,
    Chaos,
    collapse,
    command_problems,
    event_problems,
    make_chaos,
    report,
    state_file_problems,
    switch_problems,
)
from tests.e2e.harness import Cabinet, Keys, example_plan, new_cabinet

DEVICE = "cab-chaos-broker"
DEFAULT_ROUNDS = 8
#: The broker goes down this long after the in-flight command was published, at most (ms).
MAX_DELAY_MS = 150
#: SPEC §6: central lost -> the controller in local within one second.
FALLBACK_WITHIN_S = 1.0
#: ... and the controller holding standby (the write and its read-back) soon after.
RELEASED_WITHIN_S = 3.0


def log_times(lines: str, event: str, **match: Any) -> list[float]:
    """Epoch times of the JSON log records named ``event`` whose fields match."""
    found = []
    for line in lines.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") != event:
            continue
        if any(record.get(key) != value for key, value in match.items()):
            continue
        found.append(datetime.fromisoformat(record["timestamp"]).timestamp())
    return found


def release_times(cabinet: Cabinet) -> list[float]:
    """When the simulator took ``systemPatternControl = 0`` (standby), epoch s."""
    return log_times(cabinet.sim.log(), "snmp_set", writes="systemPatternControl.0=0")


class BrokerRounds:
    """The rounds of one test and what they measured."""

    def __init__(self, chaos: Chaos, cabinet: Cabinet, broker: Mosquitto, central: Central):
        self.chaos = chaos
        self.cabinet = cabinet
        self.broker = broker
        self.central = central
        self.session = 0
        self.last_pattern = 0
        self.sent: list[int] = []
        self.applied: list[int] = []
        self.fallback_s: list[float] = []
        self.release_s: list[float] = []
        self.reconnect_s: list[float] = []
        self.kills = 0
        self.state_s: list[float] = []

    def pick(self) -> int:
        pattern = self.chaos.rng.choice([p for p in PATTERNS if p != self.last_pattern])
        self.last_pattern = pattern
        self.sent.append(pattern)
        return pattern

    async def take_control(self) -> None:
        chaos, central = self.chaos, self.central
        pattern = self.pick()
        _, final = await central.command("control.pattern", {"pattern": pattern})
        chaos.check(final.status is AckStatus.APPLIED, f"taking control: {final}")
        self.applied.append(pattern)
        await central.until(
            "state: mode central while heartbeats flow",
            lambda: central.mode() == "central",
            within=10,
        )

    async def one(self) -> None:
        chaos, central, broker, cabinet = self.chaos, self.central, self.broker, self.cabinet
        await self.take_control()
        pattern = self.pick()
        command = central.sign("control.pattern", {"pattern": pattern})
        await central.publish(command)
        await asyncio.sleep(chaos.rng.uniform(0, MAX_DELAY_MS) / 1000)
        sig = chaos.rng.choice((signal.SIGTERM, signal.SIGKILL))
        self.kills += sig == signal.SIGKILL
        down_at = time.time()
        broker.stop(sig=sig)
        chaos.faults += 1
        await asyncio.sleep(chaos.rng.uniform(0.2, 1.0))
        broker.start()
        up_at = time.time()
        what = f"broker {signal.Signals(sig).name} {time.time() - down_at:.1f} s"

        self.session = await central.wait_online(after=self.session)
        self.reconnect_s.append(time.time() - up_at)
        # Lost central at the broker's loss: local within a second, the controller released.
        local = [t for t in log_times(cabinet.log(), "mode_changed", after="local") if t >= down_at]
        chaos.check(bool(local), f"{what}: the agent never fell back to local")
        self.fallback_s.append(local[0] - down_at)
        chaos.check(
            local[0] - down_at <= FALLBACK_WITHIN_S,
            f"{what}: local {local[0] - down_at:.2f} s after the broker went down",
        )
        released = [t for t in release_times(cabinet) if t >= down_at]
        chaos.check(bool(released), f"{what}: the controller was not released")
        self.release_s.append(released[0] - down_at)
        # Measured 0.01-0.15 s; once 1.1 s on this shared 2-core machine (a Set retried):
        # a loose bound, the figure is in the summary.
        chaos.check(
            released[0] - down_at <= RELEASED_WITHIN_S,
            f"{what}: the controller released {released[0] - down_at:.2f} s after it",
        )

        # The in-flight command: once accepted, answered.
        jti = command.jti
        if central.acks_of(jti):
            await central.until(
                "the in-flight command's final ack",
                lambda: central.final(jti) is not None,
                within=15,
            )
        final = central.final(jti)
        applied_after = final is not None and final.status is AckStatus.APPLIED
        if applied_after:
            self.applied.append(pattern)
        # Never back to central by itself: local now, unless the in-flight command
        # reached the agent only after the broker returned.
        if not (applied_after and final is not None and final.ts >= up_at):
            fell_back = local[0]

            def says_local() -> bool:
                # ``ts`` is rounded to 0.1 s; a state built before the fallback and sent
                # after the broker returned is followed by the one that says local.
                return central.state().get("ts", 0) >= fell_back - 0.1 and central.mode() == "local"

            try:
                took = await central.until("state: mode local", says_local, within=10)
            except AssertionError:
                raise chaos.fail(f"{what}: mode {central.mode()} after it, not local") from None
            self.state_s.append(took)
        problems = state_file_problems(cabinet.state_dir, DEVICE, agent_dead=False)
        chaos.check(not problems, f"{what}: state files: {problems}")


@pytest.mark.timeout(240)
async def test_broker_restarts_while_central_commands(
    tmp_path: Path,
    broker: Mosquitto,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    chaos = make_chaos("broker-restart", DEFAULT_ROUNDS)
    cabinet = new_cabinet(tmp_path / DEVICE, DEVICE, broker, keys, central_config=CENTRAL_CONFIG)
    try:
        async with Central(broker, cabinet, keys.signer()) as central:
            cabinet.start()
            rounds = BrokerRounds(chaos, cabinet, broker, central)
            rounds.session = await central.wait_online(after=0)
            _, ack = await central.command("plan.load", {"plan": example_plan(2)})
            chaos.check(ack.status is AckStatus.APPLIED, f"the first plan: {ack}")
            central.beating = True
            for number in range(1, chaos.rounds + 1):
                chaos.round = number
                await rounds.one()
            central.beating = False
            await central.caught_up()
            problems = command_problems(central)
            problems += event_problems(central)
            problems += switch_problems(cabinet, rounds.sent, rounds.applied)
            chaos.check(not problems, "\n".join(problems))
            commands = {s.body.get("jti") for s in central.acks} - {None}
            cabinet.stop()
            problems = state_file_problems(cabinet.state_dir, DEVICE, agent_dead=True)
            chaos.check(not problems, f"state files at the end: {problems}")
    finally:
        cabinet.stop()
        cabinet.sim.stop()
    chaos.checked = [
        f"{len(commands)} commands ({len(rounds.applied)} applied), each acked accepted "
        "and applied or failed exactly once",
        f"pattern switches {collapse(rounds.applied)} only, as commanded",
        f"events 1..{central.highest} contiguous, none reused",
        f"state readable after each of {chaos.faults} outages ({rounds.kills} broker SIGKILLs)",
        f"mode central while heartbeats flow, central->local within "
        f"{max(rounds.fallback_s):.2f} s max (controller released within "
        f"{max(rounds.release_s):.2f} s), online again within "
        f"{max(rounds.reconnect_s):.1f} s of the broker's return, never central by itself "
        f"(state says local within {max(rounds.state_s, default=0):.1f} s of it)",
    ]
    report(chaos, capsys, record_property)
