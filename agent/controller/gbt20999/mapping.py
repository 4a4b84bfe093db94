"""The plan document in GB/T 20999-2017 objects, and GB/T status as the status value.

Pure functions, no I/O: :func:`plan_writes` turns a validated plan into the
attribute values to set; :func:`decode_status` turns the answer to
:func:`status_addresses` into a :class:`ControllerStatus`.

**Phases.** Plan phase *n* (1-16) is GB/T phase *n*. A plan phase with a
crossing (``walk``) also gets a **pedestrian phase** *16 + n*: GB/T times a
pedestrian movement as a phase of its own, whose green is the walk and whose
green flash (行人绿闪) is the pedestrian clearance. The light groups of each
phase (4.2.2) are the cabinet's wiring and are read, never written.

**Stages from rings and barriers.** A NEMA pattern runs each ring's phases
in turn and the rings meet at the barriers; a GB/T scheme runs a chain of
stages (相位阶段), each a set of phases green together. Laying the rings of
a pattern side by side, every instant at which some ring changes phase
starts a new stage::

    ring 1   | 1 (18) |        2 (52)        || 3 (15) |     4 (35)      |
    ring 2   | 5 (16)|      6 (54)           || 7 (14)|      8 (36)      |
    stages   |{1,5}16|{1,6}2|  {2,6}  52     ||{3,7}14|{3,8}1| {4,8} 35  |

A stage's time runs from the green of the phases that start it to the end
of the clearance (yellow, red) of the phases that end with it, so a scheme's
stage times add up to its cycle. A served crossing's pedestrian phase joins
every stage of its vehicle phase. Stages are numbered over all patterns in
order of first appearance (the same phase set is one stage). The scheme's
coordinated stage (协调序号) is the stage in which the first coordinated
phase's green begins, the TS2 offset reference, so the offset is the plan's.

===========================  ==============================================  =====
plan                         GB/T attribute (element)                         units
===========================  ==============================================  =====
phase min / max green        4.2.27, 4.2.28 (phase)                           s
yellow, red clearance        4.2.3-8 lose transition: yellow (time),          s
                             red (time), none
(no gain transition)         4.2.9-14: none
walk, ped clearance          4.2.27 min green, 4.2.3-8 green flash (time)      s
                             of pedestrian phase 16 + n
stages                       6.2.2 phases of each stage (bitmap)              —
pattern n                    scheme n: 9.2.3 cycle, 9.2.4 coordinated         s
                             stage, 9.2.5 offset, 9.2.6 stage chain,
                             9.2.7 stage times, 9.2.8 stage types (fixed)
day plan events              11.2.3 start times, 11.2.4 schemes, 11.2.5       —
                             run modes: pattern → local coordinated (0x23),
                             free → local actuated (0x22), flash → yellow
                             flash (0x31)
schedule entries             12.2.3 priority (entry order), 12.2.4 weekdays,  —
                             12.2.5 months (all), 12.2.6 days (all),
                             12.2.7 day plan
===========================  ==============================================  =====

GB/T keeps every one of these times in **whole seconds**; a plan that uses
tenths (a 3.5 s yellow) cannot be written faithfully and is refused before
anything is sent (:class:`NotRepresentable`), never rounded. Rows the
controller has in use that the plan drops are cleared: stages to no phases,
schemes to cycle 0 and an empty chain, schedule entries to day plan 0.

**Commands** go through center control (17.1, element = the intersection):
pattern *n* → forced scheme *n*, run mode center coordinated (0x13); free →
run mode local actuated (0x22); flash → yellow flash (0x31); standby → run
mode center day plan (0x11, 中心日计划控制): the controller runs its own
schedule while the center still watches it.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

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
from agent.errors import ControllerError, ProtocolError
from agent.plan.model import Pattern, Plan, to_tenths
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.message import Address
from agent.protocols.gbt20999.objects import Attribute, LightState, RunMode, StageType

#: Pedestrian phase of plan phase n: GB/T phase PED_PHASE_OFFSET + n.
PED_PHASE_OFFSET: Final = 16
#: Plan phases (1-16) the status reports.
STATUS_PHASES: Final = range(1, 17)
#: Positions of a scheme's stage chain (9.2.6 holds 16 stage numbers).
MAX_CHAIN: Final = 16
#: Periods of a day plan (11.2.3-5 hold 48).
MAX_PERIODS: Final = 48
#: Module fault bits (13.1.2) the simulator sets; a real controller's bits are its own.
MODULE_CONFLICT_MONITOR: Final = 0
MODULE_STARTUP: Final = 1
#: The scheme's and day plan's intersection row (路口序号) when nothing else is known.
DEFAULT_INTERSECTION: Final = 1
ALL_MONTHS: Final = frozenset(range(1, 13))
ALL_DAYS: Final = frozenset(range(1, 32))
#: Weekday numbers of 12.2.4 (bit 0 = Sunday).
WEEKDAY_NUMBERS: Final = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

#: Run modes that mean "run the forced scheme" (center, local fixed/coordinated).
SCHEME_MODES: Final = frozenset(
    {
        RunMode.CENTER,
        RunMode.CENTER_COORDINATED,
        RunMode.LOCAL_FIXED_CYCLE,
        RunMode.LOCAL_COORDINATED,
    }
)
#: Run modes of an intersection running uncoordinated (free, in NEMA terms).
FREE_MODES: Final = frozenset(
    {
        RunMode.CENTER_OPTIMISED,
        RunMode.CENTER_ADAPTIVE,
        RunMode.LOCAL_ACTUATED,
        RunMode.LOCAL_ADAPTIVE,
    }
)
#: A center-control run mode of 0: no center control.
NO_MODE: Final = 0


class NotRepresentable(ControllerError):
    """The plan uses a value GB/T 20999 cannot carry (tenths, too many stages ...)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(
            "the plan cannot be written to a GB/T 20999 controller without changing it: "
            + "; ".join(problems)
        )
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Write:
    """One attribute of one row and the value bytes to set."""

    attribute: Attribute[Any]
    element: int
    value: bytes

    @property
    def address(self) -> Address:
        """``9.2.3.1``."""
        return self.attribute.at(self.element)

    @property
    def name(self) -> str:
        """``scheme.cycle[1]``."""
        return gbt.describe(self.address)


