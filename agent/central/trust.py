"""The trust store: which Ed25519 keys may sign which commands, for which issuer.

Two kinds of key (:class:`~agent.central.commands.Role`):

* **root** keys are kept offline and sign only ``keys.update``. They are
  provisioned on the device (``greenwave keys add --role root``) and never
  replaced remotely: a compromised command key, or central itself, cannot
  lock the owner out.
* **command** keys are online, held by central, and sign everything else.
  ``keys.update`` (signed by a root key) replaces *all* of them at once, with
  a version that must rise strictly, so an old rotation cannot be replayed to
  bring back a retired key.

Every key has a ``kid``, an issuer (``iss``), a role and an optional expiry
(``not_after``, seconds since the epoch). An expired key is treated as
unknown (``E_UNKNOWN_KEY``): what central must do about it is rotate keys,
which is what that code says; ``E_EXPIRED`` would send it looking at its
token lifetimes instead.

Key material is the 32 raw public key bytes as unpadded base64url (the JWK
``x`` of RFC 8037), in the store and in ``keys.update``; ``greenwave keys add``
also reads PEM (``-----BEGIN PUBLIC KEY-----``). Private keys are refused:
the device never needs one.

On disk: ``<state dir>/trust.json``, a :mod:`durable <agent.central.durable>`
envelope (kind ``trust-store``) whose body is::

    {"command_keys_version": 3,
     "keys": [{"kid": "…", "iss": "…", "role": "root" | "command", "alg": "Ed25519",
               "public_key": "<base64url, 43 chars>", "not_after": 1767225600 | null,
               "source": "local" | "keys.update"}, …]}

A corrupt main file with a good backup is used *and reported* (the backup is
one write older: it may predate the last rotation); no good copy at all is a
:class:`~agent.central.durable.StateFileError`, never an empty store in
disguise. Another process's change (``greenwave keys add`` while the agent
runs) is noticed on the next lookup by the file's inode/mtime/size.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc.jwk import OKPKey
from pydantic import Field, model_validator

from agent.central.commands import (
    ED25519_PUBLIC_KEY_BYTES,
    KEY_ALG,
    Code,
    CommandRejected,
    IssuerId,
    KeyId,
    KeysUpdateArgs,
    NumericDate,
    PublicKeyB64,
    Role,
    StrictModel,
    decode_public_key,
    encode_public_key,
)
from agent.central.durable import DurableFile, Loaded, StateFileError, model_parser, show
from agent.errors import GreenwaveError
from agent.logs import get_logger

TRUST_FILE = "trust.json"
TRUST_KIND = "trust-store"

Clock = Callable[[], float]
KeySource = Literal["local", "keys.update"]

_log = get_logger("central.trust")


class TrustStoreError(GreenwaveError):
    """A local trust-store operation is refused (bad key material, duplicate kid …)."""

    code = "E_KEYS"


# -- the file format ----------------------------------------------------------------


class _KeyRecord(StrictModel):
    kid: KeyId
    iss: IssuerId
    role: Annotated[Role, Field(strict=False)]  # the JSON string, as the enum
    alg: Literal["Ed25519"] = "Ed25519"
    public_key: PublicKeyB64
    not_after: NumericDate | None = None
    source: KeySource = "local"


class _TrustFile(StrictModel):
    command_keys_version: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    keys: list[_KeyRecord] = Field(default_factory=list, max_length=1024)

    @model_validator(mode="after")
    def _unique_kids(self) -> Self:
        kids = [key.kid for key in self.keys]
        if len(kids) != len(set(kids)):
            raise ValueError("a kid is listed twice")
        return self


# -- keys -----------------------------------------------------------------------------


def parse_public_key(data: bytes | str) -> str:
    """Canonical base64url of an Ed25519 public key given as PEM, base64(url) or 32 raw bytes.

    Raises :class:`TrustStoreError` for anything else, and for a private key
    (the device must never hold one; give the public half).
    """
    blob = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    text = blob.strip()
    if b"PRIVATE KEY" in text:
        raise TrustStoreError("this is a PRIVATE key; give the device the public key only")
    if text.startswith(b"-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(text)
        except (ValueError, TypeError) as err:
            raise TrustStoreError(f"not a readable PEM public key: {err}") from err
        if not isinstance(loaded, Ed25519PublicKey):
            raise TrustStoreError(
                f"not an Ed25519 key ({type(loaded).__name__}); commands are signed with Ed25519"
            )
        return encode_public_key(
            loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
    if len(blob) == ED25519_PUBLIC_KEY_BYTES and not _is_base64_text(blob):
        return encode_public_key(blob)
    digits = text.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    try:
        raw = base64.b64decode(digits + b"=" * (-len(digits) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise TrustStoreError(
            "not an Ed25519 public key: give a PEM file or the 32-byte key in base64url"
        ) from err
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise TrustStoreError(
            f"an Ed25519 public key is {ED25519_PUBLIC_KEY_BYTES} bytes, this is {len(raw)}"
        )
    return encode_public_key(raw)


def _is_base64_text(blob: bytes) -> bool:
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="
    return all(byte in alphabet for byte in blob)


def _jwk(public_key: str) -> OKPKey:
    raw = decode_public_key(public_key)
    return OKPKey.import_key(Ed25519PublicKey.from_public_bytes(raw))


def key_thumbprint(public_key: str) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): the default kid and fingerprint."""
    return _jwk(public_key).thumbprint()


