"""``greenwave audit`` and ``greenwave audit verify``: read the log, name any tampered entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import structlog
from typer.testing import CliRunner

from agent.cli.audit_cmd import app, parse_since
from agent.errors import GreenwaveError
from agent.supervisor.audit import AUDIT_DIR, AuditLog, Kind
from tests.cli.conftest import RunCli
from tests.supervisor.test_audit import (
    EXPECTED_KIND,
    T0,
    Action,
    FakeClock,
    make_log,
    position,
    tamper,
)


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """In-process CLI runs configure structlog; put the defaults back afterwards."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


@pytest.fixture
def config(tmp_path: Path, state: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[device]\nid = "cabinet-17"\n\n[state]\ndir = "{state}"\n')
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def small_log(directory: Path) -> None:
    clock = FakeClock()
    with AuditLog.open(directory, clock=clock) as audit:
        audit.append(Kind.AGENT, event="started", version="0.1.0")
        clock.now += 60
        audit.append(Kind.MODE, durable=True, mode="local", previous="fault", reason="link up")
        clock.now += 60
        audit.note_rejection("E_SIGNATURE", "the signature does not verify")
        audit.append(Kind.COMMAND, cmd="control.pattern", jti="c-1", outcome="accepted", code="OK")
        clock.now += 3600
        audit.append(Kind.TECHNICIAN, action="override", pattern=3, duration_s=1800)


# -- through the real command, as a technician would -------------------------------------------


def test_show_and_verify_find_the_log_through_the_config(
    greenwave: RunCli, config: Path, state: Path
) -> None:
    small_log(state / AUDIT_DIR)
    shown = greenwave("audit", "-c", str(config))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 5
    assert lines[1].split()[2:5] == ["2", "mode", "mode=local"]
    assert 'reason="link up"' in lines[1]
    checked = greenwave("audit", "verify", "-c", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "5 entries, chain intact (seq 1 to 5; head seq 5 hash " in checked.stdout


def test_a_tampered_log_fails_verify_naming_the_entry(greenwave: RunCli, tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    make_log(directory, "one-file")
    seq = tamper(directory, "delete", 6)
    result = greenwave("audit", "verify", "--dir", str(directory))
    assert result.returncode == 1
    first = result.stdout.splitlines()[0]
    assert first == (
        f"entry {seq} (audit-00000000000000000001.log line 7) was removed: "
        "entry 8 follows entry 6 here"
    )


def test_no_log_there_is_one_line_and_exit_2(greenwave: RunCli, tmp_path: Path) -> None:
    result = greenwave("audit", "verify", "--dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"greenwave: no audit log at {tmp_path}/nowhere"]
    result = greenwave("audit")
    assert result.returncode == 2
    assert "give --config PATH or --dir DIR" in result.stderr


# -- the tamper table, in process ----------------------------------------------------------------


@pytest.mark.parametrize("action", ["edit", "rewrite", "delete", "swap"])
@pytest.mark.parametrize(
    ("layout", "where"),
    [
        ("one-file", "first"),
        ("one-file", "middle"),
        ("one-file", "last"),
        ("rotated", "first"),
        ("rotated", "boundary"),
        ("rotated", "last"),
    ],
)
def test_verify_exits_1_naming_each_tampered_entry(
    tmp_path: Path, layout: Literal["one-file", "rotated"], where: str, action: Action
) -> None:
    directory = tmp_path / "audit"
    make_log(directory, layout)
    assert run("verify", "--dir", str(directory))[0] == 0
    seq = tamper(directory, action, position(directory, where, action))
    code, out, _ = run("verify", "--dir", str(directory))
    assert code == 1
    assert out.startswith(f"entry {seq} (audit-"), out
    code, out, _ = run("verify", "--json", "--dir", str(directory))
    document = json.loads(out)
    assert code == 1
    assert document["ok"] is False
    assert (document["problem"]["kind"], document["problem"]["seq"]) == (
        EXPECTED_KIND[action],
        seq,
    )


# -- showing ---------------------------------------------------------------------------------------


def test_show_filters_and_counts(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    small_log(directory)
    code, out, _ = run("--dir", str(directory), "-n", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "… 3 earlier entries (-n 0 shows all)"
    assert [line.split()[2] for line in lines[1:]] == ["4", "5"]
    code, out, _ = run("--dir", str(directory), "--kind", "mode", "--kind", "technician")
    assert [line.split()[3] for line in out.splitlines()] == ["mode", "technician"]
    code, out, _ = run("--dir", str(directory), "--since", str(T0 + 100))
    assert [line.split()[2] for line in out.splitlines()] == ["3", "4", "5"]
    code, out, _ = run("--dir", str(directory), "--since", str(T0 + 99_999))
    assert (code, out.strip()) == (0, f"{directory}: no entries match")


def test_show_json_gives_the_entries_as_stored(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    small_log(directory)
    code, out, _ = run("--dir", str(directory), "--json", "-n", "0")
    document = json.loads(out)
    assert code == 0
    assert document["format"] == 1
    assert document["matched"] == 5
    stored = [
        json.loads(line) for line in next(directory.glob("audit-*.log")).read_text().splitlines()
    ]
    assert document["entries"] == stored


def test_verify_json_on_an_intact_log(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    small_log(directory)
    code, out, _ = run("verify", "--json", "--dir", str(directory))
    document = json.loads(out)
    assert code == 0
    assert (document["ok"], document["entries"], document["last_seq"]) == (True, 5, 5)
    assert document["head"]["seq"] == 5
    assert document["problem"] is None


def test_a_bad_since_is_one_line_and_exit_2(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    small_log(directory)
    code, _, err = run("--dir", str(directory), "--since", "yesterday-ish")
    assert code == 2
    assert err.strip().startswith("greenwave: --since: not a time: 'yesterday-ish'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-1h", T0 - 3600),
        ("-30m", T0 - 1800),
        ("-2d", T0 - 172_800),
        ("-90", T0 - 90),
        ("1795657262", T0),
        ("2026-11-26T01:41:02Z", T0),
    ],
)
def test_parse_since(text: str, expected: float) -> None:
    assert parse_since(text, now=T0) == expected


def test_parse_since_refuses_nonsense() -> None:
    with pytest.raises(GreenwaveError, match="not a time"):
        parse_since("-1y", now=T0)
