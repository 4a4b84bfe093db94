"""A real mosquitto broker on loopback for the tests (never a mock).

:class:`Mosquitto` writes a config into a temporary directory, starts
``mosquitto -c`` on an ephemeral loopback port, waits until it accepts
connections, and can be stopped and started again on the *same* port with its
persistence kept (broker-restart tests). Optionally a second, TLS listener
with client certificates is opened (``tls=TlsFiles(...)``; throwaway files
from :mod:`tests.pki`), and ``extra_config`` is appended to the config as it
is (the listener that ``greenwave certs init`` writes). :meth:`Mosquitto.pause`
freezes it (SIGSTOP) to test a broker that stops answering without closing
anything.

The fixtures ``broker`` and ``tls_broker`` (function scope) live in
``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def mosquitto_binary() -> str | None:
    """The mosquitto executable, if installed (``scripts/setup`` installs it)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for the broker's TLS listener (clients must present a certificate)."""

    ca: Path
    cert: Path
    key: Path


class Mosquitto:
    """One mosquitto process under a test's control."""

    def __init__(
        self, workdir: Path, *, tls: TlsFiles | None = None, extra_config: str = ""
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed: run ./scripts/setup as root")
        self.binary = binary
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls is not None else None
        #: Appended to the generated config as it is (e.g. the listener ``greenwave certs
        #: init`` writes); its listeners are the caller's to know.
        self.extra_config = extra_config
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def host(self) -> str:
        return HOST

    def _write_config(self) -> None:
        lines = [
            "set_tcp_nodelay true",
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_dest stderr",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
        ]
        if os.geteuid() == 0:
            # As root mosquitto drops to user "mosquitto", who cannot write here.
            lines.append("user root")
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} {HOST}",
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
                "require_certificate true",
                "use_identity_as_username true",
            ]
        if self.extra_config:
            lines += ["", "# -- extra_config --", self.extra_config]
        (self.workdir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the broker (again) on its port and wait until it accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return
        deadline = time.monotonic() + timeout
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.workdir / "mosquitto.conf")],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        while not _accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen within {timeout} s:\n{self.log()}")
            time.sleep(0.02)

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM saves its persistence; SIGKILL does not)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        if sig != signal.SIGKILL:
            proc.send_signal(signal.SIGCONT)  # a paused broker must run to handle SIGTERM
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        # The port must be free before a restart binds it again.
        deadline = time.monotonic() + timeout
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        """What the broker logged."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
