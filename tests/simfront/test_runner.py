"""The real-time driver on a fake clock, the control commands, and a whole run in process."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from agent.protocols import ntcip1202 as mib
from agent.protocols.pmpp import encode_frame
from agent.protocols.snmp import Integer
from firmware_sim.commands import (
    Inject,
    MmuReset,
    ShowHelp,
    ShowStatus,
    parse_command,
    parse_fault,
    run_command,
)
from firmware_sim.controller import SimController
from firmware_sim.mmu import FaultKind
from firmware_sim.runner import ServeSettings, SimClockDriver, SimStartError, run_simulator

from .helpers import controller, coordinated, frames_in, get, read_fd_until, reply_pdu
from .test_transports import udp_ask


class FakeClock:
    """Wall seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -------------------------------------------------------------------- the driver


def test_the_driver_runs_simulated_time_at_speed() -> None:
    ctrl, clock = controller(), FakeClock()
    driver = SimClockDriver(ctrl, speed=20, clock=clock)
    clock.now += 0.05
    driver.catch_up()
    assert ctrl.now_ms == 1000
    clock.now += 1.5
    driver.catch_up()
    assert ctrl.now_ms == 31_000
    driver.catch_up()  # no wall time passed: nothing to do
    assert ctrl.now_ms == 31_000
    assert driver.achieved_speed == pytest.approx(20)


def test_the_driver_keeps_fractions_of_a_millisecond() -> None:
    ctrl, clock = controller(), FakeClock()
    driver = SimClockDriver(ctrl, speed=0.3, clock=clock)
    for _ in range(1000):
        clock.now += 0.001
        driver.catch_up()
    assert ctrl.now_ms == 300


def test_the_driver_drops_a_backlog_it_cannot_step() -> None:
    ctrl, clock = controller(), FakeClock()
    driver = SimClockDriver(ctrl, speed=1000, clock=clock, max_lag_s=1.0)
    clock.now += 100  # the loop was blocked for 100 s: 100,000 simulated seconds
    driver.catch_up()
    assert ctrl.now_ms == 1000 * 1000
    assert driver.dropped_ms == 99_000 * 1000
    clock.now += 0.5  # afterwards it runs at speed again
    driver.catch_up()
    assert ctrl.now_ms == 1500 * 1000


def test_the_driver_catches_up_a_stall_of_minutes_at_low_speed() -> None:
    ctrl, clock = controller(), FakeClock()
    driver = SimClockDriver(ctrl, speed=1, clock=clock)
    clock.now += 240  # the controller clock must not fall behind after a stall
    driver.catch_up()
    assert ctrl.now_ms == 240_000
    assert driver.dropped_ms == 0


def test_scheduled_faults_run_at_their_simulated_time() -> None:
    ctrl, clock = coordinated(controller()), FakeClock()
    seen: list[tuple[str, int]] = []
    start_ms = ctrl.now_ms
    driver = SimClockDriver(
        ctrl,
        speed=10,
        clock=clock,
        faults=(parse_fault("reset@30"), parse_fault("conflict@12.5")),
        on_fault=lambda fault, answer: seen.append((fault.label, ctrl.now_ms - start_ms)),
    )
    clock.now += 1.0
    driver.catch_up()
    assert seen == []
    clock.now += 1.0
    driver.catch_up()
    assert seen == [("conflict@12.5", 12_500)]
    assert ctrl.status().mmu_fault is not None
    clock.now += 2.0
    driver.catch_up()
    assert seen[-1] == ("reset@30", 30_000)
    assert ctrl.status().mmu_fault is None


def test_the_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClockDriver(controller(), speed=0, clock=FakeClock())


