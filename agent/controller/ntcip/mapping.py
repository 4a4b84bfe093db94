"""The plan document in NTCIP 1202/1201 objects, and NTCIP status objects as a status value.

Pure functions, no I/O: :func:`plan_writes` turns a validated plan into the
list of object instances and values to SET; :func:`decode_status` turns the
answer to :data:`STATUS_OIDS` into a :class:`ControllerStatus`.

How the plan maps (NTCIP 1202 v02 objects):

===========================  ==============================================  =========
plan                         object (index)                                  units
===========================  ==============================================  =========
phase walk, ped clear        phaseWalk, phasePedestrianClear (phase)         s
phase min / max green        phaseMinimumGreen, phaseMaximum1 (phase)        s
phase yellow, red clear      phaseYellowChange, phaseRedClear (phase)        0.1 s
ring membership              phaseRing (phase), 0 for unused phases          —
barrier groups               phaseConcurrency (phase): the phases of other
                             rings in the same barrier group, one per octet  —
phase enabled                phaseOptions bit 0, other bits preserved        bitmap
rings (service order)        sequenceData (sequence 1, ring)                 octets
pattern ``sequence``         sequenceData (sequence 2.., ring)               octets
pattern n                    patternCycleTime, patternOffsetTime (n),        s
                             patternSplitNumber = n, patternSequenceNumber
pattern n splits             splitTime (n, phase)                            s
                             splitMode: max recall (+ ped recall for the
                             pattern's ped phases): fixed-time operation
                             splitCoordPhase = 1 for coordinated phases
day-plan choices             timebaseAscPattern (action): one action per
                             distinct pattern / free (254) / flash (255)
day-plan events              dayPlanHour, dayPlanMinute,
                             dayPlanActionNumberOID (day plan, event)
schedule entries             timeBaseScheduleMonth (all), Day (bit 1 =
                             Sunday), Date (all), DayPlan (entry)
===========================  ==============================================  =========

NTCIP keeps several of these in **whole seconds**; a plan that uses tenths
there (min green 10.5 s) cannot be written faithfully and is refused before
anything is sent (:class:`NotRepresentable`), never rounded.

Rows the plan does not use are cleared so the controller cannot fall back to a
stale timing: patterns to cycle 0 (free), schedule entries to month 0
(disabled), day-plan events beyond the plan's to hour 0, minute 0, action 0.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from agent.controller.interface import (
    Alarms,
    ControllerStatus,
    ControlSource,
    FlashState,
    Light,
    PatternCommand,
    PedLight,
    PhaseSignal,
    RunningPattern,
)
from agent.errors import ControllerError
from agent.plan.model import Plan, to_tenths
from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import (
    Counter32,
    Gauge32,
    Integer,
    ObjectIdentifier,
    OctetString,
    Oid,
    SnmpValue,
)

#: Phases NTCIP status group 1 covers; the agent drives 8-phase controllers.
STATUS_PHASES = range(1, 9)
ALL_MONTHS = 0x1FFE  # bits 1..12
ALL_DATES = 0xFFFFFFFE  # bits 1..31
NO_ACTION: Oid = (0, 0)
#: Weekday bits of timeBaseScheduleDay: bit 1 = Sunday .. bit 7 = Saturday.
DAY_BITS = {"sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7}


class NotRepresentable(ControllerError):
    """The plan uses a value the protocol cannot carry (e.g. tenths in a seconds object)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(
            "the plan cannot be written to an NTCIP 1202 controller without changing it: "
            + "; ".join(problems)
        )
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Write:
    """One object instance and the value to SET."""

    obj: mib.MibObject
    index: tuple[int, ...]
    value: SnmpValue

    @property
    def oid(self) -> Oid:
        """The instance OID."""
        return self.obj.instance(*self.index)

    @property
    def name(self) -> str:
        """``phaseYellowChange.2``."""
        return mib.describe_oid(self.oid)


