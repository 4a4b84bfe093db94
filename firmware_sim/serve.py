"""The simulator's network and serial plumbing: UDP, TCP and a pty that looks like a serial port.

These are thin pipes. What the bytes mean is decided by a sans-I/O handler
(the NTCIP front end, later GB/T 20999): a datagram handler turns one request
datagram into at most one reply; a stream session is fed bytes as they arrive
and returns the bytes to send back. The same session type serves TCP and the
pty, so a serial client and a TCP client see exactly the same controller.

A serial wire has a speed. With ``baud`` set, a byte stream models the wire
in both directions (10 bits per byte: start, 8 data, stop): received bytes
are handed to the session only once they would have finished arriving, and
replies leave no faster than the wire carries them. Serial poll rates
measured against the simulator are then realistic.

A handler or session that raises is a bug: the exception is logged and the
request gets no answer; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import structlog

log = structlog.get_logger("firmware_sim.serve")

#: Bits on the wire per byte on an 8N1 serial line.
BITS_PER_BYTE = 10
#: How long closing a server waits for its connections to finish, seconds.
CLOSE_TIMEOUT_S = 2.0
_READ_SIZE = 4096


class DatagramHandler(Protocol):
    """Turns one request datagram into one reply, or None for no answer."""

    def __call__(self, data: bytes, /) -> bytes | None: ...


class StreamSession(Protocol):
    """One byte-stream connection: fed what arrives, returns what to send back."""

    def feed(self, data: bytes, /) -> bytes: ...


SessionFactory = Callable[[], StreamSession]


def parse_host_port(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` → (host, port); IPv6 as ``[::1]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    if ":" in host and not host.startswith("["):
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:16100")
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: the port must be 0-65535")
    return host, number


def format_host_port(host: str, port: int) -> str:
    """The inverse of :func:`parse_host_port`: ``127.0.0.1:161``, ``[::1]:161``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class WirePacer:
    """Paces one direction of a wire: ``n`` bytes take ``n * 10 / baud`` seconds (None: no limit).

    The wire is busy until :attr:`free_at`; bytes queued behind others wait
    their turn, so a burst is spread out as a real UART would send it.
    """

    baud: int | None = None
    clock: Callable[[], float] | None = None
    free_at: float = field(default=0.0)

    def _now(self) -> float:
        return self.clock() if self.clock is not None else asyncio.get_running_loop().time()

    def reserve(self, nbytes: int) -> float:
        """Book ``nbytes`` on the wire; return how long until they are through, seconds."""
        if not self.baud:
            return 0.0
        now = self._now()
        self.free_at = max(now, self.free_at) + nbytes * BITS_PER_BYTE / self.baud
        return self.free_at - now

    async def pace(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more bytes would have finished on the wire."""
        delay = self.reserve(nbytes)
        if delay > 0:
            await asyncio.sleep(delay)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: CPython 3.11's selector datagram transport does not
        # inherit asyncio.DatagramTransport, although it implements it.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self._handler(data)
        except Exception:  # a bug in one request must not stop the server
            log.exception("udp_handler_failed", peer=addr[0])
            return
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.info("udp_error", error=str(exc))


async def serve_udp(
    handler: DatagramHandler, host: str, port: int
) -> tuple[asyncio.DatagramTransport, tuple[str, int]]:
    """Start a UDP server; returns the transport (close it to stop) and the bound address."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProtocol(handler), local_addr=(host, port)
    )
    bound = transport.get_extra_info("sockname")
    log.info("udp_listening", host=bound[0], port=bound[1])
    return transport, (bound[0], bound[1])


def _feed(session: StreamSession, data: bytes, where: str) -> bytes:
    try:
        return session.feed(data)
    except Exception:  # a bug in one request must not stop the server
        log.exception("stream_session_failed", where=where)
        return b""


