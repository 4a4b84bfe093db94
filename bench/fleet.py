"""A fleet on one machine: N agents + N simulators on one broker, a green-wave rollout.

    .venv/bin/python bench/fleet.py [--agents 5,10,20,40,60] [--idle-seconds S] [--json FILE]

Needs mosquitto (``./scripts/setup``). For each N in ``--agents`` (in turn,
each on a fresh fleet; the sweep stops at the first N where something
gives), on this one machine:

- one mosquitto (loopback); N ``greenwave-sim serve`` (UDP, ``--speed 10``,
  all on one shared clock with ``--start-at-wall``, as in
  tests/e2e/test_corridor.py) started one after another; N ``greenwave run``
  started 0.2 s apart, each with its own state directory and fresh TEST keys
  shared by central; central is this process (the reference client,
  agent/central/client.py), heartbeats every 5 s;
- **idle**: ``--idle-seconds`` with every agent polling at 10 Hz and
  publishing SPaT at 10 Hz: CPU (``utime + stime``) and VmRSS of the broker,
  the agents (sum and mean), the simulators and central; the machine's busy
  share from /proc/stat; load average; the SPaT gaps of every intersection
  as central receives them (``…/+/spat``);
- **rollout**: central rolls a green-wave plan out to the corridor: one
  ``plan.load`` per intersection (the corridor plan with intersection i's
  offsets, i × 12 s, on every pattern), published one after another to each
  device's topic; once every one is ``applied``, one group
  ``control.pattern`` (pattern 3, aud = all N devices) with one
  ``activate_at`` 2 s ahead. Measured from the first publish: every plan
  applied; every ``control.pattern`` accepted and applied (and how late
  after ``activate_at``); every controller running pattern 3 (the agents'
  ``state``: the controller changes pattern at its first cycle boundary
  after ``activate_at``, so up to one 110-s cycle at 10x, ~11 s wall);
- **what gives**: the fleet's processes using ≥ 90 % of the machine's CPU,
  an intersection's SPaT gap p99 > 150 ms in the idle window (SPEC §10; the
  rollout's gaps are printed too), an ``applied`` more than 1 s after
  ``activate_at``, or a command not applied.

Times are wall seconds; the simulators run at 10x so a cycle boundary comes
sooner (the agents' poll and SPaT rates are real time either way). Central's
own work (N × 10 SPaT messages a second, parsed in Python) is on the same
machine and shows in its row. Prints figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import central as central_bench
from common import (
    BROKERS,
    REPO,
    clean_up_on_exit,
    machine,
    process_stat,
    progress,
    run_directory,
    write_json,
)

from agent.central.client import BrokerSettings, CentralClient, CommandSigner, Received
from agent.central.commands import Ack, AckStatus
from agent.central.topics import ROOT
from agent.logs import configure_logging
from tests.broker import Mosquitto
from tests.e2e.harness import Cabinet, Keys, new_cabinet

CORRIDOR_PLAN = REPO / "examples" / "plans" / "corridor-1-main-1st.json"
SPEED = 10
#: Thursday 07:00 (UTC offset 0): the corridor's day plan runs pattern 1.
START = "2026-11-26T07:00:00Z"
GREEN_WAVE = 3
TRAVEL_S = 12
GROUP = "corridor-a"
HEARTBEAT_S = 5.0
ACTIVATE_LEAD_S = 2.0
SPAT_TARGET_MS = 150.0
BUSY_LIMIT = 0.90
LATE_LIMIT_S = 1.0


def corridor_plan(index: int) -> dict[str, Any]:
    """The corridor plan with intersection ``index``'s offsets (a green wave at 12 s a block)."""
    doc: dict[str, Any] = json.loads(CORRIDOR_PLAN.read_text())
    doc["version"] = 2
    doc["name"] = f"corridor intersection {index + 1}"
    for pattern in doc["patterns"]:
        pattern["offset"] = (index * TRAVEL_S) % pattern["cycle"]
    return doc


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return total - idle, total


