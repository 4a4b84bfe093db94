"""Sans-I/O protocol codecs shared by the agent and ``firmware_sim``.

Everything here is plain synchronous code over ``bytes``: no sockets, serial
ports, asyncio or clocks. Feed bytes in, get typed frames, messages or error
events out; give typed values, get bytes back.

- :mod:`agent.protocols.crc` — CRC-16/X-25, the HDLC frame check sequence.
- :mod:`agent.protocols.pmpp` — NTCIP 2101 PMPP/HDLC framing for serial links.
- :mod:`agent.protocols.snmp` — SNMPv1 messages (RFC 1157) as plain data.
- :mod:`agent.protocols.ntcip1202` — the NTCIP 1202 / 1201 objects the agent and
  the simulator use, as data.
"""
