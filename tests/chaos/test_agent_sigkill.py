"""Chaos: the agent killed with SIGKILL at random moments while it handles commands.

Each round central publishes one command (``plan.load``, ``control.pattern``
or ``control.release``), waits a random 0-``MAX_DELAY_MS`` ms, and the agent
is SIGKILLed: before the command arrived, while it is verified, stored,
written to the controller or acknowledged. With the agent dead its state
directory must read cleanly with the agent's own loaders (the audit chain
verifies, the outbox needs no repair). Started again, the agent must come
online, be in ``local`` with the controller released (SPEC §6: a restart
never resumes a control command), finish what it had accepted (a stored
plan is written and acknowledged ``applied``; a control command cut short is
answered ``failed``, a release ``applied``) and refuse the same token again
(``E_REPLAY``) once it had seen it. At the end: no command accepted or
applied twice, no accepted command without its final ack (except an ack lost
in flight *after* the state on disk recorded the command done), no pattern
switch that no command explains, and the event numbers contiguous across
every kill.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.central.client import SignedCommand, peek_claims
from agent.central.commands import Ack, AckStatus
from agent.central.durable import DurableFile
from agent.central.replay import REPLAY_FILE, REPLAY_KIND
from agent.controller.interface import PatternCommand
from agent.supervisor.store import CommandStore
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
    outbox_last_seq,
    report,
    state_file_problems,
    switch_problems,
)
from tests.e2e.harness import REPO, Cabinet, Keys, example_plan, new_cabinet

DEVICE = "cab-chaos-kill"
DEFAULT_ROUNDS = 10
#: The kill lands this long after the command was published, at most (ms).
MAX_DELAY_MS = 120


async def commanded(cabinet: Cabinet) -> PatternCommand:
    """What the simulator's control object holds (read with a second client)."""
    controller = cabinet.controller()
    await controller.open()
    try:
        return (await controller.read_status()).commanded
    finally:
        await controller.close()


async def wait_released(cabinet: Cabinet, chaos: Chaos, *, within: float = 10) -> None:
    """Wait until the controller is released to its schedule (standby)."""
    deadline = time.monotonic() + within
    held: PatternCommand | None = None
    while time.monotonic() < deadline:
        held = await commanded(cabinet)
        if held == "standby":
            return
        await asyncio.sleep(0.05)
    raise chaos.fail(f"the restarted agent did not release the controller: it holds {held}")


def remembered(state_dir: Path) -> set[str]:
    """The command ids in the replay memory on disk."""
    loaded = DurableFile(state_dir / REPLAY_FILE, kind=REPLAY_KIND).load(lambda body: body)
    body: Any = loaded.value or {}
    return set(body.get("seen", {}))


def pattern_of(command: SignedCommand) -> int | None:
    """The pattern number a ``control.pattern`` command asks for (None: another command)."""
    pattern = peek_claims(command.token)["args"].get("pattern")
    return pattern if isinstance(pattern, int) else None


