"""KB-scale costs: KB build from synthetic entities at 10k/100k/1M, and MiniLM encode rate.

- KB build: for each size, a synthetic entity JSONL (`make_synthetic_kb.py`, cached under
  `benchmarks/work/`) is built into a SQLite KB with `kb.build.build_kb` in a child process:
  wall and CPU seconds, peak RSS of the process, SQLite size on disk, entities, aliases/priors;
- text encoding: entities/s (and per CPU-second) of the default MiniLM encoder on ~500
  synthetic entities as `name: description` (what `mmel kb index` embeds). Embedding 1M
  entities with MiniLM on a CPU takes hours: the report extrapolates from this rate instead,
  and the index costs come from `index.py` (random clustered vectors).

Writes `scale.json` in the results folder; the report (`run.py report`) combines it with
`index.json` and `kb_build.json` into the scale note of RESULTS.md.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--encode 500]   # a run keeps the earlier rows of sizes it did not measure

End to end (`--e2e N`, measured, nothing extrapolated): a KB of N synthetic entities is built
(`mmel kb build`), its entities are encoded with the fastest CPU path (`kb index --quantize int8`'s
ONNX Runtime int8 encoder, in resumable pieces of 10,000 run as child processes, cached under
`benchmarks/work/scale-N/`; `--max-minutes` stops between pieces, a rerun goes on), the pieces
become one index with `indexer.dense.write_text_index` (what `kb index` runs after encoding: the
kind `auto` picks, manifest, static context encoder), and a synthetic test set of 1,000 one-mention
captions drawn from the KB is linked (gold spans, default reranker, 1 thread): wall and CPU seconds,
peak RSS and sizes per stage, written to `scale.json` under `end_to_end`.

    python benchmarks/scale.py --e2e 100000 [--max-minutes 11]   # rerun until it says "done"
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402

from benchmarks.common import WORK, earlier_rows, machine, results_dir, run_measured, write_json  # noqa: E402

log = logging.getLogger("benchmarks.scale")
BUILD = """
import json, sys
from kb.build import build_kb
stats = build_kb(sys.argv[1], entities=sys.argv[2], progress=False)
print(json.dumps({k: v for k, v in stats.items() if isinstance(v, (int, float))}))
"""


def synthetic_kb(n: int) -> Path:
    from benchmarks.make_synthetic_kb import write_kb

    path = WORK / f"synthetic-kb-{n}.jsonl"
    if not path.is_file():
        write_kb(path, n)
    return path


def bench_build(n: int) -> dict:
    """Build a KB of `n` synthetic entities in a child process; time, memory and disk."""
    src = synthetic_kb(n)
    tmp = Path(tempfile.mkdtemp(prefix="mmel-scale-", dir=WORK))
    try:
        out = tmp / "kb.sqlite"
        r = run_measured([sys.executable, "-c", BUILD, str(out), str(src)])
        stats = json.loads(r.pop("stdout").strip().splitlines()[-1])
        disk = sum(p.stat().st_size for p in tmp.iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row = {"entities": n, **r, "sqlite_mb": round(disk / 2**20, 1), "input_mb": round(src.stat().st_size / 2**20, 1),
           "bytes_per_entity": round(disk / n, 1), "entities_per_s": round(n / r["wall_s"], 1),
           "stats": stats}
    log.info("build %d: %s", n, row)
    return row


def bench_encode(n: int, threads: int = 0) -> dict:
    """Entities/s of the default text encoder on `n` synthetic `name: description` texts, with
    `threads` torch threads (0: the encoder's own choice, one per core)."""
    import torch

    from indexer.dense import entity_text
    from indexer.text import load_text_encoder

    rows = [json.loads(line) for line, _ in zip(synthetic_kb(10_000).open(encoding="utf-8"), range(n))]
    texts = [entity_text(r["name"], r["description"]) for r in rows]
    t = time.perf_counter()
    enc = load_text_encoder(None)
    load_s = time.perf_counter() - t
    if threads:
        torch.set_num_threads(threads)
    enc.encode(texts[:16], batch_size=16)  # warm-up
    t, cpu = time.perf_counter(), time.process_time()
    enc.encode(texts, batch_size=64)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    out = {"model": enc.model_id, "entities": len(texts), "load_s": round(load_s, 2),
           "torch_threads": torch.get_num_threads(),
           "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
           "entities_per_s": round(len(texts) / wall, 1), "entities_per_cpu_s": round(len(texts) / cpu, 1)}
    log.info("encode: %s", out)
    return out


# -- end to end at one size, resumable ---------------------------------------------------------

PIECE = 10_000
CLI = [sys.executable, "-c", "from cli import main; main()"]
ENCODE_PIECE = """
import json, os, sys, time
import numpy as np
from indexer.dense import entity_text
from indexer.text import load_text_encoder
from kb.store import KnowledgeBase
kb_path, cache, start, stop, out = sys.argv[1:6]
t = time.perf_counter()
enc = load_text_encoder(None, device="cpu", quantize="int8", cache_dir=cache)
load_s = time.perf_counter() - t
rows = list(KnowledgeBase(kb_path).iter_entities(start=int(start), stop=int(stop)))
t, c = time.perf_counter(), time.process_time()
vecs = enc.encode([entity_text(e.name, e.description) for _, e in rows])
enc_s, cpu_s = time.perf_counter() - t, time.process_time() - c
np.save(out + ".part.npy", vecs)
os.replace(out + ".part.npy", out)
print(json.dumps({"entities": len(rows), "load_s": round(load_s, 2), "encode_s": round(enc_s, 2),
                  "encode_cpu_s": round(cpu_s, 2), "threads": enc._ort_workers}))
"""
INDEX = """
import json, sys, time
import numpy as np
from indexer.dense import write_text_index
from indexer.text import load_text_encoder
from kb.lock import WriteLock
from kb.store import KnowledgeBase
kb_dir, vectors, encode_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
kb = KnowledgeBase(kb_dir + "/kb.sqlite")
x = np.load(vectors, mmap_mode="r")
encoder = load_text_encoder(None, device="cpu")  # for the model id and the context distillation
with WriteLock(kb_dir, "indexed"):
    t = time.time()
    m = write_text_index(kb, encoder, kb_dir, x, np.arange(len(x)), kind="auto",
                         started=t, encode_seconds=encode_s, progress=False,
                         encoding={"device": "cpu", "dtype": "float32", "quantize": "int8"},
                         extra={"encoded_by": "benchmarks/scale.py --e2e (resumable pieces)"})
print(json.dumps({"manifest": m, "seconds": round(time.time() - t, 2)}))
"""
LINK = """
import json, sys, time
from linker.training.evaluate import evaluate
from linker.pipeline import Linker, set_threads
from linker.training.labelled import read_labelled
home, name, test = sys.argv[1:4]
set_threads(1)
t = time.perf_counter()
linker = Linker.load(home, name)
load_s = time.perf_counter() - t
data = read_labelled(test)
list(linker.link_many([d for d, _ in data[:8]]))  # warm-up
t = time.perf_counter()
m = evaluate(linker, data, batch_size=64)
s = time.perf_counter() - t
print(json.dumps({"load_s": round(load_s, 2), "documents": len(data), "mentions": m.mentions, "seconds": round(s, 2),
                  "mentions_per_s": round(m.mentions / s, 1), "hits_at_1": round(m.hits_at_1, 4),
                  "recall_at_30": round(m.recall_at(30), 4), "micro_f1": round(m.f1, 4)}))
"""
_FIELDS = re.compile(r"(Birth|Occupation): ([^.]+)\.")


def synthetic_test_set(kb_jsonl: Path, out: Path, n_docs: int = 1000, seed: int = 0) -> Path:
    """`n_docs` WikiMEL-like captions, one gold mention each, of entities drawn from `kb_jsonl`:
    "Name (1926)", "Alias in 1970" (the entity's alias: a surname shared by many), "Name, painter,
    born in Lima"."""
    rows = [json.loads(line) for line in kb_jsonl.open(encoding="utf-8")]
    rng = random.Random(seed)
    with out.open("w", encoding="utf-8") as fh:
        for k, r in enumerate(rng.sample(rows, min(n_docs, len(rows)))):
            f = dict(_FIELDS.findall(r["description"]))
            year, _, place = f.get("Birth", "").partition(", ")
            job = f.get("Occupation", "").split(", ")[0]
            form = k % 3
            surface = r.get("aliases", [r["name"]])[0] if form == 1 else r["name"]
            text = (f"{surface} ({year})" if form == 0 else f"{surface} in {int(year or 1950) + 40}" if form == 1
                    else f"{surface}, {job}, born in {place}")
            fh.write(json.dumps({"id": str(k), "text": text, "mentions": [
                {"start": 0, "end": len(surface), "surface": surface, "qid": r["qid"]}]}, ensure_ascii=False) + "\n")
    return out


def _save_state(path: Path, state: dict) -> None:
    write_json(path, state)


def end_to_end(n: int, max_minutes: float) -> dict | None:
    """Run (or resume) the end-to-end stages at `n` entities; the finished stages, or None when
    the encoding stopped at `max_minutes` (run again to go on)."""
    folder = WORK / f"scale-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"entities": n, "stages": {}}
    stages = state["stages"]
    home, name = folder / "home", f"s{n}"
    kb_dir = home / "kbs" / name
    src = synthetic_kb(n)
    if "kb_build" not in stages:
        shutil.rmtree(home, ignore_errors=True)
        r = run_measured([*CLI, "kb", "build", "--home", str(home), "--entities", str(src), "--kb", name, "--no-progress"])
        stats = json.loads(r.pop("stdout"))
        stages["kb_build"] = {**r, "load_average": os.getloadavg(), "sqlite_mb": round((kb_dir / "kb.sqlite").stat().st_size / 2**20, 1),
                              "stats": {k: v for k, v in stats.items() if isinstance(v, (int, float))}}
        stages.pop("encode", None)
        _save_state(state_path, state)
        log.info("kb build: %s", stages["kb_build"])
    enc = stages.setdefault("encode", {"pieces": []})
    started = time.perf_counter()
    done = {p["start"] for p in enc["pieces"]}
    for start in range(0, n, PIECE):
        if start in done:
            continue
        if (time.perf_counter() - started) / 60 > max_minutes - 2.5:  # a piece takes ~1-2.5 min
            _save_state(state_path, state)
            log.info("encoded %d of %d pieces; run again to go on", len(enc["pieces"]), -(-n // PIECE))
            return None
        out = folder / f"vectors-{start}.npy"
        r = run_measured([sys.executable, "-c", ENCODE_PIECE, str(kb_dir / "kb.sqlite"), str(home / "models"),
                          str(start), str(min(start + PIECE, n)), str(out)])
        out_ = json.loads(r.pop("stdout"))
        enc["pieces"].append({"start": start, **r, **out_, "load_average": os.getloadavg()})
        _save_state(state_path, state)
        log.info("encoded piece %d: %s", start, enc["pieces"][-1])
    pieces = sorted(enc["pieces"], key=lambda p: p["start"])
    enc.update(entities=sum(p["entities"] for p in pieces), wall_s=round(sum(p["wall_s"] for p in pieces), 1),
               cpu_s=round(sum(p["cpu_s"] for p in pieces), 1), encode_s=round(sum(p["encode_s"] for p in pieces), 1),
               encode_cpu_s=round(sum(p["encode_cpu_s"] for p in pieces), 1),
               peak_rss_mb=max(p["peak_rss_mb"] for p in pieces), path="ONNX Runtime int8 (kb index --quantize int8)")
    enc.update(entities_per_s=round(enc["entities"] / enc["encode_s"], 1),
               entities_per_cpu_s=round(enc["entities"] / enc["encode_cpu_s"], 1))
    if "index" not in stages:
        merged = folder / "vectors.npy"
        x = np.lib.format.open_memmap(merged, mode="w+", dtype=np.float32, shape=(n, 384))
        for p in pieces:
            x[p["start"] : p["start"] + p["entities"]] = np.load(folder / f"vectors-{p['start']}.npy")
        x.flush()
        del x
        r = run_measured([sys.executable, "-c", INDEX, str(kb_dir), str(merged), str(enc["encode_s"])])
        out = json.loads(r.pop("stdout"))
        m = out["manifest"]
        ctx = sum(p.stat().st_size for p in kb_dir.glob("context.*"))
        stages["index"] = {**r, "load_average": os.getloadavg(), "kind": m["kind"], "params": m.get("params"),
                           "index_build_s": m["build_seconds"], "write_text_index_s": out["seconds"],
                           "context_distil_s": round(out["seconds"] - m["build_seconds"], 2),
                           "index_mb": round(m["bytes"] / 2**20, 1), "bytes_per_entity": round(m["bytes"] / n, 1),
                           "context_encoder_mb": round(ctx / 2**20, 1)}
        merged.unlink()
        _save_state(state_path, state)
        log.info("index: %s", stages["index"])
    if "link" not in stages:
        test = synthetic_test_set(src, folder / "test.jsonl")
        r = run_measured([sys.executable, "-c", LINK, str(home), name, str(test)])
        out_ = json.loads(r.pop("stdout"))
        stages["link"] = {**r, **out_, "load_average": os.getloadavg(),
                          "test_set": "1,000 synthetic one-mention captions (name (year) / alias in year / name, job, born in place)"}
        _save_state(state_path, state)
        log.info("link: %s", stages["link"])
    state["total_wall_s"] = round(stages["kb_build"]["wall_s"] + enc["wall_s"] + stages["index"]["wall_s"], 1)
    state["disk_mb"] = round(sum(p.stat().st_size for p in kb_dir.iterdir() if p.is_file()) / 2**20, 1)
    _save_state(state_path, state)
    return state


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated entity counts")
    ap.add_argument("--encode", type=int, default=500, help="entities to encode with MiniLM (0: skip)")
    ap.add_argument("--encode-threads", default="0,1",
                    help="torch thread counts to encode with (0: the encoder's default, one per core)")
    ap.add_argument("--e2e", type=int, default=0, help="only the end-to-end run at this many entities (resumable)")
    ap.add_argument("--max-minutes", type=float, default=11.0, help="--e2e: stop encoding after about this long")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    WORK.mkdir(parents=True, exist_ok=True)
    if args.e2e:
        state = end_to_end(args.e2e, args.max_minutes)
        if state is None:
            print("not done: run again to go on encoding")
            return
        path = results_dir() / "scale.json"
        result = json.loads(path.read_text()) if path.is_file() else {"benchmark": "scale", "kb_build": []}
        result["end_to_end"] = {**state, "machine": machine("onnxruntime")}
        write_json(path, result)
        print(f"done: wrote {path}")
        return
    result: dict = {"benchmark": "scale", "machine": machine(), "kb_build": []}
    for n in (int(s) for s in args.sizes.split(",") if s):
        result["kb_build"].append(bench_build(n))
    if args.encode:
        runs = [bench_encode(args.encode, int(t)) for t in args.encode_threads.split(",")]
        result["text_encode"] = max(runs, key=lambda r: r["entities_per_s"])  # used by the scale note
        result["text_encode_runs"] = runs
    path = results_dir() / "scale.json"
    result["kb_build"] += earlier_rows(path, "kb_build", "entities", {b["entities"] for b in result["kb_build"]})
    result["kb_build"].sort(key=lambda b: b["entities"])
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
