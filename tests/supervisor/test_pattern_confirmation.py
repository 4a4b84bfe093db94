"""The second ``failed``: a pattern acknowledged ``applied`` that does not run within three cycles.

``applied`` for ``control.pattern`` means only that the controller reads the
commanded pattern back. The handler then watches the status stream; if the
pattern is not *running* after the cycle in progress at its activation (the
controller changes pattern at that cycle's end, SPEC §4) and three cycles of
it (plus 2 s),
it sends a second ack for the same jti, ``failed`` ``E_CONTROLLER`` (SPEC §4,
``CommandHandler._watch``).

The watch runs on the event loop's clock: a cycle of the example plan's
pattern 1 (120 s) and three of its pattern 2 (90 s) are 392 s of real time,
whatever the simulator process's speed. So every test here runs on an event
loop whose clock jumps to the next timer whenever nothing is ready (trio's
autojump ``MockClock``): the 392 s take a moment, and the bound is checked to
a tenth of a second.

Two cabinets:

* the simulator's controller (``firmware_sim.SimController``, the engine
  behind ``greenwave-sim``) reached through the agent's own NTCIP driver and
  status poller, its SNMP responder in memory and its time stepped with the
  loop's. It takes ``systemPatternControl = 2`` and reads it back, yet does
  not run pattern 2 when its MMU has latched flash, or when its own copy of
  pattern 2 is one it cannot run (it runs free, ``splitOverrun``);
* a double that reports whatever the test says it runs, for the exact
  boundary and a timed activation.
"""

from __future__ import annotations

import asyncio
import json
import selectors
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from agent.backoff import Clock
from agent.central.commands import AckStatus
from agent.central.signing import new_jti
from agent.controller.interface import (
    Alarms,
    Controller,
    ControllerIdentity,
    ControllerStatus,
    ControlSource,
    FlashState,
    PatternCommand,
    PhaseConfig,
    RunningPattern,
    WriteReport,
)
from agent.controller.ntcip.driver import NtcipController
from agent.controller.poller import PollSettings, StatusPoller
from agent.controller.transport import UDP_MAX_MESSAGE, Inbox, LinkCounters
from agent.errors import LinkDown
from agent.plan.limits import SiteLimits
from agent.plan.model import Plan
from agent.plan.validator import validate_plan
from agent.supervisor.commands import CommandHandler, StatusSource
from agent.supervisor.store import CommandStore
from firmware_sim.controller import SimConfig, SimController
from firmware_sim.mmu import FaultKind
from firmware_sim.ntcip_responder import NtcipResponder
from tests.central.world import T0, FakeClock, World
from tests.simfront.helpers import EXAMPLE_PLAN, MONDAY_0700, coordinated
from tests.supervisor.conftest import AckLog

#: The example plan's pattern 1 runs a 120 s cycle; the longest a site allows, 180 s.
P1_CYCLE_S, CYCLE_MAX_S = 120.0, 180.0


def bound(lead_s: float) -> float:
    """The watch on pattern 2 (90 s): the cycle in progress, 3 cycles, 2 s of slack."""
    return lead_s + 3 * 90 + 2.0


def failed_detail(lead_s: float, seen: str) -> str:
    return (
        f"pattern 2 not running {bound(lead_s):.0f} s after activation "
        f"(the cycle in progress, {lead_s:.0f} s, then 3 cycles); {seen}"
    )


#: From pattern 1, which the tests' controllers run when pattern 2 is commanded.
BOUND_S = bound(P1_CYCLE_S)


def example_plan(**pattern_changes: dict[str, Any]) -> Plan:
    """The example plan, with changes to some of its patterns (by pattern number)."""
    doc: dict[str, Any] = json.loads(EXAMPLE_PLAN.read_text())
    for pattern in doc["patterns"]:
        pattern.update(pattern_changes.get(f"p{pattern['pattern']}", {}))
    return Plan.model_validate_json(json.dumps(doc))


