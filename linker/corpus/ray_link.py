"""Linking a corpus with a Ray Data pipeline: `mmel link --ray [--ray-address ADDR] --out DIR`.

    input files -> blocks of documents (line / row ranges) -> map_batches(linker actors) -> shards

The input is a JSONL file, a Parquet file (with pyarrow) or a folder of them (searched
recursively, in sorted path order). The driver cuts every file into blocks of `block`
documents (a multiple of the batch size, so each block is linked in exactly the batches of
the single-process run) and writes the plan to `DIR/plan.json`. Each actor of the pool holds
one loaded `Linker`; for a block it reads those documents, links them and writes the shard
`DIR/<block number>.jsonl` atomically (a temporary file renamed when complete). When every
block is done, `DIR/manifest.json` lists the shards in input order with their counts and the
run's summary. A rerun with the same input and options skips the shards already written
(resumable after a crash or a preemption). For one JSONL file, the shards concatenated in
manifest order are byte for byte the output of `mmel link` on that file.

Blocks are planned by the driver rather than by `ray.data.read_json`, whose block boundaries
depend on the cluster and would make shards neither deterministic nor resumable. Each actor
takes one CPU and links with one thread (the fastest per mention), or one GPU when the config
searches the index on the GPU (`index_device=gpu`). On a cluster (`address`), the KB folder,
the input and DIR must be on storage every node sees at the same path, and every node must
have the same mmel installed. Without an address Ray runs locally, started by this process.
Ray is the extra ``pip install 'mmel[ray]'``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import time
from pathlib import Path

from kb.errors import ConfigError, InputError, LinkerError
from kb.files import TEMP_SUFFIX, atomic_path

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".parquet")
COUNTS = ("documents", "mentions", "links", "warnings")


def input_files(input: str | os.PathLike) -> list[Path]:
    """The input's files: `input` itself, or the .jsonl and .parquet files of a folder."""
    p = Path(input)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        if not files:
            raise InputError(f"input folder {p} holds no .jsonl or .parquet files")
    elif not p.is_file():
        raise InputError(f"input {p} does not exist")
    else:
        files = [p]
    for f in files:
        if f.suffix not in SUFFIXES:
            raise InputError(f"--ray reads .jsonl or .parquet files, got {f}")
        if f.suffix == ".parquet":
            _pyarrow()
    return files


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet input needs pyarrow, which is not installed: pip install pyarrow") from None
    return pq


def plan_blocks(files: list[Path], block: int) -> list[dict]:
    """`{file, start, stop, docs, shard}` per block of `block` documents, in input order: line
    ranges `[start, stop)` of a JSONL file (blank lines are no documents), row ranges of a
    Parquet file."""
    blocks = []
    for f in files:
        if f.suffix == ".parquet":
            rows = _pyarrow().ParquetFile(f).metadata.num_rows
            blocks += [{"file": str(f), "start": s, "stop": min(s + block, rows), "docs": min(block, rows - s)}
                       for s in range(0, rows, block)]
            continue
        lines = docs = start = 0
        with f.open("rb") as fh:
            for line in fh:
                lines += 1
                if line.strip():
                    docs += 1
                    if docs == block:
                        blocks.append({"file": str(f), "start": start, "stop": lines, "docs": docs})
                        start, docs = lines, 0
        if docs:
            blocks.append({"file": str(f), "start": start, "stop": lines, "docs": docs})
    for i, b in enumerate(blocks):
        b["shard"] = f"{i:08d}.jsonl"
    return blocks


def read_block(file: str, start: int, stop: int) -> list:
    """The documents of one block (see `plan_blocks`), validated."""
    from linker.document import parse_document

    f = Path(file)
    base = f.resolve().parent
    if f.suffix == ".parquet":
        pf = _pyarrow().ParquetFile(f)
        groups, row, first = [], 0, None
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if row < stop and row + n > start:
                groups.append(g)
                first = row if first is None else first
            row += n
        rows = pf.read_row_groups(groups).slice(start - first, stop - start).to_pylist()
        return [parse_document(obj, f"{f}[row {start + i}]", base) for i, obj in enumerate(rows)]
    docs = []
    with f.open(encoding="utf-8") as fh:
        for n, line in itertools.islice(enumerate(fh, 1), start, stop):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{f}:{n}: not valid JSON ({exc.msg})") from None
                docs.append(parse_document(obj, f"{f}:{n}", base))
    return docs


