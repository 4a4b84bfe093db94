"""SNMPv1 by pyasn1 and pysnmp: the reference codec beside the fast path.

:mod:`agent.protocols.snmp` writes and reads canonical BER itself (it is
what a poll costs, ten times a second); this module is the reference the
tests compare it with, and what decodes a message the fast path does not
take (long length forms and other legal, non-canonical BER). It is imported
on first use only, so an agent whose controller answers canonically never
loads pyasn1 and pysnmp.
"""

from __future__ import annotations

from typing import Any, Final

from pyasn1.codec.ber import encoder as _ber_encoder
from pyasn1.codec.der import decoder as _der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.proto import api as _snmp_api

from agent.errors import MessageError
from agent.protocols.snmp import (
    _INT32_MAX,
    _INT32_MIN,
    _SNMP_V1,
    _UINT32_MAX,
    Counter32,
    ErrorStatus,
    Gauge32,
    Integer,
    IpAddress,
    Null,
    ObjectIdentifier,
    OctetString,
    Oid,
    Opaque,
    Pdu,
    PduType,
    SnmpMessage,
    SnmpValue,
    TimeTicks,
    VarBind,
    _check_oid,
)

_V1: Final[Any] = _snmp_api.PROTOCOL_MODULES[_snmp_api.SNMP_VERSION_1]

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


def encode(message: SnmpMessage) -> bytes:
    """The BER encoding of ``message``, by pyasn1."""
    return bytes(_ber_encoder.encode(_asn1_message(message)))


def decode(data: bytes) -> SnmpMessage:
    """Decode exactly one SNMPv1 message (whole: the caller checked its length), by pyasn1."""
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
