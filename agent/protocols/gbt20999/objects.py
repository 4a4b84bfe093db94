"""The GB/T 20999-2017 data classes, objects and attributes, with their value encodings.

Data, not behaviour: each attribute is an :class:`Attribute` with its
address, names, whether it is a table column (element = 1-based row) or a
scalar (element 0), and an :class:`Encoding` that turns its value bytes into
a Python value and back. The driver uses it to build sets and read replies;
the simulator uses the same map to answer. :func:`lookup` finds the attribute
for any address; an address it does not know (a private class 0x80+, a newer
attribute) still travels as raw bytes in a
:class:`~agent.protocols.gbt20999.message.DataValue` -- nothing is dropped.

Sources: ``shared/reference/gbt20999.md`` §3 (classes 1-18, value sizes, the
enumerations) and the 177 replies of the captured device
(``shared/vectors/gbt20999/protocol_catalog.json``), which fix every value
size below where the device answered. The standard's own text was not
available.

Encodings, all big-endian:

- Integers: unsigned, 1, 2 or 4 bytes.
- Time: year (2 bytes), month, day, hour, minute, second.
- **Bitmaps and arrays are one big-endian number**: item 1 is the *last*
  byte (or bit 0) on the wire. The device's stage chain
  ``00*12 04 03 02 01`` is stages 1, 2, 3, 4; its stage times
  ``... 001F 001D 001F 001D`` are 29, 31, 29, 31 s (cycle 120 s); its phase 1
  conflicts ``... F2 F0`` are phases 5-8, 10, 13-16, the very phases whose
  green interval in ``7.2.2.1`` is non-zero.
- Strings: UTF-8 (the device's manufacturer reads 东土正创), padded with
  zeros to the attribute's size when sent; the device sends them unpadded,
  and trailing zeros are dropped when read.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from agent.errors import MessageError
from agent.protocols.gbt20999.message import Address

T = TypeVar("T")


class InvalidValue(MessageError):
    """Value bytes that do not fit the attribute's encoding (wrong size, bad date, bad text)."""


# ----------------------------------------------------------------- enumerations


class DataClass(enum.IntEnum):
    """数据类: the first byte of an address. 0x80 and above are private."""

    DEVICE_INFO = 0x01
    BASIC_INFO = 0x02
    LIGHT_GROUP = 0x03
    PHASE = 0x04
    DETECTOR = 0x05
    STAGE = 0x06
    PHASE_SAFETY = 0x07
    PRIORITY = 0x08
    SCHEME = 0x09
    TRANSITION = 0x0A
    DAY_PLAN = 0x0B
    SCHEDULE = 0x0C
    RUN_STATUS = 0x0D
    TRAFFIC_DATA = 0x0E
    ALARM = 0x0F
    FAULT = 0x10
    CENTER_CONTROL = 0x11
    COMMAND_PIPE = 0x12


class RunMode(enum.IntEnum):
    """运行模式: who runs the intersection and how (13.2.2, 17.1.4, day plan 11.2.5)."""

    CENTER = 0x10
    CENTER_DAY_PLAN = 0x11
    CENTER_OPTIMISED = 0x12
    CENTER_COORDINATED = 0x13
    CENTER_ADAPTIVE = 0x14
    CENTER_MANUAL = 0x15
    LOCAL = 0x20
    LOCAL_FIXED_CYCLE = 0x21
    LOCAL_ACTUATED = 0x22
    LOCAL_COORDINATED = 0x23
    LOCAL_ADAPTIVE = 0x24
    LOCAL_MANUAL = 0x25
    SPECIAL = 0x30
    YELLOW_FLASH = 0x31
    ALL_RED = 0x32
    LIGHTS_OFF = 0x33


class LightState(enum.IntEnum):
    """灯色: a light group's state (3.3.2) and the transition colours of a phase (4.2.3-26)."""

    OFF = 0x01
    RED = 0x10
    RED_FLASH = 0x11
    RED_FAST_FLASH = 0x12
    GREEN = 0x20
    GREEN_FLASH = 0x21
    GREEN_FAST_FLASH = 0x22
    YELLOW = 0x30
    YELLOW_FLASH = 0x31
    YELLOW_FAST_FLASH = 0x32
    RED_YELLOW = 0x40


class StageState(enum.IntEnum):
    """相位阶段状态 (6.3.2)."""

    IDLE = 0x10
    RUNNING = 0x20
    TRANSITION = 0x30


class StageType(enum.IntEnum):
    """How a stage appears in a scheme's stage chain (9.2.8)."""

    FIXED = 0x10
    ON_DEMAND = 0x20


class TransportType(enum.IntEnum):
    """The center's transport (2.3.3, 2.9.3)."""

    TCP = 1
    UDP = 2
    RS232 = 3


