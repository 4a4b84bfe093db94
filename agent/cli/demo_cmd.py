"""``greenwave demo``: the whole product on this machine, in one command (docs/demo.md).

Starts a broker (mosquitto, or the embedded one), a simulated controller and
an agent per intersection of the Main St corridor, and a scripted central,
then shows the story: plans loaded, the green wave commanded, central going
silent and the network cut (each intersection falls back to its local
schedule), the network back (the agents stay local), central in control
again. At the end it prints each intersection's mode timeline.

Exit codes: 0 every intersection went central → local → central; 1 the story
was not told completely (what was missing is printed; the work directory is
kept); 2 a bad argument or nothing to run with (no broker, no plans, a work
directory in use); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM) —
every child process is stopped either way.
"""

from __future__ import annotations

import asyncio
import enum
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console

from agent.cli.common import EXIT_UNUSABLE, guarded
from agent.config import MAX_SOCKET_PATH_BYTES
from agent.demo import EXIT_OK, EXIT_STORY_INCOMPLETE, DemoError
from agent.demo.broker import BrokerKind
from agent.demo.director import DemoOptions, Director, Reporter
from agent.demo.story import Verdict
from agent.demo.view import LiveReporter, PlainReporter
from agent.logs import configure_logging

#: The longest path under the work directory an agent binds its socket to.
LONGEST_SOCKET = "main-5th/agent.sock"
DURATION_RANGE = (30.0, 600.0)
SPEED_RANGE = (1.0, 20.0)
INTERSECTIONS_RANGE = (1, 5)


class BrokerChoice(enum.StrEnum):
    """Which broker the demo runs."""

    AUTO = "auto"
    MOSQUITTO = "mosquitto"
    EMBEDDED = "embedded"


BROKER_KINDS: dict[BrokerChoice, BrokerKind] = {
    BrokerChoice.AUTO: "auto",
    BrokerChoice.MOSQUITTO: "mosquitto",
    BrokerChoice.EMBEDDED: "embedded",
}


@guarded
def demo(
    headless: bool = typer.Option(
        False,
        "--headless",
        help="Plain timestamped lines and the mode timeline, no live view "
        "(the default when standard output is not a terminal).",
    ),
    duration: float = typer.Option(
        60.0, "--duration", metavar="S", help="Length of the whole story in seconds (30-600)."
    ),
    speed: float = typer.Option(
        10.0, "--speed", metavar="X", help="Simulated time per real time (1-20)."
    ),
    intersections: int = typer.Option(
        5, "--intersections", "-n", metavar="N", help="Signals of the corridor to run (1-5)."
    ),
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        metavar="DIR",
        help="Put configs, state, DEMO keys and logs here (new or empty; kept). "
        "Default: a temporary directory, removed at the end.",
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the temporary work directory (logs, state) at the end."
    ),
    broker: BrokerChoice = typer.Option(
        BrokerChoice.AUTO,
        "--broker",
        help="auto: mosquitto when installed, else the embedded one "
        "(pip install 'greenwave\\[demo]').",
    ),
) -> None:
    """Run the whole story on this machine: simulators, broker, agents and a scripted central."""
    _check_range("--duration", duration, DURATION_RANGE, "s")
    _check_range("--speed", speed, SPEED_RANGE, "")
    _check_range("--intersections", intersections, INTERSECTIONS_RANGE, "")
    chosen, temporary = _workdir(workdir)
    headless = headless or not sys.stdout.isatty()
    options = DemoOptions(
        workdir=chosen,
        duration_s=duration,
        speed=speed,
        intersections=intersections,
        headless=headless,
        broker=BROKER_KINDS[broker],
    )
    with (chosen / "demo.log").open("a", encoding="utf-8") as demo_log:
        configure_logging(level="info", fmt="json", stream=demo_log)
        status = _run(options)
    if temporary and not keep and status != EXIT_STORY_INCOMPLETE:
        shutil.rmtree(chosen, ignore_errors=True)
    else:
        typer.echo(f"demo: work directory kept: {chosen} (logs: */agent.log, demo.log)")
    raise typer.Exit(status)


def _check_range(option: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        typer.echo(
            f"greenwave demo: {option} must be {low:g} to {high:g}{suffix}, not {value:g}",
            err=True,
        )
        raise typer.Exit(EXIT_UNUSABLE)


def _workdir(given: Path | None) -> tuple[Path, bool]:
    """The work directory and whether the demo made it (temporary)."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="greenwave-demo-")), True
    path = given.resolve()
    if len(os.fsencode(path / LONGEST_SOCKET)) > MAX_SOCKET_PATH_BYTES:
        typer.echo(
            f"greenwave demo: --workdir {given}: too long a path for the agents' unix sockets "
            f"(at most {MAX_SOCKET_PATH_BYTES - len(LONGEST_SOCKET) - 1} bytes)",
            err=True,
        )
        raise typer.Exit(EXIT_UNUSABLE)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        typer.echo(
            f"greenwave demo: --workdir {given}: not a new or empty directory "
            "(a previous demo's state would refuse this run's plans)",
            err=True,
        )
        raise typer.Exit(EXIT_UNUSABLE)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        typer.echo(f"greenwave demo: --workdir {given}: {err.strerror or err}", err=True)
        raise typer.Exit(EXIT_UNUSABLE) from None
    return path, False


def _run(options: DemoOptions) -> int:
    """Run the demo; its exit status. Prints the story and the verdict."""
    out: TextIO = sys.stdout
    console: Console | None = None
    reporter: Reporter
    if options.headless:
        reporter = PlainReporter(out)
    else:
        console = Console()
        reporter = LiveReporter(console, duration_s=options.duration_s)
    try:
        director = Director(options, reporter)
    except DemoError as err:
        typer.echo(f"greenwave demo: {err}", err=True)
        return err.exit_status
    try:
        verdict, interrupted = asyncio.run(_play(director))
    except DemoError as err:
        if director.story_started:
            _show(director.verdict(), out, console)
        typer.echo(f"greenwave demo: {err}", err=True)
        return err.exit_status
    if interrupted is not None:
        if director.story_started:
            _show(director.verdict(), out, console, interrupted=True)
        name = signal.Signals(interrupted).name
        typer.echo(f"demo: interrupted ({name}); every process it started is stopped", err=True)
        return 128 + interrupted
    assert verdict is not None
    _show(verdict, out, console)
    return EXIT_OK if verdict.ok else EXIT_STORY_INCOMPLETE


async def _play(director: Director) -> tuple[Verdict | None, int | None]:
    """Run the director; SIGINT/SIGTERM stop it (a second one kills the children at once)."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if received:
            director.children.kill_all()
            return
        received.append(signum)
        main.cancel()
        loop.call_later(0.2, insist)

    def insist() -> None:
        # Python 3.11's asyncio.wait_for (inside aiomqtt) can swallow a cancel that
        # lands at the wrong moment: cancel again until the story really stops.
        if main.done() or director.board.act == "stopping":
            return  # the cancel arrived: the director is stopping its children
        main.cancel()
        loop.call_later(0.2, insist)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await director.run(), None
    except asyncio.CancelledError:
        if not received:
            raise
        while main.cancelling():  # every cancel insist() sent is answered now
            main.uncancel()
        return None, received[0]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _show(
    verdict: Verdict, out: TextIO, console: Console | None, *, interrupted: bool = False
) -> None:
    lines = verdict.lines(interrupted=interrupted)
    if console is not None:
        console.print("\n".join(lines), highlight=False, markup=False)
        return
    out.write("\n".join(lines) + "\n")
    out.flush()
