"""The MQTT link against a real mosquitto: sessions, will, reconnects, flood control, TLS.

Every broker here is a real ``mosquitto`` on loopback (``tests/broker.py``);
central's side is played by plain aiomqtt clients. Where the agent must die
without a DISCONNECT, it runs in a child process that is SIGKILLed; the flood
comes from a child process too, so that the measured event loop is the
agent's alone. The figures a test measures (reconnect time, ticker gaps under
the flood) are printed (``pytest -s``) and asserted only loosely.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import structlog
from structlog.testing import capture_logs

from agent.backoff import Backoff
from agent.central.durable import DurableFile
from agent.central.link import (
    SESSION_FILE,
    SESSION_KIND,
    CommandIntake,
    InboundMessage,
    LinkStatus,
    MqttLink,
    MqttLinkDown,
    TokenBucket,
    Verdict,
)
from agent.central.topics import HEARTBEAT, group_cmd
from agent.config import MqttConfig, parse_config
from agent.errors import ConfigError
from tests.broker import Mosquitto
from tests.pki import ThrowawayPki

REPO = Path(__file__).resolve().parents[2]
DEVICE = "cabinet-17"
VERSION = "0.1.0-test"
WAIT_S = 10.0

#: Child processes a test started; the autouse guard checks they are gone.
CHILDREN: list[subprocess.Popen[bytes]] = []


# -- helpers -----------------------------------------------------------------------------


def _open_sockets() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                found.add(f"{fd}->{target}")
    return found


@pytest.fixture(autouse=True)
async def _no_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks on its loop, sockets open or child processes running."""
    sockets_before = _open_sockets()
    yield
    gc.collect()  # sockets in garbage cycles (exception tracebacks) are closed, not leaked
    sockets_left = _open_sockets() - sockets_before
    current = asyncio.current_task()
    await asyncio.sleep(0)
    tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in tasks:
        task.cancel()
    children = [proc for proc in CHILDREN if proc.poll() is None]
    for proc in children:
        proc.kill()
        proc.wait(5)
    CHILDREN.clear()
    assert not tasks, f"tasks left running: {[t.get_name() for t in tasks]}"
    assert not children, f"{len(children)} child process(es) left running"
    assert not sockets_left, f"sockets left open: {sorted(sockets_left)}"


class RecordingClock:
    """The real monotonic clock; every backoff wait is recorded and can be awaited."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._slept = asyncio.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._slept.set()
        await asyncio.sleep(seconds)

    async def wait_sleeps(self, count: int) -> None:
        """Return once the link has started ``count`` backoff waits."""
        async with asyncio.timeout(WAIT_S):
            while len(self.sleeps) < count:
                self._slept.clear()
                await self._slept.wait()


def mqtt_config(broker: Mosquitto, **overrides: Any) -> MqttConfig:
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "keepalive_s": 5,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.4,
    }
    values.update(overrides)
    return MqttConfig(**values)


def make_link(config: MqttConfig, state_dir: Path, **overrides: Any) -> MqttLink:
    values: dict[str, Any] = {
        "device_id": DEVICE,
        "groups": ("north",),
        "software_version": VERSION,
        "state_dir": state_dir,
        "command_rate": 1000.0,
        "command_queue": 64,
        "max_command_bytes": 4096,
    }
    values.update(overrides)
    return MqttLink(config, **values)


@contextlib.asynccontextmanager
async def running(link: MqttLink) -> AsyncIterator[asyncio.Task[None]]:
    """``link.run()`` as a task for the block; cancelled (a clean stop) and awaited after."""
    task = asyncio.create_task(link.run(), name="mqtt-link")
    try:
        yield task
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=WAIT_S)
        assert task in done, "the link did not stop within the bound"
        assert task.cancelled(), f"the link ended by itself: {task.exception()!r}"


async def wait_up(link: MqttLink) -> None:
    async with asyncio.timeout(WAIT_S):
        await link.wait_connected()


async def wait_down(link: MqttLink) -> None:
    async with asyncio.timeout(WAIT_S):
        await link.wait_disconnected()


@contextlib.asynccontextmanager
async def watching(broker: Mosquitto, topic: str) -> AsyncIterator[aiomqtt.Client]:
    """Central's view: a separate client subscribed (QoS 1) to ``topic``."""
    identifier = f"watch-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(broker.host, broker.port, identifier=identifier) as client:
        await client.subscribe(topic, qos=1)
        yield client


async def next_message(client: aiomqtt.Client, within: float = WAIT_S) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        return await anext(aiter(client.messages))


