"""An agent killed between ``accepted`` and its final ack answers the command once after restart.

Found by the chaos tests (``tests/chaos/test_agent_sigkill.py``): a command
acknowledged ``accepted`` whose agent was SIGKILLed before the controller
confirmed it was never answered again -- a stored plan was written by the
restarted agent but never acknowledged ``applied``; a stored control command
or release was silently dropped. The restarted agent (a second
:class:`CommandHandler` on the same state directory) now answers it once: the
plan ``applied`` when written, a control command ``failed`` (a restart never
resumes one, SPEC §6), a release ``applied`` once the controller holds standby.
"""

from __future__ import annotations

import json
import time

from agent.central.commands import AckStatus
from agent.central.durable import DurableFile
from agent.plan.limits import SiteLimits
from agent.plan.model import Plan
from agent.supervisor.commands import CommandHandler
from agent.supervisor.store import CONTROL_FILE, CommandStore, StoredControl
from tests.supervisor.conftest import AckLog, Rig
from tests.supervisor.test_commands import example, load, send


def restarted(rig: Rig) -> tuple[CommandHandler, AckLog]:
    """The command handler of an agent started again on the same state directory."""
    acks = AckLog()
    handler = CommandHandler(
        device_id="cabinet-17",
        verifier=rig.world.verifier,
        controller=rig.controller,
        status=rig.poller,
        store=CommandStore.open(rig.world.state_dir),
        limits=SiteLimits(),
        acks=acks,
        events=lambda event: None,
    )
    return handler, acks


def stored_plan(version: int) -> Plan:
    return Plan.model_validate_json(json.dumps(example(version)))


async def test_a_plan_stored_before_the_kill_is_written_and_acknowledged_once(rig: Rig) -> None:
    CommandStore.open(rig.world.state_dir).store_plan(stored_plan(7), jti="plan-7", now=time.time())
    handler, acks = restarted(rig)
    await handler._reconcile()
    assert acks.of("plan-7") == [("applied", "OK")]
    await handler._reconcile()  # the controller link coming back later: not again
    assert acks.of("plan-7") == [("applied", "OK")]
    plan = CommandStore.open(rig.world.state_dir).plan
    assert plan is not None
    assert (plan.plan.version, plan.applied, plan.answered) == (7, True, True)
    # Killed before its version was recorded: the same version again is no longer newer.
    assert rig.world.verifier.plan_version.version == 7
    again = send(rig, "plan.load", args={"plan": example(7)})
    assert (await rig.acks.wait(again, AckStatus.REJECTED)).code == "E_STALE_VERSION"


async def test_a_control_command_cut_short_is_answered_failed_once_not_resumed(rig: Rig) -> None:
    await load(rig)
    store = CommandStore.open(rig.world.state_dir)
    store.store_control(StoredControl(jti="run-2", pattern=2, accepted_at=time.time()))
    handler, acks = restarted(rig)
    await handler._reconcile()
    await handler._reconcile()
    assert acks.of("run-2") == [("failed", "E_CONTROLLER")]
    assert "never resumes" in acks.acks[0].detail
    assert (await rig.controller.read_status()).commanded == "standby"


async def test_a_release_cut_short_is_carried_out_and_answered_once(rig: Rig) -> None:
    await load(rig)
    await rig.controller.command_pattern(3)
    store = CommandStore.open(rig.world.state_dir)
    store.store_control(StoredControl(jti="release-1", pattern=None, accepted_at=time.time()))
    handler, acks = restarted(rig)
    await handler._reconcile()
    await handler._reconcile()
    assert acks.of("release-1") == [("applied", "OK")]
    assert (await rig.controller.read_status()).commanded == "standby"


async def test_commands_answered_before_the_kill_are_not_answered_again(rig: Rig) -> None:
    await load(rig)
    jti = send(rig, "control.pattern", args={"pattern": 2})
    await rig.acks.wait(jti, AckStatus.APPLIED)
    control = CommandStore.open(rig.world.state_dir).control
    assert control is not None
    assert (control.applied, control.answered) == (True, True), "survives a SIGKILL"
    handler, acks = restarted(rig)
    await handler._reconcile()
    assert acks.acks == []


async def test_state_files_of_an_older_agent_are_not_answered(rig: Rig) -> None:
    old = {"jti": "old-1", "pattern": 2, "activate_at": None, "lease_s": None,
           "accepted_at": time.time() - 3600, "applied": False}  # fmt: skip
    DurableFile(rig.world.state_dir / CONTROL_FILE, kind="control").write(old)
    handler, acks = restarted(rig)
    await handler._reconcile()
    assert acks.acks == []
