"""Render `benchmarks/RESULTS.md` and PNG plots from every JSON result in the results folder.

Each benchmark gets a section with its tables and the git revision and date of its result;
the scale note combines `scale.json`, `index.json` and `kb_build.json` into measured costs and
a linear extrapolation to full Wikipedia. Plots (matplotlib, Agg): recall@k (mel results,
full pipeline vs baselines), latency distribution and throughput vs batch size (latency.json).
Nothing is run: `python benchmarks/run.py report` calls `render`, which also refills the results
table of README.md (between its `<!-- results table` marker and the next blank line).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import results_dir  # noqa: E402

log = logging.getLogger("benchmarks.report")
KS = ("1", "5", "10", "30")
# full English Wikipedia, for the extrapolation (orders of magnitude, 2024 dumps)
WIKIPEDIA = {"entities": 6.8e6, "redirects": 10e6, "links": 150e6, "dump_mb": 100_000}


def load_results(folder: Path) -> dict[str, dict]:
    """`{file stem: parsed JSON}` for every readable `*.json` in `folder`, sorted by name."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if isinstance(obj, dict):
            obj["_mtime"] = path.stat().st_mtime
            out[path.stem] = obj
    return out


def kind(stem: str, obj: dict) -> str:
    """Which benchmark a result is: its `benchmark` key, else its file name without a suffix."""
    name = obj.get("benchmark") or stem
    for known in ("raw_text", "mel", "cross", "load_test", "latency", "faces", "joint", "kb_build_wikidata", "kb_build",
                  "index", "scale"):
        if name == known or name.startswith(known + "_") or stem.startswith(known + "_"):
            return known
    return name


def provenance(obj: dict) -> tuple[str, str]:
    """(short git revision, date) of a result; the file time when it recorded no date."""
    m = obj.get("machine") if isinstance(obj.get("machine"), dict) else obj
    rev = str(m.get("git_revision") or "?")
    short = rev[:10] + ("-dirty" if rev.endswith("-dirty") else "")
    date = m.get("date") or obj.get("created")
    if not date:
        date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(obj.get("_mtime", 0))) + " (file time)"
    return short, str(date).replace("T", " ").rstrip("Z")


def _f(x, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) else "–"


def _load(obj: dict, when: str) -> str:
    """The 1-minute load average recorded at the start or end of a run."""
    value = obj.get("machine", {}).get(f"load_average_at_{when}")
    return _f(value[0], 1) if isinstance(value, list) and value else "–"


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _strip_title(md: str) -> list[str]:
    """A module's own Markdown table without its `# ` title (the section gives one)."""
    return [line for line in md.splitlines() if not line.startswith("# ")]


def section_mel(items: dict[str, dict]) -> list[str]:
    rows = []
    for stem, r in items.items():
        systems = {"full pipeline": r, **{f"baseline: {k}": v for k, v in r.get("baselines", {}).items()}}
        for name, s in systems.items():
            full = s is r
            rows.append([stem, name, _f(s.get("hits_at_1")), *(_f(s.get("recall_at_k", {}).get(k)) for k in KS),
                         _f(s.get("micro_f1")), _mentions_per_second(r) if full else "",
                         f"{_f(r['latency_ms']['p50'], 1)} / {_f(r['latency_ms']['p95'], 1)}" if full and "latency_ms" in r else "",
                         _f(r.get("peak_rss_mb"), 0) if full else ""])
    lines = table(["result", "system", "hits@1", "R@1", "R@5", "R@10", "R@30", "micro F1", "mentions/s (2nd pass)",
                   "latency p50/p95 ms", "peak RSS MB"], rows)
    for stem, r in items.items():
        c = r.get("config", {})
        lines.append(f"\n`{stem}`: KB {Path(str(c.get('kb', '?'))).name} ({c.get('kb_entities', '?')} entities, "
                     f"{c.get('text_model', '?')}), test {Path(str(c.get('test', '?'))).name}, "
                     f"{r.get('mentions', '?')} mentions, reranker {c.get('model', '?')}.")
    return lines + ["", "mentions/s: one pass over the test set, 1 thread; in brackets the same documents again "
                        "(entities met before cost less: a long-running linker's case).",
                    "", "![recall@k](results/recall_at_k.png)", "", *reliability_tables(items)]


def reliability_tables(items: dict[str, dict]) -> list[str]:
    """Per result, the links' calibrated confidence against their accuracy (`linker.calibration`)."""
    lines = ["### Confidence: reliability of the links", "",
             "Each link's confidence (Platt scaling of the reranker's score, fitted with the model on the "
             "dev sets of its training: WikiMEL dev, the Richpedia dev part and the general dev set against "
             "the training KBs) against how often such links are right. ECE: the count-weighted mean "
             "|accuracy − confidence| over ten bins."]
    for stem, r in items.items():
        cal = r.get("calibration")
        if not cal:
            continue
        lines += ["", f"`{stem}`: {cal['count']} links, ECE {_f(cal['ece'])}; confidence ≥ 0.9: "
                      f"{_f(cal['share_at_0.9'])} of the links, right {_f(cal['accuracy_at_0.9'])}.", ""]
        lines += table(["confidence", "links", "mean confidence", "accuracy"],
                       [[f"{b['bin'][0]:.1f}–{b['bin'][1]:.1f}", b["count"], _f(b["confidence"]), _f(b["accuracy"])]
                        for b in cal["bins"]])
    return lines


