"""The timing engine: an 8-phase (up to 16) dual-ring NEMA controller, tick by tick.

The engine advances in 0.1 s ticks of simulated true time and keeps every
time as an integer number of tenths. It owns:

* **unit mode** -- start-up flash, red revert, steady operation, flash, MMU
  flash -- as a state machine with one transition table
  (:data:`MODE_TRANSITIONS`); a trigger missing from the table raises;
* **pattern selection** -- ``systemPatternControl`` from central (0 standby,
  1-253 pattern, 254 free, 255 flash) or, when it is 0, the local time base;
  the **backup timer** (``unitBackupTime``, restarted by every system-control
  write; on expiry the control objects are reset to zero and the unit runs
  its own time-of-day plan: ``unitControlStatus`` = backupMode);
* **steady operation** by cycle programs (:mod:`firmware_sim.program`): at
  every cycle boundary -- the barrier that opens the coordinated group, or
  the main-street group when free -- the engine judges the called pattern
  (:func:`~firmware_sim.coordination.judge_pattern`), computes the offset
  error against the controller clock and builds the next cycle, nominal or
  carrying a bounded transition correction; a pattern that cannot run runs
  free with ``localFreeStatus`` saying why;
* **flash** -- all-red flash (every vehicle channel flashes red, ped signals
  dark; MUTCD §4G / TxDOT: malfunction and programmed flash all-red). Flash
  is entered only at the main-street barrier (end of the common
  major-street red), after every clearance has timed; leaving flash, the
  unit shows steady all-red for ``unitRedRevert`` and then starts the
  main-street (coordinated) group;
* **events** in the hi-res log and the status a front end reads.

Timing changes in the database take effect at the next cycle boundary.
"""

from __future__ import annotations

from enum import Enum

from agent.errors import GreenwaveError
from firmware_sim.clock import ControllerClock
from firmware_sim.coordination import (
    CoordPlan,
    TransitionLimits,
    ahead_ds,
    free_program,
    judge_pattern,
    plan_correction,
)
from firmware_sim.database import ChannelType, TimingDatabase
from firmware_sim.events import EventCode, EventLog, split_change_code
from firmware_sim.program import CycleProgram, Op
from firmware_sim.status import (
    ALARM1_COORD_ACTIVE,
    ALARM1_LOCAL_FREE,
    ALARM1_MMU_FLASH,
    ALARM2_OFFSET_TRANSITIONING,
    PATTERN_FLASH,
    PATTERN_FREE,
    PATTERN_NOT_USED,
    SHORT_ALARM_COORDINATION,
    SHORT_ALARM_LOCAL_OVERRIDE,
    SHORT_ALARM_TF_FLASH,
    ChannelFrame,
    CoordCycleState,
    LocalFreeStatus,
    PhaseBitmaps,
    UnitControlStatus,
    UnitFlashStatus,
    UnitMode,
)
from firmware_sim.timebase import NO_CALL, TimebaseCall, timebase_call

_MS_PER_MINUTE = 60_000
_FAR = 1 << 62


class EngineStateError(GreenwaveError):
    """The engine was asked for a mode change its transition table does not allow."""

    code = "E_INTERNAL"


class ModeTrigger(Enum):
    """What can move the unit from one mode to another."""

    #: The start-up flash or red-revert timer ran out.
    TIMER_EXPIRED = "timer-expired"
    #: Flash (255) is called and the unit is at a point where it may enter flash.
    FLASH_CALLED = "flash-called"
    #: Flash is no longer called.
    FLASH_RELEASED = "flash-released"
    #: The MMU latched a fault.
    MMU_LATCHED = "mmu-latched"
    #: The MMU was reset: the unit restarts as after power-up.
    MMU_RESET = "mmu-reset"


