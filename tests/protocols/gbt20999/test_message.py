"""GB/T 20999 messages: frame types, error codes, builders, deviations, malformed messages, fuzz."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import MessageError, ProtocolError
from agent.protocols.gbt20999.frame import (
    Deviation,
    FrameErrorEvent,
    FrameErrorKind,
    Framing,
)
from agent.protocols.gbt20999.message import (
    DEFAULT_VERSION,
    MAX_VALUE_SIZE,
    Address,
    DataValue,
    ErrorCode,
    FrameType,
    Ids,
    InvalidMessage,
    Message,
    MessageDecoder,
    MessageErrorEvent,
    MessageErrorKind,
    decode,
    encode,
    error_codes,
    error_reply_to,
    heartbeat,
    heartbeat_reply_to,
    match_reply,
    query,
    query_message,
    reply_to,
    set_reply_to,
    set_request,
    trap,
)
from tests.protocols.gbt20999.strategies import DEVICE_IDS, body, examples, messages, raw_frame

# --------------------------------------------------------- types and codes


def test_frame_types_are_the_reference_table() -> None:
    assert {t.name: t.value for t in FrameType} == {
        "QUERY": 0x10,
        "QUERY_REPLY": 0x20,
        "QUERY_ERROR": 0x21,
        "SET": 0x30,
        "SET_REPLY": 0x40,
        "SET_ERROR": 0x41,
        "BROADCAST": 0x50,
        "TRAP": 0x60,
        "HEARTBEAT": 0x70,
        "HEARTBEAT_REPLY": 0x80,
    }
    assert all(t.meaning for t in FrameType)


@pytest.mark.parametrize("request_type", [FrameType.QUERY, FrameType.SET])
def test_replies_are_request_plus_0x10_and_errors_plus_0x11(request_type: FrameType) -> None:
    assert request_type.reply() == request_type + 0x10
    assert request_type.error_reply() == request_type + 0x11
    assert request_type.error_reply().is_error


def test_heartbeat_reply_and_types_without_replies() -> None:
    assert FrameType.HEARTBEAT.reply() is FrameType.HEARTBEAT_REPLY
    for no_reply in (FrameType.BROADCAST, FrameType.TRAP, FrameType.QUERY_REPLY):
        with pytest.raises(ValueError, match="no reply"):
            no_reply.reply()
    with pytest.raises(ValueError, match="no error reply"):
        FrameType.HEARTBEAT.error_reply()


def test_error_codes_and_their_meanings() -> None:
    assert {c.name: c.value for c in ErrorCode} == {
        "BAD_VALUE": 0x10,
        "WRONG_LENGTH": 0x11,
        "OUT_OF_RANGE": 0x12,
        "READ_ONLY": 0x20,
        "NOT_FOUND": 0x30,
        "GENERAL": 0x40,
        "CONTROL_FAILED": 0x50,  # not RVDataFusion's octal 050 = 0x28
    }
    assert ErrorCode.READ_ONLY.meaning == "the object is read-only"
    assert len({c.meaning for c in ErrorCode}) == len(ErrorCode)


# ------------------------------------------------------------ worked messages


def test_heartbeat_query_of_the_reference() -> None:
    wire = bytes.fromhex("7E 000C 0100 05 00000000 00 01 70 AF92 7D")
    assert encode(heartbeat(DEVICE_IDS, 1), framing=Framing.DATAGRAM) == wire
    assert decode(wire, framing=Framing.DATAGRAM) == heartbeat(DEVICE_IDS, 1)


def test_heartbeat_reply_of_the_reference_on_udp_and_tcp() -> None:
    reply = heartbeat_reply_to(heartbeat(DEVICE_IDS, 1))
    assert reply.frame_type is FrameType.HEARTBEAT_REPLY
    assert reply.sequence == 1
    udp = bytes.fromhex("7E 000C 0100 05 00000000 00 01 80 5C91 7D")
    tcp = bytes.fromhex("7E 000C 0100 05 00000000 00 01 80 5C5C91 7D")
    assert encode(reply, framing=Framing.DATAGRAM) == udp
    assert encode(reply, framing=Framing.STREAM) == tcp
    assert decode(udp, framing=Framing.DATAGRAM) == reply
    assert decode(tcp, framing=Framing.STREAM) == reply


def test_set_center_control_of_the_reference() -> None:
    """RVDataFusionServer's vector: intersection 1, stage 1, scheme 1, run mode 0x21."""
    ids = Ids(center=5, controller=0x000C48FC, intersection=1)
    message = set_request(
        ids,
        0x13,
        [
            (Address(17, 1, 2, 1), b"\x01"),
            (Address(17, 1, 3, 1), b"\x01"),
            (Address(17, 1, 4, 1), b"\x21"),
        ],
    )
    wire = bytes.fromhex(
        "7E 0022 0100 05 000C48FC 01 13 30 03"
        " 01 05 11 01 02 01 01  02 05 11 01 03 01 01  03 05 11 01 04 01 21 E443 7D"
    )
    assert encode(message, framing=Framing.STREAM) == wire
    assert decode(wire, framing=Framing.STREAM) == message


