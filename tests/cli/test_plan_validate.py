"""``greenwave plan validate``: exit codes, one line per problem, never a traceback."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import REPO, RunCli
from tests.plan.factory import base_plan, phase

EXAMPLES = sorted((REPO / "examples" / "plans").glob("*.json"))


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _no_traceback(result: object) -> None:
    text = getattr(result, "stdout", "") + getattr(result, "stderr", "")
    assert "Traceback" not in text


def test_the_examples_are_valid(greenwave: RunCli) -> None:
    assert len(EXAMPLES) >= 6
    result = greenwave("plan", "validate", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": valid,") == len(EXAMPLES)


def test_the_examples_are_valid_against_the_example_site_config(greenwave: RunCli) -> None:
    config = REPO / "examples" / "agent.toml"
    result = greenwave("plan", "validate", "--config", str(config), *map(str, EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"site limits: {config}" in result.stdout


def test_an_unsafe_plan_exits_1_listing_each_violation(greenwave: RunCli, tmp_path: Path) -> None:
    doc = base_plan()
    phase(doc, 3)["yellow"] = 2.5
    phase(doc, 2)["walk"] = 5
    path = _write(tmp_path, "unsafe.json", json.dumps(doc))
    result = greenwave("plan", "validate", str(path))
    assert result.returncode == 1
    assert "REJECTED, 2 rule violation(s)" in result.stdout
    assert "YELLOW_MIN: phase 3: yellow 2.5 s is below the minimum 3 s" in result.stdout
    assert "WALK_MIN: phase 2: walk 5 s" in result.stdout
    _no_traceback(result)


def test_json_output_is_documented_shape(greenwave: RunCli, tmp_path: Path) -> None:
    doc = base_plan()
    phase(doc, 3)["yellow"] = 2.5
    bad = _write(tmp_path, "unsafe.json", json.dumps(doc))
    broken = _write(tmp_path, "broken.json", '{"version": 1,\n  "phases": [,]}')
    result = greenwave("plan", "validate", "--json", str(EXAMPLES[0]), str(bad), str(broken))
    assert result.returncode == 2
    out = json.loads(result.stdout)
    assert out["format"] == 1
    assert out["exit_code"] == 2
    assert out["site_limits"] == "built-in defaults"
    valid, unsafe, unreadable = out["files"]
    assert valid["status"] == "valid"
    assert valid["violations"] == []
    assert valid["plan"]["phases"] == 8
    assert unsafe["status"] == "unsafe"
    assert unsafe["violations"] == [
        {
            "rule": "YELLOW_MIN",
            "severity": "error",
            "place": "phase 3",
            "where": {"phase": 3},
            "path": "phases[2].yellow",
            "message": "phase 3: yellow 2.5 s is below the minimum 3 s "
            "(MUTCD §4D.26 and this site's floor)",
        }
    ]
    assert unreadable["status"] == "unreadable"
    assert unreadable["problems"][0]["line"] == "2"
    assert unreadable["problems"][0]["column"] == "14"


MALFORMED = [
    pytest.param("not json at all", ["line 1, column 1: Expecting value"], id="not-json"),
    pytest.param('{"version": 1,', ["line 1, column 15"], id="truncated"),
    pytest.param("", ["the document is empty"], id="empty"),
    pytest.param("[1, 2, 3]", ["a plan document is a JSON object"], id="array"),
    pytest.param('"plan"', ["a plan document is a JSON object"], id="string"),
    pytest.param(b"\xff\xfe{}", ["not UTF-8 text"], id="not-utf8"),
    pytest.param('{"version": NaN}', ["NaN is not a number a plan can hold"], id="nan"),
    pytest.param('{"version": 1, "version": 2}', ["duplicate key 'version'"], id="duplicate-key"),
    pytest.param("[" * 100_000, ["nested too deeply"], id="deep-nesting"),
]


@pytest.mark.parametrize(("content", "expected"), MALFORMED)
def test_unreadable_input_exits_2_with_one_line_reason(
    greenwave: RunCli, tmp_path: Path, content: str | bytes, expected: list[str]
) -> None:
    path = _write(tmp_path, "plan.json", content)
    result = greenwave("plan", "validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    problem_lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(problem_lines) == 1
    for fragment in expected:
        assert fragment in problem_lines[0]
    _no_traceback(result)


def _schema_case(mutate: str) -> str:
    doc = base_plan()
    exec(mutate, {"doc": doc, "phase": phase})  # a one-line mutation, readable in the id
    return json.dumps(doc)


SCHEMA = [
    pytest.param(
        "phase(doc, 2)['yelow'] = 4.0",
        ["phases[1].yelow: unknown field; did you mean 'yellow'?"],
        id="typo-field",
    ),
    pytest.param(
        "doc['colour'] = 'green'",
        ["colour: unknown field (known: version, name, description"],
        id="unknown-top-field",
    ),
    pytest.param(
        "del doc['rings']; del phase(doc, 1)['yellow']",
        ["rings: required field is missing", "phases[0].yellow: required field is missing"],
        id="missing-fields",
    ),
    pytest.param(
        "phase(doc, 1)['yellow'] = '4'; doc['version'] = True",
        ["phases[0].yellow: Input should be a valid number",
         "version: Input should be a valid integer"],
        id="wrong-types",
    ),
    pytest.param(
        "doc['version'] = 10**40; doc['patterns'][0]['cycle'] = 1e300",
        ["version: Input should be less than or equal to 2147483647",
         "patterns[0].cycle: Input should be less than or equal to 255"],
        id="huge-numbers",
    ),
    pytest.param(
        "phase(doc, 1)['yellow'] = 3.55",
        ["phases[0].yellow: 3.55 s is not on the 0.1 s grid"],
        id="off-grid",
    ),
    pytest.param(
        "doc['day_plans'][0]['events'][0]['pattern'] = 'sometimes'",
        ["day_plans[0].events[0].pattern: 'sometimes' is not a pattern: give a number 1-253"],
        id="bad-special-pattern",
    ),
    pytest.param(
        "doc['schedule'][0]['days'] = ['monday']",
        ["schedule[0].days[0]: Input should be 'mon'"],
        id="bad-day",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("mutation", "expected"), SCHEMA)
def test_schema_errors_exit_2_naming_each_field_path(
    greenwave: RunCli, tmp_path: Path, mutation: str, expected: list[str]
) -> None:
    path = _write(tmp_path, "plan.json", _schema_case(mutation))
    result = greenwave("plan", "validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not a plan document" in result.stdout
    problem_lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(problem_lines) == len(expected)
    for fragment in expected:
        assert any(fragment in line for line in problem_lines), (fragment, problem_lines)
    _no_traceback(result)


def test_a_10_mb_file_is_refused_before_parsing(greenwave: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"version": 1, "description": "' + "x" * (10 * 1024 * 1024) + '"}')
    result = greenwave("plan", "validate", str(path))
    assert result.returncode == 2
    assert "the file is 10.0 MiB; a plan document is at most 1.0 MiB" in result.stdout
    _no_traceback(result)


def test_missing_file_and_directory_exit_2(greenwave: RunCli, tmp_path: Path) -> None:
    result = greenwave("plan", "validate", str(tmp_path / "nope.json"), str(tmp_path))
    assert result.returncode == 2
    assert "No such file or directory" in result.stdout
    assert "Is a directory" in result.stdout
    _no_traceback(result)


def test_mixed_files_exit_with_the_worst_code(greenwave: RunCli, tmp_path: Path) -> None:
    doc = base_plan()
    phase(doc, 3)["yellow"] = 2.5
    unsafe = _write(tmp_path, "unsafe.json", json.dumps(doc))
    assert greenwave("plan", "validate", str(EXAMPLES[0]), str(unsafe)).returncode == 1
    broken = _write(tmp_path, "broken.json", "{")
    assert greenwave("plan", "validate", str(unsafe), str(broken)).returncode == 2


def test_site_limits_from_config_tighten_the_rules(greenwave: RunCli, tmp_path: Path) -> None:
    config = _write(tmp_path, "agent.toml", '[device]\nid = "test-01"\n[site]\nmin_yellow = 4.0\n')
    result = greenwave("plan", "validate", "--config", str(config), str(EXAMPLES[0]))
    assert result.returncode == 1
    assert "YELLOW_MIN" in result.stdout
    via_env = greenwave("plan", "validate", str(EXAMPLES[0]), env={"GREENWAVE_CONFIG": str(config)})
    assert via_env.returncode == 1


def test_a_broken_config_exits_2(greenwave: RunCli, tmp_path: Path) -> None:
    config = _write(tmp_path, "agent.toml", '[device]\nid = "test-01"\n[site]\nmin_yelow = 4.0\n')
    result = greenwave("plan", "validate", "--config", str(config), str(EXAMPLES[0]))
    assert result.returncode == 2
    assert "site.min_yelow: unknown field; did you mean 'min_yellow'?" in result.stderr
    _no_traceback(result)


def test_bad_arguments_exit_2_without_traceback(greenwave: RunCli) -> None:
    assert greenwave("plan", "validate").returncode == 2
    result = greenwave("plan", "validate", "--frobnicate", "x.json")
    assert result.returncode == 2
    _no_traceback(result)


def test_help_fits_80_columns(greenwave: RunCli) -> None:
    for args in (["--help"], ["plan", "--help"], ["plan", "validate", "--help"]):
        result = greenwave(*args)
        assert result.returncode == 0
        assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "greenwave"
    assert script.exists() or shutil.which("greenwave")
