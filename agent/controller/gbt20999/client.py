"""A GB/T 20999 upper-computer client over a message link: matching, timeouts, retries.

* One request in flight per link (a controller answers one at a time, a
  serial line carries one at a time). Each request gets the next sequence
  number (帧流水号, 1-255, then 1 again) and a reply is matched to it by that
  number, its ids and its addresses (:func:`match_reply`). The captured
  device answers with a sequence number other than the request's (always 2
  in the capture): until a controller has echoed the number
  :data:`ECHOES_TRUSTED` times in a row, a reply that otherwise answers the
  request is taken and the deviation logged once; after that, a reply with
  another number is a late answer to an earlier request and is dropped.
* Each request is retried ``retries`` times after ``timeout_s`` of silence,
  then the link is declared down for this request (:class:`LinkDown`).
  Status polls (``poll=True``) get one try with the short ``poll_timeout_s``:
  the next poll is the retry. The wait also allows for the request and the
  expected reply crossing a slow serial wire.
* A query or set with more values than fit one frame (``max_values``, and
  :data:`FRAME_BUDGET` bytes for the request and for the reply the catalog
  predicts) is split over several frames.
* An error reply (0x21, 0x41) becomes :class:`GbtRefusal` naming the object
  and the error code, e.g. ``controller refused scheme.cycle[2] = 300
  (0x12 out of range)``.
* A heartbeat (0x70) from the controller is answered (0x80); traps and
  broadcasts are counted and otherwise ignored.

A set split over several frames is not atomic: the driver above reads back
everything it wrote, which is the guarantee that matters.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from agent.controller.gbt20999.mapping import show_value
from agent.controller.turns import LinkTurns
from agent.errors import ControllerError, LinkDown, ProtocolError
from agent.logs import get_logger
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import (
    DEFAULT_VERSION,
    Address,
    ErrorCode,
    FrameType,
    Ids,
    Message,
    decode,
    encode,
    error_codes,
    heartbeat,
    heartbeat_reply_to,
    match_reply,
    query_message,
    set_request,
)
from agent.protocols.gbt20999.message import (
    InvalidMessage as GbtInvalidMessage,
)

log = get_logger("controller.gbt20999")

#: Echoed sequence numbers in a row after which a reply with another number is stale.
ECHOES_TRUSTED: Final = 3
#: About what a status query's request takes on the wire (the poll's turn budget).
POLL_REQUEST_BYTES: Final = 64
#: Most bytes of one frame (request or expected reply): one Ethernet payload.
FRAME_BUDGET: Final = 1472
#: Bytes of a frame around its values: start, length, header, count, CRC, end.
_FRAME_OVERHEAD: Final = 16
#: Bytes of a data value around its value: index, length, four address bytes.
_VALUE_OVERHEAD: Final = 6


class GbtLink(Protocol):
    """What the client needs of a transport (:class:`~agent.controller.transport.UdpLink`,
    :class:`~agent.controller.gbt20999.link.GbtStreamLink`)."""

    @property
    def description(self) -> str:
        """Where the link goes, for logs."""
        ...

    @property
    def is_open(self) -> bool:
        """True while the transport is open."""
        ...

    async def open(self) -> None:
        """Open the transport; raise :class:`LinkDown` if it cannot be opened."""
        ...

    async def close(self) -> None:
        """Close the transport (idempotent)."""
        ...

    def send(self, message: bytes) -> None:
        """Send one encoded frame."""
        ...

    def wire_seconds(self, nbytes: int) -> float:
        """How long ``nbytes`` take on the wire (0 for fast links)."""
        ...

    async def receive(self) -> bytes:
        """The next frame received, in datagram form."""
        ...


@dataclass(frozen=True, kw_only=True)
class GbtSettings:
    """How the client talks to one controller."""

    ids: Ids
    version: int = DEFAULT_VERSION
    timeout_s: float = 0.5
    retries: int = 2
    #: Status polls: a short timeout and no retry (see SnmpSettings.poll_timeout_s).
    poll_timeout_s: float = 0.15
    #: Most data values in one frame.
    max_values: int = 64
    #: Seconds between heartbeats while the link is polled.
    heartbeat_s: float = 5.0
    #: The intersection driven: row of 13.2 and 17.1, 路口序号 of schemes.
    intersection: int = 1


@dataclass
class ClientCounters:
    """Requests and their outcomes, for diagnostics and benchmarks."""

    requests: int = 0
    timeouts: int = 0
    stale_replies: int = 0
    bad_replies: int = 0
    unechoed_replies: int = 0
    heartbeats: int = 0
    controller_heartbeats: int = 0
    traps: int = 0
    splits: int = 0


class GbtRefusal(ControllerError):
    """The controller answered an error reply for one object."""

    def __init__(self, message: str, *, address: Address, error: ErrorCode | int) -> None:
        super().__init__(message)
        self.address = address
        #: The GB/T error code (``code`` stays ``E_CONTROLLER``).
        self.error = error


def code_text(code: ErrorCode | int) -> str:
    """``0x12 out of range``."""
    if isinstance(code, ErrorCode):
        return f"0x{int(code):02X} {code.meaning.removeprefix('the ')}"
    return f"0x{code:02X} unknown error code"


def _expected_size(address: Address) -> int:
    attribute = gbt.lookup(address)
    return attribute.size if attribute is not None else 16


class GbtClient:
    """Query, set and heartbeat against one controller over one link."""

    def __init__(self, link: GbtLink, settings: GbtSettings, *, framing: Framing) -> None:
        self.link = link
        self.settings = settings
        self.framing = framing
        self.counters = ClientCounters()
        self._turns = LinkTurns()
        self._sequences = itertools.cycle(range(1, 256))
        #: Replies in a row that echoed their request's sequence number.
        self._echo_streak = 0

    # -- one exchange ------------------------------------------------------------------

    async def _exchange(self, build: Message, *, reply_bytes: int, poll: bool) -> Message:
        """Send ``build`` (its sequence number replaced) and return the reply that answers it."""
        # A poll's own wait for its answer: its turn waits no longer in silence.
        budget = self.settings.poll_timeout_s + 1.5 * self.link.wire_seconds(
            reply_bytes + POLL_REQUEST_BYTES
        )
        await self._turns.take(poll=poll, budget_s=budget, link=self.link.description)
        try:
            attempts = 1 if poll else self.settings.retries + 1
            base = self.settings.poll_timeout_s if poll else self.settings.timeout_s
            wait = base
            for attempt in range(1, attempts + 1):
                request = Message(
                    frame_type=build.frame_type,
                    ids=build.ids,
                    sequence=next(self._sequences),
                    values=build.values,
                    version=build.version,
                )
                data = encode(request, framing=self.framing)
                wait = base + 1.5 * self.link.wire_seconds(len(data) + reply_bytes)
                self.link.send(data)
                self.counters.requests += 1
                try:
                    async with asyncio.timeout(wait):
                        return await self._await_reply(request)
                except TimeoutError:
                    self.counters.timeouts += 1
                    self._turns.timed_out()
                    log.debug("gbt_timeout", attempt=attempt, endpoint=self.link.description)
            raise LinkDown(
                f"{self.link.description}: no answer after {attempts} "
                f"{'try' if attempts == 1 else 'tries'} ({wait:.2f} s each)"
            )
        finally:
            self._turns.release()

    async def _await_reply(self, request: Message) -> Message:
        while True:
            data = await self.link.receive()
            self._turns.heard()
            try:
                reply = decode(data, framing=Framing.DATAGRAM)
            except ProtocolError as err:
                self.counters.bad_replies += 1
                log.debug("gbt_bad_reply", error=str(err))
                continue
            if reply.frame_type is FrameType.HEARTBEAT:
                # The controller checks on us: answer, and keep waiting.
                self.counters.controller_heartbeats += 1
                self.link.send(encode(heartbeat_reply_to(reply), framing=self.framing))
                continue
            if reply.frame_type in (FrameType.TRAP, FrameType.BROADCAST):
                self.counters.traps += 1
                continue
            echoes = self._echo_streak >= ECHOES_TRUSTED
            if reply.sequence != request.sequence and echoes:
                self.counters.stale_replies += 1
                continue
            try:
                match_reply(request, reply)
            except GbtInvalidMessage:
                self.counters.stale_replies += 1
                continue
            if reply.sequence == request.sequence:
                self._echo_streak += 1
            else:
                self._echo_streak = 0
                self.counters.unechoed_replies += 1
                if self.counters.unechoed_replies == 1:
                    log.info(
                        "gbt_sequence_not_echoed",
                        endpoint=self.link.description,
                        sent=request.sequence,
                        received=reply.sequence,
                    )
            return reply

    # -- chunking ------------------------------------------------------------------------

    def _chunks(
        self, items: Sequence[tuple[Address, bytes]], *, query: bool
    ) -> list[list[tuple[Address, bytes]]]:
        """Split into frames within ``max_values`` and :data:`FRAME_BUDGET` both ways."""
        chunks: list[list[tuple[Address, bytes]]] = []
        current: list[tuple[Address, bytes]] = []
        request = reply = _FRAME_OVERHEAD
        for address, value in items:
            size = len(value) if not query else 0
            answer = _expected_size(address) if query else 1
            full = len(current) >= self.settings.max_values or (
                current
                and (
                    request + _VALUE_OVERHEAD + size > FRAME_BUDGET
                    or reply + _VALUE_OVERHEAD + answer > FRAME_BUDGET
                )
            )
            if full:
                chunks.append(current)
                current = []
                request = reply = _FRAME_OVERHEAD
            current.append((address, value))
            request += _VALUE_OVERHEAD + size
            reply += _VALUE_OVERHEAD + answer
        if current:
            chunks.append(current)
        if len(chunks) > 1:
            self.counters.splits += len(chunks) - 1
        return chunks

    def _refusal(self, reply: Message, sent: Sequence[tuple[Address, bytes]], verb: str) -> None:
        try:
            codes = error_codes(reply)
        except GbtInvalidMessage as err:
            raise ControllerError(f"{self.link.description}: {err.message}") from err
        if not codes:
            raise ControllerError(f"controller refused the {verb} without naming an object")
        address, code = codes[0]
        name = gbt.describe(address)
        if verb == "set":
            value = next((v for a, v in sent if a == address), b"")
            what = f"controller refused {name} = {show_value(gbt.lookup(address), value)}"
        else:
            what = f"controller cannot read {name}"
        raise GbtRefusal(f"{what} ({code_text(code)})", address=address, error=code)

    # -- operations ----------------------------------------------------------------------

    async def query(self, addresses: Sequence[Address], *, poll: bool = False) -> list[bytes]:
        """The value bytes of ``addresses``, in order; :class:`GbtRefusal` on an error reply.

        ``poll=True``: one try with the short poll timeout (status polling).
        """
        out: list[bytes] = []
        for chunk in self._chunks([(a, b"") for a in addresses], query=True):
            asked = [address for address, _ in chunk]
            message = query_message(self.settings.ids, 1, *asked, version=self.settings.version)
            expected = sum(_VALUE_OVERHEAD + _expected_size(a) for a in asked)
            reply = await self._exchange(message, reply_bytes=expected, poll=poll)
            if reply.frame_type.is_error:
                self._refusal(reply, chunk, "query")
            got = {value.address: value.value for value in reply.values}
            for address in asked:
                if address not in got:
                    raise ControllerError(
                        f"controller answered without {gbt.describe(address)} "
                        f"({len(reply.values)} values for {len(asked)} asked)"
                    )
                out.append(got[address])
        return out

    async def set(self, values: Sequence[tuple[Address, bytes]]) -> None:
        """Set every ``(address, value bytes)``; :class:`GbtRefusal` names the object refused."""
        for chunk in self._chunks(values, query=False):
            message = set_request(self.settings.ids, 1, chunk, version=self.settings.version)
            reply = await self._exchange(
                message, reply_bytes=len(chunk) * (_VALUE_OVERHEAD + 1), poll=False
            )
            if reply.frame_type.is_error:
                self._refusal(reply, chunk, "set")
            statuses = {value.address: value.value for value in reply.values}
            for address, value in chunk:
                status = statuses.get(address)
                if status is None:
                    raise ControllerError(
                        f"controller did not acknowledge {gbt.describe(address)} in its set reply"
                    )
                if status not in (b"", b"\x00"):
                    raise GbtRefusal(
                        f"controller refused {gbt.describe(address)} = "
                        f"{show_value(gbt.lookup(address), value)} "
                        f"(status 0x{status[0]:02X})",
                        address=address,
                        error=status[0],
                    )

    async def heartbeat(self, *, poll: bool = True) -> None:
        """Send a heartbeat (0x70) and wait for its reply (0x80)."""
        message = heartbeat(self.settings.ids, 1, version=self.settings.version)
        await self._exchange(message, reply_bytes=_FRAME_OVERHEAD, poll=poll)
        self.counters.heartbeats += 1
