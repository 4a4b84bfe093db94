"""Fixture timing plans for the simulator tests.

``arterial_plan()`` is a realistic 8-phase arterial intersection: protected
leading lefts (1, 5 on the main street; 3, 7 on the side street), main-street
throughs 2 and 6 coordinated, pedestrian crossings on 2, 4, 6 and 8, three
coordinated patterns and a weekly time-of-day schedule with free operation at
night and a late-night flash on weekends.
"""

from __future__ import annotations

from typing import Any

from agent.plan.model import Plan

PHASES: list[dict[str, Any]] = [
    {"phase": 1, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
    {
        "phase": 2,
        "min_green": 10,
        "max_green": 50,
        "yellow": 4.0,
        "red_clear": 1.5,
        "walk": 7,
        "ped_clear": 14,
    },
    {"phase": 3, "min_green": 5, "max_green": 15, "yellow": 3.5, "red_clear": 2.0},
    {
        "phase": 4,
        "min_green": 8,
        "max_green": 35,
        "yellow": 4.0,
        "red_clear": 2.0,
        "walk": 7,
        "ped_clear": 12,
    },
    {"phase": 5, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
    {
        "phase": 6,
        "min_green": 10,
        "max_green": 50,
        "yellow": 4.0,
        "red_clear": 1.5,
        "walk": 7,
        "ped_clear": 14,
    },
    {"phase": 7, "min_green": 5, "max_green": 15, "yellow": 3.5, "red_clear": 2.0},
    {
        "phase": 8,
        "min_green": 8,
        "max_green": 35,
        "yellow": 4.0,
        "red_clear": 2.0,
        "walk": 7,
        "ped_clear": 12,
    },
]

#: Pattern 1 AM peak (120 s), 2 off-peak (90 s), 3 PM peak (110 s).
PATTERNS: list[dict[str, Any]] = [
    {
        "pattern": 1,
        "cycle": 120,
        "offset": 30,
        "coord_phases": [2, 6],
        "splits": {"1": 15, "2": 50, "3": 15, "4": 40, "5": 20, "6": 45, "7": 12, "8": 43},
        "ped_phases": [2, 4, 6, 8],
    },
    {
        "pattern": 2,
        "cycle": 90,
        "offset": 10,
        "coord_phases": [2, 6],
        "splits": {"1": 12, "2": 38, "3": 12, "4": 28, "5": 12, "6": 38, "7": 12, "8": 28},
        "ped_phases": [2, 4, 6, 8],
    },
    {
        "pattern": 3,
        "cycle": 110,
        "offset": 55,
        "coord_phases": [2, 6],
        "splits": {"1": 18, "2": 42, "3": 14, "4": 36, "5": 15, "6": 45, "7": 14, "8": 36},
        "ped_phases": [2, 4, 6, 8],
    },
]

DAY_PLANS: list[dict[str, Any]] = [
    {
        "day_plan": 1,  # weekdays
        "events": [
            {"at": "05:30", "pattern": 2},
            {"at": "06:30", "pattern": 1},
            {"at": "09:00", "pattern": 2},
            {"at": "15:30", "pattern": 3},
            {"at": "18:30", "pattern": 2},
            {"at": "22:00", "pattern": "free"},
        ],
    },
    {
        "day_plan": 2,  # weekends
        "events": [
            {"at": "02:00", "pattern": "flash"},
            {"at": "05:00", "pattern": "free"},
            {"at": "08:00", "pattern": 2},
            {"at": "21:00", "pattern": "free"},
        ],
    },
]

SCHEDULE: list[dict[str, Any]] = [
    {"days": ["mon", "tue", "wed", "thu", "fri"], "day_plan": 1},
    {"days": ["sat", "sun"], "day_plan": 2},
]


def arterial_document() -> dict[str, Any]:
    """The arterial plan as a JSON-shaped document."""
    return {
        "version": 1,
        "name": "Main St & 5th Ave",
        "phases": PHASES,
        "rings": [[1, 2, 3, 4], [5, 6, 7, 8]],
        "barriers": [[1, 2, 5, 6], [3, 4, 7, 8]],
        "patterns": PATTERNS,
        "day_plans": DAY_PLANS,
        "schedule": SCHEDULE,
    }


def arterial_plan(**changes: Any) -> Plan:
    """The arterial plan, with top-level fields replaced by ``changes``."""
    document = arterial_document()
    document.update(changes)
    return Plan.model_validate(document)
