"""Small state files that survive a crash or a power cut at any moment.

The command-security state (trust store, replay memory, plan version) is a
handful of small JSON documents, each rewritten whole. A field device loses
power without warning and its SD card may lie about ``fsync``, so every write
follows one recipe and every read trusts nothing::

    write(body)                               files after each step
    ─────────────────────────────────────     ──────────────────────────────────
    1. NAME.tmp ← envelope(body); fsync        NAME = old      NAME.tmp = new?
    2. NAME.bak ← hard link of NAME            NAME = old      NAME.bak = old
       (only when NAME was read or written
       good by this process; via NAME.bak.tmp
       and rename, so NAME.bak is never torn)
    3. rename NAME.tmp → NAME                  NAME = new      NAME.bak = old
    4. fsync the directory                     the renames are on the medium

A crash before step 3 leaves ``NAME`` as it was: the write did not happen, and
the caller never treated it as done (``write`` had not returned). A crash
after step 3 leaves the new file. ``NAME`` exists at every moment once it was
first written, so a reader never sees "no state" where state existed.

Every file is an *envelope*, readable with ``jq``::

    {"greenwave_state": 1, "kind": "trust-store", "sha256": "<hex>", "body": {…}}

``sha256`` is taken over the canonical JSON of ``body`` (sorted keys, no
spaces), so a truncated file, a block of zeros, or a flipped bit inside a
string is detected, not silently believed. ``kind`` stops one state file from
being mistaken for another.

Reading (:meth:`DurableFile.load`): ``NAME`` if its envelope, checksum and
body (the caller's ``parse``) are good; otherwise ``NAME.bak``, and the result
says so (``source="backup"`` and the reason), because the backup is one write
older and each caller must decide what that loses (see ``trust.py`` and
``replay.py``). Neither good → :class:`StateFileError`, never an empty value
in disguise. Neither present → ``source="none"``: first start.

Writers in two processes (the agent, and ``greenwave keys add`` on the same
state directory) are serialised with ``flock`` on ``NAME.lock``; readers need
no lock because a rename is atomic.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from agent.errors import GreenwaveError
from agent.logs import get_logger
from agent.plan.document import schema_problems

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

ENVELOPE_FORMAT = 1
#: A state file larger than this is not ours (the replay memory at its cap is ~0.5 MiB).
DEFAULT_MAX_BYTES = 8 * 1024 * 1024

_log = get_logger("central.durable")


class StateFileError(GreenwaveError):
    """A state file cannot be read (no good copy) or cannot be written."""

    code = "E_STATE"


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {show(key)} in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def strict_json_loads(data: bytes | str) -> Any:
    """Parse JSON strictly, for state files and command claims alike.

    Refused with :class:`ValueError` (one line, no position-dependent noise):
    invalid UTF-8, invalid JSON, duplicate keys (two parsers could disagree on
    which value counts, and a signature covers bytes, not meanings), ``NaN``
    and ``Infinity``, integers beyond Python's digit limit, and nesting deep
    enough to exhaust the recursion limit.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 (byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err.msg} at line {err.lineno} column {err.colno}") from err
    except RecursionError as err:
        raise ValueError("JSON nested too deeply") from err


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of a JSON value (sorted keys, no spaces, UTF-8)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def show(value: object, limit: int = 40) -> str:
    """A value from outside for a one-line message: quoted, escaped, truncated."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_parser(model: type[M]) -> Callable[[Any], M]:
    """A ``parse`` for :meth:`DurableFile.load`: the body as ``model``, one-line errors."""

    def parse(body: Any) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as err:
            problems = schema_problems(err, model)
            path, why = problems[0] if problems else ("(body)", "invalid")
            raise ValueError(f"unexpected content: {path}: {why}") from err

    return parse


@dataclass(frozen=True, kw_only=True)
class Loaded(Generic[T]):
    """What :meth:`DurableFile.load` found."""

    #: The parsed body, or None when no copy exists (first start).
    value: T | None
    #: Which copy was used: the main file, the one-write-older backup, or none.
    source: Literal["main", "backup", "none"]
    #: Why the main file was not used (None when it was).
    problem: str | None = None


class DurableFile:
    """One crash-safe JSON state file (see the module docstring for the recipe)."""

    def __init__(
        self,
        path: Path,
        *,
        kind: str,
        mode: int = 0o640,
        indent: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.path = path
        self.kind = kind
        self.tmp_path = path.with_name(path.name + ".tmp")
        self.bak_path = path.with_name(path.name + ".bak")
        self.lock_path = path.with_name(path.name + ".lock")
        self._bak_tmp_path = path.with_name(path.name + ".bak.tmp")
        self._mode = mode
        self._indent = indent
        self._max_bytes = max_bytes
        # True once this process has read NAME as good or written it: only a
        # good main file may become the backup (never rotate a corrupt one in).
        self._main_good = False
        self._lock_fd: int | None = None
        self._lock_depth = 0

    # -- reading -----------------------------------------------------------------

    def load(self, parse: Callable[[Any], T]) -> Loaded[T]:
        """Read the newest good copy; ``parse`` turns the body into ``T`` or raises.

        ``parse`` should raise :class:`ValueError` (pydantic's
        ``ValidationError`` is one) for a body that is not what the caller
        stores; such a copy counts as corrupt, like a bad checksum.
        """
        main_problem: str | None
        try:
            value = self._read_copy(self.path, parse)
        except FileNotFoundError:
            main_problem = "missing"
        except (OSError, ValueError) as err:
            main_problem = _one_line(err)
        else:
            self._main_good = True
            return Loaded(value=value, source="main")
        self._main_good = False
        try:
            value = self._read_copy(self.bak_path, parse)
        except FileNotFoundError:
            if main_problem == "missing":
                return Loaded(value=None, source="none")
            raise StateFileError(
                f"{self.path}: unreadable ({main_problem}) and there is no backup copy"
            ) from None
        except (OSError, ValueError) as err:
            raise StateFileError(
                f"{self.path}: unreadable ({main_problem}), and so is its backup ({_one_line(err)})"
            ) from err
        _log.error(
            "state_file_from_backup",
            path=str(self.path),
            kind=self.kind,
            problem=main_problem,
        )
        return Loaded(value=value, source="backup", problem=main_problem)

    def _read_copy(self, path: Path, parse: Callable[[Any], T]) -> T:
        with path.open("rb") as handle:
            data = handle.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise ValueError(f"larger than {self._max_bytes} bytes")
        if not data.strip():
            raise ValueError("empty file")
        envelope = strict_json_loads(data)
        if not isinstance(envelope, dict) or set(envelope) != {
            "greenwave_state",
            "kind",
            "sha256",
            "body",
        }:
            raise ValueError("not a greenwave state envelope")
        if envelope["greenwave_state"] != ENVELOPE_FORMAT:
            raise ValueError(f"unknown state format {show(envelope['greenwave_state'])}")
        if envelope["kind"] != self.kind:
            raise ValueError(f"holds {show(envelope['kind'])}, not {self.kind!r}")
        digest = hashlib.sha256(canonical_json(envelope["body"])).hexdigest()
        if envelope["sha256"] != digest:
            raise ValueError("checksum mismatch (torn or corrupted write)")
        return parse(envelope["body"])

    def stat_signature(self) -> tuple[int, int, int] | None:
        """(inode, mtime ns, size) of the main file, to notice another writer's change."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # -- writing -----------------------------------------------------------------

    def write(self, body: Any, *, sync: bool = True) -> None:
        """Replace the file's body durably; when this returns the new body is on the medium.

        ``sync=False`` skips the two fsyncs: the replacement is still atomic
        and survives the process being killed at any moment (the kernel has
        it), but a power cut may undo it, or leave a main copy that fails its
        checksum, so that the one-write-older backup is read. For flags that
        are cheap to lose and costly to fsync on every command.

        Raises :class:`StateFileError` when the file cannot be written (the
        old copy is then still in place and still good).
        """
        envelope = {
            "greenwave_state": ENVELOPE_FORMAT,
            "kind": self.kind,
            "sha256": hashlib.sha256(canonical_json(body)).hexdigest(),
            "body": body,
        }
        data = json.dumps(envelope, indent=self._indent, ensure_ascii=False, allow_nan=False)
        try:
            with self.locked():
                self._write_tmp(data.encode("utf-8") + b"\n", sync=sync)
                if self._main_good and self.path.exists():
                    self._keep_backup()
                os.replace(self.tmp_path, self.path)
                if sync:
                    _fsync_dir(self.path.parent)
        except OSError as err:
            raise StateFileError(f"{self.path}: cannot write: {err.strerror or err}") from err
        self._main_good = True

    def _write_tmp(self, data: bytes, *, sync: bool = True) -> None:
        _write_synced(self.tmp_path, data, self._mode, sync=sync)

    def _keep_backup(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._bak_tmp_path)
        try:
            os.link(self.path, self._bak_tmp_path)
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # A file system without hard links (vfat): copy, durably.
            _write_synced(self._bak_tmp_path, self.path.read_bytes(), self._mode)
        os.replace(self._bak_tmp_path, self.bak_path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock (reentrant within this object; blocks other processes)."""
        if self._lock_depth == 0:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_fd is not None:
                fd, self._lock_fd = self._lock_fd, None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _write_synced(path: Path, data: bytes, mode: int, *, sync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _one_line(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 200 else first[:197] + "..."


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_directory(
    directory: Path, *, lock_name: str, what: str, error: type[StateFileError] = StateFileError
) -> int:
    """Create ``directory`` and hold its lock file exclusively; the lock's fd.

    For append-only stores with one writer (the events outbox, the audit log).
    Raises ``error`` when the directory cannot be used or another process holds
    it; ``what`` names the store in that message.
    """
    try:
        directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(directory / lock_name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as err:
        raise error(f"{directory}: cannot use: {err.strerror or err}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        raise error(f"{directory}: another process has {what} open") from err
    return fd


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path (one already deleted needs none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
