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
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated entity counts")
    ap.add_argument("--encode", type=int, default=500, help="entities to encode with MiniLM (0: skip)")
    ap.add_argument("--encode-threads", default="0,1",
                    help="torch thread counts to encode with (0: the encoder's default, one per core)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    WORK.mkdir(parents=True, exist_ok=True)
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
