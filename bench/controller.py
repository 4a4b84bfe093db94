"""The controller link: the agent's NTCIP driver and status poller against the real simulator.

    .venv/bin/python bench/controller.py [--seconds S] [--serial-seconds S] [--rate HZ]
                                         [--json FILE]

Starts ``greenwave-sim serve`` itself (UDP, PMPP on TCP, PMPP on a pty) and
measures, with the agent's own driver (``make_controller``) and
``StatusPoller`` at their default settings:

1. per transport (udp, tcp/PMPP, pty/PMPP), polling at ``--rate`` (10 Hz) for
   ``--seconds`` (default 60): statuses per second, the gap between
   consecutive statuses (p50, p99, max; SPEC §10 asks p99 ≤ 150 ms), polls
   that got no answer, and the agent's CPU time per poll (``time.process_time``
   of this process; the simulator runs in its own);
2. on the pty with the simulator pacing the line (``--baud``) at 9600, 38400
   and 115200 baud, status polls back to back for ``--serial-seconds``
   (default 20): polls per second achieved versus what the wire allows --
   ``baud / (10 bits x octets of one request and its response)``, PMPP framing
   and byte stuffing included -- as a percentage (SPEC §10 asks ≥ 90 %).

Prints figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.controller.factory import make_controller
from agent.controller.ntcip.driver import NtcipController
from agent.controller.poller import PollSettings, StatusPoller
from agent.controller.url import parse_controller_url
from agent.errors import ControllerError
from agent.logs import configure_logging

REPO = Path(__file__).resolve().parents[1]
#: Bits on an 8N1 serial line per octet.
BITS_PER_BYTE = 10
BAUDS = (9600, 38400, 115200)


@dataclass(frozen=True)
class Simulator:
    """A running ``greenwave-sim serve`` and the URLs of its front ends."""

    proc: asyncio.subprocess.Process
    urls: dict[str, str]


@asynccontextmanager
async def simulator(tty: Path, *extra: str) -> AsyncIterator[Simulator]:
    """Start the simulator on every front end, its pty at ``tty``; stop it (SIGTERM) afterwards."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware_sim.cli", "serve",
        "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--pty", str(tty),
        "--no-view", "--no-control", "--log-level", "warning",
        "--start", "2024-01-01T07:00:00Z", "--utc-offset", "0", *extra,
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    urls: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
            kind, _, rest = line.partition(" ")
            if kind == "udp":
                urls["udp"] = f"udp://{rest}"
            elif kind == "tcp":
                urls["tcp"] = f"tcp://{rest}"
            elif kind == "pty":
                urls["pty"] = f"serial://{rest.split()[0]}"
            elif line == "ready":
                break
            elif not line:
                raise RuntimeError("the simulator stopped before it was ready")
        yield Simulator(proc=proc, urls=urls)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


def driver(url: str) -> NtcipController:
    """The agent's driver for ``url``, as the factory builds it."""
    controller = make_controller(parse_controller_url(url))
    assert isinstance(controller, NtcipController)
    return controller


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass(frozen=True)
class PollFigures:
    """One transport polled at a fixed rate."""

    rate: float
    gaps_ms: list[float]
    missed: int
    cpu_ms_per_poll: float


async def poll_at_rate(url: str, *, rate_hz: float, seconds: float) -> PollFigures:
    """Run a ``StatusPoller`` on ``url`` and record every status for ``seconds``."""
    controller = driver(url)
    poller = StatusPoller(controller, PollSettings(rate_hz=rate_hz))
    task = asyncio.create_task(poller.run(), name="bench-poller")
    try:
        async with asyncio.timeout(10):
            await poller.wait_link(True)
        await asyncio.sleep(1.0)  # warm-up
        arrivals: list[float] = []
        polls, failures = poller.polls, poller.failures
        cpu = time.process_time()
        with_deadline = asyncio.timeout(seconds)
        try:
            async with with_deadline:
                async for status in poller.updates():
                    arrivals.append(status.received_at)
        except TimeoutError:
            if not with_deadline.expired():
                raise
        cpu = time.process_time() - cpu
        polls, failures = poller.polls - polls, poller.failures - failures
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    return PollFigures(
        rate=(len(arrivals) - 1) / (arrivals[-1] - arrivals[0]),
        gaps_ms=gaps,
        missed=failures,
        cpu_ms_per_poll=cpu * 1000 / max(1, polls + failures),
    )


@dataclass(frozen=True)
class WireFigures:
    """Polls back to back on a paced serial line."""

    rate: float
    octets_per_poll: float
    allowed_rate: float
    failures: int
    cpu_ms_per_poll: float


