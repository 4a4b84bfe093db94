"""Clock trust: kernel readings, chrony/timedated detail, the trust file, watch() and config."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from agent.config import ClockConfig, parse_config
from agent.errors import ConfigError
from agent.supervisor import clock as clock_module
from agent.supervisor.clock import (
    STA_UNSYNC,
    TIME_ERROR,
    ClockReadError,
    ClockReason,
    ClockTrust,
    ClockVerdict,
    KernelTime,
    judge_file,
    judge_kernel,
    parse_chrony_tracking,
    parse_timedatectl,
    probe_daemon,
    read_kernel_time,
)

REPO = Path(__file__).resolve().parents[2]

#: What this test machine's kernel said when the module was written (a VM with no NTP).
UNSYNCED = KernelTime(
    state=TIME_ERROR, status=STA_UNSYNC, maxerror_us=16_000_000, esterror_us=16_000_000
)
#: A kernel kept by chrony: STA_PLL | STA_NANO, 12 ms bound, 1 ms estimate.
SYNCED = KernelTime(state=0, status=0x2001, maxerror_us=12_000, esterror_us=1_000)


class FakeClock:
    """Monotonic time that moves only in sleep(); each sleep runs the test's next step."""

    def __init__(self, steps: Sequence[Callable[[], object]] = ()) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.steps = list(steps)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if not self.steps:
            raise _ScriptDone
        self.steps.pop(0)()


class _ScriptDone(Exception):
    """The watch() script ran out: end the endless loop."""


class Kernel:
    """A read_kernel stand-in whose answer a test changes."""

    def __init__(self, reading: KernelTime | Exception) -> None:
        self.reading = reading

    def __call__(self) -> KernelTime:
        if isinstance(self.reading, Exception):
            raise self.reading
        return self.reading


# -- the kernel's verdict ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "synced", "reason", "detail"),
    [
        pytest.param(
            UNSYNCED,
            False,
            ClockReason.UNSYNC,
            "kernel: STA_UNSYNC set — no time daemon (chrony, ntpd, timesyncd) "
            "is keeping this clock synchronised",
            id="never-synced",
        ),
        pytest.param(
            KernelTime(state=0, status=STA_UNSYNC | 0x1, maxerror_us=1000, esterror_us=10),
            False,
            ClockReason.UNSYNC,
            "kernel: STA_UNSYNC set",
            id="unsync-bit-wins-over-small-error",
        ),
        pytest.param(
            SYNCED,
            True,
            ClockReason.SYNCED,
            "kernel: synchronised, max error 12 ms, est. error 1 ms",
            id="chrony-synced",
        ),
        pytest.param(
            KernelTime(state=0, status=0x1, maxerror_us=730_000, esterror_us=500),
            False,
            ClockReason.MAX_ERROR,
            "kernel: max error 730 ms exceeds the 500 ms limit",
            id="daemon-stopped-updating",
        ),
        pytest.param(
            KernelTime(state=0, status=0x1, maxerror_us=500_000, esterror_us=500),
            True,
            ClockReason.SYNCED,
            "max error 500 ms",
            id="error-exactly-at-the-limit",
        ),
        pytest.param(
            KernelTime(state=TIME_ERROR, status=0x2107, maxerror_us=2_000, esterror_us=1),
            False,
            ClockReason.TIME_ERROR,
            "kernel: clock state TIME_ERROR (status 0x2107: PPS signal lost or unstable)",
            id="pps-trouble",
        ),
        pytest.param(
            KernelTime(state=1, status=0x11, maxerror_us=3_000, esterror_us=100),
            True,
            ClockReason.SYNCED,
            "est. error 0 ms, leap second to insert",
            id="leap-second-pending",
        ),
    ],
)
def test_kernel_readings_are_judged(
    reading: KernelTime, synced: bool, reason: ClockReason, detail: str
) -> None:
    verdict = judge_kernel(reading, max_error_s=0.5, now=7.0)
    assert (verdict.synced, verdict.reason, verdict.source) == (synced, reason, "kernel")
    assert detail in verdict.detail
    assert verdict.max_error_s == reading.maxerror_us / 1e6
    assert verdict.est_error_s == reading.esterror_us / 1e6
    assert verdict.checked_at == 7.0
    assert "\n" not in verdict.detail


def test_the_error_bound_is_configurable() -> None:
    loose = ClockTrust(
        ClockConfig(max_error_s=1.0),
        clock=FakeClock(),
        read_kernel=Kernel(KernelTime(state=0, status=0x1, maxerror_us=730_000, esterror_us=500)),
    )
    assert loose.check().synced


def test_this_machines_kernel_is_really_read() -> None:
    """The ctypes call runs here and gives a well-formed reading and verdict."""
    assert ctypes.sizeof(clock_module._Timex) >= 208  # struct __kernel_timex on 64-bit
    reading = read_kernel_time()
    assert 0 <= reading.state <= TIME_ERROR
    assert 0 <= reading.maxerror_us <= 16_000_000 * 2
    assert reading.esterror_us >= 0
    verdict = ClockTrust(ClockConfig(), probe=None).check()
    assert verdict.source == "kernel"
    assert verdict.reason is not ClockReason.UNREADABLE
    assert verdict.synced == judge_kernel(reading, max_error_s=0.5, now=0).synced
    assert verdict.detail.startswith("kernel: ")


