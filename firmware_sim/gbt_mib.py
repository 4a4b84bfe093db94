"""The GB/T 20999-2017 objects the simulator answers, mapped onto the same simulated controller.

The NTCIP front end (:mod:`firmware_sim.ntcip_mib`) and this one drive one
:class:`~firmware_sim.controller.SimController`: one timing engine, one MMU,
one timing database. :mod:`firmware_sim.gbt_responder` adds the protocol
(query, set, heartbeat, error replies); this module only knows the objects.

**Two views of one database.** The engine runs NEMA rings and barriers from
the NTCIP-shaped :class:`~firmware_sim.database.TimingDatabase`. GB/T sees
phases, stages and schemes. :class:`GbtTables` holds the GB/T configuration
(stages, schemes, day plans, schedule entries, center control, kept values)
exactly as it was written, so that every read-back returns what was set, and
every accepted set is translated into the database at once:

===============================  =====================================================
GB/T                             database (what the engine runs)
===============================  =====================================================
phase n (1-16): min green,       phase n: min green, max green, yellow (lose step 1,
max green 1, lose transition     yellow), red clearance (lose step 2, red)
pedestrian phase 16 + n          phase n: walk (min green), ped clearance (lose step
                                 1, green flash)
scheme n                         pattern n, split plan n, sequence n: each ring's
                                 phase in each stage of the chain gives its split
                                 (the sum of its stages' times) and its order; the
                                 phases whose green begins at the coordinated
                                 stage are coordinated, so the offset keeps its
                                 reference; a served pedestrian phase gives its
                                 vehicle phase pedestrian recall
day plan periods                 day plan events; action v calls pattern value v
                                 (scheme n -> n, actuated -> 254 free, yellow
                                 flash -> 255 flash)
schedule entries                 time-base schedule rows, in priority order
center control (17.1)            systemPatternControl: scheme n (center
                                 coordinated) -> n, actuated -> 254, yellow flash
                                 -> 255, center day plan or none -> 0 (standby)
===============================  =====================================================

A scheme whose chain does not describe a ring-and-barrier cycle the
controller can run (a phase served twice, a stage the rings cannot time)
is still accepted, as a controller accepts a pattern it cannot run: its
pattern then has no coordinated phase and the engine runs free with
``badPlan`` when it is selected. The ring structure itself (which phases
may run together: the conflict table, class 7) is the cabinet's and is
read-only; a stage whose phases conflict is refused (0x10).

When the database changes under GB/T (an NTCIP set, the control channel),
the GB/T tables are derived from it again on the next request: stages from
each pattern's cycle as the engine would run it.

**Times** are whole seconds in GB/T; the database keeps tenths, so a value
read from a plan loaded with tenths (a 3.5 s yellow) reads rounded half up.

**Tables are dense**, as in a real controller: every row up to the table's
size can be read and written; an unused row reads zeros. The sizes are
fixed (light groups 16, phases 32, detectors 8) or the larger of a default
and what the database needs (stages 16, schemes 32, day plans and schedule
entries 16).

**Values the simulator makes up** (no standard text was available, see
``shared/reference/gbt20999.md``): light group type 1 = vehicle, 3 =
pedestrian; module status (13.1.2) bit 0 = the conflict monitor (MMU) has
latched, bit 1 = start-up flash; the time zone (2.4) as signed seconds east
of UTC; flash of any kind is run mode 0x31 (the cabinet shows all-red flash,
MUTCD), red revert 0x32.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Final

from agent.errors import MessageError
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.message import Address, ErrorCode
from agent.protocols.gbt20999.objects import (
    Attribute,
    LightState,
    RunMode,
    StageState,
    StageType,
    TransportType,
)
from firmware_sim.controller import SimController
from firmware_sim.coordination import barrier_groups, judge_pattern
from firmware_sim.database import (
    MAX_CHANNELS,
    MAX_PHASES,
    ChannelType,
    DatabaseValueError,
    PhaseRow,
    SplitMode,
    TimingDatabase,
)
from firmware_sim.program import CycleProgram
from firmware_sim.status import PATTERN_FLASH, PATTERN_FREE, UnitMode, UnitStatus

# ------------------------------------------------------------------ sizes and constants

LIGHT_GROUPS: Final = MAX_CHANNELS
#: Plan phases 1-16, and their pedestrian phases 17-32.
PED_OFFSET: Final = 16
PHASES: Final = 2 * MAX_PHASES
DETECTORS: Final = 8
PRIORITIES: Final = 4
RECORDS: Final = 16
INTERSECTIONS: Final = 1
DEFAULT_STAGES: Final = 16
MAX_STAGES: Final = 64
DEFAULT_SCHEMES: Final = 32
MAX_SCHEMES: Final = 253
DEFAULT_DAY_PLANS: Final = 16
DEFAULT_SCHEDULE: Final = 16
CHAIN: Final = 16
PERIODS: Final = 48

#: What the simulator says about itself (lengths as the captured device's).
MANUFACTURER: Final = "绿波仿真"  # "green-wave simulation": 12 UTF-8 bytes
SERIAL: Final = "GW-SIM-0000001"
VERSION: Final = bytes([0x00, 0x01, 0x00, 0x01])
FACTORY_DATE: Final = datetime(2024, 1, 1)
#: Light group types (3.2.2).
TYPE_VEHICLE: Final = 1
TYPE_PEDESTRIAN: Final = 3
#: Module status bits (13.1.2).
MODULE_MMU: Final = 0
MODULE_STARTUP: Final = 1
#: Fault type and actions of a lost center link (16.2).
FAULT_COMMUNICATION: Final = 0x30
ACTION_LOCAL_COORDINATED: Final = 0x50

#: Run modes a day-plan period may hold, and what the engine runs for each.
PERIOD_MODES: Final = frozenset(
    {
        0,
        RunMode.CENTER,
        RunMode.CENTER_DAY_PLAN,
        RunMode.CENTER_COORDINATED,
        RunMode.LOCAL_FIXED_CYCLE,
        RunMode.LOCAL_ACTUATED,
        RunMode.LOCAL_COORDINATED,
        RunMode.YELLOW_FLASH,
    }
)
SCHEME_MODES: Final = frozenset(
    {
        RunMode.CENTER,
        RunMode.CENTER_COORDINATED,
        RunMode.LOCAL_FIXED_CYCLE,
        RunMode.LOCAL_COORDINATED,
    }
)
#: Center-control run modes meaning "no center control" / "run the day plan".
RELEASE_MODES: Final = frozenset({0, RunMode.CENTER_DAY_PLAN})


class GbtWriteError(ValueError):
    """A set the simulator refuses, with the GB/T error code to answer."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _refuse(code: ErrorCode, detail: str) -> GbtWriteError:
    return GbtWriteError(code, detail)


def seconds(tenths: int) -> int:
    """Tenths as whole seconds, rounded half up."""
    return (tenths + 5) // 10


