"""The plumbing in firmware_sim.serve, in process: UDP, TCP and the pty, pacing, robustness."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from agent.protocols import ntcip1202 as mib
from agent.protocols.pmpp import FrameErrorEvent, PmppDecoder, PmppFrame, encode_frame
from agent.protocols.snmp import ErrorStatus, Integer
from firmware_sim.ntcip_responder import NtcipResponder
from firmware_sim.pmpp_session import PmppSession
from firmware_sim.serve import (
    PtyPort,
    WirePacer,
    format_host_port,
    parse_host_port,
    serve_tcp,
    serve_udp,
)

from .helpers import frames_in, get, reply_pdu

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

PATTERN = mib.COORD_PATTERN_STATUS.instance()


def pattern_frame(request_id: int = 1) -> bytes:
    """A PMPP frame carrying GET coordPatternStatus.0 to drop 1."""
    return encode_frame(address=1, payload=get(PATTERN, request_id=request_id))


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)


async def udp_ask(address: tuple[str, int], data: bytes, *, wait_s: float = 2.0) -> bytes | None:
    """Send one datagram; the reply, or None after ``wait_s`` seconds."""
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Client, remote_addr=address)
    try:
        transport.sendto(data)
        try:
            return await asyncio.wait_for(client.replies.get(), wait_s)
        except TimeoutError:
            return None
    finally:
        transport.close()


async def read_frames(
    reader: Callable[[], bytes | None], count: int, *, wait_s: float = 5.0
) -> list[PmppFrame]:
    """Poll ``reader`` (non-blocking) until ``count`` good frames arrived."""
    decoder = PmppDecoder()
    frames: list[PmppFrame] = []
    deadline = time.monotonic() + wait_s
    while len(frames) < count:
        assert time.monotonic() < deadline, f"got {len(frames)} of {count} frames"
        data = reader()
        if not data:
            await asyncio.sleep(0.005)
            continue
        for item in decoder.feed(data):
            assert not isinstance(item, FrameErrorEvent), item
            frames.append(item)
    return frames


def nonblocking_reader(fd: int) -> Callable[[], bytes | None]:
    """Read what is there on a non-blocking descriptor, or None."""

    def read() -> bytes | None:
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return None

    return read


def session_factory(responder: NtcipResponder) -> Callable[[], PmppSession]:
    """New PMPP sessions for drop 1 in front of ``responder``."""
    return lambda: PmppSession(responder.handle, address=1)


# ------------------------------------------------------------------------- UDP


async def test_udp_answers_a_get(responder: NtcipResponder) -> None:
    transport, address = await serve_udp(responder.handle, "127.0.0.1", 0)
    try:
        assert address[1] > 0
        pdu = reply_pdu(await udp_ask(address, get(PATTERN, request_id=9)))
        assert (pdu.request_id, pdu.varbinds[0].value) == (9, Integer(1))
    finally:
        transport.close()


async def test_udp_over_ipv6_loopback(responder: NtcipResponder) -> None:
    try:
        transport, address = await serve_udp(responder.handle, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        assert reply_pdu(await udp_ask(address, get(PATTERN))).error_status is (
            ErrorStatus.NO_ERROR
        )
    finally:
        transport.close()


async def test_a_failing_handler_costs_one_answer_not_the_server(
    responder: NtcipResponder,
) -> None:
    def handler(data: bytes) -> bytes | None:
        if data == b"boom":
            raise RuntimeError("a bug")
        return responder.handle(data)

    transport, address = await serve_udp(handler, "127.0.0.1", 0)
    try:
        assert await udp_ask(address, b"boom", wait_s=0.3) is None
        assert reply_pdu(await udp_ask(address, get(PATTERN))).varbinds[0].value == Integer(1)
    finally:
        transport.close()


# ------------------------------------------------------------------------- TCP


async def test_tcp_answers_pmpp_frames_through_noise(responder: NtcipResponder) -> None:
    server = await serve_tcp(session_factory(responder), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.address)
    try:
        stream = b"noise\x7d" + pattern_frame(1) + b"\x00\x01 more noise " + pattern_frame(2)
        for start in range(0, len(stream), 7):  # arrives in small pieces
            writer.write(stream[start : start + 7])
            await writer.drain()
        data = b""
        while len([f for f in PmppDecoder().feed(data) if isinstance(f, PmppFrame)]) < 2:
            data += await asyncio.wait_for(reader.read(4096), 5)
        assert [reply_pdu(f.payload).request_id for f in frames_in(data)] == [1, 2]
    finally:
        writer.close()
        await writer.wait_closed()
        await server.close()


async def test_closing_the_tcp_server_ends_open_connections(responder: NtcipResponder) -> None:
    server = await serve_tcp(session_factory(responder), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(pattern_frame())
    await writer.drain()
    await asyncio.wait_for(reader.read(4096), 5)
    await asyncio.wait_for(server.close(), 5)
    assert await asyncio.wait_for(reader.read(4096), 5) == b""
    writer.close()
    await writer.wait_closed()


async def test_each_tcp_connection_has_its_own_session(responder: NtcipResponder) -> None:
    server = await serve_tcp(session_factory(responder), "127.0.0.1", 0)
    first = await asyncio.open_connection(*server.address)
    second = await asyncio.open_connection(*server.address)
    try:
        frame = pattern_frame()
        first[1].write(frame[:20])  # half a frame on the first connection
        second[1].write(frame)
        await first[1].drain()
        await second[1].drain()
        data = await asyncio.wait_for(second[0].read(4096), 5)
        assert reply_pdu(frames_in(data)[0].payload).request_id == 1
        first[1].write(frame[20:])
        data = await asyncio.wait_for(first[0].read(4096), 5)
        assert reply_pdu(frames_in(data)[0].payload).request_id == 1
    finally:
        for _, writer in (first, second):
            writer.close()
            await writer.wait_closed()
        await server.close()


# ------------------------------------------------------------------------- pty


async def test_pty_answers_raw_frames_written_to_the_link(
    responder: NtcipResponder, tmp_path: Path
) -> None:
    link = tmp_path / "ttySIM0"
    port = PtyPort(link, session_factory(responder))
    port.start()
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        assert link.resolve() == Path(port.device)
        os.write(fd, b"\xff\x00garbage" + pattern_frame(3) + b"\x7d\x7d" + pattern_frame(4))
        frames = await read_frames(nonblocking_reader(fd), 2)
        assert [reply_pdu(f.payload).request_id for f in frames] == [3, 4]
    finally:
        os.close(fd)
        await port.close()
    assert not link.is_symlink()


async def test_pty_serves_a_pyserial_client_and_the_next_one(
    responder: NtcipResponder, tmp_path: Path
) -> None:
    link = tmp_path / "ttySIM1"
    port = PtyPort(link, session_factory(responder))
    port.start()

    def exchange(request_id: int) -> bytes:
        with serial.Serial(str(link), baudrate=38400, timeout=0.05) as line:
            line.write(pattern_frame(request_id))
            data = b""
            deadline = time.monotonic() + 5
            while not frames_done(data) and time.monotonic() < deadline:
                data += line.read(256)
            return data

    def frames_done(data: bytes) -> bool:
        return any(isinstance(i, PmppFrame) for i in PmppDecoder().feed(data))

    try:
        for request_id in (1, 2):  # open, ask, close; then a new client does the same
            data = await asyncio.to_thread(exchange, request_id)
            assert reply_pdu(frames_in(data)[0].payload).request_id == request_id
    finally:
        await port.close()


async def test_pty_refuses_to_replace_a_real_file(
    responder: NtcipResponder, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a link")
    with pytest.raises(FileExistsError):
        PtyPort(taken, session_factory(responder))
    assert taken.read_text() == "not a link"
    stale = tmp_path / "stale"
    stale.symlink_to("/dev/pts/999999")
    port = PtyPort(stale, session_factory(responder))
    assert stale.resolve() == Path(port.device)
    await port.close()


# ---------------------------------------------------------------------- pacing


def test_wire_pacer_books_bytes_back_to_back() -> None:
    now = [100.0]
    pacer = WirePacer(9600, clock=lambda: now[0])
    assert pacer.reserve(96) == pytest.approx(0.1)
    assert pacer.reserve(96) == pytest.approx(0.2)  # queued behind the first burst
    now[0] = 101.0
    assert pacer.reserve(960) == pytest.approx(1.0)  # the wire was idle again
    assert WirePacer(None).reserve(10_000) == 0.0


async def test_a_paced_pty_takes_the_wire_time_of_request_and_reply(
    responder: NtcipResponder, tmp_path: Path
) -> None:
    baud = 9600
    link = tmp_path / "ttySLOW"
    port = PtyPort(link, session_factory(responder), baud=baud)
    port.start()
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        request = pattern_frame()
        started = time.monotonic()
        os.write(fd, request)
        (frame,) = await read_frames(nonblocking_reader(fd), 1)
        elapsed = time.monotonic() - started
        wire_s = (len(request) + len(frame.encode())) * 10 / baud
        assert elapsed >= wire_s * 0.95
    finally:
        os.close(fd)
        await port.close()


async def test_a_paced_tcp_stream_takes_the_wire_time(responder: NtcipResponder) -> None:
    baud = 4800
    server = await serve_tcp(session_factory(responder), "127.0.0.1", 0, baud=baud)
    reader, writer = await asyncio.open_connection(*server.address)
    try:
        requests = b"".join(pattern_frame(n) for n in range(1, 4))
        started = time.monotonic()
        writer.write(requests)
        await writer.drain()
        data = b""
        while len(frames_in(data)) < 3:
            data += await asyncio.wait_for(reader.read(4096), 5)
        elapsed = time.monotonic() - started
        assert elapsed >= (len(requests) + len(data)) * 10 / baud * 0.95
    finally:
        writer.close()
        await writer.wait_closed()
        await server.close()


# ------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:161", ("127.0.0.1", 161)),
        (":0", ("127.0.0.1", 0)),
        ("16100", ("127.0.0.1", 16100)),
        ("[::1]:501", ("::1", 501)),
        ("0.0.0.0:5000", ("0.0.0.0", 5000)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected
    assert parse_host_port(format_host_port(*expected)) == expected


@pytest.mark.parametrize("text", ["host:port", "1.2.3.4:70000", "::1:161", "x:-1"])
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_host_port(text)
