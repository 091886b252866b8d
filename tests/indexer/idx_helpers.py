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


def write_tiny_bert(src: Path, out: Path) -> str:
    """A random 2-layer BERT of width 32 with the tokenizer of the MiniLM folder `src`, saved in
    `out` (needs torch and transformers)."""
    import json
    import shutil

    import torch
    import transformers

    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    config = json.loads((src / "config.json").read_text())
    config.update(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(**{k: v for k, v in config.items() if k != "architectures"})
    transformers.BertModel(cfg).save_pretrained(out)
    return str(out)
