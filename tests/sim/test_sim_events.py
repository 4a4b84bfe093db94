"""The hi-res event log: codes, bounded ring buffer, gap-detecting sequence numbers."""

from __future__ import annotations

import dataclasses

import pytest

from firmware_sim.events import Event, EventCode, EventLog, split_change_code


def test_codes_are_the_indiana_enumeration() -> None:
    values = [
        EventCode.PHASE_BEGIN_GREEN,
        EventCode.PHASE_BEGIN_YELLOW,
        EventCode.PHASE_END_RED_CLEAR,
        EventCode.PED_BEGIN_WALK,
        EventCode.PED_BEGIN_DONT_WALK,
        EventCode.COORD_PATTERN_CHANGE,
        EventCode.UNIT_FLASH_STATUS_CHANGE,
        EventCode.CONTROLLER_CLOCK_UPDATED,
    ]
    assert [int(code) for code in values] == [1, 8, 11, 21, 23, 131, 173, 181]
    assert [split_change_code(p) for p in (1, 8, 16)] == [134, 141, 149]
    with pytest.raises(ValueError, match="1-16"):
        split_change_code(17)


def test_events_are_frozen_and_keyword_only() -> None:
    event = Event(seq=1, time_ds=10, code=1, param=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.param = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Event(1, 10, 1, 2)  # type: ignore[call-arg]


def test_sequence_numbers_increase_by_one_and_since_returns_the_rest() -> None:
    log = EventLog(capacity=10)
    assert (log.last_seq, log.first_seq, len(log)) == (0, 1, 0)
    for i in range(5):
        log.append(100 + i, EventCode.PHASE_BEGIN_GREEN, i)
    assert [e.seq for e in log.since(0)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in log.since(3)] == [4, 5]
    assert log.since(5) == ()
    assert log.since(99) == ()
    assert [e.seq for e in log.since(1, limit=2)] == [2, 3]
    assert log.lost_since(0) == 0


def test_a_full_log_drops_the_oldest_and_a_reader_sees_the_gap() -> None:
    log = EventLog(capacity=4)
    for i in range(10):
        log.append(i, EventCode.PHASE_BEGIN_GREEN, 1)
    assert len(log) == 4
    assert (log.first_seq, log.last_seq) == (7, 10)
    rows = log.since(2)
    assert [e.seq for e in rows] == [7, 8, 9, 10]
    assert rows[0].seq > 2 + 1  # the gap shows
    assert log.lost_since(2) == 4
    assert log.lost_since(6) == 0
    with pytest.raises(ValueError, match="since 0"):
        log.since(-1)
    with pytest.raises(ValueError, match="at least one"):
        EventLog(capacity=0)
