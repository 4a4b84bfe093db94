"""The plan validator: the first safety barrier between central and the controller.

``validate_plan(plan, limits)`` judges a parsed plan (:class:`agent.plan.model.Plan`)
against every rule of SPEC §7 (:mod:`agent.plan.rules`) and the site's own
floors (:class:`agent.plan.limits.SiteLimits`), and reports *every* violation,
each with its rule id, its place in the plan and a message a traffic engineer
can act on. Nothing reaches a controller unless the report has no errors.

All arithmetic is done in integer tenths of a second, so "split 19.5 s against
a minimum of 19.5 s" is exact, never a float rounding accident.

Structure is judged against the cabinet, not only against itself: a plan's
rings and barriers must agree with the site's rings and concurrency groups
(how the conflict monitor is programmed). A plan that declares two phases
concurrent which the cabinet does not allow is rejected here, before the MMU
would have to catch it on the street.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.plan.limits import ABS_MAX_RED_CLEAR, DEFAULT_SITE_LIMITS, SiteLimits
from agent.plan.model import WEEKDAYS, Pattern, Phase, Plan, to_tenths
from agent.plan.rules import RULES, Severity

#: Guidance thresholds behind the warnings, in tenths.
_LONG_YELLOW_DS = 60
_LONG_RED_CLEAR_DS = 60

Where = tuple[tuple[str, int | str], ...]


@dataclass(frozen=True, kw_only=True)
class Violation:
    """One broken rule at one place in the plan."""

    rule: str
    severity: Severity
    #: Where it failed, outermost first, e.g. (("pattern", 2), ("phase", 4)).
    where: Where
    #: JSON path of the offending value, e.g. ``patterns[1].splits.4``.
    path: str
    message: str

    @property
    def place(self) -> str:
        """The place for people: ``pattern 2, phase 4``; ``plan`` when plan-wide."""
        return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in self.where) or "plan"

    def to_json(self) -> dict[str, object]:
        """The documented JSON form (docs/plan-format.md, "--json output")."""
        return {
            "rule": self.rule,
            "severity": str(self.severity),
            "place": self.place,
            "where": dict(self.where),
            "path": self.path,
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class Report:
    """The validator's verdict: errors reject the plan, warnings do not."""

    errors: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the plan may be loaded."""
        return not self.errors

    def rule_ids(self) -> set[str]:
        """Ids of every rule broken (errors only)."""
        return {v.rule for v in self.errors}


@dataclass
class _Collector:
    found: list[Violation] = field(default_factory=list)

    def add(self, rule: str, path: str, message: str, *where: tuple[str, int | str]) -> None:
        self.found.append(
            Violation(
                rule=rule,
                severity=RULES[rule].severity,
                where=tuple(where),
                path=path,
                message=message,
            )
        )

    def report(self) -> Report:
        return Report(
            errors=tuple(v for v in self.found if v.severity is Severity.ERROR),
            warnings=tuple(v for v in self.found if v.severity is Severity.WARNING),
        )


def _s(tenths: int) -> str:
    """Tenths as seconds for messages: 45 -> '4.5 s', 100 -> '10 s'."""
    return f"{tenths // 10} s" if tenths % 10 == 0 else f"{tenths / 10:.1f} s"


def _ceil_tenths(seconds: float) -> int:
    return math.ceil(round(seconds * 10, 6))


def _names(phases: Iterable[int]) -> str:
    items = sorted(set(phases))
    return ", ".join(str(p) for p in items)


def validate_plan(plan: Plan, limits: SiteLimits = DEFAULT_SITE_LIMITS) -> Report:
    """Judge ``plan`` against every safety rule and the site's limits."""
    out = _Collector()
    defined = _check_phase_table(plan, limits, out)
    ring_of = _check_rings(plan, limits, defined, out)
    group_of = _check_barriers(plan, limits, defined, out)
    _check_barrier_order(plan, ring_of, group_of, out)
    index_of = {phase.phase: i for i, phase in reversed(list(enumerate(plan.phases)))}
    for n, phase in defined.items():
        _check_phase(phase, index_of[n], limits, out)
    _check_patterns(plan, limits, defined, ring_of, group_of, out)
    _check_schedule(plan, out)
    return out.report()


# -- structure -----------------------------------------------------------------------


