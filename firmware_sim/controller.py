"""The simulated controller unit: timing engine + cabinet outputs + MMU + clock + event log.

This is the object a protocol front end drives. It is pure and
deterministic: nothing happens between calls, and simulated time moves only
through :meth:`SimController.step` / :meth:`SimController.step_ms`, as fast
as the host allows (a simulated day takes seconds).

Time inside one step: the engine ticks every 100 ms of simulated true time;
the MMU samples the cabinet outputs every ``mmu_sample_ms`` (50 ms by
default, so twice per tick, outputs held in between). An injected fault
rewrites the outputs between the engine and the MMU at sample resolution.
When the MMU latches, the cabinet goes to all-red flash, the engine stops
timing (``unitFlashStatus`` = mmu, event 173) until :meth:`mmu_reset`, after
which the unit restarts with its start-up flash.

MMU programming: the channel enables and the permissive matrix are the
MMU's "program card", written from the database by the constructor,
:meth:`load_plan` (at the next cycle boundary, when every vehicle channel is
red) and :meth:`program_mmu`. The minimum greens the MMU checks follow the
phase table at each cycle boundary (``mmu_tracks_min_green``, default on),
so that a plan written object by object over SNMP does not trip the MMU;
turn it off to model a cabinet whose card was not updated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.plan.model import Plan
from firmware_sim.clock import ControllerClock, ppb_from_ppm, ppb_from_seconds_per_day
from firmware_sim.coordination import TransitionLimits
from firmware_sim.database import TimingDatabase, UnitParameters, database_from_plan
from firmware_sim.engine import TimingEngine
from firmware_sim.events import Event, EventLog
from firmware_sim.faults import FaultInjector, Injection
from firmware_sim.mmu import (
    FaultKind,
    Mmu,
    MmuTimings,
    min_greens_from_database,
    mmu_program_from_database,
)
from firmware_sim.status import ChannelFrame, UnitStatus

#: 2024-01-01 00:00:00 UTC, a Monday: the default power-up time of the clock.
DEFAULT_EPOCH_S = 1_704_067_200
_TICK_MS = 100


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Simulator settings that are not controller objects."""

    #: Controller clock at power-up, seconds since the epoch (UTC).
    epoch_s: int = DEFAULT_EPOCH_S
    #: Local time = UTC + this, for the time base (no daylight-saving rules).
    utc_offset_s: int = 0
    #: Clock drift in parts per million (positive: the clock runs fast).
    drift_ppm: float = 0.0
    #: MMU sample period; must divide 100 ms.
    mmu_sample_ms: int = 50
    event_capacity: int = 100_000
    transition: TransitionLimits = field(default_factory=TransitionLimits)
    mmu_timings: MmuTimings = field(default_factory=MmuTimings)
    mmu_tracks_min_green: bool = True
    #: Skip MMU samples that cannot change anything (same frame, no MMU timer running).
    #: The result is identical to evaluating every sample; False evaluates every one.
    mmu_skip_idle_samples: bool = True
    #: ``unitBackupTime`` at power-up, seconds (0 = off).
    backup_time_s: int = 0
    #: Unit parameters applied when a plan is loaded (plans do not carry them).
    unit: UnitParameters = field(default_factory=UnitParameters)

    def __post_init__(self) -> None:
        if self.mmu_sample_ms <= 0 or _TICK_MS % self.mmu_sample_ms:
            raise ValueError("mmu_sample_ms must divide 100 ms")