def test_query_error_of_the_device() -> None:
    wire = bytes.fromhex("7E 0014 0100 05 00000000 00 02 21 01 01 05 11 02 01 01 30 FA97 7D")
    reply = decode(wire, framing=Framing.DATAGRAM)
    assert reply.frame_type is FrameType.QUERY_ERROR
    assert error_codes(reply) == ((Address(17, 2, 1, 1), ErrorCode.NOT_FOUND),)


def test_query_with_several_addresses_numbers_them_from_1() -> None:
    message = query_message(DEVICE_IDS, 7, Address(9, 2, 3, 1), Address(9, 2, 5, 1))
    assert [(v.index, v.address, v.value) for v in message.values] == [
        (1, Address(9, 2, 3, 1), b""),
        (2, Address(9, 2, 5, 1), b""),
    ]
    wire = query(DEVICE_IDS, 7, Address(9, 2, 3, 1), Address(9, 2, 5, 1), framing=Framing.STREAM)
    assert decode(wire, framing=Framing.STREAM) == message
    with pytest.raises(ValueError, match="at least one"):
        query_message(DEVICE_IDS, 7)


# ------------------------------------------------------------------ builders


def test_set_reply_echoes_each_address_with_status_0() -> None:
    request = set_request(DEVICE_IDS, 9, [(Address(17, 1, 3, 1), b"\x02")])
    reply = set_reply_to(request)
    assert reply.frame_type is FrameType.SET_REPLY
    assert (reply.sequence, reply.ids, reply.version) == (9, DEVICE_IDS, DEFAULT_VERSION)
    assert reply.values == (DataValue(index=1, address=Address(17, 1, 3, 1), value=b"\x00"),)
    assert match_reply(request, reply) == frozenset()


def test_error_reply_carries_codes() -> None:
    request = set_request(DEVICE_IDS, 9, [(Address(1, 1), b"x")])
    reply = error_reply_to(request, [(Address(1, 1), ErrorCode.READ_ONLY)])
    assert reply.frame_type is FrameType.SET_ERROR
    assert error_codes(reply) == ((Address(1, 1), ErrorCode.READ_ONLY),)
    assert match_reply(request, reply) == frozenset()


def test_unknown_error_code_is_kept_as_a_number() -> None:
    reply = Message(
        frame_type=FrameType.QUERY_ERROR,
        ids=DEVICE_IDS,
        sequence=1,
        values=(DataValue(index=1, address=Address(1, 1), value=b"\x28"),),
    )
    assert error_codes(reply) == ((Address(1, 1), 0x28),)


def test_error_codes_need_one_byte_and_an_error_reply() -> None:
    bad = Message(
        frame_type=FrameType.SET_ERROR,
        ids=DEVICE_IDS,
        sequence=1,
        values=(DataValue(index=1, address=Address(1, 1), value=b"\x10\x00"),),
    )
    with pytest.raises(InvalidMessage) as caught:
        error_codes(bad)
    assert caught.value.kind is MessageErrorKind.BAD_ERROR_VALUE
    with pytest.raises(ValueError, match="no error codes"):
        error_codes(heartbeat(DEVICE_IDS, 1))


