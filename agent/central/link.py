"""The agent's MQTT link to the city's broker (SPEC §4): one connection, kept up forever.

**Connection.** :meth:`MqttLink.run` is one long-lived task, aiomqtt's
reconnect loop::

    while True:
        try:
            async with Client(client id, clean session off, will) as client:
                session n ← stored counter + 1 (on disk first)
                SUBSCRIBE every command topic, QoS 1
                PUBLISH …/online {"online": true, "session": n, "version": v}, QoS 1, retained
                ── up ──  until the connection ends
        except MqttError:            ── down ──
            wait: doubling from reconnect_initial_s to reconnect_max_s, jittered;
                  back to the start after a connection that lasted

    DOWN ── CONNACK, SUBACK, online PUBACK ──▶ UP
     ▲ ◀──── connection lost / broker gone ─────┘
     └── attempt failed: wait, try again

The client id is fixed and the session persistent, so QoS 1 commands that
central published while the agent was away are queued by the broker and
delivered on return. The will is ``{"online": false}``, QoS 1, retained: the
broker publishes it when the connection dies without a DISCONNECT. A clean
stop (``run`` cancelled) publishes the same message itself, because a
DISCONNECT discards the will. The session counter ``n`` grows on every
successful connect and survives restarts (``<state dir>/mqtt-session.json``,
envelope kind ``mqtt-session``, body ``{"session": n}``, see
:mod:`agent.central.durable`; written off the event loop, before the message
that carries it). A lost counter file restarts from 0, logged as an error; one
read from its backup skips a number, so no number is reused.

**Credentials**, read afresh for every attempt so that renewed files are
picked up without a restart: the password from ``password_file`` (stripped);
with ``tls``, a TLS ≥ 1.2 context that verifies the broker's certificate and
host name against ``ca_file`` (the system store without it) and presents the
client certificate when ``cert_file``/``key_file`` are set. A file that cannot
be read or loaded fails the attempt as a problem on this device (logged as an
error, retried), never the agent. A failed handshake's socket is closed at
once (:class:`_ClosingSSLSocket`; paho leaves it to the garbage collector).

**Observing it.** :attr:`MqttLink.connected`, :meth:`~MqttLink.wait_connected`,
:meth:`~MqttLink.wait_disconnected`, and listeners (:meth:`~MqttLink.add_listener`)
called with a :class:`LinkStatus` on every change: the supervisor treats the
broker's loss as central's loss. Logging is one event per change: ``mqtt_up``
(info), ``mqtt_down`` (warning), ``mqtt_connect_failed`` (warning the first
time a reason is seen while down — error for a problem on this device, such as
an unreadable password file — and debug for each further attempt).

**Inbound: flood control first, and cheap.** aiomqtt puts every PUBLISH that
paho decodes into its message queue from a socket callback. The link hands
aiomqtt its own queue class (a *tap*) whose ``put_nowait`` passes each message
straight to a :class:`CommandIntake`: no task switch, no unbounded buffer. The
intake judges in order of cost — size (``max_command_bytes``), a token bucket
(``command_rate`` per second, burst equal to the rate), room in the bounded
queue (``command_queue``) — and drops what fails, counted in
:attr:`MqttLink.stats` and reported by a log line at most every
:data:`DROP_LOG_INTERVAL_S`. paho reads about one packet per readable-socket
callback, so a flood interleaves with the other tasks instead of starving them
(the tests run a 10 Hz ticker under 5,000 messages). The size check happens
after paho has read the packet; refusing big packets before they cross the
network is the broker's ``message_size_limit``. The queue belongs to the link,
not to one connection: commands received just before a drop are still handed
out. Nothing here interprets a payload (that is :mod:`agent.central.jws`).

**Outbound.** :meth:`~MqttLink.publish` returns for QoS 1 only after the
PUBACK and raises :class:`MqttLinkDown` when the link is down, when the
connection ends while waiting, or when no PUBACK comes within
``publish_timeout_s``; the caller (the events outbox) keeps the message and
tries again later. That is at-least-once: a retry after a lost PUBACK may
duplicate, which is why events carry sequence numbers.
:meth:`~MqttLink.publish_latest` is for QoS 0 ``spat``: it never waits and
never queues the past — one pending message per topic, replaced by a newer
one while the previous is being sent, dropped while the link is down.

**Errors.** ``aiomqtt.MqttError`` is translated to :class:`MqttLinkDown`
(code ``E_LINK``) where it enters; ``run`` never raises it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import math
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field

from agent.backoff import Backoff, Clock, SystemClock
from agent.central.durable import DurableFile, StateFileError, model_parser
from agent.central.topics import DeviceTopics
from agent.errors import ConfigError, GreenwaveError
from agent.logs import get_logger

if TYPE_CHECKING:
    from agent.config import AgentConfig, MqttConfig

SESSION_FILE: Final = "mqtt-session.json"
SESSION_KIND: Final = "mqtt-session"
#: The will, and what a clean stop publishes on ``…/online``.
OFFLINE_PAYLOAD: Final = b'{"online":false}'
#: A connection up at least this long counts as stable: the next wait starts short again.
STABLE_AFTER_S: Final = 10.0
#: At most one "commands dropped" log line per this many seconds.
DROP_LOG_INTERVAL_S: Final = 10.0
#: How long a clean stop waits for the PUBACK of its offline message.
OFFLINE_TIMEOUT_S: Final = 2.0
MAX_PASSWORD_BYTES: Final = 4096

_log = get_logger("central.link")


#: The link drops, unread, commands above this many times ``max_command_bytes``.
OVERSIZE_FACTOR = 4


class MqttLinkDown(GreenwaveError):
    """The broker is not reachable, or the connection ended before the operation completed."""

    code = "E_LINK"


class _LocalProblem(MqttLinkDown):
    """A connection attempt that cannot succeed until someone fixes this device (a file)."""


# -- inbound flood control (no I/O) --------------------------------------------------


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; the caller passes the time."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Verdict(enum.Enum):
    """What the intake did with one inbound message."""

    ACCEPTED = "accepted"
    OVERSIZE = "oversize"
    RATE = "rate"
    FULL = "full"


@dataclass(frozen=True, kw_only=True, slots=True)
class InboundMessage:
    """A message taken off a command topic, not yet looked into."""

    topic: str
    payload: bytes
    #: When it arrived (the link's monotonic clock).
    received_at: float


class CommandIntake:
    """Flood control for inbound commands: size, then rate, then room; drops are counted."""

    def __init__(self, *, max_bytes: int, rate: float, capacity: int, now: float) -> None:
        if max_bytes < 1 or capacity < 1:
            raise ValueError("max_bytes and capacity must be at least 1")
        self.max_bytes = max_bytes
        self.capacity = capacity
        self._bucket = TokenBucket(rate, burst=max(1.0, rate), now=now)
        self._queue: collections.deque[InboundMessage] = collections.deque()
        self.counts: collections.Counter[Verdict] = collections.Counter()

    def offer(self, topic: str, payload: bytes, now: float) -> Verdict:
        """Judge one message; keep it when :attr:`Verdict.ACCEPTED`."""
        verdict = self._judge(payload, now)
        if verdict is Verdict.ACCEPTED:
            self._queue.append(InboundMessage(topic=topic, payload=payload, received_at=now))
        self.counts[verdict] += 1
        return verdict

    def _judge(self, payload: bytes, now: float) -> Verdict:
        if len(payload) > self.max_bytes:
            return Verdict.OVERSIZE
        if not self._bucket.take(now):
            return Verdict.RATE
        if len(self._queue) >= self.capacity:
            return Verdict.FULL
        return Verdict.ACCEPTED

    def pop(self) -> InboundMessage | None:
        """The oldest kept message, or None."""
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """Messages dropped so far, for every reason."""
        return sum(n for verdict, n in self.counts.items() if verdict is not Verdict.ACCEPTED)


def _tap_queue(
    intake: Callable[[aiomqtt.Message], None],
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """aiomqtt's incoming-message queue class, replaced by one that hands each message on at once.

    aiomqtt calls only ``put_nowait`` from its socket callback; this queue
    therefore stays empty, and ``client.messages`` serves only to tell when the
    connection ended (see :func:`_until_disconnected`).
    """

    class TapQueue(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            intake(item)

    return TapQueue


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.

    paho leaves the socket of a failed handshake (wrong CA, refused client
    certificate) to the garbage collector; retrying every few seconds, that
    is an open descriptor and a ``ResourceWarning`` per attempt.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Wait until the connection ends; always raises :class:`MqttLinkDown`."""
    try:
        async for _ in client.messages:
            pass  # never reached: the tap queue stays empty
    except aiomqtt.MqttError as err:
        cause = err.__cause__
        detail = _describe(cause) if cause is not None else "closed"
        raise MqttLinkDown(f"connection lost ({detail})") from err
    raise MqttLinkDown("connection lost (the message iterator ended)")


