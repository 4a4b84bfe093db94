"""What every ``greenwave`` verb shares: exit codes, error guard, config lookup."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer

from agent.config import CONFIG_ENV, AgentConfig, load_config, resolve_config_path
from agent.errors import ConfigError, GreenwaveError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_UNSAFE = 1
EXIT_UNUSABLE = 2
EXIT_INTERNAL = 70

CONFIG_OPTION_HELP = (
    "The agent's TOML config (default: $GREENWAVE_CONFIG, then /etc/greenwave/agent.toml)."
)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Domain errors → one line and exit 2; anything else → one line and exit 70."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as err:
            typer.echo(f"greenwave: {err}", err=True)
            for problem in err.problems:
                typer.echo(f"  {problem}", err=True)
            raise typer.Exit(EXIT_UNUSABLE) from None
        except GreenwaveError as err:
            typer.echo(f"greenwave: {err}", err=True)
            raise typer.Exit(EXIT_UNUSABLE) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - the last guard before a traceback
            typer.echo(
                f"greenwave: internal error, please report it: {type(err).__name__}: {err}",
                err=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def config_if_present(explicit: Path | None) -> tuple[AgentConfig | None, str]:
    """The config when one is given or installed, with where it came from.

    An explicit ``--config`` (or ``$GREENWAVE_CONFIG``) must load; the default
    path is used when it exists. Without either, ``(None, "built-in defaults")``.
    """
    path = resolve_config_path(explicit)
    if explicit is None and CONFIG_ENV not in os.environ and not path.exists():
        return None, "built-in defaults"
    return load_config(path), str(path)
