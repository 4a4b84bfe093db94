"""The controller's high-resolution event log (Indiana / ATSPM enumeration).

Rows are ``(sequence, timestamp, code, parameter)``, timestamped by the
controller clock at 0.1 s resolution, with the codes of the Indiana hi-res
specification (Purdue 2012, TPF-5(377) 2019 update; enumeration in
``utahudot/udot-atspm`` ``IndianaEnumerations.cs``, see
``reference/traffic-rules.md`` §4).

The log is a bounded ring buffer: the oldest rows are dropped when it is
full. Every row carries a sequence number that increases by exactly one per
row and never repeats, so a consumer that asks for "everything after N" can
tell from the first sequence number it gets whether rows were lost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from itertools import islice


class EventCode(IntEnum):
    """The Indiana hi-res event codes the simulator emits."""

    PHASE_BEGIN_GREEN = 1
    PHASE_BEGIN_YELLOW = 8
    PHASE_END_YELLOW = 9
    PHASE_BEGIN_RED_CLEAR = 10
    PHASE_END_RED_CLEAR = 11
    PED_BEGIN_WALK = 21
    PED_BEGIN_CLEARANCE = 22
    PED_BEGIN_DONT_WALK = 23
    COORD_PATTERN_CHANGE = 131
    CYCLE_LENGTH_CHANGE = 132
    OFFSET_CHANGE = 133
    SPLIT_1_CHANGE = 134  # ... 149 = split 16; parameter: seconds
    COORD_CYCLE_STATE_CHANGE = 150
    COORD_PHASE_YIELD_POINT = 151
    COORD_PHASE_BEGIN = 152
    UNIT_CONTROL_STATUS_CHANGE = 155
    ADDITIONAL_CYCLE_LENGTH_CHANGE = 156
    UNIT_FLASH_STATUS_CHANGE = 173
    CONTROLLER_CLOCK_UPDATED = 181


def split_change_code(phase: int) -> int:
    """Event code of "Split n Change" for phase ``n`` (134-149 for phases 1-16)."""
    if not 1 <= phase <= 16:
        raise ValueError(f"split change events exist for phases 1-16, not {phase}")
    return EventCode.SPLIT_1_CHANGE + phase - 1


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One row of the hi-res log.

    ``time_ds`` is the controller clock in tenths of a second since
    1970-01-01 UTC; ``code`` is an Indiana event code (an :class:`EventCode`
    value); ``param`` its parameter (phase, pattern, seconds, status ...).
    """

    seq: int
    time_ds: int
    code: int
    param: int


class EventLog:
    """Bounded hi-res event log with gap-detecting sequence numbers (first row: 1)."""

    __slots__ = ("_next_seq", "_rows")

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("the event log needs room for at least one row")
        self._rows: deque[Event] = deque(maxlen=capacity)
        self._next_seq = 1

    @property
    def capacity(self) -> int:
        """How many rows the log keeps."""
        maxlen = self._rows.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest row (0 when nothing was ever logged)."""
        return self._next_seq - 1

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest row still held (``last_seq + 1`` when empty)."""
        return self._rows[0].seq if self._rows else self._next_seq

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, time_ds: int, code: int, param: int) -> Event:
        """Log one row and return it."""
        event = Event(seq=self._next_seq, time_ds=time_ds, code=code, param=param)
        self._next_seq += 1
        self._rows.append(event)
        return event

    def since(self, seq: int, limit: int | None = None) -> tuple[Event, ...]:
        """Rows with a sequence number greater than ``seq``, oldest first.

        If rows after ``seq`` have already been dropped, the result starts at
        the oldest row held: its ``seq`` is then greater than ``seq + 1``,
        which is how a consumer detects the gap (see :meth:`lost_since`).
        """
        if seq < 0:
            raise ValueError("sequence numbers start at 1; ask since 0 for everything")
        # Walk from the newest end: a poller asks for the few newest rows.
        wanted = min(len(self._rows), max(0, self.last_seq - seq))
        rows = list(islice(reversed(self._rows), wanted))
        rows.reverse()
        if limit is not None:
            del rows[max(0, limit) :]
        return tuple(rows)

    def lost_since(self, seq: int) -> int:
        """How many rows after ``seq`` were dropped before they could be read."""
        return max(0, self.first_seq - seq - 1)

    def all(self) -> tuple[Event, ...]:
        """Every row held, oldest first."""
        return tuple(self._rows)