def test_wildcard_query_is_answered_row_by_row() -> None:
    request = query_message(DEVICE_IDS, 3, Address(9, 2, 3, 0))
    reply = reply_to(
        request, [(Address(9, 2, 3, row), (60 * row).to_bytes(4, "big")) for row in (1, 2, 3)]
    )
    assert [v.index for v in reply.values] == [1, 2, 3]
    assert match_reply(request, reply) == frozenset()


def test_trap_carries_values() -> None:
    message = trap(DEVICE_IDS, 0, [(Address(13, 2, 2, 1), b"\x23")])
    assert decode(encode(message, framing=Framing.DATAGRAM), framing=Framing.DATAGRAM) == message


# ------------------------------------------------------------- reply matching


def test_reply_with_another_sequence_is_tolerated_and_reported() -> None:
    request = query_message(DEVICE_IDS, 1, Address(1, 1))
    reply = Message(
        frame_type=FrameType.QUERY_REPLY,
        ids=DEVICE_IDS,
        sequence=2,
        values=(DataValue(index=1, address=Address(1, 1), value=b"x"),),
    )
    assert match_reply(request, reply) == {Deviation.SEQUENCE_NOT_ECHOED}


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            Message(frame_type=FrameType.SET_REPLY, ids=DEVICE_IDS, sequence=1),
            id="set reply to a query",
        ),
        pytest.param(
            Message(
                frame_type=FrameType.QUERY_REPLY,
                ids=Ids(center=5, controller=1, intersection=0),
                sequence=1,
            ),
            id="another controller",
        ),
        pytest.param(
            Message(
                frame_type=FrameType.QUERY_REPLY,
                ids=DEVICE_IDS,
                sequence=1,
                values=(DataValue(index=1, address=Address(9, 2, 4, 1), value=b"\x01"),),
            ),
            id="an address not asked for",
        ),
    ],
)
def test_a_message_that_does_not_answer_is_refused(reply: Message) -> None:
    request = query_message(DEVICE_IDS, 1, Address(9, 2, 3, 1))
    with pytest.raises(InvalidMessage) as caught:
        match_reply(request, reply)
    assert caught.value.kind is MessageErrorKind.NOT_A_REPLY


# ------------------------------------------------------- tolerated deviations


def test_heartbeat_with_a_count_byte_is_accepted_and_reported() -> None:
    """20999-test-first sends a value count of 0 in its heartbeats."""
    wire = raw_frame(body(0x70, count=b"\x00"))
    message = decode(wire, framing=Framing.DATAGRAM)
    assert message.frame_type is FrameType.HEARTBEAT
    assert message.values == ()
    assert message.deviations == {Deviation.HEARTBEAT_WITH_COUNT}
    assert encode(message, framing=Framing.DATAGRAM) == raw_frame(body(0x70, count=b""))


def test_heartbeat_reply_0x71_is_accepted_and_reported() -> None:
    """20999-test-first's frame table names 0x71 the heartbeat reply."""
    wire = raw_frame(body(0x71, count=b"\x00"))
    message = decode(wire, framing=Framing.DATAGRAM)
    assert message.frame_type is FrameType.HEARTBEAT_REPLY
    assert message.deviations == {
        Deviation.HEARTBEAT_REPLY_0X71,
        Deviation.HEARTBEAT_WITH_COUNT,
    }
    assert match_reply(heartbeat(DEVICE_IDS, 1), message) == frozenset()
    assert encode(message, framing=Framing.DATAGRAM)[12] == 0x80


