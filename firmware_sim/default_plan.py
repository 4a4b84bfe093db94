"""The plan the simulator runs when ``--plan`` is not given.

It is the content of ``examples/plans/intersection-8phase.json`` (a test
checks that they agree), held as a constant so that an installed
``greenwave-sim`` works without the repository.
"""

from __future__ import annotations

from typing import Final

#: Name shown in logs for the built-in plan.
DEFAULT_PLAN_NAME: Final = "built-in intersection-8phase"

#: The plan document (SPEC §5), JSON.
DEFAULT_PLAN_JSON: Final = """\
{
  "version": 1,
  "name": "Main St & 5th Ave (8-phase, protected lefts)",
  "description": "Weekday AM peak / off-peak / PM peak and weekend patterns; free operation at night. Offsets referenced to the start of green of phase 2 (TS2). Crossings: 60 ft on phases 2/6, 48 ft on 4/8.",
  "phases": [
              {"phase": 1, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
              {
                "phase": 2,
                "min_green": 12,
                "max_green": 50,
                "yellow": 4.5,
                "red_clear": 1.5,
                "walk": 7,
                "ped_clear": 18
              },
              {"phase": 3, "min_green": 5, "max_green": 18, "yellow": 3.0, "red_clear": 1.5},
              {
                "phase": 4,
                "min_green": 8,
                "max_green": 35,
                "yellow": 3.5,
                "red_clear": 2.0,
                "walk": 7,
                "ped_clear": 14
              },
              {"phase": 5, "min_green": 5, "max_green": 20, "yellow": 3.5, "red_clear": 1.5},
              {
                "phase": 6,
                "min_green": 12,
                "max_green": 50,
                "yellow": 4.5,
                "red_clear": 1.5,
                "walk": 7,
                "ped_clear": 18
              },
              {"phase": 7, "min_green": 5, "max_green": 18, "yellow": 3.0, "red_clear": 1.5},
              {
                "phase": 8,
                "min_green": 8,
                "max_green": 35,
                "yellow": 3.5,
                "red_clear": 2.0,
                "walk": 7,
                "ped_clear": 14
              }
            ],
  "rings": [[1, 2, 3, 4], [5, 6, 7, 8]],
  "barriers": [[1, 2, 5, 6], [3, 4, 7, 8]],
  "patterns": [
                {
                  "pattern": 1,
                  "cycle": 120,
                  "offset": 30,
                  "coord_phases": [2, 6],
                  "splits": {
                              "1": 18,
                              "2": 52,
                              "3": 15,
                              "4": 35,
                              "5": 16,
                              "6": 54,
                              "7": 14,
                              "8": 36
                            },
                  "ped_phases": [2, 4, 6, 8]
                },
                {
                  "pattern": 2,
                  "cycle": 90,
                  "offset": 12,
                  "coord_phases": [2, 6],
                  "splits": {
                              "1": 13,
                              "2": 38,
                              "3": 12,
                              "4": 27,
                              "5": 13,
                              "6": 38,
                              "7": 12,
                              "8": 27
                            },
                  "ped_phases": [2, 4, 6, 8]
                },
                {
                  "pattern": 3,
                  "cycle": 130,
                  "offset": 45,
                  "coord_phases": [2, 6],
                  "splits": {
                              "1": 20,
                              "2": 58,
                              "3": 16,
                              "4": 36,
                              "5": 18,
                              "6": 60,
                              "7": 15,
                              "8": 37
                            },
                  "ped_phases": [2, 4, 6, 8],
                  "sequence": [[2, 1, 3, 4], [5, 6, 7, 8]]
                },
                {
                  "pattern": 4,
                  "cycle": 100,
                  "offset": 20,
                  "coord_phases": [2, 6],
                  "splits": {
                              "1": 15,
                              "2": 45,
                              "3": 12,
                              "4": 28,
                              "5": 15,
                              "6": 45,
                              "7": 12,
                              "8": 28
                            },
                  "ped_phases": [2, 4, 6, 8]
                }
              ],
  "day_plans": [
                 {
                   "day_plan": 1,
                   "events": [
                               {"at": "00:00", "pattern": "free"},
                               {"at": "06:00", "pattern": 2},
                               {"at": "06:30", "pattern": 1},
                               {"at": "09:00", "pattern": 2},
                               {"at": "15:30", "pattern": 3},
                               {"at": "19:00", "pattern": 2},
                               {"at": "22:00", "pattern": "free"}
                             ]
                 },
                 {
                   "day_plan": 2,
                   "events": [
                               {"at": "00:00", "pattern": "free"},
                               {"at": "08:00", "pattern": 4},
                               {"at": "20:00", "pattern": 2},
                               {"at": "22:30", "pattern": "free"}
                             ]
                 }
               ],
  "schedule": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "day_plan": 1},
                {"days": ["sat", "sun"], "day_plan": 2}
              ]
}
"""  # noqa: E501 - the description is one JSON string