@dataclass(frozen=True, kw_only=True)
class ControllerShape:
    """What the plan write needs to know of the controller before writing."""

    max_phases: int = 8
    max_patterns: int = 16
    max_day_plan_events: int = 16
    max_schedule_entries: int = 16
    #: Current phaseOptions per phase (other bits are preserved).
    phase_options: Mapping[int, int] | None = None
    #: Patterns whose cycle is non-zero now (to clear the ones the plan drops).
    live_patterns: frozenset[int] = frozenset()
    #: Schedule entries enabled now.
    live_schedule: frozenset[int] = frozenset()
    #: (day plan, event) rows in use now.
    live_events: frozenset[tuple[int, int]] = frozenset()


class _Writer:
    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.problems: list[str] = []

    def add(self, obj: mib.MibObject, index: tuple[int, ...], raw: int | bytes | Oid) -> None:
        try:
            value = obj.value(raw)
        except ValueError as err:
            self.problems.append(f"{mib.describe_oid(obj.instance(*index))}: {err}")
            return
        self.writes.append(Write(obj, index, value))

    def seconds(self, obj: mib.MibObject, index: tuple[int, ...], value: float, what: str) -> None:
        tenths = to_tenths(value)
        if tenths % 10:
            self.problems.append(f"{what} {value:g} s: NTCIP {obj.name} holds whole seconds only")
            return
        self.add(obj, index, tenths // 10)


def pattern_value(command: PatternCommand) -> int:
    """systemPatternControl value of a command: 0 standby, n, 254 free, 255 flash."""
    match command:
        case "standby":
            return mib.PATTERN_STANDBY
        case "free":
            return mib.PATTERN_FREE
        case "flash":
            return mib.PATTERN_FLASH
        case int(number) if 1 <= number <= 253:
            return number
    raise ValueError(f"not a pattern command: {command!r}")


def _sequences(plan: Plan) -> dict[tuple[tuple[int, ...], ...], int]:
    """Sequence number of each distinct ring order: 1 = the plan's rings."""
    numbers: dict[tuple[tuple[int, ...], ...], int] = {tuple(tuple(ring) for ring in plan.rings): 1}
    for pattern in plan.patterns:
        if pattern.sequence is not None:
            key = tuple(tuple(ring) for ring in pattern.sequence)
            numbers.setdefault(key, len(numbers) + 1)
    return numbers


def plan_writes(plan: Plan, shape: ControllerShape | None = None) -> list[Write]:
    """Every SET that puts ``plan`` into the controller, in a safe order.

    Raises :class:`NotRepresentable` (listing every problem) when a value
    cannot be carried exactly.
    """
    shape = shape or ControllerShape()
    w = _Writer()
    ring_of = {n: r + 1 for r, ring in enumerate(plan.rings) for n in ring}
    group_of = {n: g for g, group in enumerate(plan.barriers) for n in group}
    defined = {p.phase: p for p in plan.phases}
    for n in defined:
        if n > shape.max_phases:
            w.problems.append(f"phase {n}: the controller has only {shape.max_phases} phases")

    # -- phases
    for n in range(1, shape.max_phases + 1):
        options = (shape.phase_options or {}).get(n, 0)
        phase = defined.get(n)
        if phase is None:
            w.add(mib.PHASE_OPTIONS, (n,), options & ~int(mib.PhaseOption.ENABLED))
            w.add(mib.PHASE_RING, (n,), 0)
            continue
        w.seconds(mib.PHASE_MINIMUM_GREEN, (n,), phase.min_green, f"phase {n} min green")
        max_green = phase.max_green if phase.max_green is not None else phase.min_green
        w.seconds(mib.PHASE_MAXIMUM_1, (n,), max_green, f"phase {n} max green")
        w.add(mib.PHASE_YELLOW_CHANGE, (n,), to_tenths(phase.yellow))
        w.add(mib.PHASE_RED_CLEAR, (n,), to_tenths(phase.red_clear))
        w.seconds(mib.PHASE_WALK, (n,), phase.walk or 0.0, f"phase {n} walk")
        w.seconds(
            mib.PHASE_PEDESTRIAN_CLEAR, (n,), phase.ped_clear or 0.0, f"phase {n} ped clearance"
        )
        w.add(mib.PHASE_RING, (n,), ring_of.get(n, 0))
        concurrent = sorted(
            m
            for m in defined
            if m != n
            and ring_of.get(m) != ring_of.get(n)
            and group_of.get(m) is not None
            and group_of.get(m) == group_of.get(n)
        )
        w.add(mib.PHASE_CONCURRENCY, (n,), bytes(concurrent))
        w.add(mib.PHASE_OPTIONS, (n,), options | int(mib.PhaseOption.ENABLED))

    # -- sequences
    sequences = _sequences(plan)
    for rings, number in sequences.items():
        for r, ring in enumerate(rings, start=1):
            w.add(mib.SEQUENCE_DATA, (number, r), bytes(ring))

    # -- splits and patterns
    for pattern in plan.patterns:
        p = pattern.pattern
        if p > shape.max_patterns:
            w.problems.append(f"pattern {p}: the controller has only {shape.max_patterns} patterns")
            continue
        coord = set(pattern.coord_phases)
        peds = set(pattern.ped_phases)
        for key, split in sorted(pattern.splits.items(), key=lambda kv: int(kv[0])):
            n = int(key)
            w.seconds(mib.SPLIT_TIME, (p, n), split, f"pattern {p} phase {n} split")
            mode = (
                mib.SplitMode.MAXIMUM_VEHICLE_AND_PEDESTRIAN_RECALL
                if n in peds
                else mib.SplitMode.MAXIMUM_VEHICLE_RECALL
            )
            w.add(mib.SPLIT_MODE, (p, n), int(mode))
            w.add(mib.SPLIT_COORD_PHASE, (p, n), 1 if n in coord else 0)
        w.seconds(mib.PATTERN_CYCLE_TIME, (p,), pattern.cycle, f"pattern {p} cycle")
        w.seconds(mib.PATTERN_OFFSET_TIME, (p,), pattern.offset, f"pattern {p} offset")
        w.add(mib.PATTERN_SPLIT_NUMBER, (p,), p)
        order = (
            tuple(tuple(ring) for ring in pattern.sequence)
            if pattern.sequence is not None
            else tuple(tuple(ring) for ring in plan.rings)
        )
        w.add(mib.PATTERN_SEQUENCE_NUMBER, (p,), sequences[order])
    for p in sorted(shape.live_patterns - {pattern.pattern for pattern in plan.patterns}):
        w.add(mib.PATTERN_CYCLE_TIME, (p,), 0)

    # -- time base: actions, day plans, schedule
    actions: dict[PatternCommand, int] = {}
    for day_plan in plan.day_plans:
        for event in day_plan.events:
            actions.setdefault(event.pattern, len(actions) + 1)
    for choice, action in actions.items():
        w.add(mib.TIMEBASE_ASC_PATTERN, (action,), pattern_value(choice))
    used_events: set[tuple[int, int]] = set()
    for day_plan in plan.day_plans:
        d = day_plan.day_plan
        ordered = sorted(day_plan.events, key=lambda e: e.at)
        if len(ordered) > shape.max_day_plan_events:
            w.problems.append(
                f"day plan {d}: {len(ordered)} events, the controller holds "
                f"{shape.max_day_plan_events}"
            )
        for e, event in enumerate(ordered, start=1):
            used_events.add((d, e))
            w.add(mib.DAY_PLAN_HOUR, (d, e), int(event.at[:2]))
            w.add(mib.DAY_PLAN_MINUTE, (d, e), int(event.at[3:]))
            action_oid = mib.TIMEBASE_ASC_ACTION_NUMBER.instance(actions[event.pattern])
            w.add(mib.DAY_PLAN_ACTION_NUMBER_OID, (d, e), action_oid)
    for d, e in sorted(shape.live_events - used_events):
        w.add(mib.DAY_PLAN_HOUR, (d, e), 0)
        w.add(mib.DAY_PLAN_MINUTE, (d, e), 0)
        w.add(mib.DAY_PLAN_ACTION_NUMBER_OID, (d, e), NO_ACTION)
    entries = _schedule_entries(plan)
    if len(entries) > shape.max_schedule_entries:
        w.problems.append(
            f"{len(entries)} schedule entries, the controller holds {shape.max_schedule_entries}"
        )
    for s, (days, day_plan_number) in enumerate(entries, start=1):
        w.add(mib.TIME_BASE_SCHEDULE_MONTH, (s,), ALL_MONTHS)
        w.add(mib.TIME_BASE_SCHEDULE_DAY, (s,), days)
        w.add(mib.TIME_BASE_SCHEDULE_DATE, (s,), ALL_DATES)
        w.add(mib.TIME_BASE_SCHEDULE_DAY_PLAN, (s,), day_plan_number)
    for s in sorted(shape.live_schedule - set(range(1, len(entries) + 1))):
        w.add(mib.TIME_BASE_SCHEDULE_MONTH, (s,), 0)

    if w.problems:
        raise NotRepresentable(w.problems)
    return w.writes


def _schedule_entries(plan: Plan) -> list[tuple[int, int]]:
    """(weekday bitmap, day plan) per schedule entry, in plan order."""
    entries = []
    for entry in plan.schedule:
        bits = 0
        for day in entry.days:
            bits |= 1 << DAY_BITS[day]
        entries.append((bits, entry.day_plan))
    return entries


def same_value(written: SnmpValue, read: SnmpValue) -> bool:
    """Does a read-back equal what was written (types as controllers return them)?"""
    numeric = (Integer, Counter32, Gauge32)
    if isinstance(written, numeric) and isinstance(read, numeric):
        return written.value == read.value
    if isinstance(written, OctetString) and isinstance(read, OctetString):
        return written.value == read.value
    if isinstance(written, ObjectIdentifier) and isinstance(read, ObjectIdentifier):
        return written.value == read.value
    return written == read


# -- status ------------------------------------------------------------------------------

_GROUP = 1
STATUS_OBJECTS: tuple[mib.MibObject, ...] = (
    mib.PHASE_STATUS_GROUP_REDS,
    mib.PHASE_STATUS_GROUP_YELLOWS,
    mib.PHASE_STATUS_GROUP_GREENS,
    mib.PHASE_STATUS_GROUP_DONT_WALKS,
    mib.PHASE_STATUS_GROUP_PED_CLEARS,
    mib.PHASE_STATUS_GROUP_WALKS,
)
STATUS_SCALARS: tuple[mib.MibObject, ...] = (
    mib.COORD_PATTERN_STATUS,
    mib.LOCAL_FREE_STATUS,
    mib.COORD_CYCLE_STATUS,
    mib.SYSTEM_PATTERN_CONTROL,
    mib.UNIT_CONTROL_STATUS,
    mib.UNIT_FLASH_STATUS,
    mib.UNIT_ALARM_STATUS_1,
    mib.UNIT_ALARM_STATUS_2,
    mib.SHORT_ALARM_STATUS,
    mib.UNIT_BACKUP_TIME,
    mib.GLOBAL_TIME,
)
#: What one status poll GETs, in order (17 varbinds, one PDU).
STATUS_OIDS: tuple[Oid, ...] = tuple(o.instance(_GROUP) for o in STATUS_OBJECTS) + tuple(
    o.instance() for o in STATUS_SCALARS
)

_CONTROL = {
    mib.UnitControlStatus.SYSTEM_CONTROL: ControlSource.SYSTEM,
    mib.UnitControlStatus.SYSTEM_STANDBY: ControlSource.STANDBY,
    mib.UnitControlStatus.BACKUP_MODE: ControlSource.BACKUP,
    mib.UnitControlStatus.MANUAL: ControlSource.MANUAL,
    mib.UnitControlStatus.TIMEBASE: ControlSource.TIMEBASE,
    mib.UnitControlStatus.INTERCONNECT: ControlSource.INTERCONNECT,
    mib.UnitControlStatus.INTERCONNECT_BACKUP: ControlSource.INTERCONNECT,
}
_FLASH = {
    mib.UnitFlashStatus.NOT_FLASH: FlashState.NOT_FLASH,
    mib.UnitFlashStatus.AUTOMATIC: FlashState.AUTOMATIC,
    mib.UnitFlashStatus.LOCAL_MANUAL: FlashState.LOCAL_MANUAL,
    mib.UnitFlashStatus.FAULT_MONITOR: FlashState.FAULT_MONITOR,
    mib.UnitFlashStatus.MMU: FlashState.MMU,
    mib.UnitFlashStatus.STARTUP: FlashState.STARTUP,
    mib.UnitFlashStatus.PREEMPT: FlashState.PREEMPT,
}


def _int(value: SnmpValue) -> int:
    if isinstance(value, Integer | Counter32 | Gauge32):
        return value.value
    if isinstance(value, OctetString) and len(value.value) <= 4:
        return int.from_bytes(value.value, "big")
    raise ControllerError(f"expected a number, the controller sent {value!r}")


def running_pattern(value: int) -> RunningPattern:
    """coordPatternStatus as a pattern: 0 none, 254 free, 255 flash."""
    if value == mib.PATTERN_FREE:
        return "free"
    if value == mib.PATTERN_FLASH:
        return "flash"
    if 1 <= value <= 253:
        return value
    return "none"


def commanded_pattern(value: int) -> PatternCommand:
    """systemPatternControl as a command."""
    if value == mib.PATTERN_STANDBY:
        return "standby"
    if value == mib.PATTERN_FREE:
        return "free"
    if value == mib.PATTERN_FLASH:
        return "flash"
    return value


def _enum_name(enum_type: type[IntEnum], value: int) -> str:
    try:
        return str(enum_type(value).name).lower()
    except ValueError:
        return f"unknown_{value}"


def decode_status(values: Sequence[SnmpValue], *, received_at: float) -> ControllerStatus:
    """The answer to :data:`STATUS_OIDS` as one status value."""
    if len(values) != len(STATUS_OIDS):
        raise ControllerError(f"status poll answered {len(values)} of {len(STATUS_OIDS)} values")
    reds, yellows, greens, dont_walks, ped_clears, walks = (_int(v) & 0xFF for v in values[:6])
    (
        pattern,
        free_status,
        cycle,
        commanded,
        control,
        flash,
        alarm1,
        alarm2,
        short,
        backup,
        clock,
    ) = (_int(v) for v in values[6:])
    phases = []
    for n in STATUS_PHASES:
        bit = 1 << (n - 1)
        light = (
            Light.GREEN
            if greens & bit
            else Light.YELLOW
            if yellows & bit
            else Light.RED
            if reds & bit
            else Light.DARK
        )
        ped = (
            PedLight.WALK
            if walks & bit
            else PedLight.PED_CLEAR
            if ped_clears & bit
            else PedLight.DONT_WALK
            if dont_walks & bit
            else PedLight.DARK
        )
        phases.append(PhaseSignal(phase=n, light=light, ped=ped))
    try:
        control_source = _CONTROL.get(mib.UnitControlStatus(control), ControlSource.OTHER)
    except ValueError:
        control_source = ControlSource.OTHER
    try:
        flash_state = _FLASH.get(mib.UnitFlashStatus(flash), FlashState.OTHER)
    except ValueError:
        flash_state = FlashState.OTHER
    return ControllerStatus(
        received_at=received_at,
        phases=tuple(phases),
        pattern=running_pattern(pattern),
        commanded=commanded_pattern(commanded),
        free_status=_enum_name(mib.LocalFreeStatus, free_status),
        cycle_time_s=cycle,
        control=control_source,
        flash=flash_state,
        alarms=Alarms(unit1=alarm1, unit2=alarm2, short=short),
        controller_time=clock,
        backup_time_s=backup,
    )
