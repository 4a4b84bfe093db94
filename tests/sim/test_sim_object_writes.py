"""Driving the controller the way an SNMP front end does: object by object, plan loads."""

from __future__ import annotations

from typing import Any

from agent.plan.model import Plan
from firmware_sim.controller import SimConfig, SimController
from firmware_sim.database import TimingDatabase, database_from_plan
from firmware_sim.events import EventCode

from .helpers import MONDAY_0700, check_event_intervals, codes, controller, run_until_in_step
from .plans import PATTERNS, PHASES, arterial_document, arterial_plan


def written_object_by_object(source: TimingDatabase) -> TimingDatabase:
    """A database filled only through the setters, from another database's rows."""
    db = TimingDatabase()
    for phase, row in source.phases.items():
        db.set_phase(
            phase,
            walk_ds=row.walk_ds,
            ped_clear_ds=row.ped_clear_ds,
            min_green_ds=row.min_green_ds,
            max_green_ds=row.max_green_ds,
            yellow_ds=row.yellow_ds,
            red_clear_ds=row.red_clear_ds,
            ring=row.ring,
            concurrency=row.concurrency,
        )
    for number, sequence in source.sequences.items():
        for ring, order in enumerate(sequence.rings, start=1):
            db.set_sequence(number, ring, order)
    for (number, phase), split in source.splits.items():
        db.set_split(number, phase, time_ds=split.time_ds, mode=split.mode, coord=split.coord)
    for number, pattern in source.patterns.items():
        db.set_pattern(
            number,
            cycle_ds=pattern.cycle_ds,
            offset_ds=pattern.offset_ds,
            split=pattern.split,
            sequence=pattern.sequence,
        )
    for number, action in source.actions.items():
        db.set_action(number, action.pattern)
    for (plan, event), event_row in source.day_plan_events.items():
        db.set_day_plan_event(
            plan, event, hour=event_row.hour, minute=event_row.minute, action=event_row.action
        )
    for entry, schedule in source.schedule.items():
        db.set_schedule(
            entry,
            day_plan=schedule.day_plan,
            months=schedule.months,
            days=schedule.days,
            dates=schedule.dates,
        )
    for channel, channel_row in source.channels.items():
        db.set_channel(channel, source=channel_row.source, kind=channel_row.kind)
    return db


def test_a_database_written_object_by_object_runs_like_the_loaded_plan() -> None:
    loaded = database_from_plan(arterial_plan())
    config = SimConfig(epoch_s=MONDAY_0700)
    by_plan = SimController(loaded, config=config)
    by_objects = SimController(written_object_by_object(loaded), config=config)
    for ctrl in (by_plan, by_objects):
        ctrl.set_system_pattern(3)
        ctrl.step(1800.0)
    assert [(e.time_ds, e.code, e.param) for e in by_plan.events.all()] == [
        (e.time_ds, e.code, e.param) for e in by_objects.events.all()
    ]
    assert by_objects.mmu.fault is None


def test_a_missing_sequence_table_defaults_to_ascending_ring_order() -> None:
    db = database_from_plan(arterial_plan())
    bare = written_object_by_object(db)
    bare_without_sequences = TimingDatabase()
    for phase, row in bare.phases.items():
        bare_without_sequences.set_phase(
            phase,
            walk_ds=row.walk_ds,
            ped_clear_ds=row.ped_clear_ds,
            min_green_ds=row.min_green_ds,
            yellow_ds=row.yellow_ds,
            red_clear_ds=row.red_clear_ds,
            ring=row.ring,
            concurrency=row.concurrency,
        )
    for channel, channel_row in bare.channels.items():
        bare_without_sequences.set_channel(
            channel, source=channel_row.source, kind=channel_row.kind
        )
    ctrl = SimController(bare_without_sequences, config=SimConfig(epoch_s=MONDAY_0700))
    ctrl.step(600.0)
    status = ctrl.status()
    assert status.coord_pattern_status == 254  # nothing scheduled: free, ring by ring
    greens = [e.param for e in codes(ctrl.events.all(), EventCode.PHASE_BEGIN_GREEN)]
    assert greens[:8] == [1, 5, 2, 6, 3, 7, 4, 8]
    assert ctrl.mmu.fault is None


def test_loading_a_new_plan_takes_effect_at_the_next_boundary() -> None:
    ctrl = controller()
    run_until_in_step(ctrl)
    ctrl.step(40.0)
    seq = ctrl.events.last_seq
    phases: list[dict[str, Any]] = [dict(p) for p in PHASES]
    phases[1]["min_green"] = 15  # phase 2
    patterns: list[dict[str, Any]] = [dict(p) for p in PATTERNS]
    patterns[0] = dict(patterns[0], cycle=100, offset=0)
    patterns[0]["splits"] = {
        "1": 15, "2": 40, "3": 15, "4": 30, "5": 15, "6": 40, "7": 15, "8": 30,
    }  # fmt: skip
    document = arterial_document()
    document.update(version=2, phases=phases, patterns=patterns)
    ctrl.load_plan(Plan.model_validate(document))
    assert ctrl.mmu.program.min_green_ms[1] == 10_000  # the card changes at the boundary
    ctrl.step(80.0)
    assert ctrl.mmu.program.min_green_ms[1] == 15_000
    logged = {e.code: e.param for e in ctrl.events_since(seq)}
    assert logged[EventCode.CYCLE_LENGTH_CHANGE] == 100
    assert logged[EventCode.OFFSET_CHANGE] == 0
    ctrl.step(1200.0)
    assert ctrl.mmu.fault is None
    assert ctrl.status().cycle_length_ds == 1000
    check_event_intervals(ctrl.events_since(seq), ctrl.database)


def test_a_lagging_left_sequence_serves_the_through_first() -> None:
    patterns: list[dict[str, Any]] = [dict(p) for p in PATTERNS]
    patterns[0]["sequence"] = [[2, 1, 3, 4], [5, 6, 7, 8]]
    ctrl = controller(arterial_plan(patterns=patterns))
    run_until_in_step(ctrl)
    seq = ctrl.events.last_seq
    ctrl.step(240.0)
    greens = [e.param for e in codes(ctrl.events_since(seq), EventCode.PHASE_BEGIN_GREEN)]
    ring_1 = [p for p in greens if p <= 4]
    assert ring_1[:4] == [1, 3, 4, 2]  # the cycle started with 2 (logged before seq), lag 1
    assert ctrl.mmu.fault is None
    # Local zero is the start of 2, the first coordinated phase to turn green.
    program = ctrl.engine.program
    assert program is not None
    assert program.ref_ds == program.slot(2).start_ds == 0
