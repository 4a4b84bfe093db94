"""``DurableFile.write(..., sync=False)``: atomic and kept by the kernel, without an fsync."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.central.durable import DurableFile


def test_an_unsynced_write_is_atomic_readable_and_keeps_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = DurableFile(tmp_path / "control.json", kind="control")
    file.write({"n": 1})
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    file.write({"n": 2}, sync=False)
    assert fsyncs == [], "sync=False must not fsync"
    loaded = DurableFile(tmp_path / "control.json", kind="control").load(lambda body: body)
    assert (loaded.value, loaded.source) == ({"n": 2}, "main")
    backup = DurableFile(tmp_path / "control.json.bak", kind="control").load(lambda body: body)
    assert backup.value == {"n": 1}, "the one-write-older backup is still kept"
    assert not (tmp_path / "control.json.tmp").exists()
    file.write({"n": 3})
    assert len(fsyncs) == 2, "the default still fsyncs the file and the directory"
