"""The one-way layering, read from the import statements: kb → indexer → linker, and the HTTP
front (`linker/server.py`) is the only module that imports the web stack."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("kb", "indexer", "linker")  # each may import only from itself and the ones before it
FRONTS = {"linker/server.py"}  # the HTTP front, like cli.py
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
    assert imports(ROOT / "linker" / "server.py") & WEB  # the check sees the front's imports
