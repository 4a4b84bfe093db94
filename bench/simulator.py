"""How fast the simulator runs, and how many SNMP requests per second it answers.

    .venv/bin/python bench/simulator.py [--seconds S] [--json FILE]

Five measurements, about ``S`` seconds each (default 4; ~25 s in all):

1. the bare core: ``SimController.step`` as fast as it goes (simulated s per wall s);
2. the core stepping as fast as it goes in an asyncio loop that also serves
   SNMP over UDP, polled by another process at 10 requests/s (a SPaT-like poll);
3. the same, polled as fast as the poller can (4 requests in flight);
4. the real ``greenwave-sim serve`` process (speed 1) answering a loopback client
   that keeps 1, then 4, GetRequests in flight: requests/s answered and the round trip.

Every request is a GetRequest of 10 status varbinds (phase status group 1,
pattern, local free status, cycle, flash status), built with
``agent.protocols.snmp``. Prints a table; figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import structlog

from agent.plan.document import parse_plan
from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import (
    ErrorStatus,
    Pdu,
    PduType,
    SnmpMessage,
    VarBind,
    decode_message,
    encode_message,
)
from firmware_sim.controller import SimConfig, SimController
from firmware_sim.default_plan import DEFAULT_PLAN_JSON
from firmware_sim.ntcip_responder import NtcipResponder
from firmware_sim.serve import serve_udp

REPO = Path(__file__).resolve().parents[1]
MONDAY_0700 = 1_704_092_400
STATUS_OIDS = (
    *(
        obj.instance(1)
        for obj in (
            mib.PHASE_STATUS_GROUP_REDS,
            mib.PHASE_STATUS_GROUP_YELLOWS,
            mib.PHASE_STATUS_GROUP_GREENS,
            mib.PHASE_STATUS_GROUP_DONT_WALKS,
            mib.PHASE_STATUS_GROUP_WALKS,
        )
    ),
    mib.COORD_PATTERN_STATUS.instance(),
    mib.LOCAL_FREE_STATUS.instance(),
    mib.COORD_CYCLE_STATUS.instance(),
    mib.UNIT_FLASH_STATUS.instance(),
    mib.GLOBAL_TIME.instance(),
)
STEP_S = 30.0


def status_request(request_id: int) -> bytes:
    """A GetRequest of the 10 status varbinds."""
    pdu = Pdu(
        kind=PduType.GET_REQUEST,
        request_id=request_id,
        varbinds=tuple(VarBind(oid=oid) for oid in STATUS_OIDS),
    )
    return encode_message(SnmpMessage(community=b"public", pdu=pdu))


# The client must cost far less than the server, so it does not run the BER codec per
# request: request-ids are kept at 4 octets and patched into one encoded template.
_ID_BASE = 0x01000000
_TEMPLATE = status_request(_ID_BASE)
_ID_AT = _TEMPLATE.index(bytes([0x02, 0x04]) + _ID_BASE.to_bytes(4, "big")) + 2


def fast_request(request_id: int) -> bytes:
    """:func:`status_request` for ``_ID_BASE + request_id``, without encoding."""
    number = (_ID_BASE + request_id).to_bytes(4, "big")
    return _TEMPLATE[:_ID_AT] + number + _TEMPLATE[_ID_AT + 4 :]


def _skip_header(data: bytes, at: int) -> int:
    """Position of the content of the TLV at ``at``."""
    first = data[at + 1]
    return at + 2 + (first & 0x7F if first & 0x80 else 0)


def reply_id_and_status(data: bytes) -> tuple[int, int]:
    """(request-id - _ID_BASE, error-status) of a GetResponse, read from its header."""
    at = _skip_header(data, 0)  # message SEQUENCE
    at = _skip_header(data, at) + data[at + 1]  # version INTEGER (short form)
    at = _skip_header(data, at) + data[at + 1]  # community OCTET STRING (short form)
    at = _skip_header(data, at)  # PDU
    size = data[at + 1]
    request_id = int.from_bytes(data[at + 2 : at + 2 + size], "big", signed=True)
    at += 2 + size
    return request_id - _ID_BASE, data[at + 2]


def new_controller() -> SimController:
    """The built-in plan, Monday 07:00 (coordinated pattern 1)."""
    return SimController.from_plan(
        parse_plan(DEFAULT_PLAN_JSON), config=SimConfig(epoch_s=MONDAY_0700)
    )


# ----------------------------------------------------------------------- client


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request_id, _ = reply_id_and_status(data)
        except IndexError:
            return
        future = self.waiting.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(data)


async def poll(
    port: int, *, seconds: float, window: int, rate: float | None
) -> tuple[int, int, list[float]]:
    """Send status GETs for ``seconds``; return (answered, lost, round trips in s)."""
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", port)
    )
    answered = lost = 0
    trips: list[float] = []
    next_id = 1
    deadline = loop.time() + seconds
    interval = window / rate if rate else 0.0

    async def worker() -> None:
        nonlocal answered, lost, next_id
        while loop.time() < deadline:
            request_id, next_id = next_id, next_id + 1
            future: asyncio.Future[bytes] = loop.create_future()
            client.waiting[request_id] = future
            sent = loop.time()
            transport.sendto(fast_request(request_id))
            try:
                reply = await asyncio.wait_for(future, 1.0)
            except TimeoutError:
                client.waiting.pop(request_id, None)
                lost += 1
                continue
            trips.append(loop.time() - sent)
            if reply_id_and_status(reply)[1] == ErrorStatus.NO_ERROR:
                answered += 1
            if interval:
                await asyncio.sleep(max(0.0, sent + interval - loop.time()))

    try:
        await asyncio.gather(*(worker() for _ in range(window)))
    finally:
        transport.close()
    return answered, lost, trips


def poller_main(argv: list[str]) -> None:
    """Child-process mode: ``poll PORT SECONDS WINDOW RATE`` (RATE 0 = as fast as possible)."""
    port, seconds, window, rate = int(argv[0]), float(argv[1]), int(argv[2]), float(argv[3])
    answered, lost, _ = asyncio.run(poll(port, seconds=seconds, window=window, rate=rate or None))
    print(answered, lost)


# ------------------------------------------------------------------ measurements


def bare_core(seconds: float) -> float:
    """Simulated seconds per wall second of the core alone."""
    ctrl = new_controller()
    ctrl.step(600)  # past start-up, coordinated
    simulated = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        ctrl.step(STEP_S)
        simulated += STEP_S
    return simulated / (time.perf_counter() - start)


async def core_while_polled(seconds: float, *, window: int, rate: float) -> tuple[float, float]:
    """Step as fast as possible while another process polls; (sim speed, requests/s)."""
    ctrl = new_controller()
    ctrl.step(600)
    responder = NtcipResponder(ctrl)
    transport, (_, port) = await serve_udp(responder.handle, "127.0.0.1", 0)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "poll", str(port), str(seconds), str(window), str(rate),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    simulated = 0.0
    start = time.perf_counter()
    try:
        while child.returncode is None and time.perf_counter() - start < seconds + 10:
            ctrl.step(STEP_S)
            simulated += STEP_S
            await asyncio.sleep(0)
            if time.perf_counter() - start > seconds:
                break
        elapsed = time.perf_counter() - start
        out, _ = await asyncio.wait_for(child.communicate(), seconds + 10)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        transport.close()
    answered = int(out.split()[0])
    return simulated / elapsed, answered / seconds


async def real_process_rate(seconds: float, *, window: int) -> tuple[float, float, float, int]:
    """Requests/s the real simulator answers; (rate, median ms, p99 ms, lost)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware_sim.cli", "serve", "--udp", "127.0.0.1:0",
        "--no-control", "--no-view", "--log-level", "warning",
        "--start", "2024-01-01T07:00:00Z", "--utc-offset", "0",
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = 0
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
            if line.startswith("udp "):
                port = int(line.rsplit(":", 1)[1])
            if line == "ready" or not line:
                break
        await poll(port, seconds=0.5, window=1, rate=None)  # warm-up
        answered, lost, trips = await poll(port, seconds=seconds, window=window, rate=None)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    trips.sort()
    p99 = trips[int(len(trips) * 0.99)] if trips else float("nan")
    return answered / seconds, statistics.median(trips) * 1000, p99 * 1000, lost


