"""Against the real simulator: line noise before, inside and after PMPP frames.

The codec-level cases (every kind of bad frame, resynchronisation, the
receive cap) are in ``tests/protocols/test_pmpp.py``. Here the whole driver
runs against the simulator over a line that adds noise where a test says:

- noise *between* frames (before or after one) costs nothing: the request
  is answered on the first try, in both directions, even a status poll that
  has no retry;
- noise *inside* a frame loses that frame (its FCS fails): a status poll
  misses once, a command request is answered on its retry;
- a frame for another drop, a reply nobody asked for (a duplicate or a
  stale one) is skipped and counted;
- a line that is noisy all the time still carries a plan load, a command
  and a 10 Hz poll that never loses the link.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest

from agent.controller.ntcip.driver import NtcipController
from agent.controller.poller import LinkState
from agent.errors import LinkDown
from agent.protocols import ntcip1202 as mib
from agent.protocols.pmpp import encode_frame
from agent.protocols.snmp import Integer, Pdu, PduType, SnmpMessage, VarBind, encode_message
from tests.simfront.helpers import SimProcess, example_plan

from .helpers import connected, polling, pty_path, start_all, statuses_until
from .noisy_line import Direction, NoisyLine

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

#: Kinds of line noise; none of them contains a valid frame.
JUNK: Final = {
    "plain": b"\x00\xff\x13\xc1 line noise \x05\x13\xc1\x30",
    "bad frame": b"\x7e\x05\x13\xc1\x30\x82 garbage \x12\x34\x7e",
    "half frame": b"\x7e\x05\x13\xc1\x30\x29\x02\x01",
    "bad escape": b"\x7e\x05\x7d\x01\x7e",
    "abort": b"\x7e\x05\x13\xc1\x30\x7d",
    "too long": b"\x7e" + bytes(range(1, 126)) * 24,
}
DIRECTIONS: Final[tuple[Direction, ...]] = ("to_sim", "to_agent")
#: Command requests: a short timeout so a lost frame is retried quickly (and a
#: fast wire, whose time is allowed on top of it).
QUERY: Final = "timeout_ms=200&baud=115200"
#: Noise that breaks a frame it lands in.
BREAKING: Final = ("plain", "bad frame", "bad escape")
PROBE_OIDS: Final = [mib.MAX_PHASES.instance(), mib.PATTERN_CYCLE_TIME.instance(1)]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimProcess]:
    """A simulator with a PMPP TCP port and a pty."""
    process = start_all(tmp_path, "--no-view")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def line(sim: SimProcess) -> AsyncIterator[NoisyLine]:
    """A noisy line to the simulator's TCP port."""
    async with NoisyLine(sim.tcp_address) as relay:
        yield relay


@pytest.fixture
async def ctrl(line: NoisyLine) -> AsyncIterator[NtcipController]:
    """The driver, connected through the noisy line."""
    async with connected(f"tcp://127.0.0.1:{line.port}?{QUERY}") as driver:
        yield driver


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_noise_before_or_after_a_frame_costs_no_retry(
    line: NoisyLine, ctrl: NtcipController, direction: Direction
) -> None:
    for where in ("before", "after"):
        for junk in JUNK.values():
            line.arm(direction, where, junk)
            status = await ctrl.read_status()  # a status poll: one try only
            assert status.controller_time is not None
    await ctrl.read_status()
    assert ctrl.client.counters.timeouts == 0
    if direction == "to_agent":
        # Every junk with a flag made a bad frame the link skipped and counted.
        assert ctrl.link.counters.dropped_frames >= 2 * 4


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_noise_inside_a_frame_loses_it_and_the_retry_gets_through(
    line: NoisyLine, ctrl: NtcipController, direction: Direction
) -> None:
    for name in BREAKING:
        junk = JUNK[name]
        line.arm(direction, "inside", junk)
        with pytest.raises(LinkDown, match="no answer"):
            await ctrl.read_status()  # a missed poll; the poller's next poll is the retry
        assert (await ctrl.read_status()).controller_time is not None, name

        timeouts = ctrl.client.counters.timeouts
        line.arm(direction, "inside", junk)
        values = await ctrl.client.get(PROBE_OIDS)  # a command request is retried
        assert values[0] == Integer(16), name
        assert ctrl.client.counters.timeouts == timeouts + 1, name


async def test_foreign_duplicate_and_stale_frames_are_skipped(
    line: NoisyLine, ctrl: NtcipController
) -> None:
    stale = SnmpMessage(
        community=b"public",
        pdu=Pdu(
            kind=PduType.GET_RESPONSE,
            request_id=1_999_999_999,
            varbinds=(VarBind(oid=PROBE_OIDS[0], value=Integer(99)),),
        ),
    )
    stale_frame = encode_frame(address=1, payload=encode_message(stale))
    foreign_frame = encode_frame(address=2, payload=encode_message(stale))
    line.arm("to_agent", "before", foreign_frame + stale_frame)
    assert (await ctrl.client.get(PROBE_OIDS))[0] == Integer(16)
    line.arm_mangle("to_agent", lambda frame: frame + frame)  # a duplicated reply
    await ctrl.read_status()
    await ctrl.read_status()
    link = ctrl.link.counters
    assert link.foreign_frames == 1
    assert ctrl.client.counters.stale_responses == 2  # the stale reply, then the duplicate
    assert ctrl.client.counters.timeouts == 0


async def test_a_noisy_line_carries_a_plan_a_command_and_a_10_hz_poll(
    line: NoisyLine, ctrl: NtcipController
) -> None:
    rng = random.Random(2101)
    corrupted = 0

    def noise() -> bytes:
        if rng.random() < 0.05:
            return b"\x7e" + bytes(rng.randrange(1, 126) for _ in range(2500))
        return bytes(
            rng.choice(b"\x7e\x7d\x00\xff\x05\x13\xc1ab") for _ in range(rng.randrange(40))
        )

    def noisy(frame: bytes) -> bytes:
        return noise() + frame + noise()

    def sometimes_broken(frame: bytes) -> bytes:
        nonlocal corrupted
        if line.frames("to_agent") % 15 == 0:
            corrupted += 1
            frame = frame[:10] + b"\x00" + frame[10:]
        return noisy(frame)

    line.every("to_sim", noisy)
    line.every("to_agent", sometimes_broken)
    report = await ctrl.write_plan(example_plan())
    assert report.objects_verified == report.objects_written
    await ctrl.command_pattern(2)
    changes: list[LinkState] = []
    async with polling(ctrl, on_link_change=changes.append) as poller:
        seen = await statuses_until(poller, lambda s: s.commanded == 2, within=5, then=9)
    assert len(seen) == 10
    assert [state.up for state in changes] == [True], "the link never went down"
    assert corrupted >= 3
    assert ctrl.link.counters.dropped_frames >= corrupted


async def test_junk_written_on_the_pty_between_requests_is_skipped(
    sim: SimProcess, tmp_path: Path
) -> None:
    """Another writer on the real pty puts junk on the line to the simulator."""
    async with connected(f"serial://{pty_path(tmp_path)}?{QUERY}") as driver:
        fd = os.open(pty_path(tmp_path), os.O_WRONLY | os.O_NOCTTY)
        try:
            for junk in JUNK.values():
                os.write(fd, junk)
                assert (await driver.read_status()).controller_time is not None
            await driver.write_plan(example_plan())
        finally:
            os.close(fd)
        assert driver.client.counters.timeouts == 0
