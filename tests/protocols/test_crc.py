"""CRC-16/X-25: catalogue values, the worked PMPP frames, and a bitwise cross-check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.protocols.crc import (
    CRC16_X25_CHECK,
    CRC16_X25_INIT,
    CRC16_X25_RESIDUE,
    crc16_x25,
    crc16_x25_update,
    fcs_bytes,
    fcs_valid,
)


def examples(floor: int) -> int:
    """``floor`` examples, or more when the loaded Hypothesis profile asks for more.

    The default profile keeps the suite fast; a long-run profile (e.g. one with
    ``max_examples=100_000`` loaded from a conftest) raises every property at once.
    """
    return max(floor, settings().max_examples)


# The SNMPv1 GetRequest for coordPatternStatus.0 from ntcip-protocols.md §1.
GET_COORD_PATTERN_STATUS = bytes.fromhex(
    "302b02010004067075626c6963a01e02010102010002010030133011060d2b060104018936040201040a000500"
)


def crc_bitwise(data: bytes) -> int:
    """A second, bit-at-a-time implementation straight from the definition (RFC 1662 C.2)."""
    register = 0xFFFF
    for byte in data:
        register ^= byte
        for _ in range(8):
            register = (register >> 1) ^ 0x8408 if register & 1 else register >> 1
    return register ^ 0xFFFF


def test_catalogue_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E == CRC16_X25_CHECK


def test_empty_input_is_zero() -> None:
    assert crc16_x25(b"") == 0x0000


@pytest.mark.parametrize(
    ("body", "crc"),
    [
        pytest.param(bytes.fromhex("0513C08C"), 0x7CB6, id="ab3418-get-long-status8"),
        pytest.param(b"\x05\x13\xc1" + GET_COORD_PATTERN_STATUS, 0x396B, id="snmp-get"),
        pytest.param(bytes.fromhex("0513C092077E"), 0x9A6D, id="stuffing-example"),
    ],
)
def test_worked_frames_of_the_reference(body: bytes, crc: int) -> None:
    assert crc16_x25(body) == crc
    assert fcs_bytes(body) == crc.to_bytes(2, "little")
    assert fcs_valid(body + fcs_bytes(body))


@settings(max_examples=examples(300))
@given(st.binary(max_size=300))
def test_table_matches_bitwise_definition(data: bytes) -> None:
    assert crc16_x25(data) == crc_bitwise(data)


@settings(max_examples=examples(300))
@given(st.binary(max_size=300))
def test_residue_after_data_and_fcs(data: bytes) -> None:
    assert crc16_x25_update(CRC16_X25_INIT, data + fcs_bytes(data)) == CRC16_X25_RESIDUE
    assert fcs_valid(data + fcs_bytes(data))


@settings(max_examples=examples(300))
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_chunked_update_equals_whole(head: bytes, tail: bytes) -> None:
    register = crc16_x25_update(crc16_x25_update(CRC16_X25_INIT, head), tail)
    assert register ^ 0xFFFF == crc16_x25(head + tail)


@settings(max_examples=examples(300))
@given(st.binary(min_size=1, max_size=100), st.data())
def test_any_single_bit_flip_is_detected(data: bytes, draw: st.DataObject) -> None:
    framed = bytearray(data + fcs_bytes(data))
    bit = draw.draw(st.integers(0, len(framed) * 8 - 1))
    framed[bit // 8] ^= 1 << (bit % 8)
    assert not fcs_valid(bytes(framed))


def test_fcs_valid_needs_two_octets() -> None:
    assert not fcs_valid(b"")
    assert not fcs_valid(b"\x00")
