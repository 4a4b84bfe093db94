"""Against the real simulator: the poller notices a dead controller within 1 s, and recovers.

The poller runs with the agent's default settings (10 Hz, the config's
timeout, retries and ``down_after``). The simulator is stopped with SIGTERM
(it closes its sockets and its pty) and with SIGKILL (the kernel does), and
then started again on the same UDP port, TCP port and pty path: the same
poller, never restarted, sees the link come back and polls on -- over NTCIP
1202 and over GB/T 20999, whose driver also exchanges a heartbeat before it
calls a link up.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Final

import pytest

from agent.config import ControllerConfig
from agent.controller.poller import PollSettings, StatusPoller
from tests.simfront.helpers import SimProcess, start_sim

from .helpers import (
    LINKS,
    Protocol,
    Transport,
    controller_url,
    driver,
    polling,
    same_endpoints,
    start_all,
    statuses_until,
)

#: SPEC: the agent knows the controller is gone within one second.
DOWN_WITHIN_S: Final = 1.0


def _default_poll_settings() -> PollSettings:
    """What the agent polls with when the config says nothing."""
    defaults = ControllerConfig()
    return PollSettings(rate_hz=defaults.poll_hz, down_after=defaults.down_after)


async def _polls_flow(poller: StatusPoller, count: int = 3) -> None:
    """``count`` fresh statuses arrive (within 2 s at 10 Hz)."""
    await statuses_until(poller, lambda _: True, within=2.0, then=count - 1)


async def _stop(sim: SimProcess, sig: signal.Signals, poller: StatusPoller) -> tuple[float, str]:
    """Signal the simulator; seconds until the poller called the link down, and why."""
    await _polls_flow(poller)
    assert poller.link.up
    signalled = time.monotonic()
    sim.proc.send_signal(sig)
    async with asyncio.timeout(10):
        state = await poller.wait_link(False)
    await asyncio.to_thread(sim.proc.wait, 10)
    return state.since - signalled, state.reason


@pytest.mark.usefixtures("no_leaked_tasks")
@pytest.mark.parametrize(("protocol", "transport"), LINKS)
async def test_link_down_within_1_s_of_a_stop_and_up_again_after_a_restart(
    tmp_path: Path, protocol: Protocol, transport: Transport
) -> None:
    first = start_all(tmp_path, "--no-view", protocol=protocol)
    running = [first]
    again = same_endpoints(first, tmp_path, "--no-view", protocol=protocol)
    controller = driver(controller_url(first, transport, tmp_path, protocol=protocol))
    try:
        async with polling(controller, _default_poll_settings()) as poller:
            async with asyncio.timeout(10):
                await poller.wait_link(True)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                down_s, reason = await _stop(running[-1], sig, poller)
                running.append(await asyncio.to_thread(start_sim, tmp_path, *again))
                restarted = time.monotonic()
                async with asyncio.timeout(10):
                    await poller.wait_link(True)
                up_s = time.monotonic() - restarted
                await _polls_flow(poller)
                print(
                    f"{protocol} {transport} {sig.name}: link down {down_s * 1000:.0f} ms after "
                    f"the signal ({reason}); up {up_s * 1000:.0f} ms after the restart"
                )
                assert down_s <= DOWN_WITHIN_S
    finally:
        for sim in running:
            sim.stop()
