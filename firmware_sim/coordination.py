"""Coordination: judging a pattern, laying out its cycle, and correcting its offset.

**Judging a pattern** (:func:`judge_pattern`). When a pattern is selected the
controller checks it the way NTCIP 1202 describes (``patternCycleTime``,
``splitTime`` and ``localFreeStatus`` text; ``reference/traffic-rules.md``
§1.3) and runs free when it cannot run it:

=====================================================  =================
condition                                              localFreeStatus
=====================================================  =================
pattern row, split plan or sequence missing; a ring    badPlan
sequence that leaves its ring or crosses a barrier
twice; no coordinated phase, coordinated phases in
two barrier groups or two in one ring; offset >= cycle
cycle outside the TS 2 range 30-255 s, or shorter      badCycleTime
than the critical path of the phase minimums
a split below its phase minimum (min green + yellow +  badPlan
red; walk + ped clear + yellow + red when the ped is
served)
critical path of the splits longer than the cycle      splitOverrun
cycle time 0                                           coordFree (free,
                                                       splits as maximums)
=====================================================  =================

A critical path *shorter* than the cycle is legal: as NTCIP says, the extra
time goes to the coordinated phase of each ring; a ring that is short in a
barrier group gives the difference to its last phase in that group.

**Offset reference.** TS2: local zero is the start of green of the first
coordinated phase (§1.3 rule 6). The local cycle timer is
``(t - local midnight - offset) mod C`` on the controller clock (time-based
coordination, §3.1). A program starts at the barrier that opens the
coordinated phases' group (the *coordinated barrier*); with lagging lefts or
no lefts this is local zero itself, with leading lefts local zero comes
``ref`` later.

**Transition** (:func:`plan_correction`, :func:`correction_splits`). At each
coordinated barrier the engine computes how far the ideal program position
is ahead of the real one (``ahead``; 0 = in step) and plans the next cycle:

* *shortway* (NTCIP ``shortway``, the default): either subtract ``ahead`` or
  add ``C - ahead``, whichever completes in fewer cycles (ties: the smaller
  change), with at most ``add_percent`` (default 20 %) of C added or
  ``subtract_percent`` (default 15 %) removed per cycle;
* *add only*: add ``C - ahead``, at most ``add_percent`` per cycle;
* *dwell*: hold the coordinated phases, at most ``dwell_ds`` (default 60 s)
  per cycle.

Added time is shared over the barrier groups in proportion to their length
and inside a ring in proportion to the splits; removed time is shared in
proportion to each group's and phase's *slack* (split minus phase minimum),
so no phase ever drops below min green + yellow + red (or walk + ped clear +
yellow + red when its ped is served). Barrier groups change by the same
amount in every ring, so the rings still meet at each barrier. The
correction is recomputed at every coordinated barrier from the clock, so a
clock set or an offset change mid-transition is simply picked up.

With the default limits a correction always finishes within three cycles
when the pattern has at least 13.4 % of C of removable slack (3 x 15 % + 3 x
20 % >= 100 % of C); with less slack the subtract side is limited by the
minimums and the controller takes the faster of the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from firmware_sim.database import PED_SERVED_MODES, SequenceRow, SplitMode, TimingDatabase
from firmware_sim.program import (
    CycleProgram,
    GroupLayout,
    Layout,
    PhaseService,
    build_program,
)
from firmware_sim.status import (
    PATTERN_FREE,
    CoordCycleState,
    CorrectionMode,
    LocalFreeStatus,
)

#: NEMA TS 2 range of patternCycleTime, tenths.
MIN_CYCLE_DS = 300
MAX_CYCLE_DS = 2550


@dataclass(frozen=True, kw_only=True, slots=True)
class TransitionLimits:
    """Per-cycle bounds on an offset correction (vendor-specific; configurable)."""

    add_percent: int = 20
    subtract_percent: int = 15
    dwell_ds: int = 600

    def __post_init__(self) -> None:
        if not 1 <= self.add_percent <= 100:
            raise ValueError("add_percent must be 1-100")
        if not 0 <= self.subtract_percent <= 100:
            raise ValueError("subtract_percent must be 0-100")
        if self.dwell_ds < 1:
            raise ValueError("dwell_ds must be at least one tenth")


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` (largest remainder).

    The shares sum exactly to ``total``. When ``total <= sum(weights)`` no
    share exceeds its weight (each share is at most the ceiling of its exact
    part). Ties in the remainders go to the earlier weight.
    """
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        if total != 0:
            raise ValueError("cannot apportion a non-zero total over zero weights")
        return [0] * len(weights)
    shares = [total * w // weight_sum for w in weights]
    left = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def barrier_groups(db: TimingDatabase) -> dict[int, int]:
    """Barrier group of every phase in use: the lowest phase of its concurrency closure.

    Phases that may time together (``phaseConcurrency``, across rings) are in
    the same group, and so is everything concurrent with those: for the
    standard 8-phase quad this gives {1, 2, 5, 6} and {3, 4, 7, 8}.
    """
    active = set(db.active_phases())
    parent = {p: p for p in active}

    def find(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for p in active:
        row = db.phases[p]
        for q in row.concurrency:
            if q in active and db.phases[q].ring != row.ring:
                a, b = find(p), find(q)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {p: find(p) for p in active}


def default_sequence(db: TimingDatabase) -> SequenceRow:
    """Sequence 1 when none is programmed: each ring's phases in ascending order."""
    rings: dict[int, list[int]] = {}
    for phase in db.active_phases():
        rings.setdefault(db.phases[phase].ring, []).append(phase)
    count = max(rings, default=0)
    return SequenceRow(
        sequence=1, rings=tuple(tuple(rings.get(r, [])) for r in range(1, count + 1))
    )


def layout_for(
    db: TimingDatabase,
    sequence: int,
    *,
    served: set[int],
    start_group_of: int | None,
) -> Layout | str:
    """The barrier-group layout of a sequence, rotated to start with ``start_group_of``'s group.

    ``served`` are the phases timed in this program (others are skipped).
    ``start_group_of`` is a phase whose group comes first; None: the group
    of phase 2 if it is served, else of ring 1's first phase. Returns an
    error text instead when the sequence cannot be run.
    """
    row = db.sequences.get(sequence)
    if row is None and sequence == 1:
        row = default_sequence(db)
    if row is None:
        return f"sequence {sequence} does not exist"
    group_of = barrier_groups(db)
    ring_runs: list[list[tuple[int, list[int]]]] = []
    for ring_index, ring_order in enumerate(row.rings, start=1):
        runs: list[tuple[int, list[int]]] = []
        for phase in ring_order:
            phase_row = db.phases.get(phase)
            if phase_row is None or phase_row.ring == 0:
                continue
            if phase_row.ring != ring_index:
                return f"sequence {sequence} puts phase {phase} in ring {ring_index}"
            if phase not in served:
                continue
            group = group_of[phase]
            if runs and runs[-1][0] == group:
                runs[-1][1].append(phase)
            else:
                runs.append((group, [phase]))
        if len(runs) > 1 and runs[0][0] == runs[-1][0]:
            # The order is cyclic: a ring written from the middle of a group wraps around.
            last = runs.pop()
            runs[0] = (runs[0][0], last[1] + runs[0][1])
        if len({g for g, _ in runs}) != len(runs):
            return f"sequence {sequence} ring {ring_index} crosses a barrier twice"
        ring_runs.append(runs)
    missing = served - {p for runs in ring_runs for _, ps in runs for p in ps}
    if missing:
        return f"sequence {sequence} does not serve phase(s) {sorted(missing)}"
    order: list[int] = []
    for runs in sorted(ring_runs, key=len, reverse=True):
        for group, _ in runs:
            if group not in order:
                order.append(group)
    for ring_index, runs in enumerate(ring_runs, start=1):
        positions = [order.index(g) for g, _ in runs]
        if positions:
            k = positions.index(min(positions))
            rotated = positions[k:] + positions[:k]
            if rotated != sorted(rotated):
                return f"sequence {sequence} ring {ring_index} visits the barriers out of order"
    if not order:
        return "no phase is served"
    for runs_a, runs_b in combinations(ring_runs, 2):
        for group_a, phases_a in runs_a:
            for group_b, phases_b in runs_b:
                if group_a != group_b:
                    continue
                for a in phases_a:
                    for b in phases_b:
                        if b not in db.phases[a].concurrency or a not in db.phases[b].concurrency:
                            return (
                                f"phases {a} and {b} share a barrier group but are not concurrent"
                            )
    if start_group_of is None:
        first = next(p for runs in ring_runs for _, ps in runs for p in ps)
        start_group_of = 2 if 2 in served else first
    start = order.index(group_of[start_group_of])
    order = order[start:] + order[:start]
    groups: list[GroupLayout] = []
    for group in order:
        rings: list[tuple[int, ...]] = []
        for runs in ring_runs:
            phases: tuple[int, ...] = ()
            for g, ps in runs:
                if g == group:
                    phases = tuple(ps)
            rings.append(phases)
        groups.append(GroupLayout(group=group, rings=tuple(rings)))
    return Layout(groups=tuple(groups))


@dataclass(frozen=True, kw_only=True, slots=True)
class CoordPlan:
    """A pattern that passed judgement: everything needed to build its cycles."""

    pattern: int
    cycle_ds: int
    offset_ds: int
    split_number: int
    layout: Layout
    #: Timing of every served phase with its nominal split (extra time already placed).
    services: Mapping[int, PhaseService]
    #: Minimum split of every served phase.
    minimums: Mapping[int, int]
    #: The pattern's programmed split of every served phase (what events 134-149 report).
    programmed_splits: Mapping[int, int]
    group_lengths: tuple[int, ...]
    #: Program time of local zero in the nominal cycle.
    ref_ds: int
    #: Most that can be removed from one cycle without going below any minimum.
    subtract_capacity_ds: int

    def nominal_program(self) -> CycleProgram:
        """The pattern's cycle without correction."""
        return self.program(CoordCycleState.IN_STEP, 0)

    def program(self, state: CoordCycleState, amount_ds: int) -> CycleProgram:
        """A cycle carrying a correction of ``amount_ds`` of kind ``state``."""
        services, lengths = correction_splits(self, state, amount_ds)
        signed = -amount_ds if state is CoordCycleState.TRANSITION_SUBTRACT else amount_ds
        return build_program(
            layout=self.layout,
            services=services,
            group_lengths=lengths,
            pattern=self.pattern,
            cycle_state=state,
            correction_ds=signed,
            nominal_cycle_ds=self.cycle_ds,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """The outcome of judging a pattern: runnable (``plan``) or why it runs free."""

    status: LocalFreeStatus
    detail: str
    plan: CoordPlan | None = None


def _phase_minimum(db: TimingDatabase, phase: int, ped: bool) -> int:
    row = db.phases[phase]
    green = max(row.min_green_ds, row.walk_ds + row.ped_clear_ds) if ped else row.min_green_ds
    return green + row.yellow_ds + row.red_clear_ds


def judge_pattern(db: TimingDatabase, pattern: int) -> Verdict:
    """Decide whether ``pattern`` can run, as a controller does when it is selected."""
    row = db.patterns.get(pattern)
    if row is None:
        return Verdict(status=LocalFreeStatus.BAD_PLAN, detail=f"pattern {pattern} does not exist")
    if row.cycle_ds == 0:
        return Verdict(
            status=LocalFreeStatus.COORD_FREE, detail=f"pattern {pattern} has cycle 0 (free)"
        )
    active = db.active_phases()
    if not active:
        return Verdict(status=LocalFreeStatus.BAD_PLAN, detail="no phase is in use")
    served: set[int] = set()
    ped: set[int] = set()
    coord: set[int] = set()
    for phase in active:
        split = db.split_row(row.split, phase)
        if split is None:
            return Verdict(
                status=LocalFreeStatus.BAD_PLAN,
                detail=f"split plan {row.split} has no row for phase {phase}",
            )
        if split.mode is SplitMode.OMITTED or split.time_ds == 0:
            continue
        served.add(phase)
        if split.mode in PED_SERVED_MODES and db.phases[phase].has_ped:
            ped.add(phase)
        if split.coord:
            coord.add(phase)
    if not coord:
        return Verdict(
            status=LocalFreeStatus.BAD_PLAN, detail=f"pattern {pattern} has no coordinated phase"
        )
    layout = layout_for(db, row.sequence, served=served, start_group_of=min(coord))
    if isinstance(layout, str):
        return Verdict(status=LocalFreeStatus.BAD_PLAN, detail=layout)
    coord_group = layout.group_of(min(coord))
    for phase in coord:
        if layout.group_of(phase) != coord_group:
            return Verdict(
                status=LocalFreeStatus.BAD_PLAN,
                detail=f"coordinated phases {sorted(coord)} are not in one barrier group",
            )
    for ring in layout.groups[0].rings:
        if len(coord.intersection(ring)) > 1:
            return Verdict(
                status=LocalFreeStatus.BAD_PLAN,
                detail=f"two coordinated phases in one ring: {sorted(coord.intersection(ring))}",
            )
    if row.offset_ds >= row.cycle_ds:
        return Verdict(
            status=LocalFreeStatus.BAD_PLAN,
            detail=f"offset {row.offset_ds / 10} s is not below the cycle {row.cycle_ds / 10} s",
        )
    cycle = row.cycle_ds
    if not MIN_CYCLE_DS <= cycle <= MAX_CYCLE_DS:
        return Verdict(
            status=LocalFreeStatus.BAD_CYCLE_TIME,
            detail=f"cycle {cycle / 10} s is outside 30-255 s",
        )
    minimums = {p: _phase_minimum(db, p, p in ped) for p in served}
    min_path = sum(
        max((sum(minimums[p] for p in ring) for ring in g.rings), default=0) for g in layout.groups
    )
    if min_path > cycle:
        return Verdict(
            status=LocalFreeStatus.BAD_CYCLE_TIME,
            detail=f"cycle {cycle / 10} s cannot hold the phase minimums ({min_path / 10} s)",
        )
    splits: dict[int, int] = {}
    for phase in served:
        split = db.split_row(row.split, phase)
        assert split is not None
        if split.time_ds < minimums[phase]:
            return Verdict(
                status=LocalFreeStatus.BAD_PLAN,
                detail=(
                    f"split of phase {phase} ({split.time_ds / 10} s) is below its minimum "
                    f"({minimums[phase] / 10} s)"
                ),
            )
        splits[phase] = split.time_ds
    programmed = dict(splits)
    lengths = [
        max((sum(splits[p] for p in ring) for ring in g.rings), default=0) for g in layout.groups
    ]
    critical = sum(lengths)
    if critical > cycle:
        return Verdict(
            status=LocalFreeStatus.SPLIT_OVERRUN,
            detail=f"critical path {critical / 10} s is longer than the cycle {cycle / 10} s",
        )
    lengths[0] += cycle - critical  # extra time goes to the coordinated phases
    for index, group in enumerate(layout.groups):
        for ring in group.rings:
            if not ring:
                continue
            short = lengths[index] - sum(splits[p] for p in ring)
            if short:
                receivers = [p for p in ring if p in coord] or [ring[-1]]
                splits[receivers[0]] += short
    services = {}
    for phase in served:
        phase_row = db.phases[phase]
        services[phase] = PhaseService(
            phase=phase,
            split_ds=splits[phase],
            yellow_ds=phase_row.yellow_ds,
            red_ds=phase_row.red_clear_ds,
            walk_ds=phase_row.walk_ds if phase in ped else 0,
            ped_clear_ds=phase_row.ped_clear_ds if phase in ped else 0,
            coord=phase in coord,
        )
    capacity = 0
    for group in layout.groups:
        ring_slack = [sum(splits[p] - minimums[p] for p in ring) for ring in group.rings if ring]
        capacity += min(ring_slack, default=0)
    plan = CoordPlan(
        pattern=pattern,
        cycle_ds=cycle,
        offset_ds=row.offset_ds,
        split_number=row.split,
        layout=layout,
        services=services,
        minimums=minimums,
        programmed_splits=programmed,
        group_lengths=tuple(lengths),
        ref_ds=0,
        subtract_capacity_ds=capacity,
    )
    plan = replace(plan, ref_ds=plan.nominal_program().ref_ds)
    return Verdict(status=LocalFreeStatus.NOT_FREE, detail="ok", plan=plan)


def ahead_ds(plan: CoordPlan, local_ds: int) -> int:
    """How far the ideal program position is ahead of a program starting at ``local_ds``.

    ``local_ds`` is the controller's local time in tenths. The ideal local
    cycle timer is ``(time of day - offset) mod C``; a nominal program starts
    ``ref`` before local zero, so a start in step gives 0.
    """
    cycle = plan.cycle_ds
    time_of_day = local_ds % 864_000
    ideal_local = (time_of_day - plan.offset_ds) % cycle
    return (ideal_local + plan.ref_ds) % cycle


def plan_correction(
    plan: CoordPlan, ahead: int, mode: CorrectionMode | int, limits: TransitionLimits
) -> tuple[CoordCycleState, int]:
    """The correction to carry in the next cycle: (kind, amount in tenths, >= 0)."""
    cycle = plan.cycle_ds
    if ahead % cycle == 0:
        return CoordCycleState.IN_STEP, 0
    ahead %= cycle
    behind = cycle - ahead
    if mode == CorrectionMode.DWELL:
        return CoordCycleState.TRANSITION_DWELL, min(behind, limits.dwell_ds)
    add_cap = max(1, cycle * limits.add_percent // 100)
    if mode == CorrectionMode.ADD_ONLY:
        return CoordCycleState.TRANSITION_ADD, min(behind, add_cap)
    # SHORTWAY (and OTHER, which this controller implements as shortway)
    sub_cap = min(cycle * limits.subtract_percent // 100, plan.subtract_capacity_ds)
    add_cycles = -(-behind // add_cap)
    if sub_cap > 0:
        sub_cycles = -(-ahead // sub_cap)
        if sub_cycles < add_cycles or (sub_cycles == add_cycles and ahead <= behind):
            return CoordCycleState.TRANSITION_SUBTRACT, min(ahead, sub_cap)
    return CoordCycleState.TRANSITION_ADD, min(behind, add_cap)


def correction_splits(
    plan: CoordPlan, state: CoordCycleState, amount: int
) -> tuple[dict[int, PhaseService], list[int]]:
    """Phase services and group lengths of a cycle carrying a correction (see module doc)."""
    services = dict(plan.services)
    lengths = list(plan.group_lengths)
    if amount == 0 or state in (CoordCycleState.IN_STEP, CoordCycleState.FREE):
        return services, lengths
    groups = plan.layout.groups

    def change(phase: int, delta: int) -> None:
        svc = services[phase]
        services[phase] = PhaseService(
            phase=svc.phase,
            split_ds=svc.split_ds + delta,
            yellow_ds=svc.yellow_ds,
            red_ds=svc.red_ds,
            walk_ds=svc.walk_ds,
            ped_clear_ds=svc.ped_clear_ds,
            coord=svc.coord,
        )

    if state is CoordCycleState.TRANSITION_DWELL:
        lengths[0] += amount
        for ring in groups[0].rings:
            if ring:
                receivers = [p for p in ring if services[p].coord] or [ring[-1]]
                change(receivers[0], amount)
        return services, lengths
    if state is CoordCycleState.TRANSITION_ADD:
        shares = apportion(amount, lengths)
        for index, group in enumerate(groups):
            lengths[index] += shares[index]
            for ring in group.rings:
                if ring:
                    parts = apportion(shares[index], [plan.services[p].split_ds for p in ring])
                    for phase, part in zip(ring, parts, strict=True):
                        change(phase, part)
        return services, lengths
    if state is not CoordCycleState.TRANSITION_SUBTRACT:
        raise ValueError(f"no correction of kind {state!r}")
    slack = {p: plan.services[p].split_ds - plan.minimums[p] for p in services}
    capacities = [
        min((sum(slack[p] for p in ring) for ring in g.rings if ring), default=0) for g in groups
    ]
    if amount > sum(capacities):
        raise ValueError(f"cannot remove {amount} ds: only {sum(capacities)} ds of slack")
    shares = apportion(amount, capacities)
    for index, group in enumerate(groups):
        lengths[index] -= shares[index]
        for ring in group.rings:
            if ring and shares[index]:
                parts = apportion(shares[index], [slack[p] for p in ring])
                for phase, part in zip(ring, parts, strict=True):
                    change(phase, -part)
    return services, lengths


def free_program(
    db: TimingDatabase, *, split_maximums: Mapping[int, int] | None = None, sequence: int = 1
) -> CycleProgram | str:
    """One cycle of free operation (no detectors), or why there is none.

    Free-mode rule (the simulator has no detectors, so every phase is on
    recall): each phase in use times its **maximum green** (``phaseMaximum1``)
    or, when none is programmed, its **minimum green**; a phase with a
    pedestrian movement (a walk time) serves it every cycle and times at
    least walk + ped clear. With ``split_maximums`` (a pattern of cycle 0)
    the green is ``split - yellow - red`` instead, never below those
    minimums. A ring that reaches a barrier first rests in red until the
    other ring gets there. The cycle starts with the group of phase 2 (the
    main street), so flash is entered and left at the main-street barrier.
    """
    served = set(db.active_phases())
    if not served:
        return "no phase is in use"
    layout = layout_for(db, sequence, served=served, start_group_of=None)
    if isinstance(layout, str):
        return layout
    services: dict[int, PhaseService] = {}
    for phase in served:
        row = db.phases[phase]
        floor = max(row.min_green_ds, row.walk_ds + row.ped_clear_ds if row.has_ped else 0)
        green = row.max_green_ds or row.min_green_ds
        if split_maximums is not None and split_maximums.get(phase, 0) > 0:
            green = split_maximums[phase] - row.yellow_ds - row.red_clear_ds
        green = max(green, floor)
        services[phase] = PhaseService(
            phase=phase,
            split_ds=green + row.yellow_ds + row.red_clear_ds,
            yellow_ds=row.yellow_ds,
            red_ds=row.red_clear_ds,
            walk_ds=row.walk_ds if row.has_ped else 0,
            ped_clear_ds=row.ped_clear_ds if row.has_ped else 0,
        )
    lengths = [
        max((sum(services[p].split_ds for p in ring) for ring in g.rings), default=0)
        for g in layout.groups
    ]
    return build_program(
        layout=layout,
        services=services,
        group_lengths=lengths,
        pattern=PATTERN_FREE,
        cycle_state=CoordCycleState.FREE,
    )
