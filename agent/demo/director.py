"""The director: sets the corridor up, plays central through the acts, judges the result.

One :class:`Director` per run. :meth:`Director.run` owns every task of the
demo in one ``asyncio.TaskGroup`` (following the agents' logs, the live
view, reading the controllers for the view) and every child process (the
:class:`~agent.demo.children.Children` it stops on the way out, whatever the
way out is: the end, an error, Ctrl-C, SIGTERM).

The acts (:func:`agent.demo.story.acts`) and what each one waits for::

    setup            broker, simulators, DEMO keys, agents   → every agent ready
    plans            plan.load to each intersection          → applied (read back)
    1 green wave     control.pattern 1, one activate_at      → applied, every agent central
    2 central silent heartbeats stop (broker up)             → every agent local ≤ timeout + 1 s
    3 central back   heartbeats, control.pattern 1           → every agent central
    4 network cut    the broker stops                        → every agent local ≤ timeout + 1 s
    5 network back   the broker starts, heartbeats flow      → every agent reconnected, still local
    6 central again  control.pattern 1                       → every agent central

An act that does not get what it waits for is noted and the story goes on:
the verdict at the end says what was missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from agent.central.client import BrokerSettings, CentralClient, CentralError
from agent.central.commands import Ack, AckStatus
from agent.controller.factory import make_controller
from agent.controller.url import parse_controller_url
from agent.demo import DemoError
from agent.demo.agentlog import LogFollower
from agent.demo.board import Board
from agent.demo.broker import BrokerKind, BrokerProcess, choose_broker
from agent.demo.children import Children
from agent.demo.corridor import (
    COORD_PHASE,
    GREEN_WAVE,
    GROUP,
    HEARTBEAT_TIMEOUT_S,
    SIM_MIDNIGHT,
    SIM_PATTERN_END,
    DemoKeys,
    Intersection,
    SimClock,
    corridor_plans,
)
from agent.demo.story import (
    ACTIVATE_LEAD_S,
    Act,
    Coordination,
    Fallback,
    ModeChange,
    Verdict,
    acts,
    hold_s,
    offset_errors,
    seconds,
)
from agent.errors import GreenwaveError
from agent.logs import get_logger

log = get_logger("demo.director")

#: Central's heartbeat period (well inside the agents' 3 s timeout).
HEARTBEAT_EVERY_S = 0.5
#: A coordinated green start this far from its planned moment counts as off plan (s).
OFFSET_TOLERANCE_S = 0.5
#: How long the interactive view reads each controller (s).
VIEW_POLL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What ``greenwave demo`` was asked for (validated by the CLI)."""

    workdir: Path
    duration_s: float = 60.0
    speed: float = 10.0
    intersections: int = 5
    headless: bool = False
    broker: BrokerKind = "auto"


class Reporter(Protocol):
    """Where the story goes: the live view or plain lines."""

    def say(self, at_s: float, text: str) -> None:
        """One line of the story."""
        ...

    def mode_changed(self, change: ModeChange) -> None:
        """An agent changed mode."""
        ...

    async def run(self, board: Board) -> None:
        """Show ``board`` until cancelled (returns at once when there is nothing to refresh)."""
        ...


class _Beats:
    """Central's heartbeats while a block runs; :meth:`stop` ends them after a whole beat."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.last_wall = 0.0
        self.sent = 0
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def stop(self) -> float:
        """Stop beating; the wall time of the last heartbeat the broker took."""
        self.stopping.set()
        if self.task is not None:
            await self.task
        self.board.heartbeats = False
        self.board.touch()
        return self.last_wall


async def _together(*coros: Coroutine[Any, Any, None]) -> None:
    """Run ``coros`` concurrently; the first failure cancels the others and is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None