def test_openatc_frame_deviations_reach_the_message() -> None:
    values = bytes.fromhex("01 05 0D 02 02 01 23")
    message_body = body(0x20, count=b"\x01", values=values)
    wire = raw_frame(message_body, length=len(message_body) + 4, crc_over_body_only=True)
    message = decode(wire, framing=Framing.DATAGRAM)
    assert message.deviations == {
        Deviation.LENGTH_WITHOUT_DELIMITERS,
        Deviation.CRC_WITHOUT_LENGTH,
    }
    assert message.values == (DataValue(index=1, address=Address(13, 2, 2, 1), value=b"\x23"),)


# --------------------------------------------------------- malformed messages
# Intact frames (good length and CRC) whose content is not a message.

MALFORMED = [
    pytest.param(body(0x99, count=b"\x00"), MessageErrorKind.UNKNOWN_FRAME_TYPE, id="type 0x99"),
    pytest.param(body(0x81, count=b""), MessageErrorKind.UNKNOWN_FRAME_TYPE, id="type 0x81"),
    pytest.param(
        body(0x10, count=b"\x02", values=bytes.fromhex("010401010000")),
        MessageErrorKind.BAD_COUNT,
        id="count 2, one value",
    ),
    pytest.param(
        body(0x10, count=b"\x00", values=bytes.fromhex("010401010000")),
        MessageErrorKind.BAD_COUNT,
        id="count 0, one value",
    ),
    pytest.param(
        body(0x10, count=b"\x01", values=bytes.fromhex("01")),
        MessageErrorKind.BAD_COUNT,
        id="value cut after its index",
    ),
    pytest.param(
        body(0x10, count=b"", values=b""), MessageErrorKind.BAD_COUNT, id="query without count"
    ),
    pytest.param(
        body(0x10, values=bytes.fromhex("0103010100")),
        MessageErrorKind.BAD_VALUE_LENGTH,
        id="value length 3",
    ),
    pytest.param(
        body(0x20, values=bytes.fromhex("01090101000041")),
        MessageErrorKind.BAD_VALUE_LENGTH,
        id="value runs past the end",
    ),
    pytest.param(
        body(0x70, count=b"\x01", values=bytes.fromhex("010401010000")),
        MessageErrorKind.HEARTBEAT_WITH_VALUES,
        id="heartbeat with a value",
    ),
    pytest.param(
        body(0x80, count=b"\x05"), MessageErrorKind.HEARTBEAT_WITH_VALUES, id="heartbeat count 5"
    ),
]


@pytest.mark.parametrize(("message_body", "kind"), MALFORMED)
def test_malformed_message_is_invalid(message_body: bytes, kind: MessageErrorKind) -> None:
    for framing in Framing:
        with pytest.raises(InvalidMessage) as caught:
            decode(raw_frame(message_body, framing=framing), framing=framing)
        assert caught.value.kind is kind
        assert isinstance(caught.value, MessageError)
        assert caught.value.code == "E_PROTOCOL"


@pytest.mark.parametrize(("message_body", "kind"), MALFORMED)
def test_stream_reports_malformed_message_then_recovers(
    message_body: bytes, kind: MessageErrorKind
) -> None:
    good = heartbeat(DEVICE_IDS, 4)
    wire = raw_frame(message_body, framing=Framing.STREAM) + encode(good, framing=Framing.STREAM)
    events = MessageDecoder().feed(wire)
    assert len(events) == 2
    error = events[0]
    assert isinstance(error, MessageErrorEvent)
    assert (error.kind, error.body) == (kind, message_body)
    assert events[1] == good


def test_message_decoder_passes_frame_errors_through() -> None:
    decoder = MessageDecoder(max_frame=64)
    events = decoder.feed(
        b"\x7e\x01\x00" + encode(heartbeat(DEVICE_IDS, 1), framing=Framing.STREAM)
    )
    assert isinstance(events[0], FrameErrorEvent)
    assert events[0].kind is FrameErrorKind.TOO_LONG
    assert events[1] == heartbeat(DEVICE_IDS, 1)
    assert not decoder.frames.in_frame


