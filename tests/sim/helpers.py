"""Helpers shared by the simulator tests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from agent.plan.model import Plan
from firmware_sim.controller import SimConfig, SimController
from firmware_sim.database import TimingDatabase
from firmware_sim.events import Event, EventCode
from firmware_sim.status import CoordCycleState, UnitMode

from .plans import arterial_plan


def epoch(text: str) -> int:
    """Seconds since the epoch of an ISO time taken as UTC (e.g. '2024-01-01T07:00')."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


#: Monday 2024-01-01 07:00 UTC: the AM peak pattern (1) is in force.
MONDAY_0700 = epoch("2024-01-01T07:00")


def controller(
    plan: Plan | None = None, *, start: int = MONDAY_0700, **config: Any
) -> SimController:
    """A controller loaded with ``plan`` (default: the arterial fixture), clock at ``start``."""
    return SimController.from_plan(
        plan if plan is not None else arterial_plan(), config=SimConfig(epoch_s=start, **config)
    )


def run_until(ctrl: SimController, predicate: Any, *, limit_s: float, step_s: float = 0.1) -> None:
    """Step until ``predicate(ctrl)`` holds; fail after ``limit_s`` simulated seconds."""
    waited = 0.0
    while not predicate(ctrl):
        if waited >= limit_s:
            raise AssertionError(f"condition not reached within {limit_s} s")
        ctrl.step(step_s)
        waited += step_s


def run_until_in_step(ctrl: SimController, *, limit_s: float = 900) -> None:
    """Run until the unit is coordinated and in step, at the start of a cycle."""

    def ready(c: SimController) -> bool:
        program = c.engine.program
        return (
            c.engine.mode is UnitMode.STEADY
            and program is not None
            and program.cycle_state is CoordCycleState.IN_STEP
            and c.engine.position_ds == 0
        )

    run_until(ctrl, ready, limit_s=limit_s)


def by_phase(events: Iterable[Event]) -> dict[int, list[tuple[int, int]]]:
    """Phase and ped events (codes 1-23) grouped by phase: [(code, time_ds), ...]."""
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for event in events:
        if event.code <= EventCode.PED_BEGIN_DONT_WALK:
            out[event.param].append((event.code, event.time_ds))
    return dict(out)


def first_times(rows: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Time of the first occurrence of each code in ``[(code, time_ds), ...]``."""
    out: dict[int, int] = {}
    for code, time_ds in rows:
        out.setdefault(code, time_ds)
    return out


def codes(events: Iterable[Event], code: int) -> list[Event]:
    """The events with ``code``."""
    return [e for e in events if e.code == code]


def check_event_intervals(events: Iterable[Event], db: TimingDatabase) -> None:
    """From the log: each green >= min green, yellow and red clearance exactly as programmed.

    Intervals that span a clock set (event 181) are skipped: their timestamps
    jumped with the clock while the engine kept timing.
    """
    open_green: dict[int, int] = {}
    open_yellow: dict[int, int] = {}
    open_red: dict[int, int] = {}
    for event in events:
        phase = event.param
        if event.code == EventCode.CONTROLLER_CLOCK_UPDATED:
            open_green.clear()
            open_yellow.clear()
            open_red.clear()
        elif event.code == EventCode.PHASE_BEGIN_GREEN:
            open_green[phase] = event.time_ds
        elif event.code == EventCode.PHASE_BEGIN_YELLOW:
            if phase in open_green:
                assert event.time_ds - open_green.pop(phase) >= db.phases[phase].min_green_ds
            open_yellow[phase] = event.time_ds
        elif event.code == EventCode.PHASE_END_YELLOW and phase in open_yellow:
            assert event.time_ds - open_yellow.pop(phase) == db.phases[phase].yellow_ds
        elif event.code == EventCode.PHASE_BEGIN_RED_CLEAR:
            open_red[phase] = event.time_ds
        elif event.code == EventCode.PHASE_END_RED_CLEAR and phase in open_red:
            assert event.time_ds - open_red.pop(phase) == db.phases[phase].red_clear_ds
