"""The demo's two ways of showing the story: plain lines, and the live view within 80 columns."""

from __future__ import annotations

import io

from rich.console import Console

from agent.controller.interface import (
    Alarms,
    ControllerStatus,
    ControlSource,
    FlashState,
    Light,
    PedLight,
    PhaseSignal,
)
from agent.demo.board import Board
from agent.demo.story import ModeChange
from agent.demo.view import LiveReporter, PlainReporter

DEVICES = ("main-1st", "main-2nd")


def status() -> ControllerStatus:
    lights = {2: Light.GREEN, 6: Light.GREEN, 4: Light.YELLOW}
    phases = tuple(
        PhaseSignal(phase=p, light=lights.get(p, Light.RED), ped=PedLight.DONT_WALK)
        for p in range(1, 9)
    )
    return ControllerStatus(
        received_at=0.0,
        phases=phases,
        pattern=1,
        commanded="standby",
        free_status="not_free",
        cycle_time_s=42,
        control=ControlSource.STANDBY,
        flash=FlashState.NOT_FLASH,
        alarms=Alarms(),
    )


def lost(device: str) -> ModeChange:
    reason = "central lost: the broker connection is down"
    return ModeChange(device=device, before="central", after="local", at_s=21.04, reason=reason)


def test_plain_lines_carry_the_time_and_a_short_reason() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter.say(3.25, "act 1/6 — central commands the green wave (pattern 1)")
    reporter.mode_changed(lost("main-1st"))
    assert out.getvalue().splitlines() == [
        "[    3.2 s] act 1/6 — central commands the green wave (pattern 1)",
        "[   21.0 s] main-1st: central → local (broker down)",
    ]


async def test_the_live_view_fits_80_columns() -> None:
    board = Board(DEVICES, t0_wall=1000.0)
    board.sim_time = lambda wall: 1_795_676_400.0 + 10 * (wall - 1000.0)
    board.rows["main-1st"].mode = "local"
    board.rows["main-1st"].mqtt_up = False
    board.rows["main-1st"].status = status()
    board.rows["main-2nd"].mode = "central"
    board.rows["main-2nd"].mqtt_up = True
    board.act = "4/6 network cut"
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    reporter = LiveReporter(console, duration_s=60)
    for n in range(20):  # more than the story panel keeps
        reporter.say(float(n), f"line {n} " + "x" * 50)
    reporter.mode_changed(lost("main-2nd"))
    console.print(reporter.render(board))
    text = out.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "act 4/6 network cut" in text
    assert "corridor clock" in text
    row = next(line for line in text.splitlines() if "main-1st" in line and "local" in line)
    assert "1 2 3 4 5 6 7 8" in row
    assert "own plan" in row
    assert "down" in row
    assert "no answer" in next(line for line in text.splitlines() if line.startswith(" main-2nd"))
    assert "main-2nd: central → local (broker down)" in text
    assert "line 0 " not in text  # only the newest lines stay
