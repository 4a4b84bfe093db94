"""``greenwave run``: the agent itself (what the systemd service starts).

The service does not come through here: :mod:`agent.cli.main` hands ``run``
to :mod:`agent.cli.service` before typer is imported. This command keeps
``run`` in ``greenwave --help`` and in-process callers of the typer app.
"""

from __future__ import annotations

from pathlib import Path

import typer

from agent.cli.common import guarded
from agent.cli.service import CONFIG_HELP, serve

CONFIG_OPTION = typer.Option(None, "--config", "-c", metavar="FILE", help=CONFIG_HELP)


@guarded
def run(config: Path | None = CONFIG_OPTION) -> None:
    """Run the agent: poll the controller, follow central, publish state, spat and events."""
    serve(config)
