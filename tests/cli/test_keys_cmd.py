"""``greenwave keys``: the trust store provisioned by hand, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.central.commands import Role
from agent.central.signing import SigningKey
from agent.central.trust import TrustedKey, TrustStore, key_thumbprint
from agent.cli.keys_cmd import parse_moment
from tests.cli.conftest import REPO, RunCli

ISSUER = "tms.example-city"
DAY = 86_400


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


@pytest.fixture
def config(tmp_path: Path, state: Path) -> Path:
    """A minimal agent config whose [state] dir is the test's state dir."""
    path = tmp_path / "agent.toml"
    path.write_text(f'[device]\nid = "cabinet-17"\n\n[state]\ndir = "{state}"\n')
    return path


def public_file(tmp_path: Path, key: SigningKey, *, form: str = "pem") -> Path:
    path = tmp_path / f"{key.kid}.{form}"
    path.write_bytes(key.public_pem() if form == "pem" else key.public_key_b64.encode() + b"\n")
    return path


def add(
    greenwave: RunCli, where: list[str], key_file: Path, *, kid: str, role: str, extra: list[str]
) -> subprocess.CompletedProcess[str]:
    return greenwave(
        "keys", "add", *where, "--kid", kid, "--issuer", ISSUER, "--role", role, *extra,
        str(key_file),
    )  # fmt: skip


def listing(greenwave: RunCli, where: list[str]) -> dict[str, object]:
    result = greenwave("keys", "list", "--json", *where)
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def provision(state: Path, *keys: tuple[SigningKey, Role]) -> None:
    """Keys put in place directly (the verbs under test are elsewhere)."""
    store = TrustStore.open(state / "trust.json", clock=time.time)
    for key, role in keys:
        expiry = None if role == Role.ROOT else time.time() + DAY
        store.add(
            TrustedKey.from_public_key(
                key.public_pem(), iss=ISSUER, role=role, kid=key.kid, not_after=expiry
            )
        )


def stored(state: Path) -> dict[str, TrustedKey]:
    return {k.kid: k for k in TrustStore.open(state / "trust.json", clock=time.time).list_keys()}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_add_and_list_through_the_config(greenwave: RunCli, tmp_path: Path, config: Path) -> None:
    command, root = SigningKey.generate("cmd-1"), SigningKey.generate("root-1")
    where = ["--config", str(config)]

    added = add(
        greenwave, where, public_file(tmp_path, command), kid="cmd-1", role="command",
        extra=["--not-after", "+30"],
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert key_thumbprint(command.public_key_b64) in added.stdout
    added = add(
        greenwave, where, public_file(tmp_path, root, form="b64"), kid="root-1", role="root",
        extra=[],
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "expires never" in added.stdout

    document = listing(greenwave, where)
    assert document["format"] == 1
    assert document["trust_store"] == str(tmp_path / "state" / "trust.json")
    assert document["command_keys_version"] == 0
    keys = document["keys"]
    assert isinstance(keys, list)
    assert [k["kid"] for k in keys] == ["root-1", "cmd-1"]  # root keys first
    first, second = keys
    assert set(second) == {
        "kid", "iss", "role", "alg", "not_after", "not_after_iso", "expired", "fingerprint",
        "public_key", "source",
    }  # fmt: skip
    assert first["role"] == "root"
    assert first["not_after"] is None
    assert second["role"] == "command"
    assert second["iss"] == ISSUER
    assert second["alg"] == "Ed25519"
    assert second["public_key"] == command.public_key_b64
    assert second["fingerprint"] == key_thumbprint(command.public_key_b64)
    assert second["expired"] is False
    assert second["source"] == "local"
    assert abs(second["not_after"] - (time.time() + 30 * DAY)) < 120

    text = greenwave("keys", "list", *where)
    assert text.returncode == 0
    header, *rows = text.stdout.splitlines()
    assert header.endswith("2 key(s), command keys version 0")
    assert key_thumbprint(root.public_key_b64) in text.stdout
    assert all(len(line) <= 80 for line in rows)


def test_list_marks_expired_keys(greenwave: RunCli, state: Path) -> None:
    long_ago = 1_600_000_000.0
    store = TrustStore.open(state / "trust.json", clock=lambda: long_ago)
    key = SigningKey.generate("old-1")
    store.add(
        TrustedKey.from_public_key(
            key.public_pem(), iss=ISSUER, role=Role.COMMAND, kid="old-1", not_after=long_ago + DAY
        )
    )
    text = greenwave("keys", "list", "--state-dir", str(state))
    assert "2020-09-14 12:26:40Z  EXPIRED" in text.stdout


def test_add_reads_stdin(tmp_path: Path, state: Path) -> None:
    key = SigningKey.generate("cmd-1")
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "keys", "add", "--state-dir", str(state),
         "--kid", "cmd-1", "--iss", ISSUER, "--role", "command", "--not-after", "2100-01-01", "-"],
        input=key.public_key_b64,
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "expires 2100-01-01 00:00:00Z" in result.stdout


def _private_forms(key: SigningKey) -> list[pytest.ParameterSet]:
    raw_private = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": key.public_key_b64,
        "d": SigningKey.generate().public_key_b64,  # any 43 chars: it is the 'd' that matters
    }
    return [
        pytest.param(key.private_pem(), raw_private, id="pkcs8-pem"),
        pytest.param(key.private_pem(b"secret"), raw_private, id="encrypted-pem"),
        pytest.param(json.dumps(jwk).encode(), jwk["d"].encode(), id="jwk-with-d"),
    ]


