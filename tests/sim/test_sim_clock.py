"""The controller clock: settable, drifting, integer-exact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.clock import ControllerClock, ppb_from_ppm, ppb_from_seconds_per_day
from firmware_sim.events import EventCode

from .helpers import MONDAY_0700, controller


def test_drift_units() -> None:
    assert ppb_from_ppm(11.574) == 11_574
    assert ppb_from_seconds_per_day(1.0) == 11_574  # about 1 s a day, the crystal figure
    assert ppb_from_seconds_per_day(-86.4) == -1_000_000


def test_a_drifting_clock_gains_its_rate() -> None:
    clock = ControllerClock(epoch_s=1_000, drift_ppb=ppb_from_seconds_per_day(1.0))
    day_ms = 86_400_000
    assert clock.now_ms(day_ms) - (1_000_000 + day_ms) == 999  # 1 s/day, floor of the ms
    clock.set(day_ms, 5_000_000)
    assert clock.now_ms(day_ms) == 5_000_000
    clock.set_drift(day_ms, 0)
    assert clock.now_ms(day_ms + 10_000) == 5_010_000


def test_local_time_applies_the_utc_offset() -> None:
    clock = ControllerClock(epoch_s=0, utc_offset_s=-5 * 3600)
    assert clock.local_ms(0) == -5 * 3600 * 1000


@given(
    drift=st.integers(min_value=-500_000, max_value=500_000),
    target=st.integers(min_value=0, max_value=10**10),
)
def test_true_time_at_local_inverts_the_clock(drift: int, target: int) -> None:
    clock = ControllerClock(epoch_s=0, drift_ppb=drift)
    true_ms = clock.true_ms_at_local(target)
    assert clock.local_ms(true_ms) >= target
    assert clock.local_ms(true_ms - 1) < target


def test_setting_the_clock_logs_181_with_the_new_time() -> None:
    ctrl = controller()
    ctrl.step(12.3)
    seq = ctrl.events.last_seq
    ctrl.set_clock(MONDAY_0700 + 3600)
    events = ctrl.events_since(seq)
    assert [(e.code, e.time_ds) for e in events] == [
        (EventCode.CONTROLLER_CLOCK_UPDATED, (MONDAY_0700 + 3600) * 10)
    ]
    assert ctrl.global_time == MONDAY_0700 + 3600
    ctrl.step(1.0)
    assert ctrl.global_time == MONDAY_0700 + 3601


def test_simulated_time_runs_far_faster_than_real_time() -> None:
    ctrl = controller(drift_ppm=-20.0)
    ctrl.step(6 * 3600.0)
    assert ctrl.now_ms == 6 * 3600 * 1000
    assert ctrl.global_time == MONDAY_0700 + 6 * 3600 - 1  # 20 ppm slow: -0.432 s
