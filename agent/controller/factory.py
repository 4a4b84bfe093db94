"""Build the right driver and transport for a controller URL."""

from __future__ import annotations

from agent.controller.gbt20999.client import GbtSettings
from agent.controller.gbt20999.driver import GbtController
from agent.controller.gbt20999.link import GbtStreamLink
from agent.controller.interface import Controller
from agent.controller.ntcip.driver import NtcipController
from agent.controller.ntcip.snmp_client import SnmpSettings
from agent.controller.transport import MessageLink, PmppStreamLink, UdpLink
from agent.controller.url import ControllerEndpoint
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.message import Ids


def make_link(endpoint: ControllerEndpoint) -> MessageLink:
    """The NTCIP transport a URL names (not yet open)."""
    if endpoint.transport == "udp":
        return UdpLink(endpoint.host, endpoint.port)
    return PmppStreamLink(endpoint.serial_url, address=endpoint.address, baud=endpoint.baud)


def make_gbt_controller(endpoint: ControllerEndpoint) -> GbtController:
    """The GB/T 20999 driver for an endpoint: datagrams on UDP, escaped frames on streams."""
    settings = GbtSettings(
        ids=Ids(
            center=endpoint.center_id,
            controller=endpoint.controller_id,
            intersection=endpoint.intersection_id,
        ),
        version=endpoint.version,
        timeout_s=endpoint.timeout_ms / 1000,
        retries=endpoint.retries,
        heartbeat_s=endpoint.heartbeat_s,
        intersection=endpoint.intersection,
    )
    if endpoint.transport == "udp":
        return GbtController(
            UdpLink(endpoint.host, endpoint.port), settings, framing=Framing.DATAGRAM
        )
    link = GbtStreamLink(endpoint.serial_url, baud=endpoint.baud, parity=endpoint.parity)
    return GbtController(link, settings, framing=Framing.STREAM)


def make_controller(endpoint: ControllerEndpoint) -> Controller:
    """The driver for an endpoint (not yet open)."""
    if endpoint.protocol == "gbt":
        return make_gbt_controller(endpoint)
    settings = SnmpSettings(
        community=endpoint.community.encode(),
        timeout_s=endpoint.timeout_ms / 1000,
        retries=endpoint.retries,
        max_varbinds=endpoint.max_varbinds,
    )
    return NtcipController(make_link(endpoint), settings)
