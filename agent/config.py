"""The agent's one TOML configuration file, validated at start-up with clear errors.

Where it is read from, first match wins: ``--config PATH``, the environment
variable ``GREENWAVE_CONFIG``, then :data:`DEFAULT_CONFIG_PATH`. Any single
value can be overridden from the environment as ``GREENWAVE_<SECTION>__<KEY>``
(for example ``GREENWAVE_LOGGING__LEVEL=debug``), which is how systemd drop-ins
and containers tune a device without editing the file.

Unknown sections and keys are errors, as in the plan document: a typo in a
safety floor must never silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from agent.errors import ConfigError
from agent.plan.document import schema_problems
from agent.plan.limits import SiteLimits

DEFAULT_CONFIG_PATH = Path("/etc/greenwave/agent.toml")
CONFIG_ENV = "GREENWAVE_CONFIG"
MAX_CONFIG_BYTES = 256 * 1024

DeviceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceConfig(_Section):
    """``[device]``: who this agent is on the MQTT contract."""

    #: The device id used in every topic (SPEC §4): ``[a-z0-9][a-z0-9-]{0,62}``.
    id: DeviceId
    #: Groups whose ``greenwave/v1/group/<group>/cmd`` topic this device follows.
    groups: tuple[DeviceId, ...] = ()
    #: Free text for people: where the cabinet is.
    location: Annotated[str, Field(max_length=200)] = ""


class LoggingConfig(_Section):
    """``[logging]``: level and format (``auto``: readable on a terminal, JSON otherwise)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class StateConfig(_Section):
    """``[state]``: where durable state lives (systemd ``StateDirectory=``)."""

    dir: Path = Path("/var/lib/greenwave")
    #: The local fallback plan, used when central never loaded one.
    fallback_plan: Path | None = None


class ControllerConfig(_Section):
    """``[controller]``: the signal controller in this cabinet (docs/controllers.md).

    ``url`` names protocol and transport (``udp://HOST:PORT``,
    ``serial:///dev/ttyUSB0?baud=38400``, ``tcp://HOST:PORT``); the other keys
    are defaults that query parameters in the URL override.
    """

    url: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    community: Annotated[str, Field(min_length=1, max_length=64)] = "public"
    address: Annotated[int, Field(ge=0, le=8191)] = 1
    baud: Annotated[int, Field(ge=50, le=4_000_000)] = 38400
    timeout_ms: Annotated[int, Field(ge=10, le=60_000)] = 500
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    max_varbinds: Annotated[int, Field(ge=1, le=255)] = 20
    #: Status polls per second.
    poll_hz: Annotated[float, Field(gt=0, le=50)] = 10.0
    #: Consecutive failed polls before the link counts as down.
    down_after: Annotated[int, Field(ge=1, le=100)] = 3
    #: Keep the controller's clock on the system clock (off where the controller
    #: has its own time source, e.g. GPS, or in simulations faster than real time).
    set_clock: bool = True


class MqttConfig(_Section):
    """``[mqtt]``: the city's broker (docs/central-integration.md).

    The session is persistent (clean session off) under a fixed client id, so
    commands published while the agent was away are delivered when it returns.
    With ``tls`` the broker is verified against ``ca_file`` and, when
    ``cert_file``/``key_file`` are given, the agent authenticates with its
    client certificate.
    """

    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    #: Defaults to ``greenwave-<device id>``.
    client_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    #: A file holding the password (never the password itself in this file).
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    #: First and longest wait between reconnect attempts (jittered, doubling).
    reconnect_initial_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s must not exceed reconnect_max_s")
        return self


class CentralConfig(_Section):
    """``[central]``: command verification limits and telemetry rates (SPEC §4)."""

    #: Clock skew tolerated on ``iat``/``nbf``/``exp`` (s).
    skew_s: Annotated[float, Field(ge=0, le=600)] = 30.0
    #: Longest ``exp - iat`` a command may claim (s).
    max_command_lifetime_s: Annotated[float, Field(ge=1, le=86_400)] = 300.0
    #: Largest command read at all, checked before parsing (bytes).
    max_command_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    #: Most unexpired command ids remembered against replay.
    replay_capacity: Annotated[int, Field(ge=16, le=1_000_000)] = 4096
    #: Central is lost when no valid heartbeat arrives for this long (s).
    heartbeat_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 15.0
    #: The controller's own backup timer, in the controller's seconds (0: twice
    #: heartbeat_timeout_s plus 5 s). It must be longer than heartbeat_timeout_s.
    backup_time_s: Annotated[int, Field(ge=0, le=65535)] = 0
    #: ``state`` is republished at least this often (s).
    state_interval_s: Annotated[float, Field(ge=1, le=300)] = 30.0
    #: Most ``spat`` messages per second.
    spat_hz: Annotated[float, Field(ge=0, le=10)] = 10.0
    #: Most events kept on disk for central (oldest dropped beyond, with a gap record).
    events_capacity: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    #: Most events in one ``events`` message.
    events_batch: Annotated[int, Field(ge=1, le=1000)] = 100
    #: Command messages per second taken off the topics (beyond: dropped, counted).
    command_rate: Annotated[float, Field(ge=1, le=100_000)] = 3000.0
    #: Command messages waiting for verification (beyond: dropped, counted).
    command_queue: Annotated[int, Field(ge=1, le=100_000)] = 256


