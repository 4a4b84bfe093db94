"""The central side of the MQTT contract (SPEC §4): sign commands, publish them, follow answers.

Used by ``greenwave central`` (the reference tool for integrators), by the
end-to-end tests and by the benchmarks. A city's own central system does the
same things in its own stack; this module is the executable description of
how::

    signer = CommandSigner(load_signing_key(Path("tms-1.key"), kid="tms-1"), iss="tms.city")
    async with CentralClient(BrokerSettings(host="broker.city", tls=True, ca_file=ca)) as central:
        command = signer.sign("control.pattern", {"pattern": 3}, aud="main-5th")
        outcome = await central.command(
            command, device="main-5th", want=AckStatus.APPLIED, timeout_s=30
        )
        if not outcome.ok:
            ...  # outcome.refused, outcome.missing, outcome.final[device].detail

The pieces:

* :class:`CommandSigner` turns (command, arguments, audience) into a signed
  :class:`SignedCommand`, checking locally what the device would check about
  the command itself (known ``cmd``, ``aud = "*"`` for heartbeats only, the
  arguments' schema), so a typo fails here and not as an ``E_SCHEMA`` ack.
* :class:`CentralClient` is one MQTT connection (aiomqtt). It owns one reader
  task that hands every incoming message to each open :class:`Subscription`
  whose topic filter matches, so acks, state and events can be followed at
  the same time over one connection.
* :class:`AckTracker` (no I/O) follows the acknowledgements of one command
  until every target device has reached the wanted status, or refused;
  :class:`AckStream.wait_for` drives it from the broker with a timeout and
  returns an :class:`AckOutcome`.
* :class:`EventsSequence` (no I/O) checks that the sequence numbers of the
  ``events`` batches are contiguous and reports gaps, announced drops and
  redeliveries.

**Subscribe before publishing.** Acks are neither retained nor queued for a
subscriber that does not exist yet: an ack published before the subscription
is in place is lost. :meth:`CentralClient.command` subscribes, publishes and
waits in that order; code that publishes by itself opens
:meth:`CentralClient.acks` first and calls :meth:`AckStream.wait_for` after
publishing.

**Acks that name no command.** A device echoes a ``jti`` only from a verified
signature (see :mod:`agent.central.jws`): a command signed with a key the
device does not know is rejected with ``jti: null``. Such a rejection from a
target device while waiting is reported as *unattributed* (it is probably,
not certainly, ours) and does not settle the device.

Errors are :class:`CentralError` (one line for a human), translated from
aiomqtt, ssl, file and pydantic errors where they arise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Self

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.central.commands import COMMANDS, Ack, AckStatus
from agent.central.durable import strict_json_loads
from agent.central.signing import DEFAULT_LIFETIME_S, SigningAlg, SigningKey, new_jti, sign_command
from agent.central.topics import HEARTBEAT, ROOT, DeviceTopics, device_topic, group_cmd
from agent.errors import GreenwaveError
from agent.logs import get_logger
from agent.plan.document import schema_problems

Clock = Callable[[], float]
OnAck = Callable[[Ack], None]

#: What ``follow`` subscribes to by default: everything a device publishes.
FOLLOW_KINDS: tuple[str, ...] = ("ack", "state", "online", "spat", "events")
#: Messages held per subscription before further ones are dropped (and counted).
DEFAULT_QUEUE_LIMIT = 10_000

_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ISSUER = re.compile(r"^[\x21-\x7e]{1,128}$")
_JTI = re.compile(r"^[\x21-\x7e]{1,64}$")

_log = get_logger("central.client")


class CentralError(GreenwaveError):
    """The central side cannot do what was asked: broker unreachable, bad command, bad key …"""

    code = "E_CENTRAL"


# -- signing -------------------------------------------------------------------------


def load_signing_key(path: Path, *, kid: str, password: bytes | None = None) -> SigningKey:
    """Read a PKCS#8 PEM Ed25519 private key (``greenwave central keygen`` writes one).

    Raises :class:`CentralError` with the reason: unreadable, a public key
    given by mistake, encrypted without a password, wrong password, not Ed25519.
    """
    try:
        pem = path.read_bytes()
    except OSError as err:
        raise CentralError(f"{path}: cannot read the key: {err.strerror or err}") from err
    if b"PRIVATE KEY" not in pem:
        if b"PUBLIC KEY" in pem:
            raise CentralError(f"{path}: this is a public key; signing needs the private key")
        raise CentralError(f"{path}: not a PEM private key (-----BEGIN PRIVATE KEY-----)")
    try:
        return SigningKey.from_pem(pem, kid=kid, password=password)
    except TypeError as err:
        if password is None:
            raise CentralError(f"{path}: the key is encrypted; give its password") from err
        raise CentralError(f"{path}: the key is not encrypted; give no password") from err
    except ValueError as err:
        why = "wrong password, or not an Ed25519 key" if password else "not an Ed25519 key"
        raise CentralError(f"{path}: cannot load the private key ({why})") from err


@dataclass(frozen=True, kw_only=True)
class SignedCommand:
    """A signed command ready to publish, with the claims a sender needs to follow it."""

    #: The compact JWS, the MQTT payload.
    token: str
    jti: str
    cmd: str
    #: ``aud`` as signed: one device id, a list of them, or ``"*"``.
    aud: str | tuple[str, ...]
    iat: int
    exp: int

    @property
    def audience(self) -> tuple[str, ...]:
        """``aud`` as a tuple."""
        return (self.aud,) if isinstance(self.aud, str) else self.aud


class CommandSigner:
    """Signs commands for one issuer with one key.

    ``sign()`` checks what the device would check about the command itself
    before signing (known ``cmd``, audience, the arguments' schema) and
    raises :class:`CentralError` when it would be rejected as malformed.
    Safety (site limits), versions and replay are the device's to judge.
    Use :func:`agent.central.signing.sign_command` to make deliberately bad
    tokens in tests.
    """

    def __init__(
        self,
        key: SigningKey,
        iss: str,
        *,
        clock: Clock = time.time,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        alg: SigningAlg = "Ed25519",
    ) -> None:
        if not _ISSUER.fullmatch(iss):
            raise CentralError(f"not an issuer id (printable ASCII, no spaces): {iss!r}")
        _check_lifetime(lifetime_s)
        self.key = key
        self.iss = iss
        self.lifetime_s = lifetime_s
        self.alg: SigningAlg = alg
        self._clock = clock

    @property
    def kid(self) -> str:
        """The key id every token carries in its header."""
        return self.key.kid

    def sign(
        self,
        cmd: str,
        args: Mapping[str, Any] | None = None,
        *,
        aud: str | Sequence[str],
        jti: str | None = None,
        nbf: float | None = None,
        lifetime_s: float | None = None,
    ) -> SignedCommand:
        """Sign ``cmd`` with ``args`` for ``aud`` (a device id, a list of them, or ``"*"``)."""
        spec = COMMANDS.get(cmd)
        if spec is None:
            raise CentralError(f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
        audience = _audience(aud)
        if "*" in audience and (len(audience) > 1 or not spec.broadcast):
            raise CentralError(f'aud "*" (every device) is for heartbeat only, not {cmd}')
        body = dict(args) if args is not None else {}
        try:
            spec.args.model_validate(body)
        except ValidationError as err:
            raise CentralError(f"{cmd}: {_problems(err, spec.args)}") from err
        command_id = jti if jti is not None else new_jti()
        if not _JTI.fullmatch(command_id):
            raise CentralError(f"not a command id (1-64 printable ASCII): {command_id!r}")
        lifetime = self.lifetime_s if lifetime_s is None else lifetime_s
        _check_lifetime(lifetime)
        claimed_aud: str | tuple[str, ...] = aud if isinstance(aud, str) else audience
        token = sign_command(
            self.key,
            iss=self.iss,
            aud=claimed_aud,
            cmd=cmd,
            args=body,
            now=self._clock(),
            lifetime_s=lifetime,
            jti=command_id,
            nbf=nbf,
            alg=self.alg,
        )
        claims = peek_claims(token)
        return SignedCommand(
            token=token,
            jti=command_id,
            cmd=cmd,
            aud=claimed_aud,
            iat=int(claims["iat"]),
            exp=int(claims["exp"]),
        )

    def heartbeat(self, *, lifetime_s: float | None = None) -> SignedCommand:
        """A ``heartbeat`` for every device (``aud = "*"``)."""
        return self.sign("heartbeat", {}, aud="*", lifetime_s=lifetime_s)


def _audience(aud: str | Sequence[str]) -> tuple[str, ...]:
    audience = (aud,) if isinstance(aud, str) else tuple(aud)
    if not audience:
        raise CentralError("aud names no device")
    bad = [a for a in audience if a != "*" and not _DEVICE_ID.fullmatch(a)]
    if bad:
        raise CentralError(f"not a device id ([a-z0-9][a-z0-9-]{{0,62}}): {bad[0]!r}")
    if len(set(audience)) != len(audience):
        raise CentralError("aud names a device twice")
    return audience


def _check_lifetime(lifetime_s: float) -> None:
    if not 1 <= lifetime_s <= 86_400:
        raise CentralError(f"a command lifetime is 1 to 86400 s, not {lifetime_s:g}")


def _problems(err: ValidationError, model: type[BaseModel]) -> str:
    problems = schema_problems(err, model)
    shown = [f"args.{path}: {why}" if path != "(document)" else why for path, why in problems[:3]]
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return ("; ".join(shown) or "invalid arguments") + more


def peek_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWS, signature NOT checked: for display and routing only."""
    try:
        segment = token.strip().split(".")[1]
        claims = strict_json_loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError) as err:
        raise CentralError("not a JWS compact token (header.payload.signature)") from err
    if not isinstance(claims, dict):
        raise CentralError("the token's claims are not a JSON object")
    return claims


