"""The wire contract: codes, acks, settings, the signing side, and the layering of agent.central."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.central.commands import (
    COMMANDS,
    Ack,
    AckStatus,
    Code,
    CommandRejected,
    CommandSettings,
    PlanLoadArgs,
    Role,
    check_plan_safety,
)
from agent.central.signing import SigningKey, sign_command
from agent.plan.limits import SiteLimits
from tests.central.world import DEVICE, ISSUER, T0, World, plan_doc

REPO = Path(__file__).resolve().parents[2]


def test_the_codes_are_spec_section_4s() -> None:
    assert [c.value for c in Code] == [
        "OK", "E_SIGNATURE", "E_UNKNOWN_KEY", "E_ROLE", "E_EXPIRED", "E_NOT_YET_VALID",
        "E_REPLAY", "E_AUDIENCE", "E_SCHEMA", "E_UNSAFE", "E_STALE_VERSION", "E_NO_PLAN",
        "E_OVERRIDE", "E_CLOCK", "E_CONTROLLER", "E_RATE",
    ]  # fmt: skip
    assert [s.value for s in AckStatus] == ["accepted", "applied", "rejected", "failed"]


def test_roles_of_the_commands() -> None:
    assert {name: spec.role for name, spec in COMMANDS.items()} == {
        "heartbeat": Role.COMMAND,
        "plan.load": Role.COMMAND,
        "control.pattern": Role.COMMAND,
        "control.release": Role.COMMAND,
        "keys.update": Role.ROOT,
        "diag.request": Role.COMMAND,
    }
    assert [name for name, spec in COMMANDS.items() if spec.broadcast] == ["heartbeat"]


def test_a_rejection_becomes_an_ack(world: World) -> None:
    with pytest.raises(CommandRejected) as caught:
        world.run(world.token(aud="cabinet-18"))
    ack = Ack.rejected(DEVICE, caught.value, ts=T0)
    payload = json.loads(ack.to_bytes())
    assert set(payload) == {"device", "jti", "cmd", "status", "code", "detail", "ts"}
    assert payload["status"] == "rejected"
    assert payload["code"] == "E_AUDIENCE"
    assert payload["cmd"] == "control.pattern"
    assert Ack.model_validate_json(ack.to_bytes()) == ack
    assert Ack.model_validate(payload) == ack


def test_an_ack_for_garbage_has_no_jti() -> None:
    ack = Ack.rejected(DEVICE, CommandRejected(Code.E_SCHEMA, "not a token\nsecond line"), ts=T0)
    assert ack.jti is None
    assert ack.detail == "not a token second line"


def test_an_accepted_ack() -> None:
    ack = Ack(
        device=DEVICE, jti="j1", cmd="plan.load", status=AckStatus.APPLIED, code=Code.OK, ts=T0
    )
    assert json.loads(ack.to_bytes())["status"] == "applied"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"skew_s": -1}, id="negative-skew"),
        pytest.param({"max_lifetime_s": 0}, id="zero-lifetime"),
        pytest.param({"max_token_bytes": 10}, id="tiny-token-limit"),
        pytest.param({"replay_capacity": 1}, id="tiny-replay-memory"),
    ],
)
def test_settings_are_checked(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be within"):
        CommandSettings(**changes)  # type: ignore[arg-type]


def test_settings_change_what_is_accepted(tmp_path: Path) -> None:
    world = World(state_dir=tmp_path, settings=CommandSettings(skew_s=0, max_lifetime_s=30))
    now = int(world.clock.now)
    with pytest.raises(CommandRejected) as caught:
        world.run(world.token(iat=now, exp=now + 31))
    assert caught.value.code is Code.E_EXPIRED
    with pytest.raises(CommandRejected) as ahead:
        world.run(world.token(iat=now + 1, exp=now + 20))
    assert ahead.value.code is Code.E_NOT_YET_VALID


def test_plan_safety_uses_the_site_limits() -> None:
    args = PlanLoadArgs.model_validate({"plan": plan_doc()})
    assert check_plan_safety(args, SiteLimits()).ok
    with pytest.raises(CommandRejected) as caught:
        check_plan_safety(args, SiteLimits(min_yellow=4.0), jti="j1")
    assert caught.value.code is Code.E_UNSAFE
    assert caught.value.jti == "j1"
    assert "YELLOW_MIN" in caught.value.detail


# -- signing side -------------------------------------------------------------------------


def test_signing_keys_round_trip_through_pem() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_pem(key.private_pem())
    assert again.kid == key.kid
    assert again.public_key_b64 == key.public_key_b64
    locked = SigningKey.from_pem(key.private_pem(b"secret"), password=b"secret", kid="k")
    assert (locked.kid, locked.public_key_b64) == ("k", key.public_key_b64)
    assert "private_key" not in repr(key)


def test_a_non_ed25519_private_key_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="Ed25519"):
        SigningKey.from_pem(pem)


def test_sign_command_claims(world: World) -> None:
    token = sign_command(
        world.command,
        iss=ISSUER,
        aud=[DEVICE, "cabinet-18"],
        cmd="control.pattern",
        args={"pattern": "free"},
        now=world.clock.now + 0.7,
        lifetime_s=120,
        nbf=world.clock.now,
        jti="my-id",
    )
    verified = world.verifier.verify(token)
    assert (verified.jti, verified.iat, verified.exp, verified.nbf) == ("my-id", T0, T0 + 120, T0)
    assert verified.aud == (DEVICE, "cabinet-18")


# -- layering ------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


#: The command-security core: synchronous, no network. (The MQTT link, the
#: outbox and the central-side client beside them are async by nature.)
_SECURITY_CORE = ("commands", "jws", "trust", "replay", "durable", "signing", "topics")


@pytest.mark.parametrize(
    "path", [REPO / "agent" / "central" / f"{name}.py" for name in _SECURITY_CORE], ids=str
)
def test_command_security_stays_in_its_layer(path: Path) -> None:
    """No MQTT, no asyncio, no controller, no simulator in the command-security core."""
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in {"aiomqtt", "paho", "asyncio", "firmware_sim", "serial"}, name
        if top == "agent":
            assert name.split(".")[1] in {"central", "plan", "errors", "logs"}, name