def _check_phase_table(plan: Plan, limits: SiteLimits, out: _Collector) -> dict[int, Phase]:
    defined: dict[int, Phase] = {}
    for i, phase in enumerate(plan.phases):
        n = phase.phase
        if n in defined:
            out.add(
                "PHASE_DUPLICATE",
                f"phases[{i}].phase",
                f"phase {n} is defined more than once; each phase needs exactly one definition",
                ("phase", n),
            )
            continue
        defined[n] = phase
        if n not in limits.allowed_phases:
            out.add(
                "PHASE_NOT_ALLOWED",
                f"phases[{i}].phase",
                f"phase {n} is not allowed at this site "
                f"(allowed phases: {_names(limits.allowed_phases)})",
                ("phase", n),
            )
    return defined


def _check_rings(
    plan: Plan, limits: SiteLimits, defined: dict[int, Phase], out: _Collector
) -> dict[int, int]:
    """Check ring membership against the cabinet; return phase -> plan ring index."""
    ring_of: dict[int, int] = {}
    for r, ring in enumerate(plan.rings):
        for j, n in enumerate(ring):
            path = f"rings[{r}][{j}]"
            if n not in defined:
                out.add(
                    "PHASE_UNDEFINED",
                    path,
                    f"ring {r + 1} lists phase {n}, which the plan does not define",
                    ("ring", r + 1),
                    ("phase", n),
                )
            elif n in ring_of:
                other = ring_of[n]
                where = "twice in that ring" if other == r else f"in ring {other + 1} as well"
                out.add(
                    "RING_MEMBERSHIP",
                    path,
                    f"phase {n} is listed in ring {r + 1} {where}; a phase belongs to one ring",
                    ("ring", r + 1),
                    ("phase", n),
                )
            else:
                ring_of[n] = r
    for n in defined:
        if n not in ring_of:
            out.add(
                "RING_MEMBERSHIP",
                "rings",
                f"phase {n} is defined but in no ring, so it would never be served in order",
                ("phase", n),
            )
    # Against the cabinet: one plan ring = one cabinet ring, and never two plan rings
    # on the same cabinet ring (their phases would time together).
    site_ring_of_plan_ring: dict[int, int] = {}
    for r, ring in enumerate(plan.rings):
        site_rings = {
            sr
            for n in ring
            if n in defined and n in limits.allowed_phases
            for sr in [limits.ring_of(n)]
            if sr is not None
        }
        if len(site_rings) > 1:
            detail = "; ".join(
                f"cabinet ring {sr + 1}: phases "
                + _names(n for n in ring if n in defined and limits.ring_of(n) == sr)
                for sr in sorted(site_rings)
            )
            out.add(
                "RING_CONFLICT",
                f"rings[{r}]",
                f"ring {r + 1} mixes phases of different cabinet rings ({detail}); "
                "the cabinet times them concurrently, the plan in sequence",
                ("ring", r + 1),
            )
        elif site_rings:
            sr = site_rings.pop()
            if sr in site_ring_of_plan_ring.values():
                first = next(k for k, v in site_ring_of_plan_ring.items() if v == sr)
                out.add(
                    "RING_CONFLICT",
                    f"rings[{r}]",
                    f"rings {first + 1} and {r + 1} both hold phases of cabinet ring {sr + 1}; "
                    "phases of one ring must never run together",
                    ("ring", r + 1),
                )
            else:
                site_ring_of_plan_ring[r] = sr
    return ring_of


def _check_barriers(
    plan: Plan, limits: SiteLimits, defined: dict[int, Phase], out: _Collector
) -> dict[int, int]:
    """Check barrier groups against the cabinet; return phase -> plan group index."""
    group_of: dict[int, int] = {}
    for g, group in enumerate(plan.barriers):
        for j, n in enumerate(group):
            path = f"barriers[{g}][{j}]"
            if n not in defined:
                out.add(
                    "PHASE_UNDEFINED",
                    path,
                    f"barrier group {g + 1} lists phase {n}, which the plan does not define",
                    ("barrier_group", g + 1),
                    ("phase", n),
                )
            elif n in group_of:
                other = group_of[n]
                where = "twice in that group" if other == g else f"in group {other + 1} as well"
                out.add(
                    "BARRIER_MEMBERSHIP",
                    path,
                    f"phase {n} is listed in barrier group {g + 1} {where}; "
                    "a phase is on one side of a barrier",
                    ("barrier_group", g + 1),
                    ("phase", n),
                )
            else:
                group_of[n] = g
    for n in defined:
        if n not in group_of:
            out.add(
                "BARRIER_MEMBERSHIP",
                "barriers",
                f"phase {n} is defined but in no barrier group",
                ("phase", n),
            )
    for g, group in enumerate(plan.barriers):
        site_groups = {
            sg
            for n in group
            if n in defined and n in limits.allowed_phases
            for sg in [limits.barrier_of(n)]
            if sg is not None
        }
        if len(site_groups) > 1:
            detail = "; ".join(
                f"cabinet group {sg + 1}: phases "
                + _names(n for n in group if n in defined and limits.barrier_of(n) == sg)
                for sg in sorted(site_groups)
            )
            out.add(
                "BARRIER_CONFLICT",
                f"barriers[{g}]",
                f"barrier group {g + 1} would let phases run together that the cabinet "
                f"separates by a barrier ({detail}); concurrency only within a barrier group",
                ("barrier_group", g + 1),
            )
    return group_of


