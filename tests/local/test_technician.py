"""A technician at the cabinet: the ``greenwave`` verbs against a running agent (issue 7).

Every part is real and separate, as on a device: mosquitto, the simulator,
``greenwave run`` with its control socket, central (CentralClient over the
broker), and each verb as its own ``greenwave`` process — as root, as a
member of the socket's group, and as ``nobody``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.central.commands import AckStatus
from agent.config import load_config
from agent.local.render import WIDTH
from tests.broker import Mosquitto
from tests.e2e.harness import Cabinet, Keys, central, example_plan, new_cabinet, wait_online
from tests.local.conftest import TEST_GROUP, RunCli, local_config

DEVICE = "cab-tech"
NOBODY = 65534


@pytest.fixture
async def cabinet(
    tmp_path: Path, broker: Mosquitto, keys: Keys, sockdir: Path
) -> AsyncIterator[Cabinet]:
    cab = new_cabinet(
        tmp_path / DEVICE,
        DEVICE,
        broker,
        keys,
        local_config=local_config(sockdir / "agent.sock"),
    )
    try:
        async with central(broker) as client:
            cab.start()
            async with asyncio.timeout(20):
                await wait_online(client, cab)
        yield cab
    finally:
        cab.stop()
        cab.sim.stop()


def socket_of(cab: Cabinet) -> str:
    """The socket the cabinet's agent serves (from its config, as the CLI finds it)."""
    return str(load_config(cab.config_path).local.socket)


async def verb(greenwave: RunCli, cab: Cabinet, *args: str, **how: Any) -> Any:
    """Run ``greenwave ARGS --socket <the cabinet's>`` in a thread (the loop keeps going)."""
    return await asyncio.to_thread(greenwave, *args, "--socket", socket_of(cab), **how)


