"""Reading ``systemd/greenwave.service`` as systemd does, with systemd's own tools.

``systemd-analyze`` comes with the Debian package ``systemd`` (``scripts/setup``
installs it); it works without a running systemd: ``verify --root=DIR`` loads
the unit from a directory tree, ``security --offline=true`` scores the file,
``syscall-filter @group`` lists a group's system calls.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
UNIT: Final = REPO / "systemd" / "greenwave.service"
INSTALL_SH: Final = REPO / "systemd" / "install.sh"
#: Where Debian keeps the units a service depends on (sysinit.target, …).
SYSTEM_UNITS: Final = Path("/usr/lib/systemd/system")


def systemd_analyze() -> str | None:
    """The ``systemd-analyze`` executable, if installed."""
    return shutil.which("systemd-analyze")


def directives(unit: Path = UNIT) -> list[tuple[str, str, str]]:
    """``(section, key, value)`` of every assignment, in order (comments dropped)."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(key: str, unit: Path = UNIT) -> list[str]:
    """Every value assigned to ``key``, in order."""
    return [value for _, k, value in directives(unit) if k == key]


def value(key: str, unit: Path = UNIT) -> str:
    """The one value of ``key`` (the last assignment wins, as in systemd)."""
    found = values(key, unit)
    assert found, f"{unit.name} does not set {key}="
    return found[-1]


@functools.cache
def syscall_group(name: str) -> frozenset[str]:
    """The system calls of ``@name``, nested groups expanded (systemd's own table)."""
    tool = systemd_analyze()
    assert tool is not None
    listing = subprocess.run(
        [tool, "syscall-filter", name], capture_output=True, text=True, check=True
    ).stdout
    calls: set[str] = set()
    for line in listing.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        calls |= syscall_group(item) if item.startswith("@") else {item}
    return frozenset(calls)


def _expand(items: list[str]) -> set[str]:
    calls: set[str] = set()
    for item in items:
        calls |= syscall_group(item) if item.startswith("@") else {item}
    return calls


def allowed_syscalls(unit: Path = UNIT) -> frozenset[str]:
    """What ``SystemCallFilter=`` lets through, read as systemd.exec(5) says.

    The first assignment decides: an allow list (no ``~``) starts from nothing;
    later plain assignments add, ``~`` assignments remove.
    """
    lines = values("SystemCallFilter", unit)
    assert lines, "no SystemCallFilter="
    assert not lines[0].startswith("~"), "expected an allow list first"
    allowed: set[str] = set()
    for line in lines:
        deny = line.startswith("~")
        calls = _expand(line.removeprefix("~").split())
        allowed = allowed - calls if deny else allowed | calls
    return frozenset(allowed)


def fake_root(root: Path, *, executable: bool = True) -> Path:
    """A tree ``verify --root`` can load the unit from: the OS's units and the unit.

    With ``executable``, a stand-in for the ExecStart binary (the real one is
    what ``install.sh`` puts there; ``verify`` only checks it is executable).
    """
    units = root / "usr" / "lib" / "systemd" / "system"
    if not units.exists():
        shutil.copytree(SYSTEM_UNITS, units, symlinks=True)
    unit_dir = root / "etc" / "systemd" / "system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    if not (unit_dir / UNIT.name).exists():
        shutil.copy(UNIT, unit_dir / UNIT.name)
    if executable:
        binary = root / value("ExecStart").split()[0].lstrip("/")
        binary.parent.mkdir(parents=True, exist_ok=True)
        if not binary.exists():
            binary.write_text("#!/bin/sh\nexit 0\n")
            binary.chmod(0o755)
    return root


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify --root=ROOT greenwave.service``."""
    tool = systemd_analyze()
    assert tool is not None
    return subprocess.run(
        [tool, "verify", f"--root={root}", UNIT.name],
        capture_output=True,
        text=True,
        check=False,
    )
