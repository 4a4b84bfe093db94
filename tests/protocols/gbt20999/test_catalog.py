"""Conformance to the 177 query/reply pairs captured from a real controller (issue 8, acceptance 1).

For every pair: both frames decode and re-encode byte for byte; the agent's own
query for the item's address, with the header ids and sequence number of the
sample, is byte-identical to what the capture tool sent; the reply answers the
query; and the reply's value fits the object catalog.
"""

from __future__ import annotations

import pytest

from agent.protocols.gbt20999 import objects
from agent.protocols.gbt20999.frame import (
    Deviation,
    Frame,
    FrameDecoder,
    Framing,
    decode_datagram,
)
from agent.protocols.gbt20999.message import (
    Address,
    ErrorCode,
    FrameType,
    Message,
    decode,
    encode,
    error_codes,
    match_reply,
    query,
)
from agent.protocols.gbt20999.objects import (
    CLOCK_UTC,
    CONFLICT_PHASES,
    DEVICE_MANUFACTURER,
    GREEN_INTERVAL_TIMES,
    RUN_MODE,
    SCHEDULE_DAYS,
    SCHEDULE_MONTHS,
    SCHEDULE_WEEKDAYS,
    SCHEME_CYCLE,
    SCHEME_STAGE_CHAIN,
    SCHEME_STAGE_TIMES,
    STAGE_PHASES,
    RunMode,
    Text,
    lookup,
)
from tests.protocols.gbt20999.catalog import LABEL_ERRATA, CatalogItem, load_catalog

ITEMS = load_catalog()


def item_id(item: CatalogItem) -> str:
    attribute = lookup(item.address)
    return f"{item.code}-{attribute.name if attribute else 'not-in-device'}"


def datagram(wire: bytes) -> Message:
    return decode(wire, framing=Framing.DATAGRAM)


def test_the_catalog_holds_177_pairs_with_distinct_labels() -> None:
    assert len(ITEMS) == 177
    assert len({item.code for item in ITEMS}) == 177


@pytest.mark.parametrize("item", ITEMS, ids=item_id)
def test_both_frames_decode_and_reencode_byte_for_byte(item: CatalogItem) -> None:
    for wire in (item.send, item.response):
        message = datagram(wire)
        assert message.deviations == frozenset()
        assert decode_datagram(wire).deviations == frozenset()
        assert encode(message, framing=Framing.DATAGRAM) == wire


@pytest.mark.parametrize("item", ITEMS, ids=item_id)
def test_own_query_is_byte_identical_to_the_sample(item: CatalogItem) -> None:
    sample = datagram(item.send)
    assert sample.frame_type is FrameType.QUERY
    own = query(
        sample.ids, sample.sequence, item.address, framing=Framing.DATAGRAM, version=sample.version
    )
    assert own == item.send


@pytest.mark.parametrize("item", ITEMS, ids=item_id)
def test_reply_answers_the_query(item: CatalogItem) -> None:
    request, reply = datagram(item.send), datagram(item.response)
    # The device answers sequence 1 with sequence 2 every time (reference §1.5).
    assert match_reply(request, reply) == {Deviation.SEQUENCE_NOT_ECHOED}
    assert [value.address for value in reply.values] == [item.address]


@pytest.mark.parametrize("item", ITEMS, ids=item_id)
def test_reply_value_fits_the_object_catalog(item: CatalogItem) -> None:
    reply = datagram(item.response)
    (value,) = reply.values
    attribute = lookup(value.address)
    if reply.frame_type is FrameType.QUERY_ERROR:
        # 17.2/17.3/17.4 do not exist: the center-control table is 17.1 with
        # attributes 2-4 (reference §3). The device says so; we do not know them either.
        assert error_codes(reply) == ((value.address, ErrorCode.NOT_FOUND),)
        assert attribute is None
        return
    assert attribute is not None, f"{value.address} missing from the object catalog"
    decoded = attribute.decode(value.value)
    if isinstance(attribute.encoding, Text):
        assert len(value.value) <= attribute.size
        assert attribute.decode(attribute.encode(decoded)) == decoded
    else:
        assert len(value.value) == attribute.size
        assert attribute.encode(decoded) == value.value


