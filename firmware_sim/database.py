"""The controller's timing database: NTCIP 1202/1201-shaped tables as plain data.

A real controller holds its timing in tables that central writes object by
object over SNMP; the simulator does the same, so the SNMP front end can map
each OID onto one setter here. The tables (NTCIP object names in brackets):

==================  =====================================================
phase table         walk, ped clear, min green, max green (maximum1), yellow,
                    red clear, ring, concurrency  [asc.1.2.1]
sequence table      per ring, the phase service order  [asc.7.3.1]
split table         (split number, phase) -> split time, mode, coord flag
                    [asc.4.9.1]
pattern table       cycle, offset, split number, sequence number  [asc.4.7.1]
time-base actions   action -> pattern value  [asc.5.3.1]
day plans           (day plan, event) -> hour, minute, action  [1201 3.5.1]
time-base schedule  month / day-of-week / date masks -> day plan  [1201 3.2.1]
channel table       channel -> source phase, vehicle or pedestrian  [asc.8.2.1]
unit parameters     start-up flash, red revert, correction mode
==================  =====================================================

**Units.** Every time is an integer number of tenths of a second (``*_ds``),
including the ones NTCIP encodes in whole seconds (walk, min green, cycle,
offset, split): the plan document works on a 0.1 s grid and the engine must
stay exact. The front end converts at the wire.

**Writes.** Each setter checks the value against the range the object can
encode (NTCIP / NEMA TS 2 ranges) and raises :class:`DatabaseValueError`
otherwise -- the front end answers that with ``badValue``. A value that is
encodable but unworkable (a split below its phase's minimum, a cycle that
cannot hold the minimums) is accepted, exactly as a controller accepts it;
the engine judges a pattern when it is selected and runs free if it must
(:mod:`firmware_sim.coordination`). Every accepted write bumps
:attr:`TimingDatabase.revision`. Writes take effect at the next cycle
boundary: an interval that is already timing is never changed.

:func:`database_from_plan` loads a whole plan document (SPEC §5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum

from agent.plan.model import WEEKDAYS, Plan, to_tenths
from firmware_sim.status import CorrectionMode

MAX_PHASES = 16
MAX_CHANNELS = 16
MAX_RINGS = 4

#: All months (bit 1 = January ... bit 12 = December), as in timeBaseScheduleMonth.
ALL_MONTHS = 0x1FFE
#: All days of the month (bit n = day n), as in timeBaseScheduleDate.
ALL_DATES = 0xFFFFFFFE
#: timeBaseScheduleDay bit for each plan weekday name (bit 1 = Sunday ... bit 7 = Saturday).
WEEKDAY_BITS: dict[str, int] = {
    "sun": 1 << 1,
    "mon": 1 << 2,
    "tue": 1 << 3,
    "wed": 1 << 4,
    "thu": 1 << 5,
    "fri": 1 << 6,
    "sat": 1 << 7,
}
ALL_DAYS = sum(WEEKDAY_BITS.values())

#: Time-base action pattern values with special meaning.
ACTION_NONE = 0
ACTION_FREE = 254
ACTION_FLASH = 255

#: Peds of the even (through) phases on channels 13-16: the common TS2 cabinet map.
TS2_PED_CHANNELS: dict[int, int] = {2: 13, 4: 14, 6: 15, 8: 16}


class DatabaseValueError(ValueError):
    """A write outside the range the object can hold (SNMP ``badValue``)."""


class SplitMode(IntEnum):
    """``splitMode`` (asc.4.9.1.4)."""

    OTHER = 1
    NONE = 2
    MIN_VEHICLE_RECALL = 3
    MAX_VEHICLE_RECALL = 4
    PED_RECALL = 5
    MAX_VEHICLE_PED_RECALL = 6
    OMITTED = 7


#: Split modes under which the phase's pedestrian movement is served in coordination.
PED_SERVED_MODES = frozenset({SplitMode.PED_RECALL, SplitMode.MAX_VEHICLE_PED_RECALL})


class ChannelType(IntEnum):
    """``channelControlType`` (asc.8.2.1.3)."""

    OTHER = 1
    VEHICLE = 2
    PEDESTRIAN = 3
    OVERLAP = 4


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseRow:
    """One row of the phase table; ``ring`` 0 means the phase is not used."""

    phase: int
    walk_ds: int = 0
    ped_clear_ds: int = 0
    min_green_ds: int = 50
    #: Maximum 1; 0 = none (free operation then times min green, see engine docs).
    max_green_ds: int = 0
    yellow_ds: int = 30
    red_clear_ds: int = 0
    ring: int = 0
    #: Phases of other rings that may time together with this one (phaseConcurrency).
    concurrency: tuple[int, ...] = ()

    @property
    def has_ped(self) -> bool:
        """True when the phase has a pedestrian movement (a walk time)."""
        return self.walk_ds > 0

    @property
    def clearance_ds(self) -> int:
        """Yellow plus red clearance."""
        return self.yellow_ds + self.red_clear_ds


@dataclass(frozen=True, kw_only=True, slots=True)
class SequenceRow:
    """A phase sequence: for each ring (index 0 = ring 1) the phases in service order."""

    sequence: int
    rings: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class SplitRow:
    """One row of the split table: a phase's split in one split plan."""

    split: int
    phase: int
    time_ds: int = 0
    mode: SplitMode = SplitMode.NONE
    coord: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class PatternRow:
    """One row of the pattern table. A cycle of 0 means free, splits used as maximums."""

    pattern: int
    cycle_ds: int = 0
    offset_ds: int = 0
    split: int = 1
    sequence: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionRow:
    """A time-base action: the pattern value it calls (0 none, 1-253, 254 free, 255 flash)."""

    action: int
    pattern: int = ACTION_NONE


