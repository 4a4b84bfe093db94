"""The simulator's GB/T 20999-2017 front end: frames in, replies out, on the same controller.

Sans-I/O: :meth:`GbtResponder.respond` takes one decoded message and returns
the reply (or ``None``); :meth:`GbtResponder.handle` does the same for the
bytes of one frame (a UDP datagram); :class:`GbtStreamSession` feeds a byte
stream (TCP, the pty) through a
:class:`~agent.protocols.gbt20999.message.MessageDecoder` and frames the
replies with 0x5C escaping. What the objects mean is :mod:`firmware_sim.gbt_mib`.

Semantics, as the upper computer sees them:

- **Replies** echo the request's header ids and sequence number (the strict
  form; the captured device does not echo the sequence).
- **Query** (0x10): one value per address asked; attribute 0 asks for every
  attribute of the object and element 0 for every row (one value each, as
  OpenATC answers). An address that is not served, or a row beyond the
  table, gets the query error reply (0x21) with code 0x30 (does not exist)
  for each such address -- what the captured device answers for 17.2.1.1.
- **Set** (0x30) is atomic: every value is checked in order -- served
  (0x30), writable (0x20 read-only), of the attribute's size (0x11 wrong
  length), in range (0x12), accepted by the controller's database and
  conflict table (0x10 bad value), a center control the simulator can run
  (0x50 control failed) -- on a copy of the database and the GB/T tables,
  and the translated scheme and time-base tables must fit the database too.
  Only then is the set applied and answered (0x40, every value with status
  0). On an error the reply (0x41) names the first bad value and its code,
  and nothing changed.
- **Heartbeat** (0x70) is answered (0x80, no count byte).
- Broadcasts, traps and replies are ignored; frames that are not valid
  messages are dropped and counted.

**Link supervision.** GB/T has no backup-time object: a controller watches
its upper computer's traffic. Every message restarts the engine's backup
timer, set to ``link_timeout_s`` (simulated seconds) when the responder is
created. When it runs out the engine reverts to its time-of-day plan (as for
NTCIP's ``unitBackupTime``); if the center had control (17.1), the responder
then clears center control and logs a communication fault (16.2, type 0x30,
action 0x50 local coordinated), so the run mode reads local (0x2x).

**Write hooks** make the simulator misbehave on purpose, as the NTCIP ones
do: ``refuse`` answers a set of the attribute with an error code, ``alter``
stores the value plus a delta, ``ignore`` stores nothing (:class:`GbtHook`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from agent.errors import ProtocolError
from agent.protocols.gbt20999 import objects as gbt
from agent.protocols.gbt20999.frame import MAX_FRAME, Framing
from agent.protocols.gbt20999.message import (
    MAX_VALUES,
    Address,
    ErrorCode,
    FrameType,
    Message,
    MessageDecoder,
    decode,
    encode,
    error_reply_to,
    heartbeat_reply_to,
    reply_to,
    set_reply_to,
)
from firmware_sim.controller import SimController
from firmware_sim.database import DatabaseValueError
from firmware_sim.events import EventCode
from firmware_sim.gbt_mib import (
    GbtContext,
    GbtTables,
    GbtWriteError,
    Served,
    center_pattern,
    decode_for,
    derive_tables,
    expand,
    find,
    record_link_loss,
    translate_schemes,
    translate_time_base,
    write,
)
from firmware_sim.status import UnitControlStatus

#: Simulated seconds of silence after which the controller gives up center control.
DEFAULT_LINK_TIMEOUT_S: Final = 20
#: Newest hi-res events searched for the start of backup mode.
_EVENTS_SEARCHED: Final = 2000

_CODE_NAMES: Final = {
    "bad-value": ErrorCode.BAD_VALUE,
    "wrong-length": ErrorCode.WRONG_LENGTH,
    "out-of-range": ErrorCode.OUT_OF_RANGE,
    "read-only": ErrorCode.READ_ONLY,
    "not-found": ErrorCode.NOT_FOUND,
    "general": ErrorCode.GENERAL,
    "control-failed": ErrorCode.CONTROL_FAILED,
}


# ----------------------------------------------------------------------- hooks


class HookAction(enum.Enum):
    """What a write hook does to a set of the attributes it matches."""

    REFUSE = "refuse"
    ALTER = "alter"
    IGNORE = "ignore"


@dataclass(frozen=True, kw_only=True, slots=True)
class GbtHook:
    """A test hook on sets of one attribute (every row, or one)."""

    action: HookAction
    #: The attribute's address; element 0 matches every row.
    target: Address
    label: str
    code: ErrorCode = ErrorCode.GENERAL
    delta: int = 0

    def matches(self, address: Address) -> bool:
        """True when a set of ``address`` falls under this hook."""
        t = self.target
        return (t.data_class, t.object, t.attribute) == (
            address.data_class,
            address.object,
            address.attribute,
        ) and t.element in (0, address.element)


def parse_target(text: str) -> Address:
    """``9.2.3``, ``9.2.3.2``, ``scheme.cycle`` or ``scheme.cycle[2]`` -> an address.

    Raises ``ValueError``.
    """
    text = text.strip()
    if not text:
        raise ValueError("an attribute name or address is needed")
    if text[0].isdigit():
        parts = text.split(".")
        if len(parts) == 3:
            text += ".0"
        address = Address.parse(text)
    else:
        name, _, rest = text.partition("[")
        element = 0
        if rest:
            if not rest.endswith("]") or not rest[:-1].isdigit():
                raise ValueError(f"{text!r}: write NAME[ROW], e.g. scheme.cycle[2]")
            element = int(rest[:-1])
        attribute = next((a for a in gbt.ATTRIBUTES.values() if a.name == name), None)
        if attribute is None:
            raise ValueError(f"{name!r} is not a GB/T 20999 attribute this simulator knows")
        address = attribute.address.with_element(element)
    if find(address) is None:
        raise ValueError(f"{text!r}: the simulator serves no attribute there")
    return address


def parse_gbt_refuse(text: str) -> GbtHook:
    """``TARGET[:CODE]``: refuse sets of TARGET with CODE (a name or 0x10, default general)."""
    target, sep, code_text = text.partition(":")
    code = ErrorCode.GENERAL
    if sep:
        name = code_text.strip().lower()
        if name in _CODE_NAMES:
            code = _CODE_NAMES[name]
        else:
            try:
                code = ErrorCode(int(name, 16) if name.startswith("0x") else int(name))
            except ValueError:
                raise ValueError(
                    f"{code_text!r} is not one of {', '.join(_CODE_NAMES)} or their codes"
                ) from None
    return GbtHook(action=HookAction.REFUSE, target=parse_target(target), label=text, code=code)


def parse_gbt_alter(text: str) -> GbtHook:
    """``TARGET=DELTA``: accept sets of TARGET but store the value plus DELTA."""
    target, sep, delta_text = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r}: write TARGET=DELTA, e.g. scheme.cycle=+1")
    try:
        delta = int(delta_text)
    except ValueError:
        raise ValueError(f"{delta_text!r} is not a whole number") from None
    if delta == 0:
        raise ValueError("a delta of 0 would not alter anything")
    address = parse_target(target)
    served = find(address)
    assert served is not None
    if not isinstance(served.attribute.encoding, gbt.UInt):
        raise ValueError(f"{served.attribute.name} is not a number: it cannot be altered")
    return GbtHook(action=HookAction.ALTER, target=address, label=text, delta=delta)


def parse_gbt_ignore(text: str) -> GbtHook:
    """``TARGET``: accept sets of TARGET and store nothing."""
    return GbtHook(action=HookAction.IGNORE, target=parse_target(text), label=text)


# ---------------------------------------------------------------------- records


class Outcome(enum.Enum):
    """What became of one frame."""

    ANSWERED = "answered"
    MALFORMED = "malformed"
    IGNORED = "ignored"


@dataclass(frozen=True, kw_only=True, slots=True)
class Exchange:
    """One request and its answer, reported to the observer (for logs)."""

    outcome: Outcome
    frame_type: FrameType | None = None
    sequence: int = 0
    #: (address, value bytes) of a set.
    values: tuple[tuple[Address, bytes], ...] = ()
    #: The first refused value of a set or the missing objects of a query.
    errors: tuple[tuple[Address, ErrorCode], ...] = ()
    hooks: tuple[str, ...] = ()
    detail: str = ""


@dataclass
class ResponderStats:
    """Counters since start."""

    requests: int = 0
    answered: int = 0
    malformed: int = 0
    ignored: int = 0
    heartbeats: int = 0
    sets_applied: int = 0
    hooks_fired: int = 0
    link_losses: int = 0
    errors: dict[ErrorCode, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Planned:
    served: Served
    element: int
    value: Any


class _SetFailed(Exception):
    def __init__(self, address: Address, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.address = address
        self.code = code
        self.detail = detail


# -------------------------------------------------------------------- responder


class GbtResponder:
    """Answers GB/T 20999 queries, sets and heartbeats for one simulated controller."""

    def __init__(
        self,
        controller: SimController,
        *,
        hooks: Iterable[GbtHook] = (),
        link_timeout_s: int = DEFAULT_LINK_TIMEOUT_S,
        controller_id: int = 0,
        observer: Callable[[Exchange], None] | None = None,
    ) -> None:
        """Serve ``controller``; ``link_timeout_s`` 0 turns link supervision off."""
        self.controller = controller
        self.hooks = tuple(hooks)
        self.link_timeout_s = link_timeout_s
        self.controller_id = controller_id
        self.stats = ResponderStats()
        self._observer = observer
        self.tables: GbtTables = derive_tables(controller.database)
        if link_timeout_s > 0:
            controller.set_backup_time(link_timeout_s)

    # -- bytes --------------------------------------------------------------------

    def handle(self, data: bytes, *, framing: Framing = Framing.DATAGRAM) -> bytes | None:
        """Answer the bytes of one frame; ``None`` means send nothing."""
        try:
            message = decode(data, framing=framing)
        except ProtocolError as err:
            self.stats.requests += 1
            self.stats.malformed += 1
            self._report(Exchange(outcome=Outcome.MALFORMED, detail=err.message))
            return None
        reply = self.respond(message)
        return None if reply is None else encode(reply, framing=framing)

    # -- messages -----------------------------------------------------------------

    def respond(self, message: Message) -> Message | None:
        """The reply to one message, or None."""
        self.stats.requests += 1
        self._supervise()
        self._sync()
        kind = message.frame_type
        if kind is FrameType.HEARTBEAT:
            self.stats.heartbeats += 1
            self.stats.answered += 1
            return heartbeat_reply_to(message)
        if kind is FrameType.QUERY:
            reply = self._query(message)
        elif kind is FrameType.SET:
            reply = self._set(message)
        else:
            self.stats.ignored += 1
            self._report(
                Exchange(outcome=Outcome.IGNORED, frame_type=kind, sequence=message.sequence)
            )
            return None
        self.stats.answered += 1
        return reply

    def _report(self, exchange: Exchange) -> None:
        if self._observer is not None:
            self._observer(exchange)

    def _count_errors(self, errors: Iterable[tuple[Address, ErrorCode]]) -> None:
        for _, code in errors:
            self.stats.errors[code] = self.stats.errors.get(code, 0) + 1

    def _context(self) -> GbtContext:
        return GbtContext(
            self.controller,
            self.controller.database,
            self.tables,
            controller_id=self.controller_id,
        )

    def _sync(self) -> None:
        """Derive the GB/T tables again when the database changed under them."""
        db = self.controller.database
        if not self.tables.agrees_with(db):
            self.tables = derive_tables(db, self.tables)

    def _supervise(self) -> None:
        """A center silent past the link timeout lost control; this message restarts the timer."""
        if self.link_timeout_s <= 0:
            return
        engine = self.controller.engine
        if engine.control_status is UnitControlStatus.BACKUP_MODE and self.tables.center.mode:
            record_link_loss(self.tables, self._backup_began())
            self.stats.link_losses += 1
        self.controller.system_control_write()

    def _backup_began(self) -> datetime:
        """Local time at which the engine entered backup mode (event 155), else now."""
        controller = self.controller
        log = controller.events
        recent = controller.events_since(max(0, log.last_seq - _EVENTS_SEARCHED))
        began = next(
            (
                event.time_ds // 10
                for event in reversed(recent)
                if event.code == EventCode.UNIT_CONTROL_STATUS_CHANGE
                and event.param == UnitControlStatus.BACKUP_MODE
            ),
            controller.global_time,
        )
        local = began + controller.clock.utc_offset_s
        return datetime.fromtimestamp(local, UTC).replace(tzinfo=None)

    # -- query --------------------------------------------------------------------

    def _query(self, message: Message) -> Message:
        ctx = self._context()
        values: list[tuple[Address, bytes]] = []
        errors: list[tuple[Address, ErrorCode]] = []
        for value in message.values:
            found = expand(ctx, value.address)
            if found is None:
                errors.append((value.address, ErrorCode.NOT_FOUND))
                continue
            for served, element in found:
                try:
                    values.append((served.attribute.at(element), served.read(ctx, element)))
                except (ArithmeticError, LookupError, ValueError):
                    errors.append((value.address, ErrorCode.GENERAL))
                    break
        if not errors and len(values) > MAX_VALUES:
            errors.append((message.values[0].address, ErrorCode.GENERAL))
        if errors:
            self._count_errors(errors)
            self._report(
                Exchange(
                    outcome=Outcome.ANSWERED,
                    frame_type=FrameType.QUERY,
                    sequence=message.sequence,
                    errors=tuple(errors),
                )
            )
            return error_reply_to(message, errors)
        reply = reply_to(message, values)
        if len(encode(reply, framing=Framing.DATAGRAM)) > MAX_FRAME:
            general = [(message.values[0].address, ErrorCode.GENERAL)]
            self._count_errors(general)
            return error_reply_to(message, general)
        return reply

    # -- set ----------------------------------------------------------------------

    def _set(self, message: Message) -> Message:
        fired: list[str] = []
        sent = tuple((v.address, v.value) for v in message.values)
        try:
            planned = self._check(message, fired)
        except _SetFailed as failure:
            errors = ((failure.address, failure.code),)
            self._count_errors(errors)
            self.stats.hooks_fired += len(fired)
            self._report(
                Exchange(
                    outcome=Outcome.ANSWERED,
                    frame_type=FrameType.SET,
                    sequence=message.sequence,
                    values=sent,
                    errors=errors,
                    hooks=tuple(fired),
                    detail=failure.detail,
                )
            )
            return error_reply_to(message, errors)
        live = self._context()
        for plan in planned:
            write(live, plan.served, plan.element, plan.value)  # the dry run passed
        live.translate()
        if live.center_changed:
            self.controller.set_system_pattern(center_pattern(self.tables.center))
        if live.clock_to is not None:
            self.controller.set_clock(live.clock_to)
        db = self.controller.database
        self.tables.db, self.tables.revision = db, db.revision
        self.stats.sets_applied += 1
        self.stats.hooks_fired += len(fired)
        self._report(
            Exchange(
                outcome=Outcome.ANSWERED,
                frame_type=FrameType.SET,
                sequence=message.sequence,
                values=sent,
                hooks=tuple(fired),
            )
        )
        return set_reply_to(message)

    def _check(self, message: Message, fired: list[str]) -> list[_Planned]:
        """Run every value on a scratch copy; the writes to apply, or _SetFailed."""
        scratch = GbtContext(
            None,
            self.controller.database.copy(),
            self.tables.copy(),
            controller_id=self.controller_id,
        )
        planned: list[_Planned] = []
        first_scheme: Address | None = None
        first_time_base: Address | None = None
        first_center: Address | None = None
        for item in message.values:
            address = item.address
            served = find(address)
            if served is None or not served.has(scratch, address.element):
                detail = f"{gbt.describe(address)} is not an object of this controller"
                raise _SetFailed(address, ErrorCode.NOT_FOUND, detail)
            name = gbt.describe(address)
            if served.write is None:
                raise _SetFailed(address, ErrorCode.READ_ONLY, f"{name} is read-only")
            try:
                value = decode_for(served, item.value)
            except GbtWriteError as err:
                raise _SetFailed(address, err.code, f"{name}: {err.detail}") from err
            hook = next((h for h in self.hooks if h.matches(address)), None)
            if hook is not None:
                fired.append(hook.label)
                if hook.action is HookAction.REFUSE:
                    detail = f"{name}: refused by the test hook {hook.label!r}"
                    raise _SetFailed(address, hook.code, detail)
                if hook.action is HookAction.IGNORE:
                    continue
                limit = (1 << (8 * served.attribute.size)) - 1
                value = min(max(int(value) + hook.delta, 0), limit)
            try:
                write(scratch, served, address.element, value)
            except GbtWriteError as err:
                raise _SetFailed(address, err.code, f"{name}: {err.detail}") from err
            if scratch.schemes_changed and first_scheme is None:
                first_scheme = address
            if scratch.time_base_changed and first_time_base is None:
                first_time_base = address
            if scratch.center_changed and first_center is None:
                first_center = address
            planned.append(_Planned(served=served, element=address.element, value=value))
        # The translated tables must fit the database too (a cycle above 255 s ...).
        for first, translate in (
            (first_scheme, translate_schemes),
            (first_time_base, translate_time_base),
        ):
            if first is None:
                continue
            try:
                translate(scratch.db, scratch.tables)
            except DatabaseValueError as err:
                raise _SetFailed(first, ErrorCode.BAD_VALUE, str(err)) from err
        if first_center is not None:
            try:
                center_pattern(scratch.tables.center)
            except GbtWriteError as err:
                raise _SetFailed(first_center, err.code, err.detail) from err
        return planned


# ----------------------------------------------------------------------- stream


@dataclass
class SessionStats:
    """Counters of one stream session."""

    frames: int = 0
    answered: int = 0
    bad_frames: int = 0


class GbtStreamSession:
    """0x5C-escaped GB/T frames on a byte stream (TCP, a pty) -> the responder -> replies."""

    def __init__(self, handler: Callable[[Message], Message | None]) -> None:
        """Answer each message with ``handler`` (the responder's ``respond``)."""
        self._handler = handler
        self._decoder = MessageDecoder()
        self.stats = SessionStats()

    @property
    def discarded(self) -> int:
        """Bytes skipped while hunting for a start byte."""
        return self._decoder.frames.discarded

    def feed(self, data: bytes) -> bytes:
        """Consume received bytes; return the escaped replies to send back."""
        out = bytearray()
        for item in self._decoder.feed(data):
            if not isinstance(item, Message):
                self.stats.bad_frames += 1
                continue
            self.stats.frames += 1
            reply = self._handler(item)
            if reply is not None:
                self.stats.answered += 1
                out += encode(reply, framing=Framing.STREAM)
        return bytes(out)
