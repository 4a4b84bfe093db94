"""What every ``greenwave`` verb shares: exit codes, error guard, config lookup."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer

from agent.cli.service import EXIT_INTERNAL as EXIT_INTERNAL
from agent.cli.service import EXIT_OK as EXIT_OK
from agent.cli.service import EXIT_UNUSABLE as EXIT_UNUSABLE
from agent.cli.service import report_error
from agent.config import CONFIG_ENV, AgentConfig, load_config, resolve_config_path

P = ParamSpec("P")
R = TypeVar("R")

EXIT_UNSAFE = 1

CONFIG_OPTION_HELP = (
    "The agent's TOML config (default: $GREENWAVE_CONFIG, then /etc/greenwave/agent.toml)."
)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Domain errors → one line and exit 2; anything else → one line and exit 70."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - the last guard before a traceback
            raise typer.Exit(report_error(err)) from None

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
