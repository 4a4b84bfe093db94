"""Controller URLs: how a technician names the cabinet's controller in one string.

The scheme names the transport; a ``PROTOCOL+`` prefix names the protocol
(NTCIP 1202 when there is none):

============================================  ============================================
URL                                           meaning
============================================  ============================================
``udp://10.0.0.5:161``                         NTCIP 1202, SNMPv1 over UDP (Ethernet cabinet)
``tcp://127.0.0.1:16102``                      NTCIP 1202, SNMP in PMPP frames over TCP
                                               (terminal server, the simulator's TCP port)
``serial:///dev/ttyUSB0?baud=9600``            NTCIP 1202, SNMP in PMPP frames on RS-232
``socket://…``, ``rfc2217://…``, ``loop://``     PMPP over that pyserial URL, as it is
``ntcip+udp://…``, ``ntcip+serial://…``        the same, with the protocol named
``gbt+udp://10.0.0.7:4050``                    GB/T 20999-2017, one frame per datagram,
                                               nothing escaped
``gbt+tcp://10.0.0.7:8881``                    GB/T 20999-2017 frames (0x5C escaping) on TCP
``gbt+serial:///dev/ttyS0?baud=9600``          GB/T 20999-2017 frames on RS-232
``gbt+socket://…``                              GB/T frames over that pyserial URL
============================================  ============================================

Query parameters (all optional). Common: ``baud`` (default 38400),
``timeout_ms`` (per request, default 500), ``retries`` (default 2).
NTCIP only: ``community`` (default ``public``), ``address`` (PMPP drop
address, default 1), ``max_varbinds`` (per PDU, default 20). GB/T 20999
only -- the header identifiers of every frame and the link options:

==================  =======  =================================================
parameter           default  meaning
==================  =======  =================================================
``center_id``       1        上位机ID: this agent, as the upper computer (0-255)
``controller_id``   0        信号机ID: the controller's 4-byte identifier
``intersection_id`` 0        路口ID in the header (0-255); 0 addresses the
                             controller as a whole, as the captured device is
``intersection``    1        the intersection (1-255) the agent drives: the
                             row of run status (13.2) and center control
                             (17.1), and the 路口序号 of schemes, day plans
                             and schedule entries
``version``         256      protocol version (0x0100 = 256; OpenATC: 257)
``parity``          N        RS-232 parity, ``N``, ``E`` or ``O``: the standard
                             asks for 8 data bits, a parity bit and one stop
                             bit without naming the parity; set the cabinet's
``heartbeat_s``     5        seconds between heartbeats (0x70) while polling
==================  =======  =================================================

A parameter given in the URL wins over the same setting in the config file.
A parameter of the other protocol is refused, not ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from agent.errors import ConfigError

Transport = Literal["udp", "stream"]
Protocol = Literal["ntcip", "gbt"]
Parity = Literal["N", "E", "O"]
_PYSERIAL_SCHEMES = {"socket", "rfc2217", "loop", "spy", "alt", "hwgrep"}
_PROTOCOLS: dict[str, Protocol] = {"ntcip": "ntcip", "gbt": "gbt"}
_COMMON_PARAMS = {"baud", "timeout_ms", "retries"}
_PARAMS: dict[Protocol, set[str]] = {
    "ntcip": _COMMON_PARAMS | {"community", "address", "max_varbinds"},
    "gbt": _COMMON_PARAMS
    | {
        "center_id",
        "controller_id",
        "intersection_id",
        "intersection",
        "version",
        "parity",
        "heartbeat_s",
    },
}


@dataclass(frozen=True, kw_only=True)
class ControllerEndpoint:
    """A parsed controller URL."""

    protocol: Protocol = "ntcip"
    transport: Transport
    #: For UDP: host and port. For streams: the pyserial URL to open.
    host: str = ""
    port: int = 0
    serial_url: str = ""
    community: str = "public"
    address: int = 1
    baud: int = 38400
    timeout_ms: int = 500
    retries: int = 2
    max_varbinds: int = 20
    # -- GB/T 20999 only
    #: 上位机ID: the agent's identifier as the upper computer.
    center_id: int = 1
    #: 信号机ID: the controller's identifier (4 bytes).
    controller_id: int = 0
    #: 路口ID of the frame header.
    intersection_id: int = 0
    #: The intersection driven: row of 13.2 and 17.1, 路口序号 of schemes and day plans.
    intersection: int = 1
    #: Protocol version of the frame header (0x0100).
    version: int = 0x0100
    #: RS-232 parity: N(one), E(ven) or O(dd).
    parity: Parity = "N"
    #: Seconds between heartbeats while the link is polled.
    heartbeat_s: int = 5

    @property
    def display(self) -> str:
        """The endpoint for logs and status (no community string)."""
        if self.transport == "udp":
            return f"{self.protocol}+udp://{self.host}:{self.port}"
        if self.protocol == "gbt":
            return (
                f"gbt+{self.serial_url} ({self.baud} baud, controller {self.controller_id}, "
                f"intersection {self.intersection})"
            )
        return f"{self.protocol}+{self.serial_url} (drop {self.address}, {self.baud} baud)"


def _int_param(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise ConfigError(f"controller URL: {name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"controller URL: {name}={value} is outside {low}-{high}")
    return value


def _parity(text: str) -> Parity:
    letter = text.strip().upper()[:1]
    if letter == "N":
        return "N"
    if letter == "E":
        return "E"
    if letter == "O":
        return "O"
    raise ConfigError(f"controller URL: parity={text!r}: use N, E or O")


def parse_controller_url(
    url: str, defaults: ControllerEndpoint | None = None
) -> ControllerEndpoint:
    """Parse a controller URL; :class:`ConfigError` says what is wrong with it."""
    text = url.strip()
    if not text:
        raise ConfigError("controller URL is empty")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ConfigError(
            f"controller URL {url!r} has no scheme: use udp://HOST:PORT, tcp://HOST:PORT "
            "or serial:///dev/ttyXXX"
        )
    protocol: Protocol = "ntcip"
    if "+" in scheme:
        name, scheme = scheme.split("+", 1)
        if name.lower() not in _PROTOCOLS:
            raise ConfigError(
                f"controller URL: unknown protocol {name!r} (known: {', '.join(_PROTOCOLS)})"
            )
        protocol = _PROTOCOLS[name.lower()]
    parts = urlsplit(f"{scheme}://{rest}")
    try:
        query = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError:
        raise ConfigError(f"controller URL {url!r}: unreadable query string") from None
    known = _PARAMS[protocol]
    unknown = sorted(set(query) - known)
    if unknown:
        raise ConfigError(
            f"controller URL: unknown parameter(s) {', '.join(unknown)} "
            f"(known for {protocol}: {', '.join(sorted(known))})"
        )
    base = defaults or ControllerEndpoint(transport="udp")

    def number(name: str, current: int, low: int, high: int) -> int:
        return _int_param(name, query[name], low, high) if name in query else current

    tuned = replace(
        base,
        protocol=protocol,
        community=query.get("community", base.community),
        address=number("address", base.address, 0, 8191),
        baud=number("baud", base.baud, 50, 4_000_000),
        timeout_ms=number("timeout_ms", base.timeout_ms, 10, 60_000),
        retries=number("retries", base.retries, 0, 10),
        max_varbinds=number("max_varbinds", base.max_varbinds, 1, 255),
        center_id=number("center_id", base.center_id, 0, 255),
        controller_id=number("controller_id", base.controller_id, 0, 0xFFFF_FFFF),
        intersection_id=number("intersection_id", base.intersection_id, 0, 255),
        intersection=number("intersection", base.intersection, 1, 255),
        version=number("version", base.version, 0, 0xFFFF),
        parity=_parity(query["parity"]) if "parity" in query else base.parity,
        heartbeat_s=number("heartbeat_s", base.heartbeat_s, 1, 3600),
    )
    scheme = scheme.lower()
    if scheme in {"udp", "tcp"}:
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ConfigError(f"controller URL {url!r}: the port must be 0-65535") from None
        if not host or port is None:
            raise ConfigError(
                f"controller URL {url!r}: give host and port, e.g. {scheme}://HOST:PORT"
            )
        if scheme == "udp":
            return replace(tuned, transport="udp", host=host, port=port)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return replace(tuned, transport="stream", serial_url=f"socket://{netloc}")
    if scheme == "serial":
        if not parts.path:
            raise ConfigError(
                f"controller URL {url!r}: give the device, e.g. serial:///dev/ttyUSB0"
            )
        return replace(tuned, transport="stream", serial_url=parts.path)
    if scheme in _PYSERIAL_SCHEMES:
        plain = f"{scheme}://{parts.netloc}{parts.path}"
        return replace(tuned, transport="stream", serial_url=plain)
    raise ConfigError(
        f"controller URL {url!r}: unknown scheme {scheme!r} (use udp, tcp, serial, "
        "or a pyserial URL such as socket://)"
    )
