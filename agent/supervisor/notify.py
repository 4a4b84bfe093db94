"""systemd's notify protocol: READY, STATUS and the watchdog, without a library.

systemd passes ``NOTIFY_SOCKET`` (a unix datagram socket; ``@`` means the
abstract namespace) to a ``Type=notify`` service; the service sends
newline-separated ``KEY=VALUE`` datagrams (sd_notify(3)). With
``WatchdogSec=`` systemd also sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``)
and restarts the service when ``WATCHDOG=1`` stops arriving in time.

The watchdog is honest (SPEC §9): :meth:`Notifier.watchdog` is a task of the
supervisor's group, so a ping is sent from the event loop itself and only when
:class:`Liveness` finds, once per half period,

- every named task of the group still running (a task that returned or was
  cancelled leaves a TaskGroup silently: the process would go on without its
  MQTT link or its command worker, looking alive), and
- the controller poller made progress within ``stall_s`` (a poll, or a failed
  one while the controller is away: retrying is not death). The allowance is
  the whole ``WatchdogSec`` unless the supervisor says otherwise, so
  ``WatchdogSec`` must exceed the poller's longest legitimate pause
  (systemd/README.md: 20 s against 6.5 s with the default settings).

A blocked event loop sends nothing because nothing else sends; a dead or stuck
task withholds the ping; either way systemd kills and restarts the agent after
``WatchdogSec``. Without ``NOTIFY_SOCKET`` every call is a no-op (tests, a
technician running ``greenwave run`` by hand).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from agent.logs import get_logger

log = get_logger("supervisor.notify")


def task_problem(tasks: Iterable[asyncio.Task[Any]]) -> str | None:
    """Why the first of ``tasks`` that is no longer running stopped; None while all run."""
    for task in tasks:
        if not task.done():
            continue
        name = task.get_name()
        if task.cancelled():
            return f"task {name} was cancelled"
        error = task.exception()
        if error is not None:
            return f"task {name} failed: {type(error).__name__}: {error}"
        return f"task {name} returned"
    return None


class Liveness:
    """Whether the agent has earned a watchdog ping, asked once per half period.

    ``problem()`` names what is wrong (a dead task) or returns None.
    ``progress()`` is a counter the controller poller bumps on every poll, good
    or failed; it must change at least once every ``stall_s`` seconds. The
    allowance covers the poller's longest legitimate pause (a reconnect backoff
    of up to 5 s plus one poll's timeouts and retries, 1.5 s by default), so a
    controller that is away is not mistaken for a stuck poller.
    """

    def __init__(
        self,
        progress: Callable[[], int],
        problem: Callable[[], str | None] | None = None,
        *,
        stall_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._progress = progress
        self._problem = problem
        self._stall_s = stall_s
        self._clock = clock
        self._last = progress()
        self._changed_at = clock()

    def check(self) -> str | None:
        """None when healthy, else the reason the ping is withheld."""
        now, value = self._clock(), self._progress()
        if value != self._last:
            self._last, self._changed_at = value, now
        trouble = self._problem() if self._problem is not None else None
        if trouble is not None:
            return trouble
        stalled = now - self._changed_at
        if stalled > self._stall_s:
            return f"the controller poller made no progress for {stalled:.1f} s"
        return None


class Notifier:
    """Sends sd_notify messages when systemd asked for them."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address = ("\0" + path[1:]) if path.startswith("@") else path
        self._sleep = sleep
        self._clock = clock
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return bool(self._address)

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; False when not sent."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as err:
            log.warning("sd_notify_failed", error=str(err))
            return False
        return True

    def ready(self, status: str) -> bool:
        """Tell systemd the service is up."""
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        """One line for ``systemctl status``."""
        return self.send(f"STATUS={status}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    async def watchdog(
        self,
        progress: Callable[[], int],
        *,
        problem: Callable[[], str | None] | None = None,
        stall_s: float | None = None,
    ) -> None:
        """Ping every half period while :class:`Liveness` says the agent is healthy.

        ``stall_s`` (default: the whole watchdog period) is how long
        ``progress()`` may stand still.

        Without a watchdog from systemd it just waits to be cancelled, so that
        every named task of the group runs for the group's whole life and a
        finished one always means trouble (:func:`task_problem`).
        """
        if self.watchdog_s is None or not self.enabled:
            await asyncio.Event().wait()
            return
        period = self.watchdog_s / 2
        liveness = Liveness(
            progress,
            problem,
            stall_s=self.watchdog_s if stall_s is None else stall_s,
            clock=self._clock,
        )
        while True:
            await self._sleep(period)
            reason = liveness.check()
            if reason is None:
                self.send("WATCHDOG=1")
            else:
                log.error("watchdog_withheld", reason=reason, restart_within_s=self.watchdog_s)
