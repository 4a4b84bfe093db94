"""The NTCIP 1202 (actuated signal controller) and NTCIP 1201 (global) objects we use.

Data, not behaviour: each object is a :class:`MibObject` with its OID, syntax,
access, value range, units and index. The agent uses it to build requests and
check values before a SET; ``firmware_sim`` uses the same map to answer.

Roots: ``asc`` = ``1.3.6.1.4.1.1206.4.2.1`` (NTCIP 1202) and ``global`` =
``1.3.6.1.4.1.1206.4.2.6`` (NTCIP 1201). A scalar's instance is ``.0``
(``coordPatternStatus.0`` = ``1.3.6.1.4.1.1206.4.2.1.4.10.0``); a table
column's instance appends the row index, e.g. ``phaseYellowChange.2``::

    >>> instance_oid(PHASE_YELLOW_CHANGE, 2)
    (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 2, 1, 8, 2)
    >>> describe_oid((1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 4, 10, 0))
    'coordPatternStatus.0'

Sources. OIDs, syntax, ranges and access: the pysnmp-compiled 1202 MIB
(``Metrolla-Inc/ntcipy · py_mibs/ASC_MIB1.py``) and the official 1201 v02 MIB
text (``ite-org/NTCIP-1201 · NTCIP1201-Glo.mib``); they agree with
``shared/reference/ntcip-protocols.md`` §4 wherever it names an object. Units
come from that reference; a unit or bit meaning marked ``[R]`` is recalled
from the NTCIP 1202 v02 text and still has to be checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag
from types import MappingProxyType
from typing import Final

from agent.protocols.snmp import (
    Counter32,
    Integer,
    ObjectIdentifier,
    OctetString,
    Oid,
    SnmpValue,
    oid_to_str,
)

#: ``asc``: the NTCIP 1202 actuated signal controller node.
ASC: Final[Oid] = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
#: ``global``: the NTCIP 1201 global objects node.
GLOBAL: Final[Oid] = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 6)

#: Pattern number meaning "free" (no coordination) in coordPatternStatus and friends.
PATTERN_FREE: Final = 254
#: Pattern number meaning "flash".
PATTERN_FLASH: Final = 255
#: systemPatternControl value by which central hands control back (standby).
PATTERN_STANDBY: Final = 0

#: Phases per status/control group (one bit each).
PHASES_PER_GROUP: Final = 8


class Access(Enum):
    """What a manager may do with an object."""

    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


class Syntax(Enum):
    """The SNMP type an object's value has on the wire."""

    INTEGER = "INTEGER"
    OCTET_STRING = "OCTET STRING"
    COUNTER = "Counter"
    OBJECT_IDENTIFIER = "OBJECT IDENTIFIER"


class Units(Enum):
    """The unit of an integer value, as NTCIP defines it."""

    NONE = ""
    SECONDS = "s"
    TENTHS = "0.1 s"
    MINUTES = "min"
    #: One bit per phase, channel, month, day ... (bit meanings in the description).
    BITMAP = "bitmap"


class UnitControlStatus(IntEnum):
    """unitControlStatus: who is in control of the unit."""

    OTHER = 1
    SYSTEM_CONTROL = 2
    SYSTEM_STANDBY = 3
    BACKUP_MODE = 4
    MANUAL = 5
    TIMEBASE = 6
    INTERCONNECT = 7
    INTERCONNECT_BACKUP = 8


class UnitFlashStatus(IntEnum):
    """unitFlashStatus: whether, and why, the unit is in flash."""

    OTHER = 1
    NOT_FLASH = 2
    AUTOMATIC = 3
    LOCAL_MANUAL = 4
    FAULT_MONITOR = 5
    MMU = 6
    STARTUP = 7
    PREEMPT = 8


class LocalFreeStatus(IntEnum):
    """localFreeStatus: why coordination is (not) running."""

    OTHER = 1
    NOT_FREE = 2
    COMMAND_FREE = 3
    TRANSITION_FREE = 4
    INPUT_FREE = 5
    COORD_FREE = 6
    BAD_PLAN = 7
    BAD_CYCLE_TIME = 8
    SPLIT_OVERRUN = 9
    INVALID_OFFSET = 10
    FAILED = 11


class SplitMode(IntEnum):
    """splitMode: the recall or omit applied to a phase in a split."""

    OTHER = 1
    NONE = 2
    MINIMUM_VEHICLE_RECALL = 3
    MAXIMUM_VEHICLE_RECALL = 4
    PEDESTRIAN_RECALL = 5
    MAXIMUM_VEHICLE_AND_PEDESTRIAN_RECALL = 6
    PHASE_OMITTED = 7


class ChannelControlType(IntEnum):
    """channelControlType: what drives a load-switch channel."""

    OTHER = 1
    PHASE_VEHICLE = 2
    PHASE_PEDESTRIAN = 3
    OVERLAP = 4


class DaylightSaving(IntEnum):
    """globalDaylightSaving (NTCIP 1201 v02)."""

    OTHER = 1
    DISABLE_DST = 2
    ENABLE_US_DST = 3
    ENABLE_EUROPE_DST = 4
    ENABLE_AUSTRALIA_DST = 5
    ENABLE_TASMANIA_DST = 6
    ENABLE_EGYPT_DST = 7
    ENABLE_NAMIBIA_DST = 8
    ENABLE_IRAQ_DST = 9
    ENABLE_MONGOLIA_DST = 10
    ENABLE_IRAN_DST = 11
    ENABLE_FIJI_DST = 12
    ENABLE_NEW_ZEALAND_DST = 13
    ENABLE_TONGA_DST = 14
    ENABLE_CUBA_DST = 15
    ENABLE_BRAZIL_DST = 16
    ENABLE_CHILE_DST = 17
    ENABLE_FALKLANDS_DST = 18
    ENABLE_PARAGUAY_DST = 19