class ClockConfig(_Section):
    """``[clock]``: when the system clock is trusted for coordination (docs/clock.md).

    ``kernel`` (production): the kernel's NTP state, which chrony, ntpd and
    systemd-timesyncd all keep; ``file``: the first word of ``trust_file`` is
    ``synced`` (GPS/PPS scripts, tests); ``always``/``never``: as configured.
    Untrusted, coordinated patterns and ``activate_at`` are refused (E_CLOCK).
    """

    trust: Literal["kernel", "always", "never", "file"] = "kernel"
    #: With ``trust = "file"``: the file whose first word says ``synced``.
    trust_file: Path | None = None
    #: Largest error bound (kernel ``maxerror``) still trusted (s): the corridor's tolerance.
    max_error_s: Annotated[float, Field(gt=0, le=16)] = 0.5
    #: How often the verdict is re-checked for ``state`` (s).
    check_interval_s: Annotated[float, Field(ge=0.1, le=3600)] = 10.0

    @model_validator(mode="after")
    def _trust_file(self) -> Self:
        if self.trust == "file" and self.trust_file is None:
            raise ValueError('trust = "file" needs trust_file')
        if self.trust != "file" and self.trust_file is not None:
            raise ValueError('trust_file is only read with trust = "file"')
        return self


#: Longest path a unix socket can bind to (``sun_path`` is 108 bytes with its NUL).
MAX_SOCKET_PATH_BYTES = 107


class LocalConfig(_Section):
    """``[local]``: the technician's control socket (docs/technician.md).

    ``greenwave status``, ``override``, ``release``… talk to the running agent
    over this unix socket. It is created with ``mode`` and group ``group``;
    the agent also checks every peer's credentials (root, the agent's own
    user, or a member of ``group``). When the group does not exist the socket
    is made ``0600`` (the agent's user and root only), never wider.
    """

    socket: Path = Path("/run/greenwave/agent.sock")
    group: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}\$?$")] = "greenwave"
    #: Permission bits of the socket: owner read/write, the group's bits, nothing for others.
    mode: Annotated[int, Field(ge=0o600, le=0o770)] = 0o660

    @model_validator(mode="after")
    def _socket(self) -> Self:
        if not self.socket.is_absolute():
            raise ValueError("socket must be an absolute path")
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH_BYTES:
            raise ValueError(f"socket path is longer than {MAX_SOCKET_PATH_BYTES} bytes")
        if self.mode & 0o600 != 0o600 or self.mode & ~0o770:
            raise ValueError("mode must give the owner rw and nothing to others (e.g. 0o660)")
        return self


class AgentConfig(BaseSettings):
    """The whole configuration file."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="GREENWAVE_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    device: DeviceConfig
    site: SiteLimits = SiteLimits()
    controller: ControllerConfig = ControllerConfig()
    logging: LoggingConfig = LoggingConfig()
    state: StateConfig = StateConfig()
    mqtt: MqttConfig = MqttConfig()
    central: CentralConfig = CentralConfig()
    clock: ClockConfig = ClockConfig()
    local: LocalConfig = LocalConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (passed in as init values).
        return (env_settings, init_settings)


def resolve_config_path(explicit: Path | None) -> Path:
    """``--config``, else ``$GREENWAVE_CONFIG``, else the default path."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG_PATH


def parse_config(text: str, *, source: str = "config") -> AgentConfig:
    """Validate TOML text as the agent config; :class:`ConfigError` lists every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}", problems=(str(err),)) from err
    # BaseSettings takes keyword arguments named ``_env_file``, ``_secrets_dir``,
    # ``_cli_parse_args`` ... beside the fields: a top-level key with one of those
    # names would steer the loader (read another file, parse sys.argv) or crash it
    # with a SettingsError. No section starts with "_", so each is an unknown key.
    private = sorted(key for key in data if key.startswith("_"))
    if private:
        known = ", ".join(AgentConfig.model_fields)
        problems = tuple(f"{key}: unknown field (known: {known})" for key in private)
        raise ConfigError(
            f"{source}: {len(problems)} problem(s) in the configuration", problems=problems
        )
    try:
        return AgentConfig(**data)
    except SettingsError as err:
        # A GREENWAVE_<SECTION>=... override that is not the JSON its section needs.
        reason = f"{err}: {err.__cause__}" if err.__cause__ else str(err)
        raise ConfigError(
            f"{source}: an environment override is unreadable ({reason})", problems=(reason,)
        ) from err
    except ValidationError as err:
        problems = tuple(f"{path}: {why}" for path, why in schema_problems(err, AgentConfig))
        raise ConfigError(
            f"{source}: {len(problems)} problem(s) in the configuration", problems=problems
        ) from err


def load_config(path: Path | None = None) -> AgentConfig:
    """Read and validate the config file (see :func:`resolve_config_path`)."""
    resolved = resolve_config_path(path)
    try:
        if resolved.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{resolved}: larger than {MAX_CONFIG_BYTES // 1024} KiB")
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(
            f"{resolved}: no such file (give --config PATH or set {CONFIG_ENV})"
        ) from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{resolved}: not UTF-8 text") from err
    except OSError as err:
        raise ConfigError(f"{resolved}: cannot read: {err.strerror or err}") from err
    return parse_config(text, source=str(resolved))
