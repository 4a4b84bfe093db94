"""``greenwave controller …``: check the link to the cabinet's signal controller."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from agent.cli.common import CONFIG_OPTION_HELP, config_if_present, guarded
from agent.controller.factory import make_controller
from agent.controller.interface import (
    Controller,
    ControllerStatus,
    Light,
    PedLight,
    PhaseConfig,
)
from agent.controller.url import ControllerEndpoint, parse_controller_url
from agent.errors import ConfigError, ControllerError

app = typer.Typer(
    help="The signal controller: probe the link and what it runs.", no_args_is_help=True
)

_LIGHT = {Light.GREEN: "G", Light.YELLOW: "Y", Light.RED: "r", Light.DARK: "."}
_PED = {PedLight.WALK: "W", PedLight.PED_CLEAR: "F", PedLight.DONT_WALK: "d", PedLight.DARK: " "}


def status_line(status: ControllerStatus) -> str:
    """One 80-column line: phases, pattern, cycle, control, flash, alarms."""
    phases = " ".join(f"{p.phase}{_LIGHT[p.light]}{_PED[p.ped]}" for p in status.phases)
    pattern = status.pattern if isinstance(status.pattern, str) else f"p{status.pattern}"
    flash = "" if not status.in_flash else f" FLASH({status.flash.value})"
    alarms = " ALARM" if status.alarms.any else ""
    return (
        f"{phases} | {pattern:>5} c{status.cycle_time_s:<3} {status.control.value}{flash}{alarms}"
    )


def _phase_table(phases: tuple[PhaseConfig, ...]) -> list[str]:
    lines = ["  phase ring  min  yel  red walk  ped  max"]
    for p in phases:
        if not p.enabled:
            continue
        lines.append(
            f"  {p.phase:>5} {p.ring:>4} {p.min_green_s:>4.0f} {p.yellow_s:>4.1f} "
            f"{p.red_clear_s:>4.1f} {p.walk_s:>4.0f} {p.ped_clear_s:>4.0f} {p.max_green_s:>4.0f}"
        )
    return lines


async def _probe(controller: Controller, count: int, interval: float, as_json: bool) -> None:
    await controller.open()
    try:
        identity = await controller.read_identity()
        phases = await controller.read_phases()
        first = await controller.read_status()
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "identity": asdict(identity),
                        "phases": [asdict(p) for p in phases],
                        "status": _status_json(first),
                    },
                    indent=2,
                )
            )
            return
        typer.echo(f"controller  {identity.endpoint}  ({identity.protocol})")
        if identity.description:
            typer.echo(f"identity    {identity.description}")
        caps = ", ".join(f"{k} {v}" for k, v in identity.extra.items())
        if caps:
            typer.echo(f"capacity    {caps}")
        typer.echo("phases (s)")
        for line in _phase_table(phases):
            typer.echo(line)
        typer.echo(
            f"running     pattern {first.pattern}, commanded {first.commanded}, "
            f"{first.free_status}, control {first.control.value}, flash {first.flash.value}"
        )
        typer.echo("live        G/Y/r = green/yellow/red, W/F/d = walk/ped clear/don't walk")
        live = sys.stdout.isatty()
        status = first
        for i in range(count):
            if i:
                await asyncio.sleep(interval)
                status = await controller.read_status()
            line = status_line(status)
            if live:
                typer.echo("\r" + line.ljust(79)[:79], nl=False)
            else:
                typer.echo(line)
        if live:
            typer.echo("")
    finally:
        await controller.close()


def _status_json(status: ControllerStatus) -> dict[str, object]:
    data = asdict(status)
    data.pop("received_at", None)
    return data


def endpoint_from(url: str | None, config: Path | None) -> ControllerEndpoint:
    """The controller endpoint from ``--controller`` or the config's ``[controller]``."""
    agent_config, _ = config_if_present(config)
    section = agent_config.controller if agent_config is not None else None
    defaults = ControllerEndpoint(
        transport="udp",
        community=section.community if section else "public",
        address=section.address if section else 1,
        baud=section.baud if section else 38400,
        timeout_ms=section.timeout_ms if section else 500,
        retries=section.retries if section else 2,
        max_varbinds=section.max_varbinds if section else 20,
    )
    chosen = url or (section.url if section else None)
    if not chosen:
        raise ConfigError("no controller given: use --controller URL or [controller] url")
    return parse_controller_url(chosen, defaults)


@app.command("probe")
@guarded
def probe(
    controller: str | None = typer.Option(
        None, "--controller", help="Controller URL, e.g. udp://127.0.0.1:16100 (default: config)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    count: int = typer.Option(20, "--count", "-n", min=1, help="Live status updates to show."),
    interval: float = typer.Option(0.1, "--interval", min=0.02, help="Seconds between updates."),
    as_json: bool = typer.Option(False, "--json", help="Identity, phases and one status as JSON."),
) -> None:
    """Show the controller's identity, phase configuration, running pattern and live status.

    Exit 0 when the controller answered, 3 when it did not, 2 for a bad URL or config.
    """
    endpoint = endpoint_from(controller, config)
    try:
        asyncio.run(_probe(make_controller(endpoint), count, interval, as_json))
    except ControllerError as err:
        typer.echo(f"greenwave: {endpoint.display}: {err}", err=True)
        raise typer.Exit(3) from None
