"""The real simulator over GB/T 20999: unconfirmed writes, and the controller's own fallback.

The simulator's GB/T write hooks (``--gbt-refuse``, ``--gbt-alter``,
``--gbt-ignore``) play a controller that refuses a set, stores something
else, or silently stores nothing. Each must fail the plan load or the
command with ``E_CONTROLLER`` naming the object, never pass as written and
never look like a dead link. And a controller whose upper computer falls
silent must give up center control and run its own schedule.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.controller.gbt20999.driver import GbtController
from agent.controller.interface import ControlSource
from agent.errors import ControllerError, LinkDown
from agent.protocols.gbt20999 import objects as gbt
from tests.plan.factory import base_plan, build

from ..helpers import Transport, connected_to, controller_url, start_all
from .plans import gbt_example_plan, whole_seconds

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


async def _run(ctrl: GbtController, action: str) -> None:
    match action:
        case "example plan":
            await ctrl.write_plan(gbt_example_plan())
        case "factory plan":
            await ctrl.write_plan(whole_seconds(build(base_plan())))
        case "pattern 2":
            await ctrl.command_pattern(2)
        case _:
            raise AssertionError(action)


@pytest.mark.parametrize(
    ("hook", "action", "message"),
    [
        pytest.param(
            ("--gbt-refuse", "phase.lose_1.time[2]:bad-value"),
            "example plan",
            "controller refused phase.lose_1.time[2] = 5 (0x10 value is not acceptable)",
            id="refuse-yellow",
        ),
        pytest.param(
            ("--gbt-refuse", "9.2.3"),
            "example plan",
            "controller refused scheme.cycle[1] = 120 (0x40 general error)",
            id="refuse-cycle",
        ),
        pytest.param(
            ("--gbt-refuse", "center_control.scheme:control-failed"),
            "pattern 2",
            "controller refused center_control.scheme[1] = 2 (0x50 control command failed)",
            id="refuse-pattern",
        ),
        pytest.param(
            ("--gbt-alter", "phase.lose_1.time[2]=+1"),
            "example plan",
            "controller did not confirm phase.lose_1.time[2]: wrote 5, reads back 6",
            id="alter-yellow",
        ),
        pytest.param(
            ("--gbt-alter", "center_control.scheme=+1"),
            "pattern 2",
            "controller did not confirm center_control.scheme[1]: wrote 2, reads back 3",
            id="alter-pattern",
        ),
        pytest.param(
            ("--gbt-ignore", "scheme.cycle[2]"),
            "factory plan",
            "controller did not confirm scheme.cycle[2]: wrote 80, reads back 90",
            id="ignore-cycle",
        ),
        pytest.param(
            ("--gbt-ignore", "center_control.run_mode"),
            "pattern 2",
            "controller did not confirm center_control.run_mode[1]: wrote center_coordinated "
            "(0x13), reads back 0",
            id="ignore-pattern",
        ),
    ],
)
async def test_an_unconfirmed_write_fails_naming_the_object(
    tmp_path: Path, hook: tuple[str, ...], action: str, message: str
) -> None:
    await _attempt(tmp_path, hook, action, message, "udp")


async def test_a_refusal_on_a_serial_line_names_the_object_too(tmp_path: Path) -> None:
    hook = ("--gbt-refuse", "phase.lose_1.time[2]:bad-value")
    message = "controller refused phase.lose_1.time[2] = 5 (0x10 value is not acceptable)"
    await _attempt(tmp_path, hook, "example plan", message, "pty")


async def _attempt(
    tmp_path: Path, hook: tuple[str, ...], action: str, message: str, transport: Transport
) -> None:
    sim = start_all(tmp_path, *hook, "--no-view", protocol="gbt")
    try:
        url = controller_url(sim, transport, tmp_path, protocol="gbt")
        async with connected_to(url) as ctrl:
            assert isinstance(ctrl, GbtController)
            with pytest.raises(ControllerError) as caught:
                await _run(ctrl, action)
    finally:
        sim.stop()
    error = caught.value
    assert not isinstance(error, LinkDown), f"a refusal must not look like a dead link: {error}"
    assert error.code == "E_CONTROLLER"
    assert str(error) == message


async def test_a_silent_center_hands_the_intersection_back_to_the_controller(
    tmp_path: Path,
) -> None:
    """Link supervision, GB/T's backup layer: 20 simulated seconds of silence, at 40x."""
    sim = start_all(tmp_path, "--no-view", "--speed", "40", protocol="gbt")
    try:
        url = controller_url(sim, "udp", tmp_path, protocol="gbt")
        async with connected_to(url) as ctrl:
            assert isinstance(ctrl, GbtController)
            requests = ctrl.client.counters.requests
            await ctrl.set_backup_time(60)
            assert ctrl.client.counters.requests == requests  # GB/T has no such object
            await ctrl.command_pattern(2)
            status = await ctrl.read_status()
            assert (status.commanded, status.control) == (2, ControlSource.SYSTEM)
            await ctrl.close()
            await asyncio.sleep(1.0)  # 40 simulated seconds without a word from the center
            await ctrl.open()
            status = await ctrl.read_status()
            faults = await ctrl.client.query([gbt.FAULT_COUNT.at(), gbt.FAULT_TYPE.at(1)])
    finally:
        sim.stop()
    assert (status.commanded, status.control) == ("standby", ControlSource.BACKUP)
    assert gbt.FAULT_COUNT.decode(faults[0]) == 1
    assert gbt.FAULT_TYPE.decode(faults[1]) == 0x30  # communication
