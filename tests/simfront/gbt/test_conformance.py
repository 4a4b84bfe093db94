"""Issue 8, acceptance 2: the simulator answers every captured query as the real device did.

For each of the 177 ``sample_send`` frames captured from a real controller,
the simulator's reply is well formed and of the same class as the device's
``sample_response`` -- a query reply, or the same error reply for the
objects the device does not have (17.2-17.4) -- for the same class, object,
attribute and element, with values of the same length. Where a value depends
on the plan (counts, cycles, stage chains, the clock) the simulator answers
its own. Once in process, on every item; then over a real UDP socket.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import FrameType, Message, decode, error_codes
from firmware_sim.gbt_responder import GbtResponder
from tests.protocols.gbt20999.catalog import CatalogItem, load_catalog
from tests.simfront.helpers import START_ARGS, controller, coordinated, start_sim

ITEMS = load_catalog()


@pytest.fixture(scope="module")
def responder() -> GbtResponder:
    """A coordinated controller running the example plan, with its GB/T front end."""
    return GbtResponder(coordinated(controller()))


def _shape(message: Message) -> tuple[FrameType, list[tuple[str, int]]]:
    return message.frame_type, [(str(v.address), len(v.value)) for v in message.values]


def _check(item: CatalogItem, answer: bytes | None) -> Message:
    assert answer is not None, "no reply"
    reply = decode(answer, framing=Framing.DATAGRAM)
    sent = decode(item.send, framing=Framing.DATAGRAM)
    device = decode(item.response, framing=Framing.DATAGRAM)
    assert reply.deviations == frozenset()
    assert (reply.ids, reply.sequence, reply.version) == (sent.ids, sent.sequence, sent.version)
    assert _shape(reply) == _shape(device)
    if reply.frame_type.is_error:
        assert error_codes(reply) == error_codes(device)
    return reply


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: item.code)
def test_every_captured_query_gets_a_reply_shaped_like_the_device_s(
    responder: GbtResponder, item: CatalogItem
) -> None:
    _check(item, responder.handle(item.send))


def test_values_that_do_not_depend_on_the_plan_match_the_device_where_they_can() -> None:
    responder = GbtResponder(coordinated(controller()))
    by_code = {item.code: item for item in ITEMS}
    for code in ("2.9.3.0", "4.2.1.1", "6.2.1.1", "9.2.1.1", "17.1.1.1", "2.7.0.0"):
        answer = responder.handle(by_code[code].send)
        assert answer is not None
        device = decode(by_code[code].response, framing=Framing.DATAGRAM)
        assert decode(answer, framing=Framing.DATAGRAM).values == device.values, code


SAMPLES = ("1.1.0.0", "3.3.1.1", "9.2.6.1", "13.2.2.1", "17.2.1.1", "18.1.0.0")


def test_the_samples_over_a_real_udp_socket(tmp_path: Path) -> None:
    sim = start_sim(tmp_path, "--gbt-udp", "127.0.0.1:0", *START_ARGS, "--no-view")
    try:
        host, port = sim.endpoints["gbt-udp"][0].rsplit(":", 1)
        by_code = {item.code: item for item in ITEMS}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            for code in SAMPLES:
                sock.sendto(by_code[code].send, (host, int(port)))
                answer, _ = sock.recvfrom(65535)
                _check(by_code[code], answer)
    finally:
        sim.stop()
    assert "gbt_frame_dropped" not in sim.log()
