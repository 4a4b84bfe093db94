"""``greenwave config check`` and the config model: every problem named, env overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import load_config, parse_config
from agent.errors import ConfigError
from tests.cli.conftest import REPO, RunCli

EXAMPLE = REPO / "examples" / "agent.toml"


def test_the_example_config_is_valid(greenwave: RunCli) -> None:
    result = greenwave("config", "check", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "main-5th" in result.stdout
    loaded = load_config(EXAMPLE)
    assert loaded.site.crossing_ft["2"] == 60


def test_json_output_is_the_effective_config(greenwave: RunCli) -> None:
    result = greenwave("config", "check", "--json", "--config", str(EXAMPLE))
    assert result.returncode == 0
    assert json.loads(result.stdout)["device"]["id"] == "main-5th"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("", "device: required field is missing", id="empty"),
        pytest.param('[device]\nid = "Bad Id"\n', "device.id: String should match", id="bad-id"),
        pytest.param(
            '[device]\nid = "a"\n[site]\nmin_yellow = 2.0\n',
            "site.min_yellow: Input should be greater than or equal to 3",
            id="yellow-below-standard",
        ),
        pytest.param(
            '[device]\nid = "a"\n[site]\nmin_walk = 3\n',
            "site.min_walk: Input should be greater than or equal to 4",
            id="walk-below-standard",
        ),
        pytest.param(
            '[device]\nid = "a"\n[sight]\nmin_walk = 7\n',
            "sight: unknown field; did you mean 'site'?",
            id="typo-section",
        ),
        pytest.param(
            '[device]\nid = "a"\n[site]\ncycle_min = 150\ncycle_max = 90\n',
            "cycle_min 150.0 s is greater than cycle_max 90.0 s",
            id="bounds-inverted",
        ),
        pytest.param("[device\n", "not valid TOML", id="not-toml"),
    ],
)
def test_bad_configs_exit_2_naming_the_problem(
    greenwave: RunCli, tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    result = greenwave("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_says_how_to_give_one(greenwave: RunCli, tmp_path: Path) -> None:
    result = greenwave("config", "check", "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2
    assert "no such file (give --config PATH or set GREENWAVE_CONFIG)" in result.stderr


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENWAVE_LOGGING__LEVEL", "debug")
    monkeypatch.setenv("GREENWAVE_SITE__MIN_YELLOW", "3.5")
    loaded = parse_config('[device]\nid = "a"\n[site]\nmin_yellow = 3.0\nmin_walk = 8\n')
    assert loaded.logging.level == "debug"
    assert loaded.site.min_yellow == 3.5
    assert loaded.site.min_walk == 8  # the rest of the section is kept


def test_environment_cannot_lower_a_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENWAVE_SITE__MIN_YELLOW", "2.0")
    with pytest.raises(ConfigError) as caught:
        parse_config('[device]\nid = "a"\n')
    assert any("min_yellow" in p for p in caught.value.problems)
