"""The CRC-16 of GB/T 20999-2017 (poly 0x1005, init 0, unreflected), checked on the capture."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.protocols.crc import CRC16_GBT20999_CHECK, crc16_gbt20999
from tests.protocols.gbt20999.catalog import load_catalog
from tests.protocols.gbt20999.strategies import examples

CAPTURED = [wire for item in load_catalog() for wire in (item.send, item.response)]


def crc_bitwise(data: bytes) -> int:
    """A second, bit-at-a-time implementation straight from the parameters."""
    register = 0
    for byte in data:
        register ^= byte << 8
        for _ in range(8):
            register = (register << 1) ^ 0x1005 if register & 0x8000 else register << 1
            register &= 0xFFFF
    return register


def test_check_value() -> None:
    assert crc16_gbt20999(b"123456789") == 0x5BB8 == CRC16_GBT20999_CHECK


def test_all_354_captured_frames_carry_this_crc_over_length_and_body() -> None:
    assert len(CAPTURED) == 354
    for wire in CAPTURED:
        assert crc16_gbt20999(wire[1:-3]) == int.from_bytes(wire[-3:-1], "big")


def test_no_captured_frame_has_a_crc_starting_at_the_version() -> None:
    """The coverage starts at the length field: starting at the version matches none (§1.2)."""
    assert not any(crc16_gbt20999(w[3:-3]) == int.from_bytes(w[-3:-1], "big") for w in CAPTURED)


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        pytest.param(
            bytes.fromhex("0013 0100 05 00000000 00 01 10 01 010401010000"), 0x5A91, id="query"
        ),
        pytest.param(bytes.fromhex("000C 0100 05 00000000 00 01 70"), 0xAF92, id="heartbeat"),
    ],
)
def test_worked_frames_of_the_reference(data: bytes, crc: int) -> None:
    assert crc16_gbt20999(data) == crc


@settings(max_examples=examples(300))
@given(st.binary(max_size=300))
def test_table_matches_bitwise_definition(data: bytes) -> None:
    assert crc16_gbt20999(data) == crc_bitwise(data)


@settings(max_examples=examples(300))
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_chunked_equals_whole(head: bytes, tail: bytes) -> None:
    assert crc16_gbt20999(tail, crc16_gbt20999(head)) == crc16_gbt20999(head + tail)


@settings(max_examples=examples(300))
@given(st.binary(max_size=100))
def test_leading_zeros_do_not_change_it(data: bytes) -> None:
    """Why OpenATC's CRC (length field still zero) equals a CRC over the body alone."""
    assert crc16_gbt20999(b"\x00\x00" + data) == crc16_gbt20999(data)


@settings(max_examples=examples(300))
@given(st.binary(min_size=1, max_size=100), st.data())
def test_any_single_bit_flip_is_detected(data: bytes, draw: st.DataObject) -> None:
    bit = draw.draw(st.integers(0, len(data) * 8 - 1))
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert crc16_gbt20999(bytes(flipped)) != crc16_gbt20999(data)
