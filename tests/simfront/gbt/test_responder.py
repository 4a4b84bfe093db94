"""The GB/T front end in process: sets go through the database, errors carry the right code.

The responder drives the same :class:`SimController` as the NTCIP front end:
a plan written over GB/T must make the engine run what the same plan loaded
directly runs, a set the controller cannot hold must be refused with the
GB/T error code that says why and change nothing, and a center that falls
silent must lose control to the controller's own schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agent.controller.gbt20999.mapping import plan_writes
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import (
    Address,
    ErrorCode,
    FrameType,
    Ids,
    Message,
    decode,
    encode,
    error_codes,
    heartbeat,
    query_message,
    set_request,
)
from agent.protocols.gbt20999.objects import Attribute, RunMode, StageState
from firmware_sim.controller import SimConfig, SimController
from firmware_sim.coordination import judge_pattern
from firmware_sim.database import TimingDatabase, database_from_plan
from firmware_sim.gbt_responder import (
    GbtResponder,
    GbtStreamSession,
    parse_gbt_alter,
    parse_gbt_ignore,
    parse_gbt_refuse,
    parse_target,
)
from firmware_sim.status import CoordCycleState, UnitControlStatus
from tests.controller.gbt.plans import gbt_example_plan
from tests.simfront.helpers import (
    MONDAY_0700,
    REPO,
    controller,
    coordinated,
    run_until,
)

IDS = Ids(center=1, controller=0, intersection=0)
CORRIDOR = REPO / "examples" / "plans" / "corridor-1-main-1st.json"


def query(responder: GbtResponder, *addresses: Address) -> Message:
    reply = responder.respond(query_message(IDS, 7, *addresses))
    assert reply is not None
    return reply


def read(responder: GbtResponder, attribute: Attribute[Any], element: int = 0) -> Any:
    reply = query(responder, attribute.at(element))
    assert reply.frame_type is FrameType.QUERY_REPLY, reply
    return attribute.decode(reply.values[0].value)


def put(responder: GbtResponder, *values: tuple[Attribute[Any], int, Any]) -> Message:
    pairs = [
        (attribute.at(element), attribute.encode(value)) for attribute, element, value in values
    ]
    reply = responder.respond(set_request(IDS, 9, pairs))
    assert reply is not None
    return reply


def refused(reply: Message) -> list[tuple[str, ErrorCode | int]]:
    assert reply.frame_type is FrameType.SET_ERROR, reply
    return [(str(address), code) for address, code in error_codes(reply)]


def write_plan(responder: GbtResponder) -> None:
    """Everything the driver sets for the whole-second example plan, in its frames."""
    writes = plan_writes(gbt_example_plan())
    for start in range(0, len(writes), 40):
        chunk = [(w.address, w.value) for w in writes[start : start + 40]]
        reply = responder.respond(set_request(IDS, 3, chunk))
        assert reply is not None
        assert reply.frame_type is FrameType.SET_REPLY, reply


# ------------------------------------------------------------------- plan writes


def _programs(db: TimingDatabase) -> dict[int, tuple[Any, ...]]:
    """What the engine would run for each pattern: every phase's slot and local zero."""
    out: dict[int, tuple[Any, ...]] = {}
    for number in sorted(db.patterns):
        verdict = judge_pattern(db, number)
        assert verdict.plan is not None, (number, verdict.detail)
        program = verdict.plan.nominal_program()
        slots = sorted(
            (s.phase, s.start_ds, s.green_ds, s.walk_ds, s.ped_clear_ds, s.yellow_ds, s.red_ds)
            for s in program.slots
        )
        out[number] = (program.length_ds, program.ref_ds, verdict.plan.offset_ds, tuple(slots))
    return out


def test_a_plan_written_over_gbt_runs_as_the_same_plan_loaded_directly() -> None:
    sim = SimController.from_plan(
        gbt_example_plan().model_copy(update={"patterns": []}),
        config=SimConfig(epoch_s=MONDAY_0700),
    )
    responder = GbtResponder(sim)
    write_plan(responder)
    direct = database_from_plan(gbt_example_plan())
    assert _programs(sim.database) == _programs(direct)


