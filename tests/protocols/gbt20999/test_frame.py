"""GB/T 20999 framing on bytes: fixtures, prefixes, malformed frames, streams, escaping, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.errors import FrameError
from agent.protocols.crc import crc16_gbt20999
from agent.protocols.gbt20999.frame import (
    MAX_FRAME,
    Deviation,
    Frame,
    FrameDecoder,
    FrameErrorEvent,
    FrameErrorKind,
    Framing,
    IncompleteFrame,
    InvalidFrame,
    decode_datagram,
    decode_frame,
    encode_frame,
)
from agent.protocols.gbt20999.message import (
    Address,
    DataValue,
    FrameType,
    Message,
    encode,
    encode_body,
)
from tests.protocols.gbt20999.strategies import DEVICE_IDS, body, examples, raw_frame

# ------------------------------------------------------------------- fixtures
# (framing, wire bytes, body). Device frames are copied from the capture;
# the others from shared/reference/gbt20999.md §1.4.

QUERY_MANUFACTURER = bytes.fromhex("7E 0013 0100 05 00000000 00 01 10 01 010401010000 5A91 7D")
QUERY_LIGHT_GROUP_STATUS_UDP = bytes.fromhex(
    "7E 0013 0100 05 00000000 00 01 10 01 010403030101 7DC1 7D"
)
QUERY_LIGHT_GROUP_STATUS_TCP = bytes.fromhex(
    "7E 0013 0100 05 00000000 00 01 10 01 010403030101 5C7DC1 7D"
)
QUERY_SMOKE_UDP = bytes.fromhex("7E 0013 0100 05 00000000 00 01 10 01 01040D010900 D65C 7D")
REPLY_MONTHS_UDP = bytes.fromhex("7E 0015 0100 05 00000000 00 02 20 01 01060C0205011FFE 427D 7D")
HEARTBEAT_UDP = bytes.fromhex("7E 000C 0100 05 00000000 00 01 70 AF92 7D")
HEARTBEAT_REPLY_UDP = bytes.fromhex("7E 000C 0100 05 00000000 00 01 80 5C91 7D")
HEARTBEAT_REPLY_TCP = bytes.fromhex("7E 000C 0100 05 00000000 00 01 80 5C5C91 7D")
SET_CENTER_CONTROL = bytes.fromhex(
    "7E 0022 0100 05 000C48FC 01 13 30 03"
    " 01 05 11 01 02 01 01  02 05 11 01 03 01 01  03 05 11 01 04 01 21 E443 7D"
)


def _unescaped_body(wire: bytes) -> bytes:
    content = wire[1:-1].replace(b"\x5c\x5c", b"\x5c").replace(b"\x5c\x7d", b"\x7d")
    return content[2:-2]


FIXTURES = [
    pytest.param(Framing.DATAGRAM, QUERY_MANUFACTURER, id="udp-query-manufacturer"),
    pytest.param(Framing.STREAM, QUERY_MANUFACTURER, id="tcp-query-manufacturer"),
    pytest.param(Framing.DATAGRAM, QUERY_LIGHT_GROUP_STATUS_UDP, id="udp-crc-7D-raw"),
    pytest.param(Framing.STREAM, QUERY_LIGHT_GROUP_STATUS_TCP, id="tcp-crc-7D-escaped"),
    pytest.param(Framing.DATAGRAM, QUERY_SMOKE_UDP, id="udp-crc-5C-raw"),
    pytest.param(Framing.DATAGRAM, REPLY_MONTHS_UDP, id="udp-crc-7D-before-end"),
    pytest.param(Framing.DATAGRAM, HEARTBEAT_UDP, id="udp-heartbeat"),
    pytest.param(Framing.DATAGRAM, HEARTBEAT_REPLY_UDP, id="udp-heartbeat-reply-crc-5C"),
    pytest.param(Framing.STREAM, HEARTBEAT_REPLY_TCP, id="tcp-heartbeat-reply-crc-5C-escaped"),
    pytest.param(Framing.STREAM, SET_CENTER_CONTROL, id="tcp-set-center-control"),
]


def unescaped_specials(inner: bytes) -> int:
    """How many 7E/7D/5C between start and end are not part of a 5C escape pair."""
    count, at = 0, 0
    while at < len(inner):
        if inner[at] == 0x5C and at + 1 < len(inner) and inner[at + 1] in (0x7E, 0x7D, 0x5C):
            at += 2
            continue
        count += inner[at] in (0x7E, 0x7D, 0x5C)
        at += 1
    return count


def stream_events(wire: bytes, decoder: FrameDecoder | None = None) -> list[object]:
    decoder = decoder or FrameDecoder()
    return list(decoder.feed(wire))


@pytest.mark.parametrize(("framing", "wire"), FIXTURES)
def test_fixture_encodes_byte_for_byte(framing: Framing, wire: bytes) -> None:
    body_bytes = _unescaped_body(wire) if framing is Framing.STREAM else wire[3:-3]
    assert encode_frame(body_bytes, framing=framing) == wire


@pytest.mark.parametrize(("framing", "wire"), FIXTURES)
def test_fixture_decodes_whole(framing: Framing, wire: bytes) -> None:
    frame = decode_frame(wire, framing=framing)
    assert frame.deviations == frozenset()
    assert encode_frame(frame.body, framing=framing) == wire
    if framing is Framing.STREAM:
        assert stream_events(wire) == [frame]
    else:
        assert decode_datagram(wire) == frame


@pytest.mark.parametrize(("framing", "wire"), FIXTURES)
def test_fixture_decodes_byte_by_byte_on_a_stream(framing: Framing, wire: bytes) -> None:
    wire = encode_frame(decode_frame(wire, framing=framing).body, framing=Framing.STREAM)
    decoder = FrameDecoder()
    events = [decoder.feed(wire[i : i + 1]) for i in range(len(wire))]
    assert events[:-1] == [[]] * (len(wire) - 1)
    assert events[-1] == [decode_frame(wire, framing=Framing.STREAM)]


@pytest.mark.parametrize(("framing", "wire"), FIXTURES)
def test_fixture_with_trailing_bytes(framing: Framing, wire: bytes) -> None:
    frame = decode_frame(wire, framing=framing)
    for tail in (b"\x00", b"\x7d", b"\x7e", b"\x01\x02\x03"):
        with pytest.raises(InvalidFrame) as caught:
            decode_frame(wire + tail, framing=framing)
        assert caught.value.kind is FrameErrorKind.TRAILING_DATA
    if framing is Framing.STREAM:
        decoder = FrameDecoder()
        assert decoder.feed(wire + b"\x00\x7d\x11") == [frame]
        assert decoder.discarded == 3
        assert not decoder.in_frame


@pytest.mark.parametrize(("framing", "wire"), FIXTURES)
def test_every_strict_prefix_is_incomplete(framing: Framing, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(IncompleteFrame):
            decode_frame(wire[:cut], framing=framing)
        if framing is Framing.STREAM:
            decoder = FrameDecoder()
            assert decoder.feed(wire[:cut]) == []
            assert decoder.in_frame == (cut > 0)


def test_escaped_frame_is_not_a_datagram_and_vice_versa() -> None:
    """The datagram decoder never unescapes; the stream decoder never reads raw specials."""
    # An escaped frame is longer than its length field says: no UDP frame.
    for escaped in (HEARTBEAT_REPLY_TCP, QUERY_LIGHT_GROUP_STATUS_TCP):
        with pytest.raises(InvalidFrame) as caught:
            decode_datagram(escaped)
        assert caught.value.kind is FrameErrorKind.BAD_LENGTH
    # A raw "5C 7D" at the end of a UDP frame reads as an escaped 7D on a stream:
    # the frame has not ended yet.
    with pytest.raises(IncompleteFrame):
        decode_frame(QUERY_SMOKE_UDP, framing=Framing.STREAM)
    # A raw "7D C1 7D": the first 7D ends the frame early, the rest is noise.
    decoder = FrameDecoder()
    events = decoder.feed(QUERY_LIGHT_GROUP_STATUS_UDP)
    assert [type(event) for event in events] == [FrameErrorEvent]
    assert decoder.discarded == 2


# ------------------------------------------------------------ malformed frames

GOOD_BODY = body(0x10, values=bytes.fromhex("010401010000"))

MALFORMED = [
    pytest.param(
        Framing.STREAM,
        raw_frame(GOOD_BODY, crc=0, framing=Framing.STREAM),
        FrameErrorKind.BAD_CRC,
        id="stream: CRC zero",
    ),
    pytest.param(
        Framing.DATAGRAM,
        raw_frame(GOOD_BODY, crc=crc16_gbt20999(b"\x00\x13" + GOOD_BODY) ^ 0x0001),
        FrameErrorKind.BAD_CRC,
        id="udp: CRC one bit off",
    ),
    pytest.param(
        Framing.DATAGRAM,
        raw_frame(GOOD_BODY, crc=int.from_bytes(bytes.fromhex("915A"), "big")),
        FrameErrorKind.BAD_CRC,
        id="udp: CRC sent low byte first",
    ),
    pytest.param(
        Framing.DATAGRAM,
        QUERY_MANUFACTURER[:-4] + b"\x02" + QUERY_MANUFACTURER[-3:],
        FrameErrorKind.BAD_CRC,
        id="udp: data byte changed",
    ),
    pytest.param(
        Framing.STREAM,
        raw_frame(GOOD_BODY, length=len(GOOD_BODY) + 3, framing=Framing.STREAM),
        FrameErrorKind.BAD_LENGTH,
        id="stream: length one too big",
    ),
    pytest.param(
        Framing.STREAM,
        raw_frame(GOOD_BODY, length=len(GOOD_BODY) + 1, framing=Framing.STREAM),
        FrameErrorKind.BAD_LENGTH,
        id="stream: length one too small",
    ),
    pytest.param(
        Framing.STREAM,
        raw_frame(GOOD_BODY, length=5, framing=Framing.STREAM),
        FrameErrorKind.BAD_LENGTH,
        id="stream: length below the minimum",
    ),
    pytest.param(
        Framing.DATAGRAM,
        raw_frame(GOOD_BODY, length=5),
        FrameErrorKind.BAD_LENGTH,
        id="udp: length below the minimum",
    ),
    pytest.param(
        Framing.DATAGRAM,
        raw_frame(GOOD_BODY, length=len(GOOD_BODY)),
        FrameErrorKind.BAD_LENGTH,
        id="udp: datagram longer than the length says",
    ),
    pytest.param(
        Framing.DATAGRAM,
        QUERY_MANUFACTURER[:-1] + b"\x7e",
        FrameErrorKind.NO_END,
        id="udp: last byte not 7D",
    ),
    pytest.param(
        Framing.STREAM,
        QUERY_MANUFACTURER[:6] + b"\x5c\x00" + QUERY_MANUFACTURER[6:],
        FrameErrorKind.BAD_ESCAPE,
        id="stream: escape 5C 00",
    ),
    pytest.param(
        Framing.STREAM,
        QUERY_MANUFACTURER[:6] + b"\x5c\x5d" + QUERY_MANUFACTURER[6:],
        FrameErrorKind.BAD_ESCAPE,
        id="stream: HDLC-style escape 5C 5D",
    ),
    pytest.param(
        Framing.STREAM,
        QUERY_MANUFACTURER[:6] + b"\x7e" + QUERY_MANUFACTURER[6:],
        FrameErrorKind.UNEXPECTED_START,
        id="stream: raw 7E inside",
    ),
    pytest.param(Framing.STREAM, b"\x7e\x7d", FrameErrorKind.TOO_SHORT, id="stream: empty"),
    pytest.param(
        Framing.STREAM,
        raw_frame(GOOD_BODY[:6], length=12, framing=Framing.STREAM),
        FrameErrorKind.TOO_SHORT,
        id="stream: 12 bytes between start and end",
    ),
    pytest.param(
        Framing.STREAM,
        raw_frame(GOOD_BODY, length=0xF000, framing=Framing.STREAM),
        FrameErrorKind.TOO_LONG,
        id="stream: length announces more than the cap",
    ),
    pytest.param(
        Framing.DATAGRAM,
        raw_frame(bytes(1020)),
        FrameErrorKind.TOO_LONG,
        id="udp: datagram over the cap",
    ),
    pytest.param(
        Framing.STREAM, b"\x00" + QUERY_MANUFACTURER, FrameErrorKind.NO_START, id="stream: no start"
    ),
    pytest.param(
        Framing.DATAGRAM, QUERY_MANUFACTURER[1:], FrameErrorKind.NO_START, id="udp: no start"
    ),
]
MALFORMED_STREAM = [row for row in MALFORMED if row.values[0] is Framing.STREAM]
#: A cap small enough for the "over the cap" rows.
CAP = 1024


@pytest.mark.parametrize(("framing", "wire", "kind"), MALFORMED)
def test_malformed_frame_is_invalid(framing: Framing, wire: bytes, kind: FrameErrorKind) -> None:
    with pytest.raises(InvalidFrame) as caught:
        decode_frame(wire, framing=framing, max_frame=CAP)
    assert caught.value.kind is kind
    assert isinstance(caught.value, FrameError)
    assert caught.value.code == "E_PROTOCOL"


@pytest.mark.parametrize(("framing", "wire", "kind"), MALFORMED_STREAM)
def test_stream_reports_malformed_frame_then_recovers(
    framing: Framing, wire: bytes, kind: FrameErrorKind
) -> None:
    good = decode_frame(SET_CENTER_CONTROL, framing=Framing.STREAM)
    decoder = FrameDecoder(max_frame=CAP)
    events = decoder.feed(wire + SET_CENTER_CONTROL)
    errors = [event for event in events if isinstance(event, FrameErrorEvent)]
    if kind is FrameErrorKind.NO_START:
        assert errors == []  # noise before a frame is skipped silently
    else:
        # A raw 7E inside a frame also opens a new, bogus frame: a second error.
        assert errors[0].kind is kind
        assert len(errors) == (2 if kind is FrameErrorKind.UNEXPECTED_START else 1)
    assert events[-1] == good


# ------------------------------------------------------- stream decoder contract


def test_noise_before_a_frame_is_skipped_and_counted() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(b"\x00\xff\x7d\x5cgarbage" + SET_CENTER_CONTROL)
    assert events == [decode_frame(SET_CENTER_CONTROL, framing=Framing.STREAM)]
    assert decoder.discarded == 11


def test_noise_between_frames_is_skipped() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(HEARTBEAT_REPLY_TCP + b"\x7d\x7d\x00\x5c" + SET_CENTER_CONTROL)
    assert [type(event) for event in events] == [Frame, Frame]
    assert decoder.discarded == 4


def test_a_lost_end_byte_costs_one_frame_only() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(SET_CENTER_CONTROL[:-1] + HEARTBEAT_REPLY_TCP)
    assert isinstance(events[0], FrameErrorEvent)
    assert events[0].kind is FrameErrorKind.UNEXPECTED_START
    assert events[1] == decode_frame(HEARTBEAT_REPLY_TCP, framing=Framing.STREAM)


def test_a_lost_start_byte_costs_one_frame_only() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(SET_CENTER_CONTROL[1:] + HEARTBEAT_REPLY_TCP)
    assert events == [decode_frame(HEARTBEAT_REPLY_TCP, framing=Framing.STREAM)]


def test_bad_crc_is_reported_and_the_next_frame_survives() -> None:
    corrupted = bytearray(SET_CENTER_CONTROL)
    corrupted[20] ^= 0x01
    events = FrameDecoder().feed(bytes(corrupted) + SET_CENTER_CONTROL)
    assert isinstance(events[0], FrameErrorEvent)
    assert events[0].kind is FrameErrorKind.BAD_CRC
    assert events[0].content[:2] == b"\x00\x22"
    assert events[1] == decode_frame(SET_CENTER_CONTROL, framing=Framing.STREAM)


def test_too_long_frame_is_dropped_with_a_capped_buffer() -> None:
    decoder = FrameDecoder(max_frame=64)
    # A length field announcing 0x0100 + 4 bytes: rejected as soon as it is read.
    events = decoder.feed(b"\x7e\x01\x00" + b"\x01" * 10_000)
    assert [event.kind for event in events if isinstance(event, FrameErrorEvent)] == [
        FrameErrorKind.TOO_LONG
    ]
    assert decoder.buffered == 0
    assert not decoder.in_frame
    assert decoder.feed(SET_CENTER_CONTROL) == [
        decode_frame(SET_CENTER_CONTROL, framing=Framing.STREAM)
    ]


def test_more_bytes_than_the_length_allows_are_dropped_at_once() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(b"\x7e\x00\x0c" + b"\x01" * 15)
    assert [event.kind for event in events if isinstance(event, FrameErrorEvent)] == [
        FrameErrorKind.BAD_LENGTH
    ]
    assert not decoder.in_frame


@settings(max_examples=examples(100))
@given(st.binary(max_size=600))
def test_buffer_never_exceeds_the_cap(noise: bytes) -> None:
    decoder = FrameDecoder(max_frame=128)
    for at in range(0, len(noise), 7):
        decoder.feed(b"\x7e" + noise[at : at + 7])
        assert decoder.buffered <= 126


def test_reset_drops_a_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(SET_CENTER_CONTROL[:10])
    was_in_frame = decoder.in_frame
    decoder.reset()
    assert (was_in_frame, decoder.in_frame) == (True, False)
    assert decoder.feed(SET_CENTER_CONTROL[10:]) == []  # the tail is noise now
    assert decoder.feed(SET_CENTER_CONTROL) == [
        decode_frame(SET_CENTER_CONTROL, framing=Framing.STREAM)
    ]


@pytest.mark.parametrize("cap", [0, 15, MAX_FRAME + 1])
def test_a_cap_outside_the_protocol_range_is_refused(cap: int) -> None:
    with pytest.raises(ValueError, match="max_frame"):
        FrameDecoder(max_frame=cap)
    with pytest.raises(ValueError, match="max_frame"):
        decode_frame(QUERY_MANUFACTURER, framing=Framing.DATAGRAM, max_frame=cap)


# ------------------------------------------------------------------- encoding


def test_encode_refuses_frames_no_decoder_accepts() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        encode_frame(b"\x01\x00", framing=Framing.DATAGRAM)
    with pytest.raises(ValueError, match="cap"):
        encode_frame(bytes(100), framing=Framing.DATAGRAM, max_frame=64)
    with pytest.raises(ValueError, match="cap"):
        encode_frame(bytes(0xFFFE), framing=Framing.DATAGRAM)


# ------------------------------------------------------- tolerated deviations
# OpenATC (reference §1.5): length = total - 2, CRC computed with the length field zero.


@pytest.mark.parametrize("framing", [Framing.DATAGRAM, Framing.STREAM])
@pytest.mark.parametrize(
    ("length_delta", "body_only", "deviations"),
    [
        pytest.param(
            2,
            True,
            {Deviation.LENGTH_WITHOUT_DELIMITERS, Deviation.CRC_WITHOUT_LENGTH},
            id="openatc-both",
        ),
        pytest.param(2, False, {Deviation.LENGTH_WITHOUT_DELIMITERS}, id="length-only"),
        pytest.param(0, True, {Deviation.CRC_WITHOUT_LENGTH}, id="crc-only"),
    ],
)
def test_openatc_length_and_crc_are_accepted_and_reported(
    framing: Framing, length_delta: int, body_only: bool, deviations: set[Deviation]
) -> None:
    wire = raw_frame(
        GOOD_BODY,
        length=len(GOOD_BODY) + 2 + length_delta,
        crc_over_body_only=body_only,
        framing=framing,
    )
    frame = decode_frame(wire, framing=framing)
    assert frame == Frame(body=GOOD_BODY, deviations=frozenset(deviations))
    if framing is Framing.STREAM:
        assert FrameDecoder().feed(wire) == [frame]
    # Re-encoding gives the strict form.
    assert encode_frame(frame.body, framing=framing) == raw_frame(GOOD_BODY, framing=framing)


def test_openatc_heartbeat_as_it_would_send_it() -> None:
    """Length 14 (= 16 - 2) and a CRC over version..type only."""
    heartbeat = bytes.fromhex("0100 05 00000000 00 01 80")
    crc = crc16_gbt20999(heartbeat).to_bytes(2, "big")
    wire = b"\x7e\x00\x0e" + heartbeat + crc + b"\x7d"
    frame = decode_datagram(wire)
    assert frame.body == heartbeat
    assert frame.deviations == {Deviation.LENGTH_WITHOUT_DELIMITERS, Deviation.CRC_WITHOUT_LENGTH}


# ------------------------------------------------------------ escaping edges


def message_with_length(length: int) -> Message:
    """A query reply whose length field is exactly ``length`` (>= 18)."""
    remaining = length - 2 - 11  # CRC, header with count
    values: list[DataValue] = []
    while remaining:
        size = min(remaining, 257)
        if remaining - size in (1, 2, 3, 4, 5):  # leave room for one more whole value
            size -= 6
        values.append(
            DataValue(index=len(values) + 1, address=Address(1, 1), value=b"\xa5" * (size - 6))
        )
        remaining -= size
    message = Message(
        frame_type=FrameType.QUERY_REPLY, ids=DEVICE_IDS, sequence=2, values=tuple(values)
    )
    assert len(encode_body(message)) + 2 == length
    return message


def message_with_crc(position: int, byte: int) -> Message:
    """A small query whose CRC has ``byte`` as its high (0) or low (1) byte."""
    for sequence in range(256):
        for element in range(256):
            message = Message(
                frame_type=FrameType.QUERY,
                ids=DEVICE_IDS,
                sequence=sequence,
                values=(DataValue(index=1, address=Address(9, 2, 3, element)),),
            )
            if encode(message, framing=Framing.DATAGRAM)[-3 + position] == byte:
                return message
    raise AssertionError("no such CRC")  # pragma: no cover


SPECIALS = [0x7E, 0x7D, 0x5C]
EDGE_MESSAGES = [
    *[
        pytest.param(message_with_length(n), f"length {n:04X}", id=f"length-{n:04X}")
        for n in (0x7E, 0x7D, 0x5C, 0x5C7E, 0x7D7D, 0x7E5C)
    ],
    *[
        pytest.param(
            message_with_crc(position, byte), f"CRC {side} {byte:02X}", id=f"crc-{side}-{byte:02X}"
        )
        for position, side in ((0, "high"), (1, "low"))
        for byte in SPECIALS
    ],
]


@pytest.mark.parametrize(("message", "what"), EDGE_MESSAGES)
def test_special_bytes_in_length_and_crc_on_a_serial_stream(message: Message, what: str) -> None:
    udp = encode(message, framing=Framing.DATAGRAM)
    stream = encode(message, framing=Framing.STREAM)
    head_and_tail = udp[1:3] + udp[-3:-1]
    assert set(head_and_tail) & set(SPECIALS), what
    # Every special byte between start and end is escaped; none appears raw.
    assert unescaped_specials(stream[1:-1]) == 0
    frame = decode_frame(stream, framing=Framing.STREAM)
    assert frame.body == udp[3:-3]
    decoder = FrameDecoder()
    events = [
        event for at in range(0, len(stream), 97) for event in decoder.feed(stream[at : at + 97])
    ]
    assert events == [frame]
    if len(stream) < 300:
        for cut in range(len(stream)):
            with pytest.raises(IncompleteFrame):
                decode_frame(stream[:cut], framing=Framing.STREAM)


@pytest.mark.parametrize(("message", "what"), EDGE_MESSAGES)
def test_special_bytes_in_length_and_crc_of_a_udp_datagram(message: Message, what: str) -> None:
    udp = encode(message, framing=Framing.DATAGRAM)
    assert len(udp) == len(encode_body(message)) + 6, what  # nothing escaped
    frame = decode_datagram(udp)
    assert frame.body == encode_body(message)
    if len(udp) < 300:
        for cut in range(len(udp)):
            with pytest.raises(IncompleteFrame):
                decode_datagram(udp[:cut])


def test_datagram_decoder_does_not_unescape() -> None:
    """5C 7D, 5C 5C and 5C 7E inside a UDP frame are data, kept byte for byte."""
    tricky = bytes.fromhex("5C7D 5C5C 5C7E 7D 7E 5C")
    value = DataValue(index=1, address=Address(0x80, 1), value=tricky)
    message = Message(frame_type=FrameType.TRAP, ids=DEVICE_IDS, sequence=0, values=(value,))
    udp = encode(message, framing=Framing.DATAGRAM)
    assert tricky in udp
    assert decode_datagram(udp).body == encode_body(message)


# ------------------------------------------------------------------ properties

bodies = st.binary(min_size=10, max_size=300) | st.lists(
    st.sampled_from([0x7E, 0x7D, 0x5C, 0x00]), min_size=10, max_size=40
).map(bytes)


@settings(max_examples=examples(300))
@given(bodies, st.sampled_from(Framing))
@example(bytes.fromhex("0100 05 00000000 00 01 80"), Framing.STREAM)
def test_round_trip(frame_body: bytes, framing: Framing) -> None:
    wire = encode_frame(frame_body, framing=framing)
    assert decode_frame(wire, framing=framing) == Frame(body=frame_body)
    if framing is Framing.STREAM:
        assert FrameDecoder().feed(wire) == [Frame(body=frame_body)]
        assert unescaped_specials(wire[1:-1]) == 0


@settings(max_examples=examples(150))
@given(st.lists(bodies, min_size=1, max_size=5), st.data())
def test_stream_of_frames_split_anywhere(frame_bodies: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(b, framing=Framing.STREAM) for b in frame_bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    events = [
        event
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)
        for event in decoder.feed(stream[a:b])
    ]
    assert events == [Frame(body=b) for b in frame_bodies]


@settings(max_examples=examples(150))
@given(bodies, st.binary(max_size=50).filter(lambda noise: 0x7E not in noise))
def test_frame_after_noise_is_recovered(frame_body: bytes, noise: bytes) -> None:
    wire = encode_frame(frame_body, framing=Framing.STREAM)
    assert FrameDecoder().feed(noise + wire) == [Frame(body=frame_body)]


@settings(max_examples=examples(200))
@given(bodies, st.sampled_from(Framing))
def test_every_strict_prefix_of_a_random_frame_is_incomplete(
    frame_body: bytes, framing: Framing
) -> None:
    wire = encode_frame(frame_body, framing=framing)
    for cut in range(0, len(wire), max(1, len(wire) // 16)):
        try:
            decode_frame(wire[:cut], framing=framing)
        except IncompleteFrame:
            continue
        # A datagram prefix two bytes short that ends in 7D may read as a valid
        # OpenATC frame (length total - 2): only if its CRC happens to match too.
        assert framing is Framing.DATAGRAM
        assert cut == len(wire) - 2


@settings(max_examples=examples(500))
@given(st.binary(max_size=200) | st.binary(max_size=200).map(lambda tail: b"\x7e\x00" + tail))
@example(b"\x7e\x00\x0c\x5c")
@example(b"\x7e\x7d")
def test_random_bytes_parse_or_raise_frame_error(data: bytes) -> None:
    for framing in Framing:
        try:
            frame = decode_frame(data, framing=framing)
        except FrameError:
            pass
        else:
            assert isinstance(frame, Frame)
    events = FrameDecoder().feed(data)
    assert all(isinstance(event, Frame | FrameErrorEvent) for event in events)


@settings(max_examples=examples(300))
@given(bodies, st.sampled_from(Framing), st.data())
def test_corrupted_frame_never_escapes_as_other_errors(
    frame_body: bytes, framing: Framing, data: st.DataObject
) -> None:
    wire = bytearray(encode_frame(frame_body, framing=framing))
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_frame(bytes(wire), framing=framing)
    except FrameError:
        return
    assert isinstance(decoded, Frame)