def test_an_unreadable_kernel_is_not_trusted() -> None:
    trust = ClockTrust(
        ClockConfig(), clock=FakeClock(), read_kernel=Kernel(ClockReadError(1, "EPERM"))
    )
    verdict = trust.check()
    assert not verdict.synced
    assert verdict.reason is ClockReason.UNREADABLE
    assert 'set [clock] trust = "file" or "always"' in verdict.detail


# -- chrony and timedated: detail only ----------------------------------------------------

CHRONY_SYNCED = (
    "C0A80101,192.168.1.1,3,1714412345.123456789,0.000012345,-0.000023456,0.000045678,"
    "-12.345,0.001,0.050,0.012345678,0.000456789,64.4,Normal\n"
)
CHRONY_UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,"
    "0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n"
)


def test_chrony_tracking_is_parsed() -> None:
    tracking = parse_chrony_tracking(CHRONY_SYNCED)
    assert tracking is not None
    assert tracking.synced
    assert tracking.stratum == 3
    assert tracking.system_offset_s == pytest.approx(-0.000012345)  # correction + = clock slow
    assert tracking.describe() == (
        "chrony: synchronised to 192.168.1.1 (stratum 3), offset -0.012 ms, root distance 7 ms"
    )
    unsynced = parse_chrony_tracking(CHRONY_UNSYNCED)
    assert unsynced is not None
    assert not unsynced.synced
    assert unsynced.describe() == "chrony: not synchronised"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("506 Cannot talk to daemon\n", id="daemon-down"),
        pytest.param("Reference ID    : C0A80101 (192.168.1.1)\n", id="not-csv"),
        pytest.param(CHRONY_SYNCED.replace(",3,", ",three,"), id="bad-number"),
    ],
)
def test_what_is_not_chrony_csv_gives_nothing(text: str) -> None:
    assert parse_chrony_tracking(text) is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("NTP=yes\nNTPSynchronized=yes\n", "timedated: synchronised, NTP service on"),
        ("NTP=no\nNTPSynchronized=no\n", "timedated: not synchronised, NTP service off"),
        ("NTPSynchronized=no\n", "timedated: not synchronised"),
        ("", None),
        ("NTP=yes\n", None),
    ],
)
def test_timedatectl_is_parsed(text: str, line: str | None) -> None:
    assert parse_timedatectl(text) == line


async def test_status_tools_that_are_missing_fail_or_hang_give_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clock_module, "PROBE_TIMEOUT_S", 0.2)
    assert await clock_module._run_tool("greenwave-no-such-tool") is None
    assert await clock_module._run_tool("false") is None
    assert await clock_module._run_tool("printf", "NTPSynchronized=yes") == "NTPSynchronized=yes"
    assert await clock_module._run_tool(sys.executable, "-c", "import time; time.sleep(30)") is None


async def test_the_real_probe_never_fails() -> None:
    """Whatever this machine has (here: no chronyc, a timedatectl with no systemd)."""
    line = await probe_daemon()
    assert line is None or line.startswith(("chrony: ", "timedated: "))


# -- configured modes ---------------------------------------------------------------------


def test_always_and_never_are_what_they_say() -> None:
    always = ClockTrust(ClockConfig(trust="always"), clock=FakeClock()).check()
    never = ClockTrust(ClockConfig(trust="never"), clock=FakeClock()).check()
    assert (always.synced, always.source, always.reason) == (True, "configured", "configured")
    assert (never.synced, never.source) == (False, "configured")
    assert never.detail == 'configured: [clock] trust = "never" — coordinated commands are refused'


