"""Codec throughput: the sans-I/O protocol cores alone, in this process.

    .venv/bin/python bench/codec.py [--seconds S] [--json FILE]

For each wire format the agent speaks, encodes and decodes one message of
the shape a 10 Hz status poll exchanges, as fast as it goes for ``--seconds``
(default 1) each:

- SNMPv1 (``agent/protocols/snmp.py``): the GetRequest of the simulator
  benchmark's 10 status varbinds, and the simulator's real answer to it
  (``firmware_sim`` builds the answer once);
- PMPP (``agent/protocols/pmpp.py``): that answer in one HDLC frame, bytes
  stuffed; decoded with the incremental ``PmppDecoder`` as a serial line
  feeds it;
- GB/T 20999 (``agent/protocols/gbt20999``): a set of 16 four-octet values
  as one message, stream framing (escaped), encoded and decoded.

Prints messages per second and µs per message; figures, never pass/fail.
Signature verification throughput is in ``bench/central.py`` (step 3).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simulator
from common import machine, write_json

from agent.protocols import pmpp
from agent.protocols.gbt20999 import message as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.snmp import decode_message, encode_message
from firmware_sim.ntcip_responder import NtcipResponder


def rate(work: Callable[[], object], seconds: float) -> dict[str, float]:
    """How many times a second ``work`` runs (batches of 100, for about ``seconds``)."""
    for _ in range(100):
        work()  # warm-up
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            work()
        count += 100
    per_s = count / elapsed
    return {"per_s": round(per_s), "us_each": round(1e6 / per_s, 2)}


def measure(seconds: float) -> dict[str, Any]:
    request = simulator.status_request(1)
    request_message = decode_message(request)
    answer = NtcipResponder(simulator.new_controller()).handle(request)
    assert answer is not None
    answer_message = decode_message(answer)
    frame = pmpp.encode_frame(address=1, payload=answer)
    ids = gbt.Ids(center=1, controller=1, intersection=1)
    values = [(gbt.Address(1, 2, 3, i), bytes([i, 0x7E, 0x5C, 0x7D])) for i in range(1, 17)]
    gbt_message = gbt.set_request(ids, 1, values)
    gbt_wire = gbt.encode(gbt_message, framing=Framing.STREAM)

    def pmpp_decode() -> None:
        decoder = pmpp.PmppDecoder()
        decoder.feed(frame)

    rows = {
        "snmp: encode status GetRequest": (len(request), lambda: encode_message(request_message)),
        "snmp: decode status GetRequest": (len(request), lambda: decode_message(request)),
        "snmp: encode status GetResponse": (len(answer), lambda: encode_message(answer_message)),
        "snmp: decode status GetResponse": (len(answer), lambda: decode_message(answer)),
        "pmpp: encode frame (GetResponse)": (
            len(frame),
            lambda: pmpp.encode_frame(address=1, payload=answer),
        ),
        "pmpp: decode frame, PmppDecoder": (len(frame), pmpp_decode),
        "gbt20999: encode set, 16 values": (
            len(gbt_wire),
            lambda: gbt.encode(gbt_message, framing=Framing.STREAM),
        ),
        "gbt20999: decode set, 16 values": (
            len(gbt_wire),
            lambda: gbt.decode(gbt_wire, framing=Framing.STREAM),
        ),
    }
    return {name: {"bytes": size, **rate(work, seconds)} for name, (size, work) in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time per row (1 s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"machine": machine(), "codecs": measure(args.seconds)}
    write_json(args.json, figures)
    m = figures["machine"]
    print(f"codec throughput on {m['machine']}, {m['cores']} cores ({m['cpu']}), "
          f"Python {m['python']}; {args.seconds:g} s per row, one core")  # fmt: skip
    print(f"{'codec and message':36} {'bytes':>6} {'per s':>10} {'µs each':>8}")
    for name, row in figures["codecs"].items():
        print(f"{name:36} {row['bytes']:6d} {row['per_s']:10,d} {row['us_each']:8.2f}")


if __name__ == "__main__":
    main()