_KEY = SigningKey.generate("cmd-1")


@pytest.mark.parametrize(("content", "secret"), _private_forms(_KEY))
def test_a_private_key_is_refused_and_never_stored(
    greenwave: RunCli, tmp_path: Path, state: Path, content: bytes, secret: bytes
) -> None:
    path = tmp_path / "oops.key"
    path.write_bytes(content)
    result = add(
        greenwave, ["--state-dir", str(state)], path, kid="cmd-1", role="command",
        extra=["--not-after", "+30"],
    )  # fmt: skip
    assert "PRIVATE key" in one_line_error(result)
    assert not (state / "trust.json").exists()
    for stored in state.iterdir():
        assert secret not in stored.read_bytes()


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param("2027-01-01", 1798761600.0, id="date-is-midnight-utc"),
        pytest.param("2027-01-01T08:30Z", 1798792200.0, id="utc"),
        pytest.param("2027-01-01T09:30:00+01:00", 1798792200.0, id="offset"),
        pytest.param("2027-01-01 08:30", 1798792200.0, id="no-zone-is-utc"),
        pytest.param("1798761600", 1798761600.0, id="epoch"),
        pytest.param("+2", 1000.0 + 2 * DAY, id="plus-days"),
        pytest.param("+90s", 1090.0, id="plus-seconds"),
        pytest.param("+1.5h", 1000.0 + 5400, id="plus-hours"),
    ],
)
def test_moments_people_type(when: str, expected: float) -> None:
    assert parse_moment(when, now=1000.0, relative_unit="d") == expected


@pytest.mark.parametrize("when", ["tomorrow", "2027-13-01", "+-5", "+5y", "", "1e9"])
def test_moments_that_are_not(when: str) -> None:
    with pytest.raises(ValueError, match="not a date or time"):
        parse_moment(when, now=1000.0, relative_unit="d")


@pytest.mark.parametrize(
    ("when", "why"),
    [
        pytest.param("2027-13-01", "--not-after: not a date or time", id="month-13"),
        pytest.param("2020-01-01", "already past", id="past"),
    ],
)
def test_bad_expiry_dates_are_refused(
    greenwave: RunCli, tmp_path: Path, state: Path, when: str, why: str
) -> None:
    result = add(
        greenwave, ["--state-dir", str(state)], public_file(tmp_path, _KEY), kid="cmd-1",
        role="command", extra=["--not-after", when],
    )  # fmt: skip
    assert why in one_line_error(result)
    assert not (state / "trust.json").exists()


