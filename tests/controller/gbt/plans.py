"""Plans a GB/T 20999 controller can hold: GB/T keeps every time in whole seconds."""

from __future__ import annotations

import json
import math
from typing import Any

from agent.plan.model import Plan
from tests.simfront.helpers import EXAMPLE_PLAN, example_plan


def whole_seconds(plan: Plan) -> Plan:
    """``plan`` with every yellow and red clearance rounded up to a whole second.

    The example plans time their clearances in tenths (a 3.5 s yellow), which
    GB/T cannot carry; rounding them up keeps every split valid there.
    """
    phases = [
        phase.model_copy(
            update={
                "yellow": float(math.ceil(phase.yellow)),
                "red_clear": float(math.ceil(phase.red_clear)),
            }
        )
        for phase in plan.phases
    ]
    return plan.model_copy(update={"phases": phases})


def gbt_example_plan() -> Plan:
    """The example 8-phase plan in whole seconds."""
    return whole_seconds(example_plan())


def gbt_example_document(version: int) -> dict[str, Any]:
    """The same, as the JSON document central sends in ``plan.load``."""
    document: dict[str, Any] = json.loads(EXAMPLE_PLAN.read_text())
    document["version"] = version
    for phase in document["phases"]:
        phase["yellow"] = float(math.ceil(phase["yellow"]))
        phase["red_clear"] = float(math.ceil(phase["red_clear"]))
    return document
