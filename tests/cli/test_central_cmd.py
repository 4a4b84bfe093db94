"""``greenwave central``: the reference central tool, through the real CLI and a real broker.

The device side is played by the real verification pipeline
(:class:`~agent.central.jws.CommandVerifier`) behind a small aiomqtt task
that answers acks as a device would; the broker is a real mosquitto.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from agent.central.client import (
    AckTracker,
    BrokerSettings,
    CentralClient,
    CentralError,
    CommandSigner,
    DroppedRange,
    EventRecord,
    EventsBatch,
    EventsSequence,
    load_signing_key,
    peek_claims,
)
from agent.central.commands import Ack, AckStatus, Code, Role
from agent.central.jws import CommandVerifier
from agent.central.signing import SigningKey
from agent.central.topics import HEARTBEAT, DeviceTopics, group_cmd
from agent.central.trust import TRUST_FILE, TrustedKey, TrustStore
from tests.broker import Mosquitto
from tests.cli.conftest import REPO, RunCli
from tests.pki import ThrowawayPki

DEVICE = "cabinet-17"
ISSUER = "tms.example-city"
KID = "tms-1"


@dataclass(frozen=True)
class Cli:
    code: int
    out: str
    err: str


async def run_cli(*args: str) -> Cli:
    """The real ``greenwave`` in a subprocess, awaited without blocking the loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Cli(proc.returncode, out.decode(), err.decode())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A command key as ``central keygen`` writes it."""
    path = tmp_path / f"{KID}.key"
    path.write_bytes(SigningKey.generate(KID).private_pem())
    path.chmod(0o600)
    return path


def device_state(tmp_path: Path, key_file: Path, name: str = DEVICE) -> CommandVerifier:
    """A device that trusts ``key_file``'s public half, as ``greenwave keys add`` leaves it."""
    state = tmp_path / f"state-{name}"
    state.mkdir()
    public = SigningKey.from_pem(key_file.read_bytes()).public_pem()
    TrustStore.open(state / TRUST_FILE, clock=time.time).add(
        TrustedKey.from_public_key(
            public, iss=ISSUER, role=Role.COMMAND, kid=KID, not_after=time.time() + 3600
        )
    )
    return CommandVerifier.open(state, device_id=name, clock=time.time)


def broker_args(broker: Mosquitto) -> list[str]:
    return ["--broker", f"{broker.host}:{broker.port}"]


def signing_args(key_file: Path) -> list[str]:
    return ["--key", str(key_file), "--kid", KID, "--iss", ISSUER]


