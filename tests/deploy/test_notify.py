"""The systemd notify protocol and the honest watchdog (issue 7, acceptance 3).

systemd is played by what it really is to the agent: a unix datagram socket
named in ``NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace),
with ``WATCHDOG_USEC`` cut to a fraction of a second so that a test sees many
periods. Three levels:

- the :class:`Notifier`, :class:`Liveness` and :func:`task_problem` alone;
- the supervisor in this process with its real parts (simulator process,
  mosquitto): READY only once every named task has started, pings while
  healthy, none while the event loop is blocked, none once a link task died;
- the real ``greenwave run`` process: READY after its ``agent_ready`` log
  line, periodic pings, silence while the process is stopped (SIGSTOP), pings
  again after SIGCONT, STOPPING on SIGTERM.

A serial port that cannot even be opened (the USB adapter unplugged) counts
as poller progress (a failed attempt), so the watchdog does not restart an
agent that is patiently waiting for its cable.

Waiting for *nothing* to arrive has to take time; everything else waits on the
socket with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import itertools
import os
import select
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.app import build
from agent.config import load_config
from agent.controller.factory import make_controller
from agent.controller.poller import StatusPoller
from agent.controller.url import parse_controller_url
from agent.supervisor.notify import Liveness, Notifier, task_problem
from tests.broker import Mosquitto
from tests.e2e.harness import Keys, new_cabinet

#: The supervisor's link tasks and the watchdog: each must have started before READY.
LINK_TASKS = (
    "controller-poller",
    "status-fanout",
    "mqtt-link",
    "command-intake",
    "command-worker",
    "acks",
    "spat",
    "state",
    "events-forward",
    "events-sync",
    "central-lease",
    "controller-keeper",
    "watchdog",
)


@dataclass(frozen=True)
class Datagram:
    """One sd_notify message as systemd receives it."""

    fields: dict[str, str]
    at: float

    @property
    def ping(self) -> bool:
        return self.fields.get("WATCHDOG") == "1"

    @property
    def ready(self) -> bool:
        return self.fields.get("READY") == "1"


class NotifySocket:
    """What systemd listens on: a unix datagram socket, a path or ``@name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    @staticmethod
    def _parse(data: bytes) -> Datagram:
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        return Datagram(fields=fields, at=time.monotonic())

    def pending(self) -> list[Datagram]:
        """Every datagram already waiting (without waiting)."""
        out: list[Datagram] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return out
            out.append(self._parse(data))

    def get(self, timeout: float) -> Datagram | None:
        """The next datagram, or None after ``timeout`` seconds."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return None
        return self._parse(self.sock.recv(4096))

    def until(self, want: Callable[[Datagram], bool], timeout: float) -> list[Datagram]:
        """Datagrams up to and including the first one ``want`` accepts."""
        deadline = time.monotonic() + timeout
        seen: list[Datagram] = []
        while (left := deadline - time.monotonic()) > 0:
            got = self.get(left)
            if got is not None:
                seen.append(got)
                if want(got):
                    return seen
        raise AssertionError(f"nothing wanted within {timeout} s; got {seen}")

    def during(self, seconds: float) -> list[Datagram]:
        """Everything that arrives in the next ``seconds``."""
        deadline = time.monotonic() + seconds
        seen: list[Datagram] = []
        while (left := deadline - time.monotonic()) > 0:
            got = self.get(left)
            if got is not None:
                seen.append(got)
        return seen

    async def next(self) -> Datagram:
        """The next datagram (bound the wait with ``asyncio.timeout``)."""
        loop = asyncio.get_running_loop()
        return self._parse(await loop.sock_recv(self.sock, 4096))

    async def first(self, want: Callable[[Datagram], bool]) -> Datagram:
        """The first datagram ``want`` accepts (bound the wait with ``asyncio.timeout``)."""
        while not want(got := await self.next()):
            pass
        return got

    async def during_async(self, seconds: float) -> list[Datagram]:
        """Everything that arrives in the next ``seconds``."""
        seen: list[Datagram] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    seen.append(await self.next())
        return seen


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (``sun_path`` holds 107 bytes; tmp_path may not fit)."""
    path = Path(tempfile.mkdtemp(prefix="gw-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["path", "abstract"])
def notify(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[NotifySocket]:
    """systemd's socket, as a path and in the abstract namespace (``@``)."""
    name = str(short_dir / "notify") if request.param == "path" else abstract_name()
    listener = NotifySocket(name)
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def abstract_notify() -> Iterator[NotifySocket]:
    listener = NotifySocket(abstract_name())
    try:
        yield listener
    finally:
        listener.close()


def abstract_name() -> str:
    return f"@greenwave-test-{uuid.uuid4().hex}"


def systemd_env(monkeypatch: pytest.MonkeyPatch, notify: NotifySocket, usec: int) -> None:
    """The environment systemd gives a ``Type=notify`` unit with ``WatchdogSec=``."""
    monkeypatch.setenv("NOTIFY_SOCKET", notify.name)
    monkeypatch.setenv("WATCHDOG_USEC", str(usec))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)


# -- the Notifier alone ---------------------------------------------------------------


async def test_without_notify_socket_nothing_is_sent_and_the_watchdog_just_waits() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000"})
    assert not notifier.enabled
    assert not notifier.ready("mode local: starting")
    assert not notifier.send("WATCHDOG=1")
    task = asyncio.create_task(notifier.watchdog(lambda: 0))
    await asyncio.sleep(0.01)
    assert not task.done(), "a named task of the group must not end by itself"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_ready_status_and_stopping_reach_the_socket(notify: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify.name})
    assert notifier.ready("mode local: no plan from central yet")
    assert notifier.status("mode central: pattern 2")
    assert notifier.stopping()
    got = [notify.get(1) for _ in range(3)]
    assert [d.fields if d else None for d in got] == [
        {"READY": "1", "STATUS": "mode local: no plan from central yet"},
        {"STATUS": "mode central: pattern 2"},
        {"STOPPING": "1"},
    ]


def test_a_missing_socket_is_logged_not_raised(short_dir: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(short_dir / "nobody-listens")})
    with capture_logs() as logs:
        assert not notifier.ready("up")
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]