# -- the broker ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BrokerSettings:
    """Where the broker is and how to log in (TLS verified against ``ca_file``)."""

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    #: CA bundle to verify the broker with; None: the system's trust store.
    ca_file: Path | None = None
    #: Client certificate and key, for brokers that require one.
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: None: a random client id, clean session (central tools need no persistent session).
    client_id: str | None = None
    keepalive_s: int = 30
    #: How long connecting, subscribing and publishing may take.
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise CentralError(f"not a TCP port: {self.port}")
        if (self.cert_file is None) != (self.key_file is None):
            raise CentralError("a client certificate needs its key, and a key its certificate")
        if not self.tls and (self.ca_file or self.cert_file):
            raise CentralError("CA and client certificate files need TLS")

    @classmethod
    def from_address(cls, address: str, **settings: Any) -> BrokerSettings:
        """``HOST``, ``HOST:PORT`` or ``[IPv6]:PORT``; port 8883 by default with TLS, else 1883."""
        text = address.strip()
        host, port_text = text, ""
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
        if not host:
            raise CentralError(f"not a broker address (HOST:PORT): {address!r}")
        if port_text:
            if not port_text.isdigit():
                raise CentralError(f"not a broker address (HOST:PORT): {address!r}")
            port = int(port_text)
        else:
            port = 8883 if settings.get("tls") else 1883
        return cls(host=host, port=port, **settings)

    @property
    def address(self) -> str:
        """``host:port``, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: the broker verified (hostname included), client cert when given."""
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as err:
            raise CentralError(f"cannot set up TLS: {err}") from err
        return context


@dataclass(frozen=True, kw_only=True)
class Received:
    """One message from the broker."""

    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def device(self) -> str | None:
        """The device id of a ``greenwave/v1/<dev>/<leaf>`` topic (None for other topics)."""
        parts = self.topic.split("/")
        if len(parts) == 4 and "/".join(parts[:2]) == ROOT and parts[2] not in {"central"}:
            return parts[2]
        return None

    @property
    def kind(self) -> str:
        """The last topic level: ``ack``, ``state``, ``online``, ``spat``, ``events``, ``cmd`` …"""
        return self.topic.rsplit("/", 1)[-1]

    def json(self) -> Any:
        """The payload as strict JSON; :class:`CentralError` when it is not."""
        try:
            return strict_json_loads(self.payload)
        except ValueError as err:
            raise CentralError(f"{self.topic}: payload {err}") from err


class Subscription:
    """Messages on some topic filters, in arrival order, from the moment it was opened.

    Iterate it (``async for message in subscription``) or call :meth:`get`
    (inside ``asyncio.timeout`` to bound the wait). When the connection to
    the broker is lost, both raise :class:`CentralError`. At most ``limit``
    messages wait unread; beyond that new ones are dropped and counted in
    :attr:`dropped`.
    """

    def __init__(self, filters: tuple[str, ...], *, limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self.filters = filters
        self.dropped = 0
        self._limit = limit
        self._queue: asyncio.Queue[Received | None] = asyncio.Queue()
        self._error: CentralError | None = None

    def matches(self, topic: str | aiomqtt.Topic) -> bool:
        """True when ``topic`` matches one of this subscription's filters."""
        name = topic if isinstance(topic, aiomqtt.Topic) else aiomqtt.Topic(topic)
        return any(name.matches(pattern) for pattern in self.filters)

    async def get(self) -> Received:
        """The next message (wrap in ``asyncio.timeout`` to bound the wait)."""
        if self._error is not None and self._queue.empty():
            raise self._error
        message = await self._queue.get()
        if message is None:
            assert self._error is not None
            raise self._error
        return message

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Received:
        return await self.get()

    def _deliver(self, message: Received) -> None:
        if self._queue.qsize() >= self._limit:
            self.dropped += 1
            return
        self._queue.put_nowait(message)

    def _close(self, error: CentralError) -> None:
        self._error = error
        self._queue.put_nowait(None)


# -- acknowledgements ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AckOutcome:
    """Where one command ended up on each target device when waiting stopped."""

    jti: str
    want: AckStatus
    devices: tuple[str, ...]
    #: Every ack for this command from a target device, in arrival order.
    acks: tuple[Ack, ...]
    #: The ack that settled each settled device (wanted status, rejected or failed).
    final: Mapping[str, Ack]
    #: Rejections with ``jti: null`` from target devices (probably this command; see module doc).
    unattributed: tuple[Ack, ...] = ()

    @property
    def reached(self) -> tuple[str, ...]:
        """Devices that reached the wanted status."""
        return tuple(d for d in self.devices if d in self.final and _reached(self.final[d]))

    @property
    def refused(self) -> tuple[str, ...]:
        """Devices that rejected the command or failed to apply it."""
        return tuple(d for d in self.devices if d in self.final and not _reached(self.final[d]))

    @property
    def missing(self) -> tuple[str, ...]:
        """Devices not settled when waiting stopped (timeout)."""
        return tuple(d for d in self.devices if d not in self.final)

    @property
    def ok(self) -> bool:
        """Every target device reached the wanted status."""
        return len(self.reached) == len(self.devices)


def _reached(final: Ack) -> bool:
    # A device settles on the wanted status or on a refusal (see AckTracker).
    return final.status not in _REFUSALS


_REFUSALS = frozenset({AckStatus.REJECTED, AckStatus.FAILED})
#: The statuses that satisfy a wait for each wanted status.
_SATISFIES: Mapping[AckStatus, frozenset[AckStatus]] = MappingProxyType(
    {
        AckStatus.ACCEPTED: frozenset({AckStatus.ACCEPTED, AckStatus.APPLIED}),
        AckStatus.APPLIED: frozenset({AckStatus.APPLIED}),
    }
)


class AckTracker:
    """The acks of one command on its target devices, until each has settled (no I/O).

    A device settles on the wanted status (``applied`` also satisfies a wait
    for ``accepted``) or on ``rejected``/``failed``; later acks for a settled
    device are still recorded but change nothing.
    """

    def __init__(self, jti: str, *, devices: Iterable[str], want: AckStatus) -> None:
        if want not in _SATISFIES:
            raise ValueError(f"can wait for accepted or applied, not {want}")
        self.jti = jti
        self.want = want
        self.devices = tuple(dict.fromkeys(devices))
        if not self.devices:
            raise ValueError("no device to wait for")
        self._acks: list[Ack] = []
        self._final: dict[str, Ack] = {}
        self._unattributed: list[Ack] = []

    @property
    def settled(self) -> bool:
        """Every target device has settled."""
        return len(self._final) == len(self.devices)

    def feed(self, ack: Ack) -> bool:
        """Take one ack; True when it concerns this command (the caller may show it)."""
        if ack.device not in self.devices:
            return False
        if ack.jti is None:
            if ack.status == AckStatus.REJECTED and ack.device not in self._final:
                self._unattributed.append(ack)
                return True
            return False
        if ack.jti != self.jti:
            return False
        self._acks.append(ack)
        if ack.device not in self._final and (
            ack.status in _REFUSALS or ack.status in _SATISFIES[self.want]
        ):
            self._final[ack.device] = ack
        return True

    def outcome(self) -> AckOutcome:
        """The result so far."""
        return AckOutcome(
            jti=self.jti,
            want=self.want,
            devices=self.devices,
            acks=tuple(self._acks),
            final=MappingProxyType(dict(self._final)),
            unattributed=tuple(self._unattributed),
        )


def parse_ack(message: Received) -> Ack:
    """The :class:`Ack` in a message on ``…/<dev>/ack``; :class:`CentralError` when malformed."""
    try:
        ack = Ack.model_validate_json(message.payload)
    except ValidationError as err:
        why = "; ".join(f"{path}: {reason}" for path, reason in schema_problems(err, Ack)[:3])
        raise CentralError(f"{message.topic}: not an acknowledgement: {why}") from err
    if message.device is not None and ack.device != message.device:
        raise CentralError(f"{message.topic}: an ack for device {ack.device!r} on another's topic")
    return ack


class AckStream:
    """The acknowledgements of some devices, parsed; malformed ones are logged and skipped."""

    def __init__(self, subscription: Subscription, devices: tuple[str, ...]) -> None:
        self.subscription = subscription
        self.devices = devices
        #: Messages on the ack topics that were not valid acks.
        self.malformed = 0

    async def next(self) -> Ack:
        """The next valid ack (wrap in ``asyncio.timeout`` to bound the wait)."""
        while True:
            message = await self.subscription.get()
            try:
                return parse_ack(message)
            except CentralError as err:
                self.malformed += 1
                _log.warning("ack_malformed", topic=message.topic, error=str(err))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Ack:
        return await self.next()

    async def wait_for(
        self,
        jti: str,
        *,
        want: AckStatus = AckStatus.ACCEPTED,
        timeout_s: float,
        devices: Iterable[str] | None = None,
        on_ack: OnAck | None = None,
    ) -> AckOutcome:
        """Follow command ``jti`` until every device settled or ``timeout_s`` passed.

        ``devices`` defaults to the stream's devices; ``on_ack`` sees every
        ack that concerns the command (including unattributed rejections,
        whose ``jti`` is None) as it arrives. Never raises on timeout: the
        outcome lists the devices still ``missing``.
        """
        tracker = AckTracker(jti, devices=self.devices if devices is None else devices, want=want)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not tracker.settled:
                    ack = await self.next()
                    if tracker.feed(ack) and on_ack is not None:
                        on_ack(ack)
        return tracker.outcome()


# -- events ----------------------------------------------------------------------------


class _Lenient(BaseModel):
    # Central reads what devices send; fields it does not know are carried, not refused.
    model_config = ConfigDict(extra="allow", frozen=True)


class EventRecord(_Lenient):
    """One event of the controller's hi-res log (only ``seq`` is needed here)."""

    seq: int = Field(ge=0)


class DroppedRange(_Lenient):
    """Events the device lost before sending them: its store overflowed
    (``reason: "capacity"``) or a stored record was corrupt (``"corrupt"``)."""

    from_seq: int = Field(ge=0)
    to_seq: int = Field(ge=0)
    reason: str = ""


class EventsBatch(_Lenient):
    """A message on ``greenwave/v1/<dev>/events``."""

    device: str
    first_seq: int = Field(ge=0)
    last_seq: int = Field(ge=0)
    events: list[EventRecord]
    #: Numbers inside ``first_seq..last_seq`` that carry no event, and why.
    dropped: list[DroppedRange] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for gap in self.dropped:
            if gap.to_seq < gap.from_seq:
                raise ValueError("dropped.to_seq is before dropped.from_seq")
        return self


def parse_events_batch(message: Received) -> EventsBatch:
    """The batch in a message on ``…/<dev>/events``; :class:`CentralError` when malformed."""
    try:
        return EventsBatch.model_validate_json(message.payload)
    except ValidationError as err:
        why = "; ".join(f"{p}: {r}" for p, r in schema_problems(err, EventsBatch)[:3])
        raise CentralError(f"{message.topic}: not an events batch: {why}") from err


IssueKind = Literal["gap", "dropped", "repeat", "inconsistent"]


@dataclass(frozen=True, kw_only=True)
class SequenceIssue:
    """Something wrong (or worth knowing) about the events stream of one device."""

    kind: IssueKind
    device: str
    from_seq: int
    to_seq: int
    detail: str

    @property
    def count(self) -> int:
        """How many sequence numbers the issue covers."""
        return self.to_seq - self.from_seq + 1

    @property
    def loud(self) -> bool:
        """Events were lost or a batch is broken (a repeat is only a redelivery)."""
        return self.kind != "repeat"


class EventsSequence:
    """Checks that each device's events batches continue each other (no I/O).

    * **gap**: sequence numbers between two batches never arrived and the
      device did not announce dropping them (lost on the way: a broker or
      session problem). Loud.
    * **dropped**: the device says it dropped events (``dropped`` in a batch:
      its store overflowed while central was away). Loud.
    * **inconsistent**: a batch whose events are not exactly
      ``first_seq..last_seq`` in order. Loud.
    * **repeat**: a batch (or its start) that was seen already: QoS 1
      redelivery after a reconnect, or a device that restarted its numbering.

    The first batch seen from a device sets the starting point (following
    may begin in the middle of a stream).
    """

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def expected(self, device: str) -> int | None:
        """The sequence number the next batch of ``device`` should start with."""
        return self._next.get(device)

    def feed(self, batch: EventsBatch) -> tuple[SequenceIssue, ...]:
        """Take one batch; the issues it reveals (none for a clean continuation)."""
        device = batch.device
        issues: list[SequenceIssue] = []

        def issue(kind: IssueKind, first: int, last: int, detail: str) -> None:
            issues.append(
                SequenceIssue(kind=kind, device=device, from_seq=first, to_seq=last, detail=detail)
            )

        seqs = [event.seq for event in batch.events]
        covered = sorted(
            [*seqs, *(n for gap in batch.dropped for n in range(gap.from_seq, gap.to_seq + 1))]
        )
        if batch.last_seq < batch.first_seq or covered != list(
            range(batch.first_seq, batch.last_seq + 1)
        ):
            issue(
                "inconsistent",
                batch.first_seq,
                max(batch.first_seq, batch.last_seq),
                f"batch {batch.first_seq}..{batch.last_seq} holds {len(seqs)} event(s) "
                f"numbered {_ranges(seqs) or 'nothing'}",
            )
        for dropped in batch.dropped:
            why = f" ({dropped.reason})" if dropped.reason else ""
            issue(
                "dropped",
                dropped.from_seq,
                dropped.to_seq,
                f"the device dropped events {dropped.from_seq}..{dropped.to_seq} "
                f"({dropped.to_seq - dropped.from_seq + 1} events){why} before sending them",
            )
        expected = self._next.get(device)
        if expected is not None:
            if batch.first_seq > expected:
                first, last = expected, batch.first_seq - 1
                issue(
                    "gap",
                    first,
                    last,
                    f"events {first}..{last} ({last - first + 1}) never arrived: "
                    f"expected {expected} next, the batch starts at {batch.first_seq}",
                )
            elif batch.first_seq < expected:
                last = min(batch.last_seq, expected - 1)
                issue(
                    "repeat",
                    batch.first_seq,
                    last,
                    f"events {batch.first_seq}..{last} arrived again (a redelivery, "
                    "or the device restarted its numbering)",
                )
        self._next[device] = max(expected or 0, batch.last_seq + 1)
        return tuple(issues)


def _ranges(seqs: Sequence[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:6])
    return shown + (", …" if len(seqs) > 6 else "")


# -- the client ---------------------------------------------------------------------------


class CentralClient:
    """One MQTT connection to the broker, for the central side (see the module docstring).

    ``async with CentralClient(settings) as central:`` connects (raising
    :class:`CentralError` when the broker cannot be reached) and starts the
    reader task; leaving the block stops the reader and disconnects. One
    connection, not reentrant; not reconnecting: a tool or a test wants a
    lost connection to be an error, not a silent retry.
    """

    def __init__(self, broker: BrokerSettings) -> None:
        self.broker = broker
        self._mqtt: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._subscriptions: list[Subscription] = []
        self._filter_users: Counter[str] = Counter()
        self._lost: CentralError | None = None

    async def __aenter__(self) -> Self:
        broker = self.broker
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.username,
            password=broker.password,
            identifier=broker.client_id,
            keepalive=broker.keepalive_s,
            timeout=broker.timeout_s,
            tls_context=broker.ssl_context() if broker.tls else None,
            # No Nagle: a command must not wait ~40 ms for the broker's delayed ACK.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as err:
            raise CentralError(f"cannot connect to the broker {broker.address}: {err}") from err
        self._mqtt = client
        self._lost = None
        self._reader = asyncio.create_task(self._read(client), name="central-reader")
        _log.debug("central_connected", broker=broker.address)
        return self

    async def __aexit__(self, *exc: object) -> None:
        reader, self._reader = self._reader, None
        client, self._mqtt = self._mqtt, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    @property
    def _client(self) -> aiomqtt.Client:
        if self._mqtt is None:
            raise CentralError("not connected (use: async with CentralClient(...) as central)")
        if self._lost is not None:
            raise self._lost
        return self._mqtt

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                received = Received(
                    topic=message.topic.value,
                    payload=_payload_bytes(message.payload),
                    retain=bool(message.retain),
                    qos=message.qos,
                )
                for subscription in tuple(self._subscriptions):
                    if subscription.matches(message.topic):
                        subscription._deliver(received)
        except aiomqtt.MqttError as err:
            lost = CentralError(f"lost the connection to the broker {self.broker.address}: {err}")
            self._lost = lost
            _log.warning("central_connection_lost", broker=self.broker.address, error=str(err))
            for subscription in tuple(self._subscriptions):
                subscription._close(lost)

    # -- publishing ------------------------------------------------------------------

    async def send(self, topic: str, token: str | bytes, *, qos: int = 1) -> None:
        """Publish ``token`` on ``topic`` as it is; returns once the broker has it (PUBACK).

        The raw path: no check of what the token says. See :meth:`publish`.
        """
        client = self._client
        try:
            await client.publish(topic, token, qos=qos)
        except aiomqtt.MqttError as err:
            raise CentralError(f"cannot publish on {topic}: {err}") from err

    async def publish(
        self, command: SignedCommand, *, device: str | None = None, group: str | None = None
    ) -> str:
        """Publish a command on a device's or a group's ``cmd`` topic; returns the topic.

        Refuses (:class:`CentralError`) a command whose ``aud`` does not name
        ``device``, a group command without an explicit device list, and a
        heartbeat anywhere but :data:`~agent.central.topics.HEARTBEAT` when
        neither is given.
        """
        topic = command_topic(command, device=device, group=group)
        await self.send(topic, command.token)
        return topic

    async def heartbeat(self, command: SignedCommand) -> None:
        """Publish a signed heartbeat on the broadcast heartbeat topic."""
        if command.cmd != "heartbeat":
            raise CentralError(f"only a heartbeat goes on {HEARTBEAT}, not {command.cmd}")
        await self.send(HEARTBEAT, command.token)

    # -- subscribing -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(
        self, *filters: str, qos: int = 1, limit: int = DEFAULT_QUEUE_LIMIT
    ) -> AsyncIterator[Subscription]:
        """Receive messages on ``filters`` (MQTT topic filters) while the block runs.

        The broker has confirmed the subscription when the block starts; what
        is published from then on is delivered (retained messages first).
        """
        if not filters:
            raise ValueError("subscribe to at least one topic filter")
        client = self._client
        subscription = Subscription(tuple(dict.fromkeys(filters)), limit=limit)
        new = [f for f in subscription.filters if self._filter_users[f] == 0]
        self._subscriptions.append(subscription)
        self._filter_users.update(subscription.filters)
        try:
            if new:
                await self._subscribe_at_broker(client, new, qos)
            yield subscription
        finally:
            self._subscriptions.remove(subscription)
            self._filter_users.subtract(subscription.filters)
            unused = [f for f in subscription.filters if self._filter_users[f] <= 0]
            for name in unused:
                del self._filter_users[name]
            if unused and self._mqtt is not None and self._lost is None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._mqtt.unsubscribe(unused, timeout=min(2.0, self.broker.timeout_s))

    async def _subscribe_at_broker(
        self, client: aiomqtt.Client, filters: list[str], qos: int
    ) -> None:
        try:
            granted = await client.subscribe([(f, qos) for f in filters])
        except aiomqtt.MqttError as err:
            raise CentralError(f"cannot subscribe to {', '.join(filters)}: {err}") from err
        refused = [f for f, code in zip(filters, granted, strict=False) if _refused(code)]
        if refused:
            raise CentralError(
                f"the broker refused the subscription to {', '.join(refused)} (not authorised?)"
            )

    @contextlib.asynccontextmanager
    async def acks(self, devices: Iterable[str]) -> AsyncIterator[AckStream]:
        """The acknowledgements of ``devices`` while the block runs (subscribe first!)."""
        targets = _device_ids(devices)
        async with self.subscribe(*(DeviceTopics(d).ack for d in targets)) as subscription:
            yield AckStream(subscription, targets)

    async def wait_for_acks(
        self,
        devices: Iterable[str],
        jti: str,
        *,
        want: AckStatus = AckStatus.ACCEPTED,
        timeout_s: float,
        on_ack: OnAck | None = None,
    ) -> AckOutcome:
        """Subscribe to the devices' acks, then follow ``jti`` (see :meth:`AckStream.wait_for`).

        Sees only acks published after it subscribed: for a command you are
        about to publish, use :meth:`command`, or :meth:`acks` around your
        own publishing.
        """
        async with self.acks(devices) as stream:
            return await stream.wait_for(jti, want=want, timeout_s=timeout_s, on_ack=on_ack)

    async def command(
        self,
        command: SignedCommand,
        *,
        device: str | None = None,
        group: str | None = None,
        want: AckStatus = AckStatus.ACCEPTED,
        timeout_s: float,
        on_ack: OnAck | None = None,
    ) -> AckOutcome:
        """Subscribe to the target devices' acks, publish ``command``, follow it.

        The targets are ``device``, or for a group command every device in
        its ``aud``. Returns when every target settled or after ``timeout_s``.
        """
        command_topic(command, device=device, group=group)  # refuse before subscribing
        targets = (device,) if device is not None else command.audience
        async with self.acks(targets) as stream:
            await self.publish(command, device=device, group=group)
            return await stream.wait_for(command.jti, want=want, timeout_s=timeout_s, on_ack=on_ack)

    @contextlib.asynccontextmanager
    async def follow(
        self, devices: Iterable[str], kinds: Iterable[str] = FOLLOW_KINDS
    ) -> AsyncIterator[Subscription]:
        """Everything ``devices`` publish on the topics ``kinds`` (retained state first)."""
        leaves = tuple(dict.fromkeys(kinds))
        unknown = sorted(set(leaves) - {*FOLLOW_KINDS, "cmd"})
        if unknown or not leaves:
            raise CentralError(
                f"cannot follow {', '.join(unknown) or 'nothing'} "
                f"(topics: {', '.join(FOLLOW_KINDS)}, cmd)"
            )
        targets = _device_ids(devices)
        async with self.subscribe(*(device_topic(d, k) for d in targets for k in leaves)) as sub:
            yield sub


