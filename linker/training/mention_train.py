"""Train the mention scorer of the dictionary spotter (`linker.mentions`) on labelled documents.

Examples are the candidate spans the spotter would score (capitalised spans whose key the KB
knows, closed-class words excluded; in a KB with link probabilities also the lower-case
candidates): a span overlapping a gold mention is a positive, every other
one a (noisy: gold sets are incomplete) negative. Spans inside a longer known span that overlaps
a gold mention are left out: the spotter takes the longer one first ("Robert von Mohl" for a gold
"Mohl"), and counting "Mohl" as a positive would teach that the end of a run is a mention. The model is a logistic regression fitted by
Newton's method; the threshold is the highest one whose greedy selection still finds
`target_recall` of the gold mentions that the unfiltered spotter finds, in every training file;
one threshold for KBs without link probabilities (chosen on the files of such KBs), one for KBs
with them (`dump_threshold`, on the others).
The common-word table is counted on the same texts.

Each `--train` file is featurized against `--kb`, or against its own KB when written
`KB=FILE`: one scorer learns from person captions against an entity-list KB and from a dump's
links against a KB with link probabilities. A dump's links must not be featurized against a KB
whose anchors came from the same articles (every gold key would have a link probability there,
unlike in new text): `benchmarks/work/general-half/` holds the general train articles in two
halves, each half's links scored against a KB built from the other half's anchors
(`python benchmarks/make_data.py --halves HOME`). The bundled `linker/data/mention_scorer.json` is
reproduced by (`--dump-target-recall 0.95`: both train halves keep ≥ 90 % of their gold, at 29
instead of 36 spans per 1,000 characters with 0.985):

    python benchmarks/make_data.py --halves "$MMEL_HOME"
    mmel kb build --entities benchmarks/work/merged_kb.jsonl --kb merged
    python -m linker.training.mention_train --kb merged --train ../shared/data/wikimel/train.jsonl \\
        --train benchmarks/work/richpedia-train.jsonl \\
        --train general-half1=benchmarks/work/general-half/train0.jsonl \\
        --train general-half0=benchmarks/work/general-half/train1.jsonl \\
        --dump-target-recall 0.95 --out linker/data/mention_scorer.json
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import logging
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.home import kb_path
from kb.spans import WORD_PATTERN, sentence_initial
from kb.store import KnowledgeBase
from linker.document import iter_jsonl, parse_document
from linker.mentions import (
    FEATURES, MentionScorer, MentionScorerConfig, by_link_prob, candidate_groups, has_link_prob,
    scored_spans, select, top_name_words,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    gold: tuple[tuple[int, int], ...]


def read_examples(path) -> list[Example]:
    """Texts with their gold spans from a labelled JSONL file."""
    out = []
    for where, obj in iter_jsonl(path, "labelled file"):
        doc = parse_document(obj, where, allow_overlaps=True)  # gold files may repeat a span
        out.append(Example(doc.text, tuple((m.start, m.end) for m in doc.mentions or ())))
    return out


def common_words(texts: Iterable[str], min_count: int = 2, min_ratio: float = 0.05) -> dict[str, float]:
    """`{word: share of its in-sentence occurrences written in lower case}` (rounded to 0.01) for
    words seen at least `min_count` times inside sentences with a share ≥ `min_ratio`."""
    lower: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    for text in texts:
        for m in WORD_PATTERN.finditer(text):
            w = m.group().rstrip(".'’-")
            if not w or not w[0].isalpha() or sentence_initial(text, m.start()):
                continue
            key = w.lower()
            total[key] += 1
            lower[key] += w[0].islower()
    return {
        w: round(lower[w] / n, 2) for w, n in total.items()
        if n >= min_count and lower[w] / n >= min_ratio
    }


def overlaps(start: int, end: int, gold: Sequence[tuple[int, int]]) -> bool:
    return any(start < g_end and g_start < end for g_start, g_end in gold)


def reachable(scored: list, groups: list, gold: Sequence[tuple[int, int]]) -> list:
    """`scored` without the spans strictly inside a longer known span that overlaps `gold`."""
    covers = [
        (s.start, s.end) for spans, infos in groups for s, i in zip(spans, infos)
        if i is not None and overlaps(s.start, s.end, gold)
    ]
    return [
        (s, f) for s, f in scored
        if not any(a <= s.start and s.end <= b and b - a > s.end - s.start for a, b in covers)
    ]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 30) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the mean logistic loss + `l2`/2 ‖w‖² (Newton's method).

    p = σ(x·w + b); gradient g = xᵀ(p − y)/n + l2·w, Hessian H = xᵀ diag(p(1−p)) x/n + l2·I
    (the bias column is not regularised).
    """
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a @ theta)))
        grad = a.T @ (p - y) / n + reg * theta
        hess = (a * (p * (1 - p))[:, None]).T @ a / n + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def spot_recall(data: list[tuple[Example, list, dict]], threshold: float) -> tuple[float, float]:
    """(share of gold spans found by an overlapping selected span, selected spans per 1,000 chars)
    with the scorer's cut-off `threshold`, as the spotter selects (capitalised keys with a link
    probability of `MIN_LINK_PROB` need no score; spans not scored are not kept)."""
    def keep(s, i, p_of) -> bool:
        if by_link_prob(s, i):
            return True
        p = p_of.get((s.start, s.end))
        return p is not None and p >= threshold

    found = gold = picked = chars = 0
    for ex, groups, p_of in data:
        ms = select(groups, lambda s, i: keep(s, i, p_of))
        found += sum(any(m.start < e and s < m.end for m in ms) for s, e in ex.gold)
        gold += len(ex.gold)
        picked += len(ms)
        chars += len(ex.text)
    return found / max(gold, 1), 1000 * picked / max(chars, 1)


