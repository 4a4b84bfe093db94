"""The control socket in the agent: who may talk, one request per connection, no logic of its own.

::

    LocalServer.serve(supervisor)            the "local-socket" task of Supervisor.run
    ├── bind    .agent.sock.new → chown :greenwave, chmod 0660 → rename to agent.sock
    └── TaskGroup
        └── one task per connection
            ├── SO_PEERCRED → root, the agent's user or a member of the group, else E_DENIED
            ├── read one request line (≤ 64 KiB, ≤ 10 s)  → protocol.parse_request
            └── status | plan.show | override | release | diag → one reply line
                watch → a status line per controller update (≤ rate_hz) until the client goes

**Who may talk.** The socket file is mode ``0660`` and group ``greenwave``
([local] in the config), so the kernel lets in only root, the agent's user
and the group's members. The server checks again with the peer's
credentials (``SO_PEERCRED``, taken by the kernel at ``connect``; the
supplementary groups from ``/proc/<pid>/status``), so a socket made wider by
mistake still refuses strangers: ``E_DENIED``, logged and written to the
audit log. When the group does not exist the socket is ``0600`` (root and
the agent's user only), never wider.

**What it does.** Nothing but translate: every verb is one call of the
supervisor's API (:meth:`Supervisor.state_body`,
:meth:`Supervisor.start_override`, :meth:`Supervisor.end_override`, the
stored plan, :meth:`Supervisor.diagnostics`). A bad request, a client that
vanishes, a flood of clients or a bug in a verb costs that one connection
an error line; the server, and the agent, carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import socket
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.config import LocalConfig
from agent.errors import ControllerError, GreenwaveError
from agent.local.protocol import (
    FORMAT,
    MAX_REQUEST_BYTES,
    Code,
    DiagRequest,
    LineFramer,
    LineTooLong,
    LocalProtocolError,
    OverrideRequest,
    PlanShowRequest,
    ReleaseRequest,
    Request,
    StatusRequest,
    WatchRequest,
    encode_error,
    encode_ok,
    one_line,
    parse_request,
)
from agent.logs import get_logger
from agent.supervisor.authority import OverrideRefused

if TYPE_CHECKING:
    from agent.controller.interface import ControllerStatus
    from agent.supervisor.runtime import Supervisor

log = get_logger("local")

#: Technicians connected at once; beyond, a connection gets ``E_BUSY``.
MAX_CLIENTS = 16
#: How long a client has to send its request line (s).
REQUEST_TIMEOUT_S = 10.0
#: How long a watcher may leave its stream unread before it is dropped (s).
SEND_TIMEOUT_S = 5.0
#: A watch line at least this often, even with no controller update (s).
WATCH_IDLE_S = 1.0
#: Between attempts when the socket cannot be created (s).
RETRY_S = 30.0
#: After a failed accept (no file descriptors left, …) (s).
ACCEPT_RETRY_S = 0.5
#: At most one audit entry per refused user in this window; the rest are counted (s).
DENIAL_AUDIT_INTERVAL_S = 10.0
#: After the answer, what a client still sends is drained this long and this much (s, bytes).
LINGER_S = 1.0
LINGER_MAX_BYTES = 1024 * 1024
_READ_CHUNK = 16 * 1024
_PEERCRED = struct.Struct("3i")


class LocalSocketError(GreenwaveError):
    """The control socket cannot be created."""

    code = "E_LOCAL"


@dataclass(frozen=True, kw_only=True, slots=True)
class Peer:
    """Who is on the other end, as the kernel says."""

    pid: int
    uid: int
    gid: int
    groups: frozenset[int]

    @property
    def user(self) -> str:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return f"uid{self.uid}"


def peer_of(conn: socket.socket) -> Peer:
    """The peer's pid, uid, gid (``SO_PEERCRED``) and supplementary groups (``/proc``)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return Peer(pid=pid, uid=uid, gid=gid, groups=_groups_of(pid, uid))


def _groups_of(pid: int, uid: int) -> frozenset[int]:
    """The supplementary groups of ``pid``, if it is still the process ``uid`` connected from.

    The uid check guards against the pid being reused after the peer exited:
    then the peer gets no supplementary groups (and is judged on uid and gid).
    """
    if pid <= 0:
        return frozenset()
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    uids = fields.get("Uid", "").split()
    if str(uid) not in uids[:2]:
        return frozenset()
    return frozenset(int(g) for g in fields.get("Groups", "").split() if g.isdigit())


