"""The typer application: every ``greenwave`` verb (entry point: :mod:`agent.cli.main`)."""

from __future__ import annotations

import sys

import typer

from agent import __version__
from agent.cli import (
    audit_cmd,
    central_cmd,
    certs_cmd,
    config_cmd,
    controller_cmd,
    demo_cmd,
    keys_cmd,
    local_cmd,
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
app.add_typer(certs_cmd.app, name="certs")
app.command("run")(run_cmd.run)
app.command("demo")(demo_cmd.demo)
local_cmd.register(app)


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


def run_typer() -> None:
    """Every verb through typer: a usage error of any verb is one line and exit 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.TyperException as err:
        sys.exit(_one_line_error(err))
    sys.exit(code if isinstance(code, int) else 0)


def _one_line_error(err: typer.TyperException) -> int:
    """Print a usage error (Click's kind) as one line; its exit code."""
    ctx = getattr(err, "ctx", None)
    if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help())
        return 2
    format_message = getattr(err, "format_message", None)
    text = str(format_message()) if callable(format_message) else str(err)
    where = ctx.command_path if ctx is not None else "greenwave"
    typer.echo(f"{where}: {' '.join(text.split())}", err=True)
    exit_code = getattr(err, "exit_code", 2)
    return exit_code if isinstance(exit_code, int) else 2
