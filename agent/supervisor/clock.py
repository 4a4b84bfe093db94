"""Clock trust: is the system clock synchronised well enough to coordinate on? (SPEC §6).

Time-based coordination keeps a corridor's green wave with no network: every
cabinet runs its cycle from its own clock, so a cabinet whose clock is wrong
runs out of step with its neighbours. The agent therefore refuses coordinated
patterns and ``activate_at`` (``E_CLOCK``) while its clock is not trusted,
and publishes why in ``state``. docs/clock.md is the operator's view.

How the verdict is reached, by ``[clock] trust``::

    kernel   (default)  adjtimex(2) with modes = 0: read-only, no privilege
             │          synced iff  state != TIME_ERROR
             │                 and  STA_UNSYNC is clear
             │                 and  maxerror <= max_error_s
             │          chrony, ntpd and systemd-timesyncd all discipline the
             │          kernel clock, so this one check covers each of them;
             │          `chronyc -c -n tracking` / `timedatectl show` add a
             │          line of detail when present (never required)
    file                synced iff trust_file exists and its first word is "synced"
    always / never      as configured (tests, or a site that decides by hand)

The kernel's ``maxerror`` is the daemon's bound on the clock error at its last
update, grown by the kernel by 500 µs every second since (the worst-case drift
of an undisciplined oscillator), so it also catches a daemon that has stopped
updating the clock long before the kernel itself gives up (16 s, ~9 hours).

Parsing and judging are plain functions over data (:func:`judge_kernel`,
:func:`judge_file`, :func:`parse_chrony_tracking`, :func:`parse_timedatectl`);
the calls that fetch the data (:func:`read_kernel_time`, :func:`probe_daemon`)
are separate, thin and injected into :class:`ClockTrust`, so every verdict is
tested on canned readings and a fake clock.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import enum
import functools
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

from agent.config import ClockConfig
from agent.logs import get_logger

log = get_logger("supervisor.clock")

# -- the kernel's NTP interface (include/uapi/linux/timex.h) ----------------------------

#: ``adjtimex`` result: the clock is not synchronised.
TIME_ERROR = 5
#: The leap-second states ``adjtimex`` returns besides TIME_OK (0) and TIME_ERROR.
_LEAP_STATES = {1: "leap second to insert", 2: "leap second to delete", 3: "leap second now"}
#: Status bit: the clock is not synchronised (set at boot, by a daemon, or by the
#: kernel itself when maxerror passes 16 s).
STA_UNSYNC = 0x0040

#: How long an external status tool may take before it is abandoned (s).
PROBE_TIMEOUT_S = 2.0
#: Most output read from a status tool or the trust file (bytes).
_MAX_READ = 4096


class ClockReason(enum.StrEnum):
    """Why a verdict is what it is: the stable part, for ``state`` and change detection."""

    SYNCED = "synced"
    UNSYNC = "unsync"  # STA_UNSYNC: no daemon keeps the clock synchronised
    TIME_ERROR = "time_error"  # TIME_ERROR without STA_UNSYNC: a PPS problem
    MAX_ERROR = "max_error"  # the kernel's error bound is beyond [clock] max_error_s
    UNREADABLE = "unreadable"  # adjtimex could not be called
    CONFIGURED = "configured"  # trust = "always" or "never"
    FILE_MISSING = "file_missing"
    FILE_UNREADABLE = "file_unreadable"
    FILE_NOT_SYNCED = "file_not_synced"


@dataclass(frozen=True, kw_only=True)
class ClockVerdict:
    """Whether the system clock is trusted for coordination, and why, in one line."""

    synced: bool
    #: Where the verdict came from: ``kernel``, ``configured`` or ``file``.
    source: str
    reason: ClockReason
    #: One line for a technician, e.g. ``kernel: synchronised, max error 12 ms``.
    detail: str
    #: The time daemon's estimate of the clock error (s), when known.
    est_error_s: float | None = None
    #: The bound on the clock error (s), when known.
    max_error_s: float | None = None
    #: What chrony or timedated say, when they are installed (detail only).
    daemon: str | None = None
    #: When the check ran (the injected monotonic clock).
    checked_at: float

    @property
    def meaning(self) -> tuple[bool, str, ClockReason]:
        """What a change must alter to be reported (not numbers that move every check)."""
        return (self.synced, self.source, self.reason)

    def as_state(self) -> dict[str, Any]:
        """The ``clock`` object of the ``state`` document."""
        return {
            "synced": self.synced,
            "source": self.source,
            "reason": str(self.reason),
            "detail": self.detail,
            "est_error_s": self.est_error_s,
            "max_error_s": self.max_error_s,
            "daemon": self.daemon,
        }


def _amount(seconds: float) -> str:
    """A duration for a person: ``12 ms``, ``1.25 s``."""
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


# -- kernel --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KernelTime:
    """What ``adjtimex(2)`` read-only reports (the fields the verdict uses)."""

    #: The return value: TIME_OK 0, TIME_INS 1, TIME_DEL 2, TIME_OOP 3, TIME_WAIT 4, TIME_ERROR 5.
    state: int
    status: int
    #: Maximum and estimated error (µs, whatever STA_NANO says).
    maxerror_us: int
    esterror_us: int


def judge_kernel(reading: KernelTime, *, max_error_s: float, now: float) -> ClockVerdict:
    """The verdict on one kernel reading."""
    max_error = reading.maxerror_us / 1e6
    est_error = reading.esterror_us / 1e6

    def verdict(reason: ClockReason, detail: str) -> ClockVerdict:
        return ClockVerdict(
            synced=reason is ClockReason.SYNCED,
            source="kernel",
            reason=reason,
            detail=f"kernel: {detail}",
            est_error_s=est_error,
            max_error_s=max_error,
            checked_at=now,
        )

    if reading.status & STA_UNSYNC:
        return verdict(
            ClockReason.UNSYNC,
            "STA_UNSYNC set — no time daemon (chrony, ntpd, timesyncd) "
            "is keeping this clock synchronised",
        )
    if reading.state == TIME_ERROR:
        return verdict(
            ClockReason.TIME_ERROR,
            f"clock state TIME_ERROR (status 0x{reading.status:04x}: PPS signal lost or unstable)",
        )
    if max_error > max_error_s:
        return verdict(
            ClockReason.MAX_ERROR,
            f"max error {_amount(max_error)} exceeds the {_amount(max_error_s)} limit — "
            "the time daemon has not updated the clock recently "
            "(the bound grows 0.5 ms a second between updates)",
        )
    leap = _LEAP_STATES.get(reading.state)
    return verdict(
        ClockReason.SYNCED,
        f"synchronised, max error {_amount(max_error)}, est. error {_amount(est_error)}"
        + (f", {leap}" if leap else ""),
    )


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """``struct timex`` as the C library's ``adjtimex`` takes it (``long`` is the C long).

    The trailing reserve is larger than the kernel's own padding, so a layout
    this code does not know can never make the kernel write past the buffer.
    """

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_char * 128),
    )


class ClockReadError(OSError):
    """The kernel's clock state could not be read (no adjtimex, or it failed)."""


