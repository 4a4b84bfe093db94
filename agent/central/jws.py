"""Verifying a signed central command: token bytes in, a :class:`VerifiedCommand` or a code out.

A command is a JWS in compact serialization (RFC 7515) signed with Ed25519.
The cryptography is joserfc's; this module decides *what is checked, in which
order, and which code a failure gets*. The order puts cheap checks first, so
a flood of forged commands costs a length test and a small JSON parse each,
and nothing in the claims is looked at before the signature has been
verified:

=====  =================================================  ==================
step   check                                              on failure
=====  =================================================  ==================
1      type, size ≤ ``max_token_bytes`` (before parsing),  E_SCHEMA
       ASCII, three ``.``-separated segments, non-empty
       payload
2      header: base64url JSON object, no duplicate keys   E_SCHEMA
3      header ``alg`` is ``EdDSA`` or ``Ed25519``         E_SIGNATURE
4      header ``typ`` is ``greenwave-cmd+jws``, ``kid`` a  E_SCHEMA
       string, no other header parameter (``jwk``,
       ``jku``, ``x5c``, ``crit``, ``b64`` … are refused:
       the key never comes from the token)
5      ``kid`` names a trusted, unexpired key             E_UNKNOWN_KEY
6      signature (joserfc, Ed25519 pinned by the key)     E_SIGNATURE
       payload not base64url                              E_SCHEMA
7      claims: JSON object, strict model                  E_SCHEMA
8      ``cmd`` known                                      E_SCHEMA
9      ``iss`` is the key's issuer                        E_SIGNATURE
10     the key's role may sign ``cmd``                    E_ROLE
11     ``exp > iat``                                      E_SCHEMA
       ``exp − iat`` ≤ ``max_lifetime_s``                 E_EXPIRED
       now < ``exp + skew``                               E_EXPIRED
       ``iat``, ``nbf`` ≤ now + skew                      E_NOT_YET_VALID
12     ``aud``: this device, a list naming it, or ``"*"``  E_AUDIENCE
       (heartbeat only)
13     ``args`` valid for ``cmd`` (path in the detail)    E_SCHEMA
14     plan / keys version above the stored one           E_STALE_VERSION
15     ``jti`` not seen (replay memory)                   E_REPLAY
       replay memory full                                 E_RATE
16     ``jti`` remembered durably                         E_RATE if the write
                                                          fails
=====  =================================================  ==================

Choices where SPEC leaves room, and why:

* **The algorithm is pinned by the key.** The header's ``alg`` is only
  checked against ``{"EdDSA", "Ed25519"}``; both resolve to Ed25519 with the
  trusted key (:class:`PinnedEd25519Registry`). ``none``, ``HS256`` (the
  classic trick of using the public key as an HMAC secret), ``RS256`` … are
  ``E_SIGNATURE``: what is wrong is the signature scheme.
* **Malformed structure is E_SCHEMA; a signature that does not verify is
  E_SIGNATURE.** A truncated token is therefore E_SCHEMA when the cut breaks
  the structure (fewer segments, broken header) and E_SIGNATURE when it only
  shortens the signature or payload. Claims that are not JSON under a valid
  signature are E_SCHEMA (signed, but not a command).
* **A key used for another issuer is E_SIGNATURE**: the token claims to come
  from an issuer whose keys did not sign it, which is what a forgery is.
  E_ROLE is kept for "right issuer, key not allowed to sign this command".
* **Too long-lived is E_EXPIRED**: it is a validity-window failure, and the
  remedy (mint shorter-lived tokens) is central's; E_SCHEMA stays "not shaped
  like a command". ``exp ≤ iat`` is E_SCHEMA: no window at all.
* **An expired key is E_UNKNOWN_KEY** (see :mod:`agent.central.trust`).
* **Which ids are burned.** ``verify()`` remembers the ``jti`` as its last
  step, once every check above has passed, and before the caller does
  anything with the command. So a command the caller then refuses (E_UNSAFE,
  E_OVERRIDE, E_NO_PLAN, E_CLOCK …) cannot be replayed later, when the
  override has ended or a plan is loaded, to run out of its time and order.
  Tokens refused *by* ``verify()`` are not remembered: each such refusal is
  permanent (a signature, audience or schema never changes, an expired token
  never becomes valid) except E_NOT_YET_VALID / E_UNKNOWN_KEY, where a later
  attempt can succeed only once, as central meant.
* ``jti``/``cmd`` in a rejection are set only after the signature verified.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from joserfc import jws
from joserfc.errors import ExceededSizeError, JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode
from pydantic import ValidationError

from agent.central.commands import (
    ACCEPTED_ALGS,
    COMMAND_TYP,
    COMMANDS,
    Code,
    CommandClaims,
    CommandRejected,
    CommandSettings,
    CommandSpec,
    KeysUpdateArgs,
    PlanLoadArgs,
    StrictModel,
)
from agent.central.durable import StateFileError, show, strict_json_loads
from agent.central.replay import (
    PLAN_VERSION_FILE,
    REPLAY_FILE,
    ReplayMemory,
    VersionRecord,
)
from agent.central.trust import TRUST_FILE, TrustedKey, TrustStore
from agent.plan.document import schema_problems

A = TypeVar("A", bound=StrictModel)
Clock = Callable[[], float]

#: Largest protected header accepted (ours is ~90 bytes of base64url).
MAX_HEADER_BYTES = 1024
#: An Ed25519 signature is 86 base64url characters.
MAX_SIGNATURE_BYTES = 128
_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
_JTI = re.compile(r"[\x21-\x7e]{1,64}")
_DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_WHITESPACE = b" \t\r\n"

# Ed25519 as a fully specified algorithm (RFC 9864); joserfc releases before it
# only have the polymorphic "EdDSA", which verifies Ed25519 keys identically.
_ED25519: JWSAlgModel = JWSRegistry.algorithms.get("Ed25519") or JWSRegistry.algorithms["EdDSA"]


class PinnedEd25519Registry(JWSRegistry):
    """A joserfc registry in which every accepted ``alg`` name means Ed25519.

    The header's ``alg`` never chooses the verification algorithm: "EdDSA" and
    "Ed25519" both resolve to Ed25519, any other name is unsupported (and the
    trust store holds Ed25519 keys only). This also keeps joserfc from warning that
    "EdDSA" is deprecated (RFC 9864) — the warning is about the ambiguity
    between Ed25519 and Ed448, which pinning removes. Sizes are bounded to
    what a command can need.
    """

    def __init__(self, *, max_payload_bytes: int) -> None:
        super().__init__(algorithms=sorted(ACCEPTED_ALGS))
        self.max_header_length = MAX_HEADER_BYTES
        self.max_payload_length = max_payload_bytes
        self.max_signature_length = MAX_SIGNATURE_BYTES

    def get_alg(self, name: str) -> JWSAlgModel:
        """Ed25519 for an accepted name; :class:`UnsupportedAlgorithmError` otherwise."""
        if name not in ACCEPTED_ALGS:
            raise UnsupportedAlgorithmError(f"algorithm {name!r} is not accepted")
        return _ED25519


@dataclass(frozen=True, kw_only=True)
class VerifiedCommand:
    """A command whose signature, key, claims and arguments all passed; its id is burned."""

    jti: str
    iss: str
    kid: str
    cmd: str
    #: The command's argument model (see :data:`agent.central.commands.COMMANDS`).
    args: StrictModel
    iat: float
    exp: float
    nbf: float | None
    aud: tuple[str, ...]
    #: The whole verified claim set.
    claims: CommandClaims

    def args_as(self, model: type[A]) -> A:
        """``args`` as the model the caller expects for ``cmd`` (TypeError if not)."""
        if not isinstance(self.args, model):
            raise TypeError(f"{self.cmd} carries {type(self.args).__name__}, not {model.__name__}")
        return self.args


@dataclass(frozen=True, kw_only=True)
class _Header:
    kid: str


class CommandVerifier:
    """The one verification pipeline for signed commands (see the module docstring).

    Not thread-safe: call it from one task at a time (the command handler
    serialises commands anyway). ``verify()`` blocks for one fsync'd write of
    the replay memory when it accepts a command other than a heartbeat
    (milliseconds on an SD card); the handler may run it in a worker thread.
    """

    def __init__(
        self,
        *,
        device_id: str,
        trust: TrustStore,
        replay: ReplayMemory,
        plan_version: VersionRecord,
        clock: Clock,
        settings: CommandSettings | None = None,
    ) -> None:
        if not _DEVICE_ID.fullmatch(device_id):
            raise ValueError(f"not a device id: {device_id!r}")
        self.device_id = device_id
        self.trust = trust
        self.replay = replay
        self.plan_version = plan_version
        self.settings = settings if settings is not None else CommandSettings()
        self._clock = clock
        self._registry = PinnedEd25519Registry(max_payload_bytes=self.settings.max_token_bytes)

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        device_id: str,
        clock: Clock,
        settings: CommandSettings | None = None,
    ) -> CommandVerifier:
        """Open the trust store, replay memory and plan version under ``state_dir``.

        Raises :class:`~agent.central.durable.StateFileError` when the trust
        store or the plan version has no good copy (the replay memory never
        raises: see :mod:`agent.central.replay`).
        """
        settings = settings if settings is not None else CommandSettings()
        return cls(
            device_id=device_id,
            trust=TrustStore.open(state_dir / TRUST_FILE, clock=clock),
            replay=ReplayMemory.open(state_dir / REPLAY_FILE, settings=settings, clock=clock),
            plan_version=VersionRecord.open(state_dir / PLAN_VERSION_FILE),
            clock=clock,
            settings=settings,
        )

    # -- the pipeline ------------------------------------------------------------------

    def verify(self, token: bytes | str, *, remember: bool = True) -> VerifiedCommand:
        """Verify ``token``; raise :class:`CommandRejected` (and nothing else) when refused.

        With ``remember`` (the default, and what the command handler wants)
        the ``jti`` is durably recorded before this returns. ``remember=False``
        checks without burning the id (a dry run, e.g. ``greenwave central
        verify``).
        """
        raw = self._bytes(token)
        header_segment = raw[: raw.index(b".")]
        header = self._header(header_segment)
        key = self.trust.lookup(header.kid)
        payload = self._verified_payload(raw, key)
        claims, jti_hint, cmd_hint = self._claims(payload)
        try:
            return self._judge(claims, key, remember=remember)
        except CommandRejected as rejection:
            if rejection.jti is None:
                rejection.jti = jti_hint
            if rejection.cmd is None:
                rejection.cmd = cmd_hint
            raise

    def _bytes(self, token: object) -> bytes:
        limit = self.settings.max_token_bytes
        if isinstance(token, str):
            if len(token) > limit:
                raise _too_large(len(token), limit)
            try:
                raw = token.encode("ascii")
            except UnicodeEncodeError:
                raise CommandRejected(
                    Code.E_SCHEMA, "not a JWS compact token (non-ASCII characters)"
                ) from None
        elif isinstance(token, bytes | bytearray | memoryview):
            if len(token) > limit:
                raise _too_large(len(token), limit)
            raw = bytes(token)
        else:
            raise CommandRejected(Code.E_SCHEMA, f"not a token ({type(token).__name__})")
        raw = raw.strip(_WHITESPACE)
        segments = raw.count(b".") + 1
        if segments != 3:
            raise CommandRejected(
                Code.E_SCHEMA,
                f"not a JWS compact token ({segments} segment(s); expected 3: "
                "header.payload.signature)",
            )
        first, second = raw.index(b"."), raw.rindex(b".")
        if first == 0 or second == first + 1:
            raise CommandRejected(
                Code.E_SCHEMA, "not a JWS compact token (empty header or payload)"
            )
        return raw

    def _header(self, segment: bytes) -> _Header:
        if len(segment) > MAX_HEADER_BYTES:
            raise CommandRejected(Code.E_SCHEMA, f"JWS header larger than {MAX_HEADER_BYTES} bytes")
        try:
            decoded = urlsafe_b64decode(segment)
        except (binascii.Error, ValueError) as err:
            raise CommandRejected(Code.E_SCHEMA, "JWS header is not base64url") from err
        try:
            header = strict_json_loads(decoded)
        except ValueError as err:
            raise CommandRejected(Code.E_SCHEMA, f"JWS header: {err}") from err
        if not isinstance(header, dict):
            raise CommandRejected(Code.E_SCHEMA, "JWS header is not a JSON object")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ACCEPTED_ALGS:
            raise CommandRejected(
                Code.E_SIGNATURE,
                f"algorithm {show(alg)} is not accepted; commands are signed with Ed25519",
            )
        typ = header.get("typ")
        if typ != COMMAND_TYP:
            raise CommandRejected(
                Code.E_SCHEMA, f"JWS typ is {show(typ)}, not {COMMAND_TYP!r}: not a command"
            )
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise CommandRejected(Code.E_SCHEMA, "JWS header has no kid (key id)")
        extra = sorted(set(header) - _HEADER_MEMBERS)
        if extra:
            names = ", ".join(show(name, 24) for name in extra[:3])
            raise CommandRejected(Code.E_SCHEMA, f"JWS header parameter(s) not allowed: {names}")
        return _Header(kid=kid)

    def _verified_payload(self, raw: bytes, key: TrustedKey) -> bytes:
        try:
            signed = jws.extract_compact(raw, registry=self._registry)
        except ExceededSizeError as err:
            raise CommandRejected(Code.E_SCHEMA, f"too large: {err.description}") from err
        except (JoseError, ValueError, TypeError) as err:
            raise CommandRejected(
                Code.E_SCHEMA, "JWS payload is not base64url (truncated or garbled?)"
            ) from err
        try:
            valid = jws.validate_compact(signed, key.jwk, registry=self._registry)
        except (JoseError, ValueError, TypeError) as err:
            raise CommandRejected(
                Code.E_SIGNATURE, f"signature check failed with key {key.kid}: {_jose(err)}"
            ) from err
        if not valid:
            raise CommandRejected(
                Code.E_SIGNATURE, f"the signature does not verify with key {key.kid}"
            )
        return signed.payload

    def _claims(self, payload: bytes) -> tuple[CommandClaims, str | None, str | None]:
        try:
            data = strict_json_loads(payload)
        except ValueError as err:
            raise CommandRejected(Code.E_SCHEMA, f"signed claims: {err}") from err
        if not isinstance(data, dict):
            raise CommandRejected(Code.E_SCHEMA, "signed claims are not a JSON object")
        jti = data.get("jti")
        jti_hint = jti if isinstance(jti, str) and _JTI.fullmatch(jti) else None
        cmd = data.get("cmd")
        cmd_hint = cmd if isinstance(cmd, str) and cmd in COMMANDS else None
        try:
            claims = CommandClaims.model_validate(data)
        except ValidationError as err:
            raise CommandRejected(
                Code.E_SCHEMA, _problems("claims", err, CommandClaims), jti=jti_hint, cmd=cmd_hint
            ) from err
        return claims, jti_hint, cmd_hint

    def _judge(self, claims: CommandClaims, key: TrustedKey, *, remember: bool) -> VerifiedCommand:
        spec = COMMANDS.get(claims.cmd)
        if spec is None:
            raise CommandRejected(
                Code.E_SCHEMA,
                f"unknown command {show(claims.cmd)} (known: {', '.join(COMMANDS)})",
            )
        if claims.iss != key.iss:
            raise CommandRejected(
                Code.E_SIGNATURE,
                f"key {key.kid} belongs to issuer {key.iss!r}, not {claims.iss!r}",
            )
        if key.role != spec.role:
            raise CommandRejected(
                Code.E_ROLE,
                f"{spec.name} must be signed by a {spec.role} key; {key.kid} is a {key.role} key",
            )
        self._check_times(claims)
        self._check_audience(claims, spec)
        args = self._args(claims, spec)
        if isinstance(args, PlanLoadArgs):
            self.plan_version.check_newer(args.plan.version)
        elif isinstance(args, KeysUpdateArgs):
            self.trust.check_update_version(args.version)
        self.replay.check(claims.jti)
        if remember:
            try:
                self.replay.remember(claims.jti, claims.exp, sync=spec.name != "heartbeat")
            except StateFileError as err:
                raise CommandRejected(
                    Code.E_RATE,
                    f"cannot store the command id durably ({err}); try again later",
                ) from err
        return VerifiedCommand(
            jti=claims.jti,
            iss=claims.iss,
            kid=key.kid,
            cmd=spec.name,
            args=args,
            iat=claims.iat,
            exp=claims.exp,
            nbf=claims.nbf,
            aud=claims.audience,
            claims=claims,
        )

    def _check_times(self, claims: CommandClaims) -> None:
        settings = self.settings
        now = self._clock()
        if claims.exp <= claims.iat:
            raise CommandRejected(
                Code.E_SCHEMA, f"exp {claims.exp:.0f} is not after iat {claims.iat:.0f}"
            )
        lifetime = claims.exp - claims.iat
        if lifetime > settings.max_lifetime_s:
            raise CommandRejected(
                Code.E_EXPIRED,
                f"the command is valid for {lifetime:.0f} s; at most "
                f"{settings.max_lifetime_s:.0f} s is accepted",
            )
        if now >= claims.exp + settings.skew_s:
            raise CommandRejected(
                Code.E_EXPIRED, f"the command expired {now - claims.exp:.0f} s ago"
            )
        if claims.iat > now + settings.skew_s:
            raise CommandRejected(
                Code.E_NOT_YET_VALID,
                f"issued {claims.iat - now:.0f} s in the future (skew tolerated: "
                f"{settings.skew_s:.0f} s); check the clocks",
            )
        if claims.nbf is not None and claims.nbf > now + settings.skew_s:
            raise CommandRejected(
                Code.E_NOT_YET_VALID, f"not valid before {claims.nbf - now:.0f} s from now"
            )

    def _check_audience(self, claims: CommandClaims, spec: CommandSpec) -> None:
        audience = claims.audience
        if "*" in audience:
            if not spec.broadcast:
                raise CommandRejected(
                    Code.E_AUDIENCE,
                    f"aud '*' (every device) is allowed for heartbeat only, not {spec.name}",
                )
            return
        if self.device_id not in audience:
            named = show(audience[0]) if len(audience) == 1 else f"{len(audience)} devices"
            raise CommandRejected(
                Code.E_AUDIENCE, f"addressed to {named}, not to this device {self.device_id!r}"
            )

    def _args(self, claims: CommandClaims, spec: CommandSpec) -> StrictModel:
        try:
            return spec.args.model_validate(claims.args)
        except ValidationError as err:
            raise CommandRejected(
                Code.E_SCHEMA, f"{spec.name}: {_problems('args', err, spec.args)}"
            ) from err


def _too_large(size: int, limit: int) -> CommandRejected:
    return CommandRejected(
        Code.E_SCHEMA, f"too large: {size} bytes; a command is at most {limit} bytes"
    )


def _problems(prefix: str, err: ValidationError, model: type[StrictModel]) -> str:
    problems = schema_problems(err, model)
    if not problems:
        return f"{prefix}: invalid"
    shown = [
        f"{prefix if path == '(document)' else f'{prefix}.{path}'}: {why}"
        for path, why in problems[:3]
    ]
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(shown) + more


def _jose(err: Exception) -> str:
    description = getattr(err, "description", None)
    return str(description or type(err).__name__)
