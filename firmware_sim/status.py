"""NTCIP 1202 status vocabulary of the simulated controller, and its status snapshot.

The enumerations carry the NTCIP 1202 integer values (v02/v03 MIB text, as
quoted in ``reference/ntcip-protocols.md`` §4 and the eTEXAS ``Unit.java`` /
``Coordination.java`` descriptions), so that a front end can serve them as
they are. :class:`UnitStatus` is one immutable snapshot of everything a front
end reads: phase and channel state, coordination state, unit state, alarms,
the MMU and the clock.

Bitmaps follow ``phaseStatusGroup`` conventions: bit ``n-1`` is phase (or
channel) ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class UnitFlashStatus(IntEnum):
    """``unitFlashStatus`` (asc.3.6): why the unit is (or is not) in flash."""

    OTHER = 1
    NOT_FLASH = 2
    #: Flash called by a pattern value 255 (system command or time of day).
    AUTOMATIC = 3
    LOCAL_MANUAL = 4
    FAULT_MONITOR = 5
    #: The MMU has latched a fault and holds the cabinet in flash.
    MMU = 6
    #: The unit is timing its start-up flash (``unitStartUpFlash``).
    STARTUP = 7
    PREEMPT = 8


class UnitControlStatus(IntEnum):
    """``unitControlStatus`` (asc.3.5): which source is in control of pattern selection."""

    OTHER = 1
    #: A non-zero ``systemPatternControl`` from central is in force.
    SYSTEM_CONTROL = 2
    #: Central wrote ``systemPatternControl`` = 0 (standby): the time base runs.
    SYSTEM_STANDBY = 3
    #: ``unitBackupTime`` expired without a system-control write: the time base runs.
    BACKUP_MODE = 4
    MANUAL = 5
    #: No system command since power-up: the local time base runs.
    TIMEBASE = 6
    INTERCONNECT = 7
    INTERCONNECT_BACKUP = 8


class LocalFreeStatus(IntEnum):
    """``localFreeStatus`` (asc.4.11): why the unit is running free, if it is."""

    OTHER = 1
    NOT_FREE = 2
    #: Free is what the current command (254, or time of day) asks for.
    COMMAND_FREE = 3
    #: A pattern is called; the unit is cycling free to the point where coordination begins.
    TRANSITION_FREE = 4
    INPUT_FREE = 5
    #: The called pattern's cycle time is 0: free, with its splits used as maximums.
    COORD_FREE = 6
    #: The called pattern is unknown or invalid (structure, split below a phase minimum,
    #: offset not below the cycle).
    BAD_PLAN = 7
    #: The cycle time is outside 30-255 s or cannot hold the phase minimums.
    BAD_CYCLE_TIME = 8
    #: The critical path through the splits exceeds the cycle.
    SPLIT_OVERRUN = 9
    INVALID_OFFSET = 10
    FAILED = 11


class CoordCycleState(IntEnum):
    """Parameter of hi-res event 150 (coord cycle state change).

    Values from the Indiana/Purdue hi-res enumeration (0 free, 1 in step,
    2 transition add, 3 transition subtract, 4 transition dwell) [R: recalled,
    the ATSPM enum file does not spell the parameter out].
    """

    FREE = 0
    IN_STEP = 1
    TRANSITION_ADD = 2
    TRANSITION_SUBTRACT = 3
    TRANSITION_DWELL = 4


class CorrectionMode(IntEnum):
    """``coordCorrectionMode`` (asc.4.2): how an offset error is corrected."""

    OTHER = 1
    #: Hold the coordinated phases (only ever lengthens the cycle).
    DWELL = 2
    #: Add or subtract, whichever finishes in fewer cycles, within per-cycle limits.
    SHORTWAY = 3
    #: Only lengthen, within the per-cycle add limit.
    ADD_ONLY = 4


class UnitMode(Enum):
    """What the unit's outputs are doing (the engine's top-level state)."""

    #: Timing ``unitStartUpFlash`` after power-up or an MMU reset: all-red flash.
    STARTUP_FLASH = "startup-flash"
    #: All-red steady display before the first green after any flash.
    RED_REVERT = "red-revert"
    #: Normal ring-and-barrier operation (coordinated, transitioning or free).
    STEADY = "steady"
    #: Flash called by pattern 255 (system command or time of day): all-red flash.
    FLASH = "flash"
    #: The MMU has latched a fault: cabinet in all-red flash until an MMU reset.
    MMU_FLASH = "mmu-flash"


#: ``coordPatternStatus`` values that are not pattern numbers.
PATTERN_NOT_USED = 0
PATTERN_FREE = 254
PATTERN_FLASH = 255

# unitAlarmStatus1 bits (asc.3.8)
ALARM1_COORD_ACTIVE = 1 << 7
ALARM1_LOCAL_FREE = 1 << 6
ALARM1_MMU_FLASH = 1 << 4
# unitAlarmStatus2 bits (asc.3.7)
ALARM2_OFFSET_TRANSITIONING = 1 << 5
ALARM2_POWER_RESTART = 1 << 0
# shortAlarmStatus bits (asc.3.9)
SHORT_ALARM_COORDINATION = 1 << 4
SHORT_ALARM_LOCAL_OVERRIDE = 1 << 3
SHORT_ALARM_TF_FLASH = 1 << 1


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseBitmaps:
    """``phaseStatusGroup`` columns for phases 1-16 (bit ``n-1`` = phase ``n``)."""

    reds: int
    yellows: int
    greens: int
    dont_walks: int
    ped_clears: int
    walks: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelFrame:
    """What the cabinet's load switches show: 16 channels x (green, yellow, red).

    Bit ``n-1`` is channel ``n``. A pedestrian channel shows WALK on its green
    output, flashing DON'T WALK on its yellow output and DON'T WALK on its red
    output (TS2 load-switch wiring), so "walk" is the green bit of a ped
    channel. ``flashing`` is true when the cabinet is in flash: the red
    outputs then blink, and the MMU's red-fail monitoring is disabled (the
    TS2 "red enable" input is off), as in a real cabinet.
    """

    greens: int
    yellows: int
    reds: int
    flashing: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class UnitStatus:
    """One snapshot of the simulated controller, as a front end reads it.

    Times: ``sim_time_ms`` is simulated true time since power-up; every other
    time is the controller's own clock (which may drift).
    """

    sim_time_ms: int
    #: ``globalTime``: controller clock, whole seconds since the epoch (UTC).
    global_time: int
    #: Controller clock in tenths of a second since the epoch (UTC).
    clock_ds: int
    #: Controller clock offset from UTC used for time of day, seconds.
    utc_offset_s: int
    mode: UnitMode
    phases: PhaseBitmaps
    channels: ChannelFrame
    #: ``coordPatternStatus``: 1-253 running pattern, 254 free, 255 flash, 0 not used.
    coord_pattern_status: int
    local_free_status: LocalFreeStatus
    #: ``coordCycleStatus``: seconds left in the local cycle (counts down to zero).
    coord_cycle_status: int
    #: Local cycle timer in tenths: time since local zero of the running cycle.
    local_cycle_ds: int
    #: Length of the running cycle in tenths (longer or shorter while transitioning).
    cycle_length_ds: int
    #: ``coordSyncStatus``: seconds since the system reference point (time-base derived).
    coord_sync_status: int
    cycle_state: CoordCycleState
    #: Cycles of correction run since the current transition began (0 when in step).
    transition_cycles: int
    unit_flash_status: UnitFlashStatus
    unit_control_status: UnitControlStatus
    unit_alarm_status1: int
    unit_alarm_status2: int
    short_alarm_status: int
    system_pattern_control: int
    unit_backup_time: int
    #: Tenths left on the backup timer; 0 when it is not running.
    backup_remaining_ds: int
    #: The pattern value the local time base calls now (0 none, 1-253, 254 free, 255 flash).
    timebase_pattern: int
    #: The day plan the local time base is running (0 when none matches).
    day_plan: int
    #: Description of the latched MMU fault, or None.
    mmu_fault: str | None
