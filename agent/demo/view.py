"""How the demo shows its story: a live view on a terminal, plain lines otherwise.

:class:`PlainReporter` (``--headless``, and whenever standard output is not a
terminal) writes one line per thing that happens, stamped with the seconds
since the demo started::

    [   4.1 s] act 1/6 — central commands the green wave: pattern 1, one token, one activate_at
    [   5.8 s] main-1st: local → central (central commanded pattern 1)

:class:`LiveReporter` redraws, four times a second and within 80 columns, one
row per intersection — the agent's mode and since when, the running pattern,
the eight phases as the controller shows them (green, yellow, red), who drives
the controller (``system``: the agent's command; ``own plan``: its time-of-day
schedule; ``backup``: its backup timer), the agent's broker link — above the
story's last lines.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import Final, TextIO

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent.controller.interface import ControllerStatus, Light
from agent.demo.board import Board, Row
from agent.demo.story import ModeChange, short_reason

#: Styles of the agent's modes.
MODE_STYLE: Final = {
    "central": "bold cyan",
    "local": "bold yellow",
    "override": "bold blue",
    "flash": "bold magenta",
    "fault": "bold red",
    "starting": "dim",
}
LIGHT_STYLE: Final = {
    Light.GREEN: "bold black on green",
    Light.YELLOW: "bold black on yellow",
    Light.RED: "bold white on red",
    Light.DARK: "dim",
}
#: Who drives the controller's timing (its unitControlStatus), in a word.
CONTROL_LABEL: Final = {
    "system": "system",  # the agent's command (central mode)
    "standby": "own plan",  # released: the controller's time-of-day schedule
    "timebase": "own plan",
    "backup": "backup",  # the backup timer expired: the agent is silent
}
STORY_LINES: Final = 9
REFRESH_S: Final = 0.25


def stamp(at_s: float) -> str:
    """``[  12.3 s]``."""
    return f"[{at_s:7.1f} s]"


def change_text(change: ModeChange) -> str:
    """``main-1st: central → local (broker down)``."""
    return f"{change.device}: {change.before} → {change.after} ({short_reason(change.reason)})"


class PlainReporter:
    """The story as plain lines on a stream (see the module docstring)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, at_s: float, text: str) -> None:
        self.out.write(f"{stamp(at_s)} {text}\n")
        self.out.flush()

    def mode_changed(self, change: ModeChange) -> None:
        self.say(change.at_s, change_text(change))

    async def run(self, board: Board) -> None:
        """Nothing to redraw."""
        return


class LiveReporter:
    """A live view with rich (see the module docstring)."""

    def __init__(self, console: Console, *, duration_s: float) -> None:
        self.console = console
        self.duration_s = duration_s
        self.lines: deque[tuple[float, str]] = deque(maxlen=STORY_LINES)

    def say(self, at_s: float, text: str) -> None:
        self.lines.append((at_s, text))

    def mode_changed(self, change: ModeChange) -> None:
        self.say(change.at_s, change_text(change))

    async def run(self, board: Board) -> None:
        """Redraw until cancelled (the last picture stays on the screen)."""
        from rich.live import Live

        with Live(
            self.render(board), console=self.console, auto_refresh=False, transient=False
        ) as live:
            try:
                while True:
                    await asyncio.sleep(REFRESH_S)
                    live.update(self.render(board), refresh=True)
            finally:
                live.update(self.render(board), refresh=True)

    def render(self, board: Board) -> RenderableType:
        """The whole picture: header, one row per intersection, the story so far."""
        now = time.time()
        return Group(
            self._header(board, now),
            self._table(board, now),
            Panel(self._story(), title="story", title_align="left", border_style="dim"),
        )

    def _header(self, board: Board, now: float) -> Text:
        elapsed = board.t(now)
        head = Text()
        head.append("greenwave demo", style="bold")
        head.append(f"  t={elapsed:5.1f} s of {self.duration_s:g} s  act {board.act}\n")
        head.append("broker ")
        head.append(
            "up" if board.broker_up else "DOWN", style="green" if board.broker_up else "red"
        )
        head.append("  heartbeats ")
        head.append(
            "on" if board.heartbeats else "off", style="green" if board.heartbeats else "red"
        )
        if board.sim_time is not None:
            clock = datetime.fromtimestamp(board.sim_time(now), tz=UTC)
            head.append(f"  corridor clock {clock:%a %H:%M:%S} (simulated)")
        return head

    def _table(self, board: Board, now: float) -> Table:
        table = Table(box=None, padding=(0, 1), header_style="bold", expand=False)
        table.add_column("signal", no_wrap=True)
        table.add_column("mode", no_wrap=True)
        table.add_column("for", justify="right", no_wrap=True)
        table.add_column("pattern", justify="right", no_wrap=True)
        table.add_column("phases 1-8", no_wrap=True)
        table.add_column("controller", no_wrap=True)
        table.add_column("link", no_wrap=True)
        for row in board.rows.values():
            table.add_row(*_cells(row, board.t(now)))
        return table

    def _story(self) -> Text:
        text = Text()
        for number, (at_s, line) in enumerate(self.lines):
            style = "bold red" if line.startswith("PROBLEM") else ""
            text.append("\n" if number else "")
            text.append(f"{stamp(at_s)} ", style="dim")
            text.append(line, style=style)
        return text


def _cells(row: Row, now_s: float) -> tuple[Text, ...]:
    mode = Text(row.mode, style=MODE_STYLE.get(row.mode, ""))
    since = Text(f"{now_s - row.mode_since_s:.0f} s" if row.mode != "starting" else "")
    status = row.status
    pattern = Text(str(status.pattern) if status is not None else "-")
    drives = Text(CONTROL_LABEL.get(str(status.control), str(status.control)) if status else "-")
    link = Text("up", style="green") if row.mqtt_up else Text("down", style="red")
    return (Text(row.device), mode, since, pattern, _phases(status), drives, link)


def _phases(status: ControllerStatus | None) -> Text:
    """The eight phases, each its number on its colour."""
    text = Text()
    if status is None:
        return Text("no answer", style="red")
    lights = {p.phase: p.light for p in status.phases}
    for phase in range(1, 9):
        light = lights.get(phase, Light.DARK)
        text.append(f"{phase}", style=LIGHT_STYLE.get(light, "dim"))
        text.append(" ")
    return text