def show_value(attribute: Attribute[Any] | None, raw: bytes) -> str:
    """A value as a technician reads it: ``120``, ``{1, 5}``, ``1 2 3 4``, ``yellow``."""
    if attribute is None:
        return raw.hex(" ") if raw else "''"
    try:
        value = attribute.decode(raw)
    except (ProtocolError, ValueError):
        return raw.hex(" ") if raw else "''"
    if isinstance(value, frozenset):
        return "{" + ", ".join(str(item) for item in sorted(value)) + "}"
    if isinstance(value, tuple):
        items = list(value)
        while items and items[-1] in (0, (0, 0)):
            items.pop()
        if items and isinstance(items[0], tuple):
            return " ".join(f"{h:02d}:{m:02d}" for h, m in items) or "-"
        return " ".join(str(item) for item in items) or "-"
    if isinstance(value, int) and attribute.enum is not None:
        try:
            return f"{attribute.enum(value).name.lower()} (0x{value:02X})"
        except ValueError:
            return str(value)
    if isinstance(value, bytes):
        return value.hex(" ") if value else "''"
    return str(value)


def same_value(attribute: Attribute[Any], written: bytes, read: bytes) -> bool:
    """Does a read-back hold what was written? (Text compares without its zero padding.)"""
    if written == read:
        return True
    try:
        return bool(attribute.decode(written) == attribute.decode(read))
    except (ProtocolError, ValueError):
        return False


