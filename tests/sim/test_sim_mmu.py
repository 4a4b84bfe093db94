"""The MMU: each fault kind caught inside its window, latched until reset, independent."""

from __future__ import annotations

import pytest

from firmware_sim.controller import SimController
from firmware_sim.events import EventCode
from firmware_sim.mmu import FaultKind, Mmu, MmuProgram, mmu_program_from_database
from firmware_sim.status import ChannelFrame, UnitFlashStatus, UnitMode

from .helpers import codes, controller, run_until, run_until_in_step

CH = {n: 1 << (n - 1) for n in range(1, 17)}


def running(sample_ms: int = 50) -> SimController:
    """Coordinated, in step, 20 s into the cycle: phases 2 and 6 green with their walks."""
    ctrl = controller(mmu_sample_ms=sample_ms)
    run_until_in_step(ctrl)
    ctrl.step(20.0)
    assert ctrl.status().phases.greens == CH[2] | CH[6]
    return ctrl


def latency(ctrl: SimController, started_ms: int | None) -> int:
    fault = ctrl.mmu.fault
    assert fault is not None, "the MMU did not latch"
    assert started_ms is not None
    return fault.at_ms - started_ms


@pytest.mark.parametrize("sample_ms", [50, 100])
def test_conflict_latches_between_200_and_450_ms(sample_ms: int) -> None:
    ctrl = running(sample_ms)
    injection = ctrl.inject(FaultKind.CONFLICT, duration_s=1.0)
    ctrl.step(2.0)
    fault = ctrl.mmu.fault
    assert fault is not None
    assert fault.kind is FaultKind.CONFLICT
    assert 200 < latency(ctrl, injection.started_ms) <= 450
    # A WALK on the side-street ped (ch 14, phase 4) against the main-street greens.
    assert injection.channels == (14,)
    assert 14 in fault.channels
    assert set(fault.channels) & {2, 6}
    assert fault.frame.greens & CH[14]


@pytest.mark.parametrize("duration_s", [0.05, 0.15, 0.2, 0.25])
def test_a_conflict_glitch_under_300_ms_does_not_latch(duration_s: float) -> None:
    ctrl = running()
    ctrl.inject(FaultKind.CONFLICT, duration_s=duration_s)
    ctrl.step(5.0)
    assert ctrl.mmu.fault is None
    assert ctrl.status().mode is UnitMode.STEADY


def test_conflict_time_is_cumulative_until_666_ms_clear() -> None:
    ctrl = running()
    ctrl.inject(FaultKind.CONFLICT, duration_s=0.2)
    ctrl.step(0.5)  # 300 ms clear: the sum is kept
    second = ctrl.inject(FaultKind.CONFLICT, duration_s=0.2)
    ctrl.step(1.0)
    assert ctrl.mmu.fault is not None
    assert latency(ctrl, second.started_ms) <= 200

    ctrl = running()
    ctrl.inject(FaultKind.CONFLICT, duration_s=0.2)
    ctrl.step(1.0)  # 800 ms clear: the sum is forgotten
    ctrl.inject(FaultKind.CONFLICT, duration_s=0.2)
    ctrl.step(1.0)
    assert ctrl.mmu.fault is None


@pytest.mark.parametrize("sample_ms", [50, 100])
def test_dark_channel_latches_between_700_and_1000_ms(sample_ms: int) -> None:
    ctrl = running(sample_ms)
    injection = ctrl.inject(FaultKind.DARK, duration_s=2.0)
    ctrl.step(3.0)
    fault = ctrl.mmu.fault
    assert fault is not None
    assert fault.kind is FaultKind.DARK
    assert 700 < latency(ctrl, injection.started_ms) <= 1000
    assert fault.channels == injection.channels


def test_a_dark_channel_under_700_ms_does_not_latch() -> None:
    ctrl = running()
    ctrl.inject(FaultKind.DARK, duration_s=0.7)
    ctrl.step(3.0)
    assert ctrl.mmu.fault is None


def test_short_yellow_latches_when_the_yellow_ends() -> None:
    ctrl = running()
    injection = ctrl.inject(FaultKind.SHORT_YELLOW, value_s=2.0)
    ctrl.step(120.0)
    fault = ctrl.mmu.fault
    assert fault is not None
    assert fault.kind is FaultKind.SHORT_YELLOW
    assert latency(ctrl, injection.started_ms) == 2000
    assert fault.channels == injection.channels


def test_a_yellow_of_2_7_s_is_accepted() -> None:
    ctrl = running()
    injection = ctrl.inject(FaultKind.SHORT_YELLOW, value_s=2.7)
    ctrl.step(120.0)
    assert injection.started_ms is not None
    assert ctrl.mmu.fault is None


def test_green_to_red_without_yellow_latches_at_once() -> None:
    ctrl = running()
    injection = ctrl.inject(FaultKind.SKIPPED_YELLOW, channel=2)
    ctrl.step(120.0)
    fault = ctrl.mmu.fault
    assert fault is not None
    assert fault.kind is FaultKind.SKIPPED_YELLOW
    assert fault.channels == (2,)
    assert latency(ctrl, injection.started_ms) == 0


