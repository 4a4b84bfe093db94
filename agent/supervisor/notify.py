"""systemd's notify protocol: READY, STATUS and the watchdog, without a library.

systemd passes ``NOTIFY_SOCKET`` (a unix datagram socket; ``@`` means the
abstract namespace) to a ``Type=notify`` service; the service sends
newline-separated ``KEY=VALUE`` datagrams (sd_notify(3)). With
``WatchdogSec=`` systemd also sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``)
and restarts the service when ``WATCHDOG=1`` stops arriving in time.

The agent's watchdog (:meth:`Notifier.watchdog`) pets only while the event
loop runs and the status poller makes progress (a poll, or a deliberate
backoff while the controller is away): a wedged loop or a stuck poller is
restarted by systemd rather than left pretending to be alive.

Without ``NOTIFY_SOCKET`` every call is a no-op (tests, a technician running
``greenwave run`` by hand).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

from agent.logs import get_logger

log = get_logger("supervisor.notify")


class Notifier:
    """Sends sd_notify messages when systemd asked for them."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address = ("\0" + path[1:]) if path.startswith("@") else path
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

    async def watchdog(self, progress: Callable[[], int]) -> None:
        """Pet the watchdog at half its period while ``progress()`` keeps changing."""
        if self.watchdog_s is None or not self.enabled:
            return
        period = self.watchdog_s / 2
        last = progress()
        while True:
            await asyncio.sleep(period)
            now = progress()
            if now != last:
                self.send("WATCHDOG=1")
            else:
                log.error("watchdog_withheld", reason="the status poller made no progress")
            last = now
