"""News probe: everyday news-style sentences (written for this benchmark, `data/news_probe.jsonl`:
36 sentences, 87 gold mentions of places, things, ideas and people, 3 of them NIL, namesakes
of different kinds on purpose: Apple the company and the fruit, the Amazon rainforest and the
company, Mercury the planet and the element, Jordan the country and the player) linked
against a general KB (default: the starter KB's Vital Articles, entity list only, as
`mmel kb starter` builds it) with the bundled model or `--model`.

    python benchmarks/news.py [--kb ../shared/data/general/kb.jsonl] [--model DIR]

Reports, with the gold spans given: precision (right links among links made), recall, F1 and
every decision; from raw text: the spotter's scores (`spotting.bench_no_spans`). Writes
`results/news.json`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK, machine, results_dir, write_json  # noqa: E402

PROBE = Path(__file__).resolve().parent / "data" / "news_probe.jsonl"


def given_span_scores(linker, data) -> dict:
    """Precision, recall and F1 of the links made on the gold spans, and each decision."""
    rows = []
    for (doc, gold), links in zip(data, linker.link_many([d for d, _ in data])):
        for m, q, link in zip(doc.mentions, gold, links):
            rows.append({"doc": doc.id, "surface": m.surface, "gold": q, "predicted": link.entity,
                         "score": round(link.score, 3)})
    made = [r for r in rows if r["predicted"] is not None]
    right = sum(r["predicted"] == r["gold"] for r in made)
    in_kb = sum(r["gold"] is not None for r in rows)
    precision, recall = right / max(len(made), 1), right / max(in_kb, 1)
    return {"mentions": len(rows), "in_kb": in_kb, "links": len(made), "right": right, "precision": precision,
            "recall": recall, "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "nil_right": sum(r["gold"] is None and r["predicted"] is None for r in rows),
            "wrong": [r for r in rows if r["predicted"] != r["gold"]], "decisions": rows}


def main(argv: list[str] | None = None) -> None:
    from benchmarks.run import ensure_kb
    from benchmarks.spotting import bench_no_spans
    from linker.pipeline import Linker, set_threads
    from linker.training.labelled import read_labelled

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", default=str(DATA / "general" / "kb.jsonl"), help="entity list of the KB")
    ap.add_argument("--model", default=None, help="reranker folder/prefix [default: the bundled one]")
    ap.add_argument("--home", default=str(WORK / "home"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    name = ensure_kb(Path(args.kb), Path(args.home), None)
    set_threads(args.threads)
    linker = Linker.load(args.home, name, args.model)
    data = read_labelled(PROBE)
    given = given_span_scores(linker, data)
    raw = bench_no_spans(linker, [(d, [q for q in qs]) for d, qs in data])
    raw.pop("probe", None)
    out = write_json(results_dir() / "news.json", {
        "benchmark": "news", **machine(), "config": {"kb": str(Path(args.kb).resolve()), "kb_name": name,
                                                     "model": args.model or "default", "probe": str(PROBE)},
        "given_spans": given, "raw_text": raw})
    print(f"given spans: precision {given['precision']:.3f} ({given['right']}/{given['links']}), "
          f"recall {given['recall']:.3f}; raw text found {raw.get('found', raw.get('found_overlap'))}; wrote {out}")


if __name__ == "__main__":
    main()