# ------------------------------------------------------------------- stages


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemeLayout:
    """One pattern as a GB/T scheme: its stage chain, stage times and coordination."""

    scheme: int
    cycle_s: int
    offset_s: int
    #: Stage numbers in running order.
    chain: tuple[int, ...]
    #: Seconds of each chain position.
    times: tuple[int, ...]
    #: 1-based chain position whose start is the offset reference (协调序号).
    coordinated: int

    def position_start(self, position: int) -> int:
        """Seconds from the chain's start to the start of ``position`` (1-based)."""
        return sum(self.times[: position - 1])

    def cycle_time(self, stage: int, elapsed_s: int) -> int | None:
        """Seconds since the coordinated stage began, ``elapsed_s`` into ``stage``."""
        if stage not in self.chain or not self.cycle_s:
            return None
        position = self.chain.index(stage) + 1
        since_start = self.position_start(position) + elapsed_s
        return (since_start - self.position_start(self.coordinated)) % self.cycle_s


@dataclass(frozen=True, kw_only=True, slots=True)
class StagePlan:
    """Every stage the plan's patterns need and each pattern as a scheme."""

    #: Phases of stage n at index n - 1.
    stages: tuple[frozenset[int], ...]
    schemes: tuple[SchemeLayout, ...]


def pedestrian_phase(phase: int) -> int:
    """The GB/T pedestrian phase of plan phase ``phase``."""
    return PED_PHASE_OFFSET + phase


def _pattern_intervals(plan: Plan, pattern: Pattern) -> list[tuple[frozenset[int], int, int]]:
    """(phases, start, length) in tenths of every stage of one pattern, in running order."""
    order = pattern.sequence if pattern.sequence is not None else plan.rings
    group_of = {p: g for g, group in enumerate(plan.barriers) for p in group}
    served = {p for p in group_of if (pattern.split_ds(p) or 0) > 0}
    groups: list[int] = []
    for ring in order:
        for phase in ring:
            if phase in served and group_of[phase] not in groups:
                groups.append(group_of[phase])
    peds = {
        p for p in pattern.ped_phases if (defined := plan.phase(p)) is not None and defined.has_ped
    }
    intervals: list[tuple[frozenset[int], int, int]] = []
    start = 0
    for group in groups:
        runs: list[list[tuple[int, int]]] = []  # per ring: (phase, split)
        for ring in order:
            in_group = [p for p in ring if p in served and group_of[p] == group]
            runs.append([(p, pattern.split_ds(p) or 0) for p in in_group])
        length = max(sum(split for _, split in run) for run in runs)
        cuts = {0, length}
        for run in runs:
            at = 0
            for _, split in run:
                at += split
                cuts.add(min(at, length))
        edges = sorted(cuts)
        for begin, end in itertools.pairwise(edges):
            phases: set[int] = set()
            for run in runs:
                at = 0
                for index, (phase, split) in enumerate(run):
                    last = index == len(run) - 1
                    # A ring short of the group's length rests on its last phase.
                    if at <= begin and (begin < at + split or last):
                        phases.add(phase)
                        if phase in peds:
                            phases.add(pedestrian_phase(phase))
                        break
                    at += split
            intervals.append((frozenset(phases), start + begin, end - begin))
        start += length
    return intervals