@pytest.mark.parametrize(
    ("env", "period"),
    [
        pytest.param({"WATCHDOG_USEC": "20000000"}, 20.0, id="usec"),
        pytest.param({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "self"}, 0.4, id="our-pid"),
        pytest.param({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}, None, id="another-pid"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="not-a-number"),
        pytest.param({}, None, id="unset"),
    ],
)
def test_watchdog_period_comes_from_systemd(env: dict[str, str], period: float | None) -> None:
    if env.get("WATCHDOG_PID") == "self":
        env = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier({"NOTIFY_SOCKET": "@x", **env}).watchdog_s == period


# -- what earns a ping ----------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def test_liveness_wants_progress_within_the_allowance_and_no_problem() -> None:
    now = [100.0]
    polls = Counter()
    problem: list[str | None] = [None]
    live = Liveness(polls, lambda: problem[0], stall_s=10, clock=lambda: now[0])

    def at(t: float, value: int | None = None) -> str | None:
        now[0] = 100.0 + t
        if value is not None:
            polls.value = value
        return live.check()

    assert at(5, value=1) is None  # a poll
    assert at(10) is None  # a controller away: a retry pause, within the allowance
    assert at(15, value=2) is None  # a failed poll is progress too
    assert at(25) is None
    reason = at(25.5)
    assert reason is not None
    assert "no progress for 10.5 s" in reason  # the poller is stuck
    assert at(26, value=3) is None  # and back
    problem[0] = "task mqtt-link was cancelled"
    assert at(27, value=4) == "task mqtt-link was cancelled"  # progress does not excuse it


class StepClock:
    """The poller's clock, moved by the test: sleeps end when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._count, wake))
        await wake

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking each sleeper on its due time."""
        until = self.now + seconds
        while True:
            for _ in range(50):  # let woken tasks run until they sleep again
                await asyncio.sleep(0)
            if not self._sleepers or self._sleepers[0][0] > until:
                break
            self.now, _, wake = heapq.heappop(self._sleepers)
            wake.set_result(None)
        self.now = until


async def test_a_controller_port_that_cannot_be_opened_is_not_a_stuck_poller(
    short_dir: Path,
) -> None:
    """The USB serial adapter is unplugged: the poller retries, the agent stays up."""
    clock = StepClock()
    url = parse_controller_url(f"serial://{short_dir / 'ttyUSB-unplugged'}")
    poller = StatusPoller(make_controller(url), clock=clock)
    live = Liveness(lambda: poller.polls + poller.failures, stall_s=20, clock=clock.monotonic)
    task = asyncio.create_task(poller.run())
    try:
        verdicts = []
        for _ in range(12):  # two minutes, a check every 10 s as with WatchdogSec=20
            await clock.advance(10)
            # pyserial opens the port in a worker thread: give it real time to fail.
            await asyncio.sleep(0.05)
            verdicts.append(live.check())
        assert not poller.link.up
        assert verdicts == [None] * 12
    finally:
        task.cancel()
        await asyncio.wait([task])


async def test_task_problem_names_the_first_task_that_stopped() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def returns() -> None:
        return None

    async def fails() -> None:
        raise RuntimeError("boom")

    alive = asyncio.create_task(forever(), name="mqtt-link")
    assert task_problem([alive]) is None
    ended = asyncio.create_task(returns(), name="command-intake")
    failed = asyncio.create_task(fails(), name="acks")
    cancelled = asyncio.create_task(forever(), name="spat")
    cancelled.cancel()
    await asyncio.wait([ended, failed, cancelled])
    assert task_problem([alive, ended]) == "task command-intake returned"
    assert task_problem([alive, failed]) == "task acks failed: RuntimeError: boom"
    assert task_problem([alive, cancelled]) == "task spat was cancelled"
    alive.cancel()
    await asyncio.wait([alive])


