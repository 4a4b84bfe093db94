"""Whatever a front end writes inside the encodable ranges, the controller stays safe.

Two properties over random sequences of object writes (as an SNMP manager
could send them) interleaved with random amounts of time:

* timing writes alone (interval times, splits, patterns, correction mode,
  pattern commands) never make the MMU fault: whatever the tables say, the
  engine only ever times safe cycles, or runs free;
* structural writes too (rings, concurrency, sequences, channel map) never
  crash the controller. Those can contradict the MMU's card -- a real MMU
  then puts the intersection in flash -- so a fault is reset and the run goes on.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.database import ChannelType, SplitMode, TimingDatabase
from firmware_sim.status import UnitMode

from .helpers import controller

Write = tuple[str, int, Any]

phase = st.integers(min_value=1, max_value=8)
tenths = st.integers(min_value=0, max_value=2550)

TIMING_WRITES: st.SearchStrategy[Write] = st.one_of(
    st.tuples(
        st.just("phase"),
        phase,
        st.fixed_dictionaries(
            {},
            optional={
                "walk_ds": st.integers(min_value=0, max_value=300),
                "ped_clear_ds": st.integers(min_value=0, max_value=300),
                "min_green_ds": st.integers(min_value=10, max_value=400),
                "max_green_ds": st.integers(min_value=0, max_value=600),
                "yellow_ds": st.integers(min_value=30, max_value=60),
                "red_clear_ds": st.integers(min_value=0, max_value=40),
            },
        ),
    ),
    st.tuples(
        st.just("split"),
        phase,
        st.fixed_dictionaries(
            {},
            optional={
                "time_ds": tenths,
                "mode": st.sampled_from(list(SplitMode)),
                "coord": st.booleans(),
            },
        ),
    ),
    st.tuples(
        st.just("pattern"),
        st.integers(min_value=1, max_value=4),
        st.fixed_dictionaries(
            {},
            optional={
                "cycle_ds": tenths,
                "offset_ds": tenths,
                "split": st.integers(min_value=1, max_value=4),
            },
        ),
    ),
    st.tuples(st.just("unit"), st.integers(min_value=1, max_value=4), st.just(None)),
    st.tuples(st.just("control"), st.integers(min_value=0, max_value=255), st.just(None)),
)

STRUCTURE_WRITES: st.SearchStrategy[Write] = st.one_of(
    st.tuples(
        st.just("phase"),
        phase,
        st.fixed_dictionaries(
            {},
            optional={
                "ring": st.integers(min_value=0, max_value=3),
                "concurrency": st.lists(phase, max_size=4),
            },
        ),
    ),
    st.tuples(
        st.just("sequence"), st.integers(min_value=1, max_value=2), st.permutations([1, 2, 3, 4])
    ),
    st.tuples(
        st.just("channel"),
        st.integers(min_value=1, max_value=16),
        st.tuples(st.integers(min_value=0, max_value=8), st.sampled_from(list(ChannelType))),
    ),
)

waits = st.integers(min_value=0, max_value=150)


def apply(db: TimingDatabase, write: Write) -> None:
    kind, number, value = write
    if kind == "phase":
        db.set_phase(number, **value)
    elif kind == "split":
        db.set_split((number % 3) + 1, number, **value)
    elif kind == "pattern":
        db.set_pattern(number, **value)
    elif kind == "unit":
        db.set_unit(correction_mode=number)
    elif kind == "sequence":
        db.set_sequence(number, 1, value)
    else:
        assert kind == "channel"
        db.set_channel(number, source=value[0], kind=value[1])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes=st.lists(st.tuples(TIMING_WRITES, waits), max_size=12))
def test_timing_writes_never_make_the_mmu_fault(writes: list[tuple[Write, int]]) -> None:
    ctrl = controller()
    ctrl.step(10.0)
    for write, wait_s in writes:
        if write[0] == "control":
            ctrl.set_system_pattern(write[1])
        else:
            apply(ctrl.database, write)
        ctrl.step(float(wait_s))
        assert ctrl.status().mmu_fault is None
    ctrl.step(300.0)
    assert ctrl.status().mmu_fault is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes=st.lists(st.tuples(st.one_of(TIMING_WRITES, STRUCTURE_WRITES), waits), max_size=12))
def test_any_writes_never_break_the_controller(writes: list[tuple[Write, int]]) -> None:
    ctrl = controller()
    ctrl.step(10.0)
    for write, wait_s in writes:
        if write[0] == "control":
            ctrl.set_system_pattern(write[1])
        else:
            apply(ctrl.database, write)
        ctrl.step(float(wait_s))
        if ctrl.status().mode is UnitMode.MMU_FLASH:
            assert ctrl.mmu_reset()
    ctrl.step(300.0)
    assert ctrl.status().sim_time_ms > 0
