"""Logging: JSON lines when not on a terminal, readable lines otherwise."""

from __future__ import annotations

import io
import json

from agent.logs import configure_logging, get_logger


def test_json_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream=stream)
    get_logger("test").info("plan_loaded", version=7)
    get_logger("test").debug("hidden")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "plan_loaded"
    assert record["version"] == 7
    assert record["component"] == "test"
    assert record["level"] == "info"


def test_console_format_is_plain_text() -> None:
    stream = io.StringIO()
    configure_logging("debug", "console", stream=stream)
    get_logger("test").debug("link_up", peer="127.0.0.1")
    text = stream.getvalue()
    assert "link_up" in text
    assert "peer=127.0.0.1" in text
    assert not text.startswith("{")
