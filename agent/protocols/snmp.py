"""SNMPv1 messages (RFC 1157) as plain data, with BER from pysnmp/pyasn1.

The agent and ``firmware_sim`` work on the frozen dataclasses below; only this
module touches pysnmp's ASN.1 types. pyasn1 with pysnmp's RFC 1157 schema is
the reference codec. It is also slow: encoding and decoding one 17-varbind
status poll took about 1.3 ms, most of the agent's CPU per poll and a real
share of a serial link's turnaround. So the canonical encodings -- the
minimal lengths and integers every agent and manager sends -- take a fast
path written out below: :func:`encode_message` writes the bytes pyasn1
writes (except that pyasn1 pads a negative power of two such as -128 with a
redundant 0xFF octet, which X.690 8.3.2 forbids; both read either form), and
:func:`decode_message` reads a canonical message directly and hands anything
else (long lengths with extra octets, non-minimal integers, unknown tags, any
error at all) to pyasn1, which decides.
``tests/protocols/test_snmp_fast_path.py`` holds the two paths to the same
answers. The outer ``SEQUENCE`` header is read by hand too, to tell an
incomplete message from a bad one and to find where a message ends in a
byte stream.

A message::

    SEQUENCE {                          30 len
      version    INTEGER  -- 0 = SNMPv1     02 01 00
      community  OCTET STRING               04 len ...
      pdu        [A0 get | A1 get-next | A2 response | A3 set] {
        request-id   INTEGER
        error-status INTEGER (0..5)
        error-index  INTEGER
        varbinds     SEQUENCE OF SEQUENCE { name OID, value ObjectSyntax }
      }
    }

Decoding (:func:`decode_message`) follows the restricted BER of RFC 1157 and
RFC 3417 section 8: definite lengths only (long forms with extra length octets
are accepted), primitive encodings for strings. It accepts only version 0, the
four PDUs above (a v1 Trap is refused), and values that fit the types below.
It raises :class:`IncompleteMessage` when the data stops before the end the
outer header announces, and :class:`~agent.errors.MessageError` for anything
else that is wrong, trailing bytes included. No other exception escapes it.

Building a :class:`Pdu` or a value with out-of-range fields raises
``ValueError``: that is a bug in the caller, not bad input from a peer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from agent.errors import MessageError

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_OID_LENGTH",
    "Counter32",
    "ErrorStatus",
    "Gauge32",
    "IncompleteMessage",
    "Integer",
    "IpAddress",
    "Null",
    "ObjectIdentifier",
    "OctetString",
    "Oid",
    "Opaque",
    "Pdu",
    "PduType",
    "SnmpMessage",
    "SnmpValue",
    "TimeTicks",
    "VarBind",
    "decode_message",
    "encode_message",
    "encoded_size",
    "message_length",
    "oid_from_str",
    "oid_to_str",
]

#: An object identifier as a tuple of sub-identifiers, e.g. ``(1, 3, 6, 1)``.
Oid: TypeAlias = tuple[int, ...]

#: Largest message :func:`decode_message` accepts (a UDP datagram's payload limit).
MAX_MESSAGE_SIZE: Final = 65535
#: Most sub-identifiers in an OID (RFC 2578 section 3.5).
MAX_OID_LENGTH: Final = 128

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_UINT32_MAX: Final = 2**32 - 1
_IPV4_LEN: Final = 4
_SEQUENCE_TAG: Final = 0x30
_MAX_LENGTH_OCTETS: Final = 4
_SNMP_V1: Final = 0


class IncompleteMessage(MessageError):
    """The data is a valid beginning of a message; more bytes are needed.

    Raised for every strict prefix of a valid message (the outer BER header
    tells how long the message is). Catch it before
    :class:`~agent.errors.MessageError` when waiting for more data makes
    sense; over UDP it simply means a truncated datagram.
    """


# --------------------------------------------------------------------------- OIDs


def _check_oid(oid: Oid) -> None:
    if not 2 <= len(oid) <= MAX_OID_LENGTH:
        raise ValueError(f"an OID needs 2..{MAX_OID_LENGTH} sub-identifiers, got {len(oid)}")
    if any(not 0 <= arc <= _UINT32_MAX for arc in oid):
        raise ValueError("every OID sub-identifier must be within 0..4294967295")
    if oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"an OID cannot start with {oid[0]}.{oid[1]}")


def oid_from_str(text: str) -> Oid:
    """Parse a dotted OID such as ``"1.3.6.1.4.1.1206.4.2.1.4.10.0"``.

    A leading dot (net-snmp's numeric style) is allowed. Raises ``ValueError``
    for anything that is not a valid numeric OID.
    """
    parts = text.strip().removeprefix(".").split(".")
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ValueError(f"not a numeric OID: {text!r}")
    oid = tuple(int(part) for part in parts)
    _check_oid(oid)
    return oid


def oid_to_str(oid: Iterable[int]) -> str:
    """Return the dotted form of an OID, without a leading dot."""
    return ".".join(str(arc) for arc in oid)


# -------------------------------------------------------------------------- values
#
# Single-field value wrappers take their value positionally (``Integer(5)``);
# everything with more than one field is keyword-only.


def _check_range(kind: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{kind} value {value!r} is outside {low}..{high}")


@dataclass(frozen=True, slots=True)
class Integer:
    """``INTEGER``: -2**31 .. 2**32-1.

    SNMPv1 INTEGER is Integer32, but NTCIP 1201 also declares
    ``INTEGER (0..4294967295)`` objects (``timeBaseScheduleDate``), so the
    unsigned 32-bit range is accepted as well.
    """

    value: int

    def __post_init__(self) -> None:
        _check_range("INTEGER", self.value, _INT32_MIN, _UINT32_MAX)


@dataclass(frozen=True, slots=True)
class OctetString:
    """``OCTET STRING``: text, bitmaps or phase lists, as raw octets."""

    value: bytes


@dataclass(frozen=True, slots=True)
class Null:
    """``NULL``: the value placeholder in Get and GetNext requests."""


@dataclass(frozen=True, slots=True)
class ObjectIdentifier:
    """``OBJECT IDENTIFIER`` as a value (e.g. ``dayPlanActionNumberOID``)."""

    value: Oid

    def __post_init__(self) -> None:
        _check_oid(self.value)


@dataclass(frozen=True, slots=True)
class IpAddress:
    """``IpAddress``: four octets, network order."""

    value: bytes

    def __post_init__(self) -> None:
        if len(self.value) != _IPV4_LEN:
            raise ValueError(f"IpAddress needs 4 octets, got {len(self.value)}")


@dataclass(frozen=True, slots=True)
class Counter32:
    """``Counter`` (SNMPv1 name; Counter32 in SMIv2): 0 .. 2**32-1. ``globalTime`` is one."""

    value: int

    def __post_init__(self) -> None:
        _check_range("Counter", self.value, 0, _UINT32_MAX)


@dataclass(frozen=True, slots=True)
class Gauge32:
    """``Gauge`` (SNMPv1 name; Gauge32 in SMIv2): 0 .. 2**32-1."""

    value: int

    def __post_init__(self) -> None:
        _check_range("Gauge", self.value, 0, _UINT32_MAX)


@dataclass(frozen=True, slots=True)
class TimeTicks:
    """``TimeTicks``: hundredths of a second, 0 .. 2**32-1."""

    value: int

    def __post_init__(self) -> None:
        _check_range("TimeTicks", self.value, 0, _UINT32_MAX)


@dataclass(frozen=True, slots=True)
class Opaque:
    """``Opaque``: arbitrary BER wrapped in an octet string."""

    value: bytes


#: Any value a varbind can carry in SNMPv1.
SnmpValue: TypeAlias = (
    Integer
    | OctetString
    | Null
    | ObjectIdentifier
    | IpAddress
    | Counter32
    | Gauge32
    | TimeTicks
    | Opaque
)


# ------------------------------------------------------------------ PDUs, messages


class PduType(enum.IntEnum):
    """The SNMPv1 PDUs this codec handles; the value is the PDU's BER tag."""

    GET_REQUEST = 0xA0
    GET_NEXT_REQUEST = 0xA1
    GET_RESPONSE = 0xA2
    SET_REQUEST = 0xA3


class ErrorStatus(enum.IntEnum):
    """SNMPv1 error-status values (RFC 1157 section 4.1.1)."""

    NO_ERROR = 0
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5


@dataclass(frozen=True, kw_only=True, slots=True)
class VarBind:
    """One variable binding: an object instance and its value."""

    #: The object instance, e.g. ``coordPatternStatus.0``.
    oid: Oid
    #: The value; :class:`Null` in Get and GetNext requests.
    value: SnmpValue = Null()

    def __post_init__(self) -> None:
        _check_oid(self.oid)


@dataclass(frozen=True, kw_only=True, slots=True)
class Pdu:
    """One protocol data unit.

    ``error_index`` is 1-based into ``varbinds`` (0 = no particular one) and
    can never point past them.
    """

    kind: PduType
    #: Matches a response to its request; a signed 32-bit integer.
    request_id: int
    error_status: ErrorStatus = ErrorStatus.NO_ERROR
    error_index: int = 0
    varbinds: tuple[VarBind, ...] = ()

    def __post_init__(self) -> None:
        _check_range("request-id", self.request_id, _INT32_MIN, _INT32_MAX)
        _check_range("error-index", self.error_index, 0, len(self.varbinds))


@dataclass(frozen=True, kw_only=True, slots=True)
class SnmpMessage:
    """An SNMPv1 message: a community string and one PDU."""

    community: bytes
    pdu: Pdu


# ------------------------------------------------------------------------ encoding


def _encode_pyasn1(message: SnmpMessage) -> bytes:
    """The reference encoding, by pyasn1 (the tests compare the fast path with it)."""
    from agent.protocols import snmp_reference

    return snmp_reference.encode(message)


def encode_message(message: SnmpMessage) -> bytes:
    """Return the BER encoding of ``message`` (always SNMPv1, version 0)."""
    return _fast_encode(message)


def encoded_size(message: SnmpMessage) -> int:
    """Return how many octets ``message`` takes on the wire.

    Use it to keep a request (or the response it will provoke) under an
    agent's size limit, e.g. when splitting varbinds after ``tooBig``.
    """
    return len(encode_message(message))


# ------------------------------------------------------------------------ decoding


def message_length(data: bytes) -> int:
    """Return the total length of the message that starts ``data``, from its header.

    Only the outer ``SEQUENCE`` tag and length are read, so this also finds
    message boundaries in a byte stream. Raises :class:`IncompleteMessage` if
    the header itself is cut short, and :class:`~agent.errors.MessageError` if
    it is not a definite-length SEQUENCE of at most :data:`MAX_MESSAGE_SIZE`
    octets.
    """
    if not data:
        raise IncompleteMessage("no bytes yet: an SNMP message starts with 0x30")
    if data[0] != _SEQUENCE_TAG:
        raise MessageError(f"not an SNMP message: starts with 0x{data[0]:02X}, not 0x30")
    if len(data) < 2:
        raise IncompleteMessage("SNMP message header cut short")
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0:
        raise MessageError("SNMP forbids the indefinite length form")
    if count > _MAX_LENGTH_OCTETS:
        raise MessageError(f"SNMP message length field of {count} octets is too long")
    if len(data) < 2 + count:
        raise IncompleteMessage("SNMP message header cut short")
    length = int.from_bytes(data[2 : 2 + count], "big")
    if length > MAX_MESSAGE_SIZE:
        raise MessageError(f"SNMP message of {length} octets exceeds {MAX_MESSAGE_SIZE}")
    return 2 + count + length


def decode_message(data: bytes) -> SnmpMessage:
    """Decode exactly one SNMPv1 message.

    Raises :class:`IncompleteMessage` if ``data`` is a strict prefix of a
    message, :class:`~agent.errors.MessageError` for everything else that is
    not a valid SNMPv1 Get, GetNext, Set or GetResponse message (wrong
    version, trailing bytes, bad BER, out-of-range values ...).
    """
    _check_whole(data)
    try:
        return _fast_decode(data)
    except _NotCanonical:
        pass
    return _decode_pyasn1(data)


def _check_whole(data: bytes) -> None:
    """Raise unless ``data`` holds exactly the one message its header announces."""
    total = message_length(data)
    if len(data) < total:
        raise IncompleteMessage(f"SNMP message has {len(data)} of {total} octets")
    if len(data) > total:
        raise MessageError(f"{len(data) - total} octets follow the SNMP message")


def _decode_pyasn1(data: bytes) -> SnmpMessage:
    """The reference decoding (the tests compare the fast path with it): pyasn1 only.

    Also what decodes a message the fast path does not take (non-canonical
    BER). pyasn1 and pysnmp are imported on the first such message: an agent
    whose controller answers canonically never carries them (about 2.3 MiB).
    """
    _check_whole(data)
    from agent.protocols import snmp_reference

    return snmp_reference.decode(data)


# ---------------------------------------------------------------- the fast path
#
# Tags of the SNMPv1 value types (RFC 1155: IpAddress, Counter, Gauge, TimeTicks
# and Opaque are [APPLICATION 0..4] IMPLICIT).
_TAG_INTEGER: Final = 0x02
_TAG_OCTET_STRING: Final = 0x04
_TAG_NULL: Final = 0x05
_TAG_OID: Final = 0x06
_TAG_IP_ADDRESS: Final = 0x40
_TAG_COUNTER: Final = 0x41
_TAG_GAUGE: Final = 0x42
_TAG_TIME_TICKS: Final = 0x43
_TAG_OPAQUE: Final = 0x44
_UNSIGNED: Final[dict[int, type[Counter32 | Gauge32 | TimeTicks]]] = {
    _TAG_COUNTER: Counter32,
    _TAG_GAUGE: Gauge32,
    _TAG_TIME_TICKS: TimeTicks,
}
#: Longest INTEGER content a value can have: 0x00 and four octets (2**32 - 1).
_MAX_INTEGER_OCTETS: Final = 5
_PDU_TAGS: Final = frozenset(int(kind) for kind in PduType)


def _length(size: int) -> bytes:
    """A minimal BER length: short form below 128, else 0x8n and n octets."""
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _integer(tag: int, value: int) -> bytes:
    """A minimal two's-complement INTEGER (or Counter, Gauge, TimeTicks)."""
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return _tlv(tag, value.to_bytes(size, "big", signed=True))


def _oid(oid: Oid) -> bytes:
    """An OBJECT IDENTIFIER: the first two arcs as 40 * X + Y, each sub-identifier base 128."""
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        groups = []
        while arc:
            groups.append(arc & 0x7F)
            arc >>= 7
        out += bytes(g | 0x80 for g in reversed(groups[1:])) + bytes((groups[0],))
    return _tlv(_TAG_OID, bytes(out))


def _value(value: SnmpValue) -> bytes:
    match value:
        case Integer(number):
            return _integer(_TAG_INTEGER, number)
        case OctetString(octets):
            return _tlv(_TAG_OCTET_STRING, octets)
        case Null():
            return b"\x05\x00"
        case ObjectIdentifier(oid):
            return _oid(oid)
        case IpAddress(octets):
            return _tlv(_TAG_IP_ADDRESS, octets)
        case Counter32(number):
            return _integer(_TAG_COUNTER, number)
        case Gauge32(number):
            return _integer(_TAG_GAUGE, number)
        case TimeTicks(number):
            return _integer(_TAG_TIME_TICKS, number)
        case Opaque(octets):
            return _tlv(_TAG_OPAQUE, octets)


def _fast_encode(message: SnmpMessage) -> bytes:
    """The minimal BER of ``message``: pyasn1's bytes, written directly (see the module doc)."""
    pdu = message.pdu
    bindings = b"".join(_tlv(_SEQUENCE_TAG, _oid(vb.oid) + _value(vb.value)) for vb in pdu.varbinds)
    body = (
        _integer(_TAG_INTEGER, pdu.request_id)
        + _integer(_TAG_INTEGER, int(pdu.error_status))
        + _integer(_TAG_INTEGER, pdu.error_index)
        + _tlv(_SEQUENCE_TAG, bindings)
    )
    return _tlv(
        _SEQUENCE_TAG,
        b"\x02\x01\x00" + _tlv(_TAG_OCTET_STRING, message.community) + _tlv(int(pdu.kind), body),
    )


class _NotCanonical(Exception):
    """Not a canonical SNMPv1 encoding the fast path reads: pyasn1 decides."""


def _read(data: bytes, at: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``at``, which must end by ``end``."""
    if at + 2 > end:
        raise _NotCanonical
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        start, size = at + 2, first
    elif first == 0x81 and at + 3 <= end and data[at + 2] >= 0x80:
        start, size = at + 3, data[at + 2]
    elif first == 0x82 and at + 4 <= end and data[at + 2]:
        start, size = at + 4, (data[at + 2] << 8) | data[at + 3]
    else:
        raise _NotCanonical
    if start + size > end:
        raise _NotCanonical
    return tag, start, start + size


def _read_integer(data: bytes, start: int, stop: int, low: int, high: int) -> int:
    size = stop - start
    if not 1 <= size <= _MAX_INTEGER_OCTETS:
        raise _NotCanonical
    if size > 1 and (
        (data[start] == 0x00 and data[start + 1] < 0x80)
        or (data[start] == 0xFF and data[start + 1] >= 0x80)
    ):
        raise _NotCanonical
    number = int.from_bytes(data[start:stop], "big", signed=True)
    if not low <= number <= high:
        raise _NotCanonical
    return number


def _read_oid(data: bytes, start: int, stop: int) -> Oid:
    arcs: list[int] = []
    arc, fresh = 0, True
    for byte in data[start:stop]:
        if fresh and byte == 0x80:
            raise _NotCanonical  # a sub-identifier with a leading zero group
        arc = (arc << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(arc)
            arc = 0
    if not arcs or not fresh:
        raise _NotCanonical
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    oid = (*head, *arcs[1:])
    try:
        _check_oid(oid)
    except ValueError:
        raise _NotCanonical from None
    return oid


def _read_value(data: bytes, tag: int, start: int, stop: int) -> SnmpValue:
    if tag == _TAG_INTEGER:
        return Integer(_read_integer(data, start, stop, _INT32_MIN, _UINT32_MAX))
    if tag in _UNSIGNED:
        return _UNSIGNED[tag](_read_integer(data, start, stop, 0, _UINT32_MAX))
    if tag == _TAG_OCTET_STRING:
        return OctetString(data[start:stop])
    if tag == _TAG_NULL and start == stop:
        return Null()
    if tag == _TAG_OID:
        return ObjectIdentifier(_read_oid(data, start, stop))
    if tag == _TAG_IP_ADDRESS and stop - start == _IPV4_LEN:
        return IpAddress(data[start:stop])
    if tag == _TAG_OPAQUE:
        return Opaque(data[start:stop])
    raise _NotCanonical


def _fast_decode(data: bytes) -> SnmpMessage:
    """Decode one whole canonical SNMPv1 message; :class:`_NotCanonical` for anything else."""
    data = bytes(data)  # values hold bytes, whatever buffer the message came in
    end = len(data)
    tag, start, stop = _read(data, 0, end)
    if tag != _SEQUENCE_TAG or stop != end:
        raise _NotCanonical
    tag, at, version_end = _read(data, start, end)
    if tag != _TAG_INTEGER or _read_integer(data, at, version_end, 0, 0) != _SNMP_V1:
        raise _NotCanonical
    tag, at, community_end = _read(data, version_end, end)
    if tag != _TAG_OCTET_STRING:
        raise _NotCanonical
    community = data[at:community_end]
    kind, at, pdu_end = _read(data, community_end, end)
    if kind not in _PDU_TAGS or pdu_end != end:
        raise _NotCanonical
    numbers = []
    for low, high in ((_INT32_MIN, _INT32_MAX), (0, len(ErrorStatus) - 1), (0, _INT32_MAX)):
        tag, start, at = _read(data, at, end)
        if tag != _TAG_INTEGER:
            raise _NotCanonical
        numbers.append(_read_integer(data, start, at, low, high))
    tag, at, list_end = _read(data, at, end)
    if tag != _SEQUENCE_TAG or list_end != end:
        raise _NotCanonical
    varbinds = []
    while at < end:
        tag, start, bind_end = _read(data, at, end)
        if tag != _SEQUENCE_TAG:
            raise _NotCanonical
        tag, start, oid_end = _read(data, start, bind_end)
        if tag != _TAG_OID:
            raise _NotCanonical
        oid = _read_oid(data, start, oid_end)
        tag, start, value_end = _read(data, oid_end, bind_end)
        if value_end != bind_end:
            raise _NotCanonical
        varbinds.append(VarBind(oid=oid, value=_read_value(data, tag, start, value_end)))
        at = bind_end
    request_id, status, index = numbers
    if index > len(varbinds):
        raise _NotCanonical
    return SnmpMessage(
        community=community,
        pdu=Pdu(
            kind=PduType(kind),
            request_id=request_id,
            error_status=ErrorStatus(status),
            error_index=index,
            varbinds=tuple(varbinds),
        ),
    )
