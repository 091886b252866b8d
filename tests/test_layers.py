"""The one-way layering, read from the import statements: kb → indexer → linker, no import
circles between modules, and the HTTP front (`linker/fronts/server.py`) is the only module that
imports the web stack."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("kb", "indexer", "linker")  # each may import only from itself and the ones before it
FRONTS = {"linker/fronts/server.py"}  # the HTTP front, like cli.py
WEB = {"fastapi", "starlette", "uvicorn"}


def imports(path: Path) -> set[str]:
    """Top-level package names of every module `path` imports (module-level or in functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_downwards(layer):
    above = set(LAYERS[LAYERS.index(layer) + 1:]) | {"cli", "benchmarks"}
    bad = {str(p.relative_to(ROOT)): sorted(imports(p) & above) for p in modules(layer)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_server_front_imports_the_web_stack():
    core = [p for layer in LAYERS for p in modules(layer) if str(p.relative_to(ROOT)) not in FRONTS]
    assert len(core) > 20
    bad = {str(p.relative_to(ROOT)): sorted(imports(p) & WEB) for p in core}
    assert {k: v for k, v in bad.items() if v} == {}
    assert imports(ROOT / "linker" / "fronts" / "server.py") & WEB  # the check sees the front's imports


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, module-level or in functions (`from a.b import c`
    counts as `a.b.c` when that is a module, else `a.b`)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names]
        out |= {n for n in names if n in known}
    return out


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    paths = [p for layer in LAYERS for p in modules(layer)] + [ROOT / "cli.py"]
    known = {module_name(p) for p in paths}
    graph = {module_name(p): project_imports(p, known) - {module_name(p)} for p in paths}
    assert sum(map(len, graph.values())) > 50  # the check sees the imports
    assert import_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # and would see a circle
    assert import_cycles(graph) == []