@dataclass(frozen=True, kw_only=True)
class TrustedKey:
    """One key the device trusts."""

    kid: str
    iss: str
    role: Role
    #: Unpadded base64url of the 32 raw Ed25519 public key bytes.
    public_key: str
    #: Expiry in seconds since the epoch; None: no expiry (typical for root keys).
    not_after: float | None = None
    #: How it got here: provisioned locally, or by a keys.update.
    source: KeySource = "local"
    alg: str = KEY_ALG
    #: The parsed key, made once (verification must not re-parse it per command).
    jwk: OKPKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            checked = _KeyRecord(
                kid=self.kid,
                iss=self.iss,
                role=Role(self.role),
                public_key=self.public_key,
                not_after=self.not_after,
                source=self.source,
            )
        except ValueError as err:
            raise TrustStoreError(f"not a valid key entry: {_first_problem(err)}") from err
        object.__setattr__(self, "role", checked.role)
        object.__setattr__(self, "jwk", _jwk(self.public_key))

    @classmethod
    def from_public_key(
        cls,
        data: bytes | str,
        *,
        iss: str,
        role: Role,
        kid: str | None = None,
        not_after: float | None = None,
    ) -> TrustedKey:
        """A key from PEM/base64url/raw material (what ``greenwave keys add`` reads)."""
        public_key = parse_public_key(data)
        return cls(
            kid=kid if kid is not None else key_thumbprint(public_key),
            iss=iss,
            role=role,
            public_key=public_key,
            not_after=not_after,
        )

    @property
    def fingerprint(self) -> str:
        """RFC 7638 thumbprint of the key, to compare with central's records."""
        return self.jwk.thumbprint()

    def expired(self, now: float) -> bool:
        """True once ``now`` reaches ``not_after``."""
        return self.not_after is not None and now >= self.not_after

    def public_pem(self) -> bytes:
        """The public key as PEM (SubjectPublicKeyInfo)."""
        raw = decode_public_key(self.public_key)
        return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _record(self) -> dict[str, object]:
        return {
            "kid": self.kid,
            "iss": self.iss,
            "role": str(self.role),
            "alg": self.alg,
            "public_key": self.public_key,
            "not_after": self.not_after,
            "source": self.source,
        }


def _first_problem(err: ValueError) -> str:
    return " ".join(str(err).split())[:200]


# -- the store ----------------------------------------------------------------------