@pytest.fixture
async def mqtt(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    """A plain MQTT client on the test broker (the test's own eyes and hands)."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        yield client


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(5):
        return await anext(client.messages)


# -- keygen → keys add → sign → the device's verifier -------------------------------------


def test_a_generated_key_provisioned_with_keys_add_signs_what_the_device_accepts(
    greenwave: RunCli, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(f'[device]\nid = "{DEVICE}"\n\n[state]\ndir = "{state}"\n')
    keys = tmp_path / "central-keys"

    made = greenwave("central", "keygen", "--kid", KID, "--out", str(keys), "--iss", ISSUER)
    assert made.returncode == 0, made.stderr
    private, public = keys / f"{KID}.key", keys / f"{KID}.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    public_b64 = SigningKey.from_pem(private.read_bytes()).public_key_b64
    assert public_b64 in made.stdout
    (provision,) = [line.strip() for line in made.stdout.splitlines() if "keys add" in line]
    assert provision == (
        f"greenwave keys add --kid {KID} --issuer {ISSUER} --role command --not-after +365 "
        f"{KID}.pub"
    )

    args = provision.split()[1:-1]  # as printed, with the .pub file "copied" to the device
    added = greenwave(*args, "--config", str(config), str(public))
    assert added.returncode == 0, added.stderr

    signed = greenwave(
        "central", "sign", "--key", str(private), "--kid", KID, "--iss", ISSUER,
        "--aud", DEVICE, "--cmd", "control.pattern", "--args", '{"pattern": 3}',
        "--activate-at", "+30", "--lifetime", "120",
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    token = signed.stdout.strip()
    assert token.count(".") == 2
    assert "\n" not in token

    trust = str(state / TRUST_FILE)
    dry_run = greenwave("central", "verify", "--trust", trust, token)
    assert dry_run.returncode == 0, dry_run.stderr
    assert dry_run.stdout.startswith(f"OK control.pattern from {ISSUER} (key {KID}) for {DEVICE}")
    elsewhere = greenwave("central", "verify", "--trust", trust, "--device", "main-4th", token)
    assert elsewhere.returncode == 1
    assert elsewhere.stdout.startswith("REJECTED E_AUDIENCE")

    verifier = CommandVerifier.open(state, device_id=DEVICE, clock=time.time)
    command = verifier.verify(token)
    assert command.cmd == "control.pattern"
    assert command.iss == ISSUER
    assert command.kid == KID
    assert command.exp - command.iat == 120
    assert command.claims.args["pattern"] == 3
    assert abs(command.claims.args["activate_at"] - (time.time() + 30)) < 10


def test_sign_refuses_what_the_device_would_reject_as_malformed(
    greenwave: RunCli, key_file: Path, tmp_path: Path
) -> None:
    typo = greenwave(
        "central", "sign", *signing_args(key_file), "--aud", DEVICE,
        "--cmd", "control.pattern", "--args", '{"patern": 3}',
    )  # fmt: skip
    assert typo.returncode == 2
    assert "args.patern: unknown field; did you mean 'pattern'?" in typo.stderr
    assert typo.stdout == ""
    public = tmp_path / "k.pub"
    public.write_bytes(SigningKey.from_pem(key_file.read_bytes()).public_pem())
    wrong_key = greenwave(
        "central", "sign", "--key", str(public), "--kid", KID, "--iss", ISSUER,
        "--aud", "*", "--cmd", "heartbeat",
    )  # fmt: skip
    assert wrong_key.returncode == 2
    assert "this is a public key; signing needs the private key" in wrong_key.stderr


def test_sign_takes_a_plan_file_as_plan_load(
    greenwave: RunCli, key_file: Path, tmp_path: Path
) -> None:
    plan = REPO / "examples" / "plans" / "intersection-8phase.json"
    signed = greenwave(
        "central", "sign", *signing_args(key_file), "--aud", DEVICE, "--plan", str(plan),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    command = device_state(tmp_path, key_file).verify(signed.stdout.strip())
    assert command.cmd == "plan.load"
    assert command.claims.args["plan"] == json.loads(plan.read_text())


# -- send -------------------------------------------------------------------------------------


async def test_send_without_waiting_delivers_the_signed_command(
    broker: Mosquitto, mqtt: aiomqtt.Client, key_file: Path, tmp_path: Path
) -> None:
    verifier = device_state(tmp_path, key_file)
    await mqtt.subscribe(DeviceTopics(DEVICE).cmd, qos=1)

    sent = await run_cli(
        "central", "send", *broker_args(broker), *signing_args(key_file), "--device", DEVICE,
        "--cmd", "control.release", "--wait", "none",
    )  # fmt: skip
    assert sent.code == 0, sent.err
    message = await next_message(mqtt)
    assert message.qos == 1
    assert isinstance(message.payload, bytes)
    command = verifier.verify(message.payload)
    assert command.cmd == "control.release"
    assert command.aud == (DEVICE,)
    assert sent.out.startswith(f"sent control.release to greenwave/v1/{DEVICE}/cmd (jti ")
    assert command.jti in sent.out


async def answer_like_a_device(
    client: aiomqtt.Client,
    verifiers: Mapping[str, CommandVerifier],
    answers: Mapping[str, Sequence[tuple[AckStatus, Code]]],
) -> None:
    """Verify each command as each device it names and publish that device's answers."""
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        audience = peek_claims(message.payload.decode())["aud"]
        for device, verifier in verifiers.items():
            if device not in audience:
                continue
            command = verifier.verify(message.payload)
            for status, code in answers[device]:
                ack = Ack(
                    device=device, jti=command.jti, cmd=command.cmd, status=status, code=code,
                    detail="" if code == Code.OK else "plan 7 breaks MIN_YELLOW", ts=time.time(),
                )  # fmt: skip
                await client.publish(DeviceTopics(device).ack, ack.to_bytes(), qos=1)


async def test_send_waits_until_applied(
    broker: Mosquitto, mqtt: aiomqtt.Client, key_file: Path, tmp_path: Path
) -> None:
    verifiers = {DEVICE: device_state(tmp_path, key_file)}
    answers = {DEVICE: [(AckStatus.ACCEPTED, Code.OK), (AckStatus.APPLIED, Code.OK)]}
    await mqtt.subscribe(DeviceTopics(DEVICE).cmd, qos=1)
    async with asyncio.TaskGroup() as tasks:
        device = tasks.create_task(answer_like_a_device(mqtt, verifiers, answers))
        sent = await run_cli(
            "central", "send", *broker_args(broker), *signing_args(key_file),
            "--device", DEVICE, "--cmd", "control.pattern", "--args", '{"pattern": 2}',
            "--wait", "applied", "--timeout", "10",
        )  # fmt: skip
        device.cancel()
    assert sent.code == 0, sent.err
    lines = sent.out.splitlines()
    assert lines[0].startswith("sent control.pattern")
    assert lines[1].split() == [DEVICE, "accepted", "OK"]
    assert lines[2].split() == [DEVICE, "applied", "OK"]
    assert lines[3] == "applied on 1 of 1 device(s)"


async def test_a_group_command_with_one_device_rejecting_exits_1(
    broker: Mosquitto, mqtt: aiomqtt.Client, key_file: Path, tmp_path: Path
) -> None:
    good, bad = "main-4th", "main-5th"
    verifiers = {name: device_state(tmp_path, key_file, name) for name in (good, bad)}
    answers = {good: [(AckStatus.ACCEPTED, Code.OK)], bad: [(AckStatus.REJECTED, Code.E_UNSAFE)]}
    await mqtt.subscribe(group_cmd("main-st"), qos=1)
    async with asyncio.TaskGroup() as tasks:
        device = tasks.create_task(answer_like_a_device(mqtt, verifiers, answers))
        sent = await run_cli(
            "central", "send", *broker_args(broker), *signing_args(key_file), "--json",
            "--group", "main-st", "--aud", f"{good},{bad}", "--cmd", "control.release",
            "--timeout", "10",
        )  # fmt: skip
        device.cancel()
    assert sent.code == 1, sent.err
    events = [json.loads(line) for line in sent.out.splitlines()]
    assert events[0]["event"] == "sent"
    assert events[0]["topic"] == "greenwave/v1/group/main-st/cmd"
    assert events[0]["aud"] == [good, bad]
    acks = {(e["device"], e["status"], e["code"]) for e in events if e["event"] == "ack"}
    assert acks == {(good, "accepted", "OK"), (bad, "rejected", "E_UNSAFE")}
    result = events[-1]
    assert result["event"] == "result"
    assert result == result | {
        "ok": False, "reached": [good], "refused": [bad], "missing": [], "exit_code": 1,
    }  # fmt: skip


async def test_send_with_no_device_answering_times_out_with_3(
    broker: Mosquitto, key_file: Path
) -> None:
    started = time.monotonic()
    sent = await run_cli(
        "central", "send", *broker_args(broker), *signing_args(key_file), "--device", DEVICE,
        "--cmd", "diag.request", "--timeout", "0.5",
    )  # fmt: skip
    assert sent.code == 3, sent.err
    assert f"no accepted within 0.5 s from {DEVICE}" in sent.err
    assert time.monotonic() - started < 10


async def test_send_over_tls_with_a_client_certificate(
    tls_broker: Mosquitto, pki: ThrowawayPki, key_file: Path, tmp_path: Path
) -> None:
    verifier = device_state(tmp_path, key_file)
    tls = [
        "--broker", f"127.0.0.1:{tls_broker.tls_port}", "--ca", str(pki.ca),
        "--cert", str(pki.client_cert), "--cert-key", str(pki.client_key),
    ]  # fmt: skip
    async with aiomqtt.Client(tls_broker.host, tls_broker.port) as plain:
        await plain.subscribe(DeviceTopics(DEVICE).cmd, qos=1)
        sent = await run_cli(
            "central", "send", *tls, *signing_args(key_file), "--device", DEVICE,
            "--cmd", "control.release", "--wait", "none",
        )  # fmt: skip
        assert sent.code == 0, sent.err
        message = await next_message(plain)
    assert isinstance(message.payload, bytes)
    assert verifier.verify(message.payload).cmd == "control.release"

    tls[tls.index("--ca") + 1] = str(pki.other_ca)
    untrusted = await run_cli(
        "central", "send", *tls, *signing_args(key_file), "--device", DEVICE,
        "--cmd", "control.release", "--wait", "none",
    )  # fmt: skip
    assert untrusted.code == 2
    assert "cannot connect to the broker" in untrusted.err
    assert "certificate verify failed" in untrusted.err


async def test_an_unreachable_broker_is_one_line_and_exit_2(key_file: Path) -> None:
    sent = await run_cli(
        "central", "send", "--broker", "127.0.0.1:1", *signing_args(key_file),
        "--device", DEVICE, "--cmd", "control.release",
    )  # fmt: skip
    assert sent.code == 2
    assert sent.err.strip() == (
        "greenwave: cannot connect to the broker 127.0.0.1:1: [Errno 111] Connection refused"
    )


async def test_the_client_library_sends_and_follows(
    broker: Mosquitto, mqtt: aiomqtt.Client, key_file: Path, tmp_path: Path
) -> None:
    verifiers = {DEVICE: device_state(tmp_path, key_file)}
    answers = {DEVICE: [(AckStatus.ACCEPTED, Code.OK), (AckStatus.APPLIED, Code.OK)]}
    signer = CommandSigner(load_signing_key(key_file, kid=KID), ISSUER)
    topics = DeviceTopics(DEVICE)
    await mqtt.subscribe(topics.cmd, qos=1)
    await mqtt.publish(topics.state, b'{"mode": "central"}', qos=1, retain=True)
    settings = BrokerSettings(host=broker.host, port=broker.port)
    async with CentralClient(settings) as central, asyncio.TaskGroup() as tasks:
        device = tasks.create_task(answer_like_a_device(mqtt, verifiers, answers))
        command = signer.sign("control.pattern", {"pattern": 1}, aud=DEVICE)
        with pytest.raises(CentralError, match="E_AUDIENCE"):
            await central.publish(command, device="main-4th")
        outcome = await central.command(
            command, device=DEVICE, want=AckStatus.APPLIED, timeout_s=10
        )
        assert outcome.ok
        assert [a.status for a in outcome.acks] == [AckStatus.ACCEPTED, AckStatus.APPLIED]
        assert outcome.final[DEVICE].status == AckStatus.APPLIED

        silent = await central.wait_for_acks([DEVICE], "never-sent", timeout_s=0.2)
        assert silent.missing == (DEVICE,)

        async with central.follow([DEVICE], ["state"]) as messages:
            async with asyncio.timeout(5):
                state = await messages.get()
        assert state.retain
        assert (state.device, state.kind, state.json()) == (DEVICE, "state", {"mode": "central"})
        device.cancel()


# -- heartbeat ------------------------------------------------------------------------------


async def test_heartbeats_are_signed_for_every_device(
    broker: Mosquitto, mqtt: aiomqtt.Client, key_file: Path, tmp_path: Path
) -> None:
    verifier = device_state(tmp_path, key_file)
    await mqtt.subscribe(HEARTBEAT, qos=1)
    beats = await run_cli(
        "central", "heartbeat", *broker_args(broker), *signing_args(key_file),
        "--every", "0.1", "--count", "2",
    )  # fmt: skip
    assert beats.code == 0, beats.err
    assert len(beats.out.splitlines()) == 2
    jtis = set()
    for _ in range(2):
        message = await next_message(mqtt)
        assert isinstance(message.payload, bytes)
        command = verifier.verify(message.payload)
        assert command.cmd == "heartbeat"
        assert command.aud == ("*",)
        jtis.add(command.jti)
    assert len(jtis) == 2


# -- follow -------------------------------------------------------------------------------


def batch(first: int, last: int, dropped: tuple[int, int] | None = None) -> bytes:
    body: dict[str, object] = {
        "device": DEVICE,
        "first_seq": first,
        "last_seq": last,
        "events": [
            {"seq": n, "code": 1, "param": 2}
            for n in range(first, last + 1)
            if dropped is None or not dropped[0] <= n <= dropped[1]
        ],
    }
    if dropped is not None:
        body["dropped"] = [{"from_seq": dropped[0], "to_seq": dropped[1], "reason": "capacity"}]
    return json.dumps(body).encode()


async def test_follow_warns_loudly_on_an_events_gap(
    broker: Mosquitto, mqtt: aiomqtt.Client
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli.main", "central", "follow", *broker_args(broker),
        "--device", DEVICE, "--topics", "events,online", "--count", "5", "--timeout", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(15):
            ready = await proc.stderr.readline()
        assert ready.decode().startswith(f"following {DEVICE}: events, online")
        topics = DeviceTopics(DEVICE)
        await mqtt.publish(topics.online, b'{"online": true, "session": 4}', qos=1, retain=True)
        for payload in (batch(1, 3), batch(4, 5), batch(9, 10), batch(11, 16, dropped=(11, 14))):
            await mqtt.publish(topics.events, payload, qos=1)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text, warnings = out.decode(), err.decode()
    assert proc.returncode == 1, warnings
    summaries = [line.split("  ", 1)[1] for line in text.splitlines()]
    assert summaries == [
        '{"online":true,"session":4}',
        "events 1..3 (3 events)",
        "events 4..5 (2 events)",
        "events 9..10 (2 events)",
        "events 11..16 (2 events)",
    ]
    assert f"WARNING: events GAP on {DEVICE}: events 6..8 (3) never arrived" in warnings
    assert f"WARNING: events DROPPED on {DEVICE}: the device dropped events 11..14" in warnings
    assert "GAP" not in warnings.split("DROPPED", 1)[1]  # an announced drop is not a gap
    assert "2 events problem(s) seen" in warnings


# -- the library, without I/O ---------------------------------------------------------------


def events(first: int, last: int, dropped: tuple[int, int] | None = None) -> EventsBatch:
    return EventsBatch(
        device=DEVICE,
        first_seq=first,
        last_seq=last,
        events=[
            EventRecord(seq=n)
            for n in range(first, last + 1)
            if dropped is None or not dropped[0] <= n <= dropped[1]
        ],
        dropped=[] if dropped is None else [DroppedRange(from_seq=dropped[0], to_seq=dropped[1])],
    )


def test_events_sequence_issues() -> None:
    sequence = EventsSequence()
    assert sequence.feed(events(100, 109)) == ()  # following starts mid-stream
    assert sequence.feed(events(110, 119)) == ()
    (gap,) = sequence.feed(events(125, 130))
    assert (gap.kind, gap.from_seq, gap.to_seq, gap.count, gap.loud) == ("gap", 120, 124, 5, True)
    dropped, gap = sequence.feed(events(141, 151, dropped=(141, 149)))
    assert (dropped.kind, dropped.from_seq, dropped.to_seq) == ("dropped", 141, 149)
    assert (gap.kind, gap.from_seq, gap.to_seq) == ("gap", 131, 140)
    (repeat,) = sequence.feed(events(150, 153))
    assert (repeat.kind, repeat.from_seq, repeat.to_seq, repeat.loud) == ("repeat", 150, 151, False)
    assert sequence.expected(DEVICE) == 154
    broken = EventsBatch(
        device=DEVICE, first_seq=154, last_seq=156,
        events=[EventRecord(seq=154), EventRecord(seq=156)],
    )  # fmt: skip
    (inconsistent,) = sequence.feed(broken)
    assert inconsistent.kind == "inconsistent"
    assert "numbered 154, 156" in inconsistent.detail


def ack(device: str, status: AckStatus, jti: str | None = "j-1") -> Ack:
    code = Code.OK if status in {AckStatus.ACCEPTED, AckStatus.APPLIED} else Code.E_UNSAFE
    return Ack(device=device, jti=jti, cmd=None, status=status, code=code, ts=1.0)


def test_ack_tracker_settles_each_device_once() -> None:
    tracker = AckTracker("j-1", devices=["a", "b", "c"], want=AckStatus.APPLIED)
    assert tracker.feed(ack("a", AckStatus.ACCEPTED))
    assert not tracker.feed(ack("a", AckStatus.APPLIED, jti="other"))
    assert not tracker.feed(ack("z", AckStatus.APPLIED))
    assert tracker.feed(ack("b", AckStatus.REJECTED, jti=None))  # shown, not settled
    assert tracker.feed(ack("a", AckStatus.APPLIED))
    assert tracker.feed(ack("b", AckStatus.FAILED))
    assert not tracker.settled
    outcome = tracker.outcome()
    assert (outcome.reached, outcome.refused, outcome.missing) == (("a",), ("b",), ("c",))
    assert not outcome.ok
    assert [a.device for a in outcome.unattributed] == ["b"]

    accepted = AckTracker("j-1", devices=["a"], want=AckStatus.ACCEPTED)
    accepted.feed(ack("a", AckStatus.APPLIED))  # applied implies accepted
    assert accepted.settled
    assert accepted.outcome().ok


@pytest.mark.parametrize(
    ("address", "tls", "host", "port"),
    [
        ("broker.city", False, "broker.city", 1883),
        ("broker.city", True, "broker.city", 8883),
        ("10.0.0.5:1884", False, "10.0.0.5", 1884),
        ("[::1]:8883", True, "::1", 8883),
    ],
)
def test_broker_addresses(address: str, tls: bool, host: str, port: int) -> None:
    settings = BrokerSettings.from_address(address, tls=tls)
    assert (settings.host, settings.port) == (host, port)


@pytest.mark.parametrize("address", ["", ":1883", "host:port", "host:70000"])
def test_bad_broker_addresses(address: str) -> None:
    with pytest.raises(CentralError):
        BrokerSettings.from_address(address)


def test_the_signer_signs_checked_commands() -> None:
    signer = CommandSigner(SigningKey.generate(KID), ISSUER, clock=lambda: 1_780_000_000.0)
    command = signer.sign("control.pattern", {"pattern": "flash"}, aud=["a", "b"], jti="j-9")
    assert (command.jti, command.aud, command.iat, command.exp) == (
        "j-9", ("a", "b"), 1_780_000_000, 1_780_000_060,
    )  # fmt: skip
    assert peek_claims(command.token)["aud"] == ["a", "b"]
    assert signer.heartbeat().aud == "*"


@pytest.mark.parametrize(
    ("cmd", "args", "aud", "why"),
    [
        pytest.param("control.pattern", {"pattern": 300}, "a", "args.pattern", id="bad-args"),
        pytest.param("plan.unload", {}, "a", "unknown command", id="unknown-cmd"),
        pytest.param("control.release", {}, "*", "heartbeat only", id="star-not-heartbeat"),
        pytest.param("control.release", {}, "Not/A", "not a device id", id="bad-device"),
        pytest.param("control.release", {}, [], "names no device", id="no-device"),
    ],
)
def test_the_signer_refuses_what_a_device_would_reject(
    cmd: str, args: dict[str, Any], aud: str | list[str], why: str
) -> None:
    signer = CommandSigner(SigningKey.generate(KID), ISSUER)
    with pytest.raises(CentralError, match=why):
        signer.sign(cmd, args, aud=aud)
