"""The unit's sandbox fits the agent: a real agent under strace does nothing it forbids.

No systemd runs here, so the sandbox itself cannot be applied; instead the
real ``greenwave run`` works through a realistic start (a PMPP serial line
on a pty, the broker over TCP, the kernel's clock state, sd_notify with a
watchdog) and a signed ``plan.load`` and ``diag.request`` from central,
under ``strace -f``. Every system call, socket, mapping and file it touched
is then held against ``systemd/greenwave.service`` as systemd reads it:

- every system call is in the effective ``SystemCallFilter=`` (expanded with
  ``systemd-analyze syscall-filter``: a call outside it would fail with EPERM);
- no writable and executable memory (``MemoryDenyWriteExecute=yes``);
- only the ``RestrictAddressFamilies=`` socket families;
- writes only under the state directory and the runtime directory
  (``ProtectSystem=strict``; PYTHONDONTWRITEBYTECODE, as /opt is read-only);
- no ``/proc`` entry beyond the processes' own (``ProcSubset=pid``);
- no device but the standard pseudo devices and the controller's serial line
  (``DevicePolicy=closed`` with ``DeviceAllow=`` the tty classes).

A new feature that needs more (a system call, a path) fails here, not on a
cabinet at night.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.central.commands import AckStatus
from agent.config import load_config
from tests.broker import Mosquitto
from tests.deploy.test_notify import NotifySocket, abstract_name
from tests.deploy.test_systemd_unit import require_systemd_analyze
from tests.deploy.unit import allowed_syscalls, value
from tests.e2e.harness import (
    AGENTS,
    REPO,
    Cabinet,
    Keys,
    central,
    example_plan,
    new_cabinet,
    wait_online,
)

#: What DevicePolicy=closed always allows (systemd.resource-control(5)).
PSEUDO_DEVICES = frozenset(
    {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
    | {"/dev/ptmx", "/dev/pts/ptmx"}
)

#: /proc files outside ProcSubset=pid that a child reads and does without: the
#: clock probe runs ``timedatectl show``, whose libraries look at these once and
#: fall back when they are hidden (libselinux: no selinuxfs, so no SELinux;
#: libsystemd's cap_last_cap(): probes with prctl). Checked by running it under
#: a procfs mounted with ``subset=pid``: it gets as far as without.
TOLERATED_PROC = frozenset({"/proc/filesystems", "/proc/sys/kernel/cap_last_cap"})

#: Calls that create, move or remove a file by name.
CHANGES = frozenset(
    {"mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat"}
    | {"link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "chown", "fchownat"}
)
CALL = re.compile(r"^(\d+) +([a-z0-9_]+)\((.*)$")
#: ``openat(AT_FDCWD</x>, "path", FLAGS`` or ``openat(3</dir>, "name", FLAGS``
#: (``-y`` prints the directory of a descriptor in angle brackets).
OPENAT = re.compile(r'^(?:AT_FDCWD|\d+)(?:<([^>]*)>)?, "([^"]*)", ([A-Z_|]+)')
PATH_ARG = re.compile(r'(?:^|, )(?:(?:AT_FDCWD|\d+)(?:<([^>]*)>)?, )?"([^"]*)"')


@dataclass
class Trace:
    """What ``strace -f -y`` saw one process tree do."""

    calls: set[str] = field(default_factory=set)
    families: set[str] = field(default_factory=set)
    wx_maps: list[str] = field(default_factory=list)
    opened: list[tuple[str, str]] = field(default_factory=list)  # (path, flags)
    changed: list[str] = field(default_factory=list)  # created, renamed, removed, linked

    @classmethod
    def read(cls, path: Path, cwd: Path) -> Trace:
        trace = cls()
        for line in path.read_text(errors="replace").splitlines():
            match = CALL.match(line)
            if match is None:
                continue  # resumed calls, signals, exits
            name, args = match[2], match[3]
            trace.calls.add(name)
            if name in ("socket", "socketpair"):
                trace.families.add(args.split(",")[0])
            elif name in ("mmap", "mprotect", "pkey_mprotect") and "PROT_EXEC" in args:
                if name != "mmap" or "PROT_WRITE" in args:
                    trace.wx_maps.append(line)
            elif name in ("open", "openat", "openat2"):
                opened = OPENAT.match(args)
                if opened is not None:
                    where = _resolve(opened[1], opened[2], cwd)
                    trace.opened.append((where, opened[3]))
            elif name in CHANGES:
                trace.changed += [_resolve(d, p, cwd) for d, p in PATH_ARG.findall(args)]
        return trace

    def written(self) -> set[str]:
        writes = {p for p, flags in self.opened if re.search(r"O_WRONLY|O_RDWR|O_CREAT", flags)}
        return writes | set(self.changed)


def _resolve(directory: str | None, path: str, cwd: Path) -> str:
    if path.startswith("/"):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(directory or cwd, path))


def under(path: str, *roots: Path) -> bool:
    return any(path == str(root) or path.startswith(f"{root}/") for root in roots)


@pytest.fixture
def strace() -> str:
    found = shutil.which("strace")
    if found is None:
        why = "strace is missing: ./scripts/setup installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return found


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    listener = NotifySocket(abstract_name())
    try:
        yield listener
    finally:
        listener.close()


def agent_command(cabinet: Cabinet) -> list[str]:
    return [sys.executable, "-m", "agent.cli.main", "run", "--config", str(cabinet.config_path)]


def start_traced(cabinet: Cabinet, strace: str, out: Path, env: dict[str, str]) -> None:
    """``greenwave run`` under ``strace -f``, as the harness starts it otherwise."""
    with cabinet.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [strace, "-f", "-qq", "-y", "-s", "256", "-o", str(out), *agent_command(cabinet)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, **env},
        )
    AGENTS.append(proc)
    cabinet.proc = proc


def traced_pid(out: Path) -> int:
    """The agent's pid: the first process in the trace (strace's child)."""
    with out.open() as lines:
        return int(lines.readline().split()[0])


def stop_traced(cabinet: Cabinet, out: Path) -> None:
    """Kill the agent if a failed test left it running; strace then exits."""
    proc, cabinet.proc = cabinet.proc, None
    if proc is None or proc.poll() is not None:
        return
    if out.exists() and out.stat().st_size:
        with contextlib.suppress(ProcessLookupError):
            os.kill(traced_pid(out), signal.SIGKILL)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def test_a_traced_agent_stays_inside_the_units_sandbox(
    tmp_path: Path, broker: Mosquitto, keys: Keys, strace: str, notify: NotifySocket
) -> None:
    require_systemd_analyze()
    tty = tmp_path / "tty"
    cabinet = new_cabinet(
        tmp_path / "cab", "cab-sandbox", broker, keys, "--pty", str(tty), clock_trust="kernel"
    )
    out = tmp_path / "strace.log"
    try:
        start_traced(
            cabinet,
            strace,
            out,
            {
                "GREENWAVE_CONTROLLER__URL": f"serial://{tty}",
                "NOTIFY_SOCKET": notify.name,
                "WATCHDOG_USEC": "2000000",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        )
        notify.until(lambda d: d.ready, timeout=60)
        signer = keys.signer()
        async with central(broker) as client:
            async with asyncio.timeout(30):
                await wait_online(client, cabinet)
            for cmd in ("plan.load", "diag.request"):
                args = {"plan": example_plan(2)} if cmd == "plan.load" else {}
                signed = signer.sign(cmd, args, aud=cabinet.device)
                outcome = await client.command(
                    signed, device=cabinet.device, want=AckStatus.APPLIED, timeout_s=30
                )
                assert outcome.ok, (cmd, outcome, cabinet.log())
        notify.until(lambda d: d.ping, timeout=5)
        os.kill(traced_pid(out), signal.SIGTERM)  # strace itself ignores SIGTERM
        assert cabinet.proc is not None
        assert await asyncio.to_thread(cabinet.proc.wait, 30) == 0, cabinet.log()
    finally:
        stop_traced(cabinet, out)
        cabinet.sim.stop()

    trace = Trace.read(out, REPO)
    assert trace.calls, "strace saw nothing"

    denied = trace.calls - allowed_syscalls()
    assert not denied, f"system calls SystemCallFilter= would refuse: {sorted(denied)}"

    assert trace.wx_maps == [], "MemoryDenyWriteExecute=yes would refuse these"

    families = set(value("RestrictAddressFamilies").split())
    assert trace.families <= families, trace.families - families

    config = load_config(cabinet.config_path)
    serial_line = (tty, tty.resolve())  # /dev/ttyUSB0 on a cabinet
    writable = (
        config.state.dir.resolve(),
        config.local.socket.parent.resolve(),
        Path("/dev"),
        *serial_line,
    )
    stray = sorted(p for p in trace.written() if not under(p, *writable))
    assert not stray, f"writes outside StateDirectory=/RuntimeDirectory=: {stray}"

    proc_files = {p for p, _ in trace.opened if p.startswith("/proc/")}
    hidden = sorted(
        p for p in proc_files - TOLERATED_PROC if not re.match(r"/proc/(self|thread-self|\d+)/", p)
    )
    assert not hidden, f"ProcSubset=pid hides: {hidden}"

    devices = {p for p, _ in trace.opened if p.startswith("/dev/")}
    refused = sorted(devices - PSEUDO_DEVICES - {str(p) for p in serial_line})
    assert not refused, f"DevicePolicy=closed refuses: {refused}"
