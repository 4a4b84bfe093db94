"""Signed commands found by the long fuzz run (bench/fuzz.py) that once escaped the verifier.

A correctly signed command whose claims or args hold a key such as ``"["``
made the schema-problem formatter raise IndexError (the key was taken for a
pydantic union-branch tag and dropped): the verifier must reject it with
E_SCHEMA like any other unknown field, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.central.commands import Code, CommandRejected
from tests.central.world import World, sign_payload


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param({"[": 1}, "[", id="claim named '['"),
        pytest.param({"int": 1}, "int", id="claim named 'int'"),
        pytest.param({"args": {"pattern": 1, "[": 0}}, "args.[", id="arg named '['"),
    ],
)
def test_unknown_key_like_a_union_branch_is_rejected_with_e_schema(
    tmp_path: Path, change: dict[str, object], where: str
) -> None:
    world = World(state_dir=tmp_path)
    claims = {**world.claims("control.pattern"), **change}
    token = sign_payload(world.command, json.dumps(claims).encode())
    with pytest.raises(CommandRejected) as caught:
        world.verifier.verify(token, remember=False)
    assert caught.value.code is Code.E_SCHEMA
    assert where in caught.value.detail