def as_json(message: aiomqtt.Message) -> Any:
    assert isinstance(message.payload, bytes)
    return json.loads(message.payload)


async def retained(broker: Mosquitto, topic: str) -> aiomqtt.Message:
    """The retained message on ``topic``, as a new subscriber gets it."""
    async with watching(broker, topic) as client:
        message = await next_message(client)
    assert message.retain
    return message


async def next_command(link: MqttLink) -> InboundMessage:
    async with asyncio.timeout(WAIT_S):
        return await link.next_command()


def start_child(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    CHILDREN.append(proc)
    return proc


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event of the test, at every level, whatever another test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**saved)


def failures_logged(
    logs: Sequence[MutableMapping[str, Any]], level: str
) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "mqtt_connect_failed" and e["log_level"] == level]


# -- online, session counter, will ----------------------------------------------------------


async def test_up_publishes_online_retained_and_a_clean_stop_says_offline(
    broker: Mosquitto, tmp_path: Path
) -> None:
    link = make_link(mqtt_config(broker), tmp_path)
    seen: list[LinkStatus] = []
    link.add_listener(seen.append)
    assert not link.connected
    async with running(link), watching(broker, link.topics.online) as watcher:
        await wait_up(link)
        assert link.status.up
        assert link.status.session == 1
        online = await retained(broker, link.topics.online)
        assert as_json(online) == {"online": True, "session": 1, "version": VERSION}
        assert as_json(await next_message(watcher))["online"] is True
    assert not link.connected
    assert [(s.up, s.session) for s in seen] == [(True, 1), (False, 1)]
    assert seen[-1].reason == "stopped"
    assert as_json(await retained(broker, link.topics.online)) == {"online": False}


async def test_session_counter_grows_across_broker_restarts_and_agent_restarts(
    broker: Mosquitto, tmp_path: Path
) -> None:
    first = make_link(mqtt_config(broker), tmp_path)
    async with running(first):
        await wait_up(first)
        assert first.status.session == 1
        await asyncio.to_thread(broker.stop)
        await wait_down(first)
        assert first.status.reason
        restarted = time.monotonic()
        await asyncio.to_thread(broker.start)
        await wait_up(first)
        reconnect_s = time.monotonic() - restarted
        assert first.status.session == 2
        assert as_json(await retained(broker, first.topics.online))["session"] == 2
    print(f"\nreconnect after broker restart: {reconnect_s * 1000:.0f} ms")
    # A new process on the same state directory continues the count.
    second = make_link(mqtt_config(broker), tmp_path)
    assert second.session == 2
    async with running(second):
        await wait_up(second)
        assert second.status.session == 3
        assert as_json(await retained(broker, second.topics.online))["session"] == 3
    assert (tmp_path / SESSION_FILE).exists()


CHILD_LINK = """
import asyncio, json, sys
from pathlib import Path
from agent.central.link import MqttLink
from agent.config import MqttConfig, parse_config

spec = json.loads(sys.argv[1])
link = MqttLink(
    MqttConfig(host=spec["host"], port=spec["port"]),
    device_id=spec["device"],
    software_version="child",
    state_dir=Path(spec["state_dir"]),
    command_rate=10.0,
    command_queue=8,
    max_command_bytes=1024,
)
asyncio.run(link.run())
"""


async def test_the_will_says_offline_when_the_agent_dies_without_disconnect(
    broker: Mosquitto, tmp_path: Path
) -> None:
    topic = f"greenwave/v1/{DEVICE}/online"
    spec = {"host": broker.host, "port": broker.port, "device": DEVICE, "state_dir": str(tmp_path)}
    async with watching(broker, topic) as watcher:
        child = start_child(CHILD_LINK, json.dumps(spec))
        assert as_json(await next_message(watcher, within=30)) == {
            "online": True,
            "session": 1,
            "version": "child",
        }
        child.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.wait, WAIT_S)
        assert as_json(await next_message(watcher)) == {"online": False}
    assert as_json(await retained(broker, topic)) == {"online": False}


# -- commands --------------------------------------------------------------------------