def _mentions_per_second(r: dict) -> str:
    again = r.get("mentions_per_second_second_pass")
    return _f(r.get("mentions_per_second"), 1) + (f" ({_f(again, 1)})" if again else "")


def section_cross(items: dict[str, dict]) -> list[str]:
    lines = []
    for r in items.values():
        columns = list(r.get("baselines", {}))
        head = ["trained on"] + [f"{c}: hits@1 / R@30 / F1 / NIL rate" for c in columns]
        rows = [[row] + [f"{_f(c['hits_at_1'])} / {_f(c['recall_at_k']['30'])} / {_f(c['micro_f1'])} / "
                         f"{_f(c.get('nil', {}).get('rate'))}"
                         for c in (cells[col] for col in columns)] for row, cells in r.get("rows", {}).items()]
        for name in ("fuzzy_dense", "exact_name"):
            rows.append([f"baseline: {name}"] + [
                f"{_f(b[name]['hits_at_1'])} / {_f(b[name]['recall_at_k']['30'])} / {_f(b[name]['micro_f1'])}"
                for b in (r["baselines"][col] for col in columns)])
        lines += table(head, rows)
        if r.get("seeds"):
            lines += ["", "Seed spread: each row trained with seeds 0..N-1 (initial weights, document order, NIL "
                      "calibration; nothing else changed), Hits@1 as mean ± standard deviation [min–max] over the "
                      "seeds, then the NIL rate's mean. The table above is seed 0's.", ""]
            lines += table(["trained on (seeds)"] + [f"{c}: hits@1, NIL rate" for c in columns],
                           [[f"{row} ({len(next(iter(cells.values()))['hits_at_1']['values'])})"]
                            + [f"{_f(h['mean'])} ± {_f(h['sd'])} [{_f(h['min'])}–{_f(h['max'])}], "
                               f"{_f(c['nil_rate']['mean'])}"
                               for c in (cells[col] for col in columns) for h in (c["hits_at_1"],)]
                            for row, cells in r["seeds"].items()])
        nil = [[row, Path(p).name, _f(d["hits_at_1"]), _f(d["nil_precision"]), _f(d["nil_recall"]),
                _f(d["nil_rate_without_hidden"])]
               for row, t in r.get("training", {}).items() for p, d in t.get("dev_sets", {}).items()]
        lines += ["", "NIL rate: the share of in-KB gold mentions decided NIL. Training (person captions against the merged "
                  "KB, general links against the general KB; weights averaged after epochs 3..8, NIL threshold chosen on "
                  "the dev sets named):", ""]
        lines += table(["trained on", "dev set", "dev hits@1", "NIL precision", "NIL recall",
                        "NIL rate on kept golds"], nil)
        times = ", ".join(f"{k} {t.get('seconds')} s" for k, t in r.get("training", {}).items())
        rates = sorted({t.get("nil_rate", 0.15) for t in r.get("training", {}).values()})
        lines += ["", f"NIL precision/recall: a random {' / '.join(f'{100 * x:g} %' for x in rates)} of dev mentions "
                  "lose their gold (they become NIL; five draws pooled); "
                  f"the last column is the share of the other mentions wrongly decided NIL. Training times: {times}."]
    return lines


def section_latency(items: dict[str, dict]) -> list[str]:
    lines = []
    for stem, r in items.items():
        c = r.get("config", {})
        lines += [f"`{stem}`: KB {c.get('kb_name')} ({c.get('kb_entities')} entities, {c.get('text_model')}, "
                  f"{c.get('index_kind')} index), reranker {c.get('reranker')}, {c.get('mentions')}, "
                  f"{c.get('torch_threads')} torch threads, peak RSS {r.get('peak_rss_mb')} MB, load average "
                  f"{_load(r, 'start')} at start, {_load(r, 'end')} at end (2 cores: above 2 means other work "
                  "was competing).", ""]
        lines += table(["batch size", "documents", "mentions/s", "documents/s", "batch p50 ms", "batch p95 ms",
                         "batch p99 ms"],
                       [[b["batch_size"], b["documents"], b["mentions_per_second"], b["docs_per_second"],
                         b["batch_latency_ms"]["p50"], b["batch_latency_ms"]["p95"], b["batch_latency_ms"]["p99"]]
                        for b in r.get("by_batch_size", [])])
        lines += [""] + table(["document length", "documents", "mean chars", "mentions/doc", "mentions/s",
                               "p50 ms", "p95 ms", "p99 ms"],
                              [[x["length"], x["documents"], x["mean_chars"], x["mentions_per_doc"],
                                x["mentions_per_second"], x["latency_ms"]["p50"], x["latency_ms"]["p95"],
                                x["latency_ms"]["p99"]] for x in r.get("by_length", [])])
        lines.append("")
    return lines + ["![latency](results/latency_distribution.png) ![throughput](results/throughput_batch.png)"]


