"""Nothing a token contains can make the verifier do anything but verify or reject."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.central.commands import COMMANDS, CommandRejected
from agent.central.jws import VerifiedCommand
from tests.central.world import DEVICE, ISSUER, World, b64, forge, sign_payload

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _only_rejects(world: World, token: bytes | str) -> None:
    with pytest.raises(CommandRejected) as caught:
        world.verifier.verify(token, remember=False)
    _one_line(caught.value)


def _one_line(rejection: CommandRejected) -> None:
    assert rejection.detail
    assert "\n" not in rejection.detail


def test_random_bytes_are_rejected(tmp_path: Path) -> None:
    world = World(state_dir=tmp_path)

    @FUZZ
    @given(st.binary(max_size=4096))
    def check(data: bytes) -> None:
        _only_rejects(world, data)

    check()


def test_random_text_is_rejected(tmp_path: Path) -> None:
    world = World(state_dir=tmp_path)

    @FUZZ
    @given(st.text(max_size=2048))
    def check(text: str) -> None:
        _only_rejects(world, text)

    check()


def test_random_segments_are_rejected(tmp_path: Path) -> None:
    world = World(state_dir=tmp_path)
    segment = st.binary(max_size=300).map(b64) | st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=300
    )

    @FUZZ
    @given(st.lists(segment, min_size=1, max_size=5))
    def check(segments: list[str]) -> None:
        _only_rejects(world, ".".join(segments))

    check()


def test_random_headers_with_a_trusted_kid_are_rejected(tmp_path: Path) -> None:
    world = World(state_dir=tmp_path)
    headers = st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk", "x"]),
                              json_values, max_size=5)  # fmt: skip

    @FUZZ
    @given(headers, st.booleans(), st.binary(max_size=70))
    def check(header: dict[str, Any], trusted: bool, signature: bytes) -> None:
        if trusted:
            header = {**header, "kid": world.command.kid, "typ": "greenwave-cmd+jws"}
        _only_rejects(world, forge(header, json.dumps(world.claims()).encode(), signature))

    check()


def test_every_one_byte_change_to_a_valid_token_is_rejected(tmp_path: Path) -> None:
    world = World(state_dir=tmp_path)
    token = world.token("plan.load").encode()
    world.verifier.verify(token, remember=False)

    @FUZZ
    @given(st.integers(min_value=0, max_value=len(token) - 1), st.integers(1, 255))
    def check(index: int, delta: int) -> None:
        changed = bytearray(token)
        changed[index] = (changed[index] + delta) % 256
        _only_rejects(world, bytes(changed))

    check()


def test_signed_arbitrary_claims_verify_or_are_rejected(tmp_path: Path) -> None:
    """Even with a good signature, any payload gives a VerifiedCommand or a rejection."""
    world = World(state_dir=tmp_path)
    now = int(world.clock.now)
    plausible = st.fixed_dictionaries(
        {
            "iss": st.sampled_from([ISSUER, "x", ""]) | json_values,
            "aud": st.sampled_from([DEVICE, "*", [DEVICE], []]) | json_values,
            "jti": st.text(max_size=70) | json_values,
            "iat": st.sampled_from([now, now - 10, now + 100]) | json_values,
            "exp": st.sampled_from([now + 60, now - 100, now + 10**6]) | json_values,
            "cmd": st.sampled_from(sorted(COMMANDS)) | st.text(max_size=10),
            "args": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
        },
        optional={"nbf": json_values, "extra": json_values},
    )
    payloads = plausible.map(lambda claims: json.dumps(claims).encode()) | st.binary(max_size=200)

    @FUZZ
    @given(payloads)
    def check(payload: bytes) -> None:
        try:
            verified = world.verifier.verify(sign_payload(world.command, payload), remember=False)
        except CommandRejected as rejection:
            _one_line(rejection)
        else:
            assert isinstance(verified, VerifiedCommand)

    check()
