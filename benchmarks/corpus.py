"""Corpus-scale linking: one process vs `--workers 2` vs `--ray` with 1 and 2 actors, in one run.

The corpus is `--docs` documents (default 100,000) drawn from the real captions of WikiMEL
train + dev (`../shared/data/wikimel`), repeated and shuffled with a fixed seed, each with a new
id; with their gold spans (`--detect`: without, so the spotter finds the mentions). It is linked
on the WikiMEL KB (built by `run.ensure_kb`, shared with `run.py mel`) with the reranker the
home holds (else the bundled one), by `mmel link` as a child process per configuration:

- `single`: `mmel link` (one process, one thread);
- `workers-2`: `mmel link --workers 2`;
- `ray-1`, `ray-2`: `mmel link --ray --ray-actors 1|2` (a local Ray started by the command).

Per configuration: wall seconds; documents/s and mentions/s from the command's own summary line
(linking only for `single`/`workers`; for `--ray` from before Ray starts to the manifest, so
Ray's start and the actors' loading count) and, for `--ray`, the actors' own rate (documents
over the time the actors spent on their blocks, from the manifest); peak RSS of the whole
process tree (the sum over the command and all its descendants, Ray's own processes included)
and peak PSS (shared pages split between the processes that map them, so copy-on-write sharing
counts once); and the bytes each extra worker or actor adds (`--workers 2`, a parent and two
forked workers, minus one process, halved; two actors minus one). Every configuration's output
(the `--ray` shards concatenated in manifest order) is compared with `single`'s. `--ray` runs
use blocks of at most 4,096 documents and at least 16 blocks (`--ray-block`).

Then a projection, on paper, from the measured per-core rate (`single`'s documents/s) and the
measured scaling efficiency: the hours a C4-sized corpus (~365M documents) takes on a 16-core
machine (`--workers 16`) and a 10-node Ray cluster of 16 cores each. It is labelled as such in
the JSON; nothing in it was measured at that size.

Writes `corpus.json` and `corpus.md` in the results folder for a run of at least 100,000
documents; smaller runs (a check that it works) go to `benchmarks/work/corpus/` instead.

    python benchmarks/corpus.py                 # the full run: 100,000 documents (~15 min on 2 cores)
    python benchmarks/corpus.py --docs 2000     # a quick end-to-end check
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA, ROOT, WORK, TreeMemory, disjoint_spans, machine, results_dir, write_json  # noqa: E402

log = logging.getLogger("benchmarks.corpus")
C4_DOCUMENTS = 365_000_000  # C4 en: ~365M documents
FULL = 100_000
SUMMARY = re.compile(r"linked ([\d,]+) documents: ([\d,]+) mentions, ([\d,]+) links, NIL ([\d.]+) %.* in ([\d.]+) s "
                     r"\(([\d,.]+) documents/s, ([\d,.]+) mentions/s\)")


def build_corpus(n: int, detect: bool, seed: int = 0) -> Path:
    """`n` WikiMEL train + dev captions, repeated and shuffled, as a cached JSONL file."""
    path = WORK / "corpus" / f"wikimel-{n}{'-detect' if detect else ''}.jsonl"
    if path.is_file():
        return path
    source = []
    for split in ("train", "dev"):
        with (DATA / "wikimel" / f"{split}.jsonl").open(encoding="utf-8") as fh:
            source += [json.loads(line) for line in fh if line.strip()]
    rng = random.Random(seed)
    docs = []
    while len(docs) < n:
        rng.shuffle(source)
        docs += source[: n - len(docs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for i, d in enumerate(docs):
            doc = {"id": f"{i}-{d['id']}", "text": d["text"]}
            if not detect:
                doc["mentions"] = disjoint_spans(d["mentions"])
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def run_tree(cmd: list[str], env: dict) -> dict:
    """Run `cmd`; wall seconds, its stderr, and the peak RSS (sampled every 0.2 s) and PSS (every
    second) summed over its process tree, with the most processes seen at once."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    memory = TreeMemory(proc.pid, 0.2, pss_every=5)  # PSS every second
    _, err = proc.communicate()
    peak = memory.stop()
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall_s": round(time.perf_counter() - started, 2), "peak_rss_mb": round(peak["rss"] / 2**20, 1),
            "peak_pss_mb": round(peak["pss"] / 2**20, 1), "processes": peak["processes"], "stderr": err}


def summary_of(stderr: str) -> dict:
    m = SUMMARY.findall(stderr)
    if not m:
        raise RuntimeError(f"no summary line in: {stderr[-1000:]}")
    docs, mentions, links, nil, seconds, dps, mps = (float(x.replace(",", "")) for x in m[-1])
    return {"documents": int(docs), "mentions": int(mentions), "links": int(links), "nil_share": round(nil / 100, 4),
            "link_seconds": seconds, "documents_per_second": dps, "mentions_per_second": mps}


