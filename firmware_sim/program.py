"""Cycle programs: one cycle of ring-and-barrier timing, compiled to timed operations.

The engine never decides an interval on the fly. At every cycle boundary it
builds one :class:`CycleProgram` -- a nominal coordinated cycle, a transition
cycle (longer or shorter, see :mod:`firmware_sim.coordination`) or a free
cycle -- and then plays it back tick by tick. Each program is built from a
:class:`Layout` (barrier groups in service order, each with the phases every
ring serves in it) and one *split* per phase, so every program is a valid
ring-and-barrier cycle by construction:

* inside a ring, phases follow each other: green, yellow, red clearance,
  then the next phase's green (NEMA ring structure);
* every ring starts a barrier group together and the group lasts as long as
  its longest ring; a ring that finishes early rests in red at the barrier
  (``reference/traffic-rules.md`` §1.1: both rings end together at a barrier);
* green = split - yellow - red clearance (the split includes the clearances,
  as NTCIP ``splitTime`` does);
* a served pedestrian movement starts WALK with the green, then flashing
  DON'T WALK for the ped clearance, then steady DON'T WALK; the ped
  clearance therefore ends at or before the onset of yellow (the builder
  asserts green >= walk + ped clear).

Time zero of a program is the start of its first barrier group (for a
coordinated pattern: the group of the coordinated phases). Operations at the
same instant run in a fixed order -- ends before begins -- so the event log
reads 11 before 1, and per phase 1, 21, 22, 23, 8, 9, 10, 11.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from firmware_sim.status import CoordCycleState


class Op(IntEnum):
    """A timed operation on one phase; the value is its order inside one instant."""

    RED_END = 0  # end of red clearance (event 11)
    RED_CLEAR = 1  # end of yellow, start of red clearance (events 9, 10)
    DONT_WALK = 2  # steady DON'T WALK (event 23)
    YELLOW = 3  # start of yellow (event 8; 151 for a coordinated phase)
    PED_CLEAR = 4  # flashing DON'T WALK (event 22)
    GREEN = 5  # start of green (event 1; 152 for a coordinated phase)
    WALK = 6  # WALK (event 21)


@dataclass(frozen=True, kw_only=True, slots=True)
class GroupLayout:
    """One barrier group: an id (its lowest phase) and each ring's phases, in order."""

    group: int
    rings: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    """The barrier groups of a cycle in service order, starting with the program's first."""

    groups: tuple[GroupLayout, ...]

    def phases(self) -> tuple[int, ...]:
        """Every phase served, in group then ring order."""
        return tuple(p for g in self.groups for ring in g.rings for p in ring)

    def group_of(self, phase: int) -> int:
        """Index (in ``groups``) of the group that serves ``phase``."""
        for index, group in enumerate(self.groups):
            if any(phase in ring for ring in group.rings):
                return index
        raise KeyError(phase)


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseService:
    """How one phase is timed in one program (all tenths)."""

    phase: int
    split_ds: int
    yellow_ds: int
    red_ds: int
    #: WALK and ped clearance when the ped is served in this program, else 0.
    walk_ds: int = 0
    ped_clear_ds: int = 0
    coord: bool = False

    @property
    def green_ds(self) -> int:
        """Green time: the split less its clearances."""
        return self.split_ds - self.yellow_ds - self.red_ds


@dataclass(frozen=True, kw_only=True, slots=True)
class Slot:
    """One phase's service in a program: green start and interval lengths (tenths)."""

    phase: int
    ring: int
    start_ds: int
    green_ds: int
    walk_ds: int
    ped_clear_ds: int
    yellow_ds: int
    red_ds: int
    coord: bool

    @property
    def end_ds(self) -> int:
        """End of the red clearance (start + split)."""
        return self.start_ds + self.green_ds + self.yellow_ds + self.red_ds


OpEntry = tuple[Op, int, bool]  # (operation, phase, is a coordinated phase)


