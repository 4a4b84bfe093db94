"""The chaos rig: a seeded fault schedule, central's ledger of everything, and the checks.

Every chaos test injects one kind of fault many times into a real agent
process (``tests/e2e/harness.py``) and then checks what SPEC §10 promises:

* **commands**: every command acknowledged ``accepted`` ends with exactly one
  final ack (``applied``, or ``failed`` with a reason) and is never carried
  out twice (no second ``accepted``, no second ``applied``), and the
  controller's control object (the simulator logs every Set it takes) never
  switches to a pattern no applied command asked for;
* **events**: the sequence numbers central received are contiguous from 1,
  with no ``dropped`` range, and a number received twice carries the same
  event (a redelivery, never a reused number);
* **state files**: every file of the state directory reads from its main copy
  with the project's own loaders; the audit chain verifies;
* **mode**: the right mode, reached within a bound that the test measures and
  prints.

The schedule is random but replayable: the seed is printed with every
failure and in the summary line; ``GREENWAVE_CHAOS_SEED=<seed>`` replays it,
``GREENWAVE_CHAOS_ROUNDS=<n>`` sets the number of faults of every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import pytest

from agent.central.client import CommandSigner, SignedCommand
from agent.central.commands import Ack, AckStatus, CommandSettings
from agent.central.durable import DurableFile
from agent.central.jws import CommandVerifier
from agent.central.outbox import CURSOR_FILE, CURSOR_KIND, EventOutbox
from agent.central.replay import PLAN_VERSION_KIND, REPLAY_KIND
from agent.central.topics import HEARTBEAT
from agent.central.trust import TRUST_KIND
from agent.supervisor.audit import AUDIT_DIR, HEAD_FILE, HEAD_KIND, verify
from agent.supervisor.store import CommandStore
from tests.broker import Mosquitto
from tests.e2e.harness import Cabinet

#: Environment variables that replay a run or change its size.
SEED_ENV: Final = "GREENWAVE_CHAOS_SEED"
ROUNDS_ENV: Final = "GREENWAVE_CHAOS_ROUNDS"
#: The agent's [central] section in every chaos cabinet: a short heartbeat timeout,
#: and a backup timer fit for the 10x simulator (see tests/e2e/harness.py).
CENTRAL_CONFIG: Final = "heartbeat_timeout_s = 3\nbackup_time_s = 600"
#: How often central sends a heartbeat (well inside the timeout above).
HEARTBEAT_EVERY_S: Final = 0.5
#: Patterns of the example plan (tests/e2e/harness.example_plan).
PATTERNS: Final = (1, 2, 3, 4)
#: State files of the agent, by path under the state directory, and their envelope kind.
STATE_FILES: Final = (
    ("plan.json", "plan"),
    ("control.json", "control"),
    ("replay.json", REPLAY_KIND),
    ("plan-version.json", PLAN_VERSION_KIND),
    ("trust.json", TRUST_KIND),
    ("mqtt-session.json", "mqtt-session"),
    (f"events/{CURSOR_FILE}", CURSOR_KIND),
    (f"{AUDIT_DIR}/{HEAD_FILE}", HEAD_KIND),
)
FINAL: Final = frozenset({AckStatus.APPLIED, AckStatus.FAILED, AckStatus.REJECTED})


# -- the schedule --------------------------------------------------------------------------


@dataclass
class Chaos:
    """One chaos test's seed, random source, round counter and report."""

    name: str
    seed: int
    rounds: int
    rng: random.Random
    round: int = 0
    faults: int = 0
    started: float = field(default_factory=time.monotonic)
    #: What was checked, as short phrases for the summary line.
    checked: list[str] = field(default_factory=list)

    def where(self) -> str:
        """Which test, seed and round: for every failure message."""
        return (
            f"chaos {self.name}: round {self.round}/{self.rounds}, seed {self.seed} "
            f"(replay: {SEED_ENV}={self.seed} {ROUNDS_ENV}={self.rounds})"
        )

    def fail(self, what: str) -> AssertionError:
        return AssertionError(f"{self.where()}: {what}")

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise self.fail(what)

    def summary(self) -> str:
        took = time.monotonic() - self.started
        return (
            f"chaos {self.name}: {self.faults} faults injected (seed {self.seed}, "
            f"{took:.1f} s); checked: {'; '.join(self.checked)}"
        )