@dataclass(frozen=True, kw_only=True, slots=True)
class Access:
    """How the socket file is made, and who is let in."""

    #: The configured group's id, or None when it does not exist here.
    gid: int | None
    mode: int
    #: The agent's own uid (always let in, as root is).
    owner: int

    def allows(self, peer: Peer) -> bool:
        if peer.uid in (0, self.owner):
            return True
        return self.gid is not None and (peer.gid == self.gid or self.gid in peer.groups)


def resolve_access(settings: LocalConfig, *, owner: int | None = None) -> Access:
    """The group's id and the mode; ``0600`` when the group does not exist."""
    uid = os.geteuid() if owner is None else owner
    try:
        gid = grp.getgrnam(settings.group).gr_gid
    except KeyError:
        log.warning(
            "local_socket_group_missing",
            group=settings.group,
            socket=str(settings.socket),
            mode="0600",
            hint=f"create it (groupadd --system {settings.group}) and add the technicians",
        )
        return Access(gid=None, mode=0o600, owner=uid)
    return Access(gid=gid, mode=settings.mode, owner=uid)


def who_is(peer: Peer, sudo_user: str | None) -> str:
    """The name that goes into the audit log and the override: ``jsmith`` or ``jsmith (sudo)``."""
    if peer.uid == 0 and sudo_user:
        return f"{sudo_user} (sudo)"
    return peer.user


# -- what the verbs answer ------------------------------------------------------------------


def live_status(status: ControllerStatus | None, *, now_mono: float) -> dict[str, Any] | None:
    """The controller's newest status, phase by phase (``live`` in the status document)."""
    if status is None:
        return None
    return {
        "age_s": round(max(0.0, now_mono - status.received_at), 1),
        "pattern": status.pattern,
        "commanded": status.commanded,
        "cycle_time_s": status.cycle_time_s,
        "free_status": status.free_status,
        "control": str(status.control),
        "flash": str(status.flash),
        "controller_time": status.controller_time,
        "phases": [
            {"phase": p.phase, "light": str(p.light), "ped": str(p.ped)} for p in status.phases
        ],
    }


def status_document(agent: Supervisor) -> dict[str, Any]:
    """What ``greenwave status`` shows (docs/technician.md, ``status --json``)."""
    now_mono = time.monotonic()
    return {
        "format": FORMAT,
        "ts": round(agent.wall(), 3),
        "agent": {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(now_mono - agent.started_mono, 1),
        },
        "state": agent.state_body(),
        "live": live_status(agent.poller.latest, now_mono=now_mono),
    }


