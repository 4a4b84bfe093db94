"""GB/T 20999-2017, the Chinese national controller <-> upper-computer protocol, sans-I/O.

- :mod:`.frame` -- start/end bytes, 0x5C escaping (RS-232, TCP) or none (UDP),
  length and CRC; a stream decoder and a one-frame (datagram) decoder.
- :mod:`.message` -- the header and data values as frozen dataclasses; frame
  types, error codes; builders for queries, sets, replies and heartbeats.
- :mod:`.objects` -- the data classes, objects and attributes with their value
  encodings, and a lookup by address.

Facts and sources: ``shared/reference/gbt20999.md``. Conformance: the 177
query/reply pairs captured from a real controller
(``tests/protocols/gbt20999/data/protocol_catalog.json``).

Typical use, on UDP (``SCHEME_CYCLE`` from :mod:`.objects`)::

    ids = Ids(center=5, controller=0, intersection=0)
    wire = query(ids, 1, SCHEME_CYCLE.at(1), framing=Framing.DATAGRAM)
    reply = decode(datagram, framing=Framing.DATAGRAM)
    match_reply(query_message(ids, 1, SCHEME_CYCLE.at(1)), reply)
    cycle = SCHEME_CYCLE.decode(reply.values[0].value)   # 120

On RS-232 or TCP, encode with ``Framing.STREAM`` and feed received bytes to a
:class:`MessageDecoder`.
"""

from agent.protocols.gbt20999.frame import (
    Deviation,
    Frame,
    FrameDecoder,
    FrameErrorEvent,
    FrameErrorKind,
    Framing,
    IncompleteFrame,
    InvalidFrame,
    decode_datagram,
    decode_frame,
    encode_frame,
)
from agent.protocols.gbt20999.message import (
    DEFAULT_VERSION,
    Address,
    DataValue,
    ErrorCode,
    FrameType,
    Ids,
    InvalidMessage,
    Message,
    MessageDecoder,
    MessageErrorEvent,
    MessageErrorKind,
    decode,
    encode,
    error_codes,
    error_reply_to,
    heartbeat,
    heartbeat_reply_to,
    match_reply,
    parse_frame,
    query,
    query_message,
    reply_to,
    set_reply_to,
    set_request,
    trap,
)

__all__ = [
    "DEFAULT_VERSION",
    "Address",
    "DataValue",
    "Deviation",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "FrameErrorEvent",
    "FrameErrorKind",
    "FrameType",
    "Framing",
    "Ids",
    "IncompleteFrame",
    "InvalidFrame",
    "InvalidMessage",
    "Message",
    "MessageDecoder",
    "MessageErrorEvent",
    "MessageErrorKind",
    "decode",
    "decode_datagram",
    "decode_frame",
    "encode",
    "encode_frame",
    "error_codes",
    "error_reply_to",
    "heartbeat",
    "heartbeat_reply_to",
    "match_reply",
    "parse_frame",
    "query",
    "query_message",
    "reply_to",
    "set_reply_to",
    "set_request",
    "trap",
]
