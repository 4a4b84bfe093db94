"""The GB/T stream link: frames out of noise, tolerated deviations, a closed line."""

from __future__ import annotations

import pytest

from agent.controller.gbt20999.link import GbtStreamLink
from agent.errors import LinkDown
from agent.protocols.crc import crc16_gbt20999
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import Ids, decode, encode, encode_body, query_message

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

IDS = Ids(center=0x7E, controller=0x5C7D, intersection=0)


async def test_frames_are_found_in_noise_and_handed_up_unescaped() -> None:
    link = GbtStreamLink("loop://")
    message = query_message(IDS, 0x7D, gbt.SCHEME_CYCLE.at(1))
    wire = encode(message, framing=Framing.STREAM)
    bad = bytearray(wire)
    bad[-2] ^= 0x01  # a bit flipped in the CRC
    link.on_bytes(b"\xff\x7d" + bytes(bad) + b"\x00" + wire[:9])
    link.on_bytes(wire[9:] + b"noise")
    datagram = await link.receive()
    assert decode(datagram, framing=Framing.DATAGRAM) == message
    assert link.counters.dropped_frames == 1
    assert link.counters.received == 1


async def test_an_openatc_frame_is_accepted_and_its_deviation_logged_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    link = GbtStreamLink("loop://")
    message = query_message(Ids(center=1, controller=0, intersection=0), 1, gbt.RUN_MODE.at(1))
    body = encode_body(message)
    # OpenATC: length = total - 2, CRC computed with the length still zero.
    openatc = (len(body) + 4).to_bytes(2, "big") + body
    openatc += crc16_gbt20999(b"\x00\x00" + body).to_bytes(2, "big")
    link.on_bytes(b"\x7e" + openatc + b"\x7d")
    link.on_bytes(b"\x7e" + openatc + b"\x7d")
    for _ in range(2):
        assert decode(await link.receive(), framing=Framing.DATAGRAM) == message
    logged = capsys.readouterr().out
    assert logged.count("gbt_frame_deviation") == 2  # one line per kind: length and CRC


async def test_a_closed_link_refuses_to_send_and_wakes_the_reader() -> None:
    link = GbtStreamLink("loop://", baud=9600, parity="E")
    assert link.wire_seconds(96) == pytest.approx(96 * 11 / 9600)  # the parity bit counts
    await link.open()
    assert link.is_open
    await link.close()
    with pytest.raises(LinkDown, match="closed"):
        link.send(b"\x7e\x7d")
    with pytest.raises(LinkDown):
        await link.receive()
    with pytest.raises(LinkDown, match="cannot open"):
        await GbtStreamLink("/nonexistent/ttyGBT").open()
