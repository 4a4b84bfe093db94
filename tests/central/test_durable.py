"""Crash-safe state files: a crash or power cut at any moment leaves a readable file."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.central.durable import DurableFile, StateFileError, strict_json_loads

REPO = Path(__file__).resolve().parents[2]


def _n(body: Any) -> int:
    if not isinstance(body, dict) or not isinstance(body.get("n"), int):
        raise ValueError("not a counter")
    n: int = body["n"]
    return n


def _file(tmp_path: Path) -> DurableFile:
    return DurableFile(tmp_path / "state.json", kind="counter")


def _written(tmp_path: Path, *values: int) -> DurableFile:
    f = _file(tmp_path)
    f.load(_n)
    for n in values:
        f.write({"n": n})
    return f


def test_round_trip_and_first_start(tmp_path: Path) -> None:
    loaded = _file(tmp_path).load(_n)
    assert (loaded.value, loaded.source) == (None, "none")
    _written(tmp_path, 1, 2)
    loaded = _file(tmp_path).load(_n)
    assert (loaded.value, loaded.source, loaded.problem) == (2, "main", None)
    assert json.loads((tmp_path / "state.json.bak").read_text())["body"] == {"n": 1}
    assert not (tmp_path / "state.json.tmp").exists()


def test_leftover_tmp_from_a_crash_before_the_rename(tmp_path: Path) -> None:
    _written(tmp_path, 1)
    (tmp_path / "state.json.tmp").write_text('{"greenwave_state": 1, "kind": "coun')
    f = _file(tmp_path)
    assert f.load(_n).value == 1
    f.write({"n": 2})
    assert _file(tmp_path).load(_n).value == 2


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated-half"),
        pytest.param(lambda data: data[:-3], id="truncated-tail"),
        pytest.param(lambda data: b"\x00" * len(data), id="zeroed-blocks"),
        pytest.param(lambda data: data.replace(b'"n": 2', b'"n": 7'), id="changed-value"),
        pytest.param(lambda data: data.replace(b"counter", b"trust-store"), id="wrong-kind"),
        pytest.param(lambda data: b"[1, 2, 3]", id="not-an-envelope"),
        pytest.param(lambda data: data.replace(b'"n"', b'"m"'), id="body-not-what-we-store"),
    ],
)
def test_a_damaged_main_file_is_replaced_by_the_backup_and_reported(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    _written(tmp_path, 1, 2)
    main = tmp_path / "state.json"
    main.write_bytes(damage(main.read_bytes()))
    loaded = _file(tmp_path).load(_n)
    assert (loaded.value, loaded.source) == (1, "backup")
    assert loaded.problem


def test_after_reading_the_backup_a_write_never_rotates_the_bad_file_in(tmp_path: Path) -> None:
    _written(tmp_path, 1, 2)
    (tmp_path / "state.json").write_text("garbage")
    f = _file(tmp_path)
    assert f.load(_n).value == 1
    f.write({"n": 3})
    (tmp_path / "state.json").write_text("garbage again")
    assert _file(tmp_path).load(_n).value == 1  # the good backup was kept


def test_every_truncation_of_the_main_file_is_survived(tmp_path: Path) -> None:
    _written(tmp_path, 1, 2)
    main = tmp_path / "state.json"
    good = main.read_bytes()
    for cut in range(len(good)):
        main.write_bytes(good[:cut])
        assert _file(tmp_path).load(_n).value in {1, 2}, cut


def test_both_copies_bad_is_a_clear_error(tmp_path: Path) -> None:
    _written(tmp_path, 1, 2)
    (tmp_path / "state.json").write_text("{")
    (tmp_path / "state.json.bak").write_bytes(b"\x00\x00")
    with pytest.raises(StateFileError) as caught:
        _file(tmp_path).load(_n)
    message = str(caught.value)
    assert "state.json" in message
    assert "backup" in message
    assert "\n" not in message


def test_bad_main_and_no_backup_is_an_error_not_a_first_start(tmp_path: Path) -> None:
    _written(tmp_path, 1)
    (tmp_path / "state.json").write_text("")
    with pytest.raises(StateFileError, match="no backup"):
        _file(tmp_path).load(_n)


class _Crash(BaseException):
    """Power cut: not an Exception, so nothing on the way may catch it."""


_STEPS = ("open", "write", "fsync", "close", "unlink", "link", "replace")


def test_a_crash_at_every_step_of_a_write_leaves_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed_at: list[int] = []
    step = 1
    while True:
        directory = tmp_path / f"run-{step}"
        directory.mkdir()
        f = _written(directory, 1, 2)
        calls = 0

        def crash_on(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == step:  # noqa: B023 - the current step, on purpose
                    raise _Crash(name)
                return real(*args, **kwargs)

            return wrapper

        with monkeypatch.context() as patch:
            for name in _STEPS:
                patch.setattr(os, name, crash_on(name, getattr(os, name)))
            try:
                f.write({"n": 3})
            except _Crash:
                crashed_at.append(step)
            else:
                break
        after = _file(directory).load(_n)
        assert after.source == "main", (step, after)
        assert after.value in {2, 3}, step
        recovered = _file(directory)
        recovered.load(_n)
        recovered.write({"n": 4})
        assert _file(directory).load(_n).value == 4
        step += 1
    assert len(crashed_at) >= 8  # every syscall of the recipe was a crash point


def test_a_process_killed_mid_write_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from agent.central.durable import DurableFile
        f = DurableFile(Path(sys.argv[1]), kind="counter")
        f.load(lambda body: body)
        n = 0
        while True:
            n += 1
            f.write({"n": n, "pad": "x" * 4000})
            print(n, flush=True)
        """
    )
    path = tmp_path / "state.json"
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout is not None
        acknowledged = 0
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= 40:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    loaded = _file(tmp_path).load(_n)
    assert loaded.source == "main"
    assert loaded.value is not None
    assert loaded.value >= acknowledged


def test_writers_in_two_objects_are_serialised(tmp_path: Path) -> None:
    a, b = _file(tmp_path), _file(tmp_path)
    with a.locked(), a.locked():  # reentrant in one object
        a.write({"n": 1})
    b.write({"n": 2})
    assert _file(tmp_path).load(_n).value == 2


def test_unwritable_directory_is_a_state_file_error(tmp_path: Path) -> None:
    f = DurableFile(tmp_path / "missing-dir" / "state.json", kind="counter")
    with pytest.raises(StateFileError, match="cannot write"):
        f.write({"n": 1})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('{"a": 1, "a": 2}', "duplicate key", id="duplicate-key"),
        pytest.param('{"a": NaN}', "NaN", id="nan"),
        pytest.param("[" * 100_000, "deeply", id="deep"),
        pytest.param(b"\xff", "UTF-8", id="not-utf8"),
        pytest.param("{", "not JSON", id="truncated"),
    ],
)
def test_strict_json(text: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        strict_json_loads(text)


def test_without_hard_links_the_backup_is_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    _written(tmp_path, 1, 2)
    (tmp_path / "state.json").write_text("torn")
    assert _file(tmp_path).load(_n).value == 1