# -- what the link shows --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkStatus:
    """Whether the broker connection is up, since when, and why not."""

    up: bool
    #: When this state began (the link's monotonic clock).
    since: float
    #: The session counter of the current (or last) connection; None before the first.
    session: int | None = None
    #: Why the link is down ("" while up).
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkStats:
    """Counters since the link was made (a snapshot)."""

    received: int
    accepted: int
    dropped_oversize: int
    dropped_rate: int
    dropped_full: int
    #: Commands accepted and not yet taken by the consumer.
    queued: int
    connects: int
    connect_failures: int
    latest_sent: int
    latest_replaced: int
    latest_offline: int

    @property
    def dropped(self) -> int:
        return self.dropped_oversize + self.dropped_rate + self.dropped_full


Listener = Callable[[LinkStatus], None]


class _SessionFile(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    session: Annotated[int, Field(ge=0, le=2**53)]


# -- the link ---------------------------------------------------------------------------


class MqttLink:
    """The one broker connection: reconnecting, observable, flood-proof inbound."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        device_id: str,
        groups: tuple[str, ...] = (),
        software_version: str,
        state_dir: Path,
        command_rate: float,
        command_queue: int,
        max_command_bytes: int,
        clock: Clock | None = None,
        publish_timeout_s: float = 10.0,
        stable_after_s: float = STABLE_AFTER_S,
        rng: random.Random | None = None,
    ) -> None:
        """Set up the link; nothing connects before :meth:`run`.

        ``device_id`` and ``groups`` name the topics (:class:`DeviceTopics`);
        ``software_version`` goes into the online message; ``state_dir`` holds
        the session counter. ``command_rate`` (messages per second),
        ``command_queue`` and ``max_command_bytes`` are the inbound flood
        limits (``[central]``). ``publish_timeout_s`` bounds every wait for the
        broker: CONNACK, SUBACK and each PUBACK. ``stable_after_s``: how long a
        connection must last for the backoff to start short again. Raises
        :class:`ConfigError` for a password file without a username.
        """
        if config.password_file is not None and config.username is None:
            raise ConfigError("[mqtt] password_file needs a username")
        self.config = config
        self.topics = DeviceTopics(device_id, tuple(groups))
        self.client_id = config.client_id or f"greenwave-{device_id}"
        self.software_version = software_version
        self._clock = clock or SystemClock()
        self._publish_timeout_s = publish_timeout_s
        self._stable_after_s = stable_after_s
        self._rng = rng
        self._sessions = DurableFile(state_dir / SESSION_FILE, kind=SESSION_KIND)
        self._session_count = self._load_session_count()
        now = self._clock.monotonic()
        self._intake = CommandIntake(
            max_bytes=max_command_bytes, rate=command_rate, capacity=command_queue, now=now
        )
        self._arrived = asyncio.Event()
        self._tap = _tap_queue(self._take)
        self._drops_logged = 0
        self._drop_logged_at = -math.inf
        self._client: aiomqtt.Client | None = None
        self._status = LinkStatus(up=False, since=now, reason="not connected yet")
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self._listeners: list[Listener] = []
        self._latest: dict[str, bytes] = {}
        self._latest_ready = asyncio.Event()
        #: QoS 1 publications waiting for their PUBACK (cancelled when the link goes down).
        self._sending: set[asyncio.Future[None]] = set()
        self._counts: collections.Counter[str] = collections.Counter()
        self._last_failure: str | None = None

    @classmethod
    def from_config(
        cls, config: AgentConfig, *, software_version: str, clock: Clock | None = None
    ) -> MqttLink:
        """The link as the agent's configuration describes it."""
        return cls(
            config.mqtt,
            device_id=config.device.id,
            groups=config.device.groups,
            software_version=software_version,
            state_dir=config.state.dir,
            command_rate=config.central.command_rate,
            command_queue=config.central.command_queue,
            # A generous memory guard: what is only moderately too large still
            # reaches the verifier, which answers it with E_SCHEMA.
            max_command_bytes=OVERSIZE_FACTOR * config.central.max_command_bytes,
            clock=clock,
        )

    # -- state -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the connection is up (subscribed, online published)."""
        return self._status.up

    @property
    def status(self) -> LinkStatus:
        """The current state."""
        return self._status

    @property
    def session(self) -> int:
        """The newest session number (0 before the first connect ever)."""
        return self._session_count

    @property
    def stats(self) -> LinkStats:
        """A snapshot of the counters."""
        counts = self._intake.counts
        return LinkStats(
            received=sum(counts.values()),
            accepted=counts[Verdict.ACCEPTED],
            dropped_oversize=counts[Verdict.OVERSIZE],
            dropped_rate=counts[Verdict.RATE],
            dropped_full=counts[Verdict.FULL],
            queued=len(self._intake),
            connects=self._counts["connects"],
            connect_failures=self._counts["connect_failures"],
            latest_sent=self._counts["latest_sent"],
            latest_replaced=self._counts["latest_replaced"],
            latest_offline=self._counts["latest_offline"],
        )

    async def wait_connected(self) -> None:
        """Return once the link is up (at once if it is)."""
        await self._up.wait()

    async def wait_disconnected(self) -> None:
        """Return once the link is down (at once if it is)."""
        await self._down.wait()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change of :attr:`status`; returns the remover."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    # -- the reconnect loop -----------------------------------------------------------

    async def run(self) -> None:
        """Keep the connection up until cancelled (never raises for broker trouble)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._send_latest(), name="mqtt-latest")
            try:
                await self._reconnect_forever()
            finally:
                if self._status.up:
                    self._went_down("stopped")

    async def _reconnect_forever(self) -> None:
        backoff = Backoff(self.config.reconnect_initial_s, self.config.reconnect_max_s, self._rng)
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._connection(attempts)
            except MqttLinkDown as err:
                if self._status.up:
                    if self._clock.monotonic() - self._status.since >= self._stable_after_s:
                        backoff.reset()
                    delay = backoff.next_delay()
                    self._went_down(str(err), retry_in=delay)
                    attempts = 0
                else:
                    self._counts["connect_failures"] += 1
                    delay = backoff.next_delay()
                    self._log_failure(err, attempts, delay)
                await self._clock.sleep(delay)

    async def _connection(self, attempts: int) -> None:
        """One connection, from CONNECT until it ends; raises :class:`MqttLinkDown` then."""
        client = await self._new_client()
        connected = False
        try:
            async with client:
                connected = True
                try:
                    session = await self._open_session(client)
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # Python 3.11's wait_for (inside aiomqtt) can swallow a cancel
                        # that lands while the session opens: honour it here, or a
                        # SIGTERM right after start would wait forever.
                        raise asyncio.CancelledError
                    self._went_up(client, session, attempts)
                    await _until_disconnected(client)
                except asyncio.CancelledError:
                    await self._say_offline(client)
                    raise
        except aiomqtt.MqttError as err:
            raise MqttLinkDown(self._failure_reason(err, connected=connected)) from err

    def _failure_reason(self, err: aiomqtt.MqttError, *, connected: bool) -> str:
        if connected:
            return f"opening the session: {_describe(err)}"
        if str(err) == "Operation timed out":  # aiomqtt's words for "no CONNACK in time"
            return (
                f"connecting: no CONNACK within {self._publish_timeout_s} s (the broker "
                "closed the connection or did not answer; a refused client certificate "
                "looks like this)"
            )
        return f"connecting: {_describe(err)}"

    async def _new_client(self) -> aiomqtt.Client:
        config = self.config
        password = self._read_password()
        tls_context = await asyncio.to_thread(self._tls_context)
        return aiomqtt.Client(
            config.host,
            config.port,
            identifier=self.client_id,
            clean_session=False,
            username=config.username,
            password=password,
            will=aiomqtt.Will(self.topics.online, OFFLINE_PAYLOAD, qos=1, retain=True),
            keepalive=config.keepalive_s,
            tls_context=tls_context,
            timeout=self._publish_timeout_s,
            queue_type=self._tap,
            # No Nagle: an ack must not wait ~40 ms for the broker's delayed ACK of a spat.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )

    async def _open_session(self, client: aiomqtt.Client) -> int:
        """Count the session, subscribe, say online; returns the session number."""
        session = await self._next_session()
        topics = self.topics.command_topics
        granted = await client.subscribe([(topic, 1) for topic in topics])
        refused = [topic for topic, code in zip(topics, granted, strict=False) if _refused(code)]
        if refused:
            # Still up: telemetry flows, and a lost heartbeat ends central's lease anyway.
            _log.error("mqtt_subscription_refused", topics=refused)
        online = {"online": True, "session": session, "version": self.software_version}
        payload = json.dumps(online, separators=(",", ":")).encode()
        await client.publish(self.topics.online, payload, qos=1, retain=True)
        return session

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """On a clean stop: what the will would have said (a DISCONNECT discards the will)."""
        try:
            async with asyncio.timeout(OFFLINE_TIMEOUT_S):
                await client.publish(
                    self.topics.online, OFFLINE_PAYLOAD, qos=1, retain=True, timeout=math.inf
                )
        except (aiomqtt.MqttError, TimeoutError) as err:
            _log.warning("mqtt_offline_not_published", reason=_describe(err))

    # -- connect inputs -------------------------------------------------------------------

    def _read_password(self) -> str | None:
        path = self.config.password_file
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_PASSWORD_BYTES + 1)
        except OSError as err:
            raise _LocalProblem(
                f"cannot read the password file {path}: {err.strerror or err}"
            ) from err
        if len(data) > MAX_PASSWORD_BYTES:
            raise _LocalProblem(f"the password file {path} is larger than {MAX_PASSWORD_BYTES} B")
        try:
            password = data.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise _LocalProblem(f"the password file {path} is not UTF-8 text") from err
        if not password:
            raise _LocalProblem(f"the password file {path} is empty")
        return password

    def _tls_context(self) -> ssl.SSLContext | None:
        """A fresh TLS context per attempt (renewed files are picked up); blocking file reads."""
        config = self.config
        if not config.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=_text(config.ca_file))
            if config.cert_file is not None:
                context.load_cert_chain(config.cert_file, _text(config.key_file))
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            raise _LocalProblem(f"cannot load the TLS files: {_describe(err)}") from err
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.sslsocket_class = _ClosingSSLSocket
        return context

    # -- session counter ------------------------------------------------------------------

    def _load_session_count(self) -> int:
        try:
            loaded = self._sessions.load(model_parser(_SessionFile))
        except StateFileError as err:
            _log.error("mqtt_session_counter_lost", error=str(err), restart_at=0)
            return 0
        if loaded.value is None:
            return 0
        # The backup is one write older: skip its successor, which may have been used.
        return loaded.value.session + (1 if loaded.source == "backup" else 0)

    async def _next_session(self) -> int:
        session = self._session_count + 1
        try:
            await asyncio.to_thread(self._sessions.write, {"session": session})
        except StateFileError as err:
            _log.error("mqtt_session_counter_unwritable", error=str(err))
        self._session_count = session
        return session

    # -- state changes ----------------------------------------------------------------------

    def _went_up(self, client: aiomqtt.Client, session: int, attempts: int) -> None:
        now = self._clock.monotonic()
        down_for = now - self._status.since
        self._client = client
        self._counts["connects"] += 1
        self._last_failure = None
        self._set_status(LinkStatus(up=True, since=now, session=session))
        self._down.clear()
        self._up.set()
        _log.info(
            "mqtt_up",
            host=self.config.host,
            port=self.config.port,
            tls=self.config.tls,
            client_id=self.client_id,
            session=session,
            attempts=attempts,
            down_for_s=round(down_for, 3),
        )

    def _went_down(self, reason: str, *, retry_in: float | None = None) -> None:
        now = self._clock.monotonic()
        up_for = now - self._status.since
        self._client = None
        self._latest.clear()
        for sending in self._sending:
            sending.cancel()
        self._set_status(
            LinkStatus(up=False, since=now, session=self._status.session, reason=reason)
        )
        self._up.clear()
        self._down.set()
        if retry_in is None:
            _log.info("mqtt_down", reason=reason, up_for_s=round(up_for, 3))
        else:
            _log.warning(
                "mqtt_down", reason=reason, up_for_s=round(up_for, 3), retry_in_s=round(retry_in, 3)
            )

    def _set_status(self, status: LinkStatus) -> None:
        self._status = status
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # noqa: BLE001 - a listener's bug must not take the link down
                _log.exception("mqtt_listener_failed", listener=repr(listener))

    def _log_failure(self, err: MqttLinkDown, attempts: int, delay: float) -> None:
        reason = str(err)
        fields = {"reason": reason, "attempt": attempts, "retry_in_s": round(delay, 3)}
        if reason == self._last_failure:
            _log.debug("mqtt_connect_failed", **fields)
        elif isinstance(err, _LocalProblem):
            _log.error("mqtt_connect_failed", **fields)
        else:
            _log.warning("mqtt_connect_failed", **fields)
        self._last_failure = reason

    # -- inbound ------------------------------------------------------------------------------

    def _take(self, message: aiomqtt.Message) -> None:
        """The tap: called from aiomqtt's socket callback for every PUBLISH received."""
        now = self._clock.monotonic()
        verdict = self._intake.offer(message.topic.value, message.payload, now)
        if verdict is Verdict.ACCEPTED:
            self._arrived.set()
        else:
            self._note_drop(now)

    def _note_drop(self, now: float) -> None:
        if now - self._drop_logged_at < DROP_LOG_INTERVAL_S:
            return
        counts = self._intake.counts
        dropped = self._intake.dropped
        _log.warning(
            "mqtt_commands_dropped",
            since_last_report=dropped - self._drops_logged,
            oversize=counts[Verdict.OVERSIZE],
            rate=counts[Verdict.RATE],
            full=counts[Verdict.FULL],
            max_bytes=self._intake.max_bytes,
            capacity=self._intake.capacity,
        )
        self._drops_logged = dropped
        self._drop_logged_at = now

    async def next_command(self) -> InboundMessage:
        """The oldest command message received and kept (waits for one)."""
        while (message := self._intake.pop()) is None:
            self._arrived.clear()
            await self._arrived.wait()
        return message

    async def commands(self) -> AsyncIterator[InboundMessage]:
        """Every command message kept, in order of arrival, forever."""
        while True:
            yield await self.next_command()

    # -- outbound -----------------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish; for QoS 1 return only after the PUBACK.

        Raises :class:`MqttLinkDown` when the link is down, when the connection
        ends before the broker confirmed, or when no PUBACK came within
        ``publish_timeout_s``. The caller keeps the message and retries.
        """
        client = self._client
        if client is None:
            raise MqttLinkDown("not connected to the broker")
        # One task per message, no more: the wait for the PUBACK must end when the
        # connection does (aiomqtt leaves it pending), so _went_down cancels it.
        sending = asyncio.ensure_future(
            client.publish(topic, payload, qos=qos, retain=retain, timeout=math.inf)
        )
        self._sending.add(sending)
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await sending
        except TimeoutError:
            raise MqttLinkDown(f"no PUBACK within {self._publish_timeout_s} s") from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            raise MqttLinkDown("the connection ended before the broker confirmed") from None
        except aiomqtt.MqttError as err:
            raise MqttLinkDown(f"publish failed: {_describe(err)}") from err
        finally:
            self._sending.discard(sending)
            if not sending.done():
                sending.cancel()
                # Whatever it ends with now is of no interest: keep asyncio from
                # logging "exception never retrieved" for it.
                sending.add_done_callback(_ignore_outcome)

    def publish_latest(self, topic: str, payload: bytes) -> bool:
        """Send ``payload`` at QoS 0 soon, replacing one still waiting; False while down."""
        if self._client is None:
            self._counts["latest_offline"] += 1
            return False
        if topic in self._latest:
            self._counts["latest_replaced"] += 1
        self._latest[topic] = payload
        self._latest_ready.set()
        return True

    async def _send_latest(self) -> None:
        """The one sender of :meth:`publish_latest` messages (lives as long as ``run``)."""
        while True:
            await self._latest_ready.wait()
            self._latest_ready.clear()
            while self._latest and (client := self._client) is not None:
                topic = next(iter(self._latest))
                payload = self._latest.pop(topic)
                try:
                    await client.publish(topic, payload, qos=0, timeout=self._publish_timeout_s)
                except aiomqtt.MqttError as err:
                    # The connection is ending; the reconnect loop notices and reports it.
                    _log.debug("mqtt_latest_not_sent", topic=topic, reason=_describe(err))
                    break
                self._counts["latest_sent"] += 1


def _ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _refused(code: object) -> bool:
    """A SUBACK return code (an int, or paho's ``ReasonCode``) that refuses: 0x80 and above."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _describe(err: BaseException) -> str:
    """One line for a log or an error: the error and, when it has one, its cause."""
    text = str(err).strip() or type(err).__name__
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        text = f"{text}: {str(cause).strip()}"
    first = text.splitlines()[0]
    return first if len(first) <= 300 else first[:297] + "..."
