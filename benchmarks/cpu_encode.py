"""CPU entity encoding: float32 PyTorch against ONNX Runtime int8, on WikiMEL's entities.

Encodes all WikiMEL entities (`name: description`) with the int8 path (`quantize="int8"`) and,
unless a float32 embedding cache of the same texts is given (`--fp32-cache`, the `.npy`/`.json`
pair written by `benchmarks/common.py`'s `CachedEncoder`), with float32 too; reports entities/s
(wall and per CPU-second) and the quality of the int8 vectors against float32: cosine per entity,
and for the WikiMEL dev mentions (surface strings encoded with float32) the overlap of the top 30
entities found with int8 vs float32 entity vectors (exact search) and the share of mentions whose
gold entity is in each top 30.

    python benchmarks/cpu_encode.py [--fp32-cache benchmarks/work/embeddings/<id>] [--threads 2]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, machine, results_dir, write_json  # noqa: E402


def timed(enc, texts):
    t, c = time.perf_counter(), time.process_time()
    v = enc.encode(texts, batch_size=64)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return v, {"entities": len(texts), "seconds": round(wall, 1), "entities_per_s": round(len(texts) / wall, 1),
               "entities_per_cpu_s": round(len(texts) / cpu, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp32-cache", type=Path, help="embedding cache stem (without .npy/.json) of float32 MiniLM vectors")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from indexer.dense import entity_text
    from indexer.text import TransformerTextEncoder

    rows = [json.loads(line) for line in (DATA / "wikimel" / "kb.jsonl").open(encoding="utf-8")]
    texts = [entity_text(r["name"], r.get("description", "")) for r in rows]
    res = {"benchmark": "cpu_encode", "machine": machine("onnxruntime"), "threads": args.threads,
           "load_average_at_start": os.getloadavg()}
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        q = TransformerTextEncoder(None, device="cpu", threads=args.threads, quantize="int8", cache_dir=cache)
        res["int8_prepare_seconds"] = round(time.perf_counter() - t, 1)  # export + quantise, cached afterwards
    q.encode(texts[:64])
    v8, res["int8"] = timed(q, texts)
    fp = TransformerTextEncoder(None, device="cpu", threads=args.threads)
    if args.fp32_cache:
        keys = json.loads(args.fp32_cache.with_suffix(".json").read_text())["keys"]
        cache = np.load(args.fp32_cache.with_suffix(".npy"), mmap_mode="r")
        v32 = np.vstack([cache[keys[hashlib.sha1(t.encode()).hexdigest()]] for t in texts]).astype(np.float32)
        res["fp32"] = {"from_cache": str(args.fp32_cache.name)}
    else:
        v32, res["fp32"] = timed(fp, texts)
    cos = np.sum(v8 * v32, axis=1)
    res["cosine"] = {"mean": round(float(cos.mean()), 5), "p01": round(float(np.percentile(cos, 1)), 5),
                     "min": round(float(cos.min()), 5)}
    qid_row = {r["qid"]: i for i, r in enumerate(rows)}
    surf, gold = [], []
    for line in (DATA / "wikimel" / "dev.jsonl").open(encoding="utf-8"):
        for m in json.loads(line)["mentions"]:
            surf.append(m["surface"])
            gold.append(qid_row.get(m["qid"], -1))
    qv = fp.encode(surf)
    gold = np.array(gold)
    top32 = np.argsort(-(qv @ v32.T), axis=1)[:, :30]
    top8 = np.argsort(-(qv @ v8.T), axis=1)[:, :30]
    res["dev_mentions"] = {
        "mentions": len(surf),
        "top30_overlap": round(float(np.mean([len(set(a) & set(b)) / 30 for a, b in zip(top32, top8)])), 4),
        "top1_same": round(float(np.mean(top32[:, 0] == top8[:, 0])), 4),
        "gold_in_top30_fp32": round(float(np.mean([g in r for g, r in zip(gold, top32)])), 4),
        "gold_in_top30_int8": round(float(np.mean([g in r for g, r in zip(gold, top8)])), 4),
    }
    res["load_average_at_end"] = os.getloadavg()
    write_json(results_dir() / "cpu_encode.json", res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
