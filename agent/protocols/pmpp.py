"""NTCIP 2101 PMPP framing: the HDLC subset that carries SNMP on serial links.

One frame on the wire::

    +------+---------+---------+------+-------------------+---------+---------+------+
    | 0x7E | address | control | IPI  | payload (0..n)    | FCS lo  | FCS hi  | 0x7E |
    +------+---------+---------+------+-------------------+---------+---------+------+
      flag   1 or 2    0x13 UI   0xC1   SNMP message when   CRC-16/X-25 over     flag
             octets    0x33 UP   = SNMP IPI is 0xC1         address..payload

- **Address**, one octet for drops 0-63: ``(drop << 2) | group << 1 | 1``; bit 0
  is the HDLC extension (EA) bit, bit 1 the group-address flag. Drop 1 is
  ``0x05``. Drops 64-8191 use two octets; that layout (first octet: bits 12..6
  of the drop, EA = 0; second octet: bits 5..0, group flag, EA = 1) follows the
  IRIS NTCIP class B parser and is **not verified** against the NTCIP 2101 text.
- **Control**: ``0x13`` (UI, P/F set) both ways; ``0x33`` (UP) is accepted too.
- **IPI** (initial protocol identifier): ``0xC1`` SNMP, ``0xC0`` NTCIP class B
  (STMP / AB3418).
- **FCS**: CRC-16/X-25 (:mod:`agent.protocols.crc`) over address, control, IPI
  and payload, before stuffing, sent low byte first.
- **Transparency**: between the flags, ``0x7E`` is sent as ``7D 5E`` and
  ``0x7D`` as ``7D 5D`` (FCS octets included). Any other octet after ``0x7D``
  is an error.

Two ways to decode:

- :class:`PmppDecoder` for a byte stream (a serial port): feed it whatever
  arrived, get back the frames and error events completed by those bytes.
- :func:`decode_frame` for exactly one frame held in memory. It raises
  :class:`IncompleteFrame` for every strict prefix of a valid frame and
  :class:`InvalidFrame` for bytes that cannot become a valid frame.

This module does no I/O and keeps no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from agent.errors import FrameError
from agent.protocols.crc import fcs_bytes, fcs_valid

__all__ = [
    "CONTROL_UI",
    "CONTROL_UP",
    "ESCAPE",
    "FLAG",
    "IPI_NTCIP_CLASS_B",
    "IPI_SNMP",
    "MAX_ADDRESS",
    "MAX_CONTENT",
    "MAX_ONE_OCTET_ADDRESS",
    "FrameErrorEvent",
    "FrameErrorKind",
    "IncompleteFrame",
    "InvalidFrame",
    "PmppDecoder",
    "PmppFrame",
    "decode_frame",
    "encode_frame",
]

#: Opening and closing flag.
FLAG: Final = 0x7E
#: Transparency escape; the next octet is XORed with 0x20.
ESCAPE: Final = 0x7D
_XOR: Final = 0x20

#: Unnumbered information, poll/final bit set: the PMPP data frame.
CONTROL_UI: Final = 0x13
#: Unnumbered poll.
CONTROL_UP: Final = 0x33

#: The payload is an SNMP message.
IPI_SNMP: Final = 0xC1
#: The payload is an NTCIP class B (STMP) or AB3418 message.
IPI_NTCIP_CLASS_B: Final = 0xC0

#: Largest drop address that fits one address octet.
MAX_ONE_OCTET_ADDRESS: Final = 63
#: Largest drop address (two address octets, 13 bits).
MAX_ADDRESS: Final = 8191

#: Default cap on the unstuffed bytes between two flags (address .. FCS).
MAX_CONTENT: Final = 2048

_FCS_LEN: Final = 2
# address (1) + control + IPI + FCS (2)
_MIN_CONTENT: Final = 5


class FrameErrorKind(enum.Enum):
    """Why bytes between two flags, or handed to :func:`decode_frame`, are not a frame."""

    #: Fewer octets than address + control + IPI + FCS.
    TOO_SHORT = "too_short"
    #: More unstuffed octets than the receive buffer allows.
    TOO_LONG = "too_long"
    #: The frame check sequence does not match.
    BAD_FCS = "bad_fcs"
    #: ``0x7D`` followed by an octet other than ``0x5E``/``0x5D`` (or by a flag).
    BAD_ESCAPE = "bad_escape"
    #: The address field has no octet with the extension bit set in time.
    BAD_ADDRESS = "bad_address"
    #: :func:`decode_frame` only: the data does not start with a flag.
    NO_OPENING_FLAG = "no_opening_flag"
    #: :func:`decode_frame` only: bytes follow the closing flag.
    TRAILING_DATA = "trailing_data"


class InvalidFrame(FrameError):
    """The bytes cannot be (or become) a valid PMPP frame; ``kind`` says why."""

    def __init__(self, message: str, *, kind: FrameErrorKind) -> None:
        super().__init__(message)
        self.kind = kind


class IncompleteFrame(FrameError):
    """The bytes are a valid beginning of a frame; more bytes are needed.

    Raised by :func:`decode_frame` for every strict prefix of a valid frame.
    Catch it before :class:`~agent.errors.FrameError` when waiting for more data
    makes sense.
    """


@dataclass(frozen=True, kw_only=True, slots=True)
class PmppFrame:
    """One decoded PMPP frame."""

    #: Drop address, 0-8191 (0-63 fit one address octet).
    address: int
    #: HDLC control octet, normally :data:`CONTROL_UI`.
    control: int = CONTROL_UI
    #: Initial protocol identifier, normally :data:`IPI_SNMP`.
    ipi: int = IPI_SNMP
    #: The message carried: an SNMP message when ``ipi`` is :data:`IPI_SNMP`.
    payload: bytes = b""
    #: The group-address flag of the address field.
    group: bool = False

    def encode(self) -> bytes:
        """Return this frame as wire bytes (see :func:`encode_frame`)."""
        return encode_frame(
            address=self.address,
            payload=self.payload,
            control=self.control,
            ipi=self.ipi,
            group=self.group,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameErrorEvent:
    """Bytes between two flags that are not a valid frame (reported, then skipped)."""

    #: What is wrong.
    kind: FrameErrorKind
    #: A sentence for a log line or a technician.
    detail: str
    #: The unstuffed octets received for this frame (at most the receive cap).
    content: bytes


def _address_octets(address: int, group: bool) -> bytes:
    if not 0 <= address <= MAX_ADDRESS:
        raise ValueError(f"PMPP drop address {address} is outside 0..{MAX_ADDRESS}")
    group_bit = 0x02 if group else 0x00
    if address <= MAX_ONE_OCTET_ADDRESS:
        return bytes([(address << 2) | group_bit | 0x01])
    # Two octets, layout of the IRIS parser (unverified against NTCIP 2101).
    return bytes([(address >> 6) << 1, ((address & 0x3F) << 2) | group_bit | 0x01])


def _stuff(content: bytes) -> bytes:
    if FLAG not in content and ESCAPE not in content:
        return content
    out = bytearray()
    for byte in content:
        if byte in (FLAG, ESCAPE):
            out.append(ESCAPE)
            out.append(byte ^ _XOR)
        else:
            out.append(byte)
    return bytes(out)


def encode_frame(
    *,
    address: int,
    payload: bytes,
    control: int = CONTROL_UI,
    ipi: int = IPI_SNMP,
    group: bool = False,
    max_content: int = MAX_CONTENT,
) -> bytes:
    """Return the wire bytes of one frame, both flags included.

    Raises ``ValueError`` for an address outside 0..8191, a control or IPI
    outside one octet, or a frame whose unstuffed content (address .. FCS)
    would exceed ``max_content`` octets, which no :class:`PmppDecoder` with
    the same cap would accept.
    """
    if not 0 <= control <= 0xFF:
        raise ValueError(f"PMPP control {control} is not one octet")
    if not 0 <= ipi <= 0xFF:
        raise ValueError(f"PMPP IPI {ipi} is not one octet")
    body = _address_octets(address, group) + bytes([control, ipi]) + payload
    if len(body) + _FCS_LEN > max_content:
        raise ValueError(
            f"PMPP frame of {len(body) + _FCS_LEN} octets exceeds the {max_content}-octet cap"
        )
    return bytes([FLAG]) + _stuff(body + fcs_bytes(body)) + bytes([FLAG])


def _parse_content(content: bytes) -> PmppFrame:
    """Turn the unstuffed octets between two flags into a frame, or raise InvalidFrame."""
    if len(content) < _MIN_CONTENT:
        raise InvalidFrame(
            f"PMPP frame of {len(content)} octets is too short (minimum {_MIN_CONTENT})",
            kind=FrameErrorKind.TOO_SHORT,
        )
    if not fcs_valid(content):
        received = int.from_bytes(content[-_FCS_LEN:], "little")
        expected = int.from_bytes(fcs_bytes(content[:-_FCS_LEN]), "little")
        raise InvalidFrame(
            f"PMPP frame check sequence is 0x{received:04X}, expected 0x{expected:04X}",
            kind=FrameErrorKind.BAD_FCS,
        )
    body = content[:-_FCS_LEN]
    first = body[0]
    if first & 0x01:
        address, group, header = first >> 2, bool(first & 0x02), 1
    else:
        second = body[1]
        if not second & 0x01:
            raise InvalidFrame(
                "PMPP address field is longer than two octets (extension bit not set)",
                kind=FrameErrorKind.BAD_ADDRESS,
            )
        address = ((first >> 1) << 6) | ((second >> 2) & 0x3F)
        group, header = bool(second & 0x02), 2
    if len(body) < header + 2:
        raise InvalidFrame(
            "PMPP frame has no room for control and IPI after a two-octet address",
            kind=FrameErrorKind.TOO_SHORT,
        )
    return PmppFrame(
        address=address,
        group=group,
        control=body[header],
        ipi=body[header + 1],
        payload=bytes(body[header + 2 :]),
    )


def decode_frame(data: bytes, *, max_content: int = MAX_CONTENT) -> PmppFrame:
    """Decode ``data`` holding exactly one frame, flags included.

    Extra opening flags (idle fill) before the frame are allowed; nothing may
    follow the closing flag.

    Raises :class:`IncompleteFrame` when ``data`` is a strict prefix of a valid
    frame (including ``b""`` and a lone flag), and :class:`InvalidFrame` (with
    a :class:`FrameErrorKind`) when no more bytes could make it valid.
    """
    if not data:
        raise IncompleteFrame("no bytes yet: a PMPP frame starts with 0x7E")
    if data[0] != FLAG:
        raise InvalidFrame(
            f"PMPP frame must start with 0x7E, not 0x{data[0]:02X}",
            kind=FrameErrorKind.NO_OPENING_FLAG,
        )
    index = 1
    while index < len(data) and data[index] == FLAG:
        index += 1
    content = bytearray()
    escaped = False
    for position in range(index, len(data)):
        byte = data[position]
        if escaped:
            if byte not in (FLAG ^ _XOR, ESCAPE ^ _XOR):
                raise InvalidFrame(
                    f"PMPP escape 0x7D is followed by 0x{byte:02X}",
                    kind=FrameErrorKind.BAD_ESCAPE,
                )
            content.append(byte ^ _XOR)
            escaped = False
        elif byte == ESCAPE:
            escaped = True
            continue
        elif byte == FLAG:
            if position + 1 != len(data):
                raise InvalidFrame(
                    f"{len(data) - position - 1} octets follow the closing flag",
                    kind=FrameErrorKind.TRAILING_DATA,
                )
            return _parse_content(bytes(content))
        else:
            content.append(byte)
        if len(content) > max_content:
            raise InvalidFrame(
                f"PMPP frame exceeds {max_content} octets",
                kind=FrameErrorKind.TOO_LONG,
            )
    raise IncompleteFrame(f"PMPP frame not closed yet ({len(content)} octets so far)")


class _State(enum.Enum):
    HUNTING = "hunting"  # discarding until the next flag
    IN_FRAME = "in_frame"  # collecting octets after a flag
    ESCAPED = "escaped"  # the previous octet was 0x7D


class PmppDecoder:
    """Incremental, sans-I/O PMPP frame decoder for a byte stream.

    ``feed(data)`` accepts any slice of the stream, from one byte to many
    frames, and returns what those bytes completed, in order: a
    :class:`PmppFrame` for each good frame and a :class:`FrameErrorEvent`
    for each bad one. It never raises on received data. The frame::

        ... noise ... 7E | addr | ctl | IPI | payload | FCS lo | FCS hi | 7E ...
                      ^ opening flag (may be shared)          closing flag ^

    Contract:

    - **Noise before a frame** (before the first flag, or after an error) is
      skipped silently and counted in :attr:`discarded`.
    - **Flags**: a flag closes the frame in progress and opens the next one,
      so frames may share one flag (``7E f1 7E f2 7E``) or have their own
      (``7E f1 7E 7E f2 7E``). Repeated flags (idle fill) give empty frames,
      which are ignored.
    - **Bad frame check sequence**, too-short frame or malformed address: a
      :class:`FrameErrorEvent` when the closing flag arrives; that flag opens
      the next frame, so nothing after it is lost. Noise on the line *between*
      frames that send their own flags shows up here too, since it lies
      between a closing and an opening flag.
    - **Bad escape** (``0x7D`` then anything but ``0x5E``/``0x5D``): an event at
      once, then the decoder hunts for the next flag. ``7D 7E`` (an HDLC abort)
      reports the frame and lets that flag open the next one.
    - **Frame too long**: once more than ``max_content`` unstuffed octets
      arrive without a closing flag, a ``TOO_LONG`` event is reported and the
      decoder hunts for the next flag. The receive buffer never holds more
      than ``max_content`` octets.
    """

    def __init__(self, *, max_content: int = MAX_CONTENT) -> None:
        """Create a decoder that starts by hunting for a flag."""
        if max_content < _MIN_CONTENT:
            raise ValueError(f"max_content must be at least {_MIN_CONTENT}")
        self._max_content = max_content
        self._state = _State.HUNTING
        self._content = bytearray()
        self._discarded = 0

    @property
    def in_frame(self) -> bool:
        """True when the bytes fed so far end inside a frame (more are needed)."""
        return self._state is not _State.HUNTING and (
            bool(self._content) or self._state is _State.ESCAPED
        )

    @property
    def buffered(self) -> int:
        """Unstuffed octets of the frame in progress (never above ``max_content``)."""
        return len(self._content)

    @property
    def discarded(self) -> int:
        """Octets skipped while hunting for a flag, since creation or :meth:`reset`."""
        return self._discarded

    def reset(self) -> None:
        """Drop any partial frame and hunt for the next flag (e.g. after a port reopen)."""
        self._state = _State.HUNTING
        self._content.clear()
        self._discarded = 0

    def feed(self, data: bytes) -> list[PmppFrame | FrameErrorEvent]:
        """Consume ``data`` and return the frames and error events it completed."""
        out: list[PmppFrame | FrameErrorEvent] = []
        index, end = 0, len(data)
        while index < end:
            if self._state is _State.HUNTING:
                flag_at = data.find(FLAG, index)
                if flag_at < 0:
                    self._discarded += end - index
                    break
                self._discarded += flag_at - index
                self._state = _State.IN_FRAME
                index = flag_at + 1
                continue
            byte = data[index]
            index += 1
            if self._state is _State.ESCAPED:
                if byte == FLAG:
                    out.append(self._error(FrameErrorKind.BAD_ESCAPE, "frame aborted (7D 7E)"))
                    self._state = _State.IN_FRAME
                    continue
                if byte not in (FLAG ^ _XOR, ESCAPE ^ _XOR):
                    out.append(
                        self._error(
                            FrameErrorKind.BAD_ESCAPE,
                            f"escape 0x7D is followed by 0x{byte:02X}",
                        )
                    )
                    self._state = _State.HUNTING
                    continue
                self._state = _State.IN_FRAME
                self._append(byte ^ _XOR, out)
            elif byte == FLAG:
                if self._content:
                    out.append(self._complete())
            elif byte == ESCAPE:
                self._state = _State.ESCAPED
            else:
                self._append(byte, out)
        return out

    def _append(self, byte: int, out: list[PmppFrame | FrameErrorEvent]) -> None:
        if len(self._content) >= self._max_content:
            out.append(
                self._error(
                    FrameErrorKind.TOO_LONG,
                    f"frame exceeds {self._max_content} octets; skipped to the next flag",
                )
            )
            self._state = _State.HUNTING
            return
        self._content.append(byte)

    def _complete(self) -> PmppFrame | FrameErrorEvent:
        content = bytes(self._content)
        self._content.clear()
        try:
            return _parse_content(content)
        except InvalidFrame as err:
            return FrameErrorEvent(kind=err.kind, detail=err.message, content=content)

    def _error(self, kind: FrameErrorKind, detail: str) -> FrameErrorEvent:
        event = FrameErrorEvent(kind=kind, detail=f"PMPP {detail}", content=bytes(self._content))
        self._content.clear()
        return event
