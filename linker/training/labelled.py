"""Labelled documents: JSONL with gold spans and, per span, the gold entity id (`"qid": null`: NIL).

Read by training (`linker.training.train`, `linker.training.mention_train`), `mmel evaluate` and
the benchmarks.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kb.errors import InputError
from kb.types import Document
from linker.document import iter_jsonl, parse_document


def read_labelled_files(paths: Sequence[str | os.PathLike], limit: int | None = None) -> list[tuple[Document, list[str | None]]]:
    """`read_labelled` of each file, concatenated (`limit`: per file)."""
    return [pair for path in paths for pair in read_labelled(path, limit)]


def read_labelled(path: str | os.PathLike, limit: int | None = None) -> list[tuple[Document, list[str | None]]]:
    """Documents with their gold spans and, per span, the gold entity id; `"qid": null` marks a
    NIL mention (its entity is not in the KB), a missing or empty `qid` is an error."""
    p = Path(path)
    out = []
    for where, obj in iter_jsonl(p, "labelled file"):
        doc = parse_document(obj, where, p.resolve().parent, allow_overlaps=True)  # WikiMEL repeats spans
        mentions = obj["mentions"] if doc.mentions is not None else None
        if not mentions or not all("qid" in m and (m["qid"] is None or str(m["qid"]).strip()) for m in mentions):
            raise InputError(f"{where}: needs 'mentions' with a gold 'qid' in every mention (null: NIL, not in the KB)")
        out.append((doc, [None if m["qid"] is None else str(m["qid"]) for m in mentions]))
        if limit and len(out) >= limit:
            break
    return out
