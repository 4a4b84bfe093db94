"""The domain error tree of greenwave.

Library exceptions (pydantic ``ValidationError``, ``serial.SerialException``,
``aiomqtt.MqttError``, ``InvalidSignature`` ...) are translated into these where
data enters the agent, raised ``from`` the original. Anything that reaches a
user (CLI, acknowledgement, log) carries one of these, never a stack trace::

    GreenwaveError
    ├── ConfigError                 the TOML config is unreadable or invalid
    ├── PlanError                   a timing plan document is unusable
    │   ├── PlanParseError          not JSON / not readable / too large  (CLI exit 2)
    │   ├── PlanSchemaError         JSON, but not a plan document        (CLI exit 2, E_SCHEMA)
    │   └── PlanUnsafeError         a plan that breaks a safety rule     (CLI exit 1, E_UNSAFE)
    ├── ProtocolError               bytes that are not a valid frame/message (typed, per codec)
    │   ├── FrameError              framing: bad delimiters, stuffing, CRC, length
    │   └── MessageError            the frame is intact, its content is not (BER, PDU, objects)
    ├── ControllerError             the controller refused, did not answer or did not confirm
    │   └── LinkDown                the controller link is down (after retries)
    ├── CommandError                a central command rejected, with its SPEC §4 code
    │   └── CommandRejected         (agent.central.commands) one refusal, code and detail
    ├── StateFileError              (agent.central.durable) a state file with no good copy (E_STATE)
    │   ├── OutboxError             (agent.central.outbox) the events outbox cannot be used
    │   └── AuditError              (agent.supervisor.audit) the audit log cannot be used
    ├── TrustStoreError             (agent.central.trust) the trust store is unusable (E_KEYS)
    ├── MqttLinkDown                (agent.central.link) the broker is unreachable (E_LINK)
    ├── PkiError                    (agent.central.pki) a certificate, key or layout (E_CERTS)
    ├── CentralError                (agent.central.client) central tool: broker or input (E_CENTRAL)
    └── DemoError                   (agent.demo) the demo cannot run or broke down (E_DEMO)

Every class has a ``code``: the stable string used in acknowledgements and
JSON output. Messages are written for a traffic engineer or a technician.
"""

from __future__ import annotations


class GreenwaveError(Exception):
    """Base of every error greenwave raises on purpose."""

    code: str = "E_INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(GreenwaveError):
    """The agent's TOML configuration cannot be read or is invalid."""

    code = "E_CONFIG"

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class PlanError(GreenwaveError):
    """A timing plan document cannot be used."""

    code = "E_SCHEMA"


class PlanParseError(PlanError):
    """The plan bytes are not a readable JSON document (or are too large)."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class PlanSchemaError(PlanError):
    """The document is JSON but not a valid plan document; one entry per problem."""

    def __init__(self, message: str, *, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        #: (field path, reason) pairs, e.g. ("phases[2].yelow", "unknown field")
        self.problems = problems


class PlanUnsafeError(PlanError):
    """The plan parses but breaks at least one safety rule (see ``violations``)."""

    code = "E_UNSAFE"

    def __init__(self, message: str, *, violations: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.violations = violations


class ProtocolError(GreenwaveError):
    """Bytes from a peer that are not a valid frame or message of the protocol."""

    code = "E_PROTOCOL"


class FrameError(ProtocolError):
    """Framing is broken: delimiters, escaping, length, or checksum."""


class MessageError(ProtocolError):
    """The frame is intact but its content is not a valid message."""


class ControllerError(GreenwaveError):
    """The controller refused, did not answer, or did not confirm a write."""

    code = "E_CONTROLLER"


class LinkDown(ControllerError):
    """The controller link is down."""


class CommandError(GreenwaveError):
    """A central command is rejected; ``code`` is one of SPEC §4's codes."""