class AlarmType(enum.IntEnum):
    """报警类型 (15.2.2). The captured device also reports 0x80, which is none of these."""

    LAMP = 0x10
    DETECTOR = 0x30
    DEVICE = 0x40
    ENVIRONMENT = 0x60


class FaultAction(enum.IntEnum):
    """故障动作: what the controller did about a fault (16.2.4).

    The captured device also reports 0x07, which is none of these.
    """

    NONE = 0x00
    FLASH = 0x10
    LIGHTS_OFF = 0x20
    ALL_RED = 0x30
    LOCAL_FIXED_CYCLE = 0x40
    LOCAL_COORDINATED = 0x50
    LOCAL_ACTUATED = 0x60


class PipeCommand(enum.IntEnum):
    """命令管道 commands (18.1)."""

    CANCEL = 0
    FLASH = 1
    ALL_RED = 2
    LIGHTS_ON = 3
    LIGHTS_OFF = 4
    RESTART = 5


def fault_category(code: int) -> str:
    """The family of a fault type code (16.2.2), e.g. ``"communication"`` for 0x30."""
    if code in (0x10, 0x11):
        return "conflict"
    if 0x20 <= code <= 0x22:
        return "lamp"
    if code == 0x30:
        return "communication"
    if 0x40 <= code <= 0x47:
        return "hardware"
    if code == 0x50:
        return "configuration"
    if code == 0x70:
        return "response"
    return "unknown"


# ------------------------------------------------------------------- encodings


class Encoding(Generic[T]):
    """Turns an attribute's value bytes into a Python value and back."""

    #: Bytes of the value on the wire (the largest size for :class:`Text`).
    size: int

    def decode(self, raw: bytes) -> T:
        """The value held by ``raw``; raise :class:`InvalidValue` if it does not fit."""
        raise NotImplementedError

    def encode(self, value: T) -> bytes:
        """The bytes for ``value``; raise ``ValueError`` if it does not fit."""
        raise NotImplementedError

    def _exact(self, raw: bytes) -> bytes:
        if len(raw) != self.size:
            raise InvalidValue(f"value has {len(raw)} bytes, expected {self.size}")
        return raw


@dataclass(frozen=True, slots=True)
class UInt(Encoding[int]):
    """An unsigned big-endian integer of ``size`` bytes."""

    size: int = 1

    def decode(self, raw: bytes) -> int:
        """The integer."""
        return int.from_bytes(self._exact(raw), "big")

    def encode(self, value: int) -> bytes:
        """``size`` big-endian bytes."""
        if not 0 <= value < 1 << (8 * self.size):
            raise ValueError(f"{value} does not fit {self.size} unsigned bytes")
        return value.to_bytes(self.size, "big")


@dataclass(frozen=True, slots=True)
class Bitmap(Encoding[frozenset[int]]):
    """A set of item numbers, bit ``n`` standing for item ``n + first``.

    Phases, light groups, detectors: ``first=1`` (bit 0 = item 1). Weekdays:
    ``first=0`` (bit 0 = Sunday = 0). Months: ``first=0`` (bit 1 = January;
    bit 0 unused). Days of the month: ``first=1``.
    """

    size: int = 8
    first: int = 1

    def decode(self, raw: bytes) -> frozenset[int]:
        """The item numbers whose bit is set."""
        number = int.from_bytes(self._exact(raw), "big")
        return frozenset(bit + self.first for bit in range(8 * self.size) if number >> bit & 1)

    def encode(self, value: frozenset[int]) -> bytes:
        """One big-endian number with the items' bits set."""
        number = 0
        for item in value:
            bit = item - self.first
            if not 0 <= bit < 8 * self.size:
                raise ValueError(f"item {item} has no bit in a {self.size}-byte bitmap")
            number |= 1 << bit
        return number.to_bytes(self.size, "big")


@dataclass(frozen=True, slots=True)
class Chain(Encoding[tuple[int, ...]]):
    """An array of ``size // item_size`` unsigned items, item 1 last on the wire.

    Decodes to every item, item 1 first (unused ones are 0); encodes a
    shorter sequence by padding it with zeros.
    """

    size: int
    item_size: int = 1

    def decode(self, raw: bytes) -> tuple[int, ...]:
        """The items, item 1 first."""
        raw = self._exact(raw)
        step = self.item_size
        items = [int.from_bytes(raw[at : at + step], "big") for at in range(0, len(raw), step)]
        return tuple(reversed(items))

    def encode(self, value: tuple[int, ...]) -> bytes:
        """The items, item 1 last, padded with zeros."""
        capacity = self.size // self.item_size
        if len(value) > capacity:
            raise ValueError(f"{len(value)} items, at most {capacity} fit")
        limit = 1 << (8 * self.item_size)
        if any(not 0 <= item < limit for item in value):
            raise ValueError(f"an item does not fit {self.item_size} unsigned bytes")
        padded = [*value, *[0] * (capacity - len(value))]
        return b"".join(item.to_bytes(self.item_size, "big") for item in reversed(padded))