def _group_runs(ring: Iterable[int], group_of: dict[int, int]) -> list[int]:
    """The barrier groups a ring passes through, in order, one entry per run."""
    runs: list[int] = []
    for n in ring:
        g = group_of.get(n)
        if g is not None and (not runs or runs[-1] != g):
            runs.append(g)
    return runs


def _check_barrier_order(
    plan: Plan, ring_of: dict[int, int], group_of: dict[int, int], out: _Collector
) -> None:
    all_groups = sorted(set(group_of.values()))
    reference: list[int] | None = None
    for r, ring in enumerate(plan.rings):
        runs = _group_runs(ring, group_of)
        repeated = sorted({g for g in runs if runs.count(g) > 1})
        for g in repeated:
            out.add(
                "BARRIER_ORDER",
                f"rings[{r}]",
                f"ring {r + 1} serves barrier group {g + 1} in two separate runs "
                f"(phases {_names(n for n in ring if group_of.get(n) == g)}), "
                "so it would cross a barrier without the other rings",
                ("ring", r + 1),
            )
        missing = [g for g in all_groups if g not in runs]
        for g in missing:
            out.add(
                "BARRIER_ORDER",
                f"rings[{r}]",
                f"ring {r + 1} has no phase in barrier group {g + 1}; "
                "every ring times through every barrier group",
                ("ring", r + 1),
            )
        if repeated or missing:
            continue
        if reference is None:
            reference = runs
        elif runs != reference:
            out.add(
                "BARRIER_ORDER",
                f"rings[{r}]",
                f"ring {r + 1} crosses the barriers in the order "
                f"{' → '.join(str(g + 1) for g in runs)} but ring 1 in "
                f"{' → '.join(str(g + 1) for g in reference)}; the rings must meet at each barrier",
                ("ring", r + 1),
            )


# -- per phase -------------------------------------------------------------------------


def _check_phase(phase: Phase, index: int, limits: SiteLimits, out: _Collector) -> None:
    n = phase.phase
    i = f"phases[{index}]"
    yellow = to_tenths(phase.yellow)
    floor = max(30, to_tenths(limits.min_yellow))
    if yellow < floor:
        out.add(
            "YELLOW_MIN",
            f"{i}.yellow",
            f"phase {n}: yellow {_s(yellow)} is below the minimum {_s(floor)} "
            "(MUTCD §4D.26 and this site's floor)",
            ("phase", n),
        )
    elif yellow > _LONG_YELLOW_DS:
        out.add(
            "YELLOW_LONG",
            f"{i}.yellow",
            f"phase {n}: yellow {_s(yellow)} is longer than the usual 3-6 s; "
            "check it against the kinematic formula",
            ("phase", n),
        )
    red = to_tenths(phase.red_clear)
    red_floor = to_tenths(limits.min_red_clear)
    red_ceiling = to_tenths(ABS_MAX_RED_CLEAR)
    if red < red_floor or red > red_ceiling:
        out.add(
            "RED_CLEAR_RANGE",
            f"{i}.red_clear",
            f"phase {n}: red clearance {_s(red)} is outside {_s(red_floor)}-{_s(red_ceiling)}",
            ("phase", n),
        )
    elif red > _LONG_RED_CLEAR_DS:
        out.add(
            "RED_CLEAR_LONG",
            f"{i}.red_clear",
            f"phase {n}: red clearance {_s(red)} is longer than the usual ≤ 6 s",
            ("phase", n),
        )
    min_green = to_tenths(phase.min_green)
    green_floor = max(10, to_tenths(limits.min_green))
    if min_green < green_floor:
        out.add(
            "MIN_GREEN_MIN",
            f"{i}.min_green",
            f"phase {n}: minimum green {_s(min_green)} is below {_s(green_floor)}",
            ("phase", n),
        )
    if phase.max_green is not None and to_tenths(phase.max_green) < min_green:
        out.add(
            "MAX_GREEN_BELOW_MIN",
            f"{i}.max_green",
            f"phase {n}: maximum green {_s(to_tenths(phase.max_green))} is below "
            f"its minimum green {_s(min_green)}",
            ("phase", n),
        )
    if (phase.walk is None) != (phase.ped_clear is None):
        given, absent = ("walk", "ped_clear") if phase.walk is not None else ("ped_clear", "walk")
        out.add(
            "PED_INCOMPLETE",
            f"{i}.{absent}",
            f"phase {n}: {given} is given but {absent} is not; "
            "a crossing needs both walk and pedestrian clearance",
            ("phase", n),
        )
    if phase.walk is not None:
        walk = to_tenths(phase.walk)
        walk_floor = to_tenths(limits.min_walk)
        if walk < walk_floor:
            out.add(
                "WALK_MIN",
                f"{i}.walk",
                f"phase {n}: walk {_s(walk)} is below the minimum {_s(walk_floor)} "
                "(MUTCD §4E.06 and site policy)",
                ("phase", n),
            )
    if phase.ped_clear is not None:
        ped = to_tenths(phase.ped_clear)
        need = to_tenths(limits.min_ped_clear)
        why = "this site's floor"
        distance = limits.crossing_ft.get(str(n))
        if distance is not None:
            by_speed = _ceil_tenths(distance / limits.walk_speed_fps)
            if by_speed >= need:
                need = by_speed
                why = f"{distance:g} ft at {limits.walk_speed_fps:g} ft/s (MUTCD §4E.06)"
        if ped < need:
            out.add(
                "PED_CLEAR_MIN",
                f"{i}.ped_clear",
                f"phase {n}: pedestrian clearance {_s(ped)} is below the {_s(need)} "
                f"needed for {why}",
                ("phase", n),
            )


