"""A known-good 8-phase plan as a dict, for tests to mutate one thing at a time."""

from __future__ import annotations

import copy
from typing import Any

from agent.plan.model import Plan

_BASE: dict[str, Any] = {
    "version": 3,
    "phases": [
        {"phase": 1, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
        {"phase": 2, "min_green": 12, "max_green": 50, "yellow": 4.5, "red_clear": 1.5,
         "walk": 7, "ped_clear": 18},
        {"phase": 3, "min_green": 5, "max_green": 18, "yellow": 3.0, "red_clear": 1.5},
        {"phase": 4, "min_green": 8, "max_green": 35, "yellow": 3.5, "red_clear": 2.0,
         "walk": 7, "ped_clear": 14},
        {"phase": 5, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
        {"phase": 6, "min_green": 12, "max_green": 50, "yellow": 4.5, "red_clear": 1.5,
         "walk": 7, "ped_clear": 18},
        {"phase": 7, "min_green": 5, "max_green": 18, "yellow": 3.0, "red_clear": 1.5},
        {"phase": 8, "min_green": 8, "max_green": 35, "yellow": 3.5, "red_clear": 2.0,
         "walk": 7, "ped_clear": 14},
    ],
    "rings": [[1, 2, 3, 4], [5, 6, 7, 8]],
    "barriers": [[1, 2, 5, 6], [3, 4, 7, 8]],
    "patterns": [
        {"pattern": 1, "cycle": 100, "offset": 20, "coord_phases": [2, 6],
         "splits": {"1": 15, "2": 35, "3": 15, "4": 35, "5": 15, "6": 35, "7": 15, "8": 35},
         "ped_phases": [2, 4, 6, 8]},
        {"pattern": 2, "cycle": 80, "offset": 0, "coord_phases": [2, 6],
         "splits": {"1": 12, "2": 34, "3": 10, "4": 24, "5": 12, "6": 34, "7": 10, "8": 24},
         "ped_phases": [2, 6]},
    ],
    "day_plans": [
        {"day_plan": 1, "events": [{"at": "00:00", "pattern": "free"},
                                   {"at": "06:30", "pattern": 1},
                                   {"at": "19:00", "pattern": 2},
                                   {"at": "22:00", "pattern": "free"}]},
        {"day_plan": 2, "events": [{"at": "00:00", "pattern": 2}]},
    ],
    "schedule": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "day_plan": 1},
        {"days": ["sat", "sun"], "day_plan": 2},
    ],
}  # fmt: skip


def base_plan() -> dict[str, Any]:
    """A fresh deep copy of the known-good plan document."""
    return copy.deepcopy(_BASE)


def phase(doc: dict[str, Any], number: int) -> dict[str, Any]:
    """The phase entry with this number (to mutate in place)."""
    found: dict[str, Any] = next(p for p in doc["phases"] if p["phase"] == number)
    return found


def pattern(doc: dict[str, Any], number: int) -> dict[str, Any]:
    """The pattern entry with this number (to mutate in place)."""
    found: dict[str, Any] = next(p for p in doc["patterns"] if p["pattern"] == number)
    return found


def build(doc: dict[str, Any]) -> Plan:
    """Validate the document against the schema (it must be schema-valid)."""
    return Plan.model_validate(doc)
