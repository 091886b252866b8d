"""Shared fixtures: a tiny KB (a dozen entities) and a `Linker` over it with fake models.

`tiny_kb_path` builds the KB from a JSONL entity list; `tiny_linker` adds a flat text index
built with the deterministic `HashingTextEncoder` and an untrained reranker, so linking runs in
milliseconds and needs no model weights. `demo_home` holds the demo KB indexed with the real text
model, for the `slow` tests.
"""
from __future__ import annotations

import pytest
from pathlib import Path

from kb.home import kb_path
from tiny import build_tiny_kb, build_tiny_linker


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    """A data home whose default KB is the tiny KB (session-wide; treat as read-only)."""
    home = tmp_path_factory.mktemp("tiny")
    build_tiny_kb(home)
    return home


@pytest.fixture(scope="session")
def tiny_kb_path(tiny_home) -> Path:
    """`kb.sqlite` of the tiny KB (session-wide; treat as read-only)."""
    return kb_path(tiny_home)


@pytest.fixture(scope="session")
def tiny_linker(tiny_home):
    """A read-only `Linker` over the tiny KB, shared by the session."""
    return build_tiny_linker(tiny_home)


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A data home with the demo KB and its MiniLM text index (real model: for `slow` tests)."""
    from indexer.bootstrap import ensure_kb
    from linker.fronts.demo import DEMO_KB, DEMO_NAME

    home = tmp_path_factory.mktemp("demo")
    ensure_kb(home, DEMO_NAME, DEMO_KB)
    return home
