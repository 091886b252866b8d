"""Corpus-scale linking on every core of a machine: `mmel link --workers N`.

    parent: Linker.load once -> fork N workers -> chunks of `batch_size` documents, in order
    worker: linker.process(chunk) -> JSON lines + counts -> parent writes them in input order

The linker is loaded once in the parent and the workers are forked from it, so the reranker
weights, the FAISS index and the caches filled while loading are shared copy-on-write (each
worker opens its own read-only SQLite connections, see `kb.store.thread_connection`). Every
chunk is the same `batch_size` documents the single-process path links together, so the output
is byte-identical to `--workers 1`. A worker that dies (killed, out of memory) is a
`WorkerError` naming the documents in flight (the dead one's among them); nothing is written to `--out` then.

Each worker links with one torch/FAISS thread (the fastest per mention, see `set_threads`).
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from kb.errors import ConfigError, LinkerError
from kb.types import Document

log = logging.getLogger(__name__)


class WorkerError(LinkerError):
    """A linking worker process died before it returned its documents."""


def parse_workers(value: str | int | None) -> int:
    """`--workers`: a positive count or `auto` (all cores)."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ConfigError(f"--workers must be a positive number or 'auto', got {value!r}")
    return n


@dataclass
class Summary:
    """What a linking run did: additive, so chunks, workers and shards add up."""

    documents: int = 0
    mentions: int = 0
    links: int = 0  # mentions (and faces) linked to an entity; the rest are NIL
    warnings: int = 0  # documents with warnings (unreadable images)
    errors: int = 0  # documents not linked (any error stops the run, so 0 for a finished run)
    seconds: float = 0.0

    def add(self, other: Summary) -> Summary:
        for k in ("documents", "mentions", "links", "warnings", "errors"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self

    @property
    def nil_share(self) -> float:
        return 1 - self.links / self.mentions if self.mentions else 0.0

    def to_dict(self) -> dict:
        s = max(self.seconds, 1e-9)
        return {"documents": self.documents, "mentions": self.mentions, "links": self.links,
                "nil_share": round(self.nil_share, 4), "warnings": self.warnings, "errors": self.errors,
                "seconds": round(self.seconds, 2), "documents_per_second": round(self.documents / s, 1),
                "mentions_per_second": round(self.mentions / s, 1)}

    def line(self) -> str:
        d = self.to_dict()
        return (f"linked {d['documents']:,} documents: {d['mentions']:,} mentions, {d['links']:,} links, "
                f"NIL {100 * d['nil_share']:.1f} %, {d['warnings']:,} with warnings, {d['errors']:,} errors "
                f"in {d['seconds']:.1f} s ({d['documents_per_second']:,.1f} documents/s, "
                f"{d['mentions_per_second']:,.1f} mentions/s)")


def record_summary(records: Iterable[dict]) -> Summary:
    s = Summary()
    for rec in records:
        s.documents += 1
        for m in rec["mentions"] + rec.get("faces", []):
            s.mentions += 1
            s.links += m["entity"] is not None
        s.warnings += bool(rec.get("warnings"))
    return s


def link_chunk(linker, chunk: Sequence[Document]) -> tuple[list[dict], Summary]:
    """Output records of one chunk (linked together, as one batch) and their counts."""
    from linker.document import document_record

    recs = [document_record(d.document, d.links, d.warnings) for d in linker.process(chunk, len(chunk))]
    return recs, record_summary(recs)


# -- workers -------------------------------------------------------------------------------------

_LINKER = None  # the parent's loaded linker, inherited by the forked workers


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive a parent that was killed (SIGKILL leaves no time to stop it)."""
    try:  # Linux: the kernel sends SIGKILL when the parent dies
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _init_worker(parent: int, threads: int) -> None:
    from linker.pipeline import set_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the pool
    _die_with_parent(parent)
    set_threads(threads)


def _work(chunk: list[Document]) -> tuple[list[str], Summary]:
    recs, summary = link_chunk(_LINKER, chunk)
    return [json.dumps(r, ensure_ascii=False) for r in recs], summary


def link_chunks(linker, chunks: Iterable[list[Document]], workers: int = 1,
                threads: int = 1) -> Iterator[tuple[list[Document], list[str], Summary]]:
    """`(chunk, its output JSON lines, its counts)` per chunk, in input order; `workers` > 1
    links them in that many forked processes (at most 2 chunks per worker in flight)."""
    if workers <= 1:
        for chunk in chunks:
            recs, summary = link_chunk(linker, chunk)
            yield chunk, [json.dumps(r, ensure_ascii=False) for r in recs], summary
        return
    import multiprocessing

    global _LINKER
    _LINKER = linker
    pending: deque = deque()
    start = 0  # number of the first document of the oldest chunk in flight
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_init_worker, initargs=(os.getpid(), threads))
    try:
        it = iter(chunks)
        for chunk in it:
            pending.append((chunk, pool.submit(_work, chunk)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            chunk, future = pending.popleft()
            try:  # a pool broken by a dead worker fails the result or, once it knows, the next submit
                lines, summary = future.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(_work, nxt)))
            except BrokenProcessPool:  # the dead worker held one of the chunks in flight, which one is unknown
                held = len(chunk) + sum(len(c) for c, _ in pending)
                raise WorkerError(
                    f"a linking worker process died (killed, or out of memory?) while documents "
                    f"{start + 1:,}-{start + held:,} were in flight: nothing was written to --out; "
                    f"run again, with fewer --workers if memory is short") from None
            yield chunk, lines, summary
            start += len(chunk)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        _LINKER = None


class Progress:
    """A progress bar in documents (ETA when the total is known) with mentions/s, on stderr."""

    def __init__(self, total: int | None, enabled: bool = True, desc: str = "link"):
        from tqdm import tqdm

        self.summary = Summary()
        self._t0 = time.perf_counter()
        self.bar = tqdm(total=total, unit=" docs", desc=desc, disable=not enabled, mininterval=0.5, smoothing=0.1,
                        dynamic_ncols=True)

    def update(self, part: Summary) -> None:
        self.summary.add(part)
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        self.bar.set_postfix_str(f"{self.summary.mentions / elapsed:,.0f} mentions/s", refresh=False)
        self.bar.update(part.documents)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()  # idempotent; on an error, the message then starts on a line of its own

    def close(self) -> Summary:
        self.bar.close()
        self.summary.seconds = time.perf_counter() - self._t0
        return self.summary


def count_lines(path: str | os.PathLike) -> int:
    """Lines of a JSONL file, about its documents (for the progress bar's ETA; ~1 GB/s)."""
    n = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
    return n


def chunked(items: Iterable, size: int) -> Iterator[list]:
    import itertools

    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk

