"""Byte and datagram pipes to a controller: UDP, and PMPP over any pyserial URL.

A :class:`MessageLink` moves whole protocol messages (here: SNMP messages)
and nothing else: request/response matching, timeouts and retries belong to
the client above it, framing to the sans-I/O codecs below it.

* :class:`UdpLink` — one SNMP message per datagram (Ethernet cabinets).
* :class:`PmppStreamLink` — SNMP inside NTCIP 2101 PMPP frames over a byte
  stream opened with ``pyserial-asyncio-fast``: a real ``/dev/ttyUSB0``, a pty,
  ``socket://host:port`` (a terminal server or the simulator's TCP port), or any
  other pyserial URL. Noise, bad frames and frames for other drops are skipped
  and counted; the decoder resynchronises on the next flag.

Library exceptions (``OSError``, ``serial.SerialException``) become
:class:`agent.errors.LinkDown` here, where they enter the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

import serial
import serial_asyncio_fast

from agent.errors import LinkDown
from agent.logs import get_logger
from agent.protocols.pmpp import (
    FrameErrorEvent,
    PmppDecoder,
    encode_frame,
)

log = get_logger("controller.transport")

#: Messages waiting to be read before the oldest is dropped (a stuck reader
#: must not grow memory without bound).
MAX_PENDING = 64
#: How long closing a stream waits for the port to be released, seconds.
CLOSE_TIMEOUT_S = 2.0
#: Largest SNMP message sent in one UDP datagram: one Ethernet payload, so a
#: request is never fragmented (controllers on Ethernet accept this much).
UDP_MAX_MESSAGE = 1472
#: Largest SNMP message sent in one PMPP frame: the size every SNMP agent must
#: accept (RFC 1157 §4), and what serial controllers commonly cap a frame at.
PMPP_MAX_MESSAGE = 484


@dataclass
class LinkCounters:
    """What a link has seen, for diagnostics."""

    sent: int = 0
    received: int = 0
    #: Octets on the wire: datagram payloads, or PMPP frames with flags and stuffing.
    bytes_sent: int = 0
    bytes_received: int = 0
    dropped_frames: int = 0
    foreign_frames: int = 0
    overflow: int = 0


class MessageLink(Protocol):
    """Whole messages to and from one controller."""

    #: What the link has seen, for diagnostics and benchmarks.
    counters: LinkCounters

    @property
    def description(self) -> str:
        """Where the link goes, for logs."""
        ...

    @property
    def is_open(self) -> bool:
        """True while the transport is open."""
        ...

    @property
    def max_message(self) -> int:
        """The largest message, in octets, the far end is sure to accept."""
        ...

    async def open(self) -> None:
        """Open the transport; raise :class:`LinkDown` if it cannot be opened."""
        ...

    async def close(self) -> None:
        """Close the transport (idempotent)."""
        ...

    def send(self, message: bytes) -> None:
        """Queue one message for sending; raise :class:`LinkDown` when closed."""
        ...

    def wire_seconds(self, nbytes: int) -> float:
        """How long ``nbytes`` of message take on the wire (0 for fast links)."""
        ...

    async def receive(self) -> bytes:
        """The next message received; raise :class:`LinkDown` when the link closes."""
        ...


class Inbox:
    """A bounded queue of messages, or the error that closed the link."""

    def __init__(self, counters: LinkCounters) -> None:
        self._queue: asyncio.Queue[bytes | LinkDown] = asyncio.Queue()
        self._counters = counters

    def put(self, message: bytes) -> None:
        if self._queue.qsize() >= MAX_PENDING:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._counters.overflow += 1
        self._counters.received += 1
        self._queue.put_nowait(message)

    def fail(self, error: LinkDown) -> None:
        self._queue.put_nowait(error)

    def drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def get(self) -> bytes:
        item = await self._queue.get()
        if isinstance(item, LinkDown):
            self._queue.put_nowait(item)  # every later reader sees it too
            raise item
        return item


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, inbox: Inbox, counters: LinkCounters) -> None:
        self._inbox = inbox
        self._counters = counters

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._counters.bytes_received += len(data)
        self._inbox.put(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the next request will time out;
        # nothing to deliver.
        log.debug("udp_error", error=str(exc))


class UdpLink:
    """One SNMP message per UDP datagram, to one controller address."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self.counters = LinkCounters()
        self._inbox = Inbox(self.counters)
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def description(self) -> str:
        return f"udp://{self._host}:{self._port}"

    @property
    def max_message(self) -> int:
        return UDP_MAX_MESSAGE

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def open(self) -> None:
        if self.is_open:
            return
        self._inbox = Inbox(self.counters)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self._inbox, self.counters),
                remote_addr=(self._host, self._port),
            )
        except OSError as err:
            raise LinkDown(f"{self.description}: cannot open: {err.strerror or err}") from err
        self._transport = transport

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._inbox.fail(LinkDown(f"{self.description}: closed"))

    def send(self, message: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise LinkDown(f"{self.description}: not open")
        self._transport.sendto(message)
        self.counters.sent += 1
        self.counters.bytes_sent += len(message)

    def wire_seconds(self, nbytes: int) -> float:
        return 0.0

    async def receive(self) -> bytes:
        return await self._inbox.get()


class StreamOwner(Protocol):
    """A stream link, as its asyncio protocol reports to it."""

    def on_bytes(self, data: bytes) -> None: ...

    def on_lost(self, protocol: StreamProtocol, exc: Exception | None) -> None: ...


class StreamProtocol(asyncio.Protocol):
    """One opening of a byte stream; ``closed`` is set once the port is really closed.

    Shared by every framed stream link (PMPP here, GB/T 20999 in
    ``gbt20999/link.py``): bytes go to the owner's decoder, the end to its
    ``on_lost``.
    """

    def __init__(self, link: StreamOwner) -> None:
        self._link = link
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self._link.on_bytes(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self._link.on_lost(self, exc)


class PmppStreamLink:
    """SNMP in PMPP frames over a byte stream named by a pyserial URL."""

    def __init__(self, url: str, *, address: int = 1, baud: int = 38400) -> None:
        self._url = url
        self._address = address
        self._baud = baud
        self.counters = LinkCounters()
        self._inbox = Inbox(self.counters)
        self._decoder = PmppDecoder()
        self._transport: asyncio.Transport | None = None
        self._protocol: StreamProtocol | None = None
        #: Why the stream is closed, for the next :meth:`send`.
        self._closed_because = "not open"

    @property
    def description(self) -> str:
        return f"{self._url} (PMPP drop {self._address}, {self._baud} baud)"

    @property
    def max_message(self) -> int:
        return PMPP_MAX_MESSAGE

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def open(self) -> None:
        if self.is_open:
            return
        self._inbox = Inbox(self.counters)
        self._decoder = PmppDecoder()
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await serial_asyncio_fast.create_serial_connection(
                loop,
                lambda: StreamProtocol(self),
                self._url,
                baudrate=self._baud,
                timeout=0,
            )
        except (OSError, serial.SerialException, ValueError) as err:
            raise LinkDown(f"{self._url}: cannot open: {err}") from err
        assert isinstance(protocol, StreamProtocol)
        self._transport, self._protocol = transport, protocol
        self._closed_because = "not open"

    async def close(self) -> None:
        """Close the port and wait (bounded) until it is released.

        Aborted, not flushed: a request still in the buffer has no one left to
        wait for its answer. Waiting for the release matters: the port (a
        real tty is opened exclusively) can be reopened at once, and no
        closing task outlives the link.
        """
        transport, self._transport = self._transport, None
        protocol, self._protocol = self._protocol, None
        self._closed_because = "closed"
        if transport is not None:
            transport.abort()
        if protocol is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await protocol.closed.wait()
        self._inbox.fail(LinkDown(f"{self._url}: closed"))

    def send(self, message: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise LinkDown(f"{self._url}: {self._closed_because}")
        frame = encode_frame(address=self._address, payload=message)
        self._transport.write(frame)
        self.counters.sent += 1
        self.counters.bytes_sent += len(frame)

    def wire_seconds(self, nbytes: int) -> float:
        # 10 bits a byte (8N1), plus framing and a little stuffing.
        return (nbytes + 8) * 10 / self._baud

    async def receive(self) -> bytes:
        return await self._inbox.get()

    # -- called by the protocol -----------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        """Bytes from the wire: complete frames go to the inbox, bad ones are counted."""
        self.counters.bytes_received += len(data)
        for item in self._decoder.feed(data):
            if isinstance(item, FrameErrorEvent):
                self.counters.dropped_frames += 1
                log.debug("pmpp_frame_dropped", kind=item.kind.value, detail=item.detail)
            elif item.address != self._address:
                self.counters.foreign_frames += 1
            else:
                self._inbox.put(item.payload)

    def on_lost(self, protocol: asyncio.Protocol, exc: Exception | None) -> None:
        """The stream closed under us (cable pulled, simulator stopped, pty closed)."""
        if protocol is not self._protocol:
            return  # an earlier opening, closed by :meth:`close`
        self._transport = None
        self._closed_because = (
            f"connection lost: {exc}" if exc else "connection closed by the far end"
        )
        self._inbox.fail(LinkDown(f"{self._url}: {self._closed_because}"))
