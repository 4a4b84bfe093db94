"""Hypothesis strategies and small builders shared by the GB/T 20999 codec tests."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from agent.protocols.crc import crc16_gbt20999
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import Address, DataValue, FrameType, Ids, Message

#: The header ids of every frame in the device capture.
DEVICE_IDS = Ids(center=5, controller=0, intersection=0)


def examples(floor: int) -> int:
    """``floor`` examples, or more when the loaded Hypothesis profile asks for more.

    The default profile keeps the suite fast; a long-run profile (e.g. one with
    ``max_examples=100_000`` loaded from a conftest) raises every property at once.
    """
    return max(floor, settings().max_examples)


def raw_frame(
    body: bytes,
    *,
    length: int | None = None,
    crc: int | None = None,
    crc_over_body_only: bool = False,
    framing: Framing = Framing.DATAGRAM,
) -> bytes:
    """A frame around ``body`` with a chosen length field and CRC (for broken frames).

    Defaults give the strict frame. With :attr:`Framing.STREAM` the bytes
    between start and end are escaped.
    """
    size = len(body) + 2 if length is None else length
    head = size.to_bytes(2, "big") + body
    if crc is None:
        crc = crc16_gbt20999(body if crc_over_body_only else head)
    content = head + crc.to_bytes(2, "big")
    if framing is Framing.STREAM:
        content = (
            content.replace(b"\x5c", b"\x5c\x5c")
            .replace(b"\x7e", b"\x5c\x7e")
            .replace(b"\x7d", b"\x5c\x7d")
        )
    return b"\x7e" + content + b"\x7d"


def body(
    frame_type: int, *, sequence: int = 1, count: bytes = b"\x01", values: bytes = b""
) -> bytes:
    """A message body with the device's ids (for hand-made messages)."""
    header = bytes.fromhex("0100 05 00000000 00") + bytes([sequence, frame_type])
    return header + count + values


# Bytes that matter to the framing, drawn often.
_SPECIAL = st.sampled_from([0x7E, 0x7D, 0x5C, 0x00, 0xFF])
value_bytes = st.one_of(
    st.binary(max_size=40),
    st.lists(_SPECIAL, max_size=12).map(bytes),
    st.binary(min_size=200, max_size=251),
)

addresses = st.builds(
    Address,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
)
ids = st.builds(
    Ids,
    center=st.integers(0, 255) | _SPECIAL,
    controller=st.integers(0, 0xFFFF_FFFF) | st.just(0x7E7D5C7E),
    intersection=st.integers(0, 255) | _SPECIAL,
)


@st.composite
def messages(draw: st.DrawFn, *, max_values: int = 5) -> Message:
    """Any strict message: any frame type, header and (for non-heartbeats) values."""
    frame_type = draw(st.sampled_from(FrameType))
    values: tuple[DataValue, ...] = ()
    if not frame_type.is_heartbeat:
        values = tuple(
            draw(
                st.lists(
                    st.builds(
                        DataValue,
                        index=st.integers(0, 255),
                        address=addresses,
                        value=value_bytes,
                    ),
                    max_size=max_values,
                )
            )
        )
    return Message(
        frame_type=frame_type,
        ids=draw(ids),
        sequence=draw(st.integers(0, 255) | _SPECIAL),
        values=values,
        version=draw(st.sampled_from([0x0100, 0x0101, 0x0102, 0x7E7D]) | st.integers(0, 0xFFFF)),
    )
