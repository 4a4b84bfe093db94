"""Hypothesis strategies: safe plan documents, built to satisfy every rule by construction.

A generated plan picks a layout (8 phases with protected lefts, or throughs
only), draws interval times above every floor, then builds each pattern from
the bottom up: each phase's need (min green + clearance, or the pedestrian
need when its pedestrians are served in coordination), each barrier group as
long as the slower ring's need plus slack, the slack shared out, the cycle the
sum of the groups. Everything is in integer tenths, as the validator counts.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from agent.plan.model import WEEKDAYS

LAYOUTS: dict[str, tuple[list[list[int]], list[list[int]]]] = {
    "eight": ([[1, 2, 3, 4], [5, 6, 7, 8]], [[1, 2, 5, 6], [3, 4, 7, 8]]),
    "throughs": ([[2, 4], [6, 8]], [[2, 6], [4, 8]]),
}
CYCLE_MIN_DS, CYCLE_MAX_DS = 400, 1800


def tenths(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integer tenths in [lo, hi]."""
    return st.integers(min_value=lo, max_value=hi)


def sec(ds: int) -> float:
    """Tenths as the float seconds a document holds."""
    return ds / 10


@st.composite
def phase_docs(draw: st.DrawFn, number: int) -> dict[str, Any]:
    """One phase, every interval above its floor; even phases may have a crossing."""
    min_green = draw(tenths(10, 120))
    doc: dict[str, Any] = {
        "phase": number,
        "min_green": sec(min_green),
        "yellow": sec(draw(tenths(30, 60))),
        "red_clear": sec(draw(tenths(0, 30))),
    }
    if draw(st.booleans()):
        doc["max_green"] = sec(min_green + draw(tenths(0, 400)))
    if number % 2 == 0 and draw(st.booleans()):
        doc["walk"] = sec(draw(tenths(70, 100)))
        doc["ped_clear"] = sec(draw(tenths(40, 200)))
    return doc


def _need(phase: dict[str, Any], ped_served: bool) -> int:
    clearance = round(phase["yellow"] * 10) + round(phase["red_clear"] * 10)
    need = round(phase["min_green"] * 10) + clearance
    if ped_served:
        need = max(need, round(phase["walk"] * 10) + round(phase["ped_clear"] * 10) + clearance)
    return int(need)


@st.composite
def pattern_docs(
    draw: st.DrawFn,
    number: int,
    phases: dict[int, dict[str, Any]],
    rings: list[list[int]],
    barriers: list[list[int]],
) -> dict[str, Any]:
    """One pattern whose splits meet every floor, sum to the cycle and meet at barriers."""
    with_ped = sorted(n for n, p in phases.items() if "walk" in p)
    ped_phases = draw(st.lists(st.sampled_from(with_ped), unique=True)) if with_ped else []
    splits: dict[int, int] = {}
    for group in barriers:
        per_ring = [[n for n in ring if n in group] for ring in rings]
        needs = [
            {n: _need(phases[n], n in ped_phases) for n in ring_phases} for ring_phases in per_ring
        ]
        length = max(sum(need.values()) for need in needs) + draw(tenths(0, 200))
        for need in needs:
            slack = length - sum(need.values())
            members = list(need)
            shares = draw(
                st.lists(
                    st.integers(0, slack), min_size=len(members) - 1, max_size=len(members) - 1
                )
            )
            cuts = [0, *sorted(shares), slack]
            for k, n in enumerate(members):
                splits[n] = need[n] + cuts[k + 1] - cuts[k]
    cycle = sum(splits[n] for n in rings[0])
    # Stretch short cycles up to the site minimum by lengthening the last group evenly.
    if cycle < CYCLE_MIN_DS:
        extra = CYCLE_MIN_DS - cycle + draw(tenths(0, 100))
        for ring in rings:
            splits[ring[-1]] += extra
        cycle += extra
    return {
        "pattern": number,
        "cycle": sec(cycle),
        "offset": sec(draw(tenths(0, cycle - 1))),
        "coord_phases": [ring[0] if ring[0] % 2 == 0 else ring[1] for ring in rings],
        "splits": {str(n): sec(ds) for n, ds in splits.items()},
        "ped_phases": ped_phases,
    }


@st.composite
def safe_plans(draw: st.DrawFn) -> dict[str, Any]:
    """A plan document that breaks no rule under the default site limits."""
    rings, barriers = LAYOUTS[draw(st.sampled_from(sorted(LAYOUTS)))]
    numbers = [n for ring in rings for n in ring]
    phases = {n: draw(phase_docs(n)) for n in numbers}
    pattern_count = draw(st.integers(1, 3))
    patterns = []
    for number in range(1, pattern_count + 1):
        pattern = draw(pattern_docs(number, phases, rings, barriers))
        if round(pattern["cycle"] * 10) <= CYCLE_MAX_DS:
            patterns.append(pattern)
    choices: list[int | str] = [p["pattern"] for p in patterns] + ["free", "flash"]
    day_plans = []
    for day_plan in (1, 2):
        minutes = draw(st.lists(st.integers(0, 1439), min_size=1, max_size=6, unique=True))
        day_plans.append(
            {
                "day_plan": day_plan,
                "events": [
                    {"at": f"{m // 60:02d}:{m % 60:02d}", "pattern": draw(st.sampled_from(choices))}
                    for m in minutes
                ],
            }
        )
    split_at = draw(st.integers(1, 7))
    schedule = [{"days": list(WEEKDAYS[:split_at]), "day_plan": 1}]
    if split_at < 7:
        schedule.append({"days": list(WEEKDAYS[split_at:]), "day_plan": 2})
    return {
        "version": draw(st.integers(1, 2**31 - 1)),
        "phases": list(phases.values()),
        "rings": rings,
        "barriers": barriers,
        "patterns": patterns,
        "day_plans": day_plans,
        "schedule": schedule,
    }
