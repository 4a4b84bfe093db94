"""The director when a part breaks: a clear one-paragraph error, every child stopped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent.demo import DemoError
from agent.demo.corridor import Intersection
from agent.demo.director import DemoOptions, Director
from agent.demo.view import PlainReporter


async def test_an_agent_that_cannot_start_stops_the_demo_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Intersection.config_text

    def with_a_typo(self: Intersection, **settings: object) -> str:
        return original(self, **settings) + "\n[centrall]\nheartbeat_timeout_s = 3\n"  # type: ignore[arg-type]

    monkeypatch.setattr(Intersection, "config_text", with_a_typo)
    out = io.StringIO()
    director = Director(
        DemoOptions(workdir=tmp_path / "demo", intersections=2, headless=True),
        PlainReporter(out),
    )
    with pytest.raises(DemoError) as caught:
        await director.run()
    message = str(caught.value)
    assert "the agent of main-1st exited at start (status 2)" in message
    assert "centrall: unknown field" in message
    assert not director.story_started
    assert director.children.leftover() == []
    assert all(not child.running for child in director.children.all)
    assert "simulators: 2 NEMA controllers" in out.getvalue()
