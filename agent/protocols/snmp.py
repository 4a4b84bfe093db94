"""SNMPv1 messages (RFC 1157) as plain data, with BER from pysnmp/pyasn1.

The agent and ``firmware_sim`` work on the frozen dataclasses below; only this
module touches pysnmp's ASN.1 types. The BER work is done by pyasn1 with
pysnmp's RFC 1157 schema, nothing is hand-encoded. The one thing read by hand
is the outer ``SEQUENCE`` header, to tell an incomplete message from a bad one
and to find where a message ends in a byte stream.

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
from typing import Any, Final, TypeAlias

from pyasn1.codec.ber import encoder as _ber_encoder
from pyasn1.codec.der import decoder as _der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.proto import api as _snmp_api

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

_V1: Final[Any] = _snmp_api.PROTOCOL_MODULES[_snmp_api.SNMP_VERSION_1]


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

_PDU_CLASSES: Final[dict[PduType, Any]] = {
    PduType.GET_REQUEST: _V1.GetRequestPDU,
    PduType.GET_NEXT_REQUEST: _V1.GetNextRequestPDU,
    PduType.GET_RESPONSE: _V1.GetResponsePDU,
    PduType.SET_REQUEST: _V1.SetRequestPDU,
}
_PDU_BY_NAME: Final[dict[str, PduType]] = {
    "get-request": PduType.GET_REQUEST,
    "get-next-request": PduType.GET_NEXT_REQUEST,
    "get-response": PduType.GET_RESPONSE,
    "set-request": PduType.SET_REQUEST,
}


def _asn1_value(value: SnmpValue) -> Any:
    match value:
        case Integer(number):
            return univ.Integer(number)
        case OctetString(octets):
            return univ.OctetString(octets)
        case Null():
            return univ.Null("")
        case ObjectIdentifier(oid):
            return univ.ObjectIdentifier(oid)
        case IpAddress(octets):
            return _V1.IpAddress(octets)
        case Counter32(number):
            return _V1.Counter(number)
        case Gauge32(number):
            return _V1.Gauge(number)
        case TimeTicks(number):
            return _V1.TimeTicks(number)
        case Opaque(octets):
            return _V1.Opaque(octets)


def _asn1_message(message: SnmpMessage) -> Any:
    pdu = message.pdu
    asn1_pdu = _PDU_CLASSES[pdu.kind]()
    asn1_pdu.setComponentByPosition(0, pdu.request_id)
    asn1_pdu.setComponentByPosition(1, int(pdu.error_status))
    asn1_pdu.setComponentByPosition(2, pdu.error_index)
    _V1.apiPDU.set_varbinds(
        asn1_pdu,
        [(univ.ObjectIdentifier(vb.oid), _asn1_value(vb.value)) for vb in pdu.varbinds],
    )
    asn1_message = _V1.Message()
    asn1_message.setComponentByPosition(0, _SNMP_V1)
    asn1_message.setComponentByPosition(1, message.community)
    _V1.apiMessage.set_pdu(asn1_message, asn1_pdu)
    return asn1_message


def encode_message(message: SnmpMessage) -> bytes:
    """Return the BER encoding of ``message`` (always SNMPv1, version 0)."""
    return bytes(_ber_encoder.encode(_asn1_message(message)))


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


def _strict_ber_decoder() -> Any:
    """pyasn1's DER decoder, with OCTET STRING also held to the primitive form.

    That decoder already refuses indefinite lengths and accepts long length
    forms with extra octets, as SNMP requires. Its type map, though, still
    sends OCTET STRING (and IpAddress and Opaque, which share its type id) to
    the BER decoder, which assembles constructed strings; that entry is
    replaced.
    """
    type_map = dict(_der_decoder.TYPE_MAP)
    type_map[univ.OctetString.typeId] = _der_decoder.OctetStringPayloadDecoder()

    class _SingleItemDecoder(_der_decoder.SingleItemDecoder):  # type: ignore[misc]
        TYPE_MAP = type_map

    class _StreamingDecoder(_der_decoder.StreamingDecoder):  # type: ignore[misc]
        SINGLE_ITEM_DECODER = _SingleItemDecoder

    class _Decoder(_der_decoder.Decoder):  # type: ignore[misc]
        STREAMING_DECODER = _StreamingDecoder

    return _Decoder()


_decode_ber: Final[Any] = _strict_ber_decoder()


#: Exceptions pyasn1 can raise besides PyAsn1Error when fed hostile BER.
_LIBRARY_ERRORS: Final = (
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
    RecursionError,
)


def _brief(err: Exception, limit: int = 120) -> str:
    """pyasn1's explanation, cut to a log-friendly length (the full one stays chained)."""
    text = str(err) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _snmp_version(data: bytes) -> int | None:
    """Best-effort version number of a message that failed to decode as SNMPv1."""
    try:
        return int(_snmp_api.decodeMessageVersion(data))
    except (PyAsn1Error, *_LIBRARY_ERRORS):
        return None