def section_faces(items: dict[str, dict]) -> list[str]:
    lines = []
    for stem, r in items.items():
        rows = [[enc, e["threshold"], e["precision"], e["recall"], e["f1"], len(e.get("probes", [])),
                 f"{e['unknown_faces_nil']}/{e['unknown_faces']}" if "unknown_faces" in e else "–"]
                for enc, e in r.get("encoders", {}).items()]
        lines += table(["face encoder", "NIL threshold", "precision", "recall", "F1", "probe images",
                        "unknown faces → NIL"], rows)
        lines += ["", "A probe face is correct when its entity is among the people shown; faces decided NIL "
                  "count as not predicted; probes of unknown people (empty entity list) can only add false "
                  "positives. The face transformer is trained on the same gallery (no other face data): "
                  "its numbers are optimistic.", ""]
    return lines


def section_joint(items: dict[str, dict]) -> list[str]:
    from benchmarks.joint import markdown

    return [line for r in items.values() for line in _strip_title(markdown(r))]


def section_kb_build(items: dict[str, dict]) -> list[str]:
    from benchmarks.kb_build import markdown

    return [line for r in items.values() for line in _strip_title(markdown(r))]


def section_kb_build_wikidata(items: dict[str, dict]) -> list[str]:
    from benchmarks.kb_build_wikidata import markdown

    return [line for r in items.values() for line in _strip_title(markdown(r))]


def section_index(items: dict[str, dict]) -> list[str]:
    from benchmarks.index import markdown

    return [line for r in items.values() for line in _strip_title(markdown(r))]


def section_load_test(items: dict[str, dict]) -> list[str]:
    from benchmarks.load_test import markdown

    lines = []
    for stem, r in items.items():
        lines += [f"`{stem}`:", *_strip_title(markdown(r)), ""]
    return lines


def section_faults(items: dict[str, dict]) -> list[str]:
    from benchmarks.faults import markdown

    return [line for r in items.values() for line in _strip_title(markdown(r["rows"], r["machine"]))]


def section_corpus(items: dict[str, dict]) -> list[str]:
    from benchmarks.corpus import markdown

    return [line for r in items.values() for line in _strip_title(markdown(r))]


def section_news(items: dict[str, dict]) -> list[str]:
    lines = []
    for stem, r in items.items():
        g, raw, c = r["given_spans"], r["raw_text"], r.get("config", {})
        kb = Path(str(c.get("kb", "?"))).name + (" + the people KBs" if c.get("also_people") else "")
        lines += [f"`{stem}`: KB {kb}" + (f" ({c['kb_entities']:,} entities)" if c.get("kb_entities") else "") + ".", ""]
        lines += table(["gold spans: links right / made", "precision", "recall (in-KB)", "F1", "NIL right",
                        "raw text: gold found (overlap)", "raw text: end-to-end accuracy"],
                       [[f"{g['right']} / {g['links']}", _f(g["precision"]), _f(g["recall"]), _f(g["f1"]),
                         f"{g['nil_right']} / {g['mentions'] - g['in_kb']}", _f(raw.get("found")),
                         _f(raw.get("end_to_end_accuracy"))]])
        lines += ["", "Wrong decisions with gold spans (gold → predicted):", ""]
        lines += [f"- {w['surface']!r}: {w['gold']} → {w['predicted']}" for w in g["wrong"]]
    return lines


def section_nil_sweep(items: dict[str, dict]) -> list[str]:
    lines = []
    for r in items.values():
        sets = r["sets"]
        header = ["NIL threshold"] + [f"{name}: F1 / in-KB NIL" + (" / NIL P / NIL R" if s["thresholds"][0]["nil_gold"] else "")
                                      for name, s in sets.items()]
        rows = []
        for i, t in enumerate(next(iter(sets.values()))["thresholds"]):
            cells = []
            for s in sets.values():
                x = s["thresholds"][i]
                cell = f"{_f(x['micro_f1'])} / {x['in_kb_nil']:.1%}"
                if x["nil_gold"]:
                    cell += f" / {_f(x['nil_precision'])} / {_f(x['nil_recall'])}"
                cells.append(cell)
            rows.append([f"{t['threshold']:.3f}" + (" (the model's)" if t["offset"] == 0 else "")] + cells)
        lines += table(header, rows)
        lines += ["", "Gold spans, the model's decisions with NIL under each threshold (`mmel link --set "
                  "nil_threshold=T`); in-KB NIL: the share of mentions with a KB gold decided NIL. A lower "
                  "threshold links more: better where nearly every mention is in the KB, worse where many are not "
                  "(general-nil: links to articles outside the KB are NIL gold)."]
    return lines


