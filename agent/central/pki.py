"""Certificates for the MQTT link: a DEV/TEST PKI maker, and the checks a technician runs.

Two halves, both used by ``greenwave certs`` (:mod:`agent.cli.certs_cmd`):

**Making** (``certs init``). :func:`make_dev_bundle` builds, in memory, a
development CA and everything issued from it, plus the two Ed25519 key pairs
that sign commands (:class:`~agent.central.signing.SigningKey`), the broker's
mosquitto configuration and ACL, one ``agent.toml`` per device, and
``NEXT-STEPS.txt`` with the exact commands that put them to use.
:func:`write_bundle` writes it: private keys mode 0600, new folders 0700,
every file atomically; nothing is written when any file of the layout exists
already, unless ``force``. The layout, one folder per machine it goes to::

    OUT/
    ├── NEXT-STEPS.txt            what goes where, and the exact commands
    ├── ca/                       stays here: the development CA
    │   ├── ca.pem
    │   └── ca.key
    ├── broker/                   → the broker host
    │   ├── ca.pem, broker.pem, broker.key
    │   ├── mosquitto.conf        TLS listener that requires client certificates
    │   └── mosquitto.acl         each device: its own topics only
    ├── central/                  → central (``greenwave central …``)
    │   ├── ca.pem, central.pem, central.key
    │   └── command.key, command.pub
    ├── root/                     → offline storage
    │   └── root.key, root.pub
    └── devices/<id>/             → cabinet <id>
        ├── ca.pem, device.pem, device.key
        ├── command.pub, root.pub
        └── agent.toml            [device] and [mqtt] with these paths

Every certificate is ECDSA P-256 / SHA-256 and carries the organisation
:data:`DEV_ORG`, so a stray file says what it is. A device certificate's CN
is the device id: with ``use_identity_as_username`` it is the MQTT user name
that the ACL's ``%u`` stands for. Central's CN is :data:`CENTRAL_CN`, which
holds a dot and so can never be a device id.

**Checking** (``certs show``, ``certs check``). :func:`load_certificates`,
:func:`summarize` and :func:`check_client_files`, which looks at the files an
agent's ``[mqtt]`` section names the way the link will use them (see
``MqttLink._tls_context`` in :mod:`agent.central.link`) and says, per file,
``ok``, ``warn`` or ``fail``.

Library errors (``ValueError`` from cryptography, ``OSError``) become
:class:`PkiError` where they enter.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import hashlib
import ipaddress
import json
import os
import re
import shlex
import ssl
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.central.signing import SigningKey
from agent.errors import GreenwaveError

#: The organisation of every certificate ``certs init`` makes.
DEV_ORG: Final = "greenwave DEV-TEST ONLY"
#: The development CA's common name.
DEV_CA_CN: Final = "greenwave development CA - NOT FOR PRODUCTION"
#: Central's client certificate CN, and so its MQTT user name (a dot: never a device id).
CENTRAL_CN: Final = "greenwave.central"
#: Key ids and default issuer of the command-signing keys ``certs init`` makes.
COMMAND_KID: Final = "dev-command"
ROOT_KID: Final = "dev-root"
DEFAULT_ISSUER: Final = "dev-central"
DEFAULT_BROKER_HOSTS: Final = ("localhost", "127.0.0.1", "::1")
DEFAULT_BROKER_PORT: Final = 8883
DEFAULT_DAYS: Final = 365
MAX_DAYS: Final = 3650
#: Certificates start this long before they are made: a device clock a little behind still works.
BACKDATE: Final = datetime.timedelta(hours=1)
#: ``certs check`` warns when a certificate ends within this many days.
DEFAULT_WARN_DAYS: Final = 30
#: Largest certificate or key file read.
MAX_PEM_BYTES: Final = 1024 * 1024

KEY_MODE: Final = 0o600
FILE_MODE: Final = 0o644
DIR_MODE: Final = 0o700

_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ISSUER = re.compile(r"^[\x21-\x7e]{1,128}$")
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?$")


class PkiError(GreenwaveError):
    """A certificate, key or layout that cannot be made, read or used."""

    code = "E_CERTS"


# -- making certificates (no I/O) -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (mosquitto and the agent read it at every connect)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _validity(
    builder: x509.CertificateBuilder,
    now: datetime.datetime,
    days: int,
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
) -> x509.CertificateBuilder:
    start = not_before if not_before is not None else now - BACKDATE
    end = not_after if not_after is not None else now + datetime.timedelta(days=days)
    return builder.not_valid_before(start).not_valid_after(end)


def new_ca(
    *,
    now: datetime.datetime,
    days: int = DEFAULT_DAYS,
    common_name: str = DEV_CA_CN,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """A self-signed CA that may issue end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    builder = _validity(builder, now, days, not_before, not_after)
    return Issued(cert=builder.sign(key, hashes.SHA256()), key=key)


