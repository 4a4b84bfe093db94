"""The documentation hangs together: an index of every doc, links that resolve, every config key.

``docs/README.md`` lists every ``docs/*.md``; every relative link in ``docs/``
points at a file that exists; ``docs/operator-guide.md`` names every section
and every key of the agent's configuration (``agent/config.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.config import AgentConfig

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
INDEX = DOCS / "README.md"
OPERATOR_GUIDE = DOCS / "operator-guide.md"

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_EXTERNAL = ("http://", "https://", "mailto:", "#")


def _docs() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside fenced code blocks."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return _LINK.findall(text)


def _relative_targets(path: Path) -> list[str]:
    return [
        target.split("#", 1)[0]
        for target in _links(path)
        if not target.startswith(_EXTERNAL) and target.split("#", 1)[0]
    ]


def test_there_is_an_index_and_an_operator_guide() -> None:
    assert INDEX.is_file()
    assert OPERATOR_GUIDE.is_file()


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.name)
def test_every_doc_is_linked_from_the_index(doc: Path) -> None:
    if doc == INDEX:
        return
    linked = {(DOCS / target).resolve() for target in _relative_targets(INDEX)}
    assert doc.resolve() in linked, f"docs/README.md does not link {doc.name}"


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file(doc: Path) -> None:
    broken = [t for t in _relative_targets(doc) if not (doc.parent / t).exists()]
    assert not broken, f"{doc.name}: broken links {broken}"


def _config_keys() -> list[tuple[str, str]]:
    """Every (section, key) of the agent's configuration."""
    keys: list[tuple[str, str]] = []
    for section, field in AgentConfig.model_fields.items():
        model = field.annotation
        assert isinstance(model, type), section
        assert issubclass(model, BaseModel), section
        keys.extend((section, key) for key in model.model_fields)
    return keys


def test_the_config_has_the_sections_the_guide_describes() -> None:
    sections = set(AgentConfig.model_fields)
    assert {"device", "site", "controller", "mqtt", "central", "clock", "state"} <= sections
    assert {"logging", "local"} <= sections


def _section_text(guide: str, section: str) -> str:
    """The operator guide's part about ``[section]``: from its heading to the next heading."""
    match = re.search(rf"^###+ `\[{section}\]`.*?(?=^#)", guide, re.MULTILINE | re.DOTALL)
    assert match is not None, f"operator-guide.md has no heading for [{section}]"
    return match.group(0)


@pytest.mark.parametrize(("section", "key"), _config_keys(), ids=lambda v: str(v))
def test_every_config_key_is_in_the_operator_guide(section: str, key: str) -> None:
    text = _section_text(OPERATOR_GUIDE.read_text(encoding="utf-8"), section)
    assert f"| `{key}` |" in text, f"operator-guide.md does not describe [{section}] {key}"
