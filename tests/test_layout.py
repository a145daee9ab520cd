"""The package layout is the architecture: these checks keep it that way.

Layers, low to high: the shared basics (config, secrets, logging) -> diagnosis -> result
types -> protocol clients -> probes -> the daemon -> the command line. A module imports only
from its own layer or lower ones, and no two modules import each other in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import pyast

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mailcanary"
LAYERS = {
    "mailcanary": 0, "mailcanary.config": 0, "mailcanary.credentials": 0,
    "mailcanary.logsetup": 0, "mailcanary.diagnosis": 1, "mailcanary.result": 2,
    "mailcanary.protocols": 3, "mailcanary.probes": 4, "mailcanary.daemon": 5,
    "mailcanary.output": 6, "mailcanary.cli": 6, "mailcanary.__main__": 6,
    "mailcanary.testbed": 6,
}
MAX_TOP_LEVEL_MODULES = 8
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(pyast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "mailcanary"}


def layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def test_imports_point_down() -> None:
    mods = modules()
    wrong = []
    for name, path in mods.items():
        for target in imports_of(path):
            if target in mods and layer(target) > layer(name):
                wrong.append(f"{name} (layer {layer(name)}) imports {target} ({layer(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    mods = modules()
    graph = {name: {t for t in imports_of(path) if t in mods and t != name}
             for name, path in mods.items()}
    # A package's __init__ re-exporting its own submodules is not a cycle of the design.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(node):], node]))
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, [*stack, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_sizes() -> None:
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(p.name for p in top)
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{path}: {len(text.splitlines())} lines")
        for node in ast.walk(pyast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)