def issue(
    ca: Issued,
    *,
    common_name: str,
    usage: x509.ObjectIdentifier,
    now: datetime.datetime,
    days: int = DEFAULT_DAYS,
    dns_names: Sequence[str] = (),
    ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Issued:
    """An end-entity certificate from ``ca`` for one usage (server or client auth)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    builder = _validity(builder, now, days, not_before, not_after)
    return Issued(cert=builder.sign(ca.key, hashes.SHA256()), key=key)


# -- what ``certs init`` is asked for -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BrokerNames:
    """The broker's names for its certificate: DNS names and IP addresses, in the order given."""

    dns: tuple[str, ...]
    ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]
    #: The first name given: what devices and central connect to.
    primary: str

    @classmethod
    def parse(cls, hosts: Sequence[str]) -> BrokerNames:
        """``localhost``, ``broker.city.example``, ``10.0.0.5``, ``::1`` … (PkiError otherwise)."""
        if not hosts:
            raise PkiError("the broker needs at least one name or address")
        dns: list[str] = []
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for host in hosts:
            text = host.strip()
            try:
                ip = ipaddress.ip_address(text.strip("[]"))
            except ValueError:
                if len(text) > 253 or not _DNS_NAME.fullmatch(text):
                    raise PkiError(
                        f"--broker-host {host!r}: neither a DNS name nor an IP address"
                    ) from None
                name = text.rstrip(".").lower()
                if name not in dns:
                    dns.append(name)
            else:
                if ip not in ips:
                    ips.append(ip)
        first = hosts[0].strip()
        with contextlib.suppress(ValueError):
            first = str(ipaddress.ip_address(first.strip("[]")))
        return cls(dns=tuple(dns), ips=tuple(ips), primary=first.rstrip(".").lower())


@dataclass(frozen=True, kw_only=True)
class DevBundleSpec:
    """What ``greenwave certs init`` was asked to make."""

    #: Where the files go, absolute: every path written into a config file is under it.
    out: Path
    devices: tuple[str, ...]
    broker: BrokerNames
    broker_port: int = DEFAULT_BROKER_PORT
    days: int = DEFAULT_DAYS
    issuer: str = DEFAULT_ISSUER

    def __post_init__(self) -> None:
        if not self.out.is_absolute():
            raise PkiError(f"{self.out}: the output folder must be an absolute path")
        if any(ch in str(self.out) for ch in "\r\n\0"):
            raise PkiError("the output folder's path holds a line break: it cannot go in a config")
        if not self.devices:
            raise PkiError("give at least one --device ID")
        for device in self.devices:
            if not _DEVICE_ID.fullmatch(device):
                raise PkiError(f"--device {device!r}: not a device id ([a-z0-9][a-z0-9-]{{0,62}})")
        if len(set(self.devices)) != len(self.devices):
            raise PkiError("a --device is given twice")
        if not _ISSUER.fullmatch(self.issuer):
            raise PkiError(f"--issuer {self.issuer!r}: 1-128 printable ASCII, no spaces")
        if not 1 <= self.broker_port <= 65535:
            raise PkiError(f"--broker-port {self.broker_port}: not a TCP port")
        if not 1 <= self.days <= MAX_DAYS:
            raise PkiError(f"--days {self.days}: between 1 and {MAX_DAYS}")


