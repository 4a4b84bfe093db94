"""The control socket's wire format: JSON lines, strict requests, one-line errors (sans-I/O).

::

    greenwave (technician)                                 agent
        │ {"verb": "status", "args": {}}⏎              ──►  │ one request line
        │ ◄──  {"ok": true, "result": {…}}⏎                 │ one response line, close
        │                                                   │
        │ {"verb": "watch", "args": {"rate_hz": 5}}⏎   ──►  │ watch: one response line
        │ ◄──  {"ok": true, "result": {…}}⏎   × n           │ per status update (≤ rate_hz)
        │ close                                             │ until the client goes
        │                                                   │
        │ ◄──  {"ok": false, "code": "E_…", "error": "…"}⏎  │ any refusal: one line, close

A connection carries one request. The verbs and their ``args``:

=============  ============================================  ===========================
verb           args                                          result
=============  ============================================  ===========================
``status``     —                                             the status document
``watch``      ``rate_hz`` (0 < r ≤ 10, default 10)          status documents, streamed
``plan.show``  —                                             ``{format, plan}``
``override``   ``pattern`` (1-253, "free", "flash"),         ``{override, mode, reason}``
               ``minutes`` (> 0, ≤ 480)
``release``    —                                             ``{released, mode, reason}``
``diag``       —                                             ``{format, status,
                                                             diagnostics}``
=============  ============================================  ===========================

The documents are described in docs/technician.md.

A request may also carry ``sudo_user`` (the CLI sends ``$SUDO_USER``); the
agent believes it only from root, and only to name who acted in the audit log.

**Framing** (:class:`LineFramer`): a message is UTF-8 JSON followed by ``\\n``.

* blank lines are skipped;
* a line longer than the cap (requests :data:`MAX_REQUEST_BYTES`, responses
  :data:`MAX_RESPONSE_BYTES`, the ``\\n`` included) raises
  :class:`LineTooLong` as soon as the buffered bytes pass the cap without a
  newline: the server answers ``E_TOO_LARGE`` and closes, having held at most
  the cap plus one read;
* bytes after a line are kept for the next;
* at the end of the stream, a last line without ``\\n`` is returned by
  :meth:`LineFramer.end` (a client that half-closes after writing is heard).

There is no resynchronisation: a bad line ends the conversation with one
error line. Nothing here does I/O; the server and the client are thin pipes
around it.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from agent.errors import GreenwaveError

#: Largest request line, ``\n`` included (bytes).
MAX_REQUEST_BYTES = 64 * 1024
#: Largest response line the client reads (bytes).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: Longest error message sent (characters).
MAX_ERROR_CHARS = 300
#: Fastest ``watch`` stream (lines per second).
MAX_WATCH_HZ = 10.0
#: Longest override asked for on the wire (minutes); the supervisor judges the rest.
MAX_OVERRIDE_MINUTES = 480.0
#: Version of the result documents (docs/technician.md).
FORMAT = 1


class Code(enum.StrEnum):
    """Why a request failed (stable; docs/technician.md lists them)."""

    E_REQUEST = "E_REQUEST"  # not a request: not JSON, unknown verb, bad arguments
    E_TOO_LARGE = "E_TOO_LARGE"  # a request line over MAX_REQUEST_BYTES
    E_TIMEOUT = "E_TIMEOUT"  # no complete request in time
    E_BUSY = "E_BUSY"  # too many technicians connected at once
    E_DENIED = "E_DENIED"  # the peer is not root, the agent's user or in the group
    E_OVERRIDE = "E_OVERRIDE"  # the override was refused (the error says why)
    E_CONTROLLER = "E_CONTROLLER"  # the controller did not confirm
    E_INTERNAL = "E_INTERNAL"  # a bug in the agent (logged there)


class LocalProtocolError(GreenwaveError):
    """Bytes that are not a request (or a response) of the control socket."""

    code = Code.E_REQUEST


class LineTooLong(LocalProtocolError):
    """A line passed the framer's cap without ending."""

    code = Code.E_TOO_LARGE


# -- framing ---------------------------------------------------------------------------------


class LineFramer:
    """Bytes in, complete lines out (see the module docstring for the contract)."""

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError("a line needs room for at least one byte and its newline")
        self.limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The lines ``data`` completes (without ``\\n``); :class:`LineTooLong` past the cap."""
        self._buffer += data
        lines: list[bytes] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            if end + 1 > self.limit:
                self._buffer.clear()
                raise LineTooLong(f"a line is longer than {self.limit} bytes")
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if line.strip():
                lines.append(line)
        if len(self._buffer) >= self.limit:
            self._buffer.clear()
            raise LineTooLong(f"a line is longer than {self.limit} bytes")
        return lines

    def end(self) -> bytes | None:
        """At the end of the stream: the last line if it had no ``\\n``."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest if rest.strip() else None


# -- requests --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


#: A user name as ``useradd`` allows it (also a machine account's trailing ``$``).
UserName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.-]{0,31}\$?$")]
PatternNumber = Annotated[int, Field(ge=1, le=253)]
OverridePattern = PatternNumber | Literal["free", "flash"]


class NoArgs(_Strict):
    """A verb without arguments."""


class WatchArgs(_Strict):
    """``watch``: how many status lines per second at most."""

    rate_hz: Annotated[float, Field(gt=0, le=MAX_WATCH_HZ, allow_inf_nan=False)] = MAX_WATCH_HZ


