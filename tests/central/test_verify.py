"""Signed commands: what is accepted, and every way one is refused (issue 5, acceptance 1-2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.jwk import OctKey

from agent.central.commands import (
    Code,
    CommandRejected,
    ControlPatternArgs,
    HeartbeatArgs,
    KeysUpdateArgs,
    PlanLoadArgs,
    Role,
)
from agent.central.signing import SigningKey, new_jti, sign_command
from agent.central.trust import TrustedKey
from agent.plan.limits import SiteLimits
from tests.central.world import (
    DEVICE,
    ISSUER,
    T0,
    World,
    b64,
    forge,
    plan_doc,
    sign_payload,
)

# -- accepted ------------------------------------------------------------------------


def test_a_command_signed_by_another_jose_library_verifies(world: World) -> None:
    """Acceptance 1: central may sign with PyJWT; the agent verifies with joserfc."""
    claims = world.claims()
    token = jwt.encode(
        claims,
        world.command.private_key,
        algorithm="EdDSA",
        headers={"kid": world.command.kid, "typ": "greenwave-cmd+jws"},
    )
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    verified = world.verifier.verify(token)
    assert verified.jti == claims["jti"]
    assert verified.kid == "cmd-1"
    assert verified.iss == ISSUER
    assert verified.args_as(ControlPatternArgs).pattern == 1
    assert verified.args_as(ControlPatternArgs).lease_s == 600


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA"])
def test_both_alg_names_verify(world: World, alg: Literal["Ed25519", "EdDSA"]) -> None:
    token = world.command.sign_claims(world.claims(), alg=alg)
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert world.verifier.verify(token).cmd == "control.pattern"


def test_our_signing_side_verifies_in_pyjwt_too(world: World) -> None:
    token = sign_command(
        world.command, iss=ISSUER, aud=DEVICE, cmd="heartbeat", now=world.clock.now, alg="EdDSA"
    )
    public = world.command.private_key.public_key()
    claims = jwt.decode(
        token,
        public,
        algorithms=["EdDSA"],
        audience=DEVICE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},  # signed at the fake clock's time
    )
    assert claims["cmd"] == "heartbeat"
    assert jwt.get_unverified_header(token)["typ"] == "greenwave-cmd+jws"


def test_every_command_with_its_arguments(world: World) -> None:
    for cmd, model in [
        ("heartbeat", HeartbeatArgs),
        ("control.pattern", ControlPatternArgs),
        ("control.release", None),
        ("diag.request", None),
        ("plan.load", PlanLoadArgs),
        ("keys.update", KeysUpdateArgs),
    ]:
        verified = world.run(world.token(cmd))
        assert verified.cmd == cmd
        if model is not None:
            assert isinstance(verified.args, model)
    with pytest.raises(TypeError):
        world.run(world.token("heartbeat")).args_as(PlanLoadArgs)


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(DEVICE, id="device-id"),
        pytest.param(["cabinet-1", DEVICE, "cabinet-99"], id="group-list"),
        pytest.param("*", id="broadcast-heartbeat"),
        pytest.param(["*"], id="broadcast-in-a-list"),
    ],
)
def test_audiences_a_heartbeat_accepts(world: World, aud: str | list[str]) -> None:
    assert world.verifier.verify(world.token("heartbeat", aud=aud)).aud


@pytest.mark.parametrize(
    ("iat", "exp", "nbf", "later"),
    [
        pytest.param(-60, 0, None, 29, id="expired-29s-ago-within-skew"),
        pytest.param(29, 89, None, 0, id="issued-29s-ahead-within-skew"),
        pytest.param(0, 60, 29, 0, id="nbf-29s-ahead-within-skew"),
        pytest.param(0, 300, None, 0, id="lifetime-exactly-the-maximum"),
    ],
)
def test_clock_skew_is_tolerated(
    world: World, iat: int, exp: int, nbf: int | None, later: int
) -> None:
    now = int(world.clock.now)
    token = world.token(iat=now + iat, exp=now + exp, nbf=None if nbf is None else now + nbf)
    world.clock.advance(later)
    world.verifier.verify(token)


def test_fractional_numeric_dates_are_accepted(world: World) -> None:
    now = world.clock.now + 0.25
    token = world.token(iat=now, exp=now + 59.5)
    assert world.verifier.verify(token).exp == now + 59.5


def test_surrounding_whitespace_and_bytes_input(world: World) -> None:
    token = world.token()
    assert world.verifier.verify(b"\n" + token.encode() + b"\r\n").cmd == "control.pattern"


# -- the rejection table (acceptance 2) -----------------------------------------------

Case = Callable[[World], str | bytes]


def _replayed(world: World) -> str:
    token = world.token()
    world.run(token)
    return token


def _replayed_after_restart(world: World) -> str:
    token = world.token()
    world.run(token)
    world.restart()
    return token


def _replayed_heartbeat(world: World) -> str:
    token = world.token("heartbeat")
    world.run(token)
    return token


def _forged(world: World) -> str:
    impostor = SigningKey.generate(world.command.kid)
    return world.token(key=impostor)


def _flipped_signature(world: World) -> str:
    head, body, sig = world.token().split(".")
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    return f"{head}.{body}.{flipped}"


def _swapped_payload(world: World) -> str:
    head, _, sig = world.token().split(".")
    other = world.claims(args={"pattern": "flash"})
    return f"{head}.{b64(json.dumps(other).encode())}.{sig}"


def _unknown_kid(world: World) -> str:
    return world.token(key=SigningKey.generate("cmd-9"))


def _expired_key(world: World) -> str:
    key = SigningKey.generate("cmd-old")
    world.verifier.trust.add(
        TrustedKey(
            kid=key.kid, iss=ISSUER, role=Role.COMMAND, public_key=key.public_key_b64,
            not_after=world.clock.now + 10,
        )
    )  # fmt: skip
    world.clock.advance(11)
    return world.token(key=key)


def _other_issuer(world: World) -> str:
    return world.token(iss="tms.other-city")


def _root_signs_control(world: World) -> str:
    return world.token("control.pattern", key=world.root)


def _command_key_signs_keys_update(world: World) -> str:
    return world.token("keys.update", key=world.command)


def _expired(world: World) -> str:
    token = world.token()
    world.clock.advance(60 + 30)
    return token


def _not_yet_valid(world: World) -> str:
    now = int(world.clock.now)
    return world.token(iat=now + 31, exp=now + 91)


def _nbf_future(world: World) -> str:
    now = int(world.clock.now)
    return world.token(nbf=now + 31, exp=now + 120)


def _too_long_lived(world: World) -> str:
    now = int(world.clock.now)
    return world.token(iat=now, exp=now + 301)


def _exp_before_iat(world: World) -> str:
    now = int(world.clock.now)
    return world.token(iat=now, exp=now - 1)


def _alg_none(world: World) -> str:
    header = {"alg": "none", "kid": world.command.kid, "typ": "greenwave-cmd+jws"}
    return forge(header, json.dumps(world.claims()).encode())


def _alg_none_no_signature(world: World) -> str:
    header = {"alg": "none", "kid": world.command.kid, "typ": "greenwave-cmd+jws"}
    head, body, _ = forge(header, json.dumps(world.claims()).encode()).split(".")
    return f"{head}.{body}."


def _hs256_public_key_as_secret(world: World) -> str:
    secret = world.command.private_key.public_key().public_bytes_raw()
    return jwt.encode(
        world.claims(),
        secret,
        algorithm="HS256",
        headers={"kid": world.command.kid, "typ": "greenwave-cmd+jws"},
    )


def _hs256_via_joserfc(world: World) -> str:
    secret = OctKey.import_key(world.command.public_key_b64.encode())
    header = {"alg": "HS256", "kid": world.command.kid, "typ": "greenwave-cmd+jws"}
    return jws.serialize_compact(header, json.dumps(world.claims()), secret)


def _rs256(world: World) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        world.claims(), key, algorithm="RS256",
        headers={"kid": world.command.kid, "typ": "greenwave-cmd+jws"},
    )  # fmt: skip


def _es256(world: World) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(
        world.claims(), key, algorithm="ES256",
        headers={"kid": world.command.kid, "typ": "greenwave-cmd+jws"},
    )  # fmt: skip


def _pyjwt_default_typ(world: World) -> str:
    return jwt.encode(
        world.claims(), world.command.private_key, algorithm="EdDSA",
        headers={"kid": world.command.kid},
    )  # fmt: skip


def _wrong_typ(world: World) -> str:
    return world.command.sign_claims(world.claims(), typ="JWT")


def _embedded_jwk(world: World) -> str:
    attacker = SigningKey.generate(world.command.kid)
    header = {
        "alg": "EdDSA", "kid": world.command.kid, "typ": "greenwave-cmd+jws",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": attacker.public_key_b64},
    }  # fmt: skip
    return forge(header, json.dumps(world.claims()).encode())


def _no_kid(world: World) -> str:
    return forge({"alg": "EdDSA", "typ": "greenwave-cmd+jws"}, json.dumps(world.claims()).encode())


def _oversized_token(world: World) -> str:
    return "A" * (256 * 1024 + 1)


def _oversized_signed(world: World) -> str:
    return world.token("heartbeat", args={"pad": "x" * (200 * 1024)})


def _truncated_signature(world: World) -> str:
    return world.token()[:-10]


def _truncated_to_two_segments(world: World) -> str:
    token = world.token()
    return token[: token.rindex(".")]


def _truncated_in_header(world: World) -> str:
    return world.token()[:20]


def _garbage_text(world: World) -> str:
    return "this is not a token"


def _garbage_bytes(world: World) -> bytes:
    return bytes(range(256))


def _three_garbage_segments(world: World) -> str:
    return "a.b.c"


def _empty(world: World) -> str:
    return ""


def _non_ascii(world: World) -> str:
    return world.token() + "é"


def _claims_not_json(world: World) -> str:
    return sign_payload(world.command, b"{not json")


def _claims_a_list(world: World) -> str:
    return sign_payload(world.command, b"[1, 2]")


def _claims_with_duplicate_key(world: World) -> str:
    body = json.dumps(world.claims())[:-1] + ', "cmd": "keys.update"}'
    return sign_payload(world.command, body.encode())


def _unknown_command(world: World) -> str:
    return world.token("controller.reboot", args={})


def _missing_jti(world: World) -> str:
    return world.token(jti=None)


def _long_jti(world: World) -> str:
    return world.token(jti="j" * 65)


def _unknown_claim(world: World) -> str:
    return world.token(sub="someone")


def _iat_as_string(world: World) -> str:
    return world.token(iat=str(int(world.clock.now)))


def _plan_with_typo(world: World) -> str:
    doc = plan_doc()
    doc["phases"][1]["yelow"] = doc["phases"][1].pop("yellow")
    return world.token("plan.load", args={"plan": doc})


def _pattern_out_of_range(world: World) -> str:
    return world.token(args={"pattern": 254})


def _lease_zero(world: World) -> str:
    return world.token(args={"pattern": 1, "lease_s": 0})


def _pattern_as_string(world: World) -> str:
    return world.token(args={"pattern": "1"})


def _heartbeat_with_args(world: World) -> str:
    return world.token("heartbeat", args={"extra": 1})


def _keys_update_with_root_role(world: World) -> str:
    entry = {"kid": "k2", "iss": ISSUER, "role": "root", "alg": "Ed25519",
             "public_key": world.command.public_key_b64, "not_after": T0 + 1000}  # fmt: skip
    return world.token("keys.update", args={"version": 1, "keys": [entry]})


def _unsafe_plan(world: World) -> str:
    doc = plan_doc()
    doc["phases"][1]["yellow"] = 2.5
    return world.token("plan.load", args={"plan": doc})


def _stale_plan(world: World) -> str:
    world.verifier.plan_version.record(5)
    return world.token("plan.load", args={"plan": plan_doc(version=5)})


def _stale_keys_update(world: World) -> str:
    world.verifier.trust.apply_update(KeysUpdateArgs(version=3, keys=[]))
    return world.token("keys.update", args={"version": 3, "keys": []})


def _other_device(world: World) -> str:
    return world.token(aud="cabinet-18")


def _list_without_us(world: World) -> str:
    return world.token(aud=["cabinet-1", "cabinet-2"])


def _broadcast_control(world: World) -> str:
    return world.token(aud="*")


def _broadcast_plan_in_list(world: World) -> str:
    return world.token("plan.load", aud=["*", DEVICE])


def _empty_audience(world: World) -> str:
    return world.token(aud=[])


REJECTIONS = [
    pytest.param(_forged, Code.E_SIGNATURE, id="forged-signature"),
    pytest.param(_flipped_signature, Code.E_SIGNATURE, id="signature-altered"),
    pytest.param(_swapped_payload, Code.E_SIGNATURE, id="claims-altered-after-signing"),
    pytest.param(_unknown_kid, Code.E_UNKNOWN_KEY, id="unknown-kid"),
    pytest.param(_expired_key, Code.E_UNKNOWN_KEY, id="expired-key"),
    pytest.param(_other_issuer, Code.E_SIGNATURE, id="key-of-another-issuer"),
    pytest.param(_root_signs_control, Code.E_ROLE, id="root-key-signs-control"),
    pytest.param(_command_key_signs_keys_update, Code.E_ROLE, id="command-key-signs-keys-update"),
    pytest.param(_expired, Code.E_EXPIRED, id="expired"),
    pytest.param(_not_yet_valid, Code.E_NOT_YET_VALID, id="iat-in-the-future"),
    pytest.param(_nbf_future, Code.E_NOT_YET_VALID, id="nbf-in-the-future"),
    pytest.param(_too_long_lived, Code.E_EXPIRED, id="too-long-lived"),
    pytest.param(_exp_before_iat, Code.E_SCHEMA, id="exp-before-iat"),
    pytest.param(_replayed, Code.E_REPLAY, id="replayed-jti"),
    pytest.param(_replayed_after_restart, Code.E_REPLAY, id="replayed-jti-after-restart"),
    pytest.param(_replayed_heartbeat, Code.E_REPLAY, id="replayed-heartbeat"),
    pytest.param(_other_device, Code.E_AUDIENCE, id="wrong-audience"),
    pytest.param(_list_without_us, Code.E_AUDIENCE, id="group-list-without-this-device"),
    pytest.param(_broadcast_control, Code.E_AUDIENCE, id="broadcast-control"),
    pytest.param(_broadcast_plan_in_list, Code.E_AUDIENCE, id="broadcast-plan-in-list"),
    pytest.param(_empty_audience, Code.E_SCHEMA, id="empty-audience-list"),
    pytest.param(_alg_none_no_signature, Code.E_SIGNATURE, id="alg-none"),
    pytest.param(_alg_none, Code.E_SIGNATURE, id="alg-none-with-signature"),
    pytest.param(_hs256_public_key_as_secret, Code.E_SIGNATURE, id="hs256-public-key-as-secret"),
    pytest.param(_hs256_via_joserfc, Code.E_SIGNATURE, id="hs256-b64-public-key-as-secret"),
    pytest.param(_rs256, Code.E_SIGNATURE, id="rs256"),
    pytest.param(_es256, Code.E_SIGNATURE, id="es256"),
    pytest.param(_pyjwt_default_typ, Code.E_SCHEMA, id="typ-JWT"),
    pytest.param(_wrong_typ, Code.E_SCHEMA, id="typ-wrong-but-signed"),
    pytest.param(_embedded_jwk, Code.E_SCHEMA, id="header-embeds-a-key"),
    pytest.param(_no_kid, Code.E_SCHEMA, id="no-kid"),
    pytest.param(_oversized_token, Code.E_SCHEMA, id="oversized-token"),
    pytest.param(_oversized_signed, Code.E_SCHEMA, id="oversized-signed-payload"),
    pytest.param(_truncated_signature, Code.E_SIGNATURE, id="truncated-signature"),
    pytest.param(_truncated_to_two_segments, Code.E_SCHEMA, id="truncated-two-segments"),
    pytest.param(_truncated_in_header, Code.E_SCHEMA, id="truncated-in-header"),
    pytest.param(_garbage_text, Code.E_SCHEMA, id="garbage-text"),
    pytest.param(_garbage_bytes, Code.E_SCHEMA, id="garbage-bytes"),
    pytest.param(_three_garbage_segments, Code.E_SCHEMA, id="three-garbage-segments"),
    pytest.param(_empty, Code.E_SCHEMA, id="empty"),
    pytest.param(_non_ascii, Code.E_SCHEMA, id="non-ascii"),
    pytest.param(_claims_not_json, Code.E_SCHEMA, id="claims-not-json"),
    pytest.param(_claims_a_list, Code.E_SCHEMA, id="claims-a-json-list"),
    pytest.param(_claims_with_duplicate_key, Code.E_SCHEMA, id="claims-duplicate-key"),
    pytest.param(_unknown_command, Code.E_SCHEMA, id="unknown-command"),
    pytest.param(_missing_jti, Code.E_SCHEMA, id="missing-jti"),
    pytest.param(_long_jti, Code.E_SCHEMA, id="jti-longer-than-64"),
    pytest.param(_unknown_claim, Code.E_SCHEMA, id="unknown-claim"),
    pytest.param(_iat_as_string, Code.E_SCHEMA, id="iat-a-string"),
    pytest.param(_plan_with_typo, Code.E_SCHEMA, id="plan-with-typo-field"),
    pytest.param(_pattern_out_of_range, Code.E_SCHEMA, id="pattern-254"),
    pytest.param(_pattern_as_string, Code.E_SCHEMA, id="pattern-as-string"),
    pytest.param(_lease_zero, Code.E_SCHEMA, id="lease-zero"),
    pytest.param(_heartbeat_with_args, Code.E_SCHEMA, id="heartbeat-with-args"),
    pytest.param(_keys_update_with_root_role, Code.E_SCHEMA, id="keys-update-carries-root-key"),
    pytest.param(_unsafe_plan, Code.E_UNSAFE, id="unsafe-plan"),
    pytest.param(_stale_plan, Code.E_STALE_VERSION, id="stale-plan-version"),
    pytest.param(_stale_keys_update, Code.E_STALE_VERSION, id="stale-keys-version"),
]


@pytest.mark.parametrize(("make", "code"), REJECTIONS)
def test_rejected_with_its_code(world: World, make: Case, code: Code) -> None:
    token = make(world)
    replay_before = _replay_file(world)
    trust_before = world.verifier.trust.list_keys()
    with pytest.raises(CommandRejected) as caught:
        world.run(token)
    rejection = caught.value
    assert rejection.code == code, rejection.detail
    assert rejection.detail
    assert "\n" not in rejection.detail
    assert len(rejection.detail) < 400
    if code is not Code.E_UNSAFE:
        # Refused by verify(): nothing stored, the command id is not burned.
        assert _replay_file(world) == replay_before
    assert world.verifier.trust.list_keys() == trust_before


def _replay_file(world: World) -> bytes | None:
    path = world.state_dir / "replay.json"
    return path.read_bytes() if path.exists() else None


def test_schema_errors_name_the_field(world: World) -> None:
    with pytest.raises(CommandRejected) as caught:
        world.run(_plan_with_typo(world))
    assert "args.plan.phases[1].yelow" in caught.value.detail
    assert "did you mean 'yellow'" in caught.value.detail


def test_unsafe_plan_names_the_rule_and_burns_the_id(world: World) -> None:
    token = _unsafe_plan(world)
    with pytest.raises(CommandRejected) as caught:
        world.run(token)
    assert caught.value.code is Code.E_UNSAFE
    assert "YELLOW" in caught.value.detail
    assert caught.value.jti is not None
    # The signature was good: the same token cannot be tried again, e.g. after
    # a technician relaxes the site limits.
    world.limits = SiteLimits(min_yellow=3.0)
    with pytest.raises(CommandRejected) as again:
        world.run(token)
    assert again.value.code is Code.E_REPLAY


def test_rejections_after_the_signature_carry_jti_and_cmd(world: World) -> None:
    claims = world.claims(aud="cabinet-18")
    with pytest.raises(CommandRejected) as caught:
        world.run(world.command.sign_claims(claims))
    assert (caught.value.jti, caught.value.cmd) == (claims["jti"], "control.pattern")


def test_rejections_before_the_signature_never_echo_the_token(world: World) -> None:
    claims = world.claims()
    with pytest.raises(CommandRejected) as caught:
        world.run(SigningKey.generate(world.command.kid).sign_claims(claims))
    assert caught.value.jti is None
    assert caught.value.cmd is None


def test_a_not_yet_valid_command_is_accepted_once_it_is_valid(world: World) -> None:
    now = int(world.clock.now)
    token = world.token(iat=now + 60, exp=now + 120)
    with pytest.raises(CommandRejected):
        world.run(token)
    world.clock.advance(60)
    world.run(token)
    with pytest.raises(CommandRejected) as caught:
        world.run(token)
    assert caught.value.code is Code.E_REPLAY


def test_remember_false_checks_without_burning(world: World) -> None:
    token = world.token()
    world.verifier.verify(token, remember=False)
    world.verifier.verify(token, remember=False)
    world.verifier.verify(token)
    with pytest.raises(CommandRejected):
        world.verifier.verify(token, remember=False)


def test_a_wrong_kind_of_token_argument_is_a_rejection(world: World) -> None:
    with pytest.raises(CommandRejected) as caught:
        world.verifier.verify(12345)  # type: ignore[arg-type]
    assert caught.value.code is Code.E_SCHEMA


def test_device_id_is_checked(world: World) -> None:
    from agent.central.jws import CommandVerifier

    with pytest.raises(ValueError, match="device id"):
        CommandVerifier(
            device_id="Not A Device",
            trust=world.verifier.trust,
            replay=world.verifier.replay,
            plan_version=world.verifier.plan_version,
            clock=world.clock,
        )


def test_a_plan_load_of_realistic_size_verifies(world: World) -> None:
    doc = plan_doc(description="x" * 2000)
    token = world.token("plan.load", args={"plan": doc})
    assert 3_000 < len(token) < 256 * 1024
    verified = world.run(token)
    assert verified.args_as(PlanLoadArgs).plan.version == 4


def test_new_jti_is_unique_and_fits() -> None:
    ids = {new_jti() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) <= 64 for i in ids)
