"""Controller URLs: how a technician names the cabinet's controller in one string.

=========================================  ==============================================
URL                                        meaning
=========================================  ==============================================
``udp://10.0.0.5:161``                      NTCIP 1202, SNMPv1 over UDP (Ethernet cabinet)
``tcp://127.0.0.1:16102``                   NTCIP 1202, SNMP in PMPP frames over TCP
                                            (terminal server, the simulator's TCP port)
``serial:///dev/ttyUSB0?baud=9600``         NTCIP 1202, SNMP in PMPP frames on RS-232
``socket://…``, ``rfc2217://…``, ``loop://``  PMPP over that pyserial URL, as it is
``ntcip+udp://…``, ``ntcip+serial://…``     the same, with the protocol named
=========================================  ==============================================

Query parameters (all optional): ``community`` (default ``public``),
``address`` (PMPP drop address, default 1), ``baud`` (default 38400),
``timeout_ms`` (per request, default 500), ``retries`` (default 2),
``max_varbinds`` (per PDU, default 20). A parameter given in the URL wins
over the same setting in the config file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from agent.errors import ConfigError

Transport = Literal["udp", "stream"]
_PYSERIAL_SCHEMES = {"socket", "rfc2217", "loop", "spy", "alt", "hwgrep"}
_PROTOCOLS = {"ntcip"}
_PARAMS = {"community", "address", "baud", "timeout_ms", "retries", "max_varbinds"}


@dataclass(frozen=True, kw_only=True)
class ControllerEndpoint:
    """A parsed controller URL."""

    protocol: str = "ntcip"
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

    @property
    def display(self) -> str:
        """The endpoint for logs and status (no community string)."""
        if self.transport == "udp":
            return f"{self.protocol}+udp://{self.host}:{self.port}"
        return f"{self.protocol}+{self.serial_url} (drop {self.address}, {self.baud} baud)"


def _int_param(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"controller URL: {name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"controller URL: {name}={value} is outside {low}-{high}")
    return value


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
    protocol = "ntcip"
    if "+" in scheme:
        protocol, scheme = scheme.split("+", 1)
        if protocol not in _PROTOCOLS:
            raise ConfigError(
                f"controller URL: unknown protocol {protocol!r} (known: {', '.join(_PROTOCOLS)})"
            )
    parts = urlsplit(f"{scheme}://{rest}")
    try:
        query = dict(
            parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        )
    except ValueError:
        raise ConfigError(f"controller URL {url!r}: unreadable query string") from None
    unknown = sorted(set(query) - _PARAMS)
    if unknown:
        raise ConfigError(
            f"controller URL: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_PARAMS))})"
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
