"""GB/T 20999 controller URLs: the protocol, transport, header ids and options they name."""

from __future__ import annotations

import pytest

from agent.controller.factory import make_controller
from agent.controller.gbt20999.driver import GbtController
from agent.controller.gbt20999.link import GbtStreamLink
from agent.controller.ntcip.driver import NtcipController
from agent.controller.transport import UdpLink
from agent.controller.url import ControllerEndpoint, parse_controller_url
from agent.errors import ConfigError
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import Ids


@pytest.mark.parametrize(
    ("url", "transport", "where"),
    [
        ("gbt+udp://10.0.0.7:4050", "udp", ("10.0.0.7", 4050)),
        ("GBT+udp://[::1]:4050", "udp", ("::1", 4050)),
        ("gbt+tcp://10.0.0.7:8881", "stream", "socket://10.0.0.7:8881"),
        ("gbt+serial:///dev/ttyS0?baud=9600", "stream", "/dev/ttyS0"),
        ("gbt+socket://localhost:20000", "stream", "socket://localhost:20000"),
    ],
)
def test_documented_forms(url: str, transport: str, where: object) -> None:
    endpoint = parse_controller_url(url)
    assert endpoint.protocol == "gbt"
    assert endpoint.transport == transport
    if transport == "udp":
        assert (endpoint.host, endpoint.port) == where
    else:
        assert endpoint.serial_url == where


def test_header_ids_and_options() -> None:
    endpoint = parse_controller_url(
        "gbt+udp://h:1?center_id=5&controller_id=0x000C48FC&intersection_id=1"
        "&intersection=2&version=0x0101&heartbeat_s=3&timeout_ms=800&retries=1"
    )
    assert (endpoint.center_id, endpoint.controller_id, endpoint.intersection_id) == (
        5,
        0x000C48FC,
        1,
    )
    assert (endpoint.intersection, endpoint.version, endpoint.heartbeat_s) == (2, 0x0101, 3)
    assert (endpoint.timeout_ms, endpoint.retries) == (800, 1)
    defaults = parse_controller_url("gbt+serial:///dev/ttyS0")
    assert (defaults.center_id, defaults.controller_id, defaults.intersection_id) == (1, 0, 0)
    assert (defaults.intersection, defaults.version, defaults.parity) == (1, 0x0100, "N")
    assert parse_controller_url("gbt+serial:///dev/ttyS0?parity=even").parity == "E"


def test_config_defaults_carry_over_and_the_url_wins() -> None:
    defaults = ControllerEndpoint(transport="udp", baud=9600, timeout_ms=700)
    endpoint = parse_controller_url("gbt+serial:///dev/ttyS1?timeout_ms=900", defaults)
    assert (endpoint.baud, endpoint.timeout_ms) == (9600, 900)
    assert endpoint.display == "gbt+/dev/ttyS1 (9600 baud, controller 0, intersection 1)"
    assert parse_controller_url("gbt+udp://h:4050").display == "gbt+udp://h:4050"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gbt+udp://h:1?community=x", "unknown parameter(s) community (known for gbt:"),
        ("udp://h:1?controller_id=3", "unknown parameter(s) controller_id (known for ntcip:"),
        ("gbt+udp://h:1?center_id=256", "center_id=256 is outside 0-255"),
        ("gbt+udp://h:1?controller_id=0x100000000", "is outside 0-4294967295"),
        ("gbt+udp://h:1?intersection=0", "intersection=0 is outside 1-255"),
        ("gbt+udp://h:1?parity=mark", "parity='mark': use N, E or O"),
        ("gbt+http://h:1", "unknown scheme 'http'"),
    ],
)
def test_mistakes_are_explained(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_controller_url(url)
    assert message in str(caught.value)


def test_the_factory_builds_the_gbt_driver_on_the_right_transport() -> None:
    udp = make_controller(parse_controller_url("gbt+udp://127.0.0.1:4050?center_id=5"))
    assert isinstance(udp, GbtController)
    assert isinstance(udp.link, UdpLink)
    assert udp.client.framing is Framing.DATAGRAM
    assert udp.settings.ids == Ids(center=5, controller=0, intersection=0)
    stream = make_controller(parse_controller_url("gbt+tcp://127.0.0.1:8881?baud=9600"))
    assert isinstance(stream, GbtController)
    assert isinstance(stream.link, GbtStreamLink)
    assert stream.client.framing is Framing.STREAM
    assert stream.link.wire_seconds(96) == pytest.approx(0.1)  # 8N1: 10 bits a byte
    assert isinstance(make_controller(parse_controller_url("udp://h:161")), NtcipController)
