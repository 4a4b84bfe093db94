"""The composition root: turn the config into running parts and hand them to the supervisor.

This is the one module that names concrete classes — the controller driver for
the configured URL, the aiomqtt link, the on-disk stores — so that the
supervisor itself sees only interfaces (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from agent import __version__
from agent.central.commands import CommandSettings
from agent.central.jws import CommandVerifier
from agent.central.link import MqttLink
from agent.central.outbox import EventOutbox
from agent.config import AgentConfig
from agent.controller.factory import make_controller
from agent.controller.url import ControllerEndpoint, parse_controller_url
from agent.errors import ConfigError
from agent.local.server import LocalServer
from agent.logs import get_logger
from agent.supervisor.audit import AUDIT_DIR, AuditEntry, AuditLog
from agent.supervisor.clock import ClockTrust
from agent.supervisor.notify import Notifier
from agent.supervisor.runtime import Parts, Supervisor
from agent.supervisor.store import CommandStore

log = get_logger("app")

#: Where the events outbox lives under the state directory.
OUTBOX_DIR = "events"


def command_settings(config: AgentConfig) -> CommandSettings:
    """The verification limits of ``[central]``."""
    central = config.central
    return CommandSettings(
        skew_s=central.skew_s,
        max_lifetime_s=central.max_command_lifetime_s,
        max_token_bytes=central.max_command_bytes,
        replay_capacity=central.replay_capacity,
    )


def controller_endpoint(config: AgentConfig) -> ControllerEndpoint:
    """The controller URL of ``[controller]``, its other keys as defaults."""
    section = config.controller
    if section.url is None:
        raise ConfigError("[controller] url is not set: name the cabinet's controller")
    defaults = ControllerEndpoint(
        transport="udp",
        community=section.community,
        address=section.address,
        baud=section.baud,
        timeout_ms=section.timeout_ms,
        retries=section.retries,
        max_varbinds=section.max_varbinds,
    )
    return parse_controller_url(section.url, defaults)


def _state_dir(config: AgentConfig) -> Path:
    state = config.state.dir
    try:
        state.mkdir(mode=0o750, parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"[state] dir {state}: cannot create: {err.strerror or err}") from err
    return state


@contextlib.contextmanager
def _audit_log(state: Path, outbox: EventOutbox) -> Iterator[AuditLog]:
    """The audit log; every entry is also forwarded to central with the events."""

    def forward(entry: AuditEntry) -> None:
        outbox.append(entry.as_event())

    audit = AuditLog.open(state / AUDIT_DIR, on_entry=forward)
    try:
        yield audit
    finally:
        audit.close()


@contextlib.contextmanager
def build(config: AgentConfig, *, wall: Callable[[], float] = time.time) -> Iterator[Supervisor]:
    """Open every part the config names; close the on-disk ones on the way out."""
    controller = make_controller(controller_endpoint(config))
    state = _state_dir(config)
    verifier = CommandVerifier.open(
        state, device_id=config.device.id, clock=wall, settings=command_settings(config)
    )
    store = CommandStore.open(state)
    link = MqttLink.from_config(config, software_version=__version__)
    with (
        EventOutbox.open(state / OUTBOX_DIR, capacity=config.central.events_capacity) as outbox,
        _audit_log(state, outbox) as audit,
    ):
        parts = Parts(
            config=config,
            controller=controller,
            link=link,
            outbox=outbox,
            verifier=verifier,
            store=store,
            clock_trust=ClockTrust(config.clock),
            audit=audit,
            notifier=Notifier(),
            local=LocalServer(config.local),
        )
        yield Supervisor(parts, wall=wall)


async def run_agent(config: AgentConfig, *, ready: Callable[[], None] | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    assert current is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, current.cancel)
    with build(config) as supervisor:
        log.info(
            "agent_starting",
            device=config.device.id,
            controller=supervisor.parts.controller.endpoint,
            broker=f"{config.mqtt.host}:{config.mqtt.port}",
            pid=os.getpid(),
        )
        try:
            await supervisor.run(ready=ready)
        except asyncio.CancelledError:
            supervisor.notifier.stopping()
            log.info("agent_stopped", reason="signal")
