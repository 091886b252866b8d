"""Text-linker latency and throughput vs batch size and vs document length, on the WikiMEL KB.

- vs batch size (1, 8, 32, 128): the first `--docs` WikiMEL dev captions (gold spans) linked
  with `Linker.link_many(batch_size=b)`; mentions/s, documents/s and per-batch latency p50/p95/p99
  (after one untimed pass, each size timed twice, sizes in order then reversed: warm caches
  favour no size);
- vs document length: short captions (as they are), ~500-character and ~5,000-character
  documents made by joining consecutive dev captions (so they carry many mentions), each linked
  on its own (`Linker.link`); latency p50/p95/p99 per document and mentions/s.

The KB is built by `run.ensure_kb` (shared with `run.py mel`) or taken from `--home/--kb-name`.
The reranker is `--model`, else `<home>/models/reranker`, else an untrained one of the same
shape (same cost, meaningless links: timing only; the result says which). Writes
`latency.json` in the results folder, with every batch-1 latency for the distribution plot.

    python benchmarks/latency.py [--docs 256] [--home DIR --kb-name NAME --model PATH]
"""
from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK, machine, results_dir, write_json  # noqa: E402

log = logging.getLogger("benchmarks.latency")
BATCH_SIZES = (1, 8, 32, 128)
LENGTHS = {"short": 0, "500 chars": 500, "5000 chars": 5000}


def percentiles(ms: list[float]) -> dict:
    """p50/p95/p99/mean/max of latencies in milliseconds."""
    a = np.asarray(ms, dtype=float)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "p99": round(float(np.percentile(a, 99)), 2), "mean": round(float(a.mean()), 2),
            "max": round(float(a.max()), 2)}


def join_docs(docs: list, length: int, prefix: str) -> list:
    """Documents of at least `length` characters, each the next consecutive captions joined with
    '. ', their mention spans shifted; `length` 0 returns `docs` unchanged."""
    from kb.types import Document, TextMention

    if length <= 0:
        return list(docs)
    out, text, mentions = [], "", []
    for doc in docs:
        off = len(text) + (2 if text else 0)
        text = f"{text}. {doc.text}" if text else doc.text
        mentions += [TextMention(m.start + off, m.end + off, m.surface) for m in doc.mentions or ()]
        if len(text) >= length:
            out.append(Document(f"{prefix}{len(out)}", text, (), tuple(mentions)))
            text, mentions = "", []
    return out


def load_linker(args):
    """`Linker.load` on the benchmark KB; an untrained reranker when none is trained."""
    from kb.errors import ModelLoadError
    from linker.pipeline import Linker

    home = Path(args.home)
    if args.kb_name:
        name = args.kb_name
    else:
        from benchmarks.run import ensure_kb

        name = ensure_kb(Path(args.kb), home, args.text_model)
    try:
        return Linker.load(home, name, args.model), name, str(args.model or "trained (home or bundled)")
    except ModelLoadError as exc:
        if args.model:
            raise
        log.warning("%s: timing with an untrained reranker of the same shape", exc)
    from indexer.dense import load_text_index
    from kb.home import kb_dir
    from kb.store import KnowledgeBase
    from linker.features import FEATURES
    from linker.reranker import Reranker, RerankerConfig

    index = load_text_index(KnowledgeBase(kb_dir(home, name) / "kb.sqlite"), kb_dir(home, name))
    model = WORK / "latency" / "untrained-reranker"
    Reranker(RerankerConfig(n_features=len(FEATURES), dim=index.dim, feature_names=FEATURES,
                            text_model=index.manifest["model_id"])).save(model)
    return Linker.load(home, name, model), name, "untrained (same shape; timing only)"


