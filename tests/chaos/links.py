"""Controller-link faults for the chaos tests: the rounds, and a serial cable that can be cut.

:class:`LinkRounds` runs the rounds shared by the serial-cut and the
controller-silence tests: central takes control (``central``), sometimes a
command is in flight, the fault is injected; the agent must report the
controller link down and enter ``fault`` within :data:`DOWN_WITHIN_S`; the
fault lasts a random while; once it is repaired the agent must find the
controller again by itself (no restart) and enter ``local`` within
:data:`UP_WITHIN_S`; an in-flight command accepted before is answered
``applied`` or ``failed``; the agent process never dies; the state files read.

:class:`SerialCable` is the RS-232 line between the agent and the simulator's
pty: a pty of its own, linked at the path the agent opens (``serial://``), and
a thread copying bytes to and from the simulator's pty. It can be **pulled**
(the port stays, bytes are lost both ways: a cable pulled out of the
cabinet) or **unplugged** (the device disappears: the USB serial adapter
pulled out; the agent's reads fail at once) and plugged in again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import select
import termios
import threading
import time
import tty
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

from agent.central.commands import AckStatus
from tests.chaos.rig import (
    PATTERNS,
    Central,
    Chaos,
    command_problems,
    event_problems,
    state_file_problems,
    switch_problems,
)
from tests.e2e.harness import Cabinet, example_plan

#: The agent calls the controller down this soon after it stops answering. The poller
#: alone needs 0.65 s (three 0.15 s polls, a little more on a serial wire). A poll
#: queued behind a command's Set waits for that Set's try to time out (0.5 s), then
#: fails after its own 0.15 s of silence (agent/controller/turns.py), instead of
#: waiting out all three tries. Measured: 0.70 s on UDP, up to 2.1 s on serial with
#: a command in flight (2.2 s and 3.3 s before turns.py). The bound leaves room for
#: a loaded CI machine.
DOWN_WITHIN_S: Final = 3.5
#: ... and finds it again this soon after the line is repaired (reconnect backoff included).
UP_WITHIN_S: Final = 8.0

Fault = Callable[[], Awaitable[None]]


async def start_up_done(cabinet: Cabinet, chaos: Chaos) -> None:
    """Wait until the agent has set the controller's clock (once, soon after it starts)."""
    deadline = time.monotonic() + 15
    while not cabinet.log_records("controller_clock_set"):
        if time.monotonic() > deadline:
            raise chaos.fail("the agent never set the controller's clock")
        await asyncio.sleep(0.05)


