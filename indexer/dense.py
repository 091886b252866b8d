"""Dense vector indexes (FAISS) with a manifest, plus the entity text index.

Index kinds, for `n` vectors of dimension `d` (float32) — memory per entity:

- ``flat``  exact search, ``4·d`` bytes (1,536 B at d=384). Chosen by ``auto`` below 10k.
- ``hnsw``  graph (M=32, efSearch=128), ``4·d + ~8·M·1.05`` bytes (~1.8 KB at d=384), recall@10
  ≈ 0.99 at a fraction of flat's latency. Chosen below 2M.
- ``ivfpq`` inverted lists over product-quantised codes (``d/8`` one-byte codes for d > 128, ``d/4``
  below, + 8 B id), ~56 B at d=384; scores and `reconstruct` are approximate (the true
  nearest neighbour is nearly always in the top 10, the exact top-10 order is not). Chosen
  from 2M.

A saved index is ``<name>.faiss`` (FAISS's own format) and ``<name>.json`` (the manifest:
model id, dimension, count, metric, kind, KB checksum, creation time). Both are written to a
temporary file and renamed, and `DenseIndex.load` refuses a manifest that names another KB
or model (`IndexMismatchError`).
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
from tqdm import tqdm

from kb.errors import ConfigError, IndexMismatchError, KBError
from kb.files import atomic_path
from kb.lock import WriteLock

if TYPE_CHECKING:
    from collections.abc import Callable

    from indexer.text import TextEncoder
    from kb.store import KnowledgeBase

log = logging.getLogger(__name__)

KINDS = ("auto", "flat", "hnsw", "ivfpq")
METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
FLAT_MAX, HNSW_MAX = 10_000, 2_000_000  # measured: HNSW is 6x faster than flat at 19k, recall@10 0.985
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 64, 128
FORMAT_VERSION = 1
TEXT_INDEX = "text"


def choose_kind(n: int) -> str:
    """The index kind `auto` picks for `n` vectors."""
    return "flat" if n < FLAT_MAX else "hnsw" if n < HNSW_MAX else "ivfpq"


def _ivfpq_params(n: int, d: int) -> tuple[int, int, int]:
    """`(nlist, pq subquantizers, nprobe)` for `n` vectors of dimension `d`."""
    nlist = int(min(max(1, 2 ** round(math.log2(2 * math.sqrt(n)))), max(1, n // 39)))
    m = d // 4 if d <= 128 else d // 8
    while m > 1 and d % m:
        m -= 1
    return nlist, max(m, 1), min(nlist, max(16, nlist // 32))


def _gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get else 0
    except Exception:  # a CPU build may expose the symbol and fail
        return 0


def faiss_distributions() -> list[str]:
    """The installed pip distributions that ship the `faiss` package (`faiss-cpu`,
    `faiss-gpu-cu12`, ...). More than one is a broken install: they overwrite each other's files."""
    from importlib import metadata

    names = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "faiss" or name.startswith(("faiss-", "faiss_")):
            names.add(name)
    return sorted(names)


def _gpu_cloner_options() -> faiss.GpuMultipleClonerOptions:
    """Standard options for `index_cpu_to_all_gpus`: IVF-PQ with more than 32 one-byte
    sub-quantizers (48 at d=384) needs float16 lookup tables to fit in shared memory."""
    co = faiss.GpuMultipleClonerOptions()
    co.useFloat16LookupTables = True
    return co


