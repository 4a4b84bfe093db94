"""``greenwave``: the command line of the agent.

Every verb has ``--help``. Exit codes are a contract for scripts:

* 0 — success (every plan valid, the config good);
* 1 — a plan breaks a safety rule (each violation listed);
* 2 — input that cannot be used: unreadable file, not JSON, not a plan
  document, a bad config, a bad argument;
* 70 — an internal error (a bug; reported in one line, never a traceback).
"""

from __future__ import annotations

import sys

import typer

from agent import __version__
from agent.cli import (
    audit_cmd,
    central_cmd,
    config_cmd,
    controller_cmd,
    keys_cmd,
    plan_cmd,
    run_cmd,
)

app = typer.Typer(
    name="greenwave",
    help="greenwave: the edge agent for networked traffic signal controllers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
)
app.add_typer(plan_cmd.app, name="plan")
app.add_typer(config_cmd.app, name="config")
app.add_typer(controller_cmd.app, name="controller")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(central_cmd.app, name="central")
app.add_typer(audit_cmd.app, name="audit")
app.command("run")(run_cmd.run)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"greenwave {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """greenwave: the edge agent for networked traffic signal controllers."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
