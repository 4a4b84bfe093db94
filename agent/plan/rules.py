"""Every safety rule the validator enforces, with its stable id and its source.

The ids are a contract: they appear in ``greenwave plan validate`` output, in
``E_UNSAFE`` acknowledgements to central and in the audit log, and never
change meaning. ``docs/plan-format.md`` lists the same table; a test keeps the
two in step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """An error rejects the plan; a warning is reported and the plan still loads."""

    ERROR = "error"
    WARNING = "warning"


class Scope(enum.StrEnum):
    """What part of the plan a rule judges."""

    STRUCTURE = "structure"
    PHASE = "phase"
    PATTERN = "pattern"
    SCHEDULE = "schedule"
    SITE = "site"


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One rule: its id, what it demands, and where the demand comes from."""

    id: str
    scope: Scope
    summary: str
    source: str
    severity: Severity = Severity.ERROR


_RULES = (
    # -- ring and barrier structure ------------------------------------------------
    Rule(
        id="PHASE_DUPLICATE",
        scope=Scope.STRUCTURE,
        summary="Each phase is defined once.",
        source="plan document (SPEC §5)",
    ),
    Rule(
        id="PHASE_UNDEFINED",
        scope=Scope.STRUCTURE,
        summary="Every phase named in rings, barriers or a pattern has a definition in `phases`.",
        source="plan document (SPEC §5)",
    ),
    Rule(
        id="RING_MEMBERSHIP",
        scope=Scope.STRUCTURE,
        summary="Every defined phase is in exactly one ring, listed once.",
        source="NEMA TS2 dual ring; NTCIP 1202 phaseRing",
    ),
    Rule(
        id="RING_CONFLICT",
        scope=Scope.STRUCTURE,
        summary="A ring holds phases of one cabinet ring only, and no two rings share one: "
        "phases of one ring never run together.",
        source="NEMA TS2; NTCIP 1202 phaseRing/phaseConcurrency; SUMO NEMA",
    ),
    Rule(
        id="BARRIER_MEMBERSHIP",
        scope=Scope.STRUCTURE,
        summary="Every defined phase is in exactly one barrier group, listed once.",
        source="NEMA TS2 barriers; NTCIP 1202 phaseConcurrency",
    ),
    Rule(
        id="BARRIER_CONFLICT",
        scope=Scope.STRUCTURE,
        summary="A barrier group holds only phases that the cabinet lets run together: "
        "concurrency only within a barrier group.",
        source="NTCIP 1202 phaseConcurrency; MMU permissive programming",
    ),
    Rule(
        id="BARRIER_ORDER",
        scope=Scope.STRUCTURE,
        summary="Each ring serves every barrier group, each group's phases in one run, "
        "and all rings cross the barriers in the same order.",
        source="NEMA TS2; Naztec manual §124 (rings end together at a barrier)",
    ),
    Rule(
        id="SEQUENCE_REORDER",
        scope=Scope.STRUCTURE,
        summary="A pattern's sequence only reorders phases inside a ring and barrier group "
        "(lead/lag); it never moves a phase across a barrier or into another ring.",
        source="Naztec manual §124; NTCIP 1202 sequenceData",
    ),
    # -- per phase -----------------------------------------------------------------
    Rule(
        id="YELLOW_MIN",
        scope=Scope.PHASE,
        summary="Yellow change is at least 3.0 s, or the site's higher floor.",
        source="MUTCD 2009 §4D.26; NTCIP 1202 phaseYellowChange (3-25.5 s)",
    ),
    Rule(
        id="RED_CLEAR_RANGE",
        scope=Scope.PHASE,
        summary="Red clearance is within 0-25.5 s and not below the site's floor.",
        source="NTCIP 1202 phaseRedClear (0-25.5 s)",
    ),
    Rule(
        id="MIN_GREEN_MIN",
        scope=Scope.PHASE,
        summary="Minimum green is at least 1 s, or the site's higher floor.",
        source="NTCIP 1202 phaseMinimumGreen (1-255 s)",
    ),
    Rule(
        id="MAX_GREEN_BELOW_MIN",
        scope=Scope.PHASE,
        summary="Maximum green, when given, is not below minimum green.",
        source="NTCIP 1202 phaseMaximum1",
    ),
    Rule(
        id="PED_INCOMPLETE",
        scope=Scope.PHASE,
        summary="A phase with a crossing gives both walk and ped clearance.",
        source="MUTCD 2009 §4E.06 (walk and flashing don't walk intervals)",
    ),
    Rule(
        id="WALK_MIN",
        scope=Scope.PHASE,
        summary="Walk is at least 7 s (site policy may allow down to 4 s).",
        source="MUTCD 2009 §4E.06",
    ),
    Rule(
        id="PED_CLEAR_MIN",
        scope=Scope.PHASE,
        summary="Ped clearance covers the crossing at 3.5 ft/s (or the site's slower speed) "
        "when the site gives the distance, and the site's floor.",
        source="MUTCD 2009 §4E.06, Fig. 4E-2",
    ),
    # -- per pattern ---------------------------------------------------------------
    Rule(
        id="PATTERN_DUPLICATE",
        scope=Scope.PATTERN,
        summary="Each pattern number is defined once.",
        source="plan document (SPEC §5)",
    ),
    Rule(
        id="SPLIT_MISSING",
        scope=Scope.PATTERN,
        summary="A pattern gives a split for every phase in the rings.",
        source="NTCIP 1202 splitTable",
    ),
    Rule(
        id="SPLIT_MIN",
        scope=Scope.PATTERN,
        summary="Every split holds min green + yellow + red clearance.",
        source="Naztec manual §21R; NTCIP 1202 localFreeStatus splitOverrun",
    ),
    Rule(
        id="PED_PHASE_NO_PED",
        scope=Scope.PATTERN,
        summary="A pattern serves pedestrians only on phases that have a crossing "
        "(walk and ped clearance).",
        source="plan document (SPEC §5)",
    ),
    Rule(
        id="SPLIT_PED_MIN",
        scope=Scope.PATTERN,
        summary="A split whose pedestrians are served in coordination holds "
        "walk + ped clearance + yellow + red clearance.",
        source="Naztec manual §21R (pedestrian minimum times)",
    ),
    Rule(
        id="RING_SUM",
        scope=Scope.PATTERN,
        summary="Each ring's splits add up to the cycle.",
        source="SUMO NEMA ('Ring X does not add to cycle length'); NTCIP badCycleTime",
    ),
    Rule(
        id="BARRIER_ALIGN",
        scope=Scope.PATTERN,
        summary="The rings meet at every barrier: each ring's splits in a barrier group "
        "add up to the same time.",
        source="SUMO NEMA ('phases before barrier X ... do not add up')",
    ),
    Rule(
        id="CYCLE_RANGE",
        scope=Scope.PATTERN,
        summary="The cycle is within the site's bounds (default 40-180 s).",
        source="HCM practice; NTCIP patternCycleTime; site policy",
    ),
    Rule(
        id="OFFSET_RANGE",
        scope=Scope.PATTERN,
        summary="0 <= offset < cycle.",
        source="NTCIP 1202 patternOffsetTime",
    ),
    Rule(
        id="COORD_PER_RING",
        scope=Scope.PATTERN,
        summary="Exactly one coordinated phase in each ring.",
        source="NTCIP 1202 splitCoordPhase; SUMO NEMA",
    ),
    Rule(
        id="COORD_BARRIER",
        scope=Scope.PATTERN,
        summary="The coordinated phases are on the same side of the barrier.",
        source="NTCIP 1202 splitCoordPhase; SUMO NEMA",
    ),
    # -- day plans and schedule ----------------------------------------------------
    Rule(
        id="DAY_PLAN_DUPLICATE",
        scope=Scope.SCHEDULE,
        summary="Each day plan number is defined once.",
        source="NTCIP 1201 dayPlanTable",
    ),
    Rule(
        id="DAY_PLAN_TIME",
        scope=Scope.SCHEDULE,
        summary="Event times are valid clock times (00:00-23:59), one event per time.",
        source="NTCIP 1201 dayPlanHour/dayPlanMinute",
    ),
    Rule(
        id="DAY_PLAN_PATTERN",
        scope=Scope.SCHEDULE,
        summary="Every pattern a day plan selects exists (or is free / flash).",
        source="NTCIP 1202 timebaseAscPattern",
    ),
    Rule(
        id="SCHEDULE_DAY_PLAN",
        scope=Scope.SCHEDULE,
        summary="Every day plan the schedule names exists.",
        source="NTCIP 1201 timeBaseScheduleDayPlan",
    ),
    Rule(
        id="SCHEDULE_COVERAGE",
        scope=Scope.SCHEDULE,
        summary="The schedule gives a day plan for every day of the week.",
        source="SPEC §7 (schedule covers every day)",
    ),
    Rule(
        id="SCHEDULE_OVERLAP",
        scope=Scope.SCHEDULE,
        summary="No day of the week is given two day plans.",
        source="SPEC §7 (no ambiguity in what runs)",
    ),
    # -- site ----------------------------------------------------------------------
    Rule(
        id="PHASE_NOT_ALLOWED",
        scope=Scope.SITE,
        summary="The plan uses only phases the site's config allows.",
        source="device config [site].allowed_phases",
    ),
    # -- warnings: reported, do not reject -------------------------------------------
    Rule(
        id="YELLOW_LONG",
        scope=Scope.PHASE,
        summary="Yellow longer than 6 s is unusual; check it against the kinematic formula.",
        source="ITE/AASHTO guidance (3-6 s)",
        severity=Severity.WARNING,
    ),
    Rule(
        id="RED_CLEAR_LONG",
        scope=Scope.PHASE,
        summary="Red clearance longer than 6 s is unusual.",
        source="MUTCD 2009 §4D.26 guidance",
        severity=Severity.WARNING,
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
