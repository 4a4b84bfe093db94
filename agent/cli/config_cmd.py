"""``greenwave config …``: check the agent's TOML configuration before (re)starting it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from agent.cli.common import CONFIG_OPTION_HELP, guarded
from agent.config import load_config, resolve_config_path

app = typer.Typer(help="The agent's TOML configuration.", no_args_is_help=True)


@app.command("check")
@guarded
def check(
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the effective config as JSON."),
) -> None:
    """Validate the config file; exit 0 when good, 2 with every problem listed when not."""
    path = resolve_config_path(config)
    loaded = load_config(path)
    if as_json:
        typer.echo(json.dumps(loaded.model_dump(mode="json"), indent=2))
        return
    site = loaded.site
    typer.echo(f"{path}: OK")
    typer.echo(f"  device     {loaded.device.id}  groups: {', '.join(loaded.device.groups) or '-'}")
    typer.echo(
        f"  site       yellow ≥ {site.min_yellow:g} s, walk ≥ {site.min_walk:g} s, "
        f"cycle {site.cycle_min:g}-{site.cycle_max:g} s"
    )
    typer.echo(f"  phases     {' '.join(str(p) for p in site.allowed_phases)}")
    typer.echo(f"  state      {loaded.state.dir}")
