"""The GB/T client on a real UDP socket: matching, the captured device's quirks, errors.

The far end is a small UDP server in the test's loop: the captured device
replayed from its 177 frames, a controller that answers late, one that never
answers, and one that checks on us with its own heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from agent.controller.gbt20999.client import ECHOES_TRUSTED, GbtClient, GbtRefusal, GbtSettings
from agent.controller.transport import UdpLink
from agent.errors import LinkDown
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import (
    Address,
    ErrorCode,
    FrameType,
    Ids,
    Message,
    decode,
    encode,
    error_reply_to,
    heartbeat,
    reply_to,
)
from firmware_sim.gbt_responder import GbtResponder
from firmware_sim.serve import serve_udp
from tests.protocols.gbt20999.catalog import load_catalog
from tests.simfront.helpers import controller

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

#: The ids the capture tool used with the real controller.
DEVICE_IDS = Ids(center=5, controller=0, intersection=0)

Answer = Callable[[Message], list[bytes]]


def wire(message: Message) -> bytes:
    """A datagram."""
    return encode(message, framing=Framing.DATAGRAM)


@contextlib.asynccontextmanager
async def far_end(answer: Answer) -> AsyncIterator[tuple[int, list[Message]]]:
    """A UDP server answering each request with ``answer``; yields its port and what it got."""
    received: list[Message] = []
    transport: asyncio.DatagramTransport | None = None
    peer: list[tuple[str, int]] = []

    class _Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            message = decode(data, framing=Framing.DATAGRAM)
            received.append(message)
            peer[:] = [addr]
            assert transport is not None
            for datagram in answer(message):
                transport.sendto(datagram, addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Protocol, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1], received
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def client(port: int, **settings: float) -> AsyncIterator[GbtClient]:
    link = UdpLink("127.0.0.1", port)
    await link.open()
    try:
        yield GbtClient(
            link,
            GbtSettings(ids=DEVICE_IDS, **settings),  # type: ignore[arg-type]
            framing=Framing.DATAGRAM,
        )
    finally:
        await link.close()


def replay_device(message: Message) -> list[bytes]:
    """The captured controller: its recorded reply to a query for the same address."""
    by_address = {decode(i.send, framing=Framing.DATAGRAM).values[0].address: i for i in ITEMS}
    return [by_address[message.values[0].address].response]


ITEMS = load_catalog()


async def test_the_captured_device_is_understood_although_it_does_not_echo() -> None:
    async with far_end(replay_device) as (port, _), client(port) as gbt_client:
        manufacturer, cycle = [
            await gbt_client.query([address])
            for address in (gbt.DEVICE_MANUFACTURER.at(), gbt.SCHEME_CYCLE.at(1))
        ]
        assert gbt.DEVICE_MANUFACTURER.decode(manufacturer[0]) == "东土正创"
        assert gbt.SCHEME_CYCLE.decode(cycle[0]) == 120
        # It answers sequence 2 whatever it is asked: request 2 looks echoed, by chance.
        assert gbt_client.counters.unechoed_replies == 1
        for _ in range(5):
            (run_mode,) = await gbt_client.query([gbt.RUN_MODE.at(1)])
            assert gbt.RUN_MODE.decode(run_mode) == 0x23
        assert gbt_client.counters.unechoed_replies == 6
        with pytest.raises(GbtRefusal) as caught:
            await gbt_client.query([Address(17, 2, 1, 1)])
    assert str(caught.value) == (
        "controller cannot read 17.2.1.1 (unknown) (0x30 object does not exist)"
    )
    assert caught.value.error is ErrorCode.NOT_FOUND
    assert caught.value.code == "E_CONTROLLER"


async def test_a_late_answer_to_an_earlier_request_is_dropped() -> None:
    last: list[Message] = []

    def late_then_right(message: Message) -> list[bytes]:
        out = []
        if last and message.sequence > ECHOES_TRUSTED:  # a late answer to the previous request
            old = reply_to(last[0], [(last[0].values[0].address, b"\x00\x00\x00\x01")])
            out.append(encode(old, framing=Framing.DATAGRAM))
        value = message.sequence.to_bytes(4, "big")
        out.append(wire(reply_to(message, [(message.values[0].address, value)])))
        last[:] = [message]
        return out

    async with far_end(late_then_right) as (port, received), client(port) as gbt_client:
        for _ in range(ECHOES_TRUSTED + 3):
            (value,) = await gbt_client.query([gbt.SCHEME_CYCLE.at(1)])
            assert gbt.SCHEME_CYCLE.decode(value) == received[-1].sequence
    assert gbt_client.counters.stale_replies == 3
    assert gbt_client.counters.unechoed_replies == 0


async def test_silence_is_a_dead_link_after_the_retries() -> None:
    fast = {"timeout_s": 0.05, "retries": 2, "poll_timeout_s": 0.05}
    async with far_end(lambda message: []) as (port, received), client(port, **fast) as gbt_client:
        with pytest.raises(LinkDown, match="no answer after 3 tries"):
            await gbt_client.query([gbt.SCHEME_CYCLE.at(1)])
        with pytest.raises(LinkDown, match="no answer after 1 try"):
            await gbt_client.query([gbt.SCHEME_CYCLE.at(1)], poll=True)
        with pytest.raises(LinkDown):
            await gbt_client.heartbeat()
    assert len(received) == 5
    assert [m.sequence for m in received] == [1, 2, 3, 4, 5]


async def test_large_requests_are_split_into_frames() -> None:
    def answer(message: Message) -> list[bytes]:
        values = [
            (v.address, gbt.SCHEME_STAGE_CHAIN.encode((v.address.element,))) for v in message.values
        ]
        return [encode(reply_to(message, values), framing=Framing.DATAGRAM)]

    rows = range(1, 201)
    async with far_end(answer) as (port, received), client(port) as gbt_client:
        values = await gbt_client.query([gbt.SCHEME_STAGE_CHAIN.at(n) for n in rows])
    assert [gbt.SCHEME_STAGE_CHAIN.decode(v)[0] for v in values] == list(rows)
    assert len(received) > 2
    assert all(len(encode(m, framing=Framing.DATAGRAM)) <= 1472 for m in received)
    assert gbt_client.counters.splits == len(received) - 1


async def test_the_controller_s_own_heartbeat_is_answered() -> None:
    def check_on_us(message: Message) -> list[bytes]:
        if message.frame_type is not FrameType.QUERY:
            return []
        ping = encode(heartbeat(DEVICE_IDS, 77), framing=Framing.DATAGRAM)
        value = gbt.RUN_MODE.encode(0x23)
        pong = wire(reply_to(message, [(message.values[0].address, value)]))
        return [ping, pong]

    async with far_end(check_on_us) as (port, received), client(port) as gbt_client:
        (value,) = await gbt_client.query([gbt.RUN_MODE.at(1)])
        assert gbt.RUN_MODE.decode(value) == 0x23
        for _ in range(50):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
    assert received[1].frame_type is FrameType.HEARTBEAT_REPLY
    assert received[1].sequence == 77
    assert gbt_client.counters.controller_heartbeats == 1


async def test_a_refused_set_names_the_object_value_and_code() -> None:
    def refuse(message: Message) -> list[bytes]:
        bad = message.values[1].address
        return [wire(error_reply_to(message, [(bad, ErrorCode.OUT_OF_RANGE)]))]

    async with far_end(refuse) as (port, _), client(port) as gbt_client:
        with pytest.raises(GbtRefusal) as caught:
            await gbt_client.set(
                [
                    (gbt.SCHEME_OFFSET.at(2), gbt.SCHEME_OFFSET.encode(12)),
                    (gbt.SCHEME_CYCLE.at(2), gbt.SCHEME_CYCLE.encode(300)),
                ]
            )
    assert (
        str(caught.value) == "controller refused scheme.cycle[2] = 300 (0x12 value is out of range)"
    )


async def test_serve_udp_of_the_simulator_is_a_usable_far_end() -> None:
    """The simulator's own UDP pipe (used by the driver tests) answers the client too."""
    responder = GbtResponder(controller(), link_timeout_s=0)
    transport, (_, port) = await serve_udp(responder.handle, "127.0.0.1", 0)
    try:
        async with client(port) as gbt_client:
            await gbt_client.heartbeat()
            (value,) = await gbt_client.query([gbt.SCHEME_CYCLE.at(2)])
    finally:
        transport.close()
    assert gbt.SCHEME_CYCLE.decode(value) == 90
