"""``greenwave run``: the agent itself (what the systemd service starts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from agent.app import run_agent
from agent.cli.common import guarded
from agent.config import load_config
from agent.logs import configure_logging

CONFIG_OPTION = typer.Option(
    None,
    "--config",
    "-c",
    metavar="FILE",
    help="Agent config (default: $GREENWAVE_CONFIG, then /etc/greenwave/agent.toml).",
)


@guarded
def run(config: Path | None = CONFIG_OPTION) -> None:
    """Run the agent: poll the controller, follow central, publish state, spat and events."""
    settings = load_config(config)
    configure_logging(level=settings.logging.level, fmt=settings.logging.format)
    asyncio.run(run_agent(settings))