async def status_json(greenwave: RunCli, cab: Cabinet) -> dict[str, Any]:
    done = await verb(greenwave, cab, "status", "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


async def load_plan(cab: Cabinet, broker: Mosquitto, keys: Keys, version: int = 2) -> None:
    signer = keys.signer()
    async with central(broker) as client:
        load = signer.sign("plan.load", {"plan": example_plan(version)}, aud=DEVICE)
        outcome = await client.command(load, device=DEVICE, want=AckStatus.APPLIED, timeout_s=20)
    assert outcome.ok, outcome


async def central_pattern(broker: Mosquitto, keys: Keys, pattern: int) -> tuple[str, str]:
    """Central commands ``pattern``: the final ack's (status, code)."""
    signer = keys.signer()
    async with central(broker) as client:
        command = signer.sign("control.pattern", {"pattern": pattern}, aud=DEVICE)
        outcome = await client.command(command, device=DEVICE, want=AckStatus.APPLIED, timeout_s=20)
    ack = outcome.final[DEVICE]
    return str(ack.status), str(ack.code)


async def commanded(cab: Cabinet) -> Any:
    controller = cab.controller()
    await controller.open()
    try:
        return (await controller.read_status()).commanded
    finally:
        await controller.close()


async def technician_audit(greenwave: RunCli, cab: Cabinet) -> list[dict[str, Any]]:
    done = await asyncio.to_thread(
        greenwave, "audit", "--dir", str(cab.state_dir / "audit"), "--kind", "technician", "--json"
    )
    assert done.returncode == 0, done.stderr
    entries: list[dict[str, Any]] = json.loads(done.stdout)["entries"]
    return entries


def assert_fits(text: str) -> None:
    for line in text.splitlines():
        assert len(line) <= WIDTH, f"{len(line)} columns: {line!r}"


# -- acceptance 5 ------------------------------------------------------------------------------


async def test_an_override_takes_effect_refuses_central_and_ends_at_its_deadline(
    cabinet: Cabinet, broker: Mosquitto, keys: Keys, greenwave: RunCli
) -> None:
    await load_plan(cabinet, broker, keys)
    started = time.monotonic()
    done = await verb(greenwave, cabinet, "override", "--pattern", "2", "--minutes", "0.1")
    assert done.returncode == 0, done.stderr
    assert "override in force: pattern 2" in done.stdout
    assert "by root" in done.stdout

    # It took effect: the mode, the state, and the controller itself.
    state = (await status_json(greenwave, cabinet))["state"]
    assert state["mode"] == "override"
    assert state["override"]["pattern"] == 2
    assert state["override"]["who"] == "root"
    assert await commanded(cabinet) == 2
    shown = await verb(greenwave, cabinet, "status")
    assert shown.returncode == 0, shown.stderr
    assert "OVERRIDE" in shown.stdout
    assert "left" in shown.stdout
    assert_fits(shown.stdout)

    # Central is answered E_OVERRIDE meanwhile, and nothing changes.
    assert await central_pattern(broker, keys, 1) == ("rejected", "E_OVERRIDE")
    assert await commanded(cabinet) == 2

    # It ends by itself at its deadline (6 s): mode local, told on the state topic.
    async with central(broker) as client, client.subscribe(cabinet.topics.state) as states:
        async with asyncio.timeout(20):
            while True:
                body = (await states.get()).json()
                if body.get("mode") == "local":
                    break
    lasted = time.monotonic() - started
    assert 5.5 <= lasted <= 12, f"the 6 s override lasted {lasted:.1f} s"
    assert "the override's time ran out" in body["reason"]
    assert body["override"] is None

    # The audit log says who did what, and why it ended.
    actions = [(e["action"], e["who"]) for e in await technician_audit(greenwave, cabinet)]
    assert actions == [("override_started", "root"), ("override_ended", "root")]
    # Central drives again with its next command.
    assert await central_pattern(broker, keys, 1) == ("applied", "OK")


async def test_release_ends_an_override_early(
    cabinet: Cabinet, broker: Mosquitto, keys: Keys, greenwave: RunCli
) -> None:
    done = await verb(greenwave, cabinet, "override", "--free", "--minutes", "30")
    assert done.returncode == 0, done.stderr
    assert (await status_json(greenwave, cabinet))["state"]["mode"] == "override"
    released = await verb(greenwave, cabinet, "release")
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith("released: mode local")
    assert (await status_json(greenwave, cabinet))["state"]["mode"] == "local"
    again = await verb(greenwave, cabinet, "release", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["released"] is False
    # A pattern the plan does not have is refused by the agent: exit 1, one line.
    refused = await verb(greenwave, cabinet, "override", "--pattern", "9", "--minutes", "1")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "E_OVERRIDE" in refused.stderr
    assert "not in the loaded plan" in refused.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the client as another user")
async def test_a_user_outside_the_group_is_refused(cabinet: Cabinet, greenwave: RunCli) -> None:
    socket = Path(socket_of(cabinet))
    # The kernel refuses first: the socket is 0660, group TEST_GROUP.
    kernel = await verb(greenwave, cabinet, "status", user=NOBODY)
    assert kernel.returncode == 4, kernel.stderr
    assert kernel.stderr.count("\n") == 1
    assert f"permission denied on {socket}" in kernel.stderr
    assert f"member of group {TEST_GROUP}" in kernel.stderr
    assert "Traceback" not in kernel.stderr + kernel.stdout

    # A member of the group is let in (the agent reads the peer's groups).
    gid = os.lstat(socket).st_gid
    member = await verb(greenwave, cabinet, "status", "--json", user=NOBODY, extra_groups=[gid])
    assert member.returncode == 0, member.stderr
    assert json.loads(member.stdout)["state"]["device"] == DEVICE

    # Made world-writable by mistake, the socket still refuses strangers: the agent checks.
    os.chmod(socket, 0o666)
    agent = await verb(greenwave, cabinet, "override", "--flash", "--minutes", "5", user=NOBODY)
    assert agent.returncode == 4, agent.stderr
    assert agent.stderr.count("\n") == 1
    assert "refused by the agent: user nobody (uid 65534)" in agent.stderr
    assert "Traceback" not in agent.stderr + agent.stdout
    assert (await status_json(greenwave, cabinet))["state"]["mode"] != "override"
    denied = [e for e in await technician_audit(greenwave, cabinet) if e["action"] == "denied"]
    assert len(denied) == 1
    assert (denied[0]["uid"], denied[0]["user"]) == (NOBODY, "nobody")
    assert "Traceback" not in cabinet.log()


# -- the other verbs -------------------------------------------------------------------------


async def test_status_watch_and_plan_show(
    cabinet: Cabinet, broker: Mosquitto, keys: Keys, greenwave: RunCli
) -> None:
    shown = await verb(greenwave, cabinet, "status")
    assert shown.returncode == 0, shown.stderr
    assert_fits(shown.stdout)
    for label in ("mode", "controller", "central", "plan", "clock", "phases"):
        assert any(line.startswith(label) for line in shown.stdout.splitlines()), label
    assert "Φ1 " in shown.stdout

    no_plan = await verb(greenwave, cabinet, "plan", "show")
    assert no_plan.returncode == 0, no_plan.stderr
    assert no_plan.stdout.startswith("no plan stored")
    await load_plan(cabinet, broker, keys, version=7)
    plan = await verb(greenwave, cabinet, "plan", "show")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("plan version 7")
    assert "applied to the controller" in plan.stdout
    assert "pattern 1" in plan.stdout
    assert "day plan 1" in plan.stdout
    assert_fits(plan.stdout)
    as_json = await verb(greenwave, cabinet, "plan", "show", "--json")
    assert json.loads(as_json.stdout)["plan"]["document"]["version"] == 7

    watched = await verb(greenwave, cabinet, "watch", "--count", "3", "--rate", "10")
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert len(lines) == 3, lines
    assert all("Φ1 " in line and "local" in line for line in lines), lines
    streamed = await verb(greenwave, cabinet, "watch", "--json", "-n", "2")
    assert [json.loads(line)["format"] for line in streamed.stdout.splitlines()] == [1, 1]


async def test_diag_bundle_from_a_running_agent(
    cabinet: Cabinet, greenwave: RunCli, tmp_path: Path
) -> None:
    out = tmp_path / "support.tar.gz"
    done = await verb(
        greenwave, cabinet, "diag", "bundle", "--config", str(cabinet.config_path),
        "--out", str(out), "--log-lines", "20",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{out}: ")
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    with tarfile.open(out) as tar:
        names = {Path(m.name).name: m for m in tar.getmembers()}
        for member in ("README.txt", "config.json", "state.json", "diagnostics.json",
                       "versions.json", "audit-tail.jsonl", "keys.json"):  # fmt: skip
            assert member in names, sorted(names)

        def read(name: str) -> Any:
            handle = tar.extractfile(names[name])
            assert handle is not None
            return handle.read().decode()

        assert json.loads(read("state.json"))["state"]["device"] == DEVICE
        assert json.loads(read("diagnostics.json"))["polls"] > 0
        assert json.loads(read("versions.json"))["greenwave"]
        assert {k["kid"] for k in json.loads(read("keys.json"))["keys"]} == {"root-1", "cmd-1"}
        audit = [json.loads(line) for line in read("audit-tail.jsonl").splitlines()]
        assert any(entry["kind"] == "agent" for entry in audit)
        config = json.loads(read("config.json"))
        assert config["file"]["device"]["id"] == DEVICE
        assert config["effective"]["local"]["group"] == TEST_GROUP
