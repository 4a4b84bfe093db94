"""The control socket in a real agent (built by agent.app, real simulator and broker).

What a careless or hostile local client can do to it: garbage, huge lines,
half-closed sockets, silence, a crowd. Each costs that client one error line;
the socket keeps answering, and the agent keeps running the intersection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.config import LocalConfig
from agent.local import client
from agent.local.protocol import MAX_REQUEST_BYTES
from agent.local.server import Access, LocalServer, LocalSocketError, Peer, who_is
from tests.local.conftest import TEST_GROUP, InProc


async def converse(path: Path, data: bytes, *, half_close: bool = False) -> list[dict[str, Any]]:
    """Send ``data`` raw; every reply line until the agent closes."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
        async with asyncio.timeout(15):
            raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return [json.loads(line) for line in raw.splitlines()]


async def status(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = await asyncio.to_thread(client.request, path, "status")
    return document


async def test_the_socket_has_the_group_and_mode_and_goes_away_with_the_agent(
    inproc: InProc,
) -> None:
    info = os.lstat(inproc.socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == os.getgid()  # TEST_GROUP
    assert not list(inproc.socket.parent.glob(".*"))  # no temporary left behind
    document = await status(inproc.socket)
    assert document["format"] == 1
    assert document["state"]["device"] == "cab-local"
    assert document["state"]["controller"]["link"] == "up"
    assert document["live"]["phases"], document["live"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"garbage\n", "E_REQUEST", id="not-json"),
        pytest.param(b"\xff\xfe\x00\n", "E_REQUEST", id="not-utf8"),
        pytest.param(b"[1, 2]\n", "E_REQUEST", id="not-an-object"),
        pytest.param(b'{"verb": "launch"}\n', "E_REQUEST", id="unknown-verb"),
        pytest.param(b'{"args": {}}\n', "E_REQUEST", id="no-verb"),
        pytest.param(b'{"verb": "status", "args": {"x": 1}}\n', "E_REQUEST", id="extra-arg"),
        pytest.param(b'{"verb": "status", "sneaky": 1}\n', "E_REQUEST", id="extra-field"),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": "2", "minutes": 1}}\n',
            "E_REQUEST",
            id="pattern-as-string",
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": true, "minutes": 1}}\n',
            "E_REQUEST",
            id="pattern-as-bool",
        ),
        pytest.param(
            b'{"verb": "override", "args": {"pattern": 2, "minutes": 1e999}}\n',
            "E_REQUEST",
            id="infinite-minutes",
        ),
        pytest.param(b"[" * 5000 + b"\n", "E_REQUEST", id="deep-nesting"),
        pytest.param(b"x" * (MAX_REQUEST_BYTES + 10), "E_TOO_LARGE", id="huge-no-newline"),
        pytest.param(b"{" + b" " * MAX_REQUEST_BYTES + b"}\n", "E_TOO_LARGE", id="huge-line"),
    ],
)
async def test_a_bad_request_gets_one_error_line_and_the_socket_carries_on(
    inproc: InProc, data: bytes, code: str
) -> None:
    replies = await converse(inproc.socket, data)
    assert len(replies) == 1, replies
    assert replies[0]["ok"] is False
    assert replies[0]["code"] == code
    assert "\n" not in replies[0]["error"]
    assert len(replies[0]["error"]) <= 300
    assert (await status(inproc.socket))["state"]["controller"]["link"] == "up"


async def test_half_closed_silent_and_vanishing_clients(inproc: InProc) -> None:
    # A request without its newline, then a half-close: heard and answered.
    replies = await converse(inproc.socket, b'{"verb": "status"}', half_close=True)
    assert replies[0]["ok"] is True
    # Connect and leave without a word; leave in the middle of a line.
    assert await converse(inproc.socket, b"", half_close=True) == []
    _, writer = await asyncio.open_unix_connection(inproc.socket)
    writer.write(b'{"verb": "sta')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # Silence: the agent gives up on the client after its request timeout.
    inproc.server.request_timeout_s = 0.3
    replies = await converse(inproc.socket, b"")
    assert [r["code"] for r in replies] == ["E_TIMEOUT"]
    inproc.server.request_timeout_s = 10.0
    assert (await status(inproc.socket))["format"] == 1


async def test_a_crowd_gets_busy_and_the_socket_serves_again_afterwards(inproc: InProc) -> None:
    # Twice as many idle connections as the socket serves at once.
    idle = [
        await asyncio.open_unix_connection(inproc.socket)
        for _ in range(2 * inproc.server.max_clients)
    ]
    busy = 0
    for reader, _ in idle[inproc.server.max_clients :]:
        async with asyncio.timeout(5):
            line = await reader.readline()
        assert json.loads(line)["code"] == "E_BUSY"
        busy += 1
    assert busy == inproc.server.max_clients
    for _, writer in idle:
        writer.close()
    # Then many at once, all answered.
    results = await asyncio.gather(*(status(inproc.socket) for _ in range(12)))
    assert all(r["format"] == 1 for r in results)


async def test_watch_streams_status_lines_at_most_at_the_rate(inproc: InProc) -> None:
    reader, writer = await asyncio.open_unix_connection(inproc.socket)
    writer.write(b'{"verb": "watch", "args": {"rate_hz": 5}}\n')
    loop = asyncio.get_running_loop()
    stamps, documents = [], []
    async with asyncio.timeout(10):
        for _ in range(6):
            documents.append(json.loads(await reader.readline()))
            stamps.append(loop.time())
    writer.close()
    await writer.wait_closed()
    assert all(d["ok"] and d["result"]["live"]["phases"] for d in documents)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.15, gaps  # 5 Hz: 0.2 s apart (scheduling slack allowed)
    # The watcher is gone; the socket still answers.
    assert (await status(inproc.socket))["format"] == 1