def stage_plan(plan: Plan) -> StagePlan:
    """The stages and schemes of ``plan`` (see the module docstring).

    Raises :class:`NotRepresentable` when a stage time, cycle or offset is
    not a whole number of seconds or a scheme needs more than 16 stages.
    """
    numbers: dict[frozenset[int], int] = {}
    schemes: list[SchemeLayout] = []
    problems: list[str] = []
    for pattern in sorted(plan.patterns, key=lambda p: p.pattern):
        intervals = _pattern_intervals(plan, pattern)
        chain: list[int] = []
        times: list[int] = []
        for phases, _, length in intervals:
            if length % 10:
                problems.append(
                    f"pattern {pattern.pattern}: stage {sorted(phases)} lasts {length / 10:g} s; "
                    "GB/T stage times are whole seconds"
                )
            numbers.setdefault(phases, len(numbers) + 1)
            chain.append(numbers[phases])
            times.append(length // 10)
        if len(chain) > MAX_CHAIN:
            problems.append(
                f"pattern {pattern.pattern} needs {len(chain)} stages; a GB/T scheme "
                f"chains at most {MAX_CHAIN}"
            )
        coord = set(pattern.coord_phases)
        first_coord = min(
            (start for phases, start, _ in intervals if phases & coord),
            default=0,
        )
        # The first coordinated green begins at the start of some stage.
        coordinated = next(
            (i for i, (_, start, _) in enumerate(intervals, start=1) if start == first_coord), 1
        )
        for what, seconds in (("cycle", pattern.cycle), ("offset", pattern.offset)):
            if to_tenths(seconds) % 10:
                problems.append(
                    f"pattern {pattern.pattern} {what} {seconds:g} s: GB/T holds whole seconds"
                )
        schemes.append(
            SchemeLayout(
                scheme=pattern.pattern,
                cycle_s=to_tenths(pattern.cycle) // 10,
                offset_s=to_tenths(pattern.offset) // 10,
                chain=tuple(chain),
                times=tuple(times),
                coordinated=coordinated,
            )
        )
    if problems:
        raise NotRepresentable(problems)
    ordered = sorted(numbers.items(), key=lambda item: item[1])
    return StagePlan(stages=tuple(phases for phases, _ in ordered), schemes=tuple(schemes))


# ------------------------------------------------------------------- writing


@dataclass(frozen=True, kw_only=True)
class ControllerShape:
    """What the plan write needs to know of the controller before writing."""

    phase_count: int = 32
    stage_count: int = 16
    scheme_count: int = 32
    day_plan_count: int = 16
    schedule_count: int = 16
    #: The intersection (路口序号) the plan is written for.
    intersection: int = DEFAULT_INTERSECTION
    #: Stages with phases now (to clear the ones the plan drops).
    live_stages: frozenset[int] = frozenset()
    #: Schemes with a cycle or a chain now.
    live_schemes: frozenset[int] = frozenset()
    #: Schedule entries with a day plan now.
    live_schedule: frozenset[int] = frozenset()


class _Writer:
    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.problems: list[str] = []

    def add(self, attribute: Attribute[Any], element: int, value: Any) -> None:
        try:
            raw = attribute.encode(value)
        except ValueError as err:
            self.problems.append(f"{gbt.describe(attribute.at(element))}: {err}")
            return
        self.writes.append(Write(attribute, element, raw))

    def seconds(self, attribute: Attribute[int], element: int, value: float, what: str) -> None:
        tenths = to_tenths(value)
        if tenths % 10:
            self.problems.append(f"{what} {value:g} s: GB/T {attribute.name} holds whole seconds")
            return
        self.add(attribute, element, tenths // 10)


def _transition(
    w: _Writer, phase: int, steps: Sequence[tuple[int, float, str]], first: int
) -> None:
    """Write the three (colour, seconds) steps of one transition, from ``first`` on."""
    attributes = gbt.PHASE_TRANSITIONS[first : first + 6]
    padded = [*steps, *[(0, 0.0, "")] * (3 - len(steps))]
    for index, (colour, seconds, what) in enumerate(padded):
        w.add(attributes[2 * index], phase, colour)
        w.seconds(attributes[2 * index + 1], phase, seconds, what)


#: Index in PHASE_TRANSITIONS of the first lose and gain attribute (4.2.3, 4.2.9).
_LOSE: Final = 0
_GAIN: Final = 6


def plan_writes(plan: Plan, shape: ControllerShape | None = None) -> list[Write]:
    """Every set that puts ``plan`` into the controller, in a safe order.

    Raises :class:`NotRepresentable` (listing every problem) when a value
    cannot be carried exactly or the controller has too few rows.
    """
    shape = shape or ControllerShape()
    w = _Writer()
    try:
        stages = stage_plan(plan)
    except NotRepresentable as err:
        w.problems.extend(err.problems)
        stages = StagePlan(stages=(), schemes=())

    # -- phases and pedestrian phases
    for phase in sorted(plan.phases, key=lambda p: p.phase):
        n = phase.phase
        w.seconds(gbt.PHASE_MIN_GREEN, n, phase.min_green, f"phase {n} min green")
        max_green = phase.max_green if phase.max_green is not None else phase.min_green
        w.seconds(gbt.PHASE_MAX_GREEN_1, n, max_green, f"phase {n} max green")
        lose = [
            (int(LightState.YELLOW), phase.yellow, f"phase {n} yellow"),
            (int(LightState.RED), phase.red_clear, f"phase {n} red clearance"),
        ]
        _transition(w, n, lose, _LOSE)
        _transition(w, n, [], _GAIN)
        if phase.has_ped:
            ped = pedestrian_phase(n)
            if ped > shape.phase_count:
                w.problems.append(
                    f"phase {n} crossing: pedestrian phase {ped}, the controller has "
                    f"{shape.phase_count} phases"
                )
                continue
            walk = phase.walk or 0.0
            w.seconds(gbt.PHASE_MIN_GREEN, ped, walk, f"phase {n} walk")
            w.seconds(gbt.PHASE_MAX_GREEN_1, ped, walk, f"phase {n} walk")
            clear = [
                (int(LightState.GREEN_FLASH), phase.ped_clear or 0.0, f"phase {n} ped clearance"),
                (int(LightState.RED), 0.0, ""),
            ]
            _transition(w, ped, clear, _LOSE)
            _transition(w, ped, [], _GAIN)

    # -- stages
    if len(stages.stages) > shape.stage_count:
        w.problems.append(
            f"the plan needs {len(stages.stages)} stages, the controller holds {shape.stage_count}"
        )
    for number, phases in enumerate(stages.stages, start=1):
        w.add(gbt.STAGE_PHASES, number, phases)
    for number in sorted(shape.live_stages - set(range(1, len(stages.stages) + 1))):
        w.add(gbt.STAGE_PHASES, number, frozenset())

    # -- schemes
    for scheme in stages.schemes:
        s = scheme.scheme
        if s > shape.scheme_count:
            w.problems.append(f"pattern {s}: the controller has only {shape.scheme_count} schemes")
            continue
        w.add(gbt.SCHEME_INTERSECTION, s, shape.intersection)
        w.add(gbt.SCHEME_STAGE_CHAIN, s, scheme.chain)
        w.add(gbt.SCHEME_STAGE_TIMES, s, scheme.times)
        w.add(gbt.SCHEME_STAGE_TYPES, s, (int(StageType.FIXED),) * len(scheme.chain))
        w.add(gbt.SCHEME_CYCLE, s, scheme.cycle_s)
        w.add(gbt.SCHEME_OFFSET, s, scheme.offset_s)
        w.add(gbt.SCHEME_COORDINATED_STAGE, s, scheme.coordinated)
    for s in sorted(shape.live_schemes - {scheme.scheme for scheme in stages.schemes}):
        w.add(gbt.SCHEME_CYCLE, s, 0)
        w.add(gbt.SCHEME_OFFSET, s, 0)
        w.add(gbt.SCHEME_COORDINATED_STAGE, s, 0)
        w.add(gbt.SCHEME_STAGE_CHAIN, s, ())
        w.add(gbt.SCHEME_STAGE_TIMES, s, ())
        w.add(gbt.SCHEME_STAGE_TYPES, s, ())

    # -- day plans
    for day_plan in plan.day_plans:
        d = day_plan.day_plan
        if d > shape.day_plan_count:
            w.problems.append(f"day plan {d}: the controller has only {shape.day_plan_count}")
            continue
        events = sorted(day_plan.events, key=lambda e: e.at)
        starts = tuple((int(e.at[:2]), int(e.at[3:])) for e in events)
        schemes = tuple(e.pattern if isinstance(e.pattern, int) else 0 for e in events)
        modes = tuple(int(period_mode(e.pattern)) for e in events)
        w.add(gbt.DAY_PLAN_INTERSECTION, d, shape.intersection)
        w.add(gbt.DAY_PLAN_START_TIMES, d, starts)
        w.add(gbt.DAY_PLAN_SCHEMES, d, schemes)
        w.add(gbt.DAY_PLAN_RUN_MODES, d, modes)

    # -- schedule
    if len(plan.schedule) > shape.schedule_count:
        w.problems.append(
            f"{len(plan.schedule)} schedule entries, the controller holds {shape.schedule_count}"
        )
    for s, entry in enumerate(plan.schedule, start=1):
        w.add(gbt.SCHEDULE_INTERSECTION, s, shape.intersection)
        w.add(gbt.SCHEDULE_PRIORITY, s, s)
        w.add(gbt.SCHEDULE_WEEKDAYS, s, frozenset(WEEKDAY_NUMBERS[day] for day in entry.days))
        w.add(gbt.SCHEDULE_MONTHS, s, ALL_MONTHS)
        w.add(gbt.SCHEDULE_DAYS, s, ALL_DAYS)
        w.add(gbt.SCHEDULE_DAY_PLAN, s, entry.day_plan)
    for s in sorted(shape.live_schedule - set(range(1, len(plan.schedule) + 1))):
        w.add(gbt.SCHEDULE_DAY_PLAN, s, 0)

    if w.problems:
        raise NotRepresentable(w.problems)
    return w.writes


def period_mode(choice: PatternCommand) -> RunMode:
    """The run mode of a day-plan period: a pattern, free or flash."""
    if choice == "free":
        return RunMode.LOCAL_ACTUATED
    if choice == "flash":
        return RunMode.YELLOW_FLASH
    return RunMode.LOCAL_COORDINATED


# ------------------------------------------------------------------- commands


def center_control(command: PatternCommand) -> tuple[int, int, int]:
    """(forced stage, forced scheme, forced run mode) of a command (17.1.2-4)."""
    match command:
        case "standby":
            return 0, 0, int(RunMode.CENTER_DAY_PLAN)
        case "free":
            return 0, 0, int(RunMode.LOCAL_ACTUATED)
        case "flash":
            return 0, 0, int(RunMode.YELLOW_FLASH)
        case int(number) if 1 <= number <= 253:
            return 0, number, int(RunMode.CENTER_COORDINATED)
    raise ValueError(f"not a pattern command: {command!r}")


def commanded(scheme: int, mode: int) -> PatternCommand:
    """What center control (17.1.3, 17.1.4) commands, as a pattern command."""
    if mode == RunMode.YELLOW_FLASH:
        return "flash"
    if mode in FREE_MODES:
        return "free"
    if mode in SCHEME_MODES and 1 <= scheme <= 253:
        return scheme
    return "standby"


def center_source(mode: int, *, dropped: bool) -> ControlSource:
    """Who is in control, from the center-control run mode.

    ``dropped``: center control reads zero although this driver had set it --
    the controller gave it up by itself (its link supervision), so it runs
    its own schedule as a backup.
    """
    if mode == RunMode.CENTER_DAY_PLAN:
        return ControlSource.STANDBY
    if mode != NO_MODE:
        return ControlSource.SYSTEM
    return ControlSource.BACKUP if dropped else ControlSource.TIMEBASE


# ------------------------------------------------------------------- status


@dataclass(frozen=True, kw_only=True)
class StatusLayout:
    """Which light groups show each phase, and which stages to read the elapsed time of."""

    #: Vehicle light groups of plan phase n (4.2.2 of GB/T phase n).
    vehicle: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    #: Light groups of the pedestrian phase of plan phase n (4.2.2 of phase 16 + n).
    pedestrian: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    #: Stage rows whose elapsed time (6.3.3) each poll reads.
    stages: tuple[int, ...] = ()
    #: Intersection row of 13.2 and 17.1.
    intersection: int = DEFAULT_INTERSECTION

    @property
    def light_groups(self) -> tuple[int, ...]:
        """Every light group read, ascending."""
        groups = {g for gs in (*self.vehicle.values(), *self.pedestrian.values()) for g in gs}
        return tuple(sorted(groups))


def status_addresses(layout: StatusLayout) -> list[Address]:
    """What one status poll queries, in order (one frame)."""
    i = layout.intersection
    return [
        gbt.RUN_MODE.at(i),
        gbt.RUN_SCHEME.at(i),
        gbt.RUN_STAGE.at(i),
        gbt.CENTER_SCHEME.at(i),
        gbt.CENTER_RUN_MODE.at(i),
        gbt.MODULE_FAULTS.at(),
        gbt.CLOCK_UTC.at(),
        *(gbt.LIGHT_GROUP_STATE.at(g) for g in layout.light_groups),
        *(gbt.STAGE_ELAPSED.at(s) for s in layout.stages),
    ]


_VEHICLE: Final = {
    LightState.GREEN: Light.GREEN,
    LightState.GREEN_FLASH: Light.GREEN,
    LightState.GREEN_FAST_FLASH: Light.GREEN,
    LightState.YELLOW: Light.YELLOW,
    LightState.YELLOW_FLASH: Light.YELLOW,
    LightState.YELLOW_FAST_FLASH: Light.YELLOW,
    LightState.RED: Light.RED,
    LightState.RED_FLASH: Light.RED,
    LightState.RED_FAST_FLASH: Light.RED,
    LightState.RED_YELLOW: Light.RED,
}
_PEDESTRIAN: Final = {
    LightState.GREEN: PedLight.WALK,
    LightState.GREEN_FLASH: PedLight.PED_CLEAR,
    LightState.GREEN_FAST_FLASH: PedLight.PED_CLEAR,
    LightState.RED: PedLight.DONT_WALK,
    LightState.RED_FLASH: PedLight.DONT_WALK,
    LightState.RED_FAST_FLASH: PedLight.DONT_WALK,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class RawStatus:
    """The decoded values of one status poll, before interpretation."""

    run_mode: int
    scheme: int
    stage: int
    center_scheme: int
    center_mode: int
    modules: frozenset[int]
    utc_s: int | None
    #: State of each light group read.
    light_groups: Mapping[int, int]
    #: Elapsed seconds of each stage read.
    elapsed: Mapping[int, int]


def parse_status(layout: StatusLayout, values: Sequence[bytes]) -> RawStatus:
    """Decode the answer to :func:`status_addresses` (``ControllerError`` if malformed)."""
    expected = status_addresses(layout)
    if len(values) != len(expected):
        raise ControllerError(f"status poll answered {len(values)} of {len(expected)} values")
    try:
        heads = (
            gbt.RUN_MODE,
            gbt.RUN_SCHEME,
            gbt.RUN_STAGE,
            gbt.CENTER_SCHEME,
            gbt.CENTER_RUN_MODE,
        )
        run_mode, scheme, stage, center_scheme, center_mode = (
            attribute.decode(value) for attribute, value in zip(heads, values[:5], strict=True)
        )
        modules = gbt.MODULE_FAULTS.decode(values[5])
        clock = gbt.CLOCK_UTC.decode(values[6])
        groups = layout.light_groups
        states = {
            g: gbt.LIGHT_GROUP_STATE.decode(v)
            for g, v in zip(groups, values[7 : 7 + len(groups)], strict=True)
        }
        elapsed = {
            s: gbt.STAGE_ELAPSED.decode(v)
            for s, v in zip(layout.stages, values[7 + len(groups) :], strict=True)
        }
    except ProtocolError as err:
        raise ControllerError(f"status poll: {err.message}") from err
    utc = None if clock is None else calendar.timegm(clock.timetuple())
    return RawStatus(
        run_mode=run_mode,
        scheme=scheme,
        stage=stage,
        center_scheme=center_scheme,
        center_mode=center_mode,
        modules=modules,
        utc_s=utc,
        light_groups=states,
        elapsed=elapsed,
    )


def running_pattern(run_mode: int, scheme: int) -> RunningPattern:
    """What runs: flash, a scheme, free, or nothing (all red, lights off)."""
    if run_mode == RunMode.YELLOW_FLASH:
        return "flash"
    if run_mode in (RunMode.ALL_RED, RunMode.LIGHTS_OFF, RunMode.SPECIAL):
        return "none"
    if 1 <= scheme <= 253:
        return scheme
    return "free"


def _flash(raw: RawStatus, command: PatternCommand) -> FlashState:
    if MODULE_CONFLICT_MONITOR in raw.modules:
        return FlashState.MMU
    if raw.run_mode != RunMode.YELLOW_FLASH:
        return FlashState.NOT_FLASH
    if MODULE_STARTUP in raw.modules:
        return FlashState.STARTUP
    return FlashState.AUTOMATIC


def _light(states: Mapping[int, int], groups: tuple[int, ...]) -> Light:
    for group in groups:
        state = states.get(group)
        if state is not None:
            try:
                return _VEHICLE.get(LightState(state), Light.DARK)
            except ValueError:
                return Light.DARK
    return Light.DARK


def _ped(states: Mapping[int, int], groups: tuple[int, ...]) -> PedLight:
    for group in groups:
        state = states.get(group)
        if state is not None:
            try:
                return _PEDESTRIAN.get(LightState(state), PedLight.DARK)
            except ValueError:
                return PedLight.DARK
    return PedLight.DARK


def free_status(raw: RawStatus, pattern: RunningPattern, command: PatternCommand) -> str:
    """Why coordination is or is not running, in NTCIP's words where they fit."""
    if isinstance(pattern, int):
        return "not_free"
    if isinstance(command, int):
        return "other"  # a scheme is forced and the controller does not run it
    if raw.run_mode in FREE_MODES:
        return "command_free"
    return "other"


def decode_status(
    layout: StatusLayout,
    raw: RawStatus,
    *,
    received_at: float,
    dropped: bool = False,
    cycle_time_s: int = 0,
) -> ControllerStatus:
    """One status value from a parsed poll (``dropped``: see :func:`center_source`)."""
    command = commanded(raw.center_scheme, raw.center_mode)
    pattern = running_pattern(raw.run_mode, raw.scheme)
    phases = tuple(
        PhaseSignal(
            phase=n,
            light=_light(raw.light_groups, layout.vehicle.get(n, ())),
            ped=_ped(raw.light_groups, layout.pedestrian.get(n, ())),
        )
        for n in STATUS_PHASES
        if layout.vehicle.get(n)
    )
    return ControllerStatus(
        received_at=received_at,
        phases=phases,
        pattern=pattern,
        commanded=command,
        free_status=free_status(raw, pattern, command),
        cycle_time_s=cycle_time_s,
        control=center_source(raw.center_mode, dropped=dropped),
        flash=_flash(raw, command),
        # Module faults are alarms; the start-up bit is a state, not a fault.
        alarms=Alarms(
            unit1=sum(1 << bit for bit in raw.modules if bit < 32 and bit != MODULE_STARTUP)
        ),
        controller_time=raw.utc_s,
        backup_time_s=None,
    )
