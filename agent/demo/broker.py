"""The demo's MQTT broker: mosquitto when installed, otherwise an embedded pure-Python one.

Either way it is a child process on an ephemeral loopback port that the demo
can stop (to cut the network) and start again on the *same* port, as a city
broker that restarts would. mosquitto keeps its sessions across the restart
(persistence in the work directory); the embedded broker (amqtt, the
optional ``demo`` extra) starts empty, which the agents handle too: they
subscribe again on every connection.

:func:`choose_broker` picks one: ``auto`` prefers mosquitto; with neither
available the demo refuses with what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from agent.demo import EXIT_UNUSABLE, DemoError
from agent.demo.children import TIER_BROKER, Child, Children

HOST: Final = "127.0.0.1"

BrokerKind = Literal["auto", "mosquitto", "embedded"]

INSTALL_HINT: Final = (
    "install mosquitto (apt install mosquitto, or run ./scripts/setup as root), "
    "or the embedded broker (pip install 'greenwave[demo]')"
)


def mosquitto_binary() -> str | None:
    """The mosquitto executable: on PATH, or where Debian puts it (/usr/sbin, not on every PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def embedded_available() -> bool:
    """True when the embedded broker's library (amqtt) is installed."""
    return importlib.util.find_spec("amqtt") is not None


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


#: MQTT 3.1.1 CONNECT (clean session, keepalive 10 s, client id "greenwave-demo-probe"),
#: the CONNACK that accepts it, and DISCONNECT: a readiness check the broker logs as a
#: normal client, not as a broken connection.
_PROBE_ID: Final = b"greenwave-demo-probe"
_CONNECT: Final = (
    bytes([0x10, 10 + 2 + len(_PROBE_ID)])
    + b"\x00\x04MQTT\x04\x02\x00\x0a"
    + len(_PROBE_ID).to_bytes(2, "big")
    + _PROBE_ID
)
_CONNACK_OK: Final = b"\x20\x02\x00\x00"
_DISCONNECT: Final = b"\xe0\x00"


async def _answers_mqtt(host: str, port: int) -> bool:
    """True when an MQTT broker on ``host:port`` accepts a connection (then disconnects)."""
    try:
        async with asyncio.timeout(1.0):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(_CONNECT)
                await writer.drain()
                accepted = await reader.readexactly(4) == _CONNACK_OK
                if accepted:
                    writer.write(_DISCONNECT)
                    await writer.drain()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    return accepted


async def _listening(host: str, port: int) -> bool:
    """True while anything accepts TCP connections on ``host:port``."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@dataclass
class BrokerProcess:
    """A broker child process on a fixed loopback port, restartable."""

    #: For people: "mosquitto (/usr/sbin/mosquitto)" or "embedded (amqtt 0.12.1)".
    description: str
    argv: tuple[str, ...]
    workdir: Path
    children: Children
    port: int
    host: str = HOST
    child: Child | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.running

    async def start(self, *, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return
        self.child = await self.children.spawn(
            "broker", self.argv, log_path=self.log_path, tier=TIER_BROKER, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout_s
        while not await _answers_mqtt(self.host, self.port):
            if not self.child.running:
                raise DemoError(
                    f"the broker exited at start (log {self.log_path}):\n{self.child.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"the broker did not listen within {timeout_s:g} s")
            await asyncio.sleep(0.05)

    async def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop the broker (SIGTERM: mosquitto saves its sessions) and wait for the port."""
        child, self.child = self.child, None
        if child is None:
            return
        await child.stop(timeout_s=timeout_s)
        # The port must be free before a restart binds it again.
        for _ in range(int(timeout_s / 0.05)):
            if not await _listening(self.host, self.port):
                break
            await asyncio.sleep(0.05)


def _mosquitto(binary: str, workdir: Path, children: Children) -> BrokerProcess:
    port = free_port()
    lines = [
        f"listener {port} {HOST}",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {workdir}/",
        "autosave_interval 5",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "max_queued_messages 10000",
    ]
    if os.geteuid() == 0:
        # As root mosquitto drops to user "mosquitto", who cannot write the work directory.
        lines.append("user root")
    config = workdir / "mosquitto.conf"
    config.write_text(
        "# greenwave demo broker: loopback only, anonymous\n" + "\n".join(lines) + "\n"
    )
    return BrokerProcess(
        description=f"mosquitto ({binary})",
        argv=(binary, "-c", str(config)),
        workdir=workdir,
        children=children,
        port=port,
    )


def _embedded(workdir: Path, children: Children) -> BrokerProcess:
    port = free_port()
    try:
        version = importlib.metadata.version("amqtt")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    argv: Sequence[str] = (
        sys.executable,
        "-m",
        "agent.demo.embedded_broker",
        "--host",
        HOST,
        "--port",
        str(port),
    )
    return BrokerProcess(
        description=f"embedded (amqtt {version})",
        argv=tuple(argv),
        workdir=workdir,
        children=children,
        port=port,
    )


def choose_broker(kind: BrokerKind, workdir: Path, children: Children) -> BrokerProcess:
    """The broker to run; :class:`DemoError` (exit 2) naming what to install when none can."""
    workdir.mkdir(parents=True, exist_ok=True)
    binary = mosquitto_binary()
    if kind in ("auto", "mosquitto") and binary is not None:
        return _mosquitto(binary, workdir, children)
    if kind == "mosquitto":
        raise DemoError(
            "mosquitto is not installed: apt install mosquitto, or run ./scripts/setup as root",
            exit_status=EXIT_UNUSABLE,
        )
    if embedded_available():
        return _embedded(workdir, children)
    if kind == "embedded":
        raise DemoError(
            "the embedded broker needs amqtt: pip install 'greenwave[demo]'",
            exit_status=EXIT_UNUSABLE,
        )
    raise DemoError(f"no MQTT broker to run: {INSTALL_HINT}", exit_status=EXIT_UNUSABLE)