@functools.cache
def _adjtimex() -> Callable[[Any], int]:
    """``adjtimex`` (or ``ntp_adjtime``) from the C library already in this process."""
    libc = ctypes.CDLL(None, use_errno=True)
    for name in ("adjtimex", "ntp_adjtime"):
        try:
            function = getattr(libc, name)
        except AttributeError:
            continue
        function.argtypes = (ctypes.POINTER(_Timex),)
        function.restype = ctypes.c_int
        found: Callable[[Any], int] = function
        return found
    raise ClockReadError("the C library has no adjtimex or ntp_adjtime")


def read_kernel_time() -> KernelTime:
    """Read the kernel's NTP state (modes = 0: changes nothing, needs no privilege)."""
    timex = _Timex()  # zeroed: modes = 0
    state = _adjtimex()(ctypes.byref(timex))
    if state < 0:
        errno = ctypes.get_errno()
        raise ClockReadError(errno, f"adjtimex failed: {os.strerror(errno)}")
    return KernelTime(
        state=state,
        status=int(timex.status),
        maxerror_us=int(timex.maxerror),
        esterror_us=int(timex.esterror),
    )


# -- file -------------------------------------------------------------------------------


def judge_file(path: Path, text: str | None, *, now: float) -> ClockVerdict:
    """The verdict on the trust file's text (``None``: the file does not exist).

    Synced iff the first word of the file is ``synced`` (any case); the rest of
    the first line is a note for people (``synced gps 3D fix, 9 satellites``).
    """
    if text is None:
        return ClockVerdict(
            synced=False,
            source="file",
            reason=ClockReason.FILE_MISSING,
            detail=f"file: {path} does not exist — the time source has not declared sync",
            checked_at=now,
        )
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    shown = "".join(c if c.isprintable() else "?" for c in line[:80]) or "(empty)"
    words = line.split(maxsplit=1)
    if words and words[0].lower() == "synced":
        return ClockVerdict(
            synced=True,
            source="file",
            reason=ClockReason.SYNCED,
            detail=f"file: {path} says {shown!r}",
            checked_at=now,
        )
    return ClockVerdict(
        synced=False,
        source="file",
        reason=ClockReason.FILE_NOT_SYNCED,
        detail=f"file: {path} says {shown!r}, not 'synced'",
        checked_at=now,
    )


