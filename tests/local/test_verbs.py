"""The technician's verbs without an agent: --help, bad arguments, no agent, the diag bundle.

Acceptance 6 of issue 7: every verb has ``--help``; bad arguments give one
line and exit 2; no verb ever prints a traceback. The table runs in-process
(CliRunner: the same Typer app as the console script, milliseconds a case);
a few cases run the real ``greenwave`` process to prove the entry point.
"""

from __future__ import annotations

import json
import os
import socket
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli.verbs import app
from tests.local.conftest import RunCli

SOCKET_VERBS = [["status"], ["watch"], ["override", "--free", "--minutes", "1"], ["release"],
                ["plan", "show"]]  # fmt: skip
VERBS = [["status"], ["watch"], ["override"], ["release"], ["plan", "show"], ["diag"],
         ["diag", "bundle"]]  # fmt: skip


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"GREENWAVE_CONFIG": ""})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: {type(result.exception).__name__}: {result.exception}")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb: list[str]) -> None:
    code, out, _ = invoke(*verb, "--help")
    assert code == 0
    assert "Usage:" in out
    assert all(len(line) <= 80 for line in out.splitlines())


BAD = [
    ["status", "--bogus"],
    ["status", "extra"],
    ["status", "--json=yes"],
    ["watch", "--rate", "0"],
    ["watch", "--rate", "11"],
    ["watch", "--rate", "fast"],
    ["watch", "--count", "-1"],
    ["override"],
    ["override", "--minutes", "5"],
    ["override", "--pattern", "2"],
    ["override", "--pattern", "2", "--flash", "--minutes", "5"],
    ["override", "--free", "--flash", "--minutes", "5"],
    ["override", "--pattern", "0", "--minutes", "5"],
    ["override", "--pattern", "254", "--minutes", "5"],
    ["override", "--pattern", "two", "--minutes", "5"],
    ["override", "--pattern", "2", "--minutes", "0"],
    ["override", "--pattern", "2", "--minutes", "0.001"],
    ["override", "--pattern", "2", "--minutes", "481"],
    ["override", "--pattern", "2", "--minutes", "-5"],
    ["override", "--pattern", "2", "--minutes", "nan"],
    ["override", "--pattern", "2", "--minutes", "inf"],
    ["override", "--pattern", "2", "--minutes", "ten"],
    ["override", "--pattern", "Φ", "--minutes", "∞"],
    ["override", "--free", "--minutes", "5", "now"],
    ["release", "--now"],
    ["release", "all"],
    ["diag", "nosuch"],
    ["diag", "--bogus"],
    ["diag", "bundle", "--log-lines", "-1"],
    ["diag", "bundle", "--log-lines", "lots"],
    ["diag", "bundle", "extra"],
    ["plan", "show", "--bogus"],
    ["plan", "show", "plan.json"],
    ["status", "--socket", ""],
    ["status", "--socket", "/etc/passwd"],
    ["status", "--socket", "/etc/passwd/agent.sock"],
    ["status", "--socket", "/tmp/" + "x" * 300],
    ["status", "--config", "/nonexistent/agent.toml"],
    ["status", "--" + "x" * 5000],
    ["override", "--pattern", "\udcff", "--minutes", "1"],
]


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(a)[:60])
def test_bad_arguments_give_one_line_and_exit_2(args: list[str]) -> None:
    code, out, err = invoke(*args)
    assert code == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("greenwave"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("verb", SOCKET_VERBS, ids=" ".join)
def test_no_agent_is_one_line_and_exit_3(verb: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "agent.sock"
    code, out, err = invoke(*verb, "--socket", str(missing))
    assert (code, out) == (3, "")
    assert err == f"greenwave: the agent is not running (no socket at {missing})\n"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(os.fsencode(missing))  # left by a crashed agent: nobody listens
    code, _, err = invoke(*verb, "--socket", str(missing))
    assert code == 3
    assert "nobody listens" in err
    assert err.count("\n") == 1


def test_the_socket_comes_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[device]\nid = "cab-1"\n[local]\nsocket = "{tmp_path}/gw.sock"\n')
    code, _, err = invoke("status", "--config", str(config))
    assert code == 3
    assert f"no socket at {tmp_path}/gw.sock" in err


def test_the_real_entry_point(greenwave: RunCli, tmp_path: Path) -> None:
    helped = greenwave("override", "--help")
    assert helped.returncode == 0
    assert "--minutes" in helped.stdout
    bad = greenwave("override", "--pattern", "2", "--free", "--minutes", "1")
    assert bad.returncode == 2
    assert bad.stderr == (
        "greenwave override: give exactly one of --pattern N, --free or --flash (see --help)\n"
    )
    missing = greenwave("status", "--socket", str(tmp_path / "none.sock"))
    assert missing.returncode == 3
    assert (
        missing.stderr
        == f"greenwave: the agent is not running (no socket at {tmp_path}/none.sock)\n"
    )
    for done in (helped, bad, missing):
        assert "Traceback" not in done.stdout + done.stderr


def test_the_bundle_holds_no_secret_and_works_without_an_agent(tmp_path: Path) -> None:
    password = tmp_path / "mqtt-password"
    password.write_text("hunter2-password\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[device]
id = "cab-9"
[controller]
url = "udp://10.1.2.3:161?community=s3cret-url"
community = "s3cret-community"
[mqtt]
username = "cab-9"
password_file = "{password}"
tls = true
ca_file = "/etc/greenwave/ca.pem"
cert_file = "/etc/greenwave/device.pem"
key_file = "/etc/greenwave/device.key"
[state]
dir = "{tmp_path / "state"}"
[local]
socket = "{tmp_path / "agent.sock"}"
"""
    )
    out = tmp_path / "bundle.tar.gz"
    code, stdout, err = invoke(
        "diag", "bundle", "--config", str(config), "--out", str(out), "--log-lines", "0"
    )
    assert code == 0, err
    assert stdout.startswith(f"{out}: ")
    assert "left out: live state and diagnostics: the agent is not running" in stdout
    with tarfile.open(out) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers()}
        texts = {}
        for name, member in members.items():
            handle = tar.extractfile(member)
            assert handle is not None
            texts[name] = handle.read().decode()
    everything = "\n".join(texts.values())
    for secret in ("hunter2", "s3cret", str(password)):
        assert secret not in everything, secret
    assert set(texts) == {"README.txt", "config.json", "versions.json"}
    settings = json.loads(texts["config.json"])
    for where in (settings["file"], settings["effective"]):
        assert where["mqtt"]["password_file"] == "<redacted>"
        assert where["mqtt"]["key_file"] == "<redacted>"
        assert where["controller"]["community"] == "<redacted>"
        assert where["controller"]["url"] == "udp://10.1.2.3:161?community=<redacted>"
        assert where["mqtt"]["cert_file"] == "/etc/greenwave/device.pem"
    assert "audit log" in texts["README.txt"]
    assert "trust store" in texts["README.txt"]
