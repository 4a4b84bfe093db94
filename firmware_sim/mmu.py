"""The malfunction management unit (MMU): an independent conflict monitor.

The MMU sees only two things: the cabinet's channel outputs
(:class:`~firmware_sim.status.ChannelFrame`, 16 channels x G/Y/R) and its own
programming (:class:`MmuProgram`, the "program card": which channels are in
use, which pairs may show green/yellow/walk together, each vehicle channel's
minimum green). It never looks at the timing engine's state, so it catches
what the engine (or a plan validator) gets wrong. On a fault it latches the
cabinet into all-red flash and records the fault; only :meth:`Mmu.reset`
clears it (``reference/traffic-rules.md`` §2.1).

**Channel map** (the common TS2 map, ``reference/traffic-rules.md`` §2.2):
channels 1-8 are vehicle phases 1-8, 9-12 are left for overlaps (unused),
13-16 are the pedestrian signals of phases 2, 4, 6, 8. A ped channel shows
WALK on its green output, flashing DON'T WALK on yellow, DON'T WALK on red.

**Permissive matrix.** Two channels may be active (G, Y or WALK) together
only if they are driven by the same phase, or by two phases that the
concurrency table lets time together (different rings, same barrier group).
Everything else is a conflict.

**Checks and windows** (sampled every 50 ms by default; 100 ms allowed):

=====================  ===============================================  ===================
fault                  condition                                        latches
=====================  ===============================================  ===================
CONFLICT               G/Y/WALK on a non-permissive pair, cumulative    after 300 ms of
                       (the sum resets after 666 ms without conflict)   conflict (spec: not
                                                                        < 200, by 450 ms)
DARK (red fail)        an enabled channel shows no G, Y or R            after 800 ms dark
                       (suspended while the cabinet flashes)            (not < 700, by 1000)
SHORT_YELLOW           a vehicle yellow shorter than 2.7 s              when the yellow ends
SKIPPED_YELLOW         a vehicle red right after green (no yellow)      when the red appears
MIN_GREEN              a vehicle green shorter than the programmed      when the green ends
                       minimum green of that channel
=====================  ===============================================  ===================

Durations are measured between samples: an output change is seen at the
first sample at or after it, so with outputs changing on the engine's
0.1 s ticks and samples on a 50 ms grid every measurement is exact. The
clearance checks (yellow, skipped yellow, min green) watch vehicle channels
only; ped channels are watched for conflicts and dark.

*Sampling cost.* A sample of an unchanged frame with no timer running cannot
change anything, so :attr:`Mmu.busy` tells the caller when it may skip one;
the result is identical to sampling every 50 ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from firmware_sim.database import ChannelType, TimingDatabase
from firmware_sim.status import ChannelFrame

N_CHANNELS = 16


class FaultKind(Enum):
    """The faults the MMU latches on (SPEC §7)."""

    CONFLICT = "conflict"
    SHORT_YELLOW = "short-yellow"
    SKIPPED_YELLOW = "skipped-yellow"
    DARK = "dark"
    MIN_GREEN = "min-green"


@dataclass(frozen=True, kw_only=True, slots=True)
class MmuTimings:
    """Detection thresholds in milliseconds (see the module table for the sources)."""

    conflict_latch_ms: int = 300
    conflict_clear_ms: int = 666
    dark_latch_ms: int = 800
    min_yellow_ms: int = 2700


@dataclass(frozen=True, kw_only=True, slots=True)
class MmuProgram:
    """The MMU's own programming (its "program card"); bit ``n-1`` = channel ``n``."""

    #: Channels in use (monitored).
    enabled: int
    #: Vehicle channels: also monitored for yellow, skipped yellow and min green.
    vehicle: int
    #: For each channel (index n-1), the channels it may be active together with.
    permissive: tuple[int, ...]
    #: For each channel, its minimum green in ms (0 = not checked).
    min_green_ms: tuple[int, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class MmuFault:
    """A latched fault: what, which channels, when (simulated ms) and the outputs then."""

    kind: FaultKind
    channels: tuple[int, ...]
    at_ms: int
    frame: ChannelFrame
    detail: str


def _bits(mask: int) -> Iterator[int]:
    """Channel indexes (0-based) of the set bits of ``mask``."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _channels(mask: int) -> tuple[int, ...]:
    return tuple(i + 1 for i in _bits(mask))


def min_greens_from_database(db: TimingDatabase) -> tuple[int, ...]:
    """Per-channel minimum green (ms) of the vehicle channels, from the phase table."""
    values = [0] * N_CHANNELS
    for channel, row in db.channels.items():
        phase = db.phases.get(row.source)
        if row.kind is ChannelType.VEHICLE and phase is not None and phase.ring > 0:
            values[channel - 1] = phase.min_green_ds * 100
    return tuple(values)


def mmu_program_from_database(db: TimingDatabase) -> MmuProgram:
    """Program the MMU from the cabinet's channel map and the phase concurrency.

    A channel is enabled when its source phase is in use. Channels are
    permissive when they share a phase or their phases are mutually
    concurrent.
    """
    enabled = 0
    vehicle = 0
    source: dict[int, int] = {}
    for channel, row in db.channels.items():
        phase = db.phases.get(row.source)
        if phase is None or phase.ring == 0:
            continue
        if row.kind not in (ChannelType.VEHICLE, ChannelType.PEDESTRIAN):
            continue
        bit = 1 << (channel - 1)
        enabled |= bit
        if row.kind is ChannelType.VEHICLE:
            vehicle |= bit
        source[channel] = row.source
    permissive = [0] * N_CHANNELS
    for a, pa in source.items():
        for b, pb in source.items():
            if pa == pb or (pb in db.phases[pa].concurrency and pa in db.phases[pb].concurrency):
                permissive[a - 1] |= 1 << (b - 1)
    return MmuProgram(
        enabled=enabled,
        vehicle=vehicle,
        permissive=tuple(permissive),
        min_green_ms=min_greens_from_database(db),
    )


_NEVER = -1


class Mmu:
    """Conflict monitor over sampled channel frames; latches on the first fault."""

    def __init__(self, program: MmuProgram, timings: MmuTimings | None = None) -> None:
        self.timings = timings or MmuTimings()
        self._program = program
        self._fault: MmuFault | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._last_t = 0
        self._prev = ChannelFrame(greens=0, yellows=0, reds=0)
        self._conf_acc = 0
        self._conf_clear = 0
        self._conf_prev = False
        self._conf_channels = 0
        self._dark = 0
        self._dark_since = [_NEVER] * N_CHANNELS
        self._green_on = [0] * N_CHANNELS
        self._yellow_on = [0] * N_CHANNELS
        self._await_yellow = 0
        self._started = False
        #: True while a timer runs (conflict sum, dark channel): no sample may be skipped.
        self.busy = False

    # -- programming and state -------------------------------------------------

    @property
    def program(self) -> MmuProgram:
        """The current programming."""
        return self._program

    def reprogram(self, program: MmuProgram) -> None:
        """Install new programming (a new program card); the timers keep running."""
        self._program = program

    def update_min_greens(self, min_green_ms: tuple[int, ...]) -> None:
        """Change the minimum greens only (the cabinet tracks the controller's database)."""
        self._program = MmuProgram(
            enabled=self._program.enabled,
            vehicle=self._program.vehicle,
            permissive=self._program.permissive,
            min_green_ms=min_green_ms,
        )

    @property
    def fault(self) -> MmuFault | None:
        """The latched fault, or None."""
        return self._fault

    @property
    def latched(self) -> bool:
        """True while a fault holds the cabinet in flash."""
        return self._fault is not None

    def reset(self) -> bool:
        """The front-panel / external reset: clear a latched fault. True if one was latched."""
        if self._fault is None:
            return False
        self._fault = None
        last_t = self._last_t
        self._init_state()
        self._last_t = last_t
        return True

    # -- monitoring ------------------------------------------------------------

    def _latch(
        self, kind: FaultKind, mask: int, t: int, frame: ChannelFrame, detail: str
    ) -> MmuFault:
        fault = MmuFault(kind=kind, channels=_channels(mask), at_ms=t, frame=frame, detail=detail)
        self._fault = fault
        return fault

    def sample(self, frame: ChannelFrame, t: int) -> MmuFault | None:
        """Look at the outputs at simulated time ``t`` (ms); returns a fault if one latches."""
        if self._fault is not None:
            return self._fault
        program = self._program
        timings = self.timings
        enabled = program.enabled
        g = frame.greens & enabled
        y = frame.yellows & enabled
        r = frame.reds & enabled
        dt = t - self._last_t if self._started else 0
        self._started = True
        self._last_t = t

        # Conflict: cumulative time with a non-permissive pair active.
        active = g | y
        conflict = 0
        for ch in _bits(active):
            bad = active & ~program.permissive[ch] & ~(1 << ch)
            if bad:
                conflict |= bad | (1 << ch)
        if self._conf_prev:
            self._conf_acc += dt
        elif self._conf_acc > 0:
            self._conf_clear += dt
            if self._conf_clear >= timings.conflict_clear_ms:
                self._conf_acc = 0
                self._conf_clear = 0
        if conflict:
            self._conf_clear = 0
            self._conf_channels = conflict
        self._conf_prev = conflict != 0
        self.busy = self._conf_prev or self._conf_acc > 0 or self._dark != 0
        if self._conf_acc >= timings.conflict_latch_ms:
            return self._latch(
                FaultKind.CONFLICT,
                self._conf_channels,
                t,
                frame,
                f"conflict on channels {_channels(self._conf_channels)} for {self._conf_acc} ms",
            )

        # Clearance checks on vehicle channels, at changes only.
        prev = self._prev
        pg, py, pr = prev.greens & enabled, prev.yellows & enabled, prev.reds & enabled
        self._prev = frame
        vehicle = program.vehicle
        changed = ((g ^ pg) | (y ^ py) | (r ^ pr)) & vehicle
        for ch in _bits(changed):
            bit = 1 << ch
            if g & bit and not pg & bit:
                self._green_on[ch] = t
                self._await_yellow &= ~bit
            if y & bit and not py & bit:
                self._yellow_on[ch] = t
                self._await_yellow &= ~bit
            if pg & bit and not g & bit:
                if not y & bit:
                    self._await_yellow |= bit
                green = t - self._green_on[ch]
                if not y & bit and r & bit:
                    return self._latch(
                        FaultKind.SKIPPED_YELLOW,
                        bit,
                        t,
                        frame,
                        f"channel {ch + 1} went from green to red without yellow",
                    )
                minimum = program.min_green_ms[ch]
                if minimum and green < minimum:
                    return self._latch(
                        FaultKind.MIN_GREEN,
                        bit,
                        t,
                        frame,
                        f"channel {ch + 1} green lasted {green} ms, minimum {minimum} ms",
                    )
            if py & bit and not y & bit:
                yellow = t - self._yellow_on[ch]
                if yellow < timings.min_yellow_ms:
                    return self._latch(
                        FaultKind.SHORT_YELLOW,
                        bit,
                        t,
                        frame,
                        f"channel {ch + 1} yellow lasted {yellow} ms "
                        f"(< {timings.min_yellow_ms} ms)",
                    )
            if r & bit and not pr & bit and self._await_yellow & bit and not (g | y) & bit:
                return self._latch(
                    FaultKind.SKIPPED_YELLOW,
                    bit,
                    t,
                    frame,
                    f"channel {ch + 1} went from green to red without yellow",
                )

        # Red fail: an enabled channel dark, while the cabinet is not flashing.
        dark = 0 if frame.flashing else enabled & ~(g | y | r)
        if dark or self._dark:
            since = self._dark_since
            for ch in _bits(dark & ~self._dark):
                since[ch] = t
            for ch in _bits(self._dark & ~dark):
                since[ch] = _NEVER
            self._dark = dark
            self.busy = self._conf_prev or self._conf_acc > 0 or dark != 0
            for ch in _bits(dark):
                if t - since[ch] >= timings.dark_latch_ms:
                    return self._latch(
                        FaultKind.DARK,
                        1 << ch,
                        t,
                        frame,
                        f"channel {ch + 1} dark for {t - since[ch]} ms",
                    )
        return None
