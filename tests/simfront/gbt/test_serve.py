"""``greenwave-sim serve --gbt-*``: GB/T 20999 on UDP, TCP and a pty of the real process."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import (
    FrameType,
    Ids,
    Message,
    MessageDecoder,
    encode,
    heartbeat,
    query_message,
    set_request,
)
from firmware_sim.cli import app
from firmware_sim.gbt_mib import SERVED
from tests.simfront.helpers import START_ARGS, read_fd_until, start_sim

#: Sequence 0x7E and center 0x5C must be escaped on a stream, and are echoed.
AWKWARD_IDS = Ids(center=0x5C, controller=0x7D, intersection=0)


def _messages(data: bytes) -> list[Message]:
    return [item for item in MessageDecoder().feed(data) if isinstance(item, Message)]


def _replies(count: int) -> Callable[[bytes], bool]:
    return lambda data: len(_messages(data)) >= count


def test_gbt_on_udp_tcp_and_a_pty_of_one_process(tmp_path: Path) -> None:
    link = tmp_path / "ttyGBT0"
    sim = start_sim(
        tmp_path,
        *("--gbt-udp", "127.0.0.1:0", "--gbt-tcp", "127.0.0.1:0", "--gbt-pty", str(link)),
        *START_ARGS,
        "--no-view",
    )
    try:
        assert set(sim.endpoints) == {"gbt-udp", "gbt-tcp", "gbt-pty"}  # no NTCIP by default
        assert sim.endpoints["gbt-pty"][0].split()[0] == str(link)
        request = query_message(AWKWARD_IDS, 0x7E, gbt.SCHEME_CYCLE.at(1), gbt.RUN_MODE.at(1))
        wire = encode(request, framing=Framing.STREAM)
        assert b"\x5c\x7e" in wire
        host, port = sim.endpoints["gbt-tcp"][0].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"noise\x7d" + wire[:7])
            conn.sendall(wire[7:] + encode(heartbeat(AWKWARD_IDS, 3), framing=Framing.STREAM))
            over_tcp = _messages(read_fd_until(conn.fileno(), _replies(2), timeout=10))
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, wire)
            over_pty = _messages(read_fd_until(fd, _replies(1), timeout=10))
        finally:
            os.close(fd)
    finally:
        assert sim.stop() == 0
    assert not link.is_symlink()
    for reply in (over_tcp[0], over_pty[0]):
        assert (reply.frame_type, reply.ids, reply.sequence) == (
            FrameType.QUERY_REPLY,
            AWKWARD_IDS,
            0x7E,
        )
        assert gbt.SCHEME_CYCLE.decode(reply.values[0].value) == 120
    assert over_tcp[1].frame_type is FrameType.HEARTBEAT_REPLY


def test_sets_are_logged_with_names_and_values(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, "--gbt-udp", "127.0.0.1:0", *START_ARGS, "--no-view")
    try:
        host, port = sim.endpoints["gbt-udp"][0].rsplit(":", 1)
        values = [
            (gbt.SCHEME_STAGE_TIMES.at(2), gbt.SCHEME_STAGE_TIMES.encode((13, 38, 12, 27))),
            (gbt.CENTER_STAGE.at(1), gbt.CENTER_STAGE.encode(4)),
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            for sequence, value in enumerate(values, start=1):
                request = set_request(AWKWARD_IDS, sequence, [value])
                sock.sendto(encode(request, framing=Framing.DATAGRAM), (host, int(port)))
                sock.recvfrom(65535)
    finally:
        sim.stop()
    log = sim.log()
    assert "scheme.stage_times[2]=13 38 12 27" in log
    assert '"refused": "center_control.stage[1]", "code": "0x50"' in log


# ----------------------------------------------------------------------- the CLI


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """In-process CLI runs configure structlog; put the defaults back afterwards."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gbt-udp", "localhost:x"], "--gbt-udp"),
        (["--gbt-tcp", "::1:80"], "--gbt-tcp"),
        (["--gbt-link-timeout", "-1"], "--gbt-link-timeout"),
        (["--gbt-refuse", "scheme.colour"], "--gbt-refuse"),
        (["--gbt-refuse", "scheme.cycle:maybe"], "--gbt-refuse"),
        (["--gbt-alter", "scheme.cycle"], "--gbt-alter"),
        (["--gbt-alter", "stage.phases=+1"], "not a number"),
        (["--gbt-ignore", "99.1.1"], "--gbt-ignore"),
    ],
)
def test_bad_gbt_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--gbt-udp", "127.0.0.1:0", *args])
    assert result.exit_code == 2, result.stderr
    assert isinstance(result.exception, SystemExit)
    assert message in result.stderr
    assert result.stdout == ""


def test_objects_lists_every_gbt_attribute() -> None:
    printed = CliRunner().invoke(app, ["objects", "--gbt", "--markdown"]).stdout.splitlines()
    assert len(printed) == len(SERVED) + 2
    assert "| scheme.cycle | `9.2.3.<scheme>` | 4 | s | read-write |" in "\n".join(printed)
    assert any(
        line.startswith("| center_control.run_mode | `17.1.4.<center_control>`") for line in printed
    )
    plain = CliRunner().invoke(app, ["objects", "--gbt"]).stdout.splitlines()
    assert len(plain) == len(SERVED)
