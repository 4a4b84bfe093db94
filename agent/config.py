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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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
    try:
        return AgentConfig(**data)
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
