"""Key rotation with keys.update (issue 5, acceptance 3)."""

from __future__ import annotations

import pytest

from agent.central.commands import Code, CommandRejected, KeysUpdateArgs, Role
from agent.central.signing import SigningKey
from tests.central.world import World, key_entry


def _rotate(world: World, version: int, *keys: SigningKey) -> None:
    """What the command handler does with a keys.update: verify, then apply."""
    token = world.token(
        "keys.update", args={"version": version, "keys": [key_entry(k) for k in keys]}
    )
    verified = world.verifier.verify(token)
    world.verifier.trust.apply_update(verified.args_as(KeysUpdateArgs))


def _code(world: World, token: str) -> Code:
    try:
        world.run(token)
    except CommandRejected as rejection:
        return rejection.code
    return Code.OK


def test_after_rotation_the_old_key_is_refused_and_the_new_one_accepted(world: World) -> None:
    old, new = world.command, SigningKey.generate("cmd-2")
    assert _code(world, world.token(key=old)) is Code.OK
    _rotate(world, 1, new)
    assert _code(world, world.token(key=old)) is Code.E_UNKNOWN_KEY
    assert _code(world, world.token(key=new)) is Code.OK
    assert world.verifier.trust.command_keys_version == 1

    world.restart()
    assert _code(world, world.token(key=old)) is Code.E_UNKNOWN_KEY
    assert _code(world, world.token(key=new)) is Code.OK
    assert world.verifier.trust.command_keys_version == 1
    assert {k.kid for k in world.verifier.trust.list_keys()} == {"root-1", "cmd-2"}


def test_root_keys_survive_every_rotation(world: World) -> None:
    _rotate(world, 1)
    keys = world.verifier.trust.list_keys()
    assert [(k.kid, k.role) for k in keys] == [("root-1", Role.ROOT)]
    # With no command key left, central can still be given one by the root key.
    _rotate(world, 2, SigningKey.generate("cmd-3"))
    assert [k.kid for k in world.verifier.trust.list_keys()] == ["root-1", "cmd-3"]


def test_versions_must_rise(world: World) -> None:
    _rotate(world, 5, SigningKey.generate("cmd-5"))
    for version in (5, 4):
        token = world.token("keys.update", args={"version": version, "keys": []})
        assert _code(world, token) is Code.E_STALE_VERSION
    world.restart()
    token = world.token("keys.update", args={"version": 5, "keys": []})
    assert _code(world, token) is Code.E_STALE_VERSION


def test_a_replayed_rotation_is_refused_after_restart(world: World) -> None:
    token = world.token(
        "keys.update", args={"version": 1, "keys": [key_entry(SigningKey.generate("cmd-2"))]}
    )
    world.verifier.trust.apply_update(world.verifier.verify(token).args_as(KeysUpdateArgs))
    world.restart()
    assert _code(world, token) in {Code.E_STALE_VERSION, Code.E_REPLAY}


def test_apply_is_atomic_and_rechecks_the_version(world: World) -> None:
    update = KeysUpdateArgs.model_validate(
        {"version": 2, "keys": [key_entry(SigningKey.generate("cmd-2"))]}
    )
    world.verifier.trust.apply_update(update)
    before = (world.state_dir / "trust.json").read_bytes()
    with pytest.raises(CommandRejected) as caught:
        world.verifier.trust.apply_update(update)
    assert caught.value.code is Code.E_STALE_VERSION
    assert (world.state_dir / "trust.json").read_bytes() == before


def test_a_rotation_may_not_reuse_a_root_kid(world: World) -> None:
    clash = SigningKey.generate("root-1")
    update = KeysUpdateArgs.model_validate({"version": 1, "keys": [key_entry(clash)]})
    with pytest.raises(CommandRejected) as caught:
        world.verifier.trust.apply_update(update)
    assert caught.value.code is Code.E_SCHEMA
    assert world.verifier.trust.get("root-1") is not None
    assert world.verifier.trust.get("root-1").role is Role.ROOT  # type: ignore[union-attr]


def test_duplicate_kids_in_one_update_are_a_schema_error(world: World) -> None:
    key = SigningKey.generate("cmd-2")
    token = world.token("keys.update", args={"version": 1, "keys": [key_entry(key)] * 2})
    assert _code(world, token) is Code.E_SCHEMA


def test_rotated_keys_expire(world: World) -> None:
    new = SigningKey.generate("cmd-2")
    token = world.token(
        "keys.update",
        args={"version": 1, "keys": [key_entry(new, not_after=world.clock.now + 100)]},
    )
    world.verifier.trust.apply_update(world.verifier.verify(token).args_as(KeysUpdateArgs))
    assert _code(world, world.token(key=new)) is Code.OK
    world.clock.advance(100)
    assert _code(world, world.token(key=new)) is Code.E_UNKNOWN_KEY
