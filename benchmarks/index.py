"""Benchmark the indexer: text encoding, FAISS index kinds, and face embedding.

- text: entities/s of the default all-MiniLM-L6-v2 on WikiMEL entities, as ``name`` alone and
  as ``name: description`` (what `mmel kb index` embeds);
- dense: for clustered synthetic unit vectors (dim 384) at each size and each kind (flat, hnsw,
  ivfpq): build seconds, single-query latency p50/p95 (ms), recall@10 against exact search on a
  query sample (`overlap`: share of the exact top 10 returned; `top1_in_10`: share of queries
  whose exact nearest is returned), and bytes per entity of the saved index;
- faces: images/s for load + detect + embed (dlib) on the shared gallery.

Writes `benchmarks/results/index.json` (with git revision and machine) and prints a Markdown
table (also saved as `benchmarks/results/index.md`). Not a test: nothing is asserted.

    python benchmarks/index.py                       # 2,000 entities; 100k and 1M vectors
    python benchmarks/index.py --sizes 100000 --entities 500   # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import DATA, earlier_rows, machine, results_dir  # noqa: E402


def bench_text(n: int) -> dict:
    from indexer.dense import entity_text
    from indexer.text import TransformerTextEncoder

    rows = []
    with open(DATA / "wikimel" / "kb.jsonl", encoding="utf-8") as f:
        for line, _ in zip(f, range(n)):
            rows.append(json.loads(line))
    started = time.perf_counter()
    enc = TransformerTextEncoder()
    load_s = time.perf_counter() - started
    enc.encode(["warm up"] * 8)
    out = {"model": enc.model_id, "device": enc.device, "entities": len(rows), "load_seconds": round(load_s, 2)}
    for label, texts in (
        ("name", [r["name"] for r in rows]),
        ("name_description", [entity_text(r["name"], r.get("description", "")) for r in rows]),
    ):
        t, cpu = time.perf_counter(), time.process_time()
        enc.encode(texts, batch_size=64)
        out[f"{label}_per_s"] = round(len(texts) / (time.perf_counter() - t), 1)
        # per CPU-second of this process: robust to other load on the machine
        out[f"{label}_per_cpu_s"] = round(len(texts) / (time.process_time() - cpu), 1)
    return out


def clustered(n: int, d: int, n_queries: int, seed: int = 0, latent: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors like sentence embeddings: clustered in a `latent`-dim space, projected to
    `d` dims, plus a little isotropic noise (i.i.d. Gaussian 384-d data has no neighbourhood
    structure and is a needlessly hard, unrealistic case for ANN). Queries: noisy data points."""
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((latent, d)).astype(np.float32) / np.sqrt(latent)
    centres = rng.standard_normal((max(10, n // 1000), latent)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):  # in chunks to bound temporary memory
        m = min(100_000, n - s)
        z = centres[rng.integers(0, len(centres), m)] + 0.5 * rng.standard_normal((m, latent), dtype=np.float32)
        x[s : s + m] = z @ proj + 0.05 * rng.standard_normal((m, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, n_queries, replace=False)] + 0.02 * rng.standard_normal((n_queries, d), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def bench_dense(n: int, d: int, kinds: list[str], n_queries: int, n_latency: int) -> list[dict]:
    from indexer.dense import DenseIndex

    x, q = clustered(n, d, n_queries)
    results, exact = [], None
    for kind in kinds:
        t = time.perf_counter()
        index = DenseIndex.build(x, kind=kind)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        _, found = index.search(q, 10)
        batch_s = time.perf_counter() - t
        if kind == "flat":
            exact = found
        lat = []
        for i in range(n_latency if kind != "flat" or n < 500_000 else min(n_latency, 50)):
            t = time.perf_counter()
            index.search(q[i : i + 1], 10)
            lat.append((time.perf_counter() - t) * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            path = index.save(tmp, "bench")
            size = path.stat().st_size
        row = {
            "n": n, "dim": d, "kind": kind, "params": index.manifest.get("params", {}),
            "build_s": round(build_s, 2), "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p95_ms": round(float(np.percentile(lat, 95)), 3),
            "batch_qps": round(n_queries / batch_s, 1), "bytes_per_entity": round(size / n, 1),
        }
        if exact is not None:
            row["recall10_overlap"] = round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])), 4)
            row["recall10_top1_in_10"] = round(float(np.mean([e[0] in f for f, e in zip(found, exact)])), 4)
        print(json.dumps(row), file=sys.stderr, flush=True)
        results.append(row)
        del index
    return results


def bench_faces() -> dict:
    from indexer.face_encoders import DlibFaceEncoder
    from indexer.images import load_image

    paths = sorted((DATA / "faces" / "gallery").glob("*/*"))
    enc = DlibFaceEncoder()
    t, cpu = time.perf_counter(), time.process_time()
    faces = 0
    for p in paths:
        img = load_image(p)
        boxes = enc.detect(img)
        enc.embed(img, boxes)
        faces += len(boxes)
    s = time.perf_counter() - t
    return {"images": len(paths), "faces": faces, "images_per_s": round(len(paths) / s, 2),
            "images_per_cpu_s": round(len(paths) / (time.process_time() - cpu), 2)}


def markdown(res: dict) -> str:
    lines = [f"Indexer benchmark, {res['machine']['cpu_count']} CPUs, torch {res['machine']['torch']}, "
             f"faiss {res['machine']['faiss']}, rev {res['machine']['git_revision'][:8]}", ""]
    if "text" in res:
        t = res["text"]
        lines += [f"Text encoding ({t['model']}, {t['device']}, {t['entities']} WikiMEL entities): "
                  f"{t['name_per_s']} names/s ({t['name_per_cpu_s']} per CPU-s), "
                  f"{t['name_description_per_s']} 'name: description'/s ({t['name_description_per_cpu_s']} per CPU-s)", ""]
    if "faces" in res:
        f = res["faces"]
        lines += [f"Faces (dlib, load+detect+embed): {f['images_per_s']} images/s "
                  f"({f['images_per_cpu_s']} per CPU-s; {f['images']} gallery images)", ""]
    lines += ["| n | kind | build s | p50 ms | p95 ms | batch q/s | recall@10 (overlap) | top-1 in 10 | bytes/entity |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("dense", []):
        earlier = f" (rev {r['from_revision'][:8]})" if r.get("from_revision") else ""
        lines.append(
            f"| {r['n']:,}{earlier} | {r['kind']} | {r['build_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['batch_qps']} | "
            f"{r.get('recall10_overlap', '')} | {r.get('recall10_top1_in_10', '')} | {r['bytes_per_entity']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=2000, help="WikiMEL entities to encode (0: skip)")
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated vector counts")
    ap.add_argument("--kinds", default="flat,hnsw,ivfpq")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000, help="queries for recall (exact ground truth)")
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--no-faces", action="store_true")
    args = ap.parse_args(argv)

    res: dict = {"machine": machine()}
    if args.entities:
        res["text"] = bench_text(args.entities)
        print(json.dumps(res["text"]), file=sys.stderr, flush=True)
    if not args.no_faces:
        res["faces"] = bench_faces()
    res["dense"] = []
    kinds = args.kinds.split(",")
    if "flat" in kinds:  # flat first: it is the ground truth for recall
        kinds = ["flat"] + [k for k in kinds if k != "flat"]
    for n in (int(s) for s in args.sizes.split(",") if s):
        res["dense"] += bench_dense(n, args.dim, kinds, args.queries, args.latency_queries)
    res["machine"]["load_average_at_end"] = os.getloadavg()
    out = results_dir()
    res["dense"] += earlier_rows(out / "index.json", "dense", "n", {r["n"] for r in res["dense"]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").write_text(json.dumps(res, indent=2) + "\n")
    table = markdown(res)
    (out / "index.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
