"""The technician's verbs on the running agent: status, watch, override, release, diag bundle.

They talk to the agent over its control socket ([local] in the config;
protocol in :mod:`agent.local.protocol`). Run them on the device as root or
as a member of group ``greenwave``. The field guide is docs/technician.md.

Exit codes (a contract for scripts):

* 0 — done;
* 1 — the agent refused (an override it will not take, a controller that did
  not confirm; the line says why);
* 2 — a bad argument or config (one line; ``--help`` shows the usage);
* 3 — the agent is not running, or did not answer;
* 4 — permission denied: not root and not in the socket's group;
* 70 — an internal error (a bug; one line, never a traceback).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from agent.cli.common import CONFIG_OPTION_HELP, config_if_present, guarded
from agent.config import CONFIG_ENV, AgentConfig, LocalConfig, resolve_config_path
from agent.errors import ConfigError
from agent.local import bundle as diag_bundle
from agent.local import client
from agent.local.client import AccessDenied, AgentNotRunning, AgentRefused, LocalClientError
from agent.local.render import WIDTH, clock_time, duration, status_lines, watch_line, watch_screen
from agent.logs import configure_logging

P = ParamSpec("P")
R = TypeVar("R")

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_DENIED = 4

#: Longest wait for an override: the controller must confirm the pattern (s).
OVERRIDE_TIMEOUT_S = 30.0
#: An override lasts 1 s to this many minutes (the supervisor's limit).
MAX_OVERRIDE_MINUTES = 480.0
MIN_OVERRIDE_MINUTES = 1 / 60

SOCKET_HELP = (
    "The agent's control socket (default: local.socket of the config, "
    "else /run/greenwave/agent.sock)."
)


# -- one-line usage errors -------------------------------------------------------------------


def _verb_path(ctx: typer.Context) -> str:
    names: list[str] = []
    current: Any = ctx
    while current is not None and current.parent is not None:
        names.append(str(current.info_name))
        current = current.parent
    return " ".join(["greenwave", *reversed(names)])


def usage_error(ctx: typer.Context, message: str) -> NoReturn:
    """One line on stderr naming the verb, then exit 2."""
    flat = " ".join(message.split())
    typer.echo(f"{_verb_path(ctx)}: {flat} (see --help)", err=True)
    raise typer.Exit(EXIT_USAGE)


def _one_line(ctx: typer.Context, err: typer.TyperException) -> NoReturn:
    """A usage error (Click's exit code 2) as one line instead of a usage box."""
    exit_code = getattr(err, "exit_code", None)
    format_message = getattr(err, "format_message", None)
    if (
        exit_code != EXIT_USAGE
        or format_message is None
        or type(err).__name__ == "NoArgsIsHelpError"
    ):
        raise err
    usage_error(ctx, str(format_message()))


class OneLineCommand(TyperCommand):
    """A verb whose bad arguments give one line and exit 2 (acceptance: no usage box)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as err:
            _one_line(ctx, err)


class OneLineGroup(TyperGroup):
    """A verb group with the same one-line errors (unknown sub-verb included)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as err:
            _one_line(ctx, err)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as err:
            _one_line(ctx, err)


# -- shared by every verb ------------------------------------------------------------------------


def on_the_socket(func: Callable[P, R]) -> Callable[P, R]:
    """The socket's failures → their exit codes (inside :func:`guarded`)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        configure_logging("error", "auto", stream=sys.stderr)
        try:
            return func(*args, **kwargs)
        except AgentNotRunning as err:
            typer.echo(f"greenwave: {err}", err=True)
            raise typer.Exit(EXIT_NOT_RUNNING) from None
        except AccessDenied as err:
            typer.echo(f"greenwave: {err}", err=True)
            raise typer.Exit(EXIT_DENIED) from None
        except AgentRefused as err:
            typer.echo(f"greenwave: refused by the agent ({err.code}): {err}", err=True)
            raise typer.Exit(EXIT_REFUSED) from None

    return wrapper


def socket_path(explicit: Path | None, config: Path | None) -> Path:
    """``--socket``, else ``[local] socket`` of the config, else the default."""
    if explicit is not None:
        return explicit
    try:
        agent_config, _ = config_if_present(config)
    except ConfigError as err:
        if config is not None or CONFIG_ENV in os.environ:
            raise
        default = LocalConfig().socket
        typer.echo(f"greenwave: warning: {err}; trying the default socket {default}", err=True)
        return default
    return (agent_config.local if agent_config is not None else LocalConfig()).socket


def _encoding() -> str:
    return getattr(sys.stdout, "encoding", None) or "utf-8"


def phi() -> str:
    """``Φ`` where the terminal can show it, ``P`` on a plain-ASCII serial console."""
    try:
        "Φ…".encode(_encoding())
    except (LookupError, UnicodeEncodeError):
        return "P"
    return "Φ"


def say(line: str) -> None:
    """Print one line, replacing what the terminal's encoding cannot show."""
    encoding = _encoding()
    try:
        line = line.encode(encoding, "replace").decode(encoding)
    except LookupError:
        line = line.encode("ascii", "replace").decode("ascii")
    typer.echo(line)


def terminal_width() -> int:
    if not sys.stdout.isatty():
        return WIDTH
    return max(40, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns))