# -- an event loop on virtual time ------------------------------------------------------


class _AutojumpSelector(selectors.SelectSelector):
    """Never blocks: when nothing is ready, the virtual clock jumps by the timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise AssertionError("every task waits and no timer is set: the test would hang")
        self.now += timeout
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` moves only by jumping to the next timer."""

    def __init__(self) -> None:
        self._jumps = _AutojumpSelector()
        super().__init__(self._jumps)

    def time(self) -> float:
        return self._jumps.now


class LoopClock(Clock):
    """The poller's clock: the loop's."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop

    def monotonic(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# -- the simulator's controller, in memory -----------------------------------------------


class SimLink:
    """An SNMP message link whose far end is the simulator's NTCIP responder, in memory.

    Before each request the simulated controller is stepped up to the loop's
    time, so it runs exactly as long as the agent waits.
    """

    description = "simulator in memory"
    max_message = UDP_MAX_MESSAGE

    def __init__(self, sim: SimController, loop: VirtualTimeLoop) -> None:
        self.sim = sim
        self.loop = loop
        self.responder = NtcipResponder(sim)
        self.counters = LinkCounters()
        self._inbox: Inbox | None = None
        self._sim_ms_at_zero = sim.now_ms - round(loop.time() * 1000)

    @property
    def is_open(self) -> bool:
        return self._inbox is not None

    async def open(self) -> None:
        if self._inbox is None:
            self._inbox = Inbox(self.counters)

    async def close(self) -> None:
        if self._inbox is not None:
            self._inbox.fail(LinkDown("closed"))
            self._inbox = None

    def send(self, message: bytes) -> None:
        if self._inbox is None:
            raise LinkDown("closed")
        behind = self._sim_ms_at_zero + round(self.loop.time() * 1000) - self.sim.now_ms
        if behind > 0:
            self.sim.step_ms(behind)
        self.counters.sent += 1
        answer = self.responder.handle(message)
        if answer is not None:
            self._inbox.put(answer)

    def wire_seconds(self, nbytes: int) -> float:
        return 0.0

    async def receive(self) -> bytes:
        if self._inbox is None:
            raise LinkDown("closed")
        return await self._inbox.get()


def simulator(plan: Plan) -> SimController:
    """The simulator's controller holding ``plan``, running pattern 1 coordinated."""
    return coordinated(SimController.from_plan(plan, config=SimConfig(epoch_s=MONDAY_0700)), 1)


# -- a cabinet double: what the controller holds, and what it runs -----------------------


class Cabinet:
    """A controller double and its status stream (the poller's part of the interface).

    ``command_pattern`` is confirmed at once, as by a read-back; what actually
    runs changes only when the test says so (:meth:`runs`).
    """

    endpoint = "cabinet-double"
    connected = True

    def __init__(self, running: RunningPattern, flash: FlashState = FlashState.NOT_FLASH) -> None:
        self.commands: list[PatternCommand] = []
        self._status = self._make(running, flash, "standby")
        self._changed = asyncio.Condition()

    @staticmethod
    def _make(
        running: RunningPattern, flash: FlashState, commanded: PatternCommand
    ) -> ControllerStatus:
        return ControllerStatus(
            received_at=0.0,
            phases=(),
            pattern=running,
            commanded=commanded,
            free_status="not_free",
            cycle_time_s=0,
            control=ControlSource.SYSTEM,
            flash=flash,
            alarms=Alarms(),
        )

    async def runs(self, running: RunningPattern) -> None:
        """The controller now reports ``running`` (after its transition, say)."""
        async with self._changed:
            self._status = self._make(running, FlashState.NOT_FLASH, self._status.commanded)
            self._changed.notify_all()

    # StatusSource
    @property
    def latest(self) -> ControllerStatus | None:
        return self._status

    async def wait_for(self, predicate: Callable[[ControllerStatus], bool]) -> ControllerStatus:
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self._status))
            return self._status

    # Controller
    async def command_pattern(self, command: PatternCommand) -> None:
        self.commands.append(command)
        self._status = self._make(self._status.pattern, self._status.flash, command)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def read_status(self) -> ControllerStatus:
        return self._status

    async def read_identity(self) -> ControllerIdentity:
        raise AssertionError("not used by the command handler")

    async def read_phases(self) -> tuple[PhaseConfig, ...]:
        raise AssertionError("not used by the command handler")

    async def write_plan(self, plan: Plan) -> WriteReport:
        raise AssertionError("the plan is stored as confirmed before each test")

    async def set_backup_time(self, seconds: int) -> None:
        raise AssertionError("not used by the command handler")

    async def set_clock(self, epoch_s: int) -> None:
        raise AssertionError("not used by the command handler")


