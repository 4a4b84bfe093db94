"""The audit log: hash chain, torn writes, SIGKILL, floods, rotation, and every tamper named."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from structlog.testing import capture_logs

from agent.central.durable import strict_json_loads
from agent.supervisor.audit import (
    GENESIS,
    HEAD_FILE,
    MAX_LINE_BYTES,
    MAX_TEXT_CHARS,
    AuditEntry,
    AuditError,
    AuditLog,
    Kind,
    VerifyReport,
    entries,
    entry_hash,
    verify,
)

REPO = Path(__file__).resolve().parents[2]
T0 = 1_795_657_262.0

Action = Literal["edit", "rewrite", "delete", "swap"]


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_log(directory: Path, clock: FakeClock | None = None, **options: Any) -> AuditLog:
    return AuditLog.open(directory, clock=clock or FakeClock(), **options)


def fill(audit: AuditLog, count: int, *, start: int = 0) -> list[AuditEntry]:
    """``count`` command entries, a mix of durable and grouped ones."""
    written = []
    for i in range(start, start + count):
        written.append(
            audit.append(
                Kind.COMMAND,
                durable=i % 4 == 0,
                cmd="control.pattern",
                jti=f"c-{i:04d}",
                outcome="accepted",
                code="OK",
                pattern=1 + i % 8,
            )
        )
    return written


def make_log(directory: Path, layout: Literal["one-file", "rotated"]) -> None:
    """A closed log: 12 entries in one file, or many over kept files after rotations."""
    if layout == "one-file":
        with open_log(directory) as audit:
            fill(audit, 12)
    else:
        with open_log(directory, max_file_bytes=1024, keep_files=3) as audit:
            fill(audit, 30)
        assert verify(directory).first_seq > 1  # files were dropped


def log_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-*.log"))


def stored(directory: Path) -> list[tuple[Path, int, dict[str, Any]]]:
    """Every line of every file: (file, index in file, entry)."""
    out = []
    for path in log_files(directory):
        for index, line in enumerate(path.read_bytes().splitlines()):
            out.append((path, index, json.loads(line)))
    return out


def boundary_index(directory: Path) -> int:
    """The index (over all lines) of the last entry of the oldest file."""
    return len(log_files(directory)[0].read_bytes().splitlines()) - 1


def tamper(directory: Path, action: Action, index: int) -> int:
    """Alter the entry at ``index`` (over all lines, oldest first); the seq verify must name.

    ``edit`` changes a field, ``rewrite`` changes it *and* recomputes its hash,
    ``delete`` removes the line, ``swap`` exchanges it with the next one.
    """
    files = log_files(directory)
    lines = {path: path.read_bytes().splitlines(keepends=True) for path in files}
    flat = [(path, i) for path in files for i in range(len(lines[path]))]
    path, i = flat[index]
    body = json.loads(lines[path][i])
    seq: int = body["seq"]
    if action in ("edit", "rewrite"):
        body["ts"] += 3600
        if action == "rewrite":
            body["hash"] = entry_hash(body)
        lines[path][i] = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    elif action == "delete":
        del lines[path][i]
    else:
        other_path, j = flat[index + 1]
        lines[path][i], lines[other_path][j] = lines[other_path][j], lines[path][i]
    for file in files:
        file.write_bytes(b"".join(lines[file]))
    return seq


def position(directory: Path, where: str, action: Action) -> int:
    count = len(stored(directory))
    last = count - 2 if action == "swap" else count - 1
    return {"first": 0, "middle": count // 2, "last": last, "boundary": boundary_index(directory)}[
        where
    ]


EXPECTED_KIND = {"edit": "edited", "rewrite": "edited", "delete": "removed", "swap": "reordered"}


def tamper_cases() -> Iterator[Any]:
    for layout in ("one-file", "rotated"):
        wheres = ("first", "middle", "last") + (("boundary",) if layout == "rotated" else ())
        for action in ("edit", "rewrite", "delete", "swap"):
            for where in wheres:
                yield pytest.param(layout, action, where, id=f"{layout}-{action}-{where}")


# -- appending, reopening ----------------------------------------------------------------------


def test_entries_chain_and_continue_after_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    clock = FakeClock()
    with open_log(directory, clock) as audit:
        first = audit.append(Kind.AGENT, event="started")
        clock.now += 1.5
        second = audit.append(Kind.MODE, durable=True, mode="local", previous="fault")
    assert (first.seq, first.prev) == (1, GENESIS)
    assert (second.seq, second.prev, second.ts) == (2, first.hash, T0 + 1.5)
    with open_log(directory, clock) as audit:
        assert (audit.last_seq, audit.last_hash) == (2, second.hash)
        third = audit.append(Kind.TECHNICIAN, action="override", pattern=3, duration_s=600)
    assert (third.seq, third.prev) == (3, second.hash)
    on_disk = [entry.as_json() for entry in entries(directory)]
    assert on_disk == [first.as_json(), second.as_json(), third.as_json()]
    line = log_files(directory)[0].read_bytes().splitlines()[1]
    body = strict_json_loads(line)
    assert list(body)[:3] == ["seq", "ts", "kind"]
    assert list(body)[-2:] == ["prev", "hash"]
    assert body["hash"] == entry_hash(body)
    report = verify(directory)
    assert (report.ok, report.entries, report.last_seq, report.first_problem) == (
        True,
        3,
        3,
        None,
    )


def test_durable_entries_are_synced_with_the_head_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    with open_log(directory) as audit:
        audit.append(Kind.COMMAND, outcome="rejected", code="E_SCHEMA", detail="x")
        assert audit.synced_seq == 0  # grouped: waits for sync()
        entry = audit.append(Kind.MODE, durable=True, mode="central")
        assert audit.synced_seq == 2
        head = json.loads((directory / HEAD_FILE).read_text())["body"]
        assert (head["seq"], head["hash"]) == (2, entry.hash)
        audit.append(Kind.AGENT, event="note")
        audit.sync()
        assert audit.synced_seq == 3


async def test_keep_synced_groups_fsyncs_and_ends_rejection_windows(tmp_path: Path) -> None:
    sleeping = asyncio.Event()
    ticks: asyncio.Queue[None] = asyncio.Queue()

    async def tick_sleep(_seconds: float) -> None:
        sleeping.set()
        await ticks.get()

    async def one_round() -> None:
        sleeping.clear()
        ticks.put_nowait(None)
        await asyncio.wait_for(sleeping.wait(), 5)

    clock = FakeClock()
    audit = open_log(tmp_path / "audit", clock, sleep=tick_sleep, rejection_window_s=10)
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(audit.keep_synced(0.5), name="audit-sync")
            await asyncio.wait_for(sleeping.wait(), 5)
            audit.append(Kind.AGENT, event="started")
            for _ in range(3):
                audit.note_rejection("E_SIGNATURE", "bad signature")
            assert audit.last_seq == 2
            assert audit.synced_seq == 0
            await one_round()
            assert audit.synced_seq == 2
            clock.now += 10  # the window ends: its count is written on the next round
            await one_round()
            assert audit.last_seq == 3
            assert audit.synced_seq == 3
            task.cancel()
    finally:
        audit.close()
    summary = list(entries(tmp_path / "audit"))[-1]
    assert summary.kind == "command_rejections"
    assert summary.fields["count"] == 2
    assert summary.fields["codes"] == {"E_SIGNATURE": 2}


def test_one_writer_per_directory(tmp_path: Path) -> None:
    with open_log(tmp_path / "audit"), pytest.raises(AuditError, match="another process"):
        open_log(tmp_path / "audit")


def test_fields_are_checked_and_long_text_is_cut(tmp_path: Path) -> None:
    with open_log(tmp_path / "audit") as audit:
        for bad in ({"seq": 3}, {"hash": "x"}, {"Bad-Name": 1}, {"x": float("nan")}, {"x": {1}}):
            with pytest.raises(ValueError, match="audit"):
                audit.append(Kind.AGENT, **bad)
        with pytest.raises(ValueError, match="kind"):
            audit.append("Not A Kind")
        with pytest.raises(ValueError, match="more than"):
            audit.append(Kind.AGENT, many=["y" * 400] * (MAX_LINE_BYTES // 400))
        entry = audit.append(Kind.AGENT, detail="z" * 5000, codes={"E_RATE": 2}, ok=None)
        assert audit.last_seq == 1  # nothing written by the refused ones
    assert len(entry.fields["detail"]) == MAX_TEXT_CHARS
    assert entry.fields["detail"][-1] == "…"
    assert verify(tmp_path / "audit").ok


def test_a_failing_forwarder_never_undoes_the_record(tmp_path: Path) -> None:
    seen: list[AuditEntry] = []

    def forward(entry: AuditEntry) -> None:
        seen.append(entry)
        raise RuntimeError("outbox full")

    with capture_logs() as logs, open_log(tmp_path / "audit", on_entry=forward) as audit:
        entry = audit.append(Kind.MODE, durable=True, mode="flash")
    assert seen == [entry]
    assert seen[0].as_event() == {
        "ts": entry.ts,
        "src": "audit",
        "kind": "mode",
        "entry": entry.as_json(),
    }
    assert any(log["event"] == "audit_forward_failed" for log in logs)


def test_entries_filters_by_time_and_kind(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_log(tmp_path / "audit", clock) as audit:
        for i, kind in enumerate([Kind.AGENT, Kind.MODE, Kind.COMMAND, Kind.MODE]):
            clock.now = T0 + 60 * i
            audit.append(kind, n=i)
    got = [(e.seq, e.kind) for e in entries(tmp_path / "audit", since=T0 + 60)]
    assert got == [(2, "mode"), (3, "command"), (4, "mode")]
    got = [(e.seq, e.kind) for e in entries(tmp_path / "audit", kinds=["mode"])]
    assert got == [(2, "mode"), (4, "mode")]
    with pytest.raises(AuditError, match="no audit log"):
        list(entries(tmp_path / "nowhere"))


# -- crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b'{"seq":6,"ts":179565', id="cut-mid-line"),
        pytest.param(b"\0" * 300, id="zeros"),
        pytest.param(b"\0\0\0\n\0\0", id="zeros-with-lf"),
    ],
)
def test_a_torn_last_line_is_cut_on_open_and_recorded(tmp_path: Path, tail: bytes) -> None:
    directory = tmp_path / "audit"
    with open_log(directory) as audit:
        written = fill(audit, 5)
    with log_files(directory)[-1].open("ab") as handle:
        handle.write(tail)
    before = verify(directory)
    if b"\n" not in tail:  # a line still being written, as far as verify can tell
        assert before.ok
        assert before.pending_bytes == len(tail)
    with capture_logs() as logs, open_log(directory) as audit:
        assert audit.last_seq == 6  # 5, then the repair's own entry
        recovered = list(entries(directory))[-1]
        after = audit.append(Kind.AGENT, event="next")
    assert any(log["event"] == "audit_torn_tail_cut" for log in logs)
    assert recovered.kind == "audit_recovered"
    assert recovered.prev == written[-1].hash
    assert recovered.fields["torn_bytes"] == len(tail)
    assert after.seq == 7
    report = verify(directory)
    assert report.ok
    assert report.entries == 7
    assert report.pending_bytes == 0


def test_a_rotation_cut_short_leaves_no_trace(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    with open_log(directory, max_file_bytes=1024) as audit:
        fill(audit, 3)
    (directory / "audit-00000000000000000004.log").write_bytes(b"")  # created, never written
    assert verify(directory).ok
    with open_log(directory, max_file_bytes=1024) as audit:
        assert audit.last_seq == 3
        assert audit.append(Kind.AGENT, event="next").seq == 4
    assert verify(directory).ok


_APPENDER = textwrap.dedent(
    """
    import random, sys
    from pathlib import Path
    from agent.logs import configure_logging
    from agent.supervisor.audit import AuditLog
    configure_logging("warning", "json", sys.stderr)
    rng = random.Random(int(sys.argv[2]))
    audit = AuditLog.open(Path(sys.argv[1]), max_file_bytes=4096, keep_files=3)
    print(audit.last_seq, flush=True)
    while True:
        if rng.random() < 0.3:
            entry = audit.note_rejection("E_SIGNATURE", "forged")
            if entry is None:
                continue
        else:
            entry = audit.append(
                "command", durable=rng.random() < 0.1, pad="x" * rng.randint(0, 300)
            )
        if rng.random() < 0.02:
            audit.sync()
        print(entry.seq, flush=True)
    """
)


def test_sigkill_at_a_random_moment_leaves_a_verifiable_log(tmp_path: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    directory = tmp_path / "audit"
    last = 0
    for _round in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(directory), str(rng.randrange(1 << 30))],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert child.stdout is not None
            assert int(child.stdout.readline()) >= last, seed  # continues where it was
            reported, target = last, last + rng.randint(1, 400)
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
        report = verify(directory)
        assert report.ok, (seed, report.first_problem)
        assert report.last_seq >= reported, seed  # nothing append() returned is lost
        seqs = [entry.seq for entry in entries(directory)]
        assert seqs == list(range(report.first_seq, report.last_seq + 1)), seed
        assert len(log_files(directory)) <= 3 + 1, seed  # killed mid-rotation: one extra
        last = report.last_seq
    with open_log(directory, max_file_bytes=4096, keep_files=3) as audit:
        assert audit.last_seq == last
        audit.append(Kind.AGENT, event="after the kills")
    assert verify(directory).ok
    assert len(log_files(directory)) <= 3


def test_entries_the_head_vouched_for_are_never_numbered_again(tmp_path: Path) -> None:
    """Storage that lied about fsync (or a tamperer) lost the newest synced entries."""
    directory = tmp_path / "audit"
    with open_log(directory) as audit:
        written = fill(audit, 10)
    path = log_files(directory)[0]
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:8]))
    with capture_logs() as logs, open_log(directory) as audit:
        assert audit.last_seq == 11
        audit.append(Kind.AGENT, event="next")
    assert any(log["event"] == "audit_entries_missing" for log in logs)
    recovered = next(e for e in entries(directory) if e.kind == "audit_recovered")
    assert recovered.seq == 11
    assert recovered.prev == written[9].hash
    assert (recovered.fields["missing_from"], recovered.fields["missing_to"]) == (9, 10)
    problem = verify(directory).first_problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("removed", 9)


# -- floods --------------------------------------------------------------------------------------


def test_a_flood_of_forged_commands_costs_a_few_entries_and_no_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    directory = tmp_path / "audit"
    audit = open_log(directory, clock, rejection_window_s=10, rejection_burst=20)
    audit.append(Kind.AGENT, event="started")  # the file exists (its creation is fsynced)
    fsyncs = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    individual = 0
    for i in range(5000):
        clock.now = T0 + i * 0.01  # 100 per second for 50 s
        code = "E_AUDIENCE" if i % 7 == 0 else "E_SIGNATURE"
        individual += audit.note_rejection(code, f"forged #{i}") is not None
    for _ in range(500):  # a captured command replayed: authenticated, same jti
        individual += audit.note_rejection("E_REPLAY", "seen", jti="c-0001") is not None
    assert fsyncs == 0
    monkeypatch.undo()
    audit.close()
    written = list(entries(directory))
    assert len(written) <= 1 + 20 + 20
    summaries = [e for e in written if e.kind == "command_rejections"]
    counted = sum(e.fields["count"] for e in summaries)
    assert counted + individual == 5500
    assert individual == 2 * 5 + 20  # per window: one per code; 20 authenticated
    last = summaries[-1].fields
    assert last["codes"]["E_REPLAY"] == 480
    assert last["authenticated"] == 480
    assert last["window_s"] == 10
    assert verify(directory).ok


# -- rotation -----------------------------------------------------------------------------------


def test_rotation_keeps_the_newest_files_and_anchors_the_chain(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    with open_log(directory, max_file_bytes=2048, keep_files=3) as audit:
        fill(audit, 400)
        last = audit.last_seq
    files = log_files(directory)
    assert len(files) == 3
    assert all(path.stat().st_size <= 2048 for path in files)
    report = verify(directory)
    assert report.ok
    assert report.last_seq == last
    assert report.first_seq > 300
    kept = list(entries(directory))
    assert kept[0].seq == report.first_seq
    assert files[0].name == f"audit-{report.first_seq:020d}.log"
    rotated = [e for e in kept if e.kind == "audit_rotated"]
    assert rotated, "each drop is recorded"
    newest = rotated[-1].fields
    assert newest["dropped_to"] == report.first_seq - 1
    assert newest["dropped_last_hash"] == kept[0].prev


def test_rotation_interrupted_before_the_old_files_went(tmp_path: Path) -> None:
    """A crash between recording a drop and deleting the files: verify and open cope."""
    directory = tmp_path / "audit"
    with open_log(directory, max_file_bytes=1024, keep_files=2) as audit:
        fill(audit, 4)
        before = log_files(directory)
        saved = {path: path.read_bytes() for path in before}
        fill(audit, 6, start=4)
    for path, data in saved.items():  # the dropped files are back
        path.write_bytes(data)
    assert verify(directory).ok
    with open_log(directory, max_file_bytes=1024, keep_files=2) as audit:
        audit.append(Kind.AGENT, event="next")
    assert len(log_files(directory)) <= 2
    assert verify(directory).ok


# -- tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("layout", "action", "where"), list(tamper_cases()))
def test_verify_names_the_tampered_entry(
    tmp_path: Path, layout: Literal["one-file", "rotated"], action: Action, where: str
) -> None:
    directory = tmp_path / "audit"
    make_log(directory, layout)
    seq = tamper(directory, action, position(directory, where, action))
    report = verify(directory)
    assert not report.ok
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (EXPECTED_KIND[action], seq), problem.describe()
    assert problem.describe().startswith(f"entry {seq} (audit-")


def test_an_entry_moved_far_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    make_log(directory, "one-file")
    path = log_files(directory)[0]
    lines = path.read_bytes().splitlines(keepends=True)
    lines.append(lines.pop(2))  # entry 3 to the end
    path.write_bytes(b"".join(lines))
    problem = verify(directory).first_problem
    assert problem is not None
    assert (problem.kind, problem.seq, problem.line) == ("reordered", 3, 12)


def test_a_whole_old_file_deleted_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    make_log(directory, "rotated")
    first = verify(directory).first_seq
    log_files(directory)[0].unlink()
    problem = verify(directory).first_problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("removed", first)


@pytest.mark.parametrize("also_last_entry", [False, True])
def test_a_deleted_head_file_is_reported(tmp_path: Path, also_last_entry: bool) -> None:
    directory = tmp_path / "audit"
    make_log(directory, "one-file")
    if also_last_entry:
        tamper(directory, "delete", 11)
    for name in (HEAD_FILE, HEAD_FILE + ".bak"):
        (directory / name).unlink()
    problem = verify(directory).first_problem
    assert problem is not None
    assert (problem.kind, problem.seq, problem.file) == ("removed", None, HEAD_FILE)


def test_a_head_file_missing_its_backup_in_use_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    make_log(directory, "one-file")
    (directory / HEAD_FILE).unlink()
    problem = verify(directory).first_problem
    assert problem is not None
    assert problem.file == HEAD_FILE
    assert "missing" in problem.detail


def test_a_garbage_line_is_unreadable(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    make_log(directory, "one-file")
    path = log_files(directory)[0]
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = b"not json at all\n"
    path.write_bytes(b"".join(lines))
    problem = verify(directory).first_problem
    assert problem is not None
    assert (problem.kind, problem.seq, problem.line) == ("unreadable", 5, 5)


def test_verify_beside_a_running_writer(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    with open_log(directory, max_file_bytes=1024, keep_files=2) as audit:
        fill(audit, 10)
        assert audit.synced_seq < audit.last_seq  # the head lags: that is not a problem
        report: VerifyReport = verify(directory)
        assert report.ok
        assert report.last_seq == audit.last_seq
        assert report.head is not None
        assert report.head.seq == audit.synced_seq


def test_verify_an_empty_or_missing_log(tmp_path: Path) -> None:
    with open_log(tmp_path / "audit"):
        pass
    report = verify(tmp_path / "audit")
    assert (report.ok, report.entries, report.last_seq) == (True, 0, 0)
    with pytest.raises(AuditError, match="no audit log"):
        verify(tmp_path / "nowhere")