def test_a_command_key_needs_an_expiry(greenwave: RunCli, tmp_path: Path, state: Path) -> None:
    result = add(
        greenwave, ["--state-dir", str(state)], public_file(tmp_path, _KEY), kid="cmd-1",
        role="command", extra=[],
    )  # fmt: skip
    assert "needs an expiry" in one_line_error(result)


def test_duplicates_are_refused_unless_replaced(
    greenwave: RunCli, tmp_path: Path, state: Path
) -> None:
    where = ["--state-dir", str(state)]
    first, second = SigningKey.generate("k"), SigningKey.generate("b")
    provision(state, (first, Role.COMMAND))
    expiry = ["--not-after", "+10"]

    again = add(greenwave, where, public_file(tmp_path, second), kid="k", role="command",
                extra=expiry)  # fmt: skip
    assert "already trusted (--replace replaces it)" in one_line_error(again)
    same_key = add(greenwave, where, public_file(tmp_path, first), kid="k2", role="command",
                   extra=expiry)  # fmt: skip
    assert "already trusted as 'k'" in one_line_error(same_key)
    assert stored(state)["k"].public_key == first.public_key_b64

    replaced = add(greenwave, where, public_file(tmp_path, second), kid="k", role="command",
                   extra=[*expiry, "--replace"])  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.startswith("replaced command key k")
    assert list(stored(state)) == ["k"]
    assert stored(state)["k"].public_key == second.public_key_b64


def test_the_last_root_key_stays_unless_forced(
    greenwave: RunCli, tmp_path: Path, state: Path
) -> None:
    where = ["--state-dir", str(state)]
    root_a, root_b = SigningKey.generate("root-a"), SigningKey.generate("root-b")
    provision(state, (root_a, Role.ROOT), (root_b, Role.ROOT), (_KEY, Role.COMMAND))

    removed = greenwave("keys", "remove", *where, "root-a")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("removed root key root-a")

    refused = greenwave("keys", "remove", *where, "root-b")
    line = one_line_error(refused)
    assert "last usable root key" in line
    assert "no keys.update could be verified" in line
    assert "--force" in line
    demoted = add(greenwave, where, public_file(tmp_path, root_b), kid="root-b", role="command",
                  extra=["--not-after", "+1", "--replace"])  # fmt: skip
    assert "last usable root key" in one_line_error(demoted)
    assert sorted(stored(state)) == ["cmd-1", "root-b"]

    forced = greenwave("keys", "remove", *where, "root-b", "--force")
    assert forced.returncode == 0
    assert "no usable root key is left" in forced.stderr
    assert list(stored(state)) == ["cmd-1"]


def test_removing_an_unknown_kid_is_an_error(greenwave: RunCli, state: Path) -> None:
    provision(state, (_KEY, Role.COMMAND))
    result = greenwave("keys", "remove", "--state-dir", str(state), "nope")
    assert "no key with kid 'nope'" in one_line_error(result)
    assert list(stored(state)) == ["cmd-1"]


def test_without_a_config_or_state_dir_nothing_is_guessed(
    greenwave: RunCli, tmp_path: Path
) -> None:
    result = greenwave("keys", "list", env={"GREENWAVE_CONFIG": str(tmp_path / "missing.toml")})
    assert result.returncode == 2
    assert "missing.toml: no such file" in result.stderr
    missing_dir = add(
        greenwave, ["--state-dir", str(tmp_path / "nowhere")], public_file(tmp_path, _KEY),
        kid="cmd-1", role="command", extra=["--not-after", "+1"],
    )  # fmt: skip
    assert "does not exist" in one_line_error(missing_dir)
