"""The timing database: loading a plan, object-by-object writes, the time base."""

from __future__ import annotations

import pytest

from agent.plan.validator import validate_plan
from firmware_sim.database import (
    ACTION_FLASH,
    ACTION_FREE,
    ALL_DAYS,
    WEEKDAY_BITS,
    ChannelType,
    DatabaseValueError,
    SplitMode,
    TimingDatabase,
    database_from_plan,
)
from firmware_sim.timebase import timebase_call

from .helpers import epoch
from .plans import arterial_plan


def local_ms(text: str) -> int:
    return epoch(text) * 1000


def test_a_plan_loads_into_ntcip_shaped_tables() -> None:
    db = database_from_plan(arterial_plan())
    assert db.active_phases() == (1, 2, 3, 4, 5, 6, 7, 8)
    two = db.phases[2]
    assert (two.min_green_ds, two.max_green_ds, two.yellow_ds, two.red_clear_ds) == (
        100,
        500,
        40,
        15,
    )
    assert (two.walk_ds, two.ped_clear_ds, two.ring) == (70, 140, 1)
    assert two.concurrency == (5, 6)
    assert db.phases[7].concurrency == (3, 4)
    assert db.sequences[1].rings == ((1, 2, 3, 4), (5, 6, 7, 8))
    pattern = db.patterns[1]
    assert (pattern.cycle_ds, pattern.offset_ds, pattern.split, pattern.sequence) == (
        1200,
        300,
        1,
        1,
    )
    split = db.split_row(1, 2)
    assert split is not None
    assert (split.time_ds, split.mode, split.coord) == (500, SplitMode.MAX_VEHICLE_PED_RECALL, True)
    left = db.split_row(1, 1)
    assert left is not None
    assert (left.mode, left.coord) == (SplitMode.MAX_VEHICLE_RECALL, False)
    assert {a.pattern for a in db.actions.values()} == {1, 2, 3, ACTION_FREE, ACTION_FLASH}
    weekdays = db.schedule[1]
    assert weekdays.day_plan == 1
    assert weekdays.days == sum(WEEKDAY_BITS[d] for d in ("mon", "tue", "wed", "thu", "fri"))
    assert [(c.channel, c.source, c.kind) for c in db.channels.values()][-4:] == [
        (13, 2, ChannelType.PEDESTRIAN),
        (14, 4, ChannelType.PEDESTRIAN),
        (15, 6, ChannelType.PEDESTRIAN),
        (16, 8, ChannelType.PEDESTRIAN),
    ]


def test_a_pattern_sequence_gets_its_own_sequence_row() -> None:
    document_patterns = [p.model_dump(exclude_none=True) for p in arterial_plan().patterns]
    document_patterns[1]["sequence"] = [[2, 1, 3, 4], [5, 6, 7, 8]]  # lagging left 1
    db = database_from_plan(arterial_plan(patterns=document_patterns))
    assert db.patterns[2].sequence == 2
    assert db.sequences[2].rings == ((2, 1, 3, 4), (5, 6, 7, 8))


@pytest.mark.parametrize(
    ("write", "match"),
    [
        pytest.param(lambda db: db.set_phase(2, yellow_ds=29), "phaseYellowChange", id="yellow"),
        pytest.param(lambda db: db.set_phase(2, min_green_ds=0), "phaseMinimumGreen", id="min"),
        pytest.param(lambda db: db.set_phase(17), "phase", id="phase-number"),
        pytest.param(lambda db: db.set_pattern(254, cycle_ds=900), "pattern", id="pattern-254"),
        pytest.param(lambda db: db.set_pattern(1, cycle_ds=2551), "patternCycleTime", id="cycle"),
        pytest.param(lambda db: db.set_split(1, 2, mode=9), "splitMode", id="split-mode"),
        pytest.param(lambda db: db.set_sequence(1, 1, [1, 1]), "repeats", id="sequence"),
        pytest.param(
            lambda db: db.set_day_plan_event(1, 1, hour=24, minute=0, action=1),
            "dayPlanHour",
            id="hour",
        ),
        pytest.param(lambda db: db.set_unit(startup_flash_s=256), "unitStartUpFlash", id="unit"),
        pytest.param(lambda db: db.set_phase(2, walk_ds=True), "integer", id="bool"),
    ],
)
def test_writes_outside_the_encodable_range_are_refused(write: object, match: str) -> None:
    db = database_from_plan(arterial_plan())
    revision = db.revision
    assert callable(write)
    with pytest.raises(DatabaseValueError, match=match):
        write(db)
    assert db.revision == revision


def test_each_write_changes_one_object_and_bumps_the_revision() -> None:
    db = database_from_plan(arterial_plan())
    revision = db.revision
    db.set_pattern(1, cycle_ds=1100)
    assert db.patterns[1].cycle_ds == 1100
    assert db.patterns[1].offset_ds == 300
    db.set_split(1, 4, time_ds=300)
    assert db.split_row(1, 4) is not None
    assert db.revision == revision + 2
    copy = db.copy()
    copy.set_phase(1, min_green_ds=70)
    assert db.phases[1].min_green_ds == 50


def test_time_base_picks_the_day_plan_and_the_event_in_force() -> None:
    db = database_from_plan(arterial_plan())
    monday = timebase_call(db, local_ms("2024-01-01T07:00"))
    assert (monday.day_plan, monday.pattern) == (1, 1)
    assert timebase_call(db, local_ms("2024-01-01T06:29")).pattern == 2
    assert timebase_call(db, local_ms("2024-01-01T15:30")).pattern == 3
    assert timebase_call(db, local_ms("2024-01-01T23:59")).pattern == ACTION_FREE
    saturday = timebase_call(db, local_ms("2024-01-06T03:00"))
    assert (saturday.day_plan, saturday.pattern) == (2, ACTION_FLASH)


def test_before_the_first_event_the_previous_day_is_still_in_force() -> None:
    db = database_from_plan(arterial_plan())
    # Monday 01:00: Sunday's last event (21:00 free) is in force.
    assert timebase_call(db, local_ms("2024-01-01T01:00")).pattern == ACTION_FREE
    # Saturday 01:00: Friday's last event (22:00 free).
    assert timebase_call(db, local_ms("2024-01-06T01:00")).pattern == ACTION_FREE


def test_an_empty_time_base_calls_nothing() -> None:
    db = TimingDatabase()
    call = timebase_call(db, local_ms("2024-01-01T12:00"))
    assert (call.day_plan, call.pattern) == (0, 0)
    db.set_schedule(1, day_plan=5, days=ALL_DAYS)
    assert timebase_call(db, local_ms("2024-01-01T12:00")).pattern == 0


def test_the_fixture_plan_passes_the_plan_validator() -> None:
    report = validate_plan(arterial_plan())
    assert report.ok, report.errors
    assert not report.warnings
