"""Following the agents' JSON logs: what each agent says about itself, as it happens.

The demo reads each agent's log file (``[logging] format = "json"``: one
JSON object per line) rather than the MQTT ``state`` topic, because the story
cuts the broker: the log keeps telling the truth while central is blind.
The records used:

=====================  ========================================================
``mode_changed``       ``before``, ``after``, ``reason``: the mode timeline
``mqtt_up/mqtt_down``  the agent's link to the broker
``controller_link_*``  the agent's link to its controller
``agent_ready``        every task of the agent started
=====================  ========================================================

:class:`LogFollower` is plain file reading with no waiting (the director
polls it); incomplete last lines wait for the next read, lines that are not
JSON objects (a stray library message) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

#: Most bytes read from one log per poll (a burst waits for the next poll).
MAX_READ: Final = 1 << 20


@dataclass(frozen=True, kw_only=True)
class AgentRecord:
    """One structured log record of an agent."""

    device: str
    event: str
    #: Wall-clock time of the record (epoch s).
    at: float
    fields: Mapping[str, Any]

    def text(self, key: str) -> str:
        value = self.fields.get(key)
        return "" if value is None else str(value)


def parse_record(device: str, line: bytes) -> AgentRecord | None:
    """The record on one log line, or None when the line is not a structured record."""
    text = line.strip()
    if not text.startswith(b"{"):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    event, stamp = body.get("event"), body.get("timestamp")
    if not isinstance(event, str) or not isinstance(stamp, str):
        return None
    try:
        at = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
    return AgentRecord(device=device, event=event, at=at, fields=body)


class LogFollower:
    """The new records of one agent's log file since the last read."""

    def __init__(self, device: str, path: Path) -> None:
        self.device = device
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[AgentRecord]:
        """Records appended since the last call (none while the file does not exist)."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read(MAX_READ)
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        records = []
        for line in lines:
            record = parse_record(self.device, line)
            if record is not None:
                records.append(record)
        return records