async def poll_flat_out(url: str, *, baud: int, seconds: float) -> WireFigures:
    """``read_status`` back to back on ``url`` for ``seconds``; octets counted on the link."""
    controller = driver(f"{url}?baud={baud}")
    await controller.open()
    try:
        for _ in range(2):  # warm-up
            await controller.read_status()
        counters = controller.link.counters
        octets = counters.bytes_sent + counters.bytes_received
        polls = failures = 0
        cpu, started = time.process_time(), time.monotonic()
        while time.monotonic() - started < seconds:
            try:
                await controller.read_status()
            except ControllerError:
                failures += 1
            else:
                polls += 1
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu
        octets = counters.bytes_sent + counters.bytes_received - octets
    finally:
        await controller.close()
    per_poll = octets / max(1, polls + failures)
    return WireFigures(
        rate=polls / elapsed,
        octets_per_poll=per_poll,
        allowed_rate=baud / (BITS_PER_BYTE * per_poll),
        failures=failures,
        cpu_ms_per_poll=cpu * 1000 / max(1, polls + failures),
    )


async def run(args: argparse.Namespace) -> None:
    """Both measurements, printed as two tables (and written to ``--json FILE``)."""
    figures: dict[str, dict[str, dict[str, float]]] = {"status": {}, "serial": {}}
    print(
        f"controller link on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; agent driver + StatusPoller, defaults; "
        "greenwave-sim serve --speed 1 in its own process"
    )
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        workdir = Path(tmp)
        print(
            f"\n1. status polls at {args.rate:g} Hz, {args.seconds:g} s per transport "
            "(SPEC §10: p99 gap <= 150 ms)"
        )
        print(
            f"{'transport':12} {'statuses/s':>10} {'gap p50 ms':>10} {'p99 ms':>8} "
            f"{'max ms':>8} {'missed':>7} {'CPU ms/poll':>12}"
        )
        async with simulator(workdir / "tty") as sim:
            for name, label in (("udp", "udp"), ("tcp", "tcp (PMPP)"), ("pty", "pty (PMPP)")):
                polled = await poll_at_rate(sim.urls[name], rate_hz=args.rate, seconds=args.seconds)
                gaps = polled.gaps_ms
                print(
                    f"{label:12} {polled.rate:10.2f} {statistics.median(gaps):10.1f} "
                    f"{percentile(gaps, 0.99):8.1f} {max(gaps):8.1f} {polled.missed:7d} "
                    f"{polled.cpu_ms_per_poll:12.2f}"
                )
                figures["status"][name] = {
                    "per_s": polled.rate,
                    "gap_p50_ms": statistics.median(gaps),
                    "gap_p99_ms": percentile(gaps, 0.99),
                    "gap_max_ms": max(gaps),
                    "missed": polled.missed,
                    "cpu_ms_per_poll": polled.cpu_ms_per_poll,
                }
        print(
            f"\n2. serial (pty, the simulator paces the wire), status polls back to back, "
            f"{args.serial_seconds:g} s per speed (SPEC §10: >= 90 % of the wire)"
        )
        print(
            f"{'baud':>7} {'octets/poll':>11} {'wire allows/s':>13} {'achieved/s':>10} "
            f"{'of wire':>8} {'failed':>6} {'CPU ms/poll':>12}"
        )
        for baud in args.bauds:
            async with simulator(workdir / f"tty{baud}", "--baud", str(baud)) as sim:
                wire = await poll_flat_out(sim.urls["pty"], baud=baud, seconds=args.serial_seconds)
            share = 100 * wire.rate / wire.allowed_rate
            print(
                f"{baud:7d} {wire.octets_per_poll:11.1f} {wire.allowed_rate:13.2f} "
                f"{wire.rate:10.2f} {share:7.1f}% {wire.failures:6d} "
                f"{wire.cpu_ms_per_poll:12.2f}"
            )
            figures["serial"][str(baud)] = {
                "octets_per_poll": wire.octets_per_poll,
                "wire_allows_per_s": wire.allowed_rate,
                "achieved_per_s": wire.rate,
                "share_percent": share,
                "failed": wire.failures,
                "cpu_ms_per_poll": wire.cpu_ms_per_poll,
            }
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    """Parse the options and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="polling time per transport (default 60)"
    )
    parser.add_argument(
        "--serial-seconds",
        type=float,
        default=20.0,
        help="back-to-back polling time per baud rate (default 20)",
    )
    parser.add_argument("--rate", type=float, default=10.0, help="status polls per second")
    parser.add_argument(
        "--baud",
        dest="bauds",
        type=int,
        action="append",
        help="serial speed to measure (repeatable; default 9600, 38400, 115200)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file (JSON)"
    )
    args = parser.parse_args()
    args.bauds = args.bauds or list(BAUDS)
    configure_logging(level="warning")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
