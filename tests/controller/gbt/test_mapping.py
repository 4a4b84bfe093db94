"""Plan → GB/T 20999 objects, and GB/T status → the status value (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from agent.controller.gbt20999.mapping import (
    ControllerShape,
    NotRepresentable,
    RawStatus,
    SchemeLayout,
    StatusLayout,
    center_control,
    commanded,
    decode_status,
    parse_status,
    plan_writes,
    same_value,
    show_value,
    stage_plan,
    status_addresses,
)
from agent.controller.interface import ControlSource, FlashState, Light, PedLight
from agent.errors import ControllerError
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.objects import LightState, RunMode, StageType
from tests.plan.factory import base_plan, build
from tests.simfront.helpers import example_plan

from .plans import gbt_example_plan


def _writes(shape: ControllerShape | None = None) -> dict[str, Any]:
    """Every write of the whole-second example plan, decoded, by name."""
    return {w.name: w.attribute.decode(w.value) for w in plan_writes(gbt_example_plan(), shape)}


# ---------------------------------------------------------------------- stages


def test_stages_come_from_the_rings_side_by_side() -> None:
    plan = stage_plan(gbt_example_plan())
    stages = [sorted(phases) for phases in plan.stages]
    # Pattern 1: 1 (18) and 5 (16) lead 2 and 6; 3 (15) and 7 (14) lead 4 and 8.
    # A served crossing's pedestrian phase (16 + n) joins its vehicle phase's stages.
    assert stages[:6] == [[1, 5], [1, 6, 22], [2, 6, 18, 22], [3, 7], [3, 8, 24], [4, 8, 20, 24]]
    scheme_1 = plan.schemes[0]
    assert scheme_1.chain == (1, 2, 3, 4, 5, 6)
    assert scheme_1.times == (16, 2, 52, 14, 1, 35)
    assert sum(scheme_1.times) == scheme_1.cycle_s == 120
    assert scheme_1.offset_s == 30
    # The first coordinated green (phase 6, at 16 s) begins with stage 2: the offset's reference.
    assert scheme_1.coordinated == 2


def test_equal_lefts_need_fewer_stages_and_numbers_are_shared() -> None:
    plan = stage_plan(gbt_example_plan())
    scheme_2 = plan.schemes[1]  # lefts 1 and 5 both 13 s: no overlap stage
    assert scheme_2.chain == (1, 3, 4, 6)
    assert scheme_2.times == (13, 38, 12, 27)
    assert sum(scheme_2.times) == scheme_2.cycle_s == 90
    assert scheme_2.coordinated == 2  # 2 and 6 start together with stage 3


def test_a_lagging_left_gives_its_own_stages() -> None:
    plan = stage_plan(gbt_example_plan())
    scheme_3 = plan.schemes[2]  # sequence [[2, 1, 3, 4], [5, 6, 7, 8]]: phase 2 leads
    phases = [sorted(plan.stages[n - 1]) for n in scheme_3.chain]
    assert phases[:3] == [[2, 5, 18], [2, 6, 18, 22], [1, 6, 22]]
    assert scheme_3.times[:3] == (18, 40, 20)
    assert scheme_3.coordinated == 1  # phase 2's green starts the cycle
    assert sum(scheme_3.times) == 130


def test_cycle_time_counts_from_the_coordinated_stage() -> None:
    scheme = SchemeLayout(
        scheme=1, cycle_s=120, offset_s=30, chain=(1, 2, 3), times=(16, 2, 102), coordinated=2
    )
    assert scheme.cycle_time(2, 0) == 0
    assert scheme.cycle_time(3, 5) == 7
    assert scheme.cycle_time(1, 1) == 120 - 16 + 1
    assert scheme.cycle_time(9, 0) is None


# ---------------------------------------------------------------------- writes


def test_phase_times_in_whole_seconds_with_their_transitions() -> None:
    writes = _writes()
    assert writes["phase.min_green[2]"] == 12
    assert writes["phase.max_green_1[1]"] == 20
    assert writes["phase.lose_1.colour[2]"] == LightState.YELLOW
    assert writes["phase.lose_1.time[2]"] == 5
    assert writes["phase.lose_2.colour[4]"] == LightState.RED
    assert writes["phase.lose_2.time[4]"] == 2
    assert writes["phase.lose_3.colour[4]"] == 0
    assert writes["phase.gain_1.colour[1]"] == 0  # NEMA phases gain right of way at once


def test_a_crossing_is_a_pedestrian_phase_of_its_own() -> None:
    writes = _writes()
    assert writes["phase.min_green[18]"] == 7  # phase 2's walk
    assert writes["phase.lose_1.colour[18]"] == LightState.GREEN_FLASH
    assert writes["phase.lose_1.time[18]"] == 18  # phase 2's ped clearance
    assert writes["phase.lose_2.colour[18]"] == LightState.RED
    assert "phase.min_green[17]" not in writes  # phase 1 has no crossing
    assert not any(name.startswith("phase.light_groups") for name in writes)  # wiring: read only


def test_schemes_day_plans_and_schedule() -> None:
    writes = _writes()
    assert writes["stage.phases[3]"] == frozenset({2, 6, 18, 22})
    assert writes["scheme.cycle[2]"] == 90
    assert writes["scheme.offset[2]"] == 12
    assert writes["scheme.coordinated_stage[2]"] == 2
    assert writes["scheme.stage_chain[2]"][:5] == (1, 3, 4, 6, 0)
    assert writes["scheme.stage_types[2]"][:5] == (StageType.FIXED,) * 4 + (0,)
    starts = writes["day_plan.start_times[1]"]
    assert starts[:3] == ((0, 0), (6, 0), (6, 30))
    assert writes["day_plan.schemes[1]"][:3] == (0, 2, 1)
    modes = writes["day_plan.run_modes[1]"][:3]
    assert modes == (RunMode.LOCAL_ACTUATED, RunMode.LOCAL_COORDINATED, RunMode.LOCAL_COORDINATED)
    assert writes["schedule.weekdays[1]"] == frozenset({1, 2, 3, 4, 5})  # Monday-Friday
    assert writes["schedule.weekdays[2]"] == frozenset({0, 6})
    assert writes["schedule.months[1]"] == frozenset(range(1, 13))
    assert writes["schedule.priority[2]"] == 2
    assert writes["schedule.day_plan[2]"] == 2


def test_stale_rows_are_cleared() -> None:
    shape = ControllerShape(
        live_stages=frozenset({1, 8, 9}),
        live_schemes=frozenset({1, 7}),
        live_schedule=frozenset({1, 2, 5}),
    )
    writes = _writes(shape)
    assert writes["stage.phases[8]"] == frozenset()
    assert writes["stage.phases[9]"] == frozenset()
    assert writes["scheme.cycle[7]"] == 0
    assert writes["scheme.stage_chain[7]"] == (0,) * 16
    assert writes["schedule.day_plan[5]"] == 0
    assert "scheme.cycle[5]" not in writes


def test_tenths_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(NotRepresentable) as caught:
        plan_writes(example_plan())
    error = caught.value
    assert error.code == "E_CONTROLLER"
    assert "phase 2 yellow 4.5 s: GB/T phase.lose_1.time holds whole seconds" in error.problems
    assert "phase 1 red clearance 1.5 s: GB/T phase.lose_2.time holds whole seconds" in (
        error.problems
    )


def test_a_controller_too_small_is_named() -> None:
    with pytest.raises(NotRepresentable) as caught:
        plan_writes(gbt_example_plan(), ControllerShape(stage_count=4, scheme_count=2))
    assert "the plan needs 7 stages, the controller holds 4" in caught.value.problems
    assert "pattern 3: the controller has only 2 schemes" in caught.value.problems


def test_a_factory_plan_round_trips_through_the_stage_numbers() -> None:
    plan = build(base_plan())
    layout = stage_plan(plan)
    for scheme in layout.schemes:
        assert sum(scheme.times) == scheme.cycle_s
        assert all(1 <= n <= len(layout.stages) for n in scheme.chain)


# ---------------------------------------------------------------------- values


def test_values_read_as_a_technician_would() -> None:
    assert show_value(gbt.SCHEME_CYCLE, gbt.SCHEME_CYCLE.encode(120)) == "120"
    assert show_value(gbt.STAGE_PHASES, gbt.STAGE_PHASES.encode(frozenset({6, 2}))) == "{2, 6}"
    assert show_value(gbt.SCHEME_STAGE_CHAIN, gbt.SCHEME_STAGE_CHAIN.encode((1, 2))) == "1 2"
    assert show_value(gbt.CENTER_RUN_MODE, b"\x13") == "center_coordinated (0x13)"
    assert show_value(gbt.SCHEME_CYCLE, b"\x01") == "01"  # wrong size: raw
    assert same_value(gbt.SITE, gbt.SITE.encode("路口"), "路口".encode())  # padding aside
    assert not same_value(gbt.SCHEME_CYCLE, gbt.SCHEME_CYCLE.encode(1), gbt.SCHEME_CYCLE.encode(2))


# ---------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("command", "control"),
    [
        (2, (0, 2, 0x13)),
        ("free", (0, 0, 0x22)),
        ("flash", (0, 0, 0x31)),
        ("standby", (0, 0, 0x11)),
    ],
)
def test_commands_are_center_control(command: Any, control: tuple[int, int, int]) -> None:
    assert center_control(command) == control
    assert commanded(control[1], control[2]) == command


def test_no_center_control_commands_standby() -> None:
    assert commanded(0, 0) == "standby"
    with pytest.raises(ValueError, match="not a pattern command"):
        center_control(254)


# ---------------------------------------------------------------------- status

LAYOUT = StatusLayout(
    vehicle={1: (1,), 2: (2,), 6: (6,)},
    pedestrian={2: (13,), 6: (15,)},
    stages=(1, 2, 3),
)


def _raw(**changes: Any) -> RawStatus:
    values: dict[str, Any] = {
        "run_mode": 0x23,
        "scheme": 1,
        "stage": 3,
        "center_scheme": 0,
        "center_mode": 0,
        "modules": frozenset(),
        "utc_s": 1_704_092_400,
        "light_groups": {1: 0x10, 2: 0x20, 6: 0x30, 13: 0x21, 15: 0x10},
        "elapsed": {3: 5},
    }
    values.update(changes)
    return RawStatus(**values)


def test_the_poll_is_one_frame_of_status_objects() -> None:
    addresses = status_addresses(LAYOUT)
    assert [gbt.describe(a) for a in addresses[:7]] == [
        "control_status.run_mode[1]",
        "control_status.scheme[1]",
        "control_status.stage[1]",
        "center_control.scheme[1]",
        "center_control.run_mode[1]",
        "device_status.modules",
        "device_status.utc",
    ]
    assert len(addresses) == 7 + 5 + 3  # light groups 1, 2, 6, 13, 15; stages 1-3


def test_light_groups_become_phase_indications() -> None:
    status = decode_status(LAYOUT, _raw(), received_at=1.0, cycle_time_s=12)
    assert [(p.phase, p.light, p.ped) for p in status.phases] == [
        (1, Light.RED, PedLight.DARK),
        (2, Light.GREEN, PedLight.PED_CLEAR),  # pedestrian green flash
        (6, Light.YELLOW, PedLight.DONT_WALK),
    ]
    assert status.pattern == 1
    assert status.commanded == "standby"
    assert status.control is ControlSource.TIMEBASE
    assert status.flash is FlashState.NOT_FLASH
    assert status.free_status == "not_free"
    assert status.cycle_time_s == 12
    assert status.controller_time == 1_704_092_400
    assert status.backup_time_s is None


@pytest.mark.parametrize(
    ("changes", "pattern", "flash"),
    [
        ({"run_mode": 0x31, "scheme": 0, "center_mode": 0x31}, "flash", FlashState.AUTOMATIC),
        ({"run_mode": 0x31, "scheme": 0, "modules": frozenset({1})}, "flash", FlashState.STARTUP),
        ({"run_mode": 0x31, "scheme": 0, "modules": frozenset({0})}, "flash", FlashState.MMU),
        ({"run_mode": 0x22, "scheme": 0}, "free", FlashState.NOT_FLASH),
        ({"run_mode": 0x32, "scheme": 0}, "none", FlashState.NOT_FLASH),
    ],
)
def test_run_modes_become_pattern_and_flash(
    changes: dict[str, Any], pattern: Any, flash: FlashState
) -> None:
    status = decode_status(LAYOUT, _raw(**changes), received_at=1.0)
    assert status.pattern == pattern
    assert status.flash is flash


@pytest.mark.parametrize(
    ("center_mode", "dropped", "source"),
    [
        (0x13, False, ControlSource.SYSTEM),
        (0x11, False, ControlSource.STANDBY),
        (0, False, ControlSource.TIMEBASE),
        (0, True, ControlSource.BACKUP),
    ],
)
def test_center_control_says_who_is_in_control(
    center_mode: int, dropped: bool, source: ControlSource
) -> None:
    raw = _raw(center_mode=center_mode, center_scheme=1 if center_mode == 0x13 else 0)
    status = decode_status(LAYOUT, raw, received_at=1.0, dropped=dropped)
    assert status.control is source


def test_a_forced_scheme_not_running_is_not_called_command_free() -> None:
    raw = _raw(run_mode=0x22, scheme=0, center_mode=0x13, center_scheme=4)
    status = decode_status(LAYOUT, raw, received_at=1.0)
    assert (status.pattern, status.commanded, status.free_status) == ("free", 4, "other")
    assert decode_status(LAYOUT, _raw(run_mode=0x22, scheme=0), received_at=1).free_status == (
        "command_free"
    )


def test_parsing_a_poll_and_its_mistakes() -> None:
    values = [
        gbt.RUN_MODE.encode(0x13),
        gbt.RUN_SCHEME.encode(2),
        gbt.RUN_STAGE.encode(3),
        gbt.CENTER_SCHEME.encode(2),
        gbt.CENTER_RUN_MODE.encode(0x13),
        gbt.MODULE_FAULTS.encode(frozenset()),
        gbt.CLOCK_UTC.encode(datetime(2024, 1, 1, 7, 0, 0)),
        *(gbt.LIGHT_GROUP_STATE.encode(0x10) for _ in range(5)),
        *(gbt.STAGE_ELAPSED.encode(n) for n in (0, 0, 9)),
    ]
    raw = parse_status(LAYOUT, values)
    assert (raw.run_mode, raw.scheme, raw.stage, raw.elapsed[3]) == (0x13, 2, 3, 9)
    assert raw.utc_s == 1_704_092_400
    with pytest.raises(ControllerError, match="answered 14 of 15 values"):
        parse_status(LAYOUT, values[:-1])
    with pytest.raises(ControllerError, match="status poll"):
        parse_status(LAYOUT, [b"\x13\x00", *values[1:]])
