"""``greenwave run`` without the rest of the CLI: what the systemd service executes.

The service is the one verb that stays in memory for months on a cabinet
computer, so it is parsed here with the standard library instead of through
the typer application: importing typer, click, rich and every other verb
costs several MiB of resident memory that the agent would carry for nothing
(measured in docs/performance.md). ``agent.cli.main`` hands ``run`` here
before it imports typer; ``greenwave --help`` still lists ``run`` through
:mod:`agent.cli.run_cmd`, which calls :func:`serve` too.

Exit codes are the CLI's (:mod:`agent.cli.main`): 2 for an unusable config,
70 for a bug, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from agent.errors import ConfigError, GreenwaveError

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

RUN_HELP = "Run the agent: poll the controller, follow central, publish state, spat and events."
CONFIG_HELP = "Agent config (default: $GREENWAVE_CONFIG, then /etc/greenwave/agent.toml)."


def serve(config: Path | None) -> None:
    """Load the config, set up logging and run the agent until it is stopped."""
    # structlog's console renderer imports rich (and pygments) when it can, for
    # pretty tracebacks; the service has no use for them (~3.4 MiB resident).
    # Marking rich absent before structlog is first imported keeps them out.
    if "structlog" not in sys.modules:
        sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
    from agent.app import run_agent
    from agent.config import load_config
    from agent.logs import configure_logging

    settings = load_config(config)
    configure_logging(level=settings.logging.level, fmt=settings.logging.format)
    asyncio.run(run_agent(settings))


def report_error(err: BaseException, stream: TextIO | None = None) -> int:
    """Print a failure as the CLI does (one line, never a traceback); its exit code."""
    out = stream if stream is not None else sys.stderr
    if isinstance(err, ConfigError):
        print(f"greenwave: {err}", file=out)
        for problem in err.problems:
            print(f"  {problem}", file=out)
        return EXIT_UNUSABLE
    if isinstance(err, GreenwaveError):
        print(f"greenwave: {err}", file=out)
        return EXIT_UNUSABLE
    print(f"greenwave: internal error, please report it: {type(err).__name__}: {err}", file=out)
    return EXIT_INTERNAL


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's usage errors: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"greenwave run: {message}", file=sys.stderr)
        sys.exit(EXIT_UNUSABLE)


def main(argv: Sequence[str]) -> int:
    """``greenwave run [--config FILE]``; the process's exit code."""
    parser = _Parser(prog="greenwave run", description=RUN_HELP)
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", help=CONFIG_HELP)
    args = parser.parse_args(list(argv))
    try:
        serve(args.config)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the last guard before a traceback
        return report_error(err)
    return EXIT_OK
