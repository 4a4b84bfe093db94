"""Helpers for the simulator front-end tests: SNMP messages, a real simulator process."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from agent.plan.document import read_plan_file
from agent.plan.model import Plan
from agent.protocols.pmpp import FrameErrorEvent, PmppDecoder, PmppFrame
from agent.protocols.snmp import (
    Oid,
    Pdu,
    PduType,
    SnmpMessage,
    SnmpValue,
    VarBind,
    decode_message,
    encode_message,
    oid_from_str,
)
from firmware_sim.controller import SimConfig, SimController

REPO: Final = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN: Final = REPO / "examples" / "plans" / "intersection-8phase.json"
COMMUNITY: Final = b"public"
#: Monday 2024-01-01 07:00:00 UTC: the example plan's day plan 1 runs pattern 1.
MONDAY_0700: Final = 1_704_092_400
START_ARGS: Final = ("--start", "2024-01-01T07:00:00Z", "--utc-offset", "0")


def oid(text: str) -> Oid:
    """A dotted OID."""
    return oid_from_str(text)


def example_plan() -> Plan:
    """The example 8-phase plan (also the simulator's built-in plan)."""
    return read_plan_file(EXAMPLE_PLAN)


def controller(*, start: int = MONDAY_0700) -> SimController:
    """A controller with the example plan, clock at ``start`` (UTC, no offset)."""
    return SimController.from_plan(example_plan(), config=SimConfig(epoch_s=start))


def run_until(
    ctrl: SimController, done: Callable[[SimController], bool], *, limit_s: float
) -> None:
    """Step 0.1 s at a time until ``done``; fail after ``limit_s`` simulated seconds."""
    waited = 0.0
    while not done(ctrl):
        assert waited < limit_s, f"condition not reached within {limit_s} simulated s"
        ctrl.step_ms(100)
        waited += 0.1


def coordinated(ctrl: SimController, pattern: int = 1) -> SimController:
    """Run ``ctrl`` until it runs ``pattern`` coordinated (past start-up flash)."""
    run_until(ctrl, lambda c: c.status().coord_pattern_status == pattern, limit_s=600)
    return ctrl


def request(
    kind: PduType,
    varbinds: Iterable[VarBind],
    *,
    community: bytes = COMMUNITY,
    request_id: int = 1,
) -> bytes:
    """Encode one request."""
    pdu = Pdu(kind=kind, request_id=request_id, varbinds=tuple(varbinds))
    return encode_message(SnmpMessage(community=community, pdu=pdu))


def get(*oids: Oid, community: bytes = COMMUNITY, request_id: int = 1) -> bytes:
    """A GetRequest."""
    binds = (VarBind(oid=o) for o in oids)
    return request(PduType.GET_REQUEST, binds, community=community, request_id=request_id)


def get_next(*oids: Oid, request_id: int = 1) -> bytes:
    """A GetNextRequest."""
    binds = (VarBind(oid=o) for o in oids)
    return request(PduType.GET_NEXT_REQUEST, binds, request_id=request_id)


def set_(*pairs: tuple[Oid, SnmpValue], request_id: int = 1) -> bytes:
    """A SetRequest."""
    binds = (VarBind(oid=o, value=v) for o, v in pairs)
    return request(PduType.SET_REQUEST, binds, request_id=request_id)


def reply_pdu(data: bytes | None) -> Pdu:
    """Decode a reply, which must be a GetResponse."""
    assert data is not None, "no reply"
    message = decode_message(data)
    assert message.pdu.kind is PduType.GET_RESPONSE
    return message.pdu


def frames_in(data: bytes) -> list[PmppFrame]:
    """The good PMPP frames in ``data`` (there must be no bad ones)."""
    out: list[PmppFrame] = []
    for item in PmppDecoder().feed(data):
        assert not isinstance(item, FrameErrorEvent), item
        out.append(item)
    return out


def wait_for(what: str, check: Callable[[], bool], *, timeout: float, every: float = 0.05) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout`` wall seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def read_fd_until(
    fd: int, done: Callable[[bytes], bool], *, timeout: float, chunk: int = 4096
) -> bytes:
    """Read from ``fd`` until ``done(data)``; fail after ``timeout`` seconds."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout} s; read so far: {data.hex(' ')}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            piece = os.read(fd, chunk)
            if not piece:
                raise AssertionError(f"end of stream; read so far: {data.hex(' ')}")
            data += piece
    return data


def pmpp_frames_done(count: int) -> Callable[[bytes], bool]:
    """A ``done`` predicate for :func:`read_fd_until`: ``count`` good frames arrived."""

    def done(data: bytes) -> bool:
        return sum(not isinstance(i, FrameErrorEvent) for i in PmppDecoder().feed(data)) >= count

    return done


# ------------------------------------------------------------- the real process

#: Every simulator process a test started; the autouse guard checks they are gone.
STARTED: list[subprocess.Popen[bytes]] = []


@dataclass
class SimProcess:
    """A running ``greenwave-sim serve`` and what it printed on start."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    endpoints: dict[str, list[str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    _buffer: bytes = b""

    @property
    def udp_port(self) -> int:
        """The first UDP port."""
        return int(self.endpoints["udp"][0].rsplit(":", 1)[1])

    @property
    def tcp_address(self) -> tuple[str, int]:
        """The first TCP address."""
        host, port = self.endpoints["tcp"][0].rsplit(":", 1)
        return host, int(port)

    def read_line(self, timeout: float) -> str:
        """The next line on the simulator's standard output."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = read_fd_until(fd, lambda d: b"\n" in self._buffer + d, timeout=timeout)
        self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        text = line.decode()
        self.lines.append(text)
        return text

    def command(self, line: str, *, timeout: float = 10) -> str:
        """Send one control-channel line; return the answer line."""
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        stdin.flush()
        return self.read_line(timeout)

    def log(self) -> str:
        """Everything logged so far (standard error)."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signal the process and wait for it; kill it if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(
                    f"the simulator ignored signal {sig} for {timeout} s"
                ) from None
        return self.proc.returncode


def start_sim(tmp_path: Path, *args: str, timeout: float = 20) -> SimProcess:
    """Start ``greenwave-sim serve ARGS`` and wait for its ``ready`` line."""
    log_path = tmp_path / f"sim-{len(STARTED)}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.cli", "serve", "--log-format", "json", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=REPO,
        )
    STARTED.append(proc)
    sim = SimProcess(proc=proc, log_path=log_path)
    try:
        while True:
            line = sim.read_line(timeout)
            if line == "ready":
                return sim
            kind, _, rest = line.partition(" ")
            sim.endpoints.setdefault(kind, []).append(rest)
    except AssertionError as err:
        sim.stop()
        raise AssertionError(f"the simulator did not start: {err}\n{sim.log()}") from None


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``greenwave-sim ARGS`` to completion (for commands that exit by themselves)."""
    return subprocess.run(
        [sys.executable, "-m", "firmware_sim.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
