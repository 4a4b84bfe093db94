"""Run the real ``greenwave`` command in a subprocess, as a technician would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def greenwave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``greenwave(*args)`` → CompletedProcess; no config is picked up by accident."""
    monkeypatch.delenv("GREENWAVE_CONFIG", raising=False)

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.cli.main", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(env or {})},
            timeout=60,
            check=False,
        )

    return run