def output_digest(path: Path) -> str:
    """SHA-256 of the output: the file, or a `--ray` folder's shards in manifest order."""
    h = hashlib.sha256()
    if path.is_dir():
        manifest = json.loads((path / "manifest.json").read_text())
        parts = [path / s["shard"] for s in manifest["shards"]]
    else:
        parts = [path]
    for p in parts:
        with p.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


CONFIGS = {  # name: (extra `mmel link` options, processes linking)
    "single": ((), 1),
    "workers-2": (("--workers", "2"), 2),
    "ray-1": (("--ray", "--ray-actors", "1"), 1),
    "ray-2": (("--ray", "--ray-actors", "2"), 2),
}  # --ray runs also get --ray-block (see main)


def projection(rows: dict) -> dict:
    """Hours for a C4-sized corpus from the measured per-core rate and scaling efficiencies."""
    per_core = rows["single"]["documents_per_second"]
    workers_eff = rows["workers-2"]["documents_per_second"] / (2 * per_core)
    ray_eff = rows["ray-2"]["actor_documents_per_second"] / (2 * per_core)  # Ray's start: nothing at C4 size

    def hours(cores: int, efficiency: float) -> float:
        return round(C4_DOCUMENTS / (per_core * cores * efficiency) / 3600, 1)

    return {
        "label": "PROJECTION, not measured: C4-sized corpus from this run's per-core rate and 2-process efficiency",
        "efficiencies": "workers: workers-2 documents/s over 2x single; ray: ray-2 actors' own documents/s over 2x single",
        "documents": C4_DOCUMENTS,
        "per_core_documents_per_second": per_core,
        "assumptions": ("linear scaling at the measured 2-process efficiency; documents like these "
                        "(short captions with gold spans: real web text is longer and has more mentions, "
                        "so the per-document rate falls in proportion); no I/O limit; one core per worker/actor"),
        "workers_efficiency": round(workers_eff, 3),
        "ray_efficiency": round(ray_eff, 3),
        "machine_16_cores": {"workers": 16, "hours": hours(16, workers_eff)},
        "ray_10_nodes_16_cores": {"actors": 160, "hours": hours(160, ray_eff)},
        "one_core": {"hours": hours(1, 1.0)},
    }


