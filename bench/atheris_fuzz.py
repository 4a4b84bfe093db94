"""Coverage-guided fuzzing (atheris / libFuzzer) of the frame decoders.

    .venv/bin/pip install -e '.[dev,fuzz]'
    .venv/bin/python bench/atheris_fuzz.py TARGET [--corpus DIR] [libFuzzer flags ...]
    .venv/bin/python bench/atheris_fuzz.py pmpp -max_total_time=300
    .venv/bin/python bench/atheris_fuzz.py snmp -runs=1000000

Targets (the bytes a controller or the line can send us):

- ``pmpp``: :func:`agent.protocols.pmpp.decode_frame` and the stream decoder
  :class:`~agent.protocols.pmpp.PmppDecoder` (fed whole and in two pieces);
- ``snmp``: :func:`agent.protocols.snmp.decode_message` (fast path, then
  pyasn1) and :func:`~agent.protocols.snmp.message_length`;
- ``gbt``: GB/T 20999 :func:`~agent.protocols.gbt20999.frame.decode_frame`
  (both framings), the stream :class:`~agent.protocols.gbt20999.frame.FrameDecoder`,
  and :func:`~agent.protocols.gbt20999.message.decode` with its stream decoder.

The rule is the Hypothesis run's (``bench/fuzz.py``): every input gives a
value or the codec's typed error (:class:`~agent.errors.FrameError`,
:class:`~agent.errors.MessageError`); any other exception is a crash that
libFuzzer reports with the input saved as ``crash-<sha1>``; an input slower
than ``-timeout`` (1 s unless given) is a hang. The ``agent`` package is
instrumented for coverage (``atheris.instrument_imports``); libraries are
not. The corpus directory (a temporary one unless ``--corpus``) is seeded with
the test suite's worked frames and the captured device's frames in
``/work/shared/vectors/gbt20999`` (or ``$GREENWAVE_VECTORS``).
``--corpus DIR --replay-coverage`` runs a corpus once under :mod:`trace` and
prints the share of the lines inside each codec module's functions that it reaches. Every other
argument goes to libFuzzer as is (``-max_total_time``, ``-runs``, ``-jobs``,
``-dict`` ...); ``-print_final_stats=1`` is on so that the run ends with
executions per second and coverage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import os
import sys
import tempfile
import trace
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import atheris

SELF = Path(__file__).resolve()
REPO = SELF.parents[1]
if str(REPO) not in sys.path:  # run as a script: the seed frames live in tests/
    sys.path.insert(0, str(REPO))

with atheris.instrument_imports(include=["agent"]):
    from agent.errors import FrameError, MessageError
    from agent.protocols import crc, pmpp, snmp
    from agent.protocols.gbt20999 import frame as gbt_frame
    from agent.protocols.gbt20999 import message as gbt_message

VECTORS = Path(os.environ.get("GREENWAVE_VECTORS", "/work/shared/vectors"))


def _split(data: bytes) -> int:
    """Where to cut ``data`` in two for the stream decoders (its first byte decides)."""
    return data[0] % (len(data) + 1) if data else 0


def fuzz_pmpp(data: bytes) -> None:
    """PMPP: one frame in memory, then the same bytes as a stream, whole and in two pieces."""
    try:
        frame = pmpp.decode_frame(data)
    except FrameError:
        pass
    else:
        if pmpp.decode_frame(frame.encode()) != frame:
            raise AssertionError("a decoded PMPP frame does not re-encode to itself")
    whole = pmpp.PmppDecoder().feed(data)
    at = _split(data)
    decoder = pmpp.PmppDecoder()
    if [*decoder.feed(data[:at]), *decoder.feed(data[at:])] != whole:
        raise AssertionError(f"PMPP stream events differ when split at {at}")


def fuzz_snmp(data: bytes) -> None:
    """SNMPv1: the header reader and the whole-message decoder."""
    with contextlib.suppress(MessageError):
        snmp.message_length(data)
    try:
        message = snmp.decode_message(data)
    except MessageError:
        return
    if snmp.decode_message(snmp.encode_message(message)) != message:
        raise AssertionError("a decoded SNMP message does not re-encode to itself")


def fuzz_gbt(data: bytes) -> None:
    """GB/T 20999: frames (both framings), messages, and both stream decoders."""
    for framing in gbt_frame.Framing:
        with contextlib.suppress(FrameError):
            gbt_frame.decode_frame(data, framing=framing)
        with contextlib.suppress(FrameError, MessageError):
            gbt_message.decode(data, framing=framing)
    whole = gbt_frame.FrameDecoder().feed(data)
    at = _split(data)
    decoder = gbt_frame.FrameDecoder()
    if [*decoder.feed(data[:at]), *decoder.feed(data[at:])] != whole:
        raise AssertionError(f"GB/T stream events differ when split at {at}")
    gbt_message.MessageDecoder().feed(data)
    # Random bytes rarely carry a good CRC: also read them as the body of an intact
    # frame, so that the message parser sees every header, count and value layout.
    if gbt_frame.MIN_BODY <= len(data) <= 1024:
        framed = gbt_frame.encode_frame(data, framing=gbt_frame.Framing.STREAM)
        try:
            message = gbt_message.decode(framed, framing=gbt_frame.Framing.STREAM)
        except MessageError:
            return
        again = gbt_message.encode(message, framing=gbt_frame.Framing.STREAM)
        # Deviations (the 0x71 heartbeat reply ...) are read, never sent.
        strict = dataclasses.replace(message, deviations=frozenset())
        if gbt_message.decode(again, framing=gbt_frame.Framing.STREAM) != strict:
            raise AssertionError("a decoded GB/T message does not re-encode to itself")


def _pmpp_seeds() -> Iterable[bytes]:
    from tests.protocols.test_pmpp import WORKED  # after instrumentation

    yield from (wire for _frame, wire in WORKED)
    for _name, wire, _message in _snmp_fixtures():
        yield pmpp.encode_frame(address=1, payload=wire)


def _snmp_fixtures() -> list[tuple[str, bytes, Any]]:
    from tests.protocols.test_snmp import FIXTURES  # after instrumentation

    return list(FIXTURES)


def _snmp_seeds() -> Iterable[bytes]:
    yield from (wire for _name, wire, _message in _snmp_fixtures())


def _gbt_seeds() -> Iterable[bytes]:
    from tests.protocols.gbt20999.test_frame import FIXTURES  # after instrumentation

    for case in FIXTURES:  # pytest.param(framing, wire, id=...)
        wire = case.values[1]
        if isinstance(wire, bytes):
            yield wire
    catalog = VECTORS / "gbt20999" / "protocol_catalog.json"
    if catalog.is_file():
        for item in json.loads(catalog.read_text(encoding="utf-8")).get("items", []):
            for key in ("sample_send", "sample_response"):
                sample = item.get(key)
                if isinstance(sample, str):
                    try:
                        yield bytes.fromhex(sample)
                    except ValueError:
                        continue


TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], Iterable[bytes]]]] = {
    "pmpp": (fuzz_pmpp, _pmpp_seeds),
    "snmp": (fuzz_snmp, _snmp_seeds),
    "gbt": (fuzz_gbt, _gbt_seeds),
}


def write_seeds(corpus: Path, seeds: Iterable[bytes]) -> int:
    """Write each seed to ``corpus`` under its SHA-1 (as libFuzzer names inputs)."""
    corpus.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in seeds:
        (corpus / hashlib.sha1(seed, usedforsecurity=False).hexdigest()).write_bytes(seed)
        count += 1
    return count


def _function_lines(filename: str) -> set[int]:
    """Lines of code inside functions (not module or class bodies, run at import)."""
    source = Path(filename).read_text(encoding="utf-8")
    lines: set[int] = set()
    pending = [compile(source, filename, "exec")]
    while pending:
        code = pending.pop()
        pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        if code.co_flags & inspect.CO_OPTIMIZED:
            lines.update(line for _start, _end, line in code.co_lines() if line is not None)
            lines.discard(code.co_firstlineno)  # the def line itself
    return lines


def replay_coverage(target: str, corpus: Path) -> None:
    """Run every input in ``corpus`` once under :mod:`trace`; print line coverage per module.

    Only the modules the target exercises are listed (with the share of their
    executable lines that the corpus reached), so that the corpus a long run
    leaves behind can be judged without a coverage tool.
    """
    check, _seeds = TARGETS[target]
    modules = {
        "pmpp": [pmpp, crc],
        "snmp": [snmp],
        "gbt": [gbt_frame, gbt_message, crc],
    }[target]
    tracer = trace.Trace(count=1, trace=0)
    inputs = sorted(path for path in corpus.iterdir() if path.is_file())
    for path in inputs:
        data = path.read_bytes()
        with contextlib.suppress(AssertionError):
            tracer.runfunc(check, data)
    counts = tracer.results().counts
    print(f"{target}: {len(inputs)} corpus inputs replayed")
    for module in modules:
        filename = str(module.__file__)
        executable = _function_lines(filename)
        hit = {line for (name, line), n in counts.items() if name == filename and n}
        share = len(hit & executable) / len(executable) if executable else 0.0
        reached = len(hit & executable)
        print(f"  {module.__name__:36} {reached:>4}/{len(executable):<4} lines {share:6.1%}")


def main(argv: list[str]) -> None:
    """Seed a corpus and hand over to libFuzzer (which exits the process)."""
    if len(argv) < 2 or argv[1] not in TARGETS or argv[1] in ("-h", "--help"):
        print(__doc__)
        print(f"targets: {', '.join(TARGETS)}")
        raise SystemExit(2)
    target, rest = argv[1], argv[2:]
    corpus: Path | None = None
    if "--corpus" in rest:
        at = rest.index("--corpus")
        corpus = Path(rest[at + 1])
        del rest[at : at + 2]
    if corpus is None:
        corpus = Path(tempfile.mkdtemp(prefix=f"greenwave-atheris-{target}-"))
    if "--replay-coverage" in rest:
        if corpus is None:
            raise SystemExit("--replay-coverage needs --corpus DIR")
        replay_coverage(target, corpus)
        return
    check, seeds = TARGETS[target]
    seeded = write_seeds(corpus, seeds())
    print(f"atheris: target {target}, corpus {corpus} ({seeded} seeds)", flush=True)
    flags = list(rest)
    if not any(flag.startswith("-timeout=") for flag in flags):
        flags.append("-timeout=1")
    if not any(flag.startswith("-print_final_stats=") for flag in flags):
        flags.append("-print_final_stats=1")
    atheris.Setup([argv[0], *flags, str(corpus)], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