# ------------------------------------------------------------------------ tables


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemeRow:
    """One scheme (方案) as written."""

    intersection: int = 1
    cycle_s: int = 0
    coordinated: int = 0
    offset_s: int = 0
    chain: tuple[int, ...] = ()
    times: tuple[int, ...] = ()
    types: tuple[int, ...] = ()

    @property
    def used_chain(self) -> tuple[int, ...]:
        """The stage numbers up to the first 0."""
        out: list[int] = []
        for stage in self.chain:
            if not stage:
                break
            out.append(stage)
        return tuple(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class DayPlanRow:
    """One day plan (日计划) as written: up to 48 periods."""

    intersection: int = 1
    starts: tuple[tuple[int, int], ...] = ()
    schemes: tuple[int, ...] = ()
    modes: tuple[int, ...] = ()

    def periods(self) -> list[tuple[int, int, int]]:
        """(hour, minute, pattern value) of each period in use, in time order."""
        out: list[tuple[int, int, int]] = []
        for index in range(PERIODS):
            scheme = self.schemes[index] if index < len(self.schemes) else 0
            mode = self.modes[index] if index < len(self.modes) else 0
            hour, minute = self.starts[index] if index < len(self.starts) else (0, 0)
            value = period_value(scheme, mode)
            if value:
                out.append((hour, minute, value))
        return sorted(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleEntry:
    """One schedule entry (调度表) as written."""

    intersection: int = 1
    priority: int = 0
    weekdays: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    day_plan: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultRecord:
    """One fault record (16.2)."""

    kind: int
    time: datetime | None
    action: int


@dataclass(frozen=True, kw_only=True, slots=True)
class CenterControl:
    """Center control (17.1) of the intersection as written."""

    stage: int = 0
    scheme: int = 0
    mode: int = 0

    @property
    def engaged(self) -> bool:
        """True when the center forces something (not just none or the day plan)."""
        return self.mode not in RELEASE_MODES


def period_value(scheme: int, mode: int) -> int:
    """The pattern value (0 none, 1-253, 254 free, 255 flash) of a day-plan period."""
    if mode == RunMode.YELLOW_FLASH:
        return PATTERN_FLASH
    if mode == RunMode.LOCAL_ACTUATED:
        return PATTERN_FREE
    if 1 <= scheme <= MAX_SCHEMES:
        return scheme
    return 0


@dataclass
class GbtTables:
    """The GB/T configuration as written, and the database it was translated into."""

    stages: dict[int, frozenset[int]] = field(default_factory=dict)
    schemes: dict[int, SchemeRow] = field(default_factory=dict)
    day_plans: dict[int, DayPlanRow] = field(default_factory=dict)
    schedule: dict[int, ScheduleEntry] = field(default_factory=dict)
    center: CenterControl = field(default_factory=CenterControl)
    faults: list[FaultRecord] = field(default_factory=list)
    #: Values of writable attributes the engine does not act on, by address.
    kept: dict[Address, bytes] = field(default_factory=dict)
    n_stages: int = DEFAULT_STAGES
    n_schemes: int = DEFAULT_SCHEMES
    n_day_plans: int = DEFAULT_DAY_PLANS
    n_schedule: int = DEFAULT_SCHEDULE
    #: The database these tables agree with, and its revision then.
    db: TimingDatabase | None = None
    revision: int = -1

    def copy(self) -> GbtTables:
        """An independent copy (rows are immutable)."""
        return GbtTables(
            stages=dict(self.stages),
            schemes=dict(self.schemes),
            day_plans=dict(self.day_plans),
            schedule=dict(self.schedule),
            center=self.center,
            faults=list(self.faults),
            kept=dict(self.kept),
            n_stages=self.n_stages,
            n_schemes=self.n_schemes,
            n_day_plans=self.n_day_plans,
            n_schedule=self.n_schedule,
            db=self.db,
            revision=self.revision,
        )

    def agrees_with(self, db: TimingDatabase) -> bool:
        """True when ``db`` is the database these tables were last synchronised with."""
        return self.db is db and self.revision == db.revision

    def stage_of(self, vehicle: frozenset[int], scheme: int) -> int:
        """The stage of ``scheme``'s chain (else any stage) whose vehicle phases are these."""
        row = self.schemes.get(scheme)
        candidates = list(row.used_chain) if row is not None else []
        candidates += sorted(self.stages)
        for stage in candidates:
            phases = self.stages.get(stage, frozenset())
            if phases and frozenset(p for p in phases if p <= PED_OFFSET) == vehicle:
                return stage
        return 0


# --------------------------------------------------------------- the database, as stages


def program_intervals(program: CycleProgram) -> list[tuple[frozenset[int], int, int]]:
    """(phases, start, length) in tenths of each stage of a cycle program, in order.

    The phases of a stage are those whose service (green through red
    clearance) covers it, and the pedestrian phase of each one whose walk is
    timed in this program.
    """
    edges = sorted(
        {0, program.length_ds}
        | {s.start_ds for s in program.slots}
        | {min(s.end_ds, program.length_ds) for s in program.slots}
    )
    out: list[tuple[frozenset[int], int, int]] = []
    for begin, end in itertools.pairwise(edges):
        phases: set[int] = set()
        for slot in program.slots:
            if slot.start_ds <= begin < slot.end_ds:
                phases.add(slot.phase)
                if slot.walk_ds > 0:
                    phases.add(slot.phase + PED_OFFSET)
        if out and out[-1][0] == phases:
            previous, start, length = out[-1]
            out[-1] = (previous, start, length + end - begin)
        else:
            out.append((frozenset(phases), begin, end - begin))
    return out


def derive_tables(db: TimingDatabase, previous: GbtTables | None = None) -> GbtTables:
    """The GB/T view of ``db``: stages from each pattern as the engine would run it.

    Center control, fault records and kept values carry over from ``previous``.
    """
    tables = GbtTables()
    if previous is not None:
        tables.center = previous.center
        tables.faults = list(previous.faults)
        tables.kept = dict(previous.kept)
    numbers: dict[frozenset[int], int] = {}
    for number in sorted(db.patterns):
        row = db.patterns[number]
        scheme = SchemeRow(cycle_s=seconds(row.cycle_ds), offset_s=seconds(row.offset_ds))
        verdict = judge_pattern(db, number) if row.cycle_ds else None
        if verdict is not None and verdict.plan is not None:
            program = verdict.plan.nominal_program()
            intervals = program_intervals(program)
            chain = []
            for phases, _, _ in intervals:
                numbers.setdefault(phases, len(numbers) + 1)
                chain.append(numbers[phases])
            coordinated = next(
                (
                    i
                    for i, (_, start, _) in enumerate(intervals, start=1)
                    if start == program.ref_ds
                ),
                1,
            )
            if len(chain) <= CHAIN:
                scheme = replace(
                    scheme,
                    chain=tuple(chain),
                    times=tuple(seconds(length) for _, _, length in intervals),
                    types=(int(StageType.FIXED),) * len(chain),
                    coordinated=coordinated,
                )
        tables.schemes[number] = scheme
    tables.stages = {n: phases for phases, n in numbers.items()}
    for day_plan in sorted({d for d, _ in db.day_plan_events}):
        starts: list[tuple[int, int]] = []
        schemes: list[int] = []
        modes: list[int] = []
        for event in db.day_plan(day_plan)[:PERIODS]:
            action = db.actions.get(event.action)
            value = action.pattern if action is not None else 0
            if not value:
                continue
            starts.append((event.hour, event.minute))
            if value == PATTERN_FLASH:
                schemes.append(0)
                modes.append(int(RunMode.YELLOW_FLASH))
            elif value == PATTERN_FREE:
                schemes.append(0)
                modes.append(int(RunMode.LOCAL_ACTUATED))
            else:
                schemes.append(value)
                modes.append(int(RunMode.LOCAL_COORDINATED))
        tables.day_plans[day_plan] = DayPlanRow(
            starts=tuple(starts), schemes=tuple(schemes), modes=tuple(modes)
        )
    for entry in sorted(db.schedule):
        srow = db.schedule[entry]
        if not srow.day_plan:
            continue
        tables.schedule[entry] = ScheduleEntry(
            priority=entry,
            weekdays=frozenset(bit - 1 for bit in range(1, 8) if srow.days >> bit & 1),
            months=frozenset(m for m in range(1, 13) if srow.months >> m & 1),
            days=frozenset(d for d in range(1, 32) if srow.dates >> d & 1),
            day_plan=srow.day_plan,
        )
    tables.n_stages = min(MAX_STAGES, max(DEFAULT_STAGES, len(numbers)))
    tables.n_schemes = min(MAX_SCHEMES, max([DEFAULT_SCHEMES, *db.patterns]))
    tables.n_day_plans = max([DEFAULT_DAY_PLANS, *tables.day_plans])
    tables.n_schedule = max([DEFAULT_SCHEDULE, *db.schedule])
    tables.db = db
    tables.revision = db.revision
    return tables


# ---------------------------------------------------------------- stages, as the database


@dataclass(frozen=True, kw_only=True, slots=True)
class _Split:
    time_ds: int
    coord: bool
    ped: bool


def _scheme_splits(
    db: TimingDatabase, tables: GbtTables, row: SchemeRow
) -> tuple[dict[int, _Split], dict[int, tuple[int, ...]]] | str:
    """Each phase's split and each ring's order for a scheme, or why it cannot run."""
    chain = row.used_chain
    if not chain:
        return "the scheme has no stage chain"
    active = set(db.active_phases())
    ring_of = {p: db.phases[p].ring for p in active}
    group_of = barrier_groups(db)
    positions: list[tuple[frozenset[int], int]] = []
    peds: set[int] = set()
    for index, stage in enumerate(chain):
        phases = tables.stages.get(stage, frozenset())
        vehicle = frozenset(p for p in phases if p <= PED_OFFSET)
        if not vehicle:
            return f"stage {stage} has no vehicle phase"
        if vehicle - active:
            return f"stage {stage} holds phase(s) {sorted(vehicle - active)} not in use"
        peds.update(p - PED_OFFSET for p in phases if p > PED_OFFSET)
        time_s = row.times[index] if index < len(row.times) else 0
        if time_s <= 0:
            return f"chain position {index + 1} has no time"
        positions.append((vehicle, time_s * 10))
    rings = sorted({ring_of[p] for vehicle, _ in positions for p in vehicle})
    splits: dict[int, int] = {}
    orders: dict[int, tuple[int, ...]] = {}
    for ring in rings:
        owners: list[int | None] = []
        for vehicle, _ in positions:
            mine = [p for p in vehicle if ring_of[p] == ring]
            owners.append(mine[0] if mine else None)
        # A ring with no phase in a stage rests: its time goes to the ring's phase
        # before it, in the same barrier group.
        for index in range(len(owners)):
            if owners[index] is not None:
                continue
            before = owners[index - 1]
            groups = {group_of[p] for p in positions[index][0]}
            if before is not None and group_of[before] in groups:
                owners[index] = before
        runs: list[int] = []
        for owner in owners:
            if owner is not None and (not runs or runs[-1] != owner):
                runs.append(owner)
        if len(runs) > 1 and runs[0] == runs[-1]:
            runs.pop()  # the chain wraps around inside this phase
        if len(set(runs)) != len(runs):
            return f"ring {ring} serves a phase twice in the chain"
        for owner, (_, time_ds) in zip(owners, positions, strict=True):
            if owner is not None:
                splits[owner] = splits.get(owner, 0) + time_ds
        rest = tuple(p for p in sorted(active) if ring_of[p] == ring and p not in runs)
        orders[ring] = (*runs, *rest)
    k = row.coordinated if 1 <= row.coordinated <= len(positions) else 1
    starting = positions[k - 1][0] - positions[k - 2][0] if len(positions) > 1 else frozenset()
    coord = starting or positions[k - 1][0]
    out = {
        p: _Split(time_ds=t, coord=p in coord, ped=p in peds and db.phases[p].has_ped)
        for p, t in splits.items()
    }
    return out, orders


def translate_schemes(db: TimingDatabase, tables: GbtTables) -> None:
    """Write every scheme into patterns, splits and sequences (DatabaseValueError if unfit)."""
    active = db.active_phases()
    max_ring = max((db.phases[p].ring for p in active), default=0)
    for number, row in sorted(tables.schemes.items()):
        if number > MAX_SCHEMES:
            continue
        if not row.used_chain and not row.cycle_s:
            if number in db.patterns:
                db.set_pattern(number, cycle_ds=0, offset_ds=0)
            continue
        result = _scheme_splits(db, tables, row)
        if isinstance(result, str):
            for phase in active:
                db.set_split(number, phase, time_ds=0, mode=SplitMode.OMITTED, coord=False)
        else:
            splits, orders = result
            for phase in active:
                split = splits.get(phase)
                if split is None:
                    db.set_split(number, phase, time_ds=0, mode=SplitMode.OMITTED, coord=False)
                    continue
                mode = (
                    SplitMode.MAX_VEHICLE_PED_RECALL if split.ped else SplitMode.MAX_VEHICLE_RECALL
                )
                db.set_split(number, phase, time_ds=split.time_ds, mode=mode, coord=split.coord)
            for ring in range(1, max_ring + 1):
                order = orders.get(ring)
                if order is None:
                    order = tuple(p for p in active if db.phases[p].ring == ring)
                db.set_sequence(number, ring, order)
        db.set_pattern(
            number,
            cycle_ds=row.cycle_s * 10,
            offset_ds=row.offset_s * 10,
            split=number,
            sequence=number,
        )


def translate_time_base(db: TimingDatabase, tables: GbtTables) -> None:
    """Write day plans and schedule entries into the time base (DatabaseValueError if unfit)."""
    values: set[int] = set()
    day_plans = set(tables.day_plans) | {d for d, _ in db.day_plan_events}
    for day_plan in sorted(day_plans):
        row = tables.day_plans.get(day_plan)
        periods = row.periods() if row is not None else []
        for event, (hour, minute, value) in enumerate(periods, start=1):
            db.set_day_plan_event(day_plan, event, hour=hour, minute=minute, action=value)
            values.add(value)
        stale = [e for d, e in db.day_plan_events if d == day_plan and e > len(periods)]
        for event in stale:
            db.set_day_plan_event(day_plan, event, hour=0, minute=0, action=0)
    for value in sorted(values):
        db.set_action(value, value)
    entries = sorted(
        (entry.priority, number, entry)
        for number, entry in tables.schedule.items()
        if entry.day_plan
    )
    for index, (_, _, entry) in enumerate(entries, start=1):
        db.set_schedule(
            index,
            day_plan=entry.day_plan,
            months=sum(1 << m for m in entry.months),
            days=sum(1 << (d + 1) for d in entry.weekdays),
            dates=sum(1 << d for d in entry.days),
        )
    for index in sorted(db.schedule):
        if index > len(entries):
            db.set_schedule(index, day_plan=0, months=0, days=0, dates=0)


# ---------------------------------------------------------------------- context


class GbtContext:
    """What one request reads and writes: the controller, its database, the GB/T tables.

    ``controller`` is None during a set's dry run: writes then change only
    copies of the database and tables.
    """

    def __init__(
        self,
        controller: SimController | None,
        db: TimingDatabase,
        tables: GbtTables,
        *,
        controller_id: int = 0,
    ) -> None:
        self.controller = controller
        self.db = db
        self.tables = tables
        self.controller_id = controller_id
        #: Set by writes: the schemes or the time base must be translated again.
        self.schemes_changed = False
        self.time_base_changed = False
        #: A center-control write to apply to the engine.
        self.center_changed = False
        #: A clock write to apply (epoch seconds).
        self.clock_to: int | None = None

    @property
    def live(self) -> SimController:
        """The controller (reads only happen on a live context)."""
        assert self.controller is not None, "reads need the live controller"
        return self.controller

    @cached_property
    def status(self) -> UnitStatus:
        """One status snapshot per request, so all values of a query agree."""
        return self.live.status()

    @cached_property
    def stage_status(self) -> tuple[int, StageState, int, int]:
        """(stage, state, elapsed s, remaining s) of the stage running now."""
        return running_stage(self.live, self.tables)

    def phase(self, phase: int) -> PhaseRow:
        """A database phase row (defaults when unused)."""
        return self.db.phases.get(phase) or PhaseRow(phase=phase)

    def translate(self) -> None:
        """Write the changed parts of the GB/T configuration into the database."""
        if self.schemes_changed:
            translate_schemes(self.db, self.tables)
        if self.time_base_changed:
            translate_time_base(self.db, self.tables)


def running_stage(controller: SimController, tables: GbtTables) -> tuple[int, StageState, int, int]:
    """The GB/T stage the engine is in: the one whose phases are the phases in service."""
    engine = controller.engine
    program = engine.program
    if engine.mode is not UnitMode.STEADY or program is None:
        return 0, StageState.IDLE, 0, 0
    pos = engine.position_ds
    serving = [s for s in program.slots if s.start_ds <= pos < s.end_ds]
    vehicle = frozenset(s.phase for s in serving)
    edges = sorted(
        {0, program.length_ds}
        | {s.start_ds for s in program.slots}
        | {s.end_ds for s in program.slots}
    )
    before = max((e for e in edges if e <= pos), default=0)
    after = min((e for e in edges if e > pos), default=program.length_ds)
    stage = tables.stage_of(vehicle, program.pattern)
    clearing = any(s.start_ds + s.green_ds <= pos for s in serving)
    state = StageState.TRANSITION if clearing else StageState.RUNNING
    return stage, state, (pos - before) // 10, -(-(after - pos) // 10)


# ------------------------------------------------------------------ served attributes

Rows = Callable[[GbtContext], int]
Reader = Callable[[GbtContext, int], bytes]
Writer = Callable[[GbtContext, int, Any], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class Served:
    """One attribute as the simulator answers it."""

    attribute: Attribute[Any]
    #: Rows of a table (elements 1..n); 0 for a scalar.
    rows: Rows
    read: Reader
    write: Writer | None = None
    #: How the value relates to the simulation, for people.
    effect: str = ""

    @property
    def address(self) -> Address:
        """Class, object and attribute (element 0)."""
        return self.attribute.address

    def has(self, ctx: GbtContext, element: int) -> bool:
        """True when ``element`` is an instance of this attribute."""
        count = self.rows(ctx)
        if not self.attribute.table:
            return element == 0
        return 1 <= element <= count

    def elements(self, ctx: GbtContext) -> list[int]:
        """Every instance's element."""
        if not self.attribute.table:
            return [0]
        return list(range(1, self.rows(ctx) + 1))


def _scalar(ctx: GbtContext) -> int:
    return 0


def _fixed(count: int) -> Rows:
    return lambda ctx: count


def _value(attribute: Attribute[Any], pick: Callable[[GbtContext, int], Any]) -> Reader:
    return lambda ctx, element: attribute.encode(pick(ctx, element))


def _constant(attribute: Attribute[Any], value: Any) -> Reader:
    raw = attribute.encode(value)
    return lambda ctx, element: raw


def _row_id(attribute: Attribute[int]) -> Reader:
    return lambda ctx, element: attribute.encode(element)


def _kept_reader(attribute: Attribute[Any], default: Any) -> Reader:
    raw_default = attribute.encode(default)
    return lambda ctx, element: ctx.tables.kept.get(attribute.at(element), raw_default)


def _keep(attribute: Attribute[Any]) -> Writer:
    def write(ctx: GbtContext, element: int, value: Any) -> None:
        ctx.tables.kept[attribute.at(element)] = attribute.encode(value)

    return write


_SERVED: list[Served] = []
_KEPT = "kept and read back; no effect on timing"
_STATUS = "status"


def _serve(
    attribute: Attribute[Any],
    rows: Rows,
    read: Reader,
    write: Writer | None = None,
    effect: str = "",
) -> None:
    _SERVED.append(Served(attribute=attribute, rows=rows, read=read, write=write, effect=effect))


def _kept(attribute: Attribute[Any], rows: Rows, default: Any) -> None:
    _serve(attribute, rows, _kept_reader(attribute, default), _keep(attribute), _KEPT)


def _text(value: str) -> Reader:
    raw = value.encode("utf-8")
    return lambda ctx, element: raw


# 1 device info ------------------------------------------------------------------------

_serve(gbt.DEVICE_MANUFACTURER, _scalar, _text(MANUFACTURER))
_serve(gbt.DEVICE_VERSION, _scalar, _constant(gbt.DEVICE_VERSION, VERSION))
_serve(gbt.DEVICE_SERIAL, _scalar, _text(SERIAL))
_serve(gbt.DEVICE_FACTORY_DATE, _scalar, _constant(gbt.DEVICE_FACTORY_DATE, FACTORY_DATE))
_kept(gbt.DEVICE_CONFIG_DATE, _scalar, FACTORY_DATE)

# 2 basic info -------------------------------------------------------------------------

_kept(gbt.SITE, _scalar, "")
_serve(gbt.CONTROLLER_IPV4, _scalar, _constant(gbt.CONTROLLER_IPV4, IPv4Address("127.0.0.1")))
_serve(
    gbt.CONTROLLER_IPV4_MASK, _scalar, _constant(gbt.CONTROLLER_IPV4_MASK, IPv4Address("255.0.0.0"))
)
_serve(gbt.CONTROLLER_IPV4_GATEWAY, _scalar, _constant(gbt.CONTROLLER_IPV4_GATEWAY, IPv4Address(0)))
_kept(gbt.CENTER_IPV4, _scalar, IPv4Address("127.0.0.1"))
_kept(gbt.CENTER_IPV4_PORT, _scalar, 0)
_kept(gbt.CENTER_IPV4_TRANSPORT, _scalar, int(TransportType.UDP))


def _timezone(ctx: GbtContext, element: int) -> bytes:
    return ctx.live.clock.utc_offset_s.to_bytes(4, "big", signed=True)


_serve(gbt.TIMEZONE, _scalar, _timezone, effect="signed seconds east of UTC (--utc-offset)")
_serve(gbt.CONTROLLER_ID, _scalar, _value(gbt.CONTROLLER_ID, lambda c, e: c.controller_id))
_serve(gbt.INTERSECTION_COUNT, _scalar, _constant(gbt.INTERSECTION_COUNT, INTERSECTIONS))
_serve(gbt.GPS_CLOCK, _scalar, _constant(gbt.GPS_CLOCK, 0))
for _ipv6 in (
    gbt.CONTROLLER_IPV6,
    gbt.CONTROLLER_IPV6_PREFIX,
    gbt.CONTROLLER_IPV6_GATEWAY,
    gbt.CENTER_IPV6,
):
    _serve(_ipv6, _scalar, _constant(_ipv6, IPv6Address(0)))
_serve(gbt.CENTER_IPV6_PORT, _scalar, _constant(gbt.CENTER_IPV6_PORT, 0))
_serve(gbt.CENTER_IPV6_TRANSPORT, _scalar, _constant(gbt.CENTER_IPV6_TRANSPORT, 2))

# 3 light groups -----------------------------------------------------------------------

_light_groups = _fixed(LIGHT_GROUPS)


def _light_group_type(ctx: GbtContext, element: int) -> int:
    row = ctx.db.channels.get(element)
    if row is None or not row.source:
        return 0
    return TYPE_PEDESTRIAN if row.kind is ChannelType.PEDESTRIAN else TYPE_VEHICLE


def _light_group_state(ctx: GbtContext, element: int) -> int:
    frame = ctx.status.channels
    bit = 1 << (element - 1)
    row = ctx.db.channels.get(element)
    ped = row is not None and row.kind is ChannelType.PEDESTRIAN
    if frame.greens & bit:
        return int(LightState.GREEN)
    if frame.yellows & bit:
        return int(LightState.GREEN_FLASH if ped else LightState.YELLOW)
    if frame.reds & bit:
        return int(LightState.RED_FLASH if frame.flashing else LightState.RED)
    return int(LightState.OFF)


_serve(gbt.LIGHT_GROUP_COUNT, _scalar, _constant(gbt.LIGHT_GROUP_COUNT, LIGHT_GROUPS))
_serve(gbt.LIGHT_GROUP_ID, _light_groups, _row_id(gbt.LIGHT_GROUP_ID))
_serve(
    gbt.LIGHT_GROUP_TYPE,
    _light_groups,
    _value(gbt.LIGHT_GROUP_TYPE, _light_group_type),
    effect="the channel map: 1 vehicle, 3 pedestrian, 0 unused",
)
_serve(gbt.LIGHT_GROUP_STATUS_ID, _light_groups, _row_id(gbt.LIGHT_GROUP_STATUS_ID))
_serve(
    gbt.LIGHT_GROUP_STATE,
    _light_groups,
    _value(gbt.LIGHT_GROUP_STATE, _light_group_state),
    effect="status: the load switches (a pedestrian clearance is green flash)",
)
_serve(gbt.LIGHT_GROUP_CONTROL_ID, _light_groups, _row_id(gbt.LIGHT_GROUP_CONTROL_ID))
_kept(gbt.LIGHT_GROUP_SHIELD, _light_groups, 0)
_kept(gbt.LIGHT_GROUP_PROHIBIT, _light_groups, 0)

# 4 phases -----------------------------------------------------------------------------

_phases = _fixed(PHASES)


def _vehicle(element: int) -> int | None:
    """The database phase of GB/T phase ``element`` if it is a vehicle phase."""
    return element if element <= PED_OFFSET else None


def _base(element: int) -> int:
    return element if element <= PED_OFFSET else element - PED_OFFSET


def _phase_light_groups(ctx: GbtContext, element: int) -> frozenset[int]:
    kind = ChannelType.VEHICLE if element <= PED_OFFSET else ChannelType.PEDESTRIAN
    source = _base(element)
    return frozenset(
        n for n, row in ctx.db.channels.items() if row.source == source and row.kind is kind
    )


#: (colour, tenths attribute or None) of the three lose steps, vehicle and pedestrian.
_VEHICLE_LOSE: Final = (
    (int(LightState.YELLOW), "yellow_ds"),
    (int(LightState.RED), "red_clear_ds"),
    (0, None),
)
_PED_LOSE: Final = (
    (int(LightState.GREEN_FLASH), "ped_clear_ds"),
    (int(LightState.RED), None),
    (0, None),
)


def _lose_steps(element: int) -> tuple[tuple[int, str | None], ...]:
    return _VEHICLE_LOSE if element <= PED_OFFSET else _PED_LOSE


def _lose_colour_reader(step: int) -> Reader:
    def read(ctx: GbtContext, element: int) -> bytes:
        return bytes([_lose_steps(element)[step][0]])

    return read


def _lose_colour_writer(step: int) -> Writer:
    def write(ctx: GbtContext, element: int, value: int) -> None:
        colour = _lose_steps(element)[step][0]
        if value != colour:
            kind = "vehicle" if element <= PED_OFFSET else "pedestrian"
            raise _refuse(
                ErrorCode.BAD_VALUE,
                f"a {kind} phase loses right of way with {_steps_text(element)} here",
            )

    return write


def _steps_text(element: int) -> str:
    names = [LightState(c).name.lower() for c, _ in _lose_steps(element) if c]
    return " then ".join(names)


def _lose_time_reader(step: int) -> Reader:
    def read(ctx: GbtContext, element: int) -> bytes:
        attr = _lose_steps(element)[step][1]
        row = ctx.phase(_base(element))
        return bytes([min(255, seconds(getattr(row, attr)))]) if attr else b"\x00"

    return read


def _lose_time_writer(step: int) -> Writer:
    def write(ctx: GbtContext, element: int, value: int) -> None:
        attr = _lose_steps(element)[step][1]
        if attr is None:
            if value:
                raise _refuse(
                    ErrorCode.OUT_OF_RANGE,
                    f"step {step + 1} of this phase's transition has no time here",
                )
            return
        _set_phase_time(ctx, _base(element), attr, value * 10)

    return write


def _set_phase_time(ctx: GbtContext, phase: int, attr: str, tenths: int) -> None:
    if phase > MAX_PHASES:
        raise _refuse(ErrorCode.NOT_FOUND, f"phase {phase} is not a phase of this controller")
    times: dict[str, int | None] = dict.fromkeys(_PHASE_TIMES)
    times[attr] = tenths
    ctx.db.set_phase(
        phase,
        walk_ds=times["walk_ds"],
        ped_clear_ds=times["ped_clear_ds"],
        min_green_ds=times["min_green_ds"],
        max_green_ds=times["max_green_ds"],
        yellow_ds=times["yellow_ds"],
        red_clear_ds=times["red_clear_ds"],
    )


_PHASE_TIMES: Final = (
    "walk_ds",
    "ped_clear_ds",
    "min_green_ds",
    "max_green_ds",
    "yellow_ds",
    "red_clear_ds",
)


def _min_green(ctx: GbtContext, element: int) -> int:
    row = ctx.phase(_base(element))
    return seconds(row.min_green_ds if element <= PED_OFFSET else row.walk_ds)


def _set_min_green(ctx: GbtContext, element: int, value: int) -> None:
    attr = "min_green_ds" if element <= PED_OFFSET else "walk_ds"
    _set_phase_time(ctx, _base(element), attr, value * 10)


def _max_green(ctx: GbtContext, element: int) -> bytes:
    if element <= PED_OFFSET:
        return gbt.PHASE_MAX_GREEN_1.encode(seconds(ctx.phase(element).max_green_ds))
    default = gbt.PHASE_MAX_GREEN_1.encode(0)
    return ctx.tables.kept.get(gbt.PHASE_MAX_GREEN_1.at(element), default)


def _set_max_green(ctx: GbtContext, element: int, value: int) -> None:
    if element <= PED_OFFSET:
        _set_phase_time(ctx, element, "max_green_ds", value * 10)
    else:
        ctx.tables.kept[gbt.PHASE_MAX_GREEN_1.at(element)] = gbt.PHASE_MAX_GREEN_1.encode(value)


_serve(gbt.PHASE_COUNT, _scalar, _constant(gbt.PHASE_COUNT, PHASES))
_serve(gbt.PHASE_ID, _phases, _row_id(gbt.PHASE_ID))
_serve(
    gbt.PHASE_LIGHT_GROUPS,
    _phases,
    _value(gbt.PHASE_LIGHT_GROUPS, _phase_light_groups),
    effect="the channel map (read-only: the cabinet's wiring)",
)
for _step in range(3):
    _serve(
        gbt.PHASE_TRANSITIONS[2 * _step],
        _phases,
        _lose_colour_reader(_step),
        _lose_colour_writer(_step),
        "fixed: vehicle yellow then red; pedestrian green flash then red",
    )
    _serve(
        gbt.PHASE_TRANSITIONS[2 * _step + 1],
        _phases,
        _lose_time_reader(_step),
        _lose_time_writer(_step),
        "timing: yellow, red clearance; pedestrian clearance (s)",
    )
for _transition in gbt.PHASE_TRANSITIONS[6:]:
    _kept(_transition, _phases, 0)
_serve(
    gbt.PHASE_MIN_GREEN,
    _phases,
    _value(gbt.PHASE_MIN_GREEN, _min_green),
    _set_min_green,
    "timing: min green; pedestrian phase: walk (s)",
)
_serve(
    gbt.PHASE_MAX_GREEN_1,
    _phases,
    _max_green,
    _set_max_green,
    "timing: max green (free operation); pedestrian phase: kept",
)
_kept(gbt.PHASE_MAX_GREEN_2, _phases, 0)
_kept(gbt.PHASE_EXTENSION, _phases, 0)
_kept(gbt.PHASE_DEMAND, _phases, frozenset())
_serve(gbt.PHASE_CONTROL_ID, _phases, _row_id(gbt.PHASE_CONTROL_ID))
_kept(gbt.PHASE_SHIELD, _phases, 0)
_kept(gbt.PHASE_PROHIBIT, _phases, 0)

# 5 detectors --------------------------------------------------------------------------

_detectors = _fixed(DETECTORS)
_serve(gbt.DETECTOR_COUNT, _scalar, _constant(gbt.DETECTOR_COUNT, DETECTORS))
_serve(gbt.DETECTOR_ID, _detectors, _row_id(gbt.DETECTOR_ID))
_serve(gbt.DETECTOR_TYPE, _detectors, _constant(gbt.DETECTOR_TYPE, 1))
_kept(gbt.DETECTOR_FLOW_PERIOD, _detectors, 60)
_kept(gbt.DETECTOR_OCCUPANCY_PERIOD, _detectors, 60)
_serve(
    gbt.DETECTOR_POSITION,
    _detectors,
    lambda ctx, element: f"检测{element:02d}".encode(),
    effect="no detectors are simulated (every phase is on recall)",
)
_serve(gbt.DETECTOR_STATUS_ID, _detectors, _row_id(gbt.DETECTOR_STATUS_ID))
for _attribute in (gbt.DETECTOR_PRESENCE, gbt.DETECTOR_SPEED, gbt.DETECTOR_VEHICLE_TYPE):
    _serve(_attribute, _detectors, _constant(_attribute, 0))
_serve(gbt.DETECTOR_PLATE, _detectors, lambda ctx, element: b"")
_serve(gbt.DETECTOR_QUEUE, _detectors, _constant(gbt.DETECTOR_QUEUE, 0))

# 6 stages -----------------------------------------------------------------------------


def _stages(ctx: GbtContext) -> int:
    return ctx.tables.n_stages


def _stage_phases(ctx: GbtContext, element: int) -> frozenset[int]:
    return ctx.tables.stages.get(element, frozenset())


def _set_stage_phases(ctx: GbtContext, element: int, value: frozenset[int]) -> None:
    if any(p > PHASES for p in value):
        raise _refuse(ErrorCode.OUT_OF_RANGE, f"this controller has {PHASES} phases")
    vehicle = sorted(p for p in value if p <= PED_OFFSET)
    for p in vehicle:
        if not ctx.phase(p).ring:
            raise _refuse(ErrorCode.BAD_VALUE, f"phase {p} is not in use in this cabinet")
    for a, b in itertools.combinations(vehicle, 2):
        if b not in ctx.phase(a).concurrency or a not in ctx.phase(b).concurrency:
            raise _refuse(
                ErrorCode.BAD_VALUE,
                f"phases {a} and {b} conflict (conflict table 7.1): they cannot share a stage",
            )
    for p in value:
        if p > PED_OFFSET and p - PED_OFFSET not in value:
            raise _refuse(
                ErrorCode.BAD_VALUE,
                f"pedestrian phase {p} runs only with its vehicle phase {p - PED_OFFSET}",
            )
    if value:
        ctx.tables.stages[element] = value
    else:
        ctx.tables.stages.pop(element, None)
    ctx.schemes_changed = True


def _stage_state(ctx: GbtContext, element: int) -> int:
    stage, state, _, _ = ctx.stage_status
    return int(state if stage == element else StageState.IDLE)


def _stage_elapsed(ctx: GbtContext, element: int) -> int:
    stage, _, elapsed, _ = ctx.stage_status
    return elapsed if stage == element else 0


def _stage_remaining(ctx: GbtContext, element: int) -> int:
    stage, _, _, remaining = ctx.stage_status
    return remaining if stage == element else 0


_serve(gbt.STAGE_COUNT, _scalar, _value(gbt.STAGE_COUNT, lambda c, e: c.tables.n_stages))
_serve(gbt.STAGE_ID, _stages, _row_id(gbt.STAGE_ID))
_serve(
    gbt.STAGE_PHASES,
    _stages,
    _value(gbt.STAGE_PHASES, _stage_phases),
    _set_stage_phases,
    "timing: the phases of each scheme's stages; conflicting phases: 0x10",
)
_kept(gbt.STAGE_LATE_START, _stages, ())
_kept(gbt.STAGE_EARLY_END, _stages, ())
_serve(gbt.STAGE_STATUS_ID, _stages, _row_id(gbt.STAGE_STATUS_ID))
_serve(gbt.STAGE_STATE, _stages, _value(gbt.STAGE_STATE, _stage_state), effect=_STATUS)
_serve(gbt.STAGE_ELAPSED, _stages, _value(gbt.STAGE_ELAPSED, _stage_elapsed), effect=_STATUS)
_serve(gbt.STAGE_REMAINING, _stages, _value(gbt.STAGE_REMAINING, _stage_remaining), effect=_STATUS)
_serve(gbt.STAGE_CONTROL_ID, _stages, _row_id(gbt.STAGE_CONTROL_ID))
_kept(gbt.STAGE_SOFT_DEMAND, _stages, 0)
_kept(gbt.STAGE_SHIELD, _stages, 0)
_kept(gbt.STAGE_PROHIBIT, _stages, 0)

# 7 phase safety -----------------------------------------------------------------------


def _conflicts(ctx: GbtContext, element: int) -> frozenset[int]:
    active = set(ctx.db.active_phases())
    base = _base(element)
    row = ctx.phase(base)
    others = {p for p in active if p != base and (not row.ring or p not in row.concurrency)}
    peds = {p + PED_OFFSET for p in others if ctx.phase(p).has_ped}
    return frozenset(others | peds)


def _green_intervals(ctx: GbtContext, element: int) -> tuple[int, ...]:
    row = ctx.phase(_base(element))
    clearance = min(255, seconds(row.clearance_ds)) if element <= PED_OFFSET else 0
    conflicts = _conflicts(ctx, element)
    return tuple(clearance if n in conflicts else 0 for n in range(1, 65))


_serve(gbt.CONFLICT_PHASE, _phases, _row_id(gbt.CONFLICT_PHASE))
_serve(
    gbt.CONFLICT_PHASES,
    _phases,
    _value(gbt.CONFLICT_PHASES, _conflicts),
    effect="the ring structure: phases not concurrent (read-only)",
)
_serve(gbt.GREEN_INTERVAL_PHASE, _phases, _row_id(gbt.GREEN_INTERVAL_PHASE))
_serve(
    gbt.GREEN_INTERVAL_TIMES,
    _phases,
    _value(gbt.GREEN_INTERVAL_TIMES, _green_intervals),
    effect="yellow + red clearance towards each conflicting phase (s)",
)

# 8 priority and emergency -------------------------------------------------------------

_priorities = _fixed(PRIORITIES)
for _group in (gbt.PRIORITY, gbt.EMERGENCY):
    _count, _id, _stage, _level, _shield, _status_id, _requested, _executing = _group
    _serve(_count, _scalar, _constant(_count, PRIORITIES))
    _serve(_id, _priorities, _row_id(_id))
    _kept(_stage, _priorities, 0)
    _kept(_level, _priorities, 0)
    _kept(_shield, _priorities, 0)
    _serve(_status_id, _priorities, _row_id(_status_id))
    _serve(_requested, _priorities, _constant(_requested, 0), effect="never requested")
    _serve(_executing, _priorities, _constant(_executing, 0), effect="never requested")

# 9 schemes ----------------------------------------------------------------------------


def _schemes(ctx: GbtContext) -> int:
    return ctx.tables.n_schemes


def _scheme(ctx: GbtContext, element: int) -> SchemeRow:
    return ctx.tables.schemes.get(element) or SchemeRow()


def _scheme_field(name: str) -> Callable[[GbtContext, int], Any]:
    return lambda ctx, element: getattr(_scheme(ctx, element), name)


def _set_scheme(name: str, check: Callable[[GbtContext, Any], None] | None = None) -> Writer:
    def write(ctx: GbtContext, element: int, value: Any) -> None:
        if check is not None:
            check(ctx, value)
        ctx.tables.schemes[element] = replace(_scheme(ctx, element), **{name: value})
        ctx.schemes_changed = True

    return write


def _one_intersection(ctx: GbtContext, value: int) -> None:
    if value != INTERSECTIONS:
        raise _refuse(ErrorCode.OUT_OF_RANGE, f"this controller runs {INTERSECTIONS} intersection")


def _stage_numbers(ctx: GbtContext, value: tuple[int, ...]) -> None:
    used = list(itertools.takewhile(bool, value))
    if any(value[len(used) :]):
        raise _refuse(ErrorCode.BAD_VALUE, "a stage chain ends at its first 0")
    if any(stage > ctx.tables.n_stages for stage in used):
        raise _refuse(ErrorCode.OUT_OF_RANGE, f"this controller has {ctx.tables.n_stages} stages")


def _coordinated(ctx: GbtContext, value: int) -> None:
    if value > CHAIN:
        raise _refuse(ErrorCode.OUT_OF_RANGE, f"a chain has {CHAIN} positions")


_serve(gbt.SCHEME_COUNT, _scalar, _value(gbt.SCHEME_COUNT, lambda c, e: c.tables.n_schemes))
_serve(gbt.SCHEME_ID, _schemes, _row_id(gbt.SCHEME_ID))
_serve(
    gbt.SCHEME_INTERSECTION,
    _schemes,
    _value(gbt.SCHEME_INTERSECTION, _scheme_field("intersection")),
    _set_scheme("intersection", _one_intersection),
    "always 1",
)
_serve(
    gbt.SCHEME_CYCLE,
    _schemes,
    _value(gbt.SCHEME_CYCLE, _scheme_field("cycle_s")),
    _set_scheme("cycle_s"),
    "timing: pattern cycle (0-255 s); judged when selected",
)
_serve(
    gbt.SCHEME_COORDINATED_STAGE,
    _schemes,
    _value(gbt.SCHEME_COORDINATED_STAGE, _scheme_field("coordinated")),
    _set_scheme("coordinated", _coordinated),
    "timing: the offset's reference; its starting phases are coordinated",
)
_serve(
    gbt.SCHEME_OFFSET,
    _schemes,
    _value(gbt.SCHEME_OFFSET, _scheme_field("offset_s")),
    _set_scheme("offset_s"),
    "timing: pattern offset",
)
_serve(
    gbt.SCHEME_STAGE_CHAIN,
    _schemes,
    _value(gbt.SCHEME_STAGE_CHAIN, _scheme_field("chain")),
    _set_scheme("chain", _stage_numbers),
    "timing: sequence and splits",
)
_serve(
    gbt.SCHEME_STAGE_TIMES,
    _schemes,
    _value(gbt.SCHEME_STAGE_TIMES, _scheme_field("times")),
    _set_scheme("times"),
    "timing: splits (a phase's split is the sum of its stages)",
)
_serve(
    gbt.SCHEME_STAGE_TYPES,
    _schemes,
    _value(gbt.SCHEME_STAGE_TYPES, _scheme_field("types")),
    _set_scheme("types"),
    "kept (every stage is fixed: no detectors)",
)

# 10 transition constraints ------------------------------------------------------------

_serve(gbt.TRANSITION_STAGE, _stages, _row_id(gbt.TRANSITION_STAGE))
_kept(gbt.TRANSITION_CONSTRAINTS, _stages, ())

# 11 day plans -------------------------------------------------------------------------


def _day_plans(ctx: GbtContext) -> int:
    return ctx.tables.n_day_plans


def _day_plan(ctx: GbtContext, element: int) -> DayPlanRow:
    return ctx.tables.day_plans.get(element) or DayPlanRow()


def _day_plan_field(name: str) -> Callable[[GbtContext, int], Any]:
    return lambda ctx, element: getattr(_day_plan(ctx, element), name)


def _set_day_plan(name: str, check: Callable[[GbtContext, Any], None] | None = None) -> Writer:
    def write(ctx: GbtContext, element: int, value: Any) -> None:
        if check is not None:
            check(ctx, value)
        ctx.tables.day_plans[element] = replace(_day_plan(ctx, element), **{name: value})
        ctx.time_base_changed = True

    return write


def _clock_times(ctx: GbtContext, value: tuple[tuple[int, int], ...]) -> None:
    for hour, minute in value:
        if hour > 23 or minute > 59:
            raise _refuse(ErrorCode.OUT_OF_RANGE, f"{hour:02d}:{minute:02d} is not a time of day")


def _scheme_numbers(ctx: GbtContext, value: tuple[int, ...]) -> None:
    if any(scheme > ctx.tables.n_schemes for scheme in value):
        raise _refuse(ErrorCode.OUT_OF_RANGE, f"this controller has {ctx.tables.n_schemes} schemes")


def _period_modes(ctx: GbtContext, value: tuple[int, ...]) -> None:
    for mode in value:
        if mode not in PERIOD_MODES:
            raise _refuse(ErrorCode.BAD_VALUE, f"run mode 0x{mode:02X} is not simulated")


_serve(gbt.DAY_PLAN_COUNT, _scalar, _value(gbt.DAY_PLAN_COUNT, lambda c, e: c.tables.n_day_plans))
_serve(gbt.DAY_PLAN_ID, _day_plans, _row_id(gbt.DAY_PLAN_ID))
_serve(
    gbt.DAY_PLAN_INTERSECTION,
    _day_plans,
    _value(gbt.DAY_PLAN_INTERSECTION, _day_plan_field("intersection")),
    _set_day_plan("intersection", _one_intersection),
    "always 1",
)
_serve(
    gbt.DAY_PLAN_START_TIMES,
    _day_plans,
    _value(gbt.DAY_PLAN_START_TIMES, _day_plan_field("starts")),
    _set_day_plan("starts", _clock_times),
    "time of day",
)
_serve(
    gbt.DAY_PLAN_SCHEMES,
    _day_plans,
    _value(gbt.DAY_PLAN_SCHEMES, _day_plan_field("schemes")),
    _set_day_plan("schemes", _scheme_numbers),
    "time of day",
)
_serve(
    gbt.DAY_PLAN_RUN_MODES,
    _day_plans,
    _value(gbt.DAY_PLAN_RUN_MODES, _day_plan_field("modes")),
    _set_day_plan("modes", _period_modes),
    "time of day: 0x21/0x23 the scheme, 0x22 free, 0x31 flash",
)
for _chain in gbt.DAY_PLAN_ACTION_CHAINS:
    _kept(_chain, _day_plans, bytes(_chain.size))

# 12 schedule --------------------------------------------------------------------------


def _schedule_rows(ctx: GbtContext) -> int:
    return ctx.tables.n_schedule


def _schedule(ctx: GbtContext, element: int) -> ScheduleEntry:
    return ctx.tables.schedule.get(element) or ScheduleEntry()


def _schedule_field(name: str) -> Callable[[GbtContext, int], Any]:
    return lambda ctx, element: getattr(_schedule(ctx, element), name)


def _set_schedule(name: str, check: Callable[[GbtContext, Any], None] | None = None) -> Writer:
    def write(ctx: GbtContext, element: int, value: Any) -> None:
        if check is not None:
            check(ctx, value)
        ctx.tables.schedule[element] = replace(_schedule(ctx, element), **{name: value})
        ctx.time_base_changed = True

    return write


def _day_plan_number(ctx: GbtContext, value: int) -> None:
    if value > ctx.tables.n_day_plans:
        raise _refuse(
            ErrorCode.OUT_OF_RANGE, f"this controller has {ctx.tables.n_day_plans} day plans"
        )


def _in(low: int, high: int, what: str) -> Callable[[GbtContext, frozenset[int]], None]:
    def check(ctx: GbtContext, value: frozenset[int]) -> None:
        if any(not low <= item <= high for item in value):
            raise _refuse(ErrorCode.OUT_OF_RANGE, f"{what} are {low}-{high}")

    return check


_serve(gbt.SCHEDULE_COUNT, _scalar, _value(gbt.SCHEDULE_COUNT, lambda c, e: c.tables.n_schedule))
_serve(gbt.SCHEDULE_ID, _schedule_rows, _row_id(gbt.SCHEDULE_ID))
_serve(
    gbt.SCHEDULE_INTERSECTION,
    _schedule_rows,
    _value(gbt.SCHEDULE_INTERSECTION, _schedule_field("intersection")),
    _set_schedule("intersection", _one_intersection),
    "always 1",
)
_serve(
    gbt.SCHEDULE_PRIORITY,
    _schedule_rows,
    _value(gbt.SCHEDULE_PRIORITY, _schedule_field("priority")),
    _set_schedule("priority"),
    "time of day: lower wins",
)
_serve(
    gbt.SCHEDULE_WEEKDAYS,
    _schedule_rows,
    _value(gbt.SCHEDULE_WEEKDAYS, _schedule_field("weekdays")),
    _set_schedule("weekdays", _in(0, 6, "weekdays")),
    "time of day",
)
_serve(
    gbt.SCHEDULE_MONTHS,
    _schedule_rows,
    _value(gbt.SCHEDULE_MONTHS, _schedule_field("months")),
    _set_schedule("months", _in(1, 12, "months")),
    "time of day",
)
_serve(
    gbt.SCHEDULE_DAYS,
    _schedule_rows,
    _value(gbt.SCHEDULE_DAYS, _schedule_field("days")),
    _set_schedule("days", _in(1, 31, "days of the month")),
    "time of day",
)
_serve(
    gbt.SCHEDULE_DAY_PLAN,
    _schedule_rows,
    _value(gbt.SCHEDULE_DAY_PLAN, _schedule_field("day_plan")),
    _set_schedule("day_plan", _day_plan_number),
    "time of day (0 = entry unused)",
)

# 13 run status ------------------------------------------------------------------------


def _modules(ctx: GbtContext, element: int) -> frozenset[int]:
    bits = set()
    if ctx.status.mmu_fault is not None:
        bits.add(MODULE_MMU)
    if ctx.status.mode is UnitMode.STARTUP_FLASH:
        bits.add(MODULE_STARTUP)
    return frozenset(bits)


def _utc(ctx: GbtContext, element: int) -> datetime:
    return datetime.fromtimestamp(ctx.status.global_time, UTC).replace(tzinfo=None)


def _local(ctx: GbtContext, element: int) -> datetime:
    local = ctx.status.global_time + ctx.status.utc_offset_s
    return datetime.fromtimestamp(local, UTC).replace(tzinfo=None)


def _set_utc(ctx: GbtContext, element: int, value: datetime | None) -> None:
    if value is None:
        raise _refuse(ErrorCode.BAD_VALUE, "a clock cannot be set to nothing")
    ctx.clock_to = int(value.replace(tzinfo=UTC).timestamp())


def _set_local(ctx: GbtContext, element: int, value: datetime | None) -> None:
    if value is None:
        raise _refuse(ErrorCode.BAD_VALUE, "a clock cannot be set to nothing")
    offset = ctx.controller.clock.utc_offset_s if ctx.controller is not None else 0
    ctx.clock_to = int(value.replace(tzinfo=UTC).timestamp()) - offset


def run_mode(ctx: GbtContext) -> int:
    """What the intersection runs now, as a GB/T run mode (see the module docstring)."""
    status = ctx.status
    if status.mode in (UnitMode.STARTUP_FLASH, UnitMode.FLASH, UnitMode.MMU_FLASH):
        return int(RunMode.YELLOW_FLASH)
    if status.mode is UnitMode.RED_REVERT:
        return int(RunMode.ALL_RED)
    if not 1 <= status.coord_pattern_status <= MAX_SCHEMES:
        return int(RunMode.LOCAL_ACTUATED)
    if ctx.tables.center.mode == RunMode.CENTER_DAY_PLAN:
        return int(RunMode.CENTER_DAY_PLAN)
    if status.system_pattern_control:
        return int(RunMode.CENTER_COORDINATED)
    return int(RunMode.LOCAL_COORDINATED)


def _running_scheme(ctx: GbtContext, element: int) -> int:
    pattern = ctx.status.coord_pattern_status
    return pattern if 1 <= pattern <= MAX_SCHEMES else 0


_one = _fixed(INTERSECTIONS)
_serve(gbt.DETECTOR_FAULTS, _scalar, _constant(gbt.DETECTOR_FAULTS, frozenset()))
_serve(
    gbt.MODULE_FAULTS,
    _scalar,
    _value(gbt.MODULE_FAULTS, _modules),
    effect="status: bit 0 MMU latched, bit 1 start-up flash",
)
_serve(gbt.DOOR, _scalar, _constant(gbt.DOOR, 0))
_serve(gbt.VOLTAGE, _scalar, _constant(gbt.VOLTAGE, 220))
_serve(gbt.CURRENT, _scalar, _constant(gbt.CURRENT, 15))
_serve(gbt.TEMPERATURE, _scalar, _constant(gbt.TEMPERATURE, 25))
_serve(gbt.HUMIDITY, _scalar, _constant(gbt.HUMIDITY, 40))
_serve(gbt.WATER, _scalar, _constant(gbt.WATER, 0))
_serve(gbt.SMOKE, _scalar, _constant(gbt.SMOKE, 0))
_serve(
    gbt.CLOCK_UTC,
    _scalar,
    _value(gbt.CLOCK_UTC, _utc),
    _set_utc,
    "the controller clock (UTC); a set logs event 181",
)
_serve(
    gbt.CLOCK_LOCAL,
    _scalar,
    _value(gbt.CLOCK_LOCAL, _local),
    _set_local,
    "the controller clock in local time (--utc-offset)",
)
_serve(gbt.RUN_INTERSECTION, _one, _row_id(gbt.RUN_INTERSECTION))
_serve(
    gbt.RUN_MODE,
    _one,
    _value(gbt.RUN_MODE, lambda ctx, element: run_mode(ctx)),
    effect="status: 0x13/0x11/0x23 coordinated (center/center day plan/local), 0x22 free, "
    "0x31 any flash, 0x32 red revert",
)
_serve(gbt.RUN_SCHEME, _one, _value(gbt.RUN_SCHEME, _running_scheme), effect="status (0 free)")
_serve(
    gbt.RUN_STAGE,
    _one,
    _value(gbt.RUN_STAGE, lambda ctx, element: ctx.stage_status[0]),
    effect="status: the stage whose phases are in service",
)

# 14 traffic data ----------------------------------------------------------------------

_serve(gbt.PRESENCE, _scalar, _constant(gbt.PRESENCE, frozenset()))
_serve(gbt.STATS_DETECTOR, _detectors, _row_id(gbt.STATS_DETECTOR))
for _attribute in (gbt.STATS_FLOW, gbt.STATS_OCCUPANCY, gbt.STATS_SPEED):
    _serve(_attribute, _detectors, _constant(_attribute, 0))

# 15 alarms, 16 faults -----------------------------------------------------------------

_records = _fixed(RECORDS)
_serve(gbt.ALARM_COUNT, _scalar, _constant(gbt.ALARM_COUNT, 0), effect="no alarms are simulated")
_serve(gbt.ALARM_ID, _records, _row_id(gbt.ALARM_ID))
_serve(gbt.ALARM_TYPE, _records, _constant(gbt.ALARM_TYPE, 0))
_serve(gbt.ALARM_VALUE, _records, _constant(gbt.ALARM_VALUE, 0))
_serve(gbt.ALARM_TIME, _records, _constant(gbt.ALARM_TIME, None))


def _fault(ctx: GbtContext, element: int) -> FaultRecord | None:
    faults = ctx.tables.faults
    return faults[element - 1] if element <= len(faults) else None


_serve(
    gbt.FAULT_COUNT,
    _scalar,
    _value(gbt.FAULT_COUNT, lambda ctx, element: len(ctx.tables.faults)),
    effect="records of lost center links (type 0x30), newest last",
)
_serve(gbt.FAULT_ID, _records, _row_id(gbt.FAULT_ID))


def _fault_kind(ctx: GbtContext, element: int) -> int:
    fault = _fault(ctx, element)
    return fault.kind if fault is not None else 0


def _fault_time(ctx: GbtContext, element: int) -> datetime | None:
    fault = _fault(ctx, element)
    return fault.time if fault is not None else None


def _fault_action(ctx: GbtContext, element: int) -> int:
    fault = _fault(ctx, element)
    return fault.action if fault is not None else 0


_serve(gbt.FAULT_TYPE, _records, _value(gbt.FAULT_TYPE, _fault_kind))
_serve(gbt.FAULT_TIME, _records, _value(gbt.FAULT_TIME, _fault_time))
_serve(gbt.FAULT_ACTION, _records, _value(gbt.FAULT_ACTION, _fault_action))

# 17 center control --------------------------------------------------------------------


def _center_field(name: str) -> Callable[[GbtContext, int], int]:
    return lambda ctx, element: int(getattr(ctx.tables.center, name))


def _set_center(name: str) -> Writer:
    def write(ctx: GbtContext, element: int, value: int) -> None:
        ctx.tables.center = replace(ctx.tables.center, **{name: value})
        ctx.center_changed = True

    return write


def center_pattern(center: CenterControl) -> int:
    """The systemPatternControl value a center control means; GbtWriteError if none."""
    if center.stage:
        raise _refuse(
            ErrorCode.CONTROL_FAILED,
            f"stage {center.stage} cannot be forced: the simulator runs whole cycles",
        )
    mode = center.mode
    if mode in RELEASE_MODES:
        return 0
    if mode == RunMode.YELLOW_FLASH:
        return PATTERN_FLASH
    if mode == RunMode.LOCAL_ACTUATED:
        return PATTERN_FREE
    if mode in SCHEME_MODES:
        if not 1 <= center.scheme <= MAX_SCHEMES:
            raise _refuse(
                ErrorCode.CONTROL_FAILED, f"run mode 0x{mode:02X} needs a scheme 1-{MAX_SCHEMES}"
            )
        return center.scheme
    raise _refuse(ErrorCode.CONTROL_FAILED, f"run mode 0x{mode:02X} is not simulated")


_serve(gbt.CENTER_INTERSECTION, _one, _row_id(gbt.CENTER_INTERSECTION))
_serve(
    gbt.CENTER_STAGE,
    _one,
    _value(gbt.CENTER_STAGE, _center_field("stage")),
    _set_center("stage"),
    "only 0: forcing a stage fails (0x50)",
)
_serve(
    gbt.CENTER_SCHEME,
    _one,
    _value(gbt.CENTER_SCHEME, _center_field("scheme")),
    _set_center("scheme"),
    "pattern selection (with run mode 0x13, 0x10, 0x21 or 0x23)",
)
_serve(
    gbt.CENTER_RUN_MODE,
    _one,
    _value(gbt.CENTER_RUN_MODE, _center_field("mode")),
    _set_center("mode"),
    "0x13 the scheme, 0x22 free, 0x31 flash, 0x11 or 0 release; others fail (0x50)",
)

# 18 command pipe ----------------------------------------------------------------------

_kept(gbt.PIPE_COMMAND, _scalar, bytes(16))

# ------------------------------------------------------------------------- lookup

#: Every attribute the simulator answers, in address order.
SERVED: Final[tuple[Served, ...]] = tuple(sorted(_SERVED, key=lambda s: s.address))
SERVED_BY_KEY: Final[Mapping[tuple[int, int, int], Served]] = {
    (s.address.data_class, s.address.object, s.address.attribute): s for s in SERVED
}


def find(address: Address) -> Served | None:
    """The served attribute at ``address`` (any element), or None."""
    return SERVED_BY_KEY.get((address.data_class, address.object, address.attribute))


def expand(ctx: GbtContext, address: Address) -> list[tuple[Served, int]] | None:
    """The instances a query for ``address`` asks for (0 = all attributes / rows), or None.

    None when nothing is served there: the object, the attribute or the row
    does not exist.
    """
    served = find(address)
    if served is not None:
        if address.element == 0 and served.attribute.table:
            return [(served, element) for element in served.elements(ctx)] or None
        return [(served, address.element)] if served.has(ctx, address.element) else None
    if address.attribute != 0:
        return None
    columns = [
        s
        for s in SERVED
        if (s.address.data_class, s.address.object) == (address.data_class, address.object)
    ]
    out: list[tuple[Served, int]] = []
    for column in columns:
        if address.element == 0:
            out.extend((column, element) for element in column.elements(ctx))
        elif column.has(ctx, address.element):
            out.append((column, address.element))
    return out or None


def decode_for(served: Served, raw: bytes) -> Any:
    """The typed value of a set, or GbtWriteError (wrong length or not a value)."""
    encoding = served.attribute.encoding
    if not isinstance(encoding, gbt.Text) and len(raw) != encoding.size:
        raise _refuse(
            ErrorCode.WRONG_LENGTH,
            f"{served.attribute.name} holds {encoding.size} bytes, not {len(raw)}",
        )
    try:
        return served.attribute.decode(raw)
    except MessageError as err:
        code = ErrorCode.WRONG_LENGTH if isinstance(encoding, gbt.Text) else ErrorCode.BAD_VALUE
        raise _refuse(code, err.message) from err


def write(ctx: GbtContext, served: Served, element: int, value: Any) -> None:
    """Run one set on ``ctx`` (GbtWriteError; DatabaseValueError becomes 0x10)."""
    assert served.write is not None
    try:
        served.write(ctx, element, value)
    except DatabaseValueError as err:
        raise _refuse(ErrorCode.BAD_VALUE, str(err)) from err
    except ValueError as err:
        if isinstance(err, GbtWriteError):
            raise
        raise _refuse(ErrorCode.OUT_OF_RANGE, str(err)) from err


def record_link_loss(tables: GbtTables, when: datetime) -> None:
    """The center fell silent while in control: drop center control, log a fault."""
    tables.center = CenterControl()
    tables.faults.append(
        FaultRecord(kind=FAULT_COMMUNICATION, time=when, action=ACTION_LOCAL_COORDINATED)
    )
    del tables.faults[:-RECORDS]
