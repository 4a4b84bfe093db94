"""Time-of-day (time base) evaluation: which pattern the local schedule calls now.

NTCIP 1201 time base: the schedule table picks a day plan for today (the
first row, in entry order, whose month, day-of-week and date masks all
include today); the day plan's events say from which local time which
action runs; the action says which pattern value (1-253, 254 free,
255 flash; 0 = none). The event in force is the last one at or before the
current minute; before the day's first event, the previous day's last event
is still in force (a plan that says "22:00 free" keeps the night free until
the next morning's first event).

Pure functions of the database and a local time; no clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from firmware_sim.database import ACTION_NONE, TimingDatabase

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MS_PER_DAY = 86_400_000
MS_PER_MINUTE = 60_000


@dataclass(frozen=True, kw_only=True, slots=True)
class TimebaseCall:
    """What the time base calls: the day plan in force, the action and its pattern value."""

    day_plan: int
    action: int
    pattern: int


NO_CALL = TimebaseCall(day_plan=0, action=0, pattern=ACTION_NONE)


def _day_plan_for(db: TimingDatabase, day: date) -> int:
    dow_bit = 1 << (day.isoweekday() % 7 + 1)  # NTCIP: bit 1 = Sunday ... bit 7 = Saturday
    month_bit = 1 << day.month
    date_bit = 1 << day.day
    for entry in sorted(db.schedule):
        row = db.schedule[entry]
        if row.days & dow_bit and row.months & month_bit and row.dates & date_bit:
            return row.day_plan
    return 0


def timebase_call(db: TimingDatabase, local_ms: int) -> TimebaseCall:
    """The call of the time base at local time ``local_ms`` (ms since the local epoch)."""
    day_index, ms_of_day = divmod(local_ms, MS_PER_DAY)
    today = date.fromordinal(_EPOCH_ORDINAL + day_index)
    minute = ms_of_day // MS_PER_MINUTE
    plan_today = _day_plan_for(db, today)
    events = [e for e in db.day_plan(plan_today) if e.minute_of_day <= minute]
    if events:
        event = events[-1]
        day_plan = plan_today
    else:
        # Before today's first event the previous day's last event is in force.
        day_plan = _day_plan_for(db, today - timedelta(days=1))
        previous = db.day_plan(day_plan)
        if not previous:
            return TimebaseCall(day_plan=plan_today, action=0, pattern=ACTION_NONE)
        event = previous[-1]
        day_plan = plan_today or day_plan
    action = db.actions.get(event.action)
    pattern = action.pattern if action is not None else ACTION_NONE
    return TimebaseCall(day_plan=day_plan, action=event.action, pattern=pattern)
