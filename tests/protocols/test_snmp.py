"""SNMPv1 codec, tested on bytes assembled by hand (a second source besides pysnmp)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.errors import MessageError, ProtocolError
from agent.protocols.snmp import (
    MAX_OID_LENGTH,
    Counter32,
    ErrorStatus,
    Gauge32,
    IncompleteMessage,
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
    decode_message,
    encode_message,
    encoded_size,
    message_length,
    oid_from_str,
    oid_to_str,
)


def examples(floor: int) -> int:
    """``floor`` examples, or more when the loaded Hypothesis profile asks for more.

    The default profile keeps the suite fast; a long-run profile (e.g. one with
    ``max_examples=100_000`` loaded from a conftest) raises every property at once.
    """
    return max(floor, settings().max_examples)


COORD_PATTERN_STATUS_0: Oid = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 4, 10, 0)
UNIT_BACKUP_TIME_0: Oid = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 3, 3, 0)


def h(text: str) -> bytes:
    """Hex with spaces and line breaks, for annotated fixtures."""
    return bytes.fromhex("".join(text.split()))


# ------------------------------------------------------------------ fixtures
# Each byte string is assembled by hand from RFC 1157 / X.690, with its lengths
# counted by hand; none was produced by pysnmp.


def annotated(text: str) -> bytes:
    """Hex where everything after ``|`` on a line is a comment."""
    return h(" ".join(line.split("|")[0] for line in text.splitlines()))


FIXTURES: list[tuple[str, bytes, SnmpMessage]] = [
    (
        "classic-get-sysDescr",
        annotated("""
        30 26                                | SEQUENCE, 38 octets
        02 01 00                             | version 0 = SNMPv1
        04 06 70 75 62 6c 69 63              | community "public"
        a0 19                                | GetRequest-PDU, 25 octets
        02 01 01                             | request-id 1
        02 01 00                             | error-status noError
        02 01 00                             | error-index 0
        30 0e                                | varbind list, 14 octets
        30 0c                                | varbind, 12 octets
        06 08 2b 06 01 02 01 01 01 00        | 1.3.6.1.2.1.1.1.0 (sysDescr.0)
        05 00                                | NULL
        """),
        SnmpMessage(
            community=b"public",
            pdu=Pdu(
                kind=PduType.GET_REQUEST,
                request_id=1,
                varbinds=(VarBind(oid=(1, 3, 6, 1, 2, 1, 1, 1, 0)),),
            ),
        ),
    ),
    (
        "reference-get-coordPatternStatus",  # ntcip-protocols.md §1, byte for byte
        h("""
        30 2b 02 01 00 04 06 70 75 62 6c 69 63 a0 1e 02 01 01 02 01 00 02 01 00
        30 13 30 11 06 0d 2b 06 01 04 01 89 36 04 02 01 04 0a 00 05 00
        """),
        SnmpMessage(
            community=b"public",
            pdu=Pdu(
                kind=PduType.GET_REQUEST,
                request_id=1,
                varbinds=(VarBind(oid=COORD_PATTERN_STATUS_0),),
            ),
        ),
    ),
    (
        "response-coordPatternStatus-3",
        annotated("""
        30 2c                                | SEQUENCE, 44 octets
        02 01 00 04 06 70 75 62 6c 69 63     | v1, "public"
        a2 1f                                | GetResponse-PDU, 31 octets
        02 01 01 02 01 00 02 01 00           | request-id 1, noError, 0
        30 14 30 12                          | one varbind
        06 0d 2b 06 01 04 01 89 36 04 02 01 04 0a 00 | coordPatternStatus.0
        02 01 03                             | INTEGER 3
        """),
        SnmpMessage(
            community=b"public",
            pdu=Pdu(
                kind=PduType.GET_RESPONSE,
                request_id=1,
                varbinds=(VarBind(oid=COORD_PATTERN_STATUS_0, value=Integer(3)),),
            ),
        ),
    ),
    (
        "set-unitBackupTime-300",
        annotated("""
        30 2d                                | SEQUENCE, 45 octets
        02 01 00 04 05 61 64 6d 69 6e        | v1, "admin"
        a3 21                                | SetRequest-PDU, 33 octets
        02 02 12 34 02 01 00 02 01 00        | request-id 0x1234, noError, 0
        30 15 30 13                          | one varbind
        06 0d 2b 06 01 04 01 89 36 04 02 01 03 03 00 | unitBackupTime.0
        02 02 01 2c                          | INTEGER 300
        """),
        SnmpMessage(
            community=b"admin",
            pdu=Pdu(
                kind=PduType.SET_REQUEST,
                request_id=0x1234,
                varbinds=(VarBind(oid=UNIT_BACKUP_TIME_0, value=Integer(300)),),
            ),
        ),
    ),
    (
        "response-noSuchName",
        annotated("""
        30 2a                                | SEQUENCE, 42 octets
        02 01 00 04 06 70 75 62 6c 69 63     | v1, "public"
        a2 1d                                | GetResponse-PDU, 29 octets
        02 01 ff                             | request-id -1
        02 01 02                             | error-status noSuchName
        02 01 01                             | error-index 1
        30 12 30 10                          | one varbind
        06 0c 2b 06 01 04 01 89 36 04 02 01 63 00 | asc.99.0
        05 00                                | NULL
        """),
        SnmpMessage(
            community=b"public",
            pdu=Pdu(
                kind=PduType.GET_RESPONSE,
                request_id=-1,
                error_status=ErrorStatus.NO_SUCH_NAME,
                error_index=1,
                varbinds=(VarBind(oid=(1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 99, 0)),),
            ),
        ),
    ),
    (
        "getnext-empty-community-no-varbinds",
        annotated("""
        30 12                                | SEQUENCE, 18 octets
        02 01 00 04 00                       | v1, empty community
        a1 0b                                | GetNextRequest-PDU, 11 octets
        02 01 05 02 01 00 02 01 00           | request-id 5, noError, 0
        30 00                                | no varbinds
        """),
        SnmpMessage(
            community=b"",
            pdu=Pdu(kind=PduType.GET_NEXT_REQUEST, request_id=5),
        ),
    ),
    (
        "response-every-value-type",
        annotated("""
        30 81 ef                             | SEQUENCE, 239 octets (long form)
        02 01 00 04 06 70 75 62 6c 69 63     | v1, "public"
        a2 81 e1                             | GetResponse-PDU, 225 octets
        02 01 02 02 01 00 02 01 00           | request-id 2, noError, 0
        30 81 d5                             | varbind list, 213 octets
        30 15 06 0d 2b 06 01 04 01 89 36 04 02 06 03 01 00 | globalTime.0
              41 04 65 5f 3b 80              | Counter 0x655F3B80
        30 18 06 10 2b 06 01 04 01 89 36 04 02 01 07 03 01 03 01 01 | sequenceData.1.1
              04 04 01 02 03 04              | OCTET STRING 01 02 03 04
        30 0e 06 08 2b 06 01 02 01 01 03 00  | sysUpTime.0
              43 02 30 39                    | TimeTicks 12345
        30 12 06 0a 2b 06 01 02 01 02 02 01 05 01 | ifSpeed.1
              42 04 05 f5 e1 00              | Gauge 100000000
        30 15 06 0d 2b 06 01 02 01 04 14 01 01 7f 00 00 01 | ipAdEntAddr.127.0.0.1
              40 04 7f 00 00 01              | IpAddress 127.0.0.1
        30 24 06 11 2b 06 01 04 01 89 36 04 02 06 03 03 05 01 05 01 01 | dayPlanActionNumberOID.1.1
              06 0f 2b 06 01 04 01 89 36 04 02 01 05 03 01 01 03 | OID timebaseAscActionNumber.3
        30 19 06 10 2b 06 01 04 01 89 36 04 02 06 03 03 02 01 04 01 | timeBaseScheduleDate.1
              02 05 00 ff ff ff ff           | INTEGER 4294967295
        30 11 06 0a 2b 06 01 04 01 86 8d 1f 01 00 | 1.3.6.1.4.1.99999.1.0
              44 03 9f 78 04                 | Opaque 9f 78 04
        30 13 06 0d 2b 06 01 04 01 89 36 04 02 06 03 05 00 | controllerStandardTimeZone.0
              02 02 b9 b0                    | INTEGER -18000
        """),
        SnmpMessage(
            community=b"public",
            pdu=Pdu(
                kind=PduType.GET_RESPONSE,
                request_id=2,
                varbinds=(
                    VarBind(
                        oid=(1, 3, 6, 1, 4, 1, 1206, 4, 2, 6, 3, 1, 0),
                        value=Counter32(0x655F3B80),
                    ),
                    VarBind(
                        oid=(1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 7, 3, 1, 3, 1, 1),
                        value=OctetString(b"\x01\x02\x03\x04"),
                    ),
                    VarBind(oid=(1, 3, 6, 1, 2, 1, 1, 3, 0), value=TimeTicks(12345)),
                    VarBind(oid=(1, 3, 6, 1, 2, 1, 2, 2, 1, 5, 1), value=Gauge32(100_000_000)),
                    VarBind(
                        oid=(1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 127, 0, 0, 1),
                        value=IpAddress(b"\x7f\x00\x00\x01"),
                    ),
                    VarBind(
                        oid=(1, 3, 6, 1, 4, 1, 1206, 4, 2, 6, 3, 3, 5, 1, 5, 1, 1),
                        value=ObjectIdentifier((1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 5, 3, 1, 1, 3)),
                    ),
                    VarBind(
                        oid=(1, 3, 6, 1, 4, 1, 1206, 4, 2, 6, 3, 3, 2, 1, 4, 1),
                        value=Integer(4_294_967_295),
                    ),
                    VarBind(oid=(1, 3, 6, 1, 4, 1, 99999, 1, 0), value=Opaque(b"\x9f\x78\x04")),
                    VarBind(
                        oid=(1, 3, 6, 1, 4, 1, 1206, 4, 2, 6, 3, 5, 0),
                        value=Integer(-18000),
                    ),
                ),
            ),
        ),
    ),
]
FIXTURE_IDS = [name for name, _, _ in FIXTURES]
FIXTURE_CASES = [(wire, message) for _, wire, message in FIXTURES]


@pytest.mark.parametrize(("wire", "message"), FIXTURE_CASES, ids=FIXTURE_IDS)
def test_fixture_decodes_whole(wire: bytes, message: SnmpMessage) -> None:
    assert decode_message(wire) == message


@pytest.mark.parametrize(("wire", "message"), FIXTURE_CASES, ids=FIXTURE_IDS)
def test_fixture_encodes_byte_for_byte(wire: bytes, message: SnmpMessage) -> None:
    assert encode_message(message) == wire
    assert encoded_size(message) == len(wire)


@pytest.mark.parametrize(("wire", "message"), FIXTURE_CASES, ids=FIXTURE_IDS)
def test_fixture_byte_by_byte_in_a_stream(wire: bytes, message: SnmpMessage) -> None:
    """A stream transport (e.g. TCP) finds message ends with message_length."""
    stream = wire + wire
    buffer = b""
    decoded: list[SnmpMessage] = []
    for index in range(len(stream)):
        buffer += stream[index : index + 1]
        try:
            total = message_length(buffer)
        except IncompleteMessage:
            continue
        if len(buffer) == total:
            decoded.append(decode_message(buffer))
            buffer = b""
    assert decoded == [message, message]
    assert buffer == b""


@pytest.mark.parametrize(("wire", "message"), FIXTURE_CASES, ids=FIXTURE_IDS)
def test_fixture_with_trailing_bytes(wire: bytes, message: SnmpMessage) -> None:
    assert message_length(wire + b"\x30\x00") == len(wire)
    with pytest.raises(MessageError, match="follow") as caught:
        decode_message(wire + b"\x00")
    assert not isinstance(caught.value, IncompleteMessage)


@pytest.mark.parametrize(("wire", "message"), FIXTURE_CASES, ids=FIXTURE_IDS)
def test_every_strict_prefix_is_incomplete(wire: bytes, message: SnmpMessage) -> None:
    for cut in range(len(wire)):
        with pytest.raises(IncompleteMessage):
            decode_message(wire[:cut])


# ------------------------------------------------------------------ malformed


def tlv(tag: int, *parts: bytes) -> bytes:
    """One BER TLV with a minimal definite length."""
    content = b"".join(parts)
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


def ber_int(value: int, tag: int = 0x02) -> bytes:
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def ber_oid(arcs: tuple[int, ...]) -> bytes:
    def base128(number: int) -> bytes:
        out = [number & 0x7F]
        number >>= 7
        while number:
            out.append(0x80 | (number & 0x7F))
            number >>= 7
        return bytes(reversed(out))

    first = arcs[0] * 40 + arcs[1]
    return tlv(0x06, b"".join(base128(arc) for arc in (first, *arcs[2:])))


PUBLIC = tlv(0x04, b"public")
OID_CPS = ber_oid(COORD_PATTERN_STATUS_0)
NULL = b"\x05\x00"


def varbinds(*values: bytes, oid: bytes = OID_CPS) -> bytes:
    return tlv(0x30, *(tlv(0x30, oid, value) for value in values))


def pdu(
    tag: int = 0xA2,
    *,
    request_id: bytes = b"\x02\x01\x01",
    status: bytes = b"\x02\x01\x00",
    index: bytes = b"\x02\x01\x00",
    vbl: bytes | None = None,
    extra: bytes = b"",
) -> bytes:
    return tlv(tag, request_id, status, index, varbinds(NULL) if vbl is None else vbl, extra)


def message(*parts: bytes) -> bytes:
    return tlv(0x30, *parts)


V1 = b"\x02\x01\x00"
GOOD = message(V1, PUBLIC, pdu())
TRAP = message(
    V1,
    PUBLIC,
    tlv(
        0xA4,
        ber_oid((1, 3, 6, 1, 4, 1, 1206)),
        tlv(0x40, b"\x7f\x00\x00\x01"),
        ber_int(6),
        ber_int(1),
        ber_int(100, tag=0x43),
        varbinds(),
    ),
)

MALFORMED = [
    pytest.param(message(ber_int(1), PUBLIC, pdu()), "version", id="version 1 (SNMPv2c)"),
    pytest.param(message(ber_int(3), PUBLIC, pdu()), "version", id="version 3"),
    pytest.param(
        message(ber_int(1), PUBLIC, tlv(0xA5, ber_int(1), ber_int(0), ber_int(10), varbinds())),
        "version",
        id="SNMPv2c GetBulk",
    ),
    pytest.param(message(PUBLIC, pdu()), "", id="version missing"),
    pytest.param(b"\x31" + GOOD[1:], "0x31", id="not a SEQUENCE"),
    pytest.param(b"\x30\x80" + GOOD[2:] + b"\x00\x00", "indefinite", id="indefinite length"),
    pytest.param(b"\x30\x85" + bytes(5), "length field", id="length field of 5 octets"),
    pytest.param(b"\x30\x83\x01\x00\x00", "exceeds", id="longer than 65535 octets"),
    pytest.param(b"\x30\x00", "", id="empty SEQUENCE"),
    pytest.param(GOOD + b"\x00", "follow", id="trailing byte"),
    pytest.param(TRAP, "trap", id="v1 Trap PDU"),
    pytest.param(message(V1, PUBLIC, pdu(0xA9)), "", id="unknown PDU tag"),
    pytest.param(message(V1, PUBLIC, pdu(status=ber_int(6))), "error-status", id="error-status 6"),
    pytest.param(
        message(V1, PUBLIC, pdu(status=ber_int(2), index=ber_int(2))),
        "error-index",
        id="error-index past the varbinds",
    ),
    pytest.param(message(V1, PUBLIC, pdu(index=ber_int(-1))), "error-index", id="error-index < 0"),
    pytest.param(
        message(V1, PUBLIC, pdu(request_id=ber_int(2**31))), "request-id", id="request-id > int32"
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(ber_int(2**32)))),
        "INTEGER",
        id="INTEGER above 2**32-1",
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(ber_int(-(2**31) - 1)))),
        "INTEGER",
        id="INTEGER below -2**31",
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(tlv(0x41, b"\xff")))), "", id="negative Counter"
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(tlv(0x40, b"\x01\x02\x03")))),
        "",
        id="IpAddress of 3 octets",
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(b"\x05\x01\x00"))), "", id="NULL with content"
    ),
    pytest.param(
        message(V1, tlv(0x24, tlv(0x04, b"pub"), tlv(0x04, b"lic")), pdu()),
        "Constructed",
        id="constructed OCTET STRING",
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(NULL, oid=ber_oid((1, 3, 2**32))))),
        "OID",
        id="OID arc above 2**32-1",
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(NULL, oid=ber_oid((1, 3) + (1,) * MAX_OID_LENGTH)))),
        "OID",
        id="OID of 130 arcs",
    ),
    pytest.param(message(V1, PUBLIC, pdu(vbl=varbinds(NULL, oid=b"\x06\x00"))), "", id="empty OID"),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(NULL, oid=b"\x06\x03\x2b\x80\x01"))),
        "",
        id="OID with a padded sub-identifier",
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(b"\x80\x00"))), "", id="SNMPv2 noSuchObject value"
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=varbinds(tlv(0x46, b"\x01")))), "", id="Counter64 value"
    ),
    pytest.param(
        message(V1, PUBLIC, pdu(vbl=tlv(0x30, tlv(0x30, OID_CPS)))), "", id="varbind without value"
    ),
    pytest.param(message(V1, PUBLIC, pdu(extra=NULL)), "", id="extra element in the PDU"),
    pytest.param(message(V1, PUBLIC, pdu(), NULL), "", id="extra element after the PDU"),
    pytest.param(message(V1, ber_int(7), pdu()), "", id="community is an INTEGER"),
    pytest.param(
        message(V1, PUBLIC, b"\xa2\x7f" + pdu()[2:]), "", id="PDU length runs past the message"
    ),
]


@pytest.mark.parametrize(("wire", "says"), MALFORMED)
def test_malformed_message_is_rejected(wire: bytes, says: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode_message(wire)
    assert not isinstance(caught.value, IncompleteMessage)
    assert says.lower() in str(caught.value).lower()
    assert caught.value.code == "E_PROTOCOL"


def test_malformed_helpers_build_a_valid_message() -> None:
    """Guard for the table above: with nothing broken, the helpers give a good message."""
    assert decode_message(GOOD).pdu.varbinds == (VarBind(oid=COORD_PATTERN_STATUS_0),)


def test_long_form_lengths_with_extra_octets_are_accepted() -> None:
    # RFC 1157 / 3417: a long length form may use more octets than needed.
    wire = FIXTURES[1][1]
    padded = b"\x30\x82\x00" + wire[1:]
    assert decode_message(padded) == FIXTURES[1][2]


# ------------------------------------------------------------ value checks


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Integer(2**32), id="Integer above 2**32-1"),
        pytest.param(lambda: Integer(-(2**31) - 1), id="Integer below -2**31"),
        pytest.param(lambda: Integer(True), id="Integer from bool"),
        pytest.param(lambda: Counter32(-1), id="negative Counter32"),
        pytest.param(lambda: Gauge32(2**32), id="Gauge32 too large"),
        pytest.param(lambda: TimeTicks(-1), id="negative TimeTicks"),
        pytest.param(lambda: IpAddress(b"\x01\x02\x03"), id="IpAddress of 3 octets"),
        pytest.param(lambda: ObjectIdentifier((1,)), id="OID of one arc"),
        pytest.param(lambda: ObjectIdentifier((3, 1)), id="OID starting with 3"),
        pytest.param(lambda: ObjectIdentifier((1, 40)), id="OID 1.40"),
        pytest.param(lambda: VarBind(oid=(1, 3, -1)), id="negative arc"),
        pytest.param(lambda: Pdu(kind=PduType.GET_REQUEST, request_id=2**31), id="request-id"),
        pytest.param(
            lambda: Pdu(kind=PduType.GET_RESPONSE, request_id=1, error_index=1),
            id="error-index past the varbinds",
        ),
    ],
)
def test_invalid_values_are_refused_at_construction(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


# ---------------------------------------------------------------- OID helpers


@pytest.mark.parametrize(
    ("text", "oid"),
    [
        ("1.3.6.1.4.1.1206.4.2.1.4.10.0", COORD_PATTERN_STATUS_0),
        (".1.3.6.1", (1, 3, 6, 1)),
        ("2.999", (2, 999)),
        ("0.0", (0, 0)),
    ],
)
def test_oid_from_str(text: str, oid: Oid) -> None:
    assert oid_from_str(text) == oid
    assert oid_from_str(oid_to_str(oid)) == oid


@pytest.mark.parametrize(
    "text", ["", "1", "1.", "1..3", "1.3.x", "3.1", "1.40", "-1.3", "1.3.6.1.4294967296", "١.٣"]
)
def test_oid_from_str_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="OID"):
        oid_from_str(text)


# ----------------------------------------------------------------- properties

arcs = st.integers(0, 2**32 - 1)
oids = st.one_of(
    st.lists(st.integers(0, 300), max_size=12).map(lambda rest: (1, 3, 6, 1, 4, 1, 1206, *rest)),
    st.tuples(st.integers(0, 1), st.integers(0, 39), st.lists(arcs, max_size=20)).map(
        lambda t: (t[0], t[1], *t[2])
    ),
    st.tuples(arcs.filter(lambda arc: arc <= 2**32 - 81), st.lists(arcs, max_size=5)).map(
        lambda t: (2, t[0], *t[1])
    ),
    st.lists(st.integers(0, 127), min_size=MAX_OID_LENGTH - 2, max_size=MAX_OID_LENGTH - 2).map(
        lambda rest: (1, 3, *rest)
    ),
)
unsigned32 = st.integers(0, 2**32 - 1)
values: st.SearchStrategy[SnmpValue] = st.one_of(
    st.builds(Integer, st.integers(-(2**31), 2**32 - 1)),
    st.builds(OctetString, st.binary(max_size=64)),
    st.just(Null()),
    st.builds(ObjectIdentifier, oids),
    st.builds(IpAddress, st.binary(min_size=4, max_size=4)),
    st.builds(Counter32, unsigned32),
    st.builds(Gauge32, unsigned32),
    st.builds(TimeTicks, unsigned32),
    st.builds(Opaque, st.binary(max_size=16)),
)
varbind_lists = st.lists(st.builds(VarBind, oid=oids, value=values), max_size=6).map(tuple)


@st.composite
def pdus(draw: st.DrawFn) -> Pdu:
    bindings = draw(varbind_lists)
    return Pdu(
        kind=draw(st.sampled_from(PduType)),
        request_id=draw(st.integers(-(2**31), 2**31 - 1)),
        error_status=draw(st.sampled_from(ErrorStatus)),
        error_index=draw(st.integers(0, len(bindings))),
        varbinds=bindings,
    )


messages = st.builds(SnmpMessage, community=st.binary(max_size=40), pdu=pdus())


@settings(max_examples=examples(300))
@given(messages)
@example(SnmpMessage(community=b"", pdu=Pdu(kind=PduType.GET_REQUEST, request_id=0)))
def test_round_trip(msg: SnmpMessage) -> None:
    wire = encode_message(msg)
    assert decode_message(wire) == msg
    assert encoded_size(msg) == len(wire) == message_length(wire)


@settings(max_examples=examples(200))
@given(messages, st.data())
def test_strict_prefixes_of_random_messages_are_incomplete(
    msg: SnmpMessage, data: st.DataObject
) -> None:
    wire = encode_message(msg)
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(IncompleteMessage):
        decode_message(wire[:cut])


def parses_or_raises_message_error(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except MessageError:
        return
    assert decode_message(encode_message(msg)) == msg


@settings(max_examples=examples(500))
@given(st.binary(max_size=300))
@example(b"\x30\x03\x02\x01\x00")
@example(b"\x30\x02\x30\x00")
def test_random_bytes_parse_or_raise_message_error(data: bytes) -> None:
    parses_or_raises_message_error(data)


@settings(max_examples=examples(500))
@given(st.binary(max_size=120))
def test_random_sequence_content_parses_or_raises_message_error(content: bytes) -> None:
    parses_or_raises_message_error(tlv(0x30, content))


@settings(max_examples=examples(500))
@given(messages, st.data())
def test_mutated_messages_parse_or_raise_message_error(
    msg: SnmpMessage, data: st.DataObject
) -> None:
    wire = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    parses_or_raises_message_error(bytes(wire))


def test_incomplete_and_malformed_are_protocol_errors() -> None:
    assert issubclass(IncompleteMessage, MessageError)
    assert issubclass(MessageError, ProtocolError)
