"""The central command contract of SPEC §4 as data: codes, claims, arguments, acks.

Everything central may say to a device is here, as strict pydantic models
(``strict=True``, ``extra="forbid"``, frozen): a field that is unknown, of the
wrong JSON type or out of range is a schema error with its path
(``args.plan.phases[2].yelow: unknown field; did you mean 'yellow'?``), never
a value coerced into something central did not write. A ``"5"`` is not a 5
and a ``true`` is not a 1.

:data:`COMMANDS` maps each command name to its argument model and to the key
role that may sign it: **root** keys (offline) sign ``keys.update`` only;
**command** keys (online, held by central) sign everything else. A stolen
command key can therefore never replace the keys that would revoke it.

Every rejection is a :class:`CommandRejected` carrying one :class:`Code` and a
one-line detail for a human; the MQTT handler turns it into an :class:`Ack`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from agent.errors import CommandError
from agent.plan.limits import SiteLimits
from agent.plan.model import PatternChoice, Plan
from agent.plan.validator import Report, validate_plan


class Code(enum.StrEnum):
    """Acknowledgement codes (SPEC §4). The strings are a contract; never rename one."""

    OK = "OK"
    E_SIGNATURE = "E_SIGNATURE"
    E_UNKNOWN_KEY = "E_UNKNOWN_KEY"
    E_ROLE = "E_ROLE"
    E_EXPIRED = "E_EXPIRED"
    E_NOT_YET_VALID = "E_NOT_YET_VALID"
    E_REPLAY = "E_REPLAY"
    E_AUDIENCE = "E_AUDIENCE"
    E_SCHEMA = "E_SCHEMA"
    E_UNSAFE = "E_UNSAFE"
    E_STALE_VERSION = "E_STALE_VERSION"
    E_NO_PLAN = "E_NO_PLAN"
    E_OVERRIDE = "E_OVERRIDE"
    E_CLOCK = "E_CLOCK"
    E_CONTROLLER = "E_CONTROLLER"
    E_RATE = "E_RATE"


class AckStatus(enum.StrEnum):
    """Where a command stands: ``accepted`` (verified and durably stored),
    ``applied`` (the controller confirmed by read-back), ``rejected`` (never
    reached the controller), ``failed`` (reached it, did not take effect)."""

    ACCEPTED = "accepted"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"


class Role(enum.StrEnum):
    """What a trusted key may sign."""

    #: Offline keys: sign ``keys.update`` only.
    ROOT = "root"
    #: Online keys held by central: sign every other command.
    COMMAND = "command"


#: The JWS ``typ`` header every command carries.
COMMAND_TYP = "greenwave-cmd+jws"
#: Header ``alg`` values accepted; either way the key's algorithm (Ed25519) is used.
ACCEPTED_ALGS = frozenset({"EdDSA", "Ed25519"})
#: The only key algorithm the trust store holds.
KEY_ALG = "Ed25519"
ED25519_PUBLIC_KEY_BYTES = 32


class CommandRejected(CommandError):
    """A command refused with one of SPEC §4's codes; ``detail`` is one line for a human.

    ``jti`` and ``cmd`` are set only once they are known from a *verified*
    signature: an acknowledgement never echoes an unauthenticated id as if it
    were central's.
    """

    code: Code

    def __init__(
        self, code: Code, detail: str, *, jti: str | None = None, cmd: str | None = None
    ) -> None:
        one_line = " ".join(detail.split())
        super().__init__(one_line, code=code)
        self.code = code
        self.detail = one_line
        self.jti = jti
        self.cmd = cmd

    def __repr__(self) -> str:
        return f"CommandRejected({self.code}, {self.detail!r}, jti={self.jti!r})"


@dataclass(frozen=True, kw_only=True)
class CommandSettings:
    """The tunables of command verification (config section ``[central]``)."""

    #: Clock skew tolerated on ``iat``, ``nbf`` and ``exp``, in seconds.
    skew_s: float = 30.0
    #: Longest lifetime ``exp − iat`` a command may claim, in seconds.
    max_lifetime_s: float = 300.0
    #: Largest token read at all; checked before any parsing. A plan.load is 10-50 KiB.
    max_token_bytes: int = 256 * 1024
    #: Most unexpired command ids remembered; beyond it new commands get E_RATE.
    replay_capacity: int = 4096

    def __post_init__(self) -> None:
        if not (0 <= self.skew_s <= 600):
            raise ValueError("skew_s must be within 0..600 s")
        if not (1 <= self.max_lifetime_s <= 86_400):
            raise ValueError("max_lifetime_s must be within 1..86400 s")
        if not (1024 <= self.max_token_bytes <= 16 * 1024 * 1024):
            raise ValueError("max_token_bytes must be within 1 KiB..16 MiB")
        if not (16 <= self.replay_capacity <= 1_000_000):
            raise ValueError("replay_capacity must be within 16..1000000")

    @property
    def replay_window_s(self) -> float:
        """How long after its verification a seen token could still pass the time checks."""
        return self.max_lifetime_s + 2 * self.skew_s


# -- field types ------------------------------------------------------------------

#: Seconds since the epoch (JWT NumericDate): integer or fraction, finite, after 1970.
NumericDate = Annotated[float, Field(ge=0, le=2**40, allow_inf_nan=False)]
#: A key id: what JWK thumbprints, UUIDs and hand-made names look like.
KeyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
#: An issuer id (printable ASCII, no spaces).
IssuerId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
#: A command id: printable ASCII without spaces, at most 64 characters (SPEC §4).
Jti = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,64}$")]
#: Most device ids one group command may name.
MAX_AUDIENCE = 10_000


def decode_public_key(value: str) -> bytes:
    """Raw Ed25519 public key bytes from unpadded base64url; ValueError otherwise."""
    if len(value) != 43:
        raise ValueError("an Ed25519 public key is 43 base64url characters (32 bytes, no padding)")
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError) as err:
        raise ValueError("not base64url") from err
    if len(raw) != ED25519_PUBLIC_KEY_BYTES or encode_public_key(raw) != value:
        raise ValueError("not a canonical base64url encoding of 32 bytes")
    return raw


def encode_public_key(raw: bytes) -> str:
    """Unpadded base64url of raw key bytes (the trust store's and the wire's form)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _public_key(value: str) -> str:
    decode_public_key(value)
    return value