async def test_plan_show_diag_and_a_refused_override(inproc: InProc) -> None:
    plan = await asyncio.to_thread(client.request, inproc.socket, "plan.show")
    assert plan == {"format": 1, "plan": None}
    diag = await asyncio.to_thread(client.request, inproc.socket, "diag")
    assert diag["diagnostics"]["polls"] > 0
    assert diag["status"]["state"]["device"] == "cab-local"
    # No plan is loaded: a numbered pattern is refused, with the reason, and nothing changes.
    with pytest.raises(client.AgentRefused) as refused:
        await asyncio.to_thread(
            client.request, inproc.socket, "override", {"pattern": 2, "minutes": 1}
        )
    assert refused.value.code == "E_OVERRIDE"
    assert "not in the loaded plan" in str(refused.value)
    assert (await status(inproc.socket))["state"]["mode"] != "override"
    # Free needs no plan; release ends it.
    held = await asyncio.to_thread(
        client.request, inproc.socket, "override", {"pattern": "free", "minutes": 1}
    )
    assert held["mode"] == "override"
    assert held["override"]["pattern"] == "free"
    assert held["override"]["who"] == "root" or held["override"]["who"].startswith("uid")
    released = await asyncio.to_thread(client.request, inproc.socket, "release")
    assert released["released"] is True
    assert released["mode"] != "override"
    again = await asyncio.to_thread(client.request, inproc.socket, "release")
    assert again["released"] is False
    # Through sudo, root's request names the technician (for the audit log).
    line = b'{"verb": "override", "args": {"pattern": "free", "minutes": 1}, "sudo_user": "jsmith"}'
    replies = await converse(inproc.socket, line + b"\n")
    assert replies[0]["result"]["override"]["who"] == "jsmith (sudo)"
    assert (await asyncio.to_thread(client.request, inproc.socket, "release"))["released"]


def test_who_may_talk_and_who_they_are() -> None:
    def peer(uid: int, gid: int, *groups: int) -> Peer:
        return Peer(pid=1, uid=uid, gid=gid, groups=frozenset(groups))

    access = Access(gid=1234, mode=0o660, owner=999)
    assert access.allows(peer(0, 0))  # root
    assert access.allows(peer(999, 50))  # the agent's own user
    assert access.allows(peer(1000, 1234))  # primary group
    assert access.allows(peer(1000, 1000, 5, 1234))  # supplementary group
    assert not access.allows(peer(1000, 1000, 5))
    owner_only = Access(gid=None, mode=0o600, owner=999)  # the group does not exist
    assert not owner_only.allows(peer(1000, 1234, 1234))
    assert owner_only.allows(peer(0, 0))
    assert who_is(peer(0, 0), "jsmith") == "jsmith (sudo)"
    assert who_is(peer(0, 0), None) == "root"
    assert who_is(peer(65534, 65534), "jsmith") == "nobody"  # only root may name someone
    assert who_is(peer(4_000_000, 1), None) == "uid4000000"


# -- the socket file, without an agent ---------------------------------------------------------


def test_a_stale_socket_is_replaced_and_removed_at_stop(sockdir: Path) -> None:
    path = sockdir / "agent.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(os.fsencode(path))  # left behind by a crash: nobody listens
    server = LocalServer(LocalConfig(socket=path, group=TEST_GROUP))
    listener = server.bind()
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(os.fsencode(path))
    finally:
        listener.close()
        server.remove()
    assert not path.exists()


def test_a_file_in_the_way_is_not_replaced(sockdir: Path) -> None:
    path = sockdir / "agent.sock"
    path.write_text("not a socket")
    with pytest.raises(LocalSocketError, match="not a socket"):
        LocalServer(LocalConfig(socket=path, group=TEST_GROUP)).bind()
    assert path.read_text() == "not a socket"


def test_a_missing_group_gives_an_owner_only_socket(sockdir: Path) -> None:
    path = sockdir / "agent.sock"
    server = LocalServer(LocalConfig(socket=path, group="no-such-group-gw"))
    listener = server.bind()
    try:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert server.access is not None
        assert server.access.gid is None
    finally:
        listener.close()
        server.remove()


def test_a_newer_agents_socket_is_not_removed_by_an_old_one(sockdir: Path) -> None:
    path = sockdir / "agent.sock"
    old, new = (LocalServer(LocalConfig(socket=path, group=TEST_GROUP)) for _ in range(2))
    first = old.bind()
    second = new.bind()  # a new agent took the path over
    try:
        first.close()
        old.remove()
        assert path.exists()
    finally:
        second.close()
        new.remove()
    assert not path.exists()


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"socket": "relative/agent.sock"}, "absolute"),
        ({"socket": "/run/" + "x" * 120}, "longer than"),
        ({"mode": 0o666}, "nothing to others"),
        ({"mode": 0o641}, "nothing to others"),
        ({"mode": 0o764}, "nothing to others"),
        ({"mode": 0o777}, "less than or equal"),
        ({"mode": 0o460}, "greater than or equal"),
        ({"mode": 0o660 | 0o4000}, "less than or equal"),
        ({"group": "Bad Group"}, "pattern"),
    ],
)
def test_the_local_section_refuses_a_world_reachable_or_unusable_socket(
    settings: dict[str, Any], why: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=why):
        LocalConfig(**settings)