@dataclass(frozen=True, slots=True)
class PairChain(Encoding[tuple[tuple[int, int], ...]]):
    """An array of two-byte items ``(high, low)``, item 1 last on the wire.

    The day plan's start times are ``(hour, minute)`` pairs. Which of the two
    bytes is the hour comes from RVDataFusionServer's comment ("Byte_Array[1]
    hour, Byte_Array[0] minute"); the device's own day plan starts at 00:00
    only, so the capture cannot confirm it.
    """

    size: int

    def decode(self, raw: bytes) -> tuple[tuple[int, int], ...]:
        """The pairs, item 1 first."""
        raw = self._exact(raw)
        pairs = [(raw[at], raw[at + 1]) for at in range(0, len(raw), 2)]
        return tuple(reversed(pairs))

    def encode(self, value: tuple[tuple[int, int], ...]) -> bytes:
        """The pairs, item 1 last, padded with ``(0, 0)``."""
        capacity = self.size // 2
        if len(value) > capacity:
            raise ValueError(f"{len(value)} pairs, at most {capacity} fit")
        padded = [*value, *[(0, 0)] * (capacity - len(value))]
        return b"".join(bytes(pair) for pair in reversed(padded))


@dataclass(frozen=True, slots=True)
class Text(Encoding[str]):
    """A UTF-8 string of at most ``size`` bytes (zero-padded when sent)."""

    size: int

    def decode(self, raw: bytes) -> str:
        """The text without its trailing zeros."""
        if len(raw) > self.size:
            raise InvalidValue(f"text of {len(raw)} bytes, at most {self.size}")
        try:
            return raw.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidValue(f"text is not UTF-8: {err.reason}") from err

    def encode(self, value: str) -> bytes:
        """The UTF-8 bytes, padded with zeros to ``size``."""
        data = value.encode("utf-8")
        if len(data) > self.size:
            raise ValueError(f"text of {len(data)} UTF-8 bytes, at most {self.size} fit")
        return data.ljust(self.size, b"\x00")


@dataclass(frozen=True, slots=True)
class DateTime(Encoding["datetime | None"]):
    """Year (2 bytes), month, day, hour, minute, second; all zeros = not set (None)."""

    size: int = 7

    def decode(self, raw: bytes) -> datetime | None:
        """A naive datetime (the controller's UTC or local clock), or None when all zero."""
        raw = self._exact(raw)
        if not any(raw):
            return None
        try:
            return datetime(int.from_bytes(raw[:2], "big"), *raw[2:7])
        except ValueError as err:
            raise InvalidValue(f"{raw.hex(' ')} is not a date and time: {err}") from err

    def encode(self, value: datetime | None) -> bytes:
        """Seven bytes; None gives all zeros. Sub-second parts are dropped."""
        if value is None:
            return bytes(self.size)
        return value.year.to_bytes(2, "big") + bytes(
            [value.month, value.day, value.hour, value.minute, value.second]
        )


@dataclass(frozen=True, slots=True)
class IPv4(Encoding[ipaddress.IPv4Address]):
    """An IPv4 address, 4 bytes."""

    size: int = 4

    def decode(self, raw: bytes) -> ipaddress.IPv4Address:
        """The address."""
        return ipaddress.IPv4Address(self._exact(raw))

    def encode(self, value: ipaddress.IPv4Address) -> bytes:
        """Its 4 bytes."""
        return value.packed


@dataclass(frozen=True, slots=True)
class IPv6(Encoding[ipaddress.IPv6Address]):
    """An IPv6 address (or prefix mask), 16 bytes."""

    size: int = 16

    def decode(self, raw: bytes) -> ipaddress.IPv6Address:
        """The address."""
        return ipaddress.IPv6Address(self._exact(raw))

    def encode(self, value: ipaddress.IPv6Address) -> bytes:
        """Its 16 bytes."""
        return value.packed


@dataclass(frozen=True, slots=True)
class Raw(Encoding[bytes]):
    """Bytes whose inner layout the reference does not give; carried as they are."""

    size: int

    def decode(self, raw: bytes) -> bytes:
        """The bytes, checked for size."""
        return bytes(self._exact(raw))

    def encode(self, value: bytes) -> bytes:
        """The bytes, checked for size."""
        if len(value) != self.size:
            raise ValueError(f"value has {len(value)} bytes, expected {self.size}")
        return bytes(value)


# ------------------------------------------------------------------ attributes


