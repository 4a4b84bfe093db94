"""A device's command-security state in a temp dir, real Ed25519 keys, and a fake clock."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import OKPKey

from agent.central.commands import CommandSettings, PlanLoadArgs, Role, check_plan_safety
from agent.central.jws import CommandVerifier, PinnedEd25519Registry, VerifiedCommand
from agent.central.signing import SigningKey, new_jti
from agent.central.trust import TrustedKey, TrustStore
from agent.plan.limits import SiteLimits
from tests.plan.factory import base_plan

DEVICE = "cabinet-17"
ISSUER = "tms.example-city"
T0 = 1_780_000_000.0

_REGISTRY = PinnedEd25519Registry(max_payload_bytes=1024 * 1024)


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: bytes, signature: bytes = b"\x00" * 64) -> str:
    """A compact JWS assembled by hand (for tokens no JOSE library would make)."""
    head = b64(json.dumps(header).encode())
    return f"{head}.{b64(payload)}.{b64(signature)}"


def sign_payload(key: SigningKey, payload: bytes) -> str:
    """A correctly signed token over any payload bytes (claims that are not claims)."""
    header = {"alg": "Ed25519", "kid": key.kid, "typ": "greenwave-cmd+jws"}
    signer = OKPKey.import_key(key.private_key)
    return jws.serialize_compact(header, payload, signer, registry=_REGISTRY)


def plan_doc(version: int = 4, **changes: Any) -> dict[str, Any]:
    doc = base_plan()
    doc["version"] = version
    doc.update(changes)
    return doc


@dataclass
class World:
    """One device: state dir, clock, keys provisioned as ``greenwave keys add`` would."""

    state_dir: Path
    clock: FakeClock = field(default_factory=FakeClock)
    settings: CommandSettings = field(default_factory=CommandSettings)
    root: SigningKey = field(default_factory=lambda: SigningKey.generate("root-1"))
    command: SigningKey = field(default_factory=lambda: SigningKey.generate("cmd-1"))
    limits: SiteLimits = field(default_factory=SiteLimits)
    verifier: CommandVerifier = field(init=False)

    def __post_init__(self) -> None:
        trust = TrustStore.open(self.state_dir / "trust.json", clock=self.clock)
        trust.add(_trusted(self.root, Role.ROOT))
        trust.add(_trusted(self.command, Role.COMMAND))
        self.verifier = self.restart()

    def restart(self) -> CommandVerifier:
        """New objects over the same state dir, as after a reboot."""
        self.verifier = CommandVerifier.open(
            self.state_dir, device_id=DEVICE, clock=self.clock, settings=self.settings
        )
        return self.verifier

    def claims(self, cmd: str = "control.pattern", **changes: Any) -> dict[str, Any]:
        """Valid claims; a change to ``None`` removes that claim."""
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": DEVICE,
            "jti": new_jti(),
            "iat": int(self.clock.now),
            "exp": int(self.clock.now) + 60,
            "cmd": cmd,
            "args": default_args(cmd),
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def token(
        self, cmd: str = "control.pattern", key: SigningKey | None = None, **changes: Any
    ) -> str:
        signer = key if key is not None else (self.root if cmd == "keys.update" else self.command)
        return signer.sign_claims(self.claims(cmd, **changes))

    def run(self, token: bytes | str) -> VerifiedCommand:
        """What the command handler does before the controller: verify, then judge a plan."""
        verified = self.verifier.verify(token)
        if verified.cmd == "plan.load":
            check_plan_safety(verified.args_as(PlanLoadArgs), self.limits, jti=verified.jti)
        return verified


def _trusted(key: SigningKey, role: Role, iss: str = ISSUER) -> TrustedKey:
    return TrustedKey(kid=key.kid, iss=iss, role=role, public_key=key.public_key_b64)


def default_args(cmd: str) -> dict[str, Any]:
    if cmd == "control.pattern":
        return {"pattern": 1, "lease_s": 600}
    if cmd == "plan.load":
        return {"plan": plan_doc()}
    if cmd == "keys.update":
        return {"version": 1, "keys": []}
    return {}


def key_entry(
    key: SigningKey, *, not_after: float = T0 + 86_400 * 30, **changes: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kid": key.kid,
        "iss": ISSUER,
        "role": "command",
        "alg": "Ed25519",
        "public_key": key.public_key_b64,
        "not_after": not_after,
    }
    entry.update(changes)
    return entry