#: The unit-mode state machine. A (mode, trigger) pair missing here is an error.
MODE_TRANSITIONS: dict[tuple[UnitMode, ModeTrigger], UnitMode] = {
    (UnitMode.STARTUP_FLASH, ModeTrigger.TIMER_EXPIRED): UnitMode.RED_REVERT,
    (UnitMode.STARTUP_FLASH, ModeTrigger.FLASH_CALLED): UnitMode.FLASH,
    (UnitMode.STARTUP_FLASH, ModeTrigger.MMU_LATCHED): UnitMode.MMU_FLASH,
    (UnitMode.RED_REVERT, ModeTrigger.TIMER_EXPIRED): UnitMode.STEADY,
    (UnitMode.RED_REVERT, ModeTrigger.FLASH_CALLED): UnitMode.FLASH,
    (UnitMode.RED_REVERT, ModeTrigger.MMU_LATCHED): UnitMode.MMU_FLASH,
    (UnitMode.STEADY, ModeTrigger.FLASH_CALLED): UnitMode.FLASH,
    (UnitMode.STEADY, ModeTrigger.MMU_LATCHED): UnitMode.MMU_FLASH,
    (UnitMode.FLASH, ModeTrigger.FLASH_RELEASED): UnitMode.RED_REVERT,
    (UnitMode.FLASH, ModeTrigger.MMU_LATCHED): UnitMode.MMU_FLASH,
    (UnitMode.MMU_FLASH, ModeTrigger.MMU_RESET): UnitMode.STARTUP_FLASH,
}

_TRANSITION_STATES = frozenset(
    {
        CoordCycleState.TRANSITION_ADD,
        CoordCycleState.TRANSITION_SUBTRACT,
        CoordCycleState.TRANSITION_DWELL,
    }
)
#: localFreeStatus values that mean "programming keeps the unit from coordinating".
_LOCAL_OVERRIDE = frozenset(
    {
        LocalFreeStatus.BAD_PLAN,
        LocalFreeStatus.BAD_CYCLE_TIME,
        LocalFreeStatus.SPLIT_OVERRUN,
        LocalFreeStatus.COORD_FREE,
        LocalFreeStatus.INVALID_OFFSET,
        LocalFreeStatus.FAILED,
    }
)