PublicKeyB64 = Annotated[str, AfterValidator(_public_key)]


class StrictModel(BaseModel):
    """Base of every wire and state model here: strict types, no unknown fields, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# -- claims -----------------------------------------------------------------------


class CommandClaims(StrictModel):
    """The JWS payload of every command (SPEC §4). Checked only after the signature."""

    iss: IssuerId
    aud: str | list[str]
    jti: Jti
    iat: NumericDate
    exp: NumericDate
    nbf: NumericDate | None = None
    cmd: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    args: dict[str, Any]

    @field_validator("aud")
    @classmethod
    def _audience_shape(cls, aud: str | list[str]) -> str | list[str]:
        entries = [aud] if isinstance(aud, str) else aud
        if not 1 <= len(entries) <= MAX_AUDIENCE:
            raise ValueError(f"a device id or a list of 1 to {MAX_AUDIENCE} device ids")
        if any(not 1 <= len(entry) <= 64 for entry in entries):
            raise ValueError("a device id is 1 to 64 characters")
        return aud

    @property
    def audience(self) -> tuple[str, ...]:
        """``aud`` as a tuple, whether central sent one id or a list."""
        return (self.aud,) if isinstance(self.aud, str) else tuple(self.aud)


# -- arguments, one model per command ---------------------------------------------


class HeartbeatArgs(StrictModel):
    """``heartbeat {}``: central is alive; renews the central lease."""


class PlanLoadArgs(StrictModel):
    """``plan.load {"plan": …}``: the timing plan document (SPEC §5), schema-checked.

    Safety is a separate step (:func:`check_plan_safety`) because it needs the
    device's own site limits.
    """

    plan: Plan


class ControlPatternArgs(StrictModel):
    """``control.pattern``: run a pattern of the loaded plan, ``free`` or ``flash``."""

    pattern: PatternChoice
    activate_at: NumericDate | None = None
    lease_s: Annotated[float, Field(ge=1, le=86_400, allow_inf_nan=False)] | None = None


class ControlReleaseArgs(StrictModel):
    """``control.release {}``: back to the local time-of-day schedule."""


class DiagRequestArgs(StrictModel):
    """``diag.request {}``: publish a diagnostics summary on ``ack``."""


class KeyEntry(StrictModel):
    """One command key in a ``keys.update``: only ``role: command``, only Ed25519."""

    kid: KeyId
    iss: IssuerId
    role: Literal["command"]
    alg: Literal["Ed25519"]
    #: Unpadded base64url of the 32 raw public key bytes.
    public_key: PublicKeyB64
    #: Expiry, seconds since the epoch.
    not_after: NumericDate


class KeysUpdateArgs(StrictModel):
    """``keys.update``: the complete new set of command keys, with a rising version."""

    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    keys: list[KeyEntry] = Field(max_length=64)

    @model_validator(mode="after")
    def _unique_kids(self) -> Self:
        kids = [key.kid for key in self.keys]
        duplicates = sorted({kid for kid in kids if kids.count(kid) > 1})
        if duplicates:
            raise ValueError(f"key id listed twice: {', '.join(duplicates)}")
        return self


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """What a command takes and who may sign it."""

    name: str
    args: type[StrictModel]
    role: Role
    #: True when ``aud`` may be ``"*"`` (every device).
    broadcast: bool = False


COMMANDS: Mapping[str, CommandSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            CommandSpec(name="heartbeat", args=HeartbeatArgs, role=Role.COMMAND, broadcast=True),
            CommandSpec(name="plan.load", args=PlanLoadArgs, role=Role.COMMAND),
            CommandSpec(name="control.pattern", args=ControlPatternArgs, role=Role.COMMAND),
            CommandSpec(name="control.release", args=ControlReleaseArgs, role=Role.COMMAND),
            CommandSpec(name="keys.update", args=KeysUpdateArgs, role=Role.ROOT),
            CommandSpec(name="diag.request", args=DiagRequestArgs, role=Role.COMMAND),
        )
    }
)


# -- plan safety --------------------------------------------------------------------


def check_plan_safety(args: PlanLoadArgs, limits: SiteLimits, *, jti: str | None = None) -> Report:
    """Run the validator with the device's site limits; E_UNSAFE names every broken rule.

    Returns the report (it may hold warnings) when the plan may be loaded.
    """
    report = validate_plan(args.plan, limits)
    if not report.ok:
        first = report.errors[0]
        rules = ", ".join(sorted(report.rule_ids()))
        raise CommandRejected(
            Code.E_UNSAFE,
            f"plan {args.plan.version} breaks {len(report.errors)} safety rule(s): {rules}; "
            f"first: {first.rule} at {first.place} ({first.path}): {first.message}",
            jti=jti,
            cmd="plan.load",
        )
    return report


# -- acknowledgement ---------------------------------------------------------------


class Ack(StrictModel):
    """The acknowledgement on ``greenwave/v1/<dev>/ack`` (SPEC §4)."""

    device: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    #: The command's id; null when the command was refused before its signature
    #: was verified (the id of an unauthenticated token is not echoed).
    jti: Jti | None
    cmd: Annotated[str, StringConstraints(max_length=64)] | None
    # Lax for these two only, so that a dict read from JSON validates too.
    status: Annotated[AckStatus, Field(strict=False)]
    code: Annotated[Code, Field(strict=False)]
    detail: Annotated[str, StringConstraints(max_length=1000)] = ""
    #: When the device sent it, seconds since the epoch.
    ts: NumericDate
    #: Only on the ``applied`` ack of ``diag.request``: the diagnostics summary.
    diag: dict[str, Any] | None = None

    @classmethod
    def rejected(cls, device: str, rejection: CommandRejected, ts: float) -> Ack:
        """The ``rejected`` ack for a rejection."""
        return cls(
            device=device,
            jti=rejection.jti,
            cmd=rejection.cmd,
            status=AckStatus.REJECTED,
            code=rejection.code,
            detail=rejection.detail[:1000],
            ts=_finite(ts),
        )

    def to_bytes(self) -> bytes:
        """The MQTT payload."""
        body = self.model_dump(mode="json")
        if body["diag"] is None:
            del body["diag"]
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