def _int_in(kind: str, asn1: Any, low: int, high: int) -> int:
    number = int(asn1)
    if not low <= number <= high:
        raise MessageError(f"SNMP {kind} {number} is outside {low}..{high}")
    return number


def _oid_of(asn1: Any) -> Oid:
    oid = tuple(int(arc) for arc in asn1)
    try:
        _check_oid(oid)
    except ValueError as err:
        raise MessageError(f"bad OID in SNMP message: {err}") from err
    return oid


def _value_of(syntax: Any) -> SnmpValue:
    """Map an ``ObjectSyntax`` choice to one of our value types."""
    inner = syntax.getComponent()
    name = inner.getName()
    asn1 = inner.getComponent()
    match name:
        case "number":
            return Integer(_int_in("INTEGER", asn1, _INT32_MIN, _UINT32_MAX))
        case "string":
            return OctetString(bytes(asn1))
        case "object":
            return ObjectIdentifier(_oid_of(asn1))
        case "empty":
            return Null()
        case "address":
            return IpAddress(bytes(asn1.getComponent()))
        case "counter":
            return Counter32(_int_in("Counter", asn1, 0, _UINT32_MAX))
        case "gauge":
            return Gauge32(_int_in("Gauge", asn1, 0, _UINT32_MAX))
        case "ticks":
            return TimeTicks(_int_in("TimeTicks", asn1, 0, _UINT32_MAX))
        case "arbitrary":
            return Opaque(bytes(asn1))
    raise MessageError(f"unsupported SNMP value type {name!r}")


def _message_of(asn1_message: Any) -> SnmpMessage:
    version = int(asn1_message[0])
    if version != _SNMP_V1:
        raise MessageError(f"SNMP version field {version} is not SNMPv1 (0)")
    community = bytes(asn1_message[1])
    pdus = asn1_message[2]
    pdu_name = pdus.getName()
    kind = _PDU_BY_NAME.get(pdu_name)
    if kind is None:
        raise MessageError(f"SNMPv1 {pdu_name} PDUs are not supported")
    asn1_pdu = pdus.getComponent()
    request_id = _int_in("request-id", asn1_pdu[0], _INT32_MIN, _INT32_MAX)
    status = int(asn1_pdu[1])
    if status not in ErrorStatus._value2member_map_:
        raise MessageError(f"SNMPv1 error-status {status} is not defined (0..5)")
    varbinds = tuple(
        VarBind(oid=_oid_of(asn1_vb[0]), value=_value_of(asn1_vb[1])) for asn1_vb in asn1_pdu[3]
    )
    error_index = _int_in("error-index", asn1_pdu[2], 0, len(varbinds))
    return SnmpMessage(
        community=community,
        pdu=Pdu(
            kind=kind,
            request_id=request_id,
            error_status=ErrorStatus(status),
            error_index=error_index,
            varbinds=varbinds,
        ),
    )


def decode_message(data: bytes) -> SnmpMessage:
    """Decode exactly one SNMPv1 message.

    Raises :class:`IncompleteMessage` if ``data`` is a strict prefix of a
    message, :class:`~agent.errors.MessageError` for everything else that is
    not a valid SNMPv1 Get, GetNext, Set or GetResponse message (wrong
    version, trailing bytes, bad BER, out-of-range values ...).
    """
    total = message_length(data)
    if len(data) < total:
        raise IncompleteMessage(f"SNMP message has {len(data)} of {total} octets")
    if len(data) > total:
        raise MessageError(f"{len(data) - total} octets follow the SNMP message")
    try:
        asn1_message, _rest = _decode_ber(data, asn1Spec=_V1.Message())
        return _message_of(asn1_message)
    except MessageError:
        raise
    except PyAsn1Error as err:
        version = _snmp_version(data)
        if version is not None and version != _SNMP_V1:
            raise MessageError(f"SNMP version field {version} is not SNMPv1 (0)") from err
        raise MessageError(f"malformed SNMPv1 message: {_brief(err)}") from err
    # pyasn1 raises more than PyAsn1Error on odd input; each becomes our MessageError.
    except _LIBRARY_ERRORS as err:
        raise MessageError(f"malformed SNMPv1 message: {_brief(err)}") from err