class DbCreateTransaction(IntEnum):
    """dbCreateTransaction (NTCIP 1201): database transaction mode."""

    NORMAL = 1
    TRANSACTION = 2
    VERIFY = 3
    DONE = 6


class DbVerifyStatus(IntEnum):
    """dbVerifyStatus (NTCIP 1201): result of the consistency check."""

    NOT_DONE = 1
    DONE_WITH_ERROR = 2
    DONE_WITH_NO_ERROR = 3


class PhaseOption(IntFlag):
    """phaseOptions bits. Bits 0, 6, 7, 8, 10 and 13 are in the reference; others are [R]."""

    ENABLED = 1 << 0
    AUTO_FLASH_ENTRY = 1 << 1  # [R]
    AUTO_FLASH_EXIT = 1 << 2  # [R]
    NON_ACTUATED_1 = 1 << 3  # [R]
    NON_ACTUATED_2 = 1 << 4  # [R]
    NON_LOCK_DETECTOR_MEMORY = 1 << 5  # [R]
    MIN_VEHICLE_RECALL = 1 << 6
    MAX_VEHICLE_RECALL = 1 << 7
    PED_RECALL = 1 << 8
    SOFT_VEHICLE_RECALL = 1 << 9  # [R]
    DUAL_ENTRY = 1 << 10
    SIMULTANEOUS_GAP_DISABLE = 1 << 11  # [R]
    GUARANTEED_PASSAGE = 1 << 12  # [R]
    ACTUATED_REST_IN_WALK = 1 << 13
    CONDITIONAL_SERVICE = 1 << 14  # [R]
    ADDED_INITIAL_CALCULATION = 1 << 15  # [R]


@dataclass(frozen=True, kw_only=True, slots=True)
class MibObject:
    """One scalar or table column of the MIB.

    For INTEGER and Counter objects ``minimum``/``maximum`` bound the value;
    for OCTET STRING objects they bound the length.
    """

    #: The MIB descriptor, e.g. ``"phaseYellowChange"``.
    name: str
    #: The object's OID, without instance.
    oid: Oid
    syntax: Syntax
    access: Access
    #: Names of the row index components; empty for a scalar (instance ``.0``).
    index: tuple[str, ...] = ()
    minimum: int = 0
    maximum: int = 255
    units: Units = Units.NONE
    #: For enumerated INTEGERs: the enumeration whose values are the only ones allowed.
    enumeration: type[IntEnum] | None = None
    #: One line for people: what the value means.
    description: str = ""

    @property
    def is_scalar(self) -> bool:
        """True for a scalar, whose only instance is ``.0``."""
        return not self.index

    @property
    def writable(self) -> bool:
        """True when a manager may SET the object."""
        return self.access is Access.READ_WRITE

    def instance(self, *index: int) -> Oid:
        """Return the OID of one instance: ``.0`` for a scalar, ``.<index...>`` for a column.

        Raises ``ValueError`` if the number of index values does not match
        :attr:`index`, or one is negative.
        """
        if self.is_scalar:
            if index:
                raise ValueError(f"{self.name} is a scalar; it takes no index")
            return (*self.oid, 0)
        if len(index) != len(self.index):
            expected = ", ".join(self.index)
            raise ValueError(f"{self.name} is indexed by ({expected}), got {len(index)} values")
        if any(value < 0 for value in index):
            raise ValueError(f"{self.name} index values cannot be negative")
        return (*self.oid, *index)

    def accepts(self, value: SnmpValue) -> bool:
        """Tell whether ``value`` has this object's type and lies in its range."""
        match self.syntax, value:
            case (Syntax.INTEGER, Integer(number)) | (Syntax.COUNTER, Counter32(number)):
                if self.enumeration is not None:
                    return number in self.enumeration._value2member_map_
                return self.minimum <= number <= self.maximum
            case (Syntax.OCTET_STRING, OctetString(octets)):
                return self.minimum <= len(octets) <= self.maximum
            case (Syntax.OBJECT_IDENTIFIER, ObjectIdentifier()):
                return True
        return False

    def value(self, raw: int | bytes | Oid) -> SnmpValue:
        """Wrap a plain Python value in this object's SNMP type, checking it.

        Raises ``ValueError`` if the result is not :meth:`accepts`-able.
        """
        wrapped: SnmpValue
        match self.syntax, raw:
            case Syntax.INTEGER, int():
                wrapped = Integer(raw)
            case Syntax.COUNTER, int():
                wrapped = Counter32(raw)
            case Syntax.OCTET_STRING, bytes():
                wrapped = OctetString(raw)
            case Syntax.OBJECT_IDENTIFIER, tuple():
                wrapped = ObjectIdentifier(raw)
            case _:
                raise ValueError(f"{self.name} takes {self.syntax.value}, not {raw!r}")
        if not self.accepts(wrapped):
            raise ValueError(f"{raw!r} is out of range for {self.name}")
        return wrapped


def _obj(
    name: str,
    oid: Oid,
    *,
    access: Access = Access.READ_ONLY,
    syntax: Syntax = Syntax.INTEGER,
    index: tuple[str, ...] = (),
    minimum: int = 0,
    maximum: int = 255,
    units: Units = Units.NONE,
    enumeration: type[IntEnum] | None = None,
    description: str = "",
) -> MibObject:
    if enumeration is not None:
        minimum, maximum = int(min(enumeration)), int(max(enumeration))
    return MibObject(
        name=name,
        oid=oid,
        syntax=syntax,
        access=access,
        index=index,
        minimum=minimum,
        maximum=maximum,
        units=units,
        enumeration=enumeration,
        description=description,
    )