def by_batch_size(linker, docs: list, sizes: tuple[int, ...]) -> tuple[list[dict], list[float]]:
    """Rows per batch size, and the per-document latencies at batch size 1.

    The same documents are linked at every size, and linking warms caches (entities met before
    cost less): so one untimed pass over all of them comes first, and then each size is timed
    twice, the sizes in order and then in reverse, so that no size gains from coming later;
    a row reports the mean of its two passes (`mentions_per_second_by_pass`: each)."""
    mentions = sum(len(d.mentions) for d in docs)
    list(linker.link_many(docs, batch_size=max(sizes)))  # untimed: every timed pass meets warm caches
    walls: dict[int, list[float]] = {b: [] for b in sizes}
    batch_ms: dict[int, list[float]] = {b: [] for b in sizes}
    for b in (*sizes, *reversed(sizes)):
        t0 = time.perf_counter()
        for s in range(0, len(docs), b):
            t = time.perf_counter()
            list(linker.link_many(docs[s : s + b], batch_size=b))
            batch_ms[b].append((time.perf_counter() - t) * 1000)
        walls[b].append(time.perf_counter() - t0)
    rows = []
    for b in sizes:
        wall = sum(walls[b]) / len(walls[b])
        rows.append({"batch_size": b, "documents": len(docs), "mentions": mentions, "passes": len(walls[b]),
                     "mentions_per_second": round(mentions / wall, 1), "docs_per_second": round(len(docs) / wall, 1),
                     "mentions_per_second_by_pass": [round(mentions / w, 1) for w in walls[b]],
                     "batch_latency_ms": percentiles(batch_ms[b])})
        log.info("batch %d: %s", b, rows[-1])
    return rows, batch_ms.get(1, [])


def by_length(linker, docs: list, n_per_length: int) -> list[dict]:
    rows = []
    for label, length in LENGTHS.items():
        long_docs = join_docs(docs, length, f"{label}-")[:n_per_length]
        if not long_docs:
            continue
        ms = []
        for doc in long_docs:
            t = time.perf_counter()
            linker.link(doc)
            ms.append((time.perf_counter() - t) * 1000)
        mentions = sum(len(d.mentions) for d in long_docs)
        rows.append({"length": label, "documents": len(long_docs),
                     "mean_chars": round(float(np.mean([len(d.text) for d in long_docs])), 1),
                     "mentions_per_doc": round(mentions / len(long_docs), 1),
                     "mentions_per_second": round(mentions / (sum(ms) / 1000), 1), "latency_ms": percentiles(ms)})
        log.info("%s: %s", label, rows[-1])
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kb", default=str(DATA / "wikimel" / "kb.jsonl"), help="entity JSONL (built by ensure_kb)")
    ap.add_argument("--test", default=str(DATA / "wikimel" / "dev.jsonl"), help="labelled JSONL (gold spans)")
    ap.add_argument("--home", default=str(WORK / "home"), help="data home for the built KB")
    ap.add_argument("--kb-name", default=None, help="use this already-built KB under --home instead")
    ap.add_argument("--model", default=None, help="reranker path (default: trained or bundled, else untrained)")
    ap.add_argument("--text-model", default=None, help="text encoder for a new index (default: MiniLM)")
    ap.add_argument("--docs", type=int, default=256, help="documents per batch size")
    ap.add_argument("--per-length", type=int, default=20, help="documents per length (at most)")
    ap.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads after loading (0: the library's choice, one per core)")
    ap.add_argument("--out", default=None, help="JSON file (default: latency.json in the results folder)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from linker.training.labelled import read_labelled

    info = machine()
    linker, name, reranker = load_linker(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    docs = [d for d, _ in read_labelled(args.test)]
    list(linker.link_many(docs[:16]))  # warm-up: lazy loads outside the timing
    sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    batch_rows, single_ms = by_batch_size(linker, docs[: args.docs], sizes)
    length_rows = by_length(linker, docs, args.per_length)
    result = {
        "benchmark": "latency", "machine": info,
        "config": {"kb": args.kb if not args.kb_name else None, "home": args.home, "kb_name": name,
                   "kb_entities": len(linker.kb), "text_model": linker.index.manifest.get("model_id"),
                   "index_kind": linker.index.manifest.get("kind"), "reranker": reranker,
                   "documents": args.test, "mentions": "gold spans (no detection)",
                   "torch_threads": torch.get_num_threads()},
        "by_batch_size": batch_rows, "by_length": length_rows,
        "single_doc_latencies_ms": [round(x, 3) for x in single_ms],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    path = write_json(args.out or results_dir() / "latency.json", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
