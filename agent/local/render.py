"""What a technician reads: the status, the watch display and the plan, for an 80-column terminal.

Pure functions from the socket's JSON documents (protocol.py) to lines of
text; nothing here prints or connects, so every layout is tested for width.
A serial console may not speak UTF-8: callers pass ``phi="P"`` then, and
every other character used here is ASCII.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.plan.model import Plan

WIDTH = 80
LABEL = 12
_LIGHT = {"red": "R", "yellow": "Y", "green": "G", "dark": "-"}
_PED = {"walk": "walk", "ped_clear": "fdw", "dont_walk": "", "dark": ""}


# -- small pieces ----------------------------------------------------------------------------


def clock_time(epoch: float | None, *, now: float, tenths: bool = False) -> str:
    """``14:02:11Z`` today (UTC), ``2027-01-02 14:02:11Z`` otherwise; ``-`` for None."""
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch, UTC)
    text = moment.strftime("%H:%M:%S")
    if tenths:
        text += f".{int(moment.microsecond / 100_000)}"
    if moment.date() != datetime.fromtimestamp(now, UTC).date():
        text = moment.strftime("%Y-%m-%d ") + text
    return text + "Z"


def duration(seconds: float) -> str:
    """``45s``, ``3m 20s``, ``2h 13m``, ``3d 4h``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86_400}d {s % 86_400 // 3600}h"


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with ``…`` (ASCII ``~`` is not clearer)."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _field(label: str, text: str, *, width: int, max_lines: int = 3) -> list[str]:
    """``label`` then ``text`` wrapped in the value column; at most ``max_lines`` lines."""
    room = width - LABEL
    wrapped = textwrap.wrap(text, room, break_long_words=True, break_on_hyphens=False) or [""]
    if len(wrapped) > max_lines:
        wrapped = [*wrapped[: max_lines - 1], fit(" ".join(wrapped[max_lines - 1 :]), room)]
    lines = [f"{label:<{LABEL}}{wrapped[0]}".rstrip()]
    lines.extend(f"{'':<{LABEL}}{more}" for more in wrapped[1:])
    return lines


def _tokens_lines(label: str, tokens: Sequence[str], *, width: int, sep: str = "  ") -> list[str]:
    """Tokens laid out after ``label``, wrapped between tokens, never inside one."""
    room = width - LABEL
    lines: list[str] = []
    current = ""
    for token in tokens:
        token = fit(token, room)
        candidate = token if not current else current + sep + token
        if len(candidate) > room and current:
            lines.append(current)
            current = token
        else:
            current = candidate
    lines.append(current)
    head = f"{label:<{LABEL}}{lines[0]}".rstrip()
    return [head, *(f"{'':<{LABEL}}{line}" for line in lines[1:])]


def phase_token(phase: Mapping[str, Any], *, phi: str = "Φ") -> str:
    """``Φ2 G walk``: the phase, its vehicle light, its pedestrian light when not don't-walk."""
    light = _LIGHT.get(str(phase.get("light")), "?")
    ped = _PED.get(str(phase.get("ped")), "?")
    return f"{phi}{phase.get('phase')} {light}" + (f" {ped}" if ped else "")


def phase_tokens(live: Mapping[str, Any] | None, *, phi: str = "Φ") -> list[str]:
    if not live:
        return []
    return [phase_token(p, phi=phi) for p in live.get("phases") or []]


def _pattern(value: Any) -> str:
    return "-" if value is None else str(value)


# -- status ----------------------------------------------------------------------------------


def status_lines(doc: Mapping[str, Any], *, width: int = WIDTH, phi: str = "Φ") -> list[str]:
    """``greenwave status``: everything at a glance, no line wider than ``width``."""
    state: Mapping[str, Any] = doc.get("state") or {}
    agent: Mapping[str, Any] = doc.get("agent") or {}
    live: Mapping[str, Any] | None = doc.get("live")
    now = float(doc.get("ts") or 0.0)
    lines: list[str] = []

    head = f"greenwave {state.get('device', '?')} - agent {agent.get('version', '?')}"
    if "uptime_s" in agent:
        head += f", up {duration(float(agent['uptime_s']))}"
    if "pid" in agent:
        head += f" (pid {agent['pid']})"
    lines.append(fit(head, width))

    mode = str(state.get("mode", "?")).upper()
    since = state.get("mode_since")
    when = ""
    if isinstance(since, int | float):
        when = f" since {clock_time(since, now=now)} ({duration(now - since)} ago)"
    lines += _field("mode", mode + when, width=width)
    if state.get("reason"):
        lines += _field("", f"why: {state['reason']}", width=width, max_lines=2)

    override = state.get("override")
    if override:
        left = float(override.get("until", now)) - now
        lines += _field(
            "override",
            f"pattern {override.get('pattern')} by {override.get('who')}, {duration(left)} left "
            f"(until {clock_time(override.get('until'), now=now)}); central is refused "
            "meanwhile; 'greenwave release' ends it",
            width=width,
        )

    controller: Mapping[str, Any] = state.get("controller") or {}
    link = str(controller.get("link", "?"))
    text = f"{link} - {controller.get('endpoint', '?')}"
    if link != "up" and controller.get("reason"):
        text += f" ({controller['reason']})"
    lines += _field("controller", text, width=width, max_lines=2)
    signal: Mapping[str, Any] = state.get("signal") or {}
    if signal:
        parts = [
            f"running {_pattern(signal.get('pattern'))}",
            f"commanded {_pattern(signal.get('commanded'))}",
        ]
        if live is not None and "cycle_time_s" in live:
            parts.append(f"cycle {live['cycle_time_s']} s")
        parts.append(f"control {signal.get('control', '?')}")
        flash = signal.get("flash")
        parts.append("no flash" if flash == "not_flash" else f"FLASH ({flash})")
        lines += _field("", ", ".join(parts), width=width, max_lines=2)
        alarms: Mapping[str, Any] = signal.get("alarms") or {}
        raised = {k: v for k, v in alarms.items() if v}
        if raised:
            lines += _field(
                "alarms", " ".join(f"{k}=0x{int(v):04x}" for k, v in raised.items()), width=width
            )

    central: Mapping[str, Any] = state.get("central") or {}
    heard = central.get("heard_ago_s")
    text = "connected" if central.get("connected") else "NOT connected to the broker"
    text += ", never heard" if heard is None else f", heard {duration(float(heard))} ago"
    if central.get("heartbeat_timeout_s") is not None:
        text += f" (timeout {central['heartbeat_timeout_s']:g} s)"
    if central.get("lost") and state.get("mode") == "local":
        text += f"; lost: {central['lost']}"
    lines += _field("central", text, width=width, max_lines=2)

    control: Mapping[str, Any] | None = state.get("control")
    if control and control.get("pattern") is not None:
        text = f"pattern {control['pattern']}"
        text += " (in force)" if control.get("in_force") else " (not in force)"
        if control.get("lease_s"):
            text += f", lease {control['lease_s']:g} s"
        lines += _field("commanded", text, width=width, max_lines=1)

    plan: Mapping[str, Any] | None = state.get("plan")
    if plan:
        text = f"version {plan.get('version')}, "
        text += "applied" if plan.get("applied") else "NOT yet applied to the controller"
        jti = plan.get("jti")
        text += " (local fallback plan)" if jti is None else f" (from central, {str(jti)[:12]})"
    else:
        text = "none stored: the controller runs its own plan"
    lines += _field("plan", text, width=width, max_lines=2)

    clock: Mapping[str, Any] | None = state.get("clock")
    if clock is None:
        text = "not checked"
    elif clock.get("synced"):
        text = f"trusted: {clock.get('detail')}"
    else:
        text = f"NOT trusted, coordination refused: {clock.get('detail')}"
    lines += _field("clock", text, width=width, max_lines=2)

    tokens = phase_tokens(live, phi=phi)
    if link != "up" or live is None:
        lines += _field("phases", "no live status (controller link down)", width=width)
    elif not tokens:
        lines += _field("phases", "none reported", width=width)
    else:
        lines += _tokens_lines("phases", tokens, width=width)
        age = float(live.get("age_s") or 0.0)
        if age > 2:
            lines += _field("", f"(as of {duration(age)} ago)", width=width)
    return [fit(line, width) for line in lines]


# -- watch -----------------------------------------------------------------------------------


def watch_line(doc: Mapping[str, Any], *, phi: str = "Φ") -> str:
    """One line per update (for logs and pipes): time, mode, pattern, cycle, phases."""
    state: Mapping[str, Any] = doc.get("state") or {}
    live: Mapping[str, Any] | None = doc.get("live")
    now = float(doc.get("ts") or 0.0)
    head = f"{clock_time(now, now=now, tenths=True)}  {state.get('mode', '?')}"
    if live is None or (state.get("controller") or {}).get("link") != "up":
        return f"{head}  controller link down"
    head += f"  pattern {_pattern(live.get('pattern'))}  cycle {live.get('cycle_time_s')}"
    if live.get("flash") not in (None, "not_flash"):
        head += f"  FLASH ({live['flash']})"
    return "  ".join([head, *phase_tokens(live, phi=phi)])


def watch_screen(doc: Mapping[str, Any], *, width: int = WIDTH, phi: str = "Φ") -> list[str]:
    """The live display on a terminal: a header and a phase grid (vehicle and ped rows)."""
    state: Mapping[str, Any] = doc.get("state") or {}
    live: Mapping[str, Any] | None = doc.get("live")
    now = float(doc.get("ts") or 0.0)
    head = (
        f"{state.get('device', '?')}  {clock_time(now, now=now, tenths=True)}  "
        f"{str(state.get('mode', '?')).upper()}"
    )
    override = state.get("override")
    if override:
        head += f" ({duration(float(override.get('until', now)) - now)} left)"
    lines = [fit(head, width)]
    if live is None or (state.get("controller") or {}).get("link") != "up":
        lines.append("controller link down: no live status")
        return lines
    text = (
        f"pattern {_pattern(live.get('pattern'))} (commanded {_pattern(live.get('commanded'))})"
        f"  cycle {live.get('cycle_time_s')} s"
    )
    if live.get("flash") not in (None, "not_flash"):
        text += f"  FLASH ({live['flash']})"
    lines.append(fit(text, width))
    phases = list(live.get("phases") or [])
    column, label = 6, 8
    per_row = max(1, (width - label) // column)
    for start in range(0, len(phases), per_row):
        chunk = phases[start : start + per_row]
        lines.append("")
        lines.append(
            "phase".ljust(label) + "".join(f"{phi}{p.get('phase')}".ljust(column) for p in chunk)
        )
        lines.append(
            "vehicle".ljust(label)
            + "".join(_LIGHT.get(str(p.get("light")), "?").ljust(column) for p in chunk)
        )
        lines.append(
            "ped".ljust(label)
            + "".join((_PED.get(str(p.get("ped")), "?") or ".").ljust(column) for p in chunk)
        )
    return [fit(line.rstrip(), width) for line in lines]


# -- plan ------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def _wrap_items(label: str, items: Iterable[str], *, width: int) -> list[str]:
    return _tokens_lines(label, list(items), width=width)


def plan_lines(
    doc: Mapping[str, Any], *, width: int = WIDTH, phi: str = "Φ", now: float
) -> list[str]:
    """``greenwave plan show``: the stored plan, table by table."""
    stored: Mapping[str, Any] | None = doc.get("plan")
    if stored is None:
        return [
            "no plan stored: central never loaded one and there is no fallback plan;"
            " the controller runs its own"
        ]
    plan = Plan.model_validate(stored["document"], strict=False)
    lines: list[str] = []
    name = f' "{plan.name}"' if plan.name else ""
    lines.append(fit(f"plan version {plan.version}{name}", width))
    source = (
        "the local fallback plan"
        if stored.get("jti") is None
        else f"loaded by central (command {str(stored['jti'])[:12]})"
    )
    applied = "applied to the controller" if stored.get("applied") else "NOT yet applied"
    lines += _field("source", f"{source}, {applied}", width=width)
    if stored.get("stored_at") is not None:
        lines += _field("stored", clock_time(float(stored["stored_at"]), now=now), width=width)
    rings = " ".join("[" + " ".join(str(p) for p in ring) + "]" for ring in plan.rings)
    barriers = " ".join("[" + " ".join(str(p) for p in b) + "]" for b in plan.barriers)
    lines += _field("rings", f"{rings}  barriers {barriers}", width=width)

    lines.append("")
    lines.append("phase   min green  max green  yellow  red clear  walk  ped clear")
    for ph in plan.phases:
        lines.append(
            f"{phi}{ph.phase:<6} {_seconds(ph.min_green):>9}  {_seconds(ph.max_green):>9}  "
            f"{_seconds(ph.yellow):>6}  {_seconds(ph.red_clear):>9}  {_seconds(ph.walk):>4}  "
            f"{_seconds(ph.ped_clear):>9}"
        )
    lines.append("")
    if not plan.patterns:
        lines.append("patterns    none (free and flash only)")
    for pat in plan.patterns:
        coord = ",".join(f"{phi}{p}" for p in pat.coord_phases)
        text = f"cycle {_seconds(pat.cycle)} s, offset {_seconds(pat.offset)} s, coord {coord}"
        if pat.sequence:
            text += ", sequence " + " ".join(
                "[" + " ".join(str(p) for p in ring) + "]" for ring in pat.sequence
            )
        lines += _field(f"pattern {pat.pattern}", text, width=width)
        splits = [
            f"{phi}{k} {_seconds(v)}"
            for k, v in sorted(pat.splits.items(), key=lambda kv: int(kv[0]))
        ]
        lines += _wrap_items("  splits", splits, width=width)
    lines.append("")
    for day in plan.day_plans:
        events = sorted(day.events, key=lambda e: e.at)
        lines += _wrap_items(
            f"day plan {day.day_plan}", [f"{e.at} {e.pattern}" for e in events], width=width
        )
    for entry in plan.schedule:
        lines += _field(
            "schedule", f"{' '.join(entry.days)}: day plan {entry.day_plan}", width=width
        )
    return [fit(line.rstrip(), width) for line in lines]