async def test_commands_published_while_the_agent_was_away_arrive_when_it_returns(
    broker: Mosquitto, tmp_path: Path
) -> None:
    config = mqtt_config(broker)
    first = make_link(config, tmp_path)
    async with running(first):
        await wait_up(first)  # the broker now holds the persistent session
    sent = {
        (first.topics.cmd, b"for-me"),
        (group_cmd("north"), b"for-my-group"),
        (HEARTBEAT, b"heartbeat"),
    }
    async with aiomqtt.Client(broker.host, broker.port, identifier="central") as central:
        for topic, payload in sorted(sent):
            await central.publish(topic, payload, qos=1)
    back = make_link(config, tmp_path)
    async with running(back):
        got = {(m.topic, m.payload) for m in [await next_command(back) for _ in sent]}
    assert got == sent
    assert back.stats.accepted == 3


async def test_an_oversize_command_is_dropped_before_anything_else(
    broker: Mosquitto, tmp_path: Path
) -> None:
    link = make_link(mqtt_config(broker), tmp_path, max_command_bytes=1024)
    async with running(link):
        await wait_up(link)
        async with aiomqtt.Client(broker.host, broker.port, identifier="central") as central:
            await central.publish(link.topics.cmd, b"x" * 1025, qos=1)
            await central.publish(link.topics.cmd, b"y" * 1024, qos=1)
        message = await next_command(link)
    assert message.payload == b"y" * 1024
    assert link.stats.dropped_oversize == 1
    assert link.stats.accepted == 1


FLOOD = """
import sys
import paho.mqtt.client as mqtt

host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count, every, big = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flood")
client.max_inflight_messages_set(1000)
client.connect(host, port)
client.loop_start()
sent = [
    client.publish(topic, b"x" * big if i % every == 0 else b"junk %d" % i, qos=1)
    for i in range(count)
]
for info in sent:
    info.wait_for_publish(60)
client.disconnect()
client.loop_stop()
"""


async def test_a_flood_is_dropped_and_counted_and_the_loop_stays_free(
    broker: Mosquitto, tmp_path: Path
) -> None:
    total, every_oversize = 5000, 10
    link = make_link(
        mqtt_config(broker),
        tmp_path,
        command_rate=200.0,
        command_queue=256,
        max_command_bytes=1024,
    )
    gaps: list[float] = []
    all_in = asyncio.Event()

    async def ticker() -> None:  # the 10 Hz status poller's stand-in
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            if link.stats.received >= total:
                all_in.set()

    async with running(link):
        await wait_up(link)
        started = time.monotonic()
        async with asyncio.TaskGroup() as tasks:
            ticking = tasks.create_task(ticker(), name="ticker")
            flood = start_child(
                FLOOD, broker.host, str(broker.port), link.topics.cmd, str(total),
                str(every_oversize), "2048",
            )  # fmt: skip
            async with asyncio.timeout(60):
                await all_in.wait()
            ticking.cancel()
        elapsed = time.monotonic() - started
        assert await asyncio.to_thread(flood.wait, WAIT_S) == 0
        assert link.connected
    stats = link.stats
    assert stats.received == total
    assert stats.accepted + stats.dropped == total
    assert stats.dropped_oversize == total // every_oversize
    assert stats.dropped_rate > 0
    assert stats.queued <= 256
    assert len(gaps) >= 2, "the ticker stopped running during the flood"
    ordered = sorted(gaps)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"\nflood: {total} messages in {elapsed:.2f} s; accepted {stats.accepted}, "
        f"dropped oversize {stats.dropped_oversize} rate {stats.dropped_rate} "
        f"full {stats.dropped_full}; 10 Hz ticker: {len(gaps)} ticks, "
        f"p99 gap {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms (nominal 100 ms)"
    )


# -- outbound ----------------------------------------------------------------------------


async def test_publish_waits_for_puback_and_raises_link_down_otherwise(
    broker: Mosquitto, tmp_path: Path
) -> None:
    link = make_link(mqtt_config(broker), tmp_path, publish_timeout_s=1.0)
    with pytest.raises(MqttLinkDown, match="not connected"):
        await link.publish(link.topics.events, b"early")
    async with running(link), watching(broker, link.topics.events) as central:
        await wait_up(link)
        await link.publish(link.topics.events, b"batch-1", qos=1)
        assert (await next_message(central)).payload == b"batch-1"
        # A broker that stops answering: no PUBACK, no return.
        broker.pause()
        with pytest.raises(MqttLinkDown, match="no PUBACK"):
            await link.publish(link.topics.events, b"batch-2", qos=1)
        # The connection ending while a publish waits: raised at once, not at the timeout.
        waiting = asyncio.create_task(link.publish(link.topics.events, b"batch-3", qos=1))
        await asyncio.sleep(0)  # let it reach the wait for its PUBACK
        await asyncio.to_thread(broker.stop, sig=signal.SIGKILL)
        with pytest.raises(MqttLinkDown, match="connection ended"):
            await waiting
        await wait_down(link)
        with pytest.raises(MqttLinkDown, match="not connected"):
            await link.publish(link.topics.events, b"batch-4", qos=1)
        await asyncio.to_thread(broker.start)
        await wait_up(link)
        await link.publish(link.topics.events, b"batch-5", qos=1)