@dataclass(frozen=True, kw_only=True)
class BundleFile:
    """One file of the layout: where (relative to the output folder), what, with which mode."""

    path: str
    data: bytes
    mode: int

    @property
    def secret(self) -> bool:
        return self.mode == KEY_MODE


@dataclass(frozen=True, kw_only=True)
class DevBundle:
    """Everything ``certs init`` writes, in memory."""

    spec: DevBundleSpec
    files: tuple[BundleFile, ...]
    next_steps: str

    def file(self, path: str) -> BundleFile:
        """The file at ``path`` (relative, as in the layout)."""
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)


# Paths in the layout (relative to OUT).
NEXT_STEPS: Final = "NEXT-STEPS.txt"
CA_CERT: Final = "ca/ca.pem"
CA_KEY: Final = "ca/ca.key"
BROKER_DIR: Final = "broker"
CENTRAL_DIR: Final = "central"
ROOT_DIR: Final = "root"
DEVICES_DIR: Final = "devices"


def device_dir(device: str) -> str:
    """``devices/<id>``."""
    return f"{DEVICES_DIR}/{device}"


def make_dev_bundle(spec: DevBundleSpec, *, now: datetime.datetime) -> DevBundle:
    """The development CA, every certificate and key, and the configs that use them."""
    out = spec.out
    ca = new_ca(now=now, days=spec.days)
    broker = issue(
        ca,
        # A CN holds at most 64 characters; clients check the SANs anyway.
        common_name=spec.broker.primary if len(spec.broker.primary) <= 64 else "greenwave broker",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        now=now,
        days=spec.days,
        dns_names=spec.broker.dns,
        ips=spec.broker.ips,
    )
    central = issue(
        ca, common_name=CENTRAL_CN, usage=ExtendedKeyUsageOID.CLIENT_AUTH, now=now, days=spec.days
    )
    command = SigningKey.generate(COMMAND_KID)
    root = SigningKey.generate(ROOT_KID)
    command_expiry = now + datetime.timedelta(days=spec.days)

    files: list[BundleFile] = []

    def add(path: str, data: bytes, mode: int = FILE_MODE) -> str:
        files.append(BundleFile(path=path, data=data, mode=mode))
        return str(out / path)

    add(CA_CERT, ca.cert_pem)
    add(CA_KEY, ca.key_pem, KEY_MODE)

    broker_ca = add(f"{BROKER_DIR}/ca.pem", ca.cert_pem)
    broker_cert = add(f"{BROKER_DIR}/broker.pem", broker.cert_pem)
    broker_key = add(f"{BROKER_DIR}/broker.key", broker.key_pem, KEY_MODE)
    acl = add(f"{BROKER_DIR}/mosquitto.acl", render_mosquitto_acl().encode())
    conf = add(
        f"{BROKER_DIR}/mosquitto.conf",
        render_mosquitto_conf(
            port=spec.broker_port,
            cafile=broker_ca,
            certfile=broker_cert,
            keyfile=broker_key,
            acl_file=acl,
            banner=_banner(now),
        ).encode(),
    )

    central_ca = add(f"{CENTRAL_DIR}/ca.pem", ca.cert_pem)
    central_cert = add(f"{CENTRAL_DIR}/central.pem", central.cert_pem)
    central_key = add(f"{CENTRAL_DIR}/central.key", central.key_pem, KEY_MODE)
    command_key = add(f"{CENTRAL_DIR}/command.key", command.private_pem(), KEY_MODE)
    add(f"{CENTRAL_DIR}/command.pub", command.public_pem())

    add(f"{ROOT_DIR}/root.key", root.private_pem(), KEY_MODE)
    add(f"{ROOT_DIR}/root.pub", root.public_pem())

    provision: dict[str, list[list[str]]] = {}
    for device in spec.devices:
        where = device_dir(device)
        issued = issue(
            ca, common_name=device, usage=ExtendedKeyUsageOID.CLIENT_AUTH, now=now, days=spec.days
        )
        ca_file = add(f"{where}/ca.pem", ca.cert_pem)
        cert_file = add(f"{where}/device.pem", issued.cert_pem)
        key_file = add(f"{where}/device.key", issued.key_pem, KEY_MODE)
        root_pub = add(f"{where}/root.pub", root.public_pem())
        command_pub = add(f"{where}/command.pub", command.public_pem())
        add(
            f"{where}/agent.toml",
            render_agent_toml(
                device=device,
                host=spec.broker.primary,
                port=spec.broker_port,
                ca_file=ca_file,
                cert_file=cert_file,
                key_file=key_file,
                banner=_banner(now),
            ).encode(),
        )
        provision[device] = [
            keys_add_command(kid=ROOT_KID, issuer=spec.issuer, role="root", public_file=root_pub),
            keys_add_command(
                kid=COMMAND_KID,
                issuer=spec.issuer,
                role="command",
                public_file=command_pub,
                not_after=command_expiry,
            ),
        ]

    next_steps = _next_steps(
        spec,
        now=now,
        conf=conf,
        provision=provision,
        central_send=central_send_command(
            spec,
            device=spec.devices[0],
            ca_file=central_ca,
            cert_file=central_cert,
            key_file=central_key,
            signing_key=command_key,
        ),
    )
    add(NEXT_STEPS, next_steps.encode())
    return DevBundle(spec=spec, files=tuple(files), next_steps=next_steps)


