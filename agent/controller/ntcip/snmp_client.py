"""An SNMPv1 manager over a :class:`MessageLink`: matching, timeouts, retries, splitting.

* One request in flight per link (controllers, and serial lines, answer one
  at a time); responses are matched by request id, and late answers to an
  earlier, timed-out request are discarded.
* Each request is retried ``retries`` times after ``timeout_s`` of silence;
  then the link is declared down for this request (:class:`LinkDown`).
* A GET or SET with more varbinds than ``max_varbinds``, or whose message
  would be larger than the link carries (:attr:`MessageLink.max_message`:
  484 octets in a PMPP frame), is split into several PDUs; a ``tooBig``
  answer halves the PDU and tries again. Sizing requests matters: a SET's
  answer is as large as the SET, and a controller drops an answer (even its
  ``tooBig``) that exceeds its own limit, which would look like a dead link.
* Error statuses become :class:`ControllerError` naming the object, e.g.
  ``controller refused phaseYellowChange.2 = 25 (badValue)``.

A SET split over several PDUs is not atomic: the driver above reads back
everything it wrote, which is the guarantee that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from agent.controller.transport import MessageLink
from agent.controller.turns import LinkTurns
from agent.errors import ControllerError, LinkDown, ProtocolError
from agent.logs import get_logger
from agent.protocols.ntcip1202 import describe_oid
from agent.protocols.snmp import (
    ErrorStatus,
    Null,
    Oid,
    Pdu,
    PduType,
    SnmpMessage,
    SnmpValue,
    VarBind,
    decode_message,
    encode_message,
)

log = get_logger("controller.snmp")


@dataclass(frozen=True, kw_only=True)
class SnmpSettings:
    """How the manager talks to one controller."""

    community: bytes = b"public"
    timeout_s: float = 0.5
    retries: int = 2
    max_varbinds: int = 20
    #: Status polls: a short timeout and no retry, since the next poll is the
    #: retry; the link is declared down by the poller after consecutive misses.
    #: 150 ms: a status later than that is a SPaT gap anyway, and three missed
    #: polls at 10 Hz then take at most 0.65 s, inside the 1 s the agent has to
    #: notice a dead controller (see :mod:`agent.controller.poller`).
    poll_timeout_s: float = 0.15


@dataclass
class ClientCounters:
    """Requests and their outcomes, for diagnostics and benchmarks."""

    requests: int = 0
    timeouts: int = 0
    stale_responses: int = 0
    bad_responses: int = 0
    too_big_splits: int = 0
    size_splits: int = 0


#: Error statuses as RFC 1157 spells them (and as snmpset and controller manuals print them).
STATUS_NAMES = {
    ErrorStatus.NO_ERROR: "noError",
    ErrorStatus.TOO_BIG: "tooBig",
    ErrorStatus.NO_SUCH_NAME: "noSuchName",
    ErrorStatus.BAD_VALUE: "badValue",
    ErrorStatus.READ_ONLY: "readOnly",
    ErrorStatus.GEN_ERR: "genErr",
}


def show_value(value: SnmpValue) -> str:
    """A value as a technician reads it: ``45``, ``1.3.6.1.4.1.1206.4.2.1.5.3.1.1.1``, ``01 02``."""
    raw = getattr(value, "value", value)
    if isinstance(raw, bytes):
        return raw.hex(" ") if raw else "''"
    if isinstance(raw, tuple):
        return ".".join(str(part) for part in raw)
    return str(raw)


class _TooLarge(Exception):
    """A request would not fit in one message on this link (split it; never sent)."""


class SnmpError(ControllerError):
    """The controller answered with an SNMP error status for one object."""

    def __init__(self, message: str, *, status: ErrorStatus, oid: Oid | None) -> None:
        super().__init__(message)
        self.status = status
        self.oid = oid


class SnmpClient:
    """GET, GETNEXT and SET against one controller over one link."""

    def __init__(self, link: MessageLink, settings: SnmpSettings | None = None) -> None:
        self.link = link
        self.settings = settings or SnmpSettings()
        self.counters = ClientCounters()
        self._turns = LinkTurns()
        self._ids = itertools.count(1)

    def _next_id(self) -> int:
        return next(self._ids) % 2_000_000_000 + 1

    async def _exchange(
        self, kind: PduType, varbinds: tuple[VarBind, ...], *, poll: bool = False
    ) -> Pdu:
        """Send one PDU and return the matching response PDU (any error status).

        The wait allows for the request and its answer crossing a slow serial
        wire (about 2.5 times the request's wire time) on top of the timeout.
        """
        # A poll's own wait for its answer: its turn waits no longer in silence.
        budget = self.settings.poll_timeout_s + 2.5 * self.link.wire_seconds(self.link.max_message)
        await self._turns.take(poll=poll, budget_s=budget, link=self.link.description)
        try:
            attempts = 1 if poll else self.settings.retries + 1
            base = self.settings.poll_timeout_s if poll else self.settings.timeout_s
            for attempt in range(1, attempts + 1):
                request_id = self._next_id()
                message = SnmpMessage(
                    community=self.settings.community,
                    pdu=Pdu(kind=kind, request_id=request_id, varbinds=varbinds),
                )
                data = encode_message(message)
                if len(data) > self.link.max_message:
                    raise _TooLarge
                wait = base + 2.5 * self.link.wire_seconds(len(data))
                self.link.send(data)
                self.counters.requests += 1
                try:
                    async with asyncio.timeout(wait):
                        return await self._await_response(request_id)
                except TimeoutError:
                    self.counters.timeouts += 1
                    self._turns.timed_out()
                    log.debug("snmp_timeout", attempt=attempt, endpoint=self.link.description)
            raise LinkDown(
                f"{self.link.description}: no answer after {attempts} "
                f"{'try' if attempts == 1 else 'tries'} ({wait:.2f} s each)"
            )
        finally:
            self._turns.release()

    async def _await_response(self, request_id: int) -> Pdu:
        while True:
            data = await self.link.receive()
            self._turns.heard()
            try:
                reply = decode_message(data)
            except ProtocolError as err:
                self.counters.bad_responses += 1
                log.debug("snmp_bad_response", error=str(err))
                continue
            if reply.pdu.kind is not PduType.GET_RESPONSE or reply.pdu.request_id != request_id:
                self.counters.stale_responses += 1
                continue
            return reply.pdu

    def _raise_for(self, pdu: Pdu, sent: tuple[VarBind, ...], verb: str) -> None:
        status = pdu.error_status
        if status is ErrorStatus.NO_ERROR:
            if len(pdu.varbinds) != len(sent):
                raise ControllerError(
                    f"{self.link.description}: answered {len(pdu.varbinds)} values "
                    f"for {len(sent)} requested"
                )
            return
        index = pdu.error_index
        bad = sent[index - 1] if 1 <= index <= len(sent) else None
        name = describe_oid(bad.oid) if bad is not None else "the request"
        if verb == "set" and bad is not None:
            what = f"controller refused {name} = {show_value(bad.value)}"
        else:
            what = f"controller cannot {verb} {name}"
        raise SnmpError(
            f"{what} ({STATUS_NAMES[status]})",
            status=status,
            oid=bad.oid if bad is not None else None,
        )

    async def _chunked(
        self, kind: PduType, varbinds: Sequence[VarBind], verb: str, *, poll: bool = False
    ) -> list[VarBind]:
        results: list[VarBind] = []
        pending = [tuple(varbinds)]
        size = max(1, self.settings.max_varbinds)
        while pending:
            batch = pending.pop(0)
            if len(batch) > size:
                pending[0:0] = [batch[i : i + size] for i in range(0, len(batch), size)]
                continue
            try:
                pdu = await self._exchange(kind, batch, poll=poll)
            except _TooLarge:
                if len(batch) == 1:
                    raise ControllerError(
                        f"{describe_oid(batch[0].oid)}: a request for it does not fit in "
                        f"{self.link.max_message} octets on {self.link.description}"
                    ) from None
                self.counters.size_splits += 1
                half = len(batch) // 2
                size = max(1, min(size, half))
                pending[0:0] = [batch[:half], batch[half:]]
                continue
            if pdu.error_status is ErrorStatus.TOO_BIG and len(batch) > 1:
                self.counters.too_big_splits += 1
                half = len(batch) // 2
                size = max(1, min(size, half))
                pending[0:0] = [batch[:half], batch[half:]]
                continue
            self._raise_for(pdu, batch, verb)
            results.extend(pdu.varbinds)
        return results

    async def get(self, oids: Sequence[Oid], *, poll: bool = False) -> list[SnmpValue]:
        """Values of ``oids``, in order; :class:`SnmpError` names an unknown object.

        ``poll=True``: one try with the short poll timeout (status polling).
        """
        binds = [VarBind(oid=oid, value=Null()) for oid in oids]
        answered = await self._chunked(PduType.GET_REQUEST, binds, "get", poll=poll)
        for asked, got in zip(binds, answered, strict=True):
            if got.oid != asked.oid:
                raise ControllerError(
                    f"controller answered {describe_oid(got.oid)} "
                    f"when asked for {describe_oid(asked.oid)}"
                )
        return [vb.value for vb in answered]

    async def get_optional(self, oids: Sequence[Oid]) -> dict[Oid, SnmpValue]:
        """Values of those ``oids`` the controller knows (noSuchName ones are left out)."""
        remaining = list(oids)
        while remaining:
            try:
                values = await self.get(remaining)
            except SnmpError as err:
                if err.status is not ErrorStatus.NO_SUCH_NAME or err.oid not in remaining:
                    raise
                remaining.remove(err.oid)
                continue
            return dict(zip(remaining, values, strict=True))
        return {}

    async def get_next(self, oid: Oid) -> tuple[Oid, SnmpValue] | None:
        """The next object after ``oid``, or None at the end of the MIB view."""
        with contextlib.suppress(SnmpError):
            (bind,) = await self._chunked(
                PduType.GET_NEXT_REQUEST, [VarBind(oid=oid, value=Null())], "get-next"
            )
            return bind.oid, bind.value
        return None

    async def walk(self, root: Oid, *, limit: int = 10_000) -> list[tuple[Oid, SnmpValue]]:
        """Every object under ``root``, in order (bounded by ``limit``)."""
        found: list[tuple[Oid, SnmpValue]] = []
        current = root
        while len(found) < limit:
            step = await self.get_next(current)
            if step is None or step[0][: len(root)] != root or step[0] <= current:
                break
            found.append(step)
            current = step[0]
        return found

    async def set(self, varbinds: Sequence[tuple[Oid, SnmpValue]]) -> None:
        """SET every ``(oid, value)``; :class:`SnmpError` names the object refused."""
        binds = [VarBind(oid=oid, value=value) for oid, value in varbinds]
        await self._chunked(PduType.SET_REQUEST, binds, "set")
