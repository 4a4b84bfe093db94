"""The demo's story as data: act timing, the mode timeline, the verdict, the agents' logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.demo.agentlog import LogFollower, parse_record
from agent.demo.board import Board
from agent.demo.story import (
    Coordination,
    Fallback,
    ModeChange,
    Timeline,
    Verdict,
    acts,
    hold_s,
    minimum_story_s,
    offset_errors,
    short_reason,
    story_gap,
)

STORY = acts(3.0)
DEVICES = ("main-1st", "main-2nd")


def change(device: str, before: str, after: str, at_s: float, reason: str = "") -> ModeChange:
    return ModeChange(device=device, before=before, after=after, at_s=at_s, reason=reason)


def told(timeline: Timeline, device: str) -> None:
    """``device`` goes central → local (no heartbeat) → central → local (broker) → central."""
    timeline.record(change(device, "local", "central", 4.2, "central commanded pattern 1"))
    lost = "central lost: no valid heartbeat for 3.0 s (timeout 3 s)"
    timeline.record(change(device, "central", "local", 11.0, lost))
    timeline.record(change(device, "local", "central", 14.0, "central commanded pattern 1"))
    broker = "central lost: the broker connection is down"
    timeline.record(change(device, "central", "local", 21.0, broker))
    timeline.record(change(device, "local", "central", 40.3, "central commanded pattern 1"))


# -- timing ---------------------------------------------------------------------------------


def test_the_whole_story_fits_in_thirty_seconds_with_time_to_set_up() -> None:
    assert minimum_story_s(STORY) <= 30 - 6


def play(duration: float, setup: float, overrun: list[float]) -> float:
    """When the story ends if each act takes its estimate plus ``overrun``."""
    elapsed = setup
    for index, act in enumerate(STORY):
        elapsed += act.estimate_s + overrun[index]
        hold = hold_s(STORY[index:], elapsed_s=elapsed, duration_s=duration)
        assert hold >= act.min_hold_s
        elapsed += hold
    return elapsed


@given(duration=st.floats(min_value=30, max_value=600), setup=st.floats(0, 10))
def test_acts_that_take_their_estimates_end_the_story_at_the_duration(
    duration: float, setup: float
) -> None:
    end = play(duration, setup, [0.0] * len(STORY))
    assert end == pytest.approx(max(duration, setup + minimum_story_s(STORY)), abs=1e-6)


@given(
    duration=st.floats(min_value=30, max_value=600),
    setup=st.floats(0, 10),
    overrun=st.lists(st.floats(0, 2), min_size=6, max_size=6),
)
def test_slow_acts_shorten_the_holds_and_never_end_the_story_early(
    duration: float, setup: float, overrun: list[float]
) -> None:
    end = play(duration, setup, overrun)
    assert end >= duration - 1e-6
    assert end <= max(duration, setup + minimum_story_s(STORY)) + sum(overrun) + 1e-6


def test_a_hold_needs_an_act() -> None:
    with pytest.raises(ValueError, match="no act"):
        hold_s((), elapsed_s=0, duration_s=30)


# -- the timeline and the verdict ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("central lost: the broker connection is down", "broker down"),
        ("central lost: no valid heartbeat for 3.1 s (timeout 3 s)", "no heartbeat"),
        ("central lost: the command's lease ran out", "lease ran out"),
        ("central commanded pattern 1", "pattern 1"),
        ("controller link down: timeout", "controller link down: timeout"),
        ("x" * 60, "x" * 39 + "…"),
    ],
)
def test_short_reasons(reason: str, words: str) -> None:
    assert short_reason(reason) == words


def test_the_timeline_line_reads_as_the_story() -> None:
    timeline = Timeline(DEVICES)
    told(timeline, "main-1st")
    assert timeline.line("main-1st") == (
        "main-1st: local → central (t=4.2 s) → local (t=11.0 s, no heartbeat) → "
        "central (t=14.0 s) → local (t=21.0 s, broker down) → central (t=40.3 s)"
    )
    assert timeline.mode("main-1st") == "central"
    assert timeline.line("main-2nd") == "main-2nd: local"


@pytest.mark.parametrize(
    ("modes", "gap"),
    [
        (["local"], "never went central"),
        (["local", "central"], "went central but never fell back to local"),
        (["local", "central", "local"], "fell back to local but never regained central"),
        (["local", "central", "fault", "local", "central"], None),
        (["central", "local", "central"], None),
        (["local", "local", "central", "central"], "went central but never fell back to local"),
    ],
)
def test_what_is_missing_of_the_story(modes: list[str], gap: str | None) -> None:
    assert story_gap(modes) == gap


def test_the_verdict_passes_only_a_complete_story() -> None:
    timeline = Timeline(DEVICES)
    told(timeline, "main-1st")
    timeline.record(change("main-2nd", "local", "central", 4.3, "central commanded pattern 1"))
    verdict = Verdict(timeline=timeline)
    assert not verdict.ok
    assert verdict.gaps == {"main-2nd": "went central but never fell back to local"}
    assert "  main-2nd: went central but never fell back to local" in verdict.lines()

    told(timeline, "main-2nd")
    assert Verdict(timeline=timeline).ok
    assert Verdict(timeline=timeline).lines()[-1] == (
        "result: every intersection went central → local → central"
    )


def test_a_late_fallback_an_off_plan_green_or_a_problem_fails_the_verdict() -> None:
    timeline = Timeline(DEVICES)
    for device in DEVICES:
        told(timeline, device)
    late = Fallback(device="main-1st", cause="broker stopped", took_s=4.5, limit_s=4.0)
    assert "LATE" in late.describe()
    assert not Verdict(timeline=timeline, fallbacks=(late,)).ok
    never = Fallback(device="main-1st", cause="broker stopped", took_s=None, limit_s=4.0)
    assert not never.ok
    off = Coordination(device="main-2nd", greens=3, worst_s=0.9, tolerance_s=0.5)
    assert not Verdict(timeline=timeline, coordination=(off,)).ok
    assert not Verdict(timeline=timeline, problems=("main-1st: plan.load not applied",)).ok
    quick = Fallback(device="main-1st", cause="broker stopped", took_s=0.046, limit_s=4.0)
    assert quick.describe() == "main-1st: broker stopped → local in 46 ms (within the 4 s limit)"
    unchecked = Coordination(device="main-2nd", greens=0, worst_s=None, tolerance_s=0.5)
    assert Verdict(timeline=timeline, fallbacks=(quick,), coordination=(unchecked,)).ok


def test_an_interrupted_story_says_so() -> None:
    lines = Verdict(timeline=Timeline(DEVICES)).lines(interrupted=True)
    assert lines[-1] == "result: interrupted before the end of the story"


def test_the_timeline_takes_only_its_devices() -> None:
    with pytest.raises(KeyError):
        Timeline(DEVICES).record(change("main-9th", "local", "central", 1.0))


def test_offset_errors_measure_green_starts_against_the_plan() -> None:
    midnight = 1_000_000.0
    events = [
        {"t": midnight + 20.0, "code": 1, "param": 2},  # on the offset
        {"t": midnight + 120.3, "code": 1, "param": 2},  # 0.3 s late
        {"t": midnight + 219.8, "code": 1, "param": 2},  # 0.2 s early
        {"t": midnight + 150.0, "code": 1, "param": 6},  # another phase
        {"t": midnight + 160.0, "code": 8, "param": 2},  # not a green start
        {"t": midnight - 50.0, "code": 1, "param": 2},  # before `since`
    ]
    errors = offset_errors(
        events, phase=2, offset_s=20, cycle_s=100, midnight=midnight, since=midnight
    )
    assert errors == pytest.approx([0.0, 0.3, 0.2])


# -- the agents' logs -----------------------------------------------------------------------


def record_line(event: str, **fields: object) -> str:
    body = {"event": event, "level": "info", "timestamp": "2026-11-26T07:00:01.500000Z", **fields}
    return json.dumps(body) + "\n"


def test_the_log_follower_reads_whole_records_only(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    follower = LogFollower("main-1st", path)
    assert follower.read() == []  # no file yet
    first = record_line("mode_changed", before="local", after="central", reason="r")
    half = record_line("mqtt_up")
    path.write_text("not json\n" + first + "[1, 2]\n" + half[:10])
    records = follower.read()
    assert [r.event for r in records] == ["mode_changed"]
    assert records[0].text("after") == "central"
    assert records[0].at == pytest.approx(1_795_676_401.5)
    with path.open("a") as log:
        log.write(half[10:])
    assert [r.event for r in follower.read()] == ["mqtt_up"]
    assert follower.read() == []


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"plain text",
        b"{not json",
        b'{"event": 1, "timestamp": "2026-11-26T07:00:00Z"}',
        b'{"event": "x"}',
        b'{"event": "x", "timestamp": "yesterday"}',
    ],
    ids=["empty", "text", "broken", "event-not-text", "no-time", "bad-time"],
)
def test_lines_that_are_not_records_are_skipped(line: bytes) -> None:
    assert parse_record("main-1st", line) is None


async def test_the_board_follows_modes_and_links_and_wakes_waiters() -> None:
    board = Board(DEVICES, t0_wall=1_795_676_400.0)
    for device in DEVICES:
        for event in ("agent_ready", "mqtt_up", "controller_link_up"):
            record = parse_record(device, record_line(event).encode())
            assert record is not None
            board.apply(record)
    assert board.all_ready()
    assert board.all_in("local")
    line = record_line(
        "mode_changed", before="local", after="central", reason="central commanded pattern 1"
    )
    record = parse_record("main-1st", line.encode())
    assert record is not None
    found = board.apply(record)
    assert found is not None
    assert found.at_s == pytest.approx(1.5)
    assert board.timeline.mode("main-1st") == "central"
    assert not await board.wait_until(lambda: board.all_in("central"), timeout_s=0.05)
    other = parse_record("main-2nd", line.encode())
    assert other is not None
    board.apply(other)
    assert await board.wait_until(lambda: board.all_in("central"), timeout_s=0.05)
    assert board.all_changed_to("central", since_wall=1_795_676_400.0)
    assert not board.all_changed_to("central", since_wall=1_795_676_402.0)