class Director:
    """One run of the demo (see the module docstring)."""

    def __init__(self, options: DemoOptions, reporter: Reporter) -> None:
        self.options = options
        self.reporter = reporter
        self.workdir = options.workdir
        self.children = Children()
        plans = corridor_plans(options.intersections)
        self.intersections = [
            Intersection(device=device, index=i, plan_path=path, root=self.workdir / device)
            for i, (device, path) in enumerate(plans)
        ]
        self.devices = tuple(x.device for x in self.intersections)
        self.board = Board(self.devices, t0_wall=time.time())
        self.keys = DemoKeys.generate()
        self.acts = acts(HEARTBEAT_TIMEOUT_S)
        self.fallbacks: list[Fallback] = []
        self.coordination: list[Coordination] = []
        self.problems: list[str] = []
        self.broker: BrokerProcess | None = None
        self.clock: SimClock | None = None
        self._story_started_wall: float | None = None
        #: The long-lived tasks that end with the story (log follower, view, readers).
        self._background: list[asyncio.Task[None]] = []
        #: Devices whose agent exited (reported once).
        self._dead: set[str] = set()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> Verdict:
        """Play the whole demo; the verdict. Every child is stopped on the way out.

        Raises :class:`DemoError` when the demo breaks down (a process that
        does not start, central losing the broker outside the acts …).
        """
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                self._background = [
                    tasks.create_task(self._follow_logs(), name="demo-agent-logs"),
                    tasks.create_task(self.reporter.run(self.board), name="demo-view"),
                ]
                try:
                    await self._story(tasks)
                except GreenwaveError as err:
                    failure = err
                finally:
                    for task in self._background:
                        task.cancel()
        except BaseExceptionGroup as group:  # a background task failed
            failure = group.exceptions[0]
        finally:
            self.board.act = "stopping"
            await self.children.stop_all()
        if isinstance(failure, DemoError):
            raise failure
        if isinstance(failure, CentralError):
            raise DemoError(f"central lost the broker unexpectedly: {failure}") from failure
        if failure is not None:
            raise DemoError(f"{type(failure).__name__}: {failure}") from failure
        return self.verdict()

    @property
    def story_started(self) -> bool:
        """True once every agent ran and the acts began."""
        return self._story_started_wall is not None

    def verdict(self) -> Verdict:
        """The verdict on what happened so far."""
        return Verdict(
            timeline=self.board.timeline,
            fallbacks=tuple(self.fallbacks),
            coordination=tuple(self.coordination),
            problems=tuple(self.problems),
        )

    def say(self, text: str) -> None:
        self.reporter.say(self.board.t(time.time()), text)
        log.info("demo_story", text=text)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.say(f"PROBLEM: {text}")

    # -- background tasks --------------------------------------------------------------------

    async def _follow_logs(self) -> None:
        followers = [LogFollower(x.device, x.agent_log) for x in self.intersections]
        while True:
            for follower in followers:
                for record in follower.read():
                    change = self.board.apply(record)
                    if change is not None:
                        self.reporter.mode_changed(change)
            await asyncio.sleep(0.1)

    async def _read_controller(self, intersection: Intersection) -> None:
        """Read the controller for the live view (what the cabinet shows, link or not)."""
        endpoint = parse_controller_url(f"udp://127.0.0.1:{intersection.udp_port}")
        controller = make_controller(endpoint)
        row = self.board.rows[intersection.device]
        try:
            await controller.open()
        except (GreenwaveError, OSError):
            return  # the view shows "no answer"; the story does not need it
        try:
            while True:
                try:
                    row.status = await controller.read_status()
                except (GreenwaveError, OSError):
                    row.status = None
                await asyncio.sleep(VIEW_POLL_S)
        finally:
            await controller.close()

    # -- the story ------------------------------------------------------------------------------

    async def _story(self, tasks: asyncio.TaskGroup) -> None:
        await self._set_up(tasks)
        story = self.acts
        async with self._central() as client:
            await self._load_plans(client)
            async with self._heartbeats(client) as beats:
                await self._act_command(client, story, 0)
                self._begin(story, 1)
                last_beat = await beats.stop()
                await self._act_fallback(story, 1, cut_wall=last_beat, cause="heartbeats stopped")
            async with self._heartbeats(client) as beats:
                await self._act_command(client, story, 2)
                await beats.stop()
        await self._act_network_cut(story, 3)
        await self._act_network_back(story, 4, 5)
        self._check_agents_alive()
        self.board.act = "done"
        self._check_coordination()

    def _begin(self, story: Sequence[Act], index: int) -> None:
        self._check_agents_alive()
        act = story[index]
        self.board.act = f"{index + 1}/{len(story)} {act.name}"
        self.say(f"act {index + 1}/{len(story)} — {act.title}")

    async def _hold(self, story: Sequence[Act], index: int) -> None:
        elapsed = time.time() - self.board.t0_wall
        await asyncio.sleep(
            hold_s(story[index:], elapsed_s=elapsed, duration_s=self.options.duration_s)
        )

    async def _set_up(self, tasks: asyncio.TaskGroup) -> None:
        options = self.options
        n = len(self.intersections)
        self.say(f"greenwave demo: Main St green-wave corridor, {n} signal(s), loopback only")
        self.say(f"work directory: {self.workdir}")
        self.broker = choose_broker(options.broker, self.workdir / "broker", self.children)
        await self.broker.start()
        self.board.broker_up = True
        self.say(f"broker: {self.broker.description} on {self.broker.host}:{self.broker.port}")

        self.clock = clock = SimClock.starting_now(options.speed)
        self.board.sim_time = clock.sim_time
        await _together(
            *(x.start_sim(self.children, clock, timeout_s=30) for x in self.intersections)
        )
        self.say(f"simulators: {n} NEMA controllers (NTCIP 1202/UDP), {options.speed:g}x real time")
        now = datetime.fromtimestamp(clock.sim_time(time.time()), tz=UTC)
        self.say(f"corridor clock: {now:%A %H:%M}, the local plan's AM green wave (pattern 1)")
        self.keys.write(self.workdir / "central")
        for x in self.intersections:
            x.provision(self.keys, broker_port=self.broker.port, clock=clock, count=n)
        self.say("keys: DEMO root and command keys of tms.demo, trusted for 24 h")
        self.say('clock: [clock] trust = "always" (a demo machine may not be NTP-synced)')
        for x in self.intersections:
            await x.start_agent(self.children)
        if not options.headless:
            self._background += [
                tasks.create_task(self._read_controller(x), name=f"demo-view-{x.device}")
                for x in self.intersections
            ]
        await self._wait_agents_ready(timeout_s=30)
        modes = sorted({self.board.timeline.mode(d) for d in self.devices})
        self.say(f"agents: {n} running, all {' / '.join(modes)}: each controller on its own plan")
        self._story_started_wall = time.time()

    async def _wait_agents_ready(self, *, timeout_s: float) -> None:
        """Wait until every agent runs (both links up); fail at once when one exits."""
        deadline = time.monotonic() + timeout_s
        while not await self.board.wait_until(self.board.all_ready, timeout_s=0.5):
            for x in self.intersections:
                if x.agent is not None and not x.agent.running:
                    raise DemoError(
                        f"the agent of {x.device} exited at start (status "
                        f"{x.agent.proc.returncode}); the end of {x.agent_log}:\n"
                        + x.agent.log_tail(8)
                    )
            if time.monotonic() > deadline:
                late = [
                    r.device
                    for r in self.board.rows.values()
                    if not (r.ready and r.mqtt_up and r.controller_up)
                ]
                logs = ", ".join(str(self._intersection(d).agent_log) for d in late)
                raise DemoError(
                    f"agent(s) {', '.join(late)} not running after {timeout_s:g} s (see {logs})"
                )

    def _check_agents_alive(self) -> None:
        """Note (once) every agent that is no longer running."""
        for x in self.intersections:
            if x.agent is not None and not x.agent.running and x.device not in self._dead:
                self._dead.add(x.device)
                self.problem(
                    f"the agent of {x.device} exited (status {x.agent.proc.returncode}); "
                    f"see {x.agent_log}"
                )

    def _intersection(self, device: str) -> Intersection:
        return next(x for x in self.intersections if x.device == device)

    @contextlib.asynccontextmanager
    async def _central(self) -> AsyncIterator[CentralClient]:
        assert self.broker is not None
        settings = BrokerSettings(host=self.broker.host, port=self.broker.port, timeout_s=10)
        async with CentralClient(settings) as client:
            yield client

    @contextlib.asynccontextmanager
    async def _heartbeats(self, client: CentralClient) -> AsyncIterator[_Beats]:
        beats = _Beats(self.board)
        beats.task = asyncio.create_task(self._beat(client, beats), name="demo-heartbeats")
        self.board.heartbeats = True
        self.board.touch()
        try:
            yield beats
        finally:
            beats.stopping.set()
            if not beats.task.done():
                beats.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats.task
            self.board.heartbeats = False
            self.board.touch()

    async def _beat(self, client: CentralClient, beats: _Beats) -> None:
        signer = self.keys.signer()
        while not beats.stopping.is_set():
            try:
                await client.heartbeat(signer.heartbeat())
            except CentralError as err:
                self.problem(f"central could not send a heartbeat: {err}")
                return
            beats.last_wall = time.time()
            beats.sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(beats.stopping.wait(), HEARTBEAT_EVERY_S)

    async def _load_plans(self, client: CentralClient) -> None:
        self.board.act = "plans"
        signer = self.keys.signer()

        async def load(x: Intersection) -> None:
            command = signer.sign("plan.load", {"plan": x.plan}, aud=x.device)
            outcome = await client.command(
                command, device=x.device, want=AckStatus.APPLIED, timeout_s=30
            )
            if not outcome.ok:
                self.problem(f"{x.device}: plan.load not applied: {_why(outcome.final, x.device)}")

        await _together(*(load(x) for x in self.intersections))
        versions = sorted({int(x.plan["version"]) for x in self.intersections})
        self.say(
            f"central: plans loaded (version {', '.join(map(str, versions))}): judged safe, "
            "written, read back"
        )

    async def _act_command(self, client: CentralClient, story: Sequence[Act], index: int) -> None:
        """Command the green wave to the whole corridor; wait for every agent in central."""
        self._begin(story, index)
        since = time.time()
        activate_at = since + ACTIVATE_LEAD_S
        command = self.keys.signer().sign(
            "control.pattern",
            {"pattern": GREEN_WAVE, "activate_at": activate_at},
            aud=list(self.devices),
        )
        async with client.acks(self.devices) as acks:
            await client.publish(command, group=GROUP)
            self.say(
                f"central: control.pattern {GREEN_WAVE} to group {GROUP}, one token, "
                f"at t={self.board.t(activate_at):.1f} s"
            )
            outcome = await acks.wait_for(command.jti, want=AckStatus.APPLIED, timeout_s=15)
        for device in self.devices:
            if device not in outcome.reached:
                self.problem(
                    f"{device}: control.pattern not applied: {_why(outcome.final, device)}"
                )
        if not await self.board.wait_until(
            lambda: self.board.all_changed_to("central", since), timeout_s=5
        ):
            late = [
                d for d in self.devices if not self.board.first_change_after(d, "central", since)
            ]
            self.problem(f"not central after the command: {', '.join(late)}")
        if outcome.ok:
            self.say(
                f"central: applied on all {len(self.devices)} (read back from each controller)"
            )
        await self._hold(story, index)

    async def _act_fallback(
        self, story: Sequence[Act], index: int, *, cut_wall: float, cause: str
    ) -> None:
        """Wait for every agent to fall back to local after the cut at ``cut_wall``."""
        limit = HEARTBEAT_TIMEOUT_S + 1
        await self.board.wait_until(
            lambda: self.board.all_changed_to("local", cut_wall), timeout_s=limit + 3
        )
        for device in self.devices:
            change = self.board.first_change_after(device, "local", cut_wall)
            took = None if change is None else self.board.t0_wall + change.at_s - cut_wall
            fallback = Fallback(device=device, cause=cause, took_s=took, limit_s=limit)
            self.fallbacks.append(fallback)
            if not fallback.ok:
                self.problems.append(fallback.describe())
        these = self.fallbacks[-len(self.devices) :]
        if all(f.ok for f in these):
            worst = max(f.took_s or 0.0 for f in these)
            slowest = seconds(worst)
            self.say(f"all {len(these)} local after {cause}: slowest {slowest} (limit {limit:g} s)")
            self.say("the controllers keep the green wave on their own clocks")
        else:
            for fallback in these:
                if not fallback.ok:
                    self.say(f"PROBLEM: {fallback.describe()}")
        await self._hold(story, index)

    async def _act_network_cut(self, story: Sequence[Act], index: int) -> None:
        assert self.broker is not None
        self._begin(story, index)
        cut = time.time()
        await self.broker.stop()
        self.board.broker_up = False
        self.board.touch()
        await self._act_fallback(story, index, cut_wall=cut, cause="broker stopped")

    async def _act_network_back(self, story: Sequence[Act], index: int, last: int) -> None:
        assert self.broker is not None
        self._begin(story, index)
        back = time.time()
        await self.broker.start()
        self.board.broker_up = True
        self.board.touch()
        async with self._central() as client, self._heartbeats(client):
            if not await self.board.wait_until(
                lambda: self.board.all_reconnected(back), timeout_s=10
            ):
                late = [r.device for r in self.board.rows.values() if r.mqtt_up_at < back]
                self.problem(f"not reconnected to the broker after 10 s: {', '.join(late)}")
            self.say("agents back online, hearing central, and still local:")
            self.say("an agent never resumes a stale command by itself")
            await self._hold(story, index)
            resumed = [d for d in self.devices if self.board.timeline.mode(d) == "central"]
            if resumed:
                self.problem(f"went back to central without a new command: {', '.join(resumed)}")
            await self._act_command(client, story, last)

    # -- the green wave, from the simulators' own logs -------------------------------------

    def _check_coordination(self) -> None:
        if self.clock is None or self._story_started_wall is None:
            return
        since = self.clock.sim_time(self._story_started_wall)
        for x in self.intersections:
            pattern = x.pattern(GREEN_WAVE)
            errors = offset_errors(
                _read_events(x.events_path, until=SIM_PATTERN_END),
                phase=COORD_PHASE,
                offset_s=float(pattern["offset"]),
                cycle_s=float(pattern["cycle"]),
                midnight=SIM_MIDNIGHT,
                since=since,
            )
            self.coordination.append(
                Coordination(
                    device=x.device,
                    greens=len(errors),
                    worst_s=max(errors) if errors else None,
                    tolerance_s=OFFSET_TOLERANCE_S,
                )
            )


def _read_events(path: Path, *, until: float) -> list[dict[str, Any]]:
    """The simulator's event records before ``until`` (its clock); unreadable lines skipped."""
    events: list[dict[str, Any]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return events
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and float(record.get("t", 0.0)) < until:
            events.append(record)
    return events


def _why(final: Mapping[str, Ack], device: str) -> str:
    ack = final.get(device)
    if ack is None:
        return "no answer in time"
    return f"{ack.status} {ack.code}: {ack.detail}"
