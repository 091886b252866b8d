"""Builders for the tiny test KB and linker, shared by the fixtures in `conftest.py` and by tests.

A module of its own (not `conftest`), since several `conftest.py` files exist under tests/.
"""
from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

TINY_ENTITIES = [
    {"qid": "Q76", "name": "Barack Obama", "description": "44th president of the United States",
     "aliases": ["Obama", "Barack Hussein Obama"]},
    {"qid": "Q13133", "name": "Michelle Obama", "description": "First Lady of the United States"},
    {"qid": "Q6279", "name": "Joe Biden", "description": "46th president of the United States",
     "aliases": ["Biden"]},
    {"qid": "Q22686", "name": "Donald Trump", "description": "45th president of the United States"},
    {"qid": "Q30", "name": "United States", "description": "country in North America",
     "aliases": ["USA", "America"]},
    {"qid": "Q90", "name": "Paris", "description": "capital of France"},
    {"qid": "Q167646", "name": "Paris Hilton", "description": "American media personality"},
    {"qid": "Q142", "name": "France", "description": "country in Western Europe"},
    {"qid": "Q64", "name": "Berlin", "description": "capital of Germany"},
    {"qid": "Q183", "name": "Germany", "description": "country in Central Europe"},
    {"qid": "Q567", "name": "Angela Merkel", "description": "Chancellor of Germany",
     "aliases": ["Merkel"]},
    {"qid": "Q3772", "name": "Kit Harington", "description": "English actor"},
]


def write_tiny_entities(folder: Path) -> Path:
    """The tiny KB's entity list as `<folder>/tiny_entities.jsonl`."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "tiny_entities.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in TINY_ENTITIES), encoding="utf-8")
    return src


def build_tiny_kb(home: Path) -> Path:
    """Build the tiny KB (no index) as the default KB of the data home `home`; returns its `kb.sqlite`."""
    from kb.build import build_kb
    from kb.home import kb_path

    build_kb(kb_path(home), entities=write_tiny_entities(home), progress=False)
    return kb_path(home)


def build_tiny_index(home: Path):
    """The tiny KB with a flat hashing (64-d) text index in `home`, each built if missing; the KB."""
    from indexer.bootstrap import ensure_kb
    from indexer.text import HashingTextEncoder
    from kb.home import DEFAULT_KB

    return ensure_kb(home, DEFAULT_KB, write_tiny_entities(home), lambda: HashingTextEncoder(dim=64), kind="flat")


def build_tiny_linker(home: Path):
    """A `Linker` over the tiny KB of `home` (hashing encoder, flat index, untrained reranker)."""
    from indexer.dense import load_text_index
    from indexer.text import HashingTextEncoder
    from linker.features import FEATURES
    from linker.pipeline import Linker
    from linker.reranker import Reranker, RerankerConfig

    kb = build_tiny_index(home)
    index = load_text_index(kb, kb.path.parent)
    reranker = Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES))
    reranker.eval()
    return Linker(kb, index, HashingTextEncoder(dim=64), reranker)