class _LinkActor:
    """A Ray Data actor holding one loaded linker: links blocks, writes one shard each."""

    def __init__(self, out_dir: str, load: dict, threads: int):
        from linker.pipeline import Linker, set_threads

        self.out = Path(out_dir)
        self.linker = Linker.load(**load)
        set_threads(threads)

    def __call__(self, batch: dict) -> dict:
        """Per block `{file, start, stop, shard}`: link it into its shard; the counts, or the
        message of a user error (bad input) for the driver to raise."""
        import numpy as np

        from linker.corpus.workers import Summary, chunked, link_chunk

        rows: dict[str, list] = {"shard": [], "seconds": [], "error": [], **{k: [] for k in COUNTS}}
        for f, start, stop, shard in zip(batch["file"], batch["start"], batch["stop"], batch["shard"]):
            t = time.perf_counter()
            total, error = Summary(), ""
            try:
                docs = read_block(str(f), int(start), int(stop))
                with atomic_path(self.out / str(shard)) as tmp, open(tmp, "w", encoding="utf-8") as out:
                    for chunk in chunked(docs, self.linker.config.batch_size):
                        recs, s = link_chunk(self.linker, chunk)
                        out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
                        total.add(s)
            except LinkerError as exc:  # Ray would wrap it in a traceback: hand back the message
                error = str(exc)
            rows["shard"].append(str(shard))
            rows["error"].append(error)
            for k in COUNTS:
                rows[k].append(getattr(total, k))
            rows["seconds"].append(time.perf_counter() - t)
        return {k: np.asarray(v) for k, v in rows.items()}


def _signature(files: list[Path], block: int, load: dict) -> str:
    """What the shards depend on: the input files (path, size, mtime), the block and the linker."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update(json.dumps({"block": block, **{k: str(v) for k, v in load.items()}}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _shard_counts(path: Path) -> dict:
    """The counts of a shard a killed run completed (read back from its records)."""
    from linker.corpus.workers import record_summary

    with path.open(encoding="utf-8") as fh:
        s = record_summary(json.loads(line) for line in fh)
    return {k: getattr(s, k) for k in COUNTS}


def _cause(exc: BaseException) -> str:
    """The last `SomeError: message` line of an error Ray wrapped (its text holds the actor's
    traceback), else the error's last line."""
    import re

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"[\w.]*(Error|Exception)\b[^:]*: ", line):
            return line
    return lines[-1] if lines else type(exc).__name__