async def test_publish_latest_never_queues_stale_messages(
    broker: Mosquitto, tmp_path: Path
) -> None:
    link = make_link(mqtt_config(broker), tmp_path)
    assert not link.publish_latest(link.topics.spat, b"before")
    async with running(link), watching(broker, link.topics.spat) as central:
        await wait_up(link)
        for n in range(100):  # no await between: only the newest may go out
            assert link.publish_latest(link.topics.spat, b"%d" % n)
        assert (await next_message(central)).payload == b"99"
        assert link.stats.latest_replaced == 99
        assert link.stats.latest_sent == 1
    assert not link.publish_latest(link.topics.spat, b"after")
    assert link.stats.latest_offline == 2


# -- reconnecting, and what is logged ---------------------------------------------------------


@pytest.mark.parametrize(
    ("stable_after_s", "first_wait_ceiling"),
    [pytest.param(0.0, 0.05, id="lasted-resets"), pytest.param(60.0, 0.4, id="brief-keeps")],
)
async def test_a_broker_down_at_start_is_retried_with_growing_waits_logged_once(
    broker: Mosquitto,
    tmp_path: Path,
    logs: list[MutableMapping[str, Any]],
    stable_after_s: float,
    first_wait_ceiling: float,
) -> None:
    broker.stop()
    clock = RecordingClock()
    link = make_link(
        mqtt_config(broker),
        tmp_path,
        clock=clock,
        rng=random.Random(7),
        stable_after_s=stable_after_s,
    )
    async with running(link) as task:
        await clock.wait_sleeps(6)
        assert not link.connected
        assert not task.done()
        assert link.stats.connect_failures >= 6
        for attempt, delay in enumerate(clock.sleeps[:6]):
            ceiling = min(0.4, 0.05 * 2**attempt)
            assert ceiling / 2 <= delay <= ceiling
        await asyncio.to_thread(broker.start)
        await wait_up(link)
        # The wait after a drop starts short again only after a connection that lasted.
        waits_before = len(clock.sleeps)
        await asyncio.to_thread(broker.stop)
        await clock.wait_sleeps(waits_before + 1)
        assert first_wait_ceiling / 2 <= clock.sleeps[waits_before] <= first_wait_ceiling
    warnings = failures_logged(logs, "warning")
    assert len(warnings) == 1, "a repeated failure is logged once, not per attempt"
    assert "refused" in warnings[0]["reason"].lower()
    assert len(failures_logged(logs, "debug")) >= 5
    changes = [(e["event"], e["log_level"]) for e in logs if e["event"] in {"mqtt_up", "mqtt_down"}]
    assert changes == [("mqtt_up", "info"), ("mqtt_down", "warning")]