class KillRounds:
    """The rounds of one test: commands, kills, restarts, and what each showed."""

    def __init__(self, chaos: Chaos, cabinet: Cabinet, central: Central) -> None:
        self.chaos = chaos
        self.cabinet = cabinet
        self.central = central
        self.session = 0
        self.plan_version = 2
        self.last_pattern = 0
        self.sent_patterns: list[int] = []
        self.applied_patterns: list[int] = []
        #: Commands whose final ack was lost in flight, after the disk recorded them answered.
        self.lost_in_flight: list[str] = []
        #: ... of which the restarted agent's ``state`` showed the command done.
        self.shown_in_state: set[str] = set()
        self.finished = 0
        self.replays = 0
        self.refused = 0
        self.restart_s: list[float] = []

    def next_command(self) -> SignedCommand:
        rng, central = self.chaos.rng, self.central
        kind = rng.choice(("plan.load", "control.pattern", "control.pattern", "control.release"))
        if kind == "plan.load":
            return central.sign(kind, {"plan": example_plan(self.plan_version + 1)})
        if kind == "control.pattern":
            pattern = rng.choice([p for p in PATTERNS if p != self.last_pattern])
            self.sent_patterns.append(pattern)
            self.last_pattern = pattern
            return central.sign(kind, {"pattern": pattern})
        return central.sign(kind, {})

    async def one(self) -> None:
        chaos, cabinet, central = self.chaos, self.cabinet, self.central
        state_dir = cabinet.state_dir
        command = self.next_command()
        jti = command.jti
        await central.publish(command)
        delay_ms = chaos.rng.uniform(0, MAX_DELAY_MS)
        await asyncio.sleep(delay_ms / 1000)
        cabinet.stop(signal.SIGKILL)
        chaos.faults += 1
        what = f"SIGKILL {delay_ms:.0f} ms after {command.cmd} {jti}"

        # The agent is dead: its state must read cleanly, as it is.
        problems = state_file_problems(state_dir, DEVICE, agent_dead=True)
        chaos.check(not problems, f"{what}: state files: {problems}")
        store = CommandStore.open(state_dir)
        seen = jti in remembered(state_dir)
        plan, control = store.plan, store.control
        stored_plan = plan is not None and plan.jti == jti
        stored_control = control is not None and control.jti == jti
        answered_on_disk = bool(
            (plan is not None and stored_plan and plan.answered)
            or (control is not None and stored_control and control.answered)
        )
        if stored_plan:
            self.plan_version += 1

        # Started again: online, the controller released, mode local.
        started, restarted_at = time.monotonic(), time.time()
        cabinet.start()
        self.session = await central.wait_online(after=self.session)
        await wait_released(cabinet, chaos)
        self.restart_s.append(time.monotonic() - started)
        await central.until(
            "state from the restarted agent: mode local",
            lambda: central.state().get("ts", 0) >= restarted_at and central.mode() == "local",
            within=10,
        )

        # What was accepted before the kill is answered now (or was, before it).
        if stored_plan or stored_control:
            try:
                # (Not a rejection: the broker may deliver the command again, E_REPLAY.)
                # Answered before the kill: its ack, if it got out, is here by now.
                await central.until(
                    f"{command.cmd} applied or failed",
                    lambda: central.finished(jti) is not None,
                    within=2 if answered_on_disk else 10,
                )
            except AssertionError as err:
                if not answered_on_disk:
                    acks = [f"{a.status} {a.code}" for a in central.acks_of(jti)]
                    raise chaos.fail(f"{what}: stored, never answered ({acks}): {err}") from None
                self.lost_in_flight.append(jti)
                # Then ``state`` (retained, the restarted agent's) says it is done.
                section = central.state().get("plan" if stored_plan else "control") or {}
                if section.get("jti") == jti and section.get("applied") is True:
                    self.shown_in_state.add(jti)
            else:
                final = central.finished(jti)
                if final is not None and final.ts >= restarted_at:
                    self.finished += 1

        # The same token again: refused once the agent had seen it.
        before = len(central.acks_of(jti))
        await central.publish(command)
        self.replays += 1

        def answers() -> list[Ack]:
            news = central.acks_of(jti)[before:]
            return [a for a in news if a.status in (AckStatus.REJECTED, AckStatus.ACCEPTED)]

        await central.until("an answer to the replayed token", lambda: bool(answers()), within=10)
        answer = answers()[0]
        if seen:
            # A plan.load's version is no longer newer either: that check comes first.
            codes = {"E_REPLAY", "E_STALE_VERSION"} if command.cmd == "plan.load" else {"E_REPLAY"}
            chaos.check(
                answer.status is AckStatus.REJECTED and answer.code in codes,
                f"{what}: the id was remembered, the replay got {answer.status} {answer.code}; "
                f"every ack of it: {[(str(a.status), str(a.code)) for a in central.acks_of(jti)]}",
            )
            self.refused += 1
        if answer.status is AckStatus.ACCEPTED:
            await central.until(
                "the replay applied or failed",
                lambda: central.finished(jti) is not None,
                within=10,
            )
        final = central.finished(jti)
        if final is not None and final.status is AckStatus.APPLIED:
            pattern = pattern_of(command)
            if pattern is not None:
                self.applied_patterns.append(pattern)
            if command.cmd == "plan.load" and not stored_plan:
                self.plan_version += 1  # not stored before the kill: the replay loaded it


