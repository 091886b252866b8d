"""The entity text index built by a Ray Data pipeline, for KBs too big for one machine's encoder.

    blocks of entity rows (idx ranges)  ->  map_batches(encoder actors)  ->  shards  ->  one index

The driver cuts the KB's rows into ranges of `block` entities; each encoder actor (one GPU each
where the cluster has GPUs, else `cpus_per_actor` cores) opens the KB, reads its range, embeds
`name: description` with the same `load_text_encoder` as `mmel kb index`, and writes a shard
(`<idx>.ids.npy` + `<idx>.vectors.npy`) to a scratch folder beside the KB. The driver copies the
shards into one memory-mapped array and hands it to `indexer.dense.write_text_index`, the last
step of the single-process build: the same index kind choice (IVF-PQ trained on a sample from 2M
entities), manifest, atomic write and static context encoder.

On a cluster (`address`), every node must see the KB folder at the same path (a shared file
system): actors read the KB and write shards there. Without an address, Ray runs in this process
(`ray.init()`). Ray is the optional extra ``pip install 'mmel[ray]'``.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from kb.errors import ConfigError, KBError
from kb.lock import WriteLock

log = logging.getLogger(__name__)

RAY_HINT = "pip install 'mmel[ray]'"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(f"--ray needs Ray Data, which is not installed: {RAY_HINT}") from None
    return ray


class _ShardEncoder:
    """A Ray Data actor: for each input row `{start, stop}`, embed those entities and write a shard."""

    def __init__(self, kb_path: str, shard_dir: str, model: str | None, options: dict):
        from indexer.text import load_text_encoder
        from kb.store import KnowledgeBase

        self.kb = KnowledgeBase(kb_path)
        self.shard_dir = Path(shard_dir)
        self.encoder = load_text_encoder(model, **options)
        self.batch_size = options.get("batch_size")

    def __call__(self, batch: dict) -> dict:
        from indexer.dense import entity_text

        out: dict[str, list] = {"start": [], "count": [], "seconds": [], "model_id": [], "dim": [], "encoding": []}
        for start, stop in zip(batch["start"].tolist(), batch["stop"].tolist()):
            t = time.perf_counter()
            rows = list(self.kb.iter_entities(start=start, stop=stop))
            ids = np.fromiter((i for i, _ in rows), np.int64, len(rows))
            vecs = self.encoder.encode([entity_text(e.name, e.description) for _, e in rows],
                                       **({"batch_size": self.batch_size} if self.batch_size else {}))
            for name, array in (("ids", ids), ("vectors", np.ascontiguousarray(vecs, np.float32))):
                part = self.shard_dir / f".{start}.{name}.{os.getpid()}.npy"
                np.save(part, array)
                os.replace(part, self.shard_dir / f"{start}.{name}.npy")
            enc = self.encoder
            out["start"].append(start)
            out["count"].append(len(rows))
            out["seconds"].append(time.perf_counter() - t)
            out["model_id"].append(enc.model_id)
            out["dim"].append(enc.dim)
            out["encoding"].append(f"{getattr(enc, 'device', 'cpu')}/{getattr(enc, 'dtype', 'float32')}/"
                                   f"{getattr(enc, 'quantize', None) or ''}")
        return {k: np.asarray(v) for k, v in out.items()}


def _actor_plan(resources: dict, options: dict, actors: int | None,
                cpus_per_actor: int | None) -> tuple[bool, int, int]:
    """`(use_gpu, cores per actor, actors)` for a cluster's resources; sets the encoder's device
    (and threads on CPU) in `options`."""
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    device = options.get("device") or "auto"
    use_gpu = gpus > 0 and device != "cpu" and not options.get("quantize")
    per_actor = 1 if use_gpu else min(cpus, cpus_per_actor or 2)
    options["device"] = ("cuda" if use_gpu else "cpu") if device == "auto" else device
    if not use_gpu:
        options.setdefault("threads", per_actor)
    return use_gpu, per_actor, actors or (gpus if use_gpu else max(1, cpus // per_actor))


def _merge_shards(shards: list[dict], shard_dir: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The shards' vectors in one memory-mapped array (in shard order) and their entity ids."""
    total = sum(int(r["count"]) for r in shards)
    vectors = np.lib.format.open_memmap(shard_dir / "all.npy", mode="w+", dtype=np.float32, shape=(total, dim))
    ids = np.empty(total, np.int64)
    row = 0
    for r in shards:
        start, count = int(r["start"]), int(r["count"])
        ids[row : row + count] = np.load(shard_dir / f"{start}.ids.npy")
        vectors[row : row + count] = np.load(shard_dir / f"{start}.vectors.npy")
        row += count
    vectors.flush()
    return vectors, ids