# -- per pattern -----------------------------------------------------------------------


def _check_patterns(
    plan: Plan,
    limits: SiteLimits,
    defined: dict[int, Phase],
    ring_of: dict[int, int],
    group_of: dict[int, int],
    out: _Collector,
) -> None:
    seen: set[int] = set()
    for i, pattern in enumerate(plan.patterns):
        p = pattern.pattern
        if p in seen:
            out.add(
                "PATTERN_DUPLICATE",
                f"patterns[{i}].pattern",
                f"pattern {p} is defined more than once",
                ("pattern", p),
            )
            continue
        seen.add(p)
        _check_pattern(plan, pattern, i, limits, defined, ring_of, group_of, out)


def _check_pattern(
    plan: Plan,
    pattern: Pattern,
    i: int,
    limits: SiteLimits,
    defined: dict[int, Phase],
    ring_of: dict[int, int],
    group_of: dict[int, int],
    out: _Collector,
) -> None:
    p = pattern.pattern
    base = f"patterns[{i}]"
    cycle = to_tenths(pattern.cycle)
    lo, hi = to_tenths(limits.cycle_min), to_tenths(limits.cycle_max)
    if cycle < lo or cycle > hi:
        out.add(
            "CYCLE_RANGE",
            f"{base}.cycle",
            f"pattern {p}: cycle {_s(cycle)} is outside this site's bounds {_s(lo)}-{_s(hi)}",
            ("pattern", p),
        )
    offset = to_tenths(pattern.offset)
    if offset >= cycle:
        out.add(
            "OFFSET_RANGE",
            f"{base}.offset",
            f"pattern {p}: offset {_s(offset)} must be less than the cycle {_s(cycle)}",
            ("pattern", p),
        )

    splits: dict[int, int] = {}
    for key in pattern.splits:
        n = int(key)
        if n not in defined:
            out.add(
                "PHASE_UNDEFINED",
                f"{base}.splits.{key}",
                f"pattern {p} gives a split for phase {n}, which the plan does not define",
                ("pattern", p),
                ("phase", n),
            )
        else:
            splits[n] = to_tenths(pattern.splits[key])
    missing: set[int] = set()
    for ring in plan.rings:
        for n in ring:
            if n in defined and n not in splits:
                missing.add(n)
                out.add(
                    "SPLIT_MISSING",
                    f"{base}.splits",
                    f"pattern {p} gives no split for phase {n}",
                    ("pattern", p),
                    ("phase", n),
                )
    for n, split in sorted(splits.items()):
        ph = defined[n]
        need = to_tenths(ph.min_green) + ph.clearance_ds
        if split < need:
            out.add(
                "SPLIT_MIN",
                f"{base}.splits.{n}",
                f"pattern {p}, phase {n}: split {_s(split)} cannot hold minimum green "
                f"{_s(to_tenths(ph.min_green))} + yellow {_s(to_tenths(ph.yellow))} + red "
                f"clearance {_s(to_tenths(ph.red_clear))} = {_s(need)}",
                ("pattern", p),
                ("phase", n),
            )
    for j, n in enumerate(pattern.ped_phases):
        if n not in defined:
            out.add(
                "PHASE_UNDEFINED",
                f"{base}.ped_phases[{j}]",
                f"pattern {p} serves pedestrians on phase {n}, which the plan does not define",
                ("pattern", p),
                ("phase", n),
            )
            continue
        ph = defined[n]
        if ph.walk is None or ph.ped_clear is None:
            out.add(
                "PED_PHASE_NO_PED",
                f"{base}.ped_phases[{j}]",
                f"pattern {p} serves pedestrians on phase {n}, which has no walk and "
                "pedestrian clearance times",
                ("pattern", p),
                ("phase", n),
            )
            continue
        ped_split = splits.get(n)
        need = to_tenths(ph.walk) + to_tenths(ph.ped_clear) + ph.clearance_ds
        if ped_split is not None and ped_split < need:
            out.add(
                "SPLIT_PED_MIN",
                f"{base}.splits.{n}",
                f"pattern {p}, phase {n}: split {_s(ped_split)} cannot serve pedestrians in "
                f"coordination: walk {_s(to_tenths(ph.walk))} + ped clearance "
                f"{_s(to_tenths(ph.ped_clear))} + yellow + red clearance = {_s(need)}",
                ("pattern", p),
                ("phase", n),
            )

    ring_totals: list[tuple[int, dict[int, int]]] = []
    for r, ring in enumerate(plan.rings):
        phases = [n for n in ring if n in defined]
        if not phases or any(n in missing for n in phases):
            continue
        total = sum(splits[n] for n in phases)
        if total != cycle:
            out.add(
                "RING_SUM",
                f"{base}.splits",
                f"pattern {p}: ring {r + 1} splits (phases {_names(phases)}) add up to "
                f"{_s(total)}, not the cycle {_s(cycle)}",
                ("pattern", p),
                ("ring", r + 1),
            )
        by_group: dict[int, int] = {}
        for n in phases:
            g = group_of.get(n)
            if g is not None:
                by_group[g] = by_group.get(g, 0) + splits[n]
        ring_totals.append((r, by_group))
    for g in sorted(set(group_of.values())):
        sums = {r: totals[g] for r, totals in ring_totals if g in totals}
        if len(set(sums.values())) > 1:
            detail = ", ".join(f"ring {r + 1}: {_s(t)}" for r, t in sums.items())
            out.add(
                "BARRIER_ALIGN",
                f"{base}.splits",
                f"pattern {p}: the rings do not meet at barrier {g + 1}: splits in barrier "
                f"group {g + 1} add up differently ({detail})",
                ("pattern", p),
                ("barrier_group", g + 1),
            )

    _check_coord_phases(plan, pattern, base, defined, ring_of, group_of, out)
    if pattern.sequence is not None:
        _check_sequence(plan, pattern, base, ring_of, group_of, out)


