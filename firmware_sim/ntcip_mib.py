"""The NTCIP 1202 / 1201 objects the simulator answers, mapped onto the simulated controller.

Each :class:`ServedObject` pairs an object of the shared object map
(:mod:`agent.protocols.ntcip1202`: OID, syntax, access, range, units) with
three small functions: which rows exist, how to read one instance, and how
to write one. :mod:`firmware_sim.ntcip_responder` adds the SNMP semantics
(Get, GetNext, atomic Set, errors); this module only knows the controller.

**Tables are dense.** As in a real controller, every table has a fixed
number of rows (``maxPatterns``, ``maxSplits`` ...), all of which can be read
and written; a row the database does not hold yet reads as its defaults
(zeros where NTCIP means "unused"), and the first write creates it. The
sizes are the larger of the defaults below and what the loaded plan needs,
so a plan with pattern 40 gets a 40-row pattern table.

**Units.** The database holds every time in tenths of a second. Objects that
NTCIP defines in whole seconds (phaseWalk, phasePedestrianClear,
phaseMinimumGreen, phaseMaximum1, patternCycleTime, patternOffsetTime,
splitTime, unitStartUpFlash) read ``tenths // 10`` and store ``seconds * 10``;
objects NTCIP defines in tenths (phasePassage, phaseYellowChange,
phaseRedClear, unitRedRevert) are passed through.

**Kept, not acted on.** Some writable objects have no effect on the timing
engine (it has no detectors, overlaps or manual modes): phasePassage,
phaseMaximum2, phaseRedRevert, the phase and ring control groups, unitControl,
coordMaximumMode, coordForceMode and the time-base auxiliary/special
functions. They are stored and read back, so that a manager's write and
read-back work; :attr:`ServedObject.effect` says so for each object. The
control groups and unitControl still count as system-control writes (they
restart the backup timer) and are reset to zero when backup mode begins.

Writes go through a :class:`MibContext`. The responder first runs every
write of a Set against a scratch context (a copy of the database and of the
kept values, no controller), so that a Set either applies completely or not
at all; then it runs them again against the real controller.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final, TypeAlias

from agent.protocols import ntcip1202 as mib
from agent.protocols.ntcip1202 import Access, MibObject, PhaseOption
from agent.protocols.snmp import Oid
from firmware_sim.controller import SimController
from firmware_sim.database import (
    MAX_CHANNELS,
    MAX_PHASES,
    MAX_RINGS,
    ChannelRow,
    ChannelType,
    DayPlanEventRow,
    PatternRow,
    PhaseRow,
    ScheduleRow,
    SplitMode,
    SplitRow,
    TimingDatabase,
)
from firmware_sim.status import UnitControlStatus, UnitStatus

#: A row index (``(phase,)``, ``(split, phase)``) or ``(0,)`` for a scalar.
Index: TypeAlias = tuple[int, ...]
#: A plain value: INTEGER and Counter as ``int``, OCTET STRING as ``bytes``, an OID as a tuple.
Raw: TypeAlias = int | bytes | Oid

#: Smallest table sizes, whatever the plan holds (typical of NEMA TS 2 controllers).
DEFAULT_PATTERNS: Final = 32
DEFAULT_SPLITS: Final = 16
DEFAULT_SEQUENCES: Final = 16
DEFAULT_ACTIONS: Final = 32
DEFAULT_DAY_PLANS: Final = 16
DEFAULT_DAY_PLAN_EVENTS: Final = 16
DEFAULT_SCHEDULE_ENTRIES: Final = 16
PHASE_GROUPS: Final = MAX_PHASES // mib.PHASES_PER_GROUP
CHANNEL_GROUPS: Final = MAX_CHANNELS // 8
RING_CONTROL_GROUPS: Final = 1

#: The only globalDaylightSaving value the simulator runs (it has no DST rules).
DST_DISABLED: Final = int(mib.DaylightSaving.DISABLE_DST)
#: dayPlanActionNumberOID of an unused event: the null OID ``0.0``.
NULL_OID: Final[Oid] = (0, 0)


class WriteRejected(ValueError):
    """A value of the right type and range that the controller still refuses (badValue)."""


# ------------------------------------------------------------------ kept values


@dataclass
class KeptValues:
    """Values of writable objects the timing engine does not act on, by (name, index)."""

    values: dict[tuple[str, Index], int] = field(default_factory=dict)

    def get(self, name: str, index: Index, default: int = 0) -> int:
        """The stored value, or ``default`` when never written."""
        return self.values.get((name, index), default)

    def put(self, name: str, index: Index, value: int) -> None:
        """Store a value."""
        self.values[(name, index)] = value

    def copy(self) -> KeptValues:
        """An independent copy (for a dry run)."""
        return KeptValues(dict(self.values))

    def reset_control(self) -> None:
        """Backup mode began: the system-control objects read zero again (NTCIP 1202)."""
        control = {obj.name for obj in mib.SYSTEM_CONTROL_OBJECTS}
        for key in [key for key in self.values if key[0] in control]:
            del self.values[key]


# ---------------------------------------------------------------------- context


class MibContext:
    """What one request reads and writes: the controller, its database, the kept values.

    ``controller`` is None during a Set's dry run: writes then change only
    ``db`` and ``kept`` (copies) and check what the controller would check.
    """

    def __init__(
        self, controller: SimController | None, db: TimingDatabase, kept: KeptValues
    ) -> None:
        self.controller = controller
        self.db = db
        self.kept = kept

    @classmethod
    def live(cls, controller: SimController, kept: KeptValues) -> MibContext:
        """A context on the real controller."""
        return cls(controller, controller.database, kept)

    @classmethod
    def dry_run(cls, controller: SimController, kept: KeptValues) -> MibContext:
        """A context on copies, for validating a Set before it is applied."""
        return cls(None, controller.database.copy(), kept.copy())

    @property
    def live_controller(self) -> SimController:
        """The controller (reads only happen on a live context)."""
        assert self.controller is not None, "reads and status need the live controller"
        return self.controller

    @cached_property
    def status(self) -> UnitStatus:
        """One status snapshot per request, so all varbinds of a Get agree."""
        return self.live_controller.status()

    # table sizes ---------------------------------------------------------------

    def _size(self, default: int, keys: Iterator[int]) -> int:
        return max(default, max(keys, default=0))

    @property
    def n_patterns(self) -> int:
        """Rows of the pattern table."""
        return min(253, self._size(DEFAULT_PATTERNS, iter(self.db.patterns)))

    @property
    def n_splits(self) -> int:
        """Split plans in the split table."""
        return self._size(DEFAULT_SPLITS, (s for s, _ in self.db.splits))

    @property
    def n_sequences(self) -> int:
        """Sequences in the sequence table."""
        return self._size(DEFAULT_SEQUENCES, iter(self.db.sequences))

    @property
    def n_actions(self) -> int:
        """Rows of the time-base action table."""
        return self._size(DEFAULT_ACTIONS, iter(self.db.actions))

    @property
    def n_day_plans(self) -> int:
        """Day plans in the day plan table."""
        return self._size(DEFAULT_DAY_PLANS, (p for p, _ in self.db.day_plan_events))

    @property
    def n_day_plan_events(self) -> int:
        """Events per day plan."""
        return self._size(DEFAULT_DAY_PLAN_EVENTS, (e for _, e in self.db.day_plan_events))

    @property
    def n_schedule(self) -> int:
        """Rows of the time-base schedule."""
        return self._size(DEFAULT_SCHEDULE_ENTRIES, iter(self.db.schedule))

    # rows with defaults ----------------------------------------------------------

    def phase(self, phase: int) -> PhaseRow:
        """A phase row; an unused phase reads as the database's defaults (ring 0)."""
        return self.db.phases.get(phase) or PhaseRow(phase=phase)

    def pattern(self, pattern: int) -> PatternRow:
        """A pattern row; an unused one reads cycle 0, offset 0, split 1, sequence 1."""
        return self.db.patterns.get(pattern) or PatternRow(pattern=pattern)

    def split(self, split: int, phase: int) -> SplitRow:
        """A split row; an unused one reads time 0, mode none, not coordinated."""
        return self.db.split_row(split, phase) or SplitRow(split=split, phase=phase)

    def event(self, day_plan: int, event: int) -> DayPlanEventRow:
        """A day plan event; an unused one reads 00:00, action 0 (the null OID)."""
        return self.db.day_plan_events.get((day_plan, event)) or DayPlanEventRow(
            day_plan=day_plan, event=event, hour=0, minute=0, action=0
        )

    def schedule(self, entry: int) -> ScheduleRow:
        """A schedule row; an unused one reads all zeros (disabled)."""
        return self.db.schedule.get(entry) or ScheduleRow(
            entry=entry, months=0, days=0, dates=0, day_plan=0
        )

    def channel(self, channel: int) -> ChannelRow:
        """A channel row; an unused one reads source 0, type other."""
        return self.db.channels.get(channel) or ChannelRow(
            channel=channel, source=0, kind=ChannelType.OTHER
        )

    # system control ----------------------------------------------------------------

    def system_control_write(self) -> None:
        """A SET of a system-control object: restart the backup timer (live only)."""
        if self.controller is not None:
            self.controller.system_control_write()


