"""The real ``greenwave-sim`` process: PMPP on the pty and TCP, signals, arguments, commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from agent.protocols import ntcip1202 as mib
from agent.protocols.pmpp import encode_frame
from agent.protocols.snmp import Counter32, ErrorStatus, Integer, Oid, SnmpValue
from firmware_sim.cli import app
from firmware_sim.default_plan import DEFAULT_PLAN_JSON
from firmware_sim.ntcip_mib import SERVED

from .helpers import (
    EXAMPLE_PLAN,
    START_ARGS,
    SimProcess,
    frames_in,
    get,
    pmpp_frames_done,
    read_fd_until,
    reply_pdu,
    run_cli,
    start_sim,
    wait_for,
)

# shared/reference/ntcip-protocols.md §1, byte for byte: GET coordPatternStatus.0, drop 1.
WORKED_FRAME = bytes.fromhex(
    "7E 05 13 C1 30 2b 02 01 00 04 06 70 75 62 6c 69 63 a0 1e 02 01 01 02 01 00 02 01 00"
    " 30 13 30 11 06 0d 2b 06 01 04 01 89 36 04 02 01 04 0a 00 05 00 6B 39 7E"
)


def udp_get(sim: SimProcess, *oids: Oid, timeout: float = 2.0) -> list[SnmpValue]:
    """GET over UDP with a plain socket; the values."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(get(*oids), ("127.0.0.1", sim.udp_port))
        pdu = reply_pdu(sock.recv(65535))
    assert pdu.error_status is ErrorStatus.NO_ERROR, pdu
    return [vb.value for vb in pdu.varbinds]


def udp_int(sim: SimProcess, oid: Oid) -> int:
    """GET one INTEGER over UDP."""
    (value,) = udp_get(sim, oid)
    assert isinstance(value, Integer)
    return value.value


def check_worked_reply(data: bytes) -> None:
    """The reply frame to the worked request: drop 1, UI, SNMP, coordPatternStatus.0."""
    (frame,) = frames_in(data)
    assert (frame.address, frame.control, frame.ipi) == (1, 0x13, 0xC1)
    pdu = reply_pdu(frame.payload)
    assert pdu.request_id == 1
    assert pdu.error_status is ErrorStatus.NO_ERROR
    assert pdu.varbinds[0].oid == mib.COORD_PATTERN_STATUS.instance()
    assert isinstance(pdu.varbinds[0].value, Integer)


def test_pmpp_on_the_pty_and_tcp_of_the_real_process(tmp_path: Path) -> None:
    link = tmp_path / "dev" / "ttyGW0"
    sim = start_sim(
        tmp_path, "--pty", str(link), "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", *START_ARGS
    )
    try:
        assert sim.endpoints["pty"][0].split()[0] == str(link)
        assert link.is_symlink()
        # The worked frame, written raw into the pty.
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, WORKED_FRAME)
            check_worked_reply(read_fd_until(fd, pmpp_frames_done(1), timeout=10))
            # Noise before and between frames; a frame for drop 2 and a bad FCS are ignored.
            bad = bytearray(WORKED_FRAME)
            bad[-2] ^= 0xFF
            other_drop = encode_frame(address=2, payload=get(mib.GLOBAL_TIME.instance()))
            time_frame = encode_frame(address=1, payload=get(mib.GLOBAL_TIME.instance()))
            os.write(fd, b"\x00\x13line noise" + bytes(bad) + other_drop + b"\xff" + time_frame)
            data = read_fd_until(fd, pmpp_frames_done(1), timeout=10)
            (frame,) = frames_in(data)
            assert isinstance(reply_pdu(frame.payload).varbinds[0].value, Counter32)
        finally:
            os.close(fd)
        # The same over TCP.
        with socket.create_connection(sim.tcp_address, timeout=10) as conn:
            conn.sendall(b"junk\x7d\x7e" + WORKED_FRAME)
            check_worked_reply(read_fd_until(conn.fileno(), pmpp_frames_done(1), timeout=10))
    finally:
        assert sim.stop() == 0
    assert not link.exists()
    assert not link.is_symlink()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_simulator_cleanly(tmp_path: Path, sig: int) -> None:
    link = tmp_path / "ttyGW1"
    sim = start_sim(tmp_path, "--pty", str(link), "--udp", "127.0.0.1:0")
    assert link.is_symlink()
    started = time.monotonic()
    assert sim.stop(sig) == 0
    assert time.monotonic() - started < 5
    assert not link.is_symlink()
    log = sim.log()
    assert "Traceback" not in log
    assert "sim_stopped" in log


