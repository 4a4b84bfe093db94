"""``greenwave audit …``: read the audit log and check that nobody altered it (SPEC §6, §8).

Run on the device, as root or as a member of group ``greenwave``, while the
agent runs or not; nothing here writes. The log is ``<state dir>/audit/``;
the state dir comes from the ``[state]`` section of the agent's config
(``-c``), or give the log's directory with ``--dir``.

* ``audit [--since WHEN] [--kind K]… [-n N] [--json]``: the newest entries
  (``-n``, default 50; ``-n 0``: all), oldest first, one line each.
  ``WHEN``: ``-1h``, ``-30m``, ``-2d`` (ago), ``2027-01-01T08:30Z`` (ISO
  8601, UTC without a zone) or epoch seconds.
* ``audit verify [--json]``: walk the whole chain. Exit 0 when it is intact;
  exit 1 naming the first entry edited, removed or reordered.

Errors (no log there, a bad argument) print one line and exit 2. The format
and what verify can and cannot prove: docs/audit.md.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import typer

from agent.cli.common import CONFIG_OPTION_HELP, EXIT_UNSAFE, config_if_present, guarded
from agent.cli.keys_cmd import parse_moment, show_moment
from agent.errors import ConfigError, GreenwaveError
from agent.logs import configure_logging
from agent.supervisor.audit import AUDIT_DIR, AuditEntry, entries, verify

app = typer.Typer(
    help="The audit log: every command, mode change, technician action and fault.",
)

#: Version of the ``--json`` layouts (docs/audit.md).
JSON_FORMAT_VERSION = 1
DEFAULT_COUNT = 50

DIR_HELP = "The audit log's directory (default: <state dir>/audit from the config)."

_AGO = re.compile(r"^-(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PLAIN = re.compile(r"^[^\s\"=]{1,80}$")


def _quiet_logs() -> None:
    # The CLI reports what matters itself; library logs stay off stdout.
    configure_logging("error", "auto", stream=sys.stderr)


def _audit_dir(config: Path | None, directory: Path | None) -> Path:
    if directory is not None:
        return directory
    agent_config, _ = config_if_present(config)
    if agent_config is None:
        raise ConfigError(
            "no agent config found: give --config PATH or --dir DIR "
            "(the audit log is <state dir>/audit)"
        )
    return agent_config.state.dir / AUDIT_DIR


def parse_since(text: str, *, now: float) -> float:
    """``-1h`` / ``-30m`` / ``-2d`` / ``-90`` (seconds ago), ISO 8601 or epoch seconds."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - float(ago.group(1)) * _UNIT_S[ago.group(2)]
    try:
        return parse_moment(text, now=now, relative_unit="s")
    except ValueError:
        raise GreenwaveError(
            f"--since: not a time: {text!r} (give -1h, -30m, -2d, 2027-01-01T08:30Z "
            "or epoch seconds)"
        ) from None


def _value(value: Any) -> str:
    if isinstance(value, str):
        if _HEX64.match(value):
            return value[:12] + "…"
        return value if _PLAIN.match(value) else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def entry_line(entry: AuditEntry) -> str:
    """One readable line: time, seq, kind, then the kind's fields as ``name=value``."""
    fields = " ".join(f"{name}={_value(value)}" for name, value in entry.fields.items())
    return f"{show_moment(entry.ts)} {entry.seq:>6} {entry.kind:<16} {fields}".rstrip()


def _fit(line: str, width: int | None) -> str:
    if width is None or len(line) <= width:
        return line
    return line[: width - 1] + "…"


@app.callback(invoke_without_command=True)
@guarded
def show(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="Only entries since WHEN: -1h, -30m, -2d, ISO 8601 or epoch s."
    ),
    kinds: list[str] | None = typer.Option(
        None, "--kind", "-k", help="Only entries of this kind (repeat for several)."
    ),
    count: int = typer.Option(
        DEFAULT_COUNT, "-n", "--count", min=0, help="Show the newest N entries (0: all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP),
) -> None:
    """Show the audit log, newest entries last (``verify`` checks it)."""
    if ctx.invoked_subcommand is not None:
        return
    _quiet_logs()
    where = _audit_dir(config, directory)
    moment = None if since is None else parse_since(since, now=time.time())
    shown: deque[AuditEntry] = deque(maxlen=count or None)
    total = 0
    for entry in entries(where, since=moment, kinds=kinds or None):
        shown.append(entry)
        total += 1
    if as_json:
        document = {
            "format": JSON_FORMAT_VERSION,
            "dir": str(where),
            "matched": total,
            "entries": [entry.as_json() for entry in shown],
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if not total:
        typer.echo(f"{where}: no entries" + (" match" if since or kinds else ""))
        return
    width = shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else None
    if total > len(shown):
        typer.echo(f"… {total - len(shown)} earlier entries (-n 0 shows all)")
    for entry in shown:
        typer.echo(_fit(entry_line(entry), width))


@app.command("verify")
@guarded
def verify_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP),
) -> None:
    """Check the whole hash chain: exit 0 intact, 1 naming the first altered entry."""
    _quiet_logs()
    where = _audit_dir(config, directory)
    report = verify(where)
    code = 0 if report.ok else EXIT_UNSAFE
    if as_json:
        document = {"format": JSON_FORMAT_VERSION, "dir": str(where), **report.as_json()}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        raise typer.Exit(code)
    if report.first_problem is not None:
        typer.echo(report.first_problem.describe())
        typer.echo(
            f"  {where}: {report.entries} entries before it are intact; "
            "what follows cannot be trusted"
        )
        raise typer.Exit(code)
    if report.entries == 0:
        typer.echo(f"{where}: 0 entries, chain intact (empty log)")
    else:
        typer.echo(
            f"{where}: {report.entries} entries, chain intact "
            f"(seq {report.first_seq} to {report.last_seq}; head seq {report.last_seq} "
            f"hash {report.last_hash[:12]}…)"
        )
    if report.head is not None and report.head.seq < report.last_seq:
        typer.echo(
            f"  the newest {report.last_seq - report.head.seq} entries are not synced yet: "
            "the head file does not cover them"
        )
    if report.pending_bytes:
        typer.echo(
            f"  {report.pending_bytes} bytes after the last entry: a line being written, "
            "or a torn write the agent cuts on its next start"
        )
