"""Unit modes: start-up flash, flash, backup timer, pattern judgement, clock."""

from __future__ import annotations

from typing import Any

import pytest

from firmware_sim.database import TimingDatabase, UnitParameters
from firmware_sim.engine import MODE_TRANSITIONS, EngineStateError, ModeTrigger
from firmware_sim.events import EventCode
from firmware_sim.status import (
    ALARM1_LOCAL_FREE,
    PATTERN_FLASH,
    PATTERN_FREE,
    SHORT_ALARM_LOCAL_OVERRIDE,
    LocalFreeStatus,
    UnitControlStatus,
    UnitFlashStatus,
    UnitMode,
)

from .helpers import MONDAY_0700, codes, controller, epoch, run_until, run_until_in_step
from .plans import arterial_plan


def test_startup_flash_then_red_revert_then_the_main_street_group() -> None:
    ctrl = controller(unit=UnitParameters(startup_flash_s=8, red_revert_ds=30))
    status = ctrl.status()
    assert status.mode is UnitMode.STARTUP_FLASH
    assert status.unit_flash_status is UnitFlashStatus.STARTUP
    assert status.coord_pattern_status == PATTERN_FLASH
    assert status.channels.flashing
    assert status.channels.reds == 0xFF  # every vehicle channel flashes red; peds dark
    assert status.channels.greens == status.channels.yellows == 0
    ctrl.step(7.9)
    assert ctrl.status().mode is UnitMode.STARTUP_FLASH
    ctrl.step(0.1)
    status = ctrl.status()
    assert status.mode is UnitMode.RED_REVERT
    assert not status.channels.flashing
    assert status.channels.reds == 0xF0FF  # steady red, and DON'T WALK on the ped channels
    ctrl.step(2.9)
    assert ctrl.status().mode is UnitMode.RED_REVERT
    ctrl.step(0.1)
    status = ctrl.status()
    assert status.mode is UnitMode.STEADY
    assert status.phases.greens == 0b0001_0001  # the leading lefts of the coordinated group
    flash_changes = [(e.time_ds, e.param) for e in codes(ctrl.events.all(), 173)]
    t0 = MONDAY_0700 * 10
    assert flash_changes == [(t0, UnitFlashStatus.STARTUP), (t0 + 80, UnitFlashStatus.NOT_FLASH)]


def test_flash_command_enters_flash_at_the_main_street_barrier_and_leaves_through_red() -> None:
    ctrl = controller()
    run_until_in_step(ctrl)
    ctrl.step(30.0)
    ctrl.set_system_pattern(255)
    ctrl.step(89.9)
    assert ctrl.status().mode is UnitMode.STEADY  # clearances finish first
    ctrl.step(0.1)
    status = ctrl.status()
    assert status.mode is UnitMode.FLASH
    assert status.unit_flash_status is UnitFlashStatus.AUTOMATIC
    assert status.coord_pattern_status == PATTERN_FLASH
    assert status.unit_control_status is UnitControlStatus.SYSTEM_CONTROL
    last = codes(ctrl.events.all(), EventCode.UNIT_FLASH_STATUS_CHANGE)[-1]
    assert last.param == UnitFlashStatus.AUTOMATIC
    ctrl.step(10.0)
    ctrl.set_system_pattern(0)  # standby: the time base (pattern 1) runs again
    ctrl.step(0.1)
    status = ctrl.status()
    assert status.mode is UnitMode.RED_REVERT
    assert status.unit_control_status is UnitControlStatus.SYSTEM_STANDBY
    ctrl.step(2.0)
    assert ctrl.status().mode is UnitMode.STEADY
    assert ctrl.status().coord_pattern_status == 1


