"""End-to-end rig: a real broker, real simulator process, the real agent process, central.

The broker is mosquitto or RabbitMQ's MQTT plugin: ``tests/e2e/conftest.py``
runs every end-to-end test against both (``[mosquitto]``/``[rabbitmq]`` in
the test ids), through the :class:`tests.broker.Broker` interface only.

A :class:`Cabinet` is one intersection: a ``greenwave-sim`` on an ephemeral
UDP port, a state directory provisioned with a root and a command key (TEST
keys, made fresh per test), an agent config, and ``greenwave run`` as a child
process that a test can stop, SIGKILL and start again. The cabinet's
controller speaks NTCIP 1202, or GB/T 20999 with ``protocol="gbt"`` (the
simulator then also answers GB/T on UDP, and the agent's URL is
``gbt+udp://``).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agent.central.client import BrokerSettings, CentralClient, CommandSigner, Received
from agent.central.commands import Role
from agent.central.signing import SigningKey
from agent.central.topics import DeviceTopics
from agent.central.trust import TrustedKey, TrustStore
from agent.controller.factory import make_controller
from agent.controller.interface import Controller
from agent.controller.url import parse_controller_url
from tests.broker import Broker
from tests.simfront.helpers import EXAMPLE_PLAN, START_ARGS, STARTED, SimProcess, start_sim

REPO: Final = Path(__file__).resolve().parents[2]
ISSUER: Final = "tms.test-city"

#: The controller's backup timer counts simulated seconds (10 per wall second in
#: these tests): 600 of them outlast the agent's refresh, as 35 real ones would.
DEFAULT_CENTRAL = "backup_time_s = 600"

#: Every agent process a test started (the leak guard kills and reports them).
AGENTS: list[subprocess.Popen[bytes]] = []


def reap_leaked() -> int:
    """Kill every agent and simulator a test left running; how many there were.

    The autouse guard of the process-starting test directories (e2e, chaos,
    local) calls it after each test and fails the test when it is not 0.
    """
    leaked = [proc for proc in (*AGENTS, *STARTED) if proc.poll() is None]
    for proc in leaked:
        proc.kill()
        proc.wait(5)
    for proc in STARTED:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    AGENTS.clear()
    STARTED.clear()
    return len(leaked)


def example_plan(version: int) -> dict[str, Any]:
    """The example 8-phase plan with another version number."""
    doc: dict[str, Any] = json.loads(EXAMPLE_PLAN.read_text())
    doc["version"] = version
    return doc


@dataclass
class Keys:
    """Central's TEST keys: one root (keys.update), one command key."""

    root: SigningKey = field(default_factory=lambda: SigningKey.generate("root-1"))
    command: SigningKey = field(default_factory=lambda: SigningKey.generate("cmd-1"))

    def signer(self, key: SigningKey | None = None, *, lifetime_s: float = 60) -> CommandSigner:
        return CommandSigner(key or self.command, ISSUER, lifetime_s=lifetime_s)


@dataclass
class Cabinet:
    """One intersection: simulator, state, config, agent process."""

    device: str
    root: Path
    broker: Broker
    keys: Keys
    sim: SimProcess
    extra_config: str = ""
    controller_config: str = ""
    #: Keys of [central] (default: a backup timer fit for a 10x simulator).
    central_config: str = ""
    #: This machine's clock is not NTP-synchronised; the tests say what to trust.
    clock_trust: str = "always"
    #: The [local] section (default: the control socket in this cabinet's directory).
    local_config: str = ""
    #: The controller's protocol: "ntcip" (SNMP on UDP) or "gbt" (GB/T 20999 on UDP).
    protocol: str = "ntcip"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def controller_url(self) -> str:
        """The agent's controller URL for this cabinet's simulator."""
        if self.protocol == "gbt":
            return f"gbt+udp://{self.sim.endpoints['gbt-udp'][0]}"
        return f"udp://127.0.0.1:{self.sim.udp_port}"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config_path(self) -> Path:
        return self.root / "agent.toml"

    @property
    def log_path(self) -> Path:
        return self.root / "agent.log"

    @property
    def topics(self) -> DeviceTopics:
        return DeviceTopics(self.device)

    @property
    def socket_path(self) -> Path:
        """Where the agent's control socket goes by default (short enough to bind)."""
        path = self.root / "agent.sock"
        if len(str(path)) <= 100:
            return path
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"gw-{digest}.sock"

    def provision(self) -> None:
        """Write the config and the trust store, as an installer would."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        trust = TrustStore.open(self.state_dir / "trust.json", clock=time.time)
        for key, role in ((self.keys.root, Role.ROOT), (self.keys.command, Role.COMMAND)):
            trust.add(TrustedKey(kid=key.kid, iss=ISSUER, role=role, public_key=key.public_key_b64))
        local = self.local_config or f'[local]\nsocket = "{self.socket_path}"\n'
        self.config_path.write_text(
            f"""