@dataclass(frozen=True, kw_only=True, slots=True)
class DayPlanEventRow:
    """One event of a day plan: from ``hour:minute`` local time, run ``action``."""

    day_plan: int
    event: int
    hour: int
    minute: int
    action: int

    @property
    def minute_of_day(self) -> int:
        """Minutes since local midnight."""
        return self.hour * 60 + self.minute


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleRow:
    """One row of the time-base schedule: when ``day_plan`` applies."""

    entry: int
    months: int = ALL_MONTHS
    days: int = ALL_DAYS
    dates: int = ALL_DATES
    day_plan: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelRow:
    """One load-switch channel: which phase drives it, as a vehicle or ped signal."""

    channel: int
    source: int
    kind: ChannelType


@dataclass(frozen=True, kw_only=True, slots=True)
class UnitParameters:
    """Unit-level objects: ``unitStartUpFlash``, ``unitRedRevert``, ``coordCorrectionMode``."""

    startup_flash_s: int = 5
    #: All-red time before the first green after any flash, tenths (unitRedRevert).
    red_revert_ds: int = 20
    correction_mode: CorrectionMode = CorrectionMode.SHORTWAY


def _check(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DatabaseValueError(f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise DatabaseValueError(f"{name} = {value} is outside {low}..{high}")
    return value


class TimingDatabase:
    """The controller's tables, readable as mappings and writable object by object."""

    def __init__(self) -> None:
        self._phases: dict[int, PhaseRow] = {}
        self._sequences: dict[int, SequenceRow] = {}
        self._splits: dict[tuple[int, int], SplitRow] = {}
        self._patterns: dict[int, PatternRow] = {}
        self._actions: dict[int, ActionRow] = {}
        self._day_plan_events: dict[tuple[int, int], DayPlanEventRow] = {}
        self._schedule: dict[int, ScheduleRow] = {}
        self._channels: dict[int, ChannelRow] = {}
        self._unit = UnitParameters()
        self.revision = 0

    # -- reading ---------------------------------------------------------------

    @property
    def phases(self) -> Mapping[int, PhaseRow]:
        """Phase table, by phase number."""
        return self._phases

    @property
    def sequences(self) -> Mapping[int, SequenceRow]:
        """Sequence table, by sequence number."""
        return self._sequences

    @property
    def splits(self) -> Mapping[tuple[int, int], SplitRow]:
        """Split table, by (split number, phase)."""
        return self._splits

    @property
    def patterns(self) -> Mapping[int, PatternRow]:
        """Pattern table, by pattern number."""
        return self._patterns

    @property
    def actions(self) -> Mapping[int, ActionRow]:
        """Time-base action table, by action number."""
        return self._actions

    @property
    def day_plan_events(self) -> Mapping[tuple[int, int], DayPlanEventRow]:
        """Day plan table, by (day plan, event number)."""
        return self._day_plan_events

    @property
    def schedule(self) -> Mapping[int, ScheduleRow]:
        """Time-base schedule, by entry number."""
        return self._schedule

    @property
    def channels(self) -> Mapping[int, ChannelRow]:
        """Channel table, by channel number."""
        return self._channels

    @property
    def unit(self) -> UnitParameters:
        """Unit-level parameters."""
        return self._unit

    def active_phases(self) -> tuple[int, ...]:
        """Phases in use (assigned to a ring), ascending."""
        return tuple(sorted(p for p, row in self._phases.items() if row.ring > 0))

    def split_row(self, split: int, phase: int) -> SplitRow | None:
        """The split row for ``phase`` in split plan ``split``, if any."""
        return self._splits.get((split, phase))

    def day_plan(self, day_plan: int) -> tuple[DayPlanEventRow, ...]:
        """The events of one day plan, in time order."""
        rows = [r for (plan, _), r in self._day_plan_events.items() if plan == day_plan]
        return tuple(sorted(rows, key=lambda r: (r.minute_of_day, r.event)))

    def copy(self) -> TimingDatabase:
        """An independent copy (rows are immutable, so the tables are copied shallowly)."""
        other = TimingDatabase()
        other._phases = dict(self._phases)
        other._sequences = dict(self._sequences)
        other._splits = dict(self._splits)
        other._patterns = dict(self._patterns)
        other._actions = dict(self._actions)
        other._day_plan_events = dict(self._day_plan_events)
        other._schedule = dict(self._schedule)
        other._channels = dict(self._channels)
        other._unit = self._unit
        other.revision = self.revision
        return other

    # -- writing ---------------------------------------------------------------

    def _bump(self) -> None:
        self.revision += 1

    def set_phase(
        self,
        phase: int,
        *,
        walk_ds: int | None = None,
        ped_clear_ds: int | None = None,
        min_green_ds: int | None = None,
        max_green_ds: int | None = None,
        yellow_ds: int | None = None,
        red_clear_ds: int | None = None,
        ring: int | None = None,
        concurrency: Iterable[int] | None = None,
    ) -> PhaseRow:
        """Write objects of one phase row (created with defaults if new)."""
        _check("phase", phase, 1, MAX_PHASES)
        row = self._phases.get(phase) or PhaseRow(phase=phase)
        changes: dict[str, object] = {}
        if walk_ds is not None:
            changes["walk_ds"] = _check("phaseWalk", walk_ds, 0, 2550)
        if ped_clear_ds is not None:
            changes["ped_clear_ds"] = _check("phasePedestrianClear", ped_clear_ds, 0, 2550)
        if min_green_ds is not None:
            changes["min_green_ds"] = _check("phaseMinimumGreen", min_green_ds, 10, 2550)
        if max_green_ds is not None:
            changes["max_green_ds"] = _check("phaseMaximum1", max_green_ds, 0, 2550)
        if yellow_ds is not None:
            # NEMA TS 2 range 3.0-25.5 s: the controller refuses a shorter yellow.
            changes["yellow_ds"] = _check("phaseYellowChange", yellow_ds, 30, 255)
        if red_clear_ds is not None:
            changes["red_clear_ds"] = _check("phaseRedClear", red_clear_ds, 0, 255)
        if ring is not None:
            changes["ring"] = _check("phaseRing", ring, 0, MAX_RINGS)
        if concurrency is not None:
            phases = tuple(concurrency)
            for other in phases:
                _check("phaseConcurrency entry", other, 1, MAX_PHASES)
            changes["concurrency"] = phases
        row = replace(row, **changes)  # type: ignore[arg-type]
        self._phases[phase] = row
        self._bump()
        return row

    def set_sequence(self, sequence: int, ring: int, phases: Iterable[int]) -> SequenceRow:
        """Write the service order of one ring in one sequence (``sequenceData``)."""
        _check("sequence", sequence, 1, 255)
        _check("ring", ring, 1, MAX_RINGS)
        order = tuple(phases)
        for phase in order:
            _check("sequenceData entry", phase, 1, MAX_PHASES)
        if len(set(order)) != len(order):
            raise DatabaseValueError(f"sequence {sequence} ring {ring} repeats a phase")
        old = self._sequences.get(sequence)
        rings = list(old.rings) if old else []
        while len(rings) < ring:
            rings.append(())
        rings[ring - 1] = order
        row = SequenceRow(sequence=sequence, rings=tuple(rings))
        self._sequences[sequence] = row
        self._bump()
        return row

    def set_split(
        self,
        split: int,
        phase: int,
        *,
        time_ds: int | None = None,
        mode: SplitMode | int | None = None,
        coord: bool | None = None,
    ) -> SplitRow:
        """Write objects of one split row (created if new)."""
        _check("split", split, 1, 255)
        _check("splitPhase", phase, 1, MAX_PHASES)
        row = self._splits.get((split, phase)) or SplitRow(split=split, phase=phase)
        if time_ds is not None:
            row = replace(row, time_ds=_check("splitTime", time_ds, 0, 2550))
        if mode is not None:
            row = replace(row, mode=SplitMode(_check("splitMode", int(mode), 1, 7)))
        if coord is not None:
            row = replace(row, coord=bool(coord))
        self._splits[(split, phase)] = row
        self._bump()
        return row

    def set_pattern(
        self,
        pattern: int,
        *,
        cycle_ds: int | None = None,
        offset_ds: int | None = None,
        split: int | None = None,
        sequence: int | None = None,
    ) -> PatternRow:
        """Write objects of one pattern row (created if new)."""
        _check("pattern", pattern, 1, 253)
        row = self._patterns.get(pattern) or PatternRow(pattern=pattern)
        if cycle_ds is not None:
            row = replace(row, cycle_ds=_check("patternCycleTime", cycle_ds, 0, 2550))
        if offset_ds is not None:
            row = replace(row, offset_ds=_check("patternOffsetTime", offset_ds, 0, 2550))
        if split is not None:
            row = replace(row, split=_check("patternSplitNumber", split, 1, 255))
        if sequence is not None:
            row = replace(row, sequence=_check("patternSequenceNumber", sequence, 1, 255))
        self._patterns[pattern] = row
        self._bump()
        return row

    def set_action(self, action: int, pattern: int) -> ActionRow:
        """Write the pattern value a time-base action calls."""
        _check("timebaseAscActionNumber", action, 1, 255)
        row = ActionRow(action=action, pattern=_check("timebaseAscPattern", pattern, 0, 255))
        self._actions[action] = row
        self._bump()
        return row

    def set_day_plan_event(
        self, day_plan: int, event: int, *, hour: int, minute: int, action: int
    ) -> DayPlanEventRow:
        """Write one day-plan event."""
        row = DayPlanEventRow(
            day_plan=_check("dayPlanNumber", day_plan, 1, 255),
            event=_check("dayPlanEventNumber", event, 1, 255),
            hour=_check("dayPlanHour", hour, 0, 23),
            minute=_check("dayPlanMinute", minute, 0, 59),
            action=_check("dayPlanActionNumber", action, 0, 255),
        )
        self._day_plan_events[(day_plan, event)] = row
        self._bump()
        return row

    def set_schedule(
        self,
        entry: int,
        *,
        day_plan: int,
        months: int = ALL_MONTHS,
        days: int = ALL_DAYS,
        dates: int = ALL_DATES,
    ) -> ScheduleRow:
        """Write one time-base schedule row (masks as in NTCIP 1201)."""
        row = ScheduleRow(
            entry=_check("timeBaseScheduleNumber", entry, 1, 255),
            months=_check("timeBaseScheduleMonth", months, 0, 0xFFFF),
            days=_check("timeBaseScheduleDay", days, 0, 0xFF),
            dates=_check("timeBaseScheduleDate", dates, 0, 0xFFFFFFFF),
            day_plan=_check("timeBaseScheduleDayPlan", day_plan, 0, 255),
        )
        self._schedule[entry] = row
        self._bump()
        return row

    def set_channel(self, channel: int, *, source: int, kind: ChannelType | int) -> ChannelRow:
        """Write one channel row (source 0 disables the channel)."""
        row = ChannelRow(
            channel=_check("channel", channel, 1, MAX_CHANNELS),
            source=_check("channelControlSource", source, 0, MAX_PHASES),
            kind=ChannelType(_check("channelControlType", int(kind), 1, 4)),
        )
        self._channels[channel] = row
        self._bump()
        return row

    def set_unit(
        self,
        *,
        startup_flash_s: int | None = None,
        red_revert_ds: int | None = None,
        correction_mode: CorrectionMode | int | None = None,
    ) -> UnitParameters:
        """Write unit-level objects."""
        unit = self._unit
        if startup_flash_s is not None:
            unit = replace(
                unit, startup_flash_s=_check("unitStartUpFlash", startup_flash_s, 0, 255)
            )
        if red_revert_ds is not None:
            unit = replace(unit, red_revert_ds=_check("unitRedRevert", red_revert_ds, 0, 255))
        if correction_mode is not None:
            mode = CorrectionMode(_check("coordCorrectionMode", int(correction_mode), 1, 4))
            unit = replace(unit, correction_mode=mode)
        self._unit = unit
        self._bump()
        return unit


def _pattern_value(value: int | str) -> int:
    if value == "free":
        return ACTION_FREE
    if value == "flash":
        return ACTION_FLASH
    assert isinstance(value, int)
    return value


def database_from_plan(plan: Plan, *, unit: UnitParameters | None = None) -> TimingDatabase:
    """Load a plan document into a fresh timing database.

    * phase table: ring from ``rings``, concurrency from ``barriers`` (the
      phases of other rings in the same barrier group);
    * sequence 1 is ``rings``; each distinct pattern ``sequence`` gets the
      next sequence number;
    * split plan *n* belongs to pattern *n*: every ring phase gets a row;
      ``ped_phases`` get ``maxVehicleAndPedestrianRecall`` (the ped is served
      every cycle), the others ``maximumVehicleRecall`` (fixed time, no
      detectors); ``coord_phases`` get the coord flag;
    * time base: one action per distinct pattern value in the day plans,
      day plans as dated events, one schedule row per schedule entry;
    * channels: the common TS2 map -- vehicle phase *n* on channel *n*
      (phases 1-12), the peds of phases 2/4/6/8 on channels 13-16.

    Raises :class:`DatabaseValueError` when a value does not fit its table
    (for example a red clearance above 25.5 s, which the validator rejects
    too).
    """
    db = TimingDatabase()
    ring_of = {phase: index + 1 for index, ring in enumerate(plan.rings) for phase in ring}
    for spec in plan.phases:
        ring = ring_of.get(spec.phase, 0)
        concurrent: set[int] = set()
        for group in plan.barriers:
            if spec.phase in group:
                concurrent.update(p for p in group if ring_of.get(p, 0) not in (0, ring))
        db.set_phase(
            spec.phase,
            walk_ds=to_tenths(spec.walk) if spec.walk is not None else 0,
            ped_clear_ds=to_tenths(spec.ped_clear) if spec.ped_clear is not None else 0,
            min_green_ds=to_tenths(spec.min_green),
            max_green_ds=to_tenths(spec.max_green) if spec.max_green is not None else 0,
            yellow_ds=to_tenths(spec.yellow),
            red_clear_ds=to_tenths(spec.red_clear),
            ring=ring,
            concurrency=sorted(concurrent),
        )
    sequences: list[tuple[tuple[int, ...], ...]] = [tuple(tuple(r) for r in plan.rings)]
    for pattern in plan.patterns:
        if pattern.sequence is not None:
            order = tuple(tuple(r) for r in pattern.sequence)
            if order not in sequences:
                sequences.append(order)
    for number, order in enumerate(sequences, start=1):
        for ring_index, ring_order in enumerate(order, start=1):
            db.set_sequence(number, ring_index, ring_order)
    ring_phases = [phase for ring in plan.rings for phase in ring]
    for pattern in plan.patterns:
        number = pattern.pattern
        for phase in ring_phases:
            split_ds = pattern.split_ds(phase)
            if split_ds is None or split_ds == 0:
                mode = SplitMode.OMITTED
            elif phase in pattern.ped_phases:
                mode = SplitMode.MAX_VEHICLE_PED_RECALL
            else:
                mode = SplitMode.MAX_VEHICLE_RECALL
            db.set_split(
                number,
                phase,
                time_ds=split_ds or 0,
                mode=mode,
                coord=phase in pattern.coord_phases,
            )
        sequence = 1
        if pattern.sequence is not None:
            sequence = sequences.index(tuple(tuple(r) for r in pattern.sequence)) + 1
        db.set_pattern(
            number,
            cycle_ds=to_tenths(pattern.cycle),
            offset_ds=to_tenths(pattern.offset),
            split=number,
            sequence=sequence,
        )
    action_of: dict[int, int] = {}
    for day_plan in plan.day_plans:
        events = sorted(day_plan.events, key=lambda e: e.at)
        for index, event in enumerate(events, start=1):
            minute = event.minute_of_day
            if minute is None:
                raise DatabaseValueError(f"day plan {day_plan.day_plan}: {event.at} is not a time")
            value = _pattern_value(event.pattern)
            if value not in action_of:
                action_of[value] = len(action_of) + 1
                db.set_action(action_of[value], value)
            db.set_day_plan_event(
                day_plan.day_plan,
                index,
                hour=minute // 60,
                minute=minute % 60,
                action=action_of[value],
            )
    for index, entry in enumerate(plan.schedule, start=1):
        days = 0
        for day in entry.days:
            assert day in WEEKDAYS
            days |= WEEKDAY_BITS[day]
        db.set_schedule(index, day_plan=entry.day_plan, days=days)
    known = {spec.phase for spec in plan.phases}
    for phase in sorted(known):
        if phase <= 12:
            db.set_channel(phase, source=phase, kind=ChannelType.VEHICLE)
    for phase, channel in TS2_PED_CHANNELS.items():
        ped_phase = plan.phase(phase)
        if ped_phase is not None and ped_phase.has_ped:
            db.set_channel(channel, source=phase, kind=ChannelType.PEDESTRIAN)
    if unit is not None:
        db.set_unit(
            startup_flash_s=unit.startup_flash_s,
            red_revert_ds=unit.red_revert_ds,
            correction_mode=unit.correction_mode,
        )
    return db