def section_scale(items: dict[str, dict]) -> list[str]:
    lines = []
    for r in items.values():
        lines += table(["entities", "build wall s", "CPU s", "entities/s", "peak RSS MB", "SQLite MB",
                        "bytes/entity", "priors"],
                       [[f"{b['entities']:,}" + (f" (rev {b['from_revision'][:8]})" if b.get("from_revision") else ""),
                         b["wall_s"], b["cpu_s"], b["entities_per_s"], b["peak_rss_mb"],
                         b["sqlite_mb"], b["bytes_per_entity"], b.get("stats", {}).get("priors", "–")]
                        for b in r.get("kb_build", [])])
        for t in r.get("text_encode_runs", [r["text_encode"]] if "text_encode" in r else []):
            lines += ["", f"Text encoding ({t['model']}, {t.get('torch_threads', '?')} torch threads, {t['entities']} "
                      f"synthetic `name: description`, {t['mean_chars']} chars on average): {t['entities_per_s']} "
                      f"entities/s ({t['entities_per_cpu_s']} per CPU-second)."]
        if "end_to_end" in r:
            e = r["end_to_end"]
            rev = provenance(e)[0]
            lines += ["", f"End to end at {e['entities']:,} synthetic entities (`scale.py --e2e`, revision `{rev}`, "
                      f"{e.get('machine', {}).get('date', '?')}), measured:", "", *e2e_table(e)]
    return lines


def e2e_table(e: dict) -> list[str]:
    """The measured stages of `scale.py --e2e`: wall, CPU, peak RSS, size and rate per stage."""
    st = e["stages"]
    b, enc, ix, ln = st["kb_build"], st["encode"], st["index"], st["link"]
    loads = [p["load_average"][0] for p in enc["pieces"]]
    return table(["stage", "wall s", "CPU s", "peak RSS MB", "on disk", "rate / result", "load avg (1 min)"], [
        ["KB build (`mmel kb build --entities`)", b["wall_s"], b["cpu_s"], b["peak_rss_mb"], f"{b['sqlite_mb']} MB SQLite",
         f"{e['entities'] / b['wall_s']:,.0f} entities/s", _f(b["load_average"][0], 1)],
        [f"entity encoding, {enc['path']}, {len(enc['pieces'])} pieces", enc["wall_s"], enc["cpu_s"], enc["peak_rss_mb"],
         "–", f"**{enc['entities_per_s']} entities/s** ({enc['entities_per_cpu_s']} per CPU-s of encoding)",
         f"{_f(min(loads), 1)}–{_f(max(loads), 1)}"],
        [f"index build (`{ix['kind']}`, chosen by `auto`) + context encoder", ix["wall_s"], ix["cpu_s"], ix["peak_rss_mb"],
         f"{ix['index_mb']} MB index ({ix['bytes_per_entity']} B/entity) + {ix['context_encoder_mb']} MB context",
         f"index {ix['index_build_s']} s, context distillation {ix['context_distil_s']} s", _f(ix["load_average"][0], 1)],
        [f"linking {ln['documents']:,} synthetic captions (1 thread, batches of 64)", ln["wall_s"], ln["cpu_s"],
         ln["peak_rss_mb"], "–", f"{ln['mentions_per_s']} mentions/s, Hits@1 {_f(ln['hits_at_1'])}, "
         f"recall@30 {_f(ln['recall_at_30'])} (load {ln['load_s']} s)", _f(ln["load_average"][0], 1)],
    ]) + ["", f"KB build + encoding + index: **{e['total_wall_s'] / 60:.1f} min** wall; the KB folder holds "
          f"{e['disk_mb']} MB."]


def _prepared(r: dict) -> str:
    """What `cpu_encode.py` did once per machine and model before the timed command."""
    if "prepare_seconds" not in r:  # runs before the context encoder was cached
        return f"the int8 graph is exported once, {r.get('int8_prepare_seconds')} s, not counted"
    p = r["prepare_seconds"]
    return (f"once per machine and model, not counted and kept in `<home>/models`: the int8 graph "
            f"exported in {p['int8_export']} s and the context encoder distilled in {p['context_distillation']} s "
            f"(0 when already there)")


