"""Replay memory (every command id seen, until it could no longer pass) and version records.

**Replay memory.** A signed command stays valid until its ``exp``; anyone who
captured it on the broker could send it again. The device therefore remembers
each ``jti`` it accepted until ``exp + skew`` (after that the time checks
refuse the token anyway) and rejects a repeat with ``E_REPLAY``, across
restarts and power cuts:

* ``remember()`` returns only once the id is on the medium (see
  :mod:`agent.central.durable`), and the verifier calls it *before* the
  command is acted upon, so no power cut can make a command run twice.
  Heartbeats are the exception (``sync=False``): they arrive every few
  seconds, a replayed heartbeat can at most prolong a central lease that a
  restart has ended anyway (the agent starts in ``local`` and needs a real
  command to return to ``central``), and an fsync per heartbeat would wear
  out an SD card. Their ids are held in memory and written with the next
  durable write.
* It is **bounded**: expired ids are pruned on every use, and at most
  ``replay_capacity`` unexpired ids are held. When that is reached, new
  commands are refused with ``E_RATE`` until ids expire — forgetting an
  unexpired id instead would reopen exactly the replay it guards against.
  Normal traffic (a heartbeat every few seconds, a 300 s window) holds a few
  hundred.
* **Losing it is not silent.** When the main file is unreadable the backup
  (one write older) is used; when neither is readable the memory starts
  empty. Either way the newest ids may be missing, so the memory is put in
  *quarantine*: every command is refused with ``E_REPLAY`` until
  ``max_lifetime + 2·skew`` has passed, after which every token that could
  have been seen before the loss has expired. Refusing to start instead would
  stop the agent — and with it the local fallback that keeps the signals
  coordinated. The quarantine end is itself stored, so a restart does not
  shorten it. (It is measured on the device clock; a clock that is wrong at
  start is the supervisor's ``E_CLOCK`` business.)

On disk: ``<state dir>/replay.json``, envelope kind ``replay-memory``, body
``{"seen": {"<jti>": <until, epoch s>, …}, "quarantine_until": <epoch s> | null}``.

**Version records** (:class:`VersionRecord`): the stored plan version, which
a ``plan.load`` must exceed (no rollback). ``<state dir>/plan-version.json``,
kind ``plan-version``, body ``{"version": n}``; no good copy →
:class:`~agent.central.durable.StateFileError` (a version must never silently
fall back to 0). The command-key version lives in the trust store, written
in the same write as the keys it versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import Field

from agent.central.commands import (
    Code,
    CommandRejected,
    CommandSettings,
    Jti,
    NumericDate,
    StrictModel,
)
from agent.central.durable import DurableFile, Loaded, StateFileError, model_parser
from agent.logs import get_logger

REPLAY_FILE = "replay.json"
REPLAY_KIND = "replay-memory"
PLAN_VERSION_FILE = "plan-version.json"
PLAN_VERSION_KIND = "plan-version"

Clock = Callable[[], float]

_log = get_logger("central.replay")


class _ReplayFile(StrictModel):
    seen: dict[Jti, NumericDate] = Field(default_factory=dict, max_length=1_000_000)
    quarantine_until: NumericDate | None = None


class ReplayMemory:
    """Command ids seen and not yet expired, persistent and bounded."""

    def __init__(self, file: DurableFile, *, settings: CommandSettings, clock: Clock) -> None:
        """Prefer :meth:`open`; this makes an empty memory over ``file``."""
        self._file = file
        self._settings = settings
        self._clock = clock
        self._seen: dict[str, float] = {}
        #: The earliest ``until`` held (pruning is skipped before it: O(1) per command).
        self._earliest = math.inf
        self._quarantine_until: float | None = None
        self._dirty = False

    @classmethod
    def open(cls, path: Path, *, settings: CommandSettings, clock: Clock) -> ReplayMemory:
        """Load the memory at ``path``; a lost memory starts quarantined (never raises for it)."""
        memory = cls(DurableFile(path, kind=REPLAY_KIND), settings=settings, clock=clock)
        try:
            loaded: Loaded[_ReplayFile] = memory._file.load(model_parser(_ReplayFile))
        except StateFileError as err:
            memory._quarantine(f"replay memory lost: {err}")
            return memory
        if loaded.value is not None:
            memory._seen = dict(loaded.value.seen)
            memory._earliest = min(memory._seen.values(), default=math.inf)
            memory._quarantine_until = loaded.value.quarantine_until
        if loaded.source == "backup":
            memory._quarantine(f"replay memory read from its backup ({loaded.problem})")
        memory._prune(clock())
        return memory

    @property
    def path(self) -> Path:
        """The main file."""
        return self._file.path

    @property
    def quarantine_until(self) -> float | None:
        """While the clock is before this, every command is refused (memory was lost)."""
        return self._quarantine_until

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, jti: object) -> bool:
        return isinstance(jti, str) and self._seen.get(jti, 0.0) > self._clock()

    def check(self, jti: str) -> None:
        """Raise E_REPLAY (seen, or memory in quarantine) or E_RATE (full); else return."""
        now = self._clock()
        self._prune(now)
        if self._quarantine_until is not None:
            if now < self._quarantine_until:
                raise CommandRejected(
                    Code.E_REPLAY,
                    "the replay memory was lost (corrupt state file); commands are refused "
                    f"for {self._quarantine_until - now:.0f} s more, until every command "
                    "that might have been seen has expired",
                )
            self._quarantine_until = None
            self._dirty = True
        if jti in self._seen:
            raise CommandRejected(Code.E_REPLAY, f"command id {jti!r} was already received")
        if len(self._seen) >= self._settings.replay_capacity:
            raise CommandRejected(
                Code.E_RATE,
                f"{len(self._seen)} unexpired commands in the replay memory (the limit); "
                "new commands are refused until some expire",
            )

    def remember(self, jti: str, exp: float, *, sync: bool = True) -> None:
        """Record ``jti`` until ``exp + skew``; durably before returning when ``sync``.

        Raises like :meth:`check` when it may not be recorded, and
        :class:`StateFileError` when the write fails (the id is then still
        remembered in memory, so this process will not accept it again).
        """
        self.check(jti)
        until = exp + self._settings.skew_s
        self._seen[jti] = until
        self._earliest = min(self._earliest, until)
        self._dirty = True
        if sync:
            self.flush()

    def flush(self) -> None:
        """Write pending changes (ids remembered with ``sync=False``, pruning) durably."""
        if not self._dirty:
            return
        self._file.write({"seen": self._seen, "quarantine_until": self._quarantine_until})
        self._dirty = False

    def _prune(self, now: float) -> None:
        if now < self._earliest:
            return
        self._seen = {jti: until for jti, until in self._seen.items() if until > now}
        self._earliest = min(self._seen.values(), default=math.inf)
        self._dirty = True

    def _quarantine(self, reason: str) -> None:
        until = self._clock() + self._settings.replay_window_s
        self._quarantine_until = max(until, self._quarantine_until or 0.0)
        self._dirty = True
        _log.error("replay_memory_quarantined", reason=reason, until=self._quarantine_until)
        try:
            self.flush()
        except StateFileError as err:
            _log.error("replay_memory_unwritable", error=str(err))


class _VersionFile(StrictModel):
    version: Annotated[int, Field(ge=0, le=2**31 - 1)]


class VersionRecord:
    """A strictly increasing version number on disk (the stored plan's, for no rollback)."""

    def __init__(self, file: DurableFile, *, what: str) -> None:
        """Prefer :meth:`open`."""
        self._file = file
        self._what = what
        self._version = 0
        #: Why the last load used the backup copy (None when it did not).
        self.loaded_from_backup: str | None = None

    @classmethod
    def open(cls, path: Path, *, what: str = "plan") -> VersionRecord:
        """Load the record (missing: version 0). Raises :class:`StateFileError` if unreadable."""
        record = cls(DurableFile(path, kind=PLAN_VERSION_KIND), what=what)
        loaded: Loaded[_VersionFile] = record._file.load(model_parser(_VersionFile))
        if loaded.value is not None:
            record._version = loaded.value.version
        if loaded.source == "backup":
            record.loaded_from_backup = loaded.problem
        return record

    @property
    def version(self) -> int:
        """The stored version (0: none yet)."""
        return self._version

    def check_newer(self, version: int) -> None:
        """E_STALE_VERSION unless ``version`` is above the stored one."""
        if version <= self._version:
            raise CommandRejected(
                Code.E_STALE_VERSION,
                f"{self._what} version {version} is not newer than the stored version "
                f"{self._version} (no rollback)",
            )

    def record(self, version: int) -> None:
        """Check and store ``version`` durably (call once the plan itself is stored)."""
        with self._file.locked():
            self.check_newer(version)
            self._file.write({"version": version})
            self._version = version
