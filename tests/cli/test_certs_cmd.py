"""``greenwave certs``: the DEV/TEST PKI it makes, and mutual TLS with a real mosquitto (issue 7).

Acceptance 4: with mosquitto running the ``mosquitto.conf`` that ``certs
init`` wrote (client certificates required), the agent's MQTT link connects
with the device files ``certs init`` made, and a client without a
certificate, or with one from another CA, is refused. The ACL keeps each
device to its own topics, and the central tool connects with central's
certificate and signs with the command key, which the device trusts through
the ``greenwave keys add`` lines ``certs init`` printed.

Everything made here is TEST material in a tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import shlex
import signal
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from agent.central import pki
from agent.central.link import MqttLink
from agent.cli import certs_cmd
from agent.config import load_config
from tests.broker import HOST, Mosquitto, free_port
from tests.cli.conftest import REPO
from tests.pki import make_test_pki

DEVICE = "cabinet-17"
OTHER = "cabinet-18"
WAIT_S = 10.0
#: ``greenwave certs`` as a subprocess, until and independently of its registration in main.
CERTS = [
    sys.executable,
    "-c",
    "from agent.cli.certs_cmd import app; app(prog_name='greenwave certs')",
]
GREENWAVE = [sys.executable, "-m", "agent.cli.main"]
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=60, check=False
    )


async def arun(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``run`` without blocking the event loop (the broker's clients live on it)."""
    return await asyncio.to_thread(run, argv)


def as_greenwave(argv: list[str]) -> list[str]:
    """A printed ``greenwave …`` line, as this interpreter runs it."""
    assert argv[0] == "greenwave"
    if argv[1] == "certs":
        return [*CERTS, *argv[2:]]
    return [*GREENWAVE, *argv[1:]]


runner = CliRunner()


