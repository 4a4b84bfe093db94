"""Properties: generated safe plans pass; one rule-breaking mutation fails with exactly that rule.

Each mutation below is designed to break one rule and nothing else, so the
property is strong: the report must name that rule and only that rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from agent.plan.document import judge
from agent.plan.limits import DEFAULT_SITE_LIMITS, SiteLimits
from agent.plan.model import WEEKDAYS, Plan
from agent.plan.validator import validate_plan
from tests.plan.strategies import safe_plans

Doc = dict[str, Any]
Mutator = Callable[[st.DataObject, Doc], SiteLimits]

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(safe_plans())
def test_generated_safe_plans_are_accepted(doc: Doc) -> None:
    plan, report = judge(json.dumps(doc))
    assert report.ok, [(v.rule, v.message) for v in report.errors]
    assert plan.version == doc["version"]


def _require(condition: object) -> None:
    """Discard this example unless ``condition`` holds (``assume`` with a NoReturn type)."""
    if not condition:
        reject()


def _ds(value: float) -> int:
    return round(value * 10)


def _phases(doc: Doc) -> list[Doc]:
    return list(doc["phases"])


def _need(ph: Doc) -> int:
    return _ds(ph["min_green"]) + _ds(ph["yellow"]) + _ds(ph["red_clear"])


def yellow_min(data: st.DataObject, doc: Doc) -> SiteLimits:
    ph = data.draw(st.sampled_from(_phases(doc)))
    ph["yellow"] = data.draw(st.integers(0, 29)) / 10
    return DEFAULT_SITE_LIMITS


def red_clear_range(data: st.DataObject, doc: Doc) -> SiteLimits:
    top = max(_ds(ph["red_clear"]) for ph in doc["phases"])
    _require(top < 255)
    floor = data.draw(st.integers(top + 1, 255)) / 10
    return SiteLimits(min_red_clear=floor)


def min_green_min(data: st.DataObject, doc: Doc) -> SiteLimits:
    ph = data.draw(st.sampled_from(_phases(doc)))
    ph["min_green"] = data.draw(st.integers(0, 9)) / 10
    return DEFAULT_SITE_LIMITS


def walk_min(data: st.DataObject, doc: Doc) -> SiteLimits:
    peds = [ph for ph in doc["phases"] if "walk" in ph]
    _require(peds)
    data.draw(st.sampled_from(peds))["walk"] = data.draw(st.integers(0, 69)) / 10
    return DEFAULT_SITE_LIMITS


def ped_clear_min(data: st.DataObject, doc: Doc) -> SiteLimits:
    peds = [ph for ph in doc["phases"] if "walk" in ph]
    _require(peds)
    ph = data.draw(st.sampled_from(peds))
    # A crossing longer than this clearance covers at 3.5 ft/s.
    too_long = ph["ped_clear"] * 3.5 + data.draw(st.integers(1, 100))
    return SiteLimits(crossing_ft={str(ph["phase"]): min(too_long, 500)})


def split_min(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    n = data.draw(st.sampled_from(sorted(pat["splits"])))
    ph = next(p for p in doc["phases"] if p["phase"] == int(n))
    overshoot = _ds(pat["splits"][n]) - _need(ph) + data.draw(st.integers(1, 50))
    new_min = _ds(ph["min_green"]) + overshoot
    _require(new_min <= 2550)
    ph["min_green"] = new_min / 10
    ph.pop("max_green", None)
    return DEFAULT_SITE_LIMITS


def split_ped_min(data: st.DataObject, doc: Doc) -> SiteLimits:
    served = [(p, n) for p in doc["patterns"] for n in p["ped_phases"]]
    _require(served)
    pat, n = data.draw(st.sampled_from(served))
    ph = next(p for p in doc["phases"] if p["phase"] == n)
    ped_need = _ds(ph["walk"]) + _ds(ph["ped_clear"]) + _ds(ph["yellow"]) + _ds(ph["red_clear"])
    longer = _ds(ph["ped_clear"]) + _ds(pat["splits"][str(n)]) - ped_need + 1
    _require(longer <= 2550)
    ph["ped_clear"] = longer / 10
    return DEFAULT_SITE_LIMITS


def ring_sum(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    group = data.draw(st.sampled_from(doc["barriers"]))
    extra = data.draw(st.integers(1, 50))
    for ring in doc["rings"]:  # same change in every ring: barriers still meet
        first = next(n for n in ring if n in group)
        value = _ds(pat["splits"][str(first)]) + extra
        _require(value <= 2550)
        pat["splits"][str(first)] = value / 10
    return DEFAULT_SITE_LIMITS


def barrier_align(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    ring = data.draw(st.sampled_from(doc["rings"]))
    donor_group, taker_group = doc["barriers"][0], doc["barriers"][1]
    donors = []
    for n in (n for n in ring if n in donor_group):
        ph = next(p for p in doc["phases"] if p["phase"] == n)
        need = _need(ph)
        if n in pat["ped_phases"]:
            clearance = _ds(ph["yellow"]) + _ds(ph["red_clear"])
            need = max(need, _ds(ph["walk"]) + _ds(ph["ped_clear"]) + clearance)
        slack = _ds(pat["splits"][str(n)]) - need
        if slack > 0:
            donors.append((n, slack))
    _require(donors)
    n, slack = data.draw(st.sampled_from(donors))
    moved = data.draw(st.integers(1, slack))
    taker = next(m for m in ring if m in taker_group)
    pat["splits"][str(n)] = (_ds(pat["splits"][str(n)]) - moved) / 10
    pat["splits"][str(taker)] = (_ds(pat["splits"][str(taker)]) + moved) / 10
    return DEFAULT_SITE_LIMITS


def cycle_range(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    longest = max(p["cycle"] for p in doc["patterns"])
    shortest = min(p["cycle"] for p in doc["patterns"])
    if data.draw(st.booleans()) and longest > 40:
        return SiteLimits(
            cycle_min=1, cycle_max=data.draw(st.integers(10, int(longest * 10) - 1)) / 10
        )
    _require(shortest < 255)
    return SiteLimits(
        cycle_min=data.draw(st.integers(int(shortest * 10) + 1, 2550)) / 10, cycle_max=255
    )


def offset_range(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    pat["offset"] = data.draw(st.integers(_ds(pat["cycle"]), 2550)) / 10
    return DEFAULT_SITE_LIMITS


def coord_per_ring(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    pat["coord_phases"] = [data.draw(st.sampled_from(pat["coord_phases"]))]
    return DEFAULT_SITE_LIMITS


def coord_barrier(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    other_side = next(n for n in doc["rings"][1] if n not in doc["barriers"][0])
    pat["coord_phases"] = [pat["coord_phases"][0], other_side]
    return DEFAULT_SITE_LIMITS


def sequence_reorder(data: st.DataObject, doc: Doc) -> SiteLimits:
    _require(doc["patterns"])
    pat = data.draw(st.sampled_from(doc["patterns"]))
    ring = list(doc["rings"][0])
    a = next(i for i, n in enumerate(ring) if n in doc["barriers"][0])
    b = next(i for i, n in enumerate(ring) if n in doc["barriers"][1])
    ring[a], ring[b] = ring[b], ring[a]
    pat["sequence"] = [ring, list(doc["rings"][1])]
    return DEFAULT_SITE_LIMITS


def day_plan_pattern(data: st.DataObject, doc: Doc) -> SiteLimits:
    used = {p["pattern"] for p in doc["patterns"]}
    missing = data.draw(st.integers(1, 253).filter(lambda n: n not in used))
    data.draw(st.sampled_from(doc["day_plans"]))["events"][0]["pattern"] = missing
    return DEFAULT_SITE_LIMITS


def day_plan_time(data: st.DataObject, doc: Doc) -> SiteLimits:
    day_plan = data.draw(st.sampled_from(doc["day_plans"]))
    hour, minute = data.draw(
        st.one_of(
            st.tuples(st.integers(24, 99), st.integers(0, 99)),
            st.tuples(st.integers(0, 99), st.integers(60, 99)),
        )
    )
    day_plan["events"][0]["at"] = f"{hour:02d}:{minute:02d}"
    return DEFAULT_SITE_LIMITS


def schedule_coverage(data: st.DataObject, doc: Doc) -> SiteLimits:
    entry = data.draw(st.sampled_from(doc["schedule"]))
    if len(entry["days"]) > 1:
        entry["days"].remove(data.draw(st.sampled_from(entry["days"])))
    else:
        _require(len(doc["schedule"]) > 1)
        doc["schedule"].remove(entry)
    return DEFAULT_SITE_LIMITS


def schedule_overlap(data: st.DataObject, doc: Doc) -> SiteLimits:
    entry = data.draw(st.sampled_from(doc["schedule"]))
    others = [d for d in WEEKDAYS if d not in entry["days"]]
    _require(others)
    entry["days"].append(data.draw(st.sampled_from(others)))
    return DEFAULT_SITE_LIMITS


def schedule_day_plan(data: st.DataObject, doc: Doc) -> SiteLimits:
    data.draw(st.sampled_from(doc["schedule"]))["day_plan"] = data.draw(st.integers(3, 255))
    return DEFAULT_SITE_LIMITS


def phase_not_allowed(data: st.DataObject, doc: Doc) -> SiteLimits:
    numbers = [ph["phase"] for ph in doc["phases"]]
    banned = data.draw(st.sampled_from(numbers))
    return SiteLimits(allowed_phases=tuple(n for n in range(1, 9) if n != banned))


MUTATIONS: dict[str, Mutator] = {
    "YELLOW_MIN": yellow_min,
    "RED_CLEAR_RANGE": red_clear_range,
    "MIN_GREEN_MIN": min_green_min,
    "WALK_MIN": walk_min,
    "PED_CLEAR_MIN": ped_clear_min,
    "SPLIT_MIN": split_min,
    "SPLIT_PED_MIN": split_ped_min,
    "RING_SUM": ring_sum,
    "BARRIER_ALIGN": barrier_align,
    "CYCLE_RANGE": cycle_range,
    "OFFSET_RANGE": offset_range,
    "COORD_PER_RING": coord_per_ring,
    "COORD_BARRIER": coord_barrier,
    "SEQUENCE_REORDER": sequence_reorder,
    "DAY_PLAN_PATTERN": day_plan_pattern,
    "DAY_PLAN_TIME": day_plan_time,
    "SCHEDULE_COVERAGE": schedule_coverage,
    "SCHEDULE_OVERLAP": schedule_overlap,
    "SCHEDULE_DAY_PLAN": schedule_day_plan,
    "PHASE_NOT_ALLOWED": phase_not_allowed,
}


@pytest.mark.parametrize("rule", sorted(MUTATIONS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=safe_plans(), data=st.data())
def test_a_single_breaking_mutation_is_rejected_with_exactly_that_rule(
    rule: str, doc: Doc, data: st.DataObject
) -> None:
    limits = MUTATIONS[rule](data, doc)
    report = validate_plan(Plan.model_validate(doc), limits)
    assert report.rule_ids() == {rule}, [(v.rule, v.message) for v in report.errors]