def link_ray(input, out_dir, *, load: dict, address: str | None = None, actors: int | None = None,
             block: int | None = None, progress: bool = True) -> dict:
    """Link every document of `input` (a JSONL or Parquet file, or a folder of them) with a pool
    of Ray actors into shards under `out_dir`; returns the manifest (also written there).

    `load`: the keyword arguments of `Linker.load` (home, kb, model, face_model, overrides).
    `actors`: default one per CPU (or GPU, with `index_device=gpu`) of the cluster. `block`:
    documents per shard, a multiple of the batch size (default the multiple nearest 4096).
    """
    from indexer.ray_index import _ray
    from linker.config import LinkerConfig
    from linker.corpus.workers import Progress, Summary
    from linker.pipeline import model_path

    ray = _ray()
    if out_dir is None:
        raise ConfigError("--ray writes shards into a folder: give --out DIR")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: --ray writes shards and a manifest into a folder")
    files = input_files(input)
    config = LinkerConfig.load(model_path(load.get("home"), load.get("model"))).override(load.get("overrides") or {})
    batch_size = config.batch_size
    block = block or max(1, round(4096 / batch_size)) * batch_size
    if block < 1 or block % batch_size:
        raise ConfigError(f"the block ({block} documents) must be a positive multiple of the batch size ({batch_size})")
    blocks = plan_blocks(files, block)
    if not blocks:
        raise InputError(f"input {input} holds no documents")
    out.mkdir(parents=True, exist_ok=True)
    sig = _signature(files, block, load)
    plan_file, manifest_file = out / "plan.json", out / "manifest.json"
    if plan_file.is_file() and json.loads(plan_file.read_text()).get("signature") != sig:
        raise ConfigError(f"--out {out} holds shards of another input or other options: give a new folder or empty it")
    with atomic_path(plan_file) as tmp:
        tmp.write_text(json.dumps({"signature": sig, "block": block, "blocks": blocks}, indent=1))
    for stale in out.glob(f".*{TEMP_SUFFIX}"):  # shards a killed run left half-written
        stale.unlink(missing_ok=True)
    todo = [b for b in blocks if not (out / b["shard"]).is_file()]
    if len(todo) < len(blocks):
        log.info("resuming: %d of %d shards already complete", len(blocks) - len(todo), len(blocks))
    with Progress(sum(b["docs"] for b in blocks), enabled=progress, desc="link (ray)") as bar:
        bar.update(Summary(documents=sum(b["docs"] for b in blocks) - sum(b["docs"] for b in todo)))
        results = _link_blocks(ray, todo, out, bar, address=address, actors=actors, config=config, load=load,
                               block=block, total=len(blocks)) if todo else {}
        summary = bar.close()
    earlier = {}  # a finished earlier run's rows (with their seconds), for the shards not linked now
    if manifest_file.is_file() and json.loads(manifest_file.read_text()).get("signature") == sig:
        earlier = {r["shard"]: r for r in json.loads(manifest_file.read_text())["shards"]}
    shards, total = [], Summary()
    for b in blocks:
        r = results.get(b["shard"]) or earlier.get(b["shard"]) or _shard_counts(out / b["shard"])
        row = {"shard": b["shard"], "file": b["file"], "rows" if b["file"].endswith(".parquet") else "lines":
               [b["start"], b["stop"]], **{k: int(r[k]) for k in COUNTS},
               "seconds": round(float(r["seconds"]), 3) if r.get("seconds") is not None else None}  # None: unknown
        shards.append(row)
        total.add(Summary(**{k: row[k] for k in COUNTS}))
    total.seconds = summary.seconds
    manifest = {"input": [str(f) for f in files], "signature": sig, "block": block, "shards": shards,
                "summary": total.to_dict()}
    with atomic_path(manifest_file) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    log.info("%s", total.line())
    return manifest


def _link_blocks(ray, todo: list[dict], out: Path, bar, *, address, actors, config, load, block: int,
                 total: int) -> dict[str, dict]:
    """Link the blocks of `todo` into their shards with a pool of linker actors (starting a local
    Ray, or joining `address`, unless Ray is running); each shard's counts, by shard name."""
    from linker.corpus.workers import Summary

    results: dict[str, dict] = {}
    own = not ray.is_initialized()  # started here: shut down here
    if own:
        local = {} if address else {
            "include_dashboard": False, "num_cpus": max(os.cpu_count() or 1, actors or 1),
            # the actors import this very code, also when it is not the installed copy
            "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}}}
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, **local)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        if not log.isEnabledFor(logging.DEBUG):  # Ray Data's plan and timing lines, on every run
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        gpu = config.index_device == "gpu"
        resources = ray.cluster_resources()
        n = actors or max(1, int(resources.get("GPU" if gpu else "CPU", 1)))
        n = min(n, len(todo))
        log.info("Ray: %d block(s) of up to %d documents on %d linker actor(s)", len(todo), block, n)
        ds = ray.data.from_items(todo, override_num_blocks=len(todo)).map_batches(
            _LinkActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=n), num_cpus=1,
            num_gpus=1 if gpu else 0,
            fn_constructor_kwargs={"out_dir": str(out), "load": load, "threads": config.threads or 1})
        try:
            for row in ds.iter_rows():
                r = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                if r["error"]:
                    raise InputError(str(r["error"]))
                results[str(r["shard"])] = r
                bar.update(Summary(**{k: int(r[k]) for k in COUNTS}))
        except LinkerError:
            raise
        except Exception as exc:  # an actor died or failed, wrapped by Ray
            done = sum(1 for _ in out.glob("0*.jsonl"))
            raise LinkerError(f"linking with Ray failed ({done} of {total} shards complete in {out}; "
                              f"a rerun resumes): {_cause(exc)}") from None
    finally:
        if own:
            ray.shutdown()
    return results