def certs(*args: str) -> tuple[int, str, str]:
    """``greenwave certs ARGS`` in process: (exit code, stdout, stderr)."""
    result = runner.invoke(certs_cmd.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def init(out: Path, *args: str) -> str:
    code, stdout, stderr = certs("init", "--out", str(out), *args)
    assert code == 0, stderr
    return stdout


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``certs init`` for the tests that only read what it made."""
    out = tmp_path_factory.mktemp("certs") / "dev"
    init(out, "--device", DEVICE, "--device", OTHER)
    return out


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_ca(out: Path) -> pki.Issued:
    key = serialization.load_pem_private_key((out / pki.CA_KEY).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return pki.Issued(cert=load_cert(out / pki.CA_CERT), key=key)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# -- the layout ------------------------------------------------------------------------------------


def readme_layout(devices: tuple[str, ...]) -> set[str]:
    """The files the tree in certs/README.md lists, ``<id>`` expanded."""
    text = (REPO / "certs" / "README.md").read_text()
    block = text.split("```text\nOUT/\n", 1)[1].split("```", 1)[0]
    files: set[str] = set()
    stack: list[str] = []
    for line in block.splitlines():
        match = re.search(r"[├└]── (\S+)", line)
        assert match, line
        depth = match.start() // 4
        name = match.group(1)
        del stack[depth:]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        else:
            files.add("/".join([*stack, name]))
    return {path.replace("<id>", d) for path in files for d in devices}


def test_init_writes_the_layout_the_readme_documents(made: Path) -> None:
    written = {str(p.relative_to(made)) for p in made.rglob("*") if p.is_file()}
    assert written == readme_layout((DEVICE, OTHER))
    for path in made.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        elif path.suffix == ".key":
            assert mode == 0o600, path
            assert b"PRIVATE KEY" in path.read_bytes()
        else:
            assert mode == 0o644, path
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    # A device folder never holds a signing private key.
    device_files = {p.name for p in (made / "devices" / DEVICE).iterdir()}
    assert device_files == {
        "ca.pem",
        "device.pem",
        "device.key",
        "command.pub",
        "root.pub",
        "agent.toml",
    }


def test_init_prints_what_next_steps_holds_and_marks_it_dev_only(tmp_path: Path) -> None:
    stdout = init(tmp_path / "out")
    steps = (tmp_path / "out" / "NEXT-STEPS.txt").read_text()
    assert stdout.startswith("greenwave certs init: DEV/TEST material, NOT FOR PRODUCTION\n")
    assert steps in stdout
    assert "NOT FOR PRODUCTION" in steps
    for cert in (tmp_path / "out").rglob("*.pem"):
        org = load_cert(cert).subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert org[0].value == pki.DEV_ORG == "greenwave DEV-TEST ONLY"


def test_init_never_overwrites_keys_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    init(out)
    ca_key = (out / pki.CA_KEY).read_bytes()
    code, stdout, stderr = certs("init", "--out", str(out), "--device", "another")
    assert code == 2
    assert stdout == ""
    assert stderr.count("\n") == 1
    assert "already holds" in stderr
    assert "--force" in stderr
    assert (out / pki.CA_KEY).read_bytes() == ca_key
    assert not (out / "devices" / "another").exists()  # nothing written at all
    init(out, "--force")
    assert (out / pki.CA_KEY).read_bytes() != ca_key
    assert stat.S_IMODE((out / pki.CA_KEY).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "why"),
    [
        pytest.param(["--device", "Cabinet_17"], "not a device id", id="device-id"),
        pytest.param(["--device", "a", "--device", "a"], "twice", id="device-twice"),
        pytest.param(["--broker-host", "not a host"], "neither a DNS name", id="broker-host"),
        pytest.param(["--issuer", "has space"], "--issuer", id="issuer"),
        pytest.param(["--days", "0"], "--days", id="days"),
        pytest.param(["--broker-port", "70000"], "--broker-port", id="port"),
    ],
)
def test_init_rejects_bad_arguments_in_one_line(tmp_path: Path, args: list[str], why: str) -> None:
    code, _, stderr = certs("init", "--out", str(tmp_path / "out"), *args)
    assert code == 2
    assert why in stderr
    assert stderr.count("\n") == 1, stderr
    assert not (tmp_path / "out").exists()


# -- what the certificates say ---------------------------------------------------------------------


def test_the_certificates_name_their_holders_and_chain_to_the_ca(made: Path) -> None:
    ca = load_cert(made / pki.CA_CERT)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    broker = pki.summarize(load_cert(made / "broker" / "broker.pem"))
    assert broker.sans == ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
    assert broker.usages == ("server auth",)
    for holder, cn in [
        ("devices/cabinet-17/device.pem", DEVICE),
        ("devices/cabinet-18/device.pem", OTHER),
        ("central/central.pem", pki.CENTRAL_CN),
    ]:
        cert = load_cert(made / holder)
        assert pki.common_name(cert) == cn
        assert pki.summarize(cert).usages == ("client auth",)
        assert pki.chain_problem(cert, [], [ca], now=now()) is None
        key = pki.load_private_key((made / holder).with_suffix(".key").read_bytes(), holder)
        assert pki.public_key_sha256(key) == pki.public_key_sha256(cert)
    # The copies of the CA certificate are the CA certificate.
    for copy in ["broker/ca.pem", "central/ca.pem", "devices/cabinet-17/ca.pem"]:
        assert (made / copy).read_bytes() == (made / pki.CA_CERT).read_bytes()


def test_broker_hosts_go_into_the_certificate_and_the_configs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    init(
        out,
        "--broker-host",
        "Broker.Lab.",
        "--broker-host",
        "10.1.2.3",
        "--broker-host",
        "[fd00::5]",
        "--broker-port",
        "18883",
        "--days",
        "90",
    )
    cert = load_cert(out / "broker" / "broker.pem")
    assert pki.summarize(cert).sans == ("DNS:broker.lab", "IP:10.1.2.3", "IP:fd00::5")
    assert pki.common_name(cert) == "broker.lab"
    assert 89 <= (cert.not_valid_after_utc - now()).days <= 90
    config = load_config(out / "devices" / "cabinet-1" / "agent.toml")
    assert (config.device.id, config.mqtt.host, config.mqtt.port) == (
        "cabinet-1",
        "broker.lab",
        18883,
    )
    assert "listener 18883\n" in (out / "broker" / "mosquitto.conf").read_text()
    assert "--broker broker.lab:18883" in (out / "NEXT-STEPS.txt").read_text()


def test_the_examples_in_certs_are_what_init_writes() -> None:
    assert (REPO / "certs" / "mosquitto-tls.conf.example").read_text() == (
        pki.example_mosquitto_conf()
    )
    assert (REPO / "certs" / "mosquitto.acl.example").read_text() == pki.render_mosquitto_acl()


def test_certs_ignores_everything_but_its_tooling() -> None:
    ignore = (REPO / "certs" / ".gitignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    assert {"!README.md", "!*.example", "*.key", "*.pem"} <= set(ignore)


# -- show ------------------------------------------------------------------------------------------


def test_show_prints_subject_issuer_names_validity_and_fingerprint(made: Path) -> None:
    cert_path = made / "broker" / "broker.pem"
    code, stdout, _ = certs("show", str(cert_path))
    assert code == 0
    cert = load_cert(cert_path)
    pairs = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines()[1:]]
    lines = {pair[0]: pair[1] for pair in pairs if len(pair) == 2}
    assert lines["subject"] == f"CN=localhost,O={pki.DEV_ORG}"
    assert lines["issuer"] == f"CN={pki.DEV_CA_CN},O={pki.DEV_ORG}"
    assert lines["names (SAN)"] == "DNS:localhost, IP:127.0.0.1, IP:::1"
    assert lines["valid"].startswith(cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%SZ"))
    assert "364 day(s) left" in stdout
    openssl_style = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
    assert lines["sha256"] == openssl_style
    # The key's public-key hash is the certificate's: a technician can pair them.
    _, key_out, _ = certs("show", str(made / "broker" / "broker.key"))
    assert pki.public_key_sha256(cert) in key_out
    assert pki.public_key_sha256(cert) in stdout


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        pytest.param("notes.txt", b"hello\n", "no certificate", id="not-a-cert"),
        pytest.param("gone.pem", None, "cannot read", id="missing"),
        pytest.param(
            "bad.key",
            b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
            "not a PEM private key",
            id="bad-key",
        ),
    ],
)
def test_show_refuses_what_it_cannot_read_in_one_line(
    tmp_path: Path, name: str, data: bytes | None, why: str
) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    code, stdout, stderr = certs("show", str(path))
    assert (code, stdout) == (2, "")
    assert why in stderr
    assert stderr.count("\n") == 1


# -- check -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    ca: Path
    cert: Path
    key: Path


def agent_toml(path: Path, files: Files, *, device: str = DEVICE, tls: bool = True) -> Path:
    if tls:
        path.write_text(
            pki.render_agent_toml(
                device=device,
                host="localhost",
                port=8883,
                ca_file=str(files.ca),
                cert_file=str(files.cert),
                key_file=str(files.key),
                banner="TEST",
            )
        )
    else:
        path.write_text(f'[device]\nid = "{device}"\n[mqtt]\ntls = false\n')
    return path


def device_files(out: Path, device: str = DEVICE) -> Files:
    where = out / "devices" / device
    return Files(ca=where / "ca.pem", cert=where / "device.pem", key=where / "device.key")


def issued_files(
    tmp_path: Path,
    out: Path,
    *,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Files:
    """A device certificate from the generated CA, with the validity given."""
    issued = pki.issue(
        load_ca(out),
        common_name=DEVICE,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        now=now(),
        not_before=not_before,
        not_after=not_after,
    )
    (tmp_path / "odd.pem").write_bytes(issued.cert_pem)
    (tmp_path / "odd.key").write_bytes(issued.key_pem)
    (tmp_path / "odd.key").chmod(0o600)
    return Files(ca=out / pki.CA_CERT, cert=tmp_path / "odd.pem", key=tmp_path / "odd.key")


def check(config: Path) -> tuple[int, list[tuple[str, str, str]]]:
    code, stdout, stderr = certs("check", "--config", str(config))
    assert "Traceback" not in stderr
    rows = []
    for line in stdout.splitlines()[1:]:
        if line.startswith("  "):
            level, item, detail = line.split(maxsplit=2)
            rows.append((level, item, detail))
    return code, rows


def test_check_passes_the_files_init_made(made: Path) -> None:
    config = made / "devices" / DEVICE / "agent.toml"
    code, rows = check(config)
    assert code == 0
    assert [(level, item) for level, item, _ in rows] == [
        ("ok", "ca_file"),
        ("ok", "cert_file"),
        ("ok", "chain"),
        ("ok", "key_file"),
        ("ok", "openssl"),
    ]


def _expired(tmp_path: Path, out: Path) -> Files:
    return issued_files(
        tmp_path,
        out,
        not_before=now() - datetime.timedelta(days=30),
        not_after=now() - datetime.timedelta(days=1),
    )


def _soon(tmp_path: Path, out: Path) -> Files:
    return issued_files(tmp_path, out, not_after=now() + datetime.timedelta(days=10))


def _future(tmp_path: Path, out: Path) -> Files:
    return issued_files(tmp_path, out, not_before=now() + datetime.timedelta(days=2))


def _other_key(tmp_path: Path, out: Path) -> Files:
    mine, theirs = device_files(out), device_files(out, OTHER)
    return Files(ca=mine.ca, cert=mine.cert, key=theirs.key)


def _other_ca(tmp_path: Path, out: Path) -> Files:
    foreign = make_test_pki(tmp_path / "foreign", client_name=DEVICE)
    return Files(ca=out / pki.CA_CERT, cert=foreign.client_cert, key=foreign.client_key)


def _missing(tmp_path: Path, out: Path) -> Files:
    return Files(ca=out / pki.CA_CERT, cert=tmp_path / "nowhere.pem", key=tmp_path / "no.key")


def _server_cert(tmp_path: Path, out: Path) -> Files:
    return Files(
        ca=out / pki.CA_CERT, cert=out / "broker/broker.pem", key=out / "broker/broker.key"
    )


def _world_readable(tmp_path: Path, out: Path) -> Files:
    files = device_files(out)
    copy = tmp_path / "loose.key"
    copy.write_bytes(files.key.read_bytes())
    copy.chmod(0o644)
    return Files(ca=files.ca, cert=files.cert, key=copy)


@pytest.mark.parametrize(
    ("make", "code", "level", "item", "why"),
    [
        pytest.param(_expired, 1, "FAIL", "cert_file", "EXPIRED", id="expired"),
        pytest.param(_future, 1, "FAIL", "cert_file", "not valid before", id="not-yet-valid"),
        pytest.param(_soon, 0, "warn", "cert_file", "renew it", id="expiring-in-10-days"),
        pytest.param(_other_key, 1, "FAIL", "key_file", "is not the key of", id="wrong-key"),
        pytest.param(_other_ca, 1, "FAIL", "chain", "not in the CA file", id="other-ca"),
        pytest.param(_missing, 1, "FAIL", "cert_file", "cannot read", id="missing-file"),
        pytest.param(_server_cert, 1, "FAIL", "cert_file", "not a client cert", id="server-cert"),
        pytest.param(_world_readable, 0, "warn", "key_file", "every user", id="key-mode-0644"),
    ],
)
def test_check_finds_what_would_stop_the_link(
    tmp_path: Path,
    made: Path,
    make: object,
    code: int,
    level: str,
    item: str,
    why: str,
) -> None:
    assert callable(make)
    files: Files = make(tmp_path, made)
    got_code, rows = check(agent_toml(tmp_path / "agent.toml", files))
    assert got_code == code, rows
    assert any(r[0] == level and r[1] == item and why in r[2] for r in rows), rows


def test_check_warns_when_the_cn_is_not_the_device_id(tmp_path: Path, made: Path) -> None:
    code, rows = check(agent_toml(tmp_path / "agent.toml", device_files(made), device="main-5th"))
    assert code == 0
    assert ("warn", "cert_file") in [(r[0], r[1]) for r in rows]


def test_check_fails_without_tls_and_exits_2_on_a_bad_config(tmp_path: Path, made: Path) -> None:
    code, rows = check(agent_toml(tmp_path / "plain.toml", device_files(made), tls=False))
    assert (code, rows[0][:2]) == (1, ("FAIL", "tls"))
    (tmp_path / "bad.toml").write_text("[mqtt]\ntls = 3\n")
    code, _, stderr = certs("check", "--config", str(tmp_path / "bad.toml"))
    assert code == 2
    assert "Traceback" not in stderr


# -- registration ---------------------------------------------------------------------------------


def test_greenwave_certs_is_a_verb_of_greenwave() -> None:
    """Fails until agent/cli/verbs.py registers the sub-app (app.add_typer(certs_cmd.app, …))."""
    result = run([*GREENWAVE, "certs", "--help"])
    assert result.returncode == 0, result.stderr
    for verb in ("init", "show", "check"):
        assert verb in result.stdout


# -- acceptance 4: mutual TLS with what certs init made, against a real mosquitto -----------------


def client_tls(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def mqtt_connect(port: int, tls: ssl.SSLContext | None, client_id: str) -> str:
    """One MQTT 3.1.1 CONNECT, by hand: ``CONNACK <rc>``, ``closed``, or the TLS error."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    packet = bytes([0x10, len(body)]) + body
    with socket.create_connection((HOST, port), timeout=WAIT_S) as raw:
        try:
            if tls is None:
                raw.sendall(packet)
                answer = raw.recv(4)
            else:
                with tls.wrap_socket(raw, server_hostname="localhost") as sock:
                    sock.sendall(packet)
                    answer = sock.recv(4)
        except ssl.SSLError as err:
            return f"{type(err).__name__}: {err}"
        except ConnectionResetError:
            return "reset"
    if not answer:
        return "closed"
    assert answer[:3] == b"\x20\x02\x00", answer
    return f"CONNACK {answer[3]}"


@contextlib.asynccontextmanager
async def mqtt_client(port: int, tls: ssl.SSLContext, name: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "localhost", port, identifier=name, tls_context=tls, timeout=3
    ) as client:
        yield client


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(WAIT_S):
        return await anext(aiter(client.messages))


def payload(message: aiomqtt.Message) -> Any:
    assert isinstance(message.payload, bytes)
    return json.loads(message.payload)


@pytest.fixture
def dev_broker(tmp_path: Path) -> Iterator[tuple[Path, Mosquitto, int]]:
    """``greenwave certs init`` (the real CLI), and mosquitto running its mosquitto.conf."""
    out = tmp_path / "dev"
    port = free_port()
    made = run(
        [
            *CERTS,
            "init",
            "--out",
            str(out),
            "--device",
            DEVICE,
            "--device",
            OTHER,
            "--broker-port",
            str(port),
        ]
    )
    assert made.returncode == 0, made.stderr
    conf = (out / "broker" / "mosquitto.conf").read_text()
    with Mosquitto(tmp_path / "broker", extra_config=conf) as broker:
        yield out, broker, port


async def test_the_agent_connects_with_the_files_certs_init_made_and_others_are_refused(
    dev_broker: tuple[Path, Mosquitto, int], tmp_path: Path
) -> None:
    out, _, port = dev_broker
    config = load_config(out / "devices" / DEVICE / "agent.toml")
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("localhost", port, True)
    central_tls = client_tls(
        out / "central/ca.pem", out / "central/central.pem", out / "central/central.key"
    )
    link = MqttLink(
        config.mqtt.model_copy(update={"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2}),
        device_id=config.device.id,
        software_version="0.0.0-test",
        state_dir=tmp_path / "state",
        command_rate=100.0,
        command_queue=16,
        max_command_bytes=64 * 1024,
    )
    (tmp_path / "state").mkdir()
    task = asyncio.create_task(link.run(), name="mqtt-link")
    try:
        # (a) The device, with its certificate, connects and says it is online.
        async with asyncio.timeout(WAIT_S):
            await link.wait_connected()
        async with mqtt_client(port, central_tls, "central-watch") as central:
            await central.subscribe(f"greenwave/v1/{DEVICE}/online", qos=1)
            assert payload(await next_message(central))["online"] is True

        # (b) Without a certificate, or with one from another CA, or without TLS: refused.
        # A bare MQTT CONNECT tells why at once; the device's own files get a CONNACK.
        ca = out / "devices" / DEVICE / "ca.pem"
        foreign = make_test_pki(tmp_path / "foreign", client_name=DEVICE)
        device = device_files(out)
        probes = {
            "device certificate": client_tls(ca, device.cert, device.key),
            "no certificate": client_tls(ca),
            "other CA": client_tls(ca, foreign.client_cert, foreign.client_key),
            "no TLS": None,
        }
        answers = {
            why: await asyncio.to_thread(mqtt_connect, port, context, f"probe-{n}")
            for n, (why, context) in enumerate(probes.items())
        }
        assert answers.pop("device certificate") == "CONNACK 0"
        # The broker's alert, or its closing first (TLS 1.3 sends it after the handshake).
        refused = {
            "no certificate": "CERTIFICATE_REQUIRED|EOF|reset",
            "other CA": "UNKNOWN_CA|EOF|reset",
            "no TLS": "closed|reset",
        }
        print(f"\nrefused: {answers}")
        for why, answer in answers.items():
            assert re.search(refused[why], answer), f"{why}: {answer}"

        # (c) The ACL: cabinet-18 can neither read cabinet-17's commands nor publish as it;
        # cabinet-17 reads its own.
        other_tls = client_tls(
            out / "devices" / OTHER / "ca.pem",
            out / "devices" / OTHER / "device.pem",
            out / "devices" / OTHER / "device.key",
        )
        async with (
            mqtt_client(port, central_tls, "central-acl") as central,
            mqtt_client(port, other_tls, "greenwave-cabinet-18") as other,
        ):
            # mosquitto 2.0 grants the subscription but delivers nothing the ACL denies.
            await other.subscribe(f"greenwave/v1/{DEVICE}/cmd", qos=1)
            await other.subscribe(f"greenwave/v1/{OTHER}/cmd", qos=1)
            await central.publish(f"greenwave/v1/{DEVICE}/cmd", b"for-17", qos=1)
            await central.publish(f"greenwave/v1/{OTHER}/cmd", b"for-18", qos=1)
            first = await next_message(other)
            assert (str(first.topic), first.payload) == (f"greenwave/v1/{OTHER}/cmd", b"for-18")
            async with asyncio.timeout(WAIT_S):
                mine = await link.next_command()
            assert (mine.topic, mine.payload) == (f"greenwave/v1/{DEVICE}/cmd", b"for-17")

            await central.subscribe("greenwave/v1/+/state", qos=1)
            await other.publish(f"greenwave/v1/{DEVICE}/state", b'{"forged":true}', qos=1)
            await other.publish(f"greenwave/v1/{OTHER}/state", b'{"mine":true}', qos=1)
            first = await next_message(central)
            # Messages from one client arrive in order: the forged one was dropped.
            assert (str(first.topic), first.payload) == (
                f"greenwave/v1/{OTHER}/state",
                b'{"mine":true}',
            )

        # (d) Central: the exact `greenwave central send` line certs init printed, over
        # mutual TLS with central's certificate, signed with the command key.
        steps = (out / "NEXT-STEPS.txt").read_text()
        (send,) = [
            shlex.split(line)
            for line in steps.splitlines()
            if line.strip().startswith("greenwave central send")
        ]
        sent = await arun([*as_greenwave(send), "--wait", "none", "--json"])
        assert sent.returncode == 0, sent.stderr
        async with asyncio.timeout(WAIT_S):
            command = await link.next_command()
        assert command.topic == f"greenwave/v1/{DEVICE}/cmd"
        token = command.payload.decode()

        # The device trusts it once the printed `greenwave keys add` lines have run.
        trust_dir = tmp_path / "device-state"
        trust_dir.mkdir()
        provision = [
            shlex.split(line)
            for line in steps.splitlines()
            if line.strip().startswith("greenwave keys add") and f"/devices/{DEVICE}/" in line
        ]
        assert len(provision) == 2
        for argv in provision:
            added = await arun([*as_greenwave(argv), "--state-dir", str(trust_dir)])
            assert added.returncode == 0, added.stderr
        verified = await arun(
            [*GREENWAVE, "central", "verify", "--trust", str(trust_dir / "trust.json"), token]
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith("OK diag.request from dev-central (key dev-command)")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_agent_process_runs_with_the_config_certs_init_wrote(
    dev_broker: tuple[Path, Mosquitto, int], tmp_path: Path
) -> None:
    """``greenwave run`` with the device's agent.toml (plus what a cabinet adds) comes online."""
    out, _, port = dev_broker
    config = tmp_path / "agent.toml"
    config.write_text(
        (out / "devices" / DEVICE / "agent.toml").read_text()
        + f'\n[controller]\nurl = "udp://127.0.0.1:{free_port()}"\n'
        + f'\n[state]\ndir = "{tmp_path / "state"}"\n'
        + f'\n[local]\nsocket = "{tmp_path / "agent.sock"}"\n'
        + '\n[clock]\ntrust = "always"\n'
    )
    (tmp_path / "state").mkdir()
    central_tls = client_tls(
        out / "central/ca.pem", out / "central/central.pem", out / "central/central.key"
    )
    log = tmp_path / "agent.log"
    with log.open("wb") as sink:
        agent = await asyncio.create_subprocess_exec(
            *GREENWAVE, "run", "--config", str(config),
            cwd=REPO, env=ENV, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        async with mqtt_client(port, central_tls, "central-online") as central:
            await central.subscribe(f"greenwave/v1/{DEVICE}/online", qos=1)
            online = payload(await next_message(central))
            assert online["online"] is True, log.read_text()
            assert online["session"] == 1
            agent.send_signal(signal.SIGTERM)  # a clean stop says so itself
            assert payload(await next_message(central)) == {"online": False}
        async with asyncio.timeout(WAIT_S):
            assert await agent.wait() == 0
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