class LinkRounds:
    """Rounds of one controller-link fault; what they measured."""

    def __init__(
        self,
        chaos: Chaos,
        cabinet: Cabinet,
        central: Central,
        faults: Mapping[str, tuple[Fault, Fault]],
    ) -> None:
        """``faults``: name -> (inject, repair), one picked at random per round."""
        self.chaos = chaos
        self.cabinet = cabinet
        self.central = central
        self.faults = faults
        self.last_pattern = 0
        self.sent: list[int] = []
        self.applied: list[int] = []
        self.down_s: list[float] = []
        self.up_s: list[float] = []
        self.in_flight = 0
        self.in_flight_failed = 0
        self.count: dict[str, int] = dict.fromkeys(faults, 0)

    async def run(self) -> int:
        """The whole test: start-up, a plan, every round, then the end checks.

        Returns how many controller-offline events central received.
        """
        chaos, central, cabinet = self.chaos, self.central, self.cabinet
        cabinet.start()
        await central.wait_online(after=0)
        await start_up_done(cabinet, chaos)
        _, ack = await central.command("plan.load", {"plan": example_plan(2)})
        chaos.check(ack.status is AckStatus.APPLIED, f"the first plan: {ack}")
        central.beating = True
        for number in range(1, chaos.rounds + 1):
            chaos.round = number
            await self.one()
        central.beating = False
        await central.caught_up()
        problems = command_problems(central)
        problems += event_problems(central)
        problems += switch_problems(cabinet, self.sent, self.applied)
        chaos.check(not problems, "\n".join(problems))
        links = [e for e in central.event_bodies() if e.get("kind") == "controller_link"]
        downs = sum(1 for e in links if not e.get("up"))
        chaos.check(downs >= chaos.faults, f"{downs} link-down events for {chaos.faults}")
        cabinet.stop()
        problems = state_file_problems(cabinet.state_dir, cabinet.device, agent_dead=True)
        chaos.check(not problems, f"state files at the end: {problems}")
        return downs

    def pick(self) -> int:
        pattern = self.chaos.rng.choice([p for p in PATTERNS if p != self.last_pattern])
        self.last_pattern = pattern
        self.sent.append(pattern)
        return pattern

    async def one(self) -> None:
        chaos, central, cabinet = self.chaos, self.central, self.cabinet
        pattern = self.pick()
        _, taken = await central.command("control.pattern", {"pattern": pattern})
        chaos.check(taken.status is AckStatus.APPLIED, f"taking control: {taken}")
        self.applied.append(pattern)
        await central.until("state: mode central", lambda: central.mode() == "central", within=10)
        command = None
        if chaos.rng.random() < 0.5:
            command = central.sign("control.pattern", {"pattern": self.pick()})
            await central.publish(command)
            await asyncio.sleep(chaos.rng.uniform(0, 0.1))
        name = chaos.rng.choice(sorted(self.faults))
        inject, repair = self.faults[name]
        self.count[name] += 1
        await inject()
        chaos.faults += 1
        try:
            took = await central.until(
                "state: controller link down, mode fault",
                lambda: central.controller_link() == "down" and central.mode() == "fault",
                within=DOWN_WITHIN_S + 5,
            )
            self.down_s.append(took)
            chaos.check(took <= DOWN_WITHIN_S, f"{name}: link down reported after {took:.2f} s")
            await asyncio.sleep(chaos.rng.uniform(0.1, 0.6))
            chaos.check(cabinet.proc is not None and cabinet.proc.poll() is None, "agent died")
        finally:
            await repair()
        took = await central.until(
            "state: controller link up, mode local",
            lambda: central.controller_link() == "up" and central.mode() == "local",
            within=UP_WITHIN_S + 5,
        )
        self.up_s.append(took)
        chaos.check(took <= UP_WITHIN_S, f"{name}: link up and local only after {took:.2f} s")
        if command is not None:
            self.in_flight += 1
            jti = command.jti
            if central.acks_of(jti):
                await central.until(
                    "the in-flight command's final ack",
                    lambda: central.final(jti) is not None,
                    within=15,
                )
            final = central.final(jti)
            if final is not None and final.status is AckStatus.APPLIED:
                self.applied.append(self.last_pattern)
            elif final is not None:
                self.in_flight_failed += 1
        chaos.check(cabinet.proc is not None and cabinet.proc.poll() is None, "the agent died")
        problems = state_file_problems(cabinet.state_dir, cabinet.device, agent_dead=False)
        chaos.check(not problems, f"{name}: state files: {problems}")

    def figures(self) -> str:
        faults = ", ".join(f"{count} {name}" for name, count in sorted(self.count.items()))
        return (
            f"{faults}: link down and mode fault within {max(self.down_s):.2f} s max, "
            f"link up and mode local within {max(self.up_s):.2f} s max of the repair, "
            "no agent restart"
        )


def _raw(fd: int) -> None:
    tty.setraw(fd, termios.TCSANOW)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class SerialCable(threading.Thread):
    """The serial line between the agent (at ``port``) and the simulator's pty (at ``far``)."""

    def __init__(self, port: Path, far: Path) -> None:
        super().__init__(name="chaos-serial-cable", daemon=True)
        self.port = port
        self.far = far
        self._far = os.open(far, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        _raw(self._far)
        self._master: int | None = None
        self._slave: int | None = None
        self._pulled = False
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._orders: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self.carried = 0
        self._plug()

    # -- the test's side (any thread) ------------------------------------------------

    def order(self, what: str) -> None:
        """``pull``, ``unplug``, ``plug`` or ``stop``; returns once done."""
        done = threading.Event()
        self._orders.put((what, done))
        os.write(self._wake_w, b"!")
        if not done.wait(5):
            raise AssertionError(f"the serial cable did not {what} within 5 s")

    async def do(self, what: str) -> None:
        await asyncio.to_thread(self.order, what)

    def close(self) -> None:
        if self.is_alive():
            self.order("stop")
            self.join(5)
        for fd in (self._far, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the thread ---------------------------------------------------------------------

    def _plug(self) -> None:
        self._pulled = False
        if self._master is not None:
            return
        master, slave = os.openpty()
        _raw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        with contextlib.suppress(FileNotFoundError):
            self.port.unlink()
        self.port.symlink_to(os.ttyname(slave))

    def _unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.port.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _obey(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 64)
        while True:
            try:
                what, done = self._orders.get_nowait()
            except queue.Empty:
                return
            if what == "pull":
                self._pulled = True
            elif what == "unplug":
                self._unplug()
            elif what == "plug":
                self._plug()
            elif what == "stop":
                self._unplug()
                self._stopping = True
            done.set()

    def run(self) -> None:
        while not self._stopping:
            watched = [self._wake_r, self._far]
            if self._master is not None:
                watched.append(self._master)
            ready, _, _ = select.select(watched, [], [], 0.5)
            if self._wake_r in ready:
                self._obey()
                continue
            for source in ready:
                sink = self._far if source == self._master else self._master
                try:
                    data = os.read(source, 4096)
                except OSError:  # EIO: nobody has the other end open right now
                    time.sleep(0.01)
                    continue
                if self._pulled or sink is None or not data:
                    continue
                with contextlib.suppress(OSError):
                    os.write(sink, data)
                    self.carried += len(data)