# ---------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("inject conflict", Inject(kind=FaultKind.CONFLICT)),
        ("inject CONFLICT 13", Inject(kind=FaultKind.CONFLICT, channel=13)),
        ("inject short-yellow 2 1.5", Inject(kind=FaultKind.SHORT_YELLOW, channel=2, seconds=1.5)),
        ("  reset  # after the demo", MmuReset()),
        ("status", ShowStatus()),
        ("help", ShowHelp()),
        ("", None),
        ("# a comment", None),
    ],
)
def test_parse_command(line: str, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    "line",
    ["inject", "inject fire", "inject dark 17", "inject dark 2 0", "reset now", "launch"],
)
def test_parse_command_refuses(line: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_command(line)


def test_parse_fault() -> None:
    fault = parse_fault("dark@45:3")
    assert (fault.at_s, fault.command) == (45.0, Inject(kind=FaultKind.DARK, channel=3))
    assert parse_fault("reset@60").command == MmuReset()
    for bad in ("conflict", "conflict@soon", "conflict@-1", "boom@3", "reset@3:2", "dark@1:99"):
        with pytest.raises(ValueError, match=r"."):
            parse_fault(bad)


def test_run_command_injects_and_resets(ctrl: SimController) -> None:
    assert run_command(ctrl, Inject(kind=FaultKind.CONFLICT)) == "armed conflict"
    ctrl.step(2)
    assert "mode=mmu-flash" in run_command(ctrl, ShowStatus())
    assert run_command(ctrl, MmuReset()) == "MMU reset: unit restarts"
    assert run_command(ctrl, MmuReset()) == "MMU reset: nothing was latched"
    assert "inject" in run_command(ctrl, ShowHelp())


# ------------------------------------------------------------- a run in process


@pytest.mark.usefixtures("no_leaked_tasks")
async def test_a_run_serves_udp_tcp_and_pty_and_obeys_the_control_channel(
    tmp_path: Path,
) -> None:
    ctrl = coordinated(controller())
    lines: list[str] = []

    async def lines_after(count: int, more: int) -> list[str]:
        deadline = time.monotonic() + 10
        while len(lines) < count + more:
            assert time.monotonic() < deadline, lines
            await asyncio.sleep(0.01)
        return lines[count : count + more]

    link = tmp_path / "ttySIM"
    settings = ServeSettings(udp=(("127.0.0.1", 0),), tcp=(("127.0.0.1", 0),), pty=(link,), speed=5)
    stop = asyncio.Event()
    control_read, control_write = os.pipe()
    run = asyncio.create_task(
        run_simulator(ctrl, settings, emit=lines.append, stop=stop, control_fd=control_read)
    )
    try:
        deadline = time.monotonic() + 5
        while "ready" not in lines:
            assert time.monotonic() < deadline, lines
            assert not run.done(), lines
            await asyncio.sleep(0.01)
        kinds = [line.split()[0] for line in lines[:-1]]
        assert kinds == ["udp", "tcp", "pty"]
        host, port = lines[0].split()[1].rsplit(":", 1)
        # UDP
        pdu = reply_pdu(await udp_ask((host, int(port)), get(mib.COORD_PATTERN_STATUS.instance())))
        assert pdu.varbinds[0].value == Integer(1)
        # TCP
        tcp_host, tcp_port = lines[1].split()[1].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(tcp_host, int(tcp_port))
        writer.write(encode_frame(address=1, payload=get(mib.GLOBAL_TIME.instance())))
        data = await asyncio.wait_for(reader.read(4096), 5)
        assert frames_in(data)
        writer.close()
        await writer.wait_closed()
        # pty
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, encode_frame(address=1, payload=get(mib.GLOBAL_TIME.instance())))
            data = await asyncio.to_thread(
                read_fd_until, fd, lambda d: bool(d.endswith(b"\x7e") and len(d) > 20), timeout=5
            )
            assert frames_in(data)
        finally:
            os.close(fd)
        # control channel
        os.write(control_write, b"status\n")
        (answer,) = await lines_after(len(lines), 1)
        assert "mode=steady" in answer
        count = len(lines)
        os.write(control_write, b"inject conflict\nbogus\n")
        armed, error = await lines_after(count, 2)
        assert armed == "armed conflict"
        assert error.startswith("error: unknown command 'bogus'")
        deadline = time.monotonic() + 10
        while ctrl.status().mmu_fault is None:
            assert time.monotonic() < deadline, "the MMU did not latch"
            await asyncio.sleep(0.05)
        count = len(lines)
        os.write(control_write, b"reset\n")
        assert await lines_after(count, 1) == ["MMU reset: unit restarts"]
    finally:
        stop.set()
        summary = await asyncio.wait_for(run, 10)
        os.close(control_write)
        os.close(control_read)
    assert summary.answered >= 3
    assert summary.sim_seconds > 0
    assert not link.is_symlink()


@pytest.mark.usefixtures("no_leaked_tasks")
async def test_a_port_in_use_stops_the_start_and_closes_what_was_opened() -> None:
    ctrl = controller()
    loop = asyncio.get_running_loop()
    taken, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    free, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    taken_port = taken.get_extra_info("sockname")[1]
    free_port = free.get_extra_info("sockname")[1]
    free.close()
    await asyncio.sleep(0)  # the transport closes its socket on the next turn
    settings = ServeSettings(udp=(("127.0.0.1", free_port), ("127.0.0.1", taken_port)))
    try:
        with pytest.raises(SimStartError, match=f"udp 127.0.0.1:{taken_port}"):
            await run_simulator(ctrl, settings, emit=lambda line: None, stop=asyncio.Event())
    finally:
        taken.close()
    # The first server was closed again: its port can be bound.
    await asyncio.sleep(0)
    again, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", free_port)
    )
    again.close()
