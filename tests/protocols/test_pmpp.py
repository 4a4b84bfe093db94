"""PMPP framing, tested on bytes: worked frames, prefixes, malformed frames, streams, fuzz."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import agent.protocols
from agent.errors import FrameError
from agent.protocols.crc import fcs_bytes
from agent.protocols.pmpp import (
    CONTROL_UI,
    CONTROL_UP,
    IPI_NTCIP_CLASS_B,
    IPI_SNMP,
    MAX_ADDRESS,
    MAX_CONTENT,
    FrameErrorEvent,
    FrameErrorKind,
    IncompleteFrame,
    InvalidFrame,
    PmppDecoder,
    PmppFrame,
    decode_frame,
    encode_frame,
)


def examples(floor: int) -> int:
    """``floor`` examples, or more when the loaded Hypothesis profile asks for more.

    The default profile keeps the suite fast; a long-run profile (e.g. one with
    ``max_examples=100_000`` loaded from a conftest) raises every property at once.
    """
    return max(floor, settings().max_examples)


# --------------------------------------------------------------- worked frames
# Copied byte for byte from shared/reference/ntcip-protocols.md §1.

SNMP_GET_COORD_PATTERN_STATUS = bytes.fromhex(
    "30 2b 02 01 00 04 06 70 75 62 6c 69 63 a0 1e 02 01 01 02 01 00 02 01 00"
    " 30 13 30 11 06 0d 2b 06 01 04 01 89 36 04 02 01 04 0a 00 05 00"
)


WORKED: list[tuple[PmppFrame, bytes]] = [
    (  # AB3418 GetLongStatus8 to drop 1
        PmppFrame(address=1, control=CONTROL_UI, ipi=IPI_NTCIP_CLASS_B, payload=b"\x8c"),
        bytes.fromhex("7E 05 13 C0 8C B6 7C 7E"),
    ),
    (  # SNMPv1 GetRequest coordPatternStatus.0 over PMPP, drop 1
        PmppFrame(address=1, payload=SNMP_GET_COORD_PATTERN_STATUS),
        bytes.fromhex("7E 05 13 C1") + SNMP_GET_COORD_PATTERN_STATUS + bytes.fromhex("6B 39 7E"),
    ),
    (  # stuffing example: a 0x7E in the body
        PmppFrame(address=1, ipi=IPI_NTCIP_CLASS_B, payload=b"\x92\x07\x7e"),
        bytes.fromhex("7E 05 13 C0 92 07 7D 5E 6D 9A 7E"),
    ),
]
WORKED_IDS = ["ab3418-get-long-status8", "snmp-get-coord-pattern-status", "stuffing"]


def raw_frame(content: bytes) -> bytes:
    """Flags around content sent as is (for hand-made escapes)."""
    return b"\x7e" + content + b"\x7e"


def framed(content: bytes) -> bytes:
    """Flags around content with 0x7E/0x7D stuffed (for frames broken in other ways)."""
    stuffed = content.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")
    return raw_frame(stuffed)


def with_fcs(body: bytes) -> bytes:
    return body + fcs_bytes(body)


def feed_all(decoder: PmppDecoder, chunks: list[bytes]) -> list[PmppFrame | FrameErrorEvent]:
    out: list[PmppFrame | FrameErrorEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_worked_snmp_frame_carries_the_reference_message() -> None:
    assert len(SNMP_GET_COORD_PATTERN_STATUS) == 45


@pytest.mark.parametrize(("frame", "wire"), WORKED, ids=WORKED_IDS)
def test_worked_frame_encodes_byte_for_byte(frame: PmppFrame, wire: bytes) -> None:
    assert frame.encode() == wire
    assert (
        encode_frame(address=frame.address, payload=frame.payload, ipi=frame.ipi, control=0x13)
        == wire
    )


@pytest.mark.parametrize(("frame", "wire"), WORKED, ids=WORKED_IDS)
def test_worked_frame_decodes_whole(frame: PmppFrame, wire: bytes) -> None:
    assert decode_frame(wire) == frame
    assert PmppDecoder().feed(wire) == [frame]


@pytest.mark.parametrize(("frame", "wire"), WORKED, ids=WORKED_IDS)
def test_worked_frame_decodes_byte_by_byte(frame: PmppFrame, wire: bytes) -> None:
    decoder = PmppDecoder()
    events = [decoder.feed(wire[i : i + 1]) for i in range(len(wire))]
    assert events[:-1] == [[]] * (len(wire) - 1)
    assert events[-1] == [frame]


@pytest.mark.parametrize(("frame", "wire"), WORKED, ids=WORKED_IDS)
def test_worked_frame_with_trailing_bytes(frame: PmppFrame, wire: bytes) -> None:
    decoder = PmppDecoder()
    assert decoder.feed(wire + b"\x05\x13") == [frame]
    assert decoder.in_frame  # the trailing bytes wait for their closing flag
    with pytest.raises(InvalidFrame) as caught:
        decode_frame(wire + b"\x05\x13")
    assert caught.value.kind is FrameErrorKind.TRAILING_DATA


@pytest.mark.parametrize(("frame", "wire"), WORKED, ids=WORKED_IDS)
def test_every_strict_prefix_is_incomplete(frame: PmppFrame, wire: bytes) -> None:
    for cut in range(len(wire)):
        with pytest.raises(IncompleteFrame):
            decode_frame(wire[:cut])
        assert PmppDecoder().feed(wire[:cut]) == []


# ------------------------------------------------------------ malformed frames

GOOD_BODY = bytes.fromhex("05 13 C1 AA BB")

MALFORMED = [
    pytest.param(framed(GOOD_BODY + b"\x00\x00"), FrameErrorKind.BAD_FCS, id="FCS: wrong value"),
    pytest.param(
        framed(GOOD_BODY + fcs_bytes(GOOD_BODY)[::-1]),
        FrameErrorKind.BAD_FCS,
        id="FCS: sent high byte first",
    ),
    pytest.param(
        framed(bytes.fromhex("05 13 C1 AA BC") + fcs_bytes(GOOD_BODY)),
        FrameErrorKind.BAD_FCS,
        id="FCS: payload bit flipped",
    ),
    pytest.param(
        raw_frame(bytes.fromhex("05 13 C1 7D")), FrameErrorKind.BAD_ESCAPE, id="abort 7D 7E"
    ),
    pytest.param(
        raw_frame(bytes.fromhex("05 13 7D 00 C1")), FrameErrorKind.BAD_ESCAPE, id="escape 7D 00"
    ),
    pytest.param(
        raw_frame(bytes.fromhex("05 13 7D 7D 5D")), FrameErrorKind.BAD_ESCAPE, id="escape 7D 7D"
    ),
    pytest.param(framed(with_fcs(bytes.fromhex("05 13"))), FrameErrorKind.TOO_SHORT, id="no IPI"),
    pytest.param(framed(b"\x05"), FrameErrorKind.TOO_SHORT, id="one octet"),
    pytest.param(
        framed(with_fcs(bytes.fromhex("02 04 13 C1"))),
        FrameErrorKind.BAD_ADDRESS,
        id="address: no extension bit in two octets",
    ),
    pytest.param(
        framed(with_fcs(bytes.fromhex("02 05 13"))),
        FrameErrorKind.TOO_SHORT,
        id="address: two octets, then no IPI",
    ),
    pytest.param(
        raw_frame(b"\x05\x13\xc1" + bytes(MAX_CONTENT)),
        FrameErrorKind.TOO_LONG,
        id="longer than the receive cap",
    ),
    pytest.param(
        b"\x00" + GOOD_BODY + b"\x7e", FrameErrorKind.NO_OPENING_FLAG, id="no opening flag"
    ),
    pytest.param(WORKED[0][1] + b"\x7e", FrameErrorKind.TRAILING_DATA, id="a flag after the frame"),
]


@pytest.mark.parametrize(("wire", "kind"), MALFORMED)
def test_malformed_frame_is_invalid(wire: bytes, kind: FrameErrorKind) -> None:
    with pytest.raises(InvalidFrame) as caught:
        decode_frame(wire)
    assert caught.value.kind is kind
    assert isinstance(caught.value, FrameError)
    assert caught.value.code == "E_PROTOCOL"


@pytest.mark.parametrize(("wire", "kind"), MALFORMED)
def test_stream_reports_malformed_frame_then_recovers(wire: bytes, kind: FrameErrorKind) -> None:
    good_frame, good_wire = WORKED[1]
    events = PmppDecoder().feed(wire + good_wire)
    errors = [event for event in events if isinstance(event, FrameErrorEvent)]
    if kind is FrameErrorKind.NO_OPENING_FLAG:
        assert errors == []  # noise before the first flag is skipped silently
    elif kind is not FrameErrorKind.TRAILING_DATA:
        assert [error.kind for error in errors] == [kind]
    assert events[-1] == good_frame


# ------------------------------------------------------- stream decoder contract


def test_noise_before_a_frame_is_skipped_and_counted() -> None:
    frame, wire = WORKED[1]
    decoder = PmppDecoder()
    assert decoder.feed(b"\x00\xff\x13\xc1garbage" + wire) == [frame]
    assert decoder.discarded == 11


def test_frames_sharing_one_flag() -> None:
    (f1, w1), (f2, w2), (f3, w3) = WORKED
    stream = w1 + w2[1:] + w3[1:]  # 7E f1 7E f2 7E f3 7E
    assert PmppDecoder().feed(stream) == [f1, f2, f3]


def test_idle_flags_between_frames_are_ignored() -> None:
    (f1, w1), (f2, w2), _ = WORKED
    assert PmppDecoder().feed(b"\x7e\x7e" + w1 + b"\x7e\x7e\x7e" + w2 + b"\x7e") == [f1, f2]


def test_bad_fcs_is_reported_and_the_next_frame_survives() -> None:
    _, wire = WORKED[1]
    corrupted = bytearray(wire)
    corrupted[10] ^= 0x01
    events = PmppDecoder().feed(bytes(corrupted) + wire)
    assert isinstance(events[0], FrameErrorEvent)
    assert events[0].kind is FrameErrorKind.BAD_FCS
    assert events[0].content[:3] == b"\x05\x13\xc1"
    assert events[1] == WORKED[1][0]


def test_noise_between_frames_with_own_flags_is_one_error_event() -> None:
    (f1, w1), (f2, w2), _ = WORKED
    events = PmppDecoder().feed(w1 + b"\x11\x22\x33\x44\x55\x66" + w2)
    assert events[0] == f1
    assert isinstance(events[1], FrameErrorEvent)
    assert events[1].kind is FrameErrorKind.BAD_FCS
    assert events[2] == f2


def test_too_long_frame_is_dropped_with_a_capped_buffer() -> None:
    decoder = PmppDecoder(max_content=64)
    frame, wire = WORKED[0]
    events = decoder.feed(b"\x7e" + b"\x01" * 10_000)
    assert [type(event) for event in events] == [FrameErrorEvent]
    assert isinstance(events[0], FrameErrorEvent)
    assert events[0].kind is FrameErrorKind.TOO_LONG
    assert len(events[0].content) == 64
    assert decoder.buffered == 0
    assert not decoder.in_frame
    # The long frame's closing flag opens the next frame.
    assert decoder.feed(b"\x01\x01\x7e" + wire[1:]) == [frame]


def test_buffer_never_exceeds_the_cap_while_collecting() -> None:
    decoder = PmppDecoder(max_content=100)
    for _ in range(300):
        decoder.feed(b"\x42")
        assert decoder.buffered <= 100


def test_abort_lets_its_flag_open_the_next_frame() -> None:
    frame, wire = WORKED[1]
    events = PmppDecoder().feed(b"\x7e\x05\x13\x7d" + wire)
    assert isinstance(events[0], FrameErrorEvent)
    assert events[0].kind is FrameErrorKind.BAD_ESCAPE
    assert events[1:] == [frame]


def test_reset_drops_a_partial_frame() -> None:
    frame, wire = WORKED[1]
    decoder = PmppDecoder()
    decoder.feed(wire[:10])
    was_in_frame = decoder.in_frame
    decoder.reset()
    assert (was_in_frame, decoder.in_frame) == (True, False)
    assert decoder.feed(wire[10:]) == []  # the tail is noise now; its flag opens a frame
    assert decoder.feed(wire) == [frame]


def test_decoder_rejects_a_cap_smaller_than_a_frame() -> None:
    with pytest.raises(ValueError, match="max_content"):
        PmppDecoder(max_content=4)


# ----------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "group", "octets"),
    [
        pytest.param(1, False, b"\x05", id="drop 1"),
        pytest.param(0, False, b"\x01", id="drop 0"),
        pytest.param(63, False, b"\xfd", id="drop 63"),
        pytest.param(63, True, b"\xff", id="drop 63, group"),
        pytest.param(5, True, b"\x17", id="drop 5, group"),
        pytest.param(64, False, b"\x02\x01", id="drop 64, two octets"),
        pytest.param(MAX_ADDRESS, False, b"\xfe\xfd", id="drop 8191, two octets"),
    ],
)
def test_address_octets(address: int, group: bool, octets: bytes) -> None:
    wire = encode_frame(address=address, payload=b"", group=group)
    assert wire[1 : 1 + len(octets)] == octets
    frame = decode_frame(wire)
    assert (frame.address, frame.group) == (address, group)


def test_control_up_is_carried() -> None:
    wire = encode_frame(address=1, payload=b"x", control=CONTROL_UP)
    assert decode_frame(wire).control == CONTROL_UP


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"address": -1}, id="negative address"),
        pytest.param({"address": MAX_ADDRESS + 1}, id="address too large"),
        pytest.param({"address": 1, "control": 256}, id="control not an octet"),
        pytest.param({"address": 1, "ipi": -1}, id="IPI not an octet"),
        pytest.param({"address": 1, "payload": bytes(MAX_CONTENT)}, id="too long"),
    ],
)
def test_encode_rejects_bad_arguments(kwargs: dict[str, int | bytes]) -> None:
    arguments: dict[str, int | bytes] = {"payload": b"", **kwargs}
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        encode_frame(**arguments)  # type: ignore[arg-type]


# ------------------------------------------------------------------ properties

payloads = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([0x7E, 0x7D, 0x5E, 0x5D, 0x00, 0xFF]), max_size=40).map(bytes),
)
frames = st.builds(
    PmppFrame,
    address=st.integers(0, MAX_ADDRESS),
    control=st.sampled_from([CONTROL_UI, CONTROL_UP]) | st.integers(0, 255),
    ipi=st.sampled_from([IPI_SNMP, IPI_NTCIP_CLASS_B]) | st.integers(0, 255),
    payload=payloads,
    group=st.booleans(),
)


@settings(max_examples=examples(400))
@given(frames)
@example(PmppFrame(address=31, payload=b"\x7e\x7d"))  # address octet 0x7D needs stuffing
@example(PmppFrame(address=0, control=0x7E, ipi=0x7D, payload=b""))
def test_round_trip(frame: PmppFrame) -> None:
    wire = frame.encode()
    assert decode_frame(wire) == frame
    assert PmppDecoder().feed(wire) == [frame]
    assert 0x7E not in wire[1:-1]


@settings(max_examples=examples(200))
@given(st.lists(frames, min_size=1, max_size=5), st.data())
def test_stream_of_frames_split_anywhere(frame_list: list[PmppFrame], data: st.DataObject) -> None:
    stream = b"".join(frame.encode() for frame in frame_list)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert feed_all(PmppDecoder(), chunks) == frame_list


@settings(max_examples=examples(200))
@given(frames, st.binary(max_size=50).filter(lambda noise: 0x7E not in noise))
def test_frame_after_noise_is_recovered(frame: PmppFrame, noise: bytes) -> None:
    assert PmppDecoder().feed(noise + frame.encode()) == [frame]


@settings(max_examples=examples(300))
@given(frames)
def test_every_strict_prefix_of_a_random_frame_is_incomplete(frame: PmppFrame) -> None:
    wire = frame.encode()
    for cut in range(0, len(wire), max(1, len(wire) // 16)):
        with pytest.raises(IncompleteFrame):
            decode_frame(wire[:cut])


@settings(max_examples=examples(500))
@given(st.binary(max_size=200))
@example(b"\x7e\x7d\x7e")
@example(b"\x7e\x00\x7e")
def test_random_bytes_parse_or_raise_frame_error(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError:
        pass
    else:
        assert decode_frame(frame.encode()) == frame
    events = PmppDecoder().feed(data)
    assert all(isinstance(event, PmppFrame | FrameErrorEvent) for event in events)


@settings(max_examples=examples(300))
@given(frames, st.data())
def test_corrupted_frame_never_escapes_as_other_errors(
    frame: PmppFrame, data: st.DataObject
) -> None:
    wire = bytearray(frame.encode())
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_frame(bytes(wire))
    except FrameError:
        return
    # A change that still decodes must still be a well-formed frame.
    assert isinstance(decoded, PmppFrame)


# ------------------------------------------------------------------- layering


def test_protocol_layer_imports_no_io() -> None:
    """STYLE.md: codecs import the standard library, pysnmp/pyasn1 and agent.errors only.

    No asyncio, sockets, serial ports, clocks or MQTT anywhere in agent/protocols.
    """
    forbidden = {"asyncio", "socket", "selectors", "select", "time", "serial", "aiomqtt"}
    allowed_first_party = ("agent.errors", "agent.protocols")
    package = Path(agent.protocols.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
                if name.split(".")[0] == "agent":
                    assert name.startswith(allowed_first_party), f"{path.name} imports {name}"
