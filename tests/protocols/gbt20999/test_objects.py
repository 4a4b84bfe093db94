"""The GB/T 20999 object catalog: value encodings, enumerations, lookup, raw carriage."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import MessageError
from agent.protocols.gbt20999 import objects
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import (
    Address,
    DataValue,
    FrameType,
    Ids,
    Message,
    decode,
    encode,
    set_request,
)
from agent.protocols.gbt20999.objects import (
    ATTRIBUTES,
    CENTER_RUN_MODE,
    CENTER_SCHEME,
    CENTER_STAGE,
    DAY_PLAN_START_TIMES,
    PHASE_TRANSITIONS,
    SCHEME_CYCLE,
    SCHEME_STAGE_TIMES,
    Bitmap,
    Chain,
    DataClass,
    DateTime,
    Encoding,
    InvalidValue,
    IPv4,
    PairChain,
    Raw,
    RunMode,
    Text,
    UInt,
    describe,
    fault_category,
    lookup,
)
from tests.protocols.gbt20999.strategies import DEVICE_IDS, examples

# ------------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    ("encoding", "value", "wire"),
    [
        pytest.param(UInt(4), 120, bytes.fromhex("00000078"), id="cycle 120 s"),
        pytest.param(
            Bitmap(8), frozenset({1, 2, 3, 4}), bytes.fromhex("000000000000000F"), id="phases 1-4"
        ),
        pytest.param(Bitmap(8), frozenset({64}), bytes.fromhex("8000000000000000"), id="phase 64"),
        pytest.param(Bitmap(1, first=0), frozenset({0, 6}), b"\x41", id="Sunday and Saturday"),
        pytest.param(Bitmap(2, first=0), frozenset({1}), b"\x00\x02", id="January"),
        pytest.param(Bitmap(4, first=1), frozenset({31}), bytes.fromhex("40000000"), id="day 31"),
        pytest.param(Chain(4), (1, 2, 0, 0), bytes.fromhex("00000201"), id="stage chain 1, 2"),
        pytest.param(Chain(6, item_size=2), (29, 31, 0), bytes.fromhex("0000001F001D"), id="times"),
        pytest.param(
            PairChain(6), ((0, 0), (6, 30), (0, 0)), bytes.fromhex("0000061E0000"), id="starts"
        ),
        pytest.param(Text(8), "测试", "测试".encode() + b"\x00\x00", id="text padded"),
        pytest.param(
            DateTime(), datetime(2021, 9, 10, 9, 42, 27), bytes.fromhex("07E5090A092A1B"), id="time"
        ),
        pytest.param(DateTime(), None, bytes(7), id="time not set"),
        pytest.param(
            IPv4(), ipaddress.IPv4Address("172.16.1.114"), bytes.fromhex("AC100172"), id="ip"
        ),
        pytest.param(Raw(2), b"\x01\x02", b"\x01\x02", id="raw"),
    ],
)
def test_encoding_examples(encoding: Encoding[Any], value: object, wire: bytes) -> None:
    assert encoding.encode(value) == wire
    assert encoding.decode(wire) == value


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        pytest.param(UInt(2), b"\x01", id="short integer"),
        pytest.param(Bitmap(8), bytes(7), id="short bitmap"),
        pytest.param(Chain(16), bytes(15), id="short chain"),
        pytest.param(Text(4), b"abcde", id="long text"),
        pytest.param(Text(4), b"\xff\xfe", id="text not UTF-8"),
        pytest.param(DateTime(), bytes.fromhex("07E50D010000 00"), id="month 13"),
        pytest.param(DateTime(), bytes(6), id="short time"),
        pytest.param(IPv4(), bytes(5), id="long address"),
        pytest.param(Raw(16), bytes(15), id="short raw"),
    ],
)
def test_value_that_does_not_fit_raises_invalid_value(encoding: Encoding[Any], wire: bytes) -> None:
    with pytest.raises(InvalidValue) as caught:
        encoding.decode(wire)
    assert isinstance(caught.value, MessageError)


@pytest.mark.parametrize(
    ("encoding", "value"),
    [
        pytest.param(UInt(1), 256, id="256 in one byte"),
        pytest.param(UInt(2), -1, id="negative"),
        pytest.param(Bitmap(8), frozenset({0}), id="phase 0"),
        pytest.param(Bitmap(8), frozenset({65}), id="phase 65"),
        pytest.param(Chain(4), (1, 2, 3, 4, 5), id="five stages in four"),
        pytest.param(Chain(4), (256,), id="stage 256"),
        pytest.param(PairChain(4), ((0, 0),) * 3, id="three pairs in two"),
        pytest.param(Text(4), "abcde", id="long text"),
        pytest.param(Raw(2), b"\x00", id="short raw"),
    ],
)
def test_value_out_of_range_is_refused_on_encode(encoding: Encoding[Any], value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        encoding.encode(value)


def test_attribute_names_itself_in_errors() -> None:
    with pytest.raises(InvalidValue, match=r"scheme\.cycle"):
        SCHEME_CYCLE.decode(b"\x00\x78")


@settings(max_examples=examples(200))
@given(st.frozensets(st.integers(1, 64)))
def test_bitmap_round_trip(items: frozenset[int]) -> None:
    assert Bitmap(8).decode(Bitmap(8).encode(items)) == items


@settings(max_examples=examples(200))
@given(st.lists(st.integers(0, 0xFFFF), max_size=16))
def test_stage_times_round_trip(times: list[int]) -> None:
    decoded = SCHEME_STAGE_TIMES.decode(SCHEME_STAGE_TIMES.encode(tuple(times)))
    assert decoded == (*times, *[0] * (16 - len(times)))


@settings(max_examples=examples(200))
@given(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 59)), max_size=48))
def test_start_times_round_trip(starts: list[tuple[int, int]]) -> None:
    decoded = DAY_PLAN_START_TIMES.decode(DAY_PLAN_START_TIMES.encode(tuple(starts)))
    assert decoded == (*starts, *[(0, 0)] * (48 - len(starts)))


@settings(max_examples=examples(200))
@given(st.datetimes(min_value=datetime(1, 1, 1, 0, 0, 1)).map(lambda t: t.replace(microsecond=0)))
def test_time_round_trip(moment: datetime) -> None:
    assert DateTime().decode(DateTime().encode(moment)) == moment


@settings(max_examples=examples(200))
@given(st.text(max_size=40).filter(lambda t: len(t.encode()) <= 128 and not t.endswith("\x00")))
def test_text_round_trip(text: str) -> None:
    assert Text(128).decode(Text(128).encode(text)) == text


# ---------------------------------------------------------------- the catalog


def test_every_attribute_sits_at_element_0_in_classes_1_to_18() -> None:
    for attribute in ATTRIBUTES.values():
        assert attribute.address.element == 0
        assert attribute.address.data_class in set(DataClass)


def test_the_phase_transition_attributes_are_4_2_3_to_26() -> None:
    assert [a.address.attribute for a in PHASE_TRANSITIONS] == list(range(3, 27))
    assert PHASE_TRANSITIONS[0].name == "phase.lose_1.colour"
    assert PHASE_TRANSITIONS[-1].name == "phase.power_on_lose_3.time"


def test_center_control_is_one_table_with_element_intersection() -> None:
    assert [str(a.at(1)) for a in (CENTER_STAGE, CENTER_SCHEME, CENTER_RUN_MODE)] == [
        "17.1.2.1",
        "17.1.3.1",
        "17.1.4.1",
    ]


def test_set_center_control_from_the_catalog_matches_the_reference_vector() -> None:
    """RVDataFusionServer's vector, built from attributes instead of bytes."""
    ids = Ids(center=5, controller=0x000C48FC, intersection=1)
    message = set_request(
        ids,
        0x13,
        [
            (CENTER_STAGE.at(1), CENTER_STAGE.encode(1)),
            (CENTER_SCHEME.at(1), CENTER_SCHEME.encode(1)),
            (CENTER_RUN_MODE.at(1), CENTER_RUN_MODE.encode(RunMode.LOCAL_FIXED_CYCLE)),
        ],
    )
    assert encode(message, framing=Framing.STREAM).hex().upper() == (
        "7E002201000500" + "0C48FC011330030105110102010102051101030101030511010401" + "21E4437D"
    )


