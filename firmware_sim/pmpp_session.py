"""One PMPP byte stream (a serial line or a TCP connection) in front of the SNMP responder.

Sans-I/O: :meth:`PmppSession.feed` takes whatever bytes arrived and returns
the bytes to send back (possibly none). It satisfies
:class:`firmware_sim.serve.StreamSession`, so the same class serves the pty
and TCP. The framing is :mod:`agent.protocols.pmpp` (NTCIP 2101)::

    request:  7E | drop addr | 13 or 33 | C1 | SNMP message | FCS lo | FCS hi | 7E
    reply:    7E | drop addr | 13       | C1 | SNMP message | FCS lo | FCS hi | 7E

What is answered and what is not, as on a multidrop line:

- a good frame for this drop address, control UI (0x13) or UP (0x33), IPI
  0xC1: its SNMP message goes to the handler; a reply (if any) goes back in
  one frame with this drop's address, control 0x13 and IPI 0xC1;
- a frame for another drop address, a group-addressed frame, another IPI
  (e.g. 0xC0 STMP/AB3418) or another control octet: silently ignored
  (another device on the line may be meant), counted;
- noise before, between or after frames, a bad FCS, a bad escape or a frame
  that is too long: skipped by the decoder, counted; the decoder resynchronises
  on the next flag, so the next good frame is answered.

The session never raises on received bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent.protocols.pmpp import (
    CONTROL_UI,
    CONTROL_UP,
    IPI_SNMP,
    MAX_ADDRESS,
    FrameErrorEvent,
    PmppDecoder,
    encode_frame,
)

#: The drop address a controller answers by default.
DEFAULT_ADDRESS: Final = 1

#: One SNMP message in, its encoded reply (or None) out.
MessageHandler = Callable[[bytes], bytes | None]


@dataclass
class SessionStats:
    """Counters of one session."""

    #: Good frames for this drop carrying SNMP.
    frames: int = 0
    #: Frames answered.
    answered: int = 0
    #: Good frames for another drop address, or group-addressed.
    foreign: int = 0
    #: Good frames for this drop with another IPI or control octet.
    unsupported: int = 0
    #: Bad frames (FCS, escape, too short or too long).
    bad_frames: int = 0
    #: Replies that could not be framed (larger than the frame cap).
    unsendable: int = 0


class PmppSession:
    """PMPP deframing -> SNMP handler -> PMPP reply frames, for one drop address."""

    def __init__(self, handler: MessageHandler, *, address: int = DEFAULT_ADDRESS) -> None:
        """Answer frames addressed to drop ``address`` (1-8191) with ``handler``."""
        if not 1 <= address <= MAX_ADDRESS:
            raise ValueError(f"PMPP drop address {address} is outside 1..{MAX_ADDRESS}")
        self.address = address
        self._handler = handler
        self._decoder = PmppDecoder()
        self.stats = SessionStats()

    @property
    def discarded(self) -> int:
        """Noise octets skipped while hunting for a flag."""
        return self._decoder.discarded

    def feed(self, data: bytes) -> bytes:
        """Consume received bytes; return the reply bytes to send (may be empty)."""
        out = bytearray()
        for item in self._decoder.feed(data):
            if isinstance(item, FrameErrorEvent):
                self.stats.bad_frames += 1
                continue
            if item.address != self.address or item.group:
                self.stats.foreign += 1
                continue
            if item.ipi != IPI_SNMP or item.control not in (CONTROL_UI, CONTROL_UP):
                self.stats.unsupported += 1
                continue
            self.stats.frames += 1
            reply = self._handler(item.payload)
            if reply is None:
                continue
            try:
                out += encode_frame(address=self.address, payload=reply)
            except ValueError:
                self.stats.unsendable += 1
                continue
            self.stats.answered += 1
        return bytes(out)