@dataclass(frozen=True, kw_only=True, slots=True)
class Attribute(Generic[T]):
    """One attribute: its address (element 0), names, table-ness and encoding."""

    #: Class, object and attribute; the element is 0 here (see :meth:`at`).
    address: Address
    #: Dotted English name, e.g. ``scheme.cycle``.
    name: str
    #: The Chinese name used by the standard's implementations and the capture.
    label: str
    encoding: Encoding[T]
    #: True for a table column: the element is the 1-based row (phase, stage, ...).
    table: bool
    #: The enumeration the integer value takes, when there is one (values outside it occur).
    enum: type[enum.IntEnum] | None = None
    #: Unit of an integer value, e.g. ``"s"``.
    unit: str = ""

    @property
    def size(self) -> int:
        """Bytes of the value (the most, for text)."""
        return self.encoding.size

    def at(self, element: int = 0) -> Address:
        """The address of this attribute in row ``element`` (0 = all rows, or a scalar)."""
        if not self.table and element:
            raise ValueError(f"{self.name} is a scalar; it has no row {element}")
        return self.address.with_element(element)

    def decode(self, raw: bytes) -> T:
        """The value held by ``raw``; raise :class:`InvalidValue` if it does not fit."""
        try:
            return self.encoding.decode(raw)
        except InvalidValue as err:
            raise InvalidValue(f"{self.name}: {err.message}") from err

    def encode(self, value: T) -> bytes:
        """The bytes for ``value``; raise ``ValueError`` if it does not fit."""
        return self.encoding.encode(value)


_DEFINED: dict[tuple[int, int, int], Attribute[Any]] = {}


def _attribute(
    address: str,
    name: str,
    label: str,
    encoding: Encoding[T],
    *,
    table: bool,
    enum: type[enum.IntEnum] | None = None,
    unit: str = "",
) -> Attribute[T]:
    """Define an attribute and enter it in :data:`ATTRIBUTES`."""
    defined = Attribute(
        address=Address.parse(address),
        name=name,
        label=label,
        encoding=encoding,
        table=table,
        enum=enum,
        unit=unit,
    )
    key = (defined.address.data_class, defined.address.object, defined.address.attribute)
    if key in _DEFINED:
        raise ValueError(f"{name} and {_DEFINED[key].name} share the address {defined.address}")
    _DEFINED[key] = defined
    return defined


def _scalar(
    address: str,
    name: str,
    label: str,
    encoding: Encoding[T],
    *,
    enum: type[enum.IntEnum] | None = None,
    unit: str = "",
) -> Attribute[T]:
    return _attribute(address, name, label, encoding, table=False, enum=enum, unit=unit)


def _column(
    address: str,
    name: str,
    label: str,
    encoding: Encoding[T],
    *,
    enum: type[enum.IntEnum] | None = None,
    unit: str = "",
) -> Attribute[T]:
    return _attribute(address, name, label, encoding, table=True, enum=enum, unit=unit)


_U8: Final = UInt(1)
_U16: Final = UInt(2)
_U32: Final = UInt(4)
_SET64: Final = Bitmap(8)

# 1 设备信息 -- device info
DEVICE_MANUFACTURER: Final = _scalar("1.1", "device.manufacturer", "制造厂商", Text(128))
#: Hardware version (high 2 bytes) and software version (low 2 bytes).
DEVICE_VERSION: Final = _scalar("1.2", "device.version", "设备版本", Raw(4))
DEVICE_SERIAL: Final = _scalar("1.3", "device.serial", "设备编号", Text(16))
DEVICE_FACTORY_DATE: Final = _scalar("1.4", "device.factory_date", "出厂日期", DateTime())
DEVICE_CONFIG_DATE: Final = _scalar("1.5", "device.config_date", "配置日期", DateTime())

# 2 基础信息 -- basic info
SITE: Final = _scalar("2.1", "basic.site", "信号机安装路口", Text(128))
CONTROLLER_IPV4: Final = _scalar("2.2.1", "basic.controller_ipv4.ip", "信号机IPv4地址", IPv4())
CONTROLLER_IPV4_MASK: Final = _scalar(
    "2.2.2", "basic.controller_ipv4.mask", "信号机IPv4子网掩码", IPv4()
)
CONTROLLER_IPV4_GATEWAY: Final = _scalar(
    "2.2.3", "basic.controller_ipv4.gateway", "信号机IPv4网关", IPv4()
)
CENTER_IPV4: Final = _scalar("2.3.1", "basic.center_ipv4.ip", "上位机IPv4地址", IPv4())
CENTER_IPV4_PORT: Final = _scalar("2.3.2", "basic.center_ipv4.port", "上位机IPv4通信端口", _U16)
CENTER_IPV4_TRANSPORT: Final = _scalar(
    "2.3.3", "basic.center_ipv4.transport", "上位机IPv4通信类型", _U8, enum=TransportType
)
#: Encoding not given by the reference.
TIMEZONE: Final = _scalar("2.4", "basic.timezone", "信号机所属时区", Raw(4))
CONTROLLER_ID: Final = _scalar("2.5", "basic.controller_id", "信号机ID", _U32)
INTERSECTION_COUNT: Final = _scalar("2.6", "basic.intersection_count", "信号机控制路口数量", _U8)
GPS_CLOCK: Final = _scalar("2.7", "basic.gps_clock", "GPS时钟标志", _U8)
CONTROLLER_IPV6: Final = _scalar("2.8.1", "basic.controller_ipv6.ip", "信号机IPv6地址", IPv6())
CONTROLLER_IPV6_PREFIX: Final = _scalar(
    "2.8.2", "basic.controller_ipv6.prefix", "信号机IPv6子网前缀", IPv6()
)
CONTROLLER_IPV6_GATEWAY: Final = _scalar(
    "2.8.3", "basic.controller_ipv6.gateway", "信号机IPv6网关", IPv6()
)
CENTER_IPV6: Final = _scalar("2.9.1", "basic.center_ipv6.ip", "上位机IPv6地址", IPv6())
CENTER_IPV6_PORT: Final = _scalar("2.9.2", "basic.center_ipv6.port", "上位机IPv6通信端口", _U16)
CENTER_IPV6_TRANSPORT: Final = _scalar(
    "2.9.3", "basic.center_ipv6.transport", "上位机IPv6通信类型", _U8, enum=TransportType
)

