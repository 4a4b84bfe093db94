"""Fixtures of the deployment tests; the figures they measured, printed after the run."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import _no_leaked_processes, keys

__all__ = ["FIGURES", "_no_leaked_processes", "keys"]

#: Lines a test wants in the run's output whatever its outcome (e.g. the exposure figure).
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("deployment figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