def keys_add_command(
    *,
    kid: str,
    issuer: str,
    role: str,
    public_file: str,
    not_after: datetime.datetime | None = None,
) -> list[str]:
    """The ``greenwave keys add`` that trusts one public key on a device (argv)."""
    argv = ["greenwave", "keys", "add", "--kid", kid, "--issuer", issuer, "--role", role]
    if not_after is not None:
        argv += ["--not-after", _iso(not_after)]
    return [*argv, public_file]


def central_send_command(
    spec: DevBundleSpec,
    *,
    device: str,
    ca_file: str,
    cert_file: str,
    key_file: str,
    signing_key: str,
) -> list[str]:
    """A ``greenwave central send`` over mutual TLS with central's certificate (argv)."""
    host = spec.broker.primary
    address = f"[{host}]" if ":" in host else host
    return [
        "greenwave", "central", "send",
        "--broker", f"{address}:{spec.broker_port}",
        "--ca", ca_file, "--cert", cert_file, "--cert-key", key_file,
        "--key", signing_key, "--kid", COMMAND_KID, "--iss", spec.issuer,
        "--device", device, "--cmd", "diag.request",
    ]  # fmt: skip


# -- the text files -------------------------------------------------------------------------------


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _human(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _banner(now: datetime.datetime) -> str:
    return (
        f"DEV/TEST material made by `greenwave certs init` on {_iso(now)}.\n"
        "NOT FOR PRODUCTION: the CA that issued these certificates is a development CA."
    )


def _comment(text: str) -> list[str]:
    return [f"# {line}".rstrip() for line in text.splitlines()]


def render_mosquitto_conf(
    *, port: int, cafile: str, certfile: str, keyfile: str, acl_file: str, banner: str
) -> str:
    """A mosquitto (2.0) TLS listener that requires a client certificate, with the ACL."""
    lines = [
        "# greenwave: a mosquitto TLS listener that requires client certificates.",
        *_comment(banner),
        "#",
        "# Every client presents a certificate issued by `cafile`; its CN becomes the MQTT",
        "# user name (use_identity_as_username), which the ACL file works with: a device's",
        f'# CN is its device id, central\'s is "{CENTRAL_CN}". A client without such a',
        "# certificate is refused in the TLS handshake.",
        "# Use it as it is (mosquitto -c THIS-FILE) or drop it into /etc/mosquitto/conf.d/.",
        "# mosquitto's default per_listener_settings false makes acl_file apply to every",
        "# listener of the broker: anonymous clients on another listener get no topics.",
        "# Started as root, mosquitto switches to user mosquitto, which must be able to",
        "# read the files below (keys are mode 0600): run it as their owner, or chown them.",
        "",
        f"listener {port}",
        f"cafile {cafile}",
        f"certfile {certfile}",
        f"keyfile {keyfile}",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        f"acl_file {acl_file}",
    ]
    return "\n".join(lines) + "\n"


#: Where the examples in ``certs/`` put the broker's files.
EXAMPLE_DIR: Final = "/etc/mosquitto/certs"
EXAMPLE_BANNER: Final = (
    "Example with production paths (certs/mosquitto-tls.conf.example in greenwave's\n"
    "sources): the files come from the city's PKI, the ACL is mosquitto.acl.example."
)


def example_mosquitto_conf() -> str:
    """``certs/mosquitto-tls.conf.example``: the generated listener, with production paths."""
    return render_mosquitto_conf(
        port=DEFAULT_BROKER_PORT,
        cafile=f"{EXAMPLE_DIR}/ca.pem",
        certfile=f"{EXAMPLE_DIR}/broker.pem",
        keyfile=f"{EXAMPLE_DIR}/broker.key",
        acl_file="/etc/mosquitto/greenwave.acl",
        banner=EXAMPLE_BANNER,
    )


def render_mosquitto_acl() -> str:
    """Who may publish and subscribe where (SPEC §4): central and each device, nothing more."""
    lines = [
        "# greenwave: mosquitto acl_file. User names are certificate CNs",
        "# (use_identity_as_username): a device's is its device id, written %u below.",
        "",
        f"# central: commands and heartbeats out, telemetry in (CN {CENTRAL_CN})",
        f"user {CENTRAL_CN}",
        "topic write greenwave/v1/+/cmd",
        "topic write greenwave/v1/group/+/cmd",
        "topic write greenwave/v1/central/heartbeat",
        "topic read greenwave/v1/+/ack",
        "topic read greenwave/v1/+/state",
        "topic read greenwave/v1/+/online",
        "topic read greenwave/v1/+/spat",
        "topic read greenwave/v1/+/events",
        "",
        "# every device: its own commands, group commands and heartbeats in; its own",
        "# telemetry out. No device can read another's commands or publish as another.",
        "pattern read greenwave/v1/%u/cmd",
        "pattern read greenwave/v1/group/+/cmd",
        "pattern read greenwave/v1/central/heartbeat",
        "pattern write greenwave/v1/%u/ack",
        "pattern write greenwave/v1/%u/state",
        "pattern write greenwave/v1/%u/online",
        "pattern write greenwave/v1/%u/spat",
        "pattern write greenwave/v1/%u/events",
    ]
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    # A JSON string with only these escapes is a TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def render_agent_toml(
    *,
    device: str,
    host: str,
    port: int,
    ca_file: str,
    cert_file: str,
    key_file: str,
    banner: str,
) -> str:
    """An agent config with ``[device]`` and a mutual-TLS ``[mqtt]`` (other sections: defaults)."""
    lines = [
        f"# greenwave agent config for device {device}: the MQTT link with mutual TLS.",
        *_comment(banner),
        "# Merge [mqtt] into /etc/greenwave/agent.toml (with the paths where the files are",
        "# on the device), then: greenwave certs check --config /etc/greenwave/agent.toml",
        "",
        "[device]",
        f"id = {_toml_string(device)}",
        "",
        "[mqtt]",
        f"host = {_toml_string(host)}",
        f"port = {port}",
        "tls = true",
        f"ca_file = {_toml_string(ca_file)}",
        f"cert_file = {_toml_string(cert_file)}",
        f"key_file = {_toml_string(key_file)}",
    ]
    return "\n".join(lines) + "\n"


