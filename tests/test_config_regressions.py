"""Config texts found by the long fuzz run (bench/fuzz.py) that once escaped parse_config.

Each is the exact falsifying example (or the environment it needs); each must
give a :class:`~agent.errors.ConfigError` listing the problem, and nothing else.
"""

from __future__ import annotations

import pytest

from agent.config import parse_config
from agent.errors import ConfigError

VALID = '[device]\nid = "a"\n'


@pytest.mark.parametrize(
    "text",
    [
        # pydantic-settings takes these as init options, not as config keys: a
        # SettingsError escaped, or the loader read another file / parsed sys.argv.
        pytest.param("_cli_parse_args = 1\n" + VALID, id="_cli_parse_args"),
        pytest.param('_secrets_dir = "/nonexistent"\n' + VALID, id="_secrets_dir"),
        pytest.param('_env_file = "/etc/passwd"\n' + VALID, id="_env_file"),
        pytest.param("_env_prefix = 3\n" + VALID, id="_env_prefix (TypeError)"),
        pytest.param("_anything = 1\n" + VALID, id="any private name"),
    ],
)
def test_settings_init_option_names_are_unknown_keys(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    key = text.split(" ", 1)[0]
    assert any(problem.startswith(f"{key}: unknown field") for problem in caught.value.problems)


@pytest.mark.parametrize(
    "text",
    [
        # json.dumps of a TOML date/time in the "(got ...)" hint raised TypeError.
        pytest.param(
            "[site.crossing_ft]\n_case_sensitive = 1979-05-27T07:32:00Z\n", id="fuzz example"
        ),
        pytest.param("[device]\nid = 1979-05-27T07:32:00Z\n", id="datetime for a string"),
        pytest.param(VALID + "[controller]\ntimeout_ms = 07:32:00\n", id="time for an int"),
        pytest.param(VALID + "[site]\nmin_yellow = 1979-05-27\n", id="date for a float"),
    ],
)
def test_toml_dates_in_the_wrong_place_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("GREENWAVE_DEVICE", "{", id="section not JSON"),
        pytest.param("GREENWAVE_DEVICE__GROUPS", "[1", id="list not JSON"),
        pytest.param("GREENWAVE_SITE__RINGS", "x", id="nested list not JSON"),
    ],
)
def test_unreadable_environment_override_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # pydantic-settings raised SettingsError (a bare ValueError) past parse_config.
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="environment override"):
        parse_config(VALID)
