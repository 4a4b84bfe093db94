"""The signing side: Ed25519 key pairs and signed commands.

Used by the reference central tool (``greenwave central``), by
``greenwave certs`` to make command-signing keys, and by tests. The device
itself never signs anything and never holds a private key.

Tokens are made with joserfc, in the one shape the verifier accepts:
header ``{"alg": "Ed25519" | "EdDSA", "kid": …, "typ": "greenwave-cmd+jws"}``
and the claims of SPEC §4. ``Ed25519`` is the default ``alg`` (the fully
specified name of RFC 9864); ``EdDSA`` is what older JOSE libraries write.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.jwk import OKPKey

from agent.central.commands import COMMAND_TYP, encode_public_key
from agent.central.jws import MAX_SIGNATURE_BYTES, PinnedEd25519Registry
from agent.central.trust import key_thumbprint

SigningAlg = Literal["Ed25519", "EdDSA"]

#: Default lifetime of a signed command: short, well inside the device's maximum.
DEFAULT_LIFETIME_S = 60.0

_REGISTRY = PinnedEd25519Registry(max_payload_bytes=16 * 1024 * 1024)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its key id (``kid``)."""

    private_key: Ed25519PrivateKey = field(repr=False)
    kid: str
    _jwk: OKPKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_jwk", OKPKey.import_key(self.private_key))

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        """A new random key; the kid defaults to the public key's RFC 7638 thumbprint."""
        private = Ed25519PrivateKey.generate()
        return cls(private, kid if kid is not None else _thumbprint(private))

    @classmethod
    def from_pem(
        cls, pem: bytes, *, kid: str | None = None, password: bytes | None = None
    ) -> SigningKey:
        """Load a PKCS#8 PEM private key (ValueError when it is not an Ed25519 key)."""
        private = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"not an Ed25519 private key ({type(private).__name__})")
        return cls(private, kid if kid is not None else _thumbprint(private))

    @property
    def public_key_b64(self) -> str:
        """The public key as the trust store and ``keys.update`` hold it (base64url, 43 chars)."""
        return encode_public_key(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    def private_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM of the private key (encrypted when a password is given)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM of the public key (what ``greenwave keys add`` reads)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_claims(
        self,
        claims: Mapping[str, Any],
        *,
        alg: SigningAlg = "Ed25519",
        typ: str = COMMAND_TYP,
    ) -> str:
        """A compact JWS over ``claims`` as given (tests use it for odd claim sets too)."""
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        header = {"alg": alg, "kid": self.kid, "typ": typ}
        token = jws.serialize_compact(
            header, payload.encode("utf-8"), self._jwk, registry=_REGISTRY
        )
        assert len(token.rsplit(".", 1)[1]) <= MAX_SIGNATURE_BYTES
        return token


def _thumbprint(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return key_thumbprint(encode_public_key(raw))


def new_jti() -> str:
    """A fresh random command id (22 base64url characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def sign_command(
    key: SigningKey,
    *,
    iss: str,
    aud: str | Sequence[str],
    cmd: str,
    args: Mapping[str, Any] | None = None,
    now: float,
    lifetime_s: float = DEFAULT_LIFETIME_S,
    jti: str | None = None,
    nbf: float | None = None,
    alg: SigningAlg = "Ed25519",
) -> str:
    """Sign one command (SPEC §4). ``now`` is the signer's clock, seconds since the epoch.

    ``iat`` and ``exp`` are whole seconds (``exp = iat + lifetime_s``).
    """
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud if isinstance(aud, str) else list(aud),
        "jti": jti if jti is not None else new_jti(),
        "iat": iat,
        "exp": iat + int(lifetime_s),
        "cmd": cmd,
        "args": dict(args) if args is not None else {},
    }
    if nbf is not None:
        claims["nbf"] = int(nbf)
    return key.sign_claims(claims, alg=alg)