class SimController:
    """A simulated NTCIP controller unit in a cabinet with an MMU."""

    def __init__(
        self, database: TimingDatabase | None = None, *, config: SimConfig | None = None
    ) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self._db = database if database is not None else TimingDatabase()
        self.clock = ControllerClock(
            epoch_s=cfg.epoch_s,
            utc_offset_s=cfg.utc_offset_s,
            drift_ppb=ppb_from_ppm(cfg.drift_ppm),
        )
        self.events = EventLog(cfg.event_capacity)
        self.engine = TimingEngine(self._db, self.clock, self.events, limits=cfg.transition)
        self.engine.set_backup_time(cfg.backup_time_s)
        self.mmu = Mmu(mmu_program_from_database(self._db), cfg.mmu_timings)
        self._injector = FaultInjector()
        self._now_ms = 0
        self._next_sample_ms = 0
        self._next_tick_ms = _TICK_MS
        self._mmu_revision = self.engine.applied_revision
        self._mmu_card_pending = False
        self._last_frame: ChannelFrame | None = None
        self.engine.power_up()
        self._cabinet = self.engine.frame

    @classmethod
    def from_plan(cls, plan: Plan, *, config: SimConfig | None = None) -> SimController:
        """A controller whose database was loaded from ``plan``."""
        cfg = config or SimConfig()
        return cls(database_from_plan(plan, unit=cfg.unit), config=cfg)

    # -- database --------------------------------------------------------------

    @property
    def database(self) -> TimingDatabase:
        """The timing database; write objects through its ``set_*`` methods."""
        return self._db

    def load_plan(self, plan: Plan) -> TimingDatabase:
        """Replace the whole database with ``plan``'s tables (takes effect at the next boundary)."""
        db = database_from_plan(plan, unit=self._db.unit)
        self.load_database(db)
        return db

    def load_database(self, db: TimingDatabase) -> None:
        """Replace the whole database; the MMU card follows at the next boundary."""
        self._db = db
        self.engine.replace_database(db)
        self._mmu_card_pending = True

    def program_mmu(self) -> None:
        """Reprogram the MMU card from the current database now."""
        self._mmu_card_pending = False
        self.mmu.reprogram(mmu_program_from_database(self._db))

    def _sync_mmu(self) -> None:
        self._mmu_revision = self.engine.applied_revision
        if self._mmu_card_pending:
            self.program_mmu()
        elif self.config.mmu_tracks_min_green:
            self.mmu.update_min_greens(min_greens_from_database(self._db))

    # -- system control ----------------------------------------------------------

    def set_system_pattern(self, value: int) -> None:
        """Write ``systemPatternControl`` (restarts the backup timer)."""
        self.engine.set_system_pattern(value)

    @property
    def system_pattern_control(self) -> int:
        """``systemPatternControl`` as it reads back (0 after a backup expiry)."""
        return self.engine.system_pattern_control

    def set_system_sync(self, value: int) -> None:
        """Write ``systemSyncControl`` (restarts the backup timer)."""
        self.engine.set_system_sync(value)

    def system_control_write(self) -> None:
        """Any other system-control SET (phase/ring control groups, unitControl ...)."""
        self.engine.system_control_write()

    def set_backup_time(self, seconds: int) -> None:
        """Write ``unitBackupTime`` (0 = off); restarts the backup timer."""
        self.engine.set_backup_time(seconds)

    # -- clock -------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """Simulated true time since power-up, ms."""
        return self._now_ms

    @property
    def global_time(self) -> int:
        """``globalTime``: controller clock, whole seconds since the epoch (UTC)."""
        return self.clock.now_ms(self._now_ms) // 1000

    def set_clock(self, epoch_s: int) -> None:
        """Write ``globalTime`` (seconds since the epoch, UTC); logs event 181."""
        self.set_clock_ms(epoch_s * 1000)

    def set_clock_ms(self, epoch_ms: int) -> None:
        """Set the controller clock to a millisecond time; logs event 181."""
        self.engine.set_clock(epoch_ms, true_ms=self._now_ms)

    def set_drift(self, *, ppm: float | None = None, seconds_per_day: float | None = None) -> None:
        """Change the clock drift, in ppm or in seconds gained per day."""
        if (ppm is None) == (seconds_per_day is None):
            raise ValueError("give exactly one of ppm and seconds_per_day")
        ppb = (
            ppb_from_ppm(ppm) if ppm is not None else ppb_from_seconds_per_day(seconds_per_day or 0)
        )
        self.engine.set_drift(ppb, true_ms=self._now_ms)

    # -- running -----------------------------------------------------------------

    def step(self, seconds: float) -> None:
        """Advance simulated time by ``seconds`` (rounded to the millisecond)."""
        self.step_ms(round(seconds * 1000))

    def step_ms(self, ms: int) -> None:
        """Advance simulated time by ``ms`` milliseconds."""
        if ms < 0:
            raise ValueError("time only moves forward")
        target = self._now_ms + ms
        period = self.config.mmu_sample_ms
        after_target = target - target % period + period  # first sample instant past the target
        engine = self.engine
        mmu = self.mmu
        injector = self._injector
        tick = engine.tick
        skip_idle = self.config.mmu_skip_idle_samples
        s = self._next_sample_ms
        next_tick = self._next_tick_ms
        last = self._last_frame
        frame = self._cabinet
        while s <= target:
            if s == next_tick:
                tick()
                next_tick += _TICK_MS
                if engine.applied_revision != self._mmu_revision:
                    self._sync_mmu()
            frame = engine.frame
            if injector.active:
                frame = injector.apply(frame, s, mmu.program)
                last = None
            elif skip_idle and frame is last and not mmu.busy:
                # Outputs change only at engine ticks: every sample until the next tick
                # would see this same frame with no MMU timer running -- nothing to do.
                s = next_tick if next_tick < after_target else after_target
                continue
            if not mmu.latched and mmu.sample(frame, s) is not None:
                injector.clear()
                engine.mmu_latched()
                frame = engine.frame
            last = frame
            s += period
        self._next_sample_ms = s
        self._next_tick_ms = next_tick
        self._last_frame = last
        self._cabinet = frame
        self._now_ms = target

    # -- MMU and faults --------------------------------------------------------------

    def inject(
        self,
        kind: FaultKind,
        *,
        channel: int | None = None,
        duration_s: float = 2.0,
        value_s: float = 2.0,
    ) -> Injection:
        """Arm a fault on the cabinet outputs (see :mod:`firmware_sim.faults`)."""
        if channel is not None and not 1 <= channel <= 16:
            raise ValueError(f"channel {channel} is outside 1..16")
        injection = Injection(
            kind=kind,
            channel=channel,
            duration_ms=round(duration_s * 1000),
            value_ms=round(value_s * 1000),
            armed_ms=self._now_ms,
        )
        self._injector.add(injection)
        return injection

    def mmu_reset(self) -> bool:
        """Reset the MMU; if it was latched the unit restarts with start-up flash."""
        self._injector.clear()
        if not self.mmu.reset():
            return False
        self.engine.mmu_reset()
        return True

    # -- reading -------------------------------------------------------------------

    @property
    def cabinet_frame(self) -> ChannelFrame:
        """What the load switches show (faults included)."""
        return self._cabinet

    def events_since(self, seq: int, limit: int | None = None) -> tuple[Event, ...]:
        """Hi-res events after sequence number ``seq`` (see :meth:`EventLog.since`)."""
        return self.events.since(seq, limit)

    def status(self) -> UnitStatus:
        """A snapshot of everything a front end reports."""
        engine = self.engine
        program = engine.program
        alarm1, alarm2, short = engine.alarms()
        length = program.length_ds if program is not None and program.pattern <= 253 else 0
        local_cycle = engine.local_cycle_ds()
        clock_ms = self.clock.now_ms(self._now_ms)
        fault = self.mmu.fault
        return UnitStatus(
            sim_time_ms=self._now_ms,
            global_time=clock_ms // 1000,
            clock_ds=clock_ms // 100,
            utc_offset_s=self.clock.utc_offset_s,
            mode=engine.mode,
            phases=engine.phase_bitmaps(),
            channels=self._cabinet,
            coord_pattern_status=engine.pattern_status,
            local_free_status=engine.local_free_status,
            coord_cycle_status=(length - local_cycle) // 10 if length else 0,
            local_cycle_ds=local_cycle,
            cycle_length_ds=length,
            coord_sync_status=engine.coord_sync_ds() // 10,
            cycle_state=engine.cycle_state,
            transition_cycles=engine.transition_cycles,
            unit_flash_status=engine.flash_status,
            unit_control_status=engine.control_status,
            unit_alarm_status1=alarm1,
            unit_alarm_status2=alarm2,
            short_alarm_status=short,
            system_pattern_control=engine.system_pattern_control,
            unit_backup_time=engine.backup_time_s,
            backup_remaining_ds=engine.backup_remaining_ds,
            timebase_pattern=engine.timebase.pattern,
            day_plan=engine.timebase.day_plan,
            mmu_fault=None if fault is None else f"{fault.kind.value}: {fault.detail}",
        )
