"""Shared helpers for benchmarks: paths, machine/revision info, result writing, measured runs.

The results folder is `benchmarks/results/` unless the environment variable
`MMEL_BENCH_RESULTS` names another one (`python benchmarks/run.py --results DIR ...` sets it).
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work"
DATA = ROOT / ".." / "shared" / "data"


def results_dir() -> Path:
    """Where results are written and read: `$MMEL_BENCH_RESULTS` or `benchmarks/results/`."""
    return Path(os.environ.get("MMEL_BENCH_RESULTS") or RESULTS)


# what the benchmarks write themselves, and prose: changes there do not make numbers "dirty"
NOT_CODE = (":!benchmarks/results", ":!benchmarks/RESULTS.md", ":!README.md", ":!docs")


def git_revision() -> str:
    """HEAD, with "-dirty" when tracked code differs from it (`NOT_CODE` paths aside: the results
    and the tables a run rewrites must not mark the next run's numbers as uncommitted code)."""
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def machine(*extra_modules: str) -> dict:
    """Revision, date, machine and library versions (plus those of `extra_modules`), so numbers
    can be compared over time."""
    import faiss
    import psutil
    import torch

    revision = git_revision()
    info = {
        "git_revision": revision,
        "dirty": revision.endswith("-dirty"),  # tracked files differed from the revision: numbers of uncommitted code
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "load_average_at_start": os.getloadavg(),
    }
    for name in extra_modules:
        info[name] = getattr(importlib.import_module(name), "__version__", "?")
    return info


def write_json(path: str | os.PathLike, obj: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    return path


class TreeMemory:
    """Samples the memory of a process and all its descendants in a thread, until `stop()`:
    the peak of the summed RSS (every `interval` seconds), of the summed PSS (every
    `pss_every`-th sample, 0: never; reading smaps costs CPU a measured run competes for) and
    the most processes seen at once."""

    def __init__(self, pid: int, interval: float, pss_every: int = 0):
        self.pid, self.interval, self.pss_every = pid, interval, pss_every
        self.peak = {"rss": 0, "pss": 0, "processes": 0}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        root, tick = psutil.Process(self.pid), 0
        while not self._done.is_set():
            rss = pss = 0
            full = bool(self.pss_every) and tick % self.pss_every == 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in tree:
                try:
                    rss += p.memory_info().rss
                    if full:
                        pss += getattr(p.memory_full_info(), "pss", 0)
                except psutil.Error:
                    pass
            self.peak.update(rss=max(self.peak["rss"], rss), pss=max(self.peak["pss"], pss),
                             processes=max(self.peak["processes"], len(tree)))
            tick += 1
            self._done.wait(self.interval)

    def stop(self) -> dict:
        """Stop sampling; the peaks (bytes) and the most processes."""
        self._done.set()
        self._thread.join()
        return self.peak


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd` from the repository root; wall seconds, CPU seconds and peak RSS of the
    process tree (sampled every 50 ms), and its stdout. Raises RuntimeError if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    memory = TreeMemory(proc.pid, 0.05)
    out, err = proc.communicate()
    peak = memory.stop()["rss"]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak / 2**20, 1), "stdout": out}


def earlier_rows(previous: Path, key: str, size: str, measured: set) -> list[dict]:
    """Rows `previous[key]` of an earlier result whose `size` was not measured now (so a quick
    run keeps the large sizes of a full one), each marked with the revision and date it was
    measured at."""
    if not previous.is_file():
        return []
    old = json.loads(previous.read_text())
    m = old.get("machine", {})
    when = {"from_revision": m.get("git_revision"), "from_date": m.get("date")}
    return [{**r, **{k: r.get(k) or v for k, v in when.items()}} for r in old.get(key, []) if r[size] not in measured]


class CachedEncoder:
    """A text encoder that remembers every text it has embedded in `<path>.npy` + `<path>.json`
    (keyed by the SHA-1 of the text), so benchmarks that index overlapping KBs (WikiMEL,
    Richpedia, their union) embed each entity text once. Everything else is the wrapped encoder's.
    """

    def __init__(self, base, path: str | os.PathLike):
        import numpy as np

        self._base, self._path = base, Path(path)
        self._np = np
        meta = self._path.with_suffix(".json")
        ok = meta.is_file() and json.loads(meta.read_text()).get("model_id") == base.model_id
        self._keys: dict[str, int] = json.loads(meta.read_text())["keys"] if ok else {}
        self._vecs = np.load(self._path.with_suffix(".npy")) if ok else np.zeros((0, base.dim), np.float32)

    def __getattr__(self, name):  # model_id, dim, tokenizer, model, ...: the wrapped encoder's
        return getattr(self._base, name)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False):
        import hashlib

        np = self._np
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._keys))
        if missing:
            text_of = dict(zip(keys, texts))
            new = self._base.encode([text_of[k] for k in missing], batch_size=batch_size, progress=progress)
            self._keys.update({k: len(self._vecs) + i for i, k in enumerate(missing)})
            self._vecs = np.concatenate([self._vecs, new])
            self._path.parent.mkdir(parents=True, exist_ok=True)
            np.save(self._path.with_suffix(".npy.tmp.npy"), self._vecs)
            os.replace(self._path.with_suffix(".npy.tmp.npy"), self._path.with_suffix(".npy"))
            self._path.with_suffix(".json").write_text(json.dumps({"model_id": self._base.model_id, "keys": self._keys}))
        return self._vecs[[self._keys[k] for k in keys]]


def disjoint_spans(mentions: list[dict]) -> list[dict]:
    """The gold spans as input spans: in order, each one kept unless it overlaps one kept before
    (WikiMEL repeats a span with several answers; `mmel link` refuses overlapping spans)."""
    kept = []
    for m in sorted(mentions, key=lambda m: (m["start"], m["end"])):
        if not kept or m["start"] >= kept[-1]["end"]:
            kept.append({"start": m["start"], "end": m["end"]})
    return kept