def _seconds(tenths: int) -> int:
    """An event parameter in whole seconds (round half up), capped at 255."""
    return min(255, (tenths + 5) // 10)


class TimingEngine:
    """The controller's timing, advanced by :meth:`tick` (one 0.1 s tick of true time)."""

    def __init__(
        self,
        db: TimingDatabase,
        clock: ControllerClock,
        log: EventLog,
        *,
        limits: TransitionLimits | None = None,
    ) -> None:
        self._db = db
        self.clock = clock
        self.log = log
        self.limits = limits or TransitionLimits()
        self._t = 0
        self._mode = UnitMode.STARTUP_FLASH
        self._timer = 0
        # system control and backup
        self.system_pattern_control = 0
        self.system_sync_control = 0
        self._backup_time_s = 0
        self._backup_deadline = _FAR
        self._control_status = UnitControlStatus.TIMEBASE
        # time base
        self._tod: TimebaseCall = NO_CALL
        self._tod_check_t = 0
        self._seen_revision = -1
        self._service_t = 0
        self._desired = PATTERN_FREE
        # steady operation
        self._program: CycleProgram | None = None
        self._plan: CoordPlan | None = None
        self._pos = 0
        self._length = 0
        self._op_index = 0
        self._next_op_t = -1
        #: Counts the database versions programs were built from (the MMU follows it).
        self.applied_revision = 0
        self._db_serial = 0
        self._applied_key = (-1, -1)
        # reported state
        self._pattern_status = PATTERN_NOT_USED
        self._local_free = LocalFreeStatus.OTHER
        self._flash_status = UnitFlashStatus.OTHER
        self._cycle_state = CoordCycleState.FREE
        self._transition_cycles = 0
        self._logged_values: tuple[int, int, int, tuple[tuple[int, int], ...]] | None = None
        # outputs
        self._greens = 0
        self._yellows = 0
        self._reds = 0
        self._walks = 0
        self._ped_clears = 0
        self._dont_walks = 0
        self._active_mask = 0
        self._ped_mask = 0
        self._veh_map: tuple[tuple[int, int], ...] = ()
        self._ped_map: tuple[tuple[int, int], ...] = ()
        self._flash_frame = ChannelFrame(greens=0, yellows=0, reds=0, flashing=True)
        self.frame = self._flash_frame
        self._cabinet_revision = -1

    # -- small helpers ---------------------------------------------------------

    def replace_database(self, db: TimingDatabase) -> None:
        """Run from another database from the next cycle boundary on."""
        self._db = db
        self._db_serial += 1
        self._seen_revision = -1
        self._cabinet_revision = -1

    @property
    def database(self) -> TimingDatabase:
        """The timing database the engine runs from."""
        return self._db

    @property
    def time_ds(self) -> int:
        """Simulated true time in tenths since power-up."""
        return self._t

    @property
    def mode(self) -> UnitMode:
        """The unit mode."""
        return self._mode

    @property
    def program(self) -> CycleProgram | None:
        """The cycle being played (None outside steady operation)."""
        return self._program

    @property
    def position_ds(self) -> int:
        """Position in the current cycle program, tenths."""
        return self._pos

    def clock_ds(self) -> int:
        """Controller clock now, tenths since the epoch (UTC)."""
        return self.clock.now_ms(self._t * 100) // 100

    def local_ds(self) -> int:
        """Controller local time now, tenths since the local epoch."""
        return self.clock.local_ms(self._t * 100) // 100

    def _log(self, code: int, param: int) -> None:
        self.log.append(self.clock_ds(), code, param)

    def _fire(self, trigger: ModeTrigger) -> None:
        key = (self._mode, trigger)
        target = MODE_TRANSITIONS.get(key)
        if target is None:
            raise EngineStateError(f"no transition from {self._mode.value} on {trigger.value}")
        self._mode = target
        if target is UnitMode.STARTUP_FLASH:
            self._enter_flash_display(UnitFlashStatus.STARTUP)
            self._timer = self._db.unit.startup_flash_s * 10
        elif target is UnitMode.FLASH:
            status = (
                UnitFlashStatus.AUTOMATIC
                if self._desired == PATTERN_FLASH
                else UnitFlashStatus.OTHER
            )
            self._enter_flash_display(status)
        elif target is UnitMode.MMU_FLASH:
            self._enter_flash_display(UnitFlashStatus.MMU)
        elif target is UnitMode.RED_REVERT:
            self._set_flash_status(UnitFlashStatus.NOT_FLASH)
            self._refresh_cabinet()
            self._all_red()
            self._timer = max(1, self._db.unit.red_revert_ds)
        else:
            self._set_flash_status(UnitFlashStatus.NOT_FLASH)
            self._start_program(entering_group=None)

    # -- power-up --------------------------------------------------------------

    def power_up(self) -> None:
        """Start as after a power interruption: start-up flash, then red revert, then run."""
        self._refresh_cabinet()
        self._mode = UnitMode.STARTUP_FLASH
        self._enter_flash_display(UnitFlashStatus.STARTUP)
        self._timer = self._db.unit.startup_flash_s * 10
        self._restart_backup_timer()
        self._service(self._t)

    # -- cabinet outputs -------------------------------------------------------

    def _refresh_cabinet(self) -> None:
        """Rebuild the channel map from the channel and phase tables."""
        db = self._db
        if self._cabinet_revision == db.revision:
            return
        self._cabinet_revision = db.revision
        active = 0
        peds = 0
        for phase in db.active_phases():
            bit = 1 << (phase - 1)
            active |= bit
            if db.phases[phase].has_ped:
                peds |= bit
        veh: list[tuple[int, int]] = []
        ped: list[tuple[int, int]] = []
        veh_channels = 0
        for channel, row in sorted(db.channels.items()):
            phase_bit = 1 << (row.source - 1) if row.source else 0
            if not phase_bit & active:
                continue
            if row.kind is ChannelType.VEHICLE:
                veh.append((1 << (channel - 1), phase_bit))
                veh_channels |= 1 << (channel - 1)
            elif row.kind is ChannelType.PEDESTRIAN:
                # A ped head on the street shows DON'T WALK even when its phase has no
                # walk programmed (the movement is then simply never served).
                ped.append((1 << (channel - 1), phase_bit))
                peds |= phase_bit
        self._active_mask = active
        self._ped_mask = peds
        self._veh_map = tuple(veh)
        self._ped_map = tuple(ped)
        self._flash_frame = ChannelFrame(greens=0, yellows=0, reds=veh_channels, flashing=True)

    def _update_frame(self) -> None:
        g = y = r = 0
        greens, yellows, reds = self._greens, self._yellows, self._reds
        for channel_bit, phase_bit in self._veh_map:
            if greens & phase_bit:
                g |= channel_bit
            elif yellows & phase_bit:
                y |= channel_bit
            elif reds & phase_bit:
                r |= channel_bit
        walks, clears, dont = self._walks, self._ped_clears, self._dont_walks
        for channel_bit, phase_bit in self._ped_map:
            if walks & phase_bit:
                g |= channel_bit
            elif clears & phase_bit:
                y |= channel_bit
            elif dont & phase_bit:
                r |= channel_bit
        self.frame = ChannelFrame(greens=g, yellows=y, reds=r)

    def _all_red(self) -> None:
        self._greens = self._yellows = 0
        self._reds = self._active_mask
        self._walks = self._ped_clears = 0
        self._dont_walks = self._ped_mask
        self._update_frame()

    def _enter_flash_display(self, status: UnitFlashStatus) -> None:
        self._program = None
        self._plan = None
        self._greens = self._yellows = self._walks = self._ped_clears = self._dont_walks = 0
        self._reds = self._active_mask
        self.frame = self._flash_frame
        self._set_flash_status(status)
        self._set_pattern_status(PATTERN_FLASH)
        self._set_cycle_state(CoordCycleState.FREE)
        self._transition_cycles = 0

    # -- reported state --------------------------------------------------------

    def _set_flash_status(self, status: UnitFlashStatus) -> None:
        if status != self._flash_status:
            self._flash_status = status
            self._log(EventCode.UNIT_FLASH_STATUS_CHANGE, int(status))

    def _set_pattern_status(self, status: int) -> None:
        if status != self._pattern_status:
            self._pattern_status = status
            self._log(EventCode.COORD_PATTERN_CHANGE, status)
            if status > 253:
                self._logged_values = None

    def _set_cycle_state(self, state: CoordCycleState) -> None:
        if state != self._cycle_state:
            self._cycle_state = state
            self._log(EventCode.COORD_CYCLE_STATE_CHANGE, int(state))

    def _set_control_status(self, status: UnitControlStatus) -> None:
        if status != self._control_status:
            self._control_status = status
            self._log(EventCode.UNIT_CONTROL_STATUS_CHANGE, int(status))

    def _log_pattern_values(self, plan: CoordPlan) -> None:
        """Events 132, 133 and 134-149 for a new pattern, or for values changed in place."""
        splits = tuple(sorted(plan.programmed_splits.items()))
        values = (plan.pattern, plan.cycle_ds, plan.offset_ds, splits)
        old = self._logged_values
        if old == values:
            return
        fresh = old is None or old[0] != plan.pattern
        if fresh or old is None or old[1] != plan.cycle_ds:
            self._log(EventCode.CYCLE_LENGTH_CHANGE, _seconds(plan.cycle_ds))
        if fresh or old is None or old[2] != plan.offset_ds:
            self._log(EventCode.OFFSET_CHANGE, _seconds(plan.offset_ds))
        old_splits = {} if fresh or old is None else dict(old[3])
        for phase, split in splits:
            if phase <= 16 and old_splits.get(phase) != split:
                self._log(split_change_code(phase), _seconds(split))
        self._logged_values = values

    # -- system control, backup timer, time base --------------------------------

    @property
    def backup_time_s(self) -> int:
        """``unitBackupTime`` in seconds (0 = off)."""
        return self._backup_time_s

    def set_backup_time(self, seconds: int) -> None:
        """Write ``unitBackupTime`` (0-65535 s); the timer restarts from the new value."""
        if not 0 <= seconds <= 65535:
            raise ValueError(f"unitBackupTime {seconds} is outside 0..65535")
        self._backup_time_s = seconds
        self._restart_backup_timer()

    def _restart_backup_timer(self) -> None:
        if self._backup_time_s:
            self._backup_deadline = self._t + self._backup_time_s * 10
        else:
            self._backup_deadline = _FAR
        self._service_t = min(self._service_t, self._backup_deadline)

    def system_control_write(self) -> None:
        """Any SET of a system-control object: restarts the backup timer, ends backup mode."""
        self._restart_backup_timer()
        if self._control_status is UnitControlStatus.BACKUP_MODE:
            self._set_control_status(
                UnitControlStatus.SYSTEM_CONTROL
                if self.system_pattern_control
                else UnitControlStatus.SYSTEM_STANDBY
            )

    def set_system_pattern(self, value: int) -> None:
        """Write ``systemPatternControl``: 0 standby, 1-253 pattern, 254 free, 255 flash."""
        if not 0 <= value <= 255:
            raise ValueError(f"systemPatternControl {value} is outside 0..255")
        self.system_pattern_control = value
        self.system_control_write()
        self._set_control_status(
            UnitControlStatus.SYSTEM_CONTROL if value else UnitControlStatus.SYSTEM_STANDBY
        )
        self._resolve_desired()

    def set_system_sync(self, value: int) -> None:
        """Write ``systemSyncControl``; only 255 (reference from the time base) is acted on."""
        if not 0 <= value <= 255:
            raise ValueError(f"systemSyncControl {value} is outside 0..255")
        self.system_sync_control = value
        self.system_control_write()

    @property
    def backup_remaining_ds(self) -> int:
        """Tenths left on the backup timer (0 when it is not running)."""
        return 0 if self._backup_deadline >= _FAR else max(0, self._backup_deadline - self._t)

    def _backup_expired(self) -> None:
        self._backup_deadline = _FAR
        self.system_pattern_control = 0
        self.system_sync_control = 0
        self._set_control_status(UnitControlStatus.BACKUP_MODE)
        self._resolve_desired()

    def set_clock(self, epoch_ms: int, *, true_ms: int | None = None) -> None:
        """Set the controller clock (``globalTime`` write) at ``true_ms``; logs event 181."""
        self.clock.set(self._t * 100 if true_ms is None else true_ms, epoch_ms)
        self._log(EventCode.CONTROLLER_CLOCK_UPDATED, 0)
        self._check_timebase()

    def set_drift(self, drift_ppb: int, *, true_ms: int | None = None) -> None:
        """Change the clock's drift rate from ``true_ms`` (default: this tick) on."""
        self.clock.set_drift(self._t * 100 if true_ms is None else true_ms, drift_ppb)
        self._schedule_timebase_check()

    def _schedule_timebase_check(self) -> None:
        local_ms = self.clock.local_ms(self._t * 100)
        next_minute = (local_ms // _MS_PER_MINUTE + 1) * _MS_PER_MINUTE
        true_ms = self.clock.true_ms_at_local(next_minute)
        self._tod_check_t = max(self._t + 1, -(-true_ms // 100))
        self._service_t = min(self._backup_deadline, self._tod_check_t)

    def _check_timebase(self) -> None:
        self._tod = timebase_call(self._db, self.clock.local_ms(self._t * 100))
        self._schedule_timebase_check()
        self._resolve_desired()

    def _service(self, t: int) -> None:
        """Rare per-tick work: backup expiry, time-base minute, database changes."""
        if self._seen_revision != self._db.revision:
            self._seen_revision = self._db.revision
            self._check_timebase()
        if t >= self._backup_deadline:
            self._backup_expired()
        if t >= self._tod_check_t:
            self._check_timebase()
        self._service_t = min(self._backup_deadline, self._tod_check_t)

    def _resolve_desired(self) -> None:
        value = self.system_pattern_control or self._tod.pattern
        if not self._db.active_phases():
            value = PATTERN_FLASH
        changed = value != self._desired
        self._desired = value
        if (
            changed
            and self._mode is UnitMode.STEADY
            and self._program is not None
            and self._program.pattern == PATTERN_FREE
            and 1 <= value <= 253
        ):
            self._local_free = LocalFreeStatus.TRANSITION_FREE

    @property
    def called_pattern(self) -> int:
        """The pattern value in force now (system command, else time base): 0-255."""
        return self._desired

    @property
    def timebase(self) -> TimebaseCall:
        """What the local time base calls now."""
        return self._tod

    # -- ticking ---------------------------------------------------------------

    def tick(self) -> None:
        """Advance one tick (0.1 s of simulated true time)."""
        t = self._t + 1
        self._t = t
        if t >= self._service_t or self._seen_revision != self._db.revision:
            self._service(t)
        if self._mode is UnitMode.STEADY:
            p = self._pos + 1
            self._pos = p
            if p == self._next_op_t:
                self._run_ops()
            if p == self._length:
                self._boundary()
        elif self._mode is not UnitMode.MMU_FLASH:
            self._tick_other()

    def _tick_other(self) -> None:
        mode = self._mode
        if mode is UnitMode.FLASH:
            if self._desired != PATTERN_FLASH:
                self._fire(ModeTrigger.FLASH_RELEASED)
            return
        if self._timer > 0:
            self._timer -= 1
        if mode is UnitMode.RED_REVERT and self._desired == PATTERN_FLASH:
            self._fire(ModeTrigger.FLASH_CALLED)
        elif self._timer == 0:
            if mode is UnitMode.STARTUP_FLASH and self._desired == PATTERN_FLASH:
                self._fire(ModeTrigger.FLASH_CALLED)
            else:
                self._fire(ModeTrigger.TIMER_EXPIRED)

    def _run_ops(self) -> None:
        program = self._program
        assert program is not None
        index = self._op_index
        coordinated = program.pattern != PATTERN_FREE
        time_ds = self.clock_ds()
        append = self.log.append
        for op, phase, coord in program.ops[index]:
            bit = 1 << (phase - 1)
            if op is Op.GREEN:
                self._greens |= bit
                self._reds &= ~bit
                append(time_ds, EventCode.PHASE_BEGIN_GREEN, phase)
                if coord and coordinated:
                    append(time_ds, EventCode.COORD_PHASE_BEGIN, phase)
            elif op is Op.WALK:
                self._walks |= bit
                self._dont_walks &= ~bit
                append(time_ds, EventCode.PED_BEGIN_WALK, phase)
            elif op is Op.PED_CLEAR:
                self._walks &= ~bit
                self._ped_clears |= bit
                append(time_ds, EventCode.PED_BEGIN_CLEARANCE, phase)
            elif op is Op.DONT_WALK:
                self._walks &= ~bit
                self._ped_clears &= ~bit
                self._dont_walks |= bit
                append(time_ds, EventCode.PED_BEGIN_DONT_WALK, phase)
            elif op is Op.YELLOW:
                self._greens &= ~bit
                self._yellows |= bit
                if coord and coordinated:
                    append(time_ds, EventCode.COORD_PHASE_YIELD_POINT, phase)
                append(time_ds, EventCode.PHASE_BEGIN_YELLOW, phase)
            elif op is Op.RED_CLEAR:
                self._yellows &= ~bit
                self._reds |= bit
                append(time_ds, EventCode.PHASE_END_YELLOW, phase)
                if program.slot(phase).red_ds > 0:
                    append(time_ds, EventCode.PHASE_BEGIN_RED_CLEAR, phase)
            else:  # Op.RED_END
                append(time_ds, EventCode.PHASE_END_RED_CLEAR, phase)
        index += 1
        self._op_index = index
        self._next_op_t = program.times[index] if index < len(program.times) else -1
        self._update_frame()

    def _boundary(self) -> None:
        """End of a cycle program: flash if called, else the next cycle."""
        program = self._program
        assert program is not None
        if self._desired == PATTERN_FLASH:
            self._fire(ModeTrigger.FLASH_CALLED)
            return
        self._start_program(entering_group=program.group_ids[0])

    def _start_program(self, *, entering_group: int | None) -> None:
        """Build and enter the next cycle; ``entering_group`` is the group served next."""
        db = self._db
        # Every cycle starts at a barrier, where every phase is red: re-read the channel
        # map (database changes apply here) and restate the all-red display.
        self._refresh_cabinet()
        self._all_red()
        desired = self._desired
        program: CycleProgram | str
        plan: CoordPlan | None = None
        if 1 <= desired <= 253:
            verdict = judge_pattern(db, desired)
            plan = verdict.plan
            if plan is not None:
                local = self.local_ds()
                ahead = ahead_ds(plan, local)
                state, amount = plan_correction(plan, ahead, db.unit.correction_mode, self.limits)
                program = plan.program(state, amount)
                free_status = LocalFreeStatus.NOT_FREE
            else:
                maximums = None
                if verdict.status is LocalFreeStatus.COORD_FREE:
                    row = db.patterns[desired]
                    maximums = {p: s.time_ds for (n, p), s in db.splits.items() if n == row.split}
                program = free_program(db, split_maximums=maximums)
                free_status = verdict.status
        else:
            program = free_program(db)
            free_status = (
                LocalFreeStatus.COMMAND_FREE if desired == PATTERN_FREE else LocalFreeStatus.OTHER
            )
        if isinstance(program, str):
            # Nothing can run safely: flash (reported as flash for "other" reasons).
            self._desired = PATTERN_FLASH
            self._fire(ModeTrigger.FLASH_CALLED)
            return
        start = 0
        if (
            entering_group is not None
            and program.group_ids[0] != entering_group
            and entering_group in program.group_ids
        ):
            # Continue the ring sequence: enter the new cycle at the group that is due
            # (a plain nominal cycle; correction starts at its coordinated barrier).
            start = program.group_starts[program.group_ids.index(entering_group)]
            if plan is not None:
                program = plan.nominal_program()
        self._program = program
        self._plan = plan
        self._length = program.length_ds
        key = (self._db_serial, db.revision)
        if key != self._applied_key:
            self._applied_key = key
            self.applied_revision += 1
        self._local_free = free_status
        if program.pattern != self._pattern_status:
            self._transition_cycles = 0  # the three-cycle budget starts with the new pattern
        self._set_pattern_status(program.pattern)
        if plan is not None:
            self._log_pattern_values(plan)
        self._set_cycle_state(program.cycle_state)
        if program.cycle_state in _TRANSITION_STATES:
            self._transition_cycles += 1
        else:
            self._transition_cycles = 0
        # Enter at ``start``: run the operations scheduled there.
        times = program.times
        index = 0
        while index < len(times) and times[index] < start:
            index += 1
        self._op_index = index
        self._next_op_t = times[index] if index < len(times) else -1
        self._pos = start
        if self._next_op_t == start:
            self._run_ops()

    # -- MMU -------------------------------------------------------------------

    def mmu_latched(self) -> None:
        """The MMU latched a fault: the cabinet is in flash; timing stops."""
        self._fire(ModeTrigger.MMU_LATCHED)

    def mmu_reset(self) -> None:
        """The MMU was reset: restart with start-up flash."""
        self._fire(ModeTrigger.MMU_RESET)

    # -- status ----------------------------------------------------------------

    @property
    def pattern_status(self) -> int:
        """``coordPatternStatus``."""
        return self._pattern_status

    @property
    def local_free_status(self) -> LocalFreeStatus:
        """``localFreeStatus``."""
        return self._local_free

    @property
    def flash_status(self) -> UnitFlashStatus:
        """``unitFlashStatus``."""
        return self._flash_status

    @property
    def control_status(self) -> UnitControlStatus:
        """``unitControlStatus``."""
        return self._control_status

    @property
    def cycle_state(self) -> CoordCycleState:
        """Coordination state of the running cycle."""
        return self._cycle_state

    @property
    def transition_cycles(self) -> int:
        """Consecutive cycles carrying a correction, this one included."""
        return self._transition_cycles

    def phase_bitmaps(self) -> PhaseBitmaps:
        """``phaseStatusGroup`` reds/yellows/greens/don't-walks/ped-clears/walks."""
        return PhaseBitmaps(
            reds=self._reds,
            yellows=self._yellows,
            greens=self._greens,
            dont_walks=self._dont_walks,
            ped_clears=self._ped_clears,
            walks=self._walks,
        )

    def local_cycle_ds(self) -> int:
        """Local cycle timer: tenths since local zero of the running coordinated cycle."""
        program = self._program
        if program is None or program.pattern == PATTERN_FREE or not program.length_ds:
            return 0
        return (self._pos - program.ref_ds) % program.length_ds

    def coord_sync_ds(self) -> int:
        """Time since the system reference point of the running pattern (time-base derived)."""
        plan = self._plan
        if plan is None:
            return 0
        time_of_day = self.local_ds() % 864_000
        return (time_of_day - plan.offset_ds) % plan.cycle_ds

    def alarms(self) -> tuple[int, int, int]:
        """(unitAlarmStatus1, unitAlarmStatus2, shortAlarmStatus)."""
        alarm1 = alarm2 = short = 0
        if self._plan is not None and self._mode is UnitMode.STEADY:
            alarm1 |= ALARM1_COORD_ACTIVE
        if self._local_free in _LOCAL_OVERRIDE:
            alarm1 |= ALARM1_LOCAL_FREE
            short |= SHORT_ALARM_LOCAL_OVERRIDE
        if self._mode is UnitMode.MMU_FLASH:
            alarm1 |= ALARM1_MMU_FLASH
            short |= SHORT_ALARM_TF_FLASH
        if self._cycle_state in _TRANSITION_STATES:
            alarm2 |= ALARM2_OFFSET_TRANSITIONING
        if self._transition_cycles > 3:
            short |= SHORT_ALARM_COORDINATION
        return alarm1, alarm2, short
