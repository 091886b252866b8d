"""Benchmark runner: every benchmark behind one command; each run re-renders RESULTS.md.

    python benchmarks/run.py mel --kb KB.jsonl --test TEST.jsonl --out OUT.json
    python benchmarks/run.py faces | joint | kb-build [--wikidata] [--full] | index [--full] | latency | scale [--full]
    python benchmarks/run.py all        # the quick versions of all but mel, then the report
    python benchmarks/run.py report     # RESULTS.md + plots from the JSON present, runs nothing

`--results DIR` (before the subcommand) reads and writes results in DIR instead of
benchmarks/results/ (RESULTS.md goes next to DIR).

`mel` builds (or reuses) a KB and its text index from an entity JSONL, links every test document
with its gold spans and writes JSON with `hits_at_1`, `recall_at_k` ("1", "5", "10", "30"),
`micro_f1`, `mentions_per_second` (first pass; `mentions_per_second_second_pass`: the same
documents again, as a long-running linker meets its entities again), `latency_ms` (p50, p95), `peak_rss_mb` and the git revision,
for the full pipeline and, side by side, an exact-name and a dense-only baseline (the linker's
static context encoder), and (unless `--no-strong-baseline`) a dense-only one with the transformer
on the mention's sentence (`dense_minilm`) and fuzzy name match + w * dense (`fuzzy_dense`; w
chosen on `--tune-on TRAIN.jsonl` from a small grid and recorded, else 1). With
`--no-spans` it links the texts without their spans instead (`benchmarks/spotting.py`): gold
mentions found by the spotter (exact span and overlap, separately, one predicted span per gold
mention), precision and F1 where the gold is complete (`--gold-complete`; else a lower bound of
precision), accuracy on the found mentions against given spans,
predicted vs gold mentions per 1,000 characters, the spotter's share of link time, and the
links made on a probe set of sentences that should yield none.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import WORK, CachedEncoder, machine, write_json  # noqa: E402
from linker.training.evaluate import RECALL_AT, evaluate, score_links  # noqa: E402


def _kb_name(*paths: Path | None) -> str:
    keys = []
    for path in paths:
        if path is not None:
            st = path.stat()
            keys.append(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return "bench-" + hashlib.sha1("|".join(keys).encode()).hexdigest()[:10]


def ensure_kb(kb_jsonl: Path, home: Path, text_model: str | None, dump: Path | None = None,
              dump_articles: Path | None = None) -> str:
    """Build the KB (entities of `kb_jsonl`; anchors and redirects of `dump`, counted in the
    articles of `dump_articles` only), its text index and its entity profiles under `home`
    unless up-to-date ones are there; entity texts are embedded through the shared embedding
    cache (`CachedEncoder`)."""
    from indexer.bootstrap import ensure_kb as ensure
    from indexer.text import load_text_encoder
    from kb.home import kb_dir
    from linker.profiles import ensure_profiles

    def cached_encoder():
        encoder = load_text_encoder(text_model)
        cache = WORK / "embeddings" / hashlib.sha1(encoder.model_id.encode()).hexdigest()[:10]
        return CachedEncoder(encoder, cache)

    name = _kb_name(kb_jsonl) if dump is None else _kb_name(kb_jsonl, dump, dump_articles)
    kb = ensure(home, name, kb_jsonl, cached_encoder, batch_size=128, progress=True, dump=dump,
                dump_articles=dump_articles)
    ensure_profiles(kb, kb_dir(home, name))
    return name


def exact_name_baseline(kb, data) -> dict:
    """Link a mention to the most probable entity whose full or base name equals it; else NIL."""
    from kb.aliases import base_name
    from kb.normalize import mention_key

    gold, rankings = [], []
    for doc, qids in data:
        for m, qid in zip(doc.mentions, qids):
            key = mention_key(m.surface)
            hits = [c.entity for c in kb.lookup_key(key, 100)
                    if key in (mention_key(c.name), mention_key(base_name(c.name)))]
            gold.append(qid)
            rankings.append(hits)
    return score_links(zip(gold, rankings, [r[0] if r else None for r in rankings])).to_dict()


def dense_only_baseline(kb, index, encoder, data, context=None) -> dict:
    """Link a mention to the nearest entity of its context embedding in the text index;
    `context(doc, mention)` is the text encoded (default: the linker's `context_text`)."""
    from linker.pipeline import context_text

    context = context or (lambda d, m: context_text(d.text, m))
    pairs = [(doc, m, q) for doc, qids in data for m, q in zip(doc.mentions, qids)]
    vecs = encoder.encode([context(d, m) for d, m, _ in pairs], batch_size=128)
    _, ids = index.search(vecs, max(RECALL_AT))
    ents = {}
    rankings = []
    for row in ids:
        need = [int(i) for i in row if i >= 0 and int(i) not in ents]
        ents.update(zip(need, (e.id for e in kb.by_idx(need))))
        rankings.append([ents[int(i)] for i in row if i >= 0])
    gold = [q for _, _, q in pairs]
    return score_links(zip(gold, rankings, [r[0] if r else None for r in rankings])).to_dict()


def dense_minilm_baseline(kb, index, text_model: str, data) -> dict:
    """`dense_only_baseline` with the transformer itself (the index's model) on the mention's sentence."""
    from indexer.text import load_text_encoder

    return dense_only_baseline(kb, index, load_text_encoder(text_model), data,
                               context=lambda d, m: sentence_of(d.text, m.start))


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentence_of(text: str, start: int) -> str:
    """The sentence of `text` holding character `start` (split after . ! ? before a capital)."""
    lo = 0
    for cut in _SENTENCE.finditer(text):
        if cut.start() > start:
            return text[lo : cut.start()]
        lo = cut.end()
    return text[lo:]


FUZZY_DENSE_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the grid `--tune-on` searches


def _fuzzy_dense_rankings(kb, index, text_model: str, data, weights, chunk: int = 256) -> tuple[list, dict]:
    """(gold qids, `{w: top-k entity ids per mention}`) ranking every KB entity by
    WRatio(mention, name)/100 + w * cos(MiniLM(sentence), entity vector), for each `w`."""
    from rapidfuzz import fuzz, process

    from indexer.text import load_text_encoder
    from kb.normalize import mention_key

    idxs, names = zip(*((i, e.name) for i, e in kb.iter_entities()))
    ids = [e.id for e in kb.by_idx(idxs)]
    entity_vecs = index.reconstruct(np.asarray(idxs, dtype=np.int64))
    pairs = [(doc, m, q) for doc, qids in data for m, q in zip(doc.mentions, qids)]
    encoder = load_text_encoder(text_model)
    ctx = encoder.encode([sentence_of(d.text, m.start) for d, m, _ in pairs], batch_size=64)
    rankings = {w: [] for w in weights}
    for lo in range(0, len(pairs), chunk):
        part = pairs[lo : lo + chunk]
        fuzzy = process.cdist([m.surface for _, m, _ in part], names, scorer=fuzz.WRatio,
                              processor=mention_key, dtype=np.float32, workers=-1) / 100.0
        dense = ctx[lo : lo + chunk] @ entity_vecs.T
        for w in weights:
            top = np.argsort(-(fuzzy + w * dense), axis=1)[:, : max(RECALL_AT)]
            rankings[w] += [[ids[j] for j in row] for row in top]
    return [q for _, _, q in pairs], rankings


def tune_fuzzy_dense(kb, index, text_model: str, train, weights=FUZZY_DENSE_WEIGHTS) -> dict:
    """The weight of the grid with the best Hits@1 on labelled `train` (ties: the smaller), and
    the Hits@1 of every weight."""
    gold, rankings = _fuzzy_dense_rankings(kb, index, text_model, train, weights)
    hits = {w: score_links(zip(gold, r, [x[0] for x in r])).to_dict()["hits_at_1"] for w, r in rankings.items()}
    best = max(weights, key=lambda w: (hits[w], -w))
    return {"weight": best, "hits_at_1_by_weight": {str(w): h for w, h in hits.items()}, "mentions": len(gold)}


def fuzzy_dense_baseline(kb, index, text_model: str, data, chunk: int = 256, weight: float = 1.0) -> dict:
    """The strong simple baseline: rank every KB entity by rapidfuzz WRatio(mention, name)/100 +
    `weight` * cos(MiniLM(mention's sentence), MiniLM("name: description")) — the transformer
    itself on the sentence, not the linker's fast context encoder; links the best one (never
    NIL). `weight` 1 is the untuned mix; `tune_fuzzy_dense` chooses one on training data."""
    gold, rankings = _fuzzy_dense_rankings(kb, index, text_model, data, (weight,), chunk)
    r = rankings[weight]
    return {**score_links(zip(gold, r, [x[0] for x in r])).to_dict(), "weight": weight}


def _strong_baselines(args, linker, data) -> dict:
    """`dense_minilm` and `fuzzy_dense` (its weight tuned on `--tune-on` when given, else 1)."""
    from linker.training.labelled import read_labelled

    model_id = linker.index.manifest["model_id"]
    out = {"dense_minilm": dense_minilm_baseline(linker.kb, linker.index, model_id, data)}
    tuned = None
    if getattr(args, "tune_on", None):
        train = read_labelled(args.tune_on, args.tune_limit)
        tuned = {"train": str(Path(args.tune_on).resolve()), "limit": args.tune_limit,
                 **tune_fuzzy_dense(linker.kb, linker.index, model_id, train)}
    out["fuzzy_dense"] = fuzzy_dense_baseline(linker.kb, linker.index, model_id, data,
                                              weight=tuned["weight"] if tuned else 1.0)
    if tuned:
        out["fuzzy_dense"]["tuned_on"] = tuned
    return out


def bench_mel(args) -> dict:
    import torch

    from linker.pipeline import Linker, set_threads
    from linker.training.labelled import read_labelled

    home = Path(args.home)
    dump = Path(args.dump) if args.dump else None
    articles = Path(args.dump_articles) if args.dump_articles else None
    name = ensure_kb(Path(args.kb), home, args.text_model, dump, articles)  # building it uses every core
    set_threads(args.threads)
    linker = Linker.load(home, name, args.model)
    data = read_labelled(args.test, args.limit)
    config = {"kb": str(Path(args.kb).resolve()), "test": str(Path(args.test).resolve()),
              "dump": str(dump.resolve()) if dump else None, "dump_articles": str(articles.resolve()) if articles else None,
              "kb_name": name, "model": str(args.model or "default"), "batch_size": args.batch_size,
              "threads": args.threads, "limit": args.limit, "kb_entities": len(linker.kb),
              "text_model": linker.index.manifest.get("model_id")}
    if args.no_spans:
        from benchmarks.spotting import bench_no_spans

        return {"no_spans": bench_no_spans(linker, data, args.batch_size, args.gold_complete), "config": config,
                "torch_threads": torch.get_num_threads()}
    docs = [d for d, _ in data]
    list(linker.link_many(docs[:8]))  # warm-up (lazy loads) outside the timing
    t0 = time.perf_counter()
    full = evaluate(linker, data, batch_size=args.batch_size)
    elapsed = time.perf_counter() - t0
    t0 = time.perf_counter()  # again: entities met before are cheaper (cached name/description work)
    evaluate(linker, data, batch_size=args.batch_size)
    elapsed_again = time.perf_counter() - t0
    latencies = []
    for doc in docs[: args.latency_docs]:
        t = time.perf_counter()
        linker.link(doc)
        latencies.append((time.perf_counter() - t) * 1000)
    threads = torch.get_num_threads()  # what linking ran with (the baselines' transformer may change it)
    return {
        "torch_threads": threads,
        **full.to_dict(),
        "mentions_per_second": full.mentions / elapsed,
        "mentions_per_second_second_pass": full.mentions / elapsed_again,
        "latency_ms": {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95))},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baselines": {
            "exact_name": exact_name_baseline(linker.kb, data),
            "dense_only": dense_only_baseline(linker.kb, linker.index, linker.encoder, data),
            **(_strong_baselines(args, linker, data) if args.strong_baseline else {}),
        },
        "config": config,
    }