def read_trust_file(path: Path) -> str | None:
    """The trust file's first bytes as text, ``None`` when it does not exist."""
    try:
        with path.open("rb") as file:
            return file.read(_MAX_READ).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


# -- time daemons: extra detail only -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChronyTracking:
    """The parts of ``chronyc -c tracking`` a technician needs."""

    reference: str
    stratum: int
    #: How far the system clock is from chrony's idea of true time (s; + = ahead).
    system_offset_s: float
    root_delay_s: float
    root_dispersion_s: float
    leap: str

    @property
    def synced(self) -> bool:
        return self.leap != "Not synchronised" and self.stratum > 0

    def describe(self) -> str:
        if not self.synced:
            return "chrony: not synchronised"
        return (
            f"chrony: synchronised to {self.reference or '?'} (stratum {self.stratum}), "
            f"offset {self.system_offset_s * 1000:+.3f} ms, "
            f"root distance {_amount(self.root_delay_s / 2 + self.root_dispersion_s)}"
        )


def parse_chrony_tracking(text: str) -> ChronyTracking | None:
    """Parse ``chronyc -c tracking`` (one CSV line); ``None`` when it is not that.

    Fields: ref id (hex), reference name, stratum, ref time, system time
    (chrony's correction: + means the clock is slow), last offset, RMS offset,
    frequency, residual frequency, skew, root delay, root dispersion, update
    interval, leap status.
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    fields = line.split(",")
    if len(fields) < 14:
        return None
    try:
        return ChronyTracking(
            reference=fields[1],
            stratum=int(fields[2]),
            system_offset_s=-float(fields[4]),
            root_delay_s=float(fields[10]),
            root_dispersion_s=float(fields[11]),
            leap=fields[13].strip(),
        )
    except ValueError:
        return None


def parse_timedatectl(text: str) -> str | None:
    """Parse ``timedatectl show -p NTP -p NTPSynchronized`` into one line; ``None`` if empty."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in {"NTP", "NTPSynchronized"}:
            values[key.strip()] = value.strip()
    if "NTPSynchronized" not in values:
        return None
    synced = "synchronised" if values["NTPSynchronized"] == "yes" else "not synchronised"
    service = {"yes": ", NTP service on", "no": ", NTP service off"}.get(values.get("NTP", ""), "")
    return f"timedated: {synced}{service}"


async def _run_tool(*argv: str) -> str | None:
    """A status tool's stdout, or ``None`` when it is missing, fails or hangs."""
    program = shutil.which(argv[0])
    if program is None:
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            program,
            *argv[1:],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C"},
        )
    except OSError:
        return None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    if process.returncode != 0:
        return None
    return out[:_MAX_READ].decode("utf-8", errors="replace")


