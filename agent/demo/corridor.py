"""The demo corridor: Main St, one simulated controller and one agent per intersection.

Each intersection gets a folder in the work directory::

    <workdir>/main-1st/
        agent.toml      the agent's config (DEMO: loopback broker, clock trusted by config)
        state/          the agent's state: trust store with the DEMO keys, plan, audit log …
        agent.log       the agent's JSON log (the demo follows it)
        agent.sock      the agent's technician socket (``greenwave status --config agent.toml``)
        sim.out         what the simulator printed (its endpoints, then "ready")
        sim.log         the simulator's log
        events.jsonl    the simulator's own hi-res event log (Indiana codes)
    <workdir>/central/  the DEMO signing keys (expire after a day; never for a cabinet)

The plans are the example corridor ``examples/plans/corridor-*.json``: the
same cycle everywhere, offsets for a 50 km/h eastbound progression. All
simulators share one clock (``--start`` at ``--start-at-wall``, ``--speed``
times real time, started minutes "earlier" so they are already in step):
Thursday 07:00, when the corridor's local schedule runs the AM-peak green
wave (pattern 1) — the pattern central commands, so the fallback keeps the
same green wave running on the local clocks.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from agent.central.client import CommandSigner
from agent.central.commands import Role
from agent.central.signing import SigningKey
from agent.central.trust import TrustedKey, TrustStore
from agent.demo import EXIT_UNUSABLE, DemoError
from agent.demo.children import TIER_AGENT, TIER_SIMULATOR, Child, Children

#: The repository's example plans (the demo runs from a source checkout).
PLANS_DIR: Final = Path(__file__).resolve().parents[2] / "examples" / "plans"
PLAN_GLOB: Final = "corridor-*.json"
MAX_INTERSECTIONS: Final = 5

#: Central's identity in the demo (the DEMO keys are issued to it).
ISSUER: Final = "tms.demo"
ROOT_KID: Final = "demo-root"
COMMAND_KID: Final = "demo-command"
#: The DEMO keys are trusted for this long, then never again.
KEY_LIFETIME_S: Final = 86_400.0
GROUP: Final = "main-st"

#: The green-wave pattern (AM peak) and its coordinated phase (eastbound through).
GREEN_WAVE: Final = 1
COORD_PHASE: Final = 2
#: Thursday 07:00 at UTC offset 0: the day plan runs pattern 1 from 06:30 to 09:30.
SIM_START: Final = "2026-11-26T07:00:00Z"
SIM_MIDNIGHT: Final = datetime(2026, 11, 26, tzinfo=UTC).timestamp()
#: Pattern 1 runs locally until 09:30 (the coordination check stops there).
SIM_PATTERN_END: Final = SIM_MIDNIGHT + 9.5 * 3600
#: Simulated seconds the controllers have run before the demo starts (in step by then).
PRE_RUN_SIM_S: Final = 400.0

HEARTBEAT_TIMEOUT_S: Final = 3.0


@dataclass(frozen=True)
class SimClock:
    """The simulators' shared clock: ``SIM_START`` at wall time ``anchor``, ``speed``×."""

    speed: float
    anchor: float

    @classmethod
    def starting_now(cls, speed: float) -> SimClock:
        return cls(speed=speed, anchor=time.time() - PRE_RUN_SIM_S / speed)

    def sim_time(self, wall: float) -> float:
        """The controllers' clock (epoch s) at a wall-clock time."""
        start = datetime.fromisoformat(SIM_START).timestamp()
        return start + self.speed * (wall - self.anchor)

    def args(self) -> tuple[str, ...]:
        return (
            "--speed",
            f"{self.speed:g}",
            "--start",
            SIM_START,
            "--utc-offset",
            "0",
            "--start-at-wall",
            f"{self.anchor:.3f}",
        )

    def backup_time_s(self) -> int:
        """The controllers' backup timer (their seconds): the agents' default, scaled by speed."""
        return math.ceil(self.speed * (2 * HEARTBEAT_TIMEOUT_S + 5))


def corridor_plans(count: int) -> list[tuple[str, Path]]:
    """(device id, plan file) of the first ``count`` corridor intersections, west to east."""
    files = sorted(PLANS_DIR.glob(PLAN_GLOB))
    if len(files) < count:
        raise DemoError(
            f"the demo needs the example corridor plans {PLANS_DIR}/{PLAN_GLOB} "
            f"({count} of them, found {len(files)}): run it from a greenwave source checkout",
            exit_status=EXIT_UNUSABLE,
        )
    out = []
    for path in files[:count]:
        # corridor-1-main-1st.json -> main-1st
        device = path.stem.split("-", 2)[2]
        out.append((device, path))
    return out


