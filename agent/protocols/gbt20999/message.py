"""GB/T 20999-2017 messages: the header and data values inside a frame, as plain data.

The body of a frame (between its length and its CRC, see ``frame.py``),
integers big-endian::

    +---------+--------+------------+--------------+-----+------+-------+--------------+
    | version | center | controller | intersection | seq | type | count | data values  |
    |   2 B   |  1 B   |    4 B     |     1 B      | 1 B | 1 B  |  1 B  | count times  |
    +---------+--------+------------+--------------+-----+------+-------+--------------+
      0x0100    上位机ID    信号机ID        路口ID                    absent in heartbeats

    one data value:
    +-------+-----+-------+--------+-----------+---------+-----------------+
    | index | len | class | object | attribute | element | value (len - 4) |
    +-------+-----+-------+--------+-----------+---------+-----------------+

- A query's values carry no value (``len = 4``). Attribute 0 asks for all
  attributes, element 0 for all rows; scalars live at attribute 0, element 0
  or at element 0 of their attribute.
- A success reply has type ``request + 0x10``, an error reply
  ``request + 0x11``. A set reply's values carry one status byte (0x00), an
  error reply's values one :class:`ErrorCode`.
- The sender chooses the sequence number and the reply should echo it.

:func:`encode` always writes the strict form. :func:`decode` and
:class:`MessageDecoder` accept, besides the frame-level deviations of
``frame.py``, these departures of real implementations, each recorded in
:attr:`Message.deviations`:

- :attr:`~Deviation.HEARTBEAT_WITH_COUNT` -- 20999-test-first puts a count
  byte of 0 in its heartbeats.
- :attr:`~Deviation.HEARTBEAT_REPLY_0X71` -- 20999-test-first's frame table
  has the heartbeat reply as 0x71; it decodes as :attr:`FrameType.HEARTBEAT_REPLY`.
- :attr:`~Deviation.SEQUENCE_NOT_ECHOED` -- the captured device answers with
  a sequence number other than the request's (:func:`match_reply`).

Building a message with fields out of range raises ``ValueError`` (a bug in
the caller); bytes from a peer that are not a valid message raise
:class:`InvalidMessage` (a :class:`~agent.errors.MessageError`). Nothing
else escapes :func:`decode`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from agent.errors import MessageError
from agent.protocols.gbt20999.frame import (
    MAX_FRAME,
    Deviation,
    Frame,
    FrameDecoder,
    FrameErrorEvent,
    Framing,
    decode_frame,
    encode_frame,
)

__all__ = [
    "DEFAULT_VERSION",
    "MAX_VALUES",
    "MAX_VALUE_SIZE",
    "Address",
    "DataValue",
    "ErrorCode",
    "FrameType",
    "Ids",
    "InvalidMessage",
    "Message",
    "MessageDecoder",
    "MessageErrorEvent",
    "MessageErrorKind",
    "decode",
    "encode",
    "encode_body",
    "error_codes",
    "error_reply_to",
    "heartbeat",
    "heartbeat_reply_to",
    "match_reply",
    "parse_frame",
    "query",
    "query_message",
    "reply_to",
    "set_reply_to",
    "set_request",
    "trap",
]

#: Protocol version the captured device speaks (OpenATC sends 0x0101).
DEFAULT_VERSION: Final = 0x0100
#: Most data values in one message (the count is one byte).
MAX_VALUES: Final = 255
#: Most bytes in one value (the value length byte counts 4 address bytes too).
MAX_VALUE_SIZE: Final = 255 - 4
#: Status byte of each value of a successful set reply.
SET_OK: Final = 0x00

# version (2) center (1) controller (4) intersection (1) sequence (1) type (1)
_HEADER: Final = 10


class FrameType(enum.IntEnum):
    """帧类型: what a message is."""

    QUERY = 0x10
    QUERY_REPLY = 0x20
    QUERY_ERROR = 0x21
    SET = 0x30
    SET_REPLY = 0x40
    SET_ERROR = 0x41
    BROADCAST = 0x50
    TRAP = 0x60
    HEARTBEAT = 0x70
    HEARTBEAT_REPLY = 0x80

    @property
    def meaning(self) -> str:
        """A few words for a log line."""
        return _FRAME_TYPE_MEANINGS[self]

    @property
    def is_heartbeat(self) -> bool:
        """True for heartbeats, which carry no value count and no values."""
        return self in (FrameType.HEARTBEAT, FrameType.HEARTBEAT_REPLY)

    @property
    def is_error(self) -> bool:
        """True for the error replies, whose values carry an :class:`ErrorCode`."""
        return self in (FrameType.QUERY_ERROR, FrameType.SET_ERROR)

    def reply(self) -> FrameType:
        """The success reply to a request of this type (request + 0x10)."""
        try:
            return _REPLIES[self]
        except KeyError:
            raise ValueError(f"a {self.meaning} frame gets no reply") from None

    def error_reply(self) -> FrameType:
        """The error reply to a request of this type (request + 0x11)."""
        try:
            return _ERROR_REPLIES[self]
        except KeyError:
            raise ValueError(f"a {self.meaning} frame gets no error reply") from None


_FRAME_TYPE_MEANINGS: Final = {
    FrameType.QUERY: "query",
    FrameType.QUERY_REPLY: "query reply",
    FrameType.QUERY_ERROR: "query error reply",
    FrameType.SET: "set",
    FrameType.SET_REPLY: "set reply",
    FrameType.SET_ERROR: "set error reply",
    FrameType.BROADCAST: "broadcast",
    FrameType.TRAP: "trap",
    FrameType.HEARTBEAT: "heartbeat",
    FrameType.HEARTBEAT_REPLY: "heartbeat reply",
}
_REPLIES: Final = {
    FrameType.QUERY: FrameType.QUERY_REPLY,
    FrameType.SET: FrameType.SET_REPLY,
    FrameType.HEARTBEAT: FrameType.HEARTBEAT_REPLY,
}
_ERROR_REPLIES: Final = {
    FrameType.QUERY: FrameType.QUERY_ERROR,
    FrameType.SET: FrameType.SET_ERROR,
}
# 20999-test-first's frame table calls 0x71 the heartbeat reply (§1.5).
_HEARTBEAT_REPLY_0X71: Final = 0x71


class ErrorCode(enum.IntEnum):
    """The code carried by each value of a query or set error reply."""

    BAD_VALUE = 0x10
    WRONG_LENGTH = 0x11
    OUT_OF_RANGE = 0x12
    READ_ONLY = 0x20
    NOT_FOUND = 0x30
    GENERAL = 0x40
    CONTROL_FAILED = 0x50

    @property
    def meaning(self) -> str:
        """A sentence for a technician."""
        return _ERROR_MEANINGS[self]


_ERROR_MEANINGS: Final = {
    ErrorCode.BAD_VALUE: "the value is not acceptable",
    ErrorCode.WRONG_LENGTH: "the value has the wrong length",
    ErrorCode.OUT_OF_RANGE: "the value is out of range",
    ErrorCode.READ_ONLY: "the object is read-only",
    ErrorCode.NOT_FOUND: "the object does not exist",
    ErrorCode.GENERAL: "general error",
    ErrorCode.CONTROL_FAILED: "the control command failed",
}


class MessageErrorKind(enum.Enum):
    """Why an intact frame does not hold a valid message."""

    #: The frame type is not one of :class:`FrameType` (nor the tolerated 0x71).
    UNKNOWN_FRAME_TYPE = "unknown_frame_type"
    #: The value count does not match the values, or is missing.
    BAD_COUNT = "bad_count"
    #: A data value's length byte is below 4 or runs past the end of the body.
    BAD_VALUE_LENGTH = "bad_value_length"
    #: A heartbeat carries data values.
    HEARTBEAT_WITH_VALUES = "heartbeat_with_values"
    #: An error reply's value is not exactly one error code byte.
    BAD_ERROR_VALUE = "bad_error_value"
    #: :func:`match_reply`: the message does not answer the request.
    NOT_A_REPLY = "not_a_reply"


class InvalidMessage(MessageError):
    """The frame is intact but its content is not a valid message; ``kind`` says why."""

    def __init__(self, message: str, *, kind: MessageErrorKind) -> None:
        super().__init__(message)
        self.kind = kind


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} {value} is not one byte (0..255)")


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """Where a value lives: ``class.object.attribute.element``, e.g. ``9.2.3.1``.

    Positional, like the dotted form it stands for: ``Address(9, 2, 3, 1)``
    is scheme 1's cycle. In a table the element is the 1-based row; a scalar
    has element 0; 0 in a query means "all".
    """

    data_class: int
    object: int
    attribute: int = 0
    element: int = 0

    def __post_init__(self) -> None:
        """Check that each part fits one byte."""
        _check_byte("data class", self.data_class)
        _check_byte("object", self.object)
        _check_byte("attribute", self.attribute)
        _check_byte("element", self.element)

    def __str__(self) -> str:
        """The dotted form, ``9.2.3.1``."""
        return f"{self.data_class}.{self.object}.{self.attribute}.{self.element}"

    @classmethod
    def parse(cls, text: str) -> Address:
        """Read the dotted form (two to four parts; missing ones are 0)."""
        parts = text.split(".")
        if not 2 <= len(parts) <= 4 or not all(part.isdigit() for part in parts):
            raise ValueError(f"{text!r} is not an address like 9.2.3.1")
        numbers = [int(part) for part in parts] + [0] * (4 - len(parts))
        return cls(*numbers)

    def with_element(self, element: int) -> Address:
        """The same attribute at another element (row)."""
        return Address(self.data_class, self.object, self.attribute, element)

    def covers(self, other: Address) -> bool:
        """True when a query for this address asks for ``other`` (0 = all)."""
        return (
            self.data_class == other.data_class
            and self.object == other.object
            and self.attribute in (0, other.attribute)
            and self.element in (0, other.element)
        )

    def to_bytes(self) -> bytes:
        """The four address bytes of a data value."""
        return bytes([self.data_class, self.object, self.attribute, self.element])


@dataclass(frozen=True, kw_only=True, slots=True)
class Ids:
    """The header's identifiers of a link: who talks to whom, about which intersection."""

    #: 上位机ID, the upper computer (central, or this agent) talking to the controller.
    center: int
    #: 信号机ID, the controller's identifier (4 bytes).
    controller: int
    #: 路口ID, the intersection when one controller runs several.
    intersection: int

    def __post_init__(self) -> None:
        """Check the field sizes."""
        _check_byte("center ID", self.center)
        _check_byte("intersection ID", self.intersection)
        if not 0 <= self.controller <= 0xFFFF_FFFF:
            raise ValueError(f"controller ID {self.controller} does not fit 4 bytes")


