"""docs/central-integration.md stays true to the code (issue 5).

The integrator's guide is the contract for people who will never read this
code, so what it states as data is checked against the code: every ack code,
command and topic is documented; the PyJWT example (run as written, with a
fresh key) makes tokens the real verifier accepts; documented acks, ``spat``
and ``events`` bodies have the shapes the agent produces; the config tables
list every key with its real default.

Blocks are found by a marker line ``<!-- test: NAME -->`` right before a
fenced code block or a table.
"""

from __future__ import annotations

import base64
import json
import re
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.central.commands import (
    COMMAND_TYP,
    COMMANDS,
    Ack,
    Code,
    ControlPatternArgs,
    Role,
)
from agent.central.jws import CommandVerifier
from agent.central.outbox import Batch, encode_record
from agent.central.signing import SigningKey
from agent.central.topics import HEARTBEAT, ROOT, DeviceTopics, group_cmd
from agent.central.trust import TRUST_FILE, TrustedKey, TrustStore
from agent.config import CentralConfig, MqttConfig
from agent.controller.interface import (
    Alarms,
    ControllerStatus,
    ControlSource,
    FlashState,
    Light,
    PedLight,
    PhaseSignal,
)
from agent.supervisor.telemetry import spat_body

DOC = Path(__file__).resolve().parents[2] / "docs" / "central-integration.md"
TEXT = DOC.read_text(encoding="utf-8")
DEVICE = "main-5th"
ISSUER = "tms.example-city"

Signer = Callable[..., tuple[str, str]]


def marked_block(name: str) -> str:
    """The fenced code block, or the table, right after ``<!-- test: name -->``."""
    marker = f"<!-- test: {name} -->"
    assert TEXT.count(marker) == 1, f"{DOC.name}: expected one {marker!r}"
    after = TEXT.split(marker, 1)[1].lstrip("\n")
    fenced = re.match(r"```[a-z]*\n(.*?)\n```", after, re.DOTALL)
    if fenced is not None:
        return fenced.group(1)
    table = re.match(r"((?:\|[^\n]*\n)+)", after)
    assert table is not None, f"{marker} is followed by neither a code block nor a table"
    return table.group(1)


