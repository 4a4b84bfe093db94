"""The controller's real-time clock (NTCIP 1201 ``globalTime``), with drift.

Two times exist in the simulator:

* **simulated true time** -- integer milliseconds since power-up, advanced
  only by :meth:`firmware_sim.controller.SimController.step`. The timing
  engine counts its 0.1 s intervals on this time base, like a NEMA controller
  that times intervals from the 60 Hz line while its real-time clock runs
  from a crystal.
* **the controller clock** -- what the unit believes the time is: seconds
  since 1970-01-01 UTC, settable (``globalTime`` writes, event 181) and
  drifting at a configurable rate. Time-of-day plans and time-based
  coordination (local cycle timer = (t - local midnight - offset) mod C,
  ``reference/traffic-rules.md`` §3.1) read this clock, so drift shows up as
  an offset error that the coordinator corrects through a transition, and as
  a clock error against true time, exactly the failure mode §3.4 describes
  (a crystal drifts about 1 s/day).

All arithmetic is integer (milliseconds, drift in parts per billion), so a
simulated day is exact and reproducible.
"""

from __future__ import annotations

_PPB = 1_000_000_000
_DAY_S = 86_400


def ppb_from_ppm(ppm: float) -> int:
    """A drift in parts per million as integer parts per billion."""
    return round(ppm * 1000)


def ppb_from_seconds_per_day(seconds_per_day: float) -> int:
    """A drift given as seconds gained per day (negative: lost) in parts per billion."""
    return round(seconds_per_day * _PPB / _DAY_S)


class ControllerClock:
    """A settable clock that maps simulated true time to controller time.

    The clock is piecewise linear: from the last anchor (a set, or a drift
    change) it advances ``1 + drift`` controller milliseconds per true
    millisecond. ``utc_offset_s`` converts to local time for the time base
    (a fixed offset; no daylight-saving rules).
    """

    __slots__ = ("_anchor_clock_ms", "_anchor_true_ms", "_drift_ppb", "utc_offset_s")

    def __init__(self, *, epoch_s: int, utc_offset_s: int = 0, drift_ppb: int = 0) -> None:
        self._anchor_true_ms = 0
        self._anchor_clock_ms = epoch_s * 1000
        self._drift_ppb = drift_ppb
        self.utc_offset_s = utc_offset_s

    @property
    def drift_ppb(self) -> int:
        """Current drift in parts per billion (positive: the clock runs fast)."""
        return self._drift_ppb

    def now_ms(self, true_ms: int) -> int:
        """Controller time (ms since the epoch, UTC) at simulated true time ``true_ms``."""
        elapsed = true_ms - self._anchor_true_ms
        return self._anchor_clock_ms + elapsed + (elapsed * self._drift_ppb) // _PPB

    def local_ms(self, true_ms: int) -> int:
        """Controller local time (ms since the local-time epoch) at ``true_ms``."""
        return self.now_ms(true_ms) + self.utc_offset_s * 1000

    def true_ms_at_local(self, local_ms: int) -> int:
        """The first simulated true time at which the local clock reads ``local_ms`` or later."""
        clock_ms = local_ms - self.utc_offset_s * 1000
        delta = clock_ms - self._anchor_clock_ms
        # Solve elapsed + floor(elapsed * ppb / 1e9) >= delta for the least elapsed.
        rate = _PPB + self._drift_ppb
        true_ms = self._anchor_true_ms - ((-delta * _PPB) // rate)  # ceil(delta / (1 + drift))
        # The floor in now_ms() can put the estimate one millisecond off either way.
        while self.now_ms(true_ms - 1) >= clock_ms:
            true_ms -= 1
        while self.now_ms(true_ms) < clock_ms:
            true_ms += 1
        return true_ms

    def set(self, true_ms: int, epoch_ms: int) -> None:
        """Set the clock to ``epoch_ms`` (ms since the epoch, UTC) at true time ``true_ms``."""
        self._anchor_true_ms = true_ms
        self._anchor_clock_ms = epoch_ms

    def set_drift(self, true_ms: int, drift_ppb: int) -> None:
        """Change the drift rate from true time ``true_ms`` on, keeping the current reading."""
        self._anchor_clock_ms = self.now_ms(true_ms)
        self._anchor_true_ms = true_ms
        self._drift_ppb = drift_ppb
