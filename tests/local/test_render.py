"""What a technician reads fits an 80-column serial console, whatever the agent says."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from agent.local.render import WIDTH, plan_lines, status_lines, watch_line, watch_screen
from tests.simfront.helpers import EXAMPLE_PLAN

NOW = 1_800_000_000.0


def phases(count: int) -> list[dict[str, Any]]:
    lights = ["red", "green", "yellow", "dark"]
    peds = ["dont_walk", "walk", "ped_clear", "dark"]
    return [
        {"phase": n, "light": lights[n % 4], "ped": peds[(n // 2) % 4]} for n in range(1, count + 1)
    ]


def document(**changes: Any) -> dict[str, Any]:
    """A status document as the agent sends it (format 1), in override, with changes."""
    doc: dict[str, Any] = {
        "format": 1,
        "ts": NOW,
        "agent": {"version": "0.1.0", "pid": 4242, "uptime_s": 93_784.2},
        "state": {
            "device": "main-5th-and-a-rather-long-cabinet-name-for-the-corridor-of-main-st",
            "version": "0.1.0",
            "mode": "override",
            "reason": "technician jsmith (sudo): pattern 3 for 30 min " + "because " * 20,
            "mode_since": NOW - 200,
            "controller": {
                "endpoint": "serial:///dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K-if00?baud=38400",
                "link": "up",
                "reason": "",
            },
            "signal": {
                "pattern": 3,
                "commanded": 3,
                "free_status": "coordinated",
                "control": "system",
                "flash": "not_flash",
                "alarms": {"unit1": 0x80, "unit2": 0, "short": 0x1},
                "backup_time_s": 35,
            },
            "plan": {"version": 2_147_483_647, "jti": "x" * 64, "applied": False},
            "control": {
                "jti": "y" * 22,
                "pattern": "free",
                "activate_at": None,
                "lease_s": 600.0,
                "applied": True,
                "in_force": False,
            },
            "central": {
                "connected": False,
                "last_heartbeat": NOW - 4000,
                "heard_ago_s": 4000.0,
                "heartbeat_timeout_s": 15.0,
                "lost": "no heartbeat for 4000 s " * 5,
            },
            "clock": {"synced": False, "detail": "the kernel says unsynchronised " * 6},
            "backup_time_s": 35,
            "override": {
                "pattern": 3,
                "who": "a-very-long-technician-name (sudo)",
                "started_at": NOW - 200,
                "until": NOW + 1600,
            },
        },
        "live": {
            "age_s": 0.1,
            "pattern": 3,
            "commanded": 3,
            "cycle_time_s": 117,
            "free_status": "coordinated",
            "control": "system",
            "flash": "not_flash",
            "controller_time": int(NOW),
            "phases": phases(16),
        },
    }
    doc.update(changes)
    return doc


def variants() -> list[Any]:
    """The document with each part missing, null or odd: an older or newer agent."""
    out = [pytest.param(document(), id="override-16-phases")]
    base = document()
    for key in ("state", "live", "agent", "ts"):
        value: dict[str, Any] | None
        for value in (None, {}):
            doc = copy.deepcopy(base)
            doc[key] = value
            out.append(pytest.param(doc, id=f"{key}-{value!r}"))
    for key in list(base["state"]):
        doc = copy.deepcopy(base)
        doc["state"][key] = None
        out.append(pytest.param(doc, id=f"state.{key}-null"))
        doc = copy.deepcopy(base)
        del doc["state"][key]
        out.append(pytest.param(doc, id=f"state.{key}-missing"))
    down = copy.deepcopy(base)
    down["state"]["controller"] = {"link": "down", "endpoint": "udp://10.0.0.9:161",
                                   "reason": "no answer " * 30}  # fmt: skip
    out.append(pytest.param(down, id="controller-down"))
    flash = copy.deepcopy(base)
    flash["state"]["signal"]["flash"] = flash["live"]["flash"] = "mmu"
    out.append(pytest.param(flash, id="mmu-flash"))
    stale = copy.deepcopy(base)
    stale["live"]["age_s"] = 75.0
    out.append(pytest.param(stale, id="stale-live"))
    return out


@pytest.mark.parametrize("doc", variants())
@pytest.mark.parametrize("phi", ["Φ", "P"])
def test_every_layout_fits_80_columns(doc: dict[str, Any], phi: str) -> None:
    for lines in (status_lines(doc, phi=phi), watch_screen(doc, phi=phi)):
        assert lines
        for line in lines:
            assert len(line) <= WIDTH, f"{len(line)}: {line!r}"
            assert "\n" not in line
    assert watch_line(doc, phi=phi)


def test_status_reads_at_a_glance() -> None:
    lines = status_lines(document())
    text = "\n".join(lines)
    labels = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert labels[:3] == ["greenwave", "mode", "override"]
    assert "OVERRIDE since" in text
    assert "(3m 20s ago)" in text
    assert "26m 40s left" in text
    assert "NOT connected to the broker" in text
    assert "NOT trusted, coordination refused" in text
    assert "NOT yet applied" in text
    assert "Φ1 G  Φ2 Y walk  Φ3 - walk  Φ4 R fdw" in text
    assert "Φ16 R" in text
    assert "alarms      unit1=0x0080 short=0x0001" in text


def test_the_status_of_a_plain_ascii_console_is_ascii_but_for_the_ellipsis() -> None:
    doc = document()
    doc["state"]["reason"] = "short"
    doc["state"]["device"] = "main-5th"
    doc["state"]["controller"]["endpoint"] = "udp://10.0.0.9:161"
    doc["state"]["central"]["lost"] = None
    doc["state"]["clock"]["detail"] = "unsynchronised"
    doc["state"]["override"]["who"] = "jsmith"
    text = "\n".join(status_lines(doc, phi="P"))
    assert text.isascii(), [c for c in text if not c.isascii()]


def test_the_plan_fits_80_columns() -> None:
    plan = json.loads(EXAMPLE_PLAN.read_text())
    plan["name"] = "N" * 120
    doc = {
        "format": 1,
        "plan": {
            "version": 1,
            "jti": "J" * 22,
            "stored_at": NOW - 86_400 * 3,
            "applied": True,
            "document": plan,
        },
    }
    lines = plan_lines(doc, now=NOW)
    assert all(len(line) <= WIDTH for line in lines), [ln for ln in lines if len(ln) > WIDTH]
    assert lines[0].startswith("plan version 1 ")
    assert any(line.startswith("pattern 3 ") for line in lines)
    assert plan_lines({"format": 1, "plan": None}, now=NOW)[0].startswith("no plan stored")
