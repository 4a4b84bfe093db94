"""The SNMP codec's fast path against its reference, pyasn1.

:func:`encode_message` writes BER by hand and :func:`decode_message` reads
canonical messages by hand (pyasn1 was most of the agent's CPU per status
poll). These properties hold the fast path to pyasn1's answers: the same
bytes out, the same message or the same refusal in, for valid, mutated and
random input.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.errors import MessageError
from agent.protocols import snmp
from agent.protocols.snmp import (
    Counter32,
    Integer,
    Null,
    ObjectIdentifier,
    Pdu,
    PduType,
    SnmpMessage,
    VarBind,
    decode_message,
    encode_message,
)

from .test_snmp import (
    FIXTURE_CASES,
    FIXTURE_IDS,
    GOOD,
    NULL,
    PUBLIC,
    TRAP,
    V1,
    examples,
    message,
    messages,
    pdu,
    tlv,
    varbinds,
)

Outcome = tuple[str, object]


def outcome(decode: object, data: bytes) -> Outcome:
    """("ok", message) or ("refused", the error's class), for comparing two decoders."""
    assert callable(decode)
    try:
        return ("ok", decode(data))
    except MessageError as err:
        return ("refused", type(err))


def both_agree(data: bytes) -> None:
    """The codec (fast path first) and pyasn1 alone give the same outcome."""
    assert outcome(decode_message, data) == outcome(snmp._decode_pyasn1, data)


@pytest.mark.parametrize(("wire", "message"), FIXTURE_CASES, ids=FIXTURE_IDS)
def test_fixtures_take_the_fast_path(wire: bytes, message: SnmpMessage) -> None:
    assert snmp._fast_decode(wire) == message
    assert snmp._encode_pyasn1(message) == wire


@settings(max_examples=examples(500))
@given(messages)
@example(
    SnmpMessage(
        community=b"x" * 300,
        pdu=Pdu(
            kind=PduType.GET_RESPONSE,
            request_id=-(2**31),
            varbinds=(
                VarBind(oid=(2, 2**32 - 81), value=Integer(2**32 - 1)),
                VarBind(oid=(0, 0), value=Integer(-(2**31))),
                VarBind(oid=(1, 39, 127, 128, 16383, 16384), value=Counter32(0)),
            ),
        ),
    )
)
def test_fast_encoding_is_pyasn1s_byte_for_byte(msg: SnmpMessage) -> None:
    wire = encode_message(msg)
    if not has_negative_power_of_two(msg):
        assert wire == snmp._encode_pyasn1(msg)
    assert snmp._fast_decode(wire) == msg
    assert snmp._decode_pyasn1(wire) == msg


def has_negative_power_of_two(msg: SnmpMessage) -> bool:
    """True when ``msg`` holds an INTEGER pyasn1 encodes with a redundant 0xFF (-128 ...)."""
    numbers = [msg.pdu.request_id]
    numbers += [vb.value.value for vb in msg.pdu.varbinds if isinstance(vb.value, Integer)]
    return any(n < 0 and (-n & (-n - 1)) == 0 and -n >= 0x80 for n in numbers)


@pytest.mark.parametrize(
    ("number", "minimal", "pyasn1"),
    [
        (-128, "020180", "0202ff80"),
        (-32768, "02028000", "0203ff8000"),
        (-(2**31), "020480000000", "0205ff80000000"),
        (-129, "0202ff7f", "0202ff7f"),
    ],
)
def test_negative_powers_of_two_are_encoded_minimally(
    number: int, minimal: str, pyasn1: str
) -> None:
    """X.690 8.3.2: no redundant leading 0xFF; pyasn1 adds one, and both forms decode."""
    msg = SnmpMessage(community=b"", pdu=Pdu(kind=PduType.GET_RESPONSE, request_id=number))
    ours, theirs = encode_message(msg), snmp._encode_pyasn1(msg)
    assert minimal in ours.hex()
    assert pyasn1 in theirs.hex()
    assert decode_message(ours) == decode_message(theirs) == msg
    assert snmp._decode_pyasn1(ours) == msg


@settings(max_examples=examples(500))
@given(messages, st.data())
def test_mutated_messages_decode_as_pyasn1_decodes_them(
    msg: SnmpMessage, data: st.DataObject
) -> None:
    wire = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    both_agree(bytes(wire))


@settings(max_examples=examples(500))
@given(st.binary(max_size=120))
@example(b"\x02\x01\x00\x04\x00\xa0\x0b\x02\x01\x00\x02\x01\x00\x02\x01\x00\x30\x00")
def test_random_sequence_content_decodes_as_pyasn1_decodes_it(content: bytes) -> None:
    both_agree(tlv(0x30, content))


@settings(max_examples=examples(300))
@given(st.binary(max_size=200))
def test_random_bytes_decode_as_pyasn1_decodes_them(data: bytes) -> None:
    both_agree(data)


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(message(V1, PUBLIC, pdu(request_id=b"\x02\x02\x00\x07")), id="int pad"),
        pytest.param(message(V1, b"\x04\x81\x06public", pdu()), id="long length, extra octet"),
        pytest.param(b"\x30\x82\x00" + GOOD[1:], id="outer length padded"),
        pytest.param(message(V1, PUBLIC, pdu(vbl=varbinds(b"\x02\x02\xff\xff"))), id="value pad"),
        pytest.param(message(V1, PUBLIC, pdu(vbl=varbinds(b"\x05\x01\x00"))), id="NULL content"),
        pytest.param(
            message(V1, PUBLIC, pdu(vbl=varbinds(NULL, oid=b"\x06\x03\x2b\x80\x01"))),
            id="OID arc with a zero group",
        ),
        pytest.param(message(V1, PUBLIC, pdu(vbl=varbinds(b"\x40\x03\x01\x02\x03"))), id="IP/3"),
        pytest.param(message(V1, PUBLIC, pdu(vbl=varbinds(b"\x45\x00"))), id="unknown tag"),
        pytest.param(message(V1, PUBLIC, pdu(index=b"\x02\x01\x05")), id="index past binds"),
        pytest.param(message(V1, PUBLIC, pdu(status=b"\x02\x01\x06")), id="status 6"),
        pytest.param(message(b"\x02\x01\x01", PUBLIC, pdu()), id="SNMPv2c"),
        pytest.param(TRAP, id="a v1 Trap"),
    ],
)
def test_non_canonical_or_odd_input_is_left_to_pyasn1(wire: bytes) -> None:
    with pytest.raises(snmp._NotCanonical):
        snmp._fast_decode(wire)
    both_agree(wire)


def test_the_guard_message_takes_the_fast_path() -> None:
    """The table above breaks one thing each in a message the fast path reads."""
    assert snmp._fast_decode(message(V1, PUBLIC, pdu())) == decode_message(GOOD)


def test_values_of_every_type_round_trip_through_the_fast_path() -> None:
    message = SnmpMessage(
        community=b"",
        pdu=Pdu(
            kind=PduType.SET_REQUEST,
            request_id=0,
            varbinds=(
                VarBind(oid=(1, 3), value=Null()),
                VarBind(oid=(1, 3), value=ObjectIdentifier((0, 0))),
                VarBind(oid=(1, 3), value=snmp.IpAddress(b"\x7f\x00\x00\x01")),
                VarBind(oid=(1, 3), value=snmp.Gauge32(2**32 - 1)),
                VarBind(oid=(1, 3), value=snmp.TimeTicks(128)),
                VarBind(oid=(1, 3), value=snmp.Opaque(b"\x30\x00")),
                VarBind(oid=(1, 3), value=snmp.OctetString(b"\x7e" * 200)),
            ),
        ),
    )
    wire = encode_message(message)
    assert wire == snmp._encode_pyasn1(message)
    assert snmp._fast_decode(wire) == message