# 3 灯组 -- light groups
LIGHT_GROUP_COUNT: Final = _scalar("3.1", "light_group.count", "实际灯组数", _U8)
LIGHT_GROUP_ID: Final = _column("3.2.1", "light_group.id", "灯组编号", _U8)
LIGHT_GROUP_TYPE: Final = _column("3.2.2", "light_group.type", "灯组类型", _U8)
LIGHT_GROUP_STATUS_ID: Final = _column("3.3.1", "light_group_status.id", "灯组编号", _U8)
LIGHT_GROUP_STATE: Final = _column(
    "3.3.2", "light_group_status.state", "灯组状态", _U8, enum=LightState
)
LIGHT_GROUP_CONTROL_ID: Final = _column("3.4.1", "light_group_control.id", "灯组编号", _U8)
LIGHT_GROUP_SHIELD: Final = _column("3.4.2", "light_group_control.shield", "灯组屏蔽", _U8)
LIGHT_GROUP_PROHIBIT: Final = _column("3.4.3", "light_group_control.prohibit", "灯组禁止", _U8)

# 4 相位 -- phases
PHASE_COUNT: Final = _scalar("4.1", "phase.count", "实际相位数", _U8)
PHASE_ID: Final = _column("4.2.1", "phase.id", "相位编号", _U8)
PHASE_LIGHT_GROUPS: Final = _column("4.2.2", "phase.light_groups", "相位的灯组", _SET64)


def _transitions() -> tuple[Attribute[int], ...]:
    """4.2.3-26: transition colour and time, three steps each for four transitions."""
    kinds = (
        ("lose", "失去路权过渡灯色"),
        ("gain", "获得路权过渡灯色"),
        ("power_on_gain", "开机获得路权过渡灯色"),
        ("power_on_lose", "开机失去路权过渡灯色"),
    )
    out = []
    attribute = 3
    for kind, label in kinds:
        for step in (1, 2, 3):
            out.append(
                _column(
                    f"4.2.{attribute}",
                    f"phase.{kind}_{step}.colour",
                    f"{label}{step}类型",
                    _U8,
                    enum=LightState,
                )
            )
            out.append(
                _column(
                    f"4.2.{attribute + 1}",
                    f"phase.{kind}_{step}.time",
                    f"{label}{step}时间",
                    _U8,
                    unit="s",
                )
            )
            attribute += 2
    return tuple(out)


PHASE_TRANSITIONS: Final = _transitions()
PHASE_MIN_GREEN: Final = _column("4.2.27", "phase.min_green", "最小绿时间", _U16, unit="s")
PHASE_MAX_GREEN_1: Final = _column("4.2.28", "phase.max_green_1", "最大绿时间1", _U16, unit="s")
PHASE_MAX_GREEN_2: Final = _column("4.2.29", "phase.max_green_2", "最大绿时间2", _U16, unit="s")
PHASE_EXTENSION: Final = _column("4.2.30", "phase.extension", "延长绿时间", _U16, unit="s")
PHASE_DEMAND: Final = _column("4.2.31", "phase.demand", "相位的需求", _SET64)
PHASE_CONTROL_ID: Final = _column("4.3.1", "phase_control.id", "相位编号", _U8)
PHASE_SHIELD: Final = _column("4.3.2", "phase_control.shield", "相位屏蔽", _U8)
PHASE_PROHIBIT: Final = _column("4.3.3", "phase_control.prohibit", "相位禁止", _U8)

