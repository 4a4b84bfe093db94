"""Central drives a real agent process over a real broker: SPEC §4 end to end (issue 5).

Each test runs mosquitto, a simulator and ``greenwave run`` as separate
processes; central is :class:`agent.central.client.CentralClient`, or raw
tokens made with another JOSE library (PyJWT) to prove the contract is the
standard one and not this codebase's dialect.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from agent.central.client import CentralClient
from agent.central.commands import Ack, AckStatus
from agent.central.signing import SigningKey, new_jti
from tests.broker import Broker
from tests.e2e.harness import (
    ISSUER,
    REPO,
    Cabinet,
    Keys,
    central,
    example_plan,
    new_cabinet,
    next_json,
    wait_online,
)

DEVICE = "cab-e2e"


def pyjwt_token(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """A command signed with PyJWT (not the agent's JOSE library)."""
    headers = {"kid": key.kid, "typ": "greenwave-cmd+jws", **header}
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers=headers)


def claims(cmd: str, args: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": DEVICE,
        "jti": new_jti(),
        "iat": now,
        "exp": now + 60,
        "cmd": cmd,
        "args": args,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def send_raw(client: CentralClient, cabinet: Cabinet, token: str | bytes) -> Ack:
    """Publish ``token`` on the device's command topic; the first ack that follows."""
    async with client.acks([cabinet.device]) as acks:
        await client.send(cabinet.topics.cmd, token)
        async with asyncio.timeout(5):
            return await acks.next()


async def acks_for(client: CentralClient, cabinet: Cabinet, token: str, jti: str) -> list[Ack]:
    """Publish ``token``; every ack for ``jti`` up to applied, rejected or failed."""
    seen: list[Ack] = []
    async with client.acks([cabinet.device]) as acks:
        await client.send(cabinet.topics.cmd, token)
        async with asyncio.timeout(30):
            while not seen or seen[-1].status is AckStatus.ACCEPTED:
                ack = await acks.next()
                if ack.jti == jti:
                    seen.append(ack)
    return seen


@pytest.fixture
async def cabinet(tmp_path: Path, broker: Broker, keys: Keys) -> Any:
    cab = new_cabinet(tmp_path / DEVICE, DEVICE, broker, keys)
    try:
        async with central(broker) as client:
            cab.start()
            async with asyncio.timeout(20):
                await wait_online(client, cab)
        yield cab
    finally:
        cab.stop()
        cab.sim.stop()


async def test_pyjwt_signed_commands_are_applied_to_the_simulator(
    cabinet: Cabinet, broker: Broker, keys: Keys
) -> None:
    async with central(broker) as client:
        load = claims("plan.load", {"plan": example_plan(2)})
        acks = await acks_for(client, cabinet, pyjwt_token(keys.command, load), load["jti"])
        assert [(str(a.status), str(a.code)) for a in acks] == [
            ("accepted", "OK"),
            ("applied", "OK"),
        ], acks
        run = claims("control.pattern", {"pattern": 2})
        acks = await acks_for(client, cabinet, pyjwt_token(keys.command, run), run["jti"])
        assert [(str(a.status), str(a.code)) for a in acks] == [
            ("accepted", "OK"),
            ("applied", "OK"),
        ], acks
        # The simulator runs pattern 2 from a cycle boundary: state says so.
        async with client.subscribe(cabinet.topics.state) as states:
            async with asyncio.timeout(60):
                while True:
                    state = await next_json(states)
                    signal = state.get("signal") or {}
                    if signal.get("pattern") == 2:
                        break
        assert state["mode"] == "central"
        assert state["plan"] == {"version": 2, "jti": load["jti"], "applied": True}
    controller = cabinet.controller()
    await controller.open()
    try:
        status = await controller.read_status()
    finally:
        await controller.close()
    assert status.commanded == 2


async def test_heartbeats_and_diagnostics(cabinet: Cabinet, broker: Broker, keys: Keys) -> None:
    signer = keys.signer()
    async with central(broker) as client:
        beat = signer.sign("heartbeat", {}, aud=DEVICE)
        outcome = await client.command(beat, device=DEVICE, want=AckStatus.APPLIED, timeout_s=15)
        assert outcome.ok, outcome
        await client.heartbeat(signer.heartbeat())
        diag = signer.sign("diag.request", {}, aud=DEVICE)
        outcome = await client.command(diag, device=DEVICE, want=AckStatus.APPLIED, timeout_s=15)
        assert outcome.ok
        summary = outcome.final[DEVICE].diag
        assert summary is not None
        assert summary["commands"]["heartbeats"] >= 1
        assert summary["polls"] > 0


async def test_a_group_command_reaches_the_device(
    cabinet: Cabinet, broker: Broker, keys: Keys
) -> None:
    signer = keys.signer()
    async with central(broker) as client:
        load = signer.sign("plan.load", {"plan": example_plan(3)}, aud=[DEVICE, "other-dev"])
        async with client.acks([DEVICE]) as acks:
            await client.publish(load, group="corridor-a")
            outcome = await acks.wait_for(load.jti, want=AckStatus.APPLIED, timeout_s=30)
        assert outcome.ok, outcome
        json.dumps(outcome.final[DEVICE].model_dump(mode="json"))


def b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: bytes, signature: bytes = b"\0" * 64) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(signature)}"


