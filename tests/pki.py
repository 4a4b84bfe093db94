"""A throwaway PKI for TLS tests, generated at test time: TEST KEYS ONLY.

Everything here is made fresh for one test in a temporary directory and
thrown away with it; nothing is committed and nothing may ever be used
outside a test. Every subject carries the organisation :data:`TEST_ORG`
("greenwave TEST ONLY") so a stray file is recognisable.

:func:`make_test_pki` writes::

    ca.pem                  TEST root CA (self-signed)
    server.pem, server.key  TEST broker certificate: IP SAN 127.0.0.1, DNS localhost
    client.pem, client.key  TEST device certificate (clientAuth), CN = the client name
    other-ca.pem            a second, unrelated TEST CA (to see verification fail)

Keys are ECDSA P-256 (fast to make), files mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.broker import TlsFiles

TEST_ORG = "greenwave TEST ONLY"


@dataclass(frozen=True)
class ThrowawayPki:
    """Paths of the PEM files :func:`make_test_pki` wrote (TEST keys)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path

    def broker_files(self) -> TlsFiles:
        """What the broker's TLS listener needs."""
        return TlsFiles(ca=self.ca, cert=self.server_cert, key=self.server_key)


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _make_ca(common_name: str) -> tuple[_Issuer, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _Issuer(name=name, key=key), cert


def _make_leaf(
    issuer: _Issuer,
    common_name: str,
    *,
    usage: x509.ObjectIdentifier,
    alt_names: list[x509.GeneralName],
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(common_name), issuer.name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return key, builder.sign(issuer.key, hashes.SHA256())


def _write(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_test_pki(directory: Path, *, client_name: str = "greenwave-test-device") -> ThrowawayPki:
    """Write a fresh TEST CA, broker and client certificate into ``directory`` (a tmp_path)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_cert = _make_ca("TEST greenwave throwaway CA")
    _, other_ca_cert = _make_ca("TEST unrelated throwaway CA")
    server_key, server_cert = _make_leaf(
        ca,
        "TEST mosquitto on 127.0.0.1",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        alt_names=[
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            x509.DNSName("localhost"),
        ],
    )
    client_key, client_cert = _make_leaf(
        ca, client_name, usage=ExtendedKeyUsageOID.CLIENT_AUTH, alt_names=[]
    )
    return ThrowawayPki(
        ca=_write(directory / "ca.pem", _cert_pem(ca_cert)),
        server_cert=_write(directory / "server.pem", _cert_pem(server_cert)),
        server_key=_write(directory / "server.key", _key_pem(server_key)),
        client_cert=_write(directory / "client.pem", _cert_pem(client_cert)),
        client_key=_write(directory / "client.key", _key_pem(client_key)),
        other_ca=_write(directory / "other-ca.pem", _cert_pem(other_ca_cert)),
    )
