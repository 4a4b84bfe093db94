"""Long fuzz run: every codec's properties under Hypothesis, ≥ 100,000 examples each.

    .venv/bin/python bench/fuzz.py [--examples N] [--target NAME ...] [--list]

SPEC §10: "every codec: decode(encode(x)) == x, every strict prefix
incomplete, random bytes give a typed protocol error and nothing else
(hypothesis, ≥ 100k cases in the long run)". The default test suite runs the
same properties with a few hundred examples; this is the long run, called by
the benchmark command and never by default CI. Per codec (``--list`` shows
them all):

- ``round-trip``: decode(encode(x)) == x for generated values (and the stream
  decoders give back the same value, fed whole or byte by byte);
- ``prefix``: every strict prefix of a valid encoding is the codec's typed
  "incomplete" signal (``IncompleteFrame``, ``IncompleteMessage``, an empty
  event list, a rejected token, a plan parse error) -- never a value, never
  any other exception;
- ``random`` / ``mutated``: random bytes, text or documents, and valid
  encodings with bytes overwritten, inserted, deleted or cut, give a value or
  the codec's typed error (a :class:`~agent.errors.GreenwaveError` subclass:
  ``FrameError``, ``MessageError``, ``CommandRejected`` with its SPEC §4
  code, ``PlanError``, ``ConfigError``) and nothing else.

Every example runs under a time guard: more than 1 s of CPU (or 10 s of wall
time) in one example counts as a hang and fails the target. Hypothesis runs
with no deadline, no example database and a fresh random seed each run.

Prints one row per target -- target, property, examples run, wall seconds,
examples/s, ``ok`` or ``FAILED`` with the falsifying example -- then one
``summary:`` line, and exits 1 if any target failed. The strategies are the
test suite's own (``tests/protocols``, ``tests/plan``, ``tests/central``),
imported, not copied, so this needs only the ``dev`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

SELF = Path(__file__).resolve()
REPO = SELF.parents[1]
if str(REPO) not in sys.path:  # run as a script: the strategies live in tests/
    sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agent.central.commands import (  # noqa: E402
    COMMANDS,
    Code,
    CommandRejected,
    PlanLoadArgs,
    check_plan_safety,
)
from agent.central.jws import VerifiedCommand  # noqa: E402
from agent.config import AgentConfig, parse_config  # noqa: E402
from agent.errors import ConfigError, FrameError, MessageError, PlanError  # noqa: E402
from agent.logs import configure_logging  # noqa: E402
from agent.plan.document import judge, parse_plan  # noqa: E402
from agent.plan.model import Plan  # noqa: E402
from agent.plan.validator import Report  # noqa: E402
from agent.protocols import ntcip1202 as mib  # noqa: E402
from agent.protocols import pmpp, snmp  # noqa: E402
from agent.protocols.gbt20999 import frame as gbt_frame  # noqa: E402
from agent.protocols.gbt20999 import message as gbt_message  # noqa: E402
from agent.protocols.gbt20999.objects import ATTRIBUTES, InvalidValue, lookup  # noqa: E402
from tests.central.test_fuzz import json_values  # noqa: E402
from tests.central.world import World, b64, sign_payload  # noqa: E402
from tests.plan.strategies import safe_plans  # noqa: E402
from tests.protocols.gbt20999.strategies import messages as gbt_messages  # noqa: E402
from tests.protocols.gbt20999.strategies import raw_frame  # noqa: E402
from tests.protocols.gbt20999.test_frame import bodies as gbt_bodies  # noqa: E402
from tests.protocols.test_pmpp import frames as pmpp_frames  # noqa: E402
from tests.protocols.test_snmp import messages as snmp_messages  # noqa: E402
from tests.protocols.test_snmp import oids as snmp_oids  # noqa: E402
from tests.protocols.test_snmp import tlv  # noqa: E402
from tests.protocols.test_snmp import values as snmp_values  # noqa: E402
from tests.protocols.test_snmp_fast_path import both_agree  # noqa: E402

#: Examples per target unless ``--examples`` says otherwise (SPEC §10: ≥ 100k).
DEFAULT_EXAMPLES = 100_000
#: CPU seconds one example may use before it counts as a hang.
HANG_CPU_SECONDS = 1.0
#: Wall seconds one example may take before it counts as a hang (blocked, not spinning).
HANG_WALL_SECONDS = 10.0

Check = Callable[[Any], None]


class PropertyFailed(AssertionError):
    """A property does not hold for one example (the message says how)."""


class Hang(Exception):
    """One example ran past the time guard."""


def require(condition: bool, why: str) -> None:
    """Fail the example with ``why`` unless ``condition`` holds (survives ``python -O``)."""
    if not condition:
        raise PropertyFailed(why)


@contextlib.contextmanager
def time_guard() -> Iterator[None]:
    """Raise :class:`Hang` inside the example if it spins or blocks past the limits."""

    def on_timer(signum: int, _frame: FrameType | None) -> None:
        what = "CPU" if signum == signal.SIGPROF else "wall"
        limit = HANG_CPU_SECONDS if signum == signal.SIGPROF else HANG_WALL_SECONDS
        raise Hang(f"one example used more than {limit:g} s of {what} time")

    # No cyclic GC inside the example: a full collection of Hypothesis's own heap
    # (hundreds of MB after 50,000 examples) can take a second and read as a hang.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    old_prof = signal.signal(signal.SIGPROF, on_timer)
    old_alarm = signal.signal(signal.SIGALRM, on_timer)
    started = time.monotonic()
    old_prof_timer = signal.setitimer(signal.ITIMER_PROF, HANG_CPU_SECONDS)
    old_real_timer = signal.setitimer(signal.ITIMER_REAL, HANG_WALL_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, old_prof)
        signal.signal(signal.SIGALRM, old_alarm)
        # Give back a timer someone else had armed (pytest-timeout uses SIGALRM).
        if old_real_timer[0] > 0:
            left = max(old_real_timer[0] - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, old_real_timer[1])
        if old_prof_timer[0] > 0:
            signal.setitimer(signal.ITIMER_PROF, *old_prof_timer)
        if gc_was_enabled:
            gc.enable()


# ------------------------------------------------------------------ generic helpers


def cuts(length: int, seed: int) -> list[int]:
    """Strict-prefix lengths to try: all of them for short encodings, else a spread."""
    if length <= 64:
        return list(range(length))
    spread = set(range(0, length, max(1, length // 16)))
    spread |= {1, 2, 3, length - 1, length - 2, length - 3, seed % length}
    return sorted(spread)


_OPERATIONS = ("set", "insert", "delete", "truncate", "flip", "repeat", "swap")


@functools.cache
def _octets(specials: bytes) -> st.SearchStrategy[int]:
    return st.integers(0, 255) | st.sampled_from(sorted(set(specials) | {0x00, 0xFF}))


@st.composite
def mutated(draw: st.DrawFn, wires: st.SearchStrategy[bytes], specials: bytes = b"") -> bytes:
    """A valid encoding with 1-4 bytes overwritten, inserted, deleted, flipped or cut."""
    wire = bytearray(draw(wires))
    octets = _octets(specials)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(_OPERATIONS))
        at = draw(st.integers(0, len(wire)))
        if operation == "insert" or not wire:
            wire[at:at] = bytes([draw(octets)])
            continue
        at = min(at, len(wire) - 1)
        if operation == "set":
            wire[at] = draw(octets)
        elif operation == "delete":
            del wire[at : at + draw(st.integers(1, 8))]
        elif operation == "truncate":
            del wire[at:]
        elif operation == "flip":
            wire[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "repeat":
            wire[at:at] = wire[at : at + draw(st.integers(1, 16))]
        else:
            other = draw(st.integers(0, len(wire) - 1))
            wire[at], wire[other] = wire[other], wire[at]
    return bytes(wire)


def split_feed(feed: Callable[[bytes], list[Any]], data: bytes, at: int) -> list[Any]:
    """The events of ``data`` fed to one stream decoder in two pieces."""
    return [*feed(data[:at]), *feed(data[at:])]


# ------------------------------------------------------------------------ PMPP

_PMPP_SPECIALS = bytes([pmpp.FLAG, pmpp.ESCAPE, 0x5E, 0x5D, 0x05, 0x13, 0xC1])
_pmpp_wires = pmpp_frames.map(lambda frame: frame.encode())


def pmpp_round_trip(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(frame: pmpp.PmppFrame) -> None:
        wire = frame.encode()
        require(pmpp.decode_frame(wire) == frame, "decode_frame(encode(x)) != x")
        require(pmpp.PmppDecoder().feed(wire) == [frame], "the stream decoder disagrees")
        decoder = pmpp.PmppDecoder()
        events = [event for at in range(len(wire)) for event in decoder.feed(wire[at : at + 1])]
        require(events == [frame], "byte-by-byte feeding disagrees")

    return pmpp_frames, check


def pmpp_prefix(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[pmpp.PmppFrame, int]) -> None:
        wire = case[0].encode()
        for cut in cuts(len(wire), case[1]):
            try:
                pmpp.decode_frame(wire[:cut])
            except pmpp.IncompleteFrame:
                pass
            else:
                raise PropertyFailed(f"the {cut}-byte prefix decoded as a frame")
            require(pmpp.PmppDecoder().feed(wire[:cut]) == [], f"{cut}-byte prefix gave events")

    return st.tuples(pmpp_frames, st.integers(0, 2**16)), check


def pmpp_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    data = st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda tail: b"\x7e" + tail),
        mutated(_pmpp_wires, _PMPP_SPECIALS),
        st.lists(_pmpp_wires | st.binary(max_size=20), max_size=4).map(b"".join),
    )

    def check(case: tuple[bytes, int]) -> None:
        raw, seed = case
        try:
            frame = pmpp.decode_frame(raw)
        except FrameError:
            pass
        else:
            require(pmpp.decode_frame(frame.encode()) == frame, "decoded frame does not re-encode")
        decoder = pmpp.PmppDecoder()
        events = decoder.feed(raw)
        require(
            all(isinstance(e, pmpp.PmppFrame | pmpp.FrameErrorEvent) for e in events),
            "the stream decoder returned something that is not an event",
        )
        require(decoder.buffered <= pmpp.MAX_CONTENT, "receive buffer above its cap")
        at = seed % (len(raw) + 1)
        require(
            split_feed(pmpp.PmppDecoder().feed, raw, at) == events,
            f"feeding in two pieces (split at {at}) gives other events",
        )

    return st.tuples(data, st.integers(0, 2**16)), check


# ------------------------------------------------------------------------ SNMP

_snmp_wires = snmp_messages.map(snmp.encode_message)
_SNMP_SPECIALS = bytes([0x30, 0x02, 0x04, 0x05, 0x06, 0x80, 0x81, 0x82, 0x84, 0xA0, 0xA2, 0x7F])


def snmp_round_trip(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(message: snmp.SnmpMessage) -> None:
        wire = snmp.encode_message(message)
        require(snmp.decode_message(wire) == message, "decode_message(encode(x)) != x")
        require(snmp.encoded_size(message) == len(wire), "encoded_size is wrong")
        require(snmp.message_length(wire) == len(wire), "message_length is wrong")

    return snmp_messages, check


def snmp_prefix(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[snmp.SnmpMessage, int]) -> None:
        wire = snmp.encode_message(case[0])
        for cut in cuts(len(wire), case[1]):
            try:
                snmp.decode_message(wire[:cut])
            except snmp.IncompleteMessage:
                continue
            raise PropertyFailed(f"the {cut}-byte prefix decoded as a message")

    return st.tuples(snmp_messages, st.integers(0, 2**16)), check


def _snmp_data() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=120).map(lambda content: tlv(0x30, content)),
        mutated(_snmp_wires, _SNMP_SPECIALS),
    )


def snmp_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(raw: bytes) -> None:
        with contextlib.suppress(MessageError):
            length = snmp.message_length(raw)
            require(length >= 2, "message_length below a header")
        try:
            message = snmp.decode_message(raw)
        except MessageError:
            return
        again = snmp.decode_message(snmp.encode_message(message))
        require(again == message, "a decoded message does not re-encode to itself")

    return _snmp_data(), check


def snmp_reference(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    # The hand-written fast path and pyasn1 alone give the same outcome (same
    # message, or a MessageError of the same class); anything else escapes.
    return _snmp_data(), both_agree


def ntcip_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    """What a decoded varbind can hold, against the NTCIP 1202 object map: no exception."""
    under = st.sampled_from(mib.OBJECTS).flatmap(
        lambda obj: st.lists(st.integers(0, 2**32 - 1), max_size=3).map(
            lambda suffix: (*obj.oid, *suffix)
        )
    )
    case = st.tuples(snmp_oids | under, snmp_values)

    def check(varbind: tuple[snmp.Oid, snmp.SnmpValue]) -> None:
        oid, value = varbind
        mib.describe_oid(oid)
        found = mib.lookup_oid(oid)
        if found is not None:
            require(isinstance(found[0].accepts(value), bool), "accepts() is not a bool")

    return case, check


# ------------------------------------------------------------------- GB/T 20999

_FRAMINGS = st.sampled_from(gbt_frame.Framing)
_GBT_SPECIALS = bytes([gbt_frame.START, gbt_frame.END, gbt_frame.ESCAPE, 0x01, 0x00])


def _gbt_is_incomplete(decode: Callable[[bytes], object], prefix: bytes) -> bool:
    try:
        decode(prefix)
    except gbt_frame.IncompleteFrame:
        return True
    return False


def gbt_frame_round_trip(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[bytes, gbt_frame.Framing]) -> None:
        body, framing = case
        wire = gbt_frame.encode_frame(body, framing=framing)
        expected = gbt_frame.Frame(body=body)
        require(gbt_frame.decode_frame(wire, framing=framing) == expected, "decode != body")
        if framing is gbt_frame.Framing.STREAM:
            decoder = gbt_frame.FrameDecoder()
            events = [e for at in range(len(wire)) for e in decoder.feed(wire[at : at + 1])]
            require(events == [expected], "byte-by-byte feeding disagrees")
        else:
            require(gbt_frame.decode_datagram(wire) == expected, "decode_datagram disagrees")

    return st.tuples(gbt_bodies, _FRAMINGS), check


def gbt_frame_prefix(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[bytes, gbt_frame.Framing, int]) -> None:
        body, framing, seed = case
        wire = gbt_frame.encode_frame(body, framing=framing)
        for cut in cuts(len(wire), seed):
            if _gbt_is_incomplete(lambda b: gbt_frame.decode_frame(b, framing=framing), wire[:cut]):
                continue
            # A datagram cut two bytes short that ends in 7D may read as an OpenATC
            # frame (length = total - 2), if its CRC happens to match too.
            require(
                framing is gbt_frame.Framing.DATAGRAM and cut == len(wire) - 2,
                f"the {cut}-byte prefix is not incomplete",
            )
        if framing is gbt_frame.Framing.STREAM:
            for cut in cuts(len(wire), seed):
                events = gbt_frame.FrameDecoder().feed(wire[:cut])
                require(events == [], f"the {cut}-byte prefix gave stream events")

    return st.tuples(gbt_bodies, _FRAMINGS, st.integers(0, 2**16)), check


def _gbt_frame_data() -> st.SearchStrategy[bytes]:
    wires = st.tuples(gbt_bodies, _FRAMINGS).map(
        lambda case: gbt_frame.encode_frame(case[0], framing=case[1])
    )
    return st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda tail: b"\x7e\x00" + tail),
        mutated(wires, _GBT_SPECIALS),
    )


def gbt_frame_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[bytes, int]) -> None:
        raw, seed = case
        for framing in gbt_frame.Framing:
            try:
                decoded = gbt_frame.decode_frame(raw, framing=framing)
            except FrameError:
                continue
            require(isinstance(decoded, gbt_frame.Frame), "decode_frame returned a non-frame")
        with contextlib.suppress(FrameError):
            gbt_frame.decode_datagram(raw)
        decoder = gbt_frame.FrameDecoder()
        events = decoder.feed(raw)
        require(
            all(isinstance(e, gbt_frame.Frame | gbt_frame.FrameErrorEvent) for e in events),
            "the stream decoder returned something that is not an event",
        )
        require(decoder.buffered <= gbt_frame.MAX_FRAME, "receive buffer above its cap")
        at = seed % (len(raw) + 1)
        require(
            split_feed(gbt_frame.FrameDecoder().feed, raw, at) == events,
            f"feeding in two pieces (split at {at}) gives other events",
        )

    return st.tuples(_gbt_frame_data(), st.integers(0, 2**16)), check


def gbt_message_round_trip(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[gbt_message.Message, gbt_frame.Framing]) -> None:
        message, framing = case
        wire = gbt_message.encode(message, framing=framing)
        require(gbt_message.decode(wire, framing=framing) == message, "decode(encode(x)) != x")
        if framing is gbt_frame.Framing.STREAM:
            require(gbt_message.MessageDecoder().feed(wire) == [message], "stream disagrees")

    return st.tuples(gbt_messages(), _FRAMINGS), check


def gbt_message_prefix(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[gbt_message.Message, gbt_frame.Framing, int]) -> None:
        message, framing, seed = case
        wire = gbt_message.encode(message, framing=framing)
        for cut in cuts(len(wire), seed):
            if _gbt_is_incomplete(lambda b: gbt_message.decode(b, framing=framing), wire[:cut]):
                continue
            require(
                framing is gbt_frame.Framing.DATAGRAM and cut == len(wire) - 2,
                f"the {cut}-byte prefix is not incomplete",
            )
        if framing is gbt_frame.Framing.STREAM:
            for cut in cuts(len(wire), seed):
                events = gbt_message.MessageDecoder().feed(wire[:cut])
                require(events == [], f"the {cut}-byte prefix gave stream events")

    return st.tuples(gbt_messages(max_values=3), _FRAMINGS, st.integers(0, 2**16)), check


def gbt_message_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    wires = st.tuples(gbt_messages(max_values=3), _FRAMINGS).map(
        lambda case: gbt_message.encode(case[0], framing=case[1])
    )
    header = bytes.fromhex("0100 05 00000000 00 01")
    data = st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=120).map(lambda tail: raw_frame(header + tail)),
        mutated(wires, _GBT_SPECIALS),
    )

    def check(raw: bytes) -> None:
        for framing in gbt_frame.Framing:
            try:
                decoded = gbt_message.decode(raw, framing=framing)
            except (FrameError, MessageError):
                continue
            require(isinstance(decoded, gbt_message.Message), "decode returned a non-message")
            again = gbt_message.decode(
                gbt_message.encode(decoded, framing=framing), framing=framing
            )
            # Deviations (OpenATC length/CRC, 0x71 heartbeat reply ...) are read, never sent.
            strict = dataclasses.replace(decoded, deviations=frozenset())
            require(again == strict, "a decoded message does not re-encode to itself")
        events = gbt_message.MessageDecoder().feed(raw)
        allowed = gbt_message.Message | gbt_frame.FrameErrorEvent | gbt_message.MessageErrorEvent
        require(all(isinstance(e, allowed) for e in events), "a stream event of another type")

    return data, check


_GBT_ATTRIBUTES = sorted(ATTRIBUTES.values(), key=lambda a: a.address.to_bytes())


def gbt_objects_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    """Value bytes of every catalogued attribute: a value (that re-encodes) or InvalidValue."""
    addresses = st.builds(
        gbt_message.Address, *[st.integers(0, 255) | st.sampled_from([0, 1, 2])] * 4
    )
    case = st.tuples(
        st.sampled_from(_GBT_ATTRIBUTES),
        st.binary(max_size=70) | st.binary(min_size=100, max_size=260),
        addresses,
    )

    def check(case: tuple[Any, bytes, gbt_message.Address]) -> None:
        attribute, raw, address = case
        lookup(address)
        try:
            value = attribute.decode(raw)
        except InvalidValue:
            return
        try:
            encoded = attribute.encode(value)
        except ValueError:
            return  # read-tolerant, write-strict (e.g. unpadded text read, padded sent)
        require(attribute.decode(encoded) == value, f"{attribute.name}: value does not re-encode")

    return case, check


# ---------------------------------------------------------------- JWS envelope


def _rejected(verify: Callable[[], object]) -> CommandRejected | object:
    try:
        return verify()
    except CommandRejected as rejection:
        require(rejection.code in set(Code), f"rejection code {rejection.code!r} is not SPEC §4's")
        require(bool(rejection.detail) and "\n" not in rejection.detail, "detail not one line")
        return rejection


def _world(tmp: Path, name: str) -> World:
    state = tmp / name
    state.mkdir()
    return World(state_dir=state)


_JTI_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def jws_round_trip(tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    world = _world(tmp, "jws-round-trip")
    claims = st.fixed_dictionaries(
        {
            "jti": st.text(alphabet=_JTI_ALPHABET, min_size=8, max_size=64),
            "cmd": st.just("control.pattern"),
            "args": st.fixed_dictionaries(
                {"pattern": st.integers(1, 253) | st.sampled_from(["free", "flash"])},
                optional={"lease_s": st.integers(1, 86_400)},
            ),
        }
    ) | st.fixed_dictionaries(
        {"jti": st.uuids().map(str), "cmd": st.just("heartbeat"), "args": st.just({})}
    )

    def check(changes: dict[str, Any]) -> None:
        token = world.command.sign_claims(world.claims(**changes))
        verified = world.verifier.verify(token, remember=False)
        require(isinstance(verified, VerifiedCommand), "not a VerifiedCommand")
        require(
            (verified.jti, verified.cmd) == (changes["jti"], changes["cmd"]),
            "verified jti/cmd differ from the signed ones",
        )

    return claims, check


def _valid_tokens(world: World) -> list[str]:
    tokens = [world.token(cmd) for cmd in sorted(COMMANDS)]
    for token in tokens:
        world.verifier.verify(token, remember=False)  # each one is valid
    return tokens


def jws_prefix(tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    world = _world(tmp, "jws-prefix")
    tokens = _valid_tokens(world)

    def check(case: tuple[str, int]) -> None:
        token = case[0].encode()
        for cut in cuts(len(token), case[1]):
            prefix = token[:cut]
            outcome = _rejected(lambda: world.verifier.verify(prefix, remember=False))  # noqa: B023
            require(isinstance(outcome, CommandRejected), f"the {cut}-byte prefix verified")

    return st.tuples(st.sampled_from(tokens), st.integers(0, 2**20)), check


def jws_random(tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    world = _world(tmp, "jws-random")
    segment = st.binary(max_size=300).map(b64) | st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.",
        max_size=300,
    )
    header = st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk", "x5u", "zip"]),
        json_values,
        max_size=5,
    ).map(lambda h: b64(json.dumps(h).encode()))
    tokens: st.SearchStrategy[bytes | str] = st.one_of(
        st.binary(max_size=4096),
        st.text(max_size=2048),
        st.lists(segment, min_size=1, max_size=5).map(".".join),
        st.tuples(header, segment, segment).map(".".join),
    )

    def check(token: bytes | str) -> None:
        outcome = _rejected(lambda: world.verifier.verify(token, remember=False))
        require(isinstance(outcome, CommandRejected), "a random token verified")

    return tokens, check


def jws_mutated(tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    world = _world(tmp, "jws-mutated")
    tokens = _valid_tokens(world)
    originals = {token: world.verifier.verify(token, remember=False) for token in tokens}
    base = st.sampled_from(tokens)

    def check(case: tuple[str, bytes]) -> None:
        original, changed = case
        outcome = _rejected(lambda: world.verifier.verify(changed, remember=False))
        if isinstance(outcome, CommandRejected):
            return
        # Only a change that decodes to the same bytes (base64 slack bits) may pass.
        require(outcome == originals[original], "a changed token verified as another command")

    cases = base.flatmap(
        lambda token: st.tuples(
            st.just(token), mutated(st.just(token.encode()), b".-_=AZaz09+/\x00")
        )
    )
    return cases, check


@st.composite
def _signed_claims(draw: st.DrawFn, now: int) -> bytes:
    """Claims a trusted key signs: plausible or absurd values, unknown keys, any args."""
    cmd = draw(st.sampled_from(sorted(COMMANDS)) | st.text(max_size=10))
    args: Any
    if cmd == "plan.load" and draw(st.booleans()):
        plan = draw(safe_plans())
        args = {"plan": _mutate_json(draw, plan) if draw(st.booleans()) else plan}
    else:
        args = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values)
    claims: dict[str, Any] = {
        "iss": draw(st.sampled_from(["tms.example-city", "x", ""]) | json_values),
        "aud": draw(st.sampled_from(["cabinet-17", "*", ["cabinet-17"], []]) | json_values),
        "jti": draw(st.text(max_size=70) | json_values),
        "iat": draw(st.sampled_from([now, now - 10, now + 100]) | json_values),
        "exp": draw(st.sampled_from([now + 60, now - 100, now + 10**6]) | json_values),
        "cmd": cmd,
        "args": args,
    }
    for _ in range(draw(st.integers(0, 2))):
        claims[draw(st.text(max_size=8) | st.sampled_from(["[", "int", "nbf", "str"]))] = draw(
            json_values
        )
    for name in draw(st.lists(st.sampled_from(sorted(claims)), max_size=2)):
        claims.pop(name, None)
    return json.dumps(claims).encode()


def jws_signed(tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    """Any claims under a good signature: a command (judged if a plan) or a rejection."""
    world = _world(tmp, "jws-signed")
    payloads = _signed_claims(int(world.clock.now)) | st.binary(max_size=200)

    def check(payload: bytes) -> None:
        token = sign_payload(world.command, payload)
        outcome = _rejected(lambda: world.verifier.verify(token, remember=False))
        if isinstance(outcome, VerifiedCommand) and outcome.cmd == "plan.load":
            verified = outcome
            _rejected(
                lambda: check_plan_safety(
                    verified.args_as(PlanLoadArgs), world.limits, jti=verified.jti
                )
            )

    return payloads, check


# ---------------------------------------------------------------- plan document


_REPLACEMENTS: st.SearchStrategy[Any] = json_values | st.sampled_from(
    [0, -1, 2**31, 1e300, "", [], {}, None]
)


def _mutate_json(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with one node somewhere replaced, removed, or given a sibling."""
    if depth > 6 or not isinstance(value, dict | list) or not value or draw(st.integers(0, 3)) == 0:
        return draw(_REPLACEMENTS)
    if isinstance(value, dict):
        keys = sorted(value)
        key = draw(st.sampled_from(keys))
        out = dict(value)
        action = draw(st.sampled_from(("replace", "delete", "add")))
        if action == "delete":
            del out[key]
        elif action == "add":
            out[draw(st.text(max_size=12))] = draw(json_values)
        else:
            out[key] = _mutate_json(draw, value[key], depth + 1)
        return out
    items = list(value)
    index = draw(st.integers(0, len(items) - 1))
    action = draw(st.sampled_from(("replace", "delete", "duplicate")))
    if action == "delete":
        del items[index]
    elif action == "duplicate":
        items.insert(index, items[index])
    else:
        items[index] = _mutate_json(draw, items[index], depth + 1)
    return items


