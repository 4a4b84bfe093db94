"""The timing plan document (SPEC §5) as strict pydantic models.

The same JSON document arrives in a ``plan.load`` command, sits in a local
fallback plan file, and is checked by ``greenwave plan validate``. These models
only decide whether a document *is* a plan: every field known, of the right
type, within the range its controller encoding allows, and times on the 0.1 s
grid. Whether the plan is *safe* is the validator's job
(:mod:`agent.plan.validator`): the schema ranges here are deliberately the
encodable ranges, so that a value outside an engineering limit (yellow 2.5 s,
a 200 s cycle) is reported with the rule it breaks, not as a schema error.

Units: seconds, on a 0.1 s grid (NTCIP tenths). Inside the agent, times are
also available as integer tenths (``*_ds`` properties) so that sums and
comparisons are exact.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

#: Largest plan document the agent reads, in bytes (a full plan is ~10 KiB).
MAX_PLAN_BYTES = 1024 * 1024

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SpecialPattern = Literal["free", "flash"]


def to_tenths(seconds: float) -> int:
    """Seconds on the 0.1 s grid as an exact integer number of tenths."""
    return round(seconds * 10)


def _on_tenth_grid(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of seconds")
    tenths = value * 10
    if abs(tenths - round(tenths)) > 1e-6:
        raise ValueError(f"{value} s is not on the 0.1 s grid (the controller counts tenths)")
    return round(tenths) / 10


#: Interval times NTCIP encodes in tenths of a second in one octet (0-25.5 s).
Tenths255 = Annotated[
    float, Field(ge=0, le=25.5, allow_inf_nan=False), AfterValidator(_on_tenth_grid)
]
#: Whole-second-range times (0-255 s) kept on the 0.1 s grid.
Seconds255 = Annotated[
    float, Field(ge=0, le=255, allow_inf_nan=False), AfterValidator(_on_tenth_grid)
]
PhaseNumber = Annotated[int, Field(ge=1, le=16)]
PatternNumber = Annotated[int, Field(ge=1, le=253)]
DayPlanNumber = Annotated[int, Field(ge=1, le=255)]
PhaseKey = Annotated[str, StringConstraints(pattern=r"^(?:[1-9]|1[0-6])$")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}:[0-9]{2}$")]


class _Strict(BaseModel):
    """Base for every plan model: strict types, no unknown fields, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Phase(_Strict):
    """One vehicle phase with its intervals; ``walk``/``ped_clear`` when it has a crossing."""

    phase: PhaseNumber
    min_green: Seconds255
    max_green: Seconds255 | None = None
    yellow: Tenths255
    red_clear: Seconds255
    walk: Seconds255 | None = None
    ped_clear: Seconds255 | None = None

    @property
    def has_ped(self) -> bool:
        """True when the phase serves a pedestrian movement."""
        return self.walk is not None or self.ped_clear is not None

    @property
    def clearance_ds(self) -> int:
        """Yellow plus red clearance in tenths."""
        return to_tenths(self.yellow) + to_tenths(self.red_clear)


class Pattern(_Strict):
    """A coordination pattern: cycle, offset, coordinated phases and one split per phase."""

    pattern: PatternNumber
    cycle: Seconds255
    offset: Seconds255 = 0.0
    coord_phases: list[PhaseNumber] = Field(min_length=1, max_length=4)
    splits: dict[PhaseKey, Seconds255] = Field(min_length=1, max_length=16)
    ped_phases: list[PhaseNumber] = Field(default_factory=list, max_length=16)
    #: Optional lead/lag order for this pattern: the plan's rings reordered
    #: inside each ring and barrier group (NTCIP sequence).
    sequence: list[list[PhaseNumber]] | None = Field(default=None, min_length=1, max_length=4)

    def split_ds(self, phase: int) -> int | None:
        """The split of ``phase`` in tenths, or None when the pattern gives none."""
        value = self.splits.get(str(phase))
        return None if value is None else to_tenths(value)


def _pattern_choice(value: object) -> object:
    ok_number = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 253
    if ok_number or value in ("free", "flash"):
        return value
    raise ValueError(f"{value!r} is not a pattern: give a number 1-253, 'free' or 'flash'")


#: What a day plan event runs: a pattern number, ``free`` or ``flash``.
PatternChoice = Annotated[PatternNumber | SpecialPattern, BeforeValidator(_pattern_choice)]


class DayPlanEvent(_Strict):
    """From ``at`` (local time, HH:MM) run ``pattern`` (a number, ``free`` or ``flash``)."""

    at: ClockTime
    pattern: PatternChoice

    @property
    def minute_of_day(self) -> int | None:
        """Minutes since local midnight, or None when ``at`` is not a valid time."""
        hours, minutes = int(self.at[:2]), int(self.at[3:])
        if hours > 23 or minutes > 59:
            return None
        return hours * 60 + minutes


class DayPlan(_Strict):
    """A day's time-of-day program: the events, in any order, at distinct times."""

    day_plan: DayPlanNumber
    events: list[DayPlanEvent] = Field(min_length=1, max_length=48)


class ScheduleEntry(_Strict):
    """Which day plan runs on which days of the week."""

    days: list[Weekday] = Field(min_length=1, max_length=7)
    day_plan: DayPlanNumber


class Plan(_Strict):
    """The timing plan document (SPEC §5)."""

    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    name: Annotated[str, StringConstraints(max_length=120)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    phases: list[Phase] = Field(min_length=1, max_length=16)
    rings: list[list[PhaseNumber]] = Field(min_length=1, max_length=4)
    barriers: list[list[PhaseNumber]] = Field(min_length=1, max_length=8)
    patterns: list[Pattern] = Field(default_factory=list, max_length=253)
    day_plans: list[DayPlan] = Field(min_length=1, max_length=255)
    schedule: list[ScheduleEntry] = Field(min_length=1, max_length=64)

    def phase(self, number: int) -> Phase | None:
        """The phase definition with this number, if any."""
        return next((p for p in self.phases if p.phase == number), None)

    def pattern(self, number: int) -> Pattern | None:
        """The pattern with this number, if any."""
        return next((p for p in self.patterns if p.pattern == number), None)