def test_the_written_plan_reads_back_as_written() -> None:
    responder = GbtResponder(coordinated(controller()))
    write_plan(responder)
    for write in plan_writes(gbt_example_plan()):
        reply = query(responder, write.address)
        assert reply.values[0].value == write.value, write.name


def test_a_stage_of_conflicting_phases_is_refused_and_nothing_changes() -> None:
    responder = GbtResponder(coordinated(controller()))
    revision = responder.controller.database.revision
    reply = put(
        responder,
        (gbt.SCHEME_CYCLE, 1, 100),
        (gbt.STAGE_PHASES, 2, frozenset({2, 3})),  # 2 and 3 share ring 1
    )
    assert refused(reply) == [("6.2.2.2", ErrorCode.BAD_VALUE)]
    assert read(responder, gbt.SCHEME_CYCLE, 1) == 120
    assert responder.controller.database.revision == revision


@pytest.mark.parametrize(
    ("values", "error"),
    [
        pytest.param([(gbt.PHASE_COUNT, 0, 8)], ErrorCode.READ_ONLY, id="read-only"),
        pytest.param([(gbt.SCHEME_CYCLE, 99, 100)], ErrorCode.NOT_FOUND, id="no-such-row"),
        pytest.param([(gbt.PHASE_TRANSITIONS[1], 2, 2)], ErrorCode.BAD_VALUE, id="yellow-2s"),
        pytest.param([(gbt.PHASE_MIN_GREEN, 1, 0)], ErrorCode.BAD_VALUE, id="min-green-0"),
        pytest.param([(gbt.SCHEME_CYCLE, 1, 300)], ErrorCode.BAD_VALUE, id="cycle-300s"),
        pytest.param(
            [(gbt.PHASE_TRANSITIONS[0], 1, 0x21)], ErrorCode.BAD_VALUE, id="green-flash-vehicle"
        ),
        pytest.param([(gbt.SCHEME_STAGE_CHAIN, 1, (1, 40))], ErrorCode.OUT_OF_RANGE, id="stage-40"),
        pytest.param([(gbt.DAY_PLAN_RUN_MODES, 1, (0x33,))], ErrorCode.BAD_VALUE, id="lights-off"),
        pytest.param([(gbt.CENTER_STAGE, 1, 3)], ErrorCode.CONTROL_FAILED, id="forced-stage"),
        pytest.param(
            [(gbt.CENTER_SCHEME, 1, 0), (gbt.CENTER_RUN_MODE, 1, 0x13)],
            ErrorCode.CONTROL_FAILED,
            id="coordinated-without-scheme",
        ),
        pytest.param([(gbt.SCHEDULE_DAY_PLAN, 1, 200)], ErrorCode.OUT_OF_RANGE, id="day-plan-200"),
    ],
)
def test_sets_the_controller_cannot_hold_get_the_right_code(
    values: list[tuple[Attribute[Any], int, Any]], error: ErrorCode
) -> None:
    responder = GbtResponder(coordinated(controller()))
    revision = responder.controller.database.revision
    reply = put(responder, *values)
    assert [code for _, code in refused(reply)] == [error]
    assert responder.controller.database.revision == revision
    assert responder.controller.system_pattern_control == 0


def test_wrong_length_and_unknown_objects() -> None:
    responder = GbtResponder(coordinated(controller()))
    bad = set_request(IDS, 1, [(gbt.SCHEME_CYCLE.at(1), b"\x00\x78")])
    reply = responder.respond(bad)
    assert reply is not None
    assert refused(reply) == [("9.2.3.1", ErrorCode.WRONG_LENGTH)]
    unknown = set_request(IDS, 1, [(Address(17, 2, 1, 1), b"\x01")])
    reply = responder.respond(unknown)
    assert reply is not None
    assert refused(reply) == [("17.2.1.1", ErrorCode.NOT_FOUND)]


# ------------------------------------------------------------------- control


