"""``greenwave run``: the service's own lean entry (agent/cli/service.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.service import EXIT_INTERNAL, EXIT_UNUSABLE, report_error
from agent.errors import ConfigError, GreenwaveError

PROBE = """
import sys
from agent.cli.main import main
sys.argv = ["greenwave", "run", "--config", sys.argv[1]]
try:
    main()
except SystemExit as done:
    heavy = sorted(m for m in ("typer", "click", "rich", "pygments") if sys.modules.get(m))
    print("exit", done.code, "heavy", ",".join(heavy) or "-")
"""


def greenwave(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_service_path_imports_neither_typer_nor_rich(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[controller]\nurl = 'not a url'\n")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == f"exit {EXIT_UNUSABLE} heavy -", done.stderr
    assert "greenwave:" in done.stderr


def test_a_usage_error_is_one_line_and_exit_2() -> None:
    done = greenwave("run", "--bogus")
    assert done.returncode == EXIT_UNUSABLE
    assert done.stderr.strip() == "greenwave run: unrecognized arguments: --bogus"


def test_a_missing_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = greenwave("run", "--config", str(tmp_path / "absent.toml"))
    assert done.returncode == EXIT_UNUSABLE
    assert done.stderr.count("\n") == 1
    assert "absent.toml" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_still_lists_run_and_run_has_help() -> None:
    listing = greenwave("--help")
    assert listing.returncode == 0
    assert "run" in listing.stdout
    own = greenwave("run", "--help")
    assert own.returncode == 0
    assert "--config" in own.stdout


@pytest.mark.parametrize(
    ("err", "code", "first_line"),
    [
        (ConfigError("bad config", problems=("[central] device: missing",)), EXIT_UNUSABLE, "bad"),
        (GreenwaveError("controller unreachable"), EXIT_UNUSABLE, "controller"),
        (RuntimeError("boom"), EXIT_INTERNAL, "internal error"),
    ],
)
def test_errors_map_to_the_cli_exit_codes(
    err: BaseException, code: int, first_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report_error(err) == code
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("greenwave: ")
    assert first_line in lines[0]