class TcpServer:
    """A listening TCP server with one session per connection; :meth:`close` ends them all."""

    def __init__(self, sessions: SessionFactory, *, baud: int | None = None) -> None:
        self._sessions = sessions
        self._baud = baud
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.address: tuple[str, int] = ("", 0)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port``; return the bound address."""
        self._server = await asyncio.start_server(self._on_client, host, port)
        bound = self._server.sockets[0].getsockname()
        self.address = (bound[0], bound[1])
        log.info("tcp_listening", host=bound[0], port=bound[1])
        return self.address

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._clients.add(writer)
        peer = str(writer.get_extra_info("peername"))
        log.info("tcp_client", peer=peer)
        session = self._sessions()
        rx, tx = WirePacer(self._baud), WirePacer(self._baud)
        try:
            while data := await reader.read(_READ_SIZE):
                await rx.pace(len(data))
                reply = _feed(session, data, f"tcp {peer}")
                if reply:
                    await tx.pace(len(reply))
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            log.info("tcp_client_gone", peer=peer)

    async def close(self) -> None:
        """Stop listening and close every connection (bounded by :data:`CLOSE_TIMEOUT_S`)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CLOSE_TIMEOUT_S)


async def serve_tcp(
    sessions: SessionFactory, host: str, port: int, *, baud: int | None = None
) -> TcpServer:
    """Start a TCP server, one session per connection; its ``address`` is the bound address."""
    server = TcpServer(sessions, baud=baud)
    await server.start(host, port)
    return server


class PtyPort:
    """A pseudo-terminal whose slave end appears at ``link`` as a serial device.

    The simulator holds the master end. The slave is put in raw mode (no echo,
    no line discipline), so bytes pass through exactly, as on an RS-232 line.
    A client opens ``link`` like any ``/dev/tty…`` (pyserial, or ``os.open``).
    The simulator keeps the slave open too, so a client can close and reopen
    the port at any time; like a controller on a serial line, the simulator
    does not see the client go: one session (one PMPP decoder) serves every
    client in turn, and resynchronises on the next frame. A reply nobody
    read stays in the line's buffer, as it would in a serial adapter.

    ``link`` must not exist, or be a symlink (a leftover of an earlier run),
    which is replaced. :meth:`close` removes it.
    """

    def __init__(self, link: Path, sessions: SessionFactory, *, baud: int | None = None) -> None:
        if link.exists() and not link.is_symlink():
            raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
        self.link = link
        self._sessions = sessions
        self._rx = WirePacer(baud)
        self._tx = WirePacer(baud)
        self._master, self._slave = os.openpty()
        try:
            tty.setraw(self._slave, termios.TCSANOW)
            attrs = termios.tcgetattr(self._slave)
            attrs[3] &= ~termios.ECHO
            termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
            os.set_blocking(self._master, False)
            self.device = os.ttyname(self._slave)
            with contextlib.suppress(FileNotFoundError):
                if link.is_symlink():
                    link.unlink()
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self.device)
        except BaseException:
            os.close(self._master)
            os.close(self._slave)
            raise
        self._session = sessions()
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._pump_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading the master end on the running loop."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self._master, self._on_readable)
        self._pump_task = loop.create_task(self._pump(), name=f"pty {self.link}")
        log.info("pty_ready", link=str(self.link), device=self.device)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # EIO: no process has the slave open (cannot happen while we hold it).
            return
        if data:
            self._inbox.put_nowait(data)

    async def _pump(self) -> None:
        while True:
            data = await self._inbox.get()
            await self._rx.pace(len(data))
            reply = _feed(self._session, data, f"pty {self.link}")
            if reply:
                await self._tx.pace(len(reply))
                await self._write(reply)

    async def _write(self, reply: bytes) -> None:
        view = memoryview(reply)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                # The line's buffer is full (nobody reading): wait for room.
                await asyncio.sleep(0.01)
                continue
            view = view[written:]

    async def close(self) -> None:
        """Stop reading, close both ends and remove the link."""
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().remove_reader(self._master)
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            if self.link.is_symlink():
                self.link.unlink()
        log.info("pty_closed", link=str(self.link))