@dataclass(frozen=True, kw_only=True, slots=True)
class DataValue:
    """One data value: its position in the message, its address and its value bytes."""

    #: 1-based position among the message's values (as sent; not checked).
    index: int
    address: Address
    #: The raw value, empty in a query; see ``objects.py`` for its encoding.
    value: bytes = b""

    def __post_init__(self) -> None:
        """Check the sizes."""
        _check_byte("value index", self.index)
        if len(self.value) > MAX_VALUE_SIZE:
            raise ValueError(
                f"value for {self.address} has {len(self.value)} bytes, "
                f"at most {MAX_VALUE_SIZE} fit"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One GB/T 20999 message: header fields and data values."""

    frame_type: FrameType
    ids: Ids
    #: 帧流水号, chosen by the sender, echoed by the reply.
    sequence: int
    values: tuple[DataValue, ...] = ()
    version: int = DEFAULT_VERSION
    #: Tolerated departures from the strict form seen when decoding (never encoded).
    deviations: frozenset[Deviation] = frozenset()

    def __post_init__(self) -> None:
        """Check the header fields and the value count."""
        _check_byte("sequence number", self.sequence)
        if not 0 <= self.version <= 0xFFFF:
            raise ValueError(f"protocol version {self.version} does not fit 2 bytes")
        if len(self.values) > MAX_VALUES:
            raise ValueError(f"{len(self.values)} values, at most {MAX_VALUES} fit a message")
        if self.frame_type.is_heartbeat and self.values:
            raise ValueError("a heartbeat carries no data values")


# ------------------------------------------------------------------- encoding


def encode_body(message: Message) -> bytes:
    """The body of ``message`` (version .. last data byte), strict form."""
    out = bytearray()
    out += message.version.to_bytes(2, "big")
    out.append(message.ids.center)
    out += message.ids.controller.to_bytes(4, "big")
    out.append(message.ids.intersection)
    out.append(message.sequence)
    out.append(message.frame_type)
    if not message.frame_type.is_heartbeat:
        out.append(len(message.values))
        for value in message.values:
            out.append(value.index)
            out.append(len(value.value) + 4)
            out += value.address.to_bytes()
            out += value.value
    return bytes(out)


def encode(message: Message, *, framing: Framing, max_frame: int = MAX_FRAME) -> bytes:
    """The wire bytes of ``message`` in the strict form, escaped for :attr:`Framing.STREAM`.

    Raises ``ValueError`` when the frame would exceed ``max_frame``.
    """
    return encode_frame(encode_body(message), framing=framing, max_frame=max_frame)


# ------------------------------------------------------------------- decoding


def parse_frame(frame: Frame) -> Message:
    """Turn a checked frame into a message, or raise :class:`InvalidMessage`."""
    body = frame.body
    deviations = set(frame.deviations)
    code = body[9]
    frame_type: FrameType
    if code == _HEARTBEAT_REPLY_0X71:
        frame_type = FrameType.HEARTBEAT_REPLY
        deviations.add(Deviation.HEARTBEAT_REPLY_0X71)
    else:
        try:
            frame_type = FrameType(code)
        except ValueError:
            raise InvalidMessage(
                f"GB/T 20999 frame type 0x{code:02X} is unknown",
                kind=MessageErrorKind.UNKNOWN_FRAME_TYPE,
            ) from None
    rest = body[_HEADER:]
    values: tuple[DataValue, ...] = ()
    if frame_type.is_heartbeat:
        if rest == b"\x00":
            # 20999-test-first sends a value count of 0 in its heartbeats (§1.5).
            deviations.add(Deviation.HEARTBEAT_WITH_COUNT)
        elif rest:
            raise InvalidMessage(
                f"GB/T 20999 {frame_type.meaning} carries {len(rest)} bytes after its header",
                kind=MessageErrorKind.HEARTBEAT_WITH_VALUES,
            )
    else:
        values = _parse_values(rest)
    return Message(
        frame_type=frame_type,
        ids=Ids(
            center=body[2],
            controller=int.from_bytes(body[3:7], "big"),
            intersection=body[7],
        ),
        sequence=body[8],
        values=values,
        version=int.from_bytes(body[0:2], "big"),
        deviations=frozenset(deviations),
    )


def _parse_values(data: bytes) -> tuple[DataValue, ...]:
    if not data:
        raise InvalidMessage(
            "GB/T 20999 message has no value count", kind=MessageErrorKind.BAD_COUNT
        )
    count = data[0]
    position = 1
    values = []
    for number in range(1, count + 1):
        if position + 2 > len(data):
            raise InvalidMessage(
                f"GB/T 20999 message announces {count} values but holds {number - 1}",
                kind=MessageErrorKind.BAD_COUNT,
            )
        index, length = data[position], data[position + 1]
        if length < 4:
            raise InvalidMessage(
                f"GB/T 20999 data value {number} has length {length}, below 4",
                kind=MessageErrorKind.BAD_VALUE_LENGTH,
            )
        end = position + 2 + length
        if end > len(data):
            raise InvalidMessage(
                f"GB/T 20999 data value {number} of length {length} runs "
                f"{end - len(data)} bytes past the end",
                kind=MessageErrorKind.BAD_VALUE_LENGTH,
            )
        values.append(
            DataValue(
                index=index,
                address=Address(*data[position + 2 : position + 6]),
                value=bytes(data[position + 6 : end]),
            )
        )
        position = end
    if position != len(data):
        raise InvalidMessage(
            f"GB/T 20999 message has {len(data) - position} bytes after its {count} values",
            kind=MessageErrorKind.BAD_COUNT,
        )
    return tuple(values)


def decode(data: bytes, *, framing: Framing, max_frame: int = MAX_FRAME) -> Message:
    """Decode exactly one frame (a datagram, or one escaped frame) into a message.

    Raises :class:`~agent.protocols.gbt20999.frame.IncompleteFrame` for a
    strict prefix of a valid frame, :class:`~agent.protocols.gbt20999.frame.InvalidFrame`
    for broken framing and :class:`InvalidMessage` for a bad message in an
    intact frame -- all :class:`~agent.errors.ProtocolError`.
    """
    return parse_frame(decode_frame(data, framing=framing, max_frame=max_frame))


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageErrorEvent:
    """An intact frame that holds no valid message (reported by :class:`MessageDecoder`)."""

    kind: MessageErrorKind
    #: A sentence for a log line or a technician.
    detail: str
    #: The frame's body (version .. last data byte).
    body: bytes


class MessageDecoder:
    """Incremental decoder from an escaped byte stream (RS-232, TCP) to messages.

    A :class:`~agent.protocols.gbt20999.frame.FrameDecoder` (whose docstring
    states the contract on noise, bad frames and the receive cap) followed by
    :func:`parse_frame`. ``feed`` never raises on received data: it returns
    messages, frame error events and message error events, in order.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        """Create a decoder that starts by hunting for a start byte."""
        self._frames = FrameDecoder(max_frame=max_frame)

    @property
    def frames(self) -> FrameDecoder:
        """The frame decoder underneath (for ``in_frame``, ``discarded``, ``reset``)."""
        return self._frames

    def feed(self, data: bytes) -> list[Message | FrameErrorEvent | MessageErrorEvent]:
        """Consume ``data`` and return the messages and error events it completed."""
        out: list[Message | FrameErrorEvent | MessageErrorEvent] = []
        for event in self._frames.feed(data):
            if isinstance(event, FrameErrorEvent):
                out.append(event)
                continue
            try:
                out.append(parse_frame(event))
            except InvalidMessage as err:
                out.append(MessageErrorEvent(kind=err.kind, detail=err.message, body=event.body))
        return out


# ------------------------------------------------------------------- building


def _numbered(pairs: Iterable[tuple[Address, bytes]]) -> tuple[DataValue, ...]:
    return tuple(
        DataValue(index=index, address=address, value=value)
        for index, (address, value) in enumerate(pairs, start=1)
    )


def query_message(
    ids: Ids, sequence: int, *addresses: Address, version: int = DEFAULT_VERSION
) -> Message:
    """A query (0x10) for ``addresses``, numbered from 1, with empty values."""
    if not addresses:
        raise ValueError("a query asks for at least one address")
    return Message(
        frame_type=FrameType.QUERY,
        ids=ids,
        sequence=sequence,
        values=_numbered((address, b"") for address in addresses),
        version=version,
    )


def query(
    ids: Ids,
    sequence: int,
    *addresses: Address,
    framing: Framing,
    version: int = DEFAULT_VERSION,
) -> bytes:
    """The wire bytes of a query for ``addresses`` (see :func:`query_message`)."""
    return encode(query_message(ids, sequence, *addresses, version=version), framing=framing)


def set_request(
    ids: Ids,
    sequence: int,
    values: Iterable[tuple[Address, bytes]],
    *,
    version: int = DEFAULT_VERSION,
) -> Message:
    """A set (0x30) writing each ``(address, value bytes)``, numbered from 1."""
    numbered = _numbered(values)
    if not numbered:
        raise ValueError("a set writes at least one value")
    return Message(
        frame_type=FrameType.SET, ids=ids, sequence=sequence, values=numbered, version=version
    )


def trap(
    ids: Ids,
    sequence: int,
    values: Iterable[tuple[Address, bytes]],
    *,
    version: int = DEFAULT_VERSION,
) -> Message:
    """A trap (0x60, 主动上报) reporting each ``(address, value bytes)``."""
    return Message(
        frame_type=FrameType.TRAP,
        ids=ids,
        sequence=sequence,
        values=_numbered(values),
        version=version,
    )


def heartbeat(ids: Ids, sequence: int, *, version: int = DEFAULT_VERSION) -> Message:
    """A heartbeat query (0x70): no count, no values."""
    return Message(frame_type=FrameType.HEARTBEAT, ids=ids, sequence=sequence, version=version)


def _answer(request: Message, frame_type: FrameType, values: tuple[DataValue, ...]) -> Message:
    return Message(
        frame_type=frame_type,
        ids=request.ids,
        sequence=request.sequence,
        values=values,
        version=request.version,
    )


def reply_to(request: Message, values: Iterable[tuple[Address, bytes]]) -> Message:
    """The success reply to a query: each ``(address, value bytes)``, numbered from 1.

    A wildcard query (attribute or element 0) is answered with one value per
    attribute and row.
    """
    return _answer(request, request.frame_type.reply(), _numbered(values))


def set_reply_to(request: Message) -> Message:
    """The success reply to a set: each value's address with status 0x00."""
    values = tuple(
        DataValue(index=value.index, address=value.address, value=bytes([SET_OK]))
        for value in request.values
    )
    return _answer(request, request.frame_type.reply(), values)


def error_reply_to(request: Message, errors: Iterable[tuple[Address, ErrorCode]]) -> Message:
    """The error reply (0x21 or 0x41) to a query or set: each address with its code."""
    return _answer(
        request,
        request.frame_type.error_reply(),
        _numbered((address, bytes([code])) for address, code in errors),
    )


def heartbeat_reply_to(request: Message) -> Message:
    """The heartbeat reply (0x80) to a heartbeat, echoing its sequence number."""
    return _answer(request, request.frame_type.reply(), ())


# ------------------------------------------------------------------- replies


def error_codes(message: Message) -> tuple[tuple[Address, ErrorCode | int], ...]:
    """The address and code of each value of an error reply.

    A code outside :class:`ErrorCode` is returned as the plain number. Raises
    :class:`InvalidMessage` when a value is not exactly one byte, and
    ``ValueError`` when ``message`` is not an error reply.
    """
    if not message.frame_type.is_error:
        raise ValueError(f"a {message.frame_type.meaning} carries no error codes")
    out: list[tuple[Address, ErrorCode | int]] = []
    for value in message.values:
        if len(value.value) != 1:
            raise InvalidMessage(
                f"GB/T 20999 error value for {value.address} has {len(value.value)} bytes, not 1",
                kind=MessageErrorKind.BAD_ERROR_VALUE,
            )
        code = value.value[0]
        try:
            out.append((value.address, ErrorCode(code)))
        except ValueError:
            out.append((value.address, code))
    return tuple(out)


def match_reply(request: Message, reply: Message) -> frozenset[Deviation]:
    """Check that ``reply`` answers ``request``; return the tolerated deviations.

    The reply must have the request's success or error type, the same ids,
    and only addresses the request asked for (0 in the request matches any
    attribute or row). A different sequence
    number is tolerated -- the captured device does not echo it -- and
    reported as :attr:`Deviation.SEQUENCE_NOT_ECHOED`.

    Raises :class:`InvalidMessage` (``NOT_A_REPLY``) otherwise.
    """
    expected = {_REPLIES.get(request.frame_type), _ERROR_REPLIES.get(request.frame_type)}
    if reply.frame_type not in expected:
        raise InvalidMessage(
            f"a {reply.frame_type.meaning} does not answer a {request.frame_type.meaning}",
            kind=MessageErrorKind.NOT_A_REPLY,
        )
    if reply.ids != request.ids:
        raise InvalidMessage(
            f"reply ids {reply.ids} differ from the request's {request.ids}",
            kind=MessageErrorKind.NOT_A_REPLY,
        )
    asked = [value.address for value in request.values]
    for value in reply.values:
        if not any(address.covers(value.address) for address in asked):
            raise InvalidMessage(
                f"reply carries {value.address}, which the request did not ask for",
                kind=MessageErrorKind.NOT_A_REPLY,
            )
    if reply.sequence != request.sequence:
        # The captured device answers sequence 1 with sequence 2 (§1.5).
        return frozenset({Deviation.SEQUENCE_NOT_ECHOED})
    return frozenset()