@dataclass(frozen=True)
class DemoKeys:
    """Central's DEMO keys: a root key (keys.update only) and a command key."""

    root: SigningKey
    command: SigningKey

    @classmethod
    def generate(cls) -> DemoKeys:
        return cls(root=SigningKey.generate(ROOT_KID), command=SigningKey.generate(COMMAND_KID))

    def signer(self) -> CommandSigner:
        return CommandSigner(self.command, ISSUER, lifetime_s=60)

    def write(self, folder: Path) -> None:
        """The key files, marked DEMO (to play along with ``greenwave central``)."""
        folder.mkdir(parents=True, exist_ok=True)
        for key in (self.root, self.command):
            private = folder / f"{key.kid}.DEMO.key"
            private.touch(mode=0o600)
            private.write_bytes(key.private_pem())
            (folder / f"{key.kid}.DEMO.pub").write_bytes(key.public_pem())
        (folder / "README.txt").write_text(
            "DEMO keys made by `greenwave demo` for this run only.\n"
            f"Issuer {ISSUER}; trusted by the demo's agents for {KEY_LIFETIME_S / 3600:g} hours.\n"
            "Never provision them on a real cabinet.\n"
        )

    def trust(self, state_dir: Path) -> None:
        """Provision an agent's trust store with these keys, as an installer would."""
        state_dir.mkdir(parents=True, exist_ok=True)
        store = TrustStore.open(state_dir / "trust.json", clock=time.time, watch=False)
        until = time.time() + KEY_LIFETIME_S
        for key, role in ((self.root, Role.ROOT), (self.command, Role.COMMAND)):
            store.add(
                TrustedKey(
                    kid=key.kid,
                    iss=ISSUER,
                    role=role,
                    public_key=key.public_key_b64,
                    not_after=until,
                )
            )


@dataclass
class Intersection:
    """One intersection: its folder, plan, simulator and agent."""

    device: str
    index: int
    plan_path: Path
    root: Path
    plan: dict[str, Any] = field(default_factory=dict)
    sim: Child | None = None
    udp_port: int | None = None
    agent: Child | None = None

    def __post_init__(self) -> None:
        if not self.plan:
            self.plan = json.loads(self.plan_path.read_text())

    @property
    def config_path(self) -> Path:
        return self.root / "agent.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def agent_log(self) -> Path:
        return self.root / "agent.log"

    @property
    def socket_path(self) -> Path:
        return self.root / "agent.sock"

    @property
    def sim_out(self) -> Path:
        return self.root / "sim.out"

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def pattern(self, number: int) -> dict[str, Any]:
        """A pattern row of the plan."""
        for row in self.plan["patterns"]:
            if row["pattern"] == number:
                found: dict[str, Any] = row
                return found
        raise DemoError(f"{self.plan_path}: no pattern {number}")

    def config_text(self, *, broker_port: int, clock: SimClock, count: int) -> str:
        """The agent's config (every key checked by the agent at start-up)."""
        return f"""\
# greenwave demo: the agent of {self.device} (simulated). A DEMO config, not for a cabinet.
[device]
id = "{self.device}"
groups = ["{GROUP}"]
location = "demo: Main St corridor, signal {self.index + 1} of {count} (simulated)"

[state]
dir = "{self.state_dir}"

[controller]
url = "udp://127.0.0.1:{self.udp_port}"
# The simulator runs {clock.speed:g}x real time on its own clock: never set it from ours.
set_clock = false

[mqtt]
host = "127.0.0.1"
port = {broker_port}
reconnect_initial_s = 0.1
reconnect_max_s = 1.0

[logging]
level = "info"
format = "json"

[clock]
# A demo machine's clock may not be NTP-synchronised, so it is trusted by
# configuration here. A cabinet uses trust = "kernel" (the kernel's NTP state).
trust = "always"

[local]
# The technician's socket: try `greenwave status --config {self.config_path}`.
socket = "{self.socket_path}"

[central]
heartbeat_timeout_s = {HEARTBEAT_TIMEOUT_S:g}
# The controller's own backup timer, in its ({clock.speed:g}x) seconds.
backup_time_s = {clock.backup_time_s()}
"""

    async def start_sim(self, children: Children, clock: SimClock, *, timeout_s: float) -> None:
        """Start the simulator and wait for its ``ready`` line; learn its UDP port."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.sim_out.write_bytes(b"")
        argv = (
            sys.executable,
            "-m",
            "firmware_sim.cli",
            "serve",
            "--udp",
            "127.0.0.1:0",
            "--no-view",
            "--no-control",
            *clock.args(),
            "--plan",
            str(self.plan_path),
            "--events",
            str(self.events_path),
            "--log-format",
            "json",
        )
        self.sim = await children.spawn(
            f"sim {self.device}",
            argv,
            log_path=self.root / "sim.log",
            stdout_path=self.sim_out,
            tier=TIER_SIMULATOR,
            cwd=self.root,
            env=child_environment(),
        )
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.sim_out.read_text(errors="replace").splitlines()
            if "ready" in lines:
                break
            if not self.sim.running:
                raise DemoError(
                    f"the simulator of {self.device} exited at start:\n{self.sim.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"the simulator of {self.device} was not ready in {timeout_s:g} s")
            await asyncio.sleep(0.05)
        for line in lines:
            kind, _, where = line.partition(" ")
            if kind == "udp":
                self.udp_port = int(where.rsplit(":", 1)[1])
        if self.udp_port is None:
            raise DemoError(f"the simulator of {self.device} announced no UDP endpoint")

    def provision(self, keys: DemoKeys, *, broker_port: int, clock: SimClock, count: int) -> None:
        """Write the config and the trust store (the simulator must be up: its port)."""
        keys.trust(self.state_dir)
        self.config_path.write_text(
            self.config_text(broker_port=broker_port, clock=clock, count=count)
        )

    async def start_agent(self, children: Children) -> None:
        """Start ``greenwave run`` for this intersection (the director follows its log)."""
        argv = (sys.executable, "-m", "agent.cli.main", "run", "--config", str(self.config_path))
        self.agent = await children.spawn(
            f"agent {self.device}",
            argv,
            log_path=self.agent_log,
            tier=TIER_AGENT,
            cwd=self.root,
            env=child_environment(),
        )


def child_environment() -> dict[str, str]:
    """The demo's environment without ``GREENWAVE_*`` (they would override the demo configs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GREENWAVE_")}