def plan_document(agent: Supervisor) -> dict[str, Any]:
    """The stored plan (``plan show``), or ``plan: null`` when there is none."""
    stored = agent.parts.store.plan
    if stored is None:
        return {"format": FORMAT, "plan": None}
    return {
        "format": FORMAT,
        "plan": {
            "version": stored.plan.version,
            "jti": stored.jti,
            "stored_at": stored.stored_at,
            "applied": stored.applied,
            "document": stored.plan.model_dump(mode="json", exclude_none=True),
        },
    }


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (diagnostics may hold paths or enums)."""
    return json.loads(json.dumps(value, default=str))


# -- the server ------------------------------------------------------------------------------


class LocalServer:
    """The control socket; :meth:`serve` is the supervisor's ``local-socket`` task."""

    def __init__(
        self,
        settings: LocalConfig,
        *,
        mono: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.path = settings.socket
        self.max_clients = max_clients
        self.request_timeout_s = request_timeout_s
        self._mono = mono
        self._clients = 0
        self._identity: tuple[int, int] | None = None
        self._denials: dict[int, tuple[float, int]] = {}
        self.access: Access | None = None
        #: Set once the socket accepts connections (tests wait on it).
        self.listening = asyncio.Event()

    # -- the socket file ----------------------------------------------------------------------

    def bind(self) -> socket.socket:
        """Create the socket file atomically, with its group and mode; a listening socket.

        The socket is bound under a temporary name, given its group and mode,
        and renamed over the final path: a client never sees it half made, and
        a stale socket left by a crash is replaced. Anything else at the path
        (a file, a directory) is left alone: :class:`LocalSocketError`.
        """
        path = self.path
        access = self.access = resolve_access(self.settings)
        try:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        except OSError as err:
            raise LocalSocketError(f"{path}: {err.strerror or err}") from err
        if existing is not None and not stat.S_ISSOCK(existing.st_mode):
            raise LocalSocketError(f"{path} exists and is not a socket: not replacing it")
        temporary = path.with_name(f".{path.name}.new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(os.fsencode(temporary))
            mode = access.mode
            if access.gid is not None:
                try:
                    os.chown(temporary, -1, access.gid)
                except PermissionError:
                    log.warning(
                        "local_socket_group_refused",
                        group=self.settings.group,
                        socket=str(path),
                        mode="0600",
                        hint="the agent's user must be root or a member of the group",
                    )
                    mode = 0o600
                    access = self.access = Access(gid=None, mode=mode, owner=access.owner)
            os.chmod(temporary, mode)
            sock.listen(self.max_clients)
            sock.setblocking(False)
            os.rename(temporary, path)
            made = os.lstat(path)
        except OSError as err:
            sock.close()
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise LocalSocketError(f"{path}: {err.strerror or err}") from err
        self._identity = (made.st_dev, made.st_ino)
        log.info(
            "local_socket_listening",
            socket=str(path),
            group=self.settings.group if access.gid is not None else None,
            mode=f"{access.mode:04o}",
            replaced_stale=existing is not None,
        )
        return sock

    def remove(self) -> None:
        """Remove the socket file, if it is still the one this server made."""
        identity, self._identity = self._identity, None
        if identity is None:
            return
        with contextlib.suppress(OSError):
            current = os.lstat(self.path)
            if (current.st_dev, current.st_ino) == identity:
                self.path.unlink()

    # -- serving ------------------------------------------------------------------------------

    async def serve(self, agent: Supervisor) -> None:
        """Serve until cancelled; the socket is removed on the way out.

        A socket that cannot be made is logged and tried again every
        :data:`RETRY_S` seconds: the technician's socket never stops the
        agent from running the intersection.
        """
        while True:
            try:
                listener = self.bind()
                break
            except LocalSocketError as err:
                log.error("local_socket_failed", socket=str(self.path), error=str(err))
                await asyncio.sleep(RETRY_S)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                self.listening.set()
                while True:
                    try:
                        conn, _ = await loop.sock_accept(listener)
                    except OSError as err:  # out of file descriptors, …: never fatal here
                        log.error("local_socket_accept_failed", error=str(err))
                        await asyncio.sleep(ACCEPT_RETRY_S)
                        continue
                    conn.setblocking(False)
                    if self._clients >= self.max_clients:
                        self._refuse_busy(conn)
                        continue
                    self._clients += 1
                    group.create_task(self._connection(agent, conn), name="local-connection")
        finally:
            self.listening.clear()
            listener.close()
            self.remove()

    def _refuse_busy(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.send(encode_error(Code.E_BUSY, "too many connections to the agent; try again"))

    async def _connection(self, agent: Supervisor, conn: socket.socket) -> None:
        """One client, start to end; never raises (the group must not fall)."""
        try:
            with conn:
                await self._converse(agent, conn)
                await self._linger(conn)
        except (OSError, TimeoutError):
            pass  # the client went away, or stopped reading: its loss only
        except Exception as err:  # one connection's bug must not stop the socket
            log.exception("local_connection_failed", error=f"{type(err).__name__}: {err}")
        finally:
            self._clients -= 1

    async def _converse(self, agent: Supervisor, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        peer = peer_of(conn)
        access = self.access
        assert access is not None
        if not access.allows(peer):
            await self._deny(agent, conn, peer)
            return
        try:
            line = await self._read_request(conn)
        except TimeoutError:
            await loop.sock_sendall(
                conn,
                encode_error(Code.E_TIMEOUT, f"no request within {self.request_timeout_s:g} s"),
            )
            return
        except LineTooLong:
            await loop.sock_sendall(
                conn,
                encode_error(Code.E_TOO_LARGE, f"a request is at most {MAX_REQUEST_BYTES} bytes"),
            )
            return
        if line is None:
            return  # connected and left without a word
        try:
            request = parse_request(line)
        except LocalProtocolError as err:
            await loop.sock_sendall(conn, encode_error(err.code, str(err)))
            return
        who = who_is(peer, request.sudo_user)
        if isinstance(request, WatchRequest):
            await self._watch(agent, conn, request.args.rate_hz)
            return
        await loop.sock_sendall(conn, await self._answer(agent, request, who))

    async def _linger(self, conn: socket.socket) -> None:
        """Say we are done, then drop what the client still sends, briefly, before closing.

        Closing a unix socket with unread bytes makes the client's next read
        fail (ECONNRESET), which could swallow the answer it was about to
        read: so the rest of an oversized or unread request is drained first,
        for at most :data:`LINGER_S` and :data:`LINGER_MAX_BYTES`.
        """
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        drained = 0
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(LINGER_S):
                while drained < LINGER_MAX_BYTES:
                    data = await loop.sock_recv(conn, _READ_CHUNK)
                    if not data:
                        return
                    drained += len(data)

    async def _read_request(self, conn: socket.socket) -> bytes | None:
        """The first request line; None when the client closed without sending one."""
        loop = asyncio.get_running_loop()
        framer = LineFramer(MAX_REQUEST_BYTES)
        async with asyncio.timeout(self.request_timeout_s):
            while True:
                data = await loop.sock_recv(conn, _READ_CHUNK)
                if not data:
                    return framer.end()
                lines = framer.feed(data)
                if lines:
                    return lines[0]

    async def _answer(self, agent: Supervisor, request: Request, who: str) -> bytes:
        """The one reply line to a request."""
        try:
            if isinstance(request, StatusRequest):
                return encode_ok(status_document(agent))
            if isinstance(request, PlanShowRequest):
                return encode_ok(plan_document(agent))
            if isinstance(request, DiagRequest):
                return encode_ok(
                    _plain(
                        {
                            "format": FORMAT,
                            "status": status_document(agent),
                            "diagnostics": agent.diagnostics(),
                        }
                    )
                )
            if isinstance(request, OverrideRequest):
                args = request.args
                log.info("technician_override", who=who, pattern=args.pattern, minutes=args.minutes)
                override = await agent.start_override(args.pattern, minutes=args.minutes, who=who)
                state = agent.state_body()
                return encode_ok(
                    {
                        "override": override.as_state(),
                        "mode": state["mode"],
                        "reason": state["reason"],
                    }
                )
            if isinstance(request, ReleaseRequest):
                released = agent.end_override(who)
                log.info("technician_release", who=who, released=released)
                state = agent.state_body()
                return encode_ok(
                    {"released": released, "mode": state["mode"], "reason": state["reason"]}
                )
        except OverrideRefused as err:
            return encode_error(Code.E_OVERRIDE, str(err))
        except ControllerError as err:
            return encode_error(Code.E_CONTROLLER, f"the controller did not confirm: {err}")
        except GreenwaveError as err:
            log.warning("local_request_refused", verb=request.verb, code=err.code, error=str(err))
            return encode_error(err.code, str(err))
        except Exception as err:  # a bug answers E_INTERNAL; the socket carries on
            log.exception("local_request_failed", verb=request.verb)
            return encode_error(
                Code.E_INTERNAL, f"internal error in the agent: {type(err).__name__}"
            )
        raise AssertionError(f"no handler for {request.verb}")  # pragma: no cover

    async def _watch(self, agent: Supervisor, conn: socket.socket, rate_hz: float) -> None:
        """A status line per controller update, at most ``rate_hz``, until the client goes."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate_hz
        last: ControllerStatus | None = None

        def newer(status: ControllerStatus) -> bool:
            return status is not last

        while True:
            started = self._mono()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_IDLE_S):
                    last = await agent.poller.wait_for(newer)
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await loop.sock_sendall(conn, encode_ok(status_document(agent)))
            await asyncio.sleep(max(0.0, interval - (self._mono() - started)))

    async def _deny(self, agent: Supervisor, conn: socket.socket, peer: Peer) -> None:
        """Refuse a stranger: one error line, a log record, an audit entry (rate-limited)."""
        group = self.settings.group
        log.warning("local_socket_denied", uid=peer.uid, gid=peer.gid, pid=peer.pid, user=peer.user)
        now = self._mono()
        last, count = self._denials.get(peer.uid, (float("-inf"), 0))
        audit = agent.parts.audit
        if now - last >= DENIAL_AUDIT_INTERVAL_S:
            self._denials[peer.uid] = (now, 0)
            if audit is not None:
                try:
                    audit.append(
                        "technician",
                        durable=True,
                        action="denied",
                        uid=peer.uid,
                        gid=peer.gid,
                        pid=peer.pid,
                        user=peer.user,
                        **({"repeated": count} if count else {}),
                    )
                except (GreenwaveError, ValueError) as err:
                    log.error("local_socket_denial_not_audited", error=str(err))
        else:
            self._denials[peer.uid] = (last, count + 1)
        message = one_line(
            f"user {peer.user} (uid {peer.uid}) may not use the agent's socket: "
            f"run as root or as a member of group {group}"
        )
        await asyncio.get_running_loop().sock_sendall(conn, encode_error(Code.E_DENIED, message))