def section_cpu_encode(items: dict[str, dict]) -> list[str]:
    lines = []
    for r in items.values():
        q, d = r.get("cosine", {}), r.get("dev_mentions", {})
        if "link_wikimel_dev" not in r:  # the first version: encode rate and vector quality only
            i = r.get("int8", {})
            lines += [f"ONNX Runtime int8, {r.get('threads', '?')} threads: {i.get('entities_per_s')} entities/s "
                      f"({i.get('entities_per_cpu_s')} per CPU-second) on {i.get('entities')} WikiMEL entities; "
                      f"cosine to float32 {q.get('mean')} (min {q.get('min')})."]
            continue
        i, link = r["int8"], r["link_wikimel_dev"]
        lines += [f"`{r.get('command')}` on WikiMEL's {i['entities']:,} entities (load average "
                  f"{_f(r['load_average_before_index'][0], 1)} before, {_f(r['load_average_after_index'][0], 1)} after; "
                  f"{r['machine'].get('cpu_count')} cores; {_prepared(r)}):", ""]
        lines += table(["stage", "measured"], [
            ["whole command (load, encode, index, copy of the cached context encoder)"
             if "prepare_seconds" in r else "whole command (load, encode, index, context distillation)",
             f"{i['wall_s']} s wall, {i['cpu_s']} CPU s, peak RSS {i['peak_rss_mb']} MB"],
            ["entity encoding", f"{i['encode_s']} s: **{i['entities_per_s']} entities/s** "
                                f"({i['entities_per_cpu_s']} entities per CPU-second of the whole command)"],
            [f"index build (`{i['index_kind']}`)", f"{i['index_build_s']} s"],
            ["int8 vs float32 vectors", f"cosine mean {q.get('mean')}, 1st percentile {q.get('p01')}, min {q.get('min')}"],
            [f"WikiMEL dev mentions ({d.get('mentions')}): nearest 30 entities by surface",
             f"overlap {d.get('top30_overlap')}, same top 1 {d.get('top1_same')}, gold in top 30 "
             f"{d.get('gold_in_top30_int8')} (float32 {d.get('gold_in_top30_fp32')})"],
            ["linking WikiMEL dev (gold spans, default reranker): Hits@1 / recall@30 / micro-F1",
             f"int8 index **{_f(link['int8']['hits_at_1'], 4)}** / {_f(link['int8']['recall_at_30'], 4)} / "
             f"{_f(link['int8']['micro_f1'], 4)}; float32 index {_f(link['fp32']['hits_at_1'], 4)} / "
             f"{_f(link['fp32']['recall_at_30'], 4)} / {_f(link['fp32']['micro_f1'], 4)} "
             f"(change {link['hits_at_1_change'] * 100:+.2f} points)"],
        ])
        for e in r.get("earlier", []):
            lines += ["", f"Earlier run, revision `{e['git_revision'][:10]}` ({e['date']}, load average "
                      f"{_f(e['load_average_before_index'][0], 1)} before): encoding {e['int8']['encode_s']} s = "
                      f"{e['int8']['entities_per_s']} entities/s, whole command {e['int8']['wall_s']} s, "
                      f"Hits@1 {_f(e['hits_at_1'], 4)}."]
    return lines


def _precision_f1(block) -> str:
    """`precision / F1` of a spotting block, `≥ lower bound / –` where the gold is incomplete."""
    if not isinstance(block, dict):
        return "–"
    if block.get("precision") is not None:
        return f"{_f(block['precision'])} / {_f(block.get('f1'))}"
    return f"≥ {_f(block.get('precision_lower_bound'))} / –"


def section_raw_text(items: dict[str, dict]) -> list[str]:
    rows = []
    for stem, r in items.items():
        s = r["no_spans"]
        rows.append([stem, _f(s["found"]), _f(s["found_exact"]), _precision_f1(s.get("overlap")),
                     _precision_f1(s.get("exact")), _f(s["accuracy_on_found"]),
                     _f(s["given_span_accuracy_on_found"]), _f(s["given_span_accuracy"]),
                     f"{_f(s['predicted_per_1000_chars'], 1)} / {_f(s['gold_per_1000_chars'], 1)}",
                     _f(s["spotter_share_of_link_time"]), f"{s['probe']['links']} / {s['probe']['sentences']}"])
    return table(["result", "gold found (overlap)", "found exactly", "precision / F1 (overlap)",
                  "precision / F1 (exact)", "accuracy on found", "given-span accuracy (same mentions)",
                  "given-span accuracy (all)", "predicted / gold mentions per 1,000 chars", "spotter share of link time",
                  "probe links / sentences"], rows) + [
        "", "A predicted span matches one gold mention at most (overlap: a maximum one-to-one matching of spans "
        "sharing a character). Precision only where the gold annotates every mention (`mel --gold-complete`); "
        "else its lower bound (≥), as unannotated true mentions count as errors. Results without the "
        "`overlap`/`exact` blocks predate one-to-one matching: their found shares let one span find several mentions."]