def table_rows(table: str) -> list[list[str]]:
    """The body rows of a Markdown table, cells stripped (header and rule skipped)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.splitlines()
    ]
    return rows[2:]


def b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# -- everything in the contract is documented ------------------------------------------


@pytest.mark.parametrize("code", list(Code), ids=str)
def test_every_ack_code_has_a_row_in_the_codes_table(code: Code) -> None:
    assert re.search(rf"^\| `{code}` \|", TEXT, re.MULTILINE), f"{code} is not documented"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_section(name: str) -> None:
    assert re.search(rf"^###+ [\d.]* *`{re.escape(name)}`$", TEXT, re.MULTILINE), name


def device_topic_leaves() -> list[str]:
    """Every per-device topic :class:`DeviceTopics` names (found by introspection)."""
    topics = DeviceTopics("dev")
    leaves = []
    for name, member in vars(DeviceTopics).items():
        if isinstance(member, property):
            value = getattr(topics, name)
            if isinstance(value, str) and value.startswith(f"{ROOT}/dev/"):
                leaves.append(value.removeprefix(f"{ROOT}/dev/"))
    return leaves


def test_the_topic_introspection_finds_the_topics() -> None:
    assert {"cmd", "ack", "state", "online", "spat", "events"} <= set(device_topic_leaves())


@pytest.mark.parametrize("leaf", device_topic_leaves())
def test_every_device_topic_is_in_the_topics_table(leaf: str) -> None:
    assert f"\n| `{ROOT}/<dev>/{leaf}` |" in TEXT, leaf


def test_group_and_heartbeat_topics_are_in_the_topics_table() -> None:
    assert group_cmd("g") == f"{ROOT}/group/g/cmd"
    assert f"\n| `{ROOT}/group/<group>/cmd` |" in TEXT
    assert f"\n| `{HEARTBEAT}` |" in TEXT


# -- the PyJWT example, run as written ---------------------------------------------------


def pyjwt_example() -> dict[str, Any]:
    source = marked_block("pyjwt-example")
    assert "import agent" not in source, "it must stand alone"
    assert "from agent" not in source, "it must stand alone"
    namespace: dict[str, Any] = {"__name__": "central_integration_pyjwt_example"}
    exec(compile(source, f"{DOC.name}#pyjwt-example", "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    ("cmd", "aud", "args"),
    [
        ("control.pattern", DEVICE, {"pattern": 3}),
        ("control.pattern", ["main-4th", DEVICE], {"pattern": "free", "lease_s": 600}),
        ("heartbeat", "*", {}),
        ("diag.request", DEVICE, {}),
    ],
    ids=["device", "group-aud", "broadcast-heartbeat", "diag"],
)
def test_the_pyjwt_example_signs_what_the_real_verifier_accepts(
    tmp_path: Path, cmd: str, aud: str | list[str], args: dict[str, Any]
) -> None:
    sign: Signer = pyjwt_example()["sign_command"]
    key = SigningKey.generate("tms-cmd-2026")
    trust = TrustStore.open(tmp_path / TRUST_FILE, clock=time.time)
    trust.add(
        TrustedKey(
            kid=key.kid,
            iss=ISSUER,
            role=Role.COMMAND,
            public_key=key.public_key_b64,
            not_after=time.time() + 3600,
        )
    )
    verifier = CommandVerifier.open(tmp_path, device_id=DEVICE, clock=time.time)

    token, jti = sign(key.private_pem(), kid=key.kid, iss=ISSUER, aud=aud, cmd=cmd, args=args)

    assert b64url_json(token.split(".")[0]) == {"alg": "EdDSA", "kid": key.kid, "typ": COMMAND_TYP}
    verified = verifier.verify(token)
    assert (verified.jti, verified.cmd, verified.iss) == (jti, cmd, ISSUER)
    assert verified.exp - verified.iat == 60
    if cmd == "control.pattern":
        assert verified.args_as(ControlPatternArgs).pattern == args["pattern"]


def test_the_pyjwt_example_publishes_on_the_documented_topics() -> None:
    source = marked_block("pyjwt-example")
    assert 'f"greenwave/v1/{device}/cmd"' in source
    assert 'f"greenwave/v1/{device}/ack"' in source
    assert DeviceTopics(DEVICE).cmd == f"greenwave/v1/{DEVICE}/cmd"
    # Subscribing comes before publishing (acks are not retained).
    assert source.index("client.subscribe(") < source.index("client.publish(")


# -- documented bodies have the agent's shapes -------------------------------------------


def test_documented_acks_are_valid_acks() -> None:
    lines = marked_block("ack").splitlines()
    assert lines
    for line in lines:
        ack = Ack.model_validate_json(line)
        assert json.loads(ack.to_bytes()) == json.loads(line)
        assert (ack.jti is None) == (ack.cmd is None)


def test_the_documented_spat_message_has_the_agent_s_shape() -> None:
    documented = json.loads(marked_block("spat"))
    status = ControllerStatus(
        received_at=0.0,
        phases=(PhaseSignal(phase=2, light=Light.GREEN, ped=PedLight.WALK),),
        pattern=1,
        commanded="standby",
        free_status="not_free",
        cycle_time_s=86,
        control=ControlSource.STANDBY,
        flash=FlashState.NOT_FLASH,
        alarms=Alarms(),
    )
    produced = spat_body(DEVICE, status, ts=1795659417.47)
    assert documented.keys() == produced.keys()
    assert {frozenset(p) for p in documented["phases"]} == {frozenset(produced["phases"][0])}
    assert documented["control"] in {str(c) for c in ControlSource}
    assert documented["flash"] in {str(f) for f in FlashState}
    for phase in documented["phases"]:
        assert phase["light"] in {str(light) for light in Light}
        assert phase["ped"] in {str(ped) for ped in PedLight}


def test_the_documented_events_batch_has_the_outbox_s_shape() -> None:
    documented = json.loads(marked_block("events"))
    events = documented["events"]
    records = tuple(
        encode_record(e["seq"], {k: v for k, v in e.items() if k != "seq"})[9:-1] for e in events
    )
    batch = Batch(
        first_seq=documented["first_seq"], last_seq=documented["last_seq"], records=records
    )
    produced = json.loads(batch.payload(documented["device"]))
    assert list(produced) == list(documented)
    assert produced == documented
    numbers = [e["seq"] for e in events] + [
        n for gap in documented["dropped"] for n in range(gap["from_seq"], gap["to_seq"] + 1)
    ]
    assert sorted(numbers) == list(range(documented["first_seq"], documented["last_seq"] + 1))


# -- the configuration tables --------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "model"), [("config mqtt", MqttConfig), ("config central", CentralConfig)]
)
def test_the_config_tables_list_every_key_with_its_default(
    marker: str, model: type[BaseModel]
) -> None:
    rows = table_rows(marked_block(marker))
    documented = {row[0].strip("`"): row[1] for row in rows}
    assert set(documented) == set(model.model_fields), "keys in the doc vs in the model"
    for key, cell in documented.items():
        default = model.model_fields[key].default
        if cell == "unset":
            assert default is None, key
            continue
        value = tomllib.loads(f"v = {cell.strip('`')}")["v"]
        assert value == default, (key, cell, default)
        assert type(value) is type(default), (key, cell, default)