def test_time_of_day_flash_on_weekend_nights() -> None:
    ctrl = controller(start=epoch("2024-01-06T01:59"))  # Saturday: 02:00 flash, 05:00 free
    ctrl.step(60.0)
    run_until(ctrl, lambda c: c.status().mode is UnitMode.FLASH, limit_s=300)
    assert ctrl.status().timebase_pattern == PATTERN_FLASH
    ctrl.set_clock(epoch("2024-01-06T04:59:30"))
    ctrl.step(31.0)
    run_until(ctrl, lambda c: c.status().mode is UnitMode.STEADY, limit_s=5)
    assert ctrl.status().coord_pattern_status == PATTERN_FREE


def test_backup_timer_expiry_returns_control_to_the_time_base() -> None:
    ctrl = controller(backup_time_s=60)
    run_until_in_step(ctrl)
    ctrl.set_system_pattern(2)
    status = ctrl.status()
    assert status.unit_control_status is UnitControlStatus.SYSTEM_CONTROL
    assert status.backup_remaining_ds == 600
    for _ in range(5):  # central keeps writing: no expiry
        ctrl.step(50.0)
        ctrl.set_system_pattern(2)
    assert ctrl.status().coord_pattern_status == 2
    ctrl.step(59.9)
    assert ctrl.status().system_pattern_control == 2
    ctrl.step(0.1)
    status = ctrl.status()
    assert status.unit_control_status is UnitControlStatus.BACKUP_MODE
    assert status.system_pattern_control == 0
    assert status.backup_remaining_ds == 0
    assert 155 in [e.code for e in ctrl.events.all()]
    run_until(ctrl, lambda c: c.status().coord_pattern_status == 1, limit_s=120)
    # Any system-control write ends backup mode.
    ctrl.system_control_write()
    assert ctrl.status().unit_control_status is UnitControlStatus.SYSTEM_STANDBY


def test_backup_time_zero_never_expires() -> None:
    ctrl = controller(backup_time_s=0)
    ctrl.set_system_pattern(3)
    ctrl.step(3600.0)
    assert ctrl.status().system_pattern_control == 3
    assert ctrl.status().coord_pattern_status == 3


def pattern_9_from_split_plan_1(db: TimingDatabase, *phases: int, **changes: Any) -> None:
    """Pattern 9 = pattern 1 on a copy of split plan 1 (as 9), with ``changes`` to ``phases``."""
    db.set_pattern(9, cycle_ds=1200, offset_ds=0, split=9)
    for (number, phase), row in list(db.splits.items()):
        if number == 1:
            db.set_split(9, phase, time_ds=row.time_ds, mode=row.mode, coord=row.coord)
    for phase in phases:
        db.set_split(9, phase, **changes)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(lambda db: None, LocalFreeStatus.BAD_PLAN, id="unknown-pattern"),
        pytest.param(
            lambda db: db.set_pattern(9, cycle_ds=1000, offset_ds=0, split=1),
            LocalFreeStatus.SPLIT_OVERRUN,
            id="splits-longer-than-cycle",
        ),
        pytest.param(
            lambda db: db.set_pattern(9, cycle_ds=700, offset_ds=0, split=1),
            LocalFreeStatus.BAD_CYCLE_TIME,
            id="cycle-below-minimums",
        ),
        pytest.param(
            lambda db: db.set_pattern(9, cycle_ds=200, offset_ds=0, split=1),
            LocalFreeStatus.BAD_CYCLE_TIME,
            id="cycle-below-ts2-range",
        ),
        pytest.param(
            lambda db: pattern_9_from_split_plan_1(db, 2, time_ds=200),
            LocalFreeStatus.BAD_PLAN,
            id="split-below-ped-minimum",
        ),
        pytest.param(
            lambda db: pattern_9_from_split_plan_1(db, 2, 6, coord=False),
            LocalFreeStatus.BAD_PLAN,
            id="no-coordinated-phase",
        ),
        pytest.param(
            lambda db: db.set_pattern(9, cycle_ds=1200, offset_ds=0, split=77),
            LocalFreeStatus.BAD_PLAN,
            id="split-plan-missing",
        ),
        pytest.param(
            lambda db: db.set_pattern(9, cycle_ds=1200, offset_ds=1200, split=1),
            LocalFreeStatus.BAD_PLAN,
            id="offset-not-below-cycle",
        ),
        pytest.param(
            lambda db: db.set_pattern(9, cycle_ds=0, split=1),
            LocalFreeStatus.COORD_FREE,
            id="cycle-zero",
        ),
    ],
)
def test_a_pattern_the_controller_refuses_runs_free(
    edit: object, expected: LocalFreeStatus
) -> None:
    ctrl = controller()
    run_until_in_step(ctrl)
    assert callable(edit)
    edit(ctrl.database)
    ctrl.set_system_pattern(9)
    ctrl.step(121.0)
    status = ctrl.status()
    assert status.coord_pattern_status == PATTERN_FREE
    assert status.local_free_status is expected
    assert status.unit_alarm_status1 & ALARM1_LOCAL_FREE
    assert status.short_alarm_status & SHORT_ALARM_LOCAL_OVERRIDE
    assert status.mode is UnitMode.STEADY
    # A valid pattern brings coordination back (the unit shows transitionFree meanwhile).
    ctrl.set_system_pattern(1)
    assert ctrl.status().local_free_status is LocalFreeStatus.TRANSITION_FREE
    run_until(ctrl, lambda c: c.status().coord_pattern_status == 1, limit_s=300)
    assert ctrl.status().local_free_status is LocalFreeStatus.NOT_FREE