def test_center_control_selects_the_pattern_and_releases_it() -> None:
    sim = coordinated(controller())
    responder = GbtResponder(sim, link_timeout_s=0)  # no heartbeats in this test
    reply = put(
        responder,
        (gbt.CENTER_STAGE, 1, 0),
        (gbt.CENTER_SCHEME, 1, 2),
        (gbt.CENTER_RUN_MODE, 1, 0x13),
    )
    assert reply.frame_type is FrameType.SET_REPLY
    assert [v.value for v in reply.values] == [b"\x00"] * 3
    assert sim.system_pattern_control == 2
    run_until(sim, lambda c: c.status().coord_pattern_status == 2, limit_s=300)
    assert read(responder, gbt.RUN_MODE, 1) == RunMode.CENTER_COORDINATED
    assert read(responder, gbt.RUN_SCHEME, 1) == 2
    assert read(responder, gbt.RUN_STAGE, 1) in read(responder, gbt.SCHEME_STAGE_CHAIN, 2)
    put(responder, (gbt.CENTER_RUN_MODE, 1, 0x22))
    assert sim.system_pattern_control == 254
    put(responder, (gbt.CENTER_RUN_MODE, 1, 0x31))
    assert sim.system_pattern_control == 255
    put(responder, (gbt.CENTER_SCHEME, 1, 0), (gbt.CENTER_RUN_MODE, 1, 0x11))
    assert sim.system_pattern_control == 0
    assert sim.engine.control_status is UnitControlStatus.SYSTEM_STANDBY


def test_a_silent_center_loses_control_to_the_local_schedule() -> None:
    sim = coordinated(controller())
    responder = GbtResponder(sim, link_timeout_s=20)
    put(responder, (gbt.CENTER_SCHEME, 1, 2), (gbt.CENTER_RUN_MODE, 1, 0x13))
    sim.step(19)
    responder.respond(heartbeat(IDS, 1))  # traffic restarts the timer
    last_heard = sim.global_time
    sim.step(19)
    assert sim.system_pattern_control == 2
    sim.step(30)  # 49 s of silence
    assert sim.system_pattern_control == 0
    assert sim.engine.control_status is UnitControlStatus.BACKUP_MODE
    assert read(responder, gbt.CENTER_RUN_MODE, 1) == 0
    assert read(responder, gbt.FAULT_COUNT) == 1
    assert read(responder, gbt.FAULT_TYPE, 1) == 0x30
    assert read(responder, gbt.FAULT_ACTION, 1) == 0x50
    logged = read(responder, gbt.FAULT_TIME, 1)
    assert abs(logged.replace(tzinfo=UTC).timestamp() - (last_heard + 20)) <= 1  # when it gave up
    assert responder.stats.link_losses == 1


def test_heartbeats_are_answered_without_a_count() -> None:
    responder = GbtResponder(controller(), link_timeout_s=0)
    request = heartbeat(IDS, 42)
    answer = responder.handle(encode(request, framing=Framing.DATAGRAM))
    assert answer is not None
    reply = decode(answer, framing=Framing.DATAGRAM)
    assert (reply.frame_type, reply.sequence, reply.values) == (FrameType.HEARTBEAT_REPLY, 42, ())
    assert len(answer) == 16


def test_wildcards_answer_every_row_and_attribute() -> None:
    responder = GbtResponder(controller())
    rows = query(responder, gbt.SCHEME_CYCLE.at(0))
    assert len(rows.values) == responder.tables.n_schemes
    row = query(responder, Address(9, 2, 0, 1))
    assert [str(v.address) for v in row.values] == [f"9.2.{a}.1" for a in range(1, 9)]
    ipv4 = query(responder, Address(2, 2, 0, 0))
    assert [str(v.address) for v in ipv4.values] == ["2.2.1.0", "2.2.2.0", "2.2.3.0"]
    missing = query(responder, Address(17, 3, 0, 0), Address(99, 1, 0, 0))
    assert error_codes(missing) == (
        (Address(17, 3, 0, 0), ErrorCode.NOT_FOUND),
        (Address(99, 1, 0, 0), ErrorCode.NOT_FOUND),
    )


def test_an_ntcip_change_is_seen_over_gbt() -> None:
    sim = controller()
    responder = GbtResponder(sim)
    assert read(responder, gbt.SCHEME_CYCLE, 2) == 90
    sim.database.set_pattern(2, cycle_ds=1000)
    assert read(responder, gbt.SCHEME_CYCLE, 2) == 100