def _wrap(module: str, argv: list[str]) -> None:
    """Run `benchmarks.<module>.main(argv)`."""
    import importlib

    importlib.import_module(f"benchmarks.{module}").main(argv)


QUICK = {  # subcommand -> (module, quick argv, full argv)
    "faces": ("faces", [], []),
    "joint": ("joint", [], ["--face-transformer"]),
    "kb-build": ("kb_build", ["--quick"], []),
    "index": ("index", ["--sizes", "100000", "--entities", "500"], []),
    "latency": ("latency", [], ["--docs", "1024", "--per-length", "100"]),
    "scale": ("scale", ["--sizes", "10000,100000", "--encode", "500"], []),
}


def run_mel(args) -> None:
    info = machine()
    measured = bench_mel(args)  # its torch_threads: what linking ran with, set after the KB was built
    result = {"benchmark": "raw_text" if args.no_spans else "mel", **info, **measured}
    write_json(args.out, result)
    if args.no_spans:
        s = result["no_spans"]
        print({k: v for k, v in s.items() if k != "probe"}, {"probe_links": s["probe"]["links"]})
        return
    keys = ("hits_at_1", "micro_f1", "mentions_per_second")
    print({k: result[k] for k in keys}, {"recall_at_k": result["recall_at_k"]})
    for name, base in result["baselines"].items():
        print(name, {k: base[k] for k in ("hits_at_1", "micro_f1")})