# ------------------------------------------------------------ construction


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Address(256, 1), id="class 256"),
        pytest.param(lambda: Address(1, 1, -1), id="attribute -1"),
        pytest.param(lambda: Ids(center=256, controller=0, intersection=0), id="center 256"),
        pytest.param(lambda: Ids(center=0, controller=2**32, intersection=0), id="controller 2^32"),
        pytest.param(lambda: heartbeat(DEVICE_IDS, 256), id="sequence 256"),
        pytest.param(lambda: heartbeat(DEVICE_IDS, 1, version=0x10000), id="version 0x10000"),
        pytest.param(
            lambda: DataValue(index=1, address=Address(1, 1), value=bytes(MAX_VALUE_SIZE + 1)),
            id="value of 252 bytes",
        ),
        pytest.param(lambda: DataValue(index=256, address=Address(1, 1)), id="index 256"),
        pytest.param(lambda: query_message(DEVICE_IDS, 1, *[Address(1, 1)] * 256), id="256 values"),
        pytest.param(
            lambda: Message(
                frame_type=FrameType.HEARTBEAT,
                ids=DEVICE_IDS,
                sequence=1,
                values=(DataValue(index=1, address=Address(1, 1)),),
            ),
            id="heartbeat with a value",
        ),
        pytest.param(lambda: set_request(DEVICE_IDS, 1, []), id="empty set"),
        pytest.param(lambda: Address.parse("9.2.x"), id="address text"),
        pytest.param(lambda: Address.parse("9"), id="address of one part"),
    ],
)
def test_building_out_of_range_raises_value_error(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_address_forms() -> None:
    assert str(Address(9, 2, 3, 1)) == "9.2.3.1"
    assert Address.parse("9.2.3.1") == Address(9, 2, 3, 1)
    assert Address.parse("1.1") == Address(1, 1, 0, 0)
    assert Address(9, 2, 0, 0).covers(Address(9, 2, 7, 3))
    assert Address(9, 2, 3, 0).covers(Address(9, 2, 3, 3))
    assert not Address(9, 2, 3, 1).covers(Address(9, 2, 3, 3))
    assert not Address(9, 2, 3, 0).covers(Address(9, 3, 3, 1))
    assert Address(9, 2, 3).with_element(4) == Address(9, 2, 3, 4)


def test_encode_refuses_a_frame_over_the_cap() -> None:
    big = set_request(DEVICE_IDS, 1, [(Address(1, 1), bytes(200))] * 2)
    with pytest.raises(ValueError, match="cap"):
        encode(big, framing=Framing.DATAGRAM, max_frame=256)


# ------------------------------------------------------------------ properties


@settings(max_examples=examples(300))
@given(messages(), st.sampled_from(Framing))
def test_round_trip(message: Message, framing: Framing) -> None:
    assert decode(encode(message, framing=framing), framing=framing) == message


@settings(max_examples=examples(100))
@given(st.lists(messages(max_values=3), min_size=1, max_size=4), st.data())
def test_message_stream_split_anywhere(batch: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode(message, framing=Framing.STREAM) for message in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = MessageDecoder()
    events = [
        event
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)
        for event in decoder.feed(stream[a:b])
    ]
    assert events == batch


@settings(max_examples=examples(500))
@given(
    st.binary(max_size=120)
    | st.binary(max_size=120).map(
        lambda tail: raw_frame(bytes.fromhex("0100 05 00000000 00 01") + tail)
    )
)
def test_random_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    for framing in Framing:
        try:
            message = decode(data, framing=framing)
        except ProtocolError:
            pass
        else:
            assert isinstance(message, Message)
    events = MessageDecoder().feed(data)
    assert all(isinstance(e, Message | FrameErrorEvent | MessageErrorEvent) for e in events)


@settings(max_examples=examples(300))
@given(messages(max_values=3), st.sampled_from(Framing), st.data())
def test_corrupted_message_never_escapes_as_other_errors(
    message: Message, framing: Framing, data: st.DataObject
) -> None:
    wire = bytearray(encode(message, framing=framing))
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] = data.draw(st.integers(0, 255))
    try:
        decoded = decode(bytes(wire), framing=framing)
    except ProtocolError:
        return
    assert isinstance(decoded, Message)
