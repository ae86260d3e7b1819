"""The package's shape: the runtime never reaches training code, nothing imports in a circle,
and no module grows past what a newcomer can read."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("draw2digit", "draw2digit_app")
#: the runtime: what serving and the notebook pad need; the CLI is a front above both halves
RUNTIME_EXEMPT = ("draw2digit.training", "draw2digit.cli")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str) -> set[str]:
    """Every draw2digit module this file imports, at module level or inside a function."""
    out = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {m for m in _imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_runtime_module_imports_training_code():
    reached = {
        (name, target)
        for name, targets in _graph().items()
        if not name.startswith(RUNTIME_EXEMPT)
        for target in targets
        if target.startswith("draw2digit.training")
    }
    assert not reached


def test_the_boundary_test_sees_function_level_imports(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from draw2digit.training import model\n    return model\n")
    assert "draw2digit.training.model" in _imports(sneaky, "draw2digit.sneaky")


def test_no_import_cycle():
    graph = _graph()
    # a package's __init__ importing its own submodules is how a package is built, not a cycle
    edges = {n: {t for t in ts if not n.startswith(t + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles


def test_no_module_over_600_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 600}
    assert not long
