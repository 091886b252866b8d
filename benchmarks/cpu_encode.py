"""CPU entity encoding: `mmel kb index --quantize int8` (ONNX Runtime int8) on WikiMEL, end to end.

1. `mmel kb build` of WikiMEL's 18,880 entities into a data home (`--home`, reused if there);
2. the int8 graph is exported and quantised, and the static context encoder distilled, once into
   `<home>/models` (timed apart: one-offs per machine and model, which `kb index` then reuses);
3. `mmel kb index --quantize int8` in a child process: wall and CPU seconds, peak RSS, the
   manifest's encode and index-build seconds; entities/s per wall and per CPU-second (the second
   is what a loaded machine distorts least: other jobs take cores, not CPU-seconds per entity);
4. quality against float32 MiniLM (vectors from the embedding cache `--fp32-cache`, the
   `.npy`/`.json` pair of `benchmarks/common.py`'s `CachedEncoder`): cosine per entity, and for the
   WikiMEL dev mentions (surfaces encoded in float32) the overlap of the top 30 entities;
5. linking WikiMEL dev (gold spans, the default reranker) against the int8 index and against a
   float32 index of the same KB built from the cache: Hits@1, recall@30, micro-F1.

    python benchmarks/cpu_encode.py [--fp32-cache benchmarks/work/embeddings/<id>] [--home DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, WORK, machine, results_dir, run_measured, write_json  # noqa: E402

CLI = [sys.executable, "-c", "from cli import main; main()"]
PREPARE = """
import json, sys, time
from indexer.static import cached_context_encoder
from indexer.text import TransformerTextEncoder
t = time.perf_counter()
encoder = TransformerTextEncoder(None, device="cpu", quantize="int8", cache_dir=sys.argv[1])
export = time.perf_counter() - t
cached_context_encoder(encoder)
print(json.dumps({"int8_export": round(export, 1), "context_distillation": round(time.perf_counter() - t - export, 1)}))
"""


def ensure_home(home: Path, name: str, kb_jsonl: Path) -> None:
    if not (home / "kbs" / name / "kb.sqlite").is_file():
        run_measured([*CLI, "kb", "build", "--home", str(home), "--entities", str(kb_jsonl), "--kb", name,
                      "--no-progress"])


def index_int8(home: Path, name: str, batch_size: int | None) -> dict:
    """`mmel kb index --quantize int8` in a child process, measured."""
    r = run_measured([*CLI, "kb", "index", "--home", str(home), "--kb", name, "--quantize", "int8", "--no-progress",
                      *(["--batch-size", str(batch_size)] if batch_size else [])])
    manifest = json.loads(r.pop("stdout"))
    n = manifest["count"]
    return {**r, "entities": n, "encode_s": manifest["encode_seconds"], "index_kind": manifest["kind"],
            "index_build_s": round(manifest["build_seconds"] - manifest["encode_seconds"], 2),
            "entities_per_s": round(n / manifest["encode_seconds"], 1),
            "entities_per_cpu_s": round(n / r["cpu_s"], 1),  # the whole command: load, encode, index, distil
            "text_encoding": manifest.get("text_encoding")}


def fp32_vectors(cache: Path, texts: list[str]) -> np.ndarray:
    keys = json.loads(cache.with_suffix(".json").read_text())["keys"]
    vecs = np.load(cache.with_suffix(".npy"), mmap_mode="r")
    return np.vstack([vecs[keys[hashlib.sha1(t.encode()).hexdigest()]] for t in texts]).astype(np.float32)


def quality(v8: np.ndarray, v32: np.ndarray, rows: list[dict], encoder) -> dict:
    cos = np.sum(v8 * v32, axis=1)
    qid_row = {r["qid"]: i for i, r in enumerate(rows)}
    surf, gold = [], []
    for line in (DATA / "wikimel" / "dev.jsonl").open(encoding="utf-8"):
        for m in json.loads(line)["mentions"]:
            surf.append(m["surface"])
            gold.append(qid_row.get(m["qid"], -1))
    qv = encoder.encode(surf)
    top32 = np.argsort(-(qv @ v32.T), axis=1)[:, :30]
    top8 = np.argsort(-(qv @ v8.T), axis=1)[:, :30]
    return {
        "cosine": {"mean": round(float(cos.mean()), 5), "p01": round(float(np.percentile(cos, 1)), 5),
                   "min": round(float(cos.min()), 5)},
        "dev_mentions": {
            "mentions": len(surf),
            "top30_overlap": round(float(np.mean([len(set(a) & set(b)) / 30 for a, b in zip(top32, top8)])), 4),
            "top1_same": round(float(np.mean(top32[:, 0] == top8[:, 0])), 4),
            "gold_in_top30_fp32": round(float(np.mean([g in r for g, r in zip(gold, top32)])), 4),
            "gold_in_top30_int8": round(float(np.mean([g in r for g, r in zip(gold, top8)])), 4),
        },
    }


def link_dev(home: Path, name: str) -> dict:
    from linker.fronts.api import evaluate_file

    t = time.perf_counter()
    s = evaluate_file(DATA / "wikimel" / "dev.jsonl", home=home, kb=name)
    return {"hits_at_1": round(s["hits_at_1"], 4), "recall_at_30": round(s["recall_at_k"]["30"], 4),
            "micro_f1": round(s["micro_f1"], 4), "mentions": s["mentions"], "seconds": round(time.perf_counter() - t, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp32-cache", type=Path, required=True,
                    help="embedding cache stem (without .npy/.json) of float32 MiniLM vectors of WikiMEL's entities")
    ap.add_argument("--home", type=Path, default=WORK / "cpu-encode-home", help="data home for the two KBs")
    ap.add_argument("--batch-size", type=int, default=None, help="kb index --batch-size [default: the encoder's, 64]")
    args = ap.parse_args(argv)
    from benchmarks.common import CachedEncoder
    from indexer.bootstrap import ensure_kb
    from indexer.dense import DenseIndex, entity_text
    from indexer.text import load_text_encoder

    kb_jsonl = DATA / "wikimel" / "kb.jsonl"
    rows = [json.loads(line) for line in kb_jsonl.open(encoding="utf-8")]
    texts = [entity_text(r["name"], r.get("description", "")) for r in rows]
    res = {"benchmark": "cpu_encode", "machine": machine("onnxruntime"),
           "command": "mmel kb index --quantize int8" + (f" --batch-size {args.batch_size}" if args.batch_size else "")}
    home = args.home
    ensure_home(home, "int8", kb_jsonl)
    # one-offs per machine and model, cached in <home>/models (0 when already there)
    res["prepare_seconds"] = json.loads(run_measured([sys.executable, "-c", PREPARE, str(home / "models")])["stdout"])
    res["load_average_before_index"] = os.getloadavg()
    res["int8"] = index_int8(home, "int8", args.batch_size)
    res["load_average_after_index"] = os.getloadavg()
    index = DenseIndex.load(home / "kbs" / "int8", "text")
    v8 = index.reconstruct(np.arange(len(rows)))  # HNSW and flat store the vectors as they are
    fp32 = load_text_encoder(None, device="cpu")
    res.update(quality(v8, fp32_vectors(args.fp32_cache, texts), rows, fp32))
    # the float32 reference: the same KB, indexed from the cache (no encoding), linked the same way
    ensure_kb(home, "fp32", kb_jsonl, lambda: CachedEncoder(fp32, args.fp32_cache), batch_size=128)
    res["link_wikimel_dev"] = {"int8": link_dev(home, "int8"), "fp32": link_dev(home, "fp32")}
    res["link_wikimel_dev"]["hits_at_1_change"] = round(
        res["link_wikimel_dev"]["int8"]["hits_at_1"] - res["link_wikimel_dev"]["fp32"]["hits_at_1"], 4)
    res["load_average_at_end"] = os.getloadavg()
    path = results_dir() / "cpu_encode.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    if "link_wikimel_dev" in old:  # the previous run, for comparison across revisions
        res["earlier"] = [*old.get("earlier", [])[-3:], {
            "git_revision": old["machine"]["git_revision"], "date": old["machine"]["date"],
            "load_average_before_index": old["load_average_before_index"], "int8": old["int8"],
            "hits_at_1": old["link_wikimel_dev"]["int8"]["hits_at_1"]}]
    write_json(path, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
