"""docs/simulator.md keeps up with the code: every object, option, command and hook."""

from __future__ import annotations

import inspect
import re

from typer.testing import CliRunner

from firmware_sim.cli import app
from firmware_sim.commands import FAULT_KINDS
from firmware_sim.ntcip_mib import SERVED

from .helpers import REPO

DOC = (REPO / "docs" / "simulator.md").read_text()


def test_the_object_table_is_what_objects_markdown_prints() -> None:
    printed = CliRunner().invoke(app, ["objects", "--markdown"]).stdout.splitlines()
    assert len(printed) == len(SERVED) + 2
    documented = [line for line in DOC.splitlines() if line.startswith("|")]
    start = documented.index(printed[0])
    assert documented[start : start + len(printed)] == printed, (
        "docs/simulator.md is out of date: paste `greenwave-sim objects --markdown`"
    )


def test_the_table_lists_nothing_else() -> None:
    names = {served.mib.name for served in SERVED}
    rows = re.findall(r"^\| (\w+) \| `1\.3\.6", DOC, flags=re.MULTILINE)
    assert sorted(rows) == sorted(names)


def test_every_serve_option_is_documented() -> None:
    command = next(c for c in app.registered_commands if c.name == "serve")
    assert command.callback is not None
    for parameter in inspect.signature(command.callback).parameters.values():
        for declaration in parameter.default.param_decls:  # typer.Option(...) flags
            assert f"`{declaration}" in DOC, f"{declaration} is not in the options table"


def test_every_fault_kind_and_command_is_documented() -> None:
    for kind in FAULT_KINDS:
        assert f"`{kind}`" in DOC
    for command in ("inject KIND [CHANNEL] [SECONDS]", "reset", "status", "help"):
        assert f"`{command}`" in DOC