def _next_steps(
    spec: DevBundleSpec,
    *,
    now: datetime.datetime,
    conf: str,
    provision: dict[str, list[list[str]]],
    central_send: list[str],
) -> str:
    out = spec.out
    lines = [
        "greenwave certificates and keys",
        "",
        _banner(now),
        f"Anyone holding {out / CA_KEY} can issue certificates this broker accepts.",
        "Production uses the city's PKI: see certs/README.md in the greenwave sources.",
        "",
        "1. The broker (mosquitto 2.0), TLS on port "
        f"{spec.broker_port}, client certificates required:",
        f"     mosquitto -c {shlex.quote(conf)}",
        "",
        "2. Each device: copy its folder to the cabinet, merge the [mqtt] section of its",
        "   agent.toml into /etc/greenwave/agent.toml (paths as on the device), check it,",
        "   and trust the command-signing keys (as root, on the device):",
    ]
    for device, commands in provision.items():
        lines += [
            "",
            f"   {device} ({out / device_dir(device)}):",
            f"     greenwave certs check --config {shlex.quote(str(out / device_dir(device)))}"
            "/agent.toml",
        ]
        lines += [f"     {shlex.join(argv)}" for argv in commands]
    lines += [
        "",
        "3. Central signs with central/command.key and connects with central/central.pem:",
        f"     {shlex.join(central_send)}",
        "",
        "4. root/root.key signs keys.update only (rotating command keys): move it offline.",
        "   ca/ca.key never leaves this machine. Private keys are mode 0600.",
    ]
    return "\n".join(lines) + "\n"


