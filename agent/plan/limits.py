"""Site limits: the floors and bounds of one intersection, from the device config.

A plan from central can never lower these. They describe the physical site
(which phases exist, how the cabinet's conflict monitor is programmed, how wide
the crossings are) and the agency's policy (yellow, walk, cycle bounds). The
absolute floors below are the standards' limits; a site may be stricter, never
laxer, and a config that tries is refused at start-up.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.plan.model import PhaseKey

#: MUTCD 2009 §4D.26 / NTCIP phaseYellowChange: yellow never below 3.0 s.
ABS_MIN_YELLOW = 3.0
#: MUTCD 2009 §4E.06: walk 7 s, 4 s only where agency policy allows.
ABS_MIN_WALK = 4.0
DEFAULT_MIN_WALK = 7.0
#: MUTCD 2009 §4E.06: ped clearance from a walking speed of 3.5 ft/s at most.
ABS_MAX_WALK_SPEED_FPS = 3.5
#: NTCIP phaseMinimumGreen range starts at 1 s.
ABS_MIN_GREEN = 1.0
#: NTCIP phaseRedClear range: 0-25.5 s.
ABS_MAX_RED_CLEAR = 25.5

NEMA_RINGS: tuple[tuple[int, ...], ...] = ((1, 2, 3, 4), (5, 6, 7, 8))
NEMA_BARRIERS: tuple[tuple[int, ...], ...] = ((1, 2, 5, 6), (3, 4, 7, 8))


class SiteLimits(BaseModel):
    """Floors, bounds and the phase structure of one site (config section ``[site]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_yellow: float = Field(default=ABS_MIN_YELLOW, ge=ABS_MIN_YELLOW, le=25.5)
    min_red_clear: float = Field(default=0.0, ge=0.0, le=ABS_MAX_RED_CLEAR)
    min_green: float = Field(default=ABS_MIN_GREEN, ge=ABS_MIN_GREEN, le=255)
    min_walk: float = Field(default=DEFAULT_MIN_WALK, ge=ABS_MIN_WALK, le=255)
    min_ped_clear: float = Field(default=0.0, ge=0.0, le=255)
    walk_speed_fps: float = Field(default=ABS_MAX_WALK_SPEED_FPS, gt=0.0, le=ABS_MAX_WALK_SPEED_FPS)
    #: Crossing distance in feet per pedestrian phase (curb to far curb).
    crossing_ft: dict[PhaseKey, Annotated[float, Field(gt=0, le=500)]] = Field(default_factory=dict)
    cycle_min: float = Field(default=40.0, ge=1, le=255)
    cycle_max: float = Field(default=180.0, ge=1, le=255)
    allowed_phases: tuple[Annotated[int, Field(ge=1, le=16)], ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    #: The cabinet's ring structure (which phases time in which ring).
    rings: tuple[tuple[Annotated[int, Field(ge=1, le=16)], ...], ...] = NEMA_RINGS
    #: The cabinet's concurrency groups, as its conflict monitor is programmed.
    barriers: tuple[tuple[Annotated[int, Field(ge=1, le=16)], ...], ...] = NEMA_BARRIERS

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.cycle_min > self.cycle_max:
            raise ValueError(
                f"cycle_min {self.cycle_min} s is greater than cycle_max {self.cycle_max} s"
            )
        ring_members = [p for ring in self.rings for p in ring]
        if len(ring_members) != len(set(ring_members)):
            raise ValueError("rings: a phase is listed in more than one ring, or twice")
        barrier_members = [p for group in self.barriers for p in group]
        if len(barrier_members) != len(set(barrier_members)):
            raise ValueError("barriers: a phase is listed in more than one group, or twice")
        for phase in self.allowed_phases:
            if phase not in ring_members:
                raise ValueError(f"allowed phase {phase} is in no ring")
            if phase not in barrier_members:
                raise ValueError(f"allowed phase {phase} is in no barrier group")
        for key in self.crossing_ft:
            if int(key) not in self.allowed_phases:
                raise ValueError(f"crossing_ft names phase {key}, which is not an allowed phase")
        return self

    def ring_of(self, phase: int) -> int | None:
        """Index of the site ring holding ``phase``."""
        return next((i for i, ring in enumerate(self.rings) if phase in ring), None)

    def barrier_of(self, phase: int) -> int | None:
        """Index of the site barrier group holding ``phase``."""
        return next((i for i, group in enumerate(self.barriers) if phase in group), None)

    def concurrent(self, a: int, b: int) -> bool:
        """True when the site permits phases ``a`` and ``b`` to time together."""
        ring_a, ring_b = self.ring_of(a), self.ring_of(b)
        group_a, group_b = self.barrier_of(a), self.barrier_of(b)
        return (
            a != b
            and ring_a is not None
            and ring_b is not None
            and ring_a != ring_b
            and group_a is not None
            and group_a == group_b
        )


DEFAULT_SITE_LIMITS = SiteLimits()
