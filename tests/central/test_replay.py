"""Replay memory and the plan version record: bounded, persistent, never silently forgetful."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.central.commands import Code, CommandRejected, CommandSettings
from agent.central.durable import DurableFile, StateFileError
from agent.central.replay import ReplayMemory, VersionRecord
from tests.central.world import FakeClock, World

SETTINGS = CommandSettings(replay_capacity=16)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _open(tmp_path: Path, clock: FakeClock) -> ReplayMemory:
    return ReplayMemory.open(tmp_path / "replay.json", settings=SETTINGS, clock=clock)


def _code(memory: ReplayMemory, jti: str) -> Code:
    try:
        memory.check(jti)
    except CommandRejected as rejection:
        return rejection.code
    return Code.OK


def test_an_id_is_remembered_until_exp_plus_skew(tmp_path: Path, clock: FakeClock) -> None:
    memory = _open(tmp_path, clock)
    memory.remember("a", clock.now + 60)
    assert _code(memory, "a") is Code.E_REPLAY
    assert "a" in memory
    clock.advance(60 + 30 - 1)
    assert _code(memory, "a") is Code.E_REPLAY
    clock.advance(1)
    assert _code(memory, "a") is Code.OK
    assert len(memory) == 0


def test_remembered_ids_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    _open(tmp_path, clock).remember("a", clock.now + 60)
    assert _code(_open(tmp_path, clock), "a") is Code.E_REPLAY


def test_unsynced_ids_are_written_with_the_next_durable_write(
    tmp_path: Path, clock: FakeClock
) -> None:
    memory = _open(tmp_path, clock)
    memory.remember("heartbeat-1", clock.now + 60, sync=False)
    assert _code(_open(tmp_path, clock), "heartbeat-1") is Code.OK  # not on disk yet
    memory.remember("plan-1", clock.now + 60)
    again = _open(tmp_path, clock)
    assert _code(again, "heartbeat-1") is Code.E_REPLAY
    assert _code(again, "plan-1") is Code.E_REPLAY


def test_when_full_new_commands_get_e_rate_and_nothing_is_forgotten(
    tmp_path: Path, clock: FakeClock
) -> None:
    memory = _open(tmp_path, clock)
    for n in range(16):
        memory.remember(f"id-{n}", clock.now + 60 + n, sync=False)
    with pytest.raises(CommandRejected) as caught:
        memory.remember("one-more", clock.now + 60)
    assert caught.value.code is Code.E_RATE
    assert all(_code(memory, f"id-{n}") is Code.E_REPLAY for n in range(16))
    clock.advance(60 + 30)  # id-0 expires
    memory.remember("one-more", clock.now + 60)
    assert len(memory) == 16


def test_expired_ids_are_pruned_from_the_file(tmp_path: Path, clock: FakeClock) -> None:
    memory = _open(tmp_path, clock)
    memory.remember("old", clock.now + 10)
    clock.advance(100)
    memory.remember("new", clock.now + 10)
    body = json.loads((tmp_path / "replay.json").read_text())["body"]
    assert list(body["seen"]) == ["new"]


def _damage(tmp_path: Path, *, backup_too: bool) -> None:
    (tmp_path / "replay.json").write_bytes(b'{"greenwave_state": 1, "ki')
    if backup_too:
        (tmp_path / "replay.json.bak").write_bytes(b"")


def test_a_lost_memory_starts_empty_but_quarantined(tmp_path: Path, clock: FakeClock) -> None:
    memory = _open(tmp_path, clock)
    memory.remember("a", clock.now + 60)
    memory.remember("b", clock.now + 60)
    _damage(tmp_path, backup_too=True)
    lost = _open(tmp_path, clock)
    assert len(lost) == 0
    with pytest.raises(CommandRejected) as caught:
        lost.check("anything-new")
    assert caught.value.code is Code.E_REPLAY
    assert "lost" in caught.value.detail
    # A restart during the quarantine does not end it.
    clock.advance(200)
    assert _code(_open(tmp_path, clock), "c") is Code.E_REPLAY
    # Once every token that might have been seen has expired, commands flow again.
    clock.advance(SETTINGS.replay_window_s - 200)
    again = _open(tmp_path, clock)
    assert _code(again, "c") is Code.OK
    again.remember("c", clock.now + 60)
    assert _open(tmp_path, clock).quarantine_until is None


def test_a_memory_read_from_its_backup_keeps_its_ids_and_is_quarantined(
    tmp_path: Path, clock: FakeClock
) -> None:
    memory = _open(tmp_path, clock)
    memory.remember("a", clock.now + 60)
    memory.remember("b", clock.now + 60)
    _damage(tmp_path, backup_too=False)
    from_backup = _open(tmp_path, clock)
    assert "a" in from_backup  # the backup is one write older: "b" may be lost
    assert from_backup.quarantine_until == clock.now + SETTINGS.replay_window_s


def test_verifier_over_a_lost_memory_refuses_everything(world: World) -> None:
    world.run(world.token())
    (world.state_dir / "replay.json").write_text("x")
    (world.state_dir / "replay.json.bak").write_text("x")
    world.restart()
    with pytest.raises(CommandRejected) as caught:
        world.run(world.token())
    assert caught.value.code is Code.E_REPLAY
    world.clock.advance(world.settings.replay_window_s)
    world.run(world.token())


def test_a_failed_write_refuses_the_command(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: DurableFile, body: object) -> None:
        raise StateFileError(f"{self.path}: cannot write: No space left on device")

    monkeypatch.setattr(DurableFile, "write", disk_full)
    token = world.token()
    with pytest.raises(CommandRejected) as caught:
        world.run(token)
    assert caught.value.code is Code.E_RATE
    assert "No space left" in caught.value.detail
    # Not durable, but this process still will not take it twice.
    monkeypatch.undo()
    with pytest.raises(CommandRejected) as again:
        world.run(token)
    assert again.value.code is Code.E_REPLAY


# -- plan version ------------------------------------------------------------------------


def test_plan_version_must_rise_and_persists(tmp_path: Path) -> None:
    record = VersionRecord.open(tmp_path / "plan-version.json")
    assert record.version == 0
    record.record(3)
    for stale in (3, 2):
        with pytest.raises(CommandRejected) as caught:
            record.record(stale)
        assert caught.value.code is Code.E_STALE_VERSION
    reopened = VersionRecord.open(tmp_path / "plan-version.json")
    assert reopened.version == 3
    reopened.check_newer(4)


def test_plan_version_with_no_good_copy_is_an_error(tmp_path: Path) -> None:
    record = VersionRecord.open(tmp_path / "plan-version.json")
    record.record(3)
    record.record(4)
    (tmp_path / "plan-version.json").write_text("{")
    assert VersionRecord.open(tmp_path / "plan-version.json").version == 3
    (tmp_path / "plan-version.json.bak").write_text("{")
    with pytest.raises(StateFileError):
        VersionRecord.open(tmp_path / "plan-version.json")
