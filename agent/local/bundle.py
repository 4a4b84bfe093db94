"""``greenwave diag bundle``: one tarball with what support needs, and no secrets.

::

    greenwave-diag-<device>-<UTC time>/
    ├── README.txt          what this is; every part skipped, and why
    ├── config.json         the config file as written and as in effect, secrets redacted
    ├── state.json          the live status document (state, phases), from the agent's socket
    ├── diagnostics.json    the supervisor's counters (polls, commands, link, events)
    ├── versions.json       greenwave, Python, the OS, every installed package
    ├── journal.txt         journalctl -u greenwave -n N (when there is a journal)
    ├── audit-tail.jsonl    the newest audit entries, as stored (they re-verify)
    └── keys.json           the trust store's public keys (kid, role, expiry, fingerprint)

Secrets never go in: the file named by ``mqtt.password_file`` is never read,
and any value whose key names a password, secret, token, key file or SNMP
community is replaced by ``<redacted>`` (also ``community=``/``password=``
in URLs). Private keys are never in the trust store (it refuses them).

Built by the CLI, which can read the files, plus the socket for the live
state. Each part that cannot be collected (the agent is down, no journal,
no permission) is noted in README.txt and the rest is still written: a
bundle is most useful exactly when something is wrong.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__
from agent.central.trust import TRUST_FILE, TrustedKey, TrustStore
from agent.config import AgentConfig
from agent.errors import GreenwaveError
from agent.supervisor.audit import AUDIT_DIR, entries

REDACTED = "<redacted>"
#: Keys whose values never leave the device.
SECRET_KEY = re.compile(r"password|passphrase|secret|token|key_file|community|private", re.I)
_URL_SECRET = re.compile(r"\b((?:community|password|passphrase|secret|token)=)[^&;#\s]*", re.I)
_URL_USERINFO = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")
#: Newest audit entries included.
AUDIT_TAIL = 500
DEFAULT_LOG_LINES = 2000
JOURNAL_TIMEOUT_S = 30.0
#: Packages whose versions matter most (all installed ones are listed too).
KEY_PACKAGES = (
    "greenwave",
    "pydantic",
    "pydantic-settings",
    "structlog",
    "typer",
    "pysnmp",
    "pyasn1",
    "aiomqtt",
    "paho-mqtt",
    "pyserial",
    "pyserial-asyncio-fast",
    "cryptography",
    "joserfc",
)


class BundleError(GreenwaveError):
    """The bundle cannot be written."""

    code = "E_BUNDLE"


def redact(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by :data:`REDACTED` (recursively)."""
    if key and SECRET_KEY.search(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", _URL_SECRET.sub(rf"\g<1>{REDACTED}", value))
    return value


@dataclass
class Bundle:
    """The members of the tarball, collected one by one."""

    name: str
    members: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_json(self, name: str, value: Any) -> None:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        self.members[name] = text.encode() + b"\n"

    def add_text(self, name: str, text: str) -> None:
        self.members[name] = text.encode(errors="replace")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def readme(self, now: float) -> str:
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        lines = [
            f"greenwave diagnostic bundle, made {stamp} by greenwave {__version__}",
            "",
            "No secrets: password files are never read; values of keys naming a password,",
            "secret, token, key file or SNMP community are replaced by <redacted>.",
            "",
            "Contents:",
            *(f"  {member}" for member in sorted(self.members)),
        ]
        if self.notes:
            lines += ["", "Not included, or only in part:", *(f"  - {n}" for n in self.notes)]
        return "\n".join(lines) + "\n"

    def write(self, out: Path, *, now: float) -> int:
        """Write the tar.gz atomically (mode 0600); its size in bytes."""
        payload = io.BytesIO()
        members = {"README.txt": self.readme(now).encode(), **self.members}
        with tarfile.open(fileobj=payload, mode="w:gz") as tar:
            for member, data in members.items():
                info = tarfile.TarInfo(f"{self.name}/{member}")
                info.size = len(data)
                info.mtime = int(now)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        data = payload.getvalue()
        partial = out.with_name(f".{out.name}.part")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, out)
        except OSError as err:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise BundleError(f"{out}: cannot write the bundle: {err.strerror or err}") from err
        return len(data)


