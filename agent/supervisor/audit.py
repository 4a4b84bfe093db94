"""The audit log: append-only, hash-chained, on disk (SPEC §6, issue 6).

Every command (accepted or rejected), mode change, technician action and
controller fault is appended here, and ``greenwave audit verify`` detects any
entry that was edited, removed or reordered afterwards, and names it.

On disk, one directory (``<state dir>/audit/``)::

    audit.lock                        flock: one writer (the agent) at a time
    head.json (+ .bak, .lock)         the head: seq and hash of the newest synced
                                      entry, and where the kept log starts
                                      (a DurableFile, kind "audit-head")
    audit-00000000000000000001.log    entries from seq 1 on (the oldest kept file)
    audit-00000000000000004711.log    the newest file: the one appended to

A file is named for the ``seq`` of its first entry (20 digits). Each entry is
one line of compact ASCII JSON, ending in LF (JSON escapes every LF inside)::

    {"seq":17,"ts":1795657262.125,"kind":"command","cmd":"control.pattern",
     "outcome":"accepted","code":"OK","jti":"c-81f2","prev":"9f86…","hash":"e3b0…"}
      │        │                    │     └── the kind's own fields (flat) ──┘
      │        │                    └ command | command_rejections | mode |
      │        │                      technician | controller_fault | agent |
      │        │                      audit_rotated | audit_recovered | …
      │        └ seconds since the epoch (ms resolution)
      └ 1, 2, 3, … never reused

    hash = sha256 hex of the canonical JSON of the entry without "hash"
           (keys sorted, no spaces, UTF-8: agent.central.durable.canonical_json)
    prev = the "hash" of entry seq - 1; 64 zeros for entry 1

      entry 1             entry 2             entry 3
    ┌────────────┐      ┌────────────┐      ┌────────────┐
    │ prev 000…  │  ┌──▶│ prev h1    │  ┌──▶│ prev h2    │      head.json
    │ …          │  │   │ …          │  │   │ …          │    ┌──────────────┐
    │ hash h1 ───┼──┘   │ hash h2 ───┼──┘   │ hash h3 ───┼───▶│ seq 3, h3    │
    └────────────┘      └────────────┘      └────────────┘    └──────────────┘

Editing an entry breaks its own hash; rewriting it *with* a fresh hash breaks
the next entry's ``prev``; removing or moving one breaks the numbering and
the chain. The newest entry has no successor to vouch for it, so the head
file does: it is rewritten atomically on every sync, and verify checks that
the log reaches it and that the entry there has the recorded hash. Entries
appended after the last sync (at most ``keep_synced``'s interval, and never a
``durable=True`` one) are not yet covered by the head: removing *those* from
the end cannot be detected locally.

Writing (:meth:`AuditLog.append`): the line goes to the OS in one ``write`` at
once, so a SIGKILL loses nothing ``append`` returned. ``durable=True`` (mode
changes, accepted commands) also fsyncs the file and rewrites the head before
returning; other entries are fsynced in groups by :meth:`AuditLog.sync` and
by :meth:`AuditLog.keep_synced`, which the supervisor runs.

Opening (:meth:`AuditLog.open`): whatever follows the last line of the
newest file that is an entry is a torn write (a line cut short by a power
cut, or the zeros and stale blocks some file systems leave): it is cut,
logged, and the cut is itself recorded as an ``audit_recovered`` entry. Lines
up to the newest entry are never changed or removed, damaged or not (they are
evidence; verify names them).
If the head records entries the files no longer hold, the numbers are never
handed out again: the log continues after the head's seq, chained to the
head's hash, with an ``audit_recovered`` entry saying which are missing.

Floods (:meth:`AuditLog.note_rejection`): per window (``rejection_window_s``)
the first unauthenticated rejection of each code and the first
``rejection_burst`` authenticated ones (whose ``jti`` a valid signature vouches
for) get their own ``command`` entry; the rest are counted into one
``command_rejections`` entry when the window ends. A flood of forged commands
costs a few entries per window, and no fsync of its own.

Rotation: a file that would grow past ``max_file_bytes`` is closed and the
next entry starts a new one; the chain runs on across files. Beyond
``keep_files`` files the oldest are deleted, whole, after an ``audit_rotated``
entry (synced, with the head, before anything is deleted) records the seq
range dropped and the hash of the last dropped entry, the anchor the kept log
now starts from.

Verifying (:func:`verify`, no lock: it runs beside the agent) walks every
entry from the anchor and reports the first problem, naming the entry (seq,
file, line): ``edited`` (its hash does not match its content, or it was
rewritten and no longer matches what its successor or the head recorded),
``removed`` (a number is missing and appears nowhere), ``reordered`` (an
entry is not where its number puts it), ``truncated`` (the log ends mid-entry
before the head) or ``unreadable`` (a line that is not an entry; a missing or
damaged head file).

Limits: someone with root on the device can rewrite the whole log *and* the
head consistently; only the copy forwarded to central (each entry as an event
with ``src`` "audit", :meth:`AuditEntry.as_event`) defends against that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from agent.central.durable import (
    DurableFile,
    StateFileError,
    canonical_json,
    fsync_path,
    lock_directory,
    model_parser,
    strict_json_loads,
)
from agent.logs import get_logger

log = get_logger("supervisor.audit")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
EntrySink = Callable[["AuditEntry"], None]

#: The audit log's directory under the agent's state directory.
AUDIT_DIR = "audit"
HEAD_FILE = "head.json"
HEAD_KIND = "audit-head"
LOCK_FILE = "audit.lock"
#: ``prev`` of entry 1.
GENESIS = "0" * 64
#: Longest line (without its LF): an entry fits in one events message to central.
MAX_LINE_BYTES = 8 * 1024
#: Longer strings in an entry are cut to this many characters (ending in "…").
MAX_TEXT_CHARS = 500
DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024
DEFAULT_KEEP_FILES = 8
DEFAULT_REJECTION_WINDOW_S = 10.0
DEFAULT_REJECTION_BURST = 20
#: Distinct codes counted in one ``command_rejections`` entry (more: "other").
MAX_CODES_PER_SUMMARY = 32

#: Fields every entry has, which an entry's own fields may not use.
RESERVED_FIELDS = frozenset({"seq", "ts", "kind", "prev", "hash"})

_FILE_NAME = re.compile(r"^audit-(\d{20})\.log$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KIND_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,39}$")
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
_VERIFY_ATTEMPTS = 3


class AuditError(StateFileError):
    """The audit log cannot be opened, written or synced, or is not there."""


class Kind(StrEnum):
    """The kinds of entry the agent writes (any ``[a-z][a-z0-9_.]*`` name is accepted)."""

    #: A central command: ``cmd``, ``jti``, ``outcome`` (accepted | rejected | applied |
    #: failed), ``code``, ``detail``.
    COMMAND = "command"
    #: Rejections counted instead of written one by one (a flood): ``count``, ``codes``.
    COMMAND_REJECTIONS = "command_rejections"
    #: A mode change: ``mode``, ``previous``, ``reason``.
    MODE = "mode"
    #: A technician action at the device (override, release, keys, …).
    TECHNICIAN = "technician"
    #: The controller reported a fault or the link to it failed.
    CONTROLLER_FAULT = "controller_fault"
    #: The agent itself: started, stopping, configuration.
    AGENT = "agent"
    #: The oldest files were deleted (rotation); the anchor of the kept log.
    AUDIT_ROTATED = "audit_rotated"
    #: The log was repaired on open (a torn write cut, entries found missing).
    AUDIT_RECOVERED = "audit_recovered"


# -- entries ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One entry of the log."""

    seq: int
    ts: float
    kind: str
    #: The kind's own fields (JSON values), in the order they were given.
    fields: Mapping[str, Any]
    prev: str
    hash: str
    #: Where it was read from (None for an entry just appended).
    file: str | None = None
    line: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry exactly as stored (its ``hash`` checks out over the rest)."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            **self.fields,
            "prev": self.prev,
            "hash": self.hash,
        }

    def as_event(self) -> dict[str, Any]:
        """The entry as an event for the outbox: central gets the whole entry to re-check."""
        return {"ts": self.ts, "src": "audit", "kind": self.kind, "entry": self.as_json()}


