"""The house rules of docs/architecture.md, enforced on every import in the tree."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)
IO_AND_CLOCKS = {"asyncio", "socket", "selectors", "select", "threading", "time", "serial"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def _agent_part(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "agent" and len(parts) > 1 else parts[0]


@pytest.mark.parametrize("path", _modules("agent/protocols"), ids=lambda p: p.name)
def test_codecs_do_no_io_and_import_only_their_libraries(path: Path) -> None:
    for name in _imports(path):
        assert _top(name) not in IO_AND_CLOCKS, f"{path.name} imports {name}"
        allowed = (
            _top(name) in STDLIB
            or _top(name) in {"pysnmp", "pyasn1"}
            or _agent_part(name) in {"agent.errors", "agent.protocols"}
        )
        assert allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules("agent/plan"), ids=lambda p: p.name)
def test_the_plan_layer_uses_only_pydantic(path: Path) -> None:
    for name in _imports(path):
        assert _top(name) not in IO_AND_CLOCKS, f"{path.name} imports {name}"
        allowed = (
            _top(name) in STDLIB
            or _top(name) == "pydantic"
            or _agent_part(name) in {"agent.errors", "agent.plan"}
        )
        assert allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules("agent"), ids=lambda p: str(p.relative_to(REPO)))
def test_the_agent_never_imports_the_simulator(path: Path) -> None:
    assert not any(_top(name) == "firmware_sim" for name in _imports(path))


@pytest.mark.parametrize("path", _modules("firmware_sim"), ids=lambda p: p.name)
def test_the_simulator_uses_only_shared_agent_layers(path: Path) -> None:
    for name in _imports(path):
        if _top(name) == "agent":
            assert _agent_part(name) in {"agent.protocols", "agent.plan", "agent.errors"}, (
                f"{path.name} imports {name}"
            )


@pytest.mark.parametrize("path", _modules("agent/controller"), ids=lambda p: p.name)
def test_the_controller_layer_knows_nothing_above_it(path: Path) -> None:
    for name in _imports(path):
        assert _agent_part(name) not in {"agent.central", "agent.supervisor", "agent.cli"}, (
            f"{path.name} imports {name}"
        )
        assert _top(name) != "aiomqtt", f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules("agent/central"), ids=lambda p: p.name)
def test_the_central_layer_never_touches_a_controller(path: Path) -> None:
    for name in _imports(path):
        assert _agent_part(name) not in {"agent.controller", "agent.supervisor", "agent.cli"}, (
            f"{path.name} imports {name}"
        )
        assert _top(name) != "serial", f"{path.name} imports {name}"


#: What the supervisor may see of the controller layer: the interface and the
#: protocol-neutral poller, never a driver or a transport.
_CONTROLLER_INTERFACES = {"agent.controller.interface", "agent.controller.poller"}


@pytest.mark.parametrize("path", _modules("agent/supervisor"), ids=lambda p: p.name)
def test_the_supervisor_uses_interfaces_not_drivers(path: Path) -> None:
    for name in _imports(path):
        assert _top(name) not in {"aiomqtt", "paho", "serial", "serial_asyncio_fast"}, (
            f"{path.name} imports {name}"
        )
        if _agent_part(name) == "agent.controller":
            assert name in _CONTROLLER_INTERFACES, f"{path.name} imports {name}"
        assert _agent_part(name) != "agent.cli", f"{path.name} imports {name}"
        assert name != "agent.central.link", f"{path.name} imports {name} (use its interface)"
