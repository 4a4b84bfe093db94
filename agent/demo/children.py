"""The demo's child processes: started in their own process groups, never left behind.

Every process the demo starts (broker, simulators, agents) goes through
:meth:`Children.spawn`, which

* starts it in a **new process group** (its pid is the group id): the
  terminal's Ctrl-C reaches the demo alone, which then stops its children in
  order (agents, then simulators, then the broker) instead of all of them
  dying at once in the middle of a write;
* asks Linux to send it SIGTERM when the demo dies (``PR_SET_PDEATHSIG``),
  so that even a demo killed with SIGKILL leaves nothing running;
* gives it no terminal input (stdin is ``/dev/null`` or a pipe) and sends its
  output to a log file in the work directory.

:meth:`Children.stop_all` sends SIGTERM to each process group, waits a
bounded time, then SIGKILLs whatever is left; :meth:`Children.kill_all` is
the immediate version (a second Ctrl-C). :meth:`Children.leftover` lists the
groups that still have a live process (what the tests check).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.logs import get_logger

log = get_logger("demo.children")

#: prctl option: the signal a child gets when its parent thread dies (linux/prctl.h).
_PR_SET_PDEATHSIG: Final = 1

#: Stopping order: lower tiers stop first (agents before the simulators they poll,
#: both before the broker).
TIER_AGENT: Final = 0
TIER_SIMULATOR: Final = 1
TIER_BROKER: Final = 2


def _death_signal_setter() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when the demo dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:  # runs in the child, between fork and exec
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the demo died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


@dataclass
class Child:
    """One child process (the leader of its own process group)."""

    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    tier: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (nothing when it is gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, *, timeout_s: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; the exit status."""
        if self.running:
            self.signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout_s)
            except TimeoutError:
                log.warning("child_killed", child=self.name, pid=self.pid, after_s=timeout_s)
                self.signal_group(signal.SIGKILL)
                await self.proc.wait()
        # Anything the child left in its group goes with it.
        self.signal_group(signal.SIGKILL)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole group now (the process is reaped by asyncio later)."""
        self.signal_group(signal.SIGKILL)

    def group_alive(self) -> bool:
        """True while any process of the child's group exists."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def log_tail(self, lines: int = 15) -> str:
        """The end of the child's log, for an error message."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process the demo started (see the module docstring)."""

    def __init__(self) -> None:
        self._all: list[Child] = []
        self._preexec = _death_signal_setter()

    @property
    def all(self) -> tuple[Child, ...]:
        return tuple(self._all)

    async def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        tier: int,
        stdout_path: Path | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Child:
        """Start ``argv``: stderr (and stdout, unless ``stdout_path``) appended to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out_path = stdout_path if stdout_path is not None else log_path
        with log_path.open("ab") as log_file, out_path.open("ab") as out_file:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_file,
                stderr=log_file,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                process_group=0,
                preexec_fn=self._preexec,
            )
        child = Child(name=name, proc=proc, log_path=log_path, tier=tier)
        self._all.append(child)
        log.info("child_started", child=name, pid=proc.pid, argv=list(argv))
        return child

    async def stop_all(self, *, timeout_s: float = 5.0) -> None:
        """Stop every child, tier by tier (each tier's children at the same time)."""
        for tier in sorted({c.tier for c in self._all}):
            group = [c for c in self._all if c.tier == tier]
            await asyncio.gather(*(c.stop(timeout_s=timeout_s) for c in group))

    def kill_all(self) -> None:
        """SIGKILL every child's group now."""
        for child in self._all:
            child.kill()

    def leftover(self) -> list[Child]:
        """Children whose process group still has a live process."""
        return [c for c in self._all if c.group_alive()]
