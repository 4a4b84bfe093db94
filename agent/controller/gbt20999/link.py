"""GB/T 20999 frames over a byte stream: RS-232, TCP, a pty, any pyserial URL.

The stream twin of :class:`agent.controller.transport.UdpLink`, which carries
GB/T datagrams as they are (one frame per datagram, nothing escaped). Here the
frames are escaped (``5C`` before every ``7E``/``7D``/``5C`` between start and
end, the length and CRC included) and a
:class:`~agent.protocols.gbt20999.frame.FrameDecoder` finds them in whatever
the line delivers: noise before, between and after frames is skipped, a bad
frame is dropped and counted, and the decoder hunts for the next ``7E``.

:meth:`GbtStreamLink.send` takes the escaped wire bytes of one frame
(``encode(..., framing=Framing.STREAM)``); :meth:`GbtStreamLink.receive`
returns each good frame re-encoded in its **datagram** form (unescaped), so
the client above decodes UDP and stream replies the same way
(``decode(..., framing=Framing.DATAGRAM)``). Tolerated deviations of the frame
(OpenATC's length or CRC coverage) are logged here, once per kind.

Library exceptions (``OSError``, ``serial.SerialException``, ``termios.error``
for a line setting the port refuses, e.g. a parity on some ptys) become
:class:`agent.errors.LinkDown` here, where they enter the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import termios
from typing import Final

import serial
import serial_asyncio_fast

from agent.controller.transport import CLOSE_TIMEOUT_S, Inbox, LinkCounters, StreamProtocol
from agent.errors import LinkDown
from agent.logs import get_logger
from agent.protocols.gbt20999.frame import (
    Deviation,
    FrameDecoder,
    FrameErrorEvent,
    Framing,
    encode_frame,
)

log = get_logger("controller.gbt20999.link")

#: Largest frame the link sends or accepts, unescaped: plenty for a plan's values,
#: and a cap on the receive buffer.
STREAM_MAX_FRAME: Final = 8192
#: Largest datagram sent: one Ethernet payload, so a request is never fragmented.
UDP_MAX_FRAME: Final = 1472

_PARITY: Final = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class GbtStreamLink:
    """Escaped GB/T 20999 frames over a byte stream named by a pyserial URL."""

    #: How the client must encode what it sends.
    framing: Final = Framing.STREAM

    def __init__(self, url: str, *, baud: int = 38400, parity: str = "N") -> None:
        self._url = url
        self._baud = baud
        self._parity = _PARITY.get(parity, serial.PARITY_NONE)
        self.counters = LinkCounters()
        self._inbox = Inbox(self.counters)
        self._decoder = FrameDecoder(max_frame=STREAM_MAX_FRAME)
        self._transport: asyncio.Transport | None = None
        self._protocol: StreamProtocol | None = None
        self._closed_because = "not open"
        self._deviations_seen: set[Deviation] = set()

    @property
    def description(self) -> str:
        return f"gbt+{self._url} ({self._baud} baud)"

    @property
    def max_message(self) -> int:
        return STREAM_MAX_FRAME

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def open(self) -> None:
        if self.is_open:
            return
        self._inbox = Inbox(self.counters)
        self._decoder = FrameDecoder(max_frame=STREAM_MAX_FRAME)
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await serial_asyncio_fast.create_serial_connection(
                loop,
                lambda: StreamProtocol(self),
                self._url,
                baudrate=self._baud,
                parity=self._parity,
                timeout=0,
            )
        except (OSError, serial.SerialException, ValueError, termios.error) as err:
            raise LinkDown(f"{self._url}: cannot open: {err}") from err
        assert isinstance(protocol, StreamProtocol)
        self._transport, self._protocol = transport, protocol
        self._closed_because = "not open"

    async def close(self) -> None:
        """Close the port and wait (bounded) until it is released (see PmppStreamLink)."""
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
        """Write one frame, already escaped (``Framing.STREAM``)."""
        if self._transport is None or self._transport.is_closing():
            raise LinkDown(f"{self._url}: {self._closed_because}")
        self._transport.write(message)
        self.counters.sent += 1
        self.counters.bytes_sent += len(message)

    def wire_seconds(self, nbytes: int) -> float:
        # Start, 8 data bits, the parity bit if any, one stop bit.
        bits = 10 if self._parity == serial.PARITY_NONE else 11
        return nbytes * bits / self._baud

    async def receive(self) -> bytes:
        """The next good frame, in datagram form (unescaped)."""
        return await self._inbox.get()

    # -- called by the protocol -----------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        """Bytes from the wire: good frames go to the inbox, bad ones are counted."""
        self.counters.bytes_received += len(data)
        for item in self._decoder.feed(data):
            if isinstance(item, FrameErrorEvent):
                self.counters.dropped_frames += 1
                log.debug("gbt_frame_dropped", kind=item.kind.value, detail=item.detail)
                continue
            for deviation in item.deviations - self._deviations_seen:
                self._deviations_seen.add(deviation)
                log.info("gbt_frame_deviation", deviation=deviation.value, endpoint=self._url)
            self._inbox.put(encode_frame(item.body, framing=Framing.DATAGRAM))

    def on_lost(self, protocol: asyncio.Protocol, exc: Exception | None) -> None:
        """The stream closed under us (cable pulled, simulator stopped, pty closed)."""
        if protocol is not self._protocol:
            return  # an earlier opening, closed by :meth:`close`
        self._transport = None
        self._closed_because = (
            f"connection lost: {exc}" if exc else "connection closed by the far end"
        )
        self._inbox.fail(LinkDown(f"{self._url}: {self._closed_because}"))
