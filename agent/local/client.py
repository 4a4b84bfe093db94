"""The ``greenwave`` verbs' side of the control socket: connect, ask once, read the answer.

Blocking and small on purpose: a CLI process asks one question and exits.
Every way the conversation can fail is one of the errors below, each with a
sentence a technician can act on; the CLI turns them into exit codes
(docs/technician.md).
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import GreenwaveError
from agent.local.protocol import (
    MAX_RESPONSE_BYTES,
    Failure,
    LineFramer,
    LocalProtocolError,
    parse_reply,
    request_line,
)

#: How long a plain request may take (s); an override waits for the controller.
DEFAULT_TIMEOUT_S = 10.0
_READ_CHUNK = 64 * 1024


class LocalClientError(GreenwaveError):
    """The conversation with the agent failed."""

    code = "E_LOCAL"


class AgentNotRunning(LocalClientError):
    """No agent answers at the socket."""

    code = "E_NOT_RUNNING"


class AccessDenied(LocalClientError):
    """The kernel or the agent refused this user."""

    code = "E_DENIED"


class AgentRefused(LocalClientError):
    """The agent answered with an error (its code is kept)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error, code=failure.code)


def _group_of(path: Path) -> str:
    try:
        gid = path.stat().st_gid
    except OSError:
        return "greenwave"
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def connect(path: Path, *, timeout_s: float) -> socket.socket:
    """A connection to the agent's socket; the errors say what to do."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(os.fsencode(path))
    except FileNotFoundError:
        sock.close()
        raise AgentNotRunning(f"the agent is not running (no socket at {path})") from None
    except ConnectionRefusedError:
        sock.close()
        if not _is_socket(path):
            raise LocalClientError(
                f"{path} is not a socket (the agent's is /run/greenwave/agent.sock, or "
                "local.socket in its config)"
            ) from None
        raise AgentNotRunning(
            f"the agent is not running ({path} is left from an earlier run; nobody listens)"
        ) from None
    except PermissionError:
        sock.close()
        raise AccessDenied(
            f"permission denied on {path}: run as root, or as a member of group "
            f"{_group_of(path)} (log in again after being added)"
        ) from None
    except TimeoutError:
        sock.close()
        raise AgentNotRunning(
            f"the agent did not accept the connection within {timeout_s:g} s"
        ) from None
    except OSError as err:
        sock.close()
        if err.errno is None or err.errno in (
            errno.ENOTSOCK,
            errno.ENOTDIR,
            errno.ENAMETOOLONG,
            errno.EINVAL,
        ):
            raise LocalClientError(
                f"{path}: not a usable socket path ({err.strerror or err})"
            ) from None
        raise AgentNotRunning(f"cannot reach the agent at {path}: {err.strerror or err}") from None
    return sock


def _send(sock: socket.socket, line: bytes) -> None:
    # An agent that refuses at once (E_DENIED, E_BUSY) may close before reading:
    # its answer is still there to read.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(line)


def _replies(sock: socket.socket, timeout_s: float) -> Iterator[Any]:
    framer = LineFramer(MAX_RESPONSE_BYTES)
    while True:
        try:
            data = sock.recv(_READ_CHUNK)
        except TimeoutError:
            raise AgentNotRunning(f"the agent did not answer within {timeout_s:g} s") from None
        except ConnectionResetError:
            data = b""
        lines = framer.feed(data) if data else []
        if not data:
            last = framer.end()
            lines = [last] if last is not None else []
        for line in lines:
            reply = parse_reply(line)
            if isinstance(reply, Failure):
                if reply.code == "E_DENIED":
                    raise AccessDenied(f"refused by the agent: {reply.error}")
                raise AgentRefused(reply)
            yield reply.result
        if not data:
            return


def request(
    path: Path,
    verb: str,
    args: dict[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """Ask the agent once; its result (JSON data)."""
    line = request_line(verb, args, sudo_user=_sudo_user())
    with connect(path, timeout_s=timeout_s) as sock:
        _send(sock, line)
        for result in _replies(sock, timeout_s):
            return result
    raise AgentNotRunning(f"the agent closed the connection without answering ({path})")


def stream(
    path: Path,
    verb: str,
    args: dict[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Iterator[Any]:
    """Ask once, then every result the agent streams until it closes."""
    line = request_line(verb, args, sudo_user=_sudo_user())
    with connect(path, timeout_s=timeout_s) as sock:
        _send(sock, line)
        received = False
        for result in _replies(sock, timeout_s):
            received = True
            yield result
        if not received:
            raise AgentNotRunning(f"the agent closed the connection without answering ({path})")
        raise AgentNotRunning("the agent closed the stream (it is stopping?)")


def _sudo_user() -> str | None:
    """Who ran sudo, when root runs this through sudo (the agent believes only root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SUDO_USER")
    try:
        request_line("status", sudo_user=name)
    except LocalProtocolError:
        return None  # not a user name the agent accepts: leave it out
    return name
