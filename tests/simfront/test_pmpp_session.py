"""The PMPP session without I/O: frames in (whole, byte by byte, mixed with noise), frames out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.protocols import ntcip1202 as mib
from agent.protocols.pmpp import (
    CONTROL_UI,
    CONTROL_UP,
    IPI_NTCIP_CLASS_B,
    IPI_SNMP,
    encode_frame,
)
from agent.protocols.snmp import ErrorStatus, Integer, decode_message
from firmware_sim.ntcip_responder import NtcipResponder
from firmware_sim.pmpp_session import PmppSession

from .helpers import frames_in, get, reply_pdu

# shared/reference/ntcip-protocols.md §1: GetRequest coordPatternStatus.0, drop 1,
# community "public", request-id 1, byte for byte.
WORKED_SNMP = bytes.fromhex(
    "30 2b 02 01 00 04 06 70 75 62 6c 69 63 a0 1e 02 01 01 02 01 00 02 01 00"
    " 30 13 30 11 06 0d 2b 06 01 04 01 89 36 04 02 01 04 0a 00 05 00"
)
WORKED_FRAME = bytes.fromhex("7E 05 13 C1") + WORKED_SNMP + bytes.fromhex("6B 39 7E")


@pytest.fixture
def session(responder: NtcipResponder) -> PmppSession:
    """A drop-1 session in front of the responder (serial size limit)."""
    return PmppSession(lambda m: responder.handle(m, max_size=484), address=1)


def check_pattern_reply(data: bytes, *, request_id: int = 1, address: int = 1) -> None:
    """``data`` is exactly one reply frame carrying coordPatternStatus.0 = 1."""
    (frame,) = frames_in(data)
    assert (frame.address, frame.control, frame.ipi, frame.group) == (
        address,
        CONTROL_UI,
        IPI_SNMP,
        False,
    )
    assert data[0] == 0x7E
    assert data[-1] == 0x7E
    message = decode_message(frame.payload)
    assert message.community == b"public"
    pdu = reply_pdu(frame.payload)
    assert (pdu.request_id, pdu.error_status) == (request_id, ErrorStatus.NO_ERROR)
    assert pdu.varbinds[0].oid == mib.COORD_PATTERN_STATUS.instance()
    assert pdu.varbinds[0].value == Integer(1)


def test_the_worked_frame_is_what_encode_frame_builds() -> None:
    assert encode_frame(address=1, payload=WORKED_SNMP) == WORKED_FRAME


def test_the_worked_get_request_frame_is_answered(session: PmppSession) -> None:
    check_pattern_reply(session.feed(WORKED_FRAME))
    assert (session.stats.frames, session.stats.answered) == (1, 1)


def test_byte_by_byte_the_reply_comes_with_the_closing_flag(session: PmppSession) -> None:
    replies = [session.feed(bytes([byte])) for byte in WORKED_FRAME]
    assert all(reply == b"" for reply in replies[:-1])
    check_pattern_reply(replies[-1])


def test_noise_before_between_and_after_frames_is_survived(session: PmppSession) -> None:
    second = encode_frame(address=1, payload=get(mib.COORD_PATTERN_STATUS.instance(), request_id=2))
    stream = b"\x00\xff garbage \x13\xc1" + WORKED_FRAME + b"\x55\xaa\x7d" + second + b"tail"
    data = session.feed(stream)
    frames = frames_in(data)
    assert [reply_pdu(f.payload).request_id for f in frames] == [1, 2]
    assert session.discarded > 0


def test_a_frame_for_another_drop_is_ignored(session: PmppSession) -> None:
    other = encode_frame(address=2, payload=WORKED_SNMP)
    assert session.feed(other) == b""
    assert session.stats.foreign == 1
    check_pattern_reply(session.feed(WORKED_FRAME))


def test_a_session_answers_its_own_drop_address(responder: NtcipResponder) -> None:
    session = PmppSession(responder.handle, address=37)
    assert session.feed(WORKED_FRAME) == b""
    check_pattern_reply(session.feed(encode_frame(address=37, payload=WORKED_SNMP)), address=37)


def test_a_bad_crc_frame_is_ignored_and_the_next_good_one_answered(session: PmppSession) -> None:
    bad = bytearray(WORKED_FRAME)
    bad[-3] ^= 0x01  # FCS low byte
    assert session.feed(bytes(bad)) == b""
    assert session.stats.bad_frames == 1
    check_pattern_reply(session.feed(WORKED_FRAME))


def test_a_bad_crc_frame_sharing_a_flag_with_the_next_one(session: PmppSession) -> None:
    bad = bytearray(WORKED_FRAME)
    bad[10] ^= 0x40  # a payload byte: the FCS no longer matches
    check_pattern_reply(session.feed(bytes(bad[:-1]) + WORKED_FRAME))


@pytest.mark.parametrize(
    ("frame", "counter"),
    [
        pytest.param(
            encode_frame(address=1, payload=WORKED_SNMP, group=True), "foreign", id="group"
        ),
        pytest.param(
            encode_frame(address=1, payload=b"\x8c", ipi=IPI_NTCIP_CLASS_B),
            "unsupported",
            id="stmp-ipi",
        ),
        pytest.param(
            encode_frame(address=1, payload=WORKED_SNMP, control=0x03), "unsupported", id="ctl"
        ),
    ],
)
def test_frames_not_for_this_snmp_agent_are_ignored(
    session: PmppSession, frame: bytes, counter: str
) -> None:
    assert session.feed(frame) == b""
    assert getattr(session.stats, counter) == 1


def test_an_unnumbered_poll_is_answered_with_ui(session: PmppSession) -> None:
    check_pattern_reply(
        session.feed(encode_frame(address=1, payload=WORKED_SNMP, control=CONTROL_UP))
    )


def test_a_wrong_community_inside_a_good_frame_gets_nothing(session: PmppSession) -> None:
    frame = encode_frame(
        address=1, payload=get(mib.COORD_PATTERN_STATUS.instance(), community=b"x")
    )
    assert session.feed(frame) == b""
    assert session.stats.frames == 1
    assert session.stats.answered == 0


def test_two_frames_in_one_read_get_two_replies_in_order(session: PmppSession) -> None:
    frames = [
        encode_frame(address=1, payload=get(mib.COORD_PATTERN_STATUS.instance(), request_id=n))
        for n in (5, 6, 7)
    ]
    replies = frames_in(session.feed(b"".join(frames)))
    assert [reply_pdu(f.payload).request_id for f in replies] == [5, 6, 7]


def test_a_reply_with_stuffed_bytes_decodes(responder: NtcipResponder) -> None:
    # request-id 0x7E7D forces flag and escape octets into the frame, both ways.
    session = PmppSession(responder.handle)
    request = encode_frame(
        address=1, payload=get(mib.COORD_PATTERN_STATUS.instance(), request_id=0x7E7D)
    )
    assert b"\x7d\x5e" in request
    check_pattern_reply(session.feed(request), request_id=0x7E7D)


def test_the_drop_address_is_checked() -> None:
    for bad in (0, 8192):
        with pytest.raises(ValueError, match="drop address"):
            PmppSession(lambda m: None, address=bad)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_never_raise_and_the_next_frame_is_answered(
    session: PmppSession, chunks: list[bytes]
) -> None:
    for chunk in chunks:
        data = session.feed(chunk)
        frames_in(data)
    # Whatever came before, a flag-delimited good frame is answered.
    replies = frames_in(session.feed(b"\x7e" + WORKED_FRAME))
    assert replies
    assert reply_pdu(replies[-1].payload).request_id == 1