def markdown(result: dict) -> str:
    rows = result["runs"]
    lines = [f"Corpus linking, {result['config']['documents']:,} WikiMEL captions "
             f"({'detected mentions' if result['config']['detect'] else 'gold spans'}), "
             f"{result['machine']['cpu_count']} cores, revision {result['machine']['git_revision'][:12]}",
             "", "| run | documents/s | mentions/s | speed-up | actors' own mentions/s | wall s | peak RSS (tree) MB "
             "| peak PSS MB | same output |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['documents_per_second']:,.0f} | {r['mentions_per_second']:,.0f} | "
                     f"{r['speedup_vs_single']:.2f}x | {format(r['actor_mentions_per_second'], ',.0f') if 'actor_mentions_per_second' in r else ''} | {r['wall_s']:.0f} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['peak_pss_mb']:,.0f} | {'yes' if r['identical_to_single'] else 'NO'} |")
    extra = result["per_extra_worker"]
    lines += ["", f"Each extra `--workers` process adds {extra['workers_rss_mb']:,.0f} MB RSS "
              f"({extra['workers_pss_mb']:,.0f} MB PSS); each extra Ray actor {extra['ray_rss_mb']:,.0f} MB RSS "
              f"({extra['ray_pss_mb']:,.0f} MB PSS).", ""]
    p = result["projection"]
    lines += [f"**{p['label']}** ({p['per_core_documents_per_second']:,.0f} documents/s per core): "
              f"{p['documents'] / 1e6:,.0f}M documents take {p['machine_16_cores']['hours']:,.0f} h on a 16-core "
              f"machine and {p['ray_10_nodes_16_cores']['hours']:,.0f} h on a 10-node Ray cluster of 16 cores "
              f"({p['one_core']['hours']:,.0f} h on one core). Assumes {p['assumptions']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=FULL, help="documents in the corpus [default: 100,000]")
    ap.add_argument("--detect", action="store_true", help="drop the gold spans: the spotter detects the mentions")
    ap.add_argument("--runs", default=",".join(CONFIGS), help=f"configurations, from {', '.join(CONFIGS)}")
    ap.add_argument("--home", default=str(WORK / "home"), help="data home for the WikiMEL KB")
    ap.add_argument("--kb-name", default=None, help="use this already-built KB under --home")
    ap.add_argument("--model", default=None, help="reranker path (default: the home's trained one, else bundled)")
    args = ap.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = set(runs) - set(CONFIGS)
    if unknown or "single" not in runs:
        ap.error(f"--runs: choose from {', '.join(CONFIGS)} and include single (got {args.runs})")

    home = Path(args.home)
    if args.kb_name:
        name = args.kb_name
    else:
        from benchmarks.run import ensure_kb

        name = ensure_kb(DATA / "wikimel" / "kb.jsonl", home, None)
    corpus = build_corpus(args.docs, args.detect)
    scratch = WORK / "corpus" / "out"
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    batch = 64
    block = max(batch, min(4096, args.docs // 16 // batch * batch))  # >= 16 shards: every actor busy
    base = [sys.executable, str(ROOT / "cli.py"), "link", str(corpus), "--home", str(home), "--kb", name,
            "--batch-size", str(batch), "--no-progress", *(("--model", args.model) if args.model else ())]
    rows = {}
    for run in runs:
        extra, _ = CONFIGS[run]
        if "--ray" in extra:
            extra = (*extra, "--ray-block", str(block))
        out = scratch / (run if "--ray" in extra else f"{run}.jsonl")
        subprocess.run(["rm", "-rf", str(out)], check=True)  # a fresh run, never a resumed one
        log.info("%s: %s", run, " ".join(extra) or "one process")
        measured = run_tree([*base, "--out", str(out), *extra], env)
        rows[run] = {**summary_of(measured.pop("stderr")), **measured, "options": list(extra),
                     "output_sha256": output_digest(out)}
        if out.is_dir():  # --ray: the actors' own linking time per block, without Ray's start and the loads
            shards = json.loads((out / "manifest.json").read_text())["shards"]
            busy = sum(sh["seconds"] for sh in shards) / CONFIGS[run][1]
            rows[run]["actor_documents_per_second"] = round(rows[run]["documents"] / busy, 1)
            rows[run]["actor_mentions_per_second"] = round(rows[run]["mentions"] / busy, 1)
            rows[run]["shards"] = len(shards)
        log.info("%s: %s", run, {k: v for k, v in rows[run].items() if k != "output_sha256"})
    single = rows["single"]
    for r in rows.values():
        r["speedup_vs_single"] = round(r["documents_per_second"] / single["documents_per_second"], 3)
        r["identical_to_single"] = r["output_sha256"] == single["output_sha256"]
    if "ray-1" in rows and "ray-2" in rows:
        rows["ray-2"]["speedup_vs_ray_1"] = round(rows["ray-2"]["documents_per_second"]
                                                  / rows["ray-1"]["documents_per_second"], 3)

    def extra_mb(a: str, b: str, key: str, added: int) -> float | None:
        if a not in rows or b not in rows:
            return None
        return round((rows[b][key] - rows[a][key]) / added, 1)

    result = {
        "machine": machine("ray"),
        "config": {"documents": args.docs, "detect": args.detect, "batch_size": batch, "ray_block": block, "corpus": str(corpus.relative_to(ROOT)),
                   "source": "WikiMEL train + dev captions, repeated and shuffled (seed 0)", "kb_name": name,
                   "model": args.model or "the home's trained reranker, else the bundled one", "threads": 1,
                   "command": "python benchmarks/corpus.py " + " ".join(argv if argv is not None else sys.argv[1:])},
        "runs": rows,
        "per_extra_worker": {
            "workers_rss_mb": extra_mb("single", "workers-2", "peak_rss_mb", 2),
            "workers_pss_mb": extra_mb("single", "workers-2", "peak_pss_mb", 2),
            "ray_rss_mb": extra_mb("ray-1", "ray-2", "peak_rss_mb", 1),
            "ray_pss_mb": extra_mb("ray-1", "ray-2", "peak_pss_mb", 1),
            "note": ("workers: (--workers 2, a parent and 2 forked workers, minus one process) / 2; ray: 2 actors "
                     "minus 1. RSS counts copy-on-write pages in every process that maps them; PSS splits them"),
        },
        "gpu": "not measured: no GPU on the machine of this run",
    }
    if {"single", "workers-2", "ray-2"} <= rows.keys():
        result["projection"] = projection(rows)
    folder = results_dir() if args.docs >= FULL else WORK / "corpus"
    path = write_json(folder / ("corpus.json" if args.docs >= FULL else f"corpus-{args.docs}.json"), result)
    if "projection" in result and "ray-1" in rows:
        (path.with_suffix(".md")).write_text(markdown(result))
    log.info("wrote %s", path)
    print(markdown(result) if "projection" in result and "ray-1" in rows else json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
