"""Build the right driver and transport for a controller URL."""

from __future__ import annotations

from agent.controller.interface import Controller
from agent.controller.ntcip.driver import NtcipController
from agent.controller.ntcip.snmp_client import SnmpSettings
from agent.controller.transport import MessageLink, PmppStreamLink, UdpLink
from agent.controller.url import ControllerEndpoint


def make_link(endpoint: ControllerEndpoint) -> MessageLink:
    """The transport a URL names (not yet open)."""
    if endpoint.transport == "udp":
        return UdpLink(endpoint.host, endpoint.port)
    return PmppStreamLink(endpoint.serial_url, address=endpoint.address, baud=endpoint.baud)


def make_controller(endpoint: ControllerEndpoint) -> Controller:
    """The driver for an endpoint (not yet open)."""
    settings = SnmpSettings(
        community=endpoint.community.encode(),
        timeout_s=endpoint.timeout_ms / 1000,
        retries=endpoint.retries,
        max_varbinds=endpoint.max_varbinds,
    )
    return NtcipController(make_link(endpoint), settings)
