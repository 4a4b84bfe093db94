"""Against the real simulator: the controller's clock is written, then read back.

``set_clock`` (``Authority.keep_clock`` copies a trusted system clock into the
controller) writes the controller's UTC clock -- NTCIP ``globalTime.0``, GB/T
20999 ``device_status.utc`` -- and reads it back; a read-back more than
``CLOCK_TOLERANCE_S`` (2 s) away is a ``ControllerError`` naming the object,
as is a refusal. The simulator starts at 2024-01-01 07:00 UTC and is set to
2027-01-15 08:00 UTC, so a pass shows the clock really moved. Its write hooks
play a controller that does not take the time: ``--ignore`` stores nothing,
``--alter`` stores the time plus a delta, ``--refuse`` answers with an error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.controller.ntcip.driver import CLOCK_TOLERANCE_S
from agent.errors import ControllerError, LinkDown
from tests.simfront.helpers import MONDAY_0700

from .helpers import Protocol, connected_to, controller_url, start_all

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

#: 2027-01-15 08:00:00 UTC: three years after the simulator's start.
EPOCH = 1_800_000_000


@pytest.mark.parametrize("protocol", ["ntcip", "gbt"])
async def test_a_written_clock_is_confirmed_and_kept(tmp_path: Path, protocol: Protocol) -> None:
    # A controller in a time zone: the agent writes and reads UTC all the same.
    sim = start_all(tmp_path, "--no-view", "--utc-offset", "+08:00", protocol=protocol)
    try:
        async with connected_to(controller_url(sim, "udp", tmp_path, protocol=protocol)) as ctrl:
            before = await ctrl.read_status()
            await ctrl.set_clock(EPOCH)
            after = await ctrl.read_status()
    finally:
        sim.stop()
    assert before.controller_time is not None
    assert abs(before.controller_time - MONDAY_0700) <= 60
    assert after.controller_time is not None
    assert abs(after.controller_time - EPOCH) <= CLOCK_TOLERANCE_S


@pytest.mark.parametrize(
    ("protocol", "hook", "message"),
    [
        pytest.param(
            "ntcip",
            ("--ignore", "globalTime"),
            r"controller did not confirm globalTime\.0: wrote 1800000000, reads back 17040924\d\d",
            id="ntcip-ignore",
        ),
        pytest.param(
            "ntcip",
            ("--alter", "globalTime=+3"),
            r"controller did not confirm globalTime\.0: wrote 1800000000, reads back 180000000[34]",
            id="ntcip-alter-3s",
        ),
        pytest.param(
            "ntcip",
            ("--refuse", "globalTime:badValue"),
            r"controller refused globalTime\.0 = 1800000000 \(badValue\)",
            id="ntcip-refuse",
        ),
        pytest.param(
            "gbt",
            ("--gbt-ignore", "device_status.utc"),
            r"controller did not confirm device_status\.utc: wrote 2027-01-15 08:00:00, "
            r"reads back 2024-01-01 07:0\d:\d\d",
            id="gbt-ignore",
        ),
        pytest.param(
            "gbt",
            ("--gbt-refuse", "device_status.utc"),
            r"controller refused device_status\.utc = 2027-01-15 08:00:00 \(0x40 general error\)",
            id="gbt-refuse",
        ),
    ],
)
async def test_a_clock_the_controller_does_not_take_fails_naming_the_object(
    tmp_path: Path, protocol: Protocol, hook: tuple[str, ...], message: str
) -> None:
    sim = start_all(tmp_path, *hook, "--no-view", protocol=protocol)
    try:
        async with connected_to(controller_url(sim, "udp", tmp_path, protocol=protocol)) as ctrl:
            with pytest.raises(ControllerError) as caught:
                await ctrl.set_clock(EPOCH)
            # A controller that will not take the time is not a dead link.
            status = await ctrl.read_status()
    finally:
        sim.stop()
    error = caught.value
    assert not isinstance(error, LinkDown), f"a refusal must not look like a dead link: {error}"
    assert error.code == "E_CONTROLLER"
    assert re.fullmatch(message, str(error)), str(error)
    assert status.controller_time is not None
    assert abs(status.controller_time - EPOCH) > CLOCK_TOLERANCE_S


async def test_a_read_back_within_two_seconds_is_confirmed(tmp_path: Path) -> None:
    """The tolerance: a controller that stores the time 2 s early still passes (3 s fails above)."""
    sim = start_all(tmp_path, "--alter", "globalTime=-2", "--no-view")
    try:
        async with connected_to(controller_url(sim, "udp", tmp_path)) as ctrl:
            await ctrl.set_clock(EPOCH)
            status = await ctrl.read_status()
    finally:
        sim.stop()
    assert status.controller_time is not None
    assert 0 <= EPOCH - status.controller_time <= CLOCK_TOLERANCE_S