class TrustStore:
    """The device's trusted keys, persistent in ``trust.json`` (see the module docstring)."""

    def __init__(self, file: DurableFile, *, clock: Clock, watch: bool = True) -> None:
        """Prefer :meth:`open`; this makes an empty store over ``file``."""
        self._file = file
        self._clock = clock
        self._watch = watch
        self._keys: dict[str, TrustedKey] = {}
        self._version = 0
        self._signature: tuple[int, int, int] | None = None
        #: Why the last load used the backup copy (None when it did not).
        self.loaded_from_backup: str | None = None

    @classmethod
    def open(cls, path: Path, *, clock: Clock, watch: bool = True) -> TrustStore:
        """Load the store at ``path`` (a missing file is an empty store: first start).

        ``watch``: notice changes made by another process (``greenwave keys``)
        on the next lookup. Raises :class:`StateFileError` when no copy is good.
        """
        store = cls(DurableFile(path, kind=TRUST_KIND, indent=2), clock=clock, watch=watch)
        store._load()
        if not store._keys:
            _log.warning("trust_store_empty", path=str(path))
        return store

    @property
    def path(self) -> Path:
        """The main file."""
        return self._file.path

    @property
    def command_keys_version(self) -> int:
        """Version of the last applied ``keys.update`` (0: none yet)."""
        self._refresh()
        return self._version

    def list_keys(self) -> tuple[TrustedKey, ...]:
        """Every key, root keys first, then by kid."""
        self._refresh()
        return tuple(sorted(self._keys.values(), key=lambda k: (k.role != Role.ROOT, k.kid)))

    def get(self, kid: str) -> TrustedKey | None:
        """The key with this kid, expired or not."""
        self._refresh()
        return self._keys.get(kid)

    def lookup(self, kid: str) -> TrustedKey:
        """The key to verify a command with; E_UNKNOWN_KEY when unknown or expired."""
        self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise CommandRejected(Code.E_UNKNOWN_KEY, f"no trusted key has kid {show(kid)}")
        if key.expired(self._clock()):
            raise CommandRejected(
                Code.E_UNKNOWN_KEY,
                f"key {show(kid)} expired at {key.not_after:.0f}; rotate keys (keys.update)",
            )
        return key

    # -- changes ----------------------------------------------------------------

    def add(self, key: TrustedKey) -> None:
        """Add a key locally (``greenwave keys add``); a duplicate kid is refused."""
        if key.expired(self._clock()):
            raise TrustStoreError(f"key {key.kid} expired already (not_after {key.not_after})")
        with self._file.locked():
            self._load()
            if key.kid in self._keys:
                raise TrustStoreError(f"a key with kid {key.kid!r} is already trusted")
            same = [k.kid for k in self._keys.values() if k.public_key == key.public_key]
            if same:
                raise TrustStoreError(f"this public key is already trusted as {same[0]!r}")
            self._commit({**self._keys, key.kid: replace(key, source="local")}, self._version)
        _log.info("trust_key_added", kid=key.kid, iss=key.iss, role=str(key.role))

    def remove(self, kid: str) -> TrustedKey:
        """Remove a key locally (``greenwave keys remove``); returns it."""
        with self._file.locked():
            self._load()
            key = self._keys.get(kid)
            if key is None:
                raise TrustStoreError(f"no key with kid {kid!r}")
            self._commit({k: v for k, v in self._keys.items() if k != kid}, self._version)
        _log.info("trust_key_removed", kid=kid, role=str(key.role))
        return key

    def check_update_version(self, version: int) -> None:
        """E_STALE_VERSION unless ``version`` is above the applied one."""
        current = self.command_keys_version
        if version <= current:
            raise CommandRejected(
                Code.E_STALE_VERSION,
                f"keys.update version {version} is not newer than the applied version {current}",
                cmd="keys.update",
            )

    def apply_update(self, update: KeysUpdateArgs) -> None:
        """Replace every command key with ``update.keys`` in one durable write.

        Root keys are kept as they are. Raises E_STALE_VERSION for a version
        not above the applied one, E_SCHEMA when a new kid is a root key's.
        Nothing changes unless everything is accepted.
        """
        with self._file.locked():
            self._load()
            self.check_update_version(update.version)
            roots = {kid: key for kid, key in self._keys.items() if key.role == Role.ROOT}
            clash = sorted(roots.keys() & {entry.kid for entry in update.keys})
            if clash:
                raise CommandRejected(
                    Code.E_SCHEMA,
                    f"keys.update reuses root key id(s) {', '.join(clash)}",
                    cmd="keys.update",
                )
            new = {
                entry.kid: TrustedKey(
                    kid=entry.kid,
                    iss=entry.iss,
                    role=Role.COMMAND,
                    public_key=entry.public_key,
                    not_after=entry.not_after,
                    source="keys.update",
                )
                for entry in update.keys
            }
            self._commit({**roots, **new}, update.version)
        _log.info(
            "trust_keys_rotated", version=update.version, command_keys=sorted(new), roots=len(roots)
        )

    # -- persistence --------------------------------------------------------------

    def _commit(self, keys: dict[str, TrustedKey], version: int) -> None:
        body = {
            "command_keys_version": version,
            "keys": [key._record() for key in sorted(keys.values(), key=lambda k: k.kid)],
        }
        self._file.write(body)
        self._keys, self._version = keys, version
        self._signature = self._file.stat_signature()
        self.loaded_from_backup = None

    def _load(self) -> None:
        signature = self._file.stat_signature()
        loaded: Loaded[_TrustFile] = self._file.load(model_parser(_TrustFile))
        content = loaded.value if loaded.value is not None else _TrustFile()
        keys = _keys_from(content.keys)
        self._keys, self._version, self._signature = keys, content.command_keys_version, signature
        self.loaded_from_backup = loaded.problem if loaded.source == "backup" else None

    def _refresh(self) -> None:
        if not self._watch or self._file.stat_signature() == self._signature:
            return
        try:
            self._load()
        except StateFileError as err:
            # Safe side: a store that cannot be read trusts nothing.
            self._keys = {}
            self._signature = self._file.stat_signature()
            _log.error("trust_store_unreadable", path=str(self.path), error=str(err))
        else:
            _log.info("trust_store_reloaded", path=str(self.path), keys=len(self._keys))


def _keys_from(records: Iterable[_KeyRecord]) -> dict[str, TrustedKey]:
    return {
        record.kid: TrustedKey(
            kid=record.kid,
            iss=record.iss,
            role=record.role,
            public_key=record.public_key,
            not_after=record.not_after,
            source=record.source,
        )
        for record in records
    }
