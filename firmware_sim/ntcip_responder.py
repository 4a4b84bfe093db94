"""The simulator's SNMPv1 command responder: NTCIP requests in, responses out.

Sans-I/O: :meth:`NtcipResponder.handle` takes the bytes of one SNMP message
and returns the bytes of the response, or ``None`` when nothing must be sent.
The transports (UDP datagrams, PMPP frames on a pty or TCP) are thin pipes
around it. What the objects mean is :mod:`firmware_sim.ntcip_mib`.

SNMPv1 semantics (RFC 1157), as a manager sees them:

- **Community.** A request with another community gets no answer at all; it
  is only counted (``bad_community``), as real controllers do.
- **Get**: every varbind must name an instance the simulator answers, else
  ``noSuchName`` with the index of the first one that does not.
- **GetNext** walks every answered instance in lexicographic OID order, all
  objects and tables together, so ``snmpwalk`` works from any OID; past the
  last instance it answers ``noSuchName``.
- **Set** is atomic: every varbind is checked first -- known instance
  (``noSuchName``), writable (``readOnly``; RFC 1157 agents may say
  ``noSuchName`` here, managers should accept both), type and range
  (``badValue``), then all the writes are tried on a copy of the database
  (``badValue`` when the controller would refuse one, e.g. a yellow below
  3.0 s). Only when all pass are they applied, in order. On an error the
  response carries the error status and the 1-based index of the first bad
  varbind, and nothing changed. Every Set of a system-control object
  (``systemPatternControl``, ``systemSyncControl``, the phase and ring
  control groups, ``unitControl``) restarts the ``unitBackupTime`` timer.
- **tooBig**: when a response would be larger than the size limit of the
  transport (``max_size``: :data:`UDP_MAX_MESSAGE` for UDP, 1472 octets, one
  Ethernet payload; :data:`SERIAL_MAX_MESSAGE` for PMPP, 484 octets, the
  size every SNMP agent must accept) the answer is ``tooBig`` with the
  request's varbinds, and a Set is not applied.
- Malformed messages, SNMP versions other than 1 and GetResponse PDUs are
  dropped and counted.

**Write hooks** make the simulator misbehave on purpose, so that a manager's
"did the controller confirm my write?" logic can be tested (:class:`WriteHook`):
``refuse`` answers a Set of the object with an error, ``alter`` accepts it
but stores a different value, ``ignore`` accepts it and stores nothing.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from agent.errors import MessageError
from agent.protocols import ntcip1202 as mib
from agent.protocols.ntcip1202 import Syntax, describe_oid
from agent.protocols.snmp import (
    Counter32,
    ErrorStatus,
    Gauge32,
    Integer,
    ObjectIdentifier,
    OctetString,
    Oid,
    Pdu,
    PduType,
    SnmpMessage,
    SnmpValue,
    VarBind,
    decode_message,
    encode_message,
    oid_from_str,
)
from firmware_sim.controller import SimController
from firmware_sim.ntcip_mib import (
    BACKUP_MODE,
    SERVED,
    Index,
    KeptValues,
    MibContext,
    Raw,
    ServedObject,
    WriteRejected,
    find_object,
)

#: Largest response over UDP: one Ethernet payload (1500 - 20 IP - 8 UDP).
UDP_MAX_MESSAGE: Final = 1472
#: Largest response over PMPP: the message size every SNMP agent must accept (RFC 1157).
SERIAL_MAX_MESSAGE: Final = 484
#: The community a controller answers by default.
DEFAULT_COMMUNITY: Final = b"public"

_SERVED_OIDS: Final = [served.oid for served in SERVED]


# ----------------------------------------------------------------------- hooks


class HookAction(enum.Enum):
    """What a write hook does to a Set of the objects it matches."""

    #: Answer the Set with an error status; nothing is written.
    REFUSE = "refuse"
    #: Accept the Set, but store the value plus a delta (a read-back differs).
    ALTER = "alter"
    #: Accept the Set and store nothing (a read-back shows the old value).
    IGNORE = "ignore"


#: Error statuses ``refuse`` may answer with, by their SNMP names.
REFUSE_STATUSES: Final = {
    "badvalue": ErrorStatus.BAD_VALUE,
    "generr": ErrorStatus.GEN_ERR,
    "readonly": ErrorStatus.READ_ONLY,
    "nosuchname": ErrorStatus.NO_SUCH_NAME,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class WriteHook:
    """A test hook acting on Sets of every instance under ``prefix``."""

    action: HookAction
    #: OID prefix: an object (every instance) or one instance.
    prefix: Oid
    #: The hook as the user wrote it, for logs.
    label: str
    #: ``refuse``: the error status answered.
    status: ErrorStatus = ErrorStatus.GEN_ERR
    #: ``alter``: added to an integer value before it is stored (clamped to the object's range).
    delta: int = 0

    def matches(self, oid: Oid) -> bool:
        """True when a Set of ``oid`` falls under this hook."""
        return oid[: len(self.prefix)] == self.prefix


def parse_target(text: str) -> Oid:
    """An OID prefix from a dotted OID or an object name with an optional instance.

    ``1.3.6.1.4.1.1206.4.2.1.4.14``, ``systemPatternControl`` and
    ``phaseYellowChange.2`` are all accepted. Raises ``ValueError``.
    """
    text = text.strip()
    if not text:
        raise ValueError("an object name or OID is needed")
    if text[0].isdigit() or text[0] == ".":
        return oid_from_str(text)
    name, _, instance = text.partition(".")
    obj = mib.BY_NAME.get(name)
    if obj is None:
        raise ValueError(f"{name!r} is not an NTCIP object name this simulator knows")
    if not instance:
        return obj.oid
    return (*obj.oid, *oid_from_str(f"0.0.{instance}")[2:])


def parse_refuse(text: str) -> WriteHook:
    """``TARGET[:STATUS]``: refuse Sets of TARGET with STATUS (default genErr)."""
    target, sep, status_name = text.partition(":")
    status = ErrorStatus.GEN_ERR
    if sep:
        found = REFUSE_STATUSES.get(status_name.strip().lower())
        if found is None:
            names = ", ".join(("badValue", "genErr", "readOnly", "noSuchName"))
            raise ValueError(f"{status_name!r} is not one of {names}")
        status = found
    return WriteHook(
        action=HookAction.REFUSE, prefix=parse_target(target), label=text, status=status
    )


def parse_alter(text: str) -> WriteHook:
    """``TARGET=DELTA``: accept Sets of TARGET but store the value plus DELTA (e.g. ``+1``)."""
    target, sep, delta_text = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r}: write TARGET=DELTA, e.g. systemPatternControl=+1")
    try:
        delta = int(delta_text)
    except ValueError:
        raise ValueError(f"{delta_text!r} is not a whole number") from None
    if delta == 0:
        raise ValueError("a delta of 0 would not alter anything")
    return WriteHook(action=HookAction.ALTER, prefix=parse_target(target), label=text, delta=delta)


def parse_ignore(text: str) -> WriteHook:
    """``TARGET``: accept Sets of TARGET and store nothing."""
    return WriteHook(action=HookAction.IGNORE, prefix=parse_target(text), label=text)


# ---------------------------------------------------------------------- records


class Outcome(enum.Enum):
    """What became of one request."""

    ANSWERED = "answered"
    BAD_COMMUNITY = "bad-community"
    MALFORMED = "malformed"
    UNSUPPORTED = "unsupported"
    #: Even the tooBig answer would exceed the size limit: dropped.
    TOO_BIG_DROPPED = "too-big-dropped"


@dataclass(frozen=True, kw_only=True, slots=True)
class Exchange:
    """One request and its answer, reported to the observer (for logs)."""

    outcome: Outcome
    kind: PduType | None = None
    request_id: int = 0
    varbinds: tuple[VarBind, ...] = ()
    error_status: ErrorStatus = ErrorStatus.NO_ERROR
    error_index: int = 0
    #: Labels of the write hooks that acted on this Set.
    hooks: tuple[str, ...] = ()
    detail: str = ""


@dataclass
class ResponderStats:
    """Counters since start."""

    requests: int = 0
    answered: int = 0
    bad_community: int = 0
    malformed: int = 0
    unsupported: int = 0
    too_big: int = 0
    sets_applied: int = 0
    hooks_fired: int = 0
    errors: dict[ErrorStatus, int] = field(default_factory=dict)


# -------------------------------------------------------------------- responder


@dataclass(frozen=True, kw_only=True, slots=True)
class _SetFailure:
    status: ErrorStatus
    index: int
    detail: str


@dataclass(frozen=True, kw_only=True, slots=True)
class _PlannedWrite:
    served: ServedObject
    index: Index
    value: Raw
    #: 1-based varbind position.
    position: int


def _raw(served: ServedObject, value: SnmpValue) -> Raw | None:
    """The plain value of a Set varbind if its type suits the object, else None."""
    syntax = served.mib.syntax
    match syntax, value:
        case Syntax.INTEGER, Integer(number):
            return number
        # net-snmp's snmpset has no Counter type; its 'u' (Gauge) is accepted too.
        case Syntax.COUNTER, Counter32(number) | Gauge32(number):
            return number
        case Syntax.OCTET_STRING, OctetString(octets):
            return octets
        case Syntax.OBJECT_IDENTIFIER, ObjectIdentifier(oid):
            return oid
    return None


def _wrap(served: ServedObject, raw: Raw) -> SnmpValue:
    syntax = served.mib.syntax
    if syntax is Syntax.COUNTER:
        assert isinstance(raw, int)
        return Counter32(raw)
    if syntax is Syntax.OCTET_STRING:
        assert isinstance(raw, bytes)
        return OctetString(raw)
    if syntax is Syntax.OBJECT_IDENTIFIER:
        assert isinstance(raw, tuple)
        return ObjectIdentifier(raw)
    assert isinstance(raw, int)
    return Integer(raw)


def _in_range(served: ServedObject, raw: Raw) -> bool:
    return served.mib.accepts(_wrap(served, raw))


class NtcipResponder:
    """Answers SNMPv1 Get, GetNext and Set for the NTCIP objects of one simulated controller."""

    def __init__(
        self,
        controller: SimController,
        *,
        community: bytes = DEFAULT_COMMUNITY,
        hooks: Iterable[WriteHook] = (),
        observer: Callable[[Exchange], None] | None = None,
    ) -> None:
        """Serve ``controller``; ``observer`` (optional) sees every request's outcome."""
        self.controller = controller
        self.community = community
        self.hooks = tuple(hooks)
        self.stats = ResponderStats()
        self.kept = KeptValues()
        self._observer = observer
        self._backup_reset_done = False

    # -- bytes ------------------------------------------------------------------

    def handle(self, data: bytes, *, max_size: int = UDP_MAX_MESSAGE) -> bytes | None:
        """Answer one encoded SNMP message; ``None`` means send nothing."""
        self.stats.requests += 1
        try:
            message = decode_message(data)
        except MessageError as err:
            self.stats.malformed += 1
            self._report(Exchange(outcome=Outcome.MALFORMED, detail=err.message))
            return None
        answer = self._answer(message, max_size)
        return None if answer is None else answer[1]

    # -- messages -----------------------------------------------------------------

    def respond(
        self, message: SnmpMessage, *, max_size: int = UDP_MAX_MESSAGE
    ) -> SnmpMessage | None:
        """Answer one decoded message (None: no answer)."""
        answer = self._answer(message, max_size)
        return None if answer is None else answer[0]

    def _answer(self, message: SnmpMessage, max_size: int) -> tuple[SnmpMessage, bytes] | None:
        """The response and its encoding (encoded once: BER is the expensive part)."""
        pdu = message.pdu
        if message.community != self.community:
            self.stats.bad_community += 1
            self._report(
                Exchange(outcome=Outcome.BAD_COMMUNITY, kind=pdu.kind, request_id=pdu.request_id)
            )
            return None
        if pdu.kind is PduType.GET_RESPONSE:
            self.stats.unsupported += 1
            self._report(
                Exchange(
                    outcome=Outcome.UNSUPPORTED,
                    kind=pdu.kind,
                    request_id=pdu.request_id,
                    detail="a GetResponse is not a request",
                )
            )
            return None
        self._follow_backup_mode()
        hooks: tuple[str, ...] = ()
        detail = ""
        if pdu.kind is PduType.SET_REQUEST:
            answer, hooks, detail = self._set(message, max_size)
        else:
            answer = self._get(pdu)
        reply = SnmpMessage(community=message.community, pdu=answer)
        encoded = encode_message(reply)
        if answer.error_status is ErrorStatus.NO_ERROR and len(encoded) > max_size:
            answer = _error(pdu, ErrorStatus.TOO_BIG, 0)
            reply = SnmpMessage(community=message.community, pdu=answer)
            encoded = encode_message(reply)
        if answer.error_status is ErrorStatus.TOO_BIG:
            self.stats.too_big += 1
            if len(encoded) > max_size:
                self._report(
                    Exchange(
                        outcome=Outcome.TOO_BIG_DROPPED,
                        kind=pdu.kind,
                        request_id=pdu.request_id,
                        varbinds=pdu.varbinds,
                    )
                )
                return None
        self.stats.answered += 1
        if answer.error_status is not ErrorStatus.NO_ERROR:
            errors = self.stats.errors
            errors[answer.error_status] = errors.get(answer.error_status, 0) + 1
        self._report(
            Exchange(
                outcome=Outcome.ANSWERED,
                kind=pdu.kind,
                request_id=pdu.request_id,
                varbinds=pdu.varbinds,
                error_status=answer.error_status,
                error_index=answer.error_index,
                hooks=hooks,
                detail=detail,
            )
        )
        return reply, encoded

    def _report(self, exchange: Exchange) -> None:
        if self._observer is not None:
            self._observer(exchange)

    def _follow_backup_mode(self) -> None:
        """When backup mode has begun, the kept system-control values read zero again."""
        in_backup = self.controller.engine.control_status is BACKUP_MODE
        if in_backup and not self._backup_reset_done:
            self.kept.reset_control()
        self._backup_reset_done = in_backup

    # -- Get / GetNext -------------------------------------------------------------

    def _get(self, pdu: Pdu) -> Pdu:
        ctx = MibContext.live(self.controller, self.kept)
        out: list[VarBind] = []
        for position, varbind in enumerate(pdu.varbinds, start=1):
            if pdu.kind is PduType.GET_NEXT_REQUEST:
                found = _next_instance(ctx, varbind.oid)
            else:
                found = _exact_instance(ctx, varbind.oid)
            if found is None:
                return _error(pdu, ErrorStatus.NO_SUCH_NAME, position)
            served, index = found
            try:
                value = _wrap(served, served.read(ctx, index))
            except (ArithmeticError, LookupError, ValueError):
                return _error(pdu, ErrorStatus.GEN_ERR, position)
            out.append(VarBind(oid=(*served.oid, *index), value=value))
        return Pdu(kind=PduType.GET_RESPONSE, request_id=pdu.request_id, varbinds=tuple(out))

    # -- Set -------------------------------------------------------------------------

    def _set(self, message: SnmpMessage, max_size: int) -> tuple[Pdu, tuple[str, ...], str]:
        pdu = message.pdu
        echo = Pdu(kind=PduType.GET_RESPONSE, request_id=pdu.request_id, varbinds=pdu.varbinds)
        if _too_big(SnmpMessage(community=message.community, pdu=echo), max_size):
            return _error(pdu, ErrorStatus.TOO_BIG, 0), (), "the response would be too big"
        planned, fired, failure = self._check_writes(pdu)
        if failure is not None:
            return _error(pdu, failure.status, failure.index), fired, failure.detail
        live = MibContext.live(self.controller, self.kept)
        for write in planned:
            _apply(write, live)  # cannot fail: the dry run applied the same writes
        self.stats.sets_applied += 1
        self.stats.hooks_fired += len(fired)
        self._backup_reset_done = self.controller.engine.control_status is BACKUP_MODE
        return echo, fired, ""

    def _check_writes(
        self, pdu: Pdu
    ) -> tuple[list[_PlannedWrite], tuple[str, ...], _SetFailure | None]:
        """Check every varbind in order, running its write on a scratch copy.

        Returns the writes to apply, the hooks that acted, and the first
        failure (then nothing must be applied).
        """
        ctx = MibContext.live(self.controller, self.kept)
        scratch = MibContext.dry_run(self.controller, self.kept)
        planned: list[_PlannedWrite] = []
        fired: list[str] = []

        def failed(
            status: ErrorStatus, position: int, detail: str
        ) -> tuple[list[_PlannedWrite], tuple[str, ...], _SetFailure]:
            return planned, tuple(fired), _fail(status, position, detail)

        for position, varbind in enumerate(pdu.varbinds, start=1):
            found = _exact_instance(ctx, varbind.oid)
            if found is None:
                detail = f"{describe_oid(varbind.oid)} is not an instance of this controller"
                return failed(ErrorStatus.NO_SUCH_NAME, position, detail)
            served, index = found
            name = describe_oid(varbind.oid)
            if not served.writable:
                return failed(ErrorStatus.READ_ONLY, position, f"{name} is read-only")
            raw = _raw(served, varbind.value)
            if raw is None or not _in_range(served, raw):
                return failed(ErrorStatus.BAD_VALUE, position, f"{name}: not a valid value")
            altered = False
            hook = next((h for h in self.hooks if h.matches(varbind.oid)), None)
            if hook is not None:
                fired.append(hook.label)
                if hook.action is HookAction.REFUSE:
                    detail = f"{name}: refused by the test hook {hook.label!r}"
                    return failed(hook.status, position, detail)
                if hook.action is HookAction.IGNORE:
                    continue
                if isinstance(raw, int):
                    raw = min(max(raw + hook.delta, served.mib.minimum), served.mib.maximum)
                    altered = True
            write = _PlannedWrite(served=served, index=index, value=raw, position=position)
            try:
                _apply(write, scratch)
            except ValueError as err:  # DatabaseValueError, WriteRejected, engine range checks
                # An altered value the controller refuses is the hook's doing: genErr.
                status = ErrorStatus.GEN_ERR if altered else ErrorStatus.BAD_VALUE
                return failed(status, position, f"{name}: {err}")
            planned.append(write)
        return planned, tuple(fired), None


