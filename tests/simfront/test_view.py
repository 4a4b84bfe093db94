"""The live view: what it shows, and that it fits an 80-column terminal."""

from __future__ import annotations

import io

from rich.console import Console

from firmware_sim.controller import SimController
from firmware_sim.mmu import FaultKind
from firmware_sim.view import WIDTH, LiveView, ViewInfo, render

from .helpers import run_until

INFO = ViewInfo(
    speed=20.0,
    requests=1234,
    dropped=5,
    endpoints=("udp 127.0.0.1:16100", "tcp 127.0.0.1:40000", "pty /tmp/a/rather/long/link"),
)


def text_of(ctrl: SimController, width: int = 200) -> list[str]:
    """The rendered view as plain lines, on a console wider than the view."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(render(ctrl, INFO))
    return console.export_text().splitlines()


def test_the_view_shows_rings_phases_and_coordination(ctrl: SimController) -> None:
    run_until(ctrl, lambda c: bool(c.status().phases.walks & 0b10), limit_s=200)
    lines = text_of(ctrl)
    assert lines[0].startswith("greenwave-sim  2024-01-01 ")
    assert "x20.0  steady" in lines[0]
    assert lines[1].startswith("pattern 1 ")
    assert "cycle " in lines[1]
    ring1 = next(line for line in lines if line.startswith("ring 1"))
    assert " 2 ■ G WALK" in ring1
    assert next(line for line in lines if line.startswith("ring 2"))
    assert any(line.startswith("loads ") for line in lines)
    assert "requests 1234  dropped 5" in lines[-1]


def test_every_line_fits_80_columns(ctrl: SimController) -> None:
    ctrl.inject(FaultKind.CONFLICT)
    ctrl.step(2)
    lines = text_of(ctrl)
    assert any("MMU conflict" in line for line in lines)
    assert all(len(line) <= WIDTH for line in lines), [len(line) for line in lines]


def test_the_live_view_starts_refreshes_and_stops(ctrl: SimController) -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=80, force_terminal=True))
    view.start()
    view.refresh(ctrl, INFO)
    view.stop()
    view.stop()  # twice is harmless
    assert "greenwave-sim" in out.getvalue()