_RW: Final = Access.READ_WRITE
_S: Final = Units.SECONDS
_T: Final = Units.TENTHS
_BITS: Final = Units.BITMAP

# ---------------------------------------------------------------- phase: asc.1

_PHASE: Final[Oid] = (*ASC, 1)
_PHASE_ENTRY: Final[Oid] = (*_PHASE, 2, 1)
_PH: Final = ("phaseNumber",)

MAX_PHASES: Final = _obj("maxPhases", (*_PHASE, 1), description="phases this unit supports")
PHASE_NUMBER: Final = _obj("phaseNumber", (*_PHASE_ENTRY, 1), index=_PH, minimum=1)
PHASE_WALK: Final = _obj("phaseWalk", (*_PHASE_ENTRY, 2), access=_RW, index=_PH, units=_S)
PHASE_PEDESTRIAN_CLEAR: Final = _obj(
    "phasePedestrianClear", (*_PHASE_ENTRY, 3), access=_RW, index=_PH, units=_S
)
PHASE_MINIMUM_GREEN: Final = _obj(
    "phaseMinimumGreen", (*_PHASE_ENTRY, 4), access=_RW, index=_PH, units=_S
)
PHASE_PASSAGE: Final = _obj("phasePassage", (*_PHASE_ENTRY, 5), access=_RW, index=_PH, units=_T)
PHASE_MAXIMUM_1: Final = _obj("phaseMaximum1", (*_PHASE_ENTRY, 6), access=_RW, index=_PH, units=_S)
PHASE_MAXIMUM_2: Final = _obj("phaseMaximum2", (*_PHASE_ENTRY, 7), access=_RW, index=_PH, units=_S)
PHASE_YELLOW_CHANGE: Final = _obj(
    "phaseYellowChange", (*_PHASE_ENTRY, 8), access=_RW, index=_PH, units=_T
)
PHASE_RED_CLEAR: Final = _obj("phaseRedClear", (*_PHASE_ENTRY, 9), access=_RW, index=_PH, units=_T)
PHASE_RED_REVERT: Final = _obj(
    "phaseRedRevert", (*_PHASE_ENTRY, 10), access=_RW, index=_PH, units=_T
)
PHASE_ADDED_INITIAL: Final = _obj(
    "phaseAddedInitial",
    (*_PHASE_ENTRY, 11),
    access=_RW,
    index=_PH,
    units=_T,  # [R] units
)
PHASE_MAXIMUM_INITIAL: Final = _obj(
    "phaseMaximumInitial",
    (*_PHASE_ENTRY, 12),
    access=_RW,
    index=_PH,
    units=_S,  # [R] units
)
PHASE_TIME_BEFORE_REDUCTION: Final = _obj(
    "phaseTimeBeforeReduction",
    (*_PHASE_ENTRY, 13),
    access=_RW,
    index=_PH,
    units=_S,  # [R] units
)
PHASE_CARS_BEFORE_REDUCTION: Final = _obj(
    "phaseCarsBeforeReduction", (*_PHASE_ENTRY, 14), access=_RW, index=_PH
)
PHASE_TIME_TO_REDUCE: Final = _obj(
    "phaseTimeToReduce",
    (*_PHASE_ENTRY, 15),
    access=_RW,
    index=_PH,
    units=_S,  # [R] units
)
PHASE_REDUCE_BY: Final = _obj(
    "phaseReduceBy",
    (*_PHASE_ENTRY, 16),
    access=_RW,
    index=_PH,
    units=_T,  # [R] units
)
PHASE_MINIMUM_GAP: Final = _obj(
    "phaseMinimumGap",
    (*_PHASE_ENTRY, 17),
    access=_RW,
    index=_PH,
    units=_T,  # [R] units
)
PHASE_DYNAMIC_MAX_LIMIT: Final = _obj(
    "phaseDynamicMaxLimit",
    (*_PHASE_ENTRY, 18),
    access=_RW,
    index=_PH,
    units=_S,  # [R] units
)
PHASE_DYNAMIC_MAX_STEP: Final = _obj(
    "phaseDynamicMaxStep",
    (*_PHASE_ENTRY, 19),
    access=_RW,
    index=_PH,
    units=_T,  # [R] units
)
PHASE_STARTUP: Final = _obj(
    "phaseStartup",
    (*_PHASE_ENTRY, 20),
    access=_RW,
    index=_PH,
    minimum=1,
    maximum=6,
    description="1 other, 2 phaseNotOn, 3 greenWalk, 4 greenNoWalk, 5 yellowChange, 6 redClear",
)
PHASE_OPTIONS: Final = _obj(
    "phaseOptions",
    (*_PHASE_ENTRY, 21),
    access=_RW,
    index=_PH,
    maximum=65535,
    units=_BITS,
    description="PhaseOption bits; bit 0 = phase enabled",
)
PHASE_RING: Final = _obj(
    "phaseRing", (*_PHASE_ENTRY, 22), access=_RW, index=_PH, description="0 = phase not used"
)
PHASE_CONCURRENCY: Final = _obj(
    "phaseConcurrency",
    (*_PHASE_ENTRY, 23),
    access=_RW,
    syntax=Syntax.OCTET_STRING,
    index=_PH,
    description="phases that may time with this one, one phase number per octet",
)
MAX_PHASE_GROUPS: Final = _obj("maxPhaseGroups", (*_PHASE, 3), minimum=1)