# -- writing --------------------------------------------------------------------------------------


def existing_files(out: Path, files: Iterable[BundleFile]) -> list[Path]:
    """Files of the layout already in ``out``."""
    return [out / f.path for f in files if (out / f.path).exists()]


def write_bundle(out: Path, files: Sequence[BundleFile], *, force: bool) -> None:
    """Write every file under ``out``; refuse (before writing anything) to overwrite without force.

    New folders are mode 0700; private keys 0600 whatever the umask; each file is
    written to a temporary name, fsync'd and renamed into place.
    """
    if not force:
        found = existing_files(out, files)
        if found:
            shown = ", ".join(str(p.relative_to(out)) for p in found[:4])
            more = f" and {len(found) - 4} more" if len(found) > 4 else ""
            raise PkiError(
                f"{out} already holds {shown}{more}: keys are never overwritten "
                "(--force replaces them all; certificates issued from the old CA stop working)"
            )
    try:
        for entry in files:
            path = out / entry.path
            _make_dirs(path.parent)
            _write_atomically(path, entry.data, entry.mode)
    except OSError as err:
        raise PkiError(f"cannot write in {out}: {err.strerror or err}") from err


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each new one mode 0700."""
    missing = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


# -- reading and describing -------------------------------------------------------------------


def read_limited(path: Path) -> bytes:
    """A certificate or key file's bytes (PkiError when unreadable or implausibly large)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PEM_BYTES + 1)
    except OSError as err:
        raise PkiError(f"{path}: cannot read: {err.strerror or err}") from err
    if len(data) > MAX_PEM_BYTES:
        raise PkiError(f"{path}: larger than {MAX_PEM_BYTES // 1024} KiB: not a certificate")
    return data


def is_private_key(data: bytes) -> bool:
    """Whether the bytes hold a PEM private key."""
    return b"PRIVATE KEY-----" in data


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, or the one DER certificate."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as err:
        what = "a private key" if is_private_key(data) else "no certificate (PEM or DER)"
        raise PkiError(f"{source}: {what}") from err
    return certs


PrivateKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def load_private_key(data: bytes, source: str) -> PrivateKey:
    """An unencrypted PEM private key (the agent cannot use an encrypted one)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as err:
        raise PkiError(f"{source}: the key is encrypted; the agent needs it unencrypted") from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise PkiError(f"{source}: not a PEM private key") from err
    if not isinstance(
        key,
        ec.EllipticCurvePrivateKey
        | rsa.RSAPrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise PkiError(f"{source}: a {type(key).__name__}, not a TLS key")
    return key


def public_key_sha256(key: PrivateKey | x509.Certificate) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, hex: equal for a certificate and its key."""
    public: CertificatePublicKeyTypes = key.public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, as ``openssl x509 -fingerprint -sha256`` prints it."""
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def key_description(key: object) -> str:
    """``EC P-256``, ``RSA 2048``, ``Ed25519`` …"""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


@dataclass(frozen=True, kw_only=True)
class CertSummary:
    """What a technician wants to know about one certificate."""

    subject: str
    issuer: str
    common_name: str | None
    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    sans: tuple[str, ...]
    is_ca: bool
    usages: tuple[str, ...]
    key: str
    fingerprint: str
    public_key_sha256: str
    self_signed: bool


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "server auth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "client auth",
}


_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a malformed extension: shown as absent, judged elsewhere
        return None


def common_name(cert: x509.Certificate) -> str | None:
    """The subject's CN (the MQTT user name with use_identity_as_username)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def summarize(cert: x509.Certificate) -> CertSummary:
    """Subject, issuer, names, validity, usage and fingerprints of one certificate."""
    sans: list[str] = []
    alt = _extension(cert, x509.SubjectAlternativeName)
    if alt is not None:
        sans += [f"DNS:{n}" for n in alt.get_values_for_type(x509.DNSName)]
        sans += [f"IP:{ip}" for ip in alt.get_values_for_type(x509.IPAddress)]
        sans += [f"URI:{u}" for u in alt.get_values_for_type(x509.UniformResourceIdentifier)]
        sans += [f"email:{e}" for e in alt.get_values_for_type(x509.RFC822Name)]
    constraints = _extension(cert, x509.BasicConstraints)
    eku = _extension(cert, x509.ExtendedKeyUsage)
    usages = (
        tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)
        if eku is not None
        else ("any (no extended key usage)",)
    )
    return CertSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=common_name(cert),
        serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=tuple(sans),
        is_ca=constraints is not None and constraints.ca,
        usages=usages,
        key=key_description(cert.public_key()),
        fingerprint=fingerprint(cert),
        public_key_sha256=public_key_sha256(cert),
        self_signed=cert.subject == cert.issuer,
    )


# -- checking what an agent will use ----------------------------------------------------------


class Level(enum.StrEnum):
    """How one finding of :func:`check_client_files` reads."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One line of ``certs check``: which item, how it looks, why."""

    level: Level
    item: str
    detail: str


