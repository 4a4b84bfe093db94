"""Every rule id: a plan breaking it is rejected with that id and place; the boundary passes.

Each case names a rule, a mutation of the known-good plan that breaks it, the
place the report must name, and (where the rule has a numeric limit) the
mutation that sits exactly on the limit and must be accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from agent.plan.limits import DEFAULT_SITE_LIMITS, SiteLimits
from agent.plan.rules import RULES, Severity
from agent.plan.validator import Report, validate_plan
from tests.plan.factory import base_plan, build, pattern, phase

Doc = dict[str, Any]
Mutation = Callable[[Doc], None]


@dataclass(frozen=True)
class Case:
    rule: str
    breaks: Mutation
    place: str
    boundary: Mutation | None = None
    limits: SiteLimits = DEFAULT_SITE_LIMITS


def judge(mutation: Mutation | None, limits: SiteLimits) -> Report:
    doc = base_plan()
    if mutation is not None:
        mutation(doc)
    return validate_plan(build(doc), limits)


def _set(getter: Callable[[Doc], dict[str, Any]], **values: Any) -> Mutation:
    def mutate(doc: Doc) -> None:
        target = getter(doc)
        for key, value in values.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value

    return mutate


def _ph(n: int, **values: Any) -> Mutation:
    return _set(lambda d: phase(d, n), **values)


def _pat(n: int, **values: Any) -> Mutation:
    return _set(lambda d: pattern(d, n), **values)


def _splits(n: int, **values: float) -> Mutation:
    def mutate(doc: Doc) -> None:
        pattern(doc, n)["splits"].update({k.lstrip("p"): v for k, v in values.items()})

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(doc: Doc) -> None:
        for m in mutations:
            m(doc)

    return mutate


def _no_patterns(doc: Doc) -> None:
    """Phase-only plans: patterns removed, day plans run free."""
    doc["patterns"] = []
    for day_plan in doc["day_plans"]:
        day_plan["events"] = [{"at": "00:00", "pattern": "free"}]


def _key(doc: Doc, key: str, value: Any) -> None:
    doc[key] = value


CASES = [
    # -- structure
    Case(
        "PHASE_DUPLICATE",
        lambda d: d["phases"].append(dict(phase(d, 2))),
        "phase 2",
    ),
    Case(
        "PHASE_UNDEFINED",
        lambda d: d["phases"].remove(phase(d, 8)),
        "ring 2, phase 8",
    ),
    Case("RING_MEMBERSHIP", lambda d: d["rings"][1].remove(8), "phase 8"),
    Case("RING_MEMBERSHIP", lambda d: d["rings"][0].append(8), "ring 2, phase 8"),
    Case("RING_CONFLICT", lambda d: _key(d, "rings", [[1, 2, 3, 4, 5, 6, 7, 8]]), "ring 1"),
    Case(
        "RING_CONFLICT",
        lambda d: _key(d, "rings", [[1, 2], [3, 4], [5, 6, 7, 8]]),
        "ring 2",
    ),
    Case("BARRIER_MEMBERSHIP", lambda d: d["barriers"][1].remove(8), "phase 8"),
    Case(
        "BARRIER_CONFLICT",
        lambda d: _key(d, "barriers", [[1, 2, 5, 6, 3, 7], [4, 8]]),
        "barrier group 1",
    ),
    Case(
        "BARRIER_ORDER",
        lambda d: _key(d, "rings", [[1, 3, 2, 4], [5, 6, 7, 8]]),
        "ring 1",
    ),
    Case(
        "BARRIER_ORDER",
        lambda d: _key(d, "rings", [[1, 2, 3, 4], [7, 8, 5, 6]]),
        "ring 2",
    ),
    Case(
        "SEQUENCE_REORDER",
        _pat(1, sequence=[[1, 3, 2, 4], [5, 6, 7, 8]]),
        "pattern 1, ring 1, phase 3",
        boundary=_pat(1, sequence=[[2, 1, 4, 3], [5, 6, 8, 7]]),
    ),
    Case(
        "SEQUENCE_REORDER",
        _pat(1, sequence=[[1, 2, 3, 8], [5, 6, 7, 4]]),
        "pattern 1, ring 1",
    ),
    # -- per phase (numeric limits: the boundary value itself passes)
    Case("YELLOW_MIN", _ph(3, yellow=2.9), "phase 3", boundary=_ph(3, yellow=3.0)),
    Case(
        "YELLOW_MIN",
        _both(_ph(3, yellow=3.4), _ph(7, yellow=3.5)),
        "phase 3",
        boundary=_both(_ph(3, yellow=3.5), _ph(7, yellow=3.5)),
        limits=SiteLimits(min_yellow=3.5),
    ),
    Case(
        "RED_CLEAR_RANGE",
        _both(_no_patterns, _ph(3, red_clear=25.6)),
        "phase 3",
        boundary=_both(_no_patterns, _ph(3, red_clear=25.5)),
    ),
    Case(
        "RED_CLEAR_RANGE",
        _ph(3, red_clear=0.9),
        "phase 3",
        boundary=_ph(3, red_clear=1.0),
        limits=SiteLimits(min_red_clear=1.0),
    ),
    Case("MIN_GREEN_MIN", _ph(1, min_green=0.9), "phase 1", boundary=_ph(1, min_green=1.0)),
    Case(
        "MIN_GREEN_MIN",
        _ph(1, min_green=3.9),
        "phase 1",
        boundary=_ph(1, min_green=4.0),
        limits=SiteLimits(min_green=4.0),
    ),
    Case(
        "MAX_GREEN_BELOW_MIN",
        _ph(1, max_green=4.9),
        "phase 1",
        boundary=_ph(1, max_green=5.0),
    ),
    Case("PED_INCOMPLETE", _ph(4, ped_clear=None), "phase 4"),
    Case("PED_INCOMPLETE", _ph(3, walk=7), "phase 3"),
    Case("WALK_MIN", _ph(2, walk=6.9), "phase 2", boundary=_ph(2, walk=7.0)),
    Case(
        "WALK_MIN",
        _ph(2, walk=3.9),
        "phase 2",
        boundary=_ph(2, walk=4.0),
        limits=SiteLimits(min_walk=4.0),
    ),
    Case(
        # 63 ft at 3.5 ft/s needs exactly 18.0 s
        "PED_CLEAR_MIN",
        _ph(2, ped_clear=17.9),
        "phase 2",
        boundary=_ph(2, ped_clear=18.0),
        limits=SiteLimits(crossing_ft={"2": 63}),
    ),
    Case(
        # 60 ft at 3.5 ft/s = 17.14 s, rounded up to the controller's 0.1 s: 17.2 s
        "PED_CLEAR_MIN",
        _ph(2, ped_clear=17.1),
        "phase 2",
        boundary=_ph(2, ped_clear=17.2),
        limits=SiteLimits(crossing_ft={"2": 60}),
    ),
    Case(
        # a slower design walking speed (3.0 ft/s): 60 ft needs 20 s
        "PED_CLEAR_MIN",
        _both(_ph(2, ped_clear=19.9), _splits(1, p1=11, p2=39, p5=11, p6=39)),
        "phase 2",
        boundary=_both(_ph(2, ped_clear=20), _splits(1, p1=11, p2=39, p5=11, p6=39)),
        limits=SiteLimits(crossing_ft={"2": 60}, walk_speed_fps=3.0),
    ),
    Case(
        "PED_CLEAR_MIN",
        _ph(4, ped_clear=9.9),
        "phase 4",
        boundary=_ph(4, ped_clear=10),
        limits=SiteLimits(min_ped_clear=10),
    ),
    # -- per pattern
    Case(
        "PATTERN_DUPLICATE",
        lambda d: d["patterns"].append(dict(pattern(d, 1), offset=5)),
        "pattern 1",
    ),
    Case("SPLIT_MISSING", lambda d: pattern(d, 1)["splits"].pop("3"), "pattern 1, phase 3"),
    Case(
        # phase 1: split 15 s against min green + 3.5 + 1.5
        "SPLIT_MIN",
        _ph(1, min_green=10.1),
        "pattern 1, phase 1",
        boundary=_both(_ph(1, min_green=10.0), _splits(2, p1=15, p2=31, p5=15, p6=31)),
    ),
    Case("PED_PHASE_NO_PED", _pat(1, ped_phases=[1, 2, 6]), "pattern 1, phase 1"),
    Case(
        # phase 2: split 35 s against 7 + ped clear + 4.5 + 1.5
        "SPLIT_PED_MIN",
        _ph(2, ped_clear=22.1),
        "pattern 1, phase 2",
        boundary=_both(_ph(2, ped_clear=22.0), _splits(2, p1=11, p2=35, p5=11, p6=35)),
    ),
    Case(
        "RING_SUM",
        _splits(1, p2=36, p6=36),
        "pattern 1, ring 1",
    ),
    Case(
        "BARRIER_ALIGN",
        _splits(1, p2=36, p3=14),
        "pattern 1, barrier group 1",
    ),
    Case(
        "CYCLE_RANGE",
        _both(_pat(1, cycle=180.1), _splits(1, p2=115.1, p6=115.1)),
        "pattern 1",
        boundary=_both(_pat(1, cycle=180), _splits(1, p2=115, p6=115)),
    ),
    Case(
        "CYCLE_RANGE",
        _both(
            _pat(2, cycle=89.9),
            _splits(2, p1=15, p2=31, p3=15, p4=28.9, p5=15, p6=31, p7=15, p8=28.9),
        ),
        "pattern 2",
        boundary=_both(
            _pat(2, cycle=90), _splits(2, p1=15, p2=31, p3=15, p4=29, p5=15, p6=31, p7=15, p8=29)
        ),
        limits=SiteLimits(cycle_min=90),
    ),
    Case("OFFSET_RANGE", _pat(1, offset=100), "pattern 1", boundary=_pat(1, offset=99.9)),
    Case("COORD_PER_RING", _pat(1, coord_phases=[2]), "pattern 1, ring 2"),
    Case("COORD_PER_RING", _pat(1, coord_phases=[1, 2, 6]), "pattern 1, ring 1"),
    Case(
        "COORD_BARRIER",
        _pat(1, coord_phases=[2, 8]),
        "pattern 1",
        boundary=_pat(1, coord_phases=[1, 6]),
    ),
    # -- day plans and schedule
    Case(
        "DAY_PLAN_DUPLICATE",
        lambda d: d["day_plans"].append(dict(d["day_plans"][1])),
        "day plan 2",
    ),
    Case(
        "DAY_PLAN_TIME",
        lambda d: d["day_plans"][0]["events"].append({"at": "24:00", "pattern": 1}),
        "day plan 1, event 5",
        boundary=lambda d: d["day_plans"][0]["events"].append({"at": "23:59", "pattern": 1}),
    ),
    Case(
        "DAY_PLAN_TIME",
        lambda d: d["day_plans"][0]["events"].append({"at": "06:30", "pattern": 2}),
        "day plan 1, event 5",
    ),
    Case(
        "DAY_PLAN_PATTERN",
        lambda d: d["day_plans"][1]["events"].append({"at": "12:00", "pattern": 9}),
        "day plan 2, event 2",
    ),
    Case("SCHEDULE_DAY_PLAN", lambda d: d["schedule"][1].update(day_plan=7), "schedule entry 2"),
    Case("SCHEDULE_COVERAGE", lambda d: d["schedule"][1]["days"].remove("sun"), "day sun"),
    Case(
        "SCHEDULE_OVERLAP",
        lambda d: d["schedule"][1]["days"].append("fri"),
        "schedule entry 2, day fri",
    ),
    # -- site
    Case(
        "PHASE_NOT_ALLOWED",
        lambda d: None,
        "phase 8",
        boundary=lambda d: None,
        limits=SiteLimits(allowed_phases=(1, 2, 3, 4, 5, 6, 7)),
    ),
]


def _id(case: Case) -> str:
    return f"{case.rule}@{case.place}"


def test_base_plan_is_valid() -> None:
    report = judge(None, DEFAULT_SITE_LIMITS)
    assert report.ok, report.errors
    assert not report.warnings


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_breaking_the_rule_is_rejected_with_its_id_and_place(case: Case) -> None:
    report = judge(case.breaks, case.limits)
    assert not report.ok
    hits = [v for v in report.errors if v.rule == case.rule]
    assert hits, f"{case.rule} not reported; got {[(v.rule, v.place) for v in report.errors]}"
    assert any(v.place == case.place for v in hits), [v.place for v in hits]
    assert all(v.message for v in report.errors)


BOUNDARY_CASES = [c for c in CASES if c.boundary is not None and c.rule != "PHASE_NOT_ALLOWED"]


@pytest.mark.parametrize("case", BOUNDARY_CASES, ids=_id)
def test_a_plan_exactly_at_the_boundary_is_accepted(case: Case) -> None:
    report = judge(case.boundary, case.limits)
    assert report.ok, [(v.rule, v.message) for v in report.errors]


def test_phase_not_allowed_boundary_is_a_site_allowing_every_phase() -> None:
    report = judge(None, SiteLimits(allowed_phases=(1, 2, 3, 4, 5, 6, 7, 8)))
    assert report.ok


def test_every_error_rule_has_a_case() -> None:
    covered = {case.rule for case in CASES}
    errors = {rule.id for rule in RULES.values() if rule.severity is Severity.ERROR}
    assert covered == errors


@pytest.mark.parametrize(
    ("rule", "mutation", "boundary"),
    [
        (
            "YELLOW_LONG",
            _both(_no_patterns, _ph(3, yellow=6.1)),
            _both(_no_patterns, _ph(3, yellow=6.0)),
        ),
        (
            "RED_CLEAR_LONG",
            _both(_no_patterns, _ph(3, red_clear=6.1)),
            _both(_no_patterns, _ph(3, red_clear=6.0)),
        ),
    ],
)
def test_warnings_are_reported_without_rejecting(
    rule: str, mutation: Mutation, boundary: Mutation
) -> None:
    report = judge(mutation, DEFAULT_SITE_LIMITS)
    assert report.ok
    assert [v.rule for v in report.warnings] == [rule]
    assert not judge(boundary, DEFAULT_SITE_LIMITS).warnings


def test_all_violations_are_reported_not_only_the_first() -> None:
    def many(doc: Doc) -> None:
        phase(doc, 1)["yellow"] = 2.0
        phase(doc, 2)["walk"] = 5
        pattern(doc, 1)["offset"] = 150
        doc["schedule"].pop()

    report = judge(many, DEFAULT_SITE_LIMITS)
    assert {"YELLOW_MIN", "WALK_MIN", "OFFSET_RANGE", "SCHEDULE_COVERAGE"} <= report.rule_ids()
    assert len(report.errors) >= 5  # sat and sun each missing


def test_site_floors_cannot_be_lowered_below_the_standards() -> None:
    with pytest.raises(ValueError, match="min_yellow"):
        SiteLimits(min_yellow=2.5)
    with pytest.raises(ValueError, match="min_walk"):
        SiteLimits(min_walk=3.0)
    with pytest.raises(ValueError, match="walk_speed_fps"):
        SiteLimits(walk_speed_fps=4.0)
    with pytest.raises(ValueError, match="cycle_min"):
        SiteLimits(cycle_min=120, cycle_max=90)


def test_a_violation_names_its_json_path() -> None:
    report = judge(_ph(3, yellow=2.9), DEFAULT_SITE_LIMITS)
    (violation,) = report.errors
    assert violation.path == "phases[2].yellow"
    assert violation.to_json()["where"] == {"phase": 3}
    assert "2.9 s" in violation.message
    assert "3 s" in violation.message