def test_a_green_cut_below_min_green_latches_when_it_ends() -> None:
    ctrl = running()
    injection = ctrl.inject(FaultKind.MIN_GREEN, channel=4, value_s=3.0)  # phase 4 min green 8 s
    ctrl.step(120.0)
    fault = ctrl.mmu.fault
    assert fault is not None
    assert fault.kind is FaultKind.MIN_GREEN
    assert fault.channels == (4,)
    assert latency(ctrl, injection.started_ms) == 3000


def test_a_latched_fault_holds_flash_until_reset_then_the_unit_restarts() -> None:
    ctrl = running()
    seq = ctrl.events.last_seq
    ctrl.inject(FaultKind.CONFLICT, duration_s=1.0)
    ctrl.step(1.0)
    status = ctrl.status()
    assert status.mode is UnitMode.MMU_FLASH
    assert status.unit_flash_status is UnitFlashStatus.MMU
    assert status.channels.flashing
    assert status.channels.reds == 0xFF
    assert status.channels.greens == status.channels.yellows == 0
    assert status.mmu_fault is not None
    assert status.mmu_fault.startswith("conflict")
    flash = codes(ctrl.events_since(seq), EventCode.UNIT_FLASH_STATUS_CHANGE)
    assert [e.param for e in flash] == [UnitFlashStatus.MMU]
    ctrl.step(3600.0)  # an hour later: still latched, nothing timed
    assert ctrl.status().mode is UnitMode.MMU_FLASH
    assert ctrl.status().mmu_fault is not None
    assert ctrl.mmu_reset()
    assert ctrl.status().mmu_fault is None
    assert ctrl.status().unit_flash_status is UnitFlashStatus.STARTUP
    run_until_in_step(ctrl)
    assert not ctrl.mmu_reset()  # nothing latched: a reset does nothing


def test_the_mmu_catches_what_the_engine_accepts() -> None:
    """SNMP writes merge the barrier groups and move ring 1's barrier: 3 times with 6.

    The engine accepts the tables (one barrier group, each ring summing to the
    cycle); the MMU's card still holds the intersection's real permissives.
    """
    ctrl = running()
    db = ctrl.database
    for phase in (1, 2, 3, 4):
        db.set_phase(phase, concurrency=(5, 6, 7, 8))
    for phase in (5, 6, 7, 8):
        db.set_phase(phase, concurrency=(1, 2, 3, 4))
    db.set_split(1, 2, time_ds=450)  # ring 1: 15 + 45 | 20 + 40: phase 3 starts at 60 s,
    db.set_split(1, 3, time_ds=200)  # while phase 6 (ring 2) is green until 65 s
    ctrl.step(240.0)
    fault = ctrl.mmu.fault
    assert fault is not None
    assert fault.kind is FaultKind.CONFLICT
    assert set(fault.channels) >= {3, 6}
    assert ctrl.status().mode is UnitMode.MMU_FLASH


def test_min_green_programming_tracks_the_database_at_the_boundary() -> None:
    ctrl = running()
    ctrl.database.set_phase(2, min_green_ds=150)
    assert ctrl.mmu.program.min_green_ms[1] == 10_000  # a running green keeps its minimum
    ctrl.step(120.0)
    assert ctrl.mmu.program.min_green_ms[1] == 15_000


def test_mmu_alone_on_frames() -> None:
    """Unit level: permissives from concurrency; dark monitoring off while flashing."""
    ctrl = controller()
    program = mmu_program_from_database(ctrl.database)
    assert program.enabled == 0xF0FF  # vehicle 1-8, peds 13-16
    assert program.permissive[1] & CH[6]  # 2 with 6, and with ped 6 (channel 15)
    assert program.permissive[1] & CH[15]
    assert not program.permissive[1] & CH[4]  # never with 4 or its ped (channel 14)
    assert not program.permissive[1] & CH[14]
    mmu = Mmu(program)
    flashing = ChannelFrame(greens=0, yellows=0, reds=0xFF, flashing=True)
    for t in range(0, 5000, 50):
        assert mmu.sample(flashing, t) is None
    bare = MmuProgram(
        enabled=CH[1], vehicle=CH[1], permissive=(CH[1],) + (0,) * 15, min_green_ms=(0,) * 16
    )
    mmu = Mmu(bare)
    green = ChannelFrame(greens=CH[1], yellows=0, reds=0)
    red = ChannelFrame(greens=0, yellows=0, reds=CH[1])
    assert mmu.sample(green, 0) is None
    fault = mmu.sample(red, 50)
    assert fault is not None
    assert fault.kind is FaultKind.SKIPPED_YELLOW


def test_injected_fault_kinds_all_latch_flash() -> None:
    for kind in FaultKind:
        ctrl = running()
        ctrl.inject(kind, value_s=2.0)
        run_until(ctrl, lambda c: c.mmu.fault is not None, limit_s=150)
        fault = ctrl.mmu.fault
        assert fault is not None
        assert fault.kind is kind
        assert ctrl.status().unit_flash_status is UnitFlashStatus.MMU
