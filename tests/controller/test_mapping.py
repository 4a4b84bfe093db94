"""Plan → NTCIP objects, and NTCIP status → the status value (pure, no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.controller.interface import ControlSource, FlashState, Light, PedLight
from agent.controller.ntcip.mapping import (
    STATUS_OIDS,
    ControllerShape,
    NotRepresentable,
    decode_status,
    pattern_value,
    plan_writes,
)
from agent.plan.document import parse_plan
from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import Counter32, Integer, ObjectIdentifier, OctetString, SnmpValue

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plans" / "intersection-8phase.json"


def _writes() -> dict[str, SnmpValue]:
    plan = parse_plan(EXAMPLE.read_bytes())
    return {w.name: w.value for w in plan_writes(plan)}


def test_phase_times_use_ntcip_units() -> None:
    writes = _writes()
    assert writes["phaseYellowChange.2"] == Integer(45)  # tenths
    assert writes["phaseRedClear.4"] == Integer(20)  # tenths
    assert writes["phaseMinimumGreen.2"] == Integer(12)  # seconds
    assert writes["phaseWalk.4"] == Integer(7)  # seconds
    assert writes["phasePedestrianClear.2"] == Integer(18)  # seconds
    assert writes["phaseMaximum1.1"] == Integer(20)
    assert writes["phaseWalk.1"] == Integer(0)  # no crossing


def test_rings_barriers_and_sequences() -> None:
    writes = _writes()
    assert writes["phaseRing.3"] == Integer(1)
    assert writes["phaseRing.7"] == Integer(2)
    assert writes["phaseConcurrency.2"] == OctetString(bytes([5, 6]))
    assert writes["phaseConcurrency.8"] == OctetString(bytes([3, 4]))
    assert writes["sequenceData.1.1"] == OctetString(bytes([1, 2, 3, 4]))
    assert writes["sequenceData.1.2"] == OctetString(bytes([5, 6, 7, 8]))
    # pattern 3 lags phase 1: its own sequence
    assert writes["sequenceData.2.1"] == OctetString(bytes([2, 1, 3, 4]))
    assert writes["patternSequenceNumber.3"] == Integer(2)
    assert writes["patternSequenceNumber.1"] == Integer(1)
    assert writes["phaseOptions.2"] == Integer(int(mib.PhaseOption.ENABLED))


def test_patterns_splits_and_time_base() -> None:
    writes = _writes()
    assert writes["patternCycleTime.1"] == Integer(120)
    assert writes["patternOffsetTime.1"] == Integer(30)
    assert writes["patternSplitNumber.2"] == Integer(2)
    assert writes["splitTime.1.2"] == Integer(52)
    assert writes["splitCoordPhase.1.2"] == Integer(1)
    assert writes["splitCoordPhase.1.1"] == Integer(0)
    assert writes["splitMode.1.4"] == Integer(
        int(mib.SplitMode.MAXIMUM_VEHICLE_AND_PEDESTRIAN_RECALL)
    )
    assert writes["splitMode.1.3"] == Integer(int(mib.SplitMode.MAXIMUM_VEHICLE_RECALL))
    # weekday day plan 1: 00:00 free, 06:00 p2, 06:30 p1, ... actions in first-seen order
    assert writes["timebaseAscPattern.1"] == Integer(254)
    assert writes["timebaseAscPattern.2"] == Integer(2)
    assert writes["dayPlanHour.1.2"] == Integer(6)
    assert writes["dayPlanMinute.1.3"] == Integer(30)
    assert writes["dayPlanActionNumberOID.1.3"] == ObjectIdentifier(
        mib.TIMEBASE_ASC_ACTION_NUMBER.instance(3)
    )
    # schedule: mon-fri = bits 2..6, sat+sun = bits 7 and 1
    assert writes["timeBaseScheduleDay.1"] == Integer(0b1111100)
    assert writes["timeBaseScheduleDay.2"] == Integer(0b10000010)
    assert writes["timeBaseScheduleDayPlan.2"] == Integer(2)


def test_rows_the_plan_drops_are_cleared() -> None:
    plan = parse_plan(EXAMPLE.read_bytes())
    shape = ControllerShape(
        live_patterns=frozenset({1, 7}),
        live_schedule=frozenset({1, 2, 5}),
        live_events=frozenset({(1, 9), (2, 1)}),
        phase_options=dict.fromkeys(range(1, 9), 128),
    )
    writes = {w.name: w.value for w in plan_writes(plan, shape)}
    assert writes["patternCycleTime.7"] == Integer(0)
    assert writes["timeBaseScheduleMonth.5"] == Integer(0)
    assert writes["dayPlanActionNumberOID.1.9"] == ObjectIdentifier((0, 0))
    assert "dayPlanHour.2.1" in writes  # rewritten by the plan, not cleared
    assert writes["phaseOptions.1"] == Integer(0b1000_0001)  # other bits kept


def test_unused_phases_are_disabled() -> None:
    doc = json.loads(
        (EXAMPLE.parent / "corridor-2-main-2nd.json").read_text()
    )  # throughs only: 2, 4, 6, 8
    writes = {w.name: w.value for w in plan_writes(parse_plan(json.dumps(doc)))}
    assert writes["phaseRing.1"] == Integer(0)
    assert writes["phaseOptions.1"] == Integer(0)
    assert writes["phaseConcurrency.2"] == OctetString(bytes([6]))


def test_tenths_in_a_whole_second_object_are_refused_not_rounded() -> None:
    doc = json.loads(EXAMPLE.read_text())
    doc["phases"][1]["min_green"] = 12.5
    doc["patterns"][0]["offset"] = 30.5
    with pytest.raises(NotRepresentable) as caught:
        plan_writes(parse_plan(json.dumps(doc)))
    assert caught.value.code == "E_CONTROLLER"
    assert "phase 2 min green 12.5 s: NTCIP phaseMinimumGreen holds whole seconds only" in str(
        caught.value
    )
    assert "pattern 1 offset 30.5 s" in str(caught.value)


def test_a_controller_too_small_for_the_plan_is_refused() -> None:
    plan = parse_plan(EXAMPLE.read_bytes())
    with pytest.raises(NotRepresentable, match="pattern 4: the controller has only 3 patterns"):
        plan_writes(plan, ControllerShape(max_patterns=3))


def test_pattern_commands() -> None:
    assert [pattern_value(c) for c in ("standby", "free", "flash", 7)] == [0, 254, 255, 7]
    with pytest.raises(ValueError, match="not a pattern command"):
        pattern_value(254)


def test_status_decoding() -> None:
    values: list[SnmpValue] = [
        Integer(0b1101_1101),  # reds: all but 2 and 6
        Integer(0),  # yellows
        Integer(0b0010_0010),  # greens: 2, 6
        Integer(0b1101_1101),  # don't walks
        Integer(0b0000_0010),  # ped clears: 2
        Integer(0b0010_0000),  # walks: 6
        Integer(3),  # coordPatternStatus
        Integer(2),  # localFreeStatus notFree
        Integer(47),  # coordCycleStatus
        Integer(3),  # systemPatternControl
        Integer(2),  # unitControlStatus systemControl
        Integer(2),  # unitFlashStatus notFlash
        Integer(0),
        Integer(0),
        Integer(0),
        Integer(180),  # unitBackupTime
        Counter32(1_764_000_000),  # globalTime
    ]
    assert len(values) == len(STATUS_OIDS)
    status = decode_status(values, received_at=1.0)
    assert status.phase(2) is not None
    assert status.phase(2).light is Light.GREEN  # type: ignore[union-attr]
    assert status.phase(2).ped is PedLight.PED_CLEAR  # type: ignore[union-attr]
    assert status.phase(6).ped is PedLight.WALK  # type: ignore[union-attr]
    assert status.phase(1).light is Light.RED  # type: ignore[union-attr]
    assert status.pattern == 3
    assert status.commanded == 3
    assert status.free_status == "not_free"
    assert status.control is ControlSource.SYSTEM
    assert status.flash is FlashState.NOT_FLASH
    assert status.controller_time == 1_764_000_000
    assert not status.alarms.any