def test_clock_sets_move_the_controller_clock() -> None:
    sim = controller()
    responder = GbtResponder(sim)
    put(responder, (gbt.CLOCK_UTC, 0, datetime(2024, 1, 1, 8, 0, 0)))
    assert sim.global_time == MONDAY_0700 + 3600


# ------------------------------------------------------------------- hooks


def test_hooks_refuse_alter_and_ignore() -> None:
    assert parse_target("scheme.cycle[2]") == Address(9, 2, 3, 2)
    assert parse_target("9.2.3") == Address(9, 2, 3, 0)
    with pytest.raises(ValueError, match="not a GB/T 20999 attribute"):
        parse_target("scheme.colour")
    with pytest.raises(ValueError, match="not a number"):
        parse_gbt_alter("scheme.stage_chain=+1")
    responder = GbtResponder(
        controller(),
        hooks=(
            parse_gbt_refuse("phase.lose_1.time[2]:bad-value"),
            parse_gbt_alter("scheme.cycle=+5"),
            parse_gbt_ignore("scheme.offset[2]"),
        ),
    )
    assert refused(put(responder, (gbt.PHASE_TRANSITIONS[1], 2, 5))) == [
        ("4.2.4.2", ErrorCode.BAD_VALUE)
    ]
    put(responder, (gbt.SCHEME_CYCLE, 2, 90), (gbt.SCHEME_OFFSET, 2, 20))
    assert read(responder, gbt.SCHEME_CYCLE, 2) == 95
    assert read(responder, gbt.SCHEME_OFFSET, 2) == 12
    assert responder.stats.hooks_fired == 3


# ------------------------------------------------------------------- streams


def test_a_stream_session_unescapes_requests_and_escapes_replies() -> None:
    responder = GbtResponder(controller())
    session = GbtStreamSession(responder.respond)
    # Sequence 0x7E and center 0x5C: both escaped on the wire, both echoed.
    ids = Ids(center=0x5C, controller=0x7D7E, intersection=0)
    request = encode(query_message(ids, 0x7E, gbt.SCHEME_CYCLE.at(1)), framing=Framing.STREAM)
    noise = b"\x00\x7d\xff"
    answer = session.feed(noise + request[:5]) + session.feed(request[5:] + noise)
    reply = decode(answer, framing=Framing.STREAM)
    assert (reply.ids, reply.sequence) == (ids, 0x7E)
    assert gbt.SCHEME_CYCLE.decode(reply.values[0].value) == 120
    assert session.stats.frames == 1
    assert session.discarded == 2 * len(noise)
    assert session.feed(request[:-3] + b"\x00\x00\x7d") == b""  # bad CRC: dropped
    assert session.stats.bad_frames == 1


def test_the_running_stage_and_its_times_follow_the_chain() -> None:
    sim = coordinated(controller())
    run_until(sim, lambda c: c.status().cycle_state is CoordCycleState.IN_STEP, limit_s=600)
    responder = GbtResponder(sim, link_timeout_s=0)
    chain = [s for s in read(responder, gbt.SCHEME_STAGE_CHAIN, 1) if s]
    times = dict(zip(chain, read(responder, gbt.SCHEME_STAGE_TIMES, 1), strict=False))
    seen: list[int] = []
    for _ in range(240):  # one 120 s cycle, every 0.5 s
        sim.step(0.5)
        stage = read(responder, gbt.RUN_STAGE, 1)
        elapsed = read(responder, gbt.STAGE_ELAPSED, stage)
        remaining = read(responder, gbt.STAGE_REMAINING, stage)
        assert stage in chain
        assert elapsed + remaining in (times[stage], times[stage] + 1)  # whole seconds: down and up
        assert read(responder, gbt.STAGE_STATE, stage) in (
            StageState.RUNNING,
            StageState.TRANSITION,
        )
        others = [s for s in chain if s != stage]
        assert all(read(responder, gbt.STAGE_STATE, s) == StageState.IDLE for s in others[:1])
        if not seen or seen[-1] != stage:
            seen.append(stage)
    rotation = chain.index(seen[0])
    assert seen[: len(chain)] == chain[rotation:] + chain[:rotation]