# -- the handler on either cabinet --------------------------------------------------------


class Bench:
    """A running command handler, ``plan`` stored as confirmed by the controller."""

    def __init__(
        self,
        loop: VirtualTimeLoop,
        state_dir: Path,
        plan: Plan,
        controller: Controller,
        status: StatusSource,
    ) -> None:
        state_dir.mkdir()
        # The verifier's clock stays at T0: every command is signed and taken at once.
        self.world = World(state_dir=state_dir, clock=FakeClock(T0))
        store = CommandStore.open(state_dir)
        store.store_plan(plan, jti=None, now=T0)
        store.mark_plan_applied()
        self.loop = loop
        self.acks = AckLog()
        self.handler = CommandHandler(
            device_id="cabinet-17",
            verifier=self.world.verifier,
            controller=controller,
            status=status,
            store=store,
            limits=SiteLimits(),
            acks=self.acks,
            events=lambda event: None,
            wall=self.wall,
        )

    def wall(self) -> float:
        """The handler's wall clock: T0 at the start, moving with the loop."""
        return T0 + self.loop.time()

    def send(self, cmd: str, args: dict[str, Any]) -> str:
        jti = new_jti()
        self.handler.intake("t", self.world.token(cmd, jti=jti, args=args).encode())
        return jti

    async def applied(self, jti: str) -> float:
        """Wait for the ``applied`` ack of ``jti``; the loop time it came at."""
        await self.acks.wait(jti, AckStatus.APPLIED, within=1000)
        return self.loop.time()

    async def until(self, t: float) -> None:
        """Let the loop run up to its time ``t``."""
        await asyncio.sleep(t - self.loop.time())


Body = Callable[[Bench], Coroutine[Any, Any, None]]


def on_double(tmp_path: Path, cabinet: Cabinet, body: Body) -> None:
    """Run ``body`` on virtual time against a handler driving ``cabinet``."""

    async def main(loop: VirtualTimeLoop) -> None:
        bench = Bench(loop, tmp_path / "state", example_plan(), cabinet, cabinet)
        async with asyncio.TaskGroup() as group:
            worker = group.create_task(bench.handler.run(), name="handler")
            try:
                await body(bench)
            finally:
                worker.cancel()

    _run_virtual(main)


def on_simulator(tmp_path: Path, plan: Plan, sim: SimController, body: Body) -> None:
    """Run ``body`` on virtual time against a handler and poller on the simulator's controller."""

    async def main(loop: VirtualTimeLoop) -> None:
        controller = NtcipController(SimLink(sim, loop))
        poller = StatusPoller(controller, PollSettings(rate_hz=2), clock=LoopClock(loop))
        bench = Bench(loop, tmp_path / "state", plan, controller, poller)
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(poller.run(), name="poller"),
                group.create_task(bench.handler.run(), name="handler"),
            ]
            try:
                async with asyncio.timeout(10):
                    await poller.wait_link(True)
                await body(bench)
            finally:
                for task in tasks:
                    task.cancel()

    _run_virtual(main)


def _run_virtual(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, None]]) -> None:
    loop = VirtualTimeLoop()
    try:
        loop.run_until_complete(main(loop))
    finally:
        loop.close()


