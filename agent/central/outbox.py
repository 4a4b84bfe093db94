"""The events outbox: the hi-res event log, numbered and kept on disk until central has it.

Every event the agent logs (Indiana hi-res codes from the controller, the
agent's own command and link events) is given the next **sequence number**
and appended to a file at once. A forwarder publishes the oldest unforwarded
events as one batch on ``greenwave/v1/<dev>/events`` and, after the broker's
PUBACK, moves the **forwarded cursor** past them. Broker outages, agent
restarts and a SIGKILL at any moment leave no unexplained gap: central sees
every number, at least once, as an event or inside a ``dropped`` range.

On disk, one directory (``<state dir>/events/``)::

    outbox.lock                        flock: one process at a time
    cursor.json (+ .bak, .lock)        {"forwarded": n}, a DurableFile (kind events-cursor)
    events-00000000000000000001.log    segment: the records from seq 1 on
    events-00000000000000010001.log    the next segment (the newest: the one appended to)

A segment is named for the first sequence number it was created for and holds
up to ``segment_events`` records (default: a tenth of the capacity), one line
each::

    +----------+---+--------------------------------------------+----+
    | 8 hex    | SP| {"seq":n,...event...}  compact, ASCII JSON  | LF |
    | CRC-32   |   | at most MAX_EVENT_BYTES                     |    |
    +----------+---+--------------------------------------------+----+
      CRC-32 (zlib) of the JSON bytes; ``cut -c10- events-*.log | jq`` reads it.

A line is an intact record only when it ends in LF, its CRC matches and its
JSON starts ``{"seq":<n>``. The reader resynchronises on LF, which never
occurs inside a record (JSON escapes it). Reading a segment:

* a line whose CRC does not match (noise, a flipped bit, zeros after a power
  cut) is skipped with a warning and counted (``corrupt_records``); the
  numbers it held appear in the next batch as a ``dropped`` range with reason
  ``"corrupt"``;
* a line longer than the cap is skipped the same way, read in bounded pieces
  up to its LF (memory never grows with garbage);
* bytes after the last intact record of the **newest** segment are a torn
  tail (a crash mid-write): :meth:`EventOutbox.open` truncates them, logged,
  and never takes them as data. A record is in the file once ``os.write`` has
  returned, so a SIGKILL loses nothing :meth:`EventOutbox.append` returned.

Guarantees:

* **Numbers.** The first event is seq 1; each next one is +1; numbers are
  never reused, also after everything was forwarded and deleted (the newest
  segment is always kept, and the cursor never exceeds the last number).
* **Durability.** Appends go to the OS at once; ``fsync`` runs at most every
  ``fsync_interval_s`` (:meth:`EventOutbox.keep_synced`, in a worker thread,
  only when something changed), so a power cut loses at most that interval.
  Only events already on the medium are forwarded: a number central has seen
  can never be lost and handed out again after a power cut.
* **At least once.** The cursor is written (atomically, :mod:`durable`) with
  each sync, not per PUBACK: after a restart the events after the stored
  cursor are sent again. Central deduplicates by ``seq``.
* **Bounded.** At most ``capacity`` unforwarded events are kept: beyond it the
  oldest segment is deleted, whole, and the numbers lost are reported in the
  next batch as a ``dropped`` range with reason ``"capacity"``. Forwarded
  segments are deleted once the cursor is on the medium. Disk use stays below
  about ``(capacity + 2 * segment_events) * record size``.

A batch (the ``events`` payload, compact JSON)::

    {"device": "cabinet-17", "first_seq": 101, "last_seq": 230,
     "dropped": [{"from_seq": 101, "to_seq": 200, "reason": "capacity"}],
     "events": [{"seq": 201, "ts": 1795657262.3, "code": 1, "param": 2, ...}, ...]}

Every number from ``first_seq`` to ``last_seq`` is in exactly one of
``events`` and ``dropped``. ``first_seq`` is one past the forwarded cursor,
so for central with high-water mark ``H``, a batch always has
``first_seq <= H + 1`` (equal in steady state, less after a resend): a batch
with ``first_seq > H + 1`` would be a gap, and cannot happen.

The agent is one asyncio thread. ``append``, ``next_batch`` and
``mark_forwarded`` are synchronous and cheap (one ``write`` syscall; one
segment read per batch). Only ``fsync`` is slow on an SD card, so
:meth:`EventOutbox.keep_synced` runs it with :func:`asyncio.to_thread`;
:meth:`EventOutbox.sync` does it inline, for start and stop. The supervisor
runs two tasks: ``keep_synced()`` and ``forward(publish, ...)`` (one forwarder
per outbox: it alone moves the cursor).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import random
import re
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, NoReturn

from agent.central.durable import DurableFile, StateFileError, fsync_path, lock_directory
from agent.errors import GreenwaveError
from agent.logs import get_logger

CURSOR_FILE = "cursor.json"
CURSOR_KIND = "events-cursor"
LOCK_FILE = "outbox.lock"
#: The JSON of one event (with its ``seq``) may not be larger than this.
MAX_EVENT_BYTES = 16 * 1024
#: A segment holds ``capacity // SEGMENTS_PER_CAPACITY`` records (at least 1).
SEGMENTS_PER_CAPACITY = 10

_SEGMENT_NAME = re.compile(r"events-(\d{20})\.log")
_RECORD = re.compile(rb'([0-9a-f]{8}) (\{"seq":([1-9][0-9]{0,18})[,}].*)', re.DOTALL)
_MAX_LINE = MAX_EVENT_BYTES + 10  # CRC, space, JSON, LF

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Publish = Callable[[bytes], Awaitable[object]]
GapReason = Literal["capacity", "corrupt"]

log = get_logger("central.outbox")


class OutboxError(StateFileError):
    """The events outbox cannot be opened, written or synced."""


# -- records -------------------------------------------------------------------------


def encode_record(seq: int, event: Mapping[str, Any]) -> bytes:
    """One stored line for ``event`` numbered ``seq``; ValueError if it cannot be stored."""
    if "seq" in event:
        raise ValueError("an event may not carry its own 'seq' (the outbox numbers events)")
    if not all(isinstance(key, str) for key in event):
        raise ValueError("event keys must be strings")
    try:
        text = json.dumps(
            {"seq": seq, **event}, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"event is not JSON: {err}") from err
    body = text.encode("ascii")
    if len(body) > MAX_EVENT_BYTES:
        raise ValueError(f"event is {len(body)} bytes as JSON, more than {MAX_EVENT_BYTES}")
    return b"%08x %b\n" % (zlib.crc32(body), body)


def decode_record(line: bytes) -> tuple[int, bytes] | None:
    """``(seq, JSON)`` of one stored line without its LF, or None if it is not intact."""
    match = _RECORD.fullmatch(line)
    if match is None or int(match[1], 16) != zlib.crc32(match[2]):
        return None
    return int(match[3]), match[2]


@dataclass(frozen=True, slots=True)
class _Line:
    offset: int  # where the line starts in its segment
    end: int  # just past its LF
    seq: int | None  # None: not an intact record
    body: bytes


def _read_lines(handle: BinaryIO, offset: int) -> Iterator[_Line]:
    """The lines of a segment from ``offset``; a last line without LF ends the file."""
    handle.seek(offset)
    pos = offset
    while line := handle.readline(_MAX_LINE + 1):
        start = pos
        pos += len(line)
        if line.endswith(b"\n"):
            decoded = decode_record(line[:-1])
            if decoded is None:
                yield _Line(start, pos, None, b"")
            else:
                yield _Line(start, pos, decoded[0], decoded[1])
        elif len(line) > _MAX_LINE:  # overlong: hunt for the next LF in bounded pieces
            while (more := handle.readline(_MAX_LINE + 1)) and not more.endswith(b"\n"):
                pos += len(more)
            pos += len(more)
            yield _Line(start, pos, None, b"")
        else:  # no LF before the end of the file: a torn tail
            yield _Line(start, pos, None, b"")
            return


# -- batches -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Gap:
    """Numbers that will never be delivered, and why."""

    from_seq: int
    to_seq: int
    reason: GapReason

    def as_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"from_seq": self.from_seq, "to_seq": self.to_seq, "reason": self.reason}


@dataclass(frozen=True, kw_only=True, slots=True)
class Batch:
    """Consecutive numbers ``first_seq..last_seq``: each an event or inside a gap."""

    first_seq: int
    last_seq: int
    #: The stored JSON of each event, ``{"seq": n, ...}``, in order.
    records: tuple[bytes, ...]
    dropped: tuple[Gap, ...] = ()

    def payload(self, device: str | None = None) -> bytes:
        """The ``events`` message: compact JSON bytes (see the module docstring)."""
        head: dict[str, Any] = {} if device is None else {"device": device}
        head |= {
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "dropped": [gap.as_json() for gap in self.dropped],
        }
        text = json.dumps(head, separators=(",", ":"), ensure_ascii=True)
        return text[:-1].encode("ascii") + b',"events":[' + b",".join(self.records) + b"]}"

    def events(self) -> list[dict[str, Any]]:
        """The events, parsed (each with its ``seq``)."""
        parsed: list[dict[str, Any]] = [json.loads(record) for record in self.records]
        return parsed


class _BatchBuilder:
    """Collects records and gaps from ``start`` on, never past ``limit``."""

    def __init__(self, start: int, limit: int, max_events: int, dropped_through: int) -> None:
        self.start = start
        self.expected = start
        self.limit = limit
        self.max_events = max_events
        self.dropped_through = dropped_through
        self.records: list[bytes] = []
        self.gaps: list[Gap] = []

    @property
    def full(self) -> bool:
        return (
            self.expected > self.limit
            or len(self.records) >= self.max_events
            or len(self.gaps) >= self.max_events
        )

    def add_record(self, seq: int, body: bytes) -> None:
        if seq > self.expected:
            self.add_gap(seq - 1)
        self.records.append(body)
        self.expected = seq + 1

    def add_gap(self, to_seq: int) -> None:
        """The numbers from ``expected`` to ``to_seq`` are missing."""
        to_seq = min(to_seq, self.limit)
        if to_seq < self.expected:
            return
        if self.expected <= self.dropped_through:
            self._gap(min(to_seq, self.dropped_through), "capacity")
        if self.expected <= to_seq:
            self._gap(to_seq, "corrupt")

    def _gap(self, to_seq: int, reason: GapReason) -> None:
        last = self.gaps[-1] if self.gaps else None
        if last is not None and last.reason == reason and last.to_seq + 1 == self.expected:
            self.gaps[-1] = Gap(from_seq=last.from_seq, to_seq=to_seq, reason=reason)
        else:
            self.gaps.append(Gap(from_seq=self.expected, to_seq=to_seq, reason=reason))
        self.expected = to_seq + 1

    def build(self) -> Batch:
        return Batch(
            first_seq=self.start,
            last_seq=self.expected - 1,
            records=tuple(self.records),
            dropped=tuple(self.gaps),
        )


# -- the outbox ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxStats:
    """What the outbox holds and what it lost (counters since this process opened it)."""

    last_seq: int
    forwarded_seq: int
    synced_seq: int
    #: Numbers after the forwarded cursor (events, and gaps not yet reported).
    pending: int
    #: Now minus the ``ts`` of the oldest unforwarded event (None: none, or no ``ts``).
    oldest_pending_age_s: float | None
    dropped_total: int
    corrupt_records: int
    segments: int
    disk_bytes: int


@dataclass(slots=True)
class _Segment:
    first_seq: int
    path: Path


@dataclass(frozen=True, slots=True)
class _SyncJob:
    paths: frozenset[Path]
    directory: bool
    through_seq: int
    cursor: int | None  # to write, or None when the stored one is current

    @property
    def empty(self) -> bool:
        return not self.paths and not self.directory and self.cursor is None


class EventOutbox:
    """The bounded, durable, numbered event log (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        lock_fd: int,
        *,
        capacity: int,
        segment_events: int,
        fsync_interval_s: float,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        """Prefer :meth:`open`; this makes an empty outbox over a locked ``directory``."""
        self.directory = directory
        self.capacity = capacity
        self.segment_events = segment_events
        self.fsync_interval_s = fsync_interval_s
        self._lock_fd: int | None = lock_fd
        self._clock = clock
        self._sleep = sleep
        self._cursor_file = DurableFile(directory / CURSOR_FILE, kind=CURSOR_KIND)
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # the newest segment, open for appending
        self._fd_size = 0
        self._last_seq = 0
        self._cursor = 0
        self._cursor_stored = 0  # -1: the stored cursor is missing or unreadable
        self._synced_seq = 0
        #: The highest number deleted unforwarded for capacity (a "capacity" gap).
        self._dropped_through = 0
        #: Where the previous batch stopped: (segment first_seq, offset, next seq).
        self._hint: tuple[int, int, int] | None = None
        self._unsynced: set[Path] = set()
        self._directory_unsynced = False
        self._changed = asyncio.Event()  # something to sync
        self._pending = asyncio.Event()  # something synced to forward
        self._sync_lock = threading.Lock()
        self._corrupt_seen: set[tuple[int, int]] = set()
        self.dropped_total = 0
        self.corrupt_records = 0

    # -- opening and closing -----------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        capacity: int,
        fsync_interval_s: float = 1.0,
        segment_events: int | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> EventOutbox:
        """Open (or create) the outbox in ``directory``, repair a torn tail, sync it all.

        Raises :class:`OutboxError` when the directory cannot be used or another
        process holds it. A corrupt record or cursor never makes it fail.
        """
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        per_segment = (
            max(1, capacity // SEGMENTS_PER_CAPACITY) if segment_events is None else segment_events
        )
        if not 1 <= per_segment <= capacity:
            raise ValueError("segment_events must be between 1 and capacity")
        lock_fd = lock_directory(
            directory, lock_name=LOCK_FILE, what="the events outbox", error=OutboxError
        )
        outbox = cls(
            directory,
            lock_fd,
            capacity=capacity,
            segment_events=per_segment,
            fsync_interval_s=fsync_interval_s,
            clock=clock,
            sleep=sleep,
        )
        try:
            outbox._recover()
            outbox.sync()
        except BaseException:
            outbox.close(sync=False)
            raise
        return outbox

    def close(self, *, sync: bool = True) -> None:
        """Sync (unless ``sync=False``: what a crash leaves) and release the directory."""
        if self._lock_fd is None:
            return
        try:
            if sync:
                self.sync()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> EventOutbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _recover(self) -> None:
        cursor = self._load_cursor()
        self._segments = _list_segments(self.directory)
        self._last_seq = max(cursor or 0, self._repair_tail())
        if cursor is None:  # resend everything stored; central deduplicates
            cursor = self._segments[0].first_seq - 1 if self._segments else self._last_seq
            self._cursor_stored = -1
        else:
            self._cursor_stored = cursor
        self._cursor = self._synced_seq = cursor
        if self._segments and self._segments[0].first_seq - 1 > cursor:
            self._dropped_through = self._segments[0].first_seq - 1
            log.warning(
                "events_dropped_before_restart",
                from_seq=cursor + 1,
                to_seq=self._dropped_through,
            )
        self._prune_forwarded()
        if self._segments:
            self._open_newest()
        log.info(
            "events_outbox_opened",
            path=str(self.directory),
            last_seq=self._last_seq,
            forwarded_seq=self._cursor,
            segments=len(self._segments),
        )

    def _load_cursor(self) -> int | None:
        try:
            loaded = self._cursor_file.load(_parse_cursor)
        except StateFileError as err:
            log.error("events_cursor_lost", problem=str(err), effect="stored events resent")
            return None
        return loaded.value

    def _repair_tail(self) -> int:
        """Truncate a torn tail off the newest segment; its last number (0 if none)."""
        if not self._segments:
            return 0
        newest = self._segments[-1]
        last_seq, good_end = newest.first_seq - 1, 0
        suspects: list[_Line] = []
        try:
            with newest.path.open("rb") as handle:
                for line in _read_lines(handle, 0):
                    if line.seq is None or line.seq <= last_seq:
                        suspects.append(line)
                        continue
                    for suspect in suspects:  # followed by a good record: not the tail
                        self._note_corrupt(newest, suspect)
                    suspects.clear()
                    last_seq, good_end = line.seq, line.end
                size = handle.seek(0, os.SEEK_END)
            if size > good_end:
                os.truncate(newest.path, good_end)
                log.warning(
                    "events_torn_tail_truncated",
                    path=str(newest.path),
                    bytes=size - good_end,
                    last_seq=last_seq,
                )
        except OSError as err:
            raise OutboxError(f"{newest.path}: cannot repair: {err.strerror or err}") from err
        return last_seq

    def _open_newest(self) -> None:
        path = self._segments[-1].path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            self._fd_size = os.fstat(self._fd).st_size
        except OSError as err:
            raise OutboxError(f"{path}: cannot open: {err.strerror or err}") from err
        self._unsynced.add(path)
        self._directory_unsynced = True

    # -- appending -----------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The number of the newest event (0: none yet)."""
        return self._last_seq

    @property
    def forwarded_seq(self) -> int:
        """Central has acknowledged every number up to this one."""
        return self._cursor

    @property
    def synced_seq(self) -> int:
        """Every number up to this one is on the medium (and may be forwarded)."""
        return self._synced_seq

    def append(self, event: Mapping[str, Any]) -> int:
        """Number ``event``, store it (in the OS at once) and return its number.

        ValueError: ``event`` cannot be stored (not JSON, has ``seq``, too
        large); nothing was stored. :class:`OutboxError`: the disk refused.
        """
        return self.append_many((event,)).start

    def append_many(self, events: Iterable[Mapping[str, Any]]) -> range:
        """Store a burst of events with consecutive numbers; their numbers.

        Every event is checked before any is written (ValueError: none
        stored). On :class:`OutboxError`, the events up to :attr:`last_seq`
        were stored and the rest not.
        """
        self._check_open()
        first = self._last_seq + 1
        lines = [encode_record(first + i, event) for i, event in enumerate(events)]
        done = 0
        while done < len(lines):
            seq = first + done
            segment = self._segment_for(seq)
            room = segment.first_seq + self.segment_events - seq
            part = lines[done : done + room]
            self._write(segment, b"".join(part))
            done += len(part)
            self._last_seq = first + done - 1
        if lines:
            self._enforce_capacity()
            self._changed.set()
        return range(first, first + len(lines))

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise OutboxError(f"{self.directory}: the events outbox is closed")

    def _segment_for(self, seq: int) -> _Segment:
        """The newest segment, or a new one starting at ``seq`` when it is full."""
        if self._segments and self._fd is not None:
            newest = self._segments[-1]
            if seq - newest.first_seq < self.segment_events:
                return newest
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._segments.append(_Segment(seq, self.directory / f"events-{seq:020d}.log"))
        try:
            self._open_newest()
        except OutboxError:
            self._segments.pop()
            raise
        return self._segments[-1]

    def _write(self, segment: _Segment, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError as err:
            with contextlib.suppress(OSError):  # no half record for the next one to follow
                os.ftruncate(self._fd, self._fd_size)
            raise OutboxError(
                f"{segment.path}: cannot append events: {err.strerror or err}"
            ) from err
        self._fd_size += len(data)
        self._unsynced.add(segment.path)

    def _enforce_capacity(self) -> None:
        while len(self._segments) > 1 and self._last_seq - self._floor() > self.capacity:
            self._drop_oldest()

    def _floor(self) -> int:
        """Numbers up to this one are no longer pending in the stored segments."""
        return max(self._cursor, self._segments[0].first_seq - 1)

    def _drop_oldest(self) -> None:
        lost_from = self._floor() + 1
        oldest = self._segments.pop(0)
        lost_to = self._segments[0].first_seq - 1
        if lost_from <= lost_to:
            self.dropped_total += lost_to - lost_from + 1
            self._dropped_through = lost_to
            log.warning(
                "events_dropped",
                from_seq=lost_from,
                to_seq=lost_to,
                reason="capacity",
                capacity=self.capacity,
            )
        self._delete(oldest)

    def _delete(self, segment: _Segment) -> None:
        self._unsynced.discard(segment.path)
        if self._hint is not None and self._hint[0] == segment.first_seq:
            self._hint = None
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            log.error("events_segment_not_deleted", path=str(segment.path), error=str(err))

    # -- forwarding ------------------------------------------------------------------

    def next_batch(self, max_events: int) -> Batch | None:
        """The oldest unforwarded numbers (at most ``max_events`` events), or None.

        Only synced numbers are offered. Calling it again before
        :meth:`mark_forwarded` offers the same numbers again.
        """
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        start = self._cursor + 1
        if start > self._synced_seq:
            return None
        builder = _BatchBuilder(start, self._synced_seq, max_events, self._dropped_through)
        last_read: tuple[_Segment, _Line] | None = None
        with contextlib.closing(self._scan_from(start)) as lines:
            for segment, line in lines:
                if builder.full:
                    break
                if line.seq is None:
                    self._note_corrupt(segment, line)
                elif line.seq >= builder.expected:
                    if line.seq > builder.limit:
                        break
                    builder.add_record(line.seq, line.body)
                    last_read = (segment, line)
                elif line.seq >= start:  # a number again, or going backwards
                    self._note_corrupt(segment, line)
        if not builder.full:  # the files hold nothing more up to the limit
            builder.add_gap(builder.limit)
        batch = builder.build()
        self._hint = None
        if last_read is not None and last_read[1].seq == batch.last_seq:
            self._hint = (last_read[0].first_seq, last_read[1].end, batch.last_seq + 1)
        return batch

    def _scan_from(self, start: int) -> Generator[tuple[_Segment, _Line], None, None]:
        """Every line from the segment that holds ``start`` on (from the hint if it fits)."""
        firsts = [segment.first_seq for segment in self._segments]
        index = max(0, bisect.bisect_right(firsts, start) - 1)
        for segment in self._segments[index:]:
            offset = 0
            if self._hint is not None and self._hint[0] == segment.first_seq:
                offset = self._hint[1] if self._hint[2] == start else 0
            try:
                with segment.path.open("rb") as handle:
                    for line in _read_lines(handle, offset):
                        yield segment, line
            except FileNotFoundError:
                log.error("events_segment_missing", path=str(segment.path))

    def _note_corrupt(self, segment: _Segment, line: _Line) -> None:
        key = (segment.first_seq, line.offset)
        if key in self._corrupt_seen:
            return
        self._corrupt_seen.add(key)
        self.corrupt_records += 1
        log.warning(
            "events_corrupt_record_skipped",
            path=str(segment.path),
            offset=line.offset,
            length=line.end - line.offset,
        )

    def mark_forwarded(self, last_seq: int) -> None:
        """Central has every number up to ``last_seq`` (the broker's PUBACK for a batch)."""
        if last_seq > self._synced_seq:
            raise ValueError(f"seq {last_seq} was never offered (synced up to {self._synced_seq})")
        if last_seq <= self._cursor:
            return
        self._cursor = last_seq
        self._changed.set()

    async def wait_pending(self) -> None:
        """Return when there is something to forward (a synced number past the cursor)."""
        while self._synced_seq <= self._cursor:
            self._pending.clear()
            await self._pending.wait()

    async def forward(
        self,
        publish: Publish,
        *,
        batch_size: int,
        device: str | None = None,
        retry_on: tuple[type[Exception], ...] = (GreenwaveError, OSError),
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> NoReturn:
        """Forward batches in order, forever: publish, then mark forwarded.

        ``publish(payload)`` must return only once the broker has the message
        (QoS 1 PUBACK) and raise one of ``retry_on`` when it could not: the
        same numbers are then offered again after a capped, jittered
        exponential backoff (reset by a success). Nothing is skipped.
        """
        jitter = rng or random.Random()  # noqa: S311 - jitter, not security
        attempt = 0
        while True:
            await self.wait_pending()
            batch = self.next_batch(batch_size)
            assert batch is not None  # wait_pending: a synced number past the cursor
            try:
                await publish(batch.payload(device))
            except retry_on as err:
                ceiling = min(backoff_max_s, backoff_initial_s * 2**attempt)
                delay = jitter.uniform(ceiling / 2, ceiling)
                attempt += 1
                log.warning(
                    "events_publish_failed",
                    first_seq=batch.first_seq,
                    last_seq=batch.last_seq,
                    error=str(err) or type(err).__name__,
                    retry_in_s=round(delay, 3),
                )
                await self._sleep(delay)
                continue
            attempt = 0
            self.mark_forwarded(batch.last_seq)

    # -- syncing ---------------------------------------------------------------------

    async def keep_synced(self) -> NoReturn:
        """Sync what changed, at most every ``fsync_interval_s``; forever.

        The first change after a quiet spell is synced at once (an event
        reaches central without waiting out the interval); an idle outbox
        never touches the disk. A failed sync is logged and retried.
        """
        while True:
            await self._changed.wait()
            self._changed.clear()
            job = self._take_sync_job()
            if job.empty:
                continue
            done = False
            try:
                await asyncio.to_thread(self._run_sync_job, job)
                done = True
            except OutboxError as err:
                log.error("events_sync_failed", error=str(err))
                self._changed.set()
            finally:
                if done:
                    self._finish_sync(job)
                else:
                    self._requeue(job)
            await self._sleep(self.fsync_interval_s)

    def sync(self) -> None:
        """Sync every segment, the directory and the cursor now (blocks; for start and stop)."""
        self._check_open()
        job = _SyncJob(
            paths=frozenset(segment.path for segment in self._segments),
            directory=True,
            through_seq=self._last_seq,
            cursor=self._cursor if self._cursor != self._cursor_stored else None,
        )
        self._unsynced.clear()
        self._directory_unsynced = False
        try:
            self._run_sync_job(job)
        except BaseException:
            self._requeue(job)
            raise
        self._finish_sync(job)

    def _take_sync_job(self) -> _SyncJob:
        job = _SyncJob(
            paths=frozenset(self._unsynced),
            directory=self._directory_unsynced,
            through_seq=self._last_seq,
            cursor=self._cursor if self._cursor != self._cursor_stored else None,
        )
        self._unsynced.clear()
        self._directory_unsynced = False
        return job

    def _run_sync_job(self, job: _SyncJob) -> None:
        """The slow part (runs in a worker thread): fsync, then store the cursor."""
        with self._sync_lock:
            try:
                for path in sorted(job.paths):
                    fsync_path(path)
                if job.directory:
                    fsync_path(self.directory)
            except OSError as err:
                raise OutboxError(f"{self.directory}: cannot sync: {err.strerror or err}") from err
            if job.cursor is not None:
                try:
                    self._cursor_file.write({"forwarded": job.cursor})
                except StateFileError as err:
                    raise OutboxError(str(err)) from err

    def _requeue(self, job: _SyncJob) -> None:
        self._unsynced |= {p for p in job.paths if any(s.path == p for s in self._segments)}
        self._directory_unsynced |= job.directory

    def _finish_sync(self, job: _SyncJob) -> None:
        self._synced_seq = max(self._synced_seq, job.through_seq)
        if job.cursor is not None:
            self._cursor_stored = max(self._cursor_stored, job.cursor)
            self._prune_forwarded()
        if self._synced_seq > self._cursor:
            self._pending.set()

    def _prune_forwarded(self) -> None:
        """Delete segments forwarded up to the stored cursor (never the newest)."""
        while len(self._segments) > 1 and self._segments[1].first_seq - 1 <= self._cursor_stored:
            self._delete(self._segments.pop(0))

    # -- looking in ----------------------------------------------------------------------

    def stats(self) -> OutboxStats:
        """Counters and levels for ``state`` and diagnostics."""
        disk = 0
        for segment in self._segments:
            with contextlib.suppress(OSError):
                disk += segment.path.stat().st_size
        return OutboxStats(
            last_seq=self._last_seq,
            forwarded_seq=self._cursor,
            synced_seq=self._synced_seq,
            pending=self._last_seq - self._cursor,
            oldest_pending_age_s=self._oldest_pending_age(),
            dropped_total=self.dropped_total,
            corrupt_records=self.corrupt_records,
            segments=len(self._segments),
            disk_bytes=disk,
        )

    def _oldest_pending_age(self) -> float | None:
        start = self._cursor + 1
        if start > self._last_seq:
            return None
        with contextlib.closing(self._scan_from(start)) as lines:
            for _segment, line in lines:
                if line.seq is not None and line.seq >= start:
                    ts = json.loads(line.body).get("ts")
                    if isinstance(ts, int | float) and not isinstance(ts, bool):
                        return max(0.0, self._clock() - ts)
                    return None
        return None


def _parse_cursor(body: Any) -> int:
    if not isinstance(body, dict) or set(body) != {"forwarded"}:
        raise ValueError("not an events cursor")
    forwarded = body["forwarded"]
    if not isinstance(forwarded, int) or isinstance(forwarded, bool) or forwarded < 0:
        raise ValueError("forwarded is not a sequence number")
    return forwarded


def _list_segments(directory: Path) -> list[_Segment]:
    try:
        names = os.listdir(directory)
    except OSError as err:
        raise OutboxError(f"{directory}: cannot list: {err.strerror or err}") from err
    found = []
    for name in names:
        match = _SEGMENT_NAME.fullmatch(name)
        if match is not None and int(match[1]) >= 1:
            found.append(_Segment(int(match[1]), directory / name))
    return sorted(found, key=lambda segment: segment.first_seq)