@st.composite
def _mutated_plan(draw: st.DrawFn) -> bytes:
    doc = draw(safe_plans())
    for _ in range(draw(st.integers(1, 3))):
        doc = _mutate_json(draw, doc)
    return json.dumps(doc).encode()


def _plan_verdict(data: bytes | str) -> None:
    try:
        plan, report = judge(data)
    except PlanError:
        return
    require(isinstance(plan, Plan) and isinstance(report, Report), "judge returned other types")


def plan_round_trip(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(doc: dict[str, Any]) -> None:
        plan, report = judge(json.dumps(doc))
        require(report.ok, f"a safe plan was refused: {[v.rule for v in report.errors]}")
        require(parse_plan(plan.model_dump_json()) == plan, "parse(dump(plan)) != plan")

    return safe_plans(), check


def plan_prefix(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    def check(case: tuple[dict[str, Any], int]) -> None:
        document = json.dumps(case[0]).encode()
        for cut in cuts(len(document), case[1]):
            try:
                parse_plan(document[:cut])
            except PlanError as err:
                require(err.code == "E_SCHEMA", f"a cut plan gave {err.code}")
                continue
            raise PropertyFailed(f"the {cut}-byte prefix parsed as a plan")

    return st.tuples(safe_plans(), st.integers(0, 2**20)), check


def plan_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    plan_bytes = safe_plans().map(lambda doc: json.dumps(doc).encode())
    data: st.SearchStrategy[bytes | str] = st.one_of(
        json_values.map(json.dumps),
        st.dictionaries(st.sampled_from(sorted(Plan.model_fields)), json_values).map(json.dumps),
        st.binary(max_size=400),
        st.text(max_size=400),
        _mutated_plan(),
        mutated(plan_bytes, b'{}[]",:0-.eE \\'),
    )
    return data, _plan_verdict


# ---------------------------------------------------------------------- config

_CONFIG_EXAMPLE = (REPO / "examples" / "agent.toml").read_text(encoding="utf-8")
#: Keys the TOML may hold: every field of every section, and the names a
#: pydantic-settings model takes as keyword arguments beside its fields.
_CONFIG_KEYS = sorted(
    {name for section in AgentConfig.model_fields.values()
     for name in getattr(section.annotation, "model_fields", {})}
    | {"_env_file", "_env_prefix", "_secrets_dir", "_cli_parse_args", "_case_sensitive",
       "_env_nested_delimiter", "_cli_prog_name", "id", "x"}
)  # fmt: skip
_CONFIG_SECTIONS = [*sorted(AgentConfig.model_fields), "site.crossing_ft", "extra"]


def _toml_values_strategy() -> st.SearchStrategy[str]:
    scalar = st.one_of(
        st.integers(-(2**63), 2**63 - 1).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(
            lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(f), repr(f))
        ),
        st.text(max_size=30).map(json.dumps),
        st.sampled_from(
            [
                "true",
                "false",
                "1979-05-27T07:32:00Z",
                "07:32:00",
                '""',
                "0o777",
                "0x7FFF",
                '"udp://127.0.0.1:16100"',
                '"/tmp/x"',
                '"info"',
            ]
        ),
    )
    return st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=4).map(lambda items: f"[{', '.join(items)}]"),
        max_leaves=8,
    )