# -- on the simulator's controller ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cabinet", "seen", "flash", "lead_s"),
    [
        # In flash no cycle is known: the watch allows the longest the site allows.
        pytest.param(
            "mmu-flash", "it runs flash", FlashState.MMU, CYCLE_MAX_S, id="latched-in-mmu-flash"
        ),
        pytest.param(
            "split-overrun",
            "it runs free",
            FlashState.NOT_FLASH,
            P1_CYCLE_S,
            id="its-pattern-2-overruns",
        ),
    ],
)
def test_a_controller_that_holds_the_pattern_but_does_not_run_it_gets_a_second_failed(
    tmp_path: Path, cabinet: str, seen: str, flash: FlashState, lead_s: float
) -> None:
    plan = example_plan()
    if cabinet == "mmu-flash":
        sim = simulator(plan)
        sim.inject(FaultKind.CONFLICT)
        sim.step(1)
        assert sim.status().mmu_fault is not None
    else:
        # The controller's own pattern 2 was changed at the front panel: 100 s of
        # splits in ring 1 of a 90 s cycle. The agent's confirmed plan is unchanged.
        sim = simulator(example_plan(p2={"splits": {**_splits(plan, 2), "2": 48}}))

    async def body(bench: Bench) -> None:
        jti = bench.send("control.pattern", {"pattern": 2})
        applied_at = await bench.applied(jti)
        assert sim.system_pattern_control == 2, "the controller holds pattern 2"
        failed = await bench.acks.wait(jti, AckStatus.FAILED, within=bound(lead_s) + 10)
        assert bench.loop.time() == pytest.approx(applied_at + bound(lead_s), abs=0.1)
        assert failed.code == "E_CONTROLLER"
        assert failed.detail == failed_detail(lead_s, seen)
        assert bench.acks.of(jti) == [
            ("accepted", "OK"),
            ("applied", "OK"),
            ("failed", "E_CONTROLLER"),
        ]
        # What central finds in ``state.signal``: pattern 2 commanded, and why it does not run.
        status = bench.handler.status.latest
        assert status is not None
        assert (status.commanded, status.flash) == (2, flash)
        if cabinet == "split-overrun":
            assert status.free_status == "split_overrun"

    on_simulator(tmp_path, plan, sim, body)


def test_a_pattern_the_controller_runs_gets_no_second_ack(tmp_path: Path) -> None:
    plan = example_plan()
    sim = simulator(plan)

    async def body(bench: Bench) -> None:
        jti = bench.send("control.pattern", {"pattern": 2})
        applied_at = await bench.applied(jti)
        await bench.until(applied_at + BOUND_S + 30)
        assert sim.status().coord_pattern_status == 2
        assert bench.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]
        assert bench.handler.stats.failed == 0

    on_simulator(tmp_path, plan, sim, body)


def test_a_change_from_a_long_cycle_to_a_short_one_is_not_failed(tmp_path: Path) -> None:
    """A plan the validator accepts: pattern 1 at 180 s (the default ``cycle_max``), 2 at 52 s.

    Regression: the watch once counted only 3 cycles of the new pattern (158 s)
    from activation, and a controller switching at the end of pattern 1's
    cycle, as it should, got a false ``failed``.
    """
    plan = example_plan(
        p1={
            "cycle": 180,
            "splits": {"1": 27, "2": 78, "3": 22, "4": 53, "5": 24, "6": 81, "7": 21, "8": 54},
        },
        p2={
            "cycle": 52,
            "ped_phases": [],
            "splits": {"1": 10, "2": 18, "3": 10, "4": 14, "5": 10, "6": 18, "7": 10, "8": 14},
        },
    )
    assert validate_plan(plan, SiteLimits()).ok
    sim = simulator(plan)  # just past a cycle boundary of pattern 1

    async def body(bench: Bench) -> None:
        jti = bench.send("control.pattern", {"pattern": 2})
        applied_at = await bench.applied(jti)
        async with asyncio.timeout(200):
            await bench.handler.status.wait_for(lambda status: status.pattern == 2)
        # It changes at the end of pattern 1's cycle, as SPEC §4 says it does.
        assert 3 * 52 + 2 < bench.loop.time() - applied_at <= 180
        await bench.until(applied_at + 3 * 180 + 2)
        assert bench.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]

    on_simulator(tmp_path, plan, sim, body)