def test_a_split_written_over_snmp_applies_at_the_next_cycle_with_its_events() -> None:
    ctrl = controller()
    run_until_in_step(ctrl)
    seq = ctrl.events.last_seq
    ctrl.database.set_split(1, 4, time_ds=380)
    ctrl.database.set_split(1, 3, time_ds=170)
    ctrl.step(121.0)
    changed = {
        e.code: e.param for e in ctrl.events_since(seq) if 134 <= e.code <= 149 or e.code == 132
    }
    assert changed == {EventCode.SPLIT_1_CHANGE + 2: 17, EventCode.SPLIT_1_CHANGE + 3: 38}
    assert ctrl.status().coord_pattern_status == 1


def test_setting_the_clock_logs_181_and_the_unit_corrects_its_offset() -> None:
    ctrl = controller()
    run_until_in_step(ctrl)
    seq = ctrl.events.last_seq
    ctrl.set_clock(ctrl.global_time + 17)
    assert [e.code for e in ctrl.events_since(seq)] == [EventCode.CONTROLLER_CLOCK_UPDATED]
    assert ctrl.global_time == MONDAY_0700 + 17 + ctrl.now_ms // 1000
    run_until(ctrl, lambda c: c.status().transition_cycles > 0, limit_s=130)
    run_until_in_step(ctrl, limit_s=3 * 130)


def test_clock_drift_accumulates_and_the_coordinator_follows_its_own_clock() -> None:
    ctrl = controller(drift_ppm=0.0)
    ctrl.set_drift(seconds_per_day=8.64)  # 100 ppm: 0.36 s per hour
    ctrl.step(3600.0)
    drift_ms = ctrl.clock.now_ms(ctrl.now_ms) - (MONDAY_0700 * 1000 + ctrl.now_ms)
    assert drift_ms == 360
    run_until_in_step(ctrl, limit_s=400)
    # In step against the drifted clock: local zero at (clock - midnight - offset) mod C == 0.
    status = ctrl.status()
    assert status.coord_sync_status == status.local_cycle_ds // 10


def test_mode_table_rejects_a_missing_pair() -> None:
    ctrl = controller()
    assert (UnitMode.STEADY, ModeTrigger.MMU_RESET) not in MODE_TRANSITIONS
    run_until_in_step(ctrl)
    with pytest.raises(EngineStateError):
        ctrl.engine.mmu_reset()


def test_unknown_control_values_are_refused() -> None:
    ctrl = controller(plan=arterial_plan())
    with pytest.raises(ValueError, match="systemPatternControl"):
        ctrl.set_system_pattern(256)
    with pytest.raises(ValueError, match="unitBackupTime"):
        ctrl.set_backup_time(70000)
