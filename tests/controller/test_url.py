"""Controller URLs: every documented form parses; mistakes say what is wrong."""

from __future__ import annotations

import pytest

from agent.controller.url import ControllerEndpoint, parse_controller_url
from agent.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "transport", "where"),
    [
        ("udp://127.0.0.1:16100", "udp", ("127.0.0.1", 16100)),
        ("ntcip+udp://10.1.2.3:161", "udp", ("10.1.2.3", 161)),
        ("udp://[::1]:501", "udp", ("::1", 501)),
        ("tcp://127.0.0.1:16102", "stream", "socket://127.0.0.1:16102"),
        ("serial:///dev/ttyUSB0?baud=9600", "stream", "/dev/ttyUSB0"),
        ("ntcip+serial:///tmp/gw-pty", "stream", "/tmp/gw-pty"),
        ("socket://localhost:7000", "stream", "socket://localhost:7000"),
        ("loop://", "stream", "loop://"),
    ],
)
def test_documented_forms(url: str, transport: str, where: object) -> None:
    endpoint = parse_controller_url(url)
    assert endpoint.transport == transport
    if transport == "udp":
        assert (endpoint.host, endpoint.port) == where
    else:
        assert endpoint.serial_url == where


def test_query_parameters_override_defaults() -> None:
    defaults = ControllerEndpoint(transport="udp", community="city", baud=9600, retries=1)
    endpoint = parse_controller_url(
        "serial:///dev/ttyS0?address=5&max_varbinds=8&timeout_ms=900", defaults
    )
    assert endpoint.community == "city"
    assert endpoint.baud == 9600
    assert endpoint.retries == 1
    assert (endpoint.address, endpoint.max_varbinds, endpoint.timeout_ms) == (5, 8, 900)
    assert "city" not in endpoint.display


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("127.0.0.1:161", "no scheme"),
        ("http://x:1", "unknown scheme 'http'"),
        ("snmp+udp://x:1", "unknown protocol 'snmp'"),
        ("udp://host", "give host and port"),
        ("udp://host:99999", "0-65535"),
        ("serial://", "give the device"),
        ("udp://h:1?baud=fast", "baud='fast' is not a whole number"),
        ("udp://h:1?address=9000", "address=9000 is outside 0-8191"),
        ("udp://h:1?colour=red", "unknown parameter(s) colour"),
    ],
)
def test_mistakes_are_explained(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_controller_url(url)
    assert message in str(caught.value)