def _apply(write: _PlannedWrite, ctx: MibContext) -> None:
    assert write.served.write is not None
    if not _in_range(write.served, write.value):
        raise WriteRejected("the value is out of the object's range")
    write.served.write(ctx, write.index, write.value)


def _fail(status: ErrorStatus, index: int, detail: str) -> _SetFailure:
    return _SetFailure(status=status, index=index, detail=detail)


def _error(pdu: Pdu, status: ErrorStatus, index: int) -> Pdu:
    """The response "of identical form" RFC 1157 asks for on an error."""
    return Pdu(
        kind=PduType.GET_RESPONSE,
        request_id=pdu.request_id,
        error_status=status,
        error_index=index,
        varbinds=pdu.varbinds,
    )


def _too_big(message: SnmpMessage, max_size: int) -> bool:
    return len(encode_message(message)) > max_size


def _exact_instance(ctx: MibContext, oid: Oid) -> tuple[ServedObject, Index] | None:
    found = find_object(oid)
    if found is None:
        return None
    served, index = found
    return found if served.has(ctx, index) else None


def _next_instance(ctx: MibContext, oid: Oid) -> tuple[ServedObject, Index] | None:
    """The first answered instance whose OID is greater than ``oid``."""
    # Objects are never prefixes of each other, so OID order of objects is walk order.
    start = bisect.bisect_right(_SERVED_OIDS, oid)
    if start > 0:
        previous = SERVED[start - 1]
        if oid[: len(previous.oid)] == previous.oid:
            start -= 1  # ``oid`` is inside the previous object's subtree
    for served in SERVED[start:]:
        if oid[: len(served.oid)] == served.oid:
            suffix = oid[len(served.oid) :]
            following = served.next_after(ctx, suffix)
        else:
            rows = served.rows(ctx)
            following = rows[0] if rows else None
        if following is not None:
            return served, following
    return None
