"""``greenwave-sim``: run the simulated signal controller.

``greenwave-sim serve`` loads a timing plan (the agent's reader and validator
judge it first), starts the simulated controller at ``--speed`` times real
time and answers NTCIP 1202 over SNMPv1 on UDP, and over PMPP (NTCIP 2101
framing) on TCP and on a pty that looks like a serial port; with
``--gbt-udp``, ``--gbt-tcp`` or ``--gbt-pty`` it also answers GB/T 20999-2017
on the same controller. On start it prints one line per endpoint on
standard output, then ``ready``::

    udp 127.0.0.1:16100
    tcp 127.0.0.1:40123
    pty /tmp/sim-serial /dev/pts/7
    gbt-udp 127.0.0.1:4050
    ready

``greenwave-sim objects`` lists the objects it answers (``--gbt``: the GB/T
attributes). See docs/simulator.md.

Exit codes: 0 after SIGTERM or SIGINT (clean stop); 1 when a server cannot
start (port in use, pty path taken); 2 for a bad argument or a plan that
cannot be read or breaks a safety rule -- always one line per problem on
standard error, never a traceback; 70 for an internal error (a bug: one
line on standard error, the traceback in the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

import structlog
import typer

from agent.errors import GreenwaveError, PlanParseError, PlanSchemaError
from agent.plan.document import parse_plan, read_plan_file
from agent.plan.model import Plan
from agent.plan.validator import validate_plan
from firmware_sim.commands import ScheduledFault, parse_fault
from firmware_sim.controller import SimConfig, SimController
from firmware_sim.database import DatabaseValueError
from firmware_sim.default_plan import DEFAULT_PLAN_JSON, DEFAULT_PLAN_NAME
from firmware_sim.gbt_mib import SERVED as GBT_SERVED
from firmware_sim.gbt_mib import Served as GbtServed
from firmware_sim.gbt_responder import (
    DEFAULT_LINK_TIMEOUT_S,
    GbtHook,
    parse_gbt_alter,
    parse_gbt_ignore,
    parse_gbt_refuse,
)
from firmware_sim.ntcip_mib import SERVED, ServedObject
from firmware_sim.ntcip_responder import (
    SERIAL_MAX_MESSAGE,
    UDP_MAX_MESSAGE,
    WriteHook,
    parse_alter,
    parse_ignore,
    parse_refuse,
)
from firmware_sim.pmpp_session import DEFAULT_ADDRESS
from firmware_sim.runner import ServeSettings, SimStartError, run_simulator
from firmware_sim.serve import parse_host_port
from firmware_sim.view import LiveView

EXIT_OK = 0
EXIT_CANNOT_START = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
#: Where the simulator listens when no --udp, --tcp or --pty is given.
DEFAULT_UDP = "127.0.0.1:16100"
MAX_SPEED = 10_000.0
#: The smallest --max-message: no smaller message limit makes sense for SNMP.
MIN_MESSAGE = 128

log = structlog.get_logger("firmware_sim.cli")

app = typer.Typer(
    name="greenwave-sim",
    help="A simulated NTCIP signal controller (8-phase NEMA dual ring, MMU, event log).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
)


def _die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"greenwave-sim: {message}", err=True)
    raise typer.Exit(code)


def _emit(line: str) -> None:
    """One line on standard output (endpoints, ``ready``, command answers)."""
    # If nobody reads standard output any more, the simulator keeps running.
    with contextlib.suppress(OSError):
        print(line, flush=True)


# ---------------------------------------------------------------------- logging


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (the live view redirects it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _configure_logging(level: str, fmt: str) -> None:
    numeric = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}[level]
    stream: TextIO = sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


# ------------------------------------------------------------------ arguments


def _load_plan(path: Path | None) -> tuple[Plan, str]:
    """The plan to run, judged like ``greenwave plan validate`` would; exits 2 if unusable."""
    name = str(path) if path is not None else DEFAULT_PLAN_NAME
    try:
        plan = read_plan_file(path) if path is not None else parse_plan(DEFAULT_PLAN_JSON)
    except PlanParseError as err:
        where = f"line {err.line}: " if err.line is not None and "line" not in err.message else ""
        typer.echo(f"{name}: cannot read: {where}{err.message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except PlanSchemaError as err:
        typer.echo(f"{name}: not a plan document: {len(err.problems)} problem(s)", err=True)
        for field_path, why in err.problems:
            where = "" if field_path == "(document)" else f"{field_path}: "
            typer.echo(f"  {name}: {where}{why}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    report = validate_plan(plan)
    if not report.ok:
        typer.echo(f"{name}: REJECTED, {len(report.errors)} rule violation(s)", err=True)
    for violation in (*report.errors, *report.warnings):
        label = violation.rule if violation.severity == "error" else f"{violation.rule} (warning)"
        typer.echo(f"  {label}: {violation.message}", err=True)
    if not report.ok:
        raise typer.Exit(EXIT_USAGE)
    return plan, name


def _parse_offset(text: str) -> int:
    """``local``, ``0``, ``+2``, ``-05:00``, ``+05:30`` -> seconds east of UTC."""
    text = text.strip()
    if text == "local":
        return time.localtime().tm_gmtoff
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    hours, _, minutes = body.partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise ValueError(f"{text!r} is not an offset like +02:00, -05:00 or local")
    seconds = int(hours) * 3600 + int(minutes or 0) * 60
    if seconds > 14 * 3600 or int(minutes or 0) >= 60:
        raise ValueError(f"{text!r} is not a UTC offset (at most 14:00)")
    return sign * seconds


def _parse_start(text: str, utc_offset_s: int) -> int:
    """``now`` or an ISO 8601 time -> epoch seconds; a time without offset is local time."""
    if text.strip().lower() == "now":
        return int(time.time())
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not 'now' or an ISO 8601 time") from None
    if moment.tzinfo is None:
        return int(moment.replace(tzinfo=UTC).timestamp()) - utc_offset_s
    return int(moment.timestamp())


def _endpoints(texts: list[str], kind: str) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for text in texts:
        try:
            out.append(parse_host_port(text))
        except ValueError as err:
            _die(f"--{kind}: {err}")
    return tuple(out)


def _hooks(refuse: list[str], alter: list[str], ignore: list[str]) -> tuple[WriteHook, ...]:
    hooks: list[WriteHook] = []
    for option, parser, texts in (
        ("refuse", parse_refuse, refuse),
        ("alter", parse_alter, alter),
        ("ignore", parse_ignore, ignore),
    ):
        for text in texts:
            try:
                hooks.append(parser(text))
            except ValueError as err:
                _die(f"--{option} {text!r}: {err}")
    return tuple(hooks)


def _gbt_hooks(refuse: list[str], alter: list[str], ignore: list[str]) -> tuple[GbtHook, ...]:
    hooks: list[GbtHook] = []
    for option, parser, texts in (
        ("gbt-refuse", parse_gbt_refuse, refuse),
        ("gbt-alter", parse_gbt_alter, alter),
        ("gbt-ignore", parse_gbt_ignore, ignore),
    ):
        for text in texts:
            try:
                hooks.append(parser(text))
            except ValueError as err:
                _die(f"--{option} {text!r}: {err}")
    return tuple(hooks)


def _faults(texts: list[str]) -> tuple[ScheduledFault, ...]:
    faults: list[ScheduledFault] = []
    for text in texts:
        try:
            faults.append(parse_fault(text))
        except ValueError as err:
            _die(f"--fault {text!r}: {err}")
    return tuple(faults)


# ---------------------------------------------------------------------- commands


@app.callback()
def _root() -> None:
    """A simulated NTCIP signal controller (8-phase NEMA dual ring, MMU, event log)."""


@app.command("serve")
def serve(
    udp: list[str] = typer.Option(
        [], "--udp", metavar="HOST:PORT", help=f"Answer SNMP on UDP (default {DEFAULT_UDP})."
    ),
    tcp: list[str] = typer.Option(
        [], "--tcp", metavar="HOST:PORT", help="Answer PMPP-framed SNMP on TCP."
    ),
    pty: list[Path] = typer.Option(
        [], "--pty", metavar="PATH", help="Answer PMPP on a pty whose slave is linked at PATH."
    ),
    plan_file: Path | None = typer.Option(
        None, "--plan", metavar="FILE", help="Timing plan (default: the built-in 8-phase plan)."
    ),
    speed: float = typer.Option(1.0, "--speed", metavar="X", help="Simulated time per wall time."),
    community: str = typer.Option("public", "--community", metavar="NAME"),
    address: int = typer.Option(
        DEFAULT_ADDRESS, "--address", metavar="N", help="PMPP drop address (1-8191)."
    ),
    baud: int | None = typer.Option(
        None, "--baud", metavar="N", help="Pace the TCP and pty byte streams to N baud."
    ),
    start: str = typer.Option(
        "now", "--start", metavar="ISO8601|now", help="Controller clock at start."
    ),
    utc_offset: str = typer.Option(
        "local", "--utc-offset", metavar="+HH:MM|local", help="Controller time zone."
    ),
    start_at_wall: float | None = typer.Option(
        None,
        "--start-at-wall",
        metavar="EPOCH",
        help="--start is the clock at this wall-clock time (epoch s), not at launch: "
        "simulators given the same --start, --start-at-wall and --speed share one clock.",
    ),
    view: bool | None = typer.Option(
        None, "--view/--no-view", help="Live phase view (default: on a terminal)."
    ),
    control: bool = typer.Option(
        True, "--control/--no-control", help="Read commands (inject, reset, status) on stdin."
    ),
    refuse: list[str] = typer.Option(
        [], "--refuse", metavar="OBJECT[:STATUS]", help="Answer Sets of OBJECT with an error."
    ),
    alter: list[str] = typer.Option(
        [], "--alter", metavar="OBJECT=DELTA", help="Store Sets of OBJECT plus DELTA."
    ),
    ignore: list[str] = typer.Option(
        [], "--ignore", metavar="OBJECT", help="Accept Sets of OBJECT, store nothing."
    ),
    fault: list[str] = typer.Option(
        [], "--fault", metavar="KIND@S[:CH]", help="Inject an MMU fault at a time."
    ),
    max_message: int | None = typer.Option(
        None,
        "--max-message",
        metavar="BYTES",
        help=f"Largest SNMP response (default {UDP_MAX_MESSAGE} UDP, {SERIAL_MAX_MESSAGE} PMPP).",
    ),
    events: Path | None = typer.Option(
        None,
        "--events",
        metavar="FILE",
        help="Append the hi-res event log (Indiana codes) to FILE as JSON lines.",
    ),
    gbt_udp: list[str] = typer.Option(
        [],
        "--gbt-udp",
        metavar="HOST:PORT",
        help="Answer GB/T 20999 on UDP.",
    ),
    gbt_tcp: list[str] = typer.Option(
        [], "--gbt-tcp", metavar="HOST:PORT", help="Answer GB/T 20999 frames on TCP."
    ),
    gbt_pty: list[Path] = typer.Option(
        [], "--gbt-pty", metavar="PATH", help="Answer GB/T 20999 frames on a pty linked at PATH."
    ),
    gbt_link_timeout: int = typer.Option(
        DEFAULT_LINK_TIMEOUT_S,
        "--gbt-link-timeout",
        metavar="S",
        help="Drop GB/T center control after S simulated seconds of silence (0: never).",
    ),
    gbt_refuse: list[str] = typer.Option(
        [], "--gbt-refuse", metavar="ATTR[:CODE]", help="Answer GB/T sets of ATTR with an error."
    ),
    gbt_alter: list[str] = typer.Option(
        [], "--gbt-alter", metavar="ATTR=DELTA", help="Store GB/T sets of ATTR plus DELTA."
    ),
    gbt_ignore: list[str] = typer.Option(
        [], "--gbt-ignore", metavar="ATTR", help="Accept GB/T sets of ATTR, store nothing."
    ),
    log_level: str = typer.Option("info", "--log-level", metavar="debug|info|warning"),
    log_format: str = typer.Option("auto", "--log-format", metavar="auto|console|json"),
) -> None:
    """Run the simulated controller: NTCIP 1202 on UDP, TCP and a pty; GB/T 20999 too."""
    if log_level not in {"debug", "info", "warning"}:
        _die(f"--log-level {log_level!r}: use debug, info or warning")
    if log_format not in {"auto", "console", "json"}:
        _die(f"--log-format {log_format!r}: use auto, console or json")
    if not (math.isfinite(speed) and 0 < speed <= MAX_SPEED):
        _die(f"--speed {speed}: must be above 0 and at most {MAX_SPEED:g}")
    if not 1 <= address <= 8191:
        _die(f"--address {address}: a PMPP drop address is 1-8191")
    if baud is not None and not 50 <= baud <= 4_000_000:
        _die(f"--baud {baud}: must be 50-4000000")
    if max_message is not None and not MIN_MESSAGE <= max_message <= 65507:
        _die(f"--max-message {max_message}: must be {MIN_MESSAGE}-65507")
    if not community or not community.isascii():
        _die("--community: must be non-empty ASCII text")
    if not 0 <= gbt_link_timeout <= 65535:
        _die(f"--gbt-link-timeout {gbt_link_timeout}: must be 0-65535 seconds")
    try:
        offset_s = _parse_offset(utc_offset)
        epoch_s = _parse_start(start, offset_s)
    except ValueError as err:
        _die(str(err))
    if start_at_wall is not None and not (
        math.isfinite(start_at_wall) and 0 < start_at_wall <= time.time()
    ):
        _die("--start-at-wall: must be a wall-clock epoch in the past")
    any_endpoint = udp or tcp or pty or gbt_udp or gbt_tcp or gbt_pty
    settings = ServeSettings(
        udp=_endpoints(udp, "udp") if any_endpoint else (parse_host_port(DEFAULT_UDP),),
        tcp=_endpoints(tcp, "tcp"),
        pty=tuple(pty),
        speed=speed,
        community=community.encode(),
        address=address,
        baud=baud,
        hooks=_hooks(refuse, alter, ignore),
        faults=_faults(fault),
        udp_max_message=max_message or UDP_MAX_MESSAGE,
        serial_max_message=max_message or SERIAL_MAX_MESSAGE,
        control=control,
        events_file=events,
        start_at_wall=start_at_wall,
        gbt_udp=_endpoints(gbt_udp, "gbt-udp"),
        gbt_tcp=_endpoints(gbt_tcp, "gbt-tcp"),
        gbt_pty=tuple(gbt_pty),
        gbt_link_timeout_s=gbt_link_timeout,
        gbt_hooks=_gbt_hooks(gbt_refuse, gbt_alter, gbt_ignore),
    )
    show_view = sys.stdout.isatty() if view is None else view
    _configure_logging(log_level, "console" if show_view and log_format == "auto" else log_format)
    plan, plan_name = _load_plan(plan_file)
    try:
        controller = SimController.from_plan(
            plan, config=SimConfig(epoch_s=epoch_s, utc_offset_s=offset_s)
        )
    except DatabaseValueError as err:
        _die(f"{plan_name}: the controller cannot hold this plan: {err}")
    log.info(
        "plan_loaded", plan=plan_name, version=plan.version, start=epoch_s, utc_offset=offset_s
    )
    try:
        asyncio.run(
            run_simulator(controller, settings, emit=_emit, view=LiveView() if show_view else None)
        )
    except SimStartError as err:
        _die(err.message, EXIT_CANNOT_START)
    except GreenwaveError as err:
        _die(err.message, EXIT_CANNOT_START)
    except Exception as err:  # the last guard before a traceback: a bug, say so in one line
        log.exception("internal_error")
        _die(f"internal error, please report it: {type(err).__name__}: {err}", EXIT_INTERNAL)


def _instance(served: ServedObject) -> str:
    if served.mib.is_scalar:
        return ".0"
    return "".join(f".<{name}>" for name in served.mib.index)


def _units(served: ServedObject) -> str:
    return served.mib.units.value or "-"


def _gbt_instance(served: GbtServed) -> str:
    address = served.address
    base = f"{address.data_class}.{address.object}.{address.attribute}"
    if not served.attribute.table:
        return f"{base}.0"
    row = served.attribute.name.split(".")[0]
    return f"{base}.<{row}>"


def _gbt_objects(markdown: bool) -> None:
    if markdown:
        print("| attribute | address | bytes | units | access | in the simulator |")
        print("|---|---|---|---|---|---|")
    for served in GBT_SERVED:
        access = "read-write" if served.write is not None else "read-only"
        attribute = served.attribute
        units = attribute.unit or "-"
        if markdown:
            effect = served.effect or "-"
            print(
                f"| {attribute.name} | `{_gbt_instance(served)}` | {attribute.size} | {units} "
                f"| {access} | {effect} |"
            )
        else:
            print(f"{attribute.name:<36} {access:<10} {units:<6} {_gbt_instance(served)}")


@app.command("objects")
def objects(
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table."),
    gbt: bool = typer.Option(False, "--gbt", help="The GB/T 20999 attributes instead."),
) -> None:
    """List the objects the simulator answers: NTCIP OIDs (or GB/T addresses), units, access."""
    if gbt:
        _gbt_objects(markdown)
        return
    if markdown:
        print("| object | OID | units | access | in the simulator |")
        print("|---|---|---|---|---|")
    for served in SERVED:
        oid = ".".join(map(str, served.oid)) + _instance(served)
        access = "read-write" if served.writable else "read-only"
        if markdown:
            effect = served.effect or "-"
            print(f"| {served.mib.name} | `{oid}` | {_units(served)} | {access} | {effect} |")
        else:
            print(f"{served.mib.name:<30} {access:<10} {_units(served):<6} {oid}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