def highest_threshold(data: list[list], target: float) -> float | None:
    """The highest cut-off in 0.01 steps whose selection keeps `target` of the unfiltered
    selection's gold hits in every part of `data` (None without parts)."""
    if not data:
        return None
    ceilings = [spot_recall(d, 0.0)[0] for d in data]
    best = 0.0
    for t in np.arange(0.01, 1.0, 0.01):
        if any(spot_recall(d, float(t))[0] < target * c for d, c in zip(data, ceilings)):
            break
        best = round(float(t), 2)
    return best


def train(examples: list[Example] | Sequence[tuple[list[Example], KnowledgeBase]], kb: KnowledgeBase | None = None,
          target_recall: float = 0.985, sources: Sequence[str] = (), command: str = "",
          dump_target_recall: float | None = None) -> MentionScorer:
    """A scorer fitted on `examples` against `kb`, or on several `(examples, kb)` parts, each
    against its own KB (lower-case candidates where that KB has link probabilities). The
    threshold keeps `target_recall` of the reachable gold of each part whose KB has no link
    probabilities, the dump threshold `dump_target_recall` (None: `target_recall`) of each part
    whose KB has them; a kind without parts gets the other kind's threshold."""
    dump_target_recall = target_recall if dump_target_recall is None else dump_target_recall
    parts = [(examples, kb)] if kb is not None else list(examples)
    everything = [ex for exs, _ in parts for ex in exs]
    common = common_words(ex.text for ex in everything)
    rows, labels, prepared = [], [], []
    for exs, part_kb in parts:
        cache, lowercase, done = {}, has_link_prob(part_kb), []
        names_of = functools.lru_cache(maxsize=None)(lambda key, part_kb=part_kb: top_name_words(part_kb, key))
        for ex in exs:
            groups = candidate_groups(ex.text, part_kb, cache=cache, lowercase=lowercase)
            scored = scored_spans(ex.text, groups, common, names_of)
            fit = reachable(scored, groups, ex.gold)
            rows += [f for _, f in fit]
            labels += [float(overlaps(s.start, s.end, ex.gold)) for s, _ in fit]
            done.append((ex, groups, scored))
        prepared.append(done)
    x, y = np.asarray(rows, np.float64), np.asarray(labels)
    weights, bias = fit_logistic(x, y)
    scorer = MentionScorer(MentionScorerConfig(weights=tuple(weights), bias=bias))
    data = []
    for done in prepared:
        data.append([])
        for ex, groups, scored in done:
            probs = scorer.probability([f for _, f in scored]) if scored else []
            data[-1].append((ex, groups, {(s.start, s.end): float(p) for (s, _), p in zip(scored, probs)}))
    dump = [has_link_prob(part_kb) for _, part_kb in parts]
    threshold = highest_threshold([d for d, k in zip(data, dump) if not k], target_recall)
    dump_threshold = highest_threshold([d for d, k in zip(data, dump) if k], dump_target_recall)
    threshold = dump_threshold if threshold is None else threshold
    dump_threshold = threshold if dump_threshold is None else dump_threshold
    per_part = []
    hits = picked = 0.0
    for d, k, (exs, _) in zip(data, dump, parts):
        ceiling, rate_all = spot_recall(d, 0.0)
        recall, rate = spot_recall(d, dump_threshold if k else threshold)
        gold, chars = sum(len(e.gold) for e in exs), max(1, sum(len(e.text) for e in exs))
        hits, picked = hits + recall * gold, picked + rate * chars
        per_part.append({
            "documents": len(exs), "kb_has_link_prob": k, "recall_unfiltered": round(ceiling, 4),
            "per_1000_chars_unfiltered": round(rate_all, 2), "recall": round(recall, 4), "per_1000_chars": round(rate, 2),
            "gold_per_1000_chars": round(1000 * gold / chars, 2),
        })
    n_gold, n_chars = sum(len(e.gold) for e in everything), sum(len(e.text) for e in everything)
    metrics = {
        "examples": len(y), "positives": int(y.sum()), "documents": len(everything),
        "recall": round(hits / max(1, n_gold), 4), "per_1000_chars": round(picked / max(1, n_chars), 2),
        "gold_per_1000_chars": round(1000 * n_gold / max(1, n_chars), 2),
        "target_recall": target_recall, "dump_target_recall": dump_target_recall,
        **({"parts": dict(zip(sources, per_part))} if len(sources) == len(parts) else {}),
    }
    log.info("mention scorer: %s", metrics)
    config = MentionScorerConfig(
        features=FEATURES, weights=tuple(round(float(w), 5) for w in weights), bias=round(bias, 5),
        threshold=threshold, dump_threshold=dump_threshold, common=common, trained_on=tuple(sources),
        command=command, metrics=metrics,
    )
    return MentionScorer(config)