SECTIONS: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "mel": ("Text entity linking (mel)", section_mel),
    "cross": ("Cross-domain text linking: trained on people / general / both (cross)", section_cross),
    "raw_text": ("Linking from raw text (mel --no-spans)", section_raw_text),
    "latency": ("Text linker latency and throughput (latency)", section_latency),
    "faces": ("Face identification with NIL (faces)", section_faces),
    "joint": ("Naive vs joint multimodal linking (joint)", section_joint),
    "kb_build": ("Dump parsing and KB build (kb-build)", section_kb_build),
    "kb_build_wikidata": ("Wikidata JSON dump reading and KB build (kb-build --wikidata)", section_kb_build_wikidata),
    "index": ("Indexer: text encoding, FAISS index kinds, faces (index)", section_index),
    "scale": ("KB build at scale (scale)", section_scale),
    "cpu_encode": ("CPU entity encoding: ONNX Runtime int8 on WikiMEL (cpu_encode.py)", section_cpu_encode),
    "load_test": ("HTTP server load test (load_test.py)", section_load_test),
    "corpus": ("Corpus-scale linking: one process, --workers, --ray (corpus.py)", section_corpus),
    "news": ("News-style probe against the Vital Articles KB, alone and with the people KBs (news.py)", section_news),
    "nil_sweep": ("NIL threshold trade-off (nil_sweep.py)", section_nil_sweep),
    "faults": ("Fault suite: killed and concurrent writers, fuzzed documents, large images (faults.py)", section_faults),
}


def scale_note(results: dict[str, dict]) -> list[str]:
    """The measured end-to-end run (`scale.py --e2e`), measured costs at 10k/100k/1M entities and a
    linear extrapolation of them to full Wikipedia (labelled as such)."""
    w = WIKIPEDIA
    lines = []
    scale = next((r for s, r in results.items() if kind(s, r) == "scale"), None)
    e2e = (scale or {}).get("end_to_end")
    if e2e:
        rev = provenance(e2e)[0]
        lines += [f"**Measured end to end at {e2e['entities']:,} synthetic entities** on this CPU machine "
                  f"(`python benchmarks/scale.py --e2e {e2e['entities']}`, revision `{rev}`): KB build, entity "
                  "encoding, index build, linking a synthetic test set. Nothing in this table is extrapolated.",
                  "", *e2e_table(e2e), ""]
    lines += [f"Towards full English Wikipedia, taken as ~{w['entities'] / 1e6:.1f}M entities, ~{w['redirects'] / 1e6:.0f}M "
              f"redirects, ~{w['links'] / 1e6:.0f}M links, ~{w['dump_mb'] / 1000:.0f} GB of uncompressed "
              "pages-articles XML: the *measured* column is what ran on this machine (see the per-benchmark "
              "sections for the revision and date); **the full-Wikipedia column is a linear extrapolation** "
              "from the largest measured size, not a measurement: HNSW build time grows faster than linearly, "
              "and a KB built from the dump also stores aliases/priors from the links, so read them as lower "
              "bounds.", ""]
    rows = []
    n = w["entities"]
    total: dict[str, float] = {}  # hours on this machine per stage, for the end-to-end line
    if scale and scale.get("kb_build"):
        big = max(scale["kb_build"], key=lambda b: b["entities"])
        k = n / big["entities"]
        measured = "; ".join(f"{b['entities']:,}: {b['wall_s']} s, {b['sqlite_mb']} MB, {b['peak_rss_mb']} MB RSS"
                             for b in scale["kb_build"])
        rows.append(["KB build from an entity JSONL (`kb.build.build_kb`): time, SQLite on disk, peak RSS",
                     measured, f"{big['wall_s'] * k / 3600:.1f} h, {big['sqlite_mb'] * k / 1024:.1f} GB, "
                     f"{big['peak_rss_mb'] * k / 1024:.1f} GB RSS if it grew linearly"])
        if e2e:
            enc = e2e["stages"]["encode"]
            total["MiniLM entity encoding"] = n / enc["entities_per_s"] / 3600
            rows.append([f"Entity text encoding, all-MiniLM-L6-v2, {enc['path']} on {e2e.get('machine', {}).get('cpu_count', '?')} cores",
                         f"{e2e['entities']:,} entities: {enc['entities_per_s']} entities/s "
                         f"({enc['entities_per_cpu_s']} per CPU-s)",
                         f"{total['MiniLM entity encoding']:.0f} h on this machine "
                         f"({n / enc['entities_per_cpu_s'] / 3600:.0f} CPU-hours)"])
        elif "text_encode" in scale:
            t = scale["text_encode"]
            total["MiniLM entity encoding"] = n / t["entities_per_s"] / 3600
            rows.append([f"Entity text encoding, {t['model'].split('/')[-1]} on CPU, "
                         f"{t.get('torch_threads', '?')} torch thread(s)",
                         f"{t['entities_per_s']} entities/s ({t['entities_per_cpu_s']} per CPU-s, "
                         f"{t['entities']} entities)",
                         f"{total['MiniLM entity encoding']:.0f} h on this machine "
                         f"({n / t['entities_per_cpu_s'] / 3600:.0f} CPU-hours)"])
    index = next((r for s, r in results.items() if kind(s, r) == "index"), None)
    if index and index.get("dense"):
        biggest = max(r["n"] for r in index["dense"])
        for r in (r for r in index["dense"] if r["n"] == biggest):
            k = n / r["n"]
            query = (f", query ≈ {r['p50_ms'] * k:.0f} ms (exact scan: linear)" if r["kind"] == "flat"
                     else ", query: grows slowly (not linear)")
            total[f"{r['kind']} index build"] = r["build_s"] * k / 3600
            rows.append([f"Text index `{r['kind']}` ({r['dim']}-d, random clustered vectors): size, build, query p50",
                         f"{r['n']:,}: {r['bytes_per_entity']} B/entity, build {r['build_s']} s, "
                         f"p50 {r['p50_ms']} ms, recall@10 {r.get('recall10_overlap', '–')}",
                         f"{r['bytes_per_entity'] * n / 2**30:.1f} GB (RAM and disk), build ≥ "
                         f"{r['build_s'] * k / 60:.0f} min{query}"])
    kbb = next((r for s, r in results.items() if kind(s, r) == "kb_build"), None)
    if kbb and kbb.get("runs"):
        for tool in ("ours-parse", "ours-build"):
            runs = [r for r in kbb["runs"] if r["tool"] == tool]
            if runs:
                r = max(runs, key=lambda r: (r["mb"], r["workers"]))
                hours = w["dump_mb"] / r["mb_per_s"] / 3600
                if tool == "ours-build":
                    total["dump → KB with priors"] = hours
                rows.append([f"Dump → {'pages (parse only)' if tool == 'ours-parse' else 'SQLite KB with priors'}, "
                             f"{r['workers']} workers", f"{r['mb']} MB: {r['mb_per_s']} MB/s, "
                             f"{r['mb_per_cpu_s']} MB/CPU-s, peak RSS {r['peak_rss_mb']} MB",
                             f"{hours:.1f} h on this machine ({w['dump_mb'] / r['mb_per_cpu_s'] / 3600:.1f} CPU-hours)"])
    if not rows:
        return lines + ["No scale results yet: run `python benchmarks/run.py scale` and `index`."]
    lines += table(["what", "measured", "full Wikipedia (linear extrapolation)"], rows)
    stages = [key for key in ("dump → KB with priors", "MiniLM entity encoding") if key in total]
    for kind_ in ("ivfpq", "hnsw", "flat"):
        if f"{kind_} index build" in total:
            stages.append(f"{kind_} index build")
            break
    if stages:
        lines += ["", "Full Wikipedia end to end on this machine (sum of the extrapolated stages above, linear): "
                  + " + ".join(f"{s} {total[s]:.1f} h" for s in stages)
                  + f" ≈ **{sum(total[s] for s in stages):.0f} h**"
                  + ("; the MiniLM encoding dominates (a GPU cuts it)" if "MiniLM entity encoding" in stages else "")
                  + ". Redirects (~10M) and links (~150M) are inside the dump bytes, so the "
                  "dump rows cover them; synthetic dumps repeat the sample's pages, so their link and prior "
                  "counts are not representative."]
    return lines


