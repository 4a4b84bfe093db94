"""The trust store: provisioning (the API behind ``greenwave keys``), persistence, damage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.central.commands import Code, CommandRejected, Role
from agent.central.durable import StateFileError
from agent.central.signing import SigningKey
from agent.central.trust import (
    TrustedKey,
    TrustStore,
    TrustStoreError,
    key_thumbprint,
    parse_public_key,
)
from tests.central.world import ISSUER, T0, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> TrustStore:
    return TrustStore.open(tmp_path / "trust.json", clock=clock)


def _key(kid: str | None = None, role: Role = Role.COMMAND, **kw: float) -> TrustedKey:
    signing = SigningKey.generate()
    return TrustedKey.from_public_key(
        signing.public_pem(), iss=ISSUER, role=role, kid=kid, not_after=kw.get("not_after")
    )


# -- key material ---------------------------------------------------------------------


def test_public_key_in_every_accepted_form() -> None:
    key = SigningKey.generate()
    raw = key.private_key.public_key().public_bytes_raw()
    expected = key.public_key_b64
    assert parse_public_key(key.public_pem()) == expected
    assert parse_public_key(key.public_pem().decode()) == expected
    assert parse_public_key(expected) == expected
    assert parse_public_key(expected + "\n") == expected
    assert parse_public_key(raw) == expected
    import base64

    assert parse_public_key(base64.b64encode(raw).decode()) == expected


@pytest.mark.parametrize(
    ("material", "message"),
    [
        pytest.param(SigningKey.generate().private_pem(), "PRIVATE key", id="private-key-refused"),
        pytest.param(
            rsa.generate_private_key(public_exponent=65537, key_size=1024)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "not an Ed25519 key",
            id="rsa-key-refused",
        ),
        pytest.param("AAAA", "32 bytes", id="too-short"),
        pytest.param("not base64 at all!", "not an Ed25519 public key", id="garbage"),
        pytest.param(
            b"-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n", "PEM", id="broken-pem"
        ),
    ],
)
def test_bad_key_material_is_refused(material: bytes | str, message: str) -> None:
    with pytest.raises(TrustStoreError, match=message):
        parse_public_key(material)


def test_kid_defaults_to_the_rfc7638_thumbprint() -> None:
    signing = SigningKey.generate()
    key = TrustedKey.from_public_key(signing.public_key_b64, iss=ISSUER, role=Role.ROOT)
    assert key.kid == key.fingerprint == key_thumbprint(signing.public_key_b64) == signing.kid
    assert len(key.kid) == 43


def test_invalid_entries_are_refused() -> None:
    signing = SigningKey.generate()
    with pytest.raises(TrustStoreError, match="kid"):
        TrustedKey(kid="has space", iss=ISSUER, role=Role.ROOT, public_key=signing.public_key_b64)
    with pytest.raises(TrustStoreError):
        TrustedKey(kid="k", iss=ISSUER, role=Role.ROOT, public_key="short")


def test_public_pem_round_trips() -> None:
    key = _key("k1")
    assert parse_public_key(key.public_pem()) == key.public_key


# -- list / add / remove -------------------------------------------------------------------


def test_add_list_remove_and_persist(tmp_path: Path, store: TrustStore, clock: FakeClock) -> None:
    root, cmd = _key("root-1", Role.ROOT), _key("cmd-1", not_after=T0 + 3600)
    store.add(cmd)
    store.add(root)
    assert [k.kid for k in store.list_keys()] == ["root-1", "cmd-1"]
    reopened = TrustStore.open(tmp_path / "trust.json", clock=clock)
    assert reopened.list_keys() == store.list_keys()
    assert reopened.get("cmd-1") == cmd
    assert reopened.remove("cmd-1") == cmd
    assert [k.kid for k in TrustStore.open(tmp_path / "trust.json", clock=clock).list_keys()] == [
        "root-1"
    ]


def test_add_refuses_duplicates_and_expired_keys(store: TrustStore, clock: FakeClock) -> None:
    first = _key("k1")
    store.add(first)
    with pytest.raises(TrustStoreError, match="already trusted"):
        store.add(_key("k1"))
    with pytest.raises(TrustStoreError, match=r"already trusted as 'k1'"):
        store.add(TrustedKey(kid="k2", iss=ISSUER, role=Role.ROOT, public_key=first.public_key))
    with pytest.raises(TrustStoreError, match="expired"):
        store.add(_key("k3", not_after=clock.now - 1))
    with pytest.raises(TrustStoreError, match="no key"):
        store.remove("nope")


def test_lookup(store: TrustStore, clock: FakeClock) -> None:
    store.add(_key("k1", not_after=clock.now + 10))
    assert store.lookup("k1").kid == "k1"
    clock.advance(10)
    with pytest.raises(CommandRejected) as caught:
        store.lookup("k1")
    assert caught.value.code is Code.E_UNKNOWN_KEY
    assert "expired" in caught.value.detail
    with pytest.raises(CommandRejected) as unknown:
        store.lookup("k" * 500)
    assert unknown.value.code is Code.E_UNKNOWN_KEY
    assert len(unknown.value.detail) < 100


def test_a_change_by_another_process_is_seen_on_the_next_lookup(
    tmp_path: Path, store: TrustStore, clock: FakeClock
) -> None:
    store.add(_key("k1"))
    cli = TrustStore.open(tmp_path / "trust.json", clock=clock, watch=False)
    cli.add(_key("k2"))
    assert store.lookup("k2").kid == "k2"
    cli.remove("k1")
    with pytest.raises(CommandRejected):
        store.lookup("k1")


def test_the_documented_file_format(tmp_path: Path, store: TrustStore) -> None:
    key = _key("k1", Role.ROOT)
    store.add(key)
    envelope = json.loads((tmp_path / "trust.json").read_text())
    assert envelope["greenwave_state"] == 1
    assert envelope["kind"] == "trust-store"
    assert envelope["body"] == {
        "command_keys_version": 0,
        "keys": [
            {
                "kid": "k1",
                "iss": ISSUER,
                "role": "root",
                "alg": "Ed25519",
                "public_key": key.public_key,
                "not_after": None,
                "source": "local",
            }
        ],
    }


# -- damage -------------------------------------------------------------------------------


def test_missing_file_is_an_empty_store(tmp_path: Path, clock: FakeClock) -> None:
    store = TrustStore.open(tmp_path / "trust.json", clock=clock)
    assert store.list_keys() == ()
    assert store.command_keys_version == 0


def test_a_corrupt_store_falls_back_to_its_backup_and_says_so(
    tmp_path: Path, store: TrustStore, clock: FakeClock
) -> None:
    store.add(_key("k1"))
    store.add(_key("k2"))
    path = tmp_path / "trust.json"
    path.write_bytes(path.read_bytes()[:50])
    reopened = TrustStore.open(path, clock=clock)
    assert [k.kid for k in reopened.list_keys()] == ["k1"]  # the backup is one write older
    assert reopened.loaded_from_backup is not None


def test_a_store_with_no_good_copy_is_an_error_never_empty(
    tmp_path: Path, store: TrustStore, clock: FakeClock
) -> None:
    store.add(_key("k1"))
    store.add(_key("k2"))
    path = tmp_path / "trust.json"
    path.write_text("{}")
    path.with_name("trust.json.bak").write_bytes(b"\x00" * 100)
    with pytest.raises(StateFileError, match=r"trust\.json"):
        TrustStore.open(path, clock=clock)


def test_a_running_store_that_becomes_unreadable_trusts_nothing(
    tmp_path: Path, store: TrustStore
) -> None:
    store.add(_key("k1"))
    store.add(_key("k2"))
    path = tmp_path / "trust.json"
    path.write_text("garbage")
    path.with_name("trust.json.bak").write_text("garbage")
    with pytest.raises(CommandRejected) as caught:
        store.lookup("k1")
    assert caught.value.code is Code.E_UNKNOWN_KEY