# 5 检测器 -- detectors
DETECTOR_COUNT: Final = _scalar("5.1", "detector.count", "实际检测器数", _U8)
DETECTOR_ID: Final = _column("5.2.1", "detector.id", "检测器编号", _U8)
DETECTOR_TYPE: Final = _column("5.2.2", "detector.type", "检测器类型", _U8)
DETECTOR_FLOW_PERIOD: Final = _column(
    "5.2.3", "detector.flow_period", "流量采集周期", _U16, unit="s"
)
DETECTOR_OCCUPANCY_PERIOD: Final = _column(
    "5.2.4", "detector.occupancy_period", "占有率采集周期", _U16, unit="s"
)
DETECTOR_POSITION: Final = _column("5.2.5", "detector.position", "安装位置", Text(128))
DETECTOR_STATUS_ID: Final = _column("5.3.1", "detector_status.id", "检测器编号", _U8)
DETECTOR_PRESENCE: Final = _column("5.3.2", "detector_status.presence", "车辆存在状态", _U8)
DETECTOR_SPEED: Final = _column("5.3.3", "detector_status.speed", "车辆速度", _U8)
DETECTOR_VEHICLE_TYPE: Final = _column("5.3.4", "detector_status.vehicle_type", "车辆类型", _U8)
DETECTOR_PLATE: Final = _column("5.3.5", "detector_status.plate", "车辆号牌", Text(16))
DETECTOR_QUEUE: Final = _column("5.3.6", "detector_status.queue", "排队长度", _U16)

# 6 相位阶段 -- stages
STAGE_COUNT: Final = _scalar("6.1", "stage.count", "实际配置相位阶段数", _U8)
STAGE_ID: Final = _column("6.2.1", "stage.id", "相位阶段编号", _U8)
STAGE_PHASES: Final = _column("6.2.2", "stage.phases", "相位阶段的相位", _SET64)
#: Per phase (item n = phase n), seconds after the stage starts.
STAGE_LATE_START: Final = _column(
    "6.2.3", "stage.late_start", "阶段中相位晚起动时间", Chain(64), unit="s"
)
#: Per phase (item n = phase n), seconds before the stage ends.
STAGE_EARLY_END: Final = _column(
    "6.2.4", "stage.early_end", "阶段中相位早结束时间", Chain(64), unit="s"
)
STAGE_STATUS_ID: Final = _column("6.3.1", "stage_status.id", "相位阶段编号", _U8)
STAGE_STATE: Final = _column("6.3.2", "stage_status.state", "相位阶段状态", _U8, enum=StageState)
STAGE_ELAPSED: Final = _column("6.3.3", "stage_status.elapsed", "已经运行时间", _U16, unit="s")
STAGE_REMAINING: Final = _column("6.3.4", "stage_status.remaining", "剩余时间", _U16, unit="s")
STAGE_CONTROL_ID: Final = _column("6.4.1", "stage_control.id", "相位阶段编号", _U8)
STAGE_SOFT_DEMAND: Final = _column("6.4.2", "stage_control.soft_demand", "软件需求", _U8)
STAGE_SHIELD: Final = _column("6.4.3", "stage_control.shield", "屏蔽标志", _U8)
STAGE_PROHIBIT: Final = _column("6.4.4", "stage_control.prohibit", "禁止标志", _U8)

# 7 相位安全 -- phase safety (element = phase)
CONFLICT_PHASE: Final = _column("7.1.1", "conflict.phase", "相位编号", _U8)
CONFLICT_PHASES: Final = _column("7.1.2", "conflict.phases", "冲突相位序列", _SET64)
GREEN_INTERVAL_PHASE: Final = _column("7.2.1", "green_interval.phase", "相位编号", _U8)
#: Per other phase (item n = phase n); the unit is not given by the reference.
GREEN_INTERVAL_TIMES: Final = _column("7.2.2", "green_interval.times", "绿间隔时间序列", Chain(64))


def _priority(base: int, kind: str, label: str) -> tuple[Attribute[int], ...]:
    """8.1-3 (priority) and 8.4-6 (emergency) share one layout."""
    return (
        _scalar(f"8.{base}", f"{kind}.count", f"实际{label}数量", _U8),
        _column(f"8.{base + 1}.1", f"{kind}.id", f"{label}编号", _U8),
        _column(f"8.{base + 1}.2", f"{kind}.stage", f"{label}申请相位阶段", _U8),
        _column(f"8.{base + 1}.3", f"{kind}.level", f"{label}申请优先级", _U8),
        _column(f"8.{base + 1}.4", f"{kind}.shield", f"{label}屏蔽标志", _U8),
        _column(f"8.{base + 2}.1", f"{kind}_status.id", f"{label}编号", _U8),
        _column(f"8.{base + 2}.2", f"{kind}_status.requested", f"{label}申请状态", _U8),
        _column(f"8.{base + 2}.3", f"{kind}_status.executing", f"{label}执行状态", _U8),
    )


