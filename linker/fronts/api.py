"""File-level entry points used by the CLI: link a file of documents, train a model, evaluate one.

Kept out of `cli.py` so the CLI stays a thin layer of argument parsing.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path

from kb.errors import ConfigError, InputError
from kb.files import atomic_path, check_writable
from kb.home import DEFAULT_KB, kb_dir, kb_path, resolve_home
from linker.document import is_single_object, read_documents

FORMATS = ("json", "jsonl")
log = logging.getLogger(__name__)


def link_file(input: str | os.PathLike, out: str | os.PathLike | None = None, *, fmt: str = "json",
              html: str | os.PathLike | None = None, home=None, kb: str = "default", model=None,
              face_model=None, overrides: Mapping[str, object] | None = None, workers: int = 1,
              progress: bool = False) -> int:
    """Link every document of `input`, writing JSON or JSONL to `out` (stdout if None) and,
    if `html` is given, a self-contained HTML view of all documents to that file.

    The linker is `Linker.load(home, kb, model, face_model, overrides)`: the config saved with
    the model, with `overrides` (dotted keys: `joint`, `mentions`, `threads`, `batch_size`,
    `visual.alpha`, ...) applied. Returns the number of documents linked. JSON output is one
    object for an input of one bare object, else a list (a list of one stays a list); JSONL
    output is streamed batch by batch; `out` and `html` are replaced only when every document linked.
    `workers` > 1: that many forked processes link batches in parallel (`linker.corpus.workers`), with
    the same output. `progress`: a progress bar (documents/s, mentions/s, ETA) on stderr; a
    summary line is logged at the end either way.

    The input is read twice, streamed each time: first every document is checked (before any
    model loads), then they are linked. So a bad document at a later line is an error before
    anything is written, on stdout too, while no more than one document (one `.json` file) is
    held at once by the check.
    """
    from linker.corpus.workers import Progress, chunked, count_lines, link_chunks
    from linker.fronts.html import HtmlView
    from linker.pipeline import Linker, set_threads

    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    for path, option in ((out, "--out"), (html, "--html")):
        if path is not None:
            check_writable(path, option)
    if sum(1 for _ in read_documents(input)) == 0:  # check the whole input, before models load
        raise InputError(f"input file {input} holds no documents")
    linker = Linker.load(home, kb, model, face_model=face_model, overrides=overrides)
    threads = linker.config.threads
    if workers > 1:
        threads = threads or 1  # each worker one thread unless asked otherwise
    set_threads(threads)
    stream = read_documents(input)
    total = count_lines(input) if Path(input).suffix == ".jsonl" else None
    records = []
    with (Progress(total, enabled=progress) as bar, _output(out) as fh,
          HtmlView(html) if html else nullcontext() as view):
        for chunk, lines, summary in link_chunks(linker, chunked(stream, linker.config.batch_size), workers, threads):
            for doc, line in zip(chunk, lines):
                if view is not None or fmt == "json":
                    rec = json.loads(line)
                    if view is not None:
                        view.add(doc, rec)
                    if fmt == "json":
                        records.append(rec)
                if fmt == "jsonl":
                    fh.write(line + "\n")
            fh.flush()
            bar.update(summary)
        if fmt == "json":
            json.dump(records[0] if is_single_object(input) else records, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        summary = bar.close()
    log.info("%s", summary.line())
    return summary.documents


@contextmanager
def _output(out: str | os.PathLike | None):
    """stdout, or a temporary file renamed over `out` only if linking completes (a failing input
    leaves an earlier `out` as it was)."""
    if out is None:
        yield sys.stdout
        return
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        yield fh


CONTEXT_ENCODERS = ("static", "transformer")


def train_model(train_files, dev_files, *, out=None, epochs: int = 8, limit=None, home=None,
                kb: str = "default", context: str = "static", keep: str = "all",
                extra: Sequence[tuple[str, object, object]] = (), repeat: int = 1, seed: int = 0,
                progress: bool = True) -> dict:
    """Train the reranker for KB `kb` on one or more labelled files (model selection and NIL
    calibration on the dev files together); saves to `out` or `<home>/models/reranker`.

    `context`: how mention contexts are encoded, `static` (distilled, fast) or `transformer`.
    `keep`: candidate reduction, `P+C` (P by prior + C by context of the top 50) or `all`.
    `extra`: more `(KB name, train files, dev files)` whose gold ids belong to another KB of
    the home (e.g. a dump's links against a general KB beside captions against a people KB);
    `repeat`: passes over their training documents per epoch (one over the main files); `seed`:
    of the initial weights, the document order and the NIL calibration (`train_reranker`).
    """
    from linker.training.train import train_reranker

    if context not in CONTEXT_ENCODERS:
        raise ConfigError(f"unknown context encoder {context!r}: choose one of {', '.join(CONTEXT_ENCODERS)}")
    candidates = parse_keep(keep)
    main = _source(home, kb, context)
    if repeat < 1:
        raise ConfigError(f"repeat must be >= 1, got {repeat}")
    more = [_source(home, name, context, _paths(tr) if tr else (), _paths(dv) if dv else (), repeat)
            for name, tr, dv in extra]
    out = Path(out) if out else resolve_home(home) / "models" / "reranker"
    return train_reranker(main.kb, main.index, main.encoder, _paths(train_files), _paths(dev_files), out,
                          epochs=epochs, limit=limit, candidates=candidates, seed=seed, progress=progress, extra=more)


def parse_also(values: Sequence[str]) -> list[tuple[str, list[str], list[str]]]:
    """`["general=a.jsonl,b.jsonl"]` → `[("general", ["a.jsonl"], ["b.jsonl"])]` (`mmel train --also`)."""
    out = []
    for value in values:
        name, sep, files = value.partition("=")
        parts = [f for f in files.split(",") if f]
        if not sep or not name.strip() or not 1 <= len(parts) <= 2:
            raise ConfigError(f"bad --also {value!r}: use KB=TRAIN.jsonl or KB=TRAIN.jsonl,DEV.jsonl")
        out.append((name.strip(), parts[:1], parts[1:]))
    return out


def _source(home, kb: str, context: str, train=(), dev=(), repeat: int = 1):
    """The `LabelledSource` of KB `kb` of the home with these labelled files."""
    from indexer.dense import load_text_index
    from indexer.static import STATIC_PREFIX, load_context_encoder
    from kb.store import KnowledgeBase
    from linker.training.train import LabelledSource

    store = KnowledgeBase(kb_path(home, kb))
    index = load_text_index(store, kb_dir(home, kb))
    model_id = (STATIC_PREFIX if context == "static" else "") + index.manifest["model_id"]
    encoder = load_context_encoder(model_id, store, kb_dir(home, kb))
    return LabelledSource(store, index, encoder, tuple(train), tuple(dev), repeat)


def _paths(files) -> list[Path]:
    """One path or several, each checked to be a readable file."""
    paths = [Path(files)] if isinstance(files, (str, os.PathLike)) else [Path(f) for f in files]
    for p in paths:
        if not p.is_file():
            raise InputError(f"labelled file {p} does not exist")
    return paths


def parse_keep(keep: str):
    """`"4+3"` → keep 4 by prior + 3 by context of the top 50; `"all"` → keep all 50."""
    from linker.candidates import CandidateConfig

    if keep == "all":
        return CandidateConfig(keep_prior=None)
    prior, _, context = keep.partition("+")
    if not (prior.isdigit() and context.isdigit()):
        raise ConfigError(f"bad candidate reduction {keep!r}: use 'P+C' (e.g. '4+3') or 'all'")
    return CandidateConfig(keep_prior=int(prior), keep_context=int(context))


def evaluate_file(test: str | os.PathLike, *, home=None, kb: str = DEFAULT_KB, model=None,
                  out: str | os.PathLike | None = None, records: str | os.PathLike | None = None,
                  limit: int | None = None, overrides: Mapping[str, object] | None = None) -> dict:
    """`mmel evaluate`: link the gold spans of a labelled JSONL file and score the links.

    Returns the summary (`Metrics.to_dict` plus what was evaluated), also written as JSON to
    `out`; `records` gets one JSON line per mention (doc, surface, start, end, gold, predicted,
    gold_rank). The linker is built as for `mmel link` (`Linker.load` with `overrides`).
    """
    from linker.pipeline import Linker, set_threads
    from linker.training.evaluate import evaluate
    from linker.training.labelled import read_labelled

    data = read_labelled(test, limit)  # validates the file before models are loaded
    linker = Linker.load(home, kb, model, overrides=overrides)
    set_threads(linker.config.threads)
    metrics = evaluate(linker, data)
    summary = {**metrics.to_dict(), "test": str(Path(test).resolve()), "documents": len(data),
               "kb": kb, "model": str(model) if model else "default"}
    if out:
        Path(out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if records:
        with open(records, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in metrics.records)
    return summary
