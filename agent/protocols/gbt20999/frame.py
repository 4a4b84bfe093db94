"""GB/T 20999-2017 framing: start and end bytes, escaping, length and CRC.

One frame (integers big-endian)::

    +------+--------+------------------------------------------+--------+------+
    | 0x7E | length | body: version, ids, sequence, type,      | CRC-16 | 0x7D |
    |      |  2 B   | count, data values (see ``message.py``)  |  2 B   |      |
    +------+--------+------------------------------------------+--------+------+
     start  = bytes from the version through the CRC,           over      end
            i.e. the whole frame minus 4                         length..body

- **CRC**: :func:`~agent.protocols.crc.crc16_gbt20999` (polynomial 0x1005,
  init 0, no reflection, no final XOR) over the length and the body, computed
  on the *unescaped* bytes, sent high byte first.
- **Escaping** (:attr:`Framing.STREAM`: RS-232 and TCP): between start and end,
  every ``7E``, ``7D`` and ``5C`` -- the length and CRC bytes included -- is
  sent as ``5C`` followed by the byte itself, unchanged. ``5C`` followed by
  any other byte is an error.
- **No escaping** (:attr:`Framing.DATAGRAM`: UDP): length, body and CRC may
  hold raw ``7E``, ``7D`` and ``5C`` (the captured device sends
  ``... 7D C1 7D``), so the datagram's boundaries and the length field, never
  a search for ``7D``, delimit the frame.
- **Sizes**: the shortest frame is a heartbeat, 16 bytes (length 12); the
  longest has length 0xFFFF. Decoders take a cap, ``max_frame`` (unescaped
  bytes from start to end), defaulting to that protocol maximum.

Tolerated on receive (emitting is always strict); each is reported in
:attr:`Frame.deviations` so that the caller can log it:

- :attr:`Deviation.LENGTH_WITHOUT_DELIMITERS` -- OpenATC (Kedacom) sends
  ``length = total - 2`` instead of ``total - 4``.
- :attr:`Deviation.CRC_WITHOUT_LENGTH` -- OpenATC computes its CRC while the
  length field is still zero; with an initial register of 0 that equals a CRC
  over the body alone.

Not tolerated: OpenATC does not escape on TCP either. Its frames decode on a
stream as long as they hold no ``7E``/``7D``/``5C``; one that does is
reported as an error (a raw ``7D`` ends it early, a raw ``5C`` swallows the
next byte or is a bad escape), because no decoder can tell such a byte from
framing.

Two ways to decode:

- :class:`FrameDecoder` for a byte stream (RS-232, TCP): feed it whatever
  arrived, get back the frames and error events those bytes completed. Its
  docstring states what happens on noise before, inside and after a frame,
  on a bad CRC or length, and on a frame too long; in short, errors are
  reported, the decoder hunts for the next ``7E``, and its buffer is capped.
- :func:`decode_frame` for exactly one frame in memory -- a datagram
  (:func:`decode_datagram`) or one escaped frame. It raises
  :class:`IncompleteFrame` for every strict prefix of a valid frame and
  :class:`InvalidFrame` for bytes that cannot become one.

This module does no I/O and keeps no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from agent.errors import FrameError
from agent.protocols.crc import crc16_gbt20999

__all__ = [
    "END",
    "ESCAPE",
    "MAX_FRAME",
    "MIN_BODY",
    "MIN_FRAME",
    "START",
    "Deviation",
    "Frame",
    "FrameDecoder",
    "FrameErrorEvent",
    "FrameErrorKind",
    "Framing",
    "IncompleteFrame",
    "InvalidFrame",
    "decode_datagram",
    "decode_frame",
    "encode_frame",
]

#: First byte of every frame.
START: Final = 0x7E
#: Last byte of every frame.
END: Final = 0x7D
#: Escape byte of the stream framing; the next byte is taken as data, unchanged.
ESCAPE: Final = 0x5C
_SPECIAL: Final = frozenset({START, END, ESCAPE})

#: Bytes of the body (version .. last data byte) of the shortest frame, a heartbeat.
MIN_BODY: Final = 10
#: Unescaped bytes from start to end of the shortest frame.
MIN_FRAME: Final = MIN_BODY + 6
#: Largest value of the 2-byte length field.
_MAX_LENGTH: Final = 0xFFFF
#: Unescaped bytes from start to end of the longest frame the length field allows.
MAX_FRAME: Final = _MAX_LENGTH + 4
# The smallest length field of any acceptable frame: a strict heartbeat (16 - 4).
_MIN_LENGTH: Final = MIN_FRAME - 4


class Framing(enum.Enum):
    """How frames are delimited on a transport."""

    #: RS-232 and TCP: ``7E``/``7D``/``5C`` inside a frame are escaped with ``5C``.
    STREAM = "stream"
    #: UDP: one frame per datagram, nothing escaped.
    DATAGRAM = "datagram"


class Deviation(enum.Enum):
    """A known departure from the strict form, accepted on receive and reported.

    The codec never emits these. Each member names the implementation that
    produces it (``shared/reference/gbt20999.md`` §1.5).
    """

    #: OpenATC: the length field counts the whole frame minus 2 (not minus 4).
    LENGTH_WITHOUT_DELIMITERS = "length_without_delimiters"
    #: OpenATC: the CRC was computed with the length field still zero, i.e. over the body only.
    CRC_WITHOUT_LENGTH = "crc_without_length"
    #: 20999-test-first: a heartbeat carries a value count byte of 0.
    HEARTBEAT_WITH_COUNT = "heartbeat_with_count"
    #: 20999-test-first: a heartbeat reply has frame type 0x71 instead of 0x80.
    HEARTBEAT_REPLY_0X71 = "heartbeat_reply_0x71"
    #: Captured device: a reply does not echo the request's sequence number.
    SEQUENCE_NOT_ECHOED = "sequence_not_echoed"


class FrameErrorKind(enum.Enum):
    """Why bytes are not a frame."""

    #: Fewer bytes between start and end than the shortest frame holds.
    TOO_SHORT = "too_short"
    #: More bytes (or a length field announcing more) than the receive cap.
    TOO_LONG = "too_long"
    #: The length field matches neither ``total - 4`` nor the tolerated ``total - 2``.
    BAD_LENGTH = "bad_length"
    #: The CRC matches neither the strict nor the tolerated coverage.
    BAD_CRC = "bad_crc"
    #: ``5C`` followed by a byte other than ``7E``/``7D``/``5C``.
    BAD_ESCAPE = "bad_escape"
    #: A raw ``7E`` inside a frame: the frame was cut short and a new one begins.
    UNEXPECTED_START = "unexpected_start"
    #: :func:`decode_frame` only: the data does not begin with ``7E``.
    NO_START = "no_start"
    #: Datagram only: the byte where the length field puts the end is not ``7D``.
    NO_END = "no_end"
    #: :func:`decode_frame` only: bytes follow the end of the frame.
    TRAILING_DATA = "trailing_data"


class InvalidFrame(FrameError):
    """The bytes cannot be (or become) a valid frame; ``kind`` says why."""

    def __init__(self, message: str, *, kind: FrameErrorKind) -> None:
        super().__init__(message)
        self.kind = kind


class IncompleteFrame(FrameError):
    """The bytes are a valid beginning of a frame; more bytes are needed.

    Raised by :func:`decode_frame` for every strict prefix of a valid frame;
    for a datagram it means the datagram was truncated. Catch it before
    :class:`~agent.errors.FrameError` when waiting for more data makes sense.
    """


@dataclass(frozen=True, kw_only=True, slots=True)
class Frame:
    """One frame whose delimiters, escaping, length and CRC checked out."""

    #: Unescaped bytes from the version through the last data byte.
    body: bytes
    #: Tolerated departures from the strict form seen in this frame.
    deviations: frozenset[Deviation] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameErrorEvent:
    """Bytes that are not a valid frame (reported by :class:`FrameDecoder`, then skipped)."""

    #: What is wrong.
    kind: FrameErrorKind
    #: A sentence for a log line or a technician.
    detail: str
    #: The unescaped bytes received after the start byte (at most the receive cap).
    content: bytes


# ------------------------------------------------------------------- encoding


def _escape(content: bytes) -> bytes:
    # 5C first, so that the escapes added for 7E and 7D are not escaped again.
    escaped = content.replace(b"\x5c", b"\x5c\x5c")
    return escaped.replace(b"\x7e", b"\x5c\x7e").replace(b"\x7d", b"\x5c\x7d")


def encode_frame(body: bytes, *, framing: Framing, max_frame: int = MAX_FRAME) -> bytes:
    """Return the wire bytes of one strict frame around ``body`` (version .. data).

    The length is ``len(body) + 2``; the CRC covers length and body; with
    :attr:`Framing.STREAM` everything between start and end is escaped.

    Raises ``ValueError`` for a body shorter than a heartbeat's or a frame
    longer than ``max_frame`` (or than the length field allows): no decoder
    would accept it.
    """
    if len(body) < MIN_BODY:
        raise ValueError(f"a GB/T 20999 frame body has at least {MIN_BODY} bytes, not {len(body)}")
    length = len(body) + 2
    if length > _MAX_LENGTH or length + 4 > max_frame:
        raise ValueError(
            f"a GB/T 20999 frame of {length + 4} bytes exceeds the "
            f"{min(max_frame, MAX_FRAME)}-byte cap"
        )
    content = length.to_bytes(2, "big") + body
    content += crc16_gbt20999(content).to_bytes(2, "big")
    if framing is Framing.STREAM:
        content = _escape(content)
    return bytes([START]) + content + bytes([END])


# ------------------------------------------------------------------- checking


def _check_content(content: bytes) -> Frame:
    """Check the unescaped bytes between start and end (length .. CRC); raise InvalidFrame."""
    total = len(content) + 2
    if total < MIN_FRAME:
        raise InvalidFrame(
            f"GB/T 20999 frame of {total} bytes is too short (minimum {MIN_FRAME})",
            kind=FrameErrorKind.TOO_SHORT,
        )
    deviations: set[Deviation] = set()
    length = int.from_bytes(content[:2], "big")
    if length == total - 4:
        pass
    elif length == total - 2:
        # OpenATC counts everything but start and end (§1.5).
        deviations.add(Deviation.LENGTH_WITHOUT_DELIMITERS)
    else:
        raise InvalidFrame(
            f"GB/T 20999 length field says {length}, but the frame of {total} bytes "
            f"needs {total - 4}",
            kind=FrameErrorKind.BAD_LENGTH,
        )
    received = int.from_bytes(content[-2:], "big")
    if crc16_gbt20999(content[:-2]) != received:
        if crc16_gbt20999(content[2:-2]) != received:
            raise InvalidFrame(
                f"GB/T 20999 CRC is 0x{received:04X}, expected "
                f"0x{crc16_gbt20999(content[:-2]):04X}",
                kind=FrameErrorKind.BAD_CRC,
            )
        # OpenATC computes the CRC while the length field is still zero (§1.5).
        deviations.add(Deviation.CRC_WITHOUT_LENGTH)
    return Frame(body=bytes(content[2:-2]), deviations=frozenset(deviations))


def _growth_error(content: bytearray, max_content: int) -> InvalidFrame | None:
    """The error, if any, that the unescaped bytes received so far already prove."""
    size = len(content)
    if size < 2:
        return None
    length = int.from_bytes(content[:2], "big")
    if length < _MIN_LENGTH:
        return InvalidFrame(
            f"GB/T 20999 length field says {length}, less than the minimum {_MIN_LENGTH}",
            kind=FrameErrorKind.BAD_LENGTH,
        )
    if length + 2 > max_content:
        return InvalidFrame(
            f"GB/T 20999 length field announces {length + 4} bytes, over the "
            f"{max_content + 2}-byte cap",
            kind=FrameErrorKind.TOO_LONG,
        )
    # Within the cap from here on, since size never exceeds length + 2.
    if size > length + 2:
        return InvalidFrame(
            f"GB/T 20999 frame has no end byte where its length field ({length}) puts it",
            kind=FrameErrorKind.BAD_LENGTH,
        )
    return None


def _check_cap(max_frame: int) -> int:
    if not MIN_FRAME <= max_frame <= MAX_FRAME:
        raise ValueError(f"max_frame must be within {MIN_FRAME}..{MAX_FRAME}, not {max_frame}")
    return max_frame - 2


# ------------------------------------------------------------------ one frame


def decode_frame(data: bytes, *, framing: Framing, max_frame: int = MAX_FRAME) -> Frame:
    """Decode ``data`` holding exactly one frame, start and end included.

    With :attr:`Framing.STREAM` the frame is unescaped and ends at the first
    unescaped ``7D``. With :attr:`Framing.DATAGRAM` nothing is unescaped and
    the length field says where the frame ends.

    Raises :class:`IncompleteFrame` when ``data`` is a strict prefix of a
    valid frame (including ``b""``), and :class:`InvalidFrame` (with a
    :class:`FrameErrorKind`) when no more bytes could make it valid.

    One ambiguity comes with the tolerated OpenATC length: a datagram two
    bytes shorter than its length field says, ending in ``7D``, is taken as
    an OpenATC frame when its CRC checks out (either coverage), and as a
    truncated strict frame (incomplete) otherwise.
    """
    max_content = _check_cap(max_frame)
    if not data:
        raise IncompleteFrame("no bytes yet: a GB/T 20999 frame starts with 0x7E")
    if data[0] != START:
        raise InvalidFrame(
            f"GB/T 20999 frame must start with 0x7E, not 0x{data[0]:02X}",
            kind=FrameErrorKind.NO_START,
        )
    if framing is Framing.DATAGRAM:
        return _decode_unescaped(data, max_content)
    return _decode_escaped(data, max_content)


def decode_datagram(datagram: bytes, *, max_frame: int = MAX_FRAME) -> Frame:
    """Decode one UDP datagram: :func:`decode_frame` with :attr:`Framing.DATAGRAM`."""
    return decode_frame(datagram, framing=Framing.DATAGRAM, max_frame=max_frame)


def _decode_escaped(data: bytes, max_content: int) -> Frame:
    content = bytearray()
    escaped = False
    for position in range(1, len(data)):
        byte = data[position]
        if escaped:
            if byte not in _SPECIAL:
                raise InvalidFrame(
                    f"GB/T 20999 escape 0x5C is followed by 0x{byte:02X}",
                    kind=FrameErrorKind.BAD_ESCAPE,
                )
            escaped = False
        elif byte == ESCAPE:
            escaped = True
            continue
        elif byte == START:
            raise InvalidFrame(
                f"GB/T 20999 start byte inside a frame after {len(content)} bytes",
                kind=FrameErrorKind.UNEXPECTED_START,
            )
        elif byte == END:
            if position + 1 != len(data):
                raise InvalidFrame(
                    f"{len(data) - position - 1} bytes follow the end of the GB/T 20999 frame",
                    kind=FrameErrorKind.TRAILING_DATA,
                )
            return _check_content(bytes(content))
        content.append(byte)
        error = _growth_error(content, max_content)
        if error is not None:
            raise error
    raise IncompleteFrame(f"GB/T 20999 frame not ended yet ({len(content)} bytes so far)")


def _decode_unescaped(data: bytes, max_content: int) -> Frame:
    size = len(data)
    if size - 2 > max_content:
        raise InvalidFrame(
            f"GB/T 20999 datagram of {size} bytes exceeds the {max_content + 2}-byte cap",
            kind=FrameErrorKind.TOO_LONG,
        )
    if size < 3:
        raise IncompleteFrame(f"GB/T 20999 datagram of {size} bytes has no length yet")
    error = _growth_error(bytearray(data[1:3]), max_content)
    if error is not None:
        raise error
    expected = int.from_bytes(data[1:3], "big") + 4
    if size == expected:
        if data[-1] != END:
            raise InvalidFrame(
                f"GB/T 20999 frame ends with 0x{data[-1]:02X}, not 0x7D",
                kind=FrameErrorKind.NO_END,
            )
        return _check_content(data[1:-1])
    if size == expected - 2 and data[-1] == END:
        # OpenATC's length (total - 2): accept it if it checks out. Otherwise it is
        # a strict frame cut two bytes short (the CRC itself may end in 7D).
        try:
            return _check_content(data[1:-1])
        except InvalidFrame:
            pass
    if size < expected:
        raise IncompleteFrame(f"GB/T 20999 datagram holds {size} of {expected} bytes")
    if data[expected - 1] == END:
        try:
            _check_content(data[1 : expected - 1])
        except InvalidFrame:
            pass
        else:
            raise InvalidFrame(
                f"{size - expected} bytes follow the end of the GB/T 20999 frame",
                kind=FrameErrorKind.TRAILING_DATA,
            )
    raise InvalidFrame(
        f"GB/T 20999 datagram holds {size} bytes, its length field says {expected}",
        kind=FrameErrorKind.BAD_LENGTH,
    )


# --------------------------------------------------------------------- stream


class _State(enum.Enum):
    HUNTING = "hunting"  # discarding until the next start byte
    IN_FRAME = "in_frame"  # collecting bytes after a start byte
    ESCAPED = "escaped"  # the previous byte was 5C


class FrameDecoder:
    """Incremental, sans-I/O decoder for a stream of escaped frames (RS-232, TCP).

    ``feed(data)`` accepts any slice of the stream, from one byte to many
    frames, and returns what those bytes completed, in order: a
    :class:`Frame` for each good frame and a :class:`FrameErrorEvent` for
    each bad one. It never raises on received data::

        ... noise ... 7E | length | body | CRC | 7D ... noise ... 7E | ...
                      ^ start (hunted for)        ^ end            ^ next start

    Contract:

    - **Noise before a frame** and **between frames** (after an end byte,
      before the next start byte) is skipped silently and counted in
      :attr:`discarded`; a stray ``7D`` there is noise too.
    - **Noise inside a frame** shows up as an error event once it is proven:
      a bad escape at once; a raw ``7E`` (a new start: the frame in progress
      was cut short) at once, and that ``7E`` opens the next frame; a length
      field below the minimum, or more bytes than the length field allows, at
      once; a bad CRC or length when the end byte arrives. After any error
      except a cut-short frame the decoder hunts for the next ``7E``, so
      nothing after the damage is lost.
    - **Frame too long**: a length field announcing a frame of more than
      ``max_frame`` bytes gives a ``TOO_LONG`` event as soon as it is read,
      and a hunt for the next start. Since more bytes than the length field
      allows are refused at once too (``BAD_LENGTH``), the receive buffer
      never holds more than ``max_frame - 2`` bytes.
    - Tolerated deviations (see the module docstring) are accepted and
      listed in :attr:`Frame.deviations`.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        """Create a decoder that starts by hunting for a start byte."""
        self._max_content = _check_cap(max_frame)
        self._state = _State.HUNTING
        self._content = bytearray()
        self._discarded = 0

    @property
    def in_frame(self) -> bool:
        """True when the bytes fed so far end inside a frame (more are needed)."""
        return self._state is not _State.HUNTING

    @property
    def buffered(self) -> int:
        """Unescaped bytes of the frame in progress (never above ``max_frame - 2``)."""
        return len(self._content)

    @property
    def discarded(self) -> int:
        """Bytes skipped while hunting for a start byte, since creation or :meth:`reset`."""
        return self._discarded

    def reset(self) -> None:
        """Drop any partial frame and hunt for the next start (e.g. after a reconnect)."""
        self._state = _State.HUNTING
        self._content.clear()
        self._discarded = 0

    def feed(self, data: bytes) -> list[Frame | FrameErrorEvent]:
        """Consume ``data`` and return the frames and error events it completed."""
        out: list[Frame | FrameErrorEvent] = []
        index, end = 0, len(data)
        while index < end:
            if self._state is _State.HUNTING:
                start_at = data.find(START, index)
                if start_at < 0:
                    self._discarded += end - index
                    break
                self._discarded += start_at - index
                self._state = _State.IN_FRAME
                self._content.clear()
                index = start_at + 1
                continue
            byte = data[index]
            index += 1
            if self._state is _State.ESCAPED:
                if byte in _SPECIAL:
                    self._state = _State.IN_FRAME
                    self._append(byte, out)
                else:
                    out.append(
                        self._error(
                            FrameErrorKind.BAD_ESCAPE,
                            f"GB/T 20999 escape 0x5C is followed by 0x{byte:02X}",
                        )
                    )
            elif byte == ESCAPE:
                self._state = _State.ESCAPED
            elif byte == END:
                out.append(self._complete())
            elif byte == START:
                if self._content:
                    out.append(
                        self._error(
                            FrameErrorKind.UNEXPECTED_START,
                            f"GB/T 20999 start byte inside a frame after {len(self._content)} "
                            "bytes; the frame was cut short",
                        )
                    )
                self._state = _State.IN_FRAME
            else:
                self._append(byte, out)
        return out

    def _append(self, byte: int, out: list[Frame | FrameErrorEvent]) -> None:
        self._content.append(byte)
        error = _growth_error(self._content, self._max_content)
        if error is not None:
            out.append(self._error(error.kind, error.message))

    def _complete(self) -> Frame | FrameErrorEvent:
        content = bytes(self._content)
        self._content.clear()
        self._state = _State.HUNTING
        try:
            return _check_content(content)
        except InvalidFrame as err:
            return FrameErrorEvent(kind=err.kind, detail=err.message, content=content)

    def _error(self, kind: FrameErrorKind, detail: str) -> FrameErrorEvent:
        event = FrameErrorEvent(kind=kind, detail=detail, content=bytes(self._content))
        self._content.clear()
        self._state = _State.HUNTING
        return event
