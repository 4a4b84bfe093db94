"""Chaos: the serial line to the controller cut, many times (a pulled cable, a pulled adapter).

The agent talks NTCIP over PMPP on a serial port (``serial://``): a pty of
:class:`~tests.chaos.links.SerialCable`, which carries the bytes to the
simulator's own pty. Each round, starting from ``central``, the line is
either **pulled** (the port stays open, nothing gets through) or
**unplugged** (the device disappears, reads fail at once), for a random
0.1-0.6 s after the agent noticed, then repaired. Each time: the link reported
down and mode ``fault`` within ``DOWN_WITHIN_S`` (links.py), back up and ``local`` by
itself (no agent restart: it reopens the port), a command in flight answered,
the state files readable. At the end: no command accepted or applied twice,
pattern switches only as commanded, events contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Mosquitto
from tests.chaos.links import LinkRounds, SerialCable
from tests.chaos.rig import (
    CENTRAL_CONFIG,
    Central,
    make_chaos,
    report,
)
from tests.e2e.harness import Cabinet, Keys
from tests.simfront.helpers import START_ARGS, start_sim

DEVICE = "cab-chaos-serial"
DEFAULT_ROUNDS = 6


@dataclass
class SerialCabinet(Cabinet):
    """A cabinet whose controller is on a serial port (the cable's end)."""

    port: Path = Path()

    @property
    def controller_url(self) -> str:
        return f"serial://{self.port}"


@pytest.mark.timeout(240)
async def test_the_serial_line_is_cut_and_repaired(
    tmp_path: Path,
    broker: Mosquitto,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    chaos = make_chaos("serial-cut", DEFAULT_ROUNDS)
    root = tmp_path / DEVICE
    root.mkdir()
    far = root / "sim-tty"
    sim = start_sim(root, "--pty", str(far), "--no-view", "--speed", "10", *START_ARGS)
    cable = SerialCable(root / "ttyGW0", far)
    cable.start()
    cabinet = SerialCabinet(
        device=DEVICE,
        root=root,
        broker=broker,
        keys=keys,
        sim=sim,
        central_config=CENTRAL_CONFIG,
        port=cable.port,
    )
    cabinet.provision()

    async def pull() -> None:
        await cable.do("pull")

    async def unplug() -> None:
        await cable.do("unplug")

    async def plug() -> None:
        await cable.do("plug")

    faults = {"cables pulled": (pull, plug), "adapters unplugged": (unplug, plug)}
    try:
        async with Central(broker, cabinet, keys.signer()) as central:
            rounds = LinkRounds(chaos, cabinet, central, faults)
            downs = await rounds.run()
    finally:
        cabinet.stop()
        sim.stop()
        cable.close()
    chaos.checked = [
        rounds.figures(),
        f"{downs} controller-offline events, events 1..{central.highest} contiguous",
        f"{rounds.in_flight} commands in flight at the cut answered "
        f"({rounds.in_flight_failed} failed), none accepted or applied twice",
        "state readable after each",
    ]
    report(chaos, capsys, record_property)