# ---------------------------------------------------------------- served object

Extent = Callable[[MibContext], tuple[int, ...]]
Reader = Callable[[MibContext, Index], Raw]
Writer = Callable[[MibContext, Index, Raw], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class ServedObject:
    """One object (a scalar or a table column) as the simulator answers it."""

    mib: MibObject
    #: The table's size in each index dimension (rows ``1..n`` each); ``()`` for a scalar.
    extent: Extent
    read: Reader
    write: Writer | None = None
    #: How the value relates to the simulation, for people (``objects`` listing, docs).
    effect: str = ""

    @property
    def oid(self) -> Oid:
        """The object's OID (without instance)."""
        return self.mib.oid

    @property
    def writable(self) -> bool:
        """True when a Set may change it."""
        return self.write is not None

    @property
    def access(self) -> Access:
        """The access the simulator gives it (a few NTCIP read-write objects are read-only)."""
        return Access.READ_WRITE if self.writable else Access.READ_ONLY

    def rows(self, ctx: MibContext) -> list[Index]:
        """Every instance suffix, in OID order."""
        dims = self.extent(ctx)
        if not dims:
            return [(0,)]
        return list(itertools.product(*(range(1, n + 1) for n in dims)))

    def has(self, ctx: MibContext, index: Index) -> bool:
        """True when ``index`` is an instance of this object."""
        dims = self.extent(ctx)
        if not dims:
            return index == (0,)
        return len(index) == len(dims) and all(
            1 <= i <= n for i, n in zip(index, dims, strict=True)
        )

    def next_after(self, ctx: MibContext, suffix: Index) -> Index | None:
        """The first instance suffix greater than ``suffix`` (lexicographically), if any."""
        rows = self.rows(ctx)
        at = bisect.bisect_right(rows, suffix)
        return rows[at] if at < len(rows) else None


# ------------------------------------------------------------------- helpers


def _SCALAR(ctx: MibContext) -> tuple[int, ...]:  # the extent of every scalar
    return ()


def _phases(ctx: MibContext) -> tuple[int, ...]:
    return (MAX_PHASES,)


def _int(value: Raw) -> int:
    assert isinstance(value, int), "the responder checks the type first"
    return value


def _octets(value: Raw) -> bytes:
    assert isinstance(value, bytes), "the responder checks the type first"
    return value


def _oid(value: Raw) -> Oid:
    assert isinstance(value, tuple), "the responder checks the type first"
    return value


def _group_bits(bitmap: int, group: int, width: int = 8) -> int:
    return (bitmap >> (width * (group - 1))) & ((1 << width) - 1)


def _constant(value: int) -> Reader:
    return lambda ctx, index: value


def _kept(name: str, default: int = 0) -> Reader:
    return lambda ctx, index: ctx.kept.get(name, index, default)


def _keep(name: str, *, system_control: bool = False) -> Writer:
    def write(ctx: MibContext, index: Index, value: Raw) -> None:
        ctx.kept.put(name, index, _int(value))
        if system_control:
            ctx.system_control_write()

    return write


def _serve(
    obj: MibObject,
    extent: Extent,
    read: Reader,
    write: Writer | None = None,
    effect: str = "",
) -> ServedObject:
    return ServedObject(mib=obj, extent=extent, read=read, write=write, effect=effect)


_KEPT = "kept and read back; no effect on timing"
_KEPT_CONTROL = "kept and read back; restarts the backup timer; no effect on timing"
_STATUS = "status"


# ------------------------------------------------------------------ phase table


def _phase_seconds(attr: str) -> Reader:
    return lambda ctx, index: getattr(ctx.phase(index[0]), attr) // 10


def _phase_tenths(attr: str) -> Reader:
    return lambda ctx, index: int(getattr(ctx.phase(index[0]), attr))


def _set_phase(attr: str, scale: int) -> Writer:
    def write(ctx: MibContext, index: Index, value: Raw) -> None:
        times: dict[str, int | None] = dict.fromkeys(_PHASE_TIMES)
        times[attr] = _int(value) * scale
        ctx.db.set_phase(
            index[0],
            walk_ds=times["walk_ds"],
            ped_clear_ds=times["ped_clear_ds"],
            min_green_ds=times["min_green_ds"],
            max_green_ds=times["max_green_ds"],
            yellow_ds=times["yellow_ds"],
            red_clear_ds=times["red_clear_ds"],
        )

    assert attr in _PHASE_TIMES
    return write


_PHASE_TIMES: Final = (
    "walk_ds",
    "ped_clear_ds",
    "min_green_ds",
    "max_green_ds",
    "yellow_ds",
    "red_clear_ds",
)


_ENABLED: Final = int(PhaseOption.ENABLED)


def _phase_options(ctx: MibContext, index: Index) -> int:
    kept = ctx.kept.get("phaseOptions", index) & ~_ENABLED
    return kept | (_ENABLED if ctx.phase(index[0]).ring else 0)


def _set_phase_options(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.kept.put("phaseOptions", index, _int(value) & ~_ENABLED)


def _concurrency(ctx: MibContext, index: Index) -> bytes:
    return bytes(ctx.phase(index[0]).concurrency)


def _set_concurrency(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_phase(index[0], concurrency=tuple(_octets(value)))


def _set_ring(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_phase(index[0], ring=_int(value))


_PHASE_OBJECTS: Final = (
    _serve(mib.MAX_PHASES, _SCALAR, _constant(MAX_PHASES)),
    _serve(mib.PHASE_NUMBER, _phases, lambda ctx, index: index[0]),
    _serve(mib.PHASE_WALK, _phases, _phase_seconds("walk_ds"), _set_phase("walk_ds", 10), "timing"),
    _serve(
        mib.PHASE_PEDESTRIAN_CLEAR,
        _phases,
        _phase_seconds("ped_clear_ds"),
        _set_phase("ped_clear_ds", 10),
        "timing",
    ),
    _serve(
        mib.PHASE_MINIMUM_GREEN,
        _phases,
        _phase_seconds("min_green_ds"),
        _set_phase("min_green_ds", 10),
        "timing (1-255 s)",
    ),
    _serve(mib.PHASE_PASSAGE, _phases, _kept("phasePassage", 30), _keep("phasePassage"), _KEPT),
    _serve(
        mib.PHASE_MAXIMUM_1,
        _phases,
        _phase_seconds("max_green_ds"),
        _set_phase("max_green_ds", 10),
        "timing (free operation)",
    ),
    _serve(mib.PHASE_MAXIMUM_2, _phases, _kept("phaseMaximum2"), _keep("phaseMaximum2"), _KEPT),
    _serve(
        mib.PHASE_YELLOW_CHANGE,
        _phases,
        _phase_tenths("yellow_ds"),
        _set_phase("yellow_ds", 1),
        "timing (3.0-25.5 s)",
    ),
    _serve(
        mib.PHASE_RED_CLEAR,
        _phases,
        _phase_tenths("red_clear_ds"),
        _set_phase("red_clear_ds", 1),
        "timing",
    ),
    _serve(mib.PHASE_RED_REVERT, _phases, _kept("phaseRedRevert"), _keep("phaseRedRevert"), _KEPT),
    _serve(
        mib.PHASE_OPTIONS,
        _phases,
        _phase_options,
        _set_phase_options,
        "bit 0 follows phaseRing; other bits kept",
    ),
    _serve(mib.PHASE_RING, _phases, lambda ctx, i: ctx.phase(i[0]).ring, _set_ring, "timing (0-4)"),
    _serve(mib.PHASE_CONCURRENCY, _phases, _concurrency, _set_concurrency, "timing, MMU card"),
    _serve(mib.MAX_PHASE_GROUPS, _SCALAR, _constant(PHASE_GROUPS)),
)

# ------------------------------------------------------- phase status and control


def _phase_groups(ctx: MibContext) -> tuple[int, ...]:
    return (PHASE_GROUPS,)


def _phase_status(pick: Callable[[MibContext], int]) -> Reader:
    return lambda ctx, index: _group_bits(pick(ctx), index[0])


def _active_bits(ctx: MibContext) -> int:
    return sum(1 << (p - 1) for p in ctx.db.active_phases())


def _ped_bits(ctx: MibContext) -> int:
    return sum(1 << (p - 1) for p in ctx.db.active_phases() if ctx.db.phases[p].has_ped)


def _veh_calls(ctx: MibContext) -> int:
    # Every phase is on recall (no detectors): each one not green holds a call.
    return _active_bits(ctx) & ~ctx.status.phases.greens


def _ped_calls(ctx: MibContext) -> int:
    return _ped_bits(ctx) & ~ctx.status.phases.walks


def _phase_ons(ctx: MibContext) -> int:
    phases = ctx.status.phases
    return phases.greens | phases.yellows


_PHASE_STATUS_OBJECTS: Final = (
    _serve(mib.PHASE_STATUS_GROUP_NUMBER, _phase_groups, lambda ctx, index: index[0]),
    _serve(
        mib.PHASE_STATUS_GROUP_REDS,
        _phase_groups,
        _phase_status(lambda ctx: ctx.status.phases.reds),
        effect=_STATUS,
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_YELLOWS,
        _phase_groups,
        _phase_status(lambda ctx: ctx.status.phases.yellows),
        effect=_STATUS,
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_GREENS,
        _phase_groups,
        _phase_status(lambda ctx: ctx.status.phases.greens),
        effect=_STATUS,
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_DONT_WALKS,
        _phase_groups,
        _phase_status(lambda ctx: ctx.status.phases.dont_walks),
        effect=_STATUS,
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_PED_CLEARS,
        _phase_groups,
        _phase_status(lambda ctx: ctx.status.phases.ped_clears),
        effect=_STATUS,
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_WALKS,
        _phase_groups,
        _phase_status(lambda ctx: ctx.status.phases.walks),
        effect=_STATUS,
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_VEH_CALLS,
        _phase_groups,
        _phase_status(_veh_calls),
        effect="status: phases in use and not green (every phase is on recall)",
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_PED_CALLS,
        _phase_groups,
        _phase_status(_ped_calls),
        effect="status: ped phases not in walk (peds are on recall)",
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_PHASE_ONS,
        _phase_groups,
        _phase_status(_phase_ons),
        effect="status: phases in green or yellow",
    ),
    _serve(
        mib.PHASE_STATUS_GROUP_PHASE_NEXTS,
        _phase_groups,
        _constant(0),
        effect="always 0 (not simulated)",
    ),
)


def _control_group(obj: MibObject, extent: Extent) -> ServedObject:
    return _serve(obj, extent, _kept(obj.name), _keep(obj.name, system_control=True), _KEPT_CONTROL)


_PHASE_CONTROL_OBJECTS: Final = (
    _serve(mib.PHASE_CONTROL_GROUP_NUMBER, _phase_groups, lambda ctx, index: index[0]),
    *(
        _control_group(obj, _phase_groups)
        for obj in (
            mib.PHASE_CONTROL_GROUP_PHASE_OMIT,
            mib.PHASE_CONTROL_GROUP_PED_OMIT,
            mib.PHASE_CONTROL_GROUP_HOLD,
            mib.PHASE_CONTROL_GROUP_FORCE_OFF,
            mib.PHASE_CONTROL_GROUP_VEH_CALL,
            mib.PHASE_CONTROL_GROUP_PED_CALL,
        )
    ),
)

# -------------------------------------------------------------------------- unit


def _set_startup_flash(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_unit(startup_flash_s=_int(value))


def _set_red_revert(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_unit(red_revert_ds=_int(value))


def _set_backup_time(ctx: MibContext, index: Index, value: Raw) -> None:
    if ctx.controller is not None:
        ctx.controller.set_backup_time(_int(value))


_UNIT_OBJECTS: Final = (
    _serve(
        mib.UNIT_START_UP_FLASH,
        _SCALAR,
        lambda ctx, index: ctx.db.unit.startup_flash_s,
        _set_startup_flash,
        "timing (after power-up and MMU reset)",
    ),
    _serve(
        mib.UNIT_BACKUP_TIME,
        _SCALAR,
        lambda ctx, index: ctx.status.unit_backup_time,
        _set_backup_time,
        "backup timer; 0 = off",
    ),
    _serve(
        mib.UNIT_RED_REVERT,
        _SCALAR,
        lambda ctx, index: ctx.db.unit.red_revert_ds,
        _set_red_revert,
        "timing (all-red after any flash)",
    ),
    _serve(
        mib.UNIT_CONTROL_STATUS,
        _SCALAR,
        lambda ctx, index: int(ctx.status.unit_control_status),
        effect=_STATUS,
    ),
    _serve(
        mib.UNIT_FLASH_STATUS,
        _SCALAR,
        lambda ctx, index: int(ctx.status.unit_flash_status),
        effect=_STATUS,
    ),
    _serve(
        mib.UNIT_ALARM_STATUS_2,
        _SCALAR,
        lambda ctx, index: ctx.status.unit_alarm_status2,
        effect=_STATUS,
    ),
    _serve(
        mib.UNIT_ALARM_STATUS_1,
        _SCALAR,
        lambda ctx, index: ctx.status.unit_alarm_status1,
        effect=_STATUS,
    ),
    _serve(
        mib.SHORT_ALARM_STATUS,
        _SCALAR,
        lambda ctx, index: ctx.status.short_alarm_status,
        effect=_STATUS,
    ),
    _control_group(mib.UNIT_CONTROL, _SCALAR),
)

# ------------------------------------------------------------------ coordination


def _set_operational_mode(ctx: MibContext, index: Index, value: Raw) -> None:
    if _int(value) != 0:
        raise WriteRejected("coordOperationalMode: only 0 (automatic) is simulated")


def _set_correction_mode(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_unit(correction_mode=_int(value))


def _patterns(ctx: MibContext) -> tuple[int, ...]:
    return (ctx.n_patterns,)


def _set_pattern(attr: str, scale: int) -> Writer:
    def write(ctx: MibContext, index: Index, value: Raw) -> None:
        ctx.db.set_pattern(index[0], **{attr: _int(value) * scale})

    return write


def _splits(ctx: MibContext) -> tuple[int, ...]:
    return (ctx.n_splits, MAX_PHASES)


def _set_split_time(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_split(index[0], index[1], time_ds=_int(value) * 10)


def _set_split_mode(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_split(index[0], index[1], mode=SplitMode(_int(value)))


def _set_split_coord(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_split(index[0], index[1], coord=bool(_int(value)))


def _set_system_pattern(ctx: MibContext, index: Index, value: Raw) -> None:
    if ctx.controller is not None:
        ctx.controller.set_system_pattern(_int(value))


def _set_system_sync(ctx: MibContext, index: Index, value: Raw) -> None:
    if ctx.controller is not None:
        ctx.controller.set_system_sync(_int(value))


_COORD_OBJECTS: Final = (
    _serve(
        mib.COORD_OPERATIONAL_MODE,
        _SCALAR,
        _constant(0),
        _set_operational_mode,
        "always 0 (automatic); other values: badValue",
    ),
    _serve(
        mib.COORD_CORRECTION_MODE,
        _SCALAR,
        lambda ctx, index: int(ctx.db.unit.correction_mode),
        _set_correction_mode,
        "transition (1 other = shortway)",
    ),
    _serve(
        mib.COORD_MAXIMUM_MODE,
        _SCALAR,
        _kept("coordMaximumMode", 2),
        _keep("coordMaximumMode"),
        _KEPT,
    ),
    _serve(
        mib.COORD_FORCE_MODE, _SCALAR, _kept("coordForceMode", 3), _keep("coordForceMode"), _KEPT
    ),
    _serve(mib.MAX_PATTERNS, _SCALAR, lambda ctx, index: ctx.n_patterns),
    _serve(mib.PATTERN_TABLE_TYPE, _SCALAR, _constant(2), effect="2 (patterns)"),
    _serve(mib.PATTERN_NUMBER, _patterns, lambda ctx, index: index[0]),
    _serve(
        mib.PATTERN_CYCLE_TIME,
        _patterns,
        lambda ctx, index: ctx.pattern(index[0]).cycle_ds // 10,
        _set_pattern("cycle_ds", 10),
        "timing; judged when selected",
    ),
    _serve(
        mib.PATTERN_OFFSET_TIME,
        _patterns,
        lambda ctx, index: ctx.pattern(index[0]).offset_ds // 10,
        _set_pattern("offset_ds", 10),
        "timing; judged when selected",
    ),
    _serve(
        mib.PATTERN_SPLIT_NUMBER,
        _patterns,
        lambda ctx, index: ctx.pattern(index[0]).split,
        _set_pattern("split", 1),
        "timing (1-255)",
    ),
    _serve(
        mib.PATTERN_SEQUENCE_NUMBER,
        _patterns,
        lambda ctx, index: ctx.pattern(index[0]).sequence,
        _set_pattern("sequence", 1),
        "timing (1-255)",
    ),
    _serve(mib.MAX_SPLITS, _SCALAR, lambda ctx, index: ctx.n_splits),
    _serve(mib.SPLIT_NUMBER, _splits, lambda ctx, index: index[0]),
    _serve(mib.SPLIT_PHASE, _splits, lambda ctx, index: index[1]),
    _serve(
        mib.SPLIT_TIME,
        _splits,
        lambda ctx, index: ctx.split(*index).time_ds // 10,
        _set_split_time,
        "timing; judged when selected",
    ),
    _serve(
        mib.SPLIT_MODE,
        _splits,
        lambda ctx, index: int(ctx.split(*index).mode),
        _set_split_mode,
        "timing (7 = omitted; ped served with 5/6)",
    ),
    _serve(
        mib.SPLIT_COORD_PHASE,
        _splits,
        lambda ctx, index: int(ctx.split(*index).coord),
        _set_split_coord,
        "timing",
    ),
    _serve(
        mib.COORD_PATTERN_STATUS,
        _SCALAR,
        lambda ctx, index: ctx.status.coord_pattern_status,
        effect=_STATUS,
    ),
    _serve(
        mib.LOCAL_FREE_STATUS,
        _SCALAR,
        lambda ctx, index: int(ctx.status.local_free_status),
        effect=_STATUS,
    ),
    _serve(
        mib.COORD_CYCLE_STATUS,
        _SCALAR,
        lambda ctx, index: ctx.status.coord_cycle_status,
        effect=_STATUS,
    ),
    _serve(
        mib.COORD_SYNC_STATUS,
        _SCALAR,
        lambda ctx, index: ctx.status.coord_sync_status,
        effect=_STATUS,
    ),
    _serve(
        mib.SYSTEM_PATTERN_CONTROL,
        _SCALAR,
        lambda ctx, index: ctx.live_controller.system_pattern_control,
        _set_system_pattern,
        "pattern selection; restarts the backup timer",
    ),
    _serve(
        mib.SYSTEM_SYNC_CONTROL,
        _SCALAR,
        lambda ctx, index: ctx.live_controller.engine.system_sync_control,
        _set_system_sync,
        "kept; restarts the backup timer",
    ),
)

# --------------------------------------------------------------------- time base


def _actions(ctx: MibContext) -> tuple[int, ...]:
    return (ctx.n_actions,)


def _action_pattern(ctx: MibContext, index: Index) -> int:
    row = ctx.db.actions.get(index[0])
    return row.pattern if row is not None else 0


def _set_action_pattern(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_action(index[0], _int(value))


_TIMEBASE_OBJECTS: Final = (
    _serve(mib.MAX_TIMEBASE_ASC_ACTIONS, _SCALAR, lambda ctx, index: ctx.n_actions),
    _serve(mib.TIMEBASE_ASC_ACTION_NUMBER, _actions, lambda ctx, index: index[0]),
    _serve(
        mib.TIMEBASE_ASC_PATTERN,
        _actions,
        _action_pattern,
        _set_action_pattern,
        "time of day (0 none, 254 free, 255 flash)",
    ),
    _serve(
        mib.TIMEBASE_ASC_AUXILLARY_FUNCTION,
        _actions,
        _kept("timebaseAscAuxillaryFunction"),
        _keep("timebaseAscAuxillaryFunction"),
        _KEPT,
    ),
    _serve(
        mib.TIMEBASE_ASC_SPECIAL_FUNCTION,
        _actions,
        _kept("timebaseAscSpecialFunction"),
        _keep("timebaseAscSpecialFunction"),
        _KEPT,
    ),
    _serve(
        mib.TIMEBASE_ASC_ACTION_STATUS,
        _SCALAR,
        lambda ctx, index: ctx.live_controller.engine.timebase.action,
        effect="status: the action in force",
    ),
)

# ------------------------------------------------------------ rings and sequences


def _sequences(ctx: MibContext) -> tuple[int, ...]:
    return (ctx.n_sequences, MAX_RINGS)


def _sequence_data(ctx: MibContext, index: Index) -> bytes:
    row = ctx.db.sequences.get(index[0])
    if row is None or index[1] > len(row.rings):
        return b""
    return bytes(row.rings[index[1] - 1])


def _set_sequence_data(ctx: MibContext, index: Index, value: Raw) -> None:
    ctx.db.set_sequence(index[0], index[1], tuple(_octets(value)))


def _ring_groups(ctx: MibContext) -> tuple[int, ...]:
    return (RING_CONTROL_GROUPS,)


_RING_OBJECTS: Final = (
    _serve(mib.MAX_RINGS, _SCALAR, _constant(MAX_RINGS)),
    _serve(mib.MAX_SEQUENCES, _SCALAR, lambda ctx, index: ctx.n_sequences),
    _serve(mib.SEQUENCE_NUMBER, _sequences, lambda ctx, index: index[0]),
    _serve(mib.SEQUENCE_RING_NUMBER, _sequences, lambda ctx, index: index[1]),
    _serve(
        mib.SEQUENCE_DATA,
        _sequences,
        _sequence_data,
        _set_sequence_data,
        "timing (service order)",
    ),
    _serve(mib.MAX_RING_CONTROL_GROUPS, _SCALAR, _constant(RING_CONTROL_GROUPS)),
    _serve(mib.RING_CONTROL_GROUP_NUMBER, _ring_groups, lambda ctx, index: index[0]),
    *(
        _control_group(obj, _ring_groups)
        for obj in (
            mib.RING_CONTROL_GROUP_STOP_TIME,
            mib.RING_CONTROL_GROUP_FORCE_OFF,
            mib.RING_CONTROL_GROUP_MAX2,
            mib.RING_CONTROL_GROUP_MAX_INHIBIT,
            mib.RING_CONTROL_GROUP_PED_RECYCLE,
            mib.RING_CONTROL_GROUP_RED_REST,
            mib.RING_CONTROL_GROUP_OMIT_RED_CLEAR,
        )
    ),
)

# ------------------------------------------------------------------------ channels


def _channels(ctx: MibContext) -> tuple[int, ...]:
    return (MAX_CHANNELS,)


def _channel_groups(ctx: MibContext) -> tuple[int, ...]:
    return (CHANNEL_GROUPS,)


def _set_channel_source(ctx: MibContext, index: Index, value: Raw) -> None:
    row = ctx.channel(index[0])
    ctx.db.set_channel(index[0], source=_int(value), kind=row.kind)


def _set_channel_type(ctx: MibContext, index: Index, value: Raw) -> None:
    row = ctx.channel(index[0])
    ctx.db.set_channel(index[0], source=row.source, kind=_int(value))


def _channel_status(pick: Callable[[MibContext], int]) -> Reader:
    return lambda ctx, index: _group_bits(pick(ctx), index[0])


_CHANNEL_MAP = "cabinet map; the MMU card is not reprogrammed"
_CHANNEL_OBJECTS: Final = (
    _serve(mib.MAX_CHANNELS, _SCALAR, _constant(MAX_CHANNELS)),
    _serve(mib.CHANNEL_NUMBER, _channels, lambda ctx, index: index[0]),
    _serve(
        mib.CHANNEL_CONTROL_SOURCE,
        _channels,
        lambda ctx, index: ctx.channel(index[0]).source,
        _set_channel_source,
        _CHANNEL_MAP,
    ),
    _serve(
        mib.CHANNEL_CONTROL_TYPE,
        _channels,
        lambda ctx, index: int(ctx.channel(index[0]).kind),
        _set_channel_type,
        _CHANNEL_MAP,
    ),
    _serve(mib.MAX_CHANNEL_STATUS_GROUPS, _SCALAR, _constant(CHANNEL_GROUPS)),
    _serve(mib.CHANNEL_STATUS_GROUP_NUMBER, _channel_groups, lambda ctx, index: index[0]),
    _serve(
        mib.CHANNEL_STATUS_GROUP_REDS,
        _channel_groups,
        _channel_status(lambda ctx: ctx.status.channels.reds),
        effect="status: the load switches (faults included)",
    ),
    _serve(
        mib.CHANNEL_STATUS_GROUP_YELLOWS,
        _channel_groups,
        _channel_status(lambda ctx: ctx.status.channels.yellows),
        effect="status: the load switches (faults included)",
    ),
    _serve(
        mib.CHANNEL_STATUS_GROUP_GREENS,
        _channel_groups,
        _channel_status(lambda ctx: ctx.status.channels.greens),
        effect="status: the load switches (faults included)",
    ),
    _serve(mib.MAX_OVERLAPS, _SCALAR, _constant(0), effect="0 (overlaps are not simulated)"),
)

# ------------------------------------------------------------- NTCIP 1201 global


def _set_global_time(ctx: MibContext, index: Index, value: Raw) -> None:
    if ctx.controller is not None:
        ctx.controller.set_clock(_int(value))


def _set_daylight_saving(ctx: MibContext, index: Index, value: Raw) -> None:
    if _int(value) != DST_DISABLED:
        raise WriteRejected("globalDaylightSaving: only 2 (disableDST) is simulated")


def _schedule_rows(ctx: MibContext) -> tuple[int, ...]:
    return (ctx.n_schedule,)


def _set_schedule(attr: str) -> Writer:
    def write(ctx: MibContext, index: Index, value: Raw) -> None:
        row = ctx.schedule(index[0])
        fields = {
            "months": row.months,
            "days": row.days,
            "dates": row.dates,
            "day_plan": row.day_plan,
        }
        fields[attr] = _int(value)
        ctx.db.set_schedule(index[0], **fields)

    return write


def _day_plan_rows(ctx: MibContext) -> tuple[int, ...]:
    return (ctx.n_day_plans, ctx.n_day_plan_events)


def _action_oid(action: int) -> Oid:
    return mib.TIMEBASE_ASC_ACTION_NUMBER.instance(action) if action else NULL_OID


def _action_of_oid(oid: Oid) -> int:
    if oid == NULL_OID:
        return 0
    prefix = mib.TIMEBASE_ASC_ACTION_NUMBER.oid
    if len(oid) == len(prefix) + 1 and oid[: len(prefix)] == prefix and 1 <= oid[-1] <= 255:
        return oid[-1]
    raise WriteRejected("dayPlanActionNumberOID must be timebaseAscActionNumber.<n> or 0.0")


def _set_event(attr: str) -> Writer:
    def write(ctx: MibContext, index: Index, value: Raw) -> None:
        row = ctx.event(*index)
        fields = {"hour": row.hour, "minute": row.minute, "action": row.action}
        fields[attr] = _action_of_oid(_oid(value)) if attr == "action" else _int(value)
        ctx.db.set_day_plan_event(index[0], index[1], **fields)

    return write


_GLOBAL_OBJECTS: Final = (
    _serve(
        mib.GLOBAL_SET_ID_PARAMETER,
        _SCALAR,
        lambda ctx, index: ctx.db.revision & 0xFFFF,
        effect="changes with every database write",
    ),
    _serve(
        mib.GLOBAL_TIME,
        _SCALAR,
        lambda ctx, index: ctx.status.global_time,
        _set_global_time,
        "controller clock (UTC); a Set logs event 181",
    ),
    _serve(
        mib.GLOBAL_DAYLIGHT_SAVING,
        _SCALAR,
        _constant(DST_DISABLED),
        _set_daylight_saving,
        "always 2 (disableDST); other values: badValue",
    ),
    _serve(mib.MAX_TIME_BASE_SCHEDULE_ENTRIES, _SCALAR, lambda ctx, index: ctx.n_schedule),
    _serve(mib.TIME_BASE_SCHEDULE_NUMBER, _schedule_rows, lambda ctx, index: index[0]),
    _serve(
        mib.TIME_BASE_SCHEDULE_MONTH,
        _schedule_rows,
        lambda ctx, index: ctx.schedule(index[0]).months,
        _set_schedule("months"),
        "time of day",
    ),
    _serve(
        mib.TIME_BASE_SCHEDULE_DAY,
        _schedule_rows,
        lambda ctx, index: ctx.schedule(index[0]).days,
        _set_schedule("days"),
        "time of day",
    ),
    _serve(
        mib.TIME_BASE_SCHEDULE_DATE,
        _schedule_rows,
        lambda ctx, index: ctx.schedule(index[0]).dates,
        _set_schedule("dates"),
        "time of day",
    ),
    _serve(
        mib.TIME_BASE_SCHEDULE_DAY_PLAN,
        _schedule_rows,
        lambda ctx, index: ctx.schedule(index[0]).day_plan,
        _set_schedule("day_plan"),
        "time of day",
    ),
    _serve(mib.MAX_DAY_PLANS, _SCALAR, lambda ctx, index: ctx.n_day_plans),
    _serve(mib.MAX_DAY_PLAN_EVENTS, _SCALAR, lambda ctx, index: ctx.n_day_plan_events),
    _serve(mib.DAY_PLAN_NUMBER, _day_plan_rows, lambda ctx, index: index[0]),
    _serve(mib.DAY_PLAN_EVENT_NUMBER, _day_plan_rows, lambda ctx, index: index[1]),
    _serve(
        mib.DAY_PLAN_HOUR,
        _day_plan_rows,
        lambda ctx, index: ctx.event(*index).hour,
        _set_event("hour"),
        "time of day",
    ),
    _serve(
        mib.DAY_PLAN_MINUTE,
        _day_plan_rows,
        lambda ctx, index: ctx.event(*index).minute,
        _set_event("minute"),
        "time of day",
    ),
    _serve(
        mib.DAY_PLAN_ACTION_NUMBER_OID,
        _day_plan_rows,
        lambda ctx, index: _action_oid(ctx.event(*index).action),
        _set_event("action"),
        "time of day (timebaseAscActionNumber.<n>; 0.0 = none)",
    ),
    _serve(
        mib.DAY_PLAN_STATUS,
        _SCALAR,
        lambda ctx, index: ctx.status.day_plan,
        effect="status: the day plan in force",
    ),
    _serve(
        mib.CONTROLLER_STANDARD_TIME_ZONE,
        _SCALAR,
        lambda ctx, index: ctx.status.utc_offset_s,
        effect="read-only here: set with --utc-offset",
    ),
    _serve(
        mib.CONTROLLER_LOCAL_TIME,
        _SCALAR,
        lambda ctx, index: ctx.status.global_time + ctx.status.utc_offset_s,
        effect=_STATUS,
    ),
)

#: Every object the simulator answers, in OID order (the order GetNext walks).
SERVED: Final[tuple[ServedObject, ...]] = tuple(
    sorted(
        (
            *_PHASE_OBJECTS,
            *_PHASE_STATUS_OBJECTS,
            *_PHASE_CONTROL_OBJECTS,
            *_UNIT_OBJECTS,
            *_COORD_OBJECTS,
            *_TIMEBASE_OBJECTS,
            *_RING_OBJECTS,
            *_CHANNEL_OBJECTS,
            *_GLOBAL_OBJECTS,
        ),
        key=lambda served: served.oid,
    )
)

#: Served objects by OID (without instance).
SERVED_BY_OID: Final[Mapping[Oid, ServedObject]] = {served.oid: served for served in SERVED}

#: The control status that makes the kept system-control values reset to zero.
BACKUP_MODE: Final = UnitControlStatus.BACKUP_MODE


def find_object(oid: Oid) -> tuple[ServedObject, Index] | None:
    """The served object an instance OID falls under, and the instance suffix."""
    for cut in range(len(oid) - 1, 1, -1):
        served = SERVED_BY_OID.get(oid[:cut])
        if served is not None:
            return served, oid[cut:]
    return None
