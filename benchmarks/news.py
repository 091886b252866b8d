"""News probe: everyday news-style sentences (written for this benchmark, `data/news_probe.jsonl`:
76 sentences, 203 gold mentions of places, things, ideas and people, 8 of them NIL, namesakes
of different kinds on purpose: Apple the company and the fruit, the Amazon rainforest and the
company, Mercury the planet and the element, Jordan the country and the player, Jupiter and
Venus the planets and the gods, cranes the birds and the machine, Niger the country and the
river, ...; news36–news75 were added later, written without running the linker on them) linked
against a general KB (default: the starter KB's Vital Articles, entity list only, as
`mmel kb starter` builds it) with the bundled model or `--model`.

    python benchmarks/news.py [--kb ../shared/data/general/kb.jsonl] [--model DIR]
    python benchmarks/news.py --also-people --out news_starter_people.json   # the starter KB with the people KBs

`--also-people` merges the WikiMEL and Richpedia entities (`make_data.py`'s merged KB; ids the
KB has are skipped), as `mmel kb starter --also` does: everyday text against things and people.

Reports, with the gold spans given: precision (right links among links made), recall, F1 and
every decision; from raw text: the spotter's scores (`spotting.bench_no_spans`). Writes
`results/news.json`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK, machine, results_dir, write_json  # noqa: E402

PROBE = Path(__file__).resolve().parent / "data" / "news_probe.jsonl"


def with_people(kb: Path) -> Path:
    """`kb`'s entity rows, then those of the merged people KB whose ids it lacks, in `WORK`."""
    from benchmarks.make_data import ensure_merged

    out = WORK / f"{kb.stem}-with-people.jsonl"
    rows = kb.read_text(encoding="utf-8").splitlines()
    seen = {json.loads(r)["qid"] for r in rows if r.strip()}
    people = [r for r in ensure_merged().read_text(encoding="utf-8").splitlines()
              if r.strip() and json.loads(r)["qid"] not in seen]
    text = "\n".join(rows + people) + "\n"
    if not out.is_file() or out.read_text(encoding="utf-8") != text:  # rewritten only when it changes (the KB name
        out.write_text(text, encoding="utf-8")                          # follows the file's size and time)
    return out


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
    ap.add_argument("--also-people", action="store_true", help="merge the people KBs (WikiMEL ∪ Richpedia) into the KB")
    ap.add_argument("--out", default="news.json", help="result file name in the results folder")
    args = ap.parse_args(argv)
    kb = with_people(Path(args.kb)) if args.also_people else Path(args.kb)
    name = ensure_kb(kb, Path(args.home), None)
    set_threads(args.threads)
    linker = Linker.load(args.home, name, args.model)
    data = read_labelled(PROBE)
    given = given_span_scores(linker, data)
    raw = bench_no_spans(linker, [(d, [q for q in qs]) for d, qs in data])
    raw.pop("probe", None)
    out = write_json(results_dir() / args.out, {
        "benchmark": "news", **machine(), "config": {"kb": str(Path(args.kb).resolve()), "also_people": args.also_people,
                                                     "kb_name": name, "kb_entities": len(linker.kb),
                                                     "model": args.model or "default", "probe": str(PROBE)},
        "given_spans": given, "raw_text": raw})
    print(f"given spans: precision {given['precision']:.3f} ({given['right']}/{given['links']}), "
          f"recall {given['recall']:.3f}; raw text found {raw.get('found', raw.get('found_overlap'))}; wrote {out}")


if __name__ == "__main__":
    main()
