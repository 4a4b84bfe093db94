"""Fixtures of the control-socket tests: a socket directory others can reach, the real agent.

Two rigs, both with the real parts (mosquitto, the simulator process, the
agent's own composition root):

* ``inproc`` — the agent built by :func:`agent.app.build` and run in the test's
  event loop, for poking its socket with raw bytes;
* ``cabinet`` (tests/e2e/harness.py) — ``greenwave run`` as a process and the
  ``greenwave`` verbs as processes, as a technician runs them.
"""

from __future__ import annotations

import asyncio
import grp
import io
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.app import build
from agent.config import load_config
from agent.local.server import LocalServer
from agent.supervisor.runtime import Supervisor
from tests.broker import Mosquitto
from tests.e2e.harness import REPO, Cabinet, Keys, new_cabinet, reap_leaked

RunCli = Callable[..., subprocess.CompletedProcess[str]]

#: The group the tests' sockets use: one that exists here and that ``nobody`` is not in.
TEST_GROUP = grp.getgrgid(os.getgid()).gr_name


def local_config(socket: Path, *, group: str = TEST_GROUP) -> str:
    """The ``[local]`` section for a test cabinet."""
    return f'\n[local]\nsocket = "{socket}"\ngroup = "{group}"\n'


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """The CLI run in-process configures logging (level error): put it back for later tests."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves an agent or simulator process running (and kill it)."""
    yield
    leaked = reap_leaked()
    assert not leaked, f"{leaked} process(es) left running"


@pytest.fixture
def keys() -> Keys:
    """Fresh TEST keys for central (root + command)."""
    return Keys()


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory under /tmp that every user may traverse (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="gw-sock-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def greenwave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``greenwave(*args, user=None)`` → CompletedProcess; no config picked up by accident."""
    monkeypatch.delenv("GREENWAVE_CONFIG", raising=False)

    def run(
        *args: str,
        user: int | None = None,
        extra_groups: list[int] | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, Any] = {}
        if user is not None:
            as_user = {"user": user, "group": user, "extra_groups": extra_groups or []}
        environment = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {}),
        }
        try:
            return subprocess.run(
                [sys.executable, "-m", "agent.cli.main", *args],
                capture_output=True,
                text=True,
                cwd=REPO,
                env=environment,
                timeout=timeout,
                check=False,
                **as_user,
            )
        except PermissionError:
            if user is None:
                raise
            # The interpreter lives where that user cannot reach (a pyenv under /root):
            # run the same entry point in a forked child that becomes that user.
            return forked_cli(args, user, extra_groups or [], environment, timeout)

    return run


def forked_cli(
    args: tuple[str, ...], uid: int, groups: list[int], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``greenwave ARGS`` in a child process that drops to ``uid`` before running the CLI."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 99
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), "utf-8")
                sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), "utf-8")
                os.setgroups(groups)
                os.setgid(uid)
                os.setuid(uid)
                os.environ.clear()
                os.environ.update(env)
                sys.argv = ["greenwave", *args]
                from agent.cli.main import main

                try:
                    main()
                    code = 0
                except SystemExit as done:
                    code = done.code if isinstance(done.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pidfd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            ["greenwave(forked)", *args],
            os.waitstatus_to_exitcode(status),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


@dataclass
class InProc:
    """The agent, built from its config and running in this event loop."""

    cabinet: Cabinet
    supervisor: Supervisor
    server: LocalServer

    @property
    def socket(self) -> Path:
        return self.server.path


@pytest.fixture
async def inproc(
    tmp_path: Path, broker: Mosquitto, keys: Keys, sockdir: Path
) -> AsyncIterator[InProc]:
    cab = new_cabinet(
        tmp_path / "cab",
        "cab-local",
        broker,
        keys,
        local_config=local_config(sockdir / "agent.sock"),
    )
    try:
        with build(load_config(cab.config_path)) as supervisor:
            server = supervisor.parts.local
            assert isinstance(server, LocalServer)
            task = asyncio.create_task(supervisor.run(), name="agent")
            try:
                async with asyncio.timeout(10):
                    await server.listening.wait()
                    await supervisor.poller.wait_link(True)
                    # Stopping the agent while its MQTT session is still being opened can
                    # hang the link's cancellation (reported separately): start from up.
                    await supervisor.parts.link.wait_connected()
                yield InProc(cabinet=cab, supervisor=supervisor, server=server)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        cab.sim.stop()
