"""Real MQTT brokers on loopback for the tests (never a mock): mosquitto and RabbitMQ.

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

:class:`RabbitMQ` is a second, clusterable broker with the same interface
(``host``, ``port``, ``start``, ``stop(sig=...)``, ``pause``, ``resume``,
``log()``): a private RabbitMQ node with its MQTT plugin, run as a plain
process (no systemd, nothing of the system's ``rabbitmq-server`` service
touched), everything under the test's directory. ``tests/e2e/conftest.py``
runs the end-to-end suite against both (SPEC §4 needs nothing
mosquitto-specific; ``docs/brokers.md``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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

    name = "mosquitto"

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


class Broker(Protocol):
    """What the end-to-end tests use of a broker (:class:`Mosquitto` or :class:`RabbitMQ`)."""

    #: Which broker: ``"mosquitto"`` or ``"rabbitmq"`` (also the test id).
    name: str

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def start(self, *, timeout: float = ...) -> None: ...

    def stop(self, *, sig: int = ..., timeout: float = ...) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def log(self) -> str: ...


def rabbitmq_binary() -> str | None:
    """RabbitMQ's own start script, if installed (``scripts/setup`` installs it).

    Debian's ``/usr/sbin/rabbitmq-server`` is a wrapper that changes to the
    ``rabbitmq`` user and to ``/var/lib/rabbitmq``; the script behind it runs
    the node as the caller, with the paths it is given.
    """
    for candidate in ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/local/sbin/rabbitmq-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _mqtt_connack(port: int, *, timeout: float = 1.0) -> bool:
    """True if an MQTT 3.1.1 CONNECT (clean session) on ``port`` is accepted (CONNACK 0)."""
    client_id = b"greenwave-ready-probe"
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol, level 4, clean session, keepalive 10
    body = variable + len(client_id).to_bytes(2, "big") + client_id
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(bytes([0x10, len(body)]) + body)
            answer = b""
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    return False
                answer += chunk
            sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    return answer == b"\x20\x02\x00\x00"


def _group_alive(group: int) -> bool:
    """True while a process of process group ``group`` runs (zombies do not count).

    ``killpg(group, 0)`` also finds zombies, which linger until init reaps
    them (a second or more in some containers); ``/proc`` tells them apart.
    """
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


#: The node that :func:`_database_link` points at (one at a time per process).
_LINKED_NODE: RabbitMQ | None = None
#: Whether the link is removed when the process exits.
_LINK_CLEANUP = False


def _database_link() -> Path:
    """This process's path to the running RabbitMQ node's database (a symlink)."""
    return Path(tempfile.gettempdir()) / f"greenwave-rabbitmq-{os.getpid()}"


def _point_database_link(target: Path) -> None:
    link = _database_link()
    staged = link.with_name(link.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    staged.symlink_to(target.resolve())
    staged.replace(link)
    global _LINK_CLEANUP
    if not _LINK_CLEANUP:
        atexit.register(_remove_database_link)
        _LINK_CLEANUP = True


def _remove_database_link() -> None:
    with contextlib.suppress(FileNotFoundError):
        _database_link().unlink()


class RabbitMQ:
    """One private RabbitMQ node with the MQTT plugin, under a test's control.

    Everything is under ``workdir``: the config, the enabled-plugins file, the
    node's database (``mnesia/``: durable queues = persistent MQTT sessions,
    the retained-message store), its log and its Erlang cookie (``HOME``).
    The node listens on loopback only: MQTT on :attr:`port`, the Erlang
    distribution on a port of its own, and its own ``epmd`` (the Erlang port
    mapper, normally a shared system daemon on 4369) on another, so nodes of
    parallel tests and a system RabbitMQ never meet. AMQP is switched off.

    MQTT clients connect anonymously (the plugin maps them to ``guest``, who
    may log in over loopback). Retained messages are kept in the plugin's
    disk store (``rabbit_mqtt_retained_msg_store_dets``), so that they, the
    persistent sessions and the QoS 1 messages queued for them survive a
    :meth:`stop`/:meth:`start`, as mosquitto's persistence does.

    A node's first boot waits 3-6 s for peers before it makes itself the
    leader of the plugin's client-id registry (Raft); a node that has booted
    once does not. Give ``seed`` (from :meth:`make_seed`) to start from a copy
    of such a database (about 3 s instead of 6-9 s). A copy only fits if the
    node name and the database's *path* are the same (RabbitMQ records
    absolute paths in its Raft metadata), so every node is called
    ``greenwave@localhost`` (each has its own epmd: the names never clash) and
    sees its database through one path per test process, a symlink
    (:func:`_database_link`) pointed at the running node's ``mnesia/``. Hence
    one node at a time per process, which is how the tests use brokers.
    """

    name = "rabbitmq"
    NODE = "greenwave@localhost"

    def __init__(self, workdir: Path, *, seed: Path | None = None) -> None:
        binary = rabbitmq_binary()
        if binary is None:
            raise RuntimeError("rabbitmq-server is not installed: run ./scripts/setup as root")
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        if not os.access(epmd, os.X_OK):
            raise RuntimeError("epmd (erlang-base) is not installed: run ./scripts/setup as root")
        self.binary = binary
        self.epmd_binary = epmd
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.log_path = workdir / "rabbitmq.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None
        #: Seconds the last :meth:`start` took until an MQTT CONNECT was accepted.
        self.started_in_s: float | None = None
        if seed is not None and not (workdir / "mnesia").exists():
            shutil.copytree(seed, workdir / "mnesia", symlinks=True)
        self._write_config()

    @property
    def host(self) -> str:
        return HOST

    @classmethod
    def make_seed(cls, workdir: Path) -> Path:
        """Boot a node once in ``workdir``, stop it, and return its database to copy."""
        node = cls(workdir)
        try:
            node.start(timeout=60)
            node.stop()
        finally:
            node.close()
        return workdir / "mnesia"

    def _write_config(self) -> None:
        lines = [
            "listeners.tcp = none",
            f"mqtt.listeners.tcp.default = {HOST}:{self.port}",
            "mqtt.allow_anonymous = true",
            "mqtt.default_user = guest",
            "mqtt.default_pass = guest",
            "mqtt.vhost = /",
            "mqtt.exchange = amq.topic",
            "mqtt.retained_message_store = rabbit_mqtt_retained_msg_store_dets",
            "mqtt.retained_message_store_dets_sync_interval = 1000",
            "mqtt.tcp_listen_options.nodelay = true",  # as mosquitto's set_tcp_nodelay
            "log.console = true",
            "log.console.level = info",
            "log.file = false",
        ]
        (self.workdir / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (self.workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (self.workdir / "rabbitmq-env.conf").write_text("")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.workdir),  # the Erlang cookie goes here, not in the caller's home
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(_database_link()),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_PID_FILE=str(self.workdir / "rabbitmq.pid"),
            RABBITMQ_NODENAME=self.NODE,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
            ),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=HOST,
        )
        return env

    def _start_epmd(self) -> None:
        if self.epmd is not None and self.epmd.poll() is None:
            return
        with self.log_path.open("ab") as log:
            self.epmd = subprocess.Popen(
                [self.epmd_binary, "-port", str(self.epmd_port), "-address", HOST],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=self._env(),
            )
        deadline = time.monotonic() + 5
        while not _accepts(self.epmd_port):
            if self.epmd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"epmd did not listen on {self.epmd_port}:\n{self.log()}")
            time.sleep(0.02)

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the node (again) on its port; wait until an MQTT CONNECT is accepted."""
        if self.proc is not None and self.proc.poll() is None:
            return
        began = time.monotonic()
        deadline = began + timeout
        global _LINKED_NODE
        if _LINKED_NODE is not None and _LINKED_NODE is not self and _LINKED_NODE.running:
            raise RuntimeError("one RabbitMQ node at a time per process (see RabbitMQ's docstring)")
        (self.workdir / "mnesia").mkdir(exist_ok=True)
        _point_database_link(self.workdir / "mnesia")
        _LINKED_NODE = self
        self._start_epmd()
        with self.log_path.open("ab") as log:
            # Its own process group: the start script runs the Erlang VM as a child,
            # and stop/pause/SIGKILL must reach both.
            self.proc = subprocess.Popen(
                [self.binary],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                cwd=self.workdir,
                start_new_session=True,
            )
        while not (_accepts(self.port) and _mqtt_connack(self.port)):
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"rabbitmq exited at start:\n{self.log()}")
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(
                    f"rabbitmq did not accept MQTT within {timeout} s:\n{self.log()}"
                )
            time.sleep(0.05)
        self.started_in_s = time.monotonic() - began

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop the node (SIGTERM shuts it down cleanly; SIGKILL kills the VM at once)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        group = proc.pid
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    os.killpg(group, signal.SIGKILL)
                else:
                    os.killpg(group, signal.SIGCONT)  # a paused node must run to shut down
                    proc.send_signal(sig)  # the start script forwards it to the VM
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                proc.wait(5)
        # The VM (and its helpers) must be gone, and the port free, before a restart.
        deadline = time.monotonic() + timeout
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): connections stay open, nothing is answered."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        """Kill the node and its epmd at once (its data goes with the test's directory)."""
        self.stop(sig=signal.SIGKILL)
        epmd, self.epmd = self.epmd, None
        if epmd is not None and epmd.poll() is None:
            epmd.kill()
            epmd.wait(5)

    def log(self) -> str:
        """What the node (and its epmd) logged."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def __enter__(self) -> RabbitMQ:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
