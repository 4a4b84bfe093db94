"""``systemd/install.sh``: a dry run changes nothing, an install into a root is complete
and can be repeated, and the installed binary is the one the unit starts.

The installs go into a temporary ``--root`` (users, ownership and the running
systemd are left alone there, and printed instead): a test must not add a
user or a service to the machine it runs on.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from tests.deploy.test_systemd_unit import require_systemd_analyze
from tests.deploy.unit import INSTALL_SH, REPO, UNIT, fake_root, verify


def install(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL_SH), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type and permission bits (and link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        key = "/" + str(path.relative_to(root))
        if stat.S_ISLNK(mode):
            out[key] = f"-> {os.readlink(path)}"
        else:
            out[key] = f"{'d' if stat.S_ISDIR(mode) else 'f'} {stat.S_IMODE(mode):04o}"
    return out


def test_a_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = install("--dry-run", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert list(root.iterdir()) == []
    out = result.stdout
    assert f"+ python3 -m venv {root}/opt/greenwave/venv" in out
    assert f"{root}/etc/systemd/system/greenwave.service" in out
    assert f"+ install -m 0640 {REPO}/examples/agent.toml {root}/etc/greenwave/agent.toml" in out
    assert f"+ systemctl --root={root} --quiet enable greenwave.service" in out
    assert "dry run: nothing changed" in out


def test_a_dry_run_on_this_machine_only_prints() -> None:
    """Without --root the dry run names the real paths and the user steps, and does nothing."""
    before = Path("/etc/greenwave").exists(), Path("/opt/greenwave").exists()
    result = install("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "+ install -m 0644" in result.stdout
    assert "/etc/systemd/system/greenwave.service" in result.stdout
    assert (Path("/etc/greenwave").exists(), Path("/opt/greenwave").exists()) == before


def test_an_install_into_a_root_is_complete_and_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install("--root", str(root), "--skip-venv")
    assert first.returncode == 0, first.stderr
    layout = tree(root)
    assert {
        "/etc/greenwave": "d 0750",
        "/etc/greenwave/agent.toml": "f 0640",
        "/etc/greenwave/credentials": "d 0700",
        "/var/lib/greenwave": "d 0750",
        "/etc/systemd/system/greenwave.service": "f 0644",
        "/etc/systemd/system/multi-user.target.wants/greenwave.service": (
            "-> /etc/systemd/system/greenwave.service"
        ),
        "/opt/greenwave/share/systemd/README.md": "f 0644",
    }.items() <= layout.items()
    assert (root / "etc/systemd/system/greenwave.service").read_text() == UNIT.read_text()
    assert "skip (--root): group and user greenwave" in first.stdout

    # A site edits its config; installing again (an upgrade) keeps it.
    config = root / "etc/greenwave/agent.toml"
    config.write_text(config.read_text().replace('id = "main-5th"', 'id = "elm-2nd"'))
    again = install("--root", str(root), "--skip-venv")
    assert again.returncode == 0, again.stderr
    assert tree(root) == layout
    assert 'id = "elm-2nd"' in config.read_text()
    assert f"keep: {config} (exists)" in again.stdout


def test_another_prefix_is_written_into_the_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = install("--root", str(root), "--skip-venv", "--prefix", "/srv/greenwave")
    assert result.returncode == 0, result.stderr
    unit = (root / "etc/systemd/system/greenwave.service").read_text()
    assert "ExecStart=/srv/greenwave/venv/bin/greenwave run --config /etc/greenwave/agent.toml" in (
        unit
    )
    assert "/opt/greenwave" not in unit
    assert (root / "srv/greenwave/share/systemd/README.md").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--frobnicate",), "unknown option: --frobnicate", id="unknown"),
        pytest.param(("--root",), "--root needs a directory", id="missing-value"),
        pytest.param(("--prefix", "opt/gw"), "--prefix must be an absolute path", id="relative"),
        pytest.param(("--wheel", "/nonexistent.whl"), "no such wheel", id="no-wheel"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = install(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_the_installed_binary_is_the_one_the_unit_starts(tmp_path: Path) -> None:
    """A full install (venv built from this tree): the unit's ExecStart runs."""
    root = tmp_path / "root"
    result = install("--root", str(root), "--python", sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (REPO / "build").exists(), "the install left build/ in the source tree"
    greenwave = root / "opt/greenwave/venv/bin/greenwave"
    config = root / "etc/greenwave/agent.toml"
    check = subprocess.run(
        [str(greenwave), "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert load_config(config).device.id == "main-5th"
    # systemd loads the installed unit and finds its ExecStart executable.
    require_systemd_analyze()
    verified = verify(fake_root(root, executable=False))
    assert verified.returncode == 0, verified.stderr
