"""Against the real simulator: writes the controller does not confirm, and stale rows cleared.

The simulator's write hooks (``--refuse``, ``--alter``, ``--ignore``) play a
controller that refuses a SET, stores something else, or silently stores
nothing. Each must fail the plan load or the command with ``E_CONTROLLER``
naming the object, never pass as written and never look like a dead link.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.controller.ntcip.driver import NtcipController
from agent.errors import ControllerError, LinkDown
from agent.plan.model import Plan
from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import Integer, ObjectIdentifier
from tests.plan.factory import base_plan, build
from tests.simfront.helpers import example_plan

from .helpers import Transport, connected, controller_url, start_all

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


async def _attempt(
    tmp_path: Path, hook: tuple[str, ...], action: str, transport: Transport = "udp"
) -> ControllerError:
    """Start the simulator with ``hook``, run ``action``, return the error it raised."""
    sim = start_all(tmp_path, *hook, "--no-view")
    try:
        async with connected(controller_url(sim, transport, tmp_path)) as ctrl:
            with pytest.raises(ControllerError) as caught:
                await _run(ctrl, action)
    finally:
        sim.stop()
    error = caught.value
    assert not isinstance(error, LinkDown), f"a refusal must not look like a dead link: {error}"
    assert error.code == "E_CONTROLLER"
    return error


async def _run(ctrl: NtcipController, action: str) -> None:
    match action:
        case "example plan":
            await ctrl.write_plan(example_plan())
        case "factory plan":
            await ctrl.write_plan(_factory_plan())
        case "pattern 2":
            await ctrl.command_pattern(2)
        case "backup 60":
            await ctrl.set_backup_time(60)
        case _:
            raise AssertionError(action)


def _factory_plan() -> Plan:
    """Two patterns (cycles 100 and 80), four events in day plan 1, one in day plan 2."""
    return build(base_plan())


@pytest.mark.parametrize(
    ("hook", "action", "message"),
    [
        pytest.param(
            ("--refuse", "phaseYellowChange.2:badValue"),
            "example plan",
            "controller refused phaseYellowChange.2 = 45 (badValue)",
            id="refuse-badValue",
        ),
        pytest.param(
            ("--refuse", "patternCycleTime:genErr"),
            "example plan",
            "controller refused patternCycleTime.1 = 120 (genErr)",
            id="refuse-genErr",
        ),
        pytest.param(
            ("--refuse", "systemPatternControl:readOnly"),
            "pattern 2",
            "controller refused systemPatternControl.0 = 2 (readOnly)",
            id="refuse-readOnly",
        ),
        pytest.param(
            ("--refuse", "dayPlanActionNumberOID:noSuchName"),
            "example plan",
            "controller refused dayPlanActionNumberOID.1.1 = 1.3.6.1.4.1.1206.4.2.1.5.3.1.1.1 "
            "(noSuchName)",
            id="refuse-noSuchName",
        ),
        pytest.param(
            ("--alter", "phaseYellowChange.2=+5"),
            "example plan",
            "controller did not confirm phaseYellowChange.2: wrote 45, reads back 50",
            id="alter-yellow",
        ),
        pytest.param(
            ("--alter", "systemPatternControl=+1"),
            "pattern 2",
            "controller did not confirm systemPatternControl.0: wrote 2, reads back 3",
            id="alter-pattern",
        ),
        pytest.param(
            ("--ignore", "patternCycleTime.2"),
            "factory plan",
            "controller did not confirm patternCycleTime.2: wrote 80, reads back 90",
            id="ignore-cycle",
        ),
        pytest.param(
            ("--ignore", "systemPatternControl"),
            "pattern 2",
            "controller did not confirm systemPatternControl.0: wrote 2, reads back 0",
            id="ignore-pattern",
        ),
        pytest.param(
            ("--ignore", "unitBackupTime"),
            "backup 60",
            "controller did not confirm unitBackupTime.0: wrote 60, reads back 0",
            id="ignore-backup",
        ),
    ],
)
async def test_an_unconfirmed_write_fails_naming_the_object(
    tmp_path: Path, hook: tuple[str, ...], action: str, message: str
) -> None:
    error = await _attempt(tmp_path, hook, action)
    assert str(error) == message


async def test_a_refusal_over_pmpp_names_the_object_too(tmp_path: Path) -> None:
    error = await _attempt(
        tmp_path, ("--refuse", "phaseYellowChange.2:badValue"), "example plan", transport="pty"
    )
    assert "phaseYellowChange.2" in str(error)
    assert "badValue" in str(error)


@pytest.mark.parametrize("transport", ["udp", "socket"])
async def test_plan_write_clears_stale_rows_with_action_0_0(
    tmp_path: Path, transport: Transport
) -> None:
    """The example plan has 4 patterns and 7 + 4 day-plan events; the factory plan 2 and 4 + 1."""
    dropped_events = [(1, 5), (1, 6), (1, 7), (2, 2), (2, 3), (2, 4)]
    actions = [mib.DAY_PLAN_ACTION_NUMBER_OID.instance(d, e) for d, e in dropped_events]
    hours = [mib.DAY_PLAN_HOUR.instance(d, e) for d, e in dropped_events]
    cycles = [mib.PATTERN_CYCLE_TIME.instance(p) for p in (3, 4)]
    sim = start_all(tmp_path, "--no-view")
    try:
        async with connected(controller_url(sim, transport, tmp_path)) as ctrl:
            before = await ctrl.client.get(actions + hours + cycles)
            assert all(v != ObjectIdentifier((0, 0)) for v in before[: len(actions)])

            report = await ctrl.write_plan(_factory_plan())
            assert report.objects_verified == report.objects_written

            after = await ctrl.client.get(actions + hours + cycles)
            assert after[: len(actions)] == [ObjectIdentifier((0, 0))] * len(actions)
            assert after[len(actions) :] == [Integer(0)] * (len(hours) + len(cycles))

            # And back: the rows the example plan uses are filled again.
            await ctrl.write_plan(example_plan())
            assert await ctrl.client.get(actions + hours + cycles) == before
    finally:
        sim.stop()


@pytest.mark.parametrize("transport", ["udp", "socket", "pty"])
async def test_requests_are_sized_to_what_the_link_carries(
    tmp_path: Path, transport: Transport
) -> None:
    """With no varbind limit, every PDU is still cut to the link's message size.

    PMPP carries 484 octets, UDP 1472: a 190-object SET must be split by size,
    or the simulator (like a controller) cannot even answer ``tooBig``.
    """
    sim = start_all(tmp_path, "--no-view")
    try:
        url = controller_url(sim, transport, tmp_path, "max_varbinds=255")
        async with connected(url) as ctrl:
            report = await ctrl.write_plan(_factory_plan())
            assert report.objects_verified == report.objects_written > 150
            assert ctrl.client.counters.size_splits > 0
            assert ctrl.client.counters.timeouts == 0
    finally:
        sim.stop()