PRIORITY: Final = _priority(1, "priority", "优先")
EMERGENCY: Final = _priority(4, "emergency", "紧急")

# 9 方案 -- schemes (element = scheme)
SCHEME_COUNT: Final = _scalar("9.1", "scheme.count", "方案实际数", _U8)
SCHEME_ID: Final = _column("9.2.1", "scheme.id", "方案编号", _U8)
SCHEME_INTERSECTION: Final = _column("9.2.2", "scheme.intersection", "方案所属路口序号", _U8)
SCHEME_CYCLE: Final = _column("9.2.3", "scheme.cycle", "方案周期", _U32, unit="s")
#: The stage-chain position the offset refers to (协调序号).
SCHEME_COORDINATED_STAGE: Final = _column("9.2.4", "scheme.coordinated_stage", "方案协调序号", _U8)
SCHEME_OFFSET: Final = _column("9.2.5", "scheme.offset", "方案相位差时间", _U16, unit="s")
#: Stage numbers in running order (0 = unused).
SCHEME_STAGE_CHAIN: Final = _column("9.2.6", "scheme.stage_chain", "方案的相位阶段链", Chain(16))
#: Seconds of each stage-chain position.
SCHEME_STAGE_TIMES: Final = _column(
    "9.2.7", "scheme.stage_times", "方案的相位时间链", Chain(32, item_size=2), unit="s"
)
SCHEME_STAGE_TYPES: Final = _column(
    "9.2.8", "scheme.stage_types", "方案的相位阶段出现类型链", Chain(16), enum=StageType
)

# 10 过渡约束 -- transition constraints (element = target stage)
TRANSITION_STAGE: Final = _column("10.1.1", "transition.stage", "目标相位阶段编号", _U8)
#: Per source stage: 0 direct, N via stage N, 255 forbidden.
TRANSITION_CONSTRAINTS: Final = _column(
    "10.1.2", "transition.constraints", "相位阶段过渡约束值", Chain(64)
)

# 11 日计划 -- day plans (element = day plan)
DAY_PLAN_COUNT: Final = _scalar("11.1", "day_plan.count", "实际日计划数量", _U8)
DAY_PLAN_ID: Final = _column("11.2.1", "day_plan.id", "日计划编号", _U8)
DAY_PLAN_INTERSECTION: Final = _column("11.2.2", "day_plan.intersection", "日计划所属路口序号", _U8)
#: (hour, minute) at which each of up to 48 periods starts.
DAY_PLAN_START_TIMES: Final = _column(
    "11.2.3", "day_plan.start_times", "时段开始时间链", PairChain(96)
)
DAY_PLAN_SCHEMES: Final = _column("11.2.4", "day_plan.schemes", "时段执行方案链", Chain(48))
DAY_PLAN_RUN_MODES: Final = _column(
    "11.2.5", "day_plan.run_modes", "时段运行模式链", Chain(48), enum=RunMode
)
#: 11.2.6-13, 96 bytes each; inner layout not given by the reference.
DAY_PLAN_ACTION_CHAINS: Final = tuple(
    _column(f"11.2.{5 + n}", f"day_plan.action_chain_{n}", f"时段动作链{n}", Raw(96))
    for n in range(1, 9)
)

# 12 调度表 -- schedule (element = schedule entry)
SCHEDULE_COUNT: Final = _scalar("12.1", "schedule.count", "实际调度表数量", _U8)
SCHEDULE_ID: Final = _column("12.2.1", "schedule.id", "调度表编号", _U8)
SCHEDULE_INTERSECTION: Final = _column("12.2.2", "schedule.intersection", "调度表所属路口序号", _U8)
#: Lower numbers win.
SCHEDULE_PRIORITY: Final = _column("12.2.3", "schedule.priority", "调度表优先级", _U8)
#: 0 = Sunday, 1 = Monday, ... 6 = Saturday.
SCHEDULE_WEEKDAYS: Final = _column(
    "12.2.4", "schedule.weekdays", "调度表星期值", Bitmap(1, first=0)
)
#: 1 = January ... 12 = December.
SCHEDULE_MONTHS: Final = _column("12.2.5", "schedule.months", "调度表月份值", Bitmap(2, first=0))
#: 1 ... 31.
SCHEDULE_DAYS: Final = _column("12.2.6", "schedule.days", "调度表日期值", Bitmap(4, first=1))
SCHEDULE_DAY_PLAN: Final = _column("12.2.7", "schedule.day_plan", "调度表的日计划", _U8)