def _json(value: Any) -> None:
    say(json.dumps(value, indent=2, ensure_ascii=False))


#: Not "readable": connecting needs write permission, and a refusal has its own message.
SOCKET_OPTION = typer.Option(
    None, "--socket", "-s", metavar="PATH", help=SOCKET_HELP, readable=False
)
CONFIG_OPTION = typer.Option(None, "--config", "-c", metavar="FILE", help=CONFIG_OPTION_HELP)


# -- the verbs ---------------------------------------------------------------------------------


@guarded
@on_the_socket
def status(
    as_json: bool = typer.Option(
        False, "--json", help="Print the status document (docs/technician.md)."
    ),
    socket: Path | None = SOCKET_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Mode and why, both links, pattern, plan, clock, override and the phases, at a glance."""
    document = client.request(socket_path(socket, config), "status")
    if as_json:
        _json(document)
        return
    for line in status_lines(document, width=terminal_width(), phi=phi()):
        say(line)


@guarded
@on_the_socket
def watch(
    rate: float = typer.Option(
        5.0, "--rate", "-r", min=0.1, max=10.0, help="Updates per second (0.1 to 10)."
    ),
    count: int = typer.Option(
        0, "--count", "-n", min=0, help="Stop after N updates (0: until Ctrl-C)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One status document per line."),
    plain: bool = typer.Option(
        False, "--plain", help="One line per update, no redrawing (dumb terminals, logs)."
    ),
    socket: Path | None = SOCKET_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Live phase display: every light of every phase as the controller changes them.

    On a terminal the screen is redrawn in place; piped (or with --plain, or
    TERM=dumb), one line per update. Ctrl-C ends it.
    """
    path = socket_path(socket, config)
    dumb = os.environ.get("TERM", "") in ("", "dumb")
    redraw = sys.stdout.isatty() and not (as_json or plain or dumb)
    symbol = phi()
    updates: Iterator[Any] = client.stream(path, "watch", {"rate_hz": rate})
    try:
        for shown, document in enumerate(updates, start=1):
            if as_json:
                say(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
            elif redraw:
                screen = watch_screen(document, width=terminal_width(), phi=symbol)
                typer.echo("\x1b[H\x1b[2J", nl=False)
                for line in [*screen, "", "Ctrl-C to stop"]:
                    say(line)
            else:
                say(watch_line(document, phi=symbol))
            sys.stdout.flush()
            if count and shown >= count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(updates, "close", None)
        if close is not None:
            close()


@guarded
@on_the_socket
def override(
    ctx: typer.Context,
    pattern: int | None = typer.Option(
        None, "--pattern", "-p", min=1, max=253, help="Run this pattern of the loaded plan."
    ),
    free: bool = typer.Option(False, "--free", help="Run free (uncoordinated, actuated)."),
    flash: bool = typer.Option(False, "--flash", help="Put the intersection in flash."),
    minutes: float = typer.Option(
        ...,
        "--minutes",
        "-m",
        help="How long (1 s to 480 min; 0.5 is 30 s). It ends by itself then.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the agent's answer as JSON."),
    socket: Path | None = SOCKET_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Take local control for a while: central's commands are refused (E_OVERRIDE) meanwhile.

    Give exactly one of --pattern N, --free or --flash. The override ends by
    itself after --minutes, or earlier with 'greenwave release'; the
    intersection then goes back to its local time-of-day plan, and central
    takes over again with its next command. Running override again while one
    is in force replaces it (a new pattern, a new deadline).
    """
    chosen: list[int | str] = [
        *([pattern] if pattern is not None else []),
        *(["free"] if free else []),
        *(["flash"] if flash else []),
    ]
    if len(chosen) != 1:
        usage_error(ctx, "give exactly one of --pattern N, --free or --flash")
    if not MIN_OVERRIDE_MINUTES <= minutes <= MAX_OVERRIDE_MINUTES:
        usage_error(
            ctx, f"--minutes {minutes:g}: an override lasts 1 s to {MAX_OVERRIDE_MINUTES:g} min"
        )
    result = client.request(
        socket_path(socket, config),
        "override",
        {"pattern": chosen[0], "minutes": minutes},
        timeout_s=OVERRIDE_TIMEOUT_S,
    )
    if as_json:
        _json(result)
        return
    held = result.get("override") or {}
    now = time.time()
    until = held.get("until")
    left = "" if until is None else f" until {clock_time(until, now=now)} ({duration(until - now)})"
    say(f"override in force: pattern {held.get('pattern')}{left}, by {held.get('who')}")
    say("central's commands are refused meanwhile; 'greenwave release' ends it early")


@guarded
@on_the_socket
def release(
    as_json: bool = typer.Option(False, "--json", help="Print the agent's answer as JSON."),
    socket: Path | None = SOCKET_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """End the override now: back to the local time-of-day plan until central commands again."""
    result = client.request(socket_path(socket, config), "release")
    if as_json:
        _json(result)
        return
    if result.get("released"):
        say(f"released: mode {result.get('mode')} ({result.get('reason')})")
    else:
        say(f"no override was in force (mode {result.get('mode')})")


diag_app = typer.Typer(
    cls=OneLineGroup,
    help="Diagnostics for support: one tarball with config, state, logs and versions.",
    no_args_is_help=True,
)


@diag_app.command("bundle", cls=OneLineCommand)
@guarded
@on_the_socket
def bundle(
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE",
        help="Where to write it (default: greenwave-diag-<device>-<time>.tar.gz here; "
        "a directory: in it).",
    ),
    log_lines: int = typer.Option(
        diag_bundle.DEFAULT_LOG_LINES,
        "--log-lines",
        min=0,
        max=1_000_000,
        help="Newest journal lines to include (0: none).",
    ),
    socket: Path | None = SOCKET_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Write one tar.gz for support: config (secrets removed), state, logs, versions, audit, keys.

    Works when the agent is down too (the live state is then left out, and
    README.txt in the bundle says so).
    """
    now = time.time()
    config_path, agent_config, problem = _config_for_bundle(config)
    path = (
        socket
        if socket is not None
        else (agent_config.local if agent_config else LocalConfig()).socket
    )
    live: dict[str, Any] | None = None
    why: str | None = None
    try:
        live = client.request(path, "diag")
    except LocalClientError as err:
        why = str(err)
    device = agent_config.device.id if agent_config is not None else None
    name = diag_bundle.default_name(device, now)
    target = Path(f"{name}.tar.gz") if out is None else out
    if target.is_dir():
        target = target / f"{name}.tar.gz"
    collected = diag_bundle.Bundle(name=name)
    diag_bundle.add_config(collected, config_path, agent_config, problem)
    diag_bundle.add_live(collected, live, why)
    collected.add_json("versions.json", diag_bundle.versions())
    diag_bundle.add_journal(collected, log_lines)
    state_dir = agent_config.state.dir if agent_config is not None else None
    diag_bundle.add_audit_tail(collected, state_dir)
    diag_bundle.add_keys(collected, state_dir)
    size = collected.write(target, now=now)
    say(f"{target}: {size} bytes, {len(collected.members) + 1} files")
    for note in collected.notes:
        say(f"  left out: {note}")


def _config_for_bundle(
    explicit: Path | None,
) -> tuple[Path | None, AgentConfig | None, str | None]:
    """The config file, the config (None when it does not load) and why not."""
    path = resolve_config_path(explicit)
    if explicit is None and CONFIG_ENV not in os.environ and not path.exists():
        return None, None, None
    try:
        agent_config, _ = config_if_present(explicit)
    except ConfigError as err:
        return path, None, "; ".join([str(err), *err.problems])
    return path, agent_config, None


# -- registration ----------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add the technician's verbs to the ``greenwave`` command."""
    for name, verb in (
        ("status", status),
        ("watch", watch),
        ("override", override),
        ("release", release),
    ):
        app.command(name, cls=OneLineCommand)(verb)
    app.add_typer(diag_app, name="diag")


__all__: Sequence[str] = ("OneLineCommand", "OneLineGroup", "register", "socket_path")