@dataclass
class Fleet:
    broker: Mosquitto
    cabinets: list[Cabinet]

    @property
    def devices(self) -> list[str]:
        return [c.device for c in self.cabinets]

    def pids(self) -> dict[str, list[int]]:
        agents = [c.proc.pid for c in self.cabinets if c.proc is not None]
        sims = [c.sim.proc.pid for c in self.cabinets]
        broker = [self.broker.proc.pid] if self.broker.proc is not None else []
        return {"broker": broker, "agents": agents, "sims": sims, "central": [os.getpid()]}


@dataclass
class Usage:
    """CPU and RSS of each group of processes over a window; the machine's busy share."""

    started: float
    cpu0: dict[int, float]
    busy0: tuple[float, float]

    @classmethod
    def begin(cls, fleet: Fleet) -> Usage:
        pids = [p for group in fleet.pids().values() for p in group]
        return cls(time.monotonic(), {p: process_stat(p)[0] for p in pids}, machine_busy())

    def end(self, fleet: Fleet) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        busy1 = machine_busy()
        out: dict[str, Any] = {
            "seconds": round(seconds, 1),
            "machine_busy_percent": round(
                100 * (busy1[0] - self.busy0[0]) / max(1.0, busy1[1] - self.busy0[1]), 1
            ),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        ours = 0.0
        for group, pids in fleet.pids().items():
            cpu = [100 * (process_stat(p)[0] - self.cpu0.get(p, 0.0)) / seconds for p in pids]
            ours += sum(cpu)
            rss = [process_stat(p)[1] for p in pids]
            out[group] = {
                "n": len(pids),
                "cpu_percent_sum": round(sum(cpu), 1),
                "cpu_percent_mean": round(sum(cpu) / max(1, len(cpu)), 2),
                "rss_mib_sum": round(sum(rss), 1),
                "rss_mib_mean": round(sum(rss) / max(1, len(rss)), 1),
            }
        cores = os.cpu_count() or 1
        #: The fleet's own share of the machine (the rest of the busy share is other jobs).
        out["fleet_percent_of_machine"] = round(ours / cores, 1)
        return out


class SpatClock:
    """Arrival times of every device's SPaT at central."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.recording = False

    async def run(self, client: CentralClient) -> None:
        async with client.subscribe(f"{ROOT}/+/spat", qos=0, limit=100_000) as sub:
            async for message in sub:
                if self.recording and message.device is not None:
                    self.arrivals[message.device].append(time.monotonic())

    def take(self) -> dict[str, list[float]]:
        arrivals, self.arrivals = self.arrivals, defaultdict(list)
        return dict(arrivals)


def spat_summary(arrivals: dict[str, list[float]], devices: list[str]) -> dict[str, Any]:
    """Per-device gap p99; the worst, the median device and how many over 150 ms."""
    p99: dict[str, float] = {}
    rates = []
    for device in devices:
        times = arrivals.get(device, [])
        gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        p99[device] = central_bench.percentile(gaps, 0.99) if gaps else float("inf")
        if len(times) > 1:
            rates.append((len(times) - 1) / (times[-1] - times[0]))
    worst = max(p99.values()) if p99 else float("inf")
    ordered = sorted(p99.values())
    return {
        "p99_ms_worst": round(worst, 1),
        "p99_ms_median_device": round(ordered[len(ordered) // 2], 1) if ordered else None,
        "devices_over_150ms": sum(1 for v in p99.values() if v > SPAT_TARGET_MS),
        "spat_per_s_min": round(min(rates), 2) if rates else 0.0,
    }


@dataclass
class Rollout:
    first_publish: float = 0.0
    plans_applied: dict[str, float] = field(default_factory=dict)
    activate_at_wall: float = 0.0
    control_sent: float = 0.0
    accepted: dict[str, float] = field(default_factory=dict)
    applied: dict[str, float] = field(default_factory=dict)
    applied_wall: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


async def watch_acks(client: CentralClient, devices: list[str], rollout: Rollout) -> None:
    async with client.acks(devices) as acks:
        async for ack in acks:
            at, wall = time.monotonic(), time.time()
            record(ack, at, wall, rollout)


def record(ack: Ack, at: float, wall: float, rollout: Rollout) -> None:
    device = ack.device
    if ack.status in (AckStatus.REJECTED, AckStatus.FAILED):
        rollout.refused.append(f"{device} {ack.cmd} {ack.status} {ack.code} {ack.detail}")
    elif ack.cmd == "plan.load" and ack.status is AckStatus.APPLIED:
        rollout.plans_applied.setdefault(device, at)
    elif ack.cmd == "control.pattern" and ack.status is AckStatus.ACCEPTED:
        rollout.accepted.setdefault(device, at)
    elif ack.cmd == "control.pattern" and ack.status is AckStatus.APPLIED:
        rollout.applied.setdefault(device, at)
        rollout.applied_wall.setdefault(device, wall)


async def watch_running(client: CentralClient, rollout: Rollout) -> None:
    async with client.subscribe(f"{ROOT}/+/state") as sub:
        async for message in sub:
            body = message.json()
            signal = body.get("signal") or {}
            device = body.get("device")
            if (
                rollout.control_sent
                and isinstance(device, str)
                and body.get("mode") == "central"
                and signal.get("pattern") == GREEN_WAVE
            ):
                rollout.running.setdefault(device, time.monotonic())


async def wait_until(check: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return bool(check())


async def roll_out(
    client: CentralClient, signer: CommandSigner, devices: list[str], rollout: Rollout
) -> None:
    n = len(devices)
    rollout.first_publish = time.monotonic()
    for index, device in enumerate(devices):
        load = signer.sign("plan.load", {"plan": corridor_plan(index)}, aud=device)
        await client.publish(load, device=device)
    if not await wait_until(lambda: len(rollout.plans_applied) == n or rollout.refused, 60 + n):
        raise RuntimeError(f"plans not applied: {n - len(rollout.plans_applied)} missing")
    if rollout.refused:
        raise RuntimeError(f"refused: {rollout.refused[:3]}")
    activate_at = time.time() + ACTIVATE_LEAD_S
    command = signer.sign(
        "control.pattern", {"pattern": GREEN_WAVE, "activate_at": activate_at}, aud=devices
    )
    rollout.activate_at_wall = activate_at
    rollout.control_sent = time.monotonic()
    await client.publish(command, group=GROUP)
    await wait_until(lambda: len(rollout.applied) == n or rollout.refused, 30)
    await wait_until(lambda: len(rollout.running) == n, 3 * 110 / SPEED + 10)


def rollout_summary(rollout: Rollout, n: int) -> dict[str, Any]:
    def last(times: dict[str, float], since: float) -> float | None:
        return round(max(times.values()) - since, 3) if len(times) == n else None

    late = [w - rollout.activate_at_wall for w in rollout.applied_wall.values()]
    return {
        "plans_applied_s": last(rollout.plans_applied, rollout.first_publish),
        "control_accepted_s": last(rollout.accepted, rollout.control_sent),
        "control_applied_s": last(rollout.applied, rollout.first_publish),
        "running_s": last(rollout.running, rollout.first_publish),
        "applied_after_activate_at_s": {
            "min": round(min(late), 3) if late else None,
            "max": round(max(late), 3) if late else None,
        },
        "running_after_activate_at_s": last(
            rollout.running, rollout.control_sent + ACTIVATE_LEAD_S
        ),
        "applied": len(rollout.applied),
        "running": len(rollout.running),
        "refused": rollout.refused[:5],
    }


async def start_fleet(workdir: Path, n: int, keys: Keys) -> Fleet:
    broker = Mosquitto(workdir / "broker")
    BROKERS.append(broker)
    broker.start()
    fleet = Fleet(broker=broker, cabinets=[])
    anchor = time.time() - 40  # 400 simulated seconds of pre-run: all in step
    clock = ("--start", START, "--utc-offset", "0", "--start-at-wall", str(anchor))
    for i in range(n):
        device = f"int-{i + 1:03d}"
        cabinet = await asyncio.to_thread(
            new_cabinet,
            workdir / device,
            device,
            broker,
            keys,
            "--log-level",
            "warning",
            sim_clock=clock,
            controller_config="set_clock = false",
            central_config="backup_time_s = 600",
        )
        fleet.cabinets.append(cabinet)
    for cabinet in fleet.cabinets:
        cabinet.start()
        await asyncio.sleep(0.2)
    return fleet


def stop_fleet(fleet: Fleet) -> None:
    """SIGTERM every agent at once, then every simulator, then the broker (kill stragglers)."""
    for procs in (
        [c.proc for c in fleet.cabinets if c.proc is not None],
        [c.sim.proc for c in fleet.cabinets],
    ):
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    for cabinet in fleet.cabinets:
        cabinet.proc = None
    fleet.broker.stop()


async def wait_all_online(client: CentralClient, devices: list[str], within: float) -> float:
    want = set(devices)
    started = time.monotonic()
    async with client.subscribe(f"{ROOT}/+/online") as sub:
        async with asyncio.timeout(within):
            while want:
                message: Received = await sub.get()
                body = message.json()
                if body.get("online") is True:
                    want.discard(str(message.device))
    return time.monotonic() - started


async def heartbeats(client: CentralClient, signer: CommandSigner) -> None:
    while True:
        await client.heartbeat(signer.heartbeat())
        await asyncio.sleep(HEARTBEAT_S)


async def one_size(workdir: Path, n: int, idle_s: float) -> dict[str, Any]:
    keys = Keys()
    signer = keys.signer()
    progress(f"fleet of {n}: starting {n} simulators and {n} agents ...")
    started = time.monotonic()
    fleet = await start_fleet(workdir, n, keys)
    try:
        settings = BrokerSettings(host=fleet.broker.host, port=fleet.broker.port, timeout_s=30)
        async with CentralClient(settings) as client, asyncio.TaskGroup() as group:
            online_s = await wait_all_online(client, fleet.devices, 60 + 2 * n)
            start_s = time.monotonic() - started
            beats = group.create_task(heartbeats(client, signer), name="heartbeats")
            spat = SpatClock()
            spat_task = group.create_task(spat.run(client), name="spat")
            await asyncio.sleep(5.0)  # settle: first state, events, plan reconciliation
            progress(f"  idle for {idle_s:g} s ...")
            usage = Usage.begin(fleet)
            spat.recording = True
            await asyncio.sleep(idle_s)
            idle_usage = usage.end(fleet)
            idle_spat = spat_summary(spat.take(), fleet.devices)
            progress("  green-wave rollout ...")
            rollout = Rollout()
            acks = group.create_task(watch_acks(client, fleet.devices, rollout), name="acks")
            running = group.create_task(watch_running(client, rollout), name="running")
            await asyncio.sleep(0.5)  # subscriptions in place
            usage = Usage.begin(fleet)
            try:
                await roll_out(client, signer, fleet.devices, rollout)
            finally:
                rollout_usage = usage.end(fleet)
                rollout_spat = spat_summary(spat.take(), fleet.devices)
                for task in (beats, spat_task, acks, running):
                    task.cancel()
    finally:
        progress(f"  stopping the fleet of {n} ...")
        await asyncio.to_thread(stop_fleet, fleet)
    figures = {
        "agents": n,
        "start_s": round(start_s, 1),
        "online_wait_s": round(online_s, 1),
        "idle": {"usage": idle_usage, "spat": idle_spat},
        "rollout": rollout_summary(rollout, n),
        "rollout_usage": rollout_usage,
        "rollout_spat": rollout_spat,
    }
    figures["gives"] = what_gives(figures)
    return figures


def what_gives(f: dict[str, Any]) -> list[str]:
    """What limits this size, if anything."""
    reasons = []
    n = f["agents"]
    for phase, usage in (("idle", f["idle"]["usage"]), ("rollout", f["rollout_usage"])):
        if usage["fleet_percent_of_machine"] >= 100 * BUSY_LIMIT:
            reasons.append(
                f"CPU saturated ({phase}: the fleet uses {usage['fleet_percent_of_machine']:.0f} %"
                " of the machine)"
            )
    # The idle window only: the rollout's window is short (its p99 is nearly its maximum)
    # and holds each controller's plan write, which the status poll waits behind.
    spat = f["idle"]["spat"]
    if spat["devices_over_150ms"]:
        reasons.append(
            f"SPaT gap p99 > 150 ms at {spat['devices_over_150ms']} of {n} (worst "
            f"{spat['p99_ms_worst']:.0f} ms)"
        )
    r = f["rollout"]
    late = r["applied_after_activate_at_s"]["max"]
    if r["applied"] < n:
        reasons.append(f"only {r['applied']} of {n} applied")
    elif late is not None and late > LATE_LIMIT_S:
        reasons.append(f"applied up to {late:.1f} s after activate_at")
    if r["running"] < n:
        reasons.append(f"only {r['running']} of {n} running the pattern")
    return reasons


def report(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    print(
        f"fleet on one machine: {m['machine']}, {m['cores']} cores ({m['cpu']}), "
        f"{m['ram_gib']} GiB, Python {m['python']}, {m['date']}; one mosquitto, N agents + N "
        f"simulators (--speed {SPEED}), central in this process"
    )
    print(
        f"\n{'N':>3} {'fleet%':>6} {'busy%':>6} {'load':>5} {'broker':>13} {'agents sum':>16} "
        f"{'agent mean':>15} {'sims%':>6} {'central%':>8} {'SPaT p99 worst':>15}"
    )
    for size in figures["sizes"]:
        for phase, usage, spat in (
            ("idle", size["idle"]["usage"], size["idle"]["spat"]),
            ("roll", size["rollout_usage"], size["rollout_spat"]),
        ):
            b, a = usage["broker"], usage["agents"]
            print(
                f"{size['agents']:3d} {usage['fleet_percent_of_machine']:5.0f}% "
                f"{usage['machine_busy_percent']:5.0f}% "
                f"{usage['load_average_1m']:5.2f} "
                f"{b['cpu_percent_sum']:5.1f}% {b['rss_mib_sum']:5.1f}M "
                f"{a['cpu_percent_sum']:6.1f}% {a['rss_mib_sum']:7.0f}M "
                f"{a['cpu_percent_mean']:5.2f}% {a['rss_mib_mean']:6.1f}M "
                f"{usage['sims']['cpu_percent_sum']:5.1f}% "
                f"{usage['central']['cpu_percent_sum']:7.1f}% "
                f"{spat['p99_ms_worst']:12.1f} ms  ({phase})"
            )
    print(
        f"\n{'N':>3} {'start':>6} {'plans applied':>13} {'control applied':>15} "
        f"{'late after activate_at':>22} {'all running':>11}   what gives"
    )
    for size in figures["sizes"]:
        r = size["rollout"]
        late = r["applied_after_activate_at_s"]
        print(
            f"{size['agents']:3d} {size['start_s']:5.0f}s {_s(r['plans_applied_s']):>13} "
            f"{_s(r['control_applied_s']):>15} "
            f"{_s(late['min'])} … {_s(late['max']):>8}      {_s(r['running_s']):>11}   "
            f"{'; '.join(size['gives']) or 'nothing'}"
        )
    print(f"\nlargest fleet with nothing giving: {figures['holds']} agents + simulators")


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--agents", default="5,10,20,40,60", help="fleet sizes to try, in order (5,10,20,40,60)"
    )
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="idle window (20 s)")
    parser.add_argument(
        "--keep-going", action="store_true", help="try every size even after one gives"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    sizes = [int(x) for x in args.agents.split(",") if x.strip()]
    clean_up_on_exit()
    configure_logging(level="error")
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    figures: dict[str, Any] = {"machine": machine(), "sizes": [], "holds": 0}
    with run_directory("gw-bench-fleet-") as tmp:
        for n in sizes:
            workdir = Path(tmp) / f"n{n}"
            workdir.mkdir()
            try:
                size = asyncio.run(one_size(workdir, n, args.idle_seconds))
            except (RuntimeError, TimeoutError) as err:
                size = {"agents": n, "error": str(err)[:500], "gives": [f"failed: {err}"[:200]]}
                progress(f"  fleet of {n} failed: {err}")
                figures["sizes"].append(size)
                break
            figures["sizes"].append(size)
            progress(f"  fleet of {n}: {'; '.join(size['gives']) or 'nothing gives'}")
            if size["gives"]:
                if not args.keep_going:
                    break
            else:
                figures["holds"] = max(figures["holds"], n)
    figures["sizes"] = [s for s in figures["sizes"] if "error" not in s] or figures["sizes"]
    write_json(args.json, figures)
    if all("error" not in s for s in figures["sizes"]):
        report(figures)
    else:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