async def probe_daemon() -> str | None:
    """One line from chrony, else from timedated, else ``None`` (never an error)."""
    chrony = await _run_tool("chronyc", "-c", "-n", "tracking")
    if chrony is not None and (tracking := parse_chrony_tracking(chrony)) is not None:
        return tracking.describe()
    timedated = await _run_tool("timedatectl", "show", "-p", "NTP", "-p", "NTPSynchronized")
    return parse_timedatectl(timedated) if timedated is not None else None


# -- the trust ----------------------------------------------------------------------------


class MonotonicClock(Protocol):
    """What clock trust needs of time (the same shape as the MQTT link's clock)."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemMonotonicClock:
    """The real monotonic clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ClockTrust:
    """Judges the system clock on demand (:meth:`check`) and watches it (:meth:`watch`).

    :meth:`check` is cheap and synchronous (one system call, or one small file
    read in ``file`` mode): call it at the moment a coordinated command is
    admitted rather than trusting an old verdict.
    """

    def __init__(
        self,
        config: ClockConfig,
        *,
        clock: MonotonicClock | None = None,
        read_kernel: Callable[[], KernelTime] = read_kernel_time,
        read_file: Callable[[Path], str | None] = read_trust_file,
        probe: Callable[[], Awaitable[str | None]] | None = probe_daemon,
    ) -> None:
        self._config = config
        self._clock = clock or SystemMonotonicClock()
        self._read_kernel = read_kernel
        self._read_file = read_file
        self._probe = probe
        self._daemon: str | None = None
        self._latest: ClockVerdict | None = None

    @property
    def latest(self) -> ClockVerdict:
        """The verdict of the last check (checking now if there was none)."""
        return self._latest if self._latest is not None else self.check()

    def check(self) -> ClockVerdict:
        """Judge the clock now."""
        now = self._clock.monotonic()
        trust = self._config.trust
        if trust == "always" or trust == "never":
            verdict = ClockVerdict(
                synced=trust == "always",
                source="configured",
                reason=ClockReason.CONFIGURED,
                detail=f'configured: [clock] trust = "{trust}" — '
                + (
                    "the clock is trusted without a check"
                    if trust == "always"
                    else "coordinated commands are refused"
                ),
                checked_at=now,
            )
        elif trust == "file":
            verdict = self._check_file(now)
        else:
            verdict = self._check_kernel(now)
        self._latest = verdict
        return verdict

    def _check_kernel(self, now: float) -> ClockVerdict:
        try:
            reading = self._read_kernel()
        except OSError as err:
            return ClockVerdict(
                synced=False,
                source="kernel",
                reason=ClockReason.UNREADABLE,
                detail=f"kernel: cannot read the clock state ({err.strerror or err}); "
                'set [clock] trust = "file" or "always" for this system',
                daemon=self._daemon,
                checked_at=now,
            )
        verdict = judge_kernel(reading, max_error_s=self._config.max_error_s, now=now)
        return dataclasses.replace(verdict, daemon=self._daemon)

    def _check_file(self, now: float) -> ClockVerdict:
        path = self._config.trust_file
        assert path is not None  # the config requires it with trust = "file"
        try:
            text = self._read_file(path)
        except OSError as err:
            return ClockVerdict(
                synced=False,
                source="file",
                reason=ClockReason.FILE_UNREADABLE,
                detail=f"file: cannot read {path}: {err.strerror or err}",
                checked_at=now,
            )
        return judge_file(path, text, now=now)

    async def watch(self, on_change: Callable[[ClockVerdict], None]) -> NoReturn:
        """Re-check every ``check_interval_s``; ``on_change`` gets the first verdict and
        then each one whose meaning (synced, source, reason) differs from the last
        one it got. Each of those is logged once. Runs until cancelled.
        """
        announced: tuple[bool, str, ClockReason] | None = None
        while True:
            if self._config.trust == "kernel" and self._probe is not None:
                self._daemon = await self._probe()
            verdict = self.check()
            if verdict.meaning != announced:
                announced = verdict.meaning
                (log.info if verdict.synced else log.warning)(
                    "clock_trust",
                    synced=verdict.synced,
                    source=verdict.source,
                    reason=str(verdict.reason),
                    detail=verdict.detail,
                    daemon=verdict.daemon,
                )
                on_change(verdict)
            await self._clock.sleep(self._config.check_interval_s)