def _check_coord_phases(
    plan: Plan,
    pattern: Pattern,
    base: str,
    defined: dict[int, Phase],
    ring_of: dict[int, int],
    group_of: dict[int, int],
    out: _Collector,
) -> None:
    p = pattern.pattern
    per_ring: dict[int, list[int]] = {}
    for j, n in enumerate(pattern.coord_phases):
        if n not in defined:
            out.add(
                "PHASE_UNDEFINED",
                f"{base}.coord_phases[{j}]",
                f"pattern {p} coordinates phase {n}, which the plan does not define",
                ("pattern", p),
                ("phase", n),
            )
        elif n in ring_of:
            per_ring.setdefault(ring_of[n], []).append(n)
    for r in range(len(plan.rings)):
        found = per_ring.get(r, [])
        if len(found) != 1:
            what = "no coordinated phase" if not found else f"coordinated phases {_names(found)}"
            out.add(
                "COORD_PER_RING",
                f"{base}.coord_phases",
                f"pattern {p}: ring {r + 1} has {what}; each ring needs exactly one",
                ("pattern", p),
                ("ring", r + 1),
            )
    groups = {group_of[n] for n in pattern.coord_phases if n in group_of}
    if len(groups) > 1:
        out.add(
            "COORD_BARRIER",
            f"{base}.coord_phases",
            f"pattern {p}: coordinated phases {_names(pattern.coord_phases)} are on "
            "different sides of a barrier; they must time together",
            ("pattern", p),
        )


