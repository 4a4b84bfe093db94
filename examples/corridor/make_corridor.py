"""Generate the five plans of the Main St green-wave corridor example.

Run ``python examples/corridor/make_corridor.py`` to rewrite
``examples/plans/corridor-*.json``; a test checks the committed files match.

How the offsets are derived (one-way progression, eastbound):

* every intersection runs the same cycle in a given pattern (a green wave
  needs a common cycle);
* intersection 1 is the reference (offset 0);
* the offset of intersection *i* is the travel time from intersection 1 at
  the progression speed, modulo the cycle::

      offset_i = round(D_i / v) mod C

  where D_i is the distance along the arterial from intersection 1 (the sum
  of the link lengths) and v the progression speed (50 km/h here). Rounding
  the cumulative time, not each link, keeps rounding error from adding up.
* offsets are referenced to the start of green of the first coordinated
  phase (phase 2, eastbound through; the TS2 convention), so a platoon that
  leaves intersection 1 at the start of its green arrives at each downstream
  intersection as its phase 2 turns green.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROGRESSION_KMH = 50.0
OUT_DIR = Path(__file__).resolve().parent.parent / "plans"


@dataclass(frozen=True)
class Intersection:
    """One signal on the corridor."""

    slug: str
    name: str
    link_m: float  # distance from the previous intersection (0 for the first)
    eight_phase: bool  # protected lefts (8 phases) or throughs only (2, 4, 6, 8)


CORRIDOR = (
    Intersection("main-1st", "Main St & 1st Ave", 0, True),
    Intersection("main-2nd", "Main St & 2nd Ave", 420, False),
    Intersection("main-3rd", "Main St & 3rd Ave", 380, True),
    Intersection("main-4th", "Main St & 4th Ave", 510, False),
    Intersection("main-5th", "Main St & 5th Ave", 300, True),
)

#: pattern -> cycle (s) and splits for 8-phase (1..8) and 4-phase (2, 4) layouts.
PATTERNS: dict[int, tuple[int, list[int], list[int]]] = {
    1: (100, [14, 46, 12, 28, 14, 46, 12, 28], [62, 38]),  # AM peak
    2: (90, [13, 38, 12, 27, 13, 38, 12, 27], [58, 32]),  # off-peak
    3: (110, [15, 53, 13, 29, 15, 53, 13, 29], [68, 42]),  # PM peak
}

PHASES_8: list[dict[str, Any]] = [
    {"phase": 1, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
    {"phase": 2, "min_green": 12, "max_green": 50, "yellow": 4.5, "red_clear": 1.5, "walk": 7,
     "ped_clear": 18},
    {"phase": 3, "min_green": 5, "max_green": 18, "yellow": 3.0, "red_clear": 1.5},
    {"phase": 4, "min_green": 8, "max_green": 35, "yellow": 3.5, "red_clear": 2.0, "walk": 7,
     "ped_clear": 14},
    {"phase": 5, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
    {"phase": 6, "min_green": 12, "max_green": 50, "yellow": 4.5, "red_clear": 1.5, "walk": 7,
     "ped_clear": 18},
    {"phase": 7, "min_green": 5, "max_green": 18, "yellow": 3.0, "red_clear": 1.5},
    {"phase": 8, "min_green": 8, "max_green": 35, "yellow": 3.5, "red_clear": 2.0, "walk": 7,
     "ped_clear": 14},
]  # fmt: skip

DAY_PLANS: list[dict[str, Any]] = [
    {"day_plan": 1, "events": [
        {"at": "00:00", "pattern": "free"}, {"at": "05:30", "pattern": 2},
        {"at": "06:30", "pattern": 1}, {"at": "09:30", "pattern": 2},
        {"at": "15:30", "pattern": 3}, {"at": "19:30", "pattern": 2},
        {"at": "23:00", "pattern": "free"},
    ]},
    {"day_plan": 2, "events": [
        {"at": "00:00", "pattern": "free"}, {"at": "08:00", "pattern": 2},
        {"at": "23:00", "pattern": "free"},
    ]},
]  # fmt: skip

SCHEDULE = [
    {"days": ["mon", "tue", "wed", "thu", "fri"], "day_plan": 1},
    {"days": ["sat", "sun"], "day_plan": 2},
]


def offsets(cycle: int) -> list[int]:
    """Offset of each intersection (s) for a cycle, from the progression speed."""
    speed = PROGRESSION_KMH / 3.6
    distance = 0.0
    result = []
    for stop in CORRIDOR:
        distance += stop.link_m
        result.append(round(distance / speed) % cycle)
    return result


def plan_for(index: int, version: int = 1) -> dict[str, Any]:
    """The plan document of intersection ``index`` (0-based)."""
    stop = CORRIDOR[index]
    patterns = []
    for number, (cycle, splits8, splits4) in PATTERNS.items():
        if stop.eight_phase:
            splits = {str(p): s for p, s in zip(range(1, 9), splits8, strict=True)}
        else:
            splits = {"2": splits4[0], "4": splits4[1], "6": splits4[0], "8": splits4[1]}
        patterns.append(
            {
                "pattern": number,
                "cycle": cycle,
                "offset": offsets(cycle)[index],
                "coord_phases": [2, 6],
                "splits": splits,
                "ped_phases": [2, 4, 6, 8],
            }
        )
    if stop.eight_phase:
        phases = PHASES_8
        rings = [[1, 2, 3, 4], [5, 6, 7, 8]]
        barriers = [[1, 2, 5, 6], [3, 4, 7, 8]]
    else:
        phases = [p for p in PHASES_8 if p["phase"] % 2 == 0]
        rings = [[2, 4], [6, 8]]
        barriers = [[2, 6], [4, 8]]
    travel = sum(s.link_m for s in CORRIDOR[: index + 1])
    return {
        "version": version,
        "name": f"{stop.name} (Main St green wave, stop {index + 1} of {len(CORRIDOR)})",
        "description": (
            f"{travel:g} m from Main St & 1st Ave; one-way eastbound progression at "
            f"{PROGRESSION_KMH:g} km/h; offset = round(distance / speed) mod cycle, "
            "referenced to the start of phase 2 green."
        ),
        "phases": phases,
        "rings": rings,
        "barriers": barriers,
        "patterns": patterns,
        "day_plans": DAY_PLANS,
        "schedule": SCHEDULE,
    }


def render(index: int) -> str:
    """The JSON text of intersection ``index``, as committed."""
    return json.dumps(plan_for(index), indent=2) + "\n"


def file_name(index: int) -> str:
    """File name of intersection ``index``: ``corridor-1-main-1st.json``."""
    return f"corridor-{index + 1}-{CORRIDOR[index].slug}.json"


def main() -> None:
    """Rewrite the corridor plan files."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for index in range(len(CORRIDOR)):
        (OUT_DIR / file_name(index)).write_text(render(index), encoding="utf-8")


if __name__ == "__main__":
    main()
