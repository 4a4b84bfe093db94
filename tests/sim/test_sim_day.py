"""Acceptance: a simulated day of a realistic plan, with everything central and time can do.

24 hours of the arterial fixture plan, Friday noon to Saturday noon (PM peak,
free at night, weekend flash 02:00-05:00, off-peak), with time-of-day
changes, transitions, backup-timer expiries, seeded random pattern commands
(patterns, free, flash, standby), offset writes and clock corrections. The
MMU evaluates every 50 ms sample of the day; neither this run nor the one-hour
run with injected faults below may show a single MMU fault that was not
injected, and every injected fault must be caught inside its window.
"""

from __future__ import annotations

import random

from firmware_sim.controller import SimController
from firmware_sim.events import EventCode
from firmware_sim.mmu import FaultKind
from firmware_sim.status import PATTERN_FLASH, UnitControlStatus, UnitMode

from .helpers import check_event_intervals, codes, controller, epoch

FRIDAY_NOON = epoch("2024-01-05T12:00")
BACKUP_S = 300

#: Detection windows (ms from the first corrupted sample to the latch).
WINDOWS: dict[FaultKind, tuple[int, int]] = {
    FaultKind.CONFLICT: (201, 450),
    FaultKind.DARK: (701, 1000),
    FaultKind.SHORT_YELLOW: (2000, 2000),  # the injected yellow is 2.0 s: caught as it ends
    FaultKind.SKIPPED_YELLOW: (0, 0),  # caught at the red
    FaultKind.MIN_GREEN: (2000, 2000),  # the injected green is 2.0 s: caught as it ends
}


def central_session(ctrl: SimController, rng: random.Random, seconds: float) -> None:
    """Central holds a random pattern, re-writing it every 60 s, for ``seconds``."""
    value = rng.choice([1, 2, 3, 1, 2, 3, 254, 255, 0])
    elapsed = 0.0
    while elapsed < seconds:
        ctrl.set_system_pattern(value)
        chunk = min(60.0, seconds - elapsed)
        ctrl.step(chunk)
        elapsed += chunk


def test_a_day_of_operation_has_no_mmu_fault() -> None:
    rng = random.Random(20240105)
    ctrl = controller(
        start=FRIDAY_NOON,
        backup_time_s=BACKUP_S,
        mmu_sample_ms=50,
        mmu_skip_idle_samples=False,  # evaluate all 1,728,000 samples of the day
        event_capacity=200_000,
    )
    end_ms = 24 * 3600 * 1000
    while ctrl.now_ms < end_ms:
        action = rng.random()
        if action < 0.45:
            central_session(ctrl, rng, rng.uniform(120, 1800))
            # Central goes silent: the backup timer expires and the time base takes over.
            ctrl.step(BACKUP_S + rng.uniform(1, 600))
        elif action < 0.55:
            ctrl.set_clock_ms(ctrl.clock.now_ms(ctrl.now_ms) + rng.randint(-3000, 3000))
            ctrl.step(rng.uniform(60, 600))
        elif action < 0.62:
            pattern = rng.choice([1, 2, 3])
            cycle = ctrl.database.patterns[pattern].cycle_ds
            ctrl.database.set_pattern(pattern, offset_ds=rng.randrange(0, cycle))
            ctrl.step(rng.uniform(60, 600))
        else:
            ctrl.step(rng.uniform(300, 3600))
        assert ctrl.mmu.fault is None, ctrl.mmu.fault
    ctrl.step((end_ms - ctrl.now_ms) / 1000 if ctrl.now_ms < end_ms else 0)

    assert ctrl.mmu.fault is None
    events = ctrl.events.all()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    check_event_intervals(events, ctrl.database)
    control = [e.param for e in codes(events, EventCode.UNIT_CONTROL_STATUS_CHANGE)]
    assert control.count(UnitControlStatus.BACKUP_MODE) >= 5
    patterns = [e.param for e in codes(events, EventCode.COORD_PATTERN_CHANGE)]
    assert {1, 2, 3, 254, PATTERN_FLASH} <= set(patterns)
    states = {e.param for e in codes(events, EventCode.COORD_CYCLE_STATE_CHANGE)}
    assert states >= {1, 2, 3}  # in step, add, subtract
    assert codes(events, EventCode.CONTROLLER_CLOCK_UPDATED)
    assert ctrl.status().transition_cycles <= 3


def test_an_hour_with_every_fault_kind_injected_at_50_ms() -> None:
    rng = random.Random(7)
    ctrl = controller(start=epoch("2024-01-01T16:00"), mmu_sample_ms=50)
    kinds = list(FaultKind) * 2
    rng.shuffle(kinds)
    for kind in kinds:
        ctrl.step(rng.uniform(60, 240))
        assert ctrl.status().mmu_fault is None
        assert ctrl.status().mode is UnitMode.STEADY
        injection = ctrl.inject(kind, duration_s=1.5, value_s=2.0)
        waited = 0
        while not ctrl.mmu.latched and waited < 200:
            ctrl.step(1.0)
            waited += 1
        fault = ctrl.mmu.fault
        assert fault is not None, kind
        assert fault.kind is kind
        assert injection.started_ms is not None
        low, high = WINDOWS[kind]
        assert low <= fault.at_ms - injection.started_ms <= high, (kind, fault)
        status = ctrl.status()
        assert status.mode is UnitMode.MMU_FLASH
        assert status.channels.flashing
        ctrl.step(30.0)
        assert ctrl.status().mode is UnitMode.MMU_FLASH  # latched
        assert ctrl.mmu_reset()
        ctrl.step(30.0)
    assert ctrl.now_ms <= 3600 * 1000 + 600_000


def test_skipping_idle_samples_changes_nothing() -> None:
    """Evaluating every 50 ms sample gives the same log and the same fault records."""
    results = []
    for skip in (True, False):
        rng = random.Random(11)
        ctrl = controller(mmu_sample_ms=50, mmu_skip_idle_samples=skip)
        faults = []
        for kind in FaultKind:
            ctrl.step(rng.uniform(60, 200))
            ctrl.inject(kind, duration_s=1.0, value_s=2.0)
            ctrl.step(150.0)
            assert ctrl.mmu.fault is not None
            faults.append(ctrl.mmu.fault)
            ctrl.mmu_reset()
        results.append((faults, ctrl.events.all()))
    assert results[0] == results[1]
