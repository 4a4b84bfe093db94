"""The SNMP command responder without sockets: bytes in, bytes out, against a real controller."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import (
    Counter32,
    ErrorStatus,
    Gauge32,
    Integer,
    Null,
    ObjectIdentifier,
    OctetString,
    Oid,
    PduType,
    SnmpValue,
    VarBind,
    decode_message,
    oid_to_str,
)
from firmware_sim.controller import SimController
from firmware_sim.events import EventCode
from firmware_sim.mmu import FaultKind
from firmware_sim.ntcip_mib import SERVED, MibContext, find_object
from firmware_sim.ntcip_responder import (
    SERIAL_MAX_MESSAGE,
    Exchange,
    HookAction,
    NtcipResponder,
    Outcome,
    parse_alter,
    parse_ignore,
    parse_refuse,
    parse_target,
)
from firmware_sim.status import LocalFreeStatus, UnitControlStatus

from .helpers import controller, get, get_next, reply_pdu, request, run_until, set_

PATTERN_STATUS = mib.COORD_PATTERN_STATUS.instance()
SYSTEM_PATTERN = mib.SYSTEM_PATTERN_CONTROL.instance()
LOCAL_FREE = mib.LOCAL_FREE_STATUS.instance()
BACKUP_TIME = mib.UNIT_BACKUP_TIME.instance()


def value_of(responder: NtcipResponder, oid: Oid) -> SnmpValue:
    """GET one instance; it must succeed."""
    pdu = reply_pdu(responder.handle(get(oid)))
    assert pdu.error_status is ErrorStatus.NO_ERROR, pdu
    return pdu.varbinds[0].value


def int_of(responder: NtcipResponder, oid: Oid) -> int:
    """GET one INTEGER/Counter instance."""
    value = value_of(responder, oid)
    assert isinstance(value, Integer | Counter32)
    return value.value


def set_ok(responder: NtcipResponder, *pairs: tuple[Oid, SnmpValue]) -> None:
    """SET that must succeed."""
    pdu = reply_pdu(responder.handle(set_(*pairs)))
    assert pdu.error_status is ErrorStatus.NO_ERROR, pdu


# ------------------------------------------------------------------------- Get


def test_get_answers_status_and_configuration_in_ntcip_units(responder: NtcipResponder) -> None:
    oids = (
        PATTERN_STATUS,
        mib.PHASE_YELLOW_CHANGE.instance(2),  # 4.5 s -> 45 tenths
        mib.PHASE_WALK.instance(2),  # 7 s -> 7 seconds
        mib.PHASE_RED_CLEAR.instance(4),  # 2.0 s -> 20 tenths
        mib.PHASE_MINIMUM_GREEN.instance(2),
        mib.PHASE_MAXIMUM_1.instance(2),
        mib.PATTERN_CYCLE_TIME.instance(1),
        mib.PATTERN_OFFSET_TIME.instance(1),
        mib.SPLIT_TIME.instance(1, 2),
        mib.SPLIT_COORD_PHASE.instance(1, 2),
    )
    pdu = reply_pdu(responder.handle(get(*oids, request_id=77)))
    assert pdu.request_id == 77
    assert pdu.error_status is ErrorStatus.NO_ERROR
    assert [vb.oid for vb in pdu.varbinds] == list(oids)
    assert [vb.value for vb in pdu.varbinds] == [
        Integer(v) for v in (1, 45, 7, 20, 12, 50, 120, 30, 52, 1)
    ]


def test_status_varbinds_of_one_get_come_from_one_snapshot(responder: NtcipResponder) -> None:
    groups = [mib.PHASE_STATUS_GROUP_REDS, mib.PHASE_STATUS_GROUP_YELLOWS]
    oids = [g.instance(1) for g in (*groups, mib.PHASE_STATUS_GROUP_GREENS)]
    for _ in range(50):
        responder.controller.step(0.7)
        reds, yellows, greens = (
            vb.value for vb in reply_pdu(responder.handle(get(*oids))).varbinds
        )
        assert isinstance(reds, Integer)
        assert isinstance(yellows, Integer)
        assert isinstance(greens, Integer)
        # Every phase in use shows exactly one colour.
        assert reds.value ^ yellows.value ^ greens.value == 0xFF
        assert not (reds.value & greens.value)


def test_global_time_is_a_counter_of_controller_seconds(responder: NtcipResponder) -> None:
    value = value_of(responder, mib.GLOBAL_TIME.instance())
    assert value == Counter32(responder.controller.global_time)


@pytest.mark.parametrize(
    ("position", "oids"),
    [
        pytest.param(2, ("1.3.6.1.4.1.1206.4.2.1.4.10.0", "1.3.6.1.4.1.1206.99.0"), id="unknown"),
        pytest.param(1, ("1.3.6.1.4.1.1206.4.2.1.1.2.1.2.17",), id="row-past-table"),
        pytest.param(1, ("1.3.6.1.4.1.1206.4.2.1.1.2.1.2.0",), id="row-zero"),
        pytest.param(1, ("1.3.6.1.4.1.1206.4.2.1.4.10.1",), id="scalar-not-dot-0"),
        pytest.param(1, ("1.3.6.1.4.1.1206.4.2.1.4.10",), id="object-without-instance"),
        pytest.param(1, ("1.3.6.1.4.1.1206.4.2.1.1.2.1.11.1",), id="column-not-served"),
        pytest.param(3, ("1.3.6.1.4.1.1206.4.2.1.4.10.0",) * 2 + ("1.3.6",), id="third"),
    ],
)
def test_get_of_an_unknown_instance_is_no_such_name_with_its_index(
    responder: NtcipResponder, position: int, oids: tuple[str, ...]
) -> None:
    request_oids = tuple(tuple(int(a) for a in text.split(".")) for text in oids)
    pdu = reply_pdu(responder.handle(get(*request_oids)))
    assert pdu.error_status is ErrorStatus.NO_SUCH_NAME
    assert pdu.error_index == position
    assert [vb.oid for vb in pdu.varbinds] == list(request_oids)
    assert all(vb.value == Null() for vb in pdu.varbinds)


# ---------------------------------------------------------------------- GetNext


def test_get_next_steps_into_objects_columns_and_rows(responder: NtcipResponder) -> None:
    cases = {
        mib.ASC: mib.MAX_PHASES.instance(),
        mib.PHASE_WALK.oid: mib.PHASE_WALK.instance(1),
        mib.PHASE_WALK.instance(1): mib.PHASE_WALK.instance(2),
        mib.PHASE_WALK.instance(16): mib.PHASE_PEDESTRIAN_CLEAR.instance(1),
        (*mib.PHASE_WALK.instance(3), 5): mib.PHASE_WALK.instance(4),
        mib.SPLIT_TIME.instance(1, 16): mib.SPLIT_TIME.instance(2, 1),
        mib.COORD_PATTERN_STATUS.oid: PATTERN_STATUS,
        (1, 3, 6): mib.MAX_PHASES.instance(),
    }
    for asked, expected in cases.items():
        pdu = reply_pdu(responder.handle(get_next(asked)))
        assert pdu.error_status is ErrorStatus.NO_ERROR
        assert pdu.varbinds[0].oid == expected, oid_to_str(asked)


def test_get_next_past_the_last_object_is_no_such_name(responder: NtcipResponder) -> None:
    last = SERVED[-1]
    ctx = MibContext.live(responder.controller, responder.kept)
    last_instance = (*last.oid, *last.rows(ctx)[-1])
    for asked in (last_instance, (1, 3, 6, 1, 4, 1, 1207), (2, 1)):
        pdu = reply_pdu(responder.handle(get_next(asked)))
        assert pdu.error_status is ErrorStatus.NO_SUCH_NAME
        assert pdu.error_index == 1


def test_a_walk_visits_every_instance_once_in_increasing_order(responder: NtcipResponder) -> None:
    seen: list[Oid] = []
    current: Oid = (1, 3)
    for _ in range(20_000):
        pdu = reply_pdu(responder.handle(get_next(current)))
        if pdu.error_status is ErrorStatus.NO_SUCH_NAME:
            break
        assert pdu.error_status is ErrorStatus.NO_ERROR
        current = pdu.varbinds[0].oid
        assert not seen or current > seen[-1], oid_to_str(current)
        seen.append(current)
    else:
        pytest.fail("the walk did not end")
    objects = {find_object(o)[0].mib.name for o in seen}  # type: ignore[index]
    assert objects == {served.mib.name for served in SERVED}
    # Every instance a walk returns can be read with a Get.
    for instance in seen[::7]:
        assert reply_pdu(responder.handle(get(instance))).error_status is ErrorStatus.NO_ERROR


def test_served_objects_are_sorted_and_never_prefixes_of_each_other() -> None:
    oids = [served.oid for served in SERVED]
    assert oids == sorted(oids)
    for a, b in itertools.pairwise(oids):
        assert b[: len(a)] != a, f"{oid_to_str(a)} is a prefix of {oid_to_str(b)}"


def test_get_next_of_several_varbinds_answers_each(responder: NtcipResponder) -> None:
    pdu = reply_pdu(responder.handle(get_next(mib.PHASE_WALK.oid, mib.PHASE_RING.oid)))
    assert [vb.oid for vb in pdu.varbinds] == [
        mib.PHASE_WALK.instance(1),
        mib.PHASE_RING.instance(1),
    ]
    assert pdu.varbinds[1].value == Integer(1)


# -------------------------------------------------------------------------- Set


@pytest.mark.parametrize(
    ("obj", "index", "wire", "attribute", "stored"),
    [
        pytest.param(mib.PHASE_WALK, (2,), 9, "walk_ds", 90, id="walk-seconds"),
        pytest.param(mib.PHASE_PEDESTRIAN_CLEAR, (2,), 20, "ped_clear_ds", 200, id="pedclear-s"),
        pytest.param(mib.PHASE_MINIMUM_GREEN, (2,), 15, "min_green_ds", 150, id="mingreen-s"),
        pytest.param(mib.PHASE_MAXIMUM_1, (2,), 55, "max_green_ds", 550, id="max1-seconds"),
        pytest.param(mib.PHASE_YELLOW_CHANGE, (2,), 40, "yellow_ds", 40, id="yellow-tenths"),
        pytest.param(mib.PHASE_RED_CLEAR, (2,), 25, "red_clear_ds", 25, id="redclear-tenths"),
        pytest.param(mib.PHASE_RING, (9,), 1, "ring", 1, id="ring"),
    ],
)
def test_phase_writes_convert_ntcip_units_to_the_database(
    responder: NtcipResponder,
    obj: mib.MibObject,
    index: tuple[int, ...],
    wire: int,
    attribute: str,
    stored: int,
) -> None:
    set_ok(responder, (obj.instance(*index), Integer(wire)))
    assert getattr(responder.controller.database.phases[index[0]], attribute) == stored
    assert int_of(responder, obj.instance(*index)) == wire


def test_pattern_split_and_unit_writes_convert_units(responder: NtcipResponder) -> None:
    db = responder.controller.database
    set_ok(
        responder,
        (mib.PATTERN_CYCLE_TIME.instance(5), Integer(100)),
        (mib.PATTERN_OFFSET_TIME.instance(5), Integer(25)),
        (mib.PATTERN_SPLIT_NUMBER.instance(5), Integer(4)),
        (mib.SPLIT_TIME.instance(4, 3), Integer(13)),
        (mib.SPLIT_MODE.instance(4, 3), Integer(7)),
        (mib.UNIT_RED_REVERT.instance(), Integer(35)),
        (mib.UNIT_START_UP_FLASH.instance(), Integer(8)),
    )
    assert (db.patterns[5].cycle_ds, db.patterns[5].offset_ds, db.patterns[5].split) == (
        1000,
        250,
        4,
    )
    split = db.splits[(4, 3)]
    assert (split.time_ds, int(split.mode)) == (130, 7)
    assert (db.unit.red_revert_ds, db.unit.startup_flash_s) == (35, 8)
    assert int_of(responder, mib.PATTERN_CYCLE_TIME.instance(5)) == 100
    assert int_of(responder, mib.SPLIT_TIME.instance(4, 3)) == 13


def test_seconds_objects_read_whole_seconds_of_tenths(responder: NtcipResponder) -> None:
    responder.controller.database.set_phase(2, walk_ds=75)
    assert int_of(responder, mib.PHASE_WALK.instance(2)) == 7


def test_sequence_concurrency_and_channel_writes(responder: NtcipResponder) -> None:
    db = responder.controller.database
    set_ok(
        responder,
        (mib.SEQUENCE_DATA.instance(3, 1), OctetString(bytes([2, 1, 4, 3]))),
        (mib.PHASE_CONCURRENCY.instance(9), OctetString(bytes([5, 6]))),
        (mib.CHANNEL_CONTROL_SOURCE.instance(9), Integer(1)),
        (mib.CHANNEL_CONTROL_TYPE.instance(9), Integer(2)),
    )
    assert db.sequences[3].rings[0] == (2, 1, 4, 3)
    assert db.phases[9].concurrency == (5, 6)
    assert (db.channels[9].source, int(db.channels[9].kind)) == (1, 2)
    assert value_of(responder, mib.SEQUENCE_DATA.instance(1, 2)) == OctetString(bytes([5, 6, 7, 8]))


def test_time_base_day_plan_and_schedule_writes(responder: NtcipResponder) -> None:
    db = responder.controller.database
    action_oid = mib.TIMEBASE_ASC_ACTION_NUMBER.instance(7)
    set_ok(
        responder,
        (mib.TIMEBASE_ASC_PATTERN.instance(7), Integer(3)),
        (mib.DAY_PLAN_HOUR.instance(5, 1), Integer(6)),
        (mib.DAY_PLAN_MINUTE.instance(5, 1), Integer(45)),
        (mib.DAY_PLAN_ACTION_NUMBER_OID.instance(5, 1), ObjectIdentifier(action_oid)),
        (mib.TIME_BASE_SCHEDULE_DAY.instance(9), Integer(0x7E)),
        (mib.TIME_BASE_SCHEDULE_MONTH.instance(9), Integer(0x1FFE)),
        (mib.TIME_BASE_SCHEDULE_DATE.instance(9), Integer(0xFFFFFFFE)),
        (mib.TIME_BASE_SCHEDULE_DAY_PLAN.instance(9), Integer(5)),
    )
    assert db.actions[7].pattern == 3
    event = db.day_plan_events[(5, 1)]
    assert (event.hour, event.minute, event.action) == (6, 45, 7)
    row = db.schedule[9]
    assert (row.days, row.months, row.dates, row.day_plan) == (0x7E, 0x1FFE, 0xFFFFFFFE, 5)
    assert value_of(responder, mib.DAY_PLAN_ACTION_NUMBER_OID.instance(5, 1)) == (
        ObjectIdentifier(action_oid)
    )
    # An unused event reads the null OID, an unused schedule row all zeros.
    assert value_of(responder, mib.DAY_PLAN_ACTION_NUMBER_OID.instance(16, 16)) == (
        ObjectIdentifier((0, 0))
    )
    assert int_of(responder, mib.TIME_BASE_SCHEDULE_DAY.instance(16)) == 0


def test_global_time_set_moves_the_controller_clock(responder: NtcipResponder) -> None:
    ctrl = responder.controller
    set_ok(responder, (mib.GLOBAL_TIME.instance(), Counter32(1_800_000_000)))
    assert ctrl.global_time == 1_800_000_000
    assert ctrl.events.all()[-1].code == EventCode.CONTROLLER_CLOCK_UPDATED
    # net-snmp's snmpset has no Counter type: its Gauge ('u') is accepted as well.
    set_ok(responder, (mib.GLOBAL_TIME.instance(), Gauge32(1_800_000_100)))
    assert ctrl.global_time == 1_800_000_100


@pytest.mark.parametrize(
    ("oid", "value", "why"),
    [
        (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(29), "yellow below 3.0 s"),
        (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(256), "outside the object's range"),
        (mib.PHASE_MINIMUM_GREEN.instance(2), Integer(0), "min green of 0"),
        (mib.PHASE_RING.instance(2), Integer(5), "ring 5"),
        (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(-1), "negative"),
        (mib.PHASE_YELLOW_CHANGE.instance(2), OctetString(b"\x2d"), "an OCTET STRING"),
        (mib.GLOBAL_TIME.instance(), Integer(1_800_000_000), "INTEGER for a Counter"),
        (mib.SPLIT_MODE.instance(1, 1), Integer(8), "not a split mode"),
        (mib.SEQUENCE_DATA.instance(1, 1), OctetString(bytes([1, 2, 1])), "repeated phase"),
        (mib.PHASE_CONCURRENCY.instance(1), OctetString(bytes([17])), "phase 17"),
        (mib.PATTERN_SPLIT_NUMBER.instance(1), Integer(0), "split plan 0"),
        (mib.COORD_OPERATIONAL_MODE.instance(), Integer(1), "manual mode"),
        (mib.GLOBAL_DAYLIGHT_SAVING.instance(), Integer(3), "US DST"),
        (
            mib.DAY_PLAN_ACTION_NUMBER_OID.instance(1, 1),
            ObjectIdentifier((1, 3, 6, 1, 2, 1)),
            "not an action OID",
        ),
        (mib.SYSTEM_PATTERN_CONTROL.instance(), Integer(256), "pattern 256"),
    ],
)
def test_a_value_the_controller_refuses_is_bad_value(
    responder: NtcipResponder, oid: Oid, value: SnmpValue, why: str
) -> None:
    before = responder.controller.database.revision
    pdu = reply_pdu(responder.handle(set_((mib.UNIT_CONTROL.instance(), Integer(0)), (oid, value))))
    assert pdu.error_status is ErrorStatus.BAD_VALUE, why
    assert pdu.error_index == 2
    assert responder.controller.database.revision == before


@pytest.mark.parametrize(
    "obj",
    [
        mib.COORD_PATTERN_STATUS,
        mib.LOCAL_FREE_STATUS,
        mib.UNIT_CONTROL_STATUS,
        mib.MAX_PHASES,
        mib.CONTROLLER_STANDARD_TIME_ZONE,
    ],
    ids=lambda obj: obj.name,
)
def test_a_set_of_a_read_only_object_is_read_only(
    responder: NtcipResponder, obj: mib.MibObject
) -> None:
    pdu = reply_pdu(responder.handle(set_((obj.instance(), Integer(1)))))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.READ_ONLY, 1)


def test_read_only_columns_too(responder: NtcipResponder) -> None:
    pdu = reply_pdu(
        responder.handle(
            set_(
                (mib.PHASE_WALK.instance(2), Integer(8)),
                (mib.PHASE_STATUS_GROUP_GREENS.instance(1), Integer(1)),
            )
        )
    )
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.READ_ONLY, 2)
    assert responder.controller.database.phases[2].walk_ds == 70


def test_a_set_of_an_unknown_instance_is_no_such_name(responder: NtcipResponder) -> None:
    pdu = reply_pdu(
        responder.handle(
            set_(
                (mib.PHASE_WALK.instance(2), Integer(8)),
                (mib.PHASE_WALK.instance(17), Integer(8)),
            )
        )
    )
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.NO_SUCH_NAME, 2)


def test_a_set_is_atomic_across_its_varbinds(responder: NtcipResponder) -> None:
    ctrl = responder.controller
    db = ctrl.database
    before = (db.revision, db.phases[2].yellow_ds, db.patterns[1].cycle_ds)
    # Every varbind is valid on its own but the last, which the database refuses.
    data = set_(
        (SYSTEM_PATTERN, Integer(2)),
        (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(50)),
        (mib.PATTERN_CYCLE_TIME.instance(1), Integer(100)),
        (mib.UNIT_BACKUP_TIME.instance(), Integer(30)),
        (mib.PHASE_RED_CLEAR.instance(2), Integer(300)),
    )
    pdu = reply_pdu(responder.handle(data))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.BAD_VALUE, 5)
    assert (db.revision, db.phases[2].yellow_ds, db.patterns[1].cycle_ds) == before
    assert ctrl.system_pattern_control == 0
    assert ctrl.status().unit_backup_time == 0
    # The same Set without the bad varbind applies completely, echoing the request.
    good = set_(*[(vb.oid, vb.value) for vb in decode_message(data).pdu.varbinds[:4]])
    pdu = reply_pdu(responder.handle(good))
    assert pdu.error_status is ErrorStatus.NO_ERROR
    assert pdu.varbinds == decode_message(good).pdu.varbinds
    assert (db.phases[2].yellow_ds, db.patterns[1].cycle_ds) == (50, 1000)
    assert ctrl.system_pattern_control == 2
    assert ctrl.status().unit_backup_time == 30


def test_writes_later_in_one_set_see_the_earlier_ones(responder: NtcipResponder) -> None:
    # Two writes to one row: both land (the dry run chains them like the real run).
    set_ok(
        responder,
        (mib.DAY_PLAN_HOUR.instance(3, 2), Integer(5)),
        (mib.DAY_PLAN_MINUTE.instance(3, 2), Integer(15)),
    )
    row = responder.controller.database.day_plan_events[(3, 2)]
    assert (row.hour, row.minute) == (5, 15)


# ----------------------------------------------------------------------- tooBig


def test_a_response_over_the_size_limit_is_too_big(responder: NtcipResponder) -> None:
    # The request fits in 484 octets; the answer (a Counter per varbind) does not.
    oids = [mib.GLOBAL_TIME.instance()] * 22
    data = get(*oids)
    assert len(data) <= SERIAL_MAX_MESSAGE
    assert reply_pdu(responder.handle(data)).error_status is ErrorStatus.NO_ERROR
    pdu = reply_pdu(responder.handle(data, max_size=SERIAL_MAX_MESSAGE))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.TOO_BIG, 0)
    assert [vb.oid for vb in pdu.varbinds] == oids
    assert responder.stats.too_big == 1


def test_a_set_too_big_to_answer_is_not_applied(responder: NtcipResponder) -> None:
    # A SetResponse echoes the request, so it is too big exactly when the request is;
    # the tooBig answer would be as big, so there is no answer at all.
    pairs = [(mib.PHASE_WALK.instance(p), Integer(9)) for p in range(1, 17)] * 2
    assert responder.handle(set_(*pairs), max_size=SERIAL_MAX_MESSAGE) is None
    assert responder.controller.database.phases[2].walk_ds == 70
    assert responder.stats.too_big == 1


def test_a_request_whose_too_big_answer_is_too_big_gets_no_answer(
    responder: NtcipResponder,
) -> None:
    oids = [mib.PHASE_WALK.instance(p) for p in range(1, 17)] * 4
    assert responder.handle(get(*oids), max_size=SERIAL_MAX_MESSAGE) is None


# ---------------------------------------------------------- community and junk


def test_a_wrong_community_gets_no_answer_and_is_counted(responder: NtcipResponder) -> None:
    seen: list[Exchange] = []
    responder = NtcipResponder(responder.controller, observer=seen.append)
    assert responder.handle(get(PATTERN_STATUS, community=b"private")) is None
    assert responder.handle(set_((SYSTEM_PATTERN, Integer(2)))) is not None
    assert responder.handle(set_((SYSTEM_PATTERN, Integer(3)))) is not None
    assert responder.stats.bad_community == 1
    assert [e.outcome for e in seen] == [Outcome.BAD_COMMUNITY, *[Outcome.ANSWERED] * 2]


def test_a_set_with_a_wrong_community_changes_nothing(ctrl: SimController) -> None:
    responder = NtcipResponder(ctrl, community=b"secret")
    data = request(
        PduType.SET_REQUEST,
        [VarBind(oid=SYSTEM_PATTERN, value=Integer(2))],
        community=b"public",
    )
    assert responder.handle(data) is None
    assert ctrl.system_pattern_control == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"hello",
        bytes.fromhex("30 03 02 01 01"),  # SNMPv2c version
        bytes.fromhex("30 2b 02 01 00 04 06 70 75 62 6c 69 63 a0 1e 02"),  # truncated
    ],
)
def test_malformed_messages_get_no_answer(responder: NtcipResponder, data: bytes) -> None:
    assert responder.handle(data) is None
    assert responder.stats.malformed == 1


def test_a_get_response_is_not_answered(responder: NtcipResponder) -> None:
    data = request(PduType.GET_RESPONSE, [VarBind(oid=PATTERN_STATUS)])
    assert responder.handle(data) is None
    assert responder.stats.unsupported == 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_get_no_answer_or_a_valid_one(responder: NtcipResponder, data: bytes) -> None:
    reply = responder.handle(data)
    if reply is not None:
        decode_message(reply)


_arcs = st.integers(min_value=0, max_value=30)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from([PduType.GET_REQUEST, PduType.GET_NEXT_REQUEST, PduType.SET_REQUEST]),
    suffixes=st.lists(st.lists(_arcs, max_size=4), min_size=1, max_size=5),
    base=st.sampled_from([served.oid for served in SERVED] + [mib.ASC, mib.GLOBAL]),
    value=st.one_of(
        st.integers(min_value=-(2**31), max_value=2**32 - 1).map(Integer),
        st.binary(max_size=20).map(OctetString),
        st.integers(min_value=0, max_value=2**32 - 1).map(Counter32),
    ),
)
def test_any_request_on_served_objects_is_answered_with_a_valid_response(
    responder: NtcipResponder,
    kind: PduType,
    suffixes: list[list[int]],
    base: Oid,
    value: SnmpValue,
) -> None:
    binds = [VarBind(oid=(*base, *s), value=value) for s in suffixes]
    if kind is not PduType.SET_REQUEST:
        binds = [VarBind(oid=b.oid) for b in binds]
    pdu = reply_pdu(responder.handle(request(kind, binds)))
    if pdu.error_status is not ErrorStatus.NO_ERROR:
        assert 1 <= pdu.error_index <= len(binds) or pdu.error_status is ErrorStatus.TOO_BIG


# ------------------------------------------------------- system control, backup


SYSTEM_CONTROL_WRITES = [
    pytest.param((SYSTEM_PATTERN, Integer(2)), id="systemPatternControl"),
    pytest.param((mib.SYSTEM_SYNC_CONTROL.instance(), Integer(255)), id="systemSyncControl"),
    pytest.param((mib.PHASE_CONTROL_GROUP_HOLD.instance(1), Integer(0x22)), id="phaseHold"),
    pytest.param((mib.PHASE_CONTROL_GROUP_PHASE_OMIT.instance(1), Integer(1)), id="phaseOmit"),
    pytest.param((mib.PHASE_CONTROL_GROUP_PED_CALL.instance(2), Integer(1)), id="pedCall"),
    pytest.param((mib.RING_CONTROL_GROUP_FORCE_OFF.instance(1), Integer(1)), id="ringForceOff"),
    pytest.param((mib.UNIT_CONTROL.instance(), Integer(4)), id="unitControl"),
]


def test_every_system_control_object_served_is_tested() -> None:
    served = {s.mib.name for s in SERVED if s.mib in mib.SYSTEM_CONTROL_OBJECTS}
    tested = {find_object(p.values[0][0])[0].mib.name for p in SYSTEM_CONTROL_WRITES}  # type: ignore[index]
    groups = {n for n in served if "ControlGroup" in n}
    assert served - groups <= tested
    assert tested & groups


@pytest.mark.parametrize("write", SYSTEM_CONTROL_WRITES)
def test_a_system_control_write_restarts_the_backup_timer(
    responder: NtcipResponder, write: tuple[Oid, SnmpValue]
) -> None:
    ctrl = responder.controller
    set_ok(responder, (BACKUP_TIME, Integer(60)))
    ctrl.step(35)
    assert ctrl.status().backup_remaining_ds == 250
    set_ok(responder, write)
    assert ctrl.status().backup_remaining_ds == 600
    assert reply_pdu(responder.handle(get(write[0]))).varbinds[0].value == write[1]


def test_a_configuration_write_does_not_restart_the_backup_timer(
    responder: NtcipResponder,
) -> None:
    ctrl = responder.controller
    set_ok(responder, (BACKUP_TIME, Integer(60)))
    ctrl.step(35)
    set_ok(responder, (mib.PHASE_WALK.instance(2), Integer(8)))
    assert ctrl.status().backup_remaining_ds == 250


def test_backup_mode_resets_the_system_control_objects(responder: NtcipResponder) -> None:
    ctrl = responder.controller
    hold = mib.PHASE_CONTROL_GROUP_HOLD.instance(1)
    set_ok(
        responder,
        (BACKUP_TIME, Integer(20)),
        (SYSTEM_PATTERN, Integer(2)),
        (hold, Integer(0x22)),
        (mib.PHASE_PASSAGE.instance(2), Integer(25)),
    )
    assert int_of(responder, mib.UNIT_CONTROL_STATUS.instance()) == UnitControlStatus.SYSTEM_CONTROL
    ctrl.step(21)
    assert int_of(responder, mib.UNIT_CONTROL_STATUS.instance()) == UnitControlStatus.BACKUP_MODE
    assert int_of(responder, SYSTEM_PATTERN) == 0
    assert int_of(responder, hold) == 0
    assert int_of(responder, mib.PHASE_PASSAGE.instance(2)) == 25  # not a control object
    # A new system-control write ends backup mode (systemPatternControl is 0: standby);
    # the values reset by backup mode stay reset.
    set_ok(responder, (mib.PHASE_CONTROL_GROUP_FORCE_OFF.instance(1), Integer(1)))
    status = int_of(responder, mib.UNIT_CONTROL_STATUS.instance())
    assert status == UnitControlStatus.SYSTEM_STANDBY
    assert int_of(responder, hold) == 0


# ------------------------------------------------------------ pattern selection


def test_system_pattern_control_changes_the_pattern_at_the_cycle_boundary(
    responder: NtcipResponder,
) -> None:
    ctrl = responder.controller
    run_until(ctrl, lambda c: c.engine.position_ds == 0, limit_s=200)
    ctrl.step(10)
    program = ctrl.engine.program
    assert program is not None
    remaining_ds = program.length_ds - ctrl.engine.position_ds
    set_ok(responder, (SYSTEM_PATTERN, Integer(2)))
    waited_ds = 0
    while int_of(responder, PATTERN_STATUS) == 1:
        ctrl.step_ms(100)
        waited_ds += 1
        assert waited_ds <= remaining_ds, "pattern 2 did not start at the boundary"
    assert waited_ds == remaining_ds
    assert int_of(responder, mib.UNIT_CONTROL_STATUS.instance()) == UnitControlStatus.SYSTEM_CONTROL
    changes = [e for e in ctrl.events.all() if e.code == EventCode.COORD_PATTERN_CHANGE]
    assert changes[-1].param == 2


@pytest.mark.parametrize(
    ("writes", "status"),
    [
        pytest.param(
            [(mib.SPLIT_TIME.instance(2, 2), Integer(5))],
            LocalFreeStatus.BAD_PLAN,
            id="split-below-phase-minimum",
        ),
        pytest.param(
            [(mib.PATTERN_CYCLE_TIME.instance(2), Integer(80))],
            LocalFreeStatus.SPLIT_OVERRUN,
            id="splits-longer-than-cycle",
        ),
        pytest.param(
            [(mib.PATTERN_CYCLE_TIME.instance(2), Integer(25))],
            LocalFreeStatus.BAD_CYCLE_TIME,
            id="cycle-below-30s",
        ),
        pytest.param(
            [(mib.PATTERN_OFFSET_TIME.instance(2), Integer(95))],
            LocalFreeStatus.BAD_PLAN,
            id="offset-not-below-cycle",
        ),
    ],
)
def test_an_unworkable_pattern_written_by_set_runs_free_when_selected(
    responder: NtcipResponder, writes: list[tuple[Oid, SnmpValue]], status: LocalFreeStatus
) -> None:
    ctrl = responder.controller
    set_ok(responder, *writes)  # accepted: the controller judges a pattern when selected
    assert int_of(responder, PATTERN_STATUS) == 1
    set_ok(responder, (SYSTEM_PATTERN, Integer(2)))
    run_until(ctrl, lambda c: c.status().local_free_status is status, limit_s=300)
    assert int_of(responder, LOCAL_FREE) == status
    assert int_of(responder, PATTERN_STATUS) == mib.PATTERN_FREE
    assert int_of(responder, mib.UNIT_ALARM_STATUS_1.instance()) & (1 << 6)  # local free


# ------------------------------------------------------------------------ hooks


def test_parse_target_takes_names_instances_and_oids() -> None:
    assert parse_target("systemPatternControl") == mib.SYSTEM_PATTERN_CONTROL.oid
    assert parse_target("phaseYellowChange.2") == mib.PHASE_YELLOW_CHANGE.instance(2)
    assert parse_target("splitTime.1.2") == mib.SPLIT_TIME.instance(1, 2)
    assert parse_target(".1.3.6.1.4.1.1206.4.2.1.4.14") == mib.SYSTEM_PATTERN_CONTROL.oid
    for bad in ("", "noSuchObject", "phaseWalk.x", "1.3.x"):
        with pytest.raises(ValueError, match=r"."):
            parse_target(bad)


def test_parse_hooks() -> None:
    refuse = parse_refuse("systemPatternControl:badValue")
    assert (refuse.action, refuse.status) == (HookAction.REFUSE, ErrorStatus.BAD_VALUE)
    assert parse_refuse("systemPatternControl").status is ErrorStatus.GEN_ERR
    alter = parse_alter("patternCycleTime=-5")
    assert (alter.action, alter.delta, alter.prefix) == (
        HookAction.ALTER,
        -5,
        mib.PATTERN_CYCLE_TIME.oid,
    )
    assert parse_ignore("unitBackupTime").action is HookAction.IGNORE
    for parse, text in (
        (parse_refuse, "systemPatternControl:tooBig"),
        (parse_alter, "systemPatternControl"),
        (parse_alter, "systemPatternControl=x"),
        (parse_alter, "systemPatternControl=0"),
        (parse_ignore, "nope"),
    ):
        with pytest.raises(ValueError, match=r"."):
            parse(text)


@pytest.mark.parametrize("status", ["genErr", "badValue", "readOnly", "noSuchName"])
def test_refuse_hook_answers_the_status_and_writes_nothing(
    ctrl: SimController, status: str
) -> None:
    responder = NtcipResponder(ctrl, hooks=[parse_refuse(f"systemPatternControl:{status}")])
    data = set_((mib.UNIT_BACKUP_TIME.instance(), Integer(30)), (SYSTEM_PATTERN, Integer(2)))
    pdu = reply_pdu(responder.handle(data))
    assert pdu.error_status.name.replace("_", "").lower() == status.lower()
    assert pdu.error_index == 2
    assert ctrl.system_pattern_control == 0
    assert ctrl.status().unit_backup_time == 0
    assert responder.stats.sets_applied == 0


def test_the_first_bad_varbind_is_reported_whatever_makes_it_bad(ctrl: SimController) -> None:
    responder = NtcipResponder(ctrl, hooks=[parse_refuse("systemPatternControl")])
    bad_first = set_(
        (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(20)), (SYSTEM_PATTERN, Integer(2))
    )
    pdu = reply_pdu(responder.handle(bad_first))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.BAD_VALUE, 1)
    refused_first = set_(
        (SYSTEM_PATTERN, Integer(2)), (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(20))
    )
    pdu = reply_pdu(responder.handle(refused_first))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.GEN_ERR, 1)


def test_alter_hook_accepts_but_stores_another_value(ctrl: SimController) -> None:
    responder = NtcipResponder(ctrl, hooks=[parse_alter("systemPatternControl=+1")])
    pdu = reply_pdu(responder.handle(set_((SYSTEM_PATTERN, Integer(2)))))
    assert pdu.error_status is ErrorStatus.NO_ERROR
    assert pdu.varbinds[0].value == Integer(2)  # the answer echoes what was asked
    assert int_of(responder, SYSTEM_PATTERN) == 3  # the read-back differs
    assert responder.stats.hooks_fired == 1


def test_alter_hook_clamps_and_reports_an_unstorable_value_as_gen_err(
    ctrl: SimController,
) -> None:
    responder = NtcipResponder(
        ctrl, hooks=[parse_alter("phaseYellowChange.2=-20"), parse_alter("patternCycleTime=+9")]
    )
    pdu = reply_pdu(responder.handle(set_((mib.PHASE_YELLOW_CHANGE.instance(2), Integer(40)))))
    assert (pdu.error_status, pdu.error_index) == (ErrorStatus.GEN_ERR, 1)  # 2.0 s refused
    set_ok(responder, (mib.PATTERN_CYCLE_TIME.instance(1), Integer(250)))
    assert int_of(responder, mib.PATTERN_CYCLE_TIME.instance(1)) == 255  # clamped


def test_ignore_hook_accepts_and_stores_nothing(ctrl: SimController) -> None:
    responder = NtcipResponder(ctrl, hooks=[parse_ignore("phaseYellowChange.2")])
    set_ok(
        responder,
        (mib.PHASE_YELLOW_CHANGE.instance(2), Integer(50)),
        (mib.PHASE_YELLOW_CHANGE.instance(6), Integer(50)),
    )
    assert int_of(responder, mib.PHASE_YELLOW_CHANGE.instance(2)) == 45
    assert int_of(responder, mib.PHASE_YELLOW_CHANGE.instance(6)) == 50


def test_hooks_do_not_touch_reads_or_other_objects(ctrl: SimController) -> None:
    responder = NtcipResponder(ctrl, hooks=[parse_refuse("systemPatternControl")])
    assert int_of(responder, SYSTEM_PATTERN) == 0
    set_ok(responder, (mib.SYSTEM_SYNC_CONTROL.instance(), Integer(255)))


def test_kept_objects_read_back_what_was_written(responder: NtcipResponder) -> None:
    writes = [
        (mib.PHASE_PASSAGE.instance(3), Integer(25)),
        (mib.PHASE_MAXIMUM_2.instance(3), Integer(40)),
        (mib.COORD_MAXIMUM_MODE.instance(), Integer(3)),
        (mib.TIMEBASE_ASC_AUXILLARY_FUNCTION.instance(2), Integer(1)),
        (mib.PHASE_OPTIONS.instance(2), Integer(0x0040)),
    ]
    set_ok(responder, *writes)
    for oid, value in writes[:-1]:
        assert value_of(responder, oid) == value
    # phaseOptions bit 0 (enabled) follows phaseRing.
    assert int_of(responder, mib.PHASE_OPTIONS.instance(2)) == 0x0041
    assert int_of(responder, mib.PHASE_OPTIONS.instance(12)) == 0


def test_status_objects_follow_an_mmu_fault() -> None:
    ctrl = controller()
    run_until(ctrl, lambda c: c.status().coord_pattern_status == 1, limit_s=600)
    responder = NtcipResponder(ctrl)
    assert int_of(responder, mib.UNIT_FLASH_STATUS.instance()) == 2  # notFlash
    ctrl.inject(FaultKind.CONFLICT)
    ctrl.step(2)
    assert int_of(responder, mib.UNIT_FLASH_STATUS.instance()) == 6  # mmu
    assert int_of(responder, mib.SHORT_ALARM_STATUS.instance()) & 0x02
    assert int_of(responder, mib.CHANNEL_STATUS_GROUP_GREENS.instance(1)) == 0