def build_text_index_ray(
    kb,
    model: str | None,
    kb_dir: str | os.PathLike,
    *,
    encoder_options: dict | None = None,
    kind: str = "auto",
    address: str | None = None,
    block: int = 4096,
    actors: int | None = None,
    cpus_per_actor: int | None = None,
    progress: bool = True,
) -> dict:
    """Embed every entity of `kb` with Ray Data actors and save `<kb_dir>/text.faiss` +
    `text.json` (and the static context encoder), exactly as `build_text_index` does; returns the
    manifest.

    `model` and `encoder_options` (device, quantize, batch_size, cache_dir, ...) are those of
    `load_text_encoder`; `address`: a Ray cluster (``ray://host:10001``, ``auto``) or None for a
    local Ray in this process. `actors`: encoder actors (default: one per GPU of the cluster, else
    one per `cpus_per_actor` cores, default 2 or all if fewer). Holds the KB's write lock."""
    from indexer.dense import KINDS, write_text_index
    from indexer.text import hf_progress, load_text_encoder

    ray = _ray()
    if kind not in KINDS:
        raise ConfigError(f"unknown index type {kind!r}: choose one of {', '.join(KINDS)}")
    if block < 1:
        raise ConfigError(f"block must be >= 1, got {block}")
    n = len(kb)
    if n == 0:
        raise KBError(f"{kb.path} has no entities to index")
    options = dict(encoder_options or {})
    kb_dir = Path(kb_dir)
    with WriteLock(kb_dir, "indexed"):  # before loading a model: a second writer is refused at once
        if not kb.is_current():
            raise KBError(f"{kb.path} was rebuilt after this command opened it: run it again")
        with hf_progress(progress):
            driver_encoder = load_text_encoder(model, device="cpu")  # model id, dim, context distillation
        started = time.time()
        own_ray = not ray.is_initialized()  # started here: shut down here
        if own_ray:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                     **({} if address else {"include_dashboard": False}))
        ray.data.DataContext.get_current().enable_progress_bars = progress
        use_gpu, per_actor, actors = _actor_plan(ray.cluster_resources(), options, actors, cpus_per_actor)
        shard_dir = kb_dir / f".text-shards.{os.getpid()}"
        shutil.rmtree(shard_dir, ignore_errors=True)
        shard_dir.mkdir(parents=True)
        try:
            ranges = [{"start": s, "stop": min(s + block, n)} for s in range(0, n, block)]
            log.info("Ray: %d blocks of %d entities on %d %s actor(s)", len(ranges), block, actors,
                     "GPU" if use_gpu else f"{per_actor}-CPU")
            ds = ray.data.from_items(ranges, override_num_blocks=len(ranges)).map_batches(
                _ShardEncoder, batch_size=1, concurrency=actors,
                fn_constructor_kwargs={"kb_path": str(kb.path), "shard_dir": str(shard_dir),
                                       "model": model, "options": options},
                num_gpus=1 if use_gpu else 0, num_cpus=per_actor)
            shards = sorted(ds.take_all(), key=lambda r: int(r["start"]))
            encode_s = time.time() - started
            mismatch = {(str(r["model_id"]), int(r["dim"])) for r in shards} - {(driver_encoder.model_id, driver_encoder.dim)}
            if mismatch:
                raise ConfigError(f"Ray actors embedded with {sorted(mismatch)}, the driver loads "
                                  f"{driver_encoder.model_id!r} (dim {driver_encoder.dim}): install the same model everywhere")
            vectors, ids = _merge_shards(shards, shard_dir, driver_encoder.dim)
            device_, dtype, quantize = str(shards[0]["encoding"]).split("/")
            encoding = ({"device": device_, "dtype": dtype, "quantize": quantize or None}
                        if hasattr(driver_encoder, "quantize") else None)
            return write_text_index(
                kb, driver_encoder, kb_dir, vectors, ids, kind=kind, started=started, encode_seconds=encode_s,
                encoding=encoding, progress=progress,
                extra={"ray": {"actors": actors, "gpus_per_actor": 1 if use_gpu else 0,
                               "cpus_per_actor": 0 if use_gpu else per_actor, "block": block,
                               "shards": len(shards)}})
        finally:
            shutil.rmtree(shard_dir, ignore_errors=True)
            if own_ray:
                ray.shutdown()
