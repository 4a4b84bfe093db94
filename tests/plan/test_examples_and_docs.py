"""The examples stay valid and derived as documented; the docs list every rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from agent.plan.document import read_plan_file
from agent.plan.rules import RULES
from agent.plan.validator import validate_plan

REPO = Path(__file__).resolve().parents[2]


def _corridor_module() -> ModuleType:
    path = REPO / "examples" / "corridor" / "make_corridor.py"
    spec = importlib.util.spec_from_file_location("make_corridor", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_corridor", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_corridor_files_are_what_the_generator_derives() -> None:
    corridor = _corridor_module()
    for index in range(len(corridor.CORRIDOR)):
        committed = (REPO / "examples" / "plans" / corridor.file_name(index)).read_text()
        assert committed == corridor.render(index), corridor.file_name(index)


def test_corridor_offsets_follow_the_progression_speed() -> None:
    corridor = _corridor_module()
    speed = corridor.PROGRESSION_KMH / 3.6
    plans = [
        read_plan_file(REPO / "examples" / "plans" / corridor.file_name(i))
        for i in range(len(corridor.CORRIDOR))
    ]
    distance = 0.0
    for stop, plan in zip(corridor.CORRIDOR, plans, strict=True):
        distance += stop.link_m
        for pattern in plan.patterns:
            expected = round(distance / speed) % pattern.cycle
            assert pattern.offset == expected
    cycles = {tuple(p.cycle for p in plan.patterns) for plan in plans}
    assert len(cycles) == 1  # one common cycle per pattern along the corridor


def test_every_example_plan_is_valid() -> None:
    for path in sorted((REPO / "examples" / "plans").glob("*.json")):
        report = validate_plan(read_plan_file(path))
        assert report.ok, (path.name, report.errors)


def test_plan_format_doc_lists_every_rule_with_its_source() -> None:
    text = (REPO / "docs" / "plan-format.md").read_text()
    for rule in RULES.values():
        assert f"`{rule.id}`" in text, rule.id
