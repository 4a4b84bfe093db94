"""The demo's story as data: the acts and their timing, the mode timeline, the verdict.

No I/O and no clock: the director feeds in what happened (mode changes from
the agents' logs, fallback times it measured, the simulators' event records)
with times in seconds since the demo started, and asks what to print and
whether the story was told.

**Timing.** ``--duration`` is the length of the whole story. Each act has an
*active* part (what it does and waits for: a command applied, a fallback) and
a *hold* (time for a human to look at the result). The active parts take what
they take; the holds share what is left of the duration by weight::

    hold = min_hold + max(0, slack) × weight / Σ weights of the acts still to come
    slack = duration − elapsed − min_hold − Σ (estimate + min_hold) of the later acts

so a slow machine shortens the holds, never the measurements, and the story
ends at ``--duration`` whenever it fits at all (30 s does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# -- the acts ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Act:
    """One act of the story."""

    #: Short name, for the story log.
    name: str
    #: What the act does, in one line for a human.
    title: str
    #: What its active part usually takes (s): a reservation, not a limit.
    estimate_s: float
    #: The shortest look at its result (s).
    min_hold_s: float
    #: Its share of the spare time.
    weight: float


#: How long the corridor waits between a command and its ``activate_at`` (s).
ACTIVATE_LEAD_S: Final = 1.5


def acts(heartbeat_timeout_s: float) -> tuple[Act, ...]:
    """The story, in order (the estimates depend on the agents' heartbeat timeout)."""
    command = ACTIVATE_LEAD_S + 0.6
    return (
        Act(
            name="green wave",
            title="central commands the green wave (pattern 1)",
            estimate_s=command,
            min_hold_s=2.0,
            weight=3.0,
        ),
        Act(
            name="central silent",
            title="central goes silent: heartbeats stop, broker stays up",
            estimate_s=heartbeat_timeout_s + 0.6,
            min_hold_s=1.0,
            weight=1.0,
        ),
        Act(
            name="central back",
            title="central is back: heartbeats and a new command",
            estimate_s=command,
            min_hold_s=1.0,
            weight=2.0,
        ),
        Act(
            name="network cut",
            title="the network is cut: the broker stops",
            estimate_s=1.0,
            min_hold_s=2.0,
            weight=3.0,
        ),
        Act(
            name="network back",
            title="the network is back: broker up, heartbeats flow",
            estimate_s=1.5,
            min_hold_s=2.0,
            weight=2.0,
        ),
        Act(
            name="central regains",
            title="central regains control with a new command",
            estimate_s=command,
            min_hold_s=1.0,
            weight=2.0,
        ),
    )


def minimum_story_s(story: Sequence[Act]) -> float:
    """The shortest the acts can take together (estimates and minimal holds)."""
    return sum(act.estimate_s + act.min_hold_s for act in story)


def hold_s(remaining: Sequence[Act], *, elapsed_s: float, duration_s: float) -> float:
    """How long to hold after the active part of ``remaining[0]`` (see the module docstring).

    ``remaining`` is the current act followed by the acts still to come.
    """
    if not remaining:
        raise ValueError("no act to hold")
    current, later = remaining[0], remaining[1:]
    reserved = current.min_hold_s + sum(a.estimate_s + a.min_hold_s for a in later)
    slack = max(0.0, duration_s - elapsed_s - reserved)
    weights = sum(a.weight for a in remaining)
    return current.min_hold_s + slack * current.weight / weights


# -- the mode timeline ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ModeChange:
    """An agent changed mode (from its ``mode_changed`` log record)."""

    device: str
    before: str
    after: str
    #: Seconds since the demo started.
    at_s: float
    reason: str


_LOST = (
    ("broker connection is down", "broker down"),
    ("no valid heartbeat", "no heartbeat"),
    ("lease ran out", "lease ran out"),
    ("has not been heard", "central not heard"),
)
_COMMANDED = re.compile(r"central commanded pattern (\S+)")


def short_reason(reason: str) -> str:
    """A few words for the timeline from the agent's reason for a mode change."""
    for needle, words in _LOST:
        if needle in reason:
            return words
    commanded = _COMMANDED.search(reason)
    if commanded:
        return f"pattern {commanded.group(1)}"
    text = " ".join(reason.split())
    return text if len(text) <= 40 else text[:39] + "…"


#: The sequence every intersection must show (as a subsequence of its modes).
STORY_MODES: Final = ("central", "local", "central")


@dataclass
class Timeline:
    """Every intersection's modes over the demo, from its initial mode on."""

    devices: tuple[str, ...]
    initial: str = "local"
    _changes: dict[str, list[ModeChange]] = field(default_factory=dict)

    def record(self, change: ModeChange) -> None:
        """Take one mode change (of a device in :attr:`devices`)."""
        if change.device not in self.devices:
            raise KeyError(f"not a device of this demo: {change.device}")
        self._changes.setdefault(change.device, []).append(change)

    def changes(self, device: str) -> tuple[ModeChange, ...]:
        """``device``'s mode changes, in order."""
        return tuple(self._changes.get(device, ()))

    def mode(self, device: str) -> str:
        """``device``'s mode now."""
        changes = self._changes.get(device)
        return changes[-1].after if changes else self.initial

    def modes(self, device: str) -> tuple[str, ...]:
        """The modes ``device`` went through, starting with the initial one."""
        return (self.initial, *(c.after for c in self.changes(device)))

    def line(self, device: str) -> str:
        """``main-1st: local → central (t=4.2 s) → local (t=11.0 s, no heartbeat) → …``."""
        parts = [self.initial]
        for change in self.changes(device):
            why = short_reason(change.reason)
            note = "" if change.after == "central" else f", {why}"
            parts.append(f"{change.after} (t={change.at_s:.1f} s{note})")
        return f"{device}: " + " → ".join(parts)

    def missing(self, device: str) -> str | None:
        """What ``device`` did not show of central → local → central (None: all of it)."""
        return story_gap(self.modes(device))


def story_gap(modes: Iterable[str]) -> str | None:
    """None when ``modes`` contain central, then local, then central again; else what is missing."""
    reached = 0
    for mode in modes:
        if reached < len(STORY_MODES) and mode == STORY_MODES[reached]:
            reached += 1
    if reached == 0:
        return "never went central"
    if reached == 1:
        return "went central but never fell back to local"
    if reached == 2:
        return "fell back to local but never regained central"
    return None


# -- measurements and the verdict ------------------------------------------------------


def seconds(value: float) -> str:
    """``3.02 s``, or ``4 ms`` below a tenth of a second."""
    return f"{value * 1000:.0f} ms" if value < 0.1 else f"{value:.2f} s"


@dataclass(frozen=True, kw_only=True)
class Fallback:
    """How long an intersection took to fall back to local after central was lost."""

    device: str
    #: What was cut: "heartbeats stopped" or "broker stopped".
    cause: str
    #: Seconds from the cut to the agent's ``local`` (None: it never fell back).
    took_s: float | None
    limit_s: float

    @property
    def ok(self) -> bool:
        return self.took_s is not None and self.took_s <= self.limit_s

    def describe(self) -> str:
        if self.took_s is None:
            return f"{self.device}: {self.cause}, never fell back to local"
        mark = "within" if self.ok else "LATE, over"
        return (
            f"{self.device}: {self.cause} → local in {seconds(self.took_s)} "
            f"({mark} the {self.limit_s:g} s limit)"
        )


@dataclass(frozen=True, kw_only=True)
class Coordination:
    """How well an intersection's coordinated phase kept its planned offset."""

    device: str
    #: Coordinated-phase green starts checked.
    greens: int
    #: The largest distance of a green start from its planned moment in the cycle (s).
    worst_s: float | None
    tolerance_s: float

    @property
    def ok(self) -> bool:
        return self.worst_s is None or self.worst_s <= self.tolerance_s

    def describe(self) -> str:
        if self.worst_s is None:
            return f"{self.device}: no coordinated green start during the story to check"
        mark = "" if self.ok else ": OFF the plan"
        return (
            f"{self.device}: {self.greens} green starts, worst {self.worst_s:.2f} s "
            f"off the planned offset (±{self.tolerance_s:g} s){mark}"
        )


def offset_errors(
    events: Iterable[Mapping[str, Any]],
    *,
    phase: int,
    offset_s: float,
    cycle_s: float,
    midnight: float,
    since: float,
) -> list[float]:
    """For each begin-green (Indiana code 1) of ``phase`` at or after ``since``: its error (s).

    ``events`` are the simulator's records (``{"t": epoch s, "code": …, "param": …}``);
    the planned green start is ``midnight + offset + k × cycle``.
    """
    errors = []
    for event in events:
        if event.get("code") != 1 or event.get("param") != phase:
            continue
        at = float(event.get("t", 0.0))
        if at < since:
            continue
        position = (at - midnight - offset_s) % cycle_s
        errors.append(min(position, cycle_s - position))
    return errors


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Was the story told? What to print at the end, and the exit status."""

    timeline: Timeline
    fallbacks: tuple[Fallback, ...] = ()
    coordination: tuple[Coordination, ...] = ()
    #: Anything else that went wrong (a command refused, an act that timed out).
    problems: tuple[str, ...] = ()

    @property
    def gaps(self) -> dict[str, str]:
        """Device → what it did not show of central → local → central."""
        found = {d: self.timeline.missing(d) for d in self.timeline.devices}
        return {d: gap for d, gap in found.items() if gap is not None}

    @property
    def ok(self) -> bool:
        return (
            not self.gaps
            and all(f.ok for f in self.fallbacks)
            and all(c.ok for c in self.coordination)
            and not self.problems
        )

    def lines(self, *, interrupted: bool = False) -> list[str]:
        """The summary printed at the end of the demo (or when it was interrupted)."""
        out = ["mode timeline (t = seconds since the demo started):"]
        out += [f"  {self.timeline.line(d)}" for d in self.timeline.devices]
        if self.fallbacks:
            out.append("fallback to local (limit: heartbeat_timeout_s + 1 s):")
            out += [f"  {f.describe()}" for f in self.fallbacks]
        if self.coordination:
            out.append("green wave (simulators' event logs, coordinated phase 2 green starts):")
            out += [f"  {c.describe()}" for c in self.coordination]
        if interrupted:
            out.append("result: interrupted before the end of the story")
            return out
        if self.ok:
            out.append("result: every intersection went central → local → central")
            return out
        out.append("result: the story was NOT told completely:")
        out += [f"  {device}: {gap}" for device, gap in self.gaps.items()]
        out += [f"  {f.describe()}" for f in self.fallbacks if not f.ok]
        out += [f"  {c.describe()}" for c in self.coordination if not c.ok]
        out += [f"  {problem}" for problem in self.problems]
        return out
