"""``greenwave demo`` as a user runs it: the whole story, interrupted, or refused.

The real command in a subprocess, with the real broker, simulators and agents
it starts. The children are found in ``/proc`` (every process whose parent is
the demo) and must be gone — processes and process groups — when it exits.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "agent.cli.main", "demo"]
DEVICES = ("main-1st", "main-2nd", "main-3rd", "main-4th", "main-5th")
#: The modes in one timeline line: "main-1st: local → central (t=4.2 s) → local (…) → …".
MODE = re.compile(r"(?:^|→ )(\w+)")


def environment(tmp_path: Path) -> dict[str, str]:
    """The caller's environment minus any GREENWAVE_* setting; temp files under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENWAVE_")}
    env["TMPDIR"] = str(tmp_path)
    return env


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …: comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists (a zombie counts: nobody reaped it)."""
    return Path(f"/proc/{pid}").exists()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def in_order(modes: list[str], wanted: list[str]) -> bool:
    """``wanted`` is a subsequence of ``modes``."""
    rest = iter(modes)
    return all(mode in rest for mode in wanted)


def story_modes(line: str) -> list[str]:
    device_and_modes = line.split(": ", 1)[1]
    return MODE.findall(device_and_modes)


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Demo processes a test starts; killed (with their groups) if a test leaves one running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.timeout(120)
def test_the_headless_demo_tells_the_whole_story(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*DEMO, "--headless", "--duration", "30"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment(tmp_path),
        stdin=subprocess.DEVNULL,
        timeout=100,
        check=False,
    )
    took = time.monotonic() - started
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "Traceback" not in output + result.stderr
    assert took < 45, f"a 30 s story took {took:.1f} s"
    lines = output.splitlines()
    assert "result: every intersection went central → local → central" in lines
    assert any('trust = "always"' in line for line in lines), "the demo says the clock is trusted"
    start = lines.index("mode timeline (t = seconds since the demo started):")
    timeline = {line.split(":")[0].strip(): line.strip() for line in lines[start + 1 : start + 6]}
    assert set(timeline) == set(DEVICES)
    for device, line in timeline.items():
        assert in_order(story_modes(line), ["local", "central", "local", "central"]), line
        assert "no heartbeat" in line, line
        assert "broker down" in line, line
        assert f"{device}: heartbeats stopped → local in" in output
        assert f"{device}: broker stopped → local in" in output
    # The temporary work directory is gone, and every process with it.
    workdir = Path(next(x for x in lines if "work directory: " in x).split("work directory: ")[1])
    assert workdir.parent == tmp_path
    assert not workdir.exists()


@pytest.mark.parametrize(
    ("sig", "after", "status"),
    [
        pytest.param(signal.SIGINT, "act 1/6", 130, id="ctrl-c-mid-story"),
        pytest.param(signal.SIGTERM, "act 1/6", 143, id="sigterm-mid-story"),
        pytest.param(signal.SIGTERM, "simulators:", 143, id="sigterm-while-starting"),
    ],
)
@pytest.mark.timeout(60)
def test_an_interrupted_demo_leaves_no_process_behind(
    tmp_path: Path,
    demo_process: list[subprocess.Popen[str]],
    sig: signal.Signals,
    after: str,
    status: int,
) -> None:
    proc = subprocess.Popen(
        [*DEMO, "--headless", "--duration", "30", "--intersections", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=environment(tmp_path),
    )
    demo_process.append(proc)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if after in line:
            break
    else:
        raise AssertionError("the demo ended early:\n" + "".join(seen))
    kids = children_of(proc.pid)
    # broker + 2 simulators, and once the story runs, 2 agents
    assert len(kids) >= (5 if after.startswith("act") else 1), kids
    proc.send_signal(sig)
    rest, errors = proc.communicate(timeout=30)
    assert proc.returncode == status, "".join(seen) + rest + errors
    assert f"interrupted ({sig.name})" in errors
    assert "Traceback" not in rest + errors
    if after.startswith("act"):
        assert "result: interrupted before the end of the story" in rest
    left = [pid for pid in kids if alive(pid) or group_alive(pid)]
    assert not left, f"left running: {left}"
    assert not list(tmp_path.glob("greenwave-demo-*")), "the temporary work directory is removed"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--duration", "5"], "--duration must be 30 to 600 s, not 5"),
        (["--speed", "0"], "--speed must be 1 to 20, not 0"),
        (["--intersections", "9"], "--intersections must be 1 to 5, not 9"),
        (["--workdir", "{busy}"], "not a new or empty directory"),
        (["--workdir", "{long}"], "too long a path for the agents' unix sockets"),
    ],
    ids=["duration", "speed", "intersections", "workdir-in-use", "workdir-too-long"],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "agent.toml").write_text("")
    long = tmp_path / ("x" * 100)
    filled = [a.format(busy=busy, long=long) for a in args]
    result = subprocess.run(
        [*DEMO, "--headless", *filled],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment(tmp_path),
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert says in result.stderr
    assert not long.exists()
    assert [p.name for p in busy.iterdir()] == ["agent.toml"]
    assert not list(tmp_path.glob("greenwave-demo-*"))


def test_the_demo_has_help() -> None:
    result = subprocess.run(
        [*DEMO, "--help"], capture_output=True, text=True, cwd=REPO, timeout=30, check=False
    )
    assert result.returncode == 0
    for option in ("--headless", "--duration", "--speed", "--intersections", "--workdir"):
        assert option in result.stdout
