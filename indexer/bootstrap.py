"""Build a KB and its text index from an entity list, unless they are already there.

The one bootstrap shared by the demo, the benchmarks and the tests. What is present is reused
as it is: a KB with its `kb.sqlite` is not rebuilt, an index with its manifest is not
re-embedded.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from indexer.dense import TEXT_INDEX, build_text_index
from indexer.text import TextEncoder, load_text_encoder
from kb.build import build_kb
from kb.home import kb_dir, kb_path
from kb.store import KnowledgeBase


def ensure_kb(home: str | os.PathLike | None, name: str, entities: str | os.PathLike,
              make_encoder: Callable[[], TextEncoder] = load_text_encoder, *, kind: str = "auto",
              batch_size: int = 64, progress: bool = False, dump: str | os.PathLike | None = None,
              dump_articles: str | os.PathLike | None = None) -> KnowledgeBase:
    """KB `name` under the data home, built from the entity JSONL `entities` (and, when given,
    the anchors and redirects of `dump`, counted in `dump_articles` only) if missing, with its
    text index built if missing.

    `make_encoder` is called only when the index must be built (default: the bundled MiniLM);
    `kind` and `batch_size` are those of `indexer.dense.build_text_index`.
    """
    if not kb_path(home, name).is_file():
        build_kb(kb_path(home, name), entities=entities, dump=dump, dump_articles=dump_articles, progress=progress)
    kb = KnowledgeBase(kb_path(home, name))
    folder = kb_dir(home, name)
    if not (folder / f"{TEXT_INDEX}.json").is_file():
        build_text_index(kb, make_encoder(), folder, kind=kind, batch_size=batch_size, progress=progress)
    return kb
