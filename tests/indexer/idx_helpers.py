"""Helpers for indexer tests: a small KB and clustered unit vectors."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kb.store import KBWriter, KnowledgeBase
from kb.types import Entity

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GALLERY = DATA / "faces" / "gallery"

ENTITIES = [
    Entity("Q76", "Barack Obama", "44th president of the United States"),
    Entity("Q6279", "Joe Biden", "46th president of the United States"),
    Entity("Q3323", "Kit Harington", "English actor"),
    Entity("Q229221", "Rose Leslie", "Scottish actress"),
    Entity("Q4720", "Alex Lacamoire", "American music director and orchestrator"),
    Entity("Q9617", "FC Barcelona", "football club in Barcelona, Spain"),
    Entity("Q90", "Paris", "capital city of France"),
    Entity("Q1", "Universe", ""),
]


def make_kb(path: Path, entities=ENTITIES) -> KnowledgeBase:
    with KBWriter(path) as w:
        w.add_entities(entities)
        w.finish(progress=False)
    return KnowledgeBase(path)


def clustered(n: int, d: int, clusters: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors around `clusters` centres, and 200 noisy queries near data points."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, 200, replace=False)] + 0.1 * rng.standard_normal((200, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q
