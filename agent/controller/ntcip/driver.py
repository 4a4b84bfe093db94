"""The NTCIP 1202 driver: the :class:`Controller` interface over SNMPv1.

Every write is confirmed by reading the same objects back: a controller that
answers a SET with ``noError`` but stores something else (a clamped value, a
firmware that ignores the object) is caught here and reported with
``E_CONTROLLER`` naming the object, before anything above believes the plan is
in place.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from agent.controller.interface import (
    ControllerIdentity,
    ControllerStatus,
    PatternCommand,
    PhaseConfig,
    WriteReport,
)
from agent.controller.ntcip.mapping import (
    STATUS_OIDS,
    ControllerShape,
    Write,
    decode_status,
    pattern_value,
    plan_writes,
    same_value,
)
from agent.controller.ntcip.snmp_client import SnmpClient, SnmpSettings, show_value
from agent.controller.transport import MessageLink
from agent.errors import ControllerError
from agent.logs import get_logger
from agent.plan.model import Plan
from agent.protocols import ntcip1202 as mib
from agent.protocols.snmp import Counter32, Integer, Oid, SnmpValue

log = get_logger("controller.ntcip")

#: How far the controller's clock may read from what was just written (s).
CLOCK_TOLERANCE_S = 2


def _num(value: SnmpValue | None, default: int = 0) -> int:
    if isinstance(value, Integer | Counter32):
        return value.value
    return default


class NtcipController:
    """An NTCIP 1202 actuated signal controller, reached over SNMPv1."""

    protocol = "ntcip1202"

    def __init__(self, link: MessageLink, settings: SnmpSettings | None = None) -> None:
        self.link = link
        self.client = SnmpClient(link, settings)

    @property
    def endpoint(self) -> str:
        return self.link.description

    @property
    def connected(self) -> bool:
        return self.link.is_open

    async def open(self) -> None:
        await self.link.open()

    async def close(self) -> None:
        await self.link.close()

    # -- reading ---------------------------------------------------------------------

    async def read_status(self) -> ControllerStatus:
        values = await self.client.get(STATUS_OIDS, poll=True)
        return decode_status(values, received_at=time.monotonic())

    async def read_identity(self) -> ControllerIdentity:
        scalars = {
            "maxPhases": mib.MAX_PHASES,
            "maxPatterns": mib.MAX_PATTERNS,
            "maxRings": mib.MAX_RINGS,
            "maxSequences": mib.MAX_SEQUENCES,
            "maxDayPlans": mib.MAX_DAY_PLANS,
            "maxDayPlanEvents": mib.MAX_DAY_PLAN_EVENTS,
            "maxTimeBaseScheduleEntries": mib.MAX_TIME_BASE_SCHEDULE_ENTRIES,
        }
        sys_descr: Oid = (1, 3, 6, 1, 2, 1, 1, 1, 0)
        oids = [sys_descr, *(obj.instance() for obj in scalars.values())]
        found = await self.client.get_optional(oids)
        descr = found.get(sys_descr)
        description = ""
        if descr is not None and hasattr(descr, "value") and isinstance(descr.value, bytes):
            description = descr.value.decode("utf-8", "replace")
        extra = {
            name: str(_num(found[obj.instance()]))
            for name, obj in scalars.items()
            if obj.instance() in found
        }
        return ControllerIdentity(
            protocol=self.protocol,
            endpoint=self.endpoint,
            description=description,
            max_phases=int(extra["maxPhases"]) if "maxPhases" in extra else None,
            max_patterns=int(extra["maxPatterns"]) if "maxPatterns" in extra else None,
            extra=extra,
        )

    async def read_phases(self) -> tuple[PhaseConfig, ...]:
        identity = await self.read_identity()
        count = min(identity.max_phases or 8, 16)
        columns = (
            mib.PHASE_OPTIONS,
            mib.PHASE_RING,
            mib.PHASE_MINIMUM_GREEN,
            mib.PHASE_YELLOW_CHANGE,
            mib.PHASE_RED_CLEAR,
            mib.PHASE_WALK,
            mib.PHASE_PEDESTRIAN_CLEAR,
            mib.PHASE_MAXIMUM_1,
        )
        oids = [col.instance(n) for n in range(1, count + 1) for col in columns]
        values = await self.client.get(oids)
        phases = []
        for i, n in enumerate(range(1, count + 1)):
            row = [_num(v) for v in values[i * len(columns) : (i + 1) * len(columns)]]
            options, ring, min_green, yellow, red, walk, ped, max1 = row
            phases.append(
                PhaseConfig(
                    phase=n,
                    enabled=bool(options & int(mib.PhaseOption.ENABLED)) and ring > 0,
                    ring=ring,
                    min_green_s=float(min_green),
                    yellow_s=yellow / 10,
                    red_clear_s=red / 10,
                    walk_s=float(walk),
                    ped_clear_s=float(ped),
                    max_green_s=float(max1),
                )
            )
        return tuple(phases)

    async def _shape(self, plan: Plan) -> ControllerShape:
        """Capacities and the rows in use now, so the write can clear stale ones.

        Day plans the new plan does not name need no clearing: the schedule is
        rewritten and its other entries disabled, so nothing selects them.
        """
        identity = await self.read_identity()
        extra = identity.extra
        max_phases = min(int(extra.get("maxPhases", 8)), 16)
        max_patterns = min(int(extra.get("maxPatterns", 16)), 253)
        max_events = min(int(extra.get("maxDayPlanEvents", 16)), 48)
        max_entries = min(int(extra.get("maxTimeBaseScheduleEntries", 16)), 64)
        option_oids = [mib.PHASE_OPTIONS.instance(n) for n in range(1, max_phases + 1)]
        cycle_oids = [mib.PATTERN_CYCLE_TIME.instance(p) for p in range(1, max_patterns + 1)]
        month_oids = [mib.TIME_BASE_SCHEDULE_MONTH.instance(s) for s in range(1, max_entries + 1)]
        event_keys = [
            (day_plan.day_plan, e) for day_plan in plan.day_plans for e in range(1, max_events + 1)
        ]
        hour_oids = [mib.DAY_PLAN_ACTION_NUMBER_OID.instance(d, e) for d, e in event_keys]
        found = await self.client.get_optional(option_oids + cycle_oids + month_oids + hour_oids)
        return ControllerShape(
            max_phases=max_phases,
            max_patterns=max_patterns,
            max_day_plan_events=max_events,
            max_schedule_entries=max_entries,
            phase_options={n: _num(found.get(oid)) for n, oid in enumerate(option_oids, start=1)},
            live_patterns=frozenset(
                p for p, oid in enumerate(cycle_oids, start=1) if _num(found.get(oid)) > 0
            ),
            live_schedule=frozenset(
                s for s, oid in enumerate(month_oids, start=1) if _num(found.get(oid)) > 0
            ),
            live_events=frozenset(
                key
                for key, oid in zip(event_keys, hour_oids, strict=True)
                if oid in found and getattr(found[oid], "value", (0, 0)) not in ((0, 0), ())
            ),
        )

    # -- writing ---------------------------------------------------------------------

    async def _write_and_verify(self, writes: Sequence[Write]) -> int:
        """SET every write, read every one back, and name the first that differs."""
        await self.client.set([(w.oid, w.value) for w in writes])
        read = await self.client.get([w.oid for w in writes])
        for write, value in zip(writes, read, strict=True):
            if not same_value(write.value, value):
                raise ControllerError(
                    f"controller did not confirm {write.name}: wrote {show_value(write.value)}, "
                    f"reads back {show_value(value)}"
                )
        return len(writes)

    async def write_plan(self, plan: Plan) -> WriteReport:
        started = time.monotonic()
        requests_before = self.client.counters.requests
        shape = await self._shape(plan)
        writes = plan_writes(plan, shape)
        verified = await self._write_and_verify(writes)
        report = WriteReport(
            objects_written=len(writes),
            objects_verified=verified,
            requests=self.client.counters.requests - requests_before,
            duration_s=time.monotonic() - started,
        )
        log.info(
            "plan_written",
            version=plan.version,
            objects=report.objects_written,
            requests=report.requests,
            seconds=round(report.duration_s, 3),
        )
        return report

    async def command_pattern(self, command: PatternCommand) -> None:
        value = pattern_value(command)
        write = Write(mib.SYSTEM_PATTERN_CONTROL, (), mib.SYSTEM_PATTERN_CONTROL.value(value))
        await self._write_and_verify([write])

    async def set_backup_time(self, seconds: int) -> None:
        write = Write(mib.UNIT_BACKUP_TIME, (), mib.UNIT_BACKUP_TIME.value(seconds))
        await self._write_and_verify([write])

    async def set_clock(self, epoch_s: int) -> None:
        await self.client.set([(mib.GLOBAL_TIME.instance(), Counter32(epoch_s))])
        (value,) = await self.client.get([mib.GLOBAL_TIME.instance()])
        reads = _num(value, -1)
        if abs(reads - epoch_s) > CLOCK_TOLERANCE_S:
            raise ControllerError(
                f"controller did not confirm globalTime.0: wrote {epoch_s}, reads back {reads}"
            )