def test_the_trust_file_flips_the_verdict(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    trust = ClockTrust(ClockConfig(trust="file", trust_file=path), clock=FakeClock())
    assert trust.check().reason is ClockReason.FILE_MISSING
    path.write_text("synced gps 3D fix, 9 satellites\n")
    verdict = trust.check()
    assert verdict.synced
    assert verdict.detail == f"file: {path} says 'synced gps 3D fix, 9 satellites'"
    path.write_text("unsynced\n")
    assert trust.check().reason is ClockReason.FILE_NOT_SYNCED
    path.write_text("SYNCED\n")
    assert trust.check().synced
    path.unlink()
    assert not trust.check().synced
    path.mkdir()
    unreadable = trust.check()
    assert (unreadable.synced, unreadable.reason) == (False, ClockReason.FILE_UNREADABLE)


@pytest.mark.parametrize(
    ("text", "synced"),
    [
        ("synced", True),
        ("  Synced\tpps locked\nsecond line", True),
        ("unsynced", False),
        ("not synced", False),
        ("synced-ish", False),
        ("", False),
        ("\x00\x01", False),
    ],
)
def test_only_a_first_word_synced_counts(text: str, synced: bool) -> None:
    verdict = judge_file(Path("/run/greenwave/clock"), text, now=0)
    assert verdict.synced is synced
    assert verdict.detail.isprintable()


# -- watch() ------------------------------------------------------------------------------


def test_the_first_check_is_remembered() -> None:
    kernel = Kernel(SYNCED)
    trust = ClockTrust(ClockConfig(), clock=FakeClock(), read_kernel=kernel)
    first = trust.latest
    kernel.reading = UNSYNCED
    assert trust.latest is first
    assert not trust.check().synced
    assert not trust.latest.synced


async def test_watch_reports_only_changes_of_meaning() -> None:
    kernel = Kernel(SYNCED)
    probes: list[str | None] = ["chrony: synchronised to 192.168.1.1 (stratum 3)"]

    async def probe() -> str | None:
        return probes[0]

    def set_reading(reading: KernelTime) -> Callable[[], None]:
        def step() -> None:
            kernel.reading = reading

        return step

    steps = [
        set_reading(KernelTime(state=0, status=0x1, maxerror_us=15_000, esterror_us=900)),
        set_reading(UNSYNCED),
        set_reading(UNSYNCED),
        set_reading(KernelTime(state=0, status=0x1, maxerror_us=600_000, esterror_us=900)),
        set_reading(SYNCED),
    ]
    fake = FakeClock(steps)
    trust = ClockTrust(
        ClockConfig(check_interval_s=10), clock=fake, read_kernel=kernel, probe=probe
    )
    seen: list[ClockVerdict] = []
    with pytest.raises(_ScriptDone):
        await trust.watch(seen.append)
    assert [(v.synced, v.reason) for v in seen] == [
        (True, ClockReason.SYNCED),  # the first verdict
        (False, ClockReason.UNSYNC),  # 12 → 15 ms moved nothing that matters
        (False, ClockReason.MAX_ERROR),  # still unsynced, but for a different reason
        (True, ClockReason.SYNCED),
    ]
    assert [v.checked_at for v in seen] == [100.0, 120.0, 140.0, 150.0]
    assert fake.slept == [10.0] * 6
    assert seen[0].daemon == "chrony: synchronised to 192.168.1.1 (stratum 3)"
    assert trust.latest.max_error_s == 0.012


async def test_watch_on_a_file_flips_without_probing(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    probed: list[int] = []

    async def probe() -> str | None:
        probed.append(1)
        return None

    fake = FakeClock(
        [
            lambda: path.write_text("synced\n"),
            lambda: path.write_text("synced still\n"),
            lambda: path.write_text("lost\n"),
        ]
    )
    trust = ClockTrust(ClockConfig(trust="file", trust_file=path), clock=fake, probe=probe)
    seen: list[ClockVerdict] = []
    with pytest.raises(_ScriptDone):
        await trust.watch(seen.append)
    assert [v.synced for v in seen] == [False, True, False]
    assert probed == []


# -- config -------------------------------------------------------------------------------


def test_the_clock_section_defaults_to_the_kernel() -> None:
    loaded = parse_config('[device]\nid = "a"\n')
    assert loaded.clock == ClockConfig()
    assert (loaded.clock.trust, loaded.clock.max_error_s) == ("kernel", 0.5)
    assert loaded.clock.check_interval_s == 10


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        pytest.param('trust = "file"', 'trust = "file" needs trust_file', id="file-without-path"),
        pytest.param('trust_file = "/run/x"', "trust_file is only read with", id="path-unused"),
        pytest.param('trust = "ntp"', "clock.trust", id="unknown-mode"),
        pytest.param("max_error_s = 0", "clock.max_error_s", id="zero-bound"),
        pytest.param("max_eror_s = 1", "clock.max_eror_s: unknown field", id="typo"),
    ],
)
def test_bad_clock_sections_are_named(section: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[device]\nid = "a"\n[clock]\n{section}\n')
    assert any(fragment in problem for problem in caught.value.problems), caught.value.problems


def test_the_environment_can_set_the_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENWAVE_CLOCK__TRUST", "always")
    assert parse_config('[device]\nid = "a"\n').clock.trust == "always"


@pytest.fixture
def file_config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[device]\nid = "a"\n[clock]\ntrust = "file"\n'
        f'trust_file = "{tmp_path / "clock"}"\nmax_error_s = 0.25\n'
    )
    return path


def test_config_check_accepts_the_clock_section(file_config: Path, tmp_path: Path) -> None:
    def check(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.cli.main", "config", "check", *extra],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            timeout=60,
            check=False,
        )

    result = check("--json", "--config", str(file_config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["clock"] == {
        "trust": "file",
        "trust_file": str(tmp_path / "clock"),
        "max_error_s": 0.25,
        "check_interval_s": 10.0,
    }
    example = check("--config", str(REPO / "examples" / "agent.toml"))
    assert example.returncode == 0, example.stderr


def test_the_state_object_carries_the_reason() -> None:
    verdict = judge_kernel(UNSYNCED, max_error_s=0.5, now=1.0)
    assert verdict.as_state() == {
        "synced": False,
        "source": "kernel",
        "reason": "unsync",
        "detail": verdict.detail,
        "est_error_s": 16.0,
        "max_error_s": 16.0,
        "daemon": None,
    }
    json.dumps(verdict.as_state())