class OverrideArgs(_Strict):
    """``override``: what to run and for how long."""

    pattern: OverridePattern
    minutes: Annotated[float, Field(gt=0, le=MAX_OVERRIDE_MINUTES, allow_inf_nan=False)]


class _Request(_Strict):
    sudo_user: UserName | None = None


class StatusRequest(_Request):
    """Everything ``greenwave status`` shows."""

    verb: Literal["status"]
    args: NoArgs = NoArgs()


class WatchRequest(_Request):
    """A status document per controller update, until the client goes."""

    verb: Literal["watch"]
    args: WatchArgs = WatchArgs()


class PlanShowRequest(_Request):
    """The stored timing plan."""

    verb: Literal["plan.show"]
    args: NoArgs = NoArgs()


class OverrideRequest(_Request):
    """Take local control for a while (SPEC §6 mode ``override``)."""

    verb: Literal["override"]
    args: OverrideArgs


class ReleaseRequest(_Request):
    """End the override now."""

    verb: Literal["release"]
    args: NoArgs = NoArgs()


class DiagRequest(_Request):
    """The status document and the supervisor's diagnostics, for ``diag bundle``."""

    verb: Literal["diag"]
    args: NoArgs = NoArgs()


Request = Annotated[
    StatusRequest | WatchRequest | PlanShowRequest | OverrideRequest | ReleaseRequest | DiagRequest,
    Field(discriminator="verb"),
]
_REQUEST: TypeAdapter[Request] = TypeAdapter(Request)
VERBS = ("status", "watch", "plan.show", "override", "release", "diag")


def parse_request(line: bytes) -> Request:
    """One request line (without its ``\\n``); :class:`LocalProtocolError` says what is wrong."""
    if len(line) >= MAX_REQUEST_BYTES:
        raise LineTooLong(f"a request is longer than {MAX_REQUEST_BYTES} bytes")
    try:
        return _REQUEST.validate_json(line)
    except ValidationError as err:
        raise LocalProtocolError(_describe(err)) from None
    except (ValueError, RecursionError) as err:  # defence: pydantic reports all of these itself
        raise LocalProtocolError(f"not a request: {type(err).__name__}") from None


def request_line(verb: str, args: dict[str, Any] | None = None, **extra: Any) -> bytes:
    """The line the client sends; :class:`LocalProtocolError` when it would not be accepted."""
    body: dict[str, Any] = {"verb": verb, "args": args or {}}
    body.update({k: v for k, v in extra.items() if v is not None})
    line = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    parse_request(line)
    return line + b"\n"


def _describe(err: ValidationError) -> str:
    problem = err.errors(include_url=False, include_input=False)[0]
    kind, loc, msg = problem["type"], problem["loc"], problem["msg"]
    ctx = problem.get("ctx") or {}
    if kind == "json_invalid":
        return one_line(f"not JSON: {ctx.get('error', msg)}")
    if kind == "union_tag_invalid":
        return one_line(f"unknown verb {ctx.get('tag')!r}: one of {', '.join(VERBS)}")
    if kind == "union_tag_not_found":
        return 'no verb: a request is {"verb": "...", "args": {...}}'
    if not loc:
        return 'a request is a JSON object: {"verb": "...", "args": {...}}'
    # loc[0] is the verb's model; union members ("constrained-int", "literal[…]") are not fields.
    fields = [str(part) for part in loc[1:] if isinstance(part, int) or _FIELD.match(str(part))]
    where = ".".join(fields) or str(loc[0])
    if kind == "extra_forbidden":
        return one_line(f"{where}: unknown field")
    if where in _HINTS:
        return f"{where}: {_HINTS[where]}"
    return one_line(f"{where}: {msg}")


_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_HINTS = {
    "args.pattern": 'give a pattern number 1-253, "free" or "flash"',
    "args.minutes": f"give a number of minutes above 0, at most {MAX_OVERRIDE_MINUTES:g}",
    "args.rate_hz": f"give a rate above 0, at most {MAX_WATCH_HZ:g} per second",
}


# -- responses -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line (control characters become spaces), cut at ``limit``."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def encode_ok(result: Any) -> bytes:
    """A success line. ValueError/TypeError when ``result`` is not JSON (a bug)."""
    body = {"ok": True, "result": result}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode() + (
        b"\n"
    )


def encode_error(code: str, message: str) -> bytes:
    """A refusal line: a stable code and one line for a person."""
    body = {"ok": False, "code": str(code), "error": one_line(message)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class _Tolerant(BaseModel):
    # A newer agent may add fields to the envelope: the client ignores them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ok(_Tolerant):
    """The request succeeded."""

    ok: Literal[True]
    result: Any = None


class Failure(_Tolerant):
    """The request failed: a stable code and one line."""

    ok: Literal[False]
    code: Annotated[str, StringConstraints(pattern=r"^E_[A-Z0-9_]{1,40}$")]
    error: Annotated[str, StringConstraints(max_length=4 * MAX_ERROR_CHARS)]


Reply = Ok | Failure
_REPLY: TypeAdapter[Reply] = TypeAdapter(Reply)


def parse_reply(line: bytes) -> Reply:
    """One response line; :class:`LocalProtocolError` when it is not one."""
    try:
        return _REPLY.validate_json(line)
    except ValidationError as err:
        problem = err.errors(include_url=False, include_input=False)[0]
        raise LocalProtocolError(
            one_line(f"the agent's answer is not a response: {problem['msg']}")
        ) from None
    except (ValueError, RecursionError) as err:
        raise LocalProtocolError(f"the agent's answer is not a response: {err}") from None
