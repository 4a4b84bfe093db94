"""bench/fuzz.py stays runnable: every target builds and passes a handful of examples.

The long run (≥ 100,000 examples a target) is the benchmark command's job; this
only keeps the harness from rotting when a codec or a strategy changes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "greenwave_bench_fuzz", REPO / "bench" / "fuzz.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FUZZ = _fuzz_module()


@pytest.mark.parametrize("target", FUZZ.TARGETS, ids=lambda t: t.name)
def test_target_runs_a_few_examples(target: object, tmp_path: Path) -> None:
    row = FUZZ.run_target(target, 5, tmp_path)
    assert row.failure is None, row.failure
    assert row.examples >= 5


def test_a_failing_property_is_a_row_with_the_example(tmp_path: Path) -> None:
    from hypothesis import strategies as st

    def make(_tmp: Path) -> tuple[st.SearchStrategy[int], object]:
        def check(value: int) -> None:
            FUZZ.require(value < 3, "too big")

        return st.integers(0, 10), check

    row = FUZZ.run_target(FUZZ.Target(name="demo.prop", about="", make=make), 200, tmp_path)
    assert row.result == "FAILED"
    assert "too big" in row.failure
    assert "3" in row.failure  # the shrunk falsifying example


def test_a_hang_is_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis import strategies as st

    monkeypatch.setattr(FUZZ, "HANG_CPU_SECONDS", 0.05)

    def make(_tmp: Path) -> tuple[st.SearchStrategy[int], object]:
        def check(value: int) -> None:
            while value >= 0:  # spins until the guard fires
                value += 1

        return st.integers(0, 10), check

    row = FUZZ.run_target(FUZZ.Target(name="demo.hang", about="", make=make), 3, tmp_path)
    assert row.result == "FAILED"
    assert "Hang" in row.failure
