"""Fixtures for the command-security tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.central.world import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A provisioned device (root key ``root-1``, command key ``cmd-1``) at a fixed time."""
    return World(state_dir=tmp_path)