@pytest.mark.parametrize(
    ("address", "name"),
    [
        pytest.param(Address(9, 2, 3, 1), "scheme.cycle[1]", id="table row"),
        pytest.param(Address(9, 2, 3, 0), "scheme.cycle[0]", id="table, all rows"),
        pytest.param(Address(1, 1, 0, 0), "device.manufacturer", id="scalar"),
        pytest.param(Address(2, 2, 1, 0), "basic.controller_ipv4.ip", id="scalar attribute"),
        pytest.param(Address(1, 1, 0, 1), "1.1.0.1 (unknown)", id="scalar with a row"),
        pytest.param(Address(9, 2, 0, 1), "9.2.0.1 (unknown)", id="all attributes"),
        pytest.param(Address(0x80, 1, 1, 1), "128.1.1.1 (unknown)", id="private class"),
        pytest.param(Address(17, 2, 1, 1), "17.2.1.1 (unknown)", id="no such object"),
    ],
)
def test_lookup_and_describe(address: Address, name: str) -> None:
    assert describe(address) == name
    assert (lookup(address) is None) == name.endswith("(unknown)")


def test_a_scalar_has_no_rows() -> None:
    with pytest.raises(ValueError, match="scalar"):
        objects.DEVICE_MANUFACTURER.at(1)


def test_unknown_addresses_travel_as_raw_bytes() -> None:
    """A private class and an address the catalog lacks are decoded and re-encoded intact."""
    values = (
        DataValue(index=1, address=Address(0x80, 3, 9, 2), value=bytes(range(40))),
        DataValue(index=2, address=Address(9, 2, 40, 1), value=b"\x7e\x7d\x5c"),
        DataValue(index=3, address=Address(9, 2, 3, 1), value=b"\x00\x00\x00\x78"),
    )
    message = Message(frame_type=FrameType.TRAP, ids=DEVICE_IDS, sequence=0, values=values)
    for framing in Framing:
        wire = encode(message, framing=framing)
        assert decode(wire, framing=framing).values == values
    assert [lookup(v.address) for v in values][:2] == [None, None]


# -------------------------------------------------------------- enumerations


def test_run_modes_of_the_reference() -> None:
    by_value = {mode.value: mode.name for mode in RunMode}
    assert by_value[0x13] == "CENTER_COORDINATED"
    assert by_value[0x23] == "LOCAL_COORDINATED"
    assert by_value[0x21] == "LOCAL_FIXED_CYCLE"
    assert by_value[0x31] == "YELLOW_FLASH"
    assert len(by_value) == 16


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (0x10, "conflict"),
        (0x22, "lamp"),
        (0x30, "communication"),
        (0x47, "hardware"),
        (0x50, "configuration"),
        (0x70, "response"),
        (0x07, "unknown"),
    ],
)
def test_fault_categories(code: int, category: str) -> None:
    assert fault_category(code) == category
