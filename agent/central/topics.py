"""The MQTT topic names of SPEC §4, in one place.

Everything lives under :data:`ROOT`. Device and group ids are checked by the
config (``[a-z0-9][a-z0-9-]{0,62}``), so no id can smuggle a ``/``, ``+`` or
``#`` into a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

ROOT: Final = "greenwave/v1"
#: Central's broadcast heartbeat topic.
HEARTBEAT: Final = f"{ROOT}/central/heartbeat"

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _checked(kind: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"not a {kind} id: {value!r}")
    return value


def device_topic(device: str, leaf: str) -> str:
    """``greenwave/v1/<device>/<leaf>``."""
    return f"{ROOT}/{_checked('device', device)}/{leaf}"


def group_cmd(group: str) -> str:
    """``greenwave/v1/group/<group>/cmd``."""
    return f"{ROOT}/group/{_checked('group', group)}/cmd"


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    """Every topic one device uses."""

    device: str
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _checked("device", self.device)
        for group in self.groups:
            _checked("group", group)

    @property
    def cmd(self) -> str:
        return device_topic(self.device, "cmd")

    @property
    def ack(self) -> str:
        return device_topic(self.device, "ack")

    @property
    def state(self) -> str:
        return device_topic(self.device, "state")

    @property
    def online(self) -> str:
        return device_topic(self.device, "online")

    @property
    def spat(self) -> str:
        return device_topic(self.device, "spat")

    @property
    def events(self) -> str:
        return device_topic(self.device, "events")

    @property
    def command_topics(self) -> tuple[str, ...]:
        """Where signed commands for this device may arrive (all QoS 1)."""
        return (self.cmd, *(group_cmd(g) for g in self.groups), HEARTBEAT)
