"""A guard for every demo test: no process that works in the test's directory outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (the demo's children all name
    their work directory: a config, a plan's events file, a broker config)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def _no_process_left_in_tmp_path(tmp_path: Path) -> Iterator[None]:
    yield
    left = processes_mentioning(str(tmp_path))
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"process(es) left running: {left}"
