"""The events outbox: numbered, durable, bounded, and never a gap central cannot explain."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from agent.central.durable import strict_json_loads
from agent.central.outbox import (
    CURSOR_FILE,
    MAX_EVENT_BYTES,
    EventOutbox,
    OutboxError,
    decode_record,
    encode_record,
)
from agent.errors import GreenwaveError

REPO = Path(__file__).resolve().parents[2]
T0 = 1_795_657_262.0


def _event(i: int, **extra: Any) -> dict[str, Any]:
    return {"ts": T0 + i / 10, "code": 1 + i % 3, "param": i % 16, "src": "controller", **extra}


def _open(tmp_path: Path, **options: Any) -> EventOutbox:
    options.setdefault("capacity", 100_000)
    return EventOutbox.open(tmp_path / "events", **options)


def _segments(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "events").glob("events-*.log"))


def _stored_seqs(tmp_path: Path) -> list[int]:
    """Every intact record on disk, in file order (duplicates would show)."""
    seqs = []
    for path in _segments(tmp_path):
        for line in path.read_bytes().splitlines():
            decoded = decode_record(line)
            if decoded is not None:
                seqs.append(decoded[0])
    return seqs


class Central:
    """What central does with ``events`` payloads: deduplicate by seq, prove there is no gap."""

    def __init__(self) -> None:
        self.high = 0
        self.events: dict[int, dict[str, Any]] = {}
        self.dropped: dict[int, str] = {}
        self.batches = 0
        self.duplicates = 0

    def receive(self, payload: bytes) -> None:
        doc = strict_json_loads(payload)
        first, last = doc["first_seq"], doc["last_seq"]
        assert first <= self.high + 1, f"unexplained gap: had up to {self.high}, got {first}"
        assert first <= last
        covered: list[int] = []
        for gap in doc["dropped"]:
            assert gap["reason"] in {"capacity", "corrupt"}
            numbers = range(gap["from_seq"], gap["to_seq"] + 1)
            covered.extend(numbers)
            for seq in numbers:
                self.dropped.setdefault(seq, gap["reason"])
        seqs = [event["seq"] for event in doc["events"]]
        assert seqs == sorted(set(seqs)), "events out of order or repeated in one batch"
        for event in doc["events"]:
            seq = event["seq"]
            assert seq not in self.dropped, f"seq {seq} arrived after it was reported dropped"
            if seq in self.events:
                self.duplicates += 1
            assert self.events.setdefault(seq, event) == event, f"seq {seq} changed on resend"
        covered.extend(seqs)
        assert sorted(covered) == list(range(first, last + 1)), "batch does not cover its range"
        self.high = max(self.high, last)
        self.batches += 1

    def assert_complete(self, last_seq: int) -> None:
        assert self.high == last_seq
        assert set(self.events) | set(self.dropped) == set(range(1, last_seq + 1))


def _drain(outbox: EventOutbox, central: Central, batch_size: int = 100) -> None:
    while (batch := outbox.next_batch(batch_size)) is not None:
        central.receive(batch.payload("cabinet-17"))
        outbox.mark_forwarded(batch.last_seq)


# -- numbering and batches ------------------------------------------------------------


def test_numbers_are_contiguous_in_order_and_batches_are_compact_json(tmp_path: Path) -> None:
    with _open(tmp_path, segment_events=32) as outbox:
        assert [outbox.append(_event(i)) for i in range(1, 101)] == list(range(1, 101))
        assert outbox.append_many(_event(i) for i in range(101, 251)) == range(101, 251)
        outbox.sync()
        batch = outbox.next_batch(100)
        assert batch is not None
        assert (batch.first_seq, batch.last_seq, batch.dropped) == (1, 100, ())
        payload = batch.payload("cabinet-17")
        assert b" " not in payload
        doc = strict_json_loads(payload)
        assert list(doc) == ["device", "first_seq", "last_seq", "dropped", "events"]
        assert doc["events"][0] == {"seq": 1, **_event(1)}
        assert batch.events() == doc["events"]
        assert outbox.next_batch(100) == batch  # not forwarded: offered again
        central = Central()
        _drain(outbox, central)
    central.assert_complete(250)
    assert central.dropped == {}
    assert [event["param"] for event in central.events.values()] == [
        _event(i)["param"] for i in range(1, 251)
    ]


def test_only_synced_events_are_offered(tmp_path: Path) -> None:
    with _open(tmp_path) as outbox:
        outbox.append(_event(1))
        assert outbox.next_batch(10) is None
        with pytest.raises(ValueError, match="never offered"):
            outbox.mark_forwarded(1)
        outbox.sync()
        batch = outbox.next_batch(10)
        assert batch is not None
        assert batch.last_seq == 1


@pytest.mark.parametrize(
    ("event", "why"),
    [
        pytest.param({"seq": 5}, "own 'seq'", id="own-seq"),
        pytest.param({"x": float("nan")}, "not JSON", id="nan"),
        pytest.param({"x": object()}, "not JSON", id="not-serialisable"),
        pytest.param({1: "a"}, "keys must be strings", id="int-key"),
        pytest.param({"x": "y" * MAX_EVENT_BYTES}, "more than", id="too-large"),
    ],
)
def test_an_event_that_cannot_be_stored_is_refused_and_stores_nothing(
    tmp_path: Path, event: dict[Any, Any], why: str
) -> None:
    with _open(tmp_path) as outbox:
        outbox.append(_event(1))
        with pytest.raises(ValueError, match=why):
            outbox.append_many([_event(2), event])
        assert outbox.last_seq == 1
        assert outbox.append(_event(2)) == 2
    assert _stored_seqs(tmp_path) == [1, 2]


def test_record_round_trip_and_what_is_not_a_record() -> None:
    line = encode_record(7, {"code": 1, "s": "a\nb"})
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    assert decode_record(line[:-1]) == (7, b'{"seq":7,"code":1,"s":"a\\nb"}')
    flipped = bytearray(line[:-1])
    flipped[-3] ^= 0x01
    assert decode_record(bytes(flipped)) is None
    for prefix in range(len(line) - 1):
        assert decode_record(line[:prefix]) is None
    assert decode_record(b"00000000 {}") is None


# -- restarts ----------------------------------------------------------------------------


def test_a_restart_continues_the_sequence(tmp_path: Path) -> None:
    with _open(tmp_path) as outbox:
        outbox.append_many(_event(i) for i in range(10))
    with _open(tmp_path) as outbox:
        assert outbox.last_seq == 10
        assert outbox.append(_event(11)) == 11


def test_numbers_are_never_reused_after_everything_was_forwarded_and_deleted(
    tmp_path: Path,
) -> None:
    central = Central()
    with _open(tmp_path, segment_events=8) as outbox:
        outbox.append_many(_event(i) for i in range(50))
        outbox.sync()
        _drain(outbox, central, batch_size=7)
        outbox.sync()  # stores the cursor, then deletes forwarded segments
        assert len(_segments(tmp_path)) == 1  # only the newest is kept
    (tmp_path / "events" / CURSOR_FILE).unlink()
    (tmp_path / "events" / f"{CURSOR_FILE}.bak").unlink(missing_ok=True)
    with _open(tmp_path, segment_events=8) as outbox:
        assert outbox.last_seq == 50
        assert outbox.append(_event(51)) == 51
        outbox.sync()
        _drain(outbox, central)  # the newest segment again, then 51: duplicates, no gap
    central.assert_complete(51)


def test_the_forwarded_cursor_survives_a_restart(tmp_path: Path) -> None:
    with _open(tmp_path, segment_events=64) as outbox:
        outbox.append_many(_event(i) for i in range(300))
        outbox.sync()
        for _ in range(2):
            batch = outbox.next_batch(100)
            assert batch is not None
            outbox.mark_forwarded(batch.last_seq)
    with _open(tmp_path, segment_events=64) as outbox:
        assert outbox.forwarded_seq == 200
        batch = outbox.next_batch(100)
        assert batch is not None
        assert (batch.first_seq, batch.last_seq) == (201, 300)
        assert _stored_seqs(tmp_path)[0] == 193  # segments wholly forwarded are gone


def test_a_cursor_not_yet_stored_means_those_events_are_sent_again(tmp_path: Path) -> None:
    outbox = _open(tmp_path)
    outbox.append_many(_event(i) for i in range(30))
    outbox.sync()
    batch = outbox.next_batch(100)
    assert batch is not None
    outbox.mark_forwarded(batch.last_seq)
    outbox.close(sync=False)  # a crash before the next sync stored the cursor
    with _open(tmp_path) as outbox:
        again = outbox.next_batch(100)
        assert again is not None
        assert (again.first_seq, again.last_seq) == (1, 30)  # at least once


def test_an_unreadable_cursor_resends_what_is_stored_and_never_fails_open(
    tmp_path: Path,
) -> None:
    with _open(tmp_path) as outbox:
        outbox.append_many(_event(i) for i in range(20))
        outbox.sync()
        outbox.mark_forwarded(15)
    for name in (CURSOR_FILE, f"{CURSOR_FILE}.bak"):
        path = tmp_path / "events" / name
        if path.exists():
            path.write_bytes(b"\0" * 64)
    with capture_logs() as logs, _open(tmp_path) as outbox:
        assert outbox.forwarded_seq == 0
        assert outbox.append(_event(21)) == 21
    assert any(entry["event"] == "events_cursor_lost" for entry in logs)
    with _open(tmp_path) as outbox:
        assert outbox.forwarded_seq == 0  # the rewritten cursor is good again


def test_lost_segments_never_take_numbering_back_below_the_cursor(tmp_path: Path) -> None:
    with _open(tmp_path) as outbox:
        outbox.append_many(_event(i) for i in range(50))
        outbox.sync()
        outbox.mark_forwarded(50)
    for path in _segments(tmp_path):
        path.unlink()  # a technician "cleaning up"
    with _open(tmp_path) as outbox:
        assert outbox.append(_event(51)) == 51


def test_a_failed_write_leaves_no_half_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = 0

    def disk_fills_up(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data)[:37])
        raise OSError(28, "No space left on device")

    with _open(tmp_path) as outbox:
        outbox.append(_event(1))
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", disk_fills_up)
            with pytest.raises(OutboxError, match="No space left"):
                outbox.append_many(_event(i) for i in range(2, 5))
        assert outbox.last_seq == 1
        assert outbox.append(_event(2)) == 2
    assert _stored_seqs(tmp_path) == [1, 2]
    assert _segments(tmp_path)[0].read_bytes().count(b"\n") == 2


def test_a_second_opener_is_refused(tmp_path: Path) -> None:
    with _open(tmp_path), pytest.raises(OutboxError, match="another process"):
        _open(tmp_path)
    _open(tmp_path).close()  # released on close


def test_a_power_cut_never_reuses_a_number_central_has_seen(tmp_path: Path) -> None:
    outbox = _open(tmp_path)
    outbox.append_many(_event(i) for i in range(10))
    outbox.sync()
    on_medium = _segments(tmp_path)[0].stat().st_size
    outbox.append_many(_event(i) for i in range(10, 15))  # in the page cache only
    central = Central()
    _drain(outbox, central)
    assert central.high == 10  # the unsynced 11..15 were never offered
    outbox.close(sync=False)
    os.truncate(_segments(tmp_path)[0], on_medium)  # the power cut takes the page cache
    with _open(tmp_path) as outbox:
        assert outbox.last_seq == 10
        assert outbox.append(_event(99)) == 11  # 11 is free: central never saw it
        outbox.sync()
        _drain(outbox, central)
    central.assert_complete(11)
    assert central.events[11]["param"] == _event(99)["param"]


# -- torn and corrupt records -------------------------------------------------------------


def test_a_torn_final_record_is_truncated_at_every_byte_offset(tmp_path: Path) -> None:
    with _open(tmp_path / "whole") as outbox:
        outbox.append_many(_event(i, note="é\n") for i in range(5))
    segment = _segments(tmp_path / "whole")[0]
    data = segment.read_bytes()
    last_start = data.rindex(b"\n", 0, len(data) - 1) + 1
    for cut in range(last_start, len(data)):
        case = tmp_path / f"cut-{cut}"
        shutil.copytree(tmp_path / "whole", case)
        os.truncate(_segments(case)[0], cut)
        with _open(case) as outbox:
            assert outbox.last_seq == 4, cut
            assert outbox.append(_event(5)) == 5
            outbox.sync()
            central = Central()
            _drain(outbox, central)
        central.assert_complete(5)
        assert central.dropped == {}
        assert outbox.corrupt_records == 0
        assert _stored_seqs(case) == [1, 2, 3, 4, 5]


def test_zeros_after_a_power_cut_are_a_torn_tail_not_data(tmp_path: Path) -> None:
    with _open(tmp_path) as outbox:
        outbox.append_many(_event(i) for i in range(3))
    with _segments(tmp_path)[0].open("ab") as handle:
        handle.write(b"\0" * 4096)
    with capture_logs() as logs, _open(tmp_path) as outbox:
        assert outbox.last_seq == 3
        assert outbox.append(_event(4)) == 4
    assert [entry["bytes"] for entry in logs if entry["event"] == "events_torn_tail_truncated"] == [
        4096
    ]
    assert _stored_seqs(tmp_path) == [1, 2, 3, 4]


def _corrupt_line(path: Path, index: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = bytearray(lines[index])
    damaged[20] ^= 0x20
    lines[index] = bytes(damaged)
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("segment", [0, 1], ids=["older-segment", "newest-segment"])
def test_a_corrupt_record_in_the_middle_is_skipped_counted_and_reported(
    tmp_path: Path, segment: int
) -> None:
    with _open(tmp_path, segment_events=10) as outbox:
        outbox.append_many(_event(i) for i in range(20))
    _corrupt_line(_segments(tmp_path)[segment], 4)
    lost = 10 * segment + 5
    with capture_logs() as logs, _open(tmp_path, segment_events=10) as outbox:
        assert outbox.last_seq == 20
        central = Central()
        _drain(outbox, central)
        _drain(outbox, central)
        assert outbox.stats().corrupt_records == 1  # counted once, however often read
    central.assert_complete(20)
    assert central.dropped == {lost: "corrupt"}
    assert [entry["event"] for entry in logs].count("events_corrupt_record_skipped") == 1


def test_garbage_lines_between_records_are_skipped_without_a_gap(tmp_path: Path) -> None:
    with _open(tmp_path, segment_events=10) as outbox:
        outbox.append_many(_event(i) for i in range(20))
    path = _segments(tmp_path)[0]
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3:3] = [b"garbage\n", b"\n", b"x" * (3 * MAX_EVENT_BYTES) + b"\n", lines[2]]
    path.write_bytes(b"".join(lines))  # noise, an overlong line and a repeated record
    with _open(tmp_path, segment_events=10) as outbox:
        central = Central()
        _drain(outbox, central, batch_size=4)
        assert outbox.corrupt_records == 4
    central.assert_complete(20)
    assert central.dropped == {}


def test_a_torn_tail_of_an_older_segment_is_a_corrupt_gap(tmp_path: Path) -> None:
    with _open(tmp_path, segment_events=10) as outbox:
        outbox.append_many(_event(i) for i in range(25))
    older = _segments(tmp_path)[1]
    os.truncate(older, older.stat().st_size - 30)
    with _open(tmp_path, segment_events=10) as outbox:
        central = Central()
        _drain(outbox, central, batch_size=7)
    central.assert_complete(25)
    assert central.dropped == {20: "corrupt"}


# -- capacity ----------------------------------------------------------------------------


def test_overflow_drops_the_oldest_unforwarded_visibly_and_bounds_the_disk(
    tmp_path: Path,
) -> None:
    record = len(encode_record(1000, _event(1000)))
    central = Central()
    with capture_logs() as logs, _open(tmp_path, capacity=100) as outbox:
        outbox.append_many(_event(i) for i in range(1, 31))
        outbox.sync()
        batch = outbox.next_batch(25)
        assert batch is not None
        central.receive(batch.payload())
        outbox.mark_forwarded(batch.last_seq)
        for i in range(31, 1001):
            outbox.append(_event(i))
            assert outbox.stats().disk_bytes <= (100 + 2 * 10) * (record + 8)
            if i % 50 == 0:
                stored = _stored_seqs(tmp_path)
                assert len([seq for seq in stored if seq > 25]) <= 100
        outbox.sync()
        assert outbox.stats().dropped_total == 875
        first = outbox.next_batch(100)
        assert first is not None
        assert [gap.as_json() for gap in first.dropped] == [
            {"from_seq": 26, "to_seq": 900, "reason": "capacity"}
        ]
        _drain(outbox, central)
    central.assert_complete(1000)
    assert set(central.events) == set(range(1, 26)) | set(range(901, 1001))
    assert any(entry["event"] == "events_dropped" for entry in logs)


def test_a_drop_is_still_reported_after_a_crash(tmp_path: Path) -> None:
    outbox = _open(tmp_path, capacity=100)
    outbox.append_many(_event(i) for i in range(500))
    outbox.close(sync=False)
    with _open(tmp_path, capacity=100) as outbox:
        batch = outbox.next_batch(50)
        assert batch is not None
        assert [gap.as_json() for gap in batch.dropped] == [
            {"from_seq": 1, "to_seq": 400, "reason": "capacity"}
        ]
        assert batch.first_seq == 1
        assert batch.events()[0]["seq"] == 401


def test_stats_tell_pending_and_the_age_of_the_oldest(tmp_path: Path) -> None:
    now = [T0 + 100.0]
    with _open(tmp_path, clock=lambda: now[0]) as outbox:
        assert outbox.stats().oldest_pending_age_s is None
        outbox.append({"ts": T0 + 40.0, "code": 1})
        outbox.append({"src": "agent", "kind": "command"})
        stats = outbox.stats()
        assert (stats.pending, stats.oldest_pending_age_s) == (2, 60.0)
        outbox.sync()
        outbox.mark_forwarded(1)
        assert outbox.stats().oldest_pending_age_s is None  # the oldest has no ts


# -- a real SIGKILL --------------------------------------------------------------------------

_APPENDER = textwrap.dedent(
    """
    import random, sys
    from pathlib import Path
    from agent.central.outbox import EventOutbox
    from agent.logs import configure_logging
    configure_logging("warning", "json", sys.stderr)
    rng = random.Random(int(sys.argv[2]))
    outbox = EventOutbox.open(Path(sys.argv[1]), capacity=1_000_000, segment_events=300)
    print(outbox.last_seq, flush=True)
    while True:
        if rng.random() < 0.2:
            burst = [{"code": 1, "param": i} for i in range(rng.randint(1, 60))]
            last = outbox.append_many(burst)[-1]
        else:
            last = outbox.append({"code": 2, "pad": "x" * rng.randint(0, 300)})
        if rng.random() < 0.005:
            outbox.sync()
        print(last, flush=True)
    """
)


def test_sigkill_at_a_random_moment_loses_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    directory = tmp_path / "events"
    stored = 0
    for _round in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(directory), str(rng.randrange(1 << 30))],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert child.stdout is not None
            assert int(child.stdout.readline()) == stored, seed  # continues where it was
            reported, target = stored, stored + rng.randint(1, 3000)
            for line in child.stdout:
                reported = int(line)
                if reported >= target:
                    break
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=10)
            if child.stdout is not None:
                child.stdout.close()
        seqs = _stored_seqs(tmp_path)
        assert seqs == list(range(1, len(seqs) + 1)), seed
        assert len(seqs) >= reported, seed
        stored = len(seqs)
    with _open(tmp_path, capacity=1_000_000, segment_events=300) as outbox:
        assert outbox.last_seq == stored
        central = Central()
        _drain(outbox, central, batch_size=1000)
    central.assert_complete(stored)
    assert central.dropped == {}


# -- forwarding ------------------------------------------------------------------------------


async def _fast_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds / 1000)


@asynccontextmanager
async def _forwarding(
    outbox: EventOutbox, publish: Callable[[bytes], Awaitable[None]]
) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(outbox.keep_synced(), name="events-sync"),
            group.create_task(
                outbox.forward(publish, batch_size=50, device="cabinet-17", rng=random.Random(1)),
                name="events-forward",
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


class FlakyBroker:
    """Takes ``events`` payloads into a :class:`Central`; may be down or lose PUBACKs."""

    def __init__(self, seed: int) -> None:
        self.central = Central()
        self.up = True
        self.failures = 0
        self.rng = random.Random(seed)
        self.failed = asyncio.Event()
        self._waiting: tuple[int, asyncio.Event] | None = None

    async def publish(self, payload: bytes) -> None:
        await asyncio.sleep(0)
        if not self.up or self.rng.random() < 0.2:
            self._fail()
            raise GreenwaveError("broker unreachable")
        self.central.receive(payload)
        if self.rng.random() < 0.1:  # delivered, but the PUBACK was lost
            self._fail()
            raise GreenwaveError("no PUBACK")
        if self._waiting is not None and self.central.high >= self._waiting[0]:
            self._waiting[1].set()

    def _fail(self) -> None:
        self.failures += 1
        self.failed.set()

    async def has(self, seq: int) -> None:
        reached = asyncio.Event()
        self._waiting = (seq, reached)
        if self.central.high < seq:
            await asyncio.wait_for(reached.wait(), timeout=20)


async def _produce(outbox: EventOutbox, first: int, count: int, rng: random.Random) -> None:
    i = first
    while i < first + count:
        size = min(rng.randint(1, 40), first + count - i)
        outbox.append_many(_event(n) for n in range(i, i + size))
        i += size
        await asyncio.sleep(0)


async def test_forward_delivers_everything_in_order_across_intermittent_failures(
    tmp_path: Path,
) -> None:
    broker = FlakyBroker(seed=7)
    outbox = _open(tmp_path, segment_events=100, fsync_interval_s=0.5, sleep=_fast_sleep)
    try:
        async with _forwarding(outbox, broker.publish):
            await _produce(outbox, 1, 2000, random.Random(3))
            await broker.has(2000)
    finally:
        outbox.close()
    broker.central.assert_complete(2000)
    assert broker.central.dropped == {}
    assert broker.failures > 10


async def test_broker_outage_and_a_crash_during_it_lose_no_event(tmp_path: Path) -> None:
    """The SPEC §4 acceptance, in one process: outage, crash mid-outage, everything arrives."""
    broker = FlakyBroker(seed=11)
    rng = random.Random(5)
    options: dict[str, Any] = {"segment_events": 64, "sleep": _fast_sleep}
    outbox = _open(tmp_path, **options)
    async with _forwarding(outbox, broker.publish):
        await _produce(outbox, 1, 200, rng)
        await broker.has(200)
        broker.up = False
        broker.failed.clear()
        await _produce(outbox, 201, 500, rng)
        await asyncio.wait_for(broker.failed.wait(), timeout=10)
    outbox.close(sync=False)  # SIGKILL during the outage
    outbox = _open(tmp_path, **options)
    try:
        assert outbox.last_seq == 700
        async with _forwarding(outbox, broker.publish):
            await _produce(outbox, 701, 300, rng)
            broker.up = True
            await broker.has(1000)
    finally:
        outbox.close()
    broker.central.assert_complete(1000)
    assert broker.central.dropped == {}


async def test_wait_pending_returns_once_something_is_synced(tmp_path: Path) -> None:
    with _open(tmp_path) as outbox:
        waiter = asyncio.create_task(outbox.wait_pending())
        outbox.append(_event(1))
        await asyncio.sleep(0)
        assert not waiter.done()  # appended, not yet on the medium
        outbox.sync()
        await asyncio.wait_for(waiter, timeout=5)
        outbox.mark_forwarded(1)
        waiter = asyncio.create_task(outbox.wait_pending())
        await asyncio.sleep(0)
        assert not waiter.done()  # everything synced is forwarded
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter


async def test_keep_synced_syncs_at_once_then_at_most_every_interval(tmp_path: Path) -> None:
    sleeping, interval_over = asyncio.Event(), asyncio.Event()
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        sleeping.set()
        await interval_over.wait()
        interval_over.clear()

    with _open(tmp_path, fsync_interval_s=2.0, sleep=sleep) as outbox:
        syncer = asyncio.create_task(outbox.keep_synced())
        outbox.append(_event(1))
        await asyncio.wait_for(outbox.wait_pending(), timeout=5)
        assert outbox.synced_seq == 1  # the first change: at once
        await asyncio.wait_for(sleeping.wait(), timeout=5)
        assert asked == [2.0]
        outbox.append(_event(2))
        outbox.mark_forwarded(1)
        await asyncio.sleep(0)
        assert outbox.synced_seq == 1  # within the interval: not yet
        interval_over.set()
        await asyncio.wait_for(outbox.wait_pending(), timeout=5)
        assert outbox.synced_seq == 2
        syncer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await syncer


async def test_a_failed_sync_is_logged_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    failures = [OSError(5, "Input/output error")]

    def flaky_fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fsync(fd)

    with _open(tmp_path, sleep=_fast_sleep) as outbox:
        monkeypatch.setattr(os, "fsync", flaky_fsync)
        syncer = asyncio.create_task(outbox.keep_synced())
        with capture_logs() as logs:
            outbox.append(_event(1))
            await asyncio.wait_for(outbox.wait_pending(), timeout=5)
        assert outbox.synced_seq == 1
        assert [entry["event"] for entry in logs] == ["events_sync_failed"]
        syncer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await syncer


# -- any interleaving -----------------------------------------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 60)),
        st.tuples(st.just("sync"), st.just(0)),
        st.tuples(st.just("forward"), st.integers(1, 40)),
        st.tuples(st.just("lost-puback"), st.integers(1, 40)),
        st.tuples(st.just("crash"), st.just(0)),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS, capacity=st.sampled_from([1_000_000, 40]))
def test_any_interleaving_delivers_a_contiguous_complete_stream(
    ops: list[tuple[str, int]], capacity: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp, mock.patch("os.fsync"), capture_logs():
        path = Path(tmp)
        outbox = _open(path, capacity=capacity)
        central = Central()
        appended = 0
        for op, n in ops:
            if op == "append":
                numbers = outbox.append_many(_event(appended + i) for i in range(1, n + 1))
                assert numbers == range(appended + 1, appended + n + 1)  # never reused
                appended += n
            elif op == "sync":
                outbox.sync()
            elif op in {"forward", "lost-puback"} and (batch := outbox.next_batch(n)):
                central.receive(batch.payload())
                if op == "forward":
                    outbox.mark_forwarded(batch.last_seq)
            elif op in {"crash", "restart"}:
                outbox.close(sync=op == "restart")
                outbox = _open(path, capacity=capacity)
                assert outbox.last_seq == appended
        outbox.sync()
        _drain(outbox, central, batch_size=7)
        outbox.close()
    central.assert_complete(appended)
    if capacity > appended:
        assert central.dropped == {}
    hypothesis.event(f"dropped: {bool(central.dropped)}, resent: {central.duplicates > 0}")
    for seq, received in central.events.items():
        assert received == {"seq": seq, **json.loads(json.dumps(_event(seq)))}