# 13 运行状态 -- run status
DETECTOR_FAULTS: Final = _scalar("13.1.1", "device_status.detectors", "检测器状态", _SET64)
#: Bit numbers (first=0) of faulty modules.
MODULE_FAULTS: Final = _scalar(
    "13.1.2", "device_status.modules", "设备模块状态", Bitmap(8, first=0)
)
DOOR: Final = _scalar("13.1.3", "device_status.door", "机柜门状态", _U8)
VOLTAGE: Final = _scalar("13.1.4", "device_status.voltage", "电压", _U16, unit="V")
CURRENT: Final = _scalar("13.1.5", "device_status.current", "电流", _U16, unit="0.1 A")
TEMPERATURE: Final = _scalar("13.1.6", "device_status.temperature", "温度", _U8)
HUMIDITY: Final = _scalar("13.1.7", "device_status.humidity", "湿度", _U8)
WATER: Final = _scalar("13.1.8", "device_status.water", "水浸", _U8)
SMOKE: Final = _scalar("13.1.9", "device_status.smoke", "烟雾", _U8)
CLOCK_UTC: Final = _scalar("13.1.10", "device_status.utc", "信号机标准时间", DateTime())
CLOCK_LOCAL: Final = _scalar("13.1.11", "device_status.local_time", "信号机本地时间", DateTime())
# element = intersection
RUN_INTERSECTION: Final = _column("13.2.1", "control_status.intersection", "路口序号", _U8)
RUN_MODE: Final = _column("13.2.2", "control_status.run_mode", "路口运行模式", _U8, enum=RunMode)
RUN_SCHEME: Final = _column("13.2.3", "control_status.scheme", "路口当前方案", _U8)
RUN_STAGE: Final = _column("13.2.4", "control_status.stage", "路口当前相位阶段", _U8)

# 14 交通数据 -- traffic data
PRESENCE: Final = _scalar("14.1", "traffic.presence", "实时数据", _SET64)
STATS_DETECTOR: Final = _column("14.2.1", "traffic_stats.detector", "检测器编号", _U8)
STATS_FLOW: Final = _column("14.2.2", "traffic_stats.flow", "检测器流量", _U16)
STATS_OCCUPANCY: Final = _column("14.2.3", "traffic_stats.occupancy", "检测器占有率", _U8)
STATS_SPEED: Final = _column("14.2.4", "traffic_stats.speed", "平均速度", _U16)

# 15 报警 -- alarms
ALARM_COUNT: Final = _scalar("15.1", "alarm.count", "当前报警数量", _U32)
ALARM_ID: Final = _column("15.2.1", "alarm.id", "报警编号", _U32)
ALARM_TYPE: Final = _column("15.2.2", "alarm.type", "报警类型", _U8, enum=AlarmType)
ALARM_VALUE: Final = _column("15.2.3", "alarm.value", "报警值", _U8)
ALARM_TIME: Final = _column("15.2.4", "alarm.time", "报警时间", DateTime())

# 16 故障 -- faults
FAULT_COUNT: Final = _scalar("16.1", "fault.count", "当前故障记录数", _U32)
FAULT_ID: Final = _column("16.2.1", "fault.id", "故障编号", _U32)
#: See :func:`fault_category`.
FAULT_TYPE: Final = _column("16.2.2", "fault.type", "故障类型", _U8)
FAULT_TIME: Final = _column("16.2.3", "fault.time", "故障事件发生时间", DateTime())
FAULT_ACTION: Final = _column("16.2.4", "fault.action", "故障动作参数", _U8, enum=FaultAction)

# 17 中心控制 -- center control: one table, element = intersection
CENTER_INTERSECTION: Final = _column("17.1.1", "center_control.intersection", "路口ID", _U8)
CENTER_STAGE: Final = _column("17.1.2", "center_control.stage", "指定相位阶段", _U8)
CENTER_SCHEME: Final = _column("17.1.3", "center_control.scheme", "指定方案", _U8)
CENTER_RUN_MODE: Final = _column(
    "17.1.4", "center_control.run_mode", "指定运行模式", _U8, enum=RunMode
)

# 18 命令管道 -- command pipe; inner layout of the 16 bytes not given by the reference.
PIPE_COMMAND: Final = _scalar("18.1", "command_pipe.command", "命令值", Raw(16))


#: Every attribute above, by (class, object, attribute).
ATTRIBUTES: Final[Mapping[tuple[int, int, int], Attribute[Any]]] = MappingProxyType(_DEFINED)


def lookup(address: Address) -> Attribute[Any] | None:
    """The attribute at ``address``, or None for one this catalog does not know.

    A table column matches any element (row); a scalar matches element 0
    only. Wildcard addresses (attribute 0 of a table object) match nothing.
    """
    attribute = ATTRIBUTES.get((address.data_class, address.object, address.attribute))
    if attribute is None or (not attribute.table and address.element):
        return None
    return attribute


def describe(address: Address) -> str:
    """A name for a log line: ``scheme.cycle[1]``, ``device.manufacturer``, or the dotted form."""
    attribute = lookup(address)
    if attribute is None:
        return f"{address} (unknown)"
    if attribute.table:
        return f"{attribute.name}[{address.element}]"
    return attribute.name
