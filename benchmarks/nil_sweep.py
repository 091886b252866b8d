"""NIL threshold trade-off: what other values of `nil_threshold` would give on every dev set
(thresholds on the decision score, `linker.calibration.decision_score`, with the model's `nil_lead`).

    python benchmarks/nil_sweep.py [--model P] [--offsets -0.03,-0.02,-0.01,0,0.01,0.02]

Training picks one NIL threshold on the pooled dev sets (hiding the gold of a random 5 % of the
mentions; docs/how-it-works.md). How many mentions of a user's text name things outside the KB
decides which threshold suits it, and `mmel link --set nil_threshold=T` sets another. This links
each set once (gold spans given, bundled model or `--model`), then decides NIL at the model's own
threshold plus each offset: micro-F1, the share of in-KB gold mentions decided NIL, and NIL
precision and recall where the set has NIL gold. Sets: WikiMEL dev, the Richpedia dev part, the
general dev articles (KBs as `run.py mel` builds them), the same with links to other articles as
NIL gold (`general-nil`), and the news probe (`news.py`). Writes `results/nil_sweep.json`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK, machine, results_dir, write_json  # noqa: E402

OFFSETS = (-0.03, -0.02, -0.01, 0.0, 0.01, 0.02)


def top_decisions(linker, data) -> list[tuple[str | None, list[str], str | None, float]]:
    """Per mention: (gold id, ranking, best candidate id, its decision score), NIL not yet decided."""
    from linker.calibration import ranked_decision

    out = []
    for (_, gold), ranked in zip(data, linker.rank_many([d for d, _ in data])):
        for g, (link, ranking) in zip(gold, ranked):
            c = link.candidates
            out.append((g, ranking, c[0].entity if c else None,
                        ranked_decision([x.score for x in c[:2]], linker.config.nil_lead)))
    return out


def at_threshold(rows, tau: float) -> dict:
    """The metrics of `top_decisions` rows with NIL under `tau`."""
    from linker.training.evaluate import score_links

    metrics = score_links((g, ranking, top if score >= tau else None) for g, ranking, top, score in rows)
    in_kb = [(g, score) for g, _, top, score in rows if g is not None]
    return {"micro_f1": metrics.f1, "precision": metrics.precision, "recall": metrics.recall,
            "in_kb_nil": sum(score < tau for _, score in in_kb) / max(len(in_kb), 1),
            "nil_gold": metrics.gold_nil, "nil_precision": metrics.nil_precision, "nil_recall": metrics.nil_recall}


def main(argv: list[str] | None = None) -> None:
    from benchmarks.make_data import DUMP, GENERAL_KB, ensure_general_split, ensure_richpedia_split
    from benchmarks.news import PROBE
    from benchmarks.run import ensure_kb
    from linker.pipeline import Linker, set_threads
    from linker.training.labelled import read_labelled

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="reranker path (default: bundled)")
    ap.add_argument("--offsets", default=",".join(map(str, OFFSETS)),
                    help="comma-separated offsets from the model's own threshold")
    ap.add_argument("--home", default=str(WORK / "home"))
    ap.add_argument("--limit", type=int, default=None, help="first N documents of each set (quick runs)")
    args = ap.parse_args(argv)
    try:
        offsets = sorted({float(x) for x in args.offsets.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--offsets {args.offsets!r}: give numbers separated by commas, e.g. -0.01,0,0.01")
    home = Path(args.home)
    general, general_nil = ensure_general_split(), ensure_general_split("nil")
    articles = general / "train_articles.txt"
    general_kb = ensure_kb(GENERAL_KB, home, None, DUMP, articles)
    sets = {
        "wikimel dev": (ensure_kb(DATA / "wikimel" / "kb.jsonl", home, None), DATA / "wikimel" / "dev.jsonl"),
        "richpedia dev part": (ensure_kb(DATA / "richpedia" / "kb.jsonl", home, None), ensure_richpedia_split()[1]),
        "general dev": (general_kb, general / "dev.jsonl"),
        "general-nil dev": (general_kb, general_nil / "dev.jsonl"),
        "news probe": (ensure_kb(GENERAL_KB, home, None), PROBE),
    }
    set_threads(1)
    linkers = {kb: Linker.load(home, kb, args.model) for kb, _ in sets.values()}  # general dev and -nil share one
    own = next(iter(linkers.values())).config.nil_threshold
    if own is None:
        sys.exit("the model has no NIL threshold to sweep around")
    result = {"benchmark": "nil_sweep", **machine(), "model": args.model or "default", "nil_threshold": own, "sets": {}}
    for label, (kb, path) in sets.items():
        rows = top_decisions(linkers[kb], read_labelled(path, args.limit))
        result["sets"][label] = {"mentions": len(rows), "kb": kb,
                                 "thresholds": [{"offset": d, "threshold": own + d, **at_threshold(rows, own + d)}
                                                for d in offsets]}
        print(label, [(round(t["threshold"], 3), round(t["micro_f1"], 4), round(t["in_kb_nil"], 4))
                      for t in result["sets"][label]["thresholds"]], flush=True)
    print(f"wrote {write_json(results_dir() / 'nil_sweep.json', result)}")


if __name__ == "__main__":
    main()
