"""What the benchmark scripts share: the machine, figures as JSON, process bookkeeping.

Imported by ``bench/footprint.py``, ``bench/fallback.py``, ``bench/fleet.py``
and ``bench/run.py`` (they run as scripts, so ``bench/`` is first on
``sys.path``). The measuring pieces of the central link (the rig, CPU and
memory of a process from ``/proc``) live in ``bench/central.py`` and are
imported from there, not copied.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: the rig lives in tests/
    sys.path.insert(0, str(REPO))

from tests.broker import Mosquitto  # noqa: E402
from tests.e2e.harness import AGENTS  # noqa: E402
from tests.simfront.helpers import STARTED  # noqa: E402

#: Brokers a benchmark started (stopped on exit with the agents and simulators).
BROKERS: list[Mosquitto] = []
#: Other child processes a benchmark started.
CHILDREN: list[subprocess.Popen[bytes]] = []
#: Work directories of runs in progress (removed on Ctrl-C too).
WORKDIRS: list[Path] = []


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the figures)."""
    print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on, and when."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024**2
    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(ram_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def min_median_max(values: Iterable[float], *, digits: int = 3) -> dict[str, Any]:
    """n, min, median and max of ``values`` (same unit)."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "min": round(ordered[0], digits),
        "median": round(statistics.median(ordered), digits),
        "max": round(ordered[-1], digits),
    }


def write_json(path: Path | None, figures: dict[str, Any]) -> None:
    """Write ``figures`` to ``path`` (the runner reads it); nothing when ``path`` is None."""
    if path is not None:
        path.write_text(json.dumps(figures, indent=2) + "\n")


def process_stat(pid: int) -> tuple[float, float]:
    """(utime + stime in seconds, VmRSS in MiB) of ``pid``; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(fields[21])
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class NotifySocket:
    """What systemd listens on for ``Type=notify``: a unix datagram socket at a path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait_for(self, key: str, value: str, timeout: float) -> float | None:
        """``time.monotonic()`` when a datagram with ``key=value`` arrived; None on timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                return None
            data = self.sock.recv(4096).decode(errors="replace")
            at = time.monotonic()
            if f"{key}={value}" in data.splitlines():
                return at
        return None

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def stop_everything() -> None:
    """Kill whatever a benchmark started and is still running (on exit, even after Ctrl-C)."""
    for proc in (*CHILDREN, *AGENTS, *STARTED):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
    for broker in BROKERS:
        with contextlib.suppress(Exception):
            broker.stop(sig=signal.SIGKILL)


@contextlib.contextmanager
def run_directory(prefix: str) -> Iterator[Path]:
    """A temporary directory for one run; every child process is stopped before it goes."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    WORKDIRS.append(path)
    try:
        yield path
    finally:
        stop_everything()
        shutil.rmtree(path, ignore_errors=True)
        WORKDIRS.remove(path)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM: stop every child, remove the work directories, exit at once."""
    progress(f"interrupted (signal {signum}): stopping every process this benchmark started")
    stop_everything()
    for path in WORKDIRS:
        shutil.rmtree(path, ignore_errors=True)
    os._exit(128 + signum)


def clean_up_on_exit() -> None:
    """Stop every child process at exit, and on Ctrl-C or SIGTERM at once.

    Exiting from the signal handler, rather than raising KeyboardInterrupt
    into the event loop, is deliberate: a cancellation or an exception
    raised somewhere inside aiomqtt, a ``TaskGroup`` or ``asyncio.timeout``
    may be absorbed, and a benchmark must never leave a fleet running.
    """
    atexit.register(stop_everything)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