def test_labels_match_the_frames_except_the_known_errata() -> None:
    mismatched = {
        item.code: datagram(item.send).values[0].address
        for item in ITEMS
        if datagram(item.send).values[0].address != item.labelled
    }
    assert mismatched == LABEL_ERRATA


def test_the_only_addresses_unknown_to_the_catalog_are_those_the_device_rejects() -> None:
    unknown = {str(item.address) for item in ITEMS if lookup(item.address) is None}
    assert unknown == {"17.2.1.1", "17.3.1.1", "17.4.1.1"}


@pytest.mark.parametrize("item", ITEMS, ids=item_id)
def test_frames_survive_stream_framing(item: CatalogItem) -> None:
    """The same messages escaped for RS-232/TCP decode to the same thing, whole or byte by byte."""
    for wire in (item.send, item.response):
        message = datagram(wire)
        stream = encode(message, framing=Framing.STREAM)
        assert decode(stream, framing=Framing.STREAM) == message
        decoder = FrameDecoder()
        events = [event for byte in stream for event in decoder.feed(bytes([byte]))]
        assert events == [Frame(body=wire[3:-3])]


def test_some_capture_crcs_need_escaping_on_a_stream() -> None:
    """Eight captured frames carry 7D or 5C in their CRC (UDP sends them raw)."""
    raw_special = [
        wire
        for item in ITEMS
        for wire in (item.send, item.response)
        if {0x7D, 0x5C} & set(wire[-3:-1])
    ]
    assert len(raw_special) == 8
    for wire in raw_special:
        stream = encode(datagram(wire), framing=Framing.STREAM)
        assert len(stream) == len(wire) + 1


# ------------------------------------------------------------- values a user reads


def _value(code: str) -> bytes:
    (item,) = [item for item in ITEMS if item.code == code]
    return datagram(item.response).values[0].value


def test_device_values_read_as_the_capture_tool_reports_them() -> None:
    assert DEVICE_MANUFACTURER.decode(_value("1.1.0.0")) == "东土正创"
    assert CLOCK_UTC.decode(_value("13.1.10.0")) is not None
    assert str(CLOCK_UTC.decode(_value("13.1.10.0"))) == "2021-09-10 09:42:27"
    assert RUN_MODE.decode(_value("13.2.2.1")) == RunMode.LOCAL_COORDINATED
    assert STAGE_PHASES.decode(_value("6.2.2.1")) == {1, 2, 3, 4}


def test_scheme_1_reads_as_a_consistent_plan() -> None:
    cycle = SCHEME_CYCLE.decode(_value("9.2.3.1"))
    chain = SCHEME_STAGE_CHAIN.decode(_value("9.2.6.1"))
    times = SCHEME_STAGE_TIMES.decode(_value("9.2.7.1"))
    assert cycle == 120
    assert chain[:5] == (1, 2, 3, 4, 0)
    assert times[:5] == (29, 31, 29, 31, 0)
    assert sum(times) == cycle


def test_phase_1_conflicts_are_exactly_the_phases_with_a_green_interval() -> None:
    """Two independent arrays agree only if item 1 is the last byte (or bit 0)."""
    conflicts = CONFLICT_PHASES.decode(_value("7.1.2.1"))
    intervals = GREEN_INTERVAL_TIMES.decode(_value("7.2.2.1"))
    assert conflicts == {5, 6, 7, 8, 10, 13, 14, 15, 16}
    assert {phase for phase, time in enumerate(intervals, start=1) if time} == conflicts


def test_schedule_1_runs_on_weekdays_all_year() -> None:
    assert SCHEDULE_WEEKDAYS.decode(_value("12.2.4.1")) == {1, 2, 3, 4, 5}  # Monday..Friday
    assert SCHEDULE_MONTHS.decode(_value("12.2.5.1")) == set(range(1, 13))
    assert SCHEDULE_DAYS.decode(_value("12.2.6.1")) == set(range(1, 32))


def test_every_attribute_the_device_answered_has_a_distinct_name() -> None:
    names = [attribute.name for attribute in objects.ATTRIBUTES.values()]
    assert len(names) == len(set(names))
    assert all(Address.parse(str(a.address)) == a.address for a in objects.ATTRIBUTES.values())