def make_chaos(name: str, default_rounds: int) -> Chaos:
    """A :class:`Chaos` seeded from ``GREENWAVE_CHAOS_SEED`` (or at random)."""
    text = os.environ.get(SEED_ENV, "").strip()
    seed = int(text) if text else random.SystemRandom().randrange(1, 2**31)
    rounds_text = os.environ.get(ROUNDS_ENV, "").strip()
    rounds = int(rounds_text) if rounds_text else default_rounds
    if rounds < 1:
        raise ValueError(f"{ROUNDS_ENV} must be at least 1")
    return Chaos(name=name, seed=seed, rounds=rounds, rng=random.Random(f"{name}:{seed}"))


def report(chaos: Chaos, capsys: pytest.CaptureFixture[str], record: Callable[..., None]) -> None:
    """Write the one-line summary to the terminal (also without ``-s``) and the junit XML."""
    line = chaos.summary()
    record("chaos", line)
    with capsys.disabled():
        print(f"\n{line}")


# -- central's view ---------------------------------------------------------------------------


@dataclass
class Seen:
    """One message central received, with its arrival time (epoch s)."""

    at: float
    body: dict[str, Any]


class Central:
    """Central's side for a chaos test: one persistent MQTT session that reconnects.

    It records every ack, events batch, state and online message of one device
    (a persistent session, so that what the agent publishes while central
    reconnects after a broker restart is queued for it), publishes commands
    and, while :attr:`beating`, a signed heartbeat every
    :data:`HEARTBEAT_EVERY_S`.
    """

    def __init__(self, broker: Mosquitto, cabinet: Cabinet, signer: CommandSigner) -> None:
        self.broker = broker
        self.cabinet = cabinet
        self.signer = signer
        self.device = cabinet.device
        topics = cabinet.topics
        self._topics = (topics.ack, topics.events, topics.state, topics.online)
        self.acks: list[Seen] = []
        self.states: list[Seen] = []
        self.onlines: list[Seen] = []
        #: seq -> the event as received first (canonical JSON).
        self.events: dict[int, str] = {}
        #: seq -> a different event received under a number already seen.
        self.reused: list[tuple[int, str, str]] = []
        self.dropped: list[Any] = []
        self.batches = 0
        self.beating = False
        self.heartbeats = 0
        self._client: aiomqtt.Client | None = None
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._client_id = f"chaos-central-{self.device}"

    async def __aenter__(self) -> Central:
        self._tasks = [
            asyncio.create_task(self._run(), name="chaos-central"),
            asyncio.create_task(self._beat(), name="chaos-heartbeat"),
        ]
        await self.until("central connected", lambda: self._client is not None, within=20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the connection --------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    identifier=self._client_id,
                    clean_session=False,
                    keepalive=5,
                    timeout=5,
                ) as client:
                    await client.subscribe([(topic, 1) for topic in self._topics])
                    self._client = client
                    await self._notify()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self._take(message.topic.value, payload)
                        await self._notify()
            except aiomqtt.MqttError:
                pass
            self._client = None
            await asyncio.sleep(0.05)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _take(self, topic: str, payload: bytes) -> None:
        now = time.time()
        leaf = topic.rsplit("/", 1)[-1]
        if leaf == "ack":
            self.acks.append(Seen(now, json.loads(payload)))
        elif leaf == "state":
            self.states.append(Seen(now, json.loads(payload)))
        elif leaf == "online":
            self.onlines.append(Seen(now, json.loads(payload)))
        elif leaf == "events":
            batch = json.loads(payload)
            self.batches += 1
            self.dropped.extend(batch["dropped"])
            for event in batch["events"]:
                text = json.dumps(event, sort_keys=True)
                first = self.events.setdefault(event["seq"], text)
                if first != text:
                    self.reused.append((event["seq"], first, text))

    async def _beat(self) -> None:
        while True:
            client = self._client
            if self.beating and client is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.publish(HEARTBEAT, self.signer.heartbeat().token, qos=1)
                    self.heartbeats += 1
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    # -- waiting -------------------------------------------------------------------------

    async def until(self, what: str, check: Callable[[], bool], *, within: float) -> float:
        """Wait until ``check()`` holds (re-checked on every message); the seconds it took."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(check)
        except TimeoutError:
            raise AssertionError(f"timed out after {within} s waiting for {what}") from None
        return time.monotonic() - started

    # -- commands ------------------------------------------------------------------------

    async def publish(self, command: SignedCommand, *, within: float = 10) -> None:
        """Publish ``command`` on the device's topic once the broker is there (QoS 1)."""
        await self.until("central connected", lambda: self._client is not None, within=within)
        client = self._client
        assert client is not None
        await client.publish(self.cabinet.topics.cmd, command.token, qos=1)

    def sign(self, cmd: str, args: dict[str, Any]) -> SignedCommand:
        return self.signer.sign(cmd, args, aud=self.device)

    async def command(
        self, cmd: str, args: dict[str, Any], *, within: float = 15
    ) -> tuple[SignedCommand, Ack]:
        """Publish a command and wait for its final ack."""
        command = self.sign(cmd, args)
        await self.publish(command)
        await self.until(
            f"the final ack of {cmd} {args}", lambda: self.final(command.jti) is not None,
            within=within,
        )  # fmt: skip
        final = self.final(command.jti)
        assert final is not None
        return command, final

    # -- what was seen ----------------------------------------------------------------------

    def unique_acks(self) -> list[Ack]:
        """Every ack once: a message the broker delivered again (QoS 1) is not a new ack."""
        seen: set[str] = set()
        out = []
        for message in self.acks:
            key = json.dumps(message.body, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(Ack.model_validate(message.body))
        return out

    def acks_of(self, jti: str) -> list[Ack]:
        return [a for a in self.unique_acks() if a.jti == jti]

    def final(self, jti: str) -> Ack | None:
        """The first final ack (applied, failed, rejected) of ``jti``."""
        return next((a for a in self.acks_of(jti) if a.status in FINAL), None)

    def finished(self, jti: str) -> Ack | None:
        """The first ``applied`` or ``failed`` of ``jti`` (a command carried out, or not)."""
        done = (AckStatus.APPLIED, AckStatus.FAILED)
        return next((a for a in self.acks_of(jti) if a.status in done), None)

    def online_session(self) -> int:
        """The newest session number the agent announced online (0: none)."""
        sessions = [int(s.body.get("session", 0)) for s in self.onlines if s.body.get("online")]
        return max(sessions, default=0)

    def state(self) -> dict[str, Any]:
        return self.states[-1].body if self.states else {}

    def mode(self) -> str | None:
        mode = self.state().get("mode")
        return str(mode) if mode is not None else None

    def controller_link(self) -> str | None:
        controller = self.state().get("controller") or {}
        link = controller.get("link")
        return str(link) if link is not None else None

    @property
    def highest(self) -> int:
        return max(self.events, default=0)

    def missing(self) -> list[int]:
        return [n for n in range(1, self.highest + 1) if n not in self.events]

    def event_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(self.events[n]) for n in sorted(self.events)]

    async def wait_online(self, *, after: int, within: float = 20) -> int:
        await self.until(
            f"the agent online with a session above {after}",
            lambda: self.online_session() > after,
            within=within,
        )
        return self.online_session()

    async def caught_up(self, *, within: float = 20) -> None:
        """Wait until the events are contiguous and include one stamped after now."""
        mark = time.time() + 0.3

        def done() -> bool:
            if not self.events or self.missing():
                return False
            newest = json.loads(self.events[self.highest])
            return float(newest.get("ts", 0)) >= mark

        await self.until("every event forwarded, contiguous", done, within=within)


