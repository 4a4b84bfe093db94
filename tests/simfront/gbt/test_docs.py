"""docs/simulator.md keeps up with the GB/T front end: every attribute it answers."""

from __future__ import annotations

from typer.testing import CliRunner

from firmware_sim.cli import app
from firmware_sim.gbt_mib import SERVED
from tests.simfront.helpers import REPO

DOC = (REPO / "docs" / "simulator.md").read_text()


def test_the_gbt_table_is_what_objects_gbt_markdown_prints() -> None:
    printed = CliRunner().invoke(app, ["objects", "--gbt", "--markdown"]).stdout.splitlines()
    assert len(printed) == len(SERVED) + 2
    documented = [line for line in DOC.splitlines() if line.startswith("|")]
    start = documented.index(printed[0])
    assert documented[start : start + len(printed)] == printed, (
        "docs/simulator.md is out of date: paste `greenwave-sim objects --gbt --markdown`"
    )