def train_source(value: str, default_kb: str | None) -> tuple[str | None, str]:
    """`(KB name, path)` of a `--train` value: `KB=FILE`, or `FILE` (of `default_kb`); a value
    that is an existing file is a path even if it holds "=" ."""
    name, sep, path = value.partition("=")
    if sep and name and path and not Path(value).exists():
        return name, path
    return default_kb, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", default=None, help="KB name under the data home, for --train files without their own")
    parser.add_argument("--home", default=None, help="data home [env MMEL_HOME]")
    parser.add_argument("--train", action="append", required=True,
                        help="labelled JSONL, or KB=FILE to featurize it against KB (repeatable)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--target-recall", type=float, default=0.985,
                        help="share of the unfiltered spotter's gold hits to keep when choosing the threshold")
    parser.add_argument("--dump-target-recall", type=float, default=None,
                        help="the same for the threshold of KBs with link probabilities (default: --target-recall)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    named = [train_source(value, args.kb) for value in args.train]
    missing = [path for name, path in named if name is None]
    if missing:
        parser.error(f"--train {missing[0]} names no KB: give --kb or write --train KB={missing[0]}")
    kbs = {name: KnowledgeBase(kb_path(args.home, name)) for name in dict.fromkeys(n for n, _ in named)}
    parts = [(read_examples(path), kbs[name]) for name, path in named]
    command = "python -m linker.training.mention_train " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    scorer = train(parts, target_recall=args.target_recall, sources=args.train, command=command,
                   dump_target_recall=args.dump_target_recall)
    scorer.save(args.out)
    print(json.dumps({"out": args.out, "threshold": scorer.config.threshold,
                      "dump_threshold": scorer.config.dump_threshold, **scorer.config.metrics}))


if __name__ == "__main__":
    main()
