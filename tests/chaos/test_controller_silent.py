"""Chaos: the controller falls silent (it keeps its line but answers nothing), many times.

The simulator behind a UDP cabinet is frozen with SIGSTOP -- its socket stays
bound, requests pile up unanswered, as with a hung controller CPU -- for a
random 0.1-0.6 s after the agent noticed, then thawed (SIGCONT): it answers
again, and first the requests that waited. Each time, starting from
``central``: the link reported down and mode ``fault`` within ``DOWN_WITHIN_S``
(links.py), back up and ``local`` by itself (no agent restart), a command in flight
answered ``applied`` or ``failed``, the state files readable. At the end: no
command accepted or applied twice, pattern switches only as commanded, events
contiguous.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Mosquitto
from tests.chaos.links import LinkRounds
from tests.chaos.rig import (
    CENTRAL_CONFIG,
    Central,
    make_chaos,
    report,
)
from tests.e2e.harness import Keys, new_cabinet

DEVICE = "cab-chaos-silent"
DEFAULT_ROUNDS = 6


@pytest.mark.timeout(240)
async def test_the_controller_falls_silent_and_answers_again(
    tmp_path: Path,
    broker: Mosquitto,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    chaos = make_chaos("controller-silent", DEFAULT_ROUNDS)
    cabinet = new_cabinet(tmp_path / DEVICE, DEVICE, broker, keys, central_config=CENTRAL_CONFIG)
    pid = cabinet.sim.proc.pid

    async def freeze() -> None:
        os.kill(pid, signal.SIGSTOP)

    async def thaw() -> None:
        os.kill(pid, signal.SIGCONT)

    try:
        async with Central(broker, cabinet, keys.signer()) as central:
            rounds = LinkRounds(chaos, cabinet, central, {"silences": (freeze, thaw)})
            downs = await rounds.run()
    finally:
        os.kill(pid, signal.SIGCONT)
        cabinet.stop()
        cabinet.sim.stop()
    chaos.checked = [
        rounds.figures(),
        f"{downs} controller-offline events, events 1..{central.highest} contiguous",
        f"{rounds.in_flight} commands in flight at the fault answered "
        f"({rounds.in_flight_failed} failed), none accepted or applied twice",
        "state readable after each",
    ]
    report(chaos, capsys, record_property)