def validity_finding(
    item: str, cert: x509.Certificate, *, now: datetime.datetime, warn_days: int
) -> Finding:
    """Expired or not yet valid: fail; ending within ``warn_days``: warn."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    name = common_name(cert) or cert.subject.rfc4514_string()
    if now < start:
        return Finding(
            level=Level.FAIL,
            item=item,
            detail=f"{name}: not valid before {_human(start)} (is this device's clock right?)",
        )
    if now >= end:
        return Finding(level=Level.FAIL, item=item, detail=f"{name}: EXPIRED on {_human(end)}")
    left = end - now
    days = left.days
    if left < datetime.timedelta(days=warn_days):
        return Finding(
            level=Level.WARN,
            item=item,
            detail=f"{name}: expires {_human(end)}, in {days} day(s): renew it",
        )
    return Finding(level=Level.OK, item=item, detail=f"{name}: valid until {_human(end)}")


def chain_problem(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    now: datetime.datetime,
) -> str | None:
    """Why ``leaf`` does not chain to one of ``roots`` (None when it does).

    Each link is checked by signature and name; each issuer must be a CA and
    valid at ``now``. Revocation is not checked (the broker's job).
    """
    current = leaf
    pool = [*intermediates, *roots]
    for _ in range(8):
        candidates = [c for c in pool if c.subject == current.issuer and c != current]
        if not candidates:
            return f"its issuer ({current.issuer.rfc4514_string()}) is not in the CA file"
        issuer = _first_signer(current, candidates)
        if issuer is None:
            return f"not signed by the CA named {current.issuer.rfc4514_string()} in the CA file"
        constraints = _extension(issuer, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            return f"its issuer {issuer.subject.rfc4514_string()} is not a CA certificate"
        if not issuer.not_valid_before_utc <= now < issuer.not_valid_after_utc:
            return f"its issuing CA {issuer.subject.rfc4514_string()} is not valid now"
        if any(issuer == root for root in roots):
            return None
        current = issuer
    return "the chain is longer than 8 certificates"


def _first_signer(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def _mode_finding(item: str, path: Path) -> Finding | None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o007:
        return Finding(
            level=Level.WARN,
            item=item,
            detail=f"{path} is readable by every user (mode {mode:04o}): chmod 0600 or 0640",
        )
    return None


def check_client_files(
    *,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    device_id: str | None = None,
    now: datetime.datetime,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> list[Finding]:
    """Judge the TLS files of an agent's ``[mqtt]`` section, as the link will use them.

    ``ca_file`` verifies the broker (None: the system store) and, in the usual
    layout, issued the client certificate too. ``device_id``, when given, is
    compared with the certificate's CN (the ACL's user name).
    """
    findings: list[Finding] = []
    roots: list[x509.Certificate] = []
    if ca_file is None:
        findings.append(
            Finding(
                level=Level.OK,
                item="ca_file",
                detail="not set: the broker is verified against the system's CA store",
            )
        )
    else:
        try:
            roots = load_certificates(read_limited(ca_file), str(ca_file))
        except PkiError as err:
            findings.append(Finding(level=Level.FAIL, item="ca_file", detail=str(err)))
        else:
            for cert in roots:
                finding = validity_finding("ca_file", cert, now=now, warn_days=warn_days)
                if finding.level is Level.OK:
                    finding = Finding(
                        level=Level.OK,
                        item="ca_file",
                        detail=f"{ca_file}: {finding.detail}",
                    )
                findings.append(finding)

    if cert_file is None or key_file is None:
        findings.append(
            Finding(
                level=Level.WARN,
                item="cert_file",
                detail="no client certificate: a broker that requires one refuses the agent",
            )
        )
        return findings

    chain: list[x509.Certificate] = []
    try:
        chain = load_certificates(read_limited(cert_file), str(cert_file))
    except PkiError as err:
        findings.append(Finding(level=Level.FAIL, item="cert_file", detail=str(err)))
    key: PrivateKey | None = None
    try:
        key = load_private_key(read_limited(key_file), str(key_file))
    except PkiError as err:
        findings.append(Finding(level=Level.FAIL, item="key_file", detail=str(err)))

    if chain:
        leaf = chain[0]
        validity = validity_finding("cert_file", leaf, now=now, warn_days=warn_days)
        if validity.level is Level.OK:
            validity = Finding(
                level=Level.OK, item="cert_file", detail=f"{cert_file}: {validity.detail}"
            )
        findings.append(validity)
        eku = _extension(leaf, x509.ExtendedKeyUsage)
        if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            findings.append(
                Finding(
                    level=Level.FAIL,
                    item="cert_file",
                    detail="not a client certificate (its extended key usage lacks client auth)",
                )
            )
        name = common_name(leaf)
        if device_id is not None and name != device_id:
            findings.append(
                Finding(
                    level=Level.WARN,
                    item="cert_file",
                    detail=f"CN {name!r} is not the device id {device_id!r}: a broker that "
                    "takes the CN as user name (use_identity_as_username) applies the ACL "
                    "of another user",
                )
            )
        if roots:
            problem = chain_problem(leaf, chain[1:], roots, now=now)
            findings.append(
                Finding(level=Level.OK, item="chain", detail="cert_file was issued by ca_file")
                if problem is None
                else Finding(
                    level=Level.FAIL,
                    item="chain",
                    detail=f"cert_file does not chain to ca_file: {problem} (fine only if "
                    "the broker trusts another CA for client certificates)",
                )
            )
    if chain and key is not None:
        if public_key_sha256(chain[0]) == public_key_sha256(key):
            detail = f"{key_file}: {key_description(key)}, matches cert_file"
            findings.append(Finding(level=Level.OK, item="key_file", detail=detail))
        else:
            findings.append(
                Finding(
                    level=Level.FAIL,
                    item="key_file",
                    detail=f"{key_file} is not the key of {cert_file}",
                )
            )
    mode = _mode_finding("key_file", key_file)
    if mode is not None:
        findings.append(mode)

    if not any(f.level is Level.FAIL for f in findings):
        # What the link itself does (MqttLink._tls_context): OpenSSL must load them too.
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ValueError) as err:
            findings.append(
                Finding(level=Level.FAIL, item="openssl", detail=f"cannot load them: {err}")
            )
        else:
            findings.append(
                Finding(level=Level.OK, item="openssl", detail="loads them as the agent does")
            )
    return findings