# -- the checks ---------------------------------------------------------------------------


def ledger(central: Central) -> dict[str, list[Ack]]:
    """Every ack central received, by command id."""
    by_jti: dict[str, list[Ack]] = defaultdict(list)
    for ack in central.unique_acks():
        if ack.jti is not None:
            by_jti[ack.jti].append(ack)
    return by_jti


def command_problems(central: Central, *, unfinished_ok: Iterable[str] = ()) -> list[str]:
    """Commands carried out twice, or acknowledged ``accepted`` and never finished."""
    excused = set(unfinished_ok)
    problems = []
    for jti, acks in ledger(central).items():
        counts = Counter(a.status for a in acks)
        outcomes = [f"{a.status} {a.code}" for a in acks]
        if counts[AckStatus.ACCEPTED] > 1:
            problems.append(f"{jti}: accepted {counts[AckStatus.ACCEPTED]} times: {outcomes}")
        if counts[AckStatus.APPLIED] > 1:
            problems.append(f"{jti}: applied {counts[AckStatus.APPLIED]} times: {outcomes}")
        accepted = counts[AckStatus.ACCEPTED] > 0
        finals = [a for a in acks if a.status in (AckStatus.APPLIED, AckStatus.FAILED)]
        if accepted and not finals and jti not in excused:
            problems.append(f"{jti}: accepted and never applied or failed: {outcomes}")
        if len({(a.status, a.code) for a in finals}) > 1 and acks[0].cmd != "control.pattern":
            problems.append(f"{jti}: contradictory final acks: {outcomes}")
    return problems