def entry_hash(body: Mapping[str, Any]) -> str:
    """The hash of an entry: sha256 hex over the canonical JSON of all but ``hash``."""
    return hashlib.sha256(
        canonical_json({key: value for key, value in body.items() if key != "hash"})
    ).hexdigest()


def _encode(body: Mapping[str, Any]) -> bytes:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii") + b"\n"


def _parse_line(data: bytes) -> dict[str, Any]:
    """The entry a stored line holds; ValueError (one line) when it is not one."""
    body = strict_json_loads(data)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("no valid 'seq'")
    ts = body.get("ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise ValueError("no valid 'ts'")
    if not isinstance(body.get("kind"), str):
        raise ValueError("no valid 'kind'")
    for name in ("prev", "hash"):
        value = body.get(name)
        if not isinstance(value, str) or not _HEX64.match(value):
            raise ValueError(f"no valid {name!r}")
    return body


def _entry(body: Mapping[str, Any], file: str | None = None, line: int | None = None) -> AuditEntry:
    return AuditEntry(
        seq=body["seq"],
        ts=body["ts"],
        kind=body["kind"],
        fields={key: value for key, value in body.items() if key not in RESERVED_FIELDS},
        prev=body["prev"],
        hash=body["hash"],
        file=file,
        line=line,
    )


def _clean_value(value: Any, *, nested: bool = False) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return float(value)
    if isinstance(value, str):
        text = str(value)
        return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"
    if not nested and isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("mapping keys must be strings")
        return {str(key): _clean_value(item, nested=True) for key, item in value.items()}
    if not nested and isinstance(value, list | tuple):
        return [_clean_value(item, nested=True) for item in value]
    raise ValueError(f"{type(value).__name__} is not an audit field value")


def _clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name in RESERVED_FIELDS or not _FIELD_NAME.match(name):
            raise ValueError(f"{name!r} cannot be an audit field name")
        try:
            clean[name] = _clean_value(value)
        except ValueError as err:
            raise ValueError(f"audit field {name!r}: {err}") from None
    return clean


# -- files -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _File:
    first_seq: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # 1-based, counting every LF
    offset: int
    end: int  # just past its LF
    data: bytes  # without the LF (empty when overlong)
    terminated: bool
    overlong: bool


def _file_name(first_seq: int) -> str:
    return f"audit-{first_seq:020d}.log"


def _list_files(directory: Path) -> list[_File]:
    found = []
    for path in directory.iterdir():
        match = _FILE_NAME.match(path.name)
        if match:
            found.append(_File(int(match[1]), path))
    return sorted(found, key=lambda item: item.first_seq)


def _read_lines(handle: BinaryIO) -> Iterator[_Line]:
    """Every line of a file, in bounded memory (an overlong line is skipped to its LF)."""
    number = offset = 0
    while True:
        piece = handle.readline(MAX_LINE_BYTES + 1)
        if not piece:
            return
        number += 1
        start = offset
        offset += len(piece)
        if piece.endswith(b"\n"):
            yield _Line(number, start, offset, piece[:-1], terminated=True, overlong=False)
            continue
        if len(piece) <= MAX_LINE_BYTES:  # end of file without LF
            yield _Line(number, start, offset, piece, terminated=False, overlong=False)
            return
        terminated = False
        while rest := handle.readline(64 * 1024):
            offset += len(rest)
            if rest.endswith(b"\n"):
                terminated = True
                break
        yield _Line(number, start, offset, b"", terminated=terminated, overlong=True)


def _is_entry(data: bytes) -> bool:
    try:
        _parse_line(data)
    except ValueError:
        return False
    return True


def _last_entry_of(path: Path) -> AuditEntry | None:
    """The last complete, parseable entry of a file (its hash not checked)."""
    last = None
    with path.open("rb") as handle:
        for line in _read_lines(handle):
            if not line.terminated or line.overlong:
                continue
            try:
                last = _entry(_parse_line(line.data), path.name, line.number)
            except ValueError:
                continue
    return last


def _first_entry_of(path: Path) -> AuditEntry | None:
    with path.open("rb") as handle:
        for line in _read_lines(handle):
            if line.terminated and not line.overlong:
                with contextlib.suppress(ValueError):
                    return _entry(_parse_line(line.data), path.name, line.number)
    return None


# -- the head --------------------------------------------------------------------------------


class AuditHead(BaseModel):
    """``head.json``: the newest synced entry, and the anchor the kept log starts from."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    #: The newest entry on the medium (0: none yet).
    seq: int = Field(ge=0)
    hash: str = Field(pattern=_HEX64.pattern)
    #: The oldest entry kept (1 until a rotation deleted files).
    first_seq: int = Field(ge=1)
    #: The ``prev`` that entry must have: the hash of the last deleted entry.
    first_prev: str = Field(pattern=_HEX64.pattern)


def _head_file(directory: Path) -> DurableFile:
    return DurableFile(directory / HEAD_FILE, kind=HEAD_KIND, max_bytes=4096)


# -- verifying -------------------------------------------------------------------------------

ProblemKind = Literal["edited", "removed", "reordered", "truncated", "unreadable"]

_VERBS: dict[ProblemKind, str] = {
    "edited": "was edited",
    "removed": "was removed",
    "reordered": "is out of order",
    "truncated": "is cut short",
    "unreadable": "is unreadable",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """The first thing wrong with the log, and the entry it concerns."""

    kind: ProblemKind
    #: The entry concerned (None: a problem of the head file itself).
    seq: int | None
    #: Where: a log file's name (or the head file's), and the line in it.
    file: str | None
    line: int | None
    #: What is wrong, for a person.
    detail: str

    def describe(self) -> str:
        """One line: ``entry 17 (audit-….log line 17) was edited: …``."""
        where = self.file or "the audit directory"
        if self.line is not None:
            where = f"{where} line {self.line}"
        if self.seq is None:
            return f"{where}: {self.detail}"
        return f"entry {self.seq} ({where}) {_VERBS[self.kind]}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seq": self.seq,
            "file": self.file,
            "line": self.line,
            "detail": self.detail,
            "message": self.describe(),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyReport:
    """What :func:`verify` found."""

    ok: bool
    #: Entries checked and found intact (before the problem, when there is one).
    entries: int
    first_problem: Problem | None
    #: The newest entry read: seq and hash (0 and 64 zeros for an empty log).
    last_seq: int
    last_hash: str
    #: The oldest entry kept (anchor of the chain).
    first_seq: int
    #: What the head file records (None: no usable head file).
    head: AuditHead | None
    files: int
    #: Bytes after the last LF of the newest file: a line being written, or a torn write.
    pending_bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "head": None if self.head is None else self.head.model_dump(),
            "files": self.files,
            "pending_bytes": self.pending_bytes,
            "problem": None if self.first_problem is None else self.first_problem.as_json(),
        }


def verify(directory: Path) -> VerifyReport:
    """Check every kept entry, the chain and the head; report the first problem.

    Safe beside the running agent: a rotation or sync racing with the check
    makes it look again (up to three times). :class:`AuditError` when
    ``directory`` is not there.
    """
    if not directory.is_dir():
        raise AuditError(f"no audit log at {directory}")
    report: VerifyReport | None = None
    for _ in range(_VERIFY_ATTEMPTS):
        before = _signature(directory)
        try:
            report = _verify_once(directory)
        except FileNotFoundError as err:
            name = Path(err.filename).name if err.filename else None
            report = _failed(Problem(
                kind="unreadable", seq=None, file=name, line=None,
                detail="the file disappeared while it was read (a rotation?)",
            ))  # fmt: skip
        except OSError as err:
            raise AuditError(f"{directory}: cannot read: {err.strerror or err}") from err
        if report.ok or _signature(directory) == before:
            return report
    assert report is not None
    return report


def _failed(problem: Problem) -> VerifyReport:
    return VerifyReport(
        ok=False,
        entries=0,
        first_problem=problem,
        last_seq=0,
        last_hash=GENESIS,
        first_seq=1,
        head=None,
        files=0,
    )


def _signature(directory: Path) -> tuple[object, ...]:
    return (_head_file(directory).stat_signature(), tuple(f.name for f in _list_files(directory)))


def _load_head(directory: Path) -> tuple[AuditHead | None, Problem | None]:
    """The head, and a problem when it is not the main copy, intact (None, None: no head)."""
    head_file = _head_file(directory)
    try:
        loaded = head_file.load(model_parser(AuditHead))
    except StateFileError as err:
        return None, Problem(
            kind="unreadable", seq=None, file=HEAD_FILE, line=None, detail=f"damaged: {err}"
        )
    if loaded.source == "backup":
        kind: ProblemKind = "removed" if loaded.problem == "missing" else "unreadable"
        what = "missing" if loaded.problem == "missing" else f"damaged ({loaded.problem})"
        return loaded.value, Problem(
            kind=kind,
            seq=None,
            file=HEAD_FILE,
            line=None,
            detail=f"the head file is {what}; its one-write-older backup is used",
        )
    return loaded.value, None


def _scan_anchor(files: list[_File]) -> tuple[int, str]:
    """Without a head: the newest ``audit_rotated`` entry's anchor, or entry 1's."""
    best: tuple[int, str] | None = None
    for item in files:
        with item.path.open("rb") as handle:
            for line in _read_lines(handle):
                if b'"audit_rotated"' not in line.data:
                    continue
                try:
                    body = _parse_line(line.data)
                except ValueError:
                    continue
                to_seq, last_hash = body.get("dropped_to"), body.get("dropped_last_hash")
                if (
                    body["kind"] == Kind.AUDIT_ROTATED
                    and entry_hash(body) == body["hash"]
                    and isinstance(to_seq, int)
                    and isinstance(last_hash, str)
                    and (best is None or to_seq + 1 > best[0])
                ):
                    best = (to_seq + 1, last_hash)
    return best or (1, GENESIS)


def _kept(files: list[_File], first_seq: int) -> list[_File]:
    """Files not wholly before ``first_seq`` (left by a rotation interrupted mid-delete)."""
    return [
        item
        for index, item in enumerate(files)
        if index + 1 == len(files) or files[index + 1].first_seq > first_seq
    ]


def _verify_once(directory: Path) -> VerifyReport:
    head, head_problem = _load_head(directory)
    files = _list_files(directory)
    if head is not None:
        first_seq, first_prev = head.first_seq, head.first_prev
    else:
        first_seq, first_prev = _scan_anchor(files)
    files = _kept(files, first_seq)
    walk = _Walk(files, first_seq, first_prev, head_seq=head.seq if head else None)
    problem = walk.run()
    if problem is None:
        if head is None and head_problem is None and walk.count:
            head_problem = Problem(
                kind="removed",
                seq=None,
                file=HEAD_FILE,
                line=None,
                detail="the head file is missing: the end of the log cannot be checked",
            )
        problem = head_problem or walk.check_head(head)
    return VerifyReport(
        ok=problem is None,
        entries=walk.count,
        first_problem=problem,
        last_seq=walk.last_seq,
        last_hash=walk.last_hash,
        first_seq=first_seq,
        head=head,
        files=len(files),
        pending_bytes=walk.pending_bytes,
    )


class _Walk:
    """One pass over the kept files, checking each entry against the one before."""

    def __init__(
        self, files: list[_File], first_seq: int, first_prev: str, *, head_seq: int | None
    ) -> None:
        self.files = files
        self.first_seq = first_seq
        self.head_seq = head_seq
        self.count = 0
        self.last_seq = first_seq - 1
        self.last_hash = first_prev
        self.last_where: tuple[str, int] | None = None
        self.hash_at_head: str | None = None
        self.pending_bytes = 0
        self.pending_where: tuple[str, int] | None = None

    def run(self) -> Problem | None:
        for index, item in enumerate(self.files):
            newest = index + 1 == len(self.files)
            with item.path.open("rb") as handle:
                for line in _read_lines(handle):
                    problem = self._check(item, line, newest=newest)
                    if problem is not None:
                        return problem
        return None

    def _problem(self, kind: ProblemKind, seq: int, item: _File, line: _Line, why: str) -> Problem:
        return Problem(kind=kind, seq=seq, file=item.name, line=line.number, detail=why)

    def _check(self, item: _File, line: _Line, *, newest: bool) -> Problem | None:
        expected = self.last_seq + 1
        if not line.terminated:
            if newest:
                self.pending_bytes = line.end - line.offset
                self.pending_where = (item.name, line.number)
                return None
            return self._problem(
                "truncated", expected, item, line, "the file ends in the middle of a line"
            )
        if line.overlong:
            why = f"the line is longer than {MAX_LINE_BYTES} bytes"
            return self._problem("unreadable", expected, item, line, why)
        try:
            body = _parse_line(line.data)
        except ValueError as err:
            return self._problem("unreadable", expected, item, line, f"not an audit entry: {err}")
        seq: int = body["seq"]
        if entry_hash(body) != body["hash"]:
            return self._problem("edited", seq, item, line, "its hash does not match its content")
        if seq == expected:
            if body["prev"] != self.last_hash:
                return self._broken_link(item, line, seq)
        elif seq > expected:
            return self._gap(item, line, body)
        else:
            after = f"entry {self.last_seq}" if self.count else "the start of the log"
            return self._problem("reordered", seq, item, line, f"it comes after {after}")
        self.count += 1
        self.last_seq, self.last_hash = seq, body["hash"]
        self.last_where = (item.name, line.number)
        if seq == self.head_seq:
            self.hash_at_head = body["hash"]
        return None

    def _broken_link(self, item: _File, line: _Line, seq: int) -> Problem:
        if self.last_where is None:
            why = "its prev does not match where the kept log starts (the head's anchor)"
            return self._problem("edited", seq, item, line, why)
        file, number = self.last_where
        place = "line" if file == item.name else f"{item.name} line"
        return Problem(
            kind="edited",
            seq=self.last_seq,
            file=file,
            line=number,
            detail=(
                f"rewritten with a new hash; entry {seq} ({place} {line.number}) "
                "chains to the old one"
            ),
        )

    def _gap(self, item: _File, line: _Line, body: Mapping[str, Any]) -> Problem:
        expected, seq = self.last_seq + 1, body["seq"]
        found = _find_seq(self.files, expected)
        if found is not None:
            file, number = found
            place = "line" if file == item.name else f"{item.name} line"
            return Problem(
                kind="reordered",
                seq=expected,
                file=file,
                line=number,
                detail=f"it belongs before entry {seq} ({place} {line.number})",
            )
        if body["prev"] == self.last_hash:
            why = f"its number was changed from {expected} to {seq}"
            return self._problem("edited", seq, item, line, why)
        missing = "" if seq == expected + 1 else f"entries {expected} to {seq - 1} are missing; "
        if self.count:
            why = f"{missing}entry {seq} follows entry {self.last_seq} here"
        else:
            why = f"{missing}the log starts at entry {seq} instead"
        return self._problem("removed", expected, item, line, why)

    def check_head(self, head: AuditHead | None) -> Problem | None:
        if head is None or head.seq < self.first_seq:
            return None
        if head.seq > self.last_seq:
            missing = self.last_seq + 1
            if self.pending_where is not None:
                file, number = self.pending_where
                return Problem(
                    kind="truncated",
                    seq=missing,
                    file=file,
                    line=number,
                    detail=f"the log ends mid-entry, but the head records entries up to {head.seq}",
                )
            end_file: str | None = self.files[-1].name if self.files else None
            end_line = 0
            if self.last_where is not None:
                end_file, end_line = self.last_where
            ends = f"entry {self.last_seq}" if self.count else "no entry"
            return Problem(
                kind="removed",
                seq=missing,
                file=end_file,
                line=end_line + 1,
                detail=f"the log ends at {ends}, but the head records entries up to {head.seq}",
            )
        if self.hash_at_head != head.hash:
            where = _find_seq(self.files, head.seq)
            return Problem(
                kind="edited",
                seq=head.seq,
                file=where[0] if where else None,
                line=where[1] if where else None,
                detail="rewritten with a new hash; the head file records the old one",
            )
        return None


def _find_seq(files: list[_File], seq: int) -> tuple[str, int] | None:
    """Where an intact line holding entry ``seq`` is, if anywhere."""
    for item in files:
        with item.path.open("rb") as handle:
            for line in _read_lines(handle):
                if not line.terminated or line.overlong:
                    continue
                try:
                    body = _parse_line(line.data)
                except ValueError:
                    continue
                if body["seq"] == seq and entry_hash(body) == body["hash"]:
                    return item.name, line.number
    return None


def entries(
    directory: Path, *, since: float | None = None, kinds: Iterable[str] | None = None
) -> Iterator[AuditEntry]:
    """The readable entries, oldest first (``ts >= since``, of ``kinds``), unchecked.

    Lines that are not entries are skipped: :func:`verify` is what judges.
    :class:`AuditError` when ``directory`` is not there.
    """
    if not directory.is_dir():
        raise AuditError(f"no audit log at {directory}")
    wanted = None if kinds is None else frozenset(kinds)
    try:
        head, _ = _load_head(directory)
        files = _list_files(directory)
        first_seq = head.first_seq if head is not None else 1
        for item in _kept(files, first_seq):
            try:
                handle = item.path.open("rb")
            except FileNotFoundError:  # deleted by a rotation meanwhile
                continue
            with handle:
                for line in _read_lines(handle):
                    if not line.terminated or line.overlong:
                        continue
                    try:
                        body = _parse_line(line.data)
                    except ValueError:
                        continue
                    if since is not None and body["ts"] < since:
                        continue
                    if wanted is not None and body["kind"] not in wanted:
                        continue
                    yield _entry(body, item.name, line.number)
    except OSError as err:
        raise AuditError(f"{directory}: cannot read: {err.strerror or err}") from err


# -- writing ---------------------------------------------------------------------------------


@dataclass
class _RejectionWindow:
    start: float
    codes: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    count: int = 0
    authenticated: int = 0
    last: float = 0.0
    logged_codes: set[str] = field(default_factory=set)
    logged_authenticated: int = 0


@dataclass(frozen=True, slots=True)
class _SyncJob:
    paths: frozenset[Path]
    head: AuditHead


class AuditLog:
    """The writer: one per audit directory, held by the agent (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        lock_fd: int,
        *,
        max_file_bytes: int,
        keep_files: int,
        clock: Clock,
        sleep: Sleep,
        rejection_window_s: float,
        rejection_burst: int,
        on_entry: EntrySink | None,
    ) -> None:
        """Prefer :meth:`open`; this makes a writer over a locked, empty ``directory``."""
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self.keep_files = keep_files
        self.rejection_window_s = rejection_window_s
        self.rejection_burst = rejection_burst
        self.on_entry = on_entry
        self._lock_fd: int | None = lock_fd
        self._clock = clock
        self._sleep = sleep
        self._head_file = _head_file(directory)
        self._files: list[_File] = []
        self._fd: int | None = None
        self._fd_size = 0
        self._last_seq = 0
        self._last_hash = GENESIS
        self._first_seq = 1
        self._first_prev = GENESIS
        self._synced_seq = 0
        self._unsynced: set[Path] = set()
        self._sync_lock = threading.Lock()
        self._head_written: AuditHead | None = None
        self._window: _RejectionWindow | None = None
        self._dropping = False

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        keep_files: int = DEFAULT_KEEP_FILES,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rejection_window_s: float = DEFAULT_REJECTION_WINDOW_S,
        rejection_burst: int = DEFAULT_REJECTION_BURST,
        on_entry: EntrySink | None = None,
    ) -> AuditLog:
        """Open (or create) the log in ``directory``, repair a torn write, sync the head.

        ``on_entry`` is called with every entry once it is written (the
        supervisor forwards them to central); an exception there is logged,
        never raised into the caller of :meth:`append`. :class:`AuditError`
        when the directory cannot be used or another process holds it.
        """
        if max_file_bytes < 1024:
            raise ValueError("max_file_bytes must be at least 1024")
        if keep_files < 1:
            raise ValueError("keep_files must be at least 1")
        if rejection_window_s <= 0 or rejection_burst < 0:
            raise ValueError("rejection_window_s must be > 0 and rejection_burst >= 0")
        lock_fd = lock_directory(
            directory, lock_name=LOCK_FILE, what="the audit log", error=AuditError
        )
        audit = cls(
            directory,
            lock_fd,
            max_file_bytes=max_file_bytes,
            keep_files=keep_files,
            clock=clock,
            sleep=sleep,
            rejection_window_s=rejection_window_s,
            rejection_burst=rejection_burst,
            on_entry=on_entry,
        )
        try:
            audit._recover()
        except OSError as err:
            audit.close(sync=False)
            raise AuditError(f"{directory}: cannot open: {err.strerror or err}") from err
        except BaseException:
            audit.close(sync=False)
            raise
        return audit

    def close(self, *, sync: bool = True) -> None:
        """Write a pending rejection count, sync (unless ``sync=False``) and let go."""
        if self._lock_fd is None:
            return
        try:
            if sync:
                self._flush_rejections(force=True)
                self.sync()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def last_seq(self) -> int:
        """The newest entry's number (0: none yet)."""
        return self._last_seq

    @property
    def last_hash(self) -> str:
        return self._last_hash

    @property
    def synced_seq(self) -> int:
        """Every entry up to this one is on the medium, and covered by the head file."""
        return self._synced_seq

    @property
    def first_seq(self) -> int:
        """The oldest entry kept."""
        return self._first_seq

    def _recover(self) -> None:
        head = self._load_head()
        self._files = _list_files(self.directory)
        if head is not None:
            self._first_seq, self._first_prev = head.first_seq, head.first_prev
            self._finish_interrupted_drop()
        else:
            self._first_seq, self._first_prev = self._anchor_from_files()
        cut = self._repair_tail()
        notes: dict[str, Any] = {}
        if cut is not None:
            notes.update(torn_file=cut[0], torn_bytes=cut[1])
        if head is None and self._last_seq >= self._first_seq:
            notes["head"] = "missing or unreadable; re-created from the log"
        if head is not None and head.seq > self._last_seq:
            # The head vouched for entries the files no longer hold: never reuse
            # their numbers; chain on from the head's record of the last one.
            log.error("audit_entries_missing", from_seq=self._last_seq + 1, to_seq=head.seq)
            notes.update(missing_from=self._last_seq + 1, missing_to=head.seq)
            self._last_seq, self._last_hash = head.seq, head.hash
        self._synced_seq = min(self._last_seq, head.seq if head is not None else 0)
        self._head_written = head
        if self._files:
            self._open_file(self._files[-1])
        if notes:
            self.append(Kind.AUDIT_RECOVERED, durable=True, **notes)
        self.sync()
        self._drop_excess()
        log.info(
            "audit_opened",
            path=str(self.directory),
            last_seq=self._last_seq,
            first_seq=self._first_seq,
            files=len(self._files),
        )

    def _load_head(self) -> AuditHead | None:
        try:
            loaded = self._head_file.load(model_parser(AuditHead))
        except StateFileError as err:
            log.error("audit_head_unreadable", problem=str(err))
            return None
        if loaded.source == "backup":
            log.error("audit_head_from_backup", problem=loaded.problem)
        return loaded.value

    def _anchor_from_files(self) -> tuple[int, str]:
        anchor = _scan_anchor(self._files)
        if anchor[0] > 1 or not self._files:
            return anchor
        first = _first_entry_of(self._files[0].path)
        if first is None or first.seq == 1:
            return (1, GENESIS)
        return (first.seq, first.prev)

    def _finish_interrupted_drop(self) -> None:
        kept = _kept(self._files, self._first_seq)
        for item in self._files:
            if item not in kept:
                log.warning("audit_leftover_file_deleted", file=item.name)
                item.path.unlink(missing_ok=True)
        self._files = kept

    def _repair_tail(self) -> tuple[str, int] | None:
        """Cut a torn write off the newest file; find the last entry. (file, bytes) cut.

        A torn write is whatever follows the newest file's last line that is an
        entry: a line cut short, or zeros and stale blocks after a power cut.
        """
        cut = None
        while self._files:
            newest = self._files[-1]
            good_end = 0
            with newest.path.open("rb") as handle:
                for line in _read_lines(handle):
                    if line.terminated and not line.overlong and _is_entry(line.data):
                        good_end = line.end
                size = handle.seek(0, os.SEEK_END)
            if size > good_end:
                os.truncate(newest.path, good_end)
                log.warning("audit_torn_tail_cut", file=newest.name, bytes=size - good_end)
                cut = (newest.name, size - good_end + (cut[1] if cut else 0))
            if good_end > 0:
                break
            newest.path.unlink()  # empty: a rotation cut short before its first entry
            self._files.pop()
        self._last_seq, self._last_hash = self._first_seq - 1, self._first_prev
        for item in reversed(self._files):
            last = _last_entry_of(item.path)
            if last is not None:
                if entry_hash(last.as_json()) != last.hash:
                    log.error("audit_last_entry_damaged", seq=last.seq, file=item.name)
                self._last_seq, self._last_hash = last.seq, last.hash
                break
        return cut

    # -- appending ---------------------------------------------------------------------------

    def append(self, kind: str, /, *, durable: bool = False, **fields: Any) -> AuditEntry:
        """Append one entry; in the OS when this returns, on the medium too if ``durable``.

        ``fields`` are the kind's own, JSON values (a string longer than
        :data:`MAX_TEXT_CHARS` is cut; a list or mapping holds plain values).
        ValueError: a bad kind or field, or an entry over
        :data:`MAX_LINE_BYTES`; nothing was written. :class:`AuditError`:
        the disk refused.
        """
        self._check_open()
        if not _KIND_NAME.match(kind):
            raise ValueError(f"{kind!r} cannot be an audit kind")
        clean = _clean_fields(fields)
        self._flush_rejections()
        entry = self._write(str(kind), clean)
        self._notify(entry)
        self._drop_excess()
        if durable:
            self.sync()
        return entry

    def note_rejection(
        self, code: str, detail: str, *, jti: str | None = None, **fields: Any
    ) -> AuditEntry | None:
        """Record a rejected command; counted rather than written in a flood.

        ``jti`` only when a valid signature vouches for it (then the rejection
        is *authenticated*). Returns the entry written, or None when the
        rejection was counted into the window's ``command_rejections`` entry.
        """
        self._check_open()
        self._flush_rejections()
        now = self._clock()
        window = self._window
        if window is None:
            window = self._window = _RejectionWindow(start=now)
        if jti is not None and window.logged_authenticated < self.rejection_burst:
            window.logged_authenticated += 1
            return self.append(
                Kind.COMMAND, outcome="rejected", code=code, detail=detail, jti=jti, **fields
            )
        if jti is None and code not in window.logged_codes:
            window.logged_codes.add(code)
            return self.append(
                Kind.COMMAND, outcome="rejected", code=code, detail=detail,
                authenticated=False, **fields,
            )  # fmt: skip
        key = code if code in window.codes or len(window.codes) < MAX_CODES_PER_SUMMARY else "other"
        window.codes[key] = window.codes.get(key, 0) + 1
        window.samples.setdefault(key, detail[:200])
        window.count += 1
        window.authenticated += jti is not None
        window.last = now
        return None

    def _flush_rejections(self, *, force: bool = False) -> None:
        window = self._window
        if window is None:
            return
        if not force and self._clock() < window.start + self.rejection_window_s:
            return
        self._window = None
        if window.count:
            entry = self._write(
                Kind.COMMAND_REJECTIONS,
                _clean_fields(
                    {
                        "count": window.count,
                        "codes": window.codes,
                        "authenticated": window.authenticated,
                        "window_s": self.rejection_window_s,
                        "from_ts": round(window.start, 3),
                        "to_ts": round(window.last, 3),
                        "samples": window.samples,
                    }
                ),
            )
            self._notify(entry)
            self._drop_excess()

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise AuditError(f"{self.directory}: the audit log is closed")

    def _notify(self, entry: AuditEntry) -> None:
        if self.on_entry is None:
            return
        try:
            self.on_entry(entry)
        except Exception as err:  # noqa: BLE001 - forwarding must never undo the record
            log.error("audit_forward_failed", seq=entry.seq, error=str(err) or type(err).__name__)

    def _write(self, kind: str, fields: Mapping[str, Any]) -> AuditEntry:
        seq = self._last_seq + 1
        body: dict[str, Any] = {
            "seq": seq,
            "ts": round(self._clock(), 3),
            "kind": str(kind),
            **fields,
            "prev": self._last_hash,
        }
        body["hash"] = entry_hash(body)
        data = _encode(body)
        if len(data) > MAX_LINE_BYTES + 1:
            raise ValueError(f"audit entry is {len(data) - 1} bytes, more than {MAX_LINE_BYTES}")
        item = self._file_for(seq, len(data))
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError as err:
            with contextlib.suppress(OSError):  # no half line for the next one to follow
                os.ftruncate(self._fd, self._fd_size)
            raise AuditError(f"{item.path}: cannot append: {err.strerror or err}") from err
        self._fd_size += len(data)
        self._last_seq, self._last_hash = seq, body["hash"]
        self._unsynced.add(item.path)
        return _entry(body)

    def _file_for(self, seq: int, size: int) -> _File:
        """The newest file, or a new one from ``seq`` when this line would overfill it."""
        if self._fd is not None and (
            self._fd_size == 0 or self._fd_size + size <= self.max_file_bytes
        ):
            return self._files[-1]
        item = _File(seq, self.directory / _file_name(seq))
        try:
            self._open_file(item)
            fsync_path(self.directory)  # the new name is on the medium
        except OSError as err:
            raise AuditError(f"{item.path}: cannot create: {err.strerror or err}") from err
        self._files.append(item)
        return item

    def _open_file(self, item: _File) -> None:
        fd = os.open(item.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._fd_size = os.fstat(fd).st_size

    def _drop_excess(self) -> None:
        """Delete the oldest files beyond ``keep_files``, after recording it (synced)."""
        if self._dropping or len(self._files) <= self.keep_files:
            return
        self._dropping = True
        try:
            doomed = self._files[: len(self._files) - self.keep_files]
            kept = self._files[len(doomed)]
            last_hash = self._hash_before(kept, doomed[-1])
            self._first_seq, self._first_prev = kept.first_seq, last_hash
            entry = self._write(
                Kind.AUDIT_ROTATED,
                {
                    "dropped_from": doomed[0].first_seq,
                    "dropped_to": kept.first_seq - 1,
                    "dropped_last_hash": last_hash,
                    "dropped_files": len(doomed),
                },
            )
            self._notify(entry)
            self.sync()  # the new anchor is in the head before any file goes
            for item in doomed:
                self._files.remove(item)
                self._unsynced.discard(item.path)
                try:
                    item.path.unlink(missing_ok=True)
                except OSError as err:
                    log.error("audit_file_not_deleted", file=item.name, error=str(err))
            with contextlib.suppress(OSError):
                fsync_path(self.directory)
            log.info(
                "audit_rotated",
                dropped_from=doomed[0].first_seq,
                dropped_to=kept.first_seq - 1,
                first_seq=self._first_seq,
            )
        finally:
            self._dropping = False

    def _hash_before(self, kept: _File, last_doomed: _File) -> str:
        """The hash of the entry just before ``kept`` (the last one deleted)."""
        try:
            last = _last_entry_of(last_doomed.path)
            if last is not None and last.seq == kept.first_seq - 1:
                return last.hash
            first = _first_entry_of(kept.path)
        except OSError as err:
            log.error("audit_anchor_unreadable", file=last_doomed.name, error=str(err))
            return GENESIS
        log.error("audit_anchor_guessed", file=last_doomed.name)
        return first.prev if first is not None else GENESIS

    # -- syncing -----------------------------------------------------------------------------

    def sync(self) -> None:
        """Put every entry on the medium and the head file in step with it (blocks)."""
        self._check_open()
        self._flush_rejections()
        job = self._take_job()
        try:
            self._run_job(job)
        except BaseException:
            self._unsynced |= job.paths
            raise
        self._synced_seq = max(self._synced_seq, job.head.seq)

    async def keep_synced(self, interval_s: float = 1.0) -> NoReturn:
        """Every ``interval_s``: end a rejection window that is due, sync what changed.

        The fsyncs run in a worker thread. A failed sync is logged and retried.
        """
        while True:
            await self._sleep(interval_s)
            try:
                self._flush_rejections()
                if self._synced_seq == self._last_seq and not self._unsynced:
                    continue
                job = self._take_job()
                try:
                    await asyncio.to_thread(self._run_job, job)
                except BaseException:
                    self._unsynced |= job.paths
                    raise
                self._synced_seq = max(self._synced_seq, job.head.seq)
            except (AuditError, ValueError) as err:
                log.error("audit_sync_failed", error=str(err))

    def _take_job(self) -> _SyncJob:
        job = _SyncJob(
            paths=frozenset(self._unsynced),
            head=AuditHead(
                seq=self._last_seq,
                hash=self._last_hash,
                first_seq=self._first_seq,
                first_prev=self._first_prev,
            ),
        )
        self._unsynced.clear()
        return job

    def _run_job(self, job: _SyncJob) -> None:
        # One job at a time: a head must never be written while an older job's
        # fsync (of a file this one does not list) is still in flight.
        with self._sync_lock:
            try:
                for path in job.paths:
                    fsync_path(path)
            except OSError as err:
                raise AuditError(f"{self.directory}: cannot sync: {err.strerror or err}") from err
            written = self._head_written
            if written is not None and (written == job.head or written.seq > job.head.seq):
                return
            try:
                self._head_file.write(job.head.model_dump())
            except StateFileError as err:
                raise AuditError(str(err)) from err
            self._head_written = job.head