def _check_sequence(
    plan: Plan,
    pattern: Pattern,
    base: str,
    ring_of: dict[int, int],
    group_of: dict[int, int],
    out: _Collector,
) -> None:
    p = pattern.pattern
    assert pattern.sequence is not None
    if len(pattern.sequence) != len(plan.rings):
        out.add(
            "SEQUENCE_REORDER",
            f"{base}.sequence",
            f"pattern {p}: the sequence has {len(pattern.sequence)} rings, the plan "
            f"{len(plan.rings)}",
            ("pattern", p),
        )
        return
    for r, (order, ring) in enumerate(zip(pattern.sequence, plan.rings, strict=True)):
        if sorted(order) != sorted(ring):
            strays = sorted(set(order) ^ set(ring))
            out.add(
                "SEQUENCE_REORDER",
                f"{base}.sequence[{r}]",
                f"pattern {p}: the sequence of ring {r + 1} is not a reordering of ring "
                f"{r + 1} (phases {_names(strays)} moved into or out of the ring)",
                ("pattern", p),
                ("ring", r + 1),
            )
            continue
        for k, (n, m) in enumerate(zip(order, ring, strict=True)):
            if group_of.get(n) != group_of.get(m):
                out.add(
                    "SEQUENCE_REORDER",
                    f"{base}.sequence[{r}][{k}]",
                    f"pattern {p}: the sequence of ring {r + 1} moves phase {n} across a "
                    "barrier; lead/lag may only reorder phases inside a barrier group",
                    ("pattern", p),
                    ("ring", r + 1),
                    ("phase", n),
                )
                break


# -- day plans and schedule -------------------------------------------------------------


def _check_schedule(plan: Plan, out: _Collector) -> None:
    patterns = {pattern.pattern for pattern in plan.patterns}
    day_plans: set[int] = set()
    for i, day_plan in enumerate(plan.day_plans):
        d = day_plan.day_plan
        if d in day_plans:
            out.add(
                "DAY_PLAN_DUPLICATE",
                f"day_plans[{i}].day_plan",
                f"day plan {d} is defined more than once",
                ("day_plan", d),
            )
            continue
        day_plans.add(d)
        times: dict[int, str] = {}
        for j, event in enumerate(day_plan.events):
            path = f"day_plans[{i}].events[{j}]"
            minute = event.minute_of_day
            if minute is None:
                out.add(
                    "DAY_PLAN_TIME",
                    f"{path}.at",
                    f"day plan {d}: '{event.at}' is not a clock time (00:00-23:59)",
                    ("day_plan", d),
                    ("event", j + 1),
                )
            elif minute in times:
                out.add(
                    "DAY_PLAN_TIME",
                    f"{path}.at",
                    f"day plan {d}: two events at {event.at}; which one runs is ambiguous",
                    ("day_plan", d),
                    ("event", j + 1),
                )
            else:
                times[minute] = event.at
            if isinstance(event.pattern, int) and event.pattern not in patterns:
                out.add(
                    "DAY_PLAN_PATTERN",
                    f"{path}.pattern",
                    f"day plan {d} selects pattern {event.pattern} at {event.at}, "
                    "which the plan does not define",
                    ("day_plan", d),
                    ("event", j + 1),
                )
    covered: dict[str, int] = {}
    for i, entry in enumerate(plan.schedule):
        if entry.day_plan not in day_plans:
            out.add(
                "SCHEDULE_DAY_PLAN",
                f"schedule[{i}].day_plan",
                f"schedule entry {i + 1} names day plan {entry.day_plan}, "
                "which the plan does not define",
                ("schedule_entry", i + 1),
            )
        for day in entry.days:
            if day in covered:
                out.add(
                    "SCHEDULE_OVERLAP",
                    f"schedule[{i}].days",
                    f"{day} is given day plan {covered[day]} and day plan {entry.day_plan}; "
                    "each day needs exactly one",
                    ("schedule_entry", i + 1),
                    ("day", day),
                )
            else:
                covered[day] = entry.day_plan
    for weekday in WEEKDAYS:
        if weekday not in covered:
            out.add(
                "SCHEDULE_COVERAGE",
                "schedule",
                f"the schedule gives no day plan for {weekday}",
                ("day", weekday),
            )
