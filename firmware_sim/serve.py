"""The simulator's network and serial plumbing: UDP, TCP and a pty that looks like a serial port.

These are thin pipes. What the bytes mean is decided by a sans-I/O handler
(the NTCIP front end, later GB/T 20999): a datagram handler turns one request
datagram into at most one reply; a stream session is fed bytes as they arrive
and returns the bytes to send back. The same session type serves TCP and the
pty, so a serial client and a TCP client see exactly the same controller.

A serial wire has a speed. With ``baud`` set, replies are paced to the time
they would take on the wire (10 bits per byte: start, 8 data, stop), so that
serial poll rates measured against the simulator are realistic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

log = structlog.get_logger("firmware_sim.serve")

#: Bits on the wire per byte on an 8N1 serial line.
BITS_PER_BYTE = 10


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
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: the port must be 0-65535")
    return host, number


@dataclass
class WirePacer:
    """Delays writes so that bytes leave no faster than ``baud`` allows (None: no limit)."""

    baud: int | None = None
    _free_at: float = 0.0

    async def pace(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more bytes would have finished on the wire."""
        if not self.baud:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._free_at)
        self._free_at = start + nbytes * BITS_PER_BYTE / self.baud
        delay = self._free_at - now
        if delay > 0:
            await asyncio.sleep(delay)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self._handler(data)
        except Exception:
            log.exception("udp_handler_failed", peer=addr[0])
            return
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


async def serve_udp(
    handler: DatagramHandler, host: str, port: int
) -> tuple[asyncio.DatagramTransport, tuple[str, int]]:
    """Start a UDP server; returns the transport and the bound address."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProtocol(handler), local_addr=(host, port)
    )
    bound = transport.get_extra_info("sockname")
    log.info("udp_listening", host=bound[0], port=bound[1])
    return transport, (bound[0], bound[1])


async def serve_tcp(
    sessions: SessionFactory, host: str, port: int, *, baud: int | None = None
) -> tuple[asyncio.Server, tuple[str, int]]:
    """Start a TCP server, one session per connection; returns the server and its address."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        session = sessions()
        pacer = WirePacer(baud)
        try:
            while data := await reader.read(4096):
                reply = session.feed(data)
                if reply:
                    await pacer.pace(len(reply))
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            log.info("tcp_client_gone", peer=str(peer))

    server = await asyncio.start_server(on_client, host, port)
    bound = server.sockets[0].getsockname()
    log.info("tcp_listening", host=bound[0], port=bound[1])
    return server, (bound[0], bound[1])


class PtyPort:
    """A pseudo-terminal whose slave end appears at ``link`` as a serial device.

    The simulator holds the master end. The slave is put in raw mode (no echo,
    no line discipline), so bytes pass through exactly, as on an RS-232 line.
    A client opens ``link`` with pyserial like any ``/dev/tty…``. When a client
    closes the port, the master keeps reading: the next client sees a fresh
    session, as a controller sees a technician re-plug a cable.
    """

    def __init__(self, link: Path, sessions: SessionFactory, *, baud: int | None = None) -> None:
        self.link = link
        self._sessions = sessions
        self._pacer = WirePacer(baud)
        self._master, self._slave = os.openpty()
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
        self._session = sessions()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading the master end on the running loop."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self._master, self._on_readable)
        self._writer_task = loop.create_task(self._write_loop(), name=f"pty-writer {self.link}")
        log.info("pty_ready", link=str(self.link), device=self.device)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:
            # EIO: no process has the slave open right now; wait for the next one.
            return
        if not data:
            return
        reply = self._session.feed(data)
        if reply:
            self._queue.put_nowait(reply)

    async def _write_loop(self) -> None:
        while True:
            reply = await self._queue.get()
            await self._pacer.pace(len(reply))
            view = memoryview(reply)
            while view:
                try:
                    written = os.write(self._master, view)
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                    continue
                view = view[written:]

    async def close(self) -> None:
        """Stop reading, close both ends and remove the link."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        if self._writer_task is not None:
            self._writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer_task
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            if self.link.is_symlink():
                self.link.unlink()