def test_the_logs_are_json_lines(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, "--udp", "127.0.0.1:0")
    udp_get(sim, mib.MAX_PHASES.instance())
    sim.stop()
    events = [json.loads(line)["event"] for line in sim.log().splitlines()]
    assert events[0] == "plan_loaded"
    assert {"udp_listening", "sim_started", "sim_stopped"} <= set(events)


def test_faults_from_the_command_line_and_the_control_channel(tmp_path: Path) -> None:
    sim = start_sim(
        tmp_path, "--udp", "127.0.0.1:0", "--speed", "20", "--fault", "conflict@15", *START_ARGS
    )
    flash = mib.UNIT_FLASH_STATUS.instance()
    try:
        line = sim.read_line(timeout=20)  # announced on stdout when it is armed
        assert line.startswith("fault conflict@15: armed conflict")
        wait_for("the MMU to latch", lambda: udp_int(sim, flash) == 6, timeout=10)
        assert "mode=mmu-flash" in sim.command("status")
        assert sim.command("reset") == "MMU reset: unit restarts"
        wait_for("the unit to run again", lambda: udp_int(sim, flash) == 2, timeout=20)
        assert sim.command("inject dark 2 5") == "armed dark on channel 2"
        wait_for("the MMU to latch again", lambda: udp_int(sim, flash) == 6, timeout=10)
        assert sim.command("explode").startswith("error: unknown command")
    finally:
        assert sim.stop() == 0


def test_the_controller_clock_starts_where_asked(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, "--udp", "127.0.0.1:0", "--start", "2030-06-01T12:00:00+02:00")
    try:
        (clock,) = udp_get(sim, mib.GLOBAL_TIME.instance())
        assert isinstance(clock, Counter32)
        expected = datetime(2030, 6, 1, 10, tzinfo=UTC).timestamp()
        assert 0 <= clock.value - expected < 10
    finally:
        sim.stop()
    sim = start_sim(tmp_path, "--udp", "127.0.0.1:0", "--start", "now", "--utc-offset", "+05:30")
    try:
        clock, zone = udp_get(
            sim, mib.GLOBAL_TIME.instance(), mib.CONTROLLER_STANDARD_TIME_ZONE.instance()
        )
        assert isinstance(clock, Counter32)
        assert abs(clock.value - time.time()) < 10
        assert zone == Integer(5 * 3600 + 1800)
    finally:
        sim.stop()


def test_a_plan_file_is_loaded(tmp_path: Path) -> None:
    document = json.loads(EXAMPLE_PLAN.read_text())
    document["phases"][1]["yellow"] = 5.0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(document))
    sim = start_sim(tmp_path, "--udp", "127.0.0.1:0", "--plan", str(plan_file))
    try:
        assert udp_int(sim, mib.PHASE_YELLOW_CHANGE.instance(2)) == 50
    finally:
        sim.stop()


