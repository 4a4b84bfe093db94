"""The live picture of the corridor during the demo: one row per intersection, plus the story.

The director writes it (agent log records, controller readings, the acts);
the view reads it. :meth:`Board.wait_until` lets an act wait for a condition
on it ("every agent is local") with a timeout, woken by each change instead
of polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from agent.controller.interface import ControllerStatus
from agent.demo.agentlog import AgentRecord
from agent.demo.story import ModeChange, Timeline


@dataclass
class Row:
    """What one intersection is doing, as far as the demo knows."""

    device: str
    #: The agent's mode ("starting" until its first log record says it runs).
    mode: str = "starting"
    reason: str = ""
    #: Seconds since the demo started, when the mode began.
    mode_since_s: float = 0.0
    ready: bool = False
    #: The agent's MQTT session is up.
    mqtt_up: bool = False
    #: Wall time of the last mqtt_up (epoch s).
    mqtt_up_at: float = 0.0
    controller_up: bool = False
    #: The controller as the demo last read it (interactive view only).
    status: ControllerStatus | None = None


class Board:
    """Rows, the timeline, and the state of the story (see the module docstring)."""

    def __init__(self, devices: tuple[str, ...], *, t0_wall: float) -> None:
        self.devices = devices
        self.t0_wall = t0_wall
        self.rows = {device: Row(device) for device in devices}
        self.timeline = Timeline(devices)
        self.broker_up = False
        self.heartbeats = False
        self.act = "setting up"
        #: The controllers' shared clock at a wall-clock time, once the simulators run.
        self.sim_time: Callable[[float], float] | None = None
        self._changed = asyncio.Event()

    def t(self, wall: float) -> float:
        """Seconds since the demo started, for a wall-clock time."""
        return wall - self.t0_wall

    def touch(self) -> None:
        """Something changed: wake everyone waiting in :meth:`wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool], *, timeout_s: float) -> bool:
        """Wait until ``condition()`` holds; False when it still does not after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while not condition():
                    await self._changed.wait()
        except TimeoutError:
            return condition()
        return True

    def apply(self, record: AgentRecord) -> ModeChange | None:
        """Take one agent log record; the mode change it reports, if any."""
        row = self.rows.get(record.device)
        if row is None:
            return None
        change: ModeChange | None = None
        if record.event == "agent_ready":
            row.ready = True
            if row.mode == "starting":
                row.mode = self.timeline.mode(record.device)
                row.mode_since_s = self.t(record.at)
        elif record.event == "mode_changed":
            change = ModeChange(
                device=record.device,
                before=record.text("before"),
                after=record.text("after"),
                at_s=self.t(record.at),
                reason=record.text("reason"),
            )
            self.timeline.record(change)
            row.mode, row.reason, row.mode_since_s = change.after, change.reason, change.at_s
        elif record.event == "mqtt_up":
            row.mqtt_up, row.mqtt_up_at = True, record.at
        elif record.event == "mqtt_down":
            row.mqtt_up = False
        elif record.event == "controller_link_up":
            row.controller_up = True
        elif record.event == "controller_link_down":
            row.controller_up = False
        else:
            return None
        self.touch()
        return change

    # -- conditions the acts wait for ---------------------------------------------------

    def all_in(self, mode: str) -> bool:
        return all(row.mode == mode for row in self.rows.values())

    def all_ready(self) -> bool:
        return all(row.ready and row.mqtt_up and row.controller_up for row in self.rows.values())

    def all_reconnected(self, since_wall: float) -> bool:
        return all(row.mqtt_up and row.mqtt_up_at >= since_wall for row in self.rows.values())

    def first_change_after(self, device: str, mode: str, since_wall: float) -> ModeChange | None:
        """``device``'s first change into ``mode`` at or after ``since_wall``."""
        since_s = self.t(since_wall)
        for change in self.timeline.changes(device):
            if change.after == mode and change.at_s >= since_s:
                return change
        return None

    def all_changed_to(self, mode: str, since_wall: float) -> bool:
        return all(self.first_change_after(d, mode, since_wall) for d in self.devices)
