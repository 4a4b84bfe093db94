"""``greenwave controller probe`` against the real simulator, as a technician runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.simfront.helpers import REPO, SimProcess, wait_for

from .helpers import TRANSPORTS, Transport, controller_url, start_all

EXIT_NO_ANSWER = 3


def probe(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Run ``greenwave controller probe --controller URL --count 3``; no config picked up."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "controller", "probe", "--controller", url,
         "--count", "3"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )  # fmt: skip


@pytest.fixture
def coordinated_sim(tmp_path: Path) -> Iterator[SimProcess]:
    """A simulator past its start-up flash, running pattern 1 (Monday 07:00)."""
    sim = start_all(tmp_path, "--speed", "20", "--no-view")
    try:
        wait_for("pattern 1", lambda: "pattern=1 " in sim.command("status"), timeout=20)
        yield sim
    finally:
        sim.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_probe_shows_the_running_pattern(
    coordinated_sim: SimProcess, tmp_path: Path, transport: Transport
) -> None:
    result = probe(tmp_path, controller_url(coordinated_sim, transport, tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("running     pattern 1, ") for line in lines), result.stdout
    live = [line for line in lines if "|" in line]
    assert len(live) == 3
    assert all("   p1 c" in line for line in live)
    assert result.stderr == ""


def test_probe_exits_3_when_nothing_answers(tmp_path: Path) -> None:
    """A silent controller: the port is open (nothing refuses), nothing answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = probe(tmp_path, f"udp://127.0.0.1:{port}")
    assert result.returncode == EXIT_NO_ANSWER
    assert "running" not in result.stdout
    assert f"udp://127.0.0.1:{port}: no answer after 3 tries" in result.stderr
    assert "Traceback" not in result.stderr


def test_probe_exits_3_when_the_serial_device_is_missing(tmp_path: Path) -> None:
    result = probe(tmp_path, f"serial://{tmp_path / 'no-such-tty'}")
    assert result.returncode == EXIT_NO_ANSWER
    assert "cannot open" in result.stderr
    assert "Traceback" not in result.stderr