@pytest.mark.timeout(240)
async def test_sigkill_at_random_moments_of_command_handling(
    tmp_path: Path,
    broker: Mosquitto,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    chaos = make_chaos("agent-sigkill", DEFAULT_ROUNDS)
    cabinet = new_cabinet(tmp_path / DEVICE, DEVICE, broker, keys, central_config=CENTRAL_CONFIG)
    state_dir = cabinet.state_dir
    try:
        async with Central(broker, cabinet, keys.signer()) as central:
            cabinet.start()
            rounds = KillRounds(chaos, cabinet, central)
            rounds.session = await central.wait_online(after=0)
            _, ack = await central.command("plan.load", {"plan": example_plan(2)})
            chaos.check(ack.status is AckStatus.APPLIED, f"the first plan: {ack}")
            for number in range(1, chaos.rounds + 1):
                chaos.round = number
                await rounds.one()

            # Every event forwarded; then stopped for good: the numbers on disk.
            await central.caught_up()
            problems = command_problems(central, unfinished_ok=rounds.lost_in_flight)
            # An ack is not kept across a restart (docs/central-integration.md §7.2): the
            # durable record of a final ack lost with the process is its command event,
            # or state (plan.jti / control.jti and applied).
            finals = {
                e.get("jti")
                for e in central.event_bodies()
                if e.get("kind") == "command" and e.get("status") in ("applied", "failed")
            }
            problems += [
                f"{jti}: final ack lost in flight, and neither a final command event "
                "nor the restarted agent's state shows it done"
                for jti in rounds.lost_in_flight
                if jti not in finals and jti not in rounds.shown_in_state
            ]
            problems += event_problems(central)
            problems += switch_problems(cabinet, rounds.sent_patterns, rounds.applied_patterns)
            chaos.check(not problems, "\n".join(problems))
            cabinet.stop()
            last_seq = outbox_last_seq(state_dir)
            chaos.check(
                last_seq >= central.highest,
                f"the outbox holds {last_seq} events, central saw {central.highest}",
            )
            problems = state_file_problems(state_dir, DEVICE, agent_dead=True)
            chaos.check(not problems, f"state files at the end: {problems}")
            verified = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "agent.cli.main", "audit", "verify",
                 "--config", str(cabinet.config_path)],
                capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
            )  # fmt: skip
            chaos.check(
                verified.returncode == 0 and "chain intact" in verified.stdout,
                f"greenwave audit verify: {verified.stdout}{verified.stderr}",
            )
            starts = [e for e in central.event_bodies() if e.get("kind") == "agent_start"]
            chaos.check(
                len(starts) == chaos.rounds + 1,
                f"{len(starts)} agent_start events for {chaos.rounds + 1} starts",
            )
            commands = {s.body.get("jti") for s in central.acks} - {None}
    finally:
        cabinet.stop()
        cabinet.sim.stop()
    chaos.checked = [
        f"{len(commands)} commands: none accepted or applied twice, every accepted one "
        "answered applied or failed; "
        f"{rounds.finished} cut short by the kill and answered after the restart, "
        f"{len(rounds.lost_in_flight)} final ack(s) lost with the killed process after the disk "
        "recorded them answered (each shown done by its command event or state)",
        f"{rounds.replays} tokens replayed after restarts: {rounds.refused} refused as seen, "
        "the others taken once",
        f"pattern switches {collapse(rounds.applied_patterns)} only, as commanded",
        f"events 1..{central.highest} contiguous across {chaos.rounds + 1} starts",
        f"state files read and audit chain intact after each of {chaos.faults} kills "
        "(greenwave audit verify at the end)",
        f"online, controller released and mode local within {max(rounds.restart_s):.1f} s "
        "max of each restart",
    ]
    report(chaos, capsys, record_property)
