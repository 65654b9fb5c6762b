"""The layout is the architecture: imports run one way (cli → batch → run → agent/states → model
client, trajectory, config, sandbox, state_store) and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("controller", "states", "sandbox", "state_store")
# Higher layers may import lower ones (or their own), never the other way.
LAYERS = {
    "state_store": 0,
    "sandbox": 0,
    "controller.config": 1,
    "controller.model_client": 1,
    "controller.trajectory": 1,
    "controller.agent": 2,
    "states": 2,
    "controller.run": 3,
    "controller.batch": 4,
    "controller.cli": 5,
    "controller": 0,  # __init__: the version
    "controller.__main__": 6,
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found = graph.setdefault(_module(path), set())
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return {m: {i for i in deps if i in graph and i != m} for m, deps in graph.items()}


def test_imports_run_one_way() -> None:
    wrong = [
        (module, dep)
        for module, deps in _imports().items()
        for dep in deps
        if _layer(dep) > _layer(module)
    ]
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