async def test_pings_come_from_the_event_loop_and_stop_while_it_is_blocked(
    abstract_notify: NotifySocket,
) -> None:
    notify = abstract_notify
    ticks = iter(range(1_000_000))
    notifier = Notifier({"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "200000"})
    task = asyncio.create_task(notifier.watchdog(lambda: next(ticks)), name="watchdog")
    try:
        async with asyncio.timeout(2):
            first = await notify.first(lambda d: d.ping)
        async with asyncio.timeout(2):
            second = await notify.first(lambda d: d.ping)
        assert 0.05 < second.at - first.at < 0.3  # every half period (0.1 s), some slip
        notify.pending()
        # A callback that never yields: the loop is blocked for 6 half periods.
        time.sleep(0.6)  # noqa: ASYNC251 - blocking the loop is the point
        assert [d for d in notify.pending() if d.ping] == [], "a ping while the loop was blocked"
        async with asyncio.timeout(1):
            await notify.first(lambda d: d.ping)  # and back once it runs
    finally:
        task.cancel()
        await asyncio.wait([task])


# -- the supervisor, in this process, with its real parts ---------------------------------


@contextlib.asynccontextmanager
async def running(run: Any) -> AsyncIterator[asyncio.Task[None]]:
    task: asyncio.Task[None] = asyncio.create_task(run, name="test-supervisor")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_ready_after_every_task_started_and_no_pings_once_a_link_task_died(
    tmp_path: Path,
    broker: Mosquitto,
    keys: Keys,
    abstract_notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notify = abstract_notify
    systemd_env(monkeypatch, notify, 400_000)  # a ping every 0.2 s
    cabinet = new_cabinet(tmp_path / "cab", "cab-notify", broker, keys)
    at_ready: dict[str, str] = {}

    def snapshot() -> None:
        """Runs right after READY was sent, before any task runs again."""
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            if inspect.iscoroutine(coro):
                at_ready[task.get_name()] = inspect.getcoroutinestate(coro)

    try:
        config = load_config(cabinet.config_path)
        with capture_logs() as logs, build(config) as supervisor:
            async with running(supervisor.run(ready=snapshot)):
                async with asyncio.timeout(10):
                    ready = await notify.first(lambda d: d.ready)
                assert ready.fields["STATUS"].startswith("mode ")
                # READY went out once every task had run up to its first wait.
                assert {name: at_ready.get(name) for name in LINK_TASKS} == dict.fromkeys(
                    LINK_TASKS, inspect.CORO_SUSPENDED
                )

                healthy = [d for d in await notify.during_async(1.0) if d.ping]
                assert len(healthy) >= 3, healthy  # 5 expected

                notify.pending()
                time.sleep(1.0)  # noqa: ASYNC251 - a blocked event loop, 5 periods
                assert [d for d in notify.pending() if d.ping] == []
                async with asyncio.timeout(2):
                    await notify.first(lambda d: d.ping)

                # A link task dies quietly: a TaskGroup ignores a cancelled child,
                # the poller keeps polling, the process looks alive.
                (link,) = [t for t in asyncio.all_tasks() if t.get_name() == "mqtt-link"]
                link.cancel()
                await asyncio.wait([link])
                notify.pending()
                polls = supervisor.poller.polls
                after = await notify.during_async(1.2)
                assert [d for d in after if d.ping] == [], "pinged without the MQTT link"
                assert supervisor.poller.polls > polls  # progress alone does not earn a ping
        withheld = [e for e in logs if e["event"] == "watchdog_withheld"]
        assert withheld
        assert withheld[-1]["reason"] == "task mqtt-link was cancelled"
    finally:
        cabinet.sim.stop()


# -- the real agent process -------------------------------------------------------------


def test_the_agent_process_under_a_fake_systemd(
    tmp_path: Path,
    broker: Mosquitto,
    keys: Keys,
    abstract_notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notify = abstract_notify
    systemd_env(monkeypatch, notify, 600_000)  # WatchdogSec=0.6s: a ping every 0.3 s
    cabinet = new_cabinet(tmp_path / "cab", "cab-notify", broker, keys)
    try:
        cabinet.start()
        proc = cabinet.proc
        assert proc is not None
        (ready,) = [d for d in notify.until(lambda d: d.ready, timeout=20) if d.ready]
        # The agent logs agent_ready once its task group has started, then sends READY.
        (record,) = cabinet.log_records("agent_ready")
        assert record["tasks"] >= len(LINK_TASKS)
        assert ready.fields["STATUS"].startswith("mode ")

        pings = [d for d in notify.during(1.5) if d.ping]
        assert len(pings) >= 3, pings
        times = [ready.at, *(d.at for d in pings)]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 0.6, f"systemd would have restarted the agent: gaps {gaps}"

        os.kill(proc.pid, signal.SIGSTOP)
        try:
            _, status = os.waitpid(proc.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status)
            notify.pending()
            stopped = notify.during(1.5)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert [d for d in stopped if d.ping] == [], "a ping from a stopped process"
        notify.until(lambda d: d.ping, timeout=3)

        assert cabinet.stop() == 0
        assert {"STOPPING": "1"} in [d.fields for d in notify.pending()]
    finally:
        cabinet.stop()
        cabinet.sim.stop()