_TOML_VALUES = _toml_values_strategy()
_TOML_SECTIONS = st.sampled_from(_CONFIG_SECTIONS) | st.from_regex(r"[a-z_]{1,8}", fullmatch=True)
_TOML_KEYS = st.sampled_from(_CONFIG_KEYS) | st.from_regex(r"[A-Za-z_]{1,8}", fullmatch=True)


@st.composite
def _toml_documents(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            section = draw(_TOML_SECTIONS)
            lines.append(f"[{section}]")
        for _ in range(draw(st.integers(0, 4))):
            key = draw(_TOML_KEYS)
            lines.append(f"{key} = {draw(_TOML_VALUES)}")
    return "\n".join(lines) + "\n"


def _config_verdict(text: str) -> None:
    try:
        config = parse_config(text, source="fuzz")
    except ConfigError as err:
        require(err.code == "E_CONFIG", f"a config error with code {err.code}")
        return
    require(isinstance(config, AgentConfig), "parse_config returned another type")


def config_random(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    valid = '[device]\nid = "a"\n'
    data = st.one_of(
        _toml_documents(),
        _toml_documents().map(lambda text: valid + text),
        st.text(max_size=300),
    )
    return data, _config_verdict


def config_mutated(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    source = _CONFIG_EXAMPLE.encode()
    data = mutated(st.just(source), b'[]="\n.#_ 0-').map(
        lambda raw: raw.decode("utf-8", errors="replace")
    )
    return data, _config_verdict


_ENV_NAMES = sorted(
    {f"GREENWAVE_{section.upper()}" for section in AgentConfig.model_fields}
    | {f"GREENWAVE_{section.upper()}__{key.upper()}"
       for section, field in AgentConfig.model_fields.items()
       for key in getattr(field.annotation, "model_fields", {})}
)  # fmt: skip


def config_environment(_tmp: Path) -> tuple[st.SearchStrategy[Any], Check]:
    """GREENWAVE_<SECTION>[__<KEY>] overrides of any text over a valid file."""
    values = st.one_of(
        st.text(max_size=40),
        json_values.map(json.dumps),
        st.sampled_from(["{", "[", "[1", "null", "true", "1e999", '{"id": 1}', "-1"]),
    )
    overrides = st.dictionaries(st.sampled_from(_ENV_NAMES), values, min_size=1, max_size=4)

    def check(env: dict[str, str]) -> None:
        clean = {name: value.replace("\x00", "") for name, value in env.items()}
        os.environ.update(clean)
        try:
            _config_verdict('[device]\nid = "a"\n')
        finally:
            for name in clean:
                os.environ.pop(name, None)

    return overrides, check


# --------------------------------------------------------------------- targets


@dataclass(frozen=True, kw_only=True)
class Target:
    """One codec property to fuzz."""

    #: ``codec.property``, e.g. ``pmpp.round-trip``; what ``--target`` takes.
    name: str
    #: What is checked, for ``--list`` and the docs.
    about: str
    #: Build the strategy and the check (may use a scratch directory for keys and state).
    make: Callable[[Path], tuple[st.SearchStrategy[Any], Check]]

    @property
    def codec(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def prop(self) -> str:
        return self.name.rsplit(".", 1)[1]


TARGETS: tuple[Target, ...] = (
    Target(name="pmpp.round-trip", make=pmpp_round_trip,
           about="frames: decode_frame and the stream decoder (whole, byte by byte) give x"),
    Target(name="pmpp.prefix", make=pmpp_prefix,
           about="strict prefixes: IncompleteFrame; the stream decoder emits nothing"),
    Target(name="pmpp.random", make=pmpp_random,
           about="random/mutated bytes: a frame or FrameError; stream events only, split-safe"),
    Target(name="snmp.round-trip", make=snmp_round_trip,
           about="SNMPv1 messages: decode(encode(x)) == x, sizes agree"),
    Target(name="snmp.prefix", make=snmp_prefix,
           about="strict prefixes: IncompleteMessage"),
    Target(name="snmp.random", make=snmp_random,
           about="random/mutated BER: a message (that re-encodes) or MessageError"),
    Target(name="snmp.reference", make=snmp_reference,
           about="random/mutated BER: the fast path and pyasn1 give the same outcome"),
    Target(name="ntcip.random", make=ntcip_random,
           about="any OID and SNMP value against the NTCIP 1202 map: lookup/accepts, no exception"),
    Target(name="gbt.frame.round-trip", make=gbt_frame_round_trip,
           about="GB/T frames, both framings: decode(encode(x)) == x, byte by byte too"),
    Target(name="gbt.frame.prefix", make=gbt_frame_prefix,
           about="strict prefixes: IncompleteFrame (bar the OpenATC length case)"),
    Target(name="gbt.frame.random", make=gbt_frame_random,
           about="random/mutated bytes: a frame or FrameError; stream events only, split-safe"),
    Target(name="gbt.message.round-trip", make=gbt_message_round_trip,
           about="GB/T messages, both framings: decode(encode(x)) == x"),
    Target(name="gbt.message.prefix", make=gbt_message_prefix,
           about="strict prefixes: IncompleteFrame; the message stream emits nothing"),
    Target(name="gbt.message.random", make=gbt_message_random,
           about="random/mutated bytes: a message or FrameError/MessageError"),
    Target(name="gbt.objects.random", make=gbt_objects_random,
           about="value bytes of every attribute: a value (re-encodes) or InvalidValue"),
    Target(name="jws.round-trip", make=jws_round_trip,
           about="signed commands verify to the signed jti, cmd and args"),
    Target(name="jws.prefix", make=jws_prefix,
           about="strict prefixes of valid tokens: CommandRejected with a SPEC §4 code"),
    Target(name="jws.random", make=jws_random,
           about="random bytes/text/segments/headers: CommandRejected with a code"),
    Target(name="jws.mutated", make=jws_mutated,
           about="valid tokens with bytes changed: CommandRejected (or the same command)"),
    Target(name="jws.signed", make=jws_signed,
           about="any claims under a trusted signature: a command (plan judged) or a rejection"),
    Target(name="plan.round-trip", make=plan_round_trip,
           about="safe plans are accepted; parse(dump(plan)) == plan"),
    Target(name="plan.prefix", make=plan_prefix,
           about="strict prefixes of a plan document: PlanParseError/PlanSchemaError"),
    Target(name="plan.random", make=plan_random,
           about="random JSON/bytes and mutated plans: a verdict or PlanError"),
    Target(name="config.random", make=config_random,
           about="random TOML-ish text: an AgentConfig or ConfigError"),
    Target(name="config.environment", make=config_environment,
           about="GREENWAVE_* overrides of any text: an AgentConfig or ConfigError"),
    Target(name="config.mutated", make=config_mutated,
           about="examples/agent.toml with bytes changed: an AgentConfig or ConfigError"),
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Row:
    """The outcome of one target."""

    target: Target
    examples: int
    seconds: float
    failure: str | None

    @property
    def rate(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def result(self) -> str:
        return "ok" if self.failure is None else "FAILED"


def _describe_failure(err: BaseException) -> str:
    notes = [note for note in getattr(err, "__notes__", ()) if isinstance(note, str)]
    lines = [f"{type(err).__module__}.{type(err).__qualname__}: {err}", *notes]
    return "\n".join(lines)


def run_target(target: Target, examples: int, scratch: Path, *, progress: int = 0) -> Row:
    """Run one target for ``examples`` examples; never raises for a failed property.

    With ``progress`` > 0, a line on stderr every ``progress`` examples.
    """
    strategy, check = target.make(scratch)
    count = 0

    started = time.perf_counter()

    def body(value: Any) -> None:
        nonlocal count
        count += 1
        if progress and count % progress == 0:
            seconds = time.perf_counter() - started
            print(
                f"  {target.name}: {count:,} examples, {seconds:.0f} s", file=sys.stderr, flush=True
            )
        with time_guard():
            check(value)

    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )(given(strategy)(body))
    start = time.perf_counter()
    failure: str | None = None
    try:
        test()
    except Exception as err:  # noqa: BLE001 - any failure is a row, not a crash of the run
        failure = _describe_failure(err)
    return Row(target=target, examples=count, seconds=time.perf_counter() - start, failure=failure)


def _print_row(row: Row) -> None:
    print(
        f"{row.target.codec:12} {row.target.prop:11} {row.examples:>9} "
        f"{row.seconds:>9.1f} {row.rate:>9.0f}  {row.result}",
        flush=True,
    )
    if row.failure is not None:
        for line in row.failure.splitlines():
            print(f"    {line}", flush=True)


def select(names: list[str] | None) -> list[Target]:
    """The targets named (a codec name picks all its properties), all when ``None``."""
    if not names:
        return list(TARGETS)
    chosen = [t for t in TARGETS if any(n in (t.name, t.codec) for n in names)]
    unknown = [n for n in names if not any(n in (t.name, t.codec) for t in TARGETS)]
    if unknown:
        raise SystemExit(f"unknown target(s): {', '.join(unknown)} (see --list)")
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run the chosen targets and print the table; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES,
                        help=f"examples per target (default {DEFAULT_EXAMPLES:,})")  # fmt: skip
    parser.add_argument("--target", action="append", metavar="NAME",
                        help="a target (pmpp.random) or a codec (pmpp); repeatable")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--progress", type=int, default=0, metavar="N",
                        help="print a progress line on stderr every N examples")  # fmt: skip
    args = parser.parse_args(argv)
    if args.list:
        for target in TARGETS:
            print(f"{target.name:24} {target.about}")
        return 0
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    targets = select(args.target)
    configure_logging(level="error")  # the verifier's trust store logs every key it adds
    for name in [name for name in os.environ if name.startswith("GREENWAVE_")]:
        del os.environ[name]  # the config target must see the file alone
    print(
        f"fuzz: {len(targets)} target(s), {args.examples:,} examples each, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        flush=True,
    )
    print(f"{'codec':12} {'property':11} {'examples':>9} {'seconds':>9} {'ex/s':>9}  result")
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="greenwave-fuzz-") as scratch:
        for target in targets:
            row = run_target(target, args.examples, Path(scratch), progress=args.progress)
            _print_row(row)
            rows.append(row)
    failed = [row.target.name for row in rows if row.failure is not None]
    total = sum(row.examples for row in rows)
    print(
        f"summary: {len(rows)} target(s), {len(failed)} failed"
        f"{' (' + ', '.join(failed) + ')' if failed else ''}, "
        f"{total:,} examples in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
