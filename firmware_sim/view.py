"""A live view of the simulated intersection for a terminal, 80 columns wide.

:func:`render` draws one frame from the controller (pure: a controller in, a
rich renderable out); :class:`LiveView` keeps it on screen with
``rich.live.Live`` and lets log lines and command answers scroll above it::

    greenwave-sim  2024-01-01 07:03:12Z  local 07:03:12  x20.0  steady
    pattern 1  in step (notFree)  cycle 35/120 s  control timebase
    flash notFlash  backup off  MMU ok
    ring 1   1 ■ R       2 ■ G WALK  3 ■ R       4 ■ R DW
    ring 2   5 ■ R       6 ■ G WALK  7 ■ R       8 ■ R DW
    loads    ■■■■■■■■ ■■■■ ■■■■   (channels 1-16)
    requests 42  dropped 0  udp 127.0.0.1:16100
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from firmware_sim.commands import ntcip_name
from firmware_sim.controller import SimController
from firmware_sim.status import ChannelFrame, PhaseBitmaps, UnitStatus

WIDTH: Final = 80
_CELL: Final = 12
_RED, _YELLOW, _GREEN = "bold red", "bold yellow", "bold green"
_BLOCK: Final = "■"


@dataclass(frozen=True, kw_only=True, slots=True)
class ViewInfo:
    """What the view shows besides the controller: the runner's figures."""

    speed: float
    requests: int
    dropped: int
    endpoints: tuple[str, ...] = ()


def _clock(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _phase_cell(phase: int, bits: PhaseBitmaps) -> Text:
    mask = 1 << (phase - 1)
    if bits.greens & mask:
        style, letter = _GREEN, "G"
    elif bits.yellows & mask:
        style, letter = _YELLOW, "Y"
    else:
        style, letter = _RED, "R"
    ped = ""
    if bits.walks & mask:
        ped = "WALK"
    elif bits.ped_clears & mask:
        ped = "FDW"
    elif bits.dont_walks & mask:
        ped = "DW"
    cell = Text(f"{phase:>2} ")
    cell.append(_BLOCK, style=style)
    cell.append(f" {letter} {ped}")
    cell.pad_right(_CELL - cell.cell_len)
    return cell


def _rings(controller: SimController) -> list[tuple[int, ...]]:
    db = controller.database
    sequence = db.sequences.get(1)
    if sequence is not None and any(sequence.rings):
        return [ring for ring in sequence.rings if ring]
    by_ring: dict[int, list[int]] = {}
    for phase in db.active_phases():
        by_ring.setdefault(db.phases[phase].ring, []).append(phase)
    return [tuple(by_ring[ring]) for ring in sorted(by_ring)]


def _loads(frame: ChannelFrame) -> Text:
    text = Text("loads    ")
    for channel in range(1, 17):
        mask = 1 << (channel - 1)
        if frame.greens & mask:
            style = _GREEN
        elif frame.yellows & mask:
            style = _YELLOW
        elif frame.reds & mask:
            style = _RED
        else:
            style = "dim"
        text.append(_BLOCK if style != "dim" else "·", style=style)
        if channel in (8, 12):
            text.append(" ")
    text.append("  (channels 1-16")
    text.append(", flashing)" if frame.flashing else ")")
    return text


def _header(status: UnitStatus, info: ViewInfo) -> list[Text]:
    local = status.global_time + status.utc_offset_s
    top = Text("greenwave-sim", style="bold")
    top.append(f"  {_clock(status.global_time)}Z  local {_clock(local)[11:]}")
    top.append(f"  x{info.speed:.1f}  {status.mode.value}")
    pattern = status.coord_pattern_status
    name = {254: "free", 255: "flash", 0: "none"}.get(pattern, str(pattern))
    second = Text(f"pattern {name}  {status.cycle_state.name.lower().replace('_', ' ')}")
    second.append(f" ({ntcip_name(status.local_free_status)})")
    if status.cycle_length_ds:
        second.append(f"  cycle {status.local_cycle_ds // 10}/{status.cycle_length_ds // 10} s")
    second.append(f"  control {ntcip_name(status.unit_control_status)}")
    backup = (
        f"{status.backup_remaining_ds // 10}/{status.unit_backup_time} s"
        if status.unit_backup_time
        else "off"
    )
    third = Text(f"flash {ntcip_name(status.unit_flash_status)}  backup {backup}  MMU ")
    if status.mmu_fault:
        third.append(status.mmu_fault, style="bold red")
    else:
        third.append("ok", style="green")
    third.truncate(WIDTH, overflow="ellipsis")
    return [top, second, third]


def render(controller: SimController, info: ViewInfo) -> Group:
    """One frame of the view, at most :data:`WIDTH` columns wide."""
    status = controller.status()
    lines = _header(status, info)
    for number, ring in enumerate(_rings(controller), start=1):
        line = Text(f"ring {number}   ")
        for phase in ring[: (WIDTH - 9) // _CELL]:
            line.append_text(_phase_cell(phase, status.phases))
        lines.append(line)
    lines.append(_loads(status.channels))
    footer = Text(f"requests {info.requests}  dropped {info.dropped}  ")
    footer.append("  ".join(info.endpoints))
    footer.truncate(WIDTH, overflow="ellipsis")
    lines.append(footer)
    for line in lines:
        line.no_wrap = True
        line.truncate(WIDTH)
    return Group(*lines)


class LiveView:
    """Keeps :func:`render` on screen; other output scrolls above it."""

    def __init__(self, console: Console | None = None) -> None:
        """Draw on ``console`` (default: standard output)."""
        self._console = console or Console()
        self._live: Live | None = None

    def start(self) -> None:
        """Take over the bottom of the terminal."""
        self._live = Live(
            console=self._console,
            auto_refresh=False,
            redirect_stdout=True,
            redirect_stderr=True,
            transient=False,
        )
        self._live.start()

    def refresh(self, controller: SimController, info: ViewInfo) -> None:
        """Redraw from the controller's current state."""
        if self._live is not None:
            self._live.update(render(controller, info), refresh=True)

    def stop(self) -> None:
        """Leave the last frame on screen and give the terminal back."""
        if self._live is not None:
            self._live.stop()
            self._live = None