def _check_single_faiss() -> None:
    dists = faiss_distributions()
    if len(dists) > 1:
        log.warning("%s are all installed and overwrite each other's `faiss` package; keep one: "
                    "pip uninstall -y %s && pip install faiss-gpu-cu12 (GPU) or faiss-cpu (CPU)",
                    ", ".join(dists), " ".join(dists))


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp)` for a unique temporary file beside `path`, then rename it over `path`."""
    with atomic_path(path) as tmp:
        write(tmp)


class DenseIndex:
    """A FAISS index with its kind, metric and manifest. Ids are int64 (entity idx by default)."""

    def __init__(self, index: faiss.Index, kind: str, metric: str, manifest: dict | None = None):
        self.index = index
        self.kind = kind
        self.metric = metric
        self.manifest = dict(manifest or {})
        self._search_index = index  # CPU until `on_gpu()`: device placement is asked for, never implicit

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray | None = None,
        kind: str = "auto",
        metric: str = "ip",
        seed: int = 0,
    ) -> DenseIndex:
        """Index `vectors` (n × d float32); `ids` default to the row numbers 0..n-1."""
        if kind not in KINDS:
            raise ConfigError(f"unknown index type {kind!r}: choose one of {', '.join(KINDS)}")
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ConfigError(f"need a non-empty 2-d array of vectors, got shape {x.shape}")
        n, d = x.shape
        if ids is not None:
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            if ids.shape != (n,):
                raise ConfigError(f"ids must have shape ({n},), got {ids.shape}")
            if np.array_equal(ids, np.arange(n)):
                ids = None
        kind = choose_kind(n) if kind == "auto" else kind
        mt = METRICS[metric]
        params: dict = {}
        if kind == "flat":
            index = faiss.IndexFlat(d, mt)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, HNSW_M, mt)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
            params = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
        else:
            if n < 1000:
                raise ConfigError(f"index type 'ivfpq' needs at least 1,000 vectors, got {n}: use 'flat'")
            nlist, m, nprobe = _ivfpq_params(n, d)
            index = faiss.IndexIVFPQ(faiss.IndexFlat(d, mt), d, nlist, m, 8, mt)
            index.nprobe = nprobe
            rng = np.random.default_rng(seed)
            sample = x[np.sort(rng.choice(n, min(n, max(40 * nlist, 32_768)), replace=False))]
            log.info("training IVF-PQ (nlist %d, m %d) on %d vectors", nlist, m, len(sample))
            if _gpu_count():  # k-means and PQ training on the GPU(s), then back to a CPU index
                gpu = faiss.index_cpu_to_all_gpus(index, co=_gpu_cloner_options())
                gpu.train(sample)
                index = faiss.index_gpu_to_cpu(gpu)
                index.nprobe = nprobe
                del gpu
            else:
                index.train(sample)
            index.set_direct_map_type(
                faiss.DirectMap.Array if ids is None else faiss.DirectMap.Hashtable
            )
            params = {"nlist": nlist, "pq_m": m, "nbits": 8, "nprobe": nprobe}
        if ids is not None and kind != "ivfpq":
            index = faiss.IndexIDMap2(index)
        chunk = 100_000
        for s in tqdm(range(0, n, chunk), desc=f"index ({kind})", disable=n <= chunk, unit=" chunks"):
            if ids is None:
                index.add(x[s : s + chunk])
            else:
                index.add_with_ids(x[s : s + chunk], ids[s : s + chunk])
        manifest = {"dim": d, "count": n, "metric": metric, "kind": kind, "params": params}
        return cls(index, kind, metric, manifest)

    # -- querying ----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` `(scores, ids)`, each `(len(queries), k)`; missing slots have id -1.

        Scores are inner products for metric "ip" (cosine on unit vectors), squared L2 for "l2".
        `ef_search`: an HNSW index's search breadth for this call (None: the index's own, 128);
        other kinds ignore it.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.shape[1] != self.dim:
            raise ConfigError(f"query dimension {q.shape[1]} does not match index dimension {self.dim}")
        if ef_search is not None and self.kind == "hnsw" and self._search_index is self.index:
            return self.index.search(q, int(k), params=faiss.SearchParametersHNSW(efSearch=int(ef_search)))
        return self._search_index.search(q, int(k))

    def reconstruct(self, ids) -> np.ndarray:
        """The stored vectors of `ids` (approximate for ivfpq), `(len(ids), d)` float32."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not isinstance(self.index, faiss.IndexIDMap2) and (ids.min() < 0 or ids.max() >= len(self)):
            raise ConfigError(f"ids out of range 0..{len(self) - 1}: {ids[(ids < 0) | (ids >= len(self))][:5].tolist()}")
        try:
            return self.index.reconstruct_batch(ids)
        except RuntimeError as exc:
            raise ConfigError(f"cannot reconstruct ids {ids[:5].tolist()}...: {str(exc).splitlines()[0]}") from None

    def on_gpu(self) -> DenseIndex:
        """Search this flat or IVF-PQ index on all visible GPUs from now on (HNSW stays on the CPU:
        FAISS has no GPU HNSW); returns self. ConfigError when no GPU is visible to FAISS."""
        if _gpu_count() == 0:
            raise ConfigError("no GPU is visible to FAISS: install faiss-gpu-cu12 (see README) or use device='cpu'")
        if self.kind == "hnsw":
            return self
        _check_single_faiss()
        try:
            self._search_index = faiss.index_cpu_to_all_gpus(self.index, co=_gpu_cloner_options())
            if self.kind == "ivfpq":  # keep the manifest's nprobe on the GPU copy
                faiss.GpuParameterSpace().set_index_parameter(
                    self._search_index, "nprobe", faiss.extract_index_ivf(self.index).nprobe)
            log.info("searching the %s index on %d GPU(s)", self.kind, _gpu_count())
        except Exception as exc:  # unsupported index type on GPU: stay on CPU
            log.warning("could not move the %s index to GPU (%s); searching on CPU", self.kind, exc)
        return self

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, name: str, manifest: dict | None = None) -> Path:
        """Write `<directory>/<name>.faiss` and `<name>.json` atomically; returns the index path."""
        self.manifest.update(manifest or {})
        self.manifest.update(dim=self.dim, count=len(self), metric=self.metric, kind=self.kind)
        return write_checked(self.index, directory, name, self.manifest)

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str, expect: dict | None = None,
             device: str = "cpu") -> DenseIndex:
        """Read an index saved by `save`; raise `IndexMismatchError` if a manifest value in
        `expect` (e.g. ``{"kb_checksum": ..., "model_id": ...}``) differs. `device`: "cpu" or
        "gpu" (searched on all visible GPUs, see `on_gpu`)."""
        if device not in ("cpu", "gpu"):
            raise ConfigError(f"unknown index device {device!r}: choose cpu or gpu")
        path, manifest = read_checked(directory, name, expect, f"{name} index", "build it with `mmel kb index`")
        index = faiss.read_index(str(path))
        inner = faiss.extract_index_ivf(index) if manifest["kind"] == "ivfpq" else None
        params = manifest.get("params", {})
        if inner is not None:
            inner.nprobe = params.get("nprobe", inner.nprobe)
        elif manifest["kind"] == "hnsw":
            h = faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap2) else index)
            h.hnsw.efSearch = params.get("efSearch", HNSW_EF_SEARCH)
        loaded = cls(index, manifest["kind"], manifest["metric"], manifest)
        return loaded.on_gpu() if device == "gpu" else loaded


def write_checked(index: faiss.Index, directory: str | os.PathLike, name: str, manifest: dict) -> Path:
    """Write `<name>.faiss` and its manifest `<name>.json` atomically (the twin of
    `read_checked`); `manifest` gains the format version, the file's size and the time."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.faiss"
    atomic_write(path, lambda p: faiss.write_index(index, str(p)))
    manifest.update(format=FORMAT_VERSION, bytes=path.stat().st_size,
                    created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    text = json.dumps(manifest, indent=2, ensure_ascii=False)
    atomic_write(directory / f"{name}.json", lambda p: p.write_text(text, encoding="utf-8"))
    return path


def read_checked(directory: str | os.PathLike, name: str, expect: dict | None, what: str,
                 hint: str) -> tuple[Path, dict]:
    """`<name>.faiss` and its manifest `<name>.json`, checked against `expect` (see
    `check_manifest`) and against the index file's size (an interrupted write)."""
    directory = Path(directory)
    path, mpath = directory / f"{name}.faiss", directory / f"{name}.json"
    if not path.is_file() or not mpath.is_file():
        raise KBError(f"no {what} in {directory}: {hint}")
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    check_manifest(manifest, expect or {}, what=f"{what} in {directory}")
    if manifest.get("bytes") not in (None, path.stat().st_size):
        raise IndexMismatchError(f"{path} does not match its manifest {mpath.name} (interrupted write?): {hint}")
    return path, manifest


def check_manifest(manifest: dict, expect: dict, what: str) -> None:
    """Raise `IndexMismatchError` naming every key of `expect` whose value differs."""
    diffs = [
        f"{key} is {manifest.get(key)!r}, expected {want!r}"
        for key, want in expect.items()
        if want is not None and manifest.get(key) != want
    ]
    if diffs:
        raise IndexMismatchError(
            f"the {what} was built for another KB or model ({'; '.join(diffs)}): "
            "rebuild it with `mmel kb index` (text) or `mmel kb add-faces --rebuild` (faces)"
        )


# -- the entity text index ---------------------------------------------------------------------


def entity_text(name: str, description: str) -> str:
    """What the text index embeds for an entity: ``"name: description"`` (or just the name)."""
    return f"{name}: {description}" if description else name


def build_text_index(
    kb: KnowledgeBase,
    encoder: TextEncoder | Callable[[], TextEncoder],
    kb_dir: str | os.PathLike,
    kind: str = "auto",
    batch_size: int | None = None,
    progress: bool = True,
    chunk: int | None = None,
) -> dict:
    """Embed every entity of `kb` and save `<kb_dir>/text.faiss` + `text.json`; returns the manifest.

    Holds the KB's write lock throughout (`KBBusyError` at once if another process writes the
    KB). `encoder` may be a function that loads one: it is called once the lock is held, so a
    second writer is refused before a model loads. The bar advances per encoder batch; without
    `progress`, a line is logged every 5 %. Entities are read and encoded `chunk` at a time
    (4,096; 65,536 on a GPU, which needs long runs of texts to stay busy); `batch_size` None is
    the encoder's default."""
    if kind not in KINDS:
        raise ConfigError(f"unknown index type {kind!r}: choose one of {', '.join(KINDS)}")
    n = len(kb)
    if n == 0:
        raise KBError(f"{kb.path} has no entities to index")
    with WriteLock(kb_dir, "indexed"):
        if not kb.is_current():
            raise KBError(f"{kb.path} was rebuilt after this command opened it: run it again")
        if not hasattr(encoder, "encode"):  # a loader
            from indexer.text import hf_progress

            with hf_progress(progress):
                encoder = encoder()
        return _build_text_index(kb, encoder, kb_dir, kind, batch_size, progress, chunk)


def _build_text_index(kb, encoder, kb_dir, kind: str, batch_size: int | None, progress: bool, chunk: int | None) -> dict:
    n = len(kb)
    chunk = chunk or (65_536 if getattr(encoder, "cuda", False) else 4096)
    if not progress:  # a log line per chunk instead of a bar: a chunk of about 5 %
        chunk = min(chunk, max(batch_size or 64, -(-n // 20)))
    vectors = np.empty((n, encoder.dim), dtype=np.float32)
    ids = np.empty(n, dtype=np.int64)
    bar = tqdm(total=n, desc="embed entities", unit=" entities", disable=not progress)
    started = time.time()
    row = 0
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        nonlocal row
        shown = 0

        def advance(k: int) -> None:  # per encoder batch
            nonlocal shown
            k = min(k, len(batch) - shown)
            shown += k
            bar.update(k)

        vecs = encoder.encode([t for _, t in batch], **({"batch_size": batch_size} if batch_size else {}),
                              progress=advance if progress else False)
        vectors[row : row + len(batch)] = vecs
        ids[row : row + len(batch)] = [i for i, _ in batch]
        row += len(batch)
        if not progress:
            log.info("embedded %d of %d entities (%d %%), %.0f entities/s", row, n, row * 100 // n,
                     row / max(time.time() - started, 1e-9))
        if shown < len(batch):  # what the encoder did not report
            bar.update(len(batch) - shown)
        batch.clear()

    for idx, ent in kb.iter_entities():
        batch.append((idx, entity_text(ent.name, ent.description)))
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    bar.close()
    encoding = ({k: getattr(encoder, k) for k in ("device", "dtype", "quantize")}
                if hasattr(encoder, "quantize") else None)
    return write_text_index(kb, encoder, kb_dir, vectors[:row], ids[:row], kind=kind, started=started,
                            encode_seconds=time.time() - started, encoding=encoding, progress=progress)


def write_text_index(kb, encoder, kb_dir, vectors: np.ndarray, ids: np.ndarray, *, kind: str, started: float,
                     encode_seconds: float, encoding: dict | None = None, progress: bool = True,
                     extra: dict | None = None) -> dict:
    """Index the entity `vectors` (rows of entity `ids`, embedded by `encoder`), save
    `<kb_dir>/text.faiss` + `text.json` and distil the static context encoder when `encoder` is
    a transformer; returns the manifest. The last step of `build_text_index`, shared by the Ray
    pipeline (`indexer.ray_index`). `vectors` may be a memory map: IVF-PQ is trained on a sample
    and vectors are added 100k at a time. `encoding`: the encoder's device, dtype and quantize."""
    index = DenseIndex.build(vectors, ids, kind=kind, metric="ip")
    index.save(
        kb_dir, TEXT_INDEX,
        {"model_id": encoder.model_id, "kb_checksum": kb.checksum, "encode_seconds": round(encode_seconds, 2),
         "build_seconds": round(time.time() - started, 2),
         **({"text_encoding": encoding} if encoding else {}), **(extra or {})},
    )
    log.info("text index: %d entities, %s, %.1f entities/s", len(ids), index.kind,
             len(ids) / max(encode_seconds, 1e-9))
    if hasattr(encoder, "tokenizer") and hasattr(encoder, "model"):  # a transformer: distil its
        from indexer.static import build_context_encoder  # fast context encoder now, not at link time

        build_context_encoder(kb, encoder, kb_dir, progress=progress)
    return index.manifest


def load_text_index(kb: KnowledgeBase, kb_dir: str | os.PathLike, model_id: str | None = None,
                    device: str = "cpu") -> DenseIndex:
    """The text index of `kb`; refuses one built for another KB (or another `model_id`, if given).
    `device`: "cpu" or "gpu" (`DenseIndex.load`)."""
    return DenseIndex.load(kb_dir, TEXT_INDEX, expect={"kb_checksum": kb.checksum, "model_id": model_id},
                           device=device)