def test_the_default_port_is_16100_when_no_endpoint_is_given(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", 16100))
        except OSError:
            pytest.skip("port 16100 is in use on this machine")
    try:
        sim = start_sim(tmp_path)
    except AssertionError as err:
        if "cannot listen on udp 127.0.0.1:16100" in str(err):
            pytest.skip("port 16100 was taken by another process meanwhile")
        raise
    try:
        assert sim.endpoints == {"udp": ["127.0.0.1:16100"]}
    finally:
        sim.stop()


# ----------------------------------------------------------------------- refusals


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """In-process CLI runs configure structlog; put the defaults back afterwards."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--speed", "0"], "--speed"),
        (["--speed", "nan"], "--speed"),
        (["--udp", "localhost:http"], "--udp"),
        (["--tcp", "::1:80"], "--tcp"),
        (["--address", "0"], "--address"),
        (["--baud", "3"], "--baud"),
        (["--start", "yesterday"], "yesterday"),
        (["--utc-offset", "+25:00"], "offset"),
        (["--refuse", "noSuchObject"], "--refuse"),
        (["--refuse", "systemPatternControl:maybe"], "--refuse"),
        (["--alter", "systemPatternControl"], "--alter"),
        (["--fault", "meteor@10"], "--fault"),
        (["--max-message", "10"], "--max-message"),
        (["--log-level", "loud"], "--log-level"),
        (["--community", ""], "--community"),
        (["--plan", "/nonexistent/plan.json"], "cannot read"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_no_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--udp", "127.0.0.1:0", *args])
    assert result.exit_code == 2, result.stderr
    assert isinstance(result.exception, SystemExit)  # not an escaped exception
    assert message in result.stderr
    assert result.stdout == ""


def test_the_real_process_refuses_a_bad_argument_without_a_traceback() -> None:
    result = run_cli("serve", "--udp", "127.0.0.1:0", "--speed", "-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "greenwave-sim: --speed -1.0: must be above 0 and at most 10000"
    ]


def test_an_internal_error_is_one_line_and_exit_70(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("firmware_sim.cli.run_simulator", broken)
    result = CliRunner().invoke(app, ["serve", "--udp", "127.0.0.1:0", "--log-level", "warning"])
    assert result.exit_code == 70
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == (
        "greenwave-sim: internal error, please report it: RuntimeError: a bug"
    )


def test_an_unsafe_plan_is_refused_with_one_line_per_problem(tmp_path: Path) -> None:
    document = json.loads(EXAMPLE_PLAN.read_text())
    document["phases"][2]["yellow"] = 2.5
    document["patterns"][0]["splits"]["2"] = 70
    plan_file = tmp_path / "unsafe.json"
    plan_file.write_text(json.dumps(document))
    result = run_cli("serve", "--udp", "127.0.0.1:0", "--plan", str(plan_file))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{plan_file}: REJECTED, ")
    problems = [line for line in lines[1:] if line.startswith("  ")]
    assert len(problems) >= 2
    assert any("yellow" in line for line in problems)
    assert "Traceback" not in result.stderr


def test_a_document_that_is_not_a_plan_is_refused(tmp_path: Path) -> None:
    plan_file = tmp_path / "typo.json"
    plan_file.write_text(EXAMPLE_PLAN.read_text().replace('"yellow"', '"yelow"', 1))
    result = run_cli("serve", "--plan", str(plan_file))
    assert result.returncode == 2
    assert "not a plan document" in result.stderr
    assert "did you mean 'yellow'" in result.stderr


def test_a_port_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_cli("serve", "--udp", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on udp 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_objects_lists_every_served_object() -> None:
    result = run_cli("objects")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == len(SERVED)
    assert "systemPatternControl" in result.stdout
    markdown = run_cli("objects", "--markdown").stdout.splitlines()
    assert markdown[0].startswith("| object | OID |")
    assert len(markdown) == len(SERVED) + 2


def test_help_works_for_every_command() -> None:
    for args in ([], ["serve"], ["objects"]):
        result = run_cli(*args, "--help")
        assert result.returncode == 0
        assert "Usage" in result.stdout


def test_the_built_in_plan_is_the_example_plan() -> None:
    assert json.loads(DEFAULT_PLAN_JSON) == json.loads(EXAMPLE_PLAN.read_text())