def plots(results: dict[str, dict], folder: Path) -> list[Path]:
    """recall_at_k.png, latency_distribution.png, throughput_batch.png (those with data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    made = []
    mel = {s: r for s, r in results.items() if kind(s, r) == "mel"}
    if mel:
        fig, ax = plt.subplots(figsize=(6, 4))
        for stem, r in mel.items():
            for name, s in {"full": r, **r.get("baselines", {})}.items():
                if "recall_at_k" in s:
                    ax.plot([int(k) for k in KS], [s["recall_at_k"].get(k) for k in KS], marker="o",
                            label=f"{stem}: {name}")
        ax.set(xscale="log", xticks=[1, 5, 10, 30], xticklabels=KS, xlabel="k", ylabel="recall@k",
               title="Recall@k: full pipeline vs baselines")
        ax.legend(fontsize=7)
        made.append(_save(fig, folder / "recall_at_k.png"))
    lat = {s: r for s, r in results.items() if kind(s, r) == "latency"}
    if lat:
        fig, (h, cdf) = plt.subplots(1, 2, figsize=(9, 3.5))
        series = {s: np.sort(np.asarray(r.get("single_doc_latencies_ms", []), dtype=float)) for s, r in lat.items()}
        series = {s: ms[ms > 0] for s, ms in series.items() if (ms > 0).any()}
        if series:  # log-spaced bins shared by all runs: they can differ by orders of magnitude
            lo = min(ms[0] for ms in series.values())
            hi = max(ms[-1] for ms in series.values())
            bins = np.logspace(np.log10(lo), np.log10(hi * 1.001), 40)
            for stem, ms in series.items():
                threads = lat[stem].get("config", {}).get("torch_threads", "?")
                h.hist(ms, bins=bins, alpha=0.6, label=f"{stem} ({threads} threads)")
                cdf.plot(ms, np.arange(1, len(ms) + 1) / len(ms), label=f"{stem} ({threads} threads)")
        h.set(xscale="log", xlabel="ms per document (batch size 1)", ylabel="documents", title="Latency histogram")
        cdf.set(xscale="log", xlabel="ms per document", ylabel="share of documents", title="Latency CDF")
        cdf.legend(fontsize=7)
        made.append(_save(fig, folder / "latency_distribution.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        for stem, r in lat.items():
            rows = r.get("by_batch_size", [])
            ax.plot([b["batch_size"] for b in rows], [b["mentions_per_second"] for b in rows], marker="o", label=stem)
        ax.set(xscale="log", xlabel="batch size", ylabel="mentions/s", title="Throughput vs batch size")
        ax.legend(fontsize=7)
        made.append(_save(fig, folder / "throughput_batch.png"))
    return made


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


README_SETS = (("mel_wikimel_dev", "WikiMEL dev (WikiMEL KB)"), ("mel_richpedia_dev", "Richpedia dev part (Richpedia KB)"),
               ("mel_general_dev", "general Wikipedia dev (Vital Articles + train-article anchors)"))
README_MARK = "<!-- results table"


def readme_table(results: dict[str, dict]) -> list[str]:
    """The README's results table, from the mel JSON of each dev set, and its provenance line."""
    def pct(x, digits=1):
        return "–" if x is None else f"{100 * x:.{digits}f}"

    rows, revs = [], set()
    for stem, label in README_SETS:
        r = results.get(stem)
        if not r:
            continue
        revs.add(provenance(r)[0])
        nil = r["nil"]["predicted"] / max(r["mentions"] - r["nil"]["gold"], 1)
        cal = r.get("calibration") or {}
        rows.append([label, pct(r["hits_at_1"]), pct(r["recall_at_k"]["30"]), pct(r["micro_f1"]), f"{pct(nil)} %",
                     pct(cal.get("accuracy_at_0.9")), pct(r["baselines"]["fuzzy_dense"]["hits_at_1"]),
                     f"{r['mentions_per_second']:,.0f}"])
    return [f"{README_MARK}: filled from benchmarks/results/mel_*.json by `python benchmarks/run.py report` -->",
            *table(["dev set", "Hits@1", "recall@30", "F1", "in-KB decided NIL", "links with confidence ≥ 0.9: right",
                    "fuzzy+dense Hits@1 (weight tuned on train)", "mentions/s (1 thread)"], rows),
            "", f"Revision `{', '.join(sorted(revs))}`."]