def _check_fast_client() -> None:
    reply = NtcipResponder(new_controller()).handle(fast_request(7))
    assert reply is not None
    message = decode_message(reply)
    assert message.pdu.request_id == _ID_BASE + 7
    assert reply_id_and_status(reply) == (7, 0)


def main() -> None:
    """Print the table."""
    if len(sys.argv) > 1 and sys.argv[1] == "poll":
        poller_main(sys.argv[2:])
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file (JSON)"
    )
    args = parser.parse_args()
    figures: dict[str, object] = {}
    seconds = args.seconds
    _check_fast_client()
    print(f"simulator on {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {seconds:g} s per row")  # fmt: skip
    print(f"{'measurement':52} {'sim s/wall s':>13} {'req/s':>8}")
    figures["bare_core_speed"] = bare = bare_core(seconds)
    print(f"{'bare core (SimController.step)':52} {bare:13,.0f} {'-':>8}")
    speed, rate = asyncio.run(core_while_polled(seconds, window=1, rate=10))
    figures["polled_10hz"] = {"speed": speed, "requests_per_s": rate}
    print(f"{'core + UDP responder, polled at 10 req/s':52} {speed:13,.0f} {rate:8.1f}")
    speed, rate = asyncio.run(core_while_polled(seconds, window=4, rate=0))
    figures["polled_flat_out"] = {"speed": speed, "requests_per_s": rate}
    print(f"{'core + UDP responder, polled flat out (4 in flight)':52} {speed:13,.0f} {rate:8.0f}")
    trips = []
    for window in (1, 4):
        rate, median_ms, p99_ms, lost = asyncio.run(real_process_rate(seconds, window=window))
        name = f"greenwave-sim serve --speed 1, {window} in flight"
        print(f"{name:52} {'1':>13} {rate:8.0f}")
        figures[f"process_{window}_in_flight"] = {
            "requests_per_s": rate,
            "round_trip_median_ms": median_ms,
            "round_trip_p99_ms": p99_ms,
            "lost": lost,
        }
        trips.append(
            f"{window} in flight: median {median_ms:.2f} ms, p99 {p99_ms:.2f} ms, lost {lost}"
        )
    print("round trips (GetRequest of 10 status varbinds, UDP on loopback):")
    for line in trips:
        print(f"  {line}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
