"""The GB/T 20999-2017 driver: the :class:`Controller` interface for Chinese controllers.

Every write is confirmed by reading the same attributes back: a controller
that acknowledges a set but stores something else is caught here and
reported with ``E_CONTROLLER`` naming the object (``controller did not
confirm scheme.cycle[2]: wrote 90, reads back 100``), before anything above
believes the plan is in place. What the plan becomes in GB/T objects is
:mod:`agent.controller.gbt20999.mapping`.

**Link supervision.** :meth:`GbtController.open` sends a heartbeat (0x70) and
fails with :class:`LinkDown` when none comes back, so a dead controller is
never "connected"; while the agent polls, a heartbeat goes out every
``heartbeat_s`` in front of a status poll. The controller watches the same
traffic: a GB/T controller that hears nothing from its upper computer for its
own timeout gives up center control and runs its local schedule, logging a
communication fault. That is the backup layer of GB/T, and it is configured
at the controller, not over the protocol: GB/T 20999 has no object like
NTCIP's ``unitBackupTime``, so :meth:`set_backup_time` writes nothing (it
logs why, once).

**Control source.** GB/T has no ``unitControlStatus``. The center-control run
mode (17.1.4) says it: a forced mode is ``system``, the center day plan
(0x11) is ``standby``, none is ``timebase`` -- or ``backup`` when this
driver had set center control and the controller has dropped it by itself.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from agent.controller.gbt20999.client import GbtClient, GbtLink, GbtSettings
from agent.controller.gbt20999.mapping import (
    PED_PHASE_OFFSET,
    STATUS_PHASES,
    ControllerShape,
    SchemeLayout,
    StatusLayout,
    Write,
    center_control,
    decode_status,
    parse_status,
    plan_writes,
    same_value,
    show_value,
    stage_plan,
    status_addresses,
)
from agent.controller.interface import (
    ControllerIdentity,
    ControllerStatus,
    PatternCommand,
    PhaseConfig,
    WriteReport,
)
from agent.errors import ControllerError, ProtocolError
from agent.logs import get_logger
from agent.plan.model import Plan
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import Framing
from agent.protocols.gbt20999.objects import LightState, RunMode

log = get_logger("controller.gbt20999")

T = TypeVar("T")

#: How far the controller's clock may read from what was just written (s).
CLOCK_TOLERANCE_S: Final = 2
#: Stage rows whose elapsed time a poll reads when no scheme is known yet.
DEFAULT_POLLED_STAGES: Final = 16
#: Rows read to find what is in use, at most (a real controller has up to 128).
MAX_ROWS_READ: Final = 128


def _decode(attribute: gbt.Attribute[T], raw: bytes, element: int = 0) -> T:
    """A value the controller sent, or ControllerError naming the object."""
    try:
        return attribute.decode(raw)
    except ProtocolError as err:
        name = gbt.describe(attribute.at(element))
        raise ControllerError(f"controller sent {name} as {raw.hex(' ')}: {err}") from err


def _int(attribute: gbt.Attribute[int], raw: bytes, default: int = 0) -> int:
    try:
        return attribute.decode(raw)
    except ProtocolError:
        return default


class GbtController:
    """A GB/T 20999-2017 signal controller, reached over UDP, TCP or RS-232."""

    protocol = "gbt20999"

    def __init__(self, link: GbtLink, settings: GbtSettings, *, framing: Framing) -> None:
        self.link = link
        self.settings = settings
        self.client = GbtClient(link, settings, framing=framing)
        self._layout: StatusLayout | None = None
        self._schemes: dict[int, SchemeLayout] = {}
        self._last_heartbeat = 0.0
        #: Center control this driver confirmed (forced run mode), until released.
        self._set_mode = 0
        self._backup_logged = False

    @property
    def endpoint(self) -> str:
        description = self.link.description
        return description if description.startswith("gbt+") else f"gbt+{description}"

    @property
    def connected(self) -> bool:
        return self.link.is_open

    async def open(self) -> None:
        """Open the transport and exchange a heartbeat (LinkDown when none answers)."""
        if self.link.is_open:
            return
        await self.link.open()
        try:
            await self.client.heartbeat(poll=False)
        except ControllerError:
            await self.link.close()
            raise
        self._last_heartbeat = time.monotonic()
        self._layout = None
        self._schemes.clear()  # the controller may have been reprogrammed meanwhile

    async def close(self) -> None:
        await self.link.close()

    # -- reading ---------------------------------------------------------------------

    async def _status_layout(self) -> StatusLayout:
        """Light groups of every phase (4.2.2) and the stage rows to poll; read once per link."""
        if self._layout is not None:
            return self._layout
        counts = await self.client.query([gbt.PHASE_COUNT.at(), gbt.STAGE_COUNT.at()])
        phase_count = _int(gbt.PHASE_COUNT, counts[0])
        stage_count = _int(gbt.STAGE_COUNT, counts[1])
        vehicle_rows = [n for n in STATUS_PHASES if n <= phase_count]
        ped_rows = [n for n in STATUS_PHASES if n + PED_PHASE_OFFSET <= phase_count]
        addresses = [gbt.PHASE_LIGHT_GROUPS.at(n) for n in vehicle_rows] + [
            gbt.PHASE_LIGHT_GROUPS.at(n + PED_PHASE_OFFSET) for n in ped_rows
        ]
        values = await self.client.query(addresses)
        decoded = [_decode(gbt.PHASE_LIGHT_GROUPS, v) for v in values]
        vehicle = {
            n: tuple(sorted(groups))
            for n, groups in zip(vehicle_rows, decoded[: len(vehicle_rows)], strict=True)
            if groups
        }
        pedestrian = {
            n: tuple(sorted(groups))
            for n, groups in zip(ped_rows, decoded[len(vehicle_rows) :], strict=True)
            if groups
        }
        used = sorted({s for scheme in self._schemes.values() for s in scheme.chain})
        stages = tuple(used) or tuple(range(1, min(stage_count, DEFAULT_POLLED_STAGES) + 1))
        self._layout = StatusLayout(
            vehicle=vehicle,
            pedestrian=pedestrian,
            stages=stages,
            intersection=self.settings.intersection,
        )
        return self._layout

    async def _scheme(self, number: int) -> SchemeLayout | None:
        """The chain of a running scheme (cached; read once when first seen)."""
        if not 1 <= number <= 253:
            return None
        known = self._schemes.get(number)
        if known is not None:
            return known
        values = await self.client.query(
            [
                gbt.SCHEME_CYCLE.at(number),
                gbt.SCHEME_OFFSET.at(number),
                gbt.SCHEME_COORDINATED_STAGE.at(number),
                gbt.SCHEME_STAGE_CHAIN.at(number),
                gbt.SCHEME_STAGE_TIMES.at(number),
            ],
            poll=True,
        )
        chain = tuple(s for s in _decode(gbt.SCHEME_STAGE_CHAIN, values[3], number) if s)
        times = _decode(gbt.SCHEME_STAGE_TIMES, values[4], number)[: len(chain)]
        scheme = SchemeLayout(
            scheme=number,
            cycle_s=_int(gbt.SCHEME_CYCLE, values[0]),
            offset_s=_int(gbt.SCHEME_OFFSET, values[1]),
            coordinated=max(1, _int(gbt.SCHEME_COORDINATED_STAGE, values[2])),
            chain=chain,
            times=times,
        )
        self._schemes[number] = scheme
        return scheme

    async def read_status(self) -> ControllerStatus:
        """One status poll (one frame), preceded by a heartbeat every ``heartbeat_s``."""
        now = time.monotonic()
        if now - self._last_heartbeat >= self.settings.heartbeat_s:
            await self.client.heartbeat(poll=True)
            self._last_heartbeat = now
        layout = await self._status_layout()
        values = await self.client.query(status_addresses(layout), poll=True)
        received_at = time.monotonic()
        raw = parse_status(layout, values)
        cycle_time = 0
        scheme = await self._scheme(raw.scheme)
        if scheme is not None:
            position = scheme.cycle_time(raw.stage, raw.elapsed.get(raw.stage, 0))
            cycle_time = position or 0
            if any(s not in layout.stages for s in scheme.chain):
                self._layout = None  # poll the new scheme's stages from the next poll on
        dropped = self._set_mode not in (0, RunMode.CENTER_DAY_PLAN) and raw.center_mode == 0
        return decode_status(
            layout, raw, received_at=received_at, dropped=dropped, cycle_time_s=cycle_time
        )

    async def read_identity(self) -> ControllerIdentity:
        names: dict[str, gbt.Attribute[Any]] = {
            "manufacturer": gbt.DEVICE_MANUFACTURER,
            "serial": gbt.DEVICE_SERIAL,
            "version": gbt.DEVICE_VERSION,
            "lightGroups": gbt.LIGHT_GROUP_COUNT,
            "phases": gbt.PHASE_COUNT,
            "stages": gbt.STAGE_COUNT,
            "schemes": gbt.SCHEME_COUNT,
            "dayPlans": gbt.DAY_PLAN_COUNT,
            "scheduleEntries": gbt.SCHEDULE_COUNT,
            "intersections": gbt.INTERSECTION_COUNT,
        }
        values = await self.client.query([attribute.at() for attribute in names.values()])
        extra: dict[str, str] = {}
        for (name, attribute), raw in zip(names.items(), values, strict=True):
            if attribute is gbt.DEVICE_VERSION:
                extra[name] = f"hw {raw[:2].hex()} sw {raw[2:].hex()}" if len(raw) == 4 else ""
            else:
                extra[name] = show_value(attribute, raw)
        return ControllerIdentity(
            protocol=self.protocol,
            endpoint=self.endpoint,
            description=f"{extra['manufacturer']} {extra['serial']}".strip(),
            max_phases=min(int(extra["phases"]), 16) if extra["phases"].isdigit() else None,
            max_patterns=int(extra["schemes"]) if extra["schemes"].isdigit() else None,
            extra=extra,
        )

    async def read_phases(self) -> tuple[PhaseConfig, ...]:
        (count_raw,) = await self.client.query([gbt.PHASE_COUNT.at()])
        count = _int(gbt.PHASE_COUNT, count_raw)
        rows = [n for n in STATUS_PHASES if n <= count]
        lose = gbt.PHASE_TRANSITIONS[:6]
        columns = (gbt.PHASE_MIN_GREEN, gbt.PHASE_MAX_GREEN_1, *lose)
        addresses = [column.at(n) for n in rows for column in columns]
        wired = await self.client.query([gbt.PHASE_LIGHT_GROUPS.at(n) for n in rows])
        peds = [n for n in rows if n + PED_PHASE_OFFSET <= count]
        addresses += [
            column.at(n + PED_PHASE_OFFSET)
            for n in peds
            for column in (gbt.PHASE_MIN_GREEN, lose[0], lose[1])
        ]
        values = [int.from_bytes(raw, "big") for raw in await self.client.query(addresses)]
        per_vehicle = len(columns)
        walks: dict[int, tuple[int, int]] = {}
        base = len(rows) * per_vehicle
        for index, n in enumerate(peds):
            walk, colour, clear = values[base + 3 * index : base + 3 * index + 3]
            walks[n] = (walk, clear if colour == LightState.GREEN_FLASH else 0)
        phases = []
        for index, n in enumerate(rows):
            min_green, max_green, *steps = values[index * per_vehicle : (index + 1) * per_vehicle]
            pairs = list(zip(steps[0::2], steps[1::2], strict=True))
            yellow = sum(t for c, t in pairs if c == LightState.YELLOW)
            red = sum(t for c, t in pairs if c == LightState.RED)
            walk, clear = walks.get(n, (0, 0))
            phases.append(
                PhaseConfig(
                    phase=n,
                    # A phase with no light group drives nothing in this cabinet.
                    enabled=bool(_decode(gbt.PHASE_LIGHT_GROUPS, wired[index], n)),
                    ring=0,  # GB/T has no rings: stages say which phases run together
                    min_green_s=float(min_green),
                    yellow_s=float(yellow),
                    red_clear_s=float(red),
                    walk_s=float(walk),
                    ped_clear_s=float(clear),
                    max_green_s=float(max_green),
                )
            )
        return tuple(phases)

    async def _shape(self) -> ControllerShape:
        """Capacities and the rows in use now, so the write can clear stale ones."""
        counts = await self.client.query(
            [
                gbt.PHASE_COUNT.at(),
                gbt.STAGE_COUNT.at(),
                gbt.SCHEME_COUNT.at(),
                gbt.DAY_PLAN_COUNT.at(),
                gbt.SCHEDULE_COUNT.at(),
            ]
        )
        phases, stages, schemes, day_plans, schedule = (
            _int(gbt.PHASE_COUNT, raw) for raw in counts
        )
        stage_rows = range(1, min(stages, MAX_ROWS_READ) + 1)
        scheme_rows = range(1, min(schemes, MAX_ROWS_READ) + 1)
        schedule_rows = range(1, min(schedule, MAX_ROWS_READ) + 1)
        addresses = (
            [gbt.STAGE_PHASES.at(n) for n in stage_rows]
            + [gbt.SCHEME_CYCLE.at(n) for n in scheme_rows]
            + [gbt.SCHEME_STAGE_CHAIN.at(n) for n in scheme_rows]
            + [gbt.SCHEDULE_DAY_PLAN.at(n) for n in schedule_rows]
        )
        values = await self.client.query(addresses)
        at = 0
        live_stages = set()
        for n in stage_rows:
            if any(values[at]):
                live_stages.add(n)
            at += 1
        cycles = values[at : at + len(scheme_rows)]
        chains = values[at + len(scheme_rows) : at + 2 * len(scheme_rows)]
        at += 2 * len(scheme_rows)
        live_schemes = {
            n for n, c, ch in zip(scheme_rows, cycles, chains, strict=True) if any(c) or any(ch)
        }
        live_schedule = {n for n, v in zip(schedule_rows, values[at:], strict=True) if any(v)}
        return ControllerShape(
            phase_count=phases,
            stage_count=stages,
            scheme_count=schemes,
            day_plan_count=day_plans,
            schedule_count=schedule,
            intersection=self.settings.intersection,
            live_stages=frozenset(live_stages),
            live_schemes=frozenset(live_schemes),
            live_schedule=frozenset(live_schedule),
        )

    # -- writing ---------------------------------------------------------------------

    async def _write_and_verify(self, writes: Sequence[Write]) -> int:
        """Set every write, read every one back, and name the first that differs."""
        await self.client.set([(w.address, w.value) for w in writes])
        read = await self.client.query([w.address for w in writes])
        for write, value in zip(writes, read, strict=True):
            if not same_value(write.attribute, write.value, value):
                raise ControllerError(
                    f"controller did not confirm {write.name}: wrote "
                    f"{show_value(write.attribute, write.value)}, reads back "
                    f"{show_value(write.attribute, value)}"
                )
        return len(writes)

    async def write_plan(self, plan: Plan) -> WriteReport:
        started = time.monotonic()
        requests_before = self.client.counters.requests
        shape = await self._shape()
        writes = plan_writes(plan, shape)
        verified = await self._write_and_verify(writes)
        self._schemes = {scheme.scheme: scheme for scheme in stage_plan(plan).schemes}
        self._layout = None
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
        stage, scheme, mode = center_control(command)
        i = self.settings.intersection
        writes = [
            Write(gbt.CENTER_STAGE, i, gbt.CENTER_STAGE.encode(stage)),
            Write(gbt.CENTER_SCHEME, i, gbt.CENTER_SCHEME.encode(scheme)),
            Write(gbt.CENTER_RUN_MODE, i, gbt.CENTER_RUN_MODE.encode(mode)),
        ]
        await self._write_and_verify(writes)
        self._set_mode = mode

    async def set_backup_time(self, seconds: int) -> None:
        """No GB/T object holds a backup time: nothing is written (see the module docstring)."""
        if not self._backup_logged:
            self._backup_logged = True
            log.info(
                "gbt_backup_time_not_written",
                seconds=seconds,
                reason="GB/T 20999 has no backup-time object; the controller falls back to "
                "its local schedule when the upper computer falls silent for its own "
                "link timeout, set at the controller",
            )

    async def set_clock(self, epoch_s: int) -> None:
        when = gbt.CLOCK_UTC.encode(_utc(epoch_s))
        address = gbt.CLOCK_UTC.at()
        await self.client.set([(address, when)])
        (raw,) = await self.client.query([address])
        reads = _decode(gbt.CLOCK_UTC, raw)
        read_s = None if reads is None else _epoch(reads)
        if read_s is None or abs(read_s - epoch_s) > CLOCK_TOLERANCE_S:
            raise ControllerError(
                f"controller did not confirm {gbt.describe(address)}: wrote "
                f"{show_value(gbt.CLOCK_UTC, when)}, reads back {show_value(gbt.CLOCK_UTC, raw)}"
            )


def _utc(epoch_s: int) -> datetime:
    """The naive UTC time GB/T 13.1.10 holds."""
    return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None)


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())