def fill_readme(readme: Path, results: dict[str, dict]) -> None:
    """Replace README's results table and its revision line (the first line after the marker
    that starts with "Revision `"), if the marker is there."""
    if not readme.is_file():
        return
    lines = readme.read_text(encoding="utf-8").split("\n")
    start = next((i for i, l in enumerate(lines) if l.startswith(README_MARK)), None)
    if start is None:
        return
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("Revision `"))
    readme.write_text("\n".join(lines[:start] + readme_table(results) + lines[end + 1:]), encoding="utf-8")


def render(folder: str | Path | None = None, out: str | Path | None = None, with_plots: bool = True) -> Path:
    """Write RESULTS.md (default: next to the results folder) and the plots; returns its path."""
    folder = Path(folder) if folder else results_dir()
    out = Path(out) if out else folder.parent / "RESULTS.md"
    results = load_results(folder)
    rel = folder.name if folder.parent == out.parent else str(folder)
    lines = ["# Benchmark results", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the JSON files in "
             f"`{rel}/` by `python benchmarks/run.py report`; each benchmark's revision and date are in its "
             "section. Numbers are from a shared 2-core CPU machine with other work running; compare "
             "results only within one revision and machine.", "",
             "| result | benchmark | git revision | date | CPUs |", "|---|---|---|---|---|"]
    for stem, r in results.items():
        rev, date = provenance(r)
        m = r.get("machine") if isinstance(r.get("machine"), dict) else r
        lines.append(f"| `{stem}.json` | {kind(stem, r)} | `{rev}` | {date} | {m.get('cpu_count', '?')} |")
    lines += ["", "## Scale note: towards full Wikipedia", "", *scale_note(results)]
    groups: dict[str, dict[str, dict]] = {}
    for stem, r in results.items():
        groups.setdefault(kind(stem, r), {})[stem] = r
    for key, items in groups.items():
        title, fn = SECTIONS.get(key, (key, None))
        lines += ["", f"## {title}", ""]
        lines += [f"Revision `{provenance(r)[0]}`, {provenance(r)[1]} (`{stem}.json`)." for stem, r in items.items()]
        lines.append("")
        try:
            lines += fn(items) if fn else [f"(no renderer; see `{s}.json`)" for s in items]
        except Exception as exc:  # one malformed result must not stop the report
            log.warning("could not render %s: %r", key, exc)
            lines.append(f"(could not render: {exc!r})")
    text = "\n".join(lines) + "\n"
    if rel != "results":  # image links are relative to RESULTS.md
        text = text.replace("](results/", f"]({rel}/")
    if with_plots:
        try:
            plots(results, folder)
        except ImportError as exc:  # matplotlib is in the `bench` extra
            log.warning("no plots: %s (pip install matplotlib)", exc)
    out.write_text(text, encoding="utf-8")
    if folder == results_dir():
        fill_readme(folder.parents[1] / "README.md", results)
    return out