[device]
id = "{self.device}"
groups = ["corridor-a"]

[state]
dir = "{self.state_dir}"

[controller]
url = "{self.controller_url}"
{self.controller_config}

[mqtt]
host = "127.0.0.1"
port = {self.broker.port}
reconnect_initial_s = 0.1
reconnect_max_s = 1.0

[logging]
level = "info"
format = "json"

[clock]
trust = "{self.clock_trust}"

[central]
{self.central_config or DEFAULT_CENTRAL}
{self.extra_config}
{local}
"""
        )

    def start(self) -> None:
        """Start ``greenwave run`` (returns at once; wait for it with :func:`wait_online`)."""
        assert self.proc is None or self.proc.poll() is not None, "agent already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli.main", "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
            )
        AGENTS.append(self.proc)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        """Stop the agent with ``sig``; its exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                raise AssertionError(f"agent ignored signal {sig}:\n{self.log()}") from None
        return proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self, event: str) -> list[dict[str, Any]]:
        """The agent's JSON log records named ``event``."""
        found = []
        for line in self.log().splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event:
                found.append(record)
        return found

    def controller(self) -> Controller:
        """A second client to the same simulator, in its protocol (to read what it holds)."""
        return make_controller(parse_controller_url(self.controller_url))


def new_cabinet(
    root: Path,
    device: str,
    broker: Broker,
    keys: Keys,
    *sim_args: str,
    extra_config: str = "",
    controller_config: str = "",
    central_config: str = "",
    clock_trust: str = "always",
    sim_clock: tuple[str, ...] = START_ARGS,
    local_config: str = "",
    protocol: str = "ntcip",
) -> Cabinet:
    """A provisioned cabinet with its simulator running (agent not started)."""
    root.mkdir(parents=True, exist_ok=True)
    gbt = ("--gbt-udp", "127.0.0.1:0") if protocol == "gbt" else ()
    sim = start_sim(
        root, "--udp", "127.0.0.1:0", *gbt, "--no-view", "--speed", "10", *sim_clock, *sim_args
    )
    cabinet = Cabinet(
        device=device,
        root=root,
        broker=broker,
        keys=keys,
        sim=sim,
        extra_config=extra_config,
        controller_config=controller_config,
        central_config=central_config,
        clock_trust=clock_trust,
        local_config=local_config,
        protocol=protocol,
    )
    cabinet.provision()
    return cabinet


def broker_settings(broker: Broker) -> BrokerSettings:
    return BrokerSettings(host=broker.host, port=broker.port, timeout_s=10)


@asynccontextmanager
async def central(broker: Broker) -> AsyncIterator[CentralClient]:
    """Central's connection to the broker."""
    async with CentralClient(broker_settings(broker)) as client:
        yield client


async def wait_online(client: CentralClient, cabinet: Cabinet, *, after: int = 0) -> int:
    """Wait until the agent says it is online with a session above ``after``; the session."""
    async with client.subscribe(cabinet.topics.online) as online:
        while True:
            message = await online.get()
            body = message.json()
            if body.get("online") is True and body.get("session", 0) > after:
                return int(body["session"])


async def next_json(subscription: Any) -> dict[str, Any]:
    message: Received = await subscription.get()
    body: dict[str, Any] = message.json()
    return body