async def test_the_password_is_read_at_connect_and_a_missing_file_is_retried(
    broker: Mosquitto, tmp_path: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    secret = tmp_path / "mqtt-password"
    clock = RecordingClock()
    config = mqtt_config(broker, username="cabinet-17", password_file=secret)
    link = make_link(config, tmp_path, clock=clock)
    async with running(link) as task:
        await clock.wait_sleeps(2)
        assert not link.connected
        assert not task.done()
        secret.write_text("  s3cret\n")
        await wait_up(link)
    (error,) = failures_logged(logs, "error")
    assert str(secret) in error["reason"]


def test_a_password_file_without_a_username_is_a_config_error(tmp_path: Path) -> None:
    config = MqttConfig(password_file=tmp_path / "secret")
    with pytest.raises(ConfigError, match="username"):
        make_link(config, tmp_path)


# -- TLS ------------------------------------------------------------------------------------


def tls_config(broker: Mosquitto, pki: ThrowawayPki, *, ca: Path) -> MqttConfig:
    assert broker.tls_port is not None
    return mqtt_config(
        broker,
        port=broker.tls_port,
        tls=True,
        ca_file=ca,
        cert_file=pki.client_cert,
        key_file=pki.client_key,
    )


async def test_tls_with_a_client_certificate_connects(
    tls_broker: Mosquitto, pki: ThrowawayPki, tmp_path: Path
) -> None:
    link = make_link(tls_config(tls_broker, pki, ca=pki.ca), tmp_path)
    async with running(link):
        await wait_up(link)
        # Seen by central on the plain listener of the same broker.
        assert as_json(await retained(tls_broker, link.topics.online))["online"] is True


@pytest.mark.parametrize(
    ("case", "why"),
    [
        pytest.param("wrong-ca", "certificate verify failed", id="broker-not-trusted"),
        pytest.param("no-client-cert", "no CONNACK", id="device-not-trusted"),
    ],
)
async def test_tls_that_cannot_be_trusted_fails_and_keeps_retrying(
    tls_broker: Mosquitto,
    pki: ThrowawayPki,
    tmp_path: Path,
    logs: list[MutableMapping[str, Any]],
    case: str,
    why: str,
) -> None:
    config = tls_config(tls_broker, pki, ca=pki.other_ca if case == "wrong-ca" else pki.ca)
    if case == "no-client-cert":
        config = config.model_copy(update={"cert_file": None, "key_file": None})
    clock = RecordingClock()
    link = make_link(config, tmp_path, clock=clock, publish_timeout_s=0.3)
    async with running(link) as task:
        await clock.wait_sleeps(3)
        assert not link.connected
        assert not task.done()
        assert link.stats.connect_failures >= 3
        assert link.stats.connects == 0
    (warning,) = failures_logged(logs, "warning")
    assert why in warning["reason"]
    print(f"\n{case}: {warning['reason']}")


# -- the parts without I/O --------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=10.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(11)] == [True] * 10 + [False]
    assert [bucket.take(0.1), bucket.take(0.1)] == [True, False]
    assert sum(bucket.take(100.0) for _ in range(20)) == 10  # capped at the burst
    assert not bucket.take(50.0)  # time going backwards adds nothing


def test_intake_checks_size_then_rate_then_room() -> None:
    intake = CommandIntake(max_bytes=4, rate=2.0, capacity=1, now=0.0)
    assert intake.offer("t", b"12345", 0.0) is Verdict.OVERSIZE  # costs no token
    assert intake.offer("t", b"a", 0.0) is Verdict.ACCEPTED
    assert intake.offer("t", b"b", 0.0) is Verdict.FULL
    assert intake.offer("t", b"c", 0.0) is Verdict.RATE
    message = intake.pop()
    assert message is not None
    assert (message.topic, message.payload) == ("t", b"a")
    assert intake.pop() is None
    assert intake.offer("t", b"d", 0.5) is Verdict.ACCEPTED
    assert intake.dropped == 3
    assert intake.counts[Verdict.ACCEPTED] == 2


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, ceiling in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_a_session_counter_read_from_its_backup_skips_a_number(tmp_path: Path) -> None:
    file = DurableFile(tmp_path / SESSION_FILE, kind=SESSION_KIND)
    file.write({"session": 4})
    file.write({"session": 5})  # the backup now holds 4
    (tmp_path / SESSION_FILE).write_bytes(b"torn")
    link = make_link(MqttConfig(), tmp_path)
    assert link.session == 5  # 4 from the backup, plus the one that may have been used


def test_a_lost_session_counter_starts_again(tmp_path: Path) -> None:
    (tmp_path / SESSION_FILE).write_bytes(b"torn")
    assert make_link(MqttConfig(), tmp_path).session == 0


def test_from_config_takes_every_setting_from_the_agent_config(tmp_path: Path) -> None:
    config = parse_config(
        f"""
        [device]
        id = "cabinet-9"
        groups = ["north"]
        [state]
        dir = "{tmp_path}"
        [mqtt]
        host = "broker.example"
        [central]
        command_rate = 50
        command_queue = 20
        max_command_bytes = 2048
        """
    )
    link = MqttLink.from_config(config, software_version=VERSION)
    assert link.client_id == "greenwave-cabinet-9"
    assert link.topics.command_topics == (
        "greenwave/v1/cabinet-9/cmd",
        "greenwave/v1/group/north/cmd",
        HEARTBEAT,
    )
    assert link.config.host == "broker.example"


async def test_a_broker_that_accepts_but_never_answers_is_retried_cleanly(
    broker: Mosquitto, tmp_path: Path
) -> None:
    broker.pause()
    clock = RecordingClock()
    link = make_link(mqtt_config(broker), tmp_path, clock=clock, publish_timeout_s=0.3)
    async with running(link):
        await clock.wait_sleeps(2)
        assert not link.connected
        broker.resume()
        await wait_up(link)