@dataclass(frozen=True, kw_only=True, slots=True)
class CycleProgram:
    """One compiled cycle. ``times`` and ``ops`` are parallel: the instants and what runs."""

    #: Running pattern for coordPatternStatus: 1-253, or 254 for free.
    pattern: int
    length_ds: int
    slots: tuple[Slot, ...]
    #: Start time of each group, by index in the layout.
    group_starts: tuple[int, ...]
    #: Id (lowest phase) of each group, by index in the layout.
    group_ids: tuple[int, ...]
    #: Program time of local zero (green start of the first coordinated phase); 0 when free.
    ref_ds: int
    cycle_state: CoordCycleState
    #: Signed correction this cycle carries (+ added, - subtracted), tenths.
    correction_ds: int
    #: The pattern's nominal cycle (0 for free).
    nominal_cycle_ds: int
    times: tuple[int, ...]
    ops: tuple[tuple[OpEntry, ...], ...]

    def slot(self, phase: int) -> Slot:
        """The slot serving ``phase`` (KeyError if it is not served)."""
        for slot in self.slots:
            if slot.phase == phase:
                return slot
        raise KeyError(phase)


def build_program(
    *,
    layout: Layout,
    services: Mapping[int, PhaseService],
    group_lengths: Sequence[int],
    pattern: int,
    cycle_state: CoordCycleState,
    correction_ds: int = 0,
    nominal_cycle_ds: int = 0,
) -> CycleProgram:
    """Lay the phases of ``layout`` out in time and compile the operations.

    ``group_lengths[i]`` is the duration of group ``i``; a ring whose splits
    in the group sum to less rests in red until the barrier. A ring whose
    splits sum to more is a programming error (the caller guarantees it).
    """
    slots: list[Slot] = []
    group_starts: list[int] = []
    t0 = 0
    for group, length in zip(layout.groups, group_lengths, strict=True):
        group_starts.append(t0)
        for ring_index, ring in enumerate(group.rings):
            t = t0
            for phase in ring:
                svc = services[phase]
                green = svc.green_ds
                assert green >= svc.walk_ds + svc.ped_clear_ds, (phase, svc)
                assert green > 0, (phase, svc)
                slots.append(
                    Slot(
                        phase=phase,
                        ring=ring_index + 1,
                        start_ds=t,
                        green_ds=green,
                        walk_ds=svc.walk_ds,
                        ped_clear_ds=svc.ped_clear_ds,
                        yellow_ds=svc.yellow_ds,
                        red_ds=svc.red_ds,
                        coord=svc.coord,
                    )
                )
                t += svc.split_ds
            assert t - t0 <= length, (group.group, ring, t - t0, length)
        t0 += length
    coord_starts = [s.start_ds for s in slots if s.coord]
    ref = min(coord_starts) if coord_starts else 0
    times, ops = _compile(slots)
    return CycleProgram(
        pattern=pattern,
        length_ds=t0,
        slots=tuple(slots),
        group_starts=tuple(group_starts),
        group_ids=tuple(g.group for g in layout.groups),
        ref_ds=ref,
        cycle_state=cycle_state,
        correction_ds=correction_ds,
        nominal_cycle_ds=nominal_cycle_ds,
        times=times,
        ops=ops,
    )


def _compile(
    slots: Sequence[Slot],
) -> tuple[tuple[int, ...], tuple[tuple[OpEntry, ...], ...]]:
    timed: list[tuple[int, Op, int, int, bool]] = []
    for s in slots:
        t = s.start_ds

        def add(at: int, op: Op, s: Slot = s) -> None:
            timed.append((at, op, s.ring, s.phase, s.coord))

        add(t, Op.GREEN)
        if s.walk_ds > 0:
            add(t, Op.WALK)
            if s.ped_clear_ds > 0:
                add(t + s.walk_ds, Op.PED_CLEAR)
            add(t + s.walk_ds + s.ped_clear_ds, Op.DONT_WALK)
        add(t + s.green_ds, Op.YELLOW)
        add(t + s.green_ds + s.yellow_ds, Op.RED_CLEAR)
        if s.red_ds > 0:
            add(t + s.green_ds + s.yellow_ds + s.red_ds, Op.RED_END)
    timed.sort(key=lambda e: (e[0], e[1], e[2]))
    times: list[int] = []
    ops: list[list[OpEntry]] = []
    for at, op, _ring, phase, coord in timed:
        if not times or times[-1] != at:
            times.append(at)
            ops.append([])
        ops[-1].append((op, phase, coord))
    return tuple(times), tuple(tuple(group) for group in ops)
