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


def build_tiny_kb(directory: Path) -> Path:
    """Build the tiny KB under `directory` (a KB folder); returns the `kb.sqlite` path."""
    from kb.build import build_kb

    directory.mkdir(parents=True, exist_ok=True)
    src = directory / "entities.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in TINY_ENTITIES), encoding="utf-8")
    out = directory / "kb.sqlite"
    build_kb(out, entities=src, progress=False)
    return out


def build_tiny_linker(kb_file: Path):
    """A `Linker` over the KB at `kb_file` with a hashing encoder, flat index, untrained reranker."""
    from indexer.dense import build_text_index, load_text_index
    from indexer.text import HashingTextEncoder
    from kb.store import KnowledgeBase
    from linker.features import FEATURES
    from linker.pipeline import Linker
    from linker.reranker import Reranker, RerankerConfig

    kb = KnowledgeBase(kb_file)
    encoder = HashingTextEncoder(dim=64)
    build_text_index(kb, encoder, kb_file.parent, kind="flat", progress=False)
    index = load_text_index(kb, kb_file.parent)
    reranker = Reranker(RerankerConfig(n_features=len(FEATURES), dim=64, feature_names=FEATURES))
    reranker.eval()
    return Linker(kb, index, encoder, reranker)