def default_name(device: str | None, now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"greenwave-diag-{device or 'unknown'}-{stamp}"


# -- the parts --------------------------------------------------------------------------------


def add_config(
    bundle: Bundle, path: Path | None, config: AgentConfig | None, problem: str | None
) -> None:
    """``config.json``: the file as written and the config in effect, both redacted."""
    body: dict[str, Any] = {"path": None if path is None else str(path)}
    if path is not None:
        try:
            body["file"] = redact(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as err:
            bundle.note(f"config file {path}: cannot read: {err}")
        except tomllib.TOMLDecodeError as err:
            # The raw text may hold a secret: only the parser's complaint goes in.
            bundle.note(f"config file {path}: not valid TOML ({err}); its text is left out")
    else:
        bundle.note("no config file found: the built-in defaults are shown")
    if problem is not None:
        body["problems"] = problem
    if config is not None:
        body["effective"] = redact(config.model_dump(mode="json"))
    bundle.add_json("config.json", body)


def add_live(bundle: Bundle, diag: dict[str, Any] | None, problem: str | None) -> None:
    """``state.json`` and ``diagnostics.json`` from the agent's ``diag`` answer."""
    if diag is None:
        bundle.note(f"live state and diagnostics: {problem or 'the agent did not answer'}")
        return
    bundle.add_json("state.json", redact(diag.get("status")))
    bundle.add_json("diagnostics.json", redact(diag.get("diagnostics")))


def versions() -> dict[str, Any]:
    """greenwave, Python, the OS and the installed packages."""
    os_release: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                os_release[key] = value.strip().strip('"')
    installed = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed[name.lower()] = dist.version
    uname = platform.uname()
    return {
        "greenwave": __version__,
        "python": sys.version,
        "executable": sys.executable,
        "platform": platform.platform(),
        "kernel": f"{uname.system} {uname.release} {uname.version}",
        "machine": uname.machine,
        "os": os_release.get("PRETTY_NAME"),
        "key_packages": {name: installed.get(name) for name in KEY_PACKAGES},
        "installed": dict(sorted(installed.items())),
    }


def add_journal(bundle: Bundle, lines: int) -> None:
    """``journal.txt``: the agent's recent log from the systemd journal."""
    if lines <= 0:
        bundle.note("journal: not asked for (--log-lines 0)")
        return
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        bundle.note("journal: journalctl is not installed here")
        return
    command = [journalctl, "-u", "greenwave", "-n", str(lines), "--no-pager", "-o", "short-iso"]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command, no shell
            command, capture_output=True, text=True, timeout=JOURNAL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        bundle.note(f"journal: {' '.join(command)} failed: {err}")
        return
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
        bundle.note(f"journal: {' '.join(command)}: {why}")
        return
    bundle.add_text("journal.txt", done.stdout)


def add_audit_tail(bundle: Bundle, state_dir: Path | None, count: int = AUDIT_TAIL) -> None:
    """``audit-tail.jsonl``: the newest audit entries, exactly as stored."""
    if state_dir is None:
        bundle.note("audit log: no config, so no state directory to read it from")
        return
    tail: deque[str] = deque(maxlen=count)
    try:
        for entry in entries(state_dir / AUDIT_DIR):
            tail.append(json.dumps(entry.as_json(), ensure_ascii=False, separators=(",", ":")))
    except GreenwaveError as err:
        bundle.note(f"audit log: {err}")
        return
    bundle.add_text("audit-tail.jsonl", "".join(line + "\n" for line in tail))


def add_keys(bundle: Bundle, state_dir: Path | None) -> None:
    """``keys.json``: the trust store's public keys (as ``greenwave keys list --json``)."""
    if state_dir is None:
        bundle.note("trust store: no config, so no state directory to read it from")
        return
    path = state_dir / TRUST_FILE
    if not path.exists():
        bundle.note(f"trust store: there is none at {path} (no keys provisioned)")
        return
    now = time.time()
    try:
        store = TrustStore.open(path, clock=time.time, watch=False)
        keys = [_key_info(key, now) for key in store.list_keys()]
    except (GreenwaveError, OSError) as err:
        bundle.note(f"trust store {path}: {err}")
        return
    bundle.add_json(
        "keys.json",
        {
            "trust_store": str(path),
            "command_keys_version": store.command_keys_version,
            "loaded_from_backup": store.loaded_from_backup,
            "keys": keys,
        },
    )


def _key_info(key: TrustedKey, now: float) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "iss": key.iss,
        "role": str(key.role),
        "alg": key.alg,
        "not_after": key.not_after,
        "expired": key.expired(now),
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "source": key.source,
    }