def main(argv: list[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=None, help="results folder (default: benchmarks/results)")
    sub = parser.add_subparsers(dest="command", required=True)
    mel = sub.add_parser("mel", help="text linking accuracy, speed and memory on a labelled set")
    mel.add_argument("--kb", required=True, help="entity JSONL (qid, name, description)")
    mel.add_argument("--test", required=True, help="labelled JSONL with gold spans")
    mel.add_argument("--out", required=True, help="JSON file to write")
    mel.add_argument("--dump", default=None, help="Wikipedia dump whose anchors and redirects join the KB")
    mel.add_argument("--dump-articles", default=None,
                     help="with --dump: the titles (one per line) of the articles whose links count, e.g. the train split")
    mel.add_argument("--home", default=str(WORK / "home"), help="data home for the built KB")
    mel.add_argument("--model", default=None, help="reranker path (default: bundled)")
    mel.add_argument("--text-model", default=None, help="text encoder for a new index")
    mel.add_argument("--batch-size", type=int, default=64)
    mel.add_argument("--threads", type=int, default=1, help="torch/FAISS threads (1: fastest for linking here)")
    mel.add_argument("--limit", type=int, default=None, help="only the first N documents")
    mel.add_argument("--no-strong-baseline", dest="strong_baseline", action="store_false",
                     help="skip the fuzzy+dense baseline (it runs the transformer on every sentence)")
    mel.add_argument("--tune-on", default=None, metavar="TRAIN.jsonl",
                     help="labelled file on which the fuzzy+dense weight is chosen (grid %s; default: weight 1)"
                          % ", ".join(map(str, FUZZY_DENSE_WEIGHTS)))
    mel.add_argument("--tune-limit", type=int, default=1000, help="only the first N documents of --tune-on")
    mel.add_argument("--latency-docs", type=int, default=200, help="documents linked one by one for latency")
    mel.add_argument("--no-spans", action="store_true",
                     help="link the texts without their gold spans: spotter recall, accuracy on found mentions, probe set")
    mel.add_argument("--gold-complete", action="store_true",
                     help="with --no-spans: the test file annotates every mention, so spotter precision and F1 are "
                          "reported (else only a lower bound of precision)")
    helps = {
        "faces": "visual precision/recall/F1 with NIL: shared gallery, one photo per person indexed",
        "joint": "naive vs joint (OT) text+face linking on a constructed set (--full: + face transformer)",
        "kb-build": "dump parsing vs wikiextractor and KB build (quick: sample + 110 MB; --full: + 1100 MB); "
                    "--wikidata: Wikidata JSON dumps (quick: 10k + 100k lines; --full: + 1M)",
        "index": "text encoding, FAISS flat/hnsw/ivfpq (quick: 100k vectors; --full: 100k + 1M), faces",
        "latency": "text linker p50/p95/p99 and mentions/s vs batch size and document length (WikiMEL KB)",
        "scale": "KB build at 10k/100k (--full: + 1M) synthetic entities, MiniLM encode rate",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--full", action="store_true", help="the full (slow) version")
        p.epilog = f"Other options go to benchmarks/{QUICK[name][0]}.py (see its --help)."
    sub.add_parser("all", help="the quick version of every benchmark but mel, then the report")
    sub.add_parser("report", help="regenerate RESULTS.md and the plots from the JSON results; runs nothing")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in QUICK:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.results:
        os.environ["MMEL_BENCH_RESULTS"] = str(Path(args.results).resolve())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "mel":
        run_mel(args)
    elif args.command in QUICK:
        module, quick, full = QUICK[args.command]
        _wrap(module, (full if args.full else quick) + rest)
    elif args.command == "all":
        for name, (module, quick, _) in QUICK.items():
            try:
                _wrap(module, quick)
            except Exception:  # one failing benchmark must not stop the others
                logging.getLogger("benchmarks.run").exception("%s failed", name)
    from benchmarks.report import render

    print(f"wrote {render()}")


if __name__ == "__main__":
    main()