def bad_commands(keys: Keys) -> list[tuple[str, str | bytes, str]]:
    """(case, token, the code it must be rejected with)."""
    cmd, root = keys.command, keys.root
    stranger = SigningKey.generate("cmd-1")  # the right kid, the wrong key
    unknown = SigningKey.generate("cmd-9")
    pattern = {"pattern": 2}
    good = pyjwt_token(cmd, claims("control.pattern", pattern))
    head, body, sig = good.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    now = int(time.time())
    unsafe = example_plan(50)
    unsafe["phases"][1]["yellow"] = 2.5
    hs256 = jwt.encode(
        claims("control.pattern", pattern),
        key="x" * 32,
        algorithm="HS256",
        headers={"kid": cmd.kid, "typ": "greenwave-cmd+jws"},
    )
    header = {"alg": "Ed25519", "kid": cmd.kid, "typ": "greenwave-cmd+jws"}
    none_header = {**header, "alg": "none"}
    run_claims = json.dumps(claims("control.pattern", pattern)).encode()

    def run(key: SigningKey = cmd, **changes: Any) -> str:
        return pyjwt_token(key, claims("control.pattern", pattern, **changes))

    def load(plan: dict[str, Any]) -> str:
        return pyjwt_token(cmd, claims("plan.load", {"plan": plan}))

    rotate = pyjwt_token(cmd, claims("keys.update", {"version": 5, "keys": []}))
    return [
        ("forged signature", f"{head}.{body}.{flipped}", "E_SIGNATURE"),
        ("another key under a trusted kid", run(stranger), "E_SIGNATURE"),
        ("unknown kid", run(unknown), "E_UNKNOWN_KEY"),
        ("command signed by the root key", run(root), "E_ROLE"),
        ("keys.update signed by a command key", rotate, "E_ROLE"),
        ("expired", run(iat=now - 200, exp=now - 100), "E_EXPIRED"),
        ("not yet valid", run(nbf=now + 120), "E_NOT_YET_VALID"),
        ("too long-lived", run(exp=now + 3600), "E_EXPIRED"),
        ("wrong audience", run(aud="someone-else"), "E_AUDIENCE"),
        ("broadcast audience on a control command", run(aud="*"), "E_AUDIENCE"),
        ("alg none", hand_made(none_header, run_claims, b""), "E_SIGNATURE"),
        ("HS256 with a shared secret", hs256, "E_SIGNATURE"),
        ("oversized", run(pad="x" * 400_000), "E_SCHEMA"),
        ("truncated", good[: len(good) // 2], "E_SCHEMA"),
        ("garbage", b"\x00\xff garbage \x13", "E_SCHEMA"),
        ("claims that are not JSON", hand_made(header, b"not json"), "E_SIGNATURE"),
        ("unknown command", pyjwt_token(cmd, claims("control.teleport", {})), "E_SCHEMA"),
        (
            "schema violation",
            pyjwt_token(cmd, claims("control.pattern", {"pattern": "2"})),
            "E_SCHEMA",
        ),
        ("unsafe plan", load(unsafe), "E_UNSAFE"),
        ("stale plan version", load(example_plan(1)), "E_STALE_VERSION"),
    ]


async def _configuration(cabinet: Cabinet) -> tuple[Any, ...]:
    controller = cabinet.controller()
    await controller.open()
    try:
        phases = await controller.read_phases()
        status = await controller.read_status()
    finally:
        await controller.close()
    return phases, status.commanded


async def test_every_bad_command_is_rejected_with_its_code_and_changes_nothing(
    cabinet: Cabinet, broker: Broker, keys: Keys
) -> None:
    async with central(broker) as client:
        load = claims("plan.load", {"plan": example_plan(10)})
        await acks_for(client, cabinet, pyjwt_token(keys.command, load), load["jti"])
        # A valid command, sent twice: the second is a replay.
        run = claims("control.pattern", {"pattern": 3})
        token = pyjwt_token(keys.command, run)
        assert (await acks_for(client, cabinet, token, run["jti"]))[-1].status is AckStatus.APPLIED
        before = await _configuration(cabinet)
        cases = [*bad_commands(keys), ("replayed jti", token, "E_REPLAY")]
        wrong = []
        for case, bad, code in cases:
            try:
                ack = await send_raw(client, cabinet, bad)
            except TimeoutError:
                wrong.append(f"{case}: no ack")
                continue
            if (ack.status, ack.code) != (AckStatus.REJECTED, code):
                wrong.append(f"{case}: {ack.status} {ack.code} {ack.detail}")
        assert not wrong, "\n".join(wrong)
        assert await _configuration(cabinet) == before
        # The replay is still refused after the agent restarts.
        session = await wait_online(client, cabinet)
        cabinet.stop()
        cabinet.start()
        async with asyncio.timeout(20):
            await wait_online(client, cabinet, after=session)
        ack = await send_raw(client, cabinet, token)
        assert (ack.status, ack.code) == (AckStatus.REJECTED, "E_REPLAY")
        phases, commanded = await _configuration(cabinet)
        assert phases == before[0]
        # A restarted agent starts in local mode and never resumes a stale command.
        assert commanded == "standby"


async def test_key_rotation_holds_across_a_restart(
    cabinet: Cabinet, broker: Broker, keys: Keys
) -> None:
    new = SigningKey.generate("cmd-2")
    entry = {
        "kid": new.kid,
        "iss": ISSUER,
        "role": "command",
        "alg": "Ed25519",
        "public_key": new.public_key_b64,
        "not_after": time.time() + 86_400,
    }
    old_signer, new_signer = keys.signer(), keys.signer(new)
    root_signer = keys.signer(keys.root)
    async with central(broker) as client:
        update = root_signer.sign("keys.update", {"version": 1, "keys": [entry]}, aud=DEVICE)
        outcome = await client.command(update, device=DEVICE, want=AckStatus.APPLIED, timeout_s=15)
        assert outcome.ok, outcome

        async def verdicts() -> tuple[str, str]:
            old = await send_raw(
                client, cabinet, old_signer.sign("diag.request", {}, aud=DEVICE).token
            )
            fresh = new_signer.sign("diag.request", {}, aud=DEVICE)
            taken = await client.command(fresh, device=DEVICE, want=AckStatus.APPLIED, timeout_s=15)
            return f"{old.status} {old.code}", "applied" if taken.ok else str(taken)

        assert await verdicts() == ("rejected E_UNKNOWN_KEY", "applied")
        session = await wait_online(client, cabinet)
        cabinet.stop()
        cabinet.start()
        async with asyncio.timeout(20):
            await wait_online(client, cabinet, after=session)
        assert await verdicts() == ("rejected E_UNKNOWN_KEY", "applied")
        # The same update again is stale; a command key cannot rotate keys.
        again = root_signer.sign("keys.update", {"version": 1, "keys": [entry]}, aud=DEVICE)
        ack = await send_raw(client, cabinet, again.token)
        assert (ack.status, ack.code) == (AckStatus.REJECTED, "E_STALE_VERSION")


async def test_the_audit_log_records_commands_and_verifies(
    cabinet: Cabinet, broker: Broker, keys: Keys
) -> None:
    signer = keys.signer()
    async with central(broker) as client:
        load = signer.sign("plan.load", {"plan": example_plan(4)}, aud=DEVICE)
        assert (await client.command(load, device=DEVICE, want=AckStatus.APPLIED, timeout_s=20)).ok
        forged = pyjwt_token(SigningKey.generate("cmd-1"), claims("diag.request", {}))
        await send_raw(client, cabinet, forged)
    cabinet.stop()  # a clean stop syncs the log
    cli = [sys.executable, "-m", "agent.cli.main", "audit"]
    shown = await asyncio.to_thread(
        subprocess.run,
        [*cli, "--json", "-n", "0", "--config", str(cabinet.config_path)],
        capture_output=True, text=True, timeout=30, check=False, cwd=REPO,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)["entries"]
    commands = [(e.get("cmd"), e.get("outcome"), e.get("code")) for e in entries]
    assert ("plan.load", "accepted", "OK") in commands
    assert ("plan.load", "applied", "OK") in commands
    assert any(e["kind"] == "command" and e.get("code") == "E_SIGNATURE" for e in entries)
    verified = await asyncio.to_thread(
        subprocess.run,
        [*cli, "verify", "--config", str(cabinet.config_path)],
        capture_output=True, text=True, timeout=30, check=False, cwd=REPO,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain intact" in verified.stdout


async def test_an_untrusted_clock_refuses_coordination_and_says_why(
    tmp_path: Path, broker: Broker, keys: Keys
) -> None:
    cab = new_cabinet(tmp_path / "unsynced", "cab-unsynced", broker, keys, clock_trust="never")
    signer = keys.signer()
    try:
        async with central(broker) as client:
            cab.start()
            async with asyncio.timeout(20):
                await wait_online(client, cab)
            load = signer.sign("plan.load", {"plan": example_plan(2)}, aud=cab.device)
            outcome = await client.command(
                load, device=cab.device, want=AckStatus.APPLIED, timeout_s=20
            )
            assert outcome.ok, "loading a plan needs no clock"
            for args in ({"pattern": 2}, {"pattern": "free", "activate_at": time.time() + 5}):
                command = signer.sign("control.pattern", args, aud=cab.device)
                outcome = await client.command(
                    command, device=cab.device, want=AckStatus.APPLIED, timeout_s=20
                )
                ack = outcome.final[cab.device]
                assert (ack.status, ack.code) == (AckStatus.REJECTED, "E_CLOCK"), ack
            free = signer.sign("control.pattern", {"pattern": "free"}, aud=cab.device)
            outcome = await client.command(
                free, device=cab.device, want=AckStatus.APPLIED, timeout_s=20
            )
            assert outcome.ok, "free needs no trusted clock"
            async with client.subscribe(cab.topics.state) as states:
                state = await next_json(states)
            assert state["clock"]["synced"] is False
            assert state["clock"]["detail"]
    finally:
        cab.stop()
        cab.sim.stop()
