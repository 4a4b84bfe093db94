"""The NTCIP 1202/1201 object map: OIDs as the reference gives them, lookups, value checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import (
    Counter32,
    Gauge32,
    Integer,
    Null,
    ObjectIdentifier,
    OctetString,
    oid_from_str,
    oid_to_str,
)


def examples(floor: int) -> int:
    """``floor`` examples, or more when the loaded Hypothesis profile asks for more.

    The default profile keeps the suite fast; a long-run profile (e.g. one with
    ``max_examples=100_000`` loaded from a conftest) raises every property at once.
    """
    return max(floor, settings().max_examples)


ASC = "1.3.6.1.4.1.1206.4.2.1"
GLOBAL_TIME_MANAGEMENT = "1.3.6.1.4.1.1206.4.2.6.3"

# Every OID ntcip-protocols.md §4 names, in its own notation ("asc.<rest>").
REFERENCE_OIDS: dict[str, str] = {
    "phaseWalk": "asc.1.2.1.2",
    "phasePedestrianClear": "asc.1.2.1.3",
    "phaseMinimumGreen": "asc.1.2.1.4",
    "phasePassage": "asc.1.2.1.5",
    "phaseMaximum1": "asc.1.2.1.6",
    "phaseMaximum2": "asc.1.2.1.7",
    "phaseYellowChange": "asc.1.2.1.8",
    "phaseRedClear": "asc.1.2.1.9",
    "phaseRedRevert": "asc.1.2.1.10",
    "phaseOptions": "asc.1.2.1.21",
    "phaseRing": "asc.1.2.1.22",
    "phaseConcurrency": "asc.1.2.1.23",
    "phaseStatusGroupReds": "asc.1.4.1.2",
    "phaseStatusGroupYellows": "asc.1.4.1.3",
    "phaseStatusGroupGreens": "asc.1.4.1.4",
    "phaseStatusGroupDontWalks": "asc.1.4.1.5",
    "phaseStatusGroupPedClears": "asc.1.4.1.6",
    "phaseStatusGroupWalks": "asc.1.4.1.7",
    "phaseStatusGroupVehCalls": "asc.1.4.1.8",
    "phaseStatusGroupPedCalls": "asc.1.4.1.9",
    "phaseStatusGroupPhaseOns": "asc.1.4.1.10",
    "phaseStatusGroupPhaseNexts": "asc.1.4.1.11",
    "phaseControlGroupPhaseOmit": "asc.1.5.1.2",
    "phaseControlGroupPedOmit": "asc.1.5.1.3",
    "phaseControlGroupHold": "asc.1.5.1.4",
    "phaseControlGroupForceOff": "asc.1.5.1.5",
    "phaseControlGroupVehCall": "asc.1.5.1.6",
    "phaseControlGroupPedCall": "asc.1.5.1.7",
    "ringControlGroupStopTime": "asc.7.5.1.2",
    "ringControlGroupForceOff": "asc.7.5.1.3",
    "ringControlGroupMax2": "asc.7.5.1.4",
    "ringControlGroupMaxInhibit": "asc.7.5.1.5",
    "ringControlGroupPedRecycle": "asc.7.5.1.6",
    "ringControlGroupRedRest": "asc.7.5.1.7",
    "ringControlGroupOmitRedClear": "asc.7.5.1.8",
    "channelControlSource": "asc.8.2.1.2",
    "channelControlType": "asc.8.2.1.3",
    "channelStatusGroupReds": "asc.8.4.1.2",
    "channelStatusGroupYellows": "asc.8.4.1.3",
    "channelStatusGroupGreens": "asc.8.4.1.4",
    "overlapStatusGroupReds": "asc.9.4.1.2",
    "overlapStatusGroupYellows": "asc.9.4.1.3",
    "overlapStatusGroupGreens": "asc.9.4.1.4",
    "unitBackupTime": "asc.3.3",
    "unitRedRevert": "asc.3.4",
    "unitControlStatus": "asc.3.5",
    "unitFlashStatus": "asc.3.6",
    "unitAlarmStatus2": "asc.3.7",
    "unitAlarmStatus1": "asc.3.8",
    "shortAlarmStatus": "asc.3.9",
    "unitControl": "asc.3.10",
    "coordOperationalMode": "asc.4.1",
    "coordCorrectionMode": "asc.4.2",
    "coordMaximumMode": "asc.4.3",
    "coordForceMode": "asc.4.4",
    "maxPatterns": "asc.4.5",
    "patternTableType": "asc.4.6",
    "patternCycleTime": "asc.4.7.1.2",
    "patternOffsetTime": "asc.4.7.1.3",
    "patternSplitNumber": "asc.4.7.1.4",
    "patternSequenceNumber": "asc.4.7.1.5",
    "splitPhase": "asc.4.9.1.2",
    "splitTime": "asc.4.9.1.3",
    "splitMode": "asc.4.9.1.4",
    "splitCoordPhase": "asc.4.9.1.5",
    "coordPatternStatus": "asc.4.10",
    "localFreeStatus": "asc.4.11",
    "coordCycleStatus": "asc.4.12",
    "coordSyncStatus": "asc.4.13",
    "systemPatternControl": "asc.4.14",
    "systemSyncControl": "asc.4.15",
    "maxRings": "asc.7.1",
    "maxSequences": "asc.7.2",
    "sequenceData": "asc.7.3.1.3",
    "timebaseAscPatternSync": "asc.5.1",
    "timebaseAscPattern": "asc.5.3.1.2",
    "timebaseAscAuxillaryFunction": "asc.5.3.1.3",
    "timebaseAscSpecialFunction": "asc.5.3.1.4",
    "timebaseAscActionStatus": "asc.5.4",
    "globalTime": "gtm.1",
    "globalDaylightSaving": "gtm.2",
    "timeBaseScheduleMonth": "gtm.3.2.1.2",
    "timeBaseScheduleDay": "gtm.3.2.1.3",
    "timeBaseScheduleDate": "gtm.3.2.1.4",
    "timeBaseScheduleDayPlan": "gtm.3.2.1.5",
    "dayPlanHour": "gtm.3.5.1.3",
    "dayPlanMinute": "gtm.3.5.1.4",
    "dayPlanActionNumberOID": "gtm.3.5.1.5",
    "dayPlanStatus": "gtm.3.6",
}


def expand(short: str) -> str:
    return short.replace("asc", ASC, 1).replace("gtm", GLOBAL_TIME_MANAGEMENT, 1)


@pytest.mark.parametrize(("name", "short"), REFERENCE_OIDS.items(), ids=REFERENCE_OIDS.keys())
def test_oid_matches_the_reference(name: str, short: str) -> None:
    assert oid_to_str(mib.BY_NAME[name].oid) == expand(short)


def test_snmpget_of_the_issue_reads_the_running_pattern() -> None:
    # snmpget -v1 -c public 127.0.0.1:16100 1.3.6.1.4.1.1206.4.2.1.4.10.0
    oid = oid_from_str("1.3.6.1.4.1.1206.4.2.1.4.10.0")
    assert oid == mib.instance_oid(mib.COORD_PATTERN_STATUS)
    assert mib.describe_oid(oid) == "coordPatternStatus.0"
    assert mib.COORD_PATTERN_STATUS.access is mib.Access.READ_ONLY


def test_global_time_instance() -> None:
    assert oid_to_str(mib.GLOBAL_TIME.instance()) == "1.3.6.1.4.1.1206.4.2.6.3.1.0"
    assert mib.GLOBAL_TIME.syntax is mib.Syntax.COUNTER
    assert mib.GLOBAL_TIME.writable


def test_table_instances() -> None:
    assert oid_to_str(mib.instance_oid(mib.PHASE_YELLOW_CHANGE, 2)) == f"{ASC}.1.2.1.8.2"
    assert oid_to_str(mib.SPLIT_TIME.instance(3, 4)) == f"{ASC}.4.9.1.3.3.4"
    assert oid_to_str(mib.SEQUENCE_DATA.instance(1, 2)) == f"{ASC}.7.3.1.3.1.2"
    assert (
        oid_to_str(mib.DAY_PLAN_ACTION_NUMBER_OID.instance(1, 5))
        == f"{GLOBAL_TIME_MANAGEMENT}.3.5.1.5.1.5"
    )


@pytest.mark.parametrize(
    ("obj", "index"),
    [
        pytest.param(mib.COORD_PATTERN_STATUS, (1,), id="scalar with an index"),
        pytest.param(mib.PHASE_WALK, (), id="column without an index"),
        pytest.param(mib.SPLIT_TIME, (1,), id="two-part index given one"),
        pytest.param(mib.PHASE_WALK, (-1,), id="negative index"),
    ],
)
def test_instance_rejects_a_wrong_index(obj: mib.MibObject, index: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=obj.name):
        obj.instance(*index)


# ---------------------------------------------------------------- the table


def test_names_and_oids_are_unique_and_no_object_contains_another() -> None:
    assert len(mib.BY_NAME) == len(mib.OBJECTS)
    oids = [obj.oid for obj in mib.OBJECTS]
    assert len(set(oids)) == len(oids)
    for outer in oids:
        for inner in oids:
            assert outer == inner or inner[: len(outer)] != outer


def test_every_object_is_under_asc_or_global() -> None:
    for obj in mib.OBJECTS:
        assert obj.oid[: len(mib.ASC)] == mib.ASC or obj.oid[: len(mib.GLOBAL)] == mib.GLOBAL


def test_every_object_is_consistent() -> None:
    for obj in mib.OBJECTS:
        assert obj.minimum <= obj.maximum, obj.name
        assert obj.name[0].islower(), obj.name
        if obj.enumeration is not None:
            assert obj.syntax is mib.Syntax.INTEGER
            assert type(obj.minimum) is int, obj.name
        if obj.index:
            assert obj.oid[-2] == 1, f"{obj.name}: a column lives under an entry (.1)"


def test_index_objects_are_read_only() -> None:
    for obj in mib.OBJECTS:
        if obj.name in obj.index:
            assert obj.access is mib.Access.READ_ONLY, obj.name


def test_system_control_objects_are_writable() -> None:
    assert mib.SYSTEM_CONTROL_OBJECTS
    assert all(obj.writable for obj in mib.SYSTEM_CONTROL_OBJECTS)
    assert mib.SYSTEM_PATTERN_CONTROL in mib.SYSTEM_CONTROL_OBJECTS
    assert mib.UNIT_BACKUP_TIME not in mib.SYSTEM_CONTROL_OBJECTS


# ---------------------------------------------------------------- lookups


@pytest.mark.parametrize("obj", mib.OBJECTS, ids=lambda obj: obj.name)
def test_lookup_and_describe_every_object(obj: mib.MibObject) -> None:
    index = tuple(range(1, len(obj.index) + 1))
    oid = obj.instance(*index)
    assert mib.lookup_oid(oid) == (obj, index or (0,))
    suffix = ".".join(str(part) for part in index or (0,))
    assert mib.describe_oid(oid) == f"{obj.name}.{suffix}"


def test_describe_unknown_oids() -> None:
    assert mib.describe_oid((1, 3, 6, 1, 2, 1, 1, 1, 0)) == "1.3.6.1.2.1.1.1.0"
    assert mib.lookup_oid(mib.ASC) is None
    # An object OID without instance is not an instance of it.
    assert mib.lookup_oid(mib.PHASE_WALK.oid) is None


def test_mmitss_backup_time_instance_is_recognisable() -> None:
    # MMITSS sends unitBackupTime with instance .1 instead of .0 (reference §5).
    assert mib.describe_oid(oid_from_str(f"{ASC}.3.3.1")) == "unitBackupTime.1"


@settings(max_examples=examples(300))
@given(st.sampled_from(mib.OBJECTS), st.lists(st.integers(0, 2**16), min_size=1, max_size=3))
def test_lookup_inverts_instance(obj: mib.MibObject, suffix: list[int]) -> None:
    found = mib.lookup_oid((*obj.oid, *suffix))
    assert found == (obj, tuple(suffix))


# ------------------------------------------------------------- value checks


@pytest.mark.parametrize(
    ("obj", "value", "ok"),
    [
        pytest.param(mib.PHASE_YELLOW_CHANGE, Integer(35), True, id="yellow 3.5 s"),
        pytest.param(mib.PHASE_YELLOW_CHANGE, Integer(256), False, id="yellow above 255"),
        pytest.param(mib.PHASE_YELLOW_CHANGE, Integer(-1), False, id="negative yellow"),
        pytest.param(mib.PHASE_YELLOW_CHANGE, Gauge32(35), False, id="Gauge for INTEGER"),
        pytest.param(mib.PHASE_YELLOW_CHANGE, Null(), False, id="NULL for INTEGER"),
        pytest.param(mib.UNIT_BACKUP_TIME, Integer(65535), True, id="backup time max"),
        pytest.param(mib.UNIT_BACKUP_TIME, Integer(65536), False, id="backup time too large"),
        pytest.param(mib.UNIT_CONTROL_STATUS, Integer(8), True, id="enum in range"),
        pytest.param(mib.UNIT_CONTROL_STATUS, Integer(0), False, id="enum below"),
        pytest.param(mib.DB_CREATE_TRANSACTION, Integer(6), True, id="enum done = 6"),
        pytest.param(mib.DB_CREATE_TRANSACTION, Integer(5), False, id="enum gap at 4-5"),
        pytest.param(mib.GLOBAL_TIME, Counter32(1_700_000_000), True, id="globalTime Counter"),
        pytest.param(mib.GLOBAL_TIME, Integer(1_700_000_000), False, id="globalTime INTEGER"),
        pytest.param(mib.SEQUENCE_DATA, OctetString(b"\x01\x02\x03\x04"), True, id="sequence"),
        pytest.param(mib.SEQUENCE_DATA, OctetString(bytes(256)), False, id="sequence too long"),
        pytest.param(mib.SEQUENCE_DATA, Integer(1), False, id="INTEGER for OCTET STRING"),
        pytest.param(
            mib.TIME_BASE_SCHEDULE_DATE, Integer(2**32 - 1), True, id="schedule date all bits"
        ),
        pytest.param(
            mib.CONTROLLER_STANDARD_TIME_ZONE, Integer(-18000), True, id="negative time zone"
        ),
        pytest.param(
            mib.DAY_PLAN_ACTION_NUMBER_OID,
            ObjectIdentifier(mib.TIMEBASE_ASC_ACTION_NUMBER.instance(3)),
            True,
            id="day plan action OID",
        ),
    ],
)
def test_accepts(obj: mib.MibObject, value: Integer, ok: bool) -> None:
    assert obj.accepts(value) is ok


def test_value_wraps_and_checks() -> None:
    assert mib.SYSTEM_PATTERN_CONTROL.value(3) == Integer(3)
    assert mib.GLOBAL_TIME.value(1_700_000_000) == Counter32(1_700_000_000)
    assert mib.PHASE_CONCURRENCY.value(b"\x05\x06") == OctetString(b"\x05\x06")
    oid = mib.TIMEBASE_ASC_ACTION_NUMBER.instance(1)
    assert mib.DAY_PLAN_ACTION_NUMBER_OID.value(oid) == ObjectIdentifier(oid)
    with pytest.raises(ValueError, match="out of range"):
        mib.SYSTEM_PATTERN_CONTROL.value(256)
    with pytest.raises(ValueError, match="takes INTEGER"):
        mib.SYSTEM_PATTERN_CONTROL.value(b"\x03")


# -------------------------------------------------------- phase bitmaps


@pytest.mark.parametrize(
    ("phase", "group", "mask"),
    [(1, 1, 0x01), (2, 1, 0x02), (8, 1, 0x80), (9, 2, 0x01), (16, 2, 0x80), (17, 3, 0x01)],
)
def test_phase_group(phase: int, group: int, mask: int) -> None:
    assert mib.phase_group(phase) == (group, mask)


def test_phases_of_a_green_bitmap() -> None:
    # The V2X-Hub fixture of reference §6: greens 0x22 = phases 2 and 6.
    assert mib.phases_in_bitmap(1, 0x22) == {2, 6}
    assert mib.bitmap_of_phases(1, [2, 6]) == 0x22
    assert mib.phases_in_bitmap(2, 0x22) == {10, 14}


@settings(max_examples=examples(300))
@given(st.integers(1, 32), st.integers(0, 0xFF))
def test_bitmap_round_trip(group: int, bitmap: int) -> None:
    assert mib.bitmap_of_phases(group, mib.phases_in_bitmap(group, bitmap)) == bitmap


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: mib.phase_group(0), id="phase 0"),
        pytest.param(lambda: mib.phases_in_bitmap(0, 1), id="group 0"),
        pytest.param(lambda: mib.phases_in_bitmap(1, 0x100), id="bitmap over 8 bits"),
        pytest.param(lambda: mib.bitmap_of_phases(1, [9]), id="phase of another group"),
    ],
)
def test_bitmap_helpers_reject(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        call()


def test_pattern_constants() -> None:
    assert (mib.PATTERN_STANDBY, mib.PATTERN_FREE, mib.PATTERN_FLASH) == (0, 254, 255)
    assert mib.PhaseOption.ENABLED | mib.PhaseOption.PED_RECALL == 0x101
