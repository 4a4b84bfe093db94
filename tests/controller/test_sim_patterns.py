"""Against the real simulator, over UDP, TCP and a pty: write a plan, command a pattern.

The simulator starts with the corridor plan; the agent writes the example
plan over it (every object confirmed by read-back), commands pattern 2 while
pattern 1's main street is green, and then sees what a technician at the
cabinet would: pattern 1 finishes its cycle (the side street is still
served), and pattern 2 starts at the next cycle boundary, on the main-street
barrier, with pattern 2's cycle.

The same scenario runs over NTCIP 1202 and over GB/T 20999 (issue 8,
acceptance 3), the latter with the example plan's clearances in whole
seconds, which is what GB/T can carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from tests.simfront.helpers import REPO

from .helpers import (
    LINKS,
    MAIN_GROUP,
    SIDE_GROUP,
    Protocol,
    Transport,
    connected_to,
    controller_url,
    green,
    lit,
    pattern_cycles,
    plan_for,
    polling,
    start_all,
    statuses_until,
)

CORRIDOR_PLAN: Final = REPO / "examples" / "plans" / "corridor-1-main-1st.json"
#: Simulated seconds per wall second: a 120 s cycle passes in 3 s, and a 10 Hz
#: poll (4 simulated seconds apart) still sees every green of a pattern.
SPEED: Final = "40"
#: A transition may lengthen a cycle by 20 % (shortway, the simulator's default).
TRANSITION_ADD: Final = 1.2
#: GB/T link supervision counts simulated seconds: at 40x its default 20 s would be half
#: a wall second of silence. This scenario is not about the link.
GBT_LINK_TIMEOUT: Final = ("--gbt-link-timeout", "3600")


@pytest.mark.usefixtures("no_leaked_tasks")
@pytest.mark.parametrize(("protocol", "transport"), LINKS)
async def test_plan_write_then_pattern_2_runs_from_the_next_cycle_boundary(
    tmp_path: Path, protocol: Protocol, transport: Transport
) -> None:
    plan = plan_for(protocol)
    pattern_1 = next(p for p in plan.patterns if p.pattern == 1)
    pattern_2 = next(p for p in plan.patterns if p.pattern == 2)
    sim = start_all(
        tmp_path,
        *("--plan", str(CORRIDOR_PLAN), "--speed", SPEED, "--no-view"),
        *(GBT_LINK_TIMEOUT if protocol == "gbt" else ()),
        protocol=protocol,
    )
    try:
        url = controller_url(sim, transport, tmp_path, protocol=protocol)
        async with connected_to(url) as ctrl:
            report = await ctrl.write_plan(plan)
            assert report.objects_verified == report.objects_written > 200

            phases = {p.phase: p for p in await ctrl.read_phases()}
            for phase in plan.phases:
                assert phases[phase.phase].yellow_s == phase.yellow
                assert phases[phase.phase].min_green_s == phase.min_green
            cycles = await pattern_cycles(ctrl, [1, 2])
            assert cycles == [int(pattern_1.cycle), int(pattern_2.cycle)]

            async with polling(ctrl) as poller:
                # Command while pattern 1's coordinated phases are green: the
                # side street is still to come in this cycle.
                await statuses_until(
                    poller, lambda s: s.pattern == 1 and green(s, (2, 6)), within=30
                )
                await ctrl.command_pattern(2)
                commanded_at = poller.latest.controller_time if poller.latest else None
                seen = await statuses_until(poller, lambda s: s.pattern == 2, within=30, then=5)
        assert "pattern=2" in sim.command("status")
    finally:
        sim.stop()

    switch = next(i for i, s in enumerate(seen) if s.pattern == 2)
    before, after = seen[:switch], seen[switch:]
    assert before, "pattern 2 must wait for the end of the running cycle"
    assert all(s.pattern == 1 and s.commanded == 2 for s in before)
    assert any(lit(s, SIDE_GROUP) for s in before), "pattern 1's cycle ran to its end"
    assert not lit(before[-1], MAIN_GROUP)
    assert not lit(after[0], SIDE_GROUP), "pattern 2 starts at the main-street barrier"
    assert all(s.pattern == 2 and s.commanded == 2 for s in after)
    # coordCycleStatus counts down the cycle: pattern 2's, not pattern 1's.
    assert all(s.cycle_time_s <= pattern_2.cycle * TRANSITION_ADD for s in after)
    assert commanded_at is not None
    assert after[0].controller_time is not None
    waited = after[0].controller_time - commanded_at
    assert 0 < waited <= pattern_1.cycle * TRANSITION_ADD + 4
