"""Fault injection: make the cabinet outputs misbehave so the MMU has to catch it.

An injection sits between the timing engine and the MMU and rewrites the
channel frame at MMU sample resolution; the engine itself is untouched and
keeps timing as if nothing happened (as when a load switch fails). Each
injection records when it actually began corrupting the outputs
(``started_ms``), so a test can check the detection window from there.

=====================  ==========================================================
kind                   what the outputs do
=====================  ==========================================================
CONFLICT               ``channel`` (default: the first enabled ped channel -- a
                       WALK -- that conflicts with what is green now, else a
                       vehicle channel) is forced green for ``duration_ms``.
                       A vehicle channel forced green also trips the clearance
                       checks when it drops back to red, as a real MMU would.
DARK                   ``channel`` (default: the first enabled vehicle channel
                       showing red) shows nothing for ``duration_ms``.
SHORT_YELLOW           at the next yellow onset of ``channel`` (default: any
                       vehicle channel) the yellow lasts ``value_ms`` (default
                       2000 ms), then red until the engine's own yellow ends.
SKIPPED_YELLOW         at the next yellow onset of ``channel``, red is shown
                       instead of the whole yellow.
MIN_GREEN              at the next green onset of ``channel``, green lasts
                       ``value_ms`` (default 2000 ms), then 3.5 s of yellow, then
                       red until the engine's own green and yellow are over.
=====================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from firmware_sim.mmu import N_CHANNELS, FaultKind, MmuProgram
from firmware_sim.status import ChannelFrame

_CUT_SHORT_YELLOW_MS = 3500


class _Stage(Enum):
    ARMED = "armed"
    ACTIVE = "active"
    SECOND = "second"  # MIN_GREEN: showing its yellow; SHORT_YELLOW: showing red
    HOLD_RED = "hold-red"
    DONE = "done"


@dataclass(kw_only=True, slots=True)
class Injection:
    """One requested fault and its progress (times in simulated ms)."""

    kind: FaultKind
    channel: int | None
    duration_ms: int
    value_ms: int
    armed_ms: int
    started_ms: int | None = None
    ended_ms: int | None = None
    #: The channels actually corrupted (a CONFLICT on an all-red frame forces two).
    channels: tuple[int, ...] = ()
    _stage: _Stage = field(default=_Stage.ARMED, repr=False)
    _stage_ms: int = field(default=0, repr=False)

    @property
    def done(self) -> bool:
        """True when the injection has stopped touching the outputs."""
        return self._stage is _Stage.DONE


def _force(frame: ChannelFrame, mask: int, *, g: bool, y: bool, r: bool) -> ChannelFrame:
    """The frame with the channels of ``mask`` showing exactly the given outputs."""
    keep = ~mask
    return replace(
        frame,
        greens=(frame.greens & keep) | (mask if g else 0),
        yellows=(frame.yellows & keep) | (mask if y else 0),
        reds=(frame.reds & keep) | (mask if r else 0),
    )


class FaultInjector:
    """Applies the active injections to each sampled frame."""

    def __init__(self) -> None:
        self._active: list[Injection] = []
        self._prev: ChannelFrame | None = None
        #: True while any injection is armed or running.
        self.active = False

    def add(self, injection: Injection) -> None:
        """Arm an injection; it acts from the next sample on."""
        self._active.append(injection)
        self.active = True

    def clear(self) -> None:
        """Drop every injection (the cabinet was repaired)."""
        for injection in self._active:
            if injection.started_ms is not None and injection.ended_ms is None:
                injection.ended_ms = injection.started_ms
            injection._stage = _Stage.DONE
        self._active.clear()
        self.active = False
        self._prev = None

    def apply(self, frame: ChannelFrame, t: int, program: MmuProgram) -> ChannelFrame:
        """The frame the MMU sees at ``t``: the engine's frame with the faults applied."""
        prev = self._prev if self._prev is not None else frame
        self._prev = frame
        out = frame
        for injection in self._active:
            out = self._apply_one(injection, frame, prev, out, t, program)
        self._active = [i for i in self._active if not i.done]
        if not self._active:
            self.active = False
            self._prev = None
        return out

    def _apply_one(
        self,
        inj: Injection,
        frame: ChannelFrame,
        prev: ChannelFrame,
        out: ChannelFrame,
        t: int,
        program: MmuProgram,
    ) -> ChannelFrame:
        kind = inj.kind
        if kind is FaultKind.CONFLICT or kind is FaultKind.DARK:
            if inj._stage is _Stage.ARMED:
                inj.channels = self._pick(inj, frame, program)
                inj.started_ms = t
                inj._stage = _Stage.ACTIVE
            if t - (inj.started_ms or 0) >= inj.duration_ms:
                inj.ended_ms = t
                inj._stage = _Stage.DONE
                return out
            mask = sum(1 << (c - 1) for c in inj.channels)
            if kind is FaultKind.CONFLICT:
                return _force(out, mask, g=True, y=False, r=False)
            return _force(out, mask, g=False, y=False, r=False)
        if inj._stage is _Stage.ARMED:
            onset_of_green = kind is FaultKind.MIN_GREEN
            now = frame.greens if onset_of_green else frame.yellows
            before = prev.greens if onset_of_green else prev.yellows
            starting = now & ~before & program.vehicle
            if inj.channel is not None:
                starting &= 1 << (inj.channel - 1)
            if not starting:
                return out
            low = starting & -starting
            inj.channels = (low.bit_length(),)
            inj.started_ms = t
            inj._stage_ms = t
            inj._stage = _Stage.ACTIVE
        bit = 1 << (inj.channels[0] - 1)
        engine_lit = (frame.greens | frame.yellows) & bit
        if kind is FaultKind.SKIPPED_YELLOW:
            if not frame.yellows & bit:
                inj.ended_ms = t
                inj._stage = _Stage.DONE
                return out
            return _force(out, bit, g=False, y=False, r=True)
        if kind is FaultKind.SHORT_YELLOW:
            if not frame.yellows & bit:
                inj.ended_ms = t
                inj._stage = _Stage.DONE
                return out
            if t - inj._stage_ms < inj.value_ms:
                return out
            return _force(out, bit, g=False, y=False, r=True)
        # MIN_GREEN: short green, a proper yellow, then red until the engine is red too.
        elapsed = t - inj._stage_ms
        if elapsed < inj.value_ms:
            return _force(out, bit, g=True, y=False, r=False)
        if elapsed < inj.value_ms + _CUT_SHORT_YELLOW_MS:
            return _force(out, bit, g=False, y=True, r=False)
        if engine_lit:
            return _force(out, bit, g=False, y=False, r=True)
        inj.ended_ms = t
        inj._stage = _Stage.DONE
        return out

    @staticmethod
    def _pick(inj: Injection, frame: ChannelFrame, program: MmuProgram) -> tuple[int, ...]:
        if inj.channel is not None:
            return (inj.channel,)
        enabled = program.enabled
        if inj.kind is FaultKind.DARK:
            red = frame.reds & ~(frame.greens | frame.yellows) & program.vehicle
            candidates = red or program.vehicle
            low = candidates & -candidates
            return (low.bit_length(),)
        active = (frame.greens | frame.yellows) & enabled
        peds = enabled & ~program.vehicle
        for pool in (peds, program.vehicle):
            for ch in range(N_CHANNELS):
                bit = 1 << ch
                if pool & bit and not active & bit and active & ~program.permissive[ch]:
                    return (ch + 1,)
        # Nothing active: force two channels that may never show together.
        for a in range(N_CHANNELS):
            if not program.vehicle & (1 << a):
                continue
            others = program.vehicle & ~program.permissive[a]
            if others:
                low = others & -others
                return (a + 1, low.bit_length())
        raise ValueError("no two enabled channels conflict: nothing to inject")