def _splits(plan: Plan, number: int) -> dict[str, int]:
    pattern = next(p for p in plan.patterns if p.pattern == number)
    return {str(phase): round(split) for phase, split in pattern.splits.items()}


# -- on a double: the exact bound, a timed activation, a newer command --------------------


@pytest.mark.parametrize("activate_in", [0, 100], ids=["now", "activate-at-plus-100s"])
def test_the_second_failed_comes_three_cycles_and_2_s_after_activation(
    tmp_path: Path, activate_in: int
) -> None:
    cabinet = Cabinet(1)

    async def body(bench: Bench) -> None:
        args: dict[str, Any] = {"pattern": 2}
        if activate_in:
            args["activate_at"] = T0 + activate_in
        jti = bench.send("control.pattern", args)
        applied_at = await bench.applied(jti)
        assert applied_at == pytest.approx(activate_in, abs=0.01)
        assert cabinet.commands == [2]
        # Just inside three cycles of the activation: nothing more is said.
        await bench.until(applied_at + BOUND_S - 0.1)
        assert bench.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]
        failed = await bench.acks.wait(jti, AckStatus.FAILED, within=1)
        assert bench.loop.time() == pytest.approx(applied_at + BOUND_S, abs=0.1)
        assert (failed.jti, failed.cmd, failed.code) == (jti, "control.pattern", "E_CONTROLLER")
        assert failed.detail == failed_detail(P1_CYCLE_S, "it runs 1")
        # One second ack, never repeated.
        await bench.until(bench.loop.time() + 10 * BOUND_S)
        assert len(bench.acks.of(jti)) == 3
        assert (bench.handler.stats.applied, bench.handler.stats.failed) == (1, 1)

    on_double(tmp_path, cabinet, body)


@pytest.mark.parametrize(
    "starts_after",
    [
        pytest.param(None, id="already-running"),
        pytest.param(95.0, id="after-one-cycle"),
        pytest.param(BOUND_S - 0.5, id="just-inside-three-cycles"),
    ],
)
def test_a_pattern_running_in_time_gets_no_second_ack(
    tmp_path: Path, starts_after: float | None
) -> None:
    cabinet = Cabinet(2 if starts_after is None else 1)

    async def body(bench: Bench) -> None:
        jti = bench.send("control.pattern", {"pattern": 2})
        applied_at = await bench.applied(jti)
        if starts_after is not None:
            await bench.until(applied_at + starts_after)
            await cabinet.runs(2)
        await bench.until(applied_at + 10 * BOUND_S)
        assert bench.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]
        assert bench.handler.stats.failed == 0

    on_double(tmp_path, cabinet, body)


def test_a_newer_command_ends_the_watch(tmp_path: Path) -> None:
    """Released to the local schedule before the bound: the pattern command gets no ``failed``."""
    cabinet = Cabinet(1)

    async def body(bench: Bench) -> None:
        jti = bench.send("control.pattern", {"pattern": 2})
        applied_at = await bench.applied(jti)
        await bench.until(applied_at + BOUND_S / 2)
        release = bench.send("control.release", {})
        await bench.applied(release)
        await bench.until(applied_at + 10 * BOUND_S)
        assert bench.acks.of(jti) == [("accepted", "OK"), ("applied", "OK")]
        assert cabinet.commands == [2, "standby"]
        assert bench.handler.stats.failed == 0

    on_double(tmp_path, cabinet, body)