def command_topic(
    command: SignedCommand, *, device: str | None = None, group: str | None = None
) -> str:
    """The topic ``command`` goes on: the device's or the group's ``cmd`` topic.

    Checks that the audience fits (see :meth:`CentralClient.publish`).
    """
    if (device is None) == (group is None):
        raise CentralError("give exactly one of device or group")
    if "*" in command.audience:
        raise CentralError(f'a command for every device (aud "*") goes on {HEARTBEAT}')
    if device is not None:
        _device_ids((device,))
        if device not in command.audience:
            raise CentralError(
                f"the command is addressed to {', '.join(command.audience)}, not to {device}; "
                "the device would reject it (E_AUDIENCE)"
            )
        return DeviceTopics(device).cmd
    assert group is not None
    try:
        return group_cmd(group)
    except ValueError as err:
        raise CentralError(f"not a group id ([a-z0-9][a-z0-9-]{{0,62}}): {group!r}") from err


def _device_ids(devices: Iterable[str]) -> tuple[str, ...]:
    targets = tuple(dict.fromkeys(devices))
    if not targets:
        raise CentralError("no device given")
    for device in targets:
        if not _DEVICE_ID.fullmatch(device):
            raise CentralError(f"not a device id ([a-z0-9][a-z0-9-]{{0,62}}): {device!r}")
    return targets


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode("utf-8")


def _refused(code: object) -> bool:
    if isinstance(code, int):
        return code >= 0x80
    return bool(getattr(code, "is_failure", False))
