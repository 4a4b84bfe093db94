"""The agent's footprint: start to READY, resident memory, idle CPU (SPEC §10).

    .venv/bin/python bench/footprint.py [--starts N] [--idle-seconds S] [--burst N] [--json FILE]

Needs mosquitto (``./scripts/setup``). Two parts:

1. **start to READY**, ``--starts`` times (default 10): a real mosquitto and
   ``greenwave-sim serve --speed 1`` on UDP run; the benchmark binds a unix
   datagram socket, as systemd does for a ``Type=notify`` service, and execs
   ``greenwave run`` (the console script ``ExecStart=`` names) with
   ``NOTIFY_SOCKET`` pointing at it. The figure is the time from just before
   the exec to the arrival of ``READY=1`` (sent only when every task of the
   supervisor has started; agent/supervisor/notify.py). Then SIGTERM and the
   next start. min / median / max, and the first start on its own (colder
   caches).
2. **memory and idle CPU** on the rig of ``bench/central.py`` (mosquitto,
   simulator, agent, central with heartbeats every 5 s; plan loaded):
   ``VmRSS`` (counts shared libraries) and ``RssAnon`` (private) after a
   warm-up, then the agent's ``utime + stime`` over ``--idle-seconds`` with
   nothing but the 10 Hz poll, SPaT, state and heartbeats, in % of one
   core; then a burst of ``--burst`` ``control.pattern`` commands and the
   memory again.

Prints figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import central
from common import (
    BROKERS,
    CHILDREN,
    REPO,
    NotifySocket,
    clean_up_on_exit,
    machine,
    min_median_max,
    progress,
    run_directory,
    write_json,
)

from agent.logs import configure_logging
from tests.broker import Mosquitto
from tests.e2e.harness import Cabinet, Keys
from tests.simfront.helpers import START_ARGS, start_sim

DEVICE = "cab-footprint"
#: SPEC §10 start-to-READY bar (s).
READY_TARGET_S = 1.5


def agent_command(config: Path) -> list[str]:
    """``greenwave run`` as systemd execs it (the console script), or the module."""
    script = Path(sys.executable).parent / "greenwave"
    if script.exists():
        return [str(script), "run", "--config", str(config)]
    return [sys.executable, "-m", "agent.cli.main", "run", "--config", str(config)]


def start_to_ready(workdir: Path, starts: int) -> list[float]:
    """Seconds from exec to READY=1, once per start."""
    broker = Mosquitto(workdir / "broker")
    BROKERS.append(broker)
    broker.start()
    times: list[float] = []
    try:
        root = workdir / DEVICE
        root.mkdir()
        sim = start_sim(
            root, "--udp", "127.0.0.1:0", "--no-view", "--speed", "1",
            "--log-level", "warning", *START_ARGS,
        )  # fmt: skip
        try:
            cabinet = Cabinet(
                device=DEVICE,
                root=root,
                broker=broker,
                keys=Keys(),
                sim=sim,
                central_config="backup_time_s = 0",
            )
            cabinet.provision()
            notify = NotifySocket(workdir / "notify.sock")
            env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
            try:
                for n in range(starts):
                    with cabinet.log_path.open("ab") as log:
                        started = time.monotonic()
                        proc = subprocess.Popen(
                            agent_command(cabinet.config_path),
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO, env=env,
                        )  # fmt: skip
                    CHILDREN.append(proc)
                    ready = notify.wait_for("READY", "1", timeout=30)
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(15)
                    if ready is None:
                        raise RuntimeError(f"no READY=1 within 30 s:\n{cabinet.log()[-3000:]}")
                    times.append(ready - started)
                    progress(f"  start {n + 1}: READY after {times[-1]:.3f} s")
            finally:
                notify.close()
        finally:
            sim.stop()
    finally:
        broker.stop()
    return times


async def memory_and_idle(workdir: Path, *, idle_s: float, burst: int) -> dict[str, Any]:
    """RSS after warm-up and after a command burst; idle CPU over ``idle_s``."""
    async with central.rig(workdir, nagle=False) as bench:
        await central.load_plan(bench)
        await asyncio.sleep(5.0)  # warm-up: the plan's read-back, first state and events
        pid = bench.pid
        warm = {
            "vmrss_mib": round(central.rss_mb(pid), 1),
            "rss_anon_mib": round(central.rss_mb(pid, "RssAnon"), 1),
        }
        progress(f"  idle for {idle_s:g} s ...")
        quiet = await central.idle(bench, idle_s)
        progress(f"  a burst of {burst} control.pattern commands ...")
        done = await central.commands(bench, burst, random.Random(3))
        await asyncio.sleep(2.0)
        after = {
            "vmrss_mib": round(central.rss_mb(pid), 1),
            "rss_anon_mib": round(central.rss_mb(pid, "RssAnon"), 1),
            "commands_applied": len(done.applied_s),
        }
    return {
        "rss_after_warm_up": warm,
        "rss_after_burst": after,
        "idle_cpu_percent": round(100 * quiet.cpu_s / quiet.seconds, 3),
        "idle_window_s": round(quiet.seconds, 1),
        "spat_gap_idle": central.gaps(quiet.spat_arrivals),
    }


def report(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    print(
        f"agent footprint on {m['machine']}, {m['cores']} cores ({m['cpu']}), "
        f"Python {m['python']}, {m['date']}"
    )
    ready = figures["start_to_ready_s"]
    print(
        f"\n1. start to READY=1 over {ready['n']} starts (SPEC §10: <= {READY_TARGET_S} s): "
        f"min {ready['min']:.3f} s, median {ready['median']:.3f} s, max {ready['max']:.3f} s "
        f"(first start {figures['first_start_s']:.3f} s)"
    )
    mem = figures["memory"]
    warm, after = mem["rss_after_warm_up"], mem["rss_after_burst"]
    print("\n2. memory and idle CPU (SPEC §10: resident <= 60 MB; idle <= 1 % of one core)")
    print(
        f"VmRSS after warm-up {warm['vmrss_mib']:.1f} MiB ({warm['rss_anon_mib']:.1f} private); "
        f"after {after['commands_applied']} commands {after['vmrss_mib']:.1f} MiB "
        f"({after['rss_anon_mib']:.1f} private); "
        f"= {after['vmrss_mib'] * 1.048576:.1f} MB"
    )
    print(
        f"idle CPU {mem['idle_cpu_percent']:.2f} % of one core over {mem['idle_window_s']:.0f} s "
        f"(10 Hz poll, 10 Hz SPaT, state, heartbeats every {central.HEARTBEAT_S:g} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=10, help="starts to READY (10)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle window (30 s)")
    parser.add_argument("--burst", type=int, default=100, help="commands in the burst (100)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    clean_up_on_exit()
    configure_logging(level="error")
    figures: dict[str, Any] = {"machine": machine()}
    with run_directory("gw-bench-footprint-") as tmp:
        workdir = Path(tmp)
        progress(f"1. {args.starts} starts of greenwave run to READY=1 ...")
        times = start_to_ready(workdir / "ready", args.starts)
        figures["start_to_ready_s"] = min_median_max(times)
        figures["first_start_s"] = round(times[0], 3)
        figures["start_to_ready_all_s"] = [round(t, 3) for t in times]
        progress("2. memory and idle CPU ...")
        (workdir / "rig").mkdir()
        figures["memory"] = asyncio.run(
            memory_and_idle(workdir / "rig", idle_s=args.idle_seconds, burst=args.burst)
        )
    write_json(args.json, figures)
    report(figures)


if __name__ == "__main__":
    main()
