"""The command handler against the real simulator: acks, the store, read-back, refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agent.central.commands import AckStatus
from agent.central.signing import SigningKey, new_jti
from agent.supervisor.store import CommandStore
from tests.central.world import key_entry
from tests.simfront.helpers import EXAMPLE_PLAN
from tests.supervisor.conftest import Rig


def example(version: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE_PLAN.read_text())
    doc["version"] = version
    return doc


def send(rig: Rig, cmd: str, key: SigningKey | None = None, **changes: Any) -> str:
    """Sign ``cmd`` and hand it to the handler as the MQTT reader would; its jti."""
    jti = new_jti()
    rig.handler.intake("t", rig.world.token(cmd, key=key, jti=jti, **changes).encode())
    return jti


async def load(rig: Rig, version: int = 2) -> str:
    jti = send(rig, "plan.load", args={"plan": example(version)})
    await rig.acks.wait(jti, AckStatus.APPLIED, within=20)
    return jti


async def test_plan_load_is_stored_then_written_and_confirmed(rig: Rig) -> None:
    jti = await load(rig, 5)
    assert rig.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]
    stored = CommandStore.open(rig.world.state_dir).plan
    assert stored is not None
    assert stored.applied
    assert stored.plan.version == 5
    phases = {p.phase: p for p in await rig.controller.read_phases()}
    assert phases[2].yellow_s == pytest.approx(example(5)["phases"][1]["yellow"])


async def test_control_pattern_runs_pattern_two(rig: Rig) -> None:
    await load(rig)
    jti = send(rig, "control.pattern", args={"pattern": 2})
    applied = await rig.acks.wait(jti, AckStatus.APPLIED)
    assert "pattern 2" in applied.detail
    async with asyncio.timeout(5):
        await rig.poller.wait_for(lambda s: s.commanded == 2)
    # Pattern 2 starts at a cycle boundary, after the transition (sim at 10x speed).
    async with asyncio.timeout(60):
        await rig.poller.wait_for(lambda s: s.pattern == 2)
    assert rig.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]
    assert rig.handler.store.control is not None
    assert rig.handler.store.control.applied
    # On disk: the command, and that it was answered (written without an fsync: a
    # restart never resumes a control command, it only answers one left unanswered).
    control = CommandStore.open(rig.world.state_dir).control
    assert control is not None
    assert control.pattern == 2


async def test_control_pattern_needs_a_loaded_plan(rig: Rig) -> None:
    jti = send(rig, "control.pattern", args={"pattern": 2})
    ack = await rig.acks.wait(jti, AckStatus.REJECTED)
    assert ack.code == "E_NO_PLAN"
    status = rig.poller.latest
    assert status is not None
    assert status.commanded == "standby"


async def test_pattern_missing_from_the_plan_is_refused(rig: Rig) -> None:
    await load(rig)
    jti = send(rig, "control.pattern", args={"pattern": 9})
    ack = await rig.acks.wait(jti, AckStatus.REJECTED)
    assert ack.code == "E_NO_PLAN"
    assert "pattern 9" in ack.detail


async def test_unsafe_and_stale_plans_change_nothing(rig: Rig) -> None:
    await load(rig, 3)
    before = await rig.controller.read_phases()
    unsafe = example(4)
    unsafe["phases"][1]["yellow"] = 2.0
    for doc, code in ((unsafe, "E_UNSAFE"), (example(3), "E_STALE_VERSION")):
        jti = send(rig, "plan.load", args={"plan": doc})
        ack = await rig.acks.wait(jti, AckStatus.REJECTED)
        assert ack.code == code, ack.detail
    assert await rig.controller.read_phases() == before
    stored = CommandStore.open(rig.world.state_dir).plan
    assert stored is not None
    assert stored.plan.version == 3


async def test_release_gives_control_back(rig: Rig) -> None:
    await load(rig)
    jti = send(rig, "control.release", args={})
    await rig.acks.wait(jti, AckStatus.APPLIED)
    assert rig.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]


async def test_keys_update_and_diag(rig: Rig) -> None:
    new = SigningKey.generate("cmd-2")
    token = rig.world.token(
        "keys.update", args={"version": 1, "keys": [key_entry(new, not_after=4e9)]}
    )
    jti = rig.world.verifier.verify(token, remember=False).jti
    rig.handler.intake("t", token.encode())
    await rig.acks.wait(jti, AckStatus.APPLIED)
    diag_jti = send(rig, "diag.request", key=new, args={})
    ack = await rig.acks.wait(diag_jti, AckStatus.APPLIED)
    assert ack.diag == {"answer": 42}


async def test_junk_acks_are_rate_limited(rig: Rig) -> None:
    for i in range(200):
        rig.handler.intake("t", b"junk" * i)
    assert (
        rig.handler.stats.rejected == {"E_SIGNATURE": 200}
        or sum(rig.handler.stats.rejected.values()) == 200
    )
    assert len(rig.acks.acks) <= 20
    assert rig.handler.stats.acks_suppressed == 200 - len(rig.acks.acks)
    assert all(ack.jti is None for ack in rig.acks.acks)


class TestRefusingController:
    @pytest.fixture
    def sim_extra(self) -> tuple[str, ...]:
        return ("--refuse", "phaseYellowChange")

    async def test_a_refused_write_fails_with_e_controller(self, rig: Rig) -> None:
        jti = send(rig, "plan.load", args={"plan": example(2)})
        ack = await rig.acks.wait(jti, AckStatus.FAILED, within=20)
        assert ack.code == "E_CONTROLLER"
        assert "phaseYellowChange" in ack.detail
        assert rig.acks.of(jti)[0] == ("accepted", "OK")
        stored = CommandStore.open(rig.world.state_dir).plan
        assert stored is not None
        assert not stored.applied


async def test_the_fallback_plan_is_judged_stored_and_written(rig: Rig, tmp_path: Path) -> None:
    unsafe = example(7)
    unsafe["phases"][1]["yellow"] = 2.0
    bad = tmp_path / "unsafe.json"
    bad.write_text(json.dumps(unsafe))
    rig.handler.fallback_plan = bad
    # What the worker runs for reconcile(), awaited here so nothing is timed.
    await rig.handler._reconcile()
    assert rig.handler.store.plan is None, "an unsafe fallback plan is never stored"
    good = tmp_path / "fallback.json"
    good.write_text(json.dumps(example(3)))
    rig.handler.fallback_plan = good
    await rig.handler._reconcile()
    stored = CommandStore.open(rig.world.state_dir).plan
    assert stored is not None
    assert stored.applied, "written and confirmed by read-back"
    assert stored.plan.version == 3
    assert stored.jti is None
    phases = {p.phase: p for p in await rig.controller.read_phases()}
    assert phases[2].yellow_s == pytest.approx(example(3)["phases"][1]["yellow"])