def event_problems(central: Central) -> list[str]:
    problems = []
    if central.missing():
        problems.append(f"events never received: {central.missing()[:20]}")
    if central.dropped:
        problems.append(f"events announced dropped: {central.dropped[:5]}")
    for seq, first, again in central.reused[:5]:
        problems.append(f"event number {seq} reused: {first} then {again}")
    return problems


def controller_pattern_sets(cabinet: Cabinet) -> list[str]:
    """The values the simulator stored in systemPatternControl, in order (its Set log)."""
    values = []
    for line in cabinet.sim.log().splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") != "snmp_set":
            continue
        for write in str(record.get("writes") or "").split(", "):
            name, _, value = write.partition("=")
            if name.startswith("systemPatternControl"):
                values.append(value)
    return values


def collapse(values: Iterable[Any]) -> list[Any]:
    """``values`` with runs of equal neighbours reduced to one."""
    out: list[Any] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def switch_problems(cabinet: Cabinet, sent: list[int], applied: list[int]) -> list[str]:
    """Pattern switches of the controller that no command explains.

    ``sent`` are the patterns of the ``control.pattern`` commands central sent,
    in order, no two neighbours equal; ``applied`` those acknowledged
    ``applied``. Releases (standby) and rewrites of the commanded pattern (the
    backup-timer refresh) are not switches. Every switch the controller took
    must be, in order, one command's pattern, each command used once (a
    command carried out again after a fault would be a switch too many), and
    every applied command must be among them.
    """
    written = collapse(v for v in controller_pattern_sets(cabinet) if v not in {"0", "standby"})
    problems = []
    pointer = 0
    used: list[int] = []
    for value in written:
        while pointer < len(sent) and str(sent[pointer]) != value:
            pointer += 1
        if pointer == len(sent):
            problems.append(
                f"the controller was switched to {written}; no command explains the switch "
                f"to {value} after {used} (commands sent: {sent})"
            )
            break
        used.append(sent[pointer])
        pointer += 1
    if not problems and len(written) < len(collapse(applied)):
        problems.append(f"commands applied {applied}, the controller only switched to {written}")
    return problems


def state_file_problems(state_dir: Path, device: str, *, agent_dead: bool) -> list[str]:
    """Every state file read with the project's own loaders; problems found.

    With the agent dead the events outbox is opened too (it takes the
    directory lock), and must need no repair beyond a torn tail.
    """
    problems = []
    for name, kind in STATE_FILES:
        path = state_dir / name
        if not path.exists() and not path.with_name(path.name + ".bak").exists():
            continue
        try:
            loaded = DurableFile(path, kind=kind).load(lambda body: body)
        except Exception as err:  # any failure is the finding
            problems.append(f"{name}: unreadable: {err}")
            continue
        if loaded.source != "main":
            problems.append(f"{name}: read from its {loaded.source} copy ({loaded.problem})")
    try:
        CommandStore.open(state_dir)
        CommandVerifier.open(
            state_dir, device_id=device, clock=time.time, settings=CommandSettings()
        ).replay.check("chaos-probe-never-sent")
    except Exception as err:
        problems.append(f"the agent's loaders refuse the state: {err}")
    audit = verify(state_dir / AUDIT_DIR)
    if not audit.ok:
        problem = audit.first_problem
        problems.append(f"audit verify: {problem.describe() if problem else 'failed'}")
    if agent_dead:
        try:
            with EventOutbox.open(state_dir / "events", capacity=100_000) as outbox:
                stats = outbox.stats()
                if stats.corrupt_records:
                    problems.append(f"events outbox: {stats.corrupt_records} corrupt records")
        except Exception as err:
            problems.append(f"events outbox: {err}")
    return problems


def outbox_last_seq(state_dir: Path) -> int:
    """The newest event number on disk (the agent must be stopped)."""
    with EventOutbox.open(state_dir / "events", capacity=100_000) as outbox:
        return outbox.last_seq