_PSG: Final[Oid] = (*_PHASE, 4, 1)
_GRP: Final = ("phaseStatusGroupNumber",)
PHASE_STATUS_GROUP_NUMBER: Final = _obj("phaseStatusGroupNumber", (*_PSG, 1), index=_GRP, minimum=1)
PHASE_STATUS_GROUP_REDS: Final = _obj("phaseStatusGroupReds", (*_PSG, 2), index=_GRP, units=_BITS)
PHASE_STATUS_GROUP_YELLOWS: Final = _obj(
    "phaseStatusGroupYellows", (*_PSG, 3), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_GREENS: Final = _obj(
    "phaseStatusGroupGreens", (*_PSG, 4), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_DONT_WALKS: Final = _obj(
    "phaseStatusGroupDontWalks", (*_PSG, 5), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_PED_CLEARS: Final = _obj(
    "phaseStatusGroupPedClears", (*_PSG, 6), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_WALKS: Final = _obj("phaseStatusGroupWalks", (*_PSG, 7), index=_GRP, units=_BITS)
PHASE_STATUS_GROUP_VEH_CALLS: Final = _obj(
    "phaseStatusGroupVehCalls", (*_PSG, 8), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_PED_CALLS: Final = _obj(
    "phaseStatusGroupPedCalls", (*_PSG, 9), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_PHASE_ONS: Final = _obj(
    "phaseStatusGroupPhaseOns", (*_PSG, 10), index=_GRP, units=_BITS
)
PHASE_STATUS_GROUP_PHASE_NEXTS: Final = _obj(
    "phaseStatusGroupPhaseNexts", (*_PSG, 11), index=_GRP, units=_BITS
)

_PCG: Final[Oid] = (*_PHASE, 5, 1)
_CGRP: Final = ("phaseControlGroupNumber",)
PHASE_CONTROL_GROUP_NUMBER: Final = _obj(
    "phaseControlGroupNumber", (*_PCG, 1), index=_CGRP, minimum=1
)
PHASE_CONTROL_GROUP_PHASE_OMIT: Final = _obj(
    "phaseControlGroupPhaseOmit", (*_PCG, 2), access=_RW, index=_CGRP, units=_BITS
)
PHASE_CONTROL_GROUP_PED_OMIT: Final = _obj(
    "phaseControlGroupPedOmit", (*_PCG, 3), access=_RW, index=_CGRP, units=_BITS
)
PHASE_CONTROL_GROUP_HOLD: Final = _obj(
    "phaseControlGroupHold", (*_PCG, 4), access=_RW, index=_CGRP, units=_BITS
)
PHASE_CONTROL_GROUP_FORCE_OFF: Final = _obj(
    "phaseControlGroupForceOff", (*_PCG, 5), access=_RW, index=_CGRP, units=_BITS
)
PHASE_CONTROL_GROUP_VEH_CALL: Final = _obj(
    "phaseControlGroupVehCall", (*_PCG, 6), access=_RW, index=_CGRP, units=_BITS
)
PHASE_CONTROL_GROUP_PED_CALL: Final = _obj(
    "phaseControlGroupPedCall", (*_PCG, 7), access=_RW, index=_CGRP, units=_BITS
)

# ----------------------------------------------------------------- unit: asc.3

_UNIT: Final[Oid] = (*ASC, 3)

UNIT_START_UP_FLASH: Final = _obj("unitStartUpFlash", (*_UNIT, 1), access=_RW, units=_S)
UNIT_AUTO_PEDESTRIAN_CLEAR: Final = _obj(
    "unitAutoPedestrianClear",
    (*_UNIT, 2),
    access=_RW,
    minimum=1,
    maximum=2,
    description="1 disable, 2 enable",
)
UNIT_BACKUP_TIME: Final = _obj(
    "unitBackupTime",
    (*_UNIT, 3),
    access=_RW,
    maximum=65535,
    units=_S,
    description="no SET to a system control object for this long -> backup mode; 0 disables",
)
UNIT_RED_REVERT: Final = _obj("unitRedRevert", (*_UNIT, 4), access=_RW, units=_T)
UNIT_CONTROL_STATUS: Final = _obj("unitControlStatus", (*_UNIT, 5), enumeration=UnitControlStatus)
UNIT_FLASH_STATUS: Final = _obj("unitFlashStatus", (*_UNIT, 6), enumeration=UnitFlashStatus)
UNIT_ALARM_STATUS_2: Final = _obj("unitAlarmStatus2", (*_UNIT, 7), units=_BITS)
UNIT_ALARM_STATUS_1: Final = _obj("unitAlarmStatus1", (*_UNIT, 8), units=_BITS)
SHORT_ALARM_STATUS: Final = _obj("shortAlarmStatus", (*_UNIT, 9), units=_BITS)
UNIT_CONTROL: Final = _obj(
    "unitControl",
    (*_UNIT, 10),
    access=_RW,
    units=_BITS,
    description="bit 2 ext min recall, 3/4 call to non-actuated 1/2, 5 walk rest modifier,"
    " 6 interconnect, 7 dimming",
)
SPECIAL_FUNCTION_OUTPUT_STATE: Final = _obj(
    "specialFunctionOutputState",
    (*_UNIT, 14, 1, 2),
    access=_RW,
    index=("specialFunctionOutputNumber",),
    maximum=1,
)

# ---------------------------------------------------------- coordination: asc.4

_COORD: Final[Oid] = (*ASC, 4)

COORD_OPERATIONAL_MODE: Final = _obj(
    "coordOperationalMode",
    (*_COORD, 1),
    access=_RW,
    description="0 automatic, 1-253 manual pattern, 254 manual free, 255 manual flash",
)
COORD_CORRECTION_MODE: Final = _obj(
    "coordCorrectionMode",
    (*_COORD, 2),
    access=_RW,
    minimum=1,
    maximum=4,
    description="1 other, 2 dwell, 3 shortway, 4 addOnly",
)
COORD_MAXIMUM_MODE: Final = _obj(
    "coordMaximumMode",
    (*_COORD, 3),
    access=_RW,
    minimum=1,
    maximum=4,
    description="1 other, 2 maximum1, 3 maximum2, 4 maxInhibit",
)
COORD_FORCE_MODE: Final = _obj(
    "coordForceMode",
    (*_COORD, 4),
    access=_RW,
    minimum=1,
    maximum=3,
    description="1 other, 2 floating, 3 fixed",
)
MAX_PATTERNS: Final = _obj("maxPatterns", (*_COORD, 5), maximum=253)
PATTERN_TABLE_TYPE: Final = _obj(
    "patternTableType",
    (*_COORD, 6),
    minimum=1,
    maximum=4,
    description="1 other, 2 patterns, 3 offset3, 4 offset5",
)

_PAT: Final[Oid] = (*_COORD, 7, 1)
_PN: Final = ("patternNumber",)
PATTERN_NUMBER: Final = _obj("patternNumber", (*_PAT, 1), index=_PN, minimum=1, maximum=253)
PATTERN_CYCLE_TIME: Final = _obj(
    "patternCycleTime",
    (*_PAT, 2),
    access=_RW,
    index=_PN,
    units=_S,
    description="0 = free (splits used as maximums)",
)
PATTERN_OFFSET_TIME: Final = _obj(
    "patternOffsetTime",
    (*_PAT, 3),
    access=_RW,
    index=_PN,
    units=_S,
    description="offset >= cycle -> free",
)
PATTERN_SPLIT_NUMBER: Final = _obj("patternSplitNumber", (*_PAT, 4), access=_RW, index=_PN)
PATTERN_SEQUENCE_NUMBER: Final = _obj("patternSequenceNumber", (*_PAT, 5), access=_RW, index=_PN)
MAX_SPLITS: Final = _obj("maxSplits", (*_COORD, 8))

_SPL: Final[Oid] = (*_COORD, 9, 1)
_SN: Final = ("splitNumber", "splitPhase")
SPLIT_NUMBER: Final = _obj("splitNumber", (*_SPL, 1), index=_SN, minimum=1)
SPLIT_PHASE: Final = _obj("splitPhase", (*_SPL, 2), index=_SN, minimum=1)
SPLIT_TIME: Final = _obj(
    "splitTime",
    (*_SPL, 3),
    access=_RW,
    index=_SN,
    units=_S,
    description="includes the phase's clearances; inadequate -> free",
)
SPLIT_MODE: Final = _obj("splitMode", (*_SPL, 4), access=_RW, index=_SN, enumeration=SplitMode)
SPLIT_COORD_PHASE: Final = _obj(
    "splitCoordPhase", (*_SPL, 5), access=_RW, index=_SN, maximum=1, description="1 = coord phase"
)
COORD_PATTERN_STATUS: Final = _obj(
    "coordPatternStatus",
    (*_COORD, 10),
    description="running pattern: 1-253, 254 free, 255 flash",
)
LOCAL_FREE_STATUS: Final = _obj("localFreeStatus", (*_COORD, 11), enumeration=LocalFreeStatus)
COORD_CYCLE_STATUS: Final = _obj(
    "coordCycleStatus", (*_COORD, 12), maximum=65535, units=_S, description="counts down"
)
COORD_SYNC_STATUS: Final = _obj("coordSyncStatus", (*_COORD, 13), maximum=65535, units=_S)
SYSTEM_PATTERN_CONTROL: Final = _obj(
    "systemPatternControl",
    (*_COORD, 14),
    access=_RW,
    description="0 standby, 1-253 pattern, 254 free, 255 flash; an invalid pattern -> free",
)
SYSTEM_SYNC_CONTROL: Final = _obj(
    "systemSyncControl",
    (*_COORD, 15),
    access=_RW,
    units=_S,
    description="0-254 s to the next system reference point, 255 = use the time base",
)

# ------------------------------------------------------------ time base: asc.5

_TBA: Final[Oid] = (*ASC, 5)
_ACT: Final = ("timebaseAscActionNumber",)

TIMEBASE_ASC_PATTERN_SYNC: Final = _obj(
    "timebaseAscPatternSync",
    (*_TBA, 1),
    access=_RW,
    maximum=65535,
    units=Units.MINUTES,
    description="minutes past midnight; 65535 = use the action time",
)
MAX_TIMEBASE_ASC_ACTIONS: Final = _obj("maxTimebaseAscActions", (*_TBA, 2))
TIMEBASE_ASC_ACTION_NUMBER: Final = _obj(
    "timebaseAscActionNumber", (*_TBA, 3, 1, 1), index=_ACT, minimum=1
)
TIMEBASE_ASC_PATTERN: Final = _obj(
    "timebaseAscPattern",
    (*_TBA, 3, 1, 2),
    access=_RW,
    index=_ACT,
    description="0 = release to a lower priority source",
)
TIMEBASE_ASC_AUXILLARY_FUNCTION: Final = _obj(
    "timebaseAscAuxillaryFunction", (*_TBA, 3, 1, 3), access=_RW, index=_ACT, units=_BITS
)
TIMEBASE_ASC_SPECIAL_FUNCTION: Final = _obj(
    "timebaseAscSpecialFunction", (*_TBA, 3, 1, 4), access=_RW, index=_ACT, units=_BITS
)
TIMEBASE_ASC_ACTION_STATUS: Final = _obj("timebaseAscActionStatus", (*_TBA, 4))

# -------------------------------------------------------------- preempt: asc.6

PREEMPT_CONTROL_STATE: Final = _obj(
    "preemptControlState",
    (*ASC, 6, 3, 1, 2),
    access=_RW,
    index=("preemptControlNumber",),
    maximum=1,
)

# ----------------------------------------------------- rings, sequences: asc.7

_RING: Final[Oid] = (*ASC, 7)
_SEQ: Final = ("sequenceNumber", "sequenceRingNumber")
_RCG: Final[Oid] = (*_RING, 5, 1)
_RGRP: Final = ("ringControlGroupNumber",)

MAX_RINGS: Final = _obj("maxRings", (*_RING, 1))
MAX_SEQUENCES: Final = _obj("maxSequences", (*_RING, 2))
SEQUENCE_NUMBER: Final = _obj("sequenceNumber", (*_RING, 3, 1, 1), index=_SEQ, minimum=1)
SEQUENCE_RING_NUMBER: Final = _obj("sequenceRingNumber", (*_RING, 3, 1, 2), index=_SEQ)
SEQUENCE_DATA: Final = _obj(
    "sequenceData",
    (*_RING, 3, 1, 3),
    access=_RW,
    syntax=Syntax.OCTET_STRING,
    index=_SEQ,
    description="phase numbers of the ring in service order, one per octet",
)
MAX_RING_CONTROL_GROUPS: Final = _obj("maxRingControlGroups", (*_RING, 4))
RING_CONTROL_GROUP_NUMBER: Final = _obj(
    "ringControlGroupNumber", (*_RCG, 1), index=_RGRP, minimum=1
)
RING_CONTROL_GROUP_STOP_TIME: Final = _obj(
    "ringControlGroupStopTime", (*_RCG, 2), access=_RW, index=_RGRP, units=_BITS
)
RING_CONTROL_GROUP_FORCE_OFF: Final = _obj(
    "ringControlGroupForceOff", (*_RCG, 3), access=_RW, index=_RGRP, units=_BITS
)
RING_CONTROL_GROUP_MAX2: Final = _obj(
    "ringControlGroupMax2", (*_RCG, 4), access=_RW, index=_RGRP, units=_BITS
)
RING_CONTROL_GROUP_MAX_INHIBIT: Final = _obj(
    "ringControlGroupMaxInhibit", (*_RCG, 5), access=_RW, index=_RGRP, units=_BITS
)
RING_CONTROL_GROUP_PED_RECYCLE: Final = _obj(
    "ringControlGroupPedRecycle", (*_RCG, 6), access=_RW, index=_RGRP, units=_BITS
)
RING_CONTROL_GROUP_RED_REST: Final = _obj(
    "ringControlGroupRedRest", (*_RCG, 7), access=_RW, index=_RGRP, units=_BITS
)
RING_CONTROL_GROUP_OMIT_RED_CLEAR: Final = _obj(
    "ringControlGroupOmitRedClear", (*_RCG, 8), access=_RW, index=_RGRP, units=_BITS
)

# -------------------------------------------------------------- channel: asc.8

_CHAN: Final[Oid] = (*ASC, 8)
_CH: Final = ("channelNumber",)
_CSG: Final = ("channelStatusGroupNumber",)

MAX_CHANNELS: Final = _obj("maxChannels", (*_CHAN, 1))
CHANNEL_NUMBER: Final = _obj("channelNumber", (*_CHAN, 2, 1, 1), index=_CH, minimum=1)
CHANNEL_CONTROL_SOURCE: Final = _obj(
    "channelControlSource",
    (*_CHAN, 2, 1, 2),
    access=_RW,
    index=_CH,
    description="the phase or overlap number driving the channel",
)
CHANNEL_CONTROL_TYPE: Final = _obj(
    "channelControlType", (*_CHAN, 2, 1, 3), access=_RW, index=_CH, enumeration=ChannelControlType
)
CHANNEL_FLASH: Final = _obj("channelFlash", (*_CHAN, 2, 1, 4), access=_RW, index=_CH, units=_BITS)
CHANNEL_DIM: Final = _obj("channelDim", (*_CHAN, 2, 1, 5), access=_RW, index=_CH, units=_BITS)
MAX_CHANNEL_STATUS_GROUPS: Final = _obj("maxChannelStatusGroups", (*_CHAN, 3))
CHANNEL_STATUS_GROUP_NUMBER: Final = _obj(
    "channelStatusGroupNumber", (*_CHAN, 4, 1, 1), index=_CSG, minimum=1
)
CHANNEL_STATUS_GROUP_REDS: Final = _obj(
    "channelStatusGroupReds", (*_CHAN, 4, 1, 2), index=_CSG, units=_BITS
)
CHANNEL_STATUS_GROUP_YELLOWS: Final = _obj(
    "channelStatusGroupYellows", (*_CHAN, 4, 1, 3), index=_CSG, units=_BITS
)
CHANNEL_STATUS_GROUP_GREENS: Final = _obj(
    "channelStatusGroupGreens", (*_CHAN, 4, 1, 4), index=_CSG, units=_BITS
)

# -------------------------------------------------------------- overlap: asc.9

_OVL: Final[Oid] = (*ASC, 9)
_OSG: Final = ("overlapStatusGroupNumber",)

MAX_OVERLAPS: Final = _obj("maxOverlaps", (*_OVL, 1))
MAX_OVERLAP_STATUS_GROUPS: Final = _obj("maxOverlapStatusGroups", (*_OVL, 3))
OVERLAP_STATUS_GROUP_NUMBER: Final = _obj(
    "overlapStatusGroupNumber", (*_OVL, 4, 1, 1), index=_OSG, minimum=1
)
OVERLAP_STATUS_GROUP_REDS: Final = _obj(
    "overlapStatusGroupReds", (*_OVL, 4, 1, 2), index=_OSG, units=_BITS
)
OVERLAP_STATUS_GROUP_YELLOWS: Final = _obj(
    "overlapStatusGroupYellows", (*_OVL, 4, 1, 3), index=_OSG, units=_BITS
)
OVERLAP_STATUS_GROUP_GREENS: Final = _obj(
    "overlapStatusGroupGreens", (*_OVL, 4, 1, 4), index=_OSG, units=_BITS
)

# ------------------------------------------------------ NTCIP 1201 global objects

_GCONF: Final[Oid] = (*GLOBAL, 1)
_GDB: Final[Oid] = (*GLOBAL, 2)
_GTIME: Final[Oid] = (*GLOBAL, 3)
_TIMEBASE: Final[Oid] = (*_GTIME, 3)
_TBS: Final[Oid] = (*_TIMEBASE, 2, 1)
_TBS_IDX: Final = ("timeBaseScheduleNumber",)
_DP: Final[Oid] = (*_TIMEBASE, 5, 1)
_DP_IDX: Final = ("dayPlanNumber", "dayPlanEventNumber")

GLOBAL_SET_ID_PARAMETER: Final = _obj(
    "globalSetIDParameter",
    (*_GCONF, 1),
    maximum=65535,
    description="changes whenever the static database changes",
)
DB_CREATE_TRANSACTION: Final = _obj(
    "dbCreateTransaction", (*_GDB, 1), access=_RW, enumeration=DbCreateTransaction
)
DB_VERIFY_STATUS: Final = _obj("dbVerifyStatus", (*_GDB, 6), enumeration=DbVerifyStatus)
DB_VERIFY_ERROR: Final = _obj("dbVerifyError", (*_GDB, 7), syntax=Syntax.OCTET_STRING)
GLOBAL_TIME: Final = _obj(
    "globalTime",
    (*_GTIME, 1),
    access=_RW,
    syntax=Syntax.COUNTER,
    maximum=2**32 - 1,
    units=_S,
    description="seconds since 1970-01-01 00:00:00 UTC",
)
GLOBAL_DAYLIGHT_SAVING: Final = _obj(
    "globalDaylightSaving", (*_GTIME, 2), access=_RW, enumeration=DaylightSaving
)
MAX_TIME_BASE_SCHEDULE_ENTRIES: Final = _obj(
    "maxTimeBaseScheduleEntries", (*_TIMEBASE, 1), minimum=1, maximum=65535
)
TIME_BASE_SCHEDULE_NUMBER: Final = _obj(
    "timeBaseScheduleNumber", (*_TBS, 1), index=_TBS_IDX, minimum=1, maximum=65535
)
TIME_BASE_SCHEDULE_MONTH: Final = _obj(
    "timeBaseScheduleMonth",
    (*_TBS, 2),
    access=_RW,
    index=_TBS_IDX,
    maximum=65535,
    units=_BITS,
    description="bit 1 = January .. bit 12 = December; 0 disables the row",
)
TIME_BASE_SCHEDULE_DAY: Final = _obj(
    "timeBaseScheduleDay",
    (*_TBS, 3),
    access=_RW,
    index=_TBS_IDX,
    units=_BITS,
    description="bit 1 = Sunday .. bit 7 = Saturday; 0 disables the row",
)
TIME_BASE_SCHEDULE_DATE: Final = _obj(
    "timeBaseScheduleDate",
    (*_TBS, 4),
    access=_RW,
    index=_TBS_IDX,
    maximum=2**32 - 1,
    units=_BITS,
    description="bit n = day n of the month; 0 disables the row",
)
TIME_BASE_SCHEDULE_DAY_PLAN: Final = _obj(
    "timeBaseScheduleDayPlan",
    (*_TBS, 5),
    access=_RW,
    index=_TBS_IDX,
    description="day plan number; 0 disables the row",
)
MAX_DAY_PLANS: Final = _obj("maxDayPlans", (*_TIMEBASE, 3), minimum=1)
MAX_DAY_PLAN_EVENTS: Final = _obj("maxDayPlanEvents", (*_TIMEBASE, 4), minimum=1)
DAY_PLAN_NUMBER: Final = _obj("dayPlanNumber", (*_DP, 1), index=_DP_IDX, minimum=1)
DAY_PLAN_EVENT_NUMBER: Final = _obj("dayPlanEventNumber", (*_DP, 2), index=_DP_IDX, minimum=1)
DAY_PLAN_HOUR: Final = _obj("dayPlanHour", (*_DP, 3), access=_RW, index=_DP_IDX, maximum=23)
DAY_PLAN_MINUTE: Final = _obj("dayPlanMinute", (*_DP, 4), access=_RW, index=_DP_IDX, maximum=59)
DAY_PLAN_ACTION_NUMBER_OID: Final = _obj(
    "dayPlanActionNumberOID",
    (*_DP, 5),
    access=_RW,
    syntax=Syntax.OBJECT_IDENTIFIER,
    index=_DP_IDX,
    description="full OID of the action, e.g. timebaseAscActionNumber.<n>",
)
DAY_PLAN_STATUS: Final = _obj(
    "dayPlanStatus", (*_TIMEBASE, 6), description="active day plan; 0 = none"
)
TIME_BASE_SCHEDULE_TABLE_STATUS: Final = _obj(
    "timeBaseScheduleTableStatus",
    (*_TIMEBASE, 7),
    maximum=65535,
    description="selected schedule entry; 0 = none",
)
CONTROLLER_STANDARD_TIME_ZONE: Final = _obj(
    "controllerStandardTimeZone",
    (*_GTIME, 5),
    access=_RW,
    minimum=-43200,
    maximum=43200,
    units=_S,
    description="offset of local standard time from UTC",
)
CONTROLLER_LOCAL_TIME: Final = _obj(
    "controllerLocalTime",
    (*_GTIME, 6),
    syntax=Syntax.COUNTER,
    maximum=2**32 - 1,
    units=_S,
    description="local time as seconds since 1970-01-01 00:00:00 local",
)

# ---------------------------------------------------------------------- indexes

#: Every object of this module, in OID order.
OBJECTS: Final[tuple[MibObject, ...]] = tuple(
    sorted(
        (value for value in tuple(globals().values()) if isinstance(value, MibObject)),
        key=lambda obj: obj.oid,
    )
)

#: Objects by MIB name.
BY_NAME: Final[Mapping[str, MibObject]] = MappingProxyType({obj.name: obj for obj in OBJECTS})
_BY_OID: Final[Mapping[Oid, MibObject]] = MappingProxyType({obj.oid: obj for obj in OBJECTS})

#: The "system control parameters" of NTCIP 1202: a SET to any of them restarts
#: the unitBackupTime timer, and backup mode resets them to zero.
SYSTEM_CONTROL_OBJECTS: Final[frozenset[MibObject]] = frozenset(
    {
        PHASE_CONTROL_GROUP_PHASE_OMIT,
        PHASE_CONTROL_GROUP_PED_OMIT,
        PHASE_CONTROL_GROUP_HOLD,
        PHASE_CONTROL_GROUP_FORCE_OFF,
        PHASE_CONTROL_GROUP_VEH_CALL,
        PHASE_CONTROL_GROUP_PED_CALL,
        SYSTEM_PATTERN_CONTROL,
        SYSTEM_SYNC_CONTROL,
        PREEMPT_CONTROL_STATE,
        RING_CONTROL_GROUP_STOP_TIME,
        RING_CONTROL_GROUP_FORCE_OFF,
        RING_CONTROL_GROUP_MAX2,
        RING_CONTROL_GROUP_MAX_INHIBIT,
        RING_CONTROL_GROUP_PED_RECYCLE,
        RING_CONTROL_GROUP_RED_REST,
        RING_CONTROL_GROUP_OMIT_RED_CLEAR,
        UNIT_CONTROL,
        SPECIAL_FUNCTION_OUTPUT_STATE,
    }
)


def instance_oid(obj: MibObject, *index: int) -> Oid:
    """Return the OID of one instance of ``obj`` (see :meth:`MibObject.instance`)."""
    return obj.instance(*index)


def lookup_oid(oid: Oid) -> tuple[MibObject, tuple[int, ...]] | None:
    """Find the object an instance OID belongs to.

    Returns the object and the instance suffix (``(0,)`` for a scalar, the row
    index for a column), or ``None`` if the OID is not under a known object.
    """
    for cut in range(len(oid) - 1, 0, -1):
        obj = _BY_OID.get(oid[:cut])
        if obj is not None:
            return obj, oid[cut:]
    return None


def describe_oid(oid: Oid) -> str:
    """Name an OID for a log line: ``"phaseYellowChange.2"``, or the dotted OID if unknown."""
    found = lookup_oid(oid)
    if found is None:
        return oid_to_str(oid)
    obj, suffix = found
    return f"{obj.name}.{oid_to_str(suffix)}"


def phase_group(phase: int) -> tuple[int, int]:
    """Return ``(group, bit mask)`` of a phase in the phase status/control group tables.

    Group 1 holds phases 1-8 with phase 1 in bit 0; group 2 holds 9-16, and so on.
    """
    if phase < 1:
        raise ValueError(f"phase numbers start at 1, got {phase}")
    group, bit = divmod(phase - 1, PHASES_PER_GROUP)
    return group + 1, 1 << bit


def phases_in_bitmap(group: int, bitmap: int) -> frozenset[int]:
    """Return the phase numbers whose bits are set in one group's 8-bit bitmap."""
    if group < 1:
        raise ValueError(f"group numbers start at 1, got {group}")
    if not 0 <= bitmap <= 0xFF:
        raise ValueError(f"a group bitmap is 8 bits, got {bitmap}")
    first = (group - 1) * PHASES_PER_GROUP + 1
    return frozenset(first + bit for bit in range(PHASES_PER_GROUP) if bitmap >> bit & 1)


def bitmap_of_phases(group: int, phases: Iterable[int]) -> int:
    """Return one group's 8-bit bitmap with the bits of ``phases`` set.

    Raises ``ValueError`` if a phase does not belong to ``group``.
    """
    bitmap = 0
    for phase in phases:
        phase_grp, mask = phase_group(phase)
        if phase_grp != group:
            raise ValueError(f"phase {phase} is in group {phase_grp}, not {group}")
        bitmap |= mask
    return bitmap
